// discdiff/sampler/uniformization.hpp: exact simulation of the learned reverse CTMC by
// uniformization / thinning (spec/MATH.md 10.2), the reference sampler for small state spaces.
//
// In the noise variable u = sbar(t) the reverse chain jumps x -> x^{i<-b} (b != x^i) at rate
//   R_u(x -> x^{i<-b}) = Q[x^i, b] s_theta(x, t(u))_{i,b},
// with s_theta from the denoiser's posterior by the closed forms of spec 4.2 (the Euler
// coefficients of sampler/kernels.hpp with h = 1). [u_min, u_max] = [sbar(t_min), sbar(t_max)] is
// split into M log-spaced intervals [e_k, e_{k+1}]; on interval k every row uses the dominating
// rate
//   Lambda_k = n_free * rate_bound(e_k),
// where rate_bound(u) (uniformization_rate_bound) bounds the total reverse rate of one position
// over every predicted posterior f and every token (spec 10.2 bounds; all decreasing in u) and
// n_free is the number of free (not conditioned) positions of the row. Every proposal checks
// lambda(x, u) <= Lambda_k and counts violations (the draw is exact iff there are none).
//
// Each row runs its own chain backwards from u_max (x ~ pi, fixed positions set) to u_min:
// propose u <- u - Exponential(Lambda_k) (moving to the next interval when the proposal leaves the
// current one: memoryless), query the denoiser at (x, t(u), u), where t(u) inverts the schedule's
// sbar by safeguarded Newton iterations inside the interval's t-bracket (to a few ulps), accept a
// jump with probability lambda/Lambda_k, then pick (i, b) with probability R/lambda. Rows are
// advanced together: every round queries the denoiser once on the rows still running (compacted
// into one batch). Row b's event e draws from CounterRng(seed, 2 e, b) (proposal) and
// CounterRng(seed, 2 e + 1, b) (acceptance), so the result is the same on every executor.
// Backends: any executor; every buffer the kernels touch lives in its memory space, and per round
// only the B `done` flags come to the host (to compact the active rows) and the row list goes out.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "../exec/algorithm.hpp"
#include "../exec/memory.hpp"
#include "conditioning.hpp"
#include "denoiser.hpp"
#include "driver.hpp"
#include "kernels.hpp"

namespace discdiff {

/// Options of sample_uniformization().
struct UniformizationOptions {
  double t_min = 1e-5;       ///< the chain is stopped at t_min (the sample is a draw of q_{t_min})
  double t_max = 1.0;        ///< the chain starts from pi at t_max
  int intervals = 200;       ///< log-spaced intervals of [t_min, t_max]
  std::uint64_t seed = 0;
  int max_rounds = 1000000;  ///< safety cap on denoiser rounds (an error when exceeded)
};

/// What a uniformization run did.
struct UniformizationStats {
  int rounds = 0;               ///< denoiser calls (each on the rows still running)
  std::int64_t proposals = 0;   ///< candidate event times
  std::int64_t jumps = 0;       ///< accepted jumps
  std::int64_t violations = 0;  ///< proposals with lambda > Lambda_k (0 for an exact draw)
};

/// sup over f and x of the total reverse rate of one position in the u variable (spec 10.2):
///   uniform:   (N - 1 + N/expm1(u))/N
///   absorbing: 1/expm1(u)
///   roulette:  max(p_m (N r_ba + (r_ca - r_ba)), (g/N)(N - 1 + N e^{-gu}/(1 - e^{-gu})))
/// All are decreasing in u (u > 0). Forwards to the generator's member
/// gen.uniformization_rate_bound(u).
template <class Gen>
auto uniformization_rate_bound(const Gen& gen, double u)
    -> decltype(gen.uniformization_rate_bound(u)) {
  return gen.uniformization_rate_bound(u);
}

namespace detail {
namespace smp {

/// t with sbar(t) = u for t in [lo, hi] (sbar increasing, sbar(lo) <= u <= sbar(hi)): Newton steps
/// dt = (sbar(t) - u)/sigma(t), replaced by bisection whenever they leave the bracket.
template <class Sched>
DD_HD double inverse_sigma_bar(const Sched& sched, double u, double lo, double hi) {
  using T = typename Sched::value_type;
  double t = 0.5 * (lo + hi);
  for (int it = 0; it < 100; ++it) {
    const double f = static_cast<double>(sched.sigma_bar(T(t))) - u;
    if (f == 0) break;
    if (f > 0)
      hi = t;
    else
      lo = t;
    const double sg = static_cast<double>(sched.sigma(T(t)));
    double tn = sg > 0 ? t - f / sg : 0.5 * (lo + hi);
    if (!(tn > lo && tn < hi)) tn = 0.5 * (lo + hi);
    if (tn == t || hi - lo <= 4e-16 * hi) break;
    t = tn;
  }
  return t;
}

/// The proposal of row b (see the file comment): advances u[b] / k[b] to the next candidate, or
/// marks the row done; writes the candidate's u and t.
template <class Sched>
struct UniformizationProposeKernel {
  Sched sched;
  const double* edges;   ///< M + 1 interval edges in u, increasing
  const double* tedges;  ///< the same edges in t
  const double* lam;     ///< M per-position dominating rates (u units)
  const int* nfree;      ///< B free positions per row
  double* u;             ///< B current noise levels
  int* k;                ///< B current interval
  unsigned char* done;   ///< B
  const std::uint32_t* ev;  ///< B event counters
  double* cand;          ///< B candidate noise levels
  double* cand_t;        ///< B candidate times
  std::uint64_t seed;

