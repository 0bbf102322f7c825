// discdiff/nn/ops/linear.hpp: the linear layer on a backend (spec/MODELS.md 1.2).
//   y[N, OC] = x[N, C] W[OC, C]^T + b[OC]     (PyTorch's Linear layout)
// The products go to the backend's GEMM; the bias add and the bias gradient are kernels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../../core/config.hpp"
#include "common.hpp"

namespace discdiff {
namespace nn {

/// y[n, :] += b (one row per element).
template <class T>
struct BiasAddKernel {
  T* y;
  const T* b;
  int OC;
  DD_HD void operator()(std::int64_t n) const {
    T* row = y + n * OC;
    for (int o = 0; o < OC; ++o) row[o] += b[o];
  }
};

/// db[o] += sum_n dy[n, o] for one block of kColBlock columns, rows in ascending n.
template <class T>
struct BiasGradKernel {
  T* db;
  const T* dy;
  std::int64_t N;
  int OC;
  DD_HD void operator()(std::int64_t blk) const {
    const int o0 = int(blk) * detail::kColBlock;
    const int o1 = o0 + detail::kColBlock < OC ? o0 + detail::kColBlock : OC;
    T acc[detail::kColBlock];
    for (int o = o0; o < o1; ++o) acc[o - o0] = T(0);
    for (std::int64_t n = 0; n < N; ++n) {
      const T* row = dy + n * OC;
      for (int o = o0; o < o1; ++o) acc[o - o0] += row[o];
    }
    for (int o = o0; o < o1; ++o) db[o] += acc[o - o0];
  }
};

/// Forward of the linear layer; b may be null.
template <class Be, class T>
void linear_forward(const Be& be, T* y, const T* x, const T* W, const T* b, int N, int C, int OC) {
  be.gemm.gemm(false, true, N, OC, C, T(1), x, C, W, C, T(0), y, OC);
  if (b) be.exec.for_each(N, BiasAddKernel<T>{y, b, OC}, double(N) * OC);
}

/// Backward of the linear layer:
///   dx = dy W (overwritten, or added when accumulate_dx; skipped when dx is null);
///   dW += dy^T x;   db += sum_n dy[n] (rows summed in ascending n; skipped when db is null).
template <class Be, class T>
void linear_backward(const Be& be, T* dx, T* dW, T* db, const T* dy, const T* x, const T* W,
                     int N, int C, int OC, bool accumulate_dx = false) {
  if (dx) be.gemm.gemm(false, false, N, C, OC, T(1), dy, OC, W, C, accumulate_dx ? T(1) : T(0), dx, C);
  be.gemm.gemm(true, false, OC, C, N, T(1), dy, OC, x, C, T(1), dW, C);
  if (db) be.exec.for_each(detail::col_blocks(OC), BiasGradKernel<T>{db, dy, N, OC}, double(N) * OC);
}

}  // namespace nn
}  // namespace discdiff
