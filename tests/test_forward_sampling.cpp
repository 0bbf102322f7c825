// Forward corruption (ops/forward_corrupt.hpp) is distributed as the exact transition
// column: chi-squared goodness of fit (Boost.Math p-values, fixed seeds, 1e6 draws per
// case, bins with expected count < 5 pooled) for every generator, sigma_bar in
// {1e-3, 0.5, 3}, N in {5, 27}, several x0. The draws come from the kernel itself (one row
// of L = 1e6 copies of x0), so this also tests the kernel's per-element counters.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <boost/math/distributions/chi_squared.hpp>

#include <discdiff/exec/executor.hpp>
#include <discdiff/generator/absorbing.hpp>
#include <discdiff/generator/dense.hpp>
#include <discdiff/generator/roulette.hpp>
#include <discdiff/generator/state_dependent.hpp>
#include <discdiff/generator/uniform.hpp>
#include <discdiff/ops/forward_corrupt.hpp>

#include "tolerances.hpp"

using namespace discdiff;

namespace {

constexpr std::int64_t kDraws = 1000000;
constexpr std::uint64_t kSeed = 20240611u;
constexpr double kMinExpected = 5.0;

struct Chi2 {
  double stat = 0;
  int df = 0;
  double pvalue = 1;
  std::int64_t impossible = 0;  ///< draws that landed on a state of probability 0
};

/// Pearson's chi-squared of observed counts against probabilities p (sum 1) for n draws.
/// States of probability 0 are excluded (and counted in `impossible`); every state with
/// expected count < 5 is pooled into one bin, which joins the smallest regular bin if it
/// is still below 5.
Chi2 chi_squared_gof(const std::vector<std::int64_t>& counts, const std::vector<double>& p,
                     std::int64_t n) {
  Chi2 r;
  std::vector<double> exp_bins, obs_bins;
  double pool_e = 0, pool_o = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (p[k] <= 0) {
      r.impossible += counts[k];
      continue;
    }
    const double e = p[k] * static_cast<double>(n);
    if (e < kMinExpected) {
      pool_e += e;
      pool_o += static_cast<double>(counts[k]);
    } else {
      exp_bins.push_back(e);
      obs_bins.push_back(static_cast<double>(counts[k]));
    }
  }
  if (pool_e > 0) {
    if (pool_e >= kMinExpected || exp_bins.empty()) {
      exp_bins.push_back(pool_e);
      obs_bins.push_back(pool_o);
    } else {
      const auto it = std::min_element(exp_bins.begin(), exp_bins.end());
      const auto k = it - exp_bins.begin();
      exp_bins[k] += pool_e;
      obs_bins[k] += pool_o;
    }
  }
  for (std::size_t k = 0; k < exp_bins.size(); ++k) {
    const double d = obs_bins[k] - exp_bins[k];
    r.stat += d * d / exp_bins[k];
  }
  r.df = static_cast<int>(exp_bins.size()) - 1;
  if (r.df >= 1) {
    boost::math::chi_squared dist(r.df);
    r.pvalue = boost::math::cdf(boost::math::complement(dist, r.stat));
  } else {
    r.pvalue = obs_bins.empty() || obs_bins[0] == static_cast<double>(n) ? 1.0 : 0.0;
  }
  return r;
}

std::vector<std::int64_t> histogram(const std::vector<int>& xt, int num_states) {
  std::vector<std::int64_t> c(static_cast<std::size_t>(num_states), 0);
  std::int64_t out_of_range = 0;
  for (int v : xt) {
    if (v < 0 || v >= num_states)
      ++out_of_range;
    else
      ++c[static_cast<std::size_t>(v)];
  }
  REQUIRE(out_of_range == 0);
  return c;
}

void check_fit(const std::string& label, const std::vector<int>& xt, const std::vector<double>& p,
               int num_states) {
  const Chi2 r = chi_squared_gof(histogram(xt, num_states), p, kDraws);
  INFO(label, ": chi2 = ", r.stat, ", df = ", r.df, ", p-value = ", r.pvalue);
  CHECK(r.impossible == 0);
  CHECK(r.pvalue > test::chi2_min_pvalue);
}

