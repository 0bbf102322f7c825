// The validated batch API of the objectives (objective/checked_xt.hpp): every objective's
// gradient through its batch driver against central finite differences for each generator, the
// OpenMP executor against the sequential one (bit for bit), float against double, and bad input
// (NaN / Inf outputs throw instead of giving a NaN loss; shape and vocabulary mismatches name both
// sizes; tokens, times and steps out of range; x_t unreachable from x_0).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <discdiff/exec/openmp.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/objective/checked_xt.hpp>
#include <discdiff/schedule/schedules.hpp>

#include "tolerances.hpp"

using namespace discdiff;

namespace {

template <class T>
struct Data {
  xt::xtensor<int, 2> x0, xt;
  xt::xtensor<T, 1> t;
  xt::xtensor<T, 3> z;
};

/// x0 regular, xt ~ P_u[., x0] at u = sbar(t_b) (forward sampling), Gaussian outputs.
template <class Gen, class Sched>
Data<double> make_data(const Gen& gen, const Sched& sched, int B, int L, int V, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Data<double> d;
  d.x0 = xt::xtensor<int, 2>::from_shape({std::size_t(B), std::size_t(L)});
  d.xt = d.x0;
  d.t = xt::xtensor<double, 1>::from_shape({std::size_t(B)});
  d.z = xt::xtensor<double, 3>::from_shape({std::size_t(B), std::size_t(L), std::size_t(V)});
  for (int b = 0; b < B; ++b) d.t(b) = 0.1 + 0.85 * (b + 0.5) / B;
  for (int b = 0; b < B; ++b)
    for (int l = 0; l < L; ++l) {
      d.x0(b, l) = static_cast<int>(rng() % std::uint64_t(gen.num_regular()));
      CounterRng r(seed, 3, static_cast<std::uint64_t>(b * L + l));
      d.xt(b, l) = gen.sample_forward(d.x0(b, l), sched.sigma_bar(d.t(b)), r);
    }
  if (gen.num_states() > gen.num_regular()) d.xt(0, 0) = gen.mask();
  for (auto& v : d.z) v = nd(rng);
  return d;
}

/// Central finite differences of sum_b loss_b against grad (grad_scale = 1).
void check_fd(const std::function<LossResult<double>(const xt::xtensor<double, 3>&)>& f,
              xt::xtensor<double, 3> z) {
  const auto base = f(z);
  double scale = 0;
  for (double g : base.grad) scale = std::max(scale, std::abs(g));
  REQUIRE(scale > 0);
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double h = 1e-5, z0 = z.data()[i];
    double s[2];
    for (int k = 0; k < 2; ++k) {
      z.data()[i] = z0 + (k ? -h : h);
      s[k] = 0;
      for (double v : f(z).loss) s[k] += v;
    }
    z.data()[i] = z0;
    CAPTURE(i);
    CHECK(std::abs((s[0] - s[1]) / (2 * h) - base.grad.data()[i]) <= test::fd_rel_tol * scale);
  }
}

template <class T>
void check_same(const LossResult<T>& a, const LossResult<T>& b) {
  REQUIRE(a.grad.size() == b.grad.size());
  for (std::size_t i = 0; i < a.loss.size(); ++i) CHECK(a.loss(i) == b.loss(i));
  for (std::size_t i = 0; i < a.position_loss.size(); ++i)
    CHECK(a.position_loss.data()[i] == b.position_loss.data()[i]);
  for (std::size_t i = 0; i < a.grad.size(); ++i) CHECK(a.grad.data()[i] == b.grad.data()[i]);
}

