// discdiff/nn/layers.hpp: the transformer's layers as forward/backward pairs over
// flat row-major buffers (spec/MODELS.md 1.2 and 1.4).
//
// Shapes: B sequences of L positions, N = B L rows; a per-sequence vector (shift,
// scale, gate of adaLN) for sequence b starts at p + b * stride. Backward kernels
// that sum over positions (dshift, dscale, dgate) sum the L rows of a sequence in
// ascending order; sums over all N rows (dgamma, biases) are formed per sequence
// and then added over b in ascending order. No atomics: every result is a fixed
// sequence of floating-point operations, independent of the thread count (except
// inside the GEMMs, see gemm.hpp).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "config.hpp"
#include "gemm.hpp"
#include "parallel.hpp"
#include "simd.hpp"

namespace discdiff {
namespace nn {


namespace detail {
/// Reductions with 8 interleaved partial sums (lane k takes the indices = k mod 8), added
/// pairwise at the end: a fixed order (independent of threads and ISA) that compilers can
/// vectorise without reassociating (a plain running sum is latency-bound, 1 add/4 cycles).
template <class T>
inline T combine8(const T* a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
template <class T>
inline T sum8(const T* x, int n) {
  T a[8] = {};
  int c = 0;
  for (; c + 8 <= n; c += 8)
    for (int k = 0; k < 8; ++k) a[k] += x[c + k];
  for (; c < n; ++c) a[c & 7] += x[c];
  return combine8(a);
}
template <class T>
inline T dot8(const T* x, const T* y, int n) {
  T a[8] = {};
  int c = 0;
  for (; c + 8 <= n; c += 8)
    for (int k = 0; k < 8; ++k) a[k] += x[c + k] * y[c + k];
  for (; c < n; ++c) a[c & 7] += x[c] * y[c];
  return combine8(a);
}
/// A per-thread row buffer of at least n elements (kept between calls).
template <class T>
inline T* scratch_row(int n) {
  thread_local std::vector<T> buf;
  if (buf.size() < std::size_t(n)) buf.resize(std::size_t(n));
  return buf.data();
}
/// sum_c (x_c - m)^2
template <class T>
inline T sqdev8(const T* x, T m, int n) {
  T a[8] = {};
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
}  // namespace detail

// ------------------------------------------------------------------ token embedding
/// h[n] = E[tok[n]] (E: V x C). Tokens are validated by the caller (Transformer).
template <class T>
void embedding_forward(T* h, const int* tok, const T* E, long N, int C) {
#pragma omp parallel for schedule(static) if(N * C >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    const T* e = E + std::size_t(tok[n]) * C;
    T* o = h + std::size_t(n) * C;
    for (int c = 0; c < C; ++c) o[c] = e[c];
  }
}
/// dE[tok[n]] += dh[n], rows in ascending n (sequential: deterministic, cheap).
template <class T>
void embedding_backward(T* dE, const int* tok, const T* dh, long N, int C) {
  for (long n = 0; n < N; ++n) {
    T* e = dE + std::size_t(tok[n]) * C;
    const T* g = dh + std::size_t(n) * C;
    for (int c = 0; c < C; ++c) e[c] += g[c];
  }
}

// ------------------------------------------------------------------ norm + modulation
/// Weight-only LayerNorm (or RMSNorm) fused with the adaLN modulation:
///   xhat = (x - mean) rstd, rstd = 1/sqrt(var + eps)      (RMS: xhat = x rstd, rstd = 1/sqrt(mean x^2 + eps))
///   y = xhat g;   out = y (1 + scale[b]) + shift[b]      (shift/scale null: out = y)
/// Saves xhat (N x C) and rstd (N) for the backward pass.
template <class T>
void norm_mod_forward(T* out, T* xhat, T* rstd, const T* x, const T* g, const T* shift,
                      const T* scale, int B, int L, int C, long mod_stride, NormType nt,
                      T eps) {
  const long N = long(B) * L;
#pragma omp parallel for schedule(static) if(N * C >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    const long b = n / L;
    const T* xr = x + std::size_t(n) * C;
    T* xh = xhat + std::size_t(n) * C;
    T* o = out + std::size_t(n) * C;
    const T mean = nt == NormType::layer_norm ? detail::sum8(xr, C) / T(C) : T(0);
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
}

/// Backward of norm_mod_forward (MODELS.md 1.4), per sequence b in parallel:
///   dy = dout (1 + scale);  dscale[b] = sum_pos dout * y;  dshift[b] = sum_pos dout;
///   dg += sum_n dy * xhat;  dxhat = dy g;
///   dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))     (RMS: without mean(dxhat)).
/// dshift/dscale are written (stride mod_stride) when non-null; dg_part is B x C scratch.
template <class T>
void norm_mod_backward(T* dx, T* dg, T* dshift, T* dscale, T* dg_part, const T* dout,
                       const T* xhat, const T* rstd, const T* g, const T* scale, int B, int L,
                       int C, long mod_stride, NormType nt) {
#pragma omp parallel for schedule(static) if(long(B) * L * C >= parallel_min_work())
  for (int b = 0; b < B; ++b) {
    T* gp = dg_part + std::size_t(b) * C;
    T* dsh = dshift ? dshift + b * mod_stride : nullptr;
    T* dsc = dscale ? dscale + b * mod_stride : nullptr;
    const T* sc = scale ? scale + b * mod_stride : nullptr;
    for (int c = 0; c < C; ++c) gp[c] = T(0);
    if (dsh)
      for (int c = 0; c < C; ++c) dsh[c] = T(0);
    if (dsc)
      for (int c = 0; c < C; ++c) dsc[c] = T(0);
    T* dxh = detail::scratch_row<T>(C);  // dxhat = dy g of the current row
    for (int i = 0; i < L; ++i) {
      const std::size_t n = std::size_t(b) * L + i;
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
      if (sc) {
        for (int c = 0; c < C; ++c) {
          const T dy = go[c] * (T(1) + sc[c]);
          gp[c] += dy * xh[c];
          dxh[c] = dy * g[c];
        }
      } else {
        for (int c = 0; c < C; ++c) {
          gp[c] += go[c] * xh[c];
          dxh[c] = go[c] * g[c];
        }
      }
      const T m1 = nt == NormType::layer_norm ? detail::sum8(dxh, C) / T(C) : T(0);
      const T m2 = detail::dot8(dxh, xh, C) / T(C);
      const T rs = rstd[n];
      for (int c = 0; c < C; ++c) dxr[c] += rs * (dxh[c] - m1 - xh[c] * m2);
    }
  }
  for (int b = 0; b < B; ++b) {
    const T* gp = dg_part + std::size_t(b) * C;
    for (int c = 0; c < C; ++c) dg[c] += gp[c];
  }
}

// ------------------------------------------------------------------ gated residual
/// out = x + gate[b] F (gate null: gate = 1). out may alias x.
template <class T>
void gated_residual_forward(T* out, const T* x, const T* F, const T* gate, int B, int L, int C,
                            long mod_stride) {
  const long N = long(B) * L;
#pragma omp parallel for schedule(static) if(N * C >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    const T* gt = gate ? gate + (n / L) * mod_stride : nullptr;
    const std::size_t o = std::size_t(n) * C;
    if (gt)
      for (int c = 0; c < C; ++c) out[o + c] = x[o + c] + gt[c] * F[o + c];
    else
      for (int c = 0; c < C; ++c) out[o + c] = x[o + c] + F[o + c];
  }
}
/// Backward: dF = dout gate (written);  dgate[b] = sum_pos dout F (written, if non-null).
/// (dx += dout is implicit: the residual gradient buffer is shared.)
template <class T>
void gated_residual_backward(T* dF, T* dgate, const T* dout, const T* F, const T* gate, int B,
                             int L, int C, long mod_stride) {
#pragma omp parallel for schedule(static) if(long(B) * L * C >= parallel_min_work())
  for (int b = 0; b < B; ++b) {
    const T* gt = gate ? gate + b * mod_stride : nullptr;
    T* dg = dgate ? dgate + b * mod_stride : nullptr;
    if (dg)
      for (int c = 0; c < C; ++c) dg[c] = T(0);
    for (int i = 0; i < L; ++i) {
      const std::size_t o = (std::size_t(b) * L + i) * C;
      for (int c = 0; c < C; ++c) {
        dF[o + c] = gt ? dout[o + c] * gt[c] : dout[o + c];
        if (dg) dg[c] += dout[o + c] * F[o + c];
      }
    }
  }
}

// ------------------------------------------------------------------ dropout
/// Philox stream base of the dropout masks (site s uses kDropoutStream + s).
constexpr std::uint32_t kDropoutStream = 0x4e4e0100u;

/// Inverted dropout in place: x[n, c] <- x[n, c] keep[n, c] / (1 - p). Row n of site
/// `site` draws its C words from CounterRng(seed, kDropoutStream + site, (step << 32) | n)
/// in order c = 0..C-1, and keeps an element when its word is >= p 2^32, so a mask is a
/// pure function of (seed, step, site, n, c), whatever the thread count. keep (N x C bytes)
/// is saved for the backward pass. p = 0 keeps everything (x unchanged).
template <class T>
void dropout_forward(T* x, unsigned char* keep, long N, int C, double p, std::uint64_t seed,
                     std::uint64_t step, std::uint32_t site) {
  const double thr = std::ldexp(p, 32);
  const std::uint64_t cut = thr >= 4294967296.0 ? 4294967296ull : std::uint64_t(std::ceil(thr));
  const T scale = p < 1 ? T(1.0 / (1.0 - p)) : T(0);
#pragma omp parallel for schedule(static) if(N * C >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    CounterRng rng(seed, kDropoutStream + site, (step << 32) | std::uint64_t(n));
    T* xr = x + std::size_t(n) * C;
    unsigned char* kr = keep + std::size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const bool k = std::uint64_t(rng.next_u32()) >= cut;
      kr[c] = k ? 1 : 0;
      xr[c] = k ? xr[c] * scale : T(0);
    }
  }
}
/// Backward of dropout_forward: dx <- dx keep / (1 - p) (in place).
template <class T>
void dropout_backward(T* dx, const unsigned char* keep, long N, int C, double p) {
  const T scale = p < 1 ? T(1.0 / (1.0 - p)) : T(0);
  const long n = N * C;
#pragma omp parallel for schedule(static) if(n >= parallel_min_work())
  for (long i = 0; i < n; ++i) dx[i] = keep[i] ? dx[i] * scale : T(0);
}

