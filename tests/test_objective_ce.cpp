// Cross-entropy objectives: CEDD / CEDD* (objective/cedd.hpp, spec/MATH.md 5.2) and the MD4 /
// MDLM ELBO in continuous and discrete time (objective/md4.hpp, spec 5.3): weights, positions,
// the fused row kernel against its naive twin, central finite differences of every gradient
// through the validated batch drivers, the MD4 spot value of spec 12.4, and the exact equivalence
// of MD4's ELBO with SEDD's DWDSE under the mean parameterisation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <discdiff/generator/generators.hpp>
#include <discdiff/objective/checked_xt.hpp>
#include <discdiff/schedule/schedules.hpp>
#include <discdiff/score/probs_to_score.hpp>

using namespace discdiff;

namespace {

bool close(double a, double b, double rel, double abs = 0.0) {
  return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)) + abs;
}

constexpr double kFdRel = 1e-6;

/// Central finite differences of sum_b loss_b with respect to every output, against grad.
void check_fd(const std::function<LossResult<double>(const xt::xtensor<double, 3>&)>& f,
              xt::xtensor<double, 3> z) {
  const auto base = f(z);
  double scale = 0;
  for (double g : base.grad) scale = std::max(scale, std::abs(g));
  REQUIRE(scale > 0);
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double h = 1e-5, z0 = z.data()[i];
    z.data()[i] = z0 + h;
    double up = 0, dn = 0;
    for (double v : f(z).loss) up += v;
    z.data()[i] = z0 - h;
    for (double v : f(z).loss) dn += v;
    z.data()[i] = z0;
    const double fd = (up - dn) / (2 * h);
    CAPTURE(i);
    CHECK(std::abs(fd - base.grad.data()[i]) <= kFdRel * std::max(scale, 1e-2));
  }
}

struct Batch {
  xt::xtensor<int, 2> x0, xt;
  xt::xtensor<double, 1> t;
  xt::xtensor<double, 3> z;
};

/// A random batch: x0 regular, xt drawn from P_u[., x0] at u = sbar(t_b) (forward sampling).
template <class Gen, class Sched>
Batch make_batch(const Gen& gen, const Sched& sched, int B, int L, int V, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.2);
  Batch bt;
  bt.x0 = xt::xtensor<int, 2>::from_shape({std::size_t(B), std::size_t(L)});
  bt.xt = bt.x0;
  bt.t = xt::xtensor<double, 1>::from_shape({std::size_t(B)});
  bt.z = xt::xtensor<double, 3>::from_shape({std::size_t(B), std::size_t(L), std::size_t(V)});
  for (int b = 0; b < B; ++b) bt.t(b) = 0.15 + 0.8 * (b + 0.5) / B;
  for (int b = 0; b < B; ++b)
    for (int l = 0; l < L; ++l) {
      bt.x0(b, l) = static_cast<int>(rng() % gen.num_regular());
      CounterRng r(seed, 0, static_cast<std::uint64_t>(b * L + l));
      bt.xt(b, l) = gen.sample_forward(bt.x0(b, l), sched.sigma_bar(bt.t(b)), r);
    }
  // Guarantee at least one masked and one unmasked position where the graph has a MASK.
  if (gen.num_states() > gen.num_regular()) {
    bt.xt(0, 0) = gen.mask();
    bt.xt(B - 1, L - 1) = bt.x0(B - 1, L - 1);
  }
  for (auto& v : bt.z) v = nd(rng);
  return bt;
}

}  // namespace

TEST_CASE("cedd: the weights of spec 5.2 and 12.1") {
  CHECK(cedd_weight(CeddVariant::cedd, 0.3) == 1.0);
  CHECK(cedd_weight(CeddVariant::cedd_star, 1.0) == doctest::Approx(1.104688).epsilon(5e-7));
  CHECK(cedd_weight(CeddVariant::cedd_star, 0.5) == doctest::Approx(1.199447).epsilon(5e-7));
  CHECK(cedd_weight(CeddVariant::cedd_star, 0.1) == doctest::Approx(1.743668).epsilon(5e-7));
  CHECK(cedd_weight(CeddVariant::cedd_star, 1e-3) == doctest::Approx(5.712803).epsilon(5e-7));
  CHECK(cedd_weight(CeddVariant::cedd_star, 0.37) == doctest::Approx(std::log(std::exp(1.0) + 0.3 / 0.37)).epsilon(1e-15));
}

