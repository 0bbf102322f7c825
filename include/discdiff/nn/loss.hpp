// discdiff/nn/loss.hpp: the two training losses of the tests and the AR baseline,
// each fused with its gradient w.r.t. the logits (softmax - onehot).
//
//  * masked_cross_entropy: mean over the selected positions of -log softmax(logits)[target]
//    (the plain CE over the clean tokens at masked positions, MDLM-style);
//  * causal_cross_entropy: next-token CE, mean over b and j < L-1 of
//    -log softmax(logits[b, j])[tokens[b, j+1]] (MODELS.md 5).
// Per-row losses are summed in ascending row order (in double), so the result is
// independent of the thread count.
#pragma once

#include <cstddef>
#include <vector>

#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "parallel.hpp"

namespace discdiff {
namespace nn {

namespace detail {
/// -log softmax(z)[t] for one row, and g = (softmax(z) - onehot(t)) * w.
template <class T>
double softmax_ce_row(const T* z, int V, int t, T w, T* g) {
  T mx = z[0];
  for (int v = 1; v < V; ++v) mx = z[v] > mx ? z[v] : mx;
  T s = T(0);
  for (int v = 0; v < V; ++v) s += math::exp(z[v] - mx);
  const T lse = mx + math::log(s);
  if (g) {
    for (int v = 0; v < V; ++v) g[v] = math::exp(z[v] - lse) * w;
    g[t] -= w;
  }
  return double(lse - z[t]);
}
}  // namespace detail

/// Masked-position cross-entropy: loss = (1/M) sum_{n: mask[n] != 0} -log softmax(logits[n])[targets[n]],
/// M = number of selected rows (loss 0 when M = 0). dlogits (N x V, may be null) is written,
/// zero at unselected rows. Throws std::invalid_argument for a selected target outside [0, V).
template <class T>
T masked_cross_entropy(const T* logits, const int* targets, const unsigned char* mask, long N,
                       int V, T* dlogits) {
  long M = 0;
  for (long n = 0; n < N; ++n)
    if (mask[n]) {
      require_token("nn::masked_cross_entropy", "targets[n]", targets[n], V);
      ++M;
    }
  const T w = M > 0 ? T(1) / T(M) : T(0);
  std::vector<double> row_loss(N, 0.0);
#pragma omp parallel for schedule(static) if(N * V >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    T* g = dlogits ? dlogits + std::size_t(n) * V : nullptr;
    if (mask[n]) {
      row_loss[n] = detail::softmax_ce_row(logits + std::size_t(n) * V, V, targets[n], w, g);
    } else if (g) {
      for (int v = 0; v < V; ++v) g[v] = T(0);
    }
  }
  double s = 0.0;
  for (long n = 0; n < N; ++n) s += row_loss[n];
  return M > 0 ? T(s / double(M)) : T(0);
}

/// Causal next-token cross-entropy over B sequences of length L: row (b, j) predicts
/// tokens[b, j+1] for j < L-1; the last row of each sequence has zero gradient.
/// loss = mean over the B (L-1) predictions. Throws std::invalid_argument when L < 2 or a
/// target token lies outside [0, V) (for example a BOS id equal to V at position > 0).
template <class T>
T causal_cross_entropy(const T* logits, const int* tokens, int B, int L, int V, T* dlogits) {
  if (L < 2) throw_invalid("nn::causal_cross_entropy", "L", L, "needs at least 2 positions");
  for (int b = 0; b < B; ++b)
    for (int j = 1; j < L; ++j)
      require_token("nn::causal_cross_entropy", "tokens[b, j] (target)",
                    tokens[std::size_t(b) * L + j], V);
  const long N = long(B) * L;
  const T w = T(1) / T(double(B) * (L - 1));
  std::vector<double> row_loss(N, 0.0);
#pragma omp parallel for schedule(static) if(long(B) * L * V >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    const int j = int(n % L);
    T* g = dlogits ? dlogits + std::size_t(n) * V : nullptr;
    if (j < L - 1) {
      row_loss[n] = detail::softmax_ce_row(logits + std::size_t(n) * V, V, tokens[n + 1], w, g);
    } else if (g) {
      for (int v = 0; v < V; ++v) g[v] = T(0);
    }
  }
  double s = 0.0;
  for (long n = 0; n < N; ++n) s += row_loss[n];
  return T(s / (double(B) * (L - 1)));
}

}  // namespace nn
}  // namespace discdiff
