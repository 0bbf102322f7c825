// Samplers (include/discdiff/sampler/) against exact references on small problems (N <= 5,
// L <= 3, random data distributions from fixed seeds):
//   * the per-position tau-leaping weights (closed forms of kernels.hpp) == the naive route
//     through the generic posterior-to-score identity (score/probs_to_score.hpp,
//     probs_to_score_naive), gen.apply_exp (staggered score) and gen.transition (spec 9.1, 9.2);
//   * an exact propagation of the sampler's Markov kernel over all D^L states, built from those
//     naive formulas, gives the exact output distribution of every grid sampler with the exact
//     posterior denoiser: MD4 ancestral and GenMD4 are exact for L = 1 and product data (to 1e-12),
//     NOT for correlated positions that unmask in the same step (the TV is measured, and shrinks
//     with the step count); Euler and analytic tau-leaping converge as the steps grow (the TV
//     table of docs/math/samplers.md, < 0.02 at 1024 steps);
//   * the samplers' draws (1e5 sequences) pass chi-squared tests against p_data (exact cases) or
//     against the propagated distribution (every case);
//   * cached ancestral == ancestral bit for bit with fewer network evaluations; top-p / top-k
//     truncation; infilling and semi-autoregressive continuation against exact conditionals.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/math/distributions/chi_squared.hpp>

#include <discdiff/exec/executor.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>
#include <discdiff/score/probs_to_score.hpp>

#include "tolerances.hpp"

using namespace discdiff;

namespace {

constexpr std::int64_t kSamples = 100000;

// ---------------------------------------------------------------- statistics helpers

struct Chi2 {
  double stat = 0;
  int df = 0;
  double pvalue = 1;
  std::int64_t impossible = 0;
};

/// Pearson's chi-squared of counts against p (bins with expected count < 5 pooled).
Chi2 chi_squared_gof(const std::vector<std::int64_t>& counts, const std::vector<double>& p,
                     std::int64_t n) {
  Chi2 r;
  std::vector<double> e_bins, o_bins;
  double pe = 0, po = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (p[k] <= 1e-15) {
      r.impossible += counts[k];
      continue;
    }
    const double e = p[k] * static_cast<double>(n);
    if (e < 5) {
      pe += e;
      po += static_cast<double>(counts[k]);
    } else {
      e_bins.push_back(e);
      o_bins.push_back(static_cast<double>(counts[k]));
    }
  }
  if (pe > 0) {
    e_bins.push_back(pe);
    o_bins.push_back(po);
  }
  for (std::size_t k = 0; k < e_bins.size(); ++k)
    r.stat += (o_bins[k] - e_bins[k]) * (o_bins[k] - e_bins[k]) / e_bins[k];
  r.df = static_cast<int>(e_bins.size()) - 1;
  if (r.df >= 1) {
    boost::math::chi_squared dist(r.df);
    r.pvalue = boost::math::cdf(boost::math::complement(dist, r.stat));
  }
  return r;
}

/// Index of a sequence in radix `radix` (position 0 most significant).
std::int64_t seq_index(const int* x, std::int64_t L, int radix) {
  std::int64_t k = 0;
  for (std::int64_t l = 0; l < L; ++l) k = k * radix + x[l];
  return k;
}

std::int64_t ipow(int a, int b) {
  std::int64_t r = 1;
  for (int i = 0; i < b; ++i) r *= a;
  return r;
}

/// Histogram of B sequences of length L over radix^L states.
std::vector<std::int64_t> histogram(const std::vector<int>& x, std::int64_t L, int radix) {
  std::vector<std::int64_t> c(static_cast<std::size_t>(ipow(radix, static_cast<int>(L))), 0);
  std::int64_t bad = 0;
  for (std::size_t b = 0; b * L < x.size(); ++b) {
    bool ok = true;
    for (std::int64_t l = 0; l < L; ++l) ok = ok && x[b * L + l] >= 0 && x[b * L + l] < radix;
    if (!ok) {
      ++bad;
      continue;
    }
    ++c[static_cast<std::size_t>(seq_index(x.data() + b * L, L, radix))];
  }
  CHECK(bad == 0);
  return c;
}

void check_chi2(const std::string& label, const std::vector<int>& x, std::int64_t L, int radix,
                const std::vector<double>& p) {
  const auto h = histogram(x, L, radix);
  const Chi2 r = chi_squared_gof(h, p, static_cast<std::int64_t>(x.size()) / L);
  INFO(label, ": chi2 = ", r.stat, ", df = ", r.df, ", p-value = ", r.pvalue,
       ", draws on impossible states = ", r.impossible);
  CHECK(r.impossible == 0);
  CHECK(r.pvalue > test::chi2_min_pvalue);
}

/// Dirichlet(1) random distribution of `size` states (full support) from a fixed seed.
std::vector<double> random_distribution(std::int64_t size, std::uint64_t seed) {
  std::vector<double> p(static_cast<std::size_t>(size));
  double s = 0;
  for (std::int64_t k = 0; k < size; ++k) {
    p[static_cast<std::size_t>(k)] = -std::log(uniform<double>(seed, 77u, static_cast<std::uint64_t>(k)) + 1e-300) + 1e-3;
    s += p[static_cast<std::size_t>(k)];
  }
  for (double& v : p) v /= s;
  return p;
}