std::uint32_t g_stream = 1000;  // a fresh counter stream for every case

/// Scalar-noise generator: sample with the kernel (generator in Tsample), compare with the
/// exact column of the double-precision generator.
template <class GenS, class GenD>
void fit_scalar(const std::string& name, const GenS& gs, const GenD& gd, int x0, double u) {
  using TS = typename GenS::value_type;
  const int D = gd.num_states();
  std::vector<int> x(kDraws, x0), xt(kDraws, -1);
  const TS us = static_cast<TS>(u);
  forward_corrupt_raw(OpenMPExecutor{}, gs, x.data(), 1, kDraws, &us, xt.data(), kSeed,
                      g_stream++);
  std::vector<double> p(static_cast<std::size_t>(D));
  gd.transition_column(x0, u, p.data());
  check_fit(name + " N=" + std::to_string(gd.num_regular()) + " x0=" + std::to_string(x0) +
                " u=" + std::to_string(u),
            xt, p, D);
}

template <class T>
void fit_all_scalar(const char* tname, const std::vector<int>& sizes) {
  for (int N : sizes)
    for (double u : {1e-3, 0.5, 3.0})
      for (int x0 : {0, N - 1}) {
        CAPTURE(tname);
        fit_scalar("uniform", UniformGenerator<T>(N), UniformGenerator<double>(N), x0, u);
        fit_scalar("absorbing", AbsorbingGenerator<T>(N), AbsorbingGenerator<double>(N), x0, u);
        for (double pm : {0.3, 0.95})
          fit_scalar("roulette p_m=" + std::to_string(pm), RouletteGenerator<T>(N, T(pm)),
                     RouletteGenerator<double>(N, pm), x0, u);
      }
}

}  // namespace

TEST_CASE("chi-squared fit: the pooling helper") {
  // Exact counts give chi2 = 0 and p = 1; tiny bins are pooled; impossible draws are counted.
  const std::vector<double> p{0.5, 0.3, 0.2 - 2e-6, 1e-6, 1e-6, 0.0};
  const std::vector<std::int64_t> c{500000, 300000, 199998, 1, 1, 0};
  const Chi2 r = chi_squared_gof(c, p, 1000000);
  CHECK(r.df == 2);  // the two 1e-6 bins (expected 1 each) join the smallest bin
  CHECK(r.stat == doctest::Approx(0.0).epsilon(1e-12));
  CHECK(r.pvalue == doctest::Approx(1.0));
  std::vector<std::int64_t> c2 = c;
  c2[5] = 3;
  CHECK(chi_squared_gof(c2, p, 1000000).impossible == 3);
  // A clearly wrong distribution is rejected.
  const std::vector<std::int64_t> bad{520000, 290000, 189998, 1, 1, 0};
  CHECK(chi_squared_gof(bad, p, 1000000).pvalue < 1e-10);
}

TEST_CASE("forward corruption matches the transition column (double)") {
  fit_all_scalar<double>("double", {5, 27});
}

TEST_CASE("forward corruption matches the transition column (float sampling)") {
  fit_all_scalar<float>("float", {27});
}

TEST_CASE("forward corruption from MASK stays MASK") {
  const int N = 27;
  const std::int64_t n = 10000;
  std::vector<int> x(n, N), xt(n, -1), xs(n, -1);
  const double u = 0.5;
  forward_corrupt_raw(SequentialExecutor{}, AbsorbingGenerator<double>(N), x.data(), 1, n, &u,
                      xt.data(), kSeed, 1u);
  CHECK(std::count(xt.begin(), xt.end(), N) == n);
  forward_corrupt_raw(SequentialExecutor{}, RouletteGenerator<double>(N, 0.3), x.data(), 1, n, &u,
                      xt.data(), kSeed, 1u);
  CHECK(std::count(xt.begin(), xt.end(), N) == n);
  const std::vector<double> ubar(N, 0.5);
  forward_corrupt_raw(SequentialExecutor{}, StateDependentMaskingGenerator<double>(N), x.data(), 1,
                      n, ubar.data(), 0, xs.data(), kSeed, 1u);
  CHECK(std::count(xs.begin(), xs.end(), N) == n);
}

