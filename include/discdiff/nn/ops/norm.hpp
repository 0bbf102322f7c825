// discdiff/nn/ops/norm.hpp: weight-only LayerNorm / RMSNorm fused with the adaLN
// modulation, forward and backward (spec/MODELS.md 1.2, 1.4).
//
//   xhat = (x - mean) rstd, rstd = 1/sqrt(var + eps)   (RMS: xhat = x rstd, rstd = 1/sqrt(mean x^2 + eps))
//   y = xhat g;   out = y (1 + scale[b]) + shift[b]     (shift/scale null: out = y)
//
// Shapes: B sequences of L rows of C; the per-sequence shift/scale of sequence b start at
// p + b mod_stride. Every sum has a fixed order: row statistics with 8 lanes (common.hpp);
// per-sequence sums over positions in ascending row; dg over sequences in ascending b.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/numerics.hpp"
#include "../config.hpp"
#include "common.hpp"

namespace discdiff {
namespace nn {

/// Forward, one row n per element; saves xhat (N x C) and rstd (N).
template <class T>
struct NormModForwardKernel {
  T* out;
  T* xhat;
  T* rstd;
  const T* x;
  const T* g;
  const T* shift;
  const T* scale;
  int L, C;
  std::int64_t mod_stride;
  bool layer_norm;
  T eps;
  DD_HD void operator()(std::int64_t n) const {
    const std::int64_t b = n / L;
    const T* xr = x + n * C;
    T* xh = xhat + n * C;
    T* o = out + n * C;
    const T mean = layer_norm ? detail::sum8(xr, C) / T(C) : T(0);
    const T var = detail::sqdev8(xr, mean, C) / T(C);
    const T rs = T(1) / math::sqrt(var + eps);
    rstd[n] = rs;
    const T* sh = shift ? shift + b * mod_stride : nullptr;
    const T* sc = scale ? scale + b * mod_stride : nullptr;
    if (sc && sh) {
      for (int c = 0; c < C; ++c) {
        const T v = (xr[c] - mean) * rs;
        xh[c] = v;
        o[c] = v * g[c] * (T(1) + sc[c]) + sh[c];
      }
    } else {
      for (int c = 0; c < C; ++c) {
        const T v = (xr[c] - mean) * rs;
        xh[c] = v;
        T y = v * g[c];
        if (sc) y = y * (T(1) + sc[c]);
        if (sh) y += sh[c];
        o[c] = y;
      }
    }
  }
};

/// Backward to the input, one row n per element:
///   dxhat = dout (1 + scale) g;   dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
/// (RMS: without mean(dxhat)). dxhat is recomputed on the fly (no scratch row).
template <class T>
struct NormModBackwardRowKernel {
  T* dx;
  const T* dout;
  const T* xhat;
  const T* rstd;
  const T* g;
  const T* scale;
  int L, C;
  std::int64_t mod_stride;
  bool layer_norm;
  DD_HD T dxh(const T* go, const T* sc, int c) const {
    return sc ? go[c] * (T(1) + sc[c]) * g[c] : go[c] * g[c];
  }
  DD_HD void operator()(std::int64_t n) const {
    const T* go = dout + n * C;
    const T* xh = xhat + n * C;
    T* dxr = dx + n * C;
    const T* sc = scale ? scale + (n / L) * mod_stride : nullptr;
    T a1[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    T a2[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    for (int c = 0; c < C; ++c) {
      const T v = dxh(go, sc, c);
      a1[c & 7] += v;
      a2[c & 7] += v * xh[c];
    }
    const T m1 = layer_norm ? detail::combine8(a1) / T(C) : T(0);
    const T m2 = detail::combine8(a2) / T(C);
    const T rs = rstd[n];
    for (int c = 0; c < C; ++c) dxr[c] += rs * (dxh(go, sc, c) - m1 - xh[c] * m2);
  }
};

/// Backward sums per sequence b and block of kColBlock columns (element b * nblk + blk):
///   dscale[b] = sum_pos dout xhat g;  dshift[b] = sum_pos dout;  dg_part[b] = sum_pos dout (1 + scale) xhat
/// (positions in ascending order; dshift/dscale written when non-null).
template <class T>
struct NormModBackwardColKernel {
  T* dshift;
  T* dscale;
  T* dg_part;
  const T* dout;
  const T* xhat;
  const T* g;
  const T* scale;
  int L, C, nblk;
  std::int64_t mod_stride;
  DD_HD void operator()(std::int64_t e) const {
    const std::int64_t b = e / nblk;
    const int c0 = int(e - b * nblk) * detail::kColBlock;
    const int c1 = c0 + detail::kColBlock < C ? c0 + detail::kColBlock : C;
    const T* sc = scale ? scale + b * mod_stride : nullptr;
    T gp[detail::kColBlock], dsh[detail::kColBlock], dsc[detail::kColBlock];
    for (int c = c0; c < c1; ++c) gp[c - c0] = dsh[c - c0] = dsc[c - c0] = T(0);
    for (int i = 0; i < L; ++i) {
      const std::int64_t off = (b * L + i) * C;
      const T* go = dout + off;
      const T* xh = xhat + off;
      for (int c = c0; c < c1; ++c) {
        dsc[c - c0] += go[c] * xh[c] * g[c];
        dsh[c - c0] += go[c];
        const T dy = sc ? go[c] * (T(1) + sc[c]) : go[c];
        gp[c - c0] += dy * xh[c];
      }
    }
    for (int c = c0; c < c1; ++c) {
      dg_part[b * C + c] = gp[c - c0];
      if (dshift) dshift[b * mod_stride + c] = dsh[c - c0];
      if (dscale) dscale[b * mod_stride + c] = dsc[c - c0];
    }
  }
};

/// The whole backward of one sequence b per element (host executors: one pass over the rows
/// keeps them in cache): the column sums of NormModBackwardColKernel and the dx of
/// NormModBackwardRowKernel, with the same operations in the same order (bit-identical).
template <class T>
struct NormModBackwardSeqKernel {
  T* dx;
  T* dshift;
  T* dscale;
  T* dg_part;
  const T* dout;
  const T* xhat;
  const T* rstd;
  const T* g;
  const T* scale;
  int L, C;
  std::int64_t mod_stride;
  bool layer_norm;
  std::int64_t nseq;  // B
  DD_HD void operator()(std::int64_t b) const {
    run(b, dx, dshift, dscale, dg_part, dout, xhat, rstd, g, scale, L, C, mod_stride, layer_norm, nseq);
  }
  // The body takes every field as a local (a store through one of the output pointers could
  // otherwise alias the kernel's own fields, which the compiler then reloads after every
  // store, and the row loops would not vectorise).
  static DD_HD void run(std::int64_t b, T* dx, T* dshift, T* dscale, T* dg_part, const T* dout,
                        const T* xhat, const T* rstd, const T* g, const T* scale, int L, int C,
                        std::int64_t mod_stride, bool layer_norm, std::int64_t nseq) {
    const T* sc = scale ? scale + b * mod_stride : nullptr;
    T* gp = dg_part + b * C;
    T* dxh = dg_part + (nseq + b) * C;  // the second half of dg_part: one row per sequence
    T* dsh = dshift ? dshift + b * mod_stride : nullptr;
    T* dsc = dscale ? dscale + b * mod_stride : nullptr;
    for (int c = 0; c < C; ++c) gp[c] = T(0);
    if (dsh)
      for (int c = 0; c < C; ++c) dsh[c] = T(0);
    if (dsc)
      for (int c = 0; c < C; ++c) dsc[c] = T(0);
    for (int i = 0; i < L; ++i) {
      const std::int64_t n = b * L + i;
      const T* go = dout + n * C;
      const T* xh = xhat + n * C;
      T* dxr = dx + n * C;
      if (dsc && dsh) {
        for (int c = 0; c < C; ++c) {
          dsc[c] += go[c] * xh[c] * g[c];
          dsh[c] += go[c];
        }
      } else {
        if (dsc)
          for (int c = 0; c < C; ++c) dsc[c] += go[c] * xh[c] * g[c];
        if (dsh)
          for (int c = 0; c < C; ++c) dsh[c] += go[c];
      }
      // dxhat = dout (1 + scale) g, kept in this sequence's scratch row
      if (sc)
        for (int c = 0; c < C; ++c) {
          const T dy = go[c] * (T(1) + sc[c]);
          gp[c] += dy * xh[c];
          dxh[c] = dy * g[c];
        }
      else
        for (int c = 0; c < C; ++c) {
          gp[c] += go[c] * xh[c];
          dxh[c] = go[c] * g[c];
        }
      const T m1 = layer_norm ? detail::sum8(dxh, C) / T(C) : T(0);
      const T m2 = detail::dot8(dxh, xh, C) / T(C);
      const T rs = rstd[n];
      for (int c = 0; c < C; ++c) dxr[c] += rs * (dxh[c] - m1 - xh[c] * m2);
    }
  }
};

/// dg[c] += sum_b part[b, c] (b ascending), one column per element.
template <class T>
struct ColumnPartialSumKernel {
  T* dg;
  const T* part;
  int B, C;
  DD_HD void operator()(std::int64_t c) const {
    T s = dg[c];
    for (int b = 0; b < B; ++b) s += part[std::int64_t(b) * C + c];
    dg[c] = s;
  }
};

/// Forward of the fused norm + modulation over B L rows.
template <class Be, class T>
void norm_mod_forward(const Be& be, T* out, T* xhat, T* rstd, const T* x, const T* g,
                      const T* shift, const T* scale, int B, int L, int C, long mod_stride,
                      NormType nt, T eps) {
  const std::int64_t N = std::int64_t(B) * L;
  be.exec.for_each(N, NormModForwardKernel<T>{out, xhat, rstd, x, g, shift, scale, L, C, mod_stride,
                                              nt == NormType::layer_norm, eps},
                   double(N) * C);
}

/// How a backward with per-sequence sums runs: one element per sequence (one pass over the
/// rows; the host executors' default) or split into a per-(sequence, column block) kernel and
/// a per-row kernel (more parallel: the device default). Same bits either way.
enum class SeqSplit { automatic, per_sequence, split };
namespace detail {
template <class Be>
bool use_split(SeqSplit s) {
  return s == SeqSplit::split || (s == SeqSplit::automatic && !Be::exec_type::host_memory);
}
}  // namespace detail

/// Backward of norm_mod_forward: dx += ..., dg += ..., dshift/dscale written (stride
/// mod_stride) when non-null; dg_part is 2 B C scratch (partial sums, then one row per sequence) in the backend's memory.
template <class Be, class T>
void norm_mod_backward(const Be& be, T* dx, T* dg, T* dshift, T* dscale, T* dg_part,
                       const T* dout, const T* xhat, const T* rstd, const T* g, const T* scale,
                       int B, int L, int C, long mod_stride, NormType nt,
                       SeqSplit how = SeqSplit::automatic) {
  const std::int64_t N = std::int64_t(B) * L;
  if (!detail::use_split<Be>(how)) {
    be.exec.for_each(B, NormModBackwardSeqKernel<T>{dx, dshift, dscale, dg_part, dout, xhat, rstd,
                                                    g, scale, L, C, mod_stride,
                                                    nt == NormType::layer_norm, B},
                     double(N) * C);
    be.exec.for_each(C, ColumnPartialSumKernel<T>{dg, dg_part, B, C}, double(B) * C);
    return;
  }
  const int nblk = detail::col_blocks(C);
  be.exec.for_each(std::int64_t(B) * nblk,
                   NormModBackwardColKernel<T>{dshift, dscale, dg_part, dout, xhat, g, scale, L,
                                               C, nblk, mod_stride},
                   double(N) * C);
  be.exec.for_each(N, NormModBackwardRowKernel<T>{dx, dout, xhat, rstd, g, scale, L, C, mod_stride,
                                                  nt == NormType::layer_norm},
                   double(N) * C);
  be.exec.for_each(C, ColumnPartialSumKernel<T>{dg, dg_part, B, C}, double(B) * C);
}

}  // namespace nn
}  // namespace discdiff
