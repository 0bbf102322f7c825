// discdiff/nn/ops/embedding.hpp: the token embedding h[n] = E[tok[n]] (E: V x C) and its
// backward dE[tok[n]] += dh[n] (rows added in ascending n: deterministic, no atomics).
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "common.hpp"

namespace discdiff {
namespace nn {

/// One row per element. Token ids are validated at the host boundary (Transformer).
template <class T>
struct EmbeddingForwardKernel {
  T* h;
  const int* tok;
  const T* E;
  int C;
  DD_HD void operator()(std::int64_t n) const {
    const T* e = E + std::int64_t(tok[n]) * C;
    T* o = h + n * C;
    for (int c = 0; c < C; ++c) o[c] = e[c];
  }
};

/// One block of kColBlock columns per element: for n = 0..N-1, dE[tok[n], c] += dh[n, c].
/// Every element of dE receives its rows in ascending n, whatever the executor.
template <class T>
struct EmbeddingBackwardKernel {
  T* dE;
  const int* tok;
  const T* dh;
  std::int64_t N;
  int C;
  DD_HD void operator()(std::int64_t blk) const {
    const int c0 = int(blk) * detail::kColBlock;
    const int c1 = c0 + detail::kColBlock < C ? c0 + detail::kColBlock : C;
    for (std::int64_t n = 0; n < N; ++n) {
      T* e = dE + std::int64_t(tok[n]) * C;
      const T* g = dh + n * C;
      for (int c = c0; c < c1; ++c) e[c] += g[c];
    }
  }
};

template <class Be, class T>
void embedding_forward(const Be& be, T* h, const int* tok, const T* E, long N, int C) {
  be.exec.for_each(N, EmbeddingForwardKernel<T>{h, tok, E, C}, double(N) * C);
}
template <class Be, class T>
void embedding_backward(const Be& be, T* dE, const int* tok, const T* dh, long N, int C) {
  be.exec.for_each(detail::col_blocks(C), EmbeddingBackwardKernel<T>{dE, tok, dh, N, C}, double(N) * C);
}

}  // namespace nn
}  // namespace discdiff
