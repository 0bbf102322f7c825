// The reverse integration of the exact verifier (bound/exact_integrators.hpp,
// bound/exact_theorems.hpp) at very small noise (issue 13, part 1): a NaN anywhere in the
// Dormand-Prince solve is an error naming the component, never skipped; the relative error
// control keeps probabilities of order 1e-30 positive and accurate (checked against closed forms
// and against the forward marginals, q_u = p_u for the exact denoiser started at p_T); Theorem A
// holds on absorbing problems with u_min ~ 1e-8 and L = 4, where the absolute control produced
// a negative all-MASK probability and a NaN.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <discdiff/bound/exact.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/schedule/schedules.hpp>

using namespace discdiff;
using namespace discdiff::exact;

namespace {

std::int64_t ipow(int b, int e) {
  std::int64_t r = 1;
  for (int i = 0; i < e; ++i) r *= b;
  return r;
}

// Runs dormand_prince45 and returns the message of the std::runtime_error it throws ("" if none).
template <class F>
std::string ode_error(F&& f, std::vector<double> y, const OdeOptions& opt = {}) {
  try {
    dormand_prince45(f, 0.0, 1.0, y, opt);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("exact: a NaN planted in one ODE component is an error that names it") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::size_t bad : {std::size_t(0), std::size_t(2), std::size_t(4)}) {
    for (double t_bad : {0.0, 0.37, 0.999}) {
      CAPTURE(bad);
      CAPTURE(t_bad);
      // A smooth linear system; from t_bad on one derivative is NaN (at t_bad = 0: from the
      // first evaluation). The NaN would be invisible to max(err, NaN) = err.
      auto f = [&](double t, const std::vector<double>& y, std::vector<double>& dy) {
        for (std::size_t j = 0; j < y.size(); ++j) dy[j] = -(1.0 + j) * y[j];
        if (t >= t_bad) dy[bad] = nan;
      };
      const std::string msg = ode_error(f, std::vector<double>(5, 1.0));
      CHECK(msg.find("non-finite") != std::string::npos);
      CHECK(msg.find("component " + std::to_string(bad) + " ") != std::string::npos);
    }
  }
  // +inf is non-finite too (an overflowing right-hand side).
  auto g = [](double t, const std::vector<double>& y, std::vector<double>& dy) {
    dy[0] = -y[0];
    dy[1] = t > 0.5 ? std::numeric_limits<double>::infinity() : 0.0;
  };
  CHECK(ode_error(g, {1.0, 1.0}).find("component 1 ") != std::string::npos);
  // The same system without the NaN integrates to the closed form.
  auto h = [](double, const std::vector<double>& y, std::vector<double>& dy) {
    for (std::size_t j = 0; j < y.size(); ++j) dy[j] = -(1.0 + j) * y[j];
  };
  std::vector<double> y(5, 1.0);
  dormand_prince45(h, 0.0, 1.0, y, OdeOptions{1e-12, 1e-14, 0.0, 100000});
  for (std::size_t j = 0; j < 5; ++j) CHECK(std::abs(y[j] - std::exp(-(1.0 + j))) <= 1e-11);
  // Bad options and initial values are named.
  OdeOptions bad_atol;
  bad_atol.atol_per_component = {1e-14, 1e-14};
  CHECK_THROWS_AS(dormand_prince45(h, 0.0, 1.0, y, bad_atol), std::invalid_argument);
  OdeOptions bad_nonneg;
  bad_nonneg.nonnegative = 6;
  CHECK_THROWS_AS(dormand_prince45(h, 0.0, 1.0, y, bad_nonneg), std::invalid_argument);
  std::vector<double> ynan{1.0, nan};
  CHECK_THROWS_AS(dormand_prince45(h, 0.0, 1.0, ynan), std::invalid_argument);
  // NaN-aware maxima: the vector quadrature's norm and max_or_nan.
  QuadVec<3> v(1.0);
  v[1] = nan;
  CHECK(std::isnan(abs(v)));
  CHECK(std::isnan(max_or_nan(1.0, nan)));
  CHECK(std::isnan(max_or_nan(nan, 1.0)));
  CHECK(max_or_nan(1.0, 2.0) == 2.0);
}

TEST_CASE("exact: relative error control keeps tiny probabilities positive and accurate") {
  // Two-state chain p' = -k p, r' = k p: p(1) = e^{-k} (down to 1e-35), r = -expm1(-k t).
  for (double k : {20.0, 45.0, 80.0}) {
    CAPTURE(k);
    auto f = [k](double, const std::vector<double>& y, std::vector<double>& dy) {
      dy[0] = -k * y[0];
      dy[1] = k * y[0];
    };
    OdeOptions rel{1e-10, 1e-14, 0.0, 1000000};
    rel.atol_per_component = {1e-300, 1e-300};
    rel.nonnegative = 2;
    std::vector<double> y{1.0, 0.0};
    dormand_prince45(f, 0.0, 1.0, y, rel);
    CHECK(y[0] > 0.0);
    CHECK(std::abs(y[0] / std::exp(-k) - 1.0) <= 1e-7);
    CHECK(std::abs(y[1] + std::expm1(-k)) <= 1e-9);
  }
}

TEST_CASE("exact: exact denoiser from p_T at u_min = 1e-8: q_eps = p_eps to relative accuracy") {
  // q_u = p_u exactly; with L = 4 the all-MASK (absorbing, roulette) probability at u_min = 1e-8
  // is ~1e-32, far below any absolute tolerance: only relative control resolves it.
  const ReverseStart start{StartReference::limit, 0.0};
  const double u0 = 1e-8, u1 = 6.9;
  for (std::uint64_t seed : {3u, 11u}) {
    CAPTURE(seed);
    auto check = [&](const auto& gen, int L) {
      using Gen = std::decay_t<decltype(gen)>;
      const std::vector<double> p0 =
          dirichlet_like(ipow(gen.num_regular(), L), seed, 0, 1.5, 0.01);
      const ExactForward<Gen> fwd(gen, L, p0);
      const ExactBounds r = compute_exact_bounds(fwd, ExactDenoiser{}, u0, u1, start);
      double worst = 0.0, smallest = 1.0;
      for (std::size_t x = 0; x < r.p_eps.size(); ++x) {
        if (!(r.p_eps[x] > 0)) continue;
        smallest = std::min(smallest, r.p_eps[x]);
        REQUIRE(r.q_eps[x] > 0.0);
        worst = max_or_nan(worst, std::abs(r.q_eps[x] / r.p_eps[x] - 1.0));
      }
      CAPTURE(smallest);
      CHECK(worst <= 1e-7);
      CHECK(std::abs(r.kl_eps) <= 1e-12);
      CHECK(std::abs(r.kl_eps - r.thmA_rhs) <= 1e-6);
      return smallest;
    };
    CHECK(check(AbsorbingGenerator<double>(2), 4) < 1e-25);
    CHECK(check(RouletteGenerator<double>(2, 0.6), 4) < 1e-25);
    check(UniformGenerator<double>(2), 4);
  }
}

TEST_CASE("exact: absorbing problems at u_min ~ 2e-8 (S-COS-MDLM, L = 4): finite, Theorem A holds") {
  // The class of `discdiff verify --seed 424242` problem A4 (there N = 4): a smoothed or tilted
  // denoiser, a mixed start, u_min = sbar(t0) of order 1e-8. Before the relative control the
  // all-MASK probability went negative and the correction integrand was NaN.
  const MdlmCosineSchedule<double> sched;
  int count = 0;
  for (int k = 0; k < 4; ++k) {
    const int N = 2, L = 4;  // 81 states: cheap enough for the sanitizer build
    const double t0 = 1.37e-4 * (1 + 0.25 * k);
    const double u0 = sched.sigma_bar(t0), u1 = sched.sigma_bar(1.0);
    CAPTURE(k);
    CAPTURE(u0);
    CHECK(u0 < 1e-7);
    const AbsorbingGenerator<double> gen(N);
    const ExactForward<AbsorbingGenerator<double>> fwd(
        gen, L, dirichlet_like(ipow(N, L), 424242, static_cast<std::uint32_t>(k), 2.0, 0.0));
    const ReverseStart start{k % 2 ? StartReference::masked_prior : StartReference::limit,
                             1.0 / 3.0 + 0.1 * k};
    auto check = [&](const ExactBounds& r) {
      CHECK(std::isfinite(r.kl_eps));
      CHECK(std::isfinite(r.thmA_rhs));
      CHECK(std::abs(r.kl_eps - r.thmA_rhs) <= 1e-6);     // Theorem A
      CHECK(r.kl_eps <= r.thmB_bound + 1e-9);             // Theorem B
      CHECK(std::abs(r.h_eps - r.thmC_rhs) <= 1e-6);      // Theorem C
      CHECK(std::abs(r.j2 - r.j1 - r.eh_eps) <= 1e-8);    // 6.6
      for (std::size_t x = 0; x < r.q_eps.size(); ++x)
        if (r.p_eps[x] > 0) CHECK(r.q_eps[x] > 0.0);
      ++count;
    };
    if (k % 2 == 0) check(compute_exact_bounds(fwd, SmoothedDenoiser{0.175 + 0.05 * k}, u0, u1, start));
    else
      check(compute_exact_bounds(
          fwd, TiltedDenoiser<CounterNoise>{CounterNoise{77, static_cast<std::uint32_t>(k)}, 0.5},
          u0, u1, start));
  }
  CHECK(count == 4);
}
