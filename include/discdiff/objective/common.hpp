// discdiff/objective/common.hpp: the pieces every training objective shares (spec/MATH.md 5.0).
//
//   LossBatch<T>            the raw-pointer view of one batch: clean tokens x0, noisy tokens xt
//                           (B x L), network outputs (B x L x V) and the outputs of a loss call
//   softmax_xent_row        fused log-softmax cross-entropy of one row and its gradient
//   WeightedXentKernel      weight_b * (-log softmax(z)[x0]) at the selected positions
//                           (CEDD, CEDD*, MD4; spec 5.2, 5.3)
//   RowSumKernel            row_loss[b] = sum_l pos_loss[b, l] + row_const (fixed order)
//   LossPositions           which positions carry a loss: all, or masked only
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

/// Four-lane Neumaier accumulator: element k goes to lane k mod 4 (a fixed order, so the value
/// does not depend on the backend); the error is a few ulps of sum |x| independent of the count.
template <class T>
struct Sum4 {
  CompensatedSum<T> lane[4];
  DD_HD DD_INLINE void add(int k, T x) { lane[k & 3].add(x); }
  DD_HD DD_INLINE T value() const {
    detail::CompensatedSum<T> s;
    for (int j = 0; j < 4; ++j) s.add(lane[j].value());
    return s.value();
  }
};

}  // namespace obj
}  // namespace detail

/// Statistics of one log-softmax row, from softmax_stats.
template <class T>
struct SoftmaxStats {
  T max;   ///< m = max_v z_v
  T rest;  ///< sum_{v != argmax} exp(z_v - m), so that sum_v exp(z_v - m) = 1 + rest
  T lse;   ///< m + log1p(rest)
};

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
  T mx = z[0];
  int arg = 0;
  for (int v = 1; v < nsoft; ++v)
    if (z[v] > mx) {
      mx = z[v];
      arg = v;
    }
  detail::obj::Sum4<T> rest;
  for (int v = 0; v < nsoft; ++v) {
    const T e = math::exp(z[v] - mx);
    grad[v] = e;
    if (v != arg) rest.add(v, e);
  }
  const T r = rest.value();
  const T inv = gw / (T(1) + r);
  for (int v = 0; v < nsoft; ++v) grad[v] *= inv;
  grad[a] -= gw;
  for (int v = nsoft; v < V; ++v) grad[v] = T(0);
  const T l1p = math::log1p(r);
  if (lse_out) *lse_out = mx + l1p;
  return (mx - z[a]) + l1p;
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