// ------------------------------------------------------------------ activations
namespace detail {
template <class T>
constexpr T gelu_k0() {
  return T(0.7978845608028654);  // sqrt(2/pi)
}
}  // namespace detail

namespace detail {
/// GELU over one contiguous chunk on the calling thread: simd::gelu_forward for float on an
/// AVX2/FMA CPU, otherwise Eigen's vectorised exp, both as x sigmoid(2u).
template <class T>
void gelu_chunk(T* y, const T* x, long len, bool avx2) {
  (void)avx2;
#if DISCDIFF_NN_SIMD
  if constexpr (std::is_same<T, float>::value) {
    if (avx2) {
      simd::gelu_forward(y, x, len);
      return;
    }
  }
#endif
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  Eigen::Map<const Arr> xv(x, len);
  Eigen::Map<Arr> yv(y, len);
  // 0.5 x (1 + tanh u) = x sigmoid(2u): no cancellation in the negative tail
  yv = xv / (T(1) + (T(-2) * gelu_k0<T>() * (xv + T(0.044715) * xv.cube())).exp());
}
}  // namespace detail

/// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))), over chunks
/// of 4096 elements (detail::gelu_chunk).
template <class T>
void gelu_forward(T* y, const T* x, long n) {
  constexpr long kChunk = 4096;
  const long nch = (n + kChunk - 1) / kChunk;
  const bool avx2 = std::is_same<T, float>::value && simd::cpu_has_avx2_fma();
#pragma omp parallel for schedule(static) if(n >= parallel_min_work())
  for (long ch = 0; ch < nch; ++ch) {
    const long i0 = ch * kChunk, len = i0 + kChunk < n ? kChunk : n - i0;
    detail::gelu_chunk(y + i0, x + i0, len, avx2);
  }
}

