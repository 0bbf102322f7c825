// Exact reverse-chain sampling by uniformization / thinning (sampler/uniformization.hpp, spec
// 10.2) with the exact posterior denoiser: the draws (1e5 sequences, N = 3 or 4, L = 2 or 3,
// random data distributions from fixed seeds) pass chi-squared tests against the exact forward
// marginal p_{t_min}(x) = sum_{x_0} p_data(x_0) prod_j P_u[x^j, x_0^j] (u = sbar(t_min), computed
// by enumeration), for the uniform, absorbing and roulette generators, with zero bound
// violations; conditioned on a fixed position (absorbing), against the exact conditional; and the
// rate bounds dominate the actual rates.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/math/distributions/chi_squared.hpp>

#include <discdiff/exec/executor.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>

#include "tolerances.hpp"

using namespace discdiff;

namespace {

constexpr std::int64_t kSamples = 100000;

std::int64_t ipow(int a, int b) {
  std::int64_t r = 1;
  for (int i = 0; i < b; ++i) r *= a;
  return r;
}

std::vector<double> random_distribution(std::int64_t size, std::uint64_t seed) {
  std::vector<double> p(static_cast<std::size_t>(size));
  double s = 0;
  for (std::int64_t k = 0; k < size; ++k) {
    p[static_cast<std::size_t>(k)] =
        -std::log(uniform<double>(seed, 78u, static_cast<std::uint64_t>(k)) + 1e-300) + 1e-3;
    s += p[static_cast<std::size_t>(k)];
  }
  for (double& v : p) v /= s;
  return p;
}

/// p_u over D^L: sum over clean x_0 (N^L) of p_data(x_0) prod_j P_u[x^j, x_0^j]; states with
/// `fixed_pos` >= 0 not equal to `fixed_val` get 0 and the rest is renormalised (conditional).
template <class Gen>
std::vector<double> exact_marginal(const Gen& gen, int L, const std::vector<double>& p, double u,
                                   int fixed_pos = -1, int fixed_val = 0) {
  const int N = gen.num_regular(), D = gen.num_states();
  const std::int64_t S = ipow(D, L), C = ipow(N, L);
  std::vector<double> q(static_cast<std::size_t>(S), 0.0);
  std::vector<int> xs(static_cast<std::size_t>(L)), x0(static_cast<std::size_t>(L));
  for (std::int64_t s = 0; s < S; ++s) {
    std::int64_t r = s;
    for (int l = L - 1; l >= 0; --l) {
      xs[static_cast<std::size_t>(l)] = static_cast<int>(r % D);
      r /= D;
    }
    if (fixed_pos >= 0 && xs[static_cast<std::size_t>(fixed_pos)] != fixed_val) continue;
    double acc = 0;
    for (std::int64_t c = 0; c < C; ++c) {
      std::int64_t rc = c;
      for (int l = L - 1; l >= 0; --l) {
        x0[static_cast<std::size_t>(l)] = static_cast<int>(rc % N);
        rc /= N;
      }
      if (fixed_pos >= 0 && x0[static_cast<std::size_t>(fixed_pos)] != fixed_val) continue;
      double w = p[static_cast<std::size_t>(c)];
      for (int l = 0; l < L; ++l)
        if (l != fixed_pos) w *= gen.transition(xs[static_cast<std::size_t>(l)], x0[static_cast<std::size_t>(l)], u);
      acc += w;
    }
    q[static_cast<std::size_t>(s)] = acc;
  }
  double z = 0;
  for (double v : q) z += v;
  for (double& v : q) v /= z;
  return q;
}

void check_chi2(const std::string& label, const std::vector<int>& x, int L, int radix,
                const std::vector<double>& p) {
  std::vector<std::int64_t> c(p.size(), 0);
  std::int64_t bad = 0;
  const std::int64_t n = static_cast<std::int64_t>(x.size()) / L;
  for (std::int64_t b = 0; b < n; ++b) {
    std::int64_t k = 0;
    bool ok = true;
    for (int l = 0; l < L; ++l) {
      const int v = x[static_cast<std::size_t>(b * L + l)];
      ok = ok && v >= 0 && v < radix;
      k = k * radix + v;
    }
    if (ok)
      ++c[static_cast<std::size_t>(k)];
    else
      ++bad;
  }
  double stat = 0, pool_e = 0, pool_o = 0;
  int bins = 0;
  std::int64_t impossible = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (p[k] <= 1e-15) {
      impossible += c[k];
      continue;
    }
    const double e = p[k] * static_cast<double>(n), o = static_cast<double>(c[k]);
    if (e < 5) {
      pool_e += e;
      pool_o += o;
      continue;
    }
    stat += (o - e) * (o - e) / e;
    ++bins;
  }
  if (pool_e > 0) {
    stat += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
    ++bins;
  }
  const int df = bins - 1;
  REQUIRE(df >= 1);
  const double pv =
      boost::math::cdf(boost::math::complement(boost::math::chi_squared(df), stat));
  INFO(label, ": chi2 = ", stat, ", df = ", df, ", p-value = ", pv, ", impossible = ", impossible);
  CHECK(bad == 0);
  CHECK(impossible == 0);
  CHECK(pv > test::chi2_min_pvalue);
}

}  // namespace