TEST_CASE("softmax_xent_row: fused == naive, finite differences, accuracy as f(a) -> 1") {
  std::mt19937_64 rng(2);
  std::normal_distribution<double> nd(0.0, 2.0);
  for (int V : {2, 5, 27, 300}) {
    for (int rep = 0; rep < 5; ++rep) {
      std::vector<double> z(static_cast<std::size_t>(V + 1));
      for (auto& v : z) v = nd(rng) + 100.0 * (rep == 4);
      const int nsoft = rep % 2 ? V : V + 1;
      const int a = static_cast<int>(rng() % static_cast<std::uint64_t>(V));
      std::vector<double> g(z.size()), gn(z.size()), tmp(z.size());
      double lse = 0;
      const double ce = softmax_xent_row(z.data(), nsoft, V + 1, a, 0.7, g.data(), &lse);
      const double cen = softmax_xent_row_naive(z.data(), nsoft, V + 1, a, 0.7, gn.data());
      CHECK(close(ce, cen, 1e-13, 1e-15));
      // Two summation orders of the same log-sum-exp: a few ulps of max(|lse|, 1).
      CHECK(close(lse, math::logsumexp(z.data(), nsoft), 4e-16, 4e-16));
      for (int v = 0; v <= V; ++v) CHECK(close(g[v], gn[v], 1e-12, 1e-16));
      if (nsoft == V) CHECK(g[V] == 0.0);
      for (int v = 0; v < nsoft; ++v) {
        const double h = 1e-6, z0 = z[v];
        z[v] = z0 + h;
        const double up = softmax_xent_row(z.data(), nsoft, V + 1, a, 1.0, tmp.data());
        z[v] = z0 - h;
        const double dn = softmax_xent_row(z.data(), nsoft, V + 1, a, 1.0, tmp.data());
        z[v] = z0;
        CHECK(std::abs((up - dn) / (2 * h) - g[v] / 0.7) <= kFdRel);
      }
    }
  }
  // f(a) -> 1 in float: ce = log1p(sum of the others) keeps full relative accuracy.
  std::vector<float> z(1000, -30.0f), g(1000);
  z[7] = 0.0f;
  const float ce = softmax_xent_row(z.data(), 1000, 1000, 7, 1.0f, g.data());
  const double want = std::log1p(999 * std::exp(-30.0));
  CHECK(std::abs(ce - want) <= 1e-6 * want);
}