/// The first MLP layer's bias fused with its activation, over N rows of F:
/// f[n] += b (f keeps the pre-activation for the backward pass); y[n] = GELU(f[n]).
template <class T>
void bias_gelu_forward(T* y, T* f, const T* b, long N, int F) {
  const bool avx2 = std::is_same<T, float>::value && simd::cpu_has_avx2_fma();
#pragma omp parallel for schedule(static) if(N * F >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    T* fr = f + std::size_t(n) * F;
    for (int c = 0; c < F; ++c) fr[c] += b[c];
    detail::gelu_chunk(y + std::size_t(n) * F, fr, F, avx2);
  }
}

/// dx = dy gelu'(x), gelu'(x) = 0.5(1 + tanh k) + 0.5 x (1 - tanh^2 k) sqrt(2/pi)(1 + 3*0.044715 x^2).
/// dx may alias dy.
template <class T>
void gelu_backward(T* dx, const T* dy, const T* x, long n) {
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  constexpr long kChunk = 4096;
  const long nch = (n + kChunk - 1) / kChunk;
  const bool avx2 = std::is_same<T, float>::value && simd::cpu_has_avx2_fma();
  (void)avx2;
#pragma omp parallel for schedule(static) if(n >= parallel_min_work())
  for (long ch = 0; ch < nch; ++ch) {
    const long i0 = ch * kChunk, len = i0 + kChunk < n ? kChunk : n - i0;
#if DISCDIFF_NN_SIMD
    if constexpr (std::is_same<T, float>::value) {
      if (avx2) {
        simd::gelu_backward(dx + i0, dy + i0, x + i0, len);
        continue;
      }
    }
#endif
    Eigen::Map<const Arr> xv(x + i0, len), gv(dy + i0, len);
    Eigen::Map<Arr> dv(dx + i0, len);
    // with s = sigmoid(2u) = (1 + tanh u)/2: gelu' = s + 2 x s (1 - s) u'(x)
    const Arr sg =
        T(1) / (T(1) + (T(-2) * detail::gelu_k0<T>() * (xv + T(0.044715) * xv.cube())).exp());
    dv = gv * (sg + T(2) * xv * sg * (T(1) - sg) * detail::gelu_k0<T>() *
                        (T(1) + T(3) * T(0.044715) * xv.square()));
  }
}