  DD_HD void operator()(std::int64_t b) const {
    if (done[b]) return;
    if (nfree[b] == 0) {
      done[b] = 1;
      return;
    }
    CounterRng rng(seed, 2u * ev[b], static_cast<std::uint64_t>(b));
    double uc = u[b];
    int kc = k[b];
    while (true) {
      const double rate = nfree[b] * lam[kc];
      const double e = -math::log(rng.template uniform_open<double>()) / rate;
      const double un = uc - e;
      if (un < edges[kc]) {
        uc = edges[kc];
        --kc;
        if (kc < 0) {
          done[b] = 1;
          break;
        }
        continue;
      }
      cand[b] = un;
      cand_t[b] = inverse_sigma_bar(sched, un, tedges[kc], tedges[kc + 1]);
      break;
    }
    u[b] = uc;
    k[b] = kc < 0 ? 0 : kc;
  }
};

/// The acceptance of the active row j (row b = rows[j]) at its candidate time, with the
/// denoiser's logits of the compact batch.
template <class Gen, class T>
struct UniformizationAcceptKernel {
  Gen gen;
  const int* rows;
  const T* logits;
  int K;
  std::int64_t L;
  const double* lam;
  const int* nfree;
  const unsigned char* fixed;  ///< B*L or null
  int* x;                      ///< B*L
  double* u;
  const int* k;
  std::uint32_t* ev;
  const double* cand;
  std::int64_t* violations;    ///< B
  std::int64_t* jumps;         ///< B
  std::uint64_t seed;

  DD_HD double position_rate(const int* xb, const T* zb, std::int64_t i, const TauStep& st,
                             TauCoefficients* out_k, double* out_m, double* out_z) const {
    const int n = gen.num_regular();
    const int xi = xb[i];
    const T* z = zb + i * K;
    const T m = max_logit(z, n);
    double rsum = 0, ex = 0;
    for (int h = 0; h < n; ++h) {
      const double e = math::exp(static_cast<double>(z[h] - m));
      if (h == xi)
        ex = e;
      else
        rsum += e;
    }
    const double zs = rsum + ex;
    const TauCoefficients c = tau_leaping_coefficients(gen, st, xi, ex / zs, rsum / zs);
    *out_k = c;
    *out_m = static_cast<double>(m);
    *out_z = zs;
    if (c.stay) return 0.0;
    return (xi == n ? n : n - 1) * c.c0 + c.c1 * (rsum / zs);
  }

  DD_HD void operator()(std::int64_t j) const {
    const std::int64_t b = rows[j];
    CounterRng rng(seed, 2u * ev[b] + 1u, static_cast<std::uint64_t>(b));
    const double r = rng.template uniform<double>();
    const double u2 = rng.template uniform<double>();
    const double uc = cand[b];
    TauStep st;
    st.method = TauMethod::euler;
    st.u = uc;
    st.h = 1.0;
    int* xb = x + b * L;
    const T* zb = logits + j * L * K;
    double lambda = 0;
    TauCoefficients c;
    double m, zs;
    for (std::int64_t i = 0; i < L; ++i)
      if (fixed == nullptr || !fixed[b * L + i]) lambda += position_rate(xb, zb, i, st, &c, &m, &zs);
    const double big = nfree[b] * lam[k[b]];
    if (lambda > big * (1 + 1e-9)) ++violations[b];
    ev[b] += 1u;
    u[b] = uc;
    if (!(r * big < lambda)) return;
    // pick (i, b') with probability R / lambda
    const double target = u2 * lambda;
    double cum = 0;
    std::int64_t pick = -1;
    for (std::int64_t i = 0; i < L; ++i) {
      if (fixed != nullptr && fixed[b * L + i]) continue;
      const double ri = position_rate(xb, zb, i, st, &c, &m, &zs);
      if (!(ri > 0)) continue;
      pick = i;
      if (cum + ri > target) break;
      cum += ri;
    }
    if (pick < 0) return;
    const double ri = position_rate(xb, zb, pick, st, &c, &m, &zs);
    const int n = gen.num_regular();
    const int xi = xb[pick];
    const T* z = zb + pick * K;
    const double t2 = target - cum < ri ? target - cum : ri;
    double acc = 0;
    int last = -1;
    for (int bb = 0; bb < n; ++bb) {
      if (bb == xi) continue;
      const double w = c.c0 + c.c1 * math::exp(static_cast<double>(z[bb]) - m) / zs;
      if (!(w > 0)) continue;
      acc += w;
      last = bb;
      if (acc > t2) break;
    }
    if (last >= 0) {
      xb[pick] = last;
      ++jumps[b];
    }
  }
};

/// Gathers the active rows of a uniformization round: xs[j] = x[rows[j]], tv[j] = cand_t[rows[j]],
/// sv[j] = cand[rows[j]] (index = j L + l).
template <class T>
struct GatherRowsKernel {
  const int* rows;
  const int* x;
  const double* cand_t;
  const double* cand;
  int* xs;
  T* tv;
  T* sv;
  std::int64_t L;