/// A product distribution over N^L with random per-position marginals.
std::vector<double> product_distribution(int N, int L, std::uint64_t seed) {
  std::vector<std::vector<double>> m;
  for (int l = 0; l < L; ++l) m.push_back(random_distribution(N, seed + 101u * l));
  std::vector<double> p(static_cast<std::size_t>(ipow(N, L)));
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(p.size()); ++k) {
    std::int64_t r = k;
    double w = 1;
    for (int l = L - 1; l >= 0; --l) {
      w *= m[static_cast<std::size_t>(l)][static_cast<std::size_t>(r % N)];
      r /= N;
    }
    p[static_cast<std::size_t>(k)] = w;
  }
  return p;
}

/// p over N^L embedded into D^L (regular tokens only).
std::vector<double> embed(const std::vector<double>& p, int N, int D, int L) {
  std::vector<double> q(static_cast<std::size_t>(ipow(D, L)), 0.0);
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(p.size()); ++k) {
    std::int64_t r = k, j = 0, mul = 1;
    for (int l = L - 1; l >= 0; --l) {
      j += (r % N) * mul;
      r /= N;
      mul *= D;
    }
    q[static_cast<std::size_t>(j)] = p[static_cast<std::size_t>(k)];
  }
  return q;
}

double tv(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t k = 0; k < a.size(); ++k) s += std::abs(a[k] - b[k]);
  return 0.5 * s;
}

// ---------------------------------------------------------------- exact propagation

/// Per-position step distribution q[D] of position l given the state and the logits of that
/// state (L x K): the naive reference formula of one sampler step.
using StepProbs = std::function<void(const int* x, const double* logits, int l, double* q)>;

/// Propagates a distribution over D^L through one sampler step: one denoiser call on every state
/// at (t, sbar(t)), then the product over positions of the per-position step distributions.
template <class Den>
std::vector<double> propagate(const std::vector<double>& dist, int D, int L, const Den& den,
                              double t, double sbar, bool with_sbar, const StepProbs& step) {
  const std::int64_t S = ipow(D, L);
  std::vector<int> xs(static_cast<std::size_t>(S * L));
  for (std::int64_t k = 0; k < S; ++k) {
    std::int64_t r = k;
    for (int l = L - 1; l >= 0; --l) {
      xs[static_cast<std::size_t>(k * L + l)] = static_cast<int>(r % D);
      r /= D;
    }
  }
  std::vector<double> tv_(static_cast<std::size_t>(S), t), sv(static_cast<std::size_t>(S), sbar);
  const int K = den.num_classes();
  std::vector<double> logits(static_cast<std::size_t>(S * L * K));
  den(ModelQuery<double>{xs.data(), S, L, tv_.data(), with_sbar ? sv.data() : nullptr}, logits.data());
  std::vector<double> out(static_cast<std::size_t>(S), 0.0), q(static_cast<std::size_t>(L * D));
  for (std::int64_t k = 0; k < S; ++k) {
    const double mass = dist[static_cast<std::size_t>(k)];
    if (mass == 0) continue;
    for (int l = 0; l < L; ++l)
      step(xs.data() + k * L, logits.data() + k * L * K, l, q.data() + l * D);
    for (std::int64_t j = 0; j < S; ++j) {
      double w = mass;
      std::int64_t r = j;
      for (int l = L - 1; l >= 0 && w != 0; --l) {
        w *= q[static_cast<std::size_t>(l * D + r % D)];
        r /= D;
      }
      out[static_cast<std::size_t>(j)] += w;
    }
  }
  return out;
}

std::vector<double> softmax_n(const double* z, int N) {
  double m = z[0];
  for (int v = 1; v < N; ++v) m = std::max(m, z[v]);
  std::vector<double> f(static_cast<std::size_t>(N));
  double s = 0;
  for (int v = 0; v < N; ++v) s += (f[static_cast<std::size_t>(v)] = std::exp(z[v] - m));
  for (double& v : f) v /= s;
  return f;
}

/// Naive tau-leaping step distribution (spec 9.1 / 9.2 / 9.6) through probs_to_score_naive,
/// gen.rate, gen.apply_exp and gen.transition; negative weights clamped, then normalised.
template <class Gen>
void naive_tau_probs(const Gen& gen, TauMethod method, double u, double h, double delta,
                     bool drop_mask, int x, const std::vector<double>& f, double* q) {
  const int N = gen.num_regular(), D = gen.num_states();
  std::vector<double> s(static_cast<std::size_t>(D)), w(static_cast<std::size_t>(D));
  probs_to_score_naive(gen, f.data(), N, x, u, s.data());
  s[static_cast<std::size_t>(x)] = 1;
  if (method == TauMethod::euler) {
    double tot = 0;
    for (int b = 0; b < D; ++b) {
      if (b == x) continue;
      w[static_cast<std::size_t>(b)] = h * gen.rate(x, b) * s[static_cast<std::size_t>(b)];
      tot += w[static_cast<std::size_t>(b)];
    }
    w[static_cast<std::size_t>(x)] = 1 - tot;
  } else {
    std::vector<double> sh(static_cast<std::size_t>(D));
    gen.apply_exp(-delta, s.data(), sh.data());
    for (int b = 0; b < D; ++b)
      w[static_cast<std::size_t>(b)] = sh[static_cast<std::size_t>(b)] * gen.transition(x, b, delta);
  }
  if (drop_mask && gen.has_mask()) w[static_cast<std::size_t>(gen.mask())] = 0;
  double tot = 0;
  for (double& v : w) tot += (v = std::max(v, 0.0));
  for (int b = 0; b < D; ++b) q[b] = tot > 0 ? w[static_cast<std::size_t>(b)] / tot : (b == x ? 1.0 : 0.0);
}