std::string message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no throw";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("objectives: batch gradients match finite differences for each generator") {
  const int N = 4, B = 3, L = 3;
  const UniformGenerator<double> uni(N);
  const AbsorbingGenerator<double> abs(N);
  const RouletteGenerator<double> rou(N, 0.9);
  const GeometricSchedule<double> geo(1e-4, 20.0);
  const LogLinearSchedule<double> loglin;
  const RouletteLogLinearSchedule<double> rsched(0.9);
  auto all = [&](const auto& gen, const auto& sched) {
    const int D = gen.num_states();
    CAPTURE(std::string(gen.name));
    // SEDD (with and without K, with the log-score head).
    const auto d = make_data(gen, sched, B, L, D, 5);
    for (int variant = 0; variant < 3; ++variant) {
      SeddOptions opt;
      opt.include_k = variant != 1;
      opt.log_score_head = variant == 2;
      check_fd([&](const xt::xtensor<double, 3>& z) {
        return sedd_loss(gen, sched, d.x0, d.xt, d.t, z, opt);
      }, d.z);
    }
    // CEDD and CEDD*.
    for (CeddVariant var : {CeddVariant::cedd, CeddVariant::cedd_star})
      check_fd([&](const xt::xtensor<double, 3>& z) {
        return cedd_loss(gen, sched, d.x0, d.xt, d.t, z, var);
      }, d.z);
  };
  all(uni, geo);
  all(abs, loglin);
  all(rou, rsched);
  // MD4 (absorbing only), continuous and discrete time.
  const auto d = make_data(abs, loglin, B, L, N, 6);
  check_fd([&](const xt::xtensor<double, 3>& z) {
    return md4_loss(abs, loglin, d.x0, d.xt, d.t, z);
  }, d.z);
  const xt::xtensor<int, 1> step = {3, 7, 10};
  Data<double> dd = d;
  for (int b = 0; b < B; ++b)
    for (int l = 0; l < L; ++l) {
      CounterRng r(9, 1, static_cast<std::uint64_t>(b * L + l));
      dd.xt(b, l) = abs.sample_forward(dd.x0(b, l), loglin.sigma_bar(step(b) / 10.0), r);
    }
  dd.xt(0, 0) = N;
  check_fd([&](const xt::xtensor<double, 3>& z) {
    return md4_discrete_loss(abs, loglin, dd.x0, dd.xt, step, 10, z);
  }, dd.z);
}

TEST_CASE("objectives: the positions that carry a loss (spec 5.2, 5.3, 5.5)") {
  // CEDD: masked positions only for absorbing, every position for uniform and roulette; SEDD:
  // the absorbing DWDSE vanishes at unmasked positions, roulette and uniform count every one.
  const int N = 5, B = 2, L = 6;
  const AbsorbingGenerator<double> abs(N);
  const RouletteGenerator<double> rou(N, 0.9);
  const UniformGenerator<double> uni(N);
  const LogLinearSchedule<double> loglin;
  const RouletteLogLinearSchedule<double> rsched(0.9);
  const GeometricSchedule<double> geo(1e-4, 20.0);
  auto count = [](const xt::xtensor<double, 2>& pos) {
    int c = 0;
    for (double v : pos) c += v != 0.0;
    return c;
  };
  const auto da = make_data(abs, loglin, B, L, N + 1, 1);
  int masked = 0;
  for (int v : da.xt) masked += v == N;
  REQUIRE(masked > 0);
  REQUIRE(masked < B * L);
  CHECK(count(cedd_loss(abs, loglin, da.x0, da.xt, da.t, da.z).position_loss) == masked);
  CHECK(count(sedd_loss(abs, loglin, da.x0, da.xt, da.t, da.z).position_loss) == masked);
  CHECK(count(md4_loss(abs, loglin, da.x0, da.xt, da.t, da.z).position_loss) == masked);
  const auto dr = make_data(rou, rsched, B, L, N + 1, 2);
  CHECK(count(cedd_loss(rou, rsched, dr.x0, dr.xt, dr.t, dr.z).position_loss) == B * L);
  CHECK(count(sedd_loss(rou, rsched, dr.x0, dr.xt, dr.t, dr.z).position_loss) == B * L);
  const auto du = make_data(uni, geo, B, L, N, 3);
  CHECK(count(cedd_loss(uni, geo, du.x0, du.xt, du.t, du.z).position_loss) == B * L);
  CHECK(count(sedd_loss(uni, geo, du.x0, du.xt, du.t, du.z).position_loss) == B * L);
}

