// discdiff/nn/loss.hpp: the two losses of the tests and the AR baseline on a backend, each
// fused with its gradient w.r.t. the logits (softmax - onehot):
//
//  * masked_cross_entropy: mean over the selected positions of -log softmax(logits)[target]
//    (the plain CE over the clean tokens at masked positions, MDLM-style);
//  * causal_cross_entropy: next-token CE, mean over b and j < L-1 of
//    -log softmax(logits[b, j])[tokens[b, j+1]] (MODELS.md 5).
//
// Each row is the objectives' softmax cross-entropy row (objective/common.hpp softmax_xent_row:
// max subtraction, one exponential per entry, the gradient fused): one row per kernel element
// writes its loss (double) and its gradient row (into a scratch buffer when the caller passes no
// dlogits); the row losses
// are then added by the executor's fixed-order block sum (exec/algorithm.hpp), so the result
// is the same on every backend and thread count. Pointers are in the backend's memory;
// targets are validated on the host (copied there first for a device backend).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "../exec/algorithm.hpp"
#include "../exec/memory.hpp"
#include "../objective/common.hpp"

namespace discdiff {
namespace nn {

namespace detail {
/// A host pointer to n elements of p (p itself in host-accessible memory, else a copy).
template <class Space, class U>
const U* host_view(const U* p, std::size_t n, std::vector<U>& tmp) {
  if constexpr (Space::host_accessible) {
    (void)n;
    (void)tmp;
    return p;
  } else {
    tmp.resize(n);
    copy_n(HostSpace{}, tmp.data(), Space{}, p, n);
    return tmp.data();
  }
}

/// Row terms of the loss sum (read from the row-loss buffer).
struct RowLossTerm {
  const double* row;
  DD_HD double operator()(std::int64_t i) const { return row[i]; }
};
/// Rows per block of the loss sum.
constexpr std::int64_t kLossBlock = 1024;
}  // namespace detail

/// Row n of the masked CE: loss and gradient (weight w) at selected rows, zero elsewhere.
template <class T>
struct MaskedCeRowKernel {
  const T* logits;
  const int* targets;
  const unsigned char* mask;
  int V;
  T w;
  T* dlogits;  // N x V
  double* row_loss;
  DD_HD void operator()(std::int64_t n) const {
    T* g = dlogits + n * V;
    if (mask[n]) {
      row_loss[n] = double(softmax_xent_row(logits + n * V, V, V, targets[n], w, g));
    } else {
      row_loss[n] = 0.0;
      for (int v = 0; v < V; ++v) g[v] = T(0);
    }
  }
};

/// Row (b, j) of the causal CE predicts tokens[b, j + 1]; the last row of a sequence is zero.
template <class T>
struct CausalCeRowKernel {
  const T* logits;
  const int* tokens;
  int L, V;
  T w;
  T* dlogits;  // N x V
  double* row_loss;
  DD_HD void operator()(std::int64_t n) const {
    const int j = int(n % L);
    T* g = dlogits + n * V;
    if (j < L - 1) {
      row_loss[n] = double(softmax_xent_row(logits + n * V, V, V, tokens[n + 1], w, g));
    } else {
      row_loss[n] = 0.0;
      for (int v = 0; v < V; ++v) g[v] = T(0);
    }
  }
};

/// Masked-position cross-entropy: loss = (1/M) sum_{n: mask[n] != 0} -log softmax(logits[n])[targets[n]],
/// M = number of selected rows (loss 0 when M = 0). dlogits (N x V, may be null) is written,
/// zero at unselected rows. Throws std::invalid_argument for a selected target outside [0, V).
template <class Be, class T>
T masked_cross_entropy(const Be& be, const T* logits, const int* targets,
                       const unsigned char* mask, long N, int V, T* dlogits) {
  using Space = typename Be::memory_space;
  std::vector<int> tt;
  std::vector<unsigned char> tm;
  const int* ht = detail::host_view<Space>(targets, std::size_t(N), tt);
  const unsigned char* hm = detail::host_view<Space>(mask, std::size_t(N), tm);
  long M = 0;
  for (long n = 0; n < N; ++n)
    if (hm[n]) {
      require_token("nn::masked_cross_entropy", "targets[n]", ht[n], V);
      ++M;
    }
  const T w = M > 0 ? T(1) / T(M) : T(0);
  Buffer<double, Space> rows{std::size_t(N > 0 ? N : 0)};
  Buffer<T, Space> scratch(dlogits ? 0 : std::size_t(N > 0 ? N : 0) * std::size_t(V));
  be.exec.for_each(N, MaskedCeRowKernel<T>{logits, targets, mask, V, w,
                                           dlogits ? dlogits : scratch.data(), rows.data()},
                   double(N) * V);
  const double s = reduce_sum_value<typename Be::exec_type, double>(
      be.exec, N, detail::kLossBlock, detail::RowLossTerm{rows.data()});
  return M > 0 ? T(s / double(M)) : T(0);
}

/// Causal next-token cross-entropy over B sequences of length L: row (b, j) predicts
/// tokens[b, j+1] for j < L-1; the last row of each sequence has zero gradient.
/// loss = mean over the B (L-1) predictions. Throws std::invalid_argument when L < 2 or a
/// target token lies outside [0, V) (for example a BOS id equal to V at position > 0).
template <class Be, class T>
T causal_cross_entropy(const Be& be, const T* logits, const int* tokens, int B, int L, int V,
                       T* dlogits) {
  using Space = typename Be::memory_space;
  if (L < 2) throw_invalid("nn::causal_cross_entropy", "L", L, "needs at least 2 positions");
  const long N = long(B) * L;
  std::vector<int> tt;
  const int* ht = detail::host_view<Space>(tokens, std::size_t(N), tt);
  for (int b = 0; b < B; ++b)
    for (int j = 1; j < L; ++j)
      require_token("nn::causal_cross_entropy", "tokens[b, j] (target)", ht[std::size_t(b) * L + j], V);
  const T w = T(1) / T(double(B) * (L - 1));
  Buffer<double, Space> rows{std::size_t(N)};
  Buffer<T, Space> scratch(dlogits ? 0 : std::size_t(N) * std::size_t(V));
  be.exec.for_each(N, CausalCeRowKernel<T>{logits, tokens, L, V, w,
                                           dlogits ? dlogits : scratch.data(), rows.data()},
                   double(N) * V);
  const double s = reduce_sum_value<typename Be::exec_type, double>(
      be.exec, N, detail::kLossBlock, detail::RowLossTerm{rows.data()});
  return T(s / (double(B) * (L - 1)));
}

}  // namespace nn
}  // namespace discdiff
