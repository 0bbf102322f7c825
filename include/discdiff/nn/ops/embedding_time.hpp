// discdiff/nn/ops/embedding_time.hpp: the sinusoidal timestep embedding and the rotary
// position embedding (spec/MODELS.md 3.1, 4).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/numerics.hpp"
#include "../../exec/memory.hpp"

namespace discdiff {
namespace nn {

/// temb(sbar) = [cos(sbar f_0..f_{h-1}), sin(sbar f_0..f_{h-1})], f_k = exp(-ln(10000) k / h),
/// h = dim/2 (cos half first), evaluated in double; one (b, k) per element.
template <class T>
struct TimestepEmbeddingKernel {
  T* out;
  const T* sbar;
  int dim;
  DD_HD void operator()(std::int64_t e) const {
    const int half = dim / 2;
    const std::int64_t b = e / half;
    const int k = int(e - b * half);
    const double f = math::exp(-math::log(10000.0) * double(k) / double(half));
    const double a = double(sbar[b]) * f;
    out[b * dim + k] = T(math::cos(a));
    out[b * dim + half + k] = T(math::sin(a));
  }
};

template <class Be, class T>
void timestep_embedding(const Be& be, T* out, const T* sbar, int B, int dim) {
  be.exec.for_each(std::int64_t(B) * (dim / 2), TimestepEmbeddingKernel<T>{out, sbar, dim},
                   double(B) * dim);
}

/// Rotary tables in memory space Space, rotate-half convention (SEDD/MDLM): pairs
/// (k, k + hd/2), angle phi_{p,k} = p base^{-2k/hd}, evaluated in double on the host and
/// rounded to T.
template <class T, class Space = HostSpace>
struct RopeTables {
  int seq_len = 0, half = 0;
  Buffer<T, Space> cos, sin;  // [seq_len, half]
  RopeTables() = default;
  RopeTables(int L, int head_dim, double base) : seq_len(L), half(head_dim / 2) {
    std::vector<T> c(std::size_t(L) * half), s(std::size_t(L) * half);
    for (int p = 0; p < L; ++p)
      for (int k = 0; k < half; ++k) {
        const double theta = std::pow(base, -2.0 * k / double(head_dim));
        c[std::size_t(p) * half + k] = T(std::cos(p * theta));
        s[std::size_t(p) * half + k] = T(std::sin(p * theta));
      }
    cos.resize(c.size());
    sin.resize(s.size());
    copy_from_host(cos, c.data(), c.size());
    copy_from_host(sin, s.data(), s.size());
  }
};

/// In-place rotation of q and k in qkv (N x 3C, q = cols [0, C), k = [C, 2C), head h at
/// h hd), one row per element: x'_k = x_k cos - x_{k+hd/2} sin; x'_{k+hd/2} = x_{k+hd/2} cos
/// + x_k sin. sgn = -1 applies R^T (the backward pass).
template <class T>
struct RopeKernel {
  T* qkv;
  const T* cosv;
  const T* sinv;
  int L, C, H;
  T sgn;
  DD_HD void operator()(std::int64_t n) const {
    const int hd = C / H, half = hd / 2;
    const int p = int(n % L);
    const T* cs = cosv + std::int64_t(p) * half;
    const T* sn = sinv + std::int64_t(p) * half;
    for (int part = 0; part < 2; ++part)
      for (int h = 0; h < H; ++h) {
        T* x = qkv + n * 3 * C + std::int64_t(part) * C + std::int64_t(h) * hd;
        for (int k = 0; k < half; ++k) {
          const T x1 = x[k], x2 = x[k + half];
          const T c = cs[k], s = sgn * sn[k];
          x[k] = x1 * c - x2 * s;
          x[k + half] = x2 * c + x1 * s;
        }
      }
  }
};

template <class Be, class T, class Space>
void rope_apply(const Be& be, T* qkv, const RopeTables<T, Space>& rt, int B, int L, int C, int H,
                bool inverse) {
  const std::int64_t N = std::int64_t(B) * L;
  be.exec.for_each(N, RopeKernel<T>{qkv, rt.cos.data(), rt.sin.data(), L, C, H, inverse ? T(-1) : T(1)},
                   2.0 * double(N) * C);
}

}  // namespace nn
}  // namespace discdiff
