// discdiff/objective/sedd.hpp: SEDD's diffusion-weighted denoising score entropy (DWDSE,
// spec/MATH.md 5.1) with its gradient, fused in one pass over the vocabulary.
//
// Network output: log-scores lambda (B x L x D), optionally through the log-score head of spec
// 4.4 (the kernel then receives the raw output o and adds the offset c(u, x), see
// sedd_log_score_offset). Per position, with x = x_t^i and a = x_0^i (spec 5.1 "e_i"):
//
//   e_i = sum_{b != x, Q[x,b] > 0} Q[x,b] ( exp(lambda_b) - r_b lambda_b + K(r_b) ),
//   r_b = P_u[b,a] / P_u[x,a]  (spec 1.5; generator.ratio),  K(r) = r (log r - 1).
//
// Per-sequence Monte Carlo loss (spec 5.1 [C]):  l = sigma(t) * sum_i e_i,  u = sbar(t).
// Gradient (spec 5.1, the one formula for every generator):
//   d l / d lambda_{i,b} = sigma(t) Q[x,b] (exp(lambda_b) - r_b)  for b != x with Q[x,b] > 0,
//   0 for every other b (the current token, MASK as a candidate, every b at unmasked absorbing
//   positions). With the head of 4.4 the same numbers are the gradient w.r.t. the raw output.
//
// Structure used by the fused kernel (spec 3.1-3.3, 3.6): the candidates are the regular b != x;
// Q[x,b] = q is the same for all of them, and r_b = r_other except r_a at b = a. The generator
// supplies them (its member sedd_coeffs, and sedd_log_score_offset for the head; see
// docs/architecture.md, "Generator extension points"):
//
//   graph      x          q      r_other            r_a (b = a)
//   uniform    a          1/N    rU_bc              - (a = x is not a candidate)
//   uniform    c != a     1/N    1                  rU_cb
//   absorbing  MASK       1      0                  1/expm1(u)
//   absorbing  regular    0      (e_i = 0, gradient 0)
//   roulette   MASK       p_m    r_ba               r_ca
//   roulette   a          g/N    r_bc               -
//   roulette   c != a     g/N    1                  r_cb
//
// Numerical form (rule 11): each summand Q D_K(r || s) >= 0 is evaluated without cancellation as
//   r (expm1(d) - d),  d = lambda - log r,     gradient factor exp(lambda) - r = r expm1(d)
// (and exp(lambda), exp(lambda) for r = 0), one expm1 per entry (detail::obj::expm1_fast of
// objective/common.hpp: within 2 ulps of expm1 and about 4x faster on the host than the C
// library's); the sum is compensated. Without
// the K term (SeddOptions::include_k = false; the J2 integrand "l-bar" of spec 6.4) a summand is
// exp(lambda) - r lambda. The per-generator closed forms pos - neg + const of spec 5.1 are the
// same numbers (tests compare against the spot values of spec 12.3 and the naive reference).
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/extension_types.hpp"
#include "../generator/roulette.hpp"
#include "../generator/uniform.hpp"
#include "common.hpp"