TEST_CASE("cedd: batch driver, positions, fused == naive and finite differences") {
  const int N = 4, B = 3, L = 4;
  const LogLinearSchedule<double> loglin;
  const RouletteLogLinearSchedule<double> rsched(0.9);
  const GeometricSchedule<double> geo(1e-4, 20.0);
  auto run = [&](const auto& gen, const auto& sched, int V) {
    for (CeddVariant var : {CeddVariant::cedd, CeddVariant::cedd_star}) {
      const Batch bt = make_batch(gen, sched, B, L, V, 17 + V);
      auto f = [&](const xt::xtensor<double, 3>& z) {
        return cedd_loss(gen, sched, bt.x0, bt.xt, bt.t, z, var);
      };
      check_fd(f, bt.z);
      const auto r = f(bt.z);
      // Positions and weights: the loss is omega(t) sum_{i in I} -log softmax(z)[x0].
      const bool masked_only = default_loss_positions<std::decay_t<decltype(gen)>>::value ==
                               LossPositions::masked;
      for (int b = 0; b < B; ++b) {
        double want = 0;
        for (int l = 0; l < L; ++l) {
          const bool used = !masked_only || bt.xt(b, l) == gen.mask();
          std::vector<double> zr(bt.z.data() + (b * L + l) * V, bt.z.data() + (b * L + l + 1) * V);
          const double ce = math::logsumexp(zr.data(), V) - zr[bt.x0(b, l)];
          const double pl = used ? cedd_weight(var, bt.t(b)) * ce : 0.0;
          CHECK(close(r.position_loss(b, l), pl, 1e-13));
          want += pl;
          if (!used)
            for (int v = 0; v < V; ++v) CHECK(r.grad(b, l, v) == 0.0);
        }
        CHECK(close(r.loss(b), want, 1e-13));
      }
      // fused == naive (raw drivers)
      std::vector<double> w(B), g(bt.z.size()), pos(B * L), row(B);
      for (int b = 0; b < B; ++b) w[b] = cedd_weight(var, bt.t(b));
      LossBatch<double> lb;
      lb.B = B;
      lb.L = L;
      lb.V = V;
      lb.x0 = bt.x0.data();
      lb.xt = bt.xt.data();
      lb.logits = bt.z.data();
      lb.grad = g.data();
      lb.pos_loss = pos.data();
      lb.row_loss = row.data();
      cedd_loss_naive(lb, w.data(), gen.num_states() > N ? N : -1,
                      default_loss_positions<std::decay_t<decltype(gen)>>::value);
      for (int b = 0; b < B; ++b) CHECK(close(row[b], r.loss(b), 1e-13));
      for (std::size_t i = 0; i < g.size(); ++i) CHECK(close(g[i], r.grad.data()[i], 1e-12, 1e-15));
    }
  };
  run(UniformGenerator<double>(N), geo, N);
  run(AbsorbingGenerator<double>(N), loglin, N + 1);
  run(AbsorbingGenerator<double>(N), loglin, N);
  run(RouletteGenerator<double>(N, 0.9), rsched, N + 1);
}

TEST_CASE("md4: continuous-time ELBO, any schedule: weights, constants, finite differences") {
  const int N = 5, B = 3, L = 4;
  const AbsorbingGenerator<double> gen(N);
  auto run = [&](const auto& sched) {
    for (int V : {N, N + 1}) {
      const Batch bt = make_batch(gen, sched, B, L, V, 100 + V);
      for (Md4Options opt : {Md4Options{true, true}, Md4Options{true, false}, Md4Options{false, false}}) {
        auto f = [&](const xt::xtensor<double, 3>& z) {
          return md4_loss(gen, sched, bt.x0, bt.xt, bt.t, z, opt);
        };
        check_fd(f, bt.z);
        const auto r = f(bt.z);
        const double cst = (opt.recon ? L * sched.one_minus_alpha(0.0) * std::log(N) : 0.0) +
                           (opt.prior ? L * sched.alpha(1.0) * std::log(N) : 0.0);
        for (int b = 0; b < B; ++b) {
          const double w = sched.elbo_weight(bt.t(b));
          CHECK(close(w, -sched.dalpha(bt.t(b)) / sched.one_minus_alpha(bt.t(b)), 1e-12));
          double want = cst;
          for (int l = 0; l < L; ++l) {
            const double* zr = bt.z.data() + (b * L + l) * V;
            if (bt.xt(b, l) == N) want += w * (math::logsumexp(zr, N) - zr[bt.x0(b, l)]);
            if (V == N + 1) CHECK(r.grad(b, l, N) == 0.0);  // SUBS: MASK logit is -inf
          }
          CHECK(close(r.loss(b), want, 1e-13));
        }
      }
    }
  };
  run(LinearSchedule<double>());
  run(LogLinearSchedule<double>());
  run(CosineSchedule<double>());
  run(PolynomialSchedule<double>(2.0));
  run(MdlmCosineSchedule<double>());
  run(GeometricSchedule<double>(1e-4, 20.0));
  // MD4 code: L_recon = L eta log N for S-LIN-MD4 (alpha(0) = 1 - eta).
  CHECK(md4_constant_terms(LinearSchedule<double>(), 7, N, Md4Options{true, false}) ==
        doctest::Approx(7 * 1e-4 * std::log(N)).epsilon(1e-12));
}