/// The prior pi over D^L (all MASK, or uniform over N^L for the uniform generator).
template <class Gen>
std::vector<double> prior_distribution(const Gen& gen, int L) {
  const int D = gen.num_states();
  std::vector<double> d(static_cast<std::size_t>(ipow(D, L)), 0.0);
  if (gen.has_mask()) {
    d.back() = 1.0;  // all MASK = (D-1, ..., D-1)
  } else {
    for (double& v : d) v = 1.0 / static_cast<double>(d.size());
  }
  return d;
}

/// Exact output distribution of sample() with `opt` (tau-leaping kinds) by propagation.
template <class Gen, class Sched, class Den>
std::vector<double> propagate_tau(const Gen& gen, const Sched& sched, const Den& den,
                                  const SamplerOptions& opt, int L) {
  const int D = gen.num_states(), N = gen.num_regular();
  const auto grid = time_grid(opt.grid, opt.steps, opt.eps);
  auto dist = prior_distribution(gen, L);
  for (int k = 0; k < opt.steps; ++k) {
    const double t = grid[static_cast<std::size_t>(k)], s = grid[static_cast<std::size_t>(k) + 1];
    const double u = sched.sigma_bar(t);
    const double h = (t - s) * sched.sigma(t), delta = u - sched.sigma_bar(s);
    const TauMethod m = opt.kind == SamplerKind::euler ? TauMethod::euler : TauMethod::analytic;
    dist = propagate(dist, D, L, den, t, u, true,
                     [&](const int* x, const double* z, int l, double* q) {
                       naive_tau_probs(gen, m, u, h, delta, false, x[l],
                                       softmax_n(z + l * den.num_classes(), N), q);
                     });
  }
  if (opt.final_step == FinalStep::sample) {
    const double u = sched.sigma_bar(grid.back());
    dist = propagate(dist, D, L, den, grid.back(), u, true,
                     [&](const int* x, const double* z, int l, double* q) {
                       naive_tau_probs(gen, TauMethod::analytic, u, 0, u, true, x[l],
                                       softmax_n(z + l * den.num_classes(), N), q);
                     });
  }
  return dist;
}

/// Exact output distribution of the MD4 ancestral sampler (final step: sample) by propagation.
template <class Sched, class Den>
std::vector<double> propagate_md4(int N, const Sched& sched, const Den& den,
                                  const SamplerOptions& opt, int L) {
  const int D = N + 1;
  const auto grid = time_grid(opt.grid, opt.steps, opt.eps);
  std::vector<double> dist(static_cast<std::size_t>(ipow(D, L)), 0.0);
  dist.back() = 1;
  for (int k = 0; k < opt.steps; ++k) {
    const double t = grid[static_cast<std::size_t>(k)], s = grid[static_cast<std::size_t>(k) + 1];
    const double pu = (sched.alpha(s) - sched.alpha(t)) / (1 - sched.alpha(t));
    dist = propagate(dist, D, L, den, t, sched.sigma_bar(t), true,
                     [&](const int* x, const double* z, int l, double* q) {
                       for (int b = 0; b < D; ++b) q[b] = 0;
                       if (x[l] != N) {
                         q[x[l]] = 1;
                         return;
                       }
                       const auto f = softmax_n(z + l * den.num_classes(), N);
                       for (int b = 0; b < N; ++b) q[b] = pu * f[static_cast<std::size_t>(b)];
                       q[N] = 1 - pu;
                     });
  }
  if (opt.final_step == FinalStep::sample) {
    dist = propagate(dist, D, L, den, grid.back(), sched.sigma_bar(grid.back()), true,
                     [&](const int* x, const double* z, int l, double* q) {
                       for (int b = 0; b < D; ++b) q[b] = 0;
                       if (x[l] != N) {
                         q[x[l]] = 1;
                         return;
                       }
                       const auto f = softmax_n(z + l * den.num_classes(), N);
                       for (int b = 0; b < N; ++b) q[b] = f[static_cast<std::size_t>(b)];
                     });
  }
  return dist;
}

}  // namespace

// ================================================================ per-position weights

