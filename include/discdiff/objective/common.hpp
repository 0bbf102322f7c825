// discdiff/objective/common.hpp: the pieces every training objective shares (spec/MATH.md 5.0).
//
//   LossBatch<T>            the raw-pointer view of one batch: clean tokens x0, noisy tokens xt
//                           (B x L), network outputs (B x L x V) and the outputs of a loss call
//   softmax_xent_row        fused log-softmax cross-entropy of one row and its gradient
//   WeightedXentKernel      weight_b * (-log softmax(z)[x0]) at the selected positions
//                           (CEDD, CEDD*, MD4; spec 5.2, 5.3)
//   RowSumKernel            row_loss[b] = sum_l pos_loss[b, l] + row_const (fixed order)
//   LossPositions           which positions carry a loss: all, or masked only
//   detail::obj::           row helpers: Sum4 / accumulate4 (four-lane reductions; float sums in
//                           double), row_max_arg, exp_row_rest, expm1_fast (expm1 within 2 ulps,
//                           ~4x faster than the C library's on the host)
//
// Conventions (spec 5.0): every loss is per sequence, a sum over positions with no 1/L; a batch
// driver writes the per-position losses pos_loss (B x L, already weighted) and the per-sequence
// losses row_loss (B), and grad = grad_scale * d row_loss[b] / d outputs[b, l, :] (pass
// grad_scale = 1/B for the gradient of the batch mean). Every position is computed from its own
// inputs only and each row is summed in a fixed order by one thread, so the results are
// bit-identical on every executor and thread count.
#pragma once

#include <cstdint>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/detail.hpp"
#include "../generator/state_dependent.hpp"