TEST_CASE("objectives: OpenMP executor == sequential, bit for bit; float tracks double") {
  const int N = 30, B = 4, L = 9;
  const RouletteGenerator<double> rou(N, 0.95);
  const AbsorbingGenerator<double> abs(N);
  const RouletteLogLinearSchedule<double> rsched(0.95);
  const LogLinearSchedule<double> loglin;
  const OpenMPExecutor omp{3};
  const SequentialExecutor seq;
  const auto dr = make_data(rou, rsched, B, L, N + 1, 11);
  check_same(sedd_loss(rou, rsched, dr.x0, dr.xt, dr.t, dr.z, {}, 0.25, seq),
             sedd_loss(rou, rsched, dr.x0, dr.xt, dr.t, dr.z, {}, 0.25, omp));
  check_same(cedd_loss(rou, rsched, dr.x0, dr.xt, dr.t, dr.z, CeddVariant::cedd_star, 0.25, seq),
             cedd_loss(rou, rsched, dr.x0, dr.xt, dr.t, dr.z, CeddVariant::cedd_star, 0.25, omp));
  const auto da = make_data(abs, loglin, B, L, N, 12);
  check_same(md4_loss(abs, loglin, da.x0, da.xt, da.t, da.z, {}, 0.25, seq),
             md4_loss(abs, loglin, da.x0, da.xt, da.t, da.z, {}, 0.25, omp));

  // float: the same batch in single precision agrees with double to float accuracy.
  const RouletteGenerator<float> rouf(N, 0.95f);
  const RouletteLogLinearSchedule<float> rschedf(0.95f);
  const xt::xtensor<float, 1> tf = xt::cast<float>(dr.t);
  const xt::xtensor<float, 3> zf = xt::cast<float>(dr.z);
  const auto rd = sedd_loss(rou, rsched, dr.x0, dr.xt, dr.t, dr.z);
  const auto rf = sedd_loss(rouf, rschedf, dr.x0, dr.xt, tf, zf);
  const auto cd = cedd_loss(rou, rsched, dr.x0, dr.xt, dr.t, dr.z);
  const auto cf = cedd_loss(rouf, rschedf, dr.x0, dr.xt, tf, zf);
  for (int b = 0; b < B; ++b) {
    CHECK(std::abs(rf.loss(b) - rd.loss(b)) <= 1e-5 * std::abs(rd.loss(b)));
    CHECK(std::abs(cf.loss(b) - cd.loss(b)) <= 1e-5 * std::abs(cd.loss(b)));
  }
}