TEST_CASE("md4: the comparison value of spec 12.4") {
  // One masked position, V = N = 4, z_v = cos(v), x0 = 2, S-LIN-MD4 at t = 0.37:
  // w(0.37) = 2.7019722938, -log mu_2 = 2.1146885123, loss 5.7138297704.
  const int N = 4;
  const AbsorbingGenerator<double> gen(N);
  const LinearSchedule<double> sched;
  CHECK(md4_weight(sched, 0.37) == doctest::Approx(2.7019722938).epsilon(5e-10));
  xt::xtensor<int, 2> x0 = {{2}}, xt = {{N}};
  xt::xtensor<double, 1> t = {0.37};
  xt::xtensor<double, 3> z = xt::xtensor<double, 3>::from_shape({1, 1, std::size_t(N)});
  for (int v = 0; v < N; ++v) z(0, 0, v) = std::cos(v);
  const auto r = md4_loss(gen, sched, x0, xt, t, z, Md4Options{false, false});
  CHECK(r.position_loss(0, 0) == doctest::Approx(5.7138297704).epsilon(5e-10));
  CHECK(r.loss(0) == doctest::Approx(5.7138297704).epsilon(5e-10));
  CHECK(r.position_loss(0, 0) / md4_weight(sched, 0.37) == doctest::Approx(2.1146885123).epsilon(5e-10));
}

TEST_CASE("md4: discrete time with T steps (code and paper variants)") {
  const int N = 5, B = 4, L = 3, T = 10;
  const AbsorbingGenerator<double> gen(N);
  const LinearSchedule<double> sched;
  // Step mapping of the MD4 code: i = floor(tau T) + 1.
  CHECK(md4_discrete_step(0.0, T, Md4DiscreteVariant::code) == 1);
  CHECK(md4_discrete_step(0.999999, T, Md4DiscreteVariant::code) == T);
  CHECK(md4_discrete_step(0.35, T, Md4DiscreteVariant::code) == 4);
  CHECK(md4_discrete_step(0.0, T, Md4DiscreteVariant::paper) == 2);
  CHECK(md4_discrete_step(0.999999, T, Md4DiscreteVariant::paper) == T);
  // The weight T (alpha_s - alpha_t)/(1 - alpha_t); code form T expm1(gamma_t - gamma_s) alpha_s
  // with gamma = log(alpha/(1 - alpha)), and the limit T -> inf is w(t).
  for (int i : {1, 2, 5, 10}) {
    const double tt = double(i) / T, ss = double(i - 1) / T;
    const double want = T * (sched.alpha(ss) - sched.alpha(tt)) / sched.one_minus_alpha(tt);
    const double gt = std::log(sched.alpha(tt) / sched.one_minus_alpha(tt));
    const double gs = std::log(sched.alpha(ss) / sched.one_minus_alpha(ss));
    CHECK(md4_discrete_weight(sched, i, T, Md4DiscreteVariant::code) == doctest::Approx(want).epsilon(1e-13));
    CHECK(want == doctest::Approx(-T * std::expm1(gt - gs) * sched.alpha(ss)).epsilon(1e-12));
    CHECK(md4_discrete_weight(sched, i, T, Md4DiscreteVariant::paper) ==
          doctest::Approx(want * (T - 1) / T).epsilon(1e-13));
  }
  const int big = 1000000, ib = 370000;
  CHECK(md4_discrete_weight(sched, ib, big, Md4DiscreteVariant::code) ==
        doctest::Approx(sched.elbo_weight(0.37)).epsilon(1e-5));
  // S-LIN-MD4 is linear in t, so T (alpha_s - alpha_t) = -alpha' exactly and the discrete weight
  // is w(t_i) at the step's right end t_i = i/T (not at the midpoint). Cancellation-free for
  // large T near t = 1 (alpha small) and near t = 0 (alpha near 1): at t = 1 the step's
  // s = 1 - 1/T carries a rounding error of 1e-16 relative to 1/T = 1e-8 (hence 1e-7).
  const int huge = 100000000;
  CHECK(md4_discrete_weight(sched, huge, huge, Md4DiscreteVariant::code) ==
        doctest::Approx(sched.elbo_weight(1.0)).epsilon(1e-7));
  CHECK(md4_discrete_weight(sched, 2, huge, Md4DiscreteVariant::code) ==
        doctest::Approx(sched.elbo_weight(2.0 / huge)).epsilon(1e-10));
  for (int i : {1, 7, 55}) {
    const double tt = double(i) / 64;
    CHECK(md4_discrete_weight(sched, i, 64, Md4DiscreteVariant::code) ==
          doctest::Approx(sched.elbo_weight(tt)).epsilon(1e-13));
  }
  // For a non-linear alpha the weight is the mean of -alpha' over the step divided by
  // 1 - alpha_t; for S-COS-MD4 (|alpha'| and w decreasing) it lies between w(t_i) and w(s_i).
  const CosineSchedule<double> cosine;
  for (int i : {2, 5, 9}) {
    const double wd = md4_discrete_weight(cosine, i, T, Md4DiscreteVariant::code);
    CHECK(wd >= cosine.elbo_weight(double(i) / T));
    CHECK(wd <= cosine.elbo_weight(double(i - 1) / T));
  }

  xt::xtensor<int, 1> step = {1, 3, 7, 10};
  for (auto variant : {Md4DiscreteVariant::code, Md4DiscreteVariant::paper}) {
    if (variant == Md4DiscreteVariant::paper) step(0) = 2;
    Batch bt = make_batch(gen, sched, B, L, N, 77);
    for (int b = 0; b < B; ++b)
      for (int l = 0; l < L; ++l) {
        CounterRng r(5, 1, static_cast<std::uint64_t>(b * L + l));
        bt.xt(b, l) = gen.sample_forward(bt.x0(b, l), sched.sigma_bar(double(step(b)) / T), r);
      }
    bt.xt(0, 0) = N;
    auto f = [&](const xt::xtensor<double, 3>& z) {
      return md4_discrete_loss(gen, sched, bt.x0, bt.xt, step, T, z, variant);
    };
    check_fd(f, bt.z);
    const auto r = f(bt.z);
    const double rec_t = variant == Md4DiscreteVariant::code ? 0.0 : 1.0 / T;
    const double cst = L * (sched.one_minus_alpha(rec_t) + sched.alpha(1.0)) * std::log(N);
    for (int b = 0; b < B; ++b) {
      const double w = md4_discrete_weight(sched, step(b), T, variant);
      double want = cst;
      for (int l = 0; l < L; ++l) {
        const double* zr = bt.z.data() + (b * L + l) * N;
        if (bt.xt(b, l) == N) want += w * (math::logsumexp(zr, N) - zr[bt.x0(b, l)]);
      }
      CHECK(close(r.loss(b), want, 1e-13));
    }
  }
}

