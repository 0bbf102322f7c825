// Cross-entropy objectives: CEDD / CEDD* (objective/cedd.hpp, spec/MATH.md 5.2) and the MD4 /
// MDLM ELBO in continuous and discrete time (objective/md4.hpp, spec 5.3): weights, positions,
// the fused row kernel against its naive twin, central finite differences of every gradient
// through the validated batch drivers, the MD4 spot value of spec 12.4, and the exact equivalence
// of MD4's ELBO with SEDD's DWDSE under the mean parameterisation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
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

// ------------------------------------------------------------------ exp_fast and the SSE2 row kernel

namespace {

/// |got - want| in units of the last place of want in T (the subnormal spacing below the
/// smallest normal number); want in long double (64-bit significand).
template <class T>
double ulp_error(T got, long double want) {
  int e = 0;
  std::frexp(want, &e);
  const long double ulp =
      std::max<long double>(std::ldexp(1.0L, e - std::numeric_limits<T>::digits),
                            std::numeric_limits<T>::denorm_min());
  return static_cast<double>(std::abs(static_cast<long double>(got) - want) / ulp);
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

/// exp_fast against long double exp on dense grids of [lo, hi] (the whole range, where the
/// result goes from 0 through the subnormal numbers to +inf), of [-1, 1] and of the subnormal
/// range [sub_lo, sub_hi]; the SSE2 vector form gives the same bits as the scalar one.
template <class T>
void check_exp_fast(T lo, T hi, T sub_lo, T sub_hi) {
  double worst_normal = 0, worst_sub = 0;
  int n_inf = 0, n_not_inf = 0, n_zero = 0, n_sub = 0;
  std::vector<T> xs;
  auto grid = [&](T a, T b, int n) {
    for (int i = 0; i <= n; ++i) xs.push_back(a + (b - a) * (static_cast<T>(i) / static_cast<T>(n)));
  };
  grid(lo, hi, 1 << 20);
  grid(T(-1), T(1), 1 << 18);
  grid(sub_lo, sub_hi, 1 << 18);
  for (T x : xs) {
    const long double want = std::exp(static_cast<long double>(x));
    const T got = detail::obj::exp_fast(x);
    if (want > static_cast<long double>(std::numeric_limits<T>::max())) {
      ++n_inf;
      n_not_inf += !(got == std::numeric_limits<T>::infinity());  // overflow gives +inf
      continue;
    }
    const double err = ulp_error(got, want);
    if (want < static_cast<long double>(std::numeric_limits<T>::min())) {
      worst_sub = std::max(worst_sub, err);
      n_sub += got > T(0);
      n_zero += got == T(0);
    } else {
      worst_normal = std::max(worst_normal, err);
    }
  }
  CAPTURE(worst_normal);
  CAPTURE(worst_sub);
  CHECK(worst_normal <= 1.5);  // measured here: 1.005; 1.008 on a 2e7-point grid
  CHECK(worst_sub <= 1.0);     // one rounding into the subnormal numbers (measured 0.75)
  CHECK(n_not_inf == 0);
  CHECK(n_inf > 100);  // the grids reach overflow, gradual underflow and 0
  CHECK(n_sub > 100);
  CHECK(n_zero > 100);
#if DD_OBJ_SSE2 && !defined(__FMA__)
  int mismatches = 0;
  for (std::size_t i = 0; i + 4 <= xs.size(); i += 4) {
    T out[4];
    if constexpr (std::is_same<T, float>::value) {
      _mm_storeu_ps(out, detail::obj::exp_fast_ps(_mm_loadu_ps(&xs[i])));
    } else {
      _mm_storeu_pd(out, detail::obj::exp_fast_pd(_mm_loadu_pd(&xs[i])));
      _mm_storeu_pd(out + 2, detail::obj::exp_fast_pd(_mm_loadu_pd(&xs[i + 2])));
    }
    for (int j = 0; j < 4; ++j) mismatches += !same_bits(out[j], detail::obj::exp_fast(xs[i + j]));
  }
  CHECK(mismatches == 0);
#endif
  const T inf = std::numeric_limits<T>::infinity();
  CHECK(same_bits(detail::obj::exp_fast(T(0)), T(1)));
  CHECK(same_bits(detail::obj::exp_fast(-T(0)), T(1)));
  CHECK(same_bits(detail::obj::exp_fast(-inf), T(0)));
  CHECK(detail::obj::exp_fast(inf) == inf);
  CHECK(std::isnan(detail::obj::exp_fast(std::numeric_limits<T>::quiet_NaN())));
  CHECK(same_bits(detail::obj::exp_fast(-std::numeric_limits<T>::max()), T(0)));
  CHECK(detail::obj::exp_fast(std::numeric_limits<T>::max()) == inf);
}

/// Float and double rows of the softmax tests: Gaussian (sd 3), shifted by 1e4, with ties at
/// the maximum (the target among them or not), spread over [-200, 0] (float: terms underflow
/// to subnormal numbers and 0) or [-800, 0] (double), and one dominant class (f(a) -> 1).
template <class T>
std::vector<T> test_row(int V, int kind, int& a, std::mt19937_64& rng) {
  std::normal_distribution<double> nd(0.0, 3.0);
  std::uniform_real_distribution<double> ud(std::is_same<T, float>::value ? -200.0 : -800.0, 0.0);
  std::vector<T> z(static_cast<std::size_t>(V));
  a = static_cast<int>(rng() % static_cast<std::uint64_t>(V));
  for (auto& v : z) v = static_cast<T>(kind == 3 ? ud(rng) : nd(rng) + (kind == 1 ? 1e4 : 0.0));
  if (kind == 2) {  // three ties at the maximum, the target among them on odd V
    const T mx = *std::max_element(z.begin(), z.end()) + T(1);
    for (int j = 0; j < 3; ++j) z[static_cast<std::size_t>(rng() % static_cast<std::uint64_t>(V))] = mx;
    if (V % 2) z[static_cast<std::size_t>(a)] = mx;
  }
  if (kind == 4) {
    for (auto& v : z) v = T(-30) + static_cast<T>(nd(rng) * 0.1);
    z[static_cast<std::size_t>(a)] = T(0);
  }
  return z;
}

/// softmax_xent_row (and the libm version) against the long double reference, with the
/// first-order rounding bound of the T algorithm (u = unit roundoff of T, d_v = z_v - max,
/// f the softmax): every exp carries ~u (1 + |d_v|/2) (the rounding of d_v), the sum a few u,
/// so with S = sum_{d_v < 0} (2 + |d_v|) f_v
///   |ce - ce*|     <= 4u (|max - z_a| + ce* + S) + denorm_min
///   |g_v - g_v*|   <= 4u |gw| (f_v (3 + |d_v| + S) + [v = a]) + 4 denorm_min max(1, |gw|).
template <class T>
void check_xent_against_long_double(bool libm) {
  const long double u = std::numeric_limits<T>::epsilon() / 2;
  const long double tiny = std::numeric_limits<T>::denorm_min();
  std::mt19937_64 rng(11);
  int rows = 0;
  for (int V : {1, 2, 3, 4, 5, 7, 8, 9, 27, 300, 5001, 50257}) {
    for (int kind = 0; kind < 5; ++kind) {
      if (V == 1 && kind == 2) continue;
      int a = 0;
      std::vector<T> z = test_row<T>(V, kind, a, rng);
      const int nsoft = (kind % 2 && V > 1 && a < V - 1) ? V - 1 : V;  // MASK column excluded
      const T gw = static_cast<T>(0.37 + kind);
      std::vector<T> g(z.size(), T(-7));
      T lse = 0;
      const T ce = libm ? softmax_xent_row_libm(z.data(), nsoft, V, a, gw, g.data(), &lse)
                        : softmax_xent_row(z.data(), nsoft, V, a, gw, g.data(), &lse);
      // reference
      long double mx = z[0];
      for (int v = 0; v < nsoft; ++v) mx = std::max<long double>(mx, z[static_cast<std::size_t>(v)]);
      long double rest = 0;  // sum_v exp(d_v) - 1 = sum_{d_v < 0} exp(d_v) + (ties - 1)
      int ties = 0;
      for (int v = 0; v < nsoft; ++v) {
        const long double d = z[static_cast<std::size_t>(v)] - mx;
        if (d < 0)
          rest += std::exp(d);
        else
          ++ties;
      }
      rest += ties - 1;
      const long double sum = 1 + rest, l1p = std::log1p(rest);
      const long double lse_ref = mx + l1p;
      const long double ce_ref = (mx - z[static_cast<std::size_t>(a)]) + l1p;
      long double S = 0;
      for (int v = 0; v < nsoft; ++v) {
        const long double d = z[static_cast<std::size_t>(v)] - mx;
        if (d < 0) S += (2 + std::abs(d)) * std::exp(d) / sum;  // the maxima are exactly 1
      }
      CAPTURE(V);
      CAPTURE(kind);
      CAPTURE(libm);
      CHECK(std::abs(ce - ce_ref) <= 4 * u * (std::abs(mx - z[static_cast<std::size_t>(a)]) + ce_ref + S) + tiny);
      CHECK(std::abs(lse - lse_ref) <= 4 * u * (std::abs(mx) + l1p + S) + tiny);
      int bad = 0;
      for (int v = 0; v < V; ++v) {
        const std::size_t i = static_cast<std::size_t>(v);
        if (v >= nsoft) {
          bad += g[i] != T(0);
          continue;
        }
        const long double d = z[i] - mx, f = std::exp(d) / sum;
        const long double want = gw * (f - (v == a ? 1 : 0));
        const long double tol = 4 * u * std::abs(gw) * (f * (3 + std::abs(d) + S) + (v == a ? 1 : 0)) +
                                4 * tiny * std::max<long double>(1, std::abs(gw));
        bad += !(std::abs(g[i] - want) <= tol);
      }
      CHECK(bad == 0);
      ++rows;
    }
  }
  CHECK(rows == 59);
}

/// The kernel's results are the same bits for a row wherever it lies in memory (the vector
/// loops do not depend on alignment) and, on SSE2 hosts, the same as the portable loops.
template <class T>
void check_xent_bits() {
  std::mt19937_64 rng(5);
  for (int V : {1, 3, 4, 5, 8, 27, 1001}) {
    for (int kind = 0; kind < 5; ++kind) {
      if (V == 1 && kind == 2) continue;
      int a = 0;
      const std::vector<T> z0 = test_row<T>(V, kind, a, rng);
      std::vector<T> g0(z0.size());
      T lse0 = 0;
      const T ce0 = softmax_xent_row(z0.data(), V, V, a, T(0.7), g0.data(), &lse0);
      for (int off = 1; off < 4; ++off) {
        std::vector<T> zb(z0.size() + 4), gb(z0.size() + 4);
        std::copy(z0.begin(), z0.end(), zb.begin() + off);
        T lse = 0;
        const T ce = softmax_xent_row(zb.data() + off, V, V, a, T(0.7), gb.data() + off, &lse);
        CHECK(same_bits(ce, ce0));
        CHECK(same_bits(lse, lse0));
        CHECK(std::memcmp(gb.data() + off, g0.data(), sizeof(T) * z0.size()) == 0);
      }
#if DD_OBJ_SSE2 && !defined(__FMA__)
      const T mx = detail::obj::row_max_portable(z0.data(), V);
      CHECK(same_bits(detail::obj::row_max(z0.data(), V), mx));
      std::vector<T> e1(z0.size()), e2(z0.size());
      const T r1 = detail::obj::exp_row_ties_simd(z0.data(), V, mx, e1.data());
      const T r2 = detail::obj::exp_row_ties_portable(z0.data(), V, mx, e2.data());
      CHECK(same_bits(r1, r2));
      CHECK(std::memcmp(e1.data(), e2.data(), sizeof(T) * z0.size()) == 0);
#endif
    }
  }
}

}  // namespace

TEST_CASE("exp_fast: within 1.5 ulps of long double exp over the whole range, underflow, overflow") {
  // float: 0 below -103.98, subnormal results below -87.34, +inf above 88.73.
  check_exp_fast<float>(-110.0f, 89.0f, -104.0f, -87.0f);
  // double: 0 below -745.14, subnormal results below -708.40, +inf above 709.79.
  check_exp_fast<double>(-760.0, 710.0, -746.0, -708.0);
}

TEST_CASE("softmax_xent_row: vectorised exp_fast kernel and the libm version against long double") {
  check_xent_against_long_double<float>(false);
  check_xent_against_long_double<double>(false);
  check_xent_against_long_double<float>(true);
  check_xent_against_long_double<double>(true);
}

TEST_CASE("softmax_xent_row: bit-identical wherever the row lies; SSE2 == portable loops") {
  check_xent_bits<float>();
  check_xent_bits<double>();
}