TEST_CASE("sampler: tau-leaping closed-form weights == naive probs_to_score + apply_exp route") {
  auto check_gen = [](const auto& gen, const char* name) {
    const int N = gen.num_regular(), D = gen.num_states();
    std::uint64_t idx = 0;
    for (int x = 0; x < D; ++x)
      for (double u : {1e-4, 0.03, 0.7, 4.0})
        for (double frac : {0.01, 0.3, 1.0})
          for (int rep = 0; rep < 3; ++rep) {
            std::vector<double> z(static_cast<std::size_t>(N));
            for (auto& v : z) v = 4 * uniform<double>(9, 3, idx++) - 2;
            if (rep == 2 && x < N) z[static_cast<std::size_t>(x)] = 12;  // f(x) -> 1
            const auto f = softmax_n(z.data(), N);
            double fx = x < N ? f[static_cast<std::size_t>(x)] : 0.0, R = 0;
            for (int h = 0; h < N; ++h)
              if (h != x) R += f[static_cast<std::size_t>(h)];
            for (TauMethod m : {TauMethod::euler, TauMethod::analytic}) {
              TauStep st;
              st.method = m;
              st.u = u;
              st.delta = frac * u;
              st.h = frac * u * 0.9;
              const TauCoefficients c = tau_leaping_coefficients(gen, st, x, fx, R);
              std::vector<double> w(static_cast<std::size_t>(D), 0.0), q(static_cast<std::size_t>(D));
              if (c.stay) {
                w[static_cast<std::size_t>(x)] = 1;
              } else {
                for (int b = 0; b < N; ++b)
                  w[static_cast<std::size_t>(b)] =
                      b == x ? std::max(c.wx, 0.0) : std::max(0.0, c.c0 + c.c1 * f[static_cast<std::size_t>(b)]);
                if (gen.has_mask() && x == N) w[static_cast<std::size_t>(N)] = std::max(c.wx, 0.0);
              }
              double tot = 0;
              for (double v : w) tot += v;
              naive_tau_probs(gen, m, u, st.h, st.delta, false, x, f, q.data());
              for (int b = 0; b < D; ++b) {
                CAPTURE(name);
                CAPTURE(x);
                CAPTURE(u);
                CAPTURE(frac);
                CAPTURE(b);
                CAPTURE(static_cast<int>(m));
                const double mine = w[static_cast<std::size_t>(b)] / tot;
                const double ref = q[static_cast<std::size_t>(b)];
                CHECK(std::abs(mine - ref) <= 1e-9 * std::abs(ref) + 1e-13);
              }
            }
          }
  };
  check_gen(UniformGenerator<double>(4), "uniform");
  check_gen(AbsorbingGenerator<double>(4), "absorbing");
  check_gen(RouletteGenerator<double>(4, 0.9), "roulette 0.9");
  check_gen(RouletteGenerator<double>(3, 0.3), "roulette 0.3");
  check_gen(RouletteGenerator<double>(3, 1.0), "roulette 1.0");
}

// ================================================================ MD4 ancestral

TEST_CASE("sampler: MD4 ancestral with the exact posterior is exact for L = 1 and product data") {
  struct Case {
    const char* name;
    int N, L;
    bool product;
  };
  for (const Case cs : {Case{"L=1 N=5", 5, 1, false}, Case{"product L=3 N=3", 3, 3, true}}) {
    const AbsorbingGenerator<double> gen(cs.N);
    const auto p = cs.product ? product_distribution(cs.N, cs.L, 31) : random_distribution(ipow(cs.N, cs.L), 17);
    const ExactPosteriorDenoiser<AbsorbingGenerator<double>> den(gen, cs.L, p);
    for (int steps : {4, 64}) {
      SamplerOptions o;
      o.kind = SamplerKind::md4_ancestral;
      o.steps = steps;
      o.seed = 1000 + steps;
      o.grid = steps == 4 ? GridKind::uniform : GridKind::cosine;
      o.final_step = FinalStep::sample;
      const LinearSchedule<double> sched;  // alpha(0) = 1 - eta: the final step is exercised
      CAPTURE(cs.name);
      CAPTURE(steps);
      // exact propagation: the output distribution IS p_data
      const auto q = propagate_md4(cs.N, sched, den, o, cs.L);
      CHECK(tv(q, embed(p, cs.N, cs.N + 1, cs.L)) < 1e-12);
      std::vector<int> x;
      const auto st = sample(SequentialExecutor{}, gen, sched, den, o, kSamples, cs.L, x);
      CHECK(st.steps == steps);
      check_chi2(std::string("MD4 ") + cs.name + " steps=" + std::to_string(steps), x, cs.L, cs.N, p);
    }
  }
}

TEST_CASE("sampler: MD4 ancestral with correlated positions is NOT exact; the TV shrinks with steps") {
  // Two correlated positions: when both unmask in the same step they are drawn independently from
  // their marginal posteriors, so the output is not p_data. The exact propagation measures it.
  const int N = 3, L = 2;
  const AbsorbingGenerator<double> gen(N);
  const auto p = random_distribution(ipow(N, L), 5);
  const ExactPosteriorDenoiser<AbsorbingGenerator<double>> den(gen, L, p);
  const LogLinearSchedule<double> sched;
  std::vector<double> tvs;
  for (int steps : {1, 4, 16, 64, 256}) {
    SamplerOptions o;
    o.kind = SamplerKind::md4_ancestral;
    o.steps = steps;
    o.grid = GridKind::uniform;
    const auto q = propagate_md4(N, sched, den, o, L);
    tvs.push_back(tv(q, embed(p, N, N + 1, L)));
    MESSAGE("MD4 ancestral, correlated L = 2, N = 3, uniform grid, steps = ", steps,
            ": exact TV to p_data = ", tvs.back());
  }
  // one step = the product of the marginals (every position unmasks at once)
  CHECK(tvs[0] > 0.01);
  for (std::size_t k = 1; k < tvs.size(); ++k) CHECK(tvs[k] < tvs[k - 1]);
  CHECK(tvs.back() < 0.01 * tvs[0] + 1e-3);
  // the sampler draws from exactly this (non-p_data) distribution
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  o.steps = 4;
  o.grid = GridKind::uniform;
  o.seed = 77;
  std::vector<int> x;
  sample(SequentialExecutor{}, gen, sched, den, o, kSamples, L, x);
  check_chi2("MD4 correlated vs propagated, 4 steps", x, L, N + 1, propagate_md4(N, sched, den, o, L));
}