TEST_CASE("md4: the ELBO is SEDD's DWDSE under the mean parameterisation (spec 5.3)") {
  // sigma [ sum_b s_b - r_a log s_a + K(r_a) ] = w(t) (-log mu_a) with s = mu/expm1(u).
  const int N = 6;
  const AbsorbingGenerator<double> gen(N);
  const LogLinearSchedule<double> sched;
  std::mt19937_64 rng(4);
  std::normal_distribution<double> nd(0.0, 1.0);
  for (double t : {0.01, 0.3, 0.9}) {
    const double u = sched.sigma_bar(t), sigma = sched.sigma(t);
    std::vector<double> z(N), mu(N), lam(N + 1, 0.0), g(N + 1), gz(N);
    for (auto& v : z) v = nd(rng);
    softmax(z.data(), N, mu.data());
    for (int b = 0; b < N; ++b) lam[b] = std::log(mu[b] / std::expm1(u));
    for (int a = 0; a < N; ++a) {
      const double e = sedd_position(gen, lam.data(), N + 1, N, a, u, 1.0, g.data());
      const double ce = softmax_xent_row(z.data(), N, N, a, 1.0, gz.data());
      CHECK(sigma * e == doctest::Approx(sched.elbo_weight(t) * ce).epsilon(1e-12));
    }
  }
}