/// Naive references of gelu_forward / gelu_backward (std::tanh per element).
template <class T>
void gelu_forward_naive(T* y, const T* x, long n) {
  for (long i = 0; i < n; ++i) {
    const T v = x[i];
    y[i] = T(0.5) * v * (T(1) + std::tanh(detail::gelu_k0<T>() * (v + T(0.044715) * v * v * v)));
  }
}
template <class T>
void gelu_backward_naive(T* dx, const T* dy, const T* x, long n) {
  for (long i = 0; i < n; ++i) {
    const T v = x[i];
    const T t = std::tanh(detail::gelu_k0<T>() * (v + T(0.044715) * v * v * v));
    dx[i] = dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * detail::gelu_k0<T>() *
                                               (T(1) + T(3) * T(0.044715) * v * v));
  }
}

/// Gated linear unit over rows of u = [a, b] (N x 2F): y[n, j] = act(a[n, j]) b[n, j],
/// act = SiLU (SwiGLU) or GELU-tanh (GeGLU).
template <class T>
void glu_forward(T* y, const T* u, long N, int F, MlpType type) {
#pragma omp parallel for schedule(static) if(N * F >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    const T* a = u + std::size_t(n) * 2 * F;
    const T* b = a + F;
    T* yr = y + std::size_t(n) * F;
    for (int j = 0; j < F; ++j) {
      const T x = a[j];
      T act;
      if (type == MlpType::swiglu) {
        act = x / (T(1) + math::exp(-x));
      } else {
        act = T(0.5) * x * (T(1) + std::tanh(detail::gelu_k0<T>() * (x + T(0.044715) * x * x * x)));
      }
      yr[j] = act * b[j];
    }
  }
}
/// Backward of glu_forward: da = dy b act'(a), db = dy act(a) (du is N x 2F, written).
template <class T>
void glu_backward(T* du, const T* dy, const T* u, long N, int F, MlpType type) {
#pragma omp parallel for schedule(static) if(N * F >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    const T* a = u + std::size_t(n) * 2 * F;
    const T* b = a + F;
    const T* g = dy + std::size_t(n) * F;
    T* da = du + std::size_t(n) * 2 * F;
    T* db = da + F;
    for (int j = 0; j < F; ++j) {
      const T x = a[j];
      T act, dact;
      if (type == MlpType::swiglu) {
        const T sg = T(1) / (T(1) + math::exp(-x));
        act = x * sg;
        dact = sg * (T(1) + x * (T(1) - sg));
      } else {
        const T k0 = detail::gelu_k0<T>();
        const T t = std::tanh(k0 * (x + T(0.044715) * x * x * x));
        act = T(0.5) * x * (T(1) + t);
        dact = T(0.5) * (T(1) + t) +
               T(0.5) * x * (T(1) - t * t) * k0 * (T(1) + T(3) * T(0.044715) * x * x);
      }
      da[j] = g[j] * b[j] * dact;
      db[j] = g[j] * act;
    }
  }
}