TEST_CASE("sampler: cached ancestral == ancestral bit for bit, with NFE = 1 + steps after a change") {
  const int N = 4, L = 3;
  const AbsorbingGenerator<double> gen(N);
  const auto p = random_distribution(ipow(N, L), 8);
  const ExactPosteriorDenoiser<AbsorbingGenerator<double>> den(gen, L, p);
  REQUIRE_FALSE(den.time_conditioned());  // absorbing posterior does not depend on t
  const CosineSchedule<double> sched;
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  o.steps = 64;
  o.grid = GridKind::cosine;
  o.seed = 4242;
  o.final_step = FinalStep::argmax;
  const std::int64_t B = 5;  // few rows: many steps change nothing
  std::vector<int> x_plain, x_cached;
  const auto s_plain = sample(SequentialExecutor{}, gen, sched, den, o, B, L, x_plain);
  // changed[k]: step k changed the tokens; the cached sampler calls the denoiser at step 0, at
  // every step that follows a change, and in the final step if MASK remains and the last step
  // changed something (otherwise it reuses the cached output).
  std::vector<int> prev(static_cast<std::size_t>(B * L), N);
  std::vector<bool> changed;
  bool mask_left = false;
  o.kind = SamplerKind::md4_cached;
  const auto s_cached = sample(SequentialExecutor{}, gen, sched, den, o, B, L, x_cached, nullptr,
                               [&](const StepInfo& info) {
                                 std::vector<int> cur(info.x, info.x + info.B * info.L);
                                 if (info.step < o.steps) {
                                   changed.push_back(cur != prev);
                                   if (info.step == o.steps - 1)
                                     mask_left = std::count(cur.begin(), cur.end(), N) > 0;
                                 }
                                 prev = cur;
                               });
  CHECK(x_cached == x_plain);
  CHECK(s_plain.nfe == o.steps + (mask_left ? 1 : 0));
  REQUIRE(changed.size() == static_cast<std::size_t>(o.steps));
  int expected = 1;
  for (int k = 0; k + 1 < o.steps; ++k) expected += changed[static_cast<std::size_t>(k)] ? 1 : 0;
  if (mask_left && changed.back()) ++expected;
  CHECK(s_cached.nfe == expected);
  CHECK(s_cached.nfe < s_plain.nfe);
  MESSAGE("cached ancestral: NFE ", s_cached.nfe, " vs ", s_plain.nfe, " (B = 5, 64 steps)");
}

TEST_CASE("sampler: top-k and top-p truncation of the MD4 kernel") {
  const int N = 5;
  const std::vector<double> z = {0.3, 2.0, -1.0, 1.2, 2.0};  // ties at the top
  const auto f = softmax_n(z.data(), N);
  const std::int64_t n = kSamples;
  std::vector<double> logits(static_cast<std::size_t>(n * N));
  for (std::int64_t i = 0; i < n; ++i) std::copy(z.begin(), z.end(), logits.begin() + i * N);
  std::vector<int> x(static_cast<std::size_t>(n), N), out(static_cast<std::size_t>(n), -1);
  std::vector<double> scratch(logits.size());
  auto run = [&](double top_p, int top_k) {
    SequentialExecutor{}.for_each(n, Md4AncestralKernel<double>{x.data(), logits.data(), N, N, 1.0, top_p,
                                                           top_k, scratch.data(), out.data(), 99, 3});
    return out;
  };
  auto restricted = [&](std::vector<int> keep) {
    std::vector<double> q(static_cast<std::size_t>(N), 0.0);
    double s = 0;
    for (int v : keep) s += f[static_cast<std::size_t>(v)];
    for (int v : keep) q[static_cast<std::size_t>(v)] = f[static_cast<std::size_t>(v)] / s;
    return q;
  };
  // sorted probabilities: {1, 4} (tie), 3, 0, 2
  check_chi2("top-k 1 (ties kept)", run(1.0, 1), 1, N, restricted({1, 4}));
  check_chi2("top-k 3", run(1.0, 3), 1, N, restricted({1, 3, 4}));
  const double p2 = f[1] + f[4];
  check_chi2("top-p just below the top pair", run(p2 - 1e-9, 0), 1, N, restricted({1, 4}));
  check_chi2("top-p just above the top pair", run(p2 + 1e-9, 0), 1, N, restricted({1, 3, 4}));
  check_chi2("no truncation", run(1.0, 0), 1, N, f);
}

// ================================================================ GenMD4

TEST_CASE("sampler: GenMD4 reverse step with the exact posterior is exact (L = 1, product data)") {
  for (int L : {1, 2}) {
    const int N = 4;
    const PerTokenPolynomialSchedule<double> sched(std::vector<double>{-1.0, 0.0, 0.8, 2.0});
    const StateDependentMaskingGenerator<double> gen(N);
    const auto p = L == 1 ? random_distribution(N, 3) : product_distribution(N, L, 12);
    const ExactPosteriorTokenNoiseDenoiser<double> den(sched, L, p);
    SamplerOptions o;
    o.steps = 4;
    o.grid = GridKind::cosine;
    o.seed = 31 + L;
    o.final_step = FinalStep::sample;
    std::vector<int> x;
    const auto st = sample_genmd4(SequentialExecutor{}, gen, sched, den, o, kSamples, L, x);
    CHECK(st.nfe >= o.steps);
    check_chi2("GenMD4 L=" + std::to_string(L), x, L, N, p);
  }
}