namespace discdiff {

/// Raw view of one batch for the objective kernels (row-major; device-accessible pointers for
/// the executor used). Position i = b * L + l; its outputs are logits[i * V, (i + 1) * V).
template <class T>
struct LossBatch {
  std::int64_t B = 0;         ///< sequences
  std::int64_t L = 0;         ///< positions per sequence
  int V = 0;                  ///< outputs per position
  const int* x0 = nullptr;    ///< B x L clean tokens (regular, < N)
  const int* xt = nullptr;    ///< B x L noisy tokens (< D)
  const T* logits = nullptr;  ///< B x L x V network outputs (logits, or log-scores for SEDD)
  T* grad = nullptr;          ///< B x L x V: grad_scale * d row_loss / d logits
  T* pos_loss = nullptr;      ///< B x L weighted per-position losses
  T* row_loss = nullptr;      ///< B per-sequence losses
  T grad_scale = T(1);        ///< multiplies every gradient (1/B: gradient of the batch mean)
};

/// Which positions carry a loss (spec 5.2 I(x_t), 5.3, 5.5).
enum class LossPositions {
  all,    ///< every position (uniform, roulette)
  masked  ///< x_t = MASK only (absorbing, state-dependent masking: unmasked tokens never change)
};

/// The positions of CEDD (spec 5.2): masked only for the absorbing graph (and state-dependent
/// masking), all positions otherwise.
template <class Gen>
struct default_loss_positions {
  static constexpr LossPositions value = LossPositions::all;
};
template <class T>
struct default_loss_positions<AbsorbingGenerator<T>> {
  static constexpr LossPositions value = LossPositions::masked;
};
template <class T>
struct default_loss_positions<StateDependentMaskingGenerator<T>> {
  static constexpr LossPositions value = LossPositions::masked;
};

namespace detail {
namespace obj {

/// One lane of a row reduction: Neumaier's compensated sum for double (error a few ulps of
/// sum |x| independent of the count); for float a plain sum in double (error below
/// n * 1.1e-16 * sum |x|, i.e. far below one float ulp for any vocabulary), which pipelines
/// better than the compensated float sum.
template <class T>
struct Lane {
  CompensatedSum<T> s;
  DD_HD DD_INLINE void add(T x) { s.add(x); }
  DD_HD DD_INLINE T value() const { return s.value(); }
};
template <>
struct Lane<float> {
  double s = 0.0;
  DD_HD DD_INLINE void add(float x) { s += static_cast<double>(x); }
  DD_HD DD_INLINE float value() const { return static_cast<float>(s); }
};

/// Row reduction in four independent lanes (element v goes to lane v mod 4 and the lanes are
/// combined in a fixed order, so the value does not depend on the backend); the four lanes break
/// the loop-carried dependency of a single accumulator.
template <class T>
struct Sum4 {
  Lane<T> lane[4];
  DD_HD DD_INLINE T value() const {
    Lane<T> s;
    for (int j = 0; j < 4; ++j) s.add(lane[j].value());
    return s.value();
  }
};

/// Calls f(v) for v in [0, n) in order and adds the returned term into acc.lane[v mod 4] (the
/// loop is unrolled by four so that the lanes stay in registers). f may also write outputs.
template <class T, class F>
DD_HD DD_INLINE void accumulate4(int n, Sum4<T>& acc, F&& f) {
  int v = 0;
  for (; v + 4 <= n; v += 4) {
    acc.lane[0].add(f(v));
    acc.lane[1].add(f(v + 1));
    acc.lane[2].add(f(v + 2));
    acc.lane[3].add(f(v + 3));
  }
  for (; v < n; ++v) acc.lane[v & 3].add(f(v));
}

// GCC (12, -O3) compiles the max pass and the exp pass about 1.6x slower when both are inlined
// into one function (measured on V = 50257 rows); keeping them out of line on the host restores
// the speed of the separate loops. No effect on the results.
#if defined(__GNUC__) && !defined(__CUDACC__)
#define DD_OBJ_NOINLINE __attribute__((noinline))
#else
#define DD_OBJ_NOINLINE
#endif

/// Taylor coefficients 1/k! of expm1 on (-1/2, 1/2): k = 1..8 reach float accuracy
/// (remainder 2^-9/9! < 2^-27 relative), k = 1..15 double (2^-15/16! < 2^-59).
template <class T>
struct Expm1Degree {
  static constexpr int value = 15;
};
template <>
struct Expm1Degree<float> {
  static constexpr int value = 8;
};

/// expm1(d) to a few ulps, branch-free and about 4x faster on the host than the C library's
/// expm1 (which has no fast path): the Taylor polynomial for |d| < 1/2, where exp(d) - 1 would
/// cancel, and exp(d) - 1 otherwise (relative error <= 3 ulps there, since exp(d) - 1 >=
/// 1 - e^{-1/2} ~ 0.39 in magnitude). Used by the DWDSE kernel, one call per vocabulary entry.
template <class T>
DD_HD DD_INLINE T expm1_fast(T d) {
  constexpr int K = Expm1Degree<T>::value;
  // The polynomial at d clamped to [-1/2, 1/2] (min/max, no branch), so that both candidates
  // are finite and cheap and the final choice compiles to a select rather than a branch.
  const T c = math::min(math::max(d, T(-0.5)), T(0.5));
  T p = T(1);
  for (int k = K; k >= 2; --k) p = T(1) + c * p * (T(1) / T(k));
  p *= c;  // c (1 + c/2 (1 + c/3 (...)))
  const T e = math::exp(d) - T(1);
  return (d < T(0.5) && d > T(-0.5)) ? p : e;
}

/// The maximum of a row and its first position.
template <class T>
struct MaxArg {
  T max;
  int arg;
};

/// max_v z_v and the first v where it is attained (n >= 1).
template <class T>
DD_HD DD_OBJ_NOINLINE MaxArg<T> row_max_arg(const T* z, int n) {
  T mx = z[0];
  int arg = 0;
  for (int v = 1; v < n; ++v)
    if (z[v] > mx) {
      mx = z[v];
      arg = v;
    }
  return {mx, arg};
}

/// e_v = exp(z_v - max) into e[v] for v < n; returns sum_{v != arg} e_v (the arg-max term, 1,
/// excluded, so that log1p of the result is accurate when one class dominates).
template <class T>
DD_HD DD_OBJ_NOINLINE T exp_row_rest(const T* z, int n, MaxArg<T> ma, T* e) {
  Sum4<T> rest;
  accumulate4(n, rest, [&](int v) {
    const T x = math::exp(z[v] - ma.max);
    e[v] = x;
    return v == ma.arg ? T(0) : x;
  });
  return rest.value();
}

}  // namespace obj
}  // namespace detail

/// Softmax cross-entropy of one row, fused with its gradient (spec 5.2/5.3, numerical rule 11:
/// log-softmax with max subtraction):
///   ce = -log f(a) = (m - z_a) + log1p(rest),  f = softmax(z[0, nsoft))
///   grad[v] = gw (f(v) - [v = a])  for v < nsoft;   grad[v] = 0 for nsoft <= v < V.
/// Three passes over the row (max; exp into grad and the sum; scale), one exp per entry. The
/// sum excludes the arg-max term (its exp is 1), so ce stays accurate when f(a) -> 1.
/// Returns ce; writes the row's log-sum-exp to *lse_out when lse_out != nullptr.
template <class T>
DD_HD T softmax_xent_row(const T* z, int nsoft, int V, int a, T gw, T* grad,
                         T* lse_out = nullptr) {
  const detail::obj::MaxArg<T> ma = detail::obj::row_max_arg(z, nsoft);
  const T r = detail::obj::exp_row_rest(z, nsoft, ma, grad);
  const T inv = gw / (T(1) + r);
  for (int v = 0; v < nsoft; ++v) grad[v] *= inv;
  grad[a] -= gw;
  for (int v = nsoft; v < V; ++v) grad[v] = T(0);
  const T l1p = math::log1p(r);
  if (lse_out) *lse_out = ma.max + l1p;
  return (ma.max - z[a]) + l1p;
}

/// Naive reference of softmax_xent_row: logsumexp, then -log f(a) and f - e_a term by term.
template <class T>
DD_HD T softmax_xent_row_naive(const T* z, int nsoft, int V, int a, T gw, T* grad) {
  const T lse = math::logsumexp(z, nsoft);
  for (int v = 0; v < V; ++v)
    grad[v] = v < nsoft ? gw * (math::exp(z[v] - lse) - (v == a ? T(1) : T(0))) : T(0);
  return lse - z[a];
}

/// weight[b] * (-log softmax(z[0, nsoft))[x0]) at the selected positions, 0 (and a zero gradient
/// row) elsewhere: CEDD / CEDD* (spec 5.2, nsoft = V) and MD4 / MDLM (spec 5.3, nsoft = N, with a
/// MASK output column V = N + 1 treated as -inf: excluded from the softmax, gradient 0).
/// pos_loss[i] = weight[b] ce_i; grad row = grad_scale weight[b] (f - e_a).
template <class T>
struct WeightedXentKernel {
  LossBatch<T> batch;
  const T* weight;  ///< per row
  int nsoft;        ///< classes in the softmax (the first nsoft outputs)
  int mask;         ///< the MASK id (positions with xt = mask are "masked")
  LossPositions positions;