TEST_CASE("objectives: NaN or Inf outputs throw (never a NaN loss), naming the entry") {
  const int N = 4;
  const AbsorbingGenerator<double> abs(N);
  const RouletteGenerator<double> rou(N, 0.9);
  const LogLinearSchedule<double> loglin;
  const RouletteLogLinearSchedule<double> rsched(0.9);
  auto d = make_data(abs, loglin, 2, 3, N + 1, 1);
  auto dr = make_data(rou, rsched, 2, 3, N + 1, 1);
  const xt::xtensor<int, 1> step = {4, 9};
  for (double bad : {std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    CAPTURE(bad);
    d.z(1, 2, 3) = bad;
    dr.z(1, 2, 3) = bad;
    // The bad entry sits at an unmasked absorbing position too: still rejected.
    const std::string m1 = message([&] { cedd_loss(abs, loglin, d.x0, d.xt, d.t, d.z); });
    CHECK(has(m1, "logits[1,2,3]"));
    CHECK(has(m1, "finite"));
    CHECK(has(message([&] { sedd_loss(rou, rsched, dr.x0, dr.xt, dr.t, dr.z); }), "outputs[1,2,3]"));
    CHECK(has(message([&] { md4_loss(abs, loglin, d.x0, d.xt, d.t, d.z); }), "logits[1,2,3]"));
    CHECK(has(message([&] { md4_discrete_loss(abs, loglin, d.x0, d.xt, step, 10, d.z); }),
              "logits[1,2,3]"));
    const PerTokenPolynomialSchedule<double> gs(N);
    xt::xtensor<int, 2> z1 = d.x0;
    z1(0, 0) = N;
    xt::xtensor<double, 3> l1 = xt::zeros<double>({2, 3, N}), l2 = l1;
    l2(0, 1, 2) = bad;
    CHECK(has(message([&] { genmd4_loss(gs, d.x0, z1, z1, l1, l2, d.t); }), "logits2[0,1,2]"));
  }
  // Huge but finite logits are fine: the loss is finite.
  auto dh = make_data(rou, rsched, 2, 3, N + 1, 2);
  for (auto& v : dh.z) v *= 1e3;
  const auto r = cedd_loss(rou, rsched, dh.x0, dh.xt, dh.t, dh.z);
  for (double v : r.loss) CHECK(std::isfinite(v));
  for (double v : r.grad) CHECK(std::isfinite(v));
  const auto rs = sedd_loss(rou, rsched, dh.x0, dh.xt, dh.t, xt::xtensor<double, 3>(dh.z * 1e-3 * 50));
  for (double v : rs.loss) CHECK(std::isfinite(v));
}

TEST_CASE("objectives: shape and vocabulary mismatches name both sizes") {
  const int N = 4;
  const AbsorbingGenerator<double> abs(N);
  const UniformGenerator<double> uni(N);
  const LogLinearSchedule<double> loglin;
  const GeometricSchedule<double> geo(1e-4, 20.0);
  const auto d = make_data(abs, loglin, 2, 3, N + 1, 1);
  // Vocabulary: SEDD needs D = 5 outputs.
  const xt::xtensor<double, 3> z6 = xt::zeros<double>({2, 3, 6});
  std::string m = message([&] { sedd_loss(abs, loglin, d.x0, d.xt, d.t, z6); });
  CHECK(has(m, "outputs.shape()[2] = 6"));
  CHECK(has(m, "D = 5"));
  // CEDD accepts N or D; MD4 accepts N or D.
  m = message([&] { cedd_loss(abs, loglin, d.x0, d.xt, d.t, z6); });
  CHECK(has(m, "logits.shape()[2] = 6"));
  CHECK(has(m, "D = 5"));
  CHECK(has(m, "N = 4"));
  m = message([&] { md4_loss(abs, loglin, d.x0, d.xt, d.t, z6); });
  CHECK(has(m, "= 6"));
  CHECK(has(m, "N = 4"));
  // Uniform has no MASK: D = N = 4 only.
  const auto du = make_data(uni, geo, 2, 3, N, 1);
  m = message([&] { cedd_loss(uni, geo, du.x0, du.xt, du.t, d.z); });
  CHECK(has(m, "= 5"));
  CHECK(has(m, "D = 4"));
  // Batch shapes.
  const xt::xtensor<int, 2> xt_bad = xt::zeros<int>({2, 4});
  m = message([&] { cedd_loss(abs, loglin, d.x0, xt_bad, d.t, d.z); });
  CHECK(has(m, "xt.shape() = 2 x 4"));
  CHECK(has(m, "x0.shape() = 2 x 3"));
  const xt::xtensor<double, 3> z_bad = xt::zeros<double>({3, 3, N + 1});
  m = message([&] { sedd_loss(abs, loglin, d.x0, d.xt, d.t, z_bad); });
  CHECK(has(m, "3 x 3 x 5"));
  CHECK(has(m, "2 x 3"));
  const xt::xtensor<double, 1> t3 = {0.5, 0.5, 0.5};
  m = message([&] { md4_loss(abs, loglin, d.x0, d.xt, t3, d.z); });
  CHECK(has(m, "t.size() = 3"));
  CHECK(has(m, "B = 2"));
  const xt::xtensor<int, 1> step3 = {1, 2, 3};
  m = message([&] { md4_discrete_loss(abs, loglin, d.x0, d.xt, step3, 10, d.z); });
  CHECK(has(m, "step.size() = 3"));
  CHECK(has(m, "B = 2"));
  // GenMD4: both draws and both logits.
  const PerTokenPolynomialSchedule<double> gs(N);
  xt::xtensor<double, 3> l = xt::zeros<double>({2, 3, N});
  const xt::xtensor<double, 3> l5 = xt::zeros<double>({2, 3, N + 1});
  const xt::xtensor<double, 3> l7 = xt::zeros<double>({2, 3, 7});
  m = message([&] { genmd4_loss(gs, d.x0, d.x0, d.x0, l, l5, d.t); });
  CHECK(has(m, "logits2.shape()[2] = 5"));
  CHECK(has(m, "logits1.shape()[2] = 4"));
  m = message([&] { genmd4_loss(gs, d.x0, d.x0, d.x0, l7, l7, d.t); });
  CHECK(has(m, "= 7"));
  CHECK(has(m, "N = 4"));
  m = message([&] { genmd4_loss(gs, d.x0, xt_bad, d.x0, l, l, d.t); });
  CHECK(has(m, "z1.shape() = 2 x 4"));
  CHECK(has(m, "2 x 3"));
  const PerTokenPolynomialSchedule<double> gs5(5);
  m = message([&] { genmd4_loss(gs5, d.x0, d.x0, d.x0, l, l, d.t); });
  CHECK(has(m, "= 4"));
  CHECK(has(m, "N = 5"));
}

TEST_CASE("objectives: tokens, times and steps out of range; xt unreachable from x0") {
  const int N = 4;
  const AbsorbingGenerator<double> abs(N);
  const LogLinearSchedule<double> loglin;
  auto d = make_data(abs, loglin, 2, 3, N + 1, 1);
  // x0 must be regular.
  auto x0 = d.x0;
  x0(1, 1) = N;
  CHECK(has(message([&] { cedd_loss(abs, loglin, x0, d.xt, d.t, d.z); }), "x0[1,1] = 4"));
  auto xt = d.xt;
  xt(0, 2) = N + 1;
  CHECK(has(message([&] { cedd_loss(abs, loglin, d.x0, xt, d.t, d.z); }), "xt[0,2] = 5"));
  // Absorbing: an unmasked xt must equal x0.
  xt = d.xt;
  xt(0, 1) = (d.x0(0, 1) + 1) % N;
  const std::string m = message([&] { sedd_loss(abs, loglin, d.x0, xt, d.t, d.z); });
  CHECK(has(m, "xt[0,1]"));
  CHECK(has(m, "cannot come from x_0"));
  // Times in (0, 1].
  for (double bad : {0.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    auto t = d.t;
    t(1) = bad;
    CHECK(has(message([&] { md4_loss(abs, loglin, d.x0, d.xt, t, d.z); }), "t[1]"));
    CHECK(has(message([&] { sedd_loss(abs, loglin, d.x0, d.xt, t, d.z); }), "t[1]"));
  }
  // Discrete steps: 1..T (code), 2..T (paper); T >= 1 or 2.
  const xt::xtensor<int, 1> s0 = {0, 3}, s11 = {1, 11}, s1 = {1, 5};
  xt::xtensor<double, 3> zn = xt::zeros<double>({2, 3, N});
  auto dm = d;
  dm.xt = d.x0;  // unmasked everywhere: reachable at every step
  CHECK(has(message([&] { md4_discrete_loss(abs, loglin, dm.x0, dm.xt, s0, 10, zn); }), "step[0] = 0"));
  CHECK(has(message([&] { md4_discrete_loss(abs, loglin, dm.x0, dm.xt, s11, 10, zn); }), "step[1] = 11"));
  CHECK(has(message([&] {
              md4_discrete_loss(abs, loglin, dm.x0, dm.xt, s1, 10, zn, Md4DiscreteVariant::paper);
            }),
            "step[0] = 1"));
  CHECK(has(message([&] {
              md4_discrete_loss(abs, loglin, dm.x0, dm.xt, s1, 1, zn, Md4DiscreteVariant::paper);
            }),
            "nsteps = 1"));
  // GenMD4: draws hold x0 or MASK; t in [t_1, 1].
  const PerTokenPolynomialSchedule<double> gs(N);
  auto z1 = d.x0;
  z1(1, 0) = (d.x0(1, 0) + 1) % N;
  CHECK(has(message([&] { genmd4_loss(gs, d.x0, z1, d.x0, zn, zn, d.t); }), "z1[1,0]"));
  auto tg = d.t;
  tg(0) = 1e-4;
  CHECK(has(message([&] { genmd4_loss(gs, d.x0, d.x0, d.x0, zn, zn, tg); }), "t[0]"));
}