// ================================================================ tau-leaping

TEST_CASE("sampler: Euler and analytic tau-leaping converge to p_data (exact TV table)") {
  const int N = 3, L = 2;
  const auto p = random_distribution(ipow(N, L), 21);
  auto run_gen = [&](const auto& gen, const auto& sched, const char* name) {
    using Gen = std::decay_t<decltype(gen)>;
    const ExactPosteriorDenoiser<Gen> den(gen, L, p);
    const auto target = embed(p, N, gen.num_states(), L);
    for (SamplerKind kind : {SamplerKind::euler, SamplerKind::analytic}) {
      const char* kname = kind == SamplerKind::euler ? "euler" : "analytic";
      std::vector<double> tvs;
      std::string row = std::string("| ") + name + " | " + kname + " |";
      for (int steps : {4, 16, 64, 256, 1024}) {
        SamplerOptions o;
        o.kind = kind;
        o.steps = steps;
        o.final_step = FinalStep::sample;
        tvs.push_back(tv(propagate_tau(gen, sched, den, o, L), target));
        row += " " + std::to_string(tvs.back()) + " |";
      }
      MESSAGE(row);
      CAPTURE(name);
      CAPTURE(kname);
      for (std::size_t k = 1; k < tvs.size(); ++k) CHECK(tvs[k] < tvs[k - 1]);
      CHECK(tvs.back() < 0.02);
      // the sampler draws from the propagated distribution (16 steps)
      SamplerOptions o;
      o.kind = kind;
      o.steps = 16;
      o.final_step = FinalStep::sample;
      o.seed = 555;
      std::vector<int> x;
      sample(SequentialExecutor{}, gen, sched, den, o, kSamples, L, x);
      check_chi2(std::string(name) + " " + kname + " 16 steps vs propagated", x, L,
                 gen.num_states(), propagate_tau(gen, sched, den, o, L));
    }
  };
  run_gen(UniformGenerator<double>(N), LogLinearSchedule<double>(), "uniform");
  run_gen(AbsorbingGenerator<double>(N), LogLinearSchedule<double>(), "absorbing");
  run_gen(RouletteGenerator<double>(N, 0.9), RouletteLogLinearSchedule<double>(0.9), "roulette 0.9");
}

// ================================================================ conditioning

TEST_CASE("sampler: infilling keeps fixed positions and samples the exact conditional") {
  const int N = 4, L = 3;
  const AbsorbingGenerator<double> gen(N);
  const auto p = random_distribution(ipow(N, L), 66);
  const ExactPosteriorDenoiser<AbsorbingGenerator<double>> den(gen, L, p);
  const LogLinearSchedule<double> sched;
  const Conditioning cond = infill_conditioning(kSamples, L, {0, 2}, {3, 1});
  // exact conditional of position 1 given x^0 = 3, x^2 = 1
  std::vector<double> q(static_cast<std::size_t>(ipow(N, L)), 0.0);
  double z = 0;
  for (int v = 0; v < N; ++v) z += p[static_cast<std::size_t>(3 * 16 + v * 4 + 1)];
  for (int v = 0; v < N; ++v) q[static_cast<std::size_t>(3 * 16 + v * 4 + 1)] = p[static_cast<std::size_t>(3 * 16 + v * 4 + 1)] / z;
  for (SamplerKind kind : {SamplerKind::md4_ancestral, SamplerKind::analytic}) {
    SamplerOptions o;
    o.kind = kind;
    o.steps = 8;
    o.grid = kind == SamplerKind::analytic ? GridKind::sedd : GridKind::uniform;
    o.final_step = FinalStep::sample;
    o.seed = 9;
    std::int64_t moved = 0;
    std::vector<int> x;
    sample(SequentialExecutor{}, gen, sched, den, o, kSamples, L, x, &cond, [&](const StepInfo& info) {
      for (std::int64_t b = 0; b < info.B; ++b)
        moved += (info.x[b * L] != 3) + (info.x[b * L + 2] != 1);
    });
    CHECK(moved == 0);
    check_chi2(kind == SamplerKind::analytic ? "infill analytic" : "infill MD4", x, L, N, q);
  }
}

