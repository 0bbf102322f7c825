// discdiff/nn/ops/residual.hpp: the gated residual of the adaLN-zero blocks
// (spec/MODELS.md 1.2): out = x + gate[b] F (gate null: gate = 1), and its backward.
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "common.hpp"
#include "norm.hpp"

namespace discdiff {
namespace nn {

/// Forward, one row per element. out may alias x.
template <class T>
struct GatedResidualForwardKernel {
  T* out;
  const T* x;
  const T* F;
  const T* gate;
  int L, C;
  std::int64_t mod_stride;
  DD_HD void operator()(std::int64_t n) const {
    const T* gt = gate ? gate + (n / L) * mod_stride : nullptr;
    const std::int64_t o = n * C;
    if (gt)
      for (int c = 0; c < C; ++c) out[o + c] = x[o + c] + gt[c] * F[o + c];
    else
      for (int c = 0; c < C; ++c) out[o + c] = x[o + c] + F[o + c];
  }
};

/// dF = dout gate, one row per element.
template <class T>
struct GatedResidualBackwardRowKernel {
  T* dF;
  const T* dout;
  const T* gate;
  int L, C;
  std::int64_t mod_stride;
  DD_HD void operator()(std::int64_t n) const {
    const T* gt = gate ? gate + (n / L) * mod_stride : nullptr;
    const std::int64_t o = n * C;
    if (gt)
      for (int c = 0; c < C; ++c) dF[o + c] = dout[o + c] * gt[c];
    else
      for (int c = 0; c < C; ++c) dF[o + c] = dout[o + c];
  }
};

/// dgate[b] = sum_pos dout F (positions ascending), per sequence and block of columns.
template <class T>
struct GateGradKernel {
  T* dgate;
  const T* dout;
  const T* F;
  int L, C, nblk;
  std::int64_t mod_stride;
  DD_HD void operator()(std::int64_t e) const {
    const std::int64_t b = e / nblk;
    const int c0 = int(e - b * nblk) * detail::kColBlock;
    const int c1 = c0 + detail::kColBlock < C ? c0 + detail::kColBlock : C;
    T acc[detail::kColBlock];
    for (int c = c0; c < c1; ++c) acc[c - c0] = T(0);
    for (int i = 0; i < L; ++i) {
      const std::int64_t o = (b * L + i) * C;
      for (int c = c0; c < c1; ++c) acc[c - c0] += dout[o + c] * F[o + c];
    }
    for (int c = c0; c < c1; ++c) dgate[b * mod_stride + c] = acc[c - c0];
  }
};

/// The whole backward of one sequence per element (host executors): dF and dgate in one pass.
template <class T>
struct GatedResidualBackwardSeqKernel {
  T* dF;
  T* dgate;
  const T* dout;
  const T* F;
  const T* gate;
  int L, C;
  std::int64_t mod_stride;
  DD_HD void operator()(std::int64_t b) const {
    const T* gt = gate ? gate + b * mod_stride : nullptr;
    T* dg = dgate ? dgate + b * mod_stride : nullptr;
    if (dg)
      for (int c = 0; c < C; ++c) dg[c] = T(0);
    for (int i = 0; i < L; ++i) {
      const std::int64_t o = (b * L + i) * C;
      if (gt)
        for (int c = 0; c < C; ++c) dF[o + c] = dout[o + c] * gt[c];
      else
        for (int c = 0; c < C; ++c) dF[o + c] = dout[o + c];
      if (dg)
        for (int c = 0; c < C; ++c) dg[c] += dout[o + c] * F[o + c];
    }
  }
};

template <class Be, class T>
void gated_residual_forward(const Be& be, T* out, const T* x, const T* F, const T* gate, int B,
                            int L, int C, long mod_stride) {
  const std::int64_t N = std::int64_t(B) * L;
  be.exec.for_each(N, GatedResidualForwardKernel<T>{out, x, F, gate, L, C, mod_stride}, double(N) * C);
}

/// Backward: dF = dout gate (written); dgate[b] = sum_pos dout F (written, if non-null).
/// (dx += dout is implicit: the residual gradient buffer is shared.)
/// `how`: SeqSplit of norm.hpp (one element per sequence on the host, split on a device).
template <class Be, class T>
void gated_residual_backward(const Be& be, T* dF, T* dgate, const T* dout, const T* F,
                             const T* gate, int B, int L, int C, long mod_stride,
                             SeqSplit how = SeqSplit::automatic) {
  const std::int64_t N = std::int64_t(B) * L;
  if (!detail::use_split<Be>(how)) {
    be.exec.for_each(B, GatedResidualBackwardSeqKernel<T>{dF, dgate, dout, F, gate, L, C, mod_stride},
                     double(N) * C);
    return;
  }
  if (dgate) {
    const int nblk = detail::col_blocks(C);
    be.exec.for_each(std::int64_t(B) * nblk, GateGradKernel<T>{dgate, dout, F, L, C, nblk, mod_stride},
                     double(N) * C);
  }
  be.exec.for_each(N, GatedResidualBackwardRowKernel<T>{dF, dout, gate, L, C, mod_stride}, double(N) * C);
}

}  // namespace nn
}  // namespace discdiff