/// SiLU: x sigmoid(x).
template <class T>
void silu_forward(T* y, const T* x, long n) {
  for (long i = 0; i < n; ++i) y[i] = x[i] / (T(1) + math::exp(-x[i]));
}
/// dx = dy sig(x)(1 + x(1 - sig(x))); dx may alias dy.
template <class T>
void silu_backward(T* dx, const T* dy, const T* x, long n) {
  for (long i = 0; i < n; ++i) {
    const T s = T(1) / (T(1) + math::exp(-x[i]));
    dx[i] = dy[i] * s * (T(1) + x[i] * (T(1) - s));
  }
}

// ------------------------------------------------------------------ time embedding
/// temb(sbar) = [cos(sbar f_0..f_{h-1}), sin(sbar f_0..f_{h-1})], f_k = exp(-ln(10000) k / h),
/// h = dim/2 (MODELS.md 3.1, cos half first). Evaluated in double.
template <class T>
void timestep_embedding(T* out, const T* sbar, int B, int dim) {
  const int half = dim / 2;
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < half; ++k) {
      const double f = std::exp(-std::log(10000.0) * double(k) / double(half));
      const double a = double(sbar[b]) * f;
      out[std::size_t(b) * dim + k] = T(std::cos(a));
      out[std::size_t(b) * dim + half + k] = T(std::sin(a));
    }
}

// ------------------------------------------------------------------ rotary embedding
/// Rotary tables, rotate-half convention (MODELS.md 4; SEDD/MDLM): pairs (k, k + hd/2),
/// angle phi_{p,k} = p base^{-2k/hd}, evaluated in double and rounded to T.
template <class T>
struct RopeTables {
  int seq_len = 0, half = 0;
  std::vector<T> cos, sin;  // [seq_len, half]
  RopeTables() = default;
  RopeTables(int L, int head_dim, double base) : seq_len(L), half(head_dim / 2) {
    cos.resize(std::size_t(L) * half);
    sin.resize(std::size_t(L) * half);
    for (int p = 0; p < L; ++p)
      for (int k = 0; k < half; ++k) {
        const double theta = std::pow(base, -2.0 * k / double(head_dim));
        cos[std::size_t(p) * half + k] = T(std::cos(p * theta));
        sin[std::size_t(p) * half + k] = T(std::sin(p * theta));
      }
  }
};

/// In-place rotation of q and k in qkv (N x 3C, q = cols [0, C), k = [C, 2C), head h at
/// h hd): x'_k = x_k cos - x_{k+hd/2} sin;  x'_{k+hd/2} = x_{k+hd/2} cos + x_k sin.
/// inverse = true applies R^T (the backward pass: rotation by -phi).
template <class T>
void rope_apply(T* qkv, const RopeTables<T>& rt, int B, int L, int C, int H, bool inverse) {
  const long N = long(B) * L;
  const int hd = C / H, half = hd / 2;
  const T sgn = inverse ? T(-1) : T(1);
#pragma omp parallel for schedule(static) if(2 * N * C >= parallel_min_work())
  for (long n = 0; n < N; ++n) {
    const int p = int(n % L);
    const T* cs = rt.cos.data() + std::size_t(p) * half;
    const T* sn = rt.sin.data() + std::size_t(p) * half;
    for (int part = 0; part < 2; ++part)
      for (int h = 0; h < H; ++h) {
        T* x = qkv + std::size_t(n) * 3 * C + std::size_t(part) * C + std::size_t(h) * hd;
        for (int k = 0; k < half; ++k) {
          const T x1 = x[k], x2 = x[k + half];
          const T c = cs[k], s = sgn * sn[k];
          x[k] = x1 * c - x2 * s;
          x[k + half] = x2 * c + x1 * s;
        }
      }
  }
}