TEST_CASE("state-dependent masking matches the transition column (shared and per-row ubar)") {
  for (int N : {5, 27})
    for (double s : {1e-3, 0.5, 3.0}) {
      // Per-token noises around s, different for every token: the kernel must read ubar[x0].
      std::vector<double> ubar(static_cast<std::size_t>(N));
      for (int v = 0; v < N; ++v) ubar[v] = s * (0.5 + double(v) / N);
      const StateDependentMaskingGenerator<double> gd(N);
      for (int x0 : {0, N - 1}) {
        std::vector<int> x(kDraws, x0), xt(kDraws, -1);
        forward_corrupt_raw(OpenMPExecutor{}, gd, x.data(), 1, kDraws, ubar.data(), 0, xt.data(),
                            kSeed, g_stream++);
        std::vector<double> p(static_cast<std::size_t>(N + 1));
        gd.transition_column(x0, ubar.data(), p.data());
        check_fit("state-dependent N=" + std::to_string(N) + " x0=" + std::to_string(x0) +
                      " s=" + std::to_string(s),
                  xt, p, N + 1);
      }
    }
  // A B x N table (stride N): row b of 4 rows uses its own vector; x0 = 2 everywhere.
  const int N = 5;
  const std::int64_t B = 4, L = kDraws / B;
  std::vector<float> table(static_cast<std::size_t>(B * N));
  for (std::int64_t b = 0; b < B; ++b)
    for (int v = 0; v < N; ++v) table[b * N + v] = float(0.05 * (b + 1) * (v + 1));
  std::vector<int> x(static_cast<std::size_t>(B * L), 2), xt(x.size(), -1);
  forward_corrupt_raw(OpenMPExecutor{}, StateDependentMaskingGenerator<float>(N), x.data(), B, L,
                      table.data(), N, xt.data(), kSeed, g_stream++);
  for (std::int64_t b = 0; b < B; ++b) {
    const std::vector<int> row(xt.begin() + b * L, xt.begin() + (b + 1) * L);
    const double u = table[b * N + 2];
    std::vector<double> p(N + 1, 0.0);
    p[2] = std::exp(-u);
    p[N] = -std::expm1(-u);
    const Chi2 r = chi_squared_gof(histogram(row, N + 1), p, L);
    INFO("row ", b, ": chi2 = ", r.stat, ", p-value = ", r.pvalue);
    CHECK(r.impossible == 0);
    CHECK(r.pvalue > test::chi2_min_pvalue);
  }
}

TEST_CASE("forward corruption with the dense oracle (SequentialExecutor) matches roulette") {
  // The dense generator caches P_u (mutable state), so it runs on SequentialExecutor only.
  const int N = 5;
  const RouletteGenerator<double> rou(N, 0.3);
  DenseGenerator<double>::Matrix q(N + 1, N + 1);
  for (int y = 0; y <= N; ++y)
    for (int x = 0; x <= N; ++x) q(y, x) = rou.rate(y, x);
  const DenseGenerator<double> dense(q, N);
  for (double u : {1e-3, 0.5, 3.0}) {
    std::vector<int> x(kDraws, 1), xt(kDraws, -1);
    forward_corrupt_raw(SequentialExecutor{}, dense, x.data(), 1, kDraws, &u, xt.data(), kSeed,
                        g_stream++);
    std::vector<double> p(N + 1);
    rou.transition_column(1, u, p.data());
    check_fit("dense(roulette 0.3) N=5 x0=1 u=" + std::to_string(u), xt, p, N + 1);
  }
}