namespace discdiff {

/// Options of the DWDSE objective.
struct SeddOptions {
  /// Include K(r) (the SEDD ELBO integrand, spec 5.1); false gives the J2 integrand (spec 6.4).
  bool include_k = true;
  /// The outputs are the raw network outputs o of the SEDD log-score head (spec 4.4):
  /// lambda_b = o_b + c(u, x) for b != x. The gradient is the same for o and lambda.
  bool log_score_head = false;
};

// ------------------------------------------------------------------ generator closed forms

/// Offset c(u, x) of the SEDD log-score head (spec 4.4): lambda_b = o_b + c(u, x). Forwards to
/// the generator's member gen.sedd_log_score_offset(x, u) (uniform: log1p(N / (expm1(u)
/// (expm1(u) + N))); absorbing: -log(expm1(u)) - log N; roulette: -log(expm1(p_m u) N) at MASK,
/// the uniform form at g u elsewhere). Only generators with that member have a head.
template <class Gen>
DD_HD auto sedd_log_score_offset(const Gen& gen, int x, typename Gen::value_type u)
    -> decltype(gen.sedd_log_score_offset(x, u)) {
  return gen.sedd_log_score_offset(x, u);
}

/// The per-position weight q and ratios of spec 5.1 (the table above) at current token x and
/// clean token a: forwards to the generator's member gen.sedd_coeffs(x, a, u).
template <class Gen>
DD_HD auto sedd_coeffs(const Gen& gen, int x, int a, typename Gen::value_type u)
    -> decltype(gen.sedd_coeffs(x, a, u)) {
  return gen.sedd_coeffs(x, a, u);
}

namespace detail {
namespace sedd {
template <class Gen, class T, class = void>
struct has_offset : std::false_type {};
template <class Gen, class T>
struct has_offset<Gen, T,
                  std::void_t<decltype(sedd_log_score_offset(std::declval<const Gen&>(), 0,
                                                             std::declval<T>()))>>
    : std::true_type {};
}  // namespace sedd
}  // namespace detail

// ------------------------------------------------------------------ per position

/// DWDSE of one position, fused with its gradient (one pass over the N candidates):
/// returns e_i (WITHOUT the sigma(t) factor) and writes grad[b] = gw * d e_i / d lambda_b for
/// b < V (V = D; zero at b = x, at MASK and wherever Q[x,b] = 0). `out` holds the V log-scores
/// (raw outputs o with opt.log_score_head). Preconditions: x in [0, D), a in [0, N), u > 0,
/// P_u[x,a] > 0, out finite.
template <class Gen, class T>
DD_HD T sedd_position(const Gen& gen, const T* out, int V, int x, int a, T u, T gw, T* grad,
                      SeddOptions opt = {}) {
  const int n = gen.num_regular();
  const SeddCoeffs<T> c = sedd_coeffs(gen, x, a, u);
  if (!(c.q > T(0))) {
    for (int b = 0; b < V; ++b) grad[b] = T(0);
    return T(0);
  }
  const T off = opt.log_score_head ? sedd_log_score_offset(gen, x, u) : T(0);
  const T gq = gw * c.q;
  detail::obj::Sum4<T> acc;
  if (opt.include_k) {
    const T lr_o = c.r_other > T(0) ? math::log(c.r_other) : T(0);
    const T lr_a = c.a_candidate ? math::log(c.r_a) : T(0);
    if (c.r_other > T(0)) {
      detail::obj::accumulate4(n, acc, [&](int b) {
        const bool is_a = c.a_candidate && b == a;
        const T r = is_a ? c.r_a : c.r_other;
        const T d = (out[b] + off) - (is_a ? lr_a : lr_o);
        const T em = detail::obj::expm1_fast(d);
        const bool cur = b == x;
        grad[b] = cur ? T(0) : gq * (r * em);
        return cur ? T(0) : r * (em - d);
      });
    } else {  // r_other = 0 (absorbing at MASK, x = MASK is never a candidate): exp(lambda) for b != a
      const int skip = c.a_candidate ? a : -1;
      detail::obj::accumulate4(n, acc, [&](int b) {
        const T s = math::exp(out[b] + off);
        grad[b] = gq * s;
        return b == skip ? T(0) : s;
      });
      if (c.a_candidate) {  // b = a: r_a (expm1(d) - d), d = lambda_a - log r_a
        const T d = (out[a] + off) - lr_a;
        const T em = detail::obj::expm1_fast(d);
        acc.lane[a & 3].add(c.r_a * (em - d));
        grad[a] = gq * (c.r_a * em);
      }
    }
  } else {
    detail::obj::accumulate4(n, acc, [&](int b) {
      const T r = (c.a_candidate && b == a) ? c.r_a : c.r_other;
      const T lam = out[b] + off;
      const T s = math::exp(lam);
      const bool cur = b == x;
      grad[b] = cur ? T(0) : gq * (s - r);
      // r lam with r = 0 is 0 even for a zero score (lam = -inf), as in xlogy.
      return cur ? T(0) : s - (r > T(0) ? r * lam : T(0));
    });
  }
  for (int b = n; b < V; ++b) grad[b] = T(0);
  return c.q * acc.value();
}

/// Naive reference of sedd_position: the generic sum of spec 5.1 over every b < D with
/// Q[x,b] = gen.rate(x, b) > 0 and r_b = gen.ratio(x, b, a, u), term by term
/// (Q (exp(lambda) - r lambda + K(r)), K from math::score_entropy_k). Any generator with the
/// concept's rate/ratio (scalar u), also the host-only DenseGenerator (with no log-score head).
template <class Gen, class T>
DD_HD T sedd_position_naive(const Gen& gen, const T* out, int V, int x, int a, T u, T gw, T* grad,
                            SeddOptions opt = {}) {
  const int d = gen.num_states();
  T off = T(0);
  if constexpr (detail::sedd::has_offset<Gen, T>::value)
    if (opt.log_score_head) off = sedd_log_score_offset(gen, x, u);
  T e = T(0);
  for (int b = 0; b < V; ++b) {
    grad[b] = T(0);
    if (b == x || b >= d) continue;
    const T q = gen.rate(x, b);
    if (!(q > T(0))) continue;
    const T r = gen.ratio(x, b, a, u);
    const T lam = out[b] + off;
    const T s = math::exp(lam);
    e += q * (s - (r > T(0) ? r * lam : T(0)) + (opt.include_k ? math::score_entropy_k(r) : T(0)));
    grad[b] = gw * q * (s - r);
  }
  return e;
}

// ------------------------------------------------------------------ batch

/// DWDSE over a batch: position i = b * L + l gets e_i at (x = xt[i], a = x0[i], u[b]);
/// pos_loss[i] = sigma[b] e_i, row_loss[b] = sum_l pos_loss, grad = grad_scale sigma[b] de_i/dout.
template <class Gen, class T>
struct SeddKernel {
  Gen gen;
  LossBatch<T> batch;
  const T* u;      ///< per row: sbar(t_b)
  const T* sigma;  ///< per row: sigma(t_b)
  SeddOptions opt;