// ------------------------------------------------------------------ attention
/// Multi-head self-attention core (after the qkv projection and RoPE):
///   P = softmax(Q K^T / sqrt(hd) [+ causal mask]);  O = P V
/// qkv: N x 3C; att: B x H x L x L (probabilities, saved); out: N x C (heads concatenated).
/// Optimised: per (b, h) in parallel, two GEMMs and a fused scale-mask-softmax
/// (simd::softmax_row for float on an AVX2/FMA CPU, else Eigen's vectorised exp).
template <class T>
void attention_forward(T* out, T* att, const T* qkv, int B, int L, int C, int H, bool causal) {
  const bool avx2 = std::is_same<T, float>::value && simd::cpu_has_avx2_fma();
  (void)avx2;
  const int hd = C / H;
  const T scale = T(1) / math::sqrt(T(hd));
  const long ld = 3L * C;
#pragma omp parallel for schedule(static) if(long(B) * H * L * L * hd >= parallel_min_work()) collapse(2)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const T* q = qkv + std::size_t(b) * L * ld + std::size_t(h) * hd;
      const T* k = q + C;
      const T* v = q + 2 * C;
      T* P = att + (std::size_t(b) * H + h) * std::size_t(L) * L;
      gemm_local<T>(false, true, L, L, hd, scale, q, int(ld), k, int(ld), T(0), P, L);
      for (int i = 0; i < L; ++i) {
        T* row = P + std::size_t(i) * L;
        const int jn = causal ? i + 1 : L;
        bool done = false;
#if DISCDIFF_NN_SIMD
        if constexpr (std::is_same<T, float>::value) {
          if (avx2) {
            simd::softmax_row(row, jn);
            done = true;
          }
        }
#endif
        if (!done) {
          Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> r(row, jn);
          const T mx = r.maxCoeff();
          r = (r - mx).exp();
          r *= T(1) / r.sum();
        }
        for (int j = jn; j < L; ++j) row[j] = T(0);
      }
      T* o = out + std::size_t(b) * L * C + std::size_t(h) * hd;
      gemm_local<T>(false, false, L, hd, L, T(1), P, L, v, int(ld), T(0), o, C);
    }
}

/// Backward of attention_forward. dqkv (N x 3C) is written (gradients w.r.t. the rotated
/// q, k and v); scratch holds max_threads() * L * L elements.
///   dV = P^T dO;  dP = dO V^T;  dS = P (dP - rowsum(P dP)) / sqrt(hd);  dQ = dS K;  dK = dS^T Q.
/// Masked (causal) entries have P = 0, hence dS = 0.
template <class T>
void attention_backward(T* dqkv, T* scratch, const T* dout, const T* att, const T* qkv, int B,
                        int L, int C, int H) {
  const int hd = C / H;
  const T scale = T(1) / math::sqrt(T(hd));
  const long ld = 3L * C;
#pragma omp parallel for schedule(static) if(long(B) * H * L * L * hd >= parallel_min_work()) collapse(2)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      T* dP = scratch + std::size_t(detail::thread_id()) * L * L;
      const T* q = qkv + std::size_t(b) * L * ld + std::size_t(h) * hd;
      const T* k = q + C;
      const T* v = q + 2 * C;
      T* dq = dqkv + std::size_t(b) * L * ld + std::size_t(h) * hd;
      T* dk = dq + C;
      T* dv = dq + 2 * C;
      const T* P = att + (std::size_t(b) * H + h) * std::size_t(L) * L;
      const T* dO = dout + std::size_t(b) * L * C + std::size_t(h) * hd;
      gemm_local<T>(true, false, L, hd, L, T(1), P, L, dO, C, T(0), dv, int(ld));
      gemm_local<T>(false, true, L, L, hd, T(1), dO, C, v, int(ld), T(0), dP, L);
      for (int i = 0; i < L; ++i) {
        const T* pr = P + std::size_t(i) * L;
        T* dr = dP + std::size_t(i) * L;
        const T s = detail::dot8(pr, dr, L);
        for (int j = 0; j < L; ++j) dr[j] = pr[j] * (dr[j] - s) * scale;
      }
      gemm_local<T>(false, false, L, hd, L, T(1), dP, L, k, int(ld), T(0), dq, int(ld));
      gemm_local<T>(true, false, L, hd, L, T(1), dP, L, q, int(ld), T(0), dk, int(ld));
    }
}