  DD_HD void operator()(std::int64_t i) const {
    const std::int64_t b = i / batch.L;
    T* g = batch.grad + i * batch.V;
    if (positions == LossPositions::masked && batch.xt[i] != mask) {
      for (int v = 0; v < batch.V; ++v) g[v] = T(0);
      batch.pos_loss[i] = T(0);
      return;
    }
    const T w = weight[b];
    const T ce = softmax_xent_row(batch.logits + i * batch.V, nsoft, batch.V, batch.x0[i],
                                  batch.grad_scale * w, g);
    batch.pos_loss[i] = w * ce;
  }
};

/// row_loss[b] = sum_l pos_loss[b * L + l] (compensated, in order) + row_const.
template <class T>
struct RowSumKernel {
  const T* pos_loss;
  T* row_loss;
  std::int64_t L;
  T row_const;

  DD_HD void operator()(std::int64_t b) const {
    detail::CompensatedSum<T> s;
    const T* p = pos_loss + b * L;
    for (std::int64_t l = 0; l < L; ++l) s.add(p[l]);
    row_loss[b] = s.value() + row_const;
  }
};

/// Runs WeightedXentKernel over the B * L positions and RowSumKernel over the rows.
template <class Exec, class T>
void weighted_xent_raw(const Exec& exec, const LossBatch<T>& batch, const T* weight, int nsoft,
                       int mask, LossPositions positions, T row_const) {
  if (batch.B <= 0 || batch.L <= 0) return;
  exec.for_each(batch.B * batch.L, WeightedXentKernel<T>{batch, weight, nsoft, mask, positions});
  exec.for_each(batch.B, RowSumKernel<T>{batch.pos_loss, batch.row_loss, batch.L, row_const});
}

/// Naive reference of weighted_xent_raw (host, sequential): softmax_xent_row_naive per position
/// and a plain sum per row.
template <class T>
void weighted_xent_naive(const LossBatch<T>& batch, const T* weight, int nsoft, int mask,
                         LossPositions positions, T row_const) {
  for (std::int64_t b = 0; b < batch.B; ++b) {
    T row = T(0);
    for (std::int64_t l = 0; l < batch.L; ++l) {
      const std::int64_t i = b * batch.L + l;
      T* g = batch.grad + i * batch.V;
      T loss = T(0);
      if (positions == LossPositions::masked && batch.xt[i] != mask) {
        for (int v = 0; v < batch.V; ++v) g[v] = T(0);
      } else {
        loss = weight[b] * softmax_xent_row_naive(batch.logits + i * batch.V, nsoft, batch.V,
                                                  batch.x0[i], batch.grad_scale * weight[b], g);
      }
      batch.pos_loss[i] = loss;
      row += loss;
    }
    batch.row_loss[b] = row + row_const;
  }
}

}  // namespace discdiff
