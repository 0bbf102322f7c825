// discdiff/nn/ops/common.hpp: fixed-order row reductions shared by the nn kernels.
//
// Reductions use 8 interleaved partial sums (lane k takes the indices = k mod 8), added
// pairwise at the end: a fixed order (independent of threads, ISA and backend) that
// compilers can vectorise without reassociating (a plain running sum is latency-bound).
#pragma once

#include <cstdint>

#include "../../core/config.hpp"

namespace discdiff {
namespace nn {
namespace detail {

template <class T>
DD_HD inline T combine8(const T* a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
/// sum_c x_c
template <class T>
DD_HD inline T sum8(const T* x, int n) {
  T a[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  int c = 0;
  for (; c + 8 <= n; c += 8)
    for (int k = 0; k < 8; ++k) a[k] += x[c + k];
  for (; c < n; ++c) a[c & 7] += x[c];
  return combine8(a);
}
/// sum_c x_c y_c
template <class T>
DD_HD inline T dot8(const T* x, const T* y, int n) {
  T a[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  int c = 0;
  for (; c + 8 <= n; c += 8)
    for (int k = 0; k < 8; ++k) a[k] += x[c + k] * y[c + k];
  for (; c < n; ++c) a[c & 7] += x[c] * y[c];
  return combine8(a);
}
/// sum_c (x_c - m)^2
template <class T>
DD_HD inline T sqdev8(const T* x, T m, int n) {
  T a[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  int c = 0;
  for (; c + 8 <= n; c += 8)
    for (int k = 0; k < 8; ++k) {
      const T d = x[c + k] - m;
      a[k] += d * d;
    }
  for (; c < n; ++c) {
    const T d = x[c] - m;
    a[c & 7] += d * d;
  }
  return combine8(a);
}

/// Column blocks of the per-column sum kernels (a block of columns per kernel element keeps
/// the row reads contiguous on the host).
constexpr int kColBlock = 16;
DD_HD inline int col_blocks(int C) { return (C + kColBlock - 1) / kColBlock; }

}  // namespace detail
}  // namespace nn
}  // namespace discdiff