/// Naive reference of attention_forward (loops; same outputs and saved probabilities).
template <class T>
void attention_forward_naive(T* out, T* att, const T* qkv, int B, int L, int C, int H,
                             bool causal) {
  const int hd = C / H;
  const T scale = T(1) / math::sqrt(T(hd));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < L; ++i) {
        const T* q = qkv + (std::size_t(b) * L + i) * 3 * C + std::size_t(h) * hd;
        T* P = att + ((std::size_t(b) * H + h) * L + i) * L;
        T mx = -std::numeric_limits<T>::infinity();
        for (int j = 0; j < L; ++j) {
          if (causal && j > i) { P[j] = T(0); continue; }
          const T* k = qkv + (std::size_t(b) * L + j) * 3 * C + C + std::size_t(h) * hd;
          T s = T(0);
          for (int c = 0; c < hd; ++c) s += q[c] * k[c];
          P[j] = s * scale;
          mx = P[j] > mx ? P[j] : mx;
        }
        T z = T(0);
        for (int j = 0; j < L; ++j) {
          if (causal && j > i) continue;
          P[j] = math::exp(P[j] - mx);
          z += P[j];
        }
        for (int j = 0; j < L; ++j) P[j] /= z;
        T* o = out + (std::size_t(b) * L + i) * C + std::size_t(h) * hd;
        for (int c = 0; c < hd; ++c) {
          T s = T(0);
          for (int j = 0; j < L; ++j)
            s += P[j] * qkv[(std::size_t(b) * L + j) * 3 * C + 2 * C + std::size_t(h) * hd + c];
          o[c] = s;
        }
      }
}

/// Naive reference of attention_backward (loops).
template <class T>
void attention_backward_naive(T* dqkv, const T* dout, const T* att, const T* qkv, int B, int L,
                              int C, int H) {
  const int hd = C / H;
  const T scale = T(1) / math::sqrt(T(hd));
  const std::size_t ld = 3 * std::size_t(C);
  std::vector<T> dP(L);
  for (std::size_t i = 0; i < std::size_t(B) * L * ld; ++i) dqkv[i] = T(0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < L; ++i) {
        const T* P = att + ((std::size_t(b) * H + h) * L + i) * L;
        const T* dO = dout + (std::size_t(b) * L + i) * C + std::size_t(h) * hd;
        T s = T(0);
        for (int j = 0; j < L; ++j) {
          const T* v = qkv + (std::size_t(b) * L + j) * ld + 2 * C + std::size_t(h) * hd;
          T* dv = dqkv + (std::size_t(b) * L + j) * ld + 2 * C + std::size_t(h) * hd;
          T acc = T(0);
          for (int c = 0; c < hd; ++c) {
            acc += dO[c] * v[c];
            dv[c] += P[j] * dO[c];
          }
          dP[j] = acc;
          s += P[j] * acc;
        }
        const T* q = qkv + (std::size_t(b) * L + i) * ld + std::size_t(h) * hd;
        T* dq = dqkv + (std::size_t(b) * L + i) * ld + std::size_t(h) * hd;
        for (int j = 0; j < L; ++j) {
          const T ds = P[j] * (dP[j] - s) * scale;
          const T* k = qkv + (std::size_t(b) * L + j) * ld + C + std::size_t(h) * hd;
          T* dk = dqkv + (std::size_t(b) * L + j) * ld + C + std::size_t(h) * hd;
          for (int c = 0; c < hd; ++c) {
            dq[c] += ds * k[c];
            dk[c] += ds * q[c];
          }
        }
      }
}

}  // namespace nn
}  // namespace discdiff