  DD_HD void operator()(std::int64_t i) const {
    const std::int64_t j = i / L, l = i % L, b = rows[j];
    xs[i] = x[b * L + l];
    if (l == 0) {
      tv[j] = static_cast<T>(cand_t[b]);
      sv[j] = static_cast<T>(cand[b]);
    }
  }
};

}  // namespace smp
}  // namespace detail

/// Exact reverse-chain sampling by uniformization (see the file comment). gen: uniform, absorbing
/// or roulette; sched: a scalar schedule; den: a Denoiser of logits. Writes B x L samples (draws
/// of q_{t_min}) to x. Throws std::invalid_argument for bad options (t_min <= 0, t_max > 1,
/// intervals < 1), bad conditioning or a bad denoiser output, std::runtime_error when max_rounds
/// is exceeded.
template <class Exec, class Gen, class Sched, class Den>
UniformizationStats sample_uniformization(const Exec& exec, const Gen& gen, const Sched& sched,
                                          const Den& den, const UniformizationOptions& opt,
                                          std::int64_t B, std::int64_t L, std::vector<int>& x,
                                          const Conditioning* cond = nullptr) {
  using T = typename Gen::value_type;
  using Space = typename Exec::memory_space;
  const char* where = "discdiff::sample_uniformization";
  if (B < 1) throw_invalid(where, "B", B, "must be >= 1");
  if (L < 1) throw_invalid(where, "L", L, "must be >= 1");
  if (!(opt.t_min > 0 && opt.t_min < opt.t_max))
    throw_invalid(where, "t_min", opt.t_min, "must lie in (0, t_max)");
  if (!(opt.t_max <= 1)) throw_invalid(where, "t_max", opt.t_max, "must be <= 1");
  if (opt.intervals < 1) throw_invalid(where, "intervals", opt.intervals, "must be >= 1");
  detail::smp::check_denoiser_setup<Den, T, Exec>(where, den, gen);
  const int N = gen.num_regular();
  if (cond != nullptr) detail::check_conditioning(where, *cond, B, L, N);
  const int K = den.num_classes();
  const int M = opt.intervals;

  const double u_min = static_cast<double>(sched.sigma_bar(T(opt.t_min)));
  const double u_max = static_cast<double>(sched.sigma_bar(T(opt.t_max)));
  if (!(u_min > 0 && u_max > u_min))
    throw_invalid(where, "sigma_bar(t_min)", u_min, "need 0 < sbar(t_min) < sbar(t_max)");
  std::vector<double> edges(static_cast<std::size_t>(M) + 1), tedges(edges.size()),
      lam(static_cast<std::size_t>(M));
  const double lr = std::log(u_max / u_min);
  for (int k = 0; k <= M; ++k) edges[static_cast<std::size_t>(k)] = u_min * std::exp(lr * k / M);
  edges.front() = u_min;
  edges.back() = u_max;
  tedges.front() = opt.t_min;
  tedges.back() = opt.t_max;
  for (int k = 1; k < M; ++k)
    tedges[static_cast<std::size_t>(k)] =
        detail::smp::inverse_sigma_bar(sched, edges[static_cast<std::size_t>(k)], opt.t_min, opt.t_max);
  for (int k = 0; k < M; ++k)
    lam[static_cast<std::size_t>(k)] = uniformization_rate_bound(gen, edges[static_cast<std::size_t>(k)]);

  // Everything the kernels touch lives in the executor's memory; per round only the `done` flags
  // come back to the host (to list the active rows) and the active row list goes out.
  const detail::smp::ConditioningBuffers<Space> cb(cond);
  const unsigned char* fixed = cb.fixed_ptr();
  Buffer<double, Space> edges_d(edges.size()), tedges_d(tedges.size()), lam_d(lam.size());
  copy_from_host(edges_d, edges.data(), edges.size());
  copy_from_host(tedges_d, tedges.data(), tedges.size());
  copy_from_host(lam_d, lam.data(), lam.size());
  Buffer<int, Space> xd(static_cast<std::size_t>(B * L));
  exec.for_each(B * L, PriorKernel<Gen>{gen, fixed, cb.values_ptr(), xd.data(), opt.seed,
                                        0xffffffffu});
  std::vector<int> nfree(static_cast<std::size_t>(B), static_cast<int>(L));
  if (cond != nullptr && !cond->empty())
    for (std::int64_t q = 0; q < B * L; ++q)
      if (cond->fixed[static_cast<std::size_t>(q)]) --nfree[static_cast<std::size_t>(q / L)];
  const std::size_t Bs = static_cast<std::size_t>(B);
  Buffer<int, Space> nfree_d(Bs), k_d(Bs), rows_d(Bs);
  copy_from_host(nfree_d, nfree.data(), Bs);
  Buffer<double, Space> uc(Bs), cand(Bs), cand_t(Bs);
  fill_n(exec, uc.data(), B, u_max);
  fill_n(exec, cand.data(), B, 0.0);
  fill_n(exec, cand_t.data(), B, 0.0);
  fill_n(exec, k_d.data(), B, M - 1);
  Buffer<unsigned char, Space> done_d(Bs);
  fill_n(exec, done_d.data(), B, static_cast<unsigned char>(0));
  Buffer<std::uint32_t, Space> ev(Bs);
  fill_n(exec, ev.data(), B, std::uint32_t(0));
  Buffer<std::int64_t, Space> viol(Bs), jumps(Bs);
  fill_n(exec, viol.data(), B, std::int64_t(0));
  fill_n(exec, jumps.data(), B, std::int64_t(0));
  std::vector<unsigned char> done(Bs);
  std::vector<int> rows;
  Buffer<int, Space> xs(static_cast<std::size_t>(B * L));
  Buffer<T, Space> own, tv(Bs), sv(Bs);  // own: the outputs of a model without evaluate()
  Buffer<unsigned char, Space> status(static_cast<std::size_t>(B * L));
  UniformizationStats stats;

  while (true) {
    exec.for_each(B, detail::smp::UniformizationProposeKernel<Sched>{
                         sched, edges_d.data(), tedges_d.data(), lam_d.data(), nfree_d.data(),
                         uc.data(), k_d.data(), done_d.data(), ev.data(), cand.data(),
                         cand_t.data(), opt.seed});
    copy_n(HostSpace{}, done.data(), Space{}, done_d.data(), Bs);
    rows.clear();
    for (std::int64_t b = 0; b < B; ++b)
      if (!done[static_cast<std::size_t>(b)]) rows.push_back(static_cast<int>(b));
    if (rows.empty()) break;
    if (stats.rounds >= opt.max_rounds)
      throw std::runtime_error("discdiff::sample_uniformization: max_rounds = " +
                               std::to_string(opt.max_rounds) + " exceeded");
    const std::int64_t A = static_cast<std::int64_t>(rows.size());
    copy_n(Space{}, rows_d.data(), HostSpace{}, rows.data(), rows.size());
    exec.for_each(A * L, detail::smp::GatherRowsKernel<T>{rows_d.data(), xd.data(), cand_t.data(),
                                                          cand.data(), xs.data(), tv.data(),
                                                          sv.data(), L});
    const T* logits = model_outputs(den, ModelQuery<T>{xs.data(), A, L, tv.data(), sv.data()}, K, own);
    check_model_output(exec, where, logits, A, L, K, N, model_output_v<Den>, status.data());
    ++stats.rounds;
    stats.proposals += A;
    exec.for_each(A, detail::smp::UniformizationAcceptKernel<Gen, T>{
                         gen, rows_d.data(), logits, K, L, lam_d.data(), nfree_d.data(),
                         fixed, xd.data(), uc.data(), k_d.data(), ev.data(), cand.data(),
                         viol.data(), jumps.data(), opt.seed});
  }
  const std::vector<std::int64_t> vh = to_host_vector(viol), jh = to_host_vector(jumps);
  for (std::int64_t b = 0; b < B; ++b) {
    stats.violations += vh[static_cast<std::size_t>(b)];
    stats.jumps += jh[static_cast<std::size_t>(b)];
  }
  x.resize(static_cast<std::size_t>(B * L));
  copy_n(HostSpace{}, x.data(), Space{}, xd.data(), x.size());
  return stats;
}

}  // namespace discdiff