TEST_CASE("sampler: semi-autoregressive continuation samples the exact Markov continuation") {
  // p_data over windows of 2 tokens is a stationary Markov pair pi(a) P(a, b); a prompt of one
  // token and stride 1 make every window an exact one-position infill, so the 3 generated tokens
  // follow P from the prompt.
  const int N = 3, L = 2;
  std::vector<double> P(9);
  for (int a = 0; a < N; ++a) {
    const auto row = random_distribution(N, 400 + a);
    for (int b = 0; b < N; ++b) P[static_cast<std::size_t>(a * N + b)] = row[static_cast<std::size_t>(b)];
  }
  // stationary pi by power iteration
  std::vector<double> pi(3, 1.0 / 3);
  for (int it = 0; it < 2000; ++it) {
    std::vector<double> nx(3, 0.0);
    for (int a = 0; a < N; ++a)
      for (int b = 0; b < N; ++b) nx[static_cast<std::size_t>(b)] += pi[static_cast<std::size_t>(a)] * P[static_cast<std::size_t>(a * N + b)];
    pi = nx;
  }
  std::vector<double> pw(9);
  for (int a = 0; a < N; ++a)
    for (int b = 0; b < N; ++b) pw[static_cast<std::size_t>(a * N + b)] = pi[static_cast<std::size_t>(a)] * P[static_cast<std::size_t>(a * N + b)];
  double s = 0;
  for (double v : pw) s += v;
  for (double& v : pw) v /= s;
  const AbsorbingGenerator<double> gen(N);
  const ExactPosteriorDenoiser<AbsorbingGenerator<double>> den(gen, L, pw);
  const LogLinearSchedule<double> sched;
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  o.steps = 4;
  o.grid = GridKind::uniform;
  o.final_step = FinalStep::sample;
  o.seed = 2;
  const int prompt = 2;
  std::vector<int> x;
  const std::int64_t B = kSamples / 2;
  const auto st = sample_semi_autoregressive(SequentialExecutor{}, gen, sched, den, o, B, L, {prompt}, 1, 3, x);
  CHECK(st.nfe >= 3 * 4);
  REQUIRE(x.size() == static_cast<std::size_t>(B * 4));
  std::vector<int> gen3(static_cast<std::size_t>(B * 3));
  for (std::int64_t b = 0; b < B; ++b) {
    REQUIRE(x[static_cast<std::size_t>(b * 4)] == prompt);
    for (int l = 0; l < 3; ++l) gen3[static_cast<std::size_t>(b * 3 + l)] = x[static_cast<std::size_t>(b * 4 + 1 + l)];
  }
  std::vector<double> q(27);
  for (int a = 0; a < N; ++a)
    for (int b = 0; b < N; ++b)
      for (int c = 0; c < N; ++c)
        q[static_cast<std::size_t>(a * 9 + b * 3 + c)] = P[static_cast<std::size_t>(prompt * N + a)] * P[static_cast<std::size_t>(a * N + b)] * P[static_cast<std::size_t>(b * N + c)];
  check_chi2("semi-AR continuation", gen3, 3, N, q);
}

TEST_CASE("sampler: large-vocabulary kernels (blocked draws, N > 128) sample the right distribution") {
  // N = 700 spans three blocks of 256 classes; every position shares one logit row and one token,
  // so the 3e4 draws (about 43 expected per class) are i.i.d. from that position's step law.
  const int N = 700;
  const std::int64_t n = 30000;
  std::vector<double> z(static_cast<std::size_t>(N));
  for (int v = 0; v < N; ++v) z[static_cast<std::size_t>(v)] = 3.0 * uniform<double>(41, 1, static_cast<std::uint64_t>(v));
  std::vector<double> logits(static_cast<std::size_t>(n * N));
  for (std::int64_t i = 0; i < n; ++i) std::copy(z.begin(), z.end(), logits.begin() + i * N);
  const auto f = softmax_n(z.data(), N);
  std::vector<int> out(static_cast<std::size_t>(n), -1);
  // MD4 step with p_unmask = 1 (every position draws from f), and with top-p 0.5
  {
    std::vector<int> x(static_cast<std::size_t>(n), N);
    SequentialExecutor{}.for_each(n, Md4AncestralKernel<double>{x.data(), logits.data(), N, N, 1.0, 1.0, 0, nullptr,
                                                                out.data(), 5, 1});
    check_chi2("MD4 N=700", out, 1, N, f);
    std::vector<double> scratch(logits.size());
    SequentialExecutor{}.for_each(n, Md4AncestralKernel<double>{x.data(), logits.data(), N, N, 1.0, 0.5, 0,
                                                                scratch.data(), out.data(), 5, 2});
    std::vector<double> sorted(z);
    std::sort(sorted.begin(), sorted.end(), std::greater<double>());
    double cum = 0, thr = sorted.back();
    for (double v : sorted) {
      cum += f[static_cast<std::size_t>(std::find(z.begin(), z.end(), v) - z.begin())];
      if (cum >= 0.5) {
        thr = v;
        break;
      }
    }
    std::vector<double> q(static_cast<std::size_t>(N), 0.0);
    double s = 0;
    for (int v = 0; v < N; ++v)
      if (z[static_cast<std::size_t>(v)] >= thr) s += (q[static_cast<std::size_t>(v)] = f[static_cast<std::size_t>(v)]);
    for (double& v : q) v /= s;
    check_chi2("MD4 N=700 top-p 0.5", out, 1, N, q);
  }
  // tau-leaping steps at a regular token in the middle block and at MASK
  auto tau_case = [&](const auto& gen, int x0, TauMethod m, double u, double delta, const char* name) {
    const int D = gen.num_states();
    std::vector<int> x(static_cast<std::size_t>(n), x0);
    TauStep st;
    st.method = m;
    st.u = u;
    st.delta = delta;
    st.h = delta;
    using Gen = std::decay_t<decltype(gen)>;
    SequentialExecutor{}.for_each(n, TauLeapingKernel<Gen, double>{gen, x.data(), logits.data(), N, st, false, false,
                                                                   out.data(), 6, 3});
    std::vector<double> q(static_cast<std::size_t>(D));
    naive_tau_probs(gen, m, u, delta, delta, false, x0, f, q.data());
    check_chi2(name, out, 1, D, q);
  };
  tau_case(UniformGenerator<double>(N), 300, TauMethod::analytic, 0.05, 0.02, "analytic uniform N=700");
  tau_case(UniformGenerator<double>(N), 512, TauMethod::euler, 0.05, 0.02, "Euler uniform N=700");
  tau_case(AbsorbingGenerator<double>(N), N, TauMethod::analytic, 0.5, 0.2, "analytic absorbing N=700 at MASK");
  tau_case(RouletteGenerator<double>(N, 0.9), N, TauMethod::analytic, 0.5, 0.2, "analytic roulette N=700 at MASK");
  tau_case(RouletteGenerator<double>(N, 0.5), 10, TauMethod::euler, 0.01, 0.005, "Euler roulette N=700 regular");
}