TEST_CASE("uniformization: exact draws of p_{t_min} for uniform, absorbing and roulette") {
  auto run = [](const auto& gen, const auto& sched, int L, std::uint64_t seed, const char* name) {
    using Gen = std::decay_t<decltype(gen)>;
    const int N = gen.num_regular();
    const auto p = random_distribution(ipow(N, L), seed);
    const ExactPosteriorDenoiser<Gen> den(gen, L, p);
    UniformizationOptions o;
    o.t_min = 1e-3;
    o.seed = seed;
    o.intervals = 100;
    std::vector<int> x;
    const auto st = sample_uniformization(SequentialExecutor{}, gen, sched, den, o, kSamples, L, x);
    MESSAGE(std::string(name), ": rounds = ", st.rounds, ", proposals / row = ",
            static_cast<double>(st.proposals) / kSamples, ", jumps / row = ",
            static_cast<double>(st.jumps) / kSamples, ", violations = ", st.violations);
    CHECK(st.violations == 0);
    CHECK(st.jumps > 0);
    check_chi2(name, x, L, gen.num_states(),
               exact_marginal(gen, L, p, static_cast<double>(sched.sigma_bar(o.t_min))));
  };
  run(AbsorbingGenerator<double>(4), LogLinearSchedule<double>(), 2, 11, "absorbing N=4 L=2");
  // S-LOGLIN: sbar(1) = -log(1e-3), so pi differs from p_1 by O(1e-3) in TV (far below the
  // chi-squared resolution of 1e5 draws); the reverse chain then has about half the events of a
  // geometric schedule up to sbar = 20.
  run(UniformGenerator<double>(3), LogLinearSchedule<double>(), 2, 12, "uniform N=3 L=2");
  run(RouletteGenerator<double>(3, 0.9), RouletteLogLinearSchedule<double>(0.9), 2, 13,
      "roulette N=3 L=2");
}

TEST_CASE("uniformization: a fixed position never moves; the free ones follow the conditional") {
  const int N = 3, L = 3;
  const AbsorbingGenerator<double> gen(N);
  const auto p = random_distribution(ipow(N, L), 99);
  const ExactPosteriorDenoiser<AbsorbingGenerator<double>> den(gen, L, p);
  const LogLinearSchedule<double> sched;
  const Conditioning cond = infill_conditioning(kSamples, L, {1}, {2});
  UniformizationOptions o;
  o.t_min = 1e-3;
  o.seed = 5;
  o.intervals = 100;
  std::vector<int> x;
  const auto st = sample_uniformization(SequentialExecutor{}, gen, sched, den, o, kSamples, L, x, &cond);
  CHECK(st.violations == 0);
  std::int64_t moved = 0;
  for (std::int64_t b = 0; b < kSamples; ++b) moved += x[static_cast<std::size_t>(b * L + 1)] != 2;
  CHECK(moved == 0);
  check_chi2("absorbing conditioned on x^1 = 2", x, L, N + 1,
             exact_marginal(gen, L, p, sched.sigma_bar(o.t_min), 1, 2));
}

TEST_CASE("uniformization: the per-position rate bound dominates the rate of every posterior") {
  // rate(x, f) = sum_{b != x} Q[x,b] s_b(f) in the u variable is linear in f, so its supremum is
  // attained at a point mass f = e_h: check the bound against every vertex and random f.
  auto check = [](const auto& gen, const char* name) {
    const int N = gen.num_regular(), D = gen.num_states();
    for (double u : {1e-4, 0.01, 0.3, 2.0, 9.0}) {
      const double bound = uniformization_rate_bound(gen, u);
      double worst = 0;
      for (int x = 0; x < D; ++x)
        for (int h = 0; h <= N; ++h) {
          std::vector<double> f(static_cast<std::size_t>(N), h == N ? 1.0 / N : 0.0);
          if (h < N) f[static_cast<std::size_t>(h)] = 1.0;
          const double fx = x < N ? f[static_cast<std::size_t>(x)] : 0.0;
          const double R = 1.0 - fx;
          TauStep st;
          st.method = TauMethod::euler;
          st.u = u;
          st.h = 1.0;
          const TauCoefficients c = tau_leaping_coefficients(gen, st, x, fx, R);
          if (c.stay) continue;
          double rate = 0;
          for (int b = 0; b < N; ++b)
            if (b != x) rate += c.c0 + c.c1 * f[static_cast<std::size_t>(b)];
          worst = std::max(worst, rate);
        }
      CAPTURE(name);
      CAPTURE(u);
      CHECK(worst <= bound * (1 + 1e-12));
      CHECK(worst >= 0.5 * bound);  // and the bound is not loose by more than 2x
    }
  };
  check(UniformGenerator<double>(4), "uniform");
  check(AbsorbingGenerator<double>(4), "absorbing");
  check(RouletteGenerator<double>(4, 0.9), "roulette 0.9");
  check(RouletteGenerator<double>(4, 0.2), "roulette 0.2");
}