  DD_HD void operator()(std::int64_t i) const {
    const std::int64_t b = i / batch.L;
    const T e = sedd_position(gen, batch.logits + i * batch.V, batch.V, batch.xt[i], batch.x0[i],
                              u[b], batch.grad_scale * sigma[b], batch.grad + i * batch.V, opt);
    batch.pos_loss[i] = sigma[b] * e;
  }
};

/// Raw-pointer DWDSE driver on any executor (no validation; see objective/checked_xt.hpp for the
/// validated host API). batch.V must be D; u, sigma: per-row sbar(t_b), sigma(t_b).
/// Preconditions (unchecked): tokens in range, P_{u_b}[xt, x0] > 0, u_b > 0, outputs finite.
template <class Exec, class Gen, class T>
void sedd_loss_raw(const Exec& exec, const Gen& gen, const LossBatch<T>& batch, const T* u,
                   const T* sigma, SeddOptions opt = {}) {
  if (batch.B <= 0 || batch.L <= 0) return;
  exec.for_each(batch.B * batch.L, SeddKernel<Gen, T>{gen, batch, u, sigma, opt});
  exec.for_each(batch.B, RowSumKernel<T>{batch.pos_loss, batch.row_loss, batch.L, T(0)});
}

/// Naive reference of sedd_loss_raw (host, sequential, sedd_position_naive, plain row sums).
template <class Gen, class T>
void sedd_loss_naive(const Gen& gen, const LossBatch<T>& batch, const T* u, const T* sigma,
                     SeddOptions opt = {}) {
  for (std::int64_t b = 0; b < batch.B; ++b) {
    T row = T(0);
    for (std::int64_t l = 0; l < batch.L; ++l) {
      const std::int64_t i = b * batch.L + l;
      const T e = sedd_position_naive(gen, batch.logits + i * batch.V, batch.V, batch.xt[i],
                                      batch.x0[i], u[b], batch.grad_scale * sigma[b],
                                      batch.grad + i * batch.V, opt);
      batch.pos_loss[i] = sigma[b] * e;
      row += batch.pos_loss[i];
    }
    batch.row_loss[b] = row;
  }
}

}  // namespace discdiff