TEST_CASE("sampler: a perturbed posterior is a fixed, bounded tilt; MD4 then samples its propagation") {
  const int N = 4, L = 1;
  const AbsorbingGenerator<double> gen(N);
  const auto p = random_distribution(N, 71);
  // a zero in p_data gives a -inf logit that must stay -inf
  std::vector<double> pz = p;
  pz[2] = 0;
  double s = 0;
  for (double v : pz) s += v;
  for (double& v : pz) v /= s;
  const ExactPosteriorDenoiser<AbsorbingGenerator<double>> exact(gen, L, pz);
  const PerturbedDenoiser<ExactPosteriorDenoiser<AbsorbingGenerator<double>>> pert(exact, 0.7, N + 1);
  std::vector<int> xs = {N, 1, N, 3};
  std::vector<double> t(4, 0.5), sb(4, 0.7), a(4 * N), b(4 * N), c(4 * N);
  const ModelQuery<double> in{xs.data(), 4, 1, t.data(), sb.data()};
  exact(in, a.data());
  pert(in, b.data());
  pert(in, c.data());
  CHECK(b == c);  // deterministic
  REQUIRE(a.size() == b.size());
  double maxdiff = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (std::isinf(a[k])) {
      CHECK(std::isinf(b[k]));
      continue;
    }
    maxdiff = std::max(maxdiff, std::abs(a[k] - b[k]));
  }
  CHECK(maxdiff <= 0.7);
  CHECK(maxdiff > 0.1);
  CHECK(std::isinf(a[2]));  // p_data(2) = 0 at a MASK position: -inf logit
  // MD4 with the perturbed model is not exact, and samples exactly its propagated law
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  o.steps = 8;
  o.grid = GridKind::uniform;
  o.seed = 3;
  const LogLinearSchedule<double> sched;
  const auto q = propagate_md4(N, sched, pert, o, L);
  CHECK(tv(q, embed(pz, N, N + 1, L)) > 0.02);
  CHECK(q[2] == 0.0);
  std::vector<int> x;
  sample(SequentialExecutor{}, gen, sched, pert, o, kSamples, L, x);
  check_chi2("MD4 with a perturbed posterior vs its propagation", x, L, N + 1, q);
}

namespace {

/// A SEDD-style log-score head built from a posterior denoiser: log s_theta of spec 4.1 through
/// probs_to_score_naive at u = sigma_bar (K = D; the entry at x_t^l is 0; zero scores are -inf).
template <class Inner, class Gen>
struct LogScoreFromPosterior {
  using value_type = double;
  static constexpr ModelOutput output = ModelOutput::log_scores;
  Inner inner;
  Gen gen;
  int num_classes() const { return gen.num_states(); }
  void operator()(const ModelQuery<double>& in, double* out) const {
    const int N = gen.num_regular(), D = gen.num_states(), K = inner.num_classes();
    std::vector<double> z(static_cast<std::size_t>(in.B * in.L * K));
    inner(in, z.data());
    std::vector<double> sc(static_cast<std::size_t>(D));
    for (std::int64_t q = 0; q < in.B * in.L; ++q) {
      const auto f = softmax_n(z.data() + q * K, N);
      const int x = in.xt[q];
      probs_to_score_naive(gen, f.data(), N, x, in.sigma_bar[q / in.L], sc.data());
      for (int b = 0; b < D; ++b)
        out[q * D + b] =
            b == x ? 0.0 : (sc[static_cast<std::size_t>(b)] > 0 ? std::log(sc[static_cast<std::size_t>(b)]) : -std::numeric_limits<double>::infinity());
    }
  }
};

}  // namespace

TEST_CASE("sampler: tau-leaping from a log-score head samples the same law as from logits") {
  const int N = 3, L = 2;
  const auto p = random_distribution(ipow(N, L), 23);
  auto run_gen = [&](const auto& gen, const auto& sched, const char* name) {
    using Gen = std::decay_t<decltype(gen)>;
    const ExactPosteriorDenoiser<Gen> den(gen, L, p);
    const LogScoreFromPosterior<ExactPosteriorDenoiser<Gen>, Gen> sden{den, gen};
    for (SamplerKind kind : {SamplerKind::euler, SamplerKind::analytic}) {
      SamplerOptions o;
      o.kind = kind;
      o.steps = 6;
      o.final_step = FinalStep::sample;
      o.seed = 808;
      std::vector<int> x;
      sample(SequentialExecutor{}, gen, sched, sden, o, kSamples / 2, L, x);
      check_chi2(std::string(name) + (kind == SamplerKind::euler ? " Euler" : " analytic") +
                     " log-score head vs propagated logits law",
                 x, L, gen.num_states(), propagate_tau(gen, sched, den, o, L));
    }
  };
  run_gen(UniformGenerator<double>(N), LogLinearSchedule<double>(), "uniform");
  run_gen(AbsorbingGenerator<double>(N), LogLinearSchedule<double>(), "absorbing");
  run_gen(RouletteGenerator<double>(N, 0.9), RouletteLogLinearSchedule<double>(0.9), "roulette 0.9");
}
