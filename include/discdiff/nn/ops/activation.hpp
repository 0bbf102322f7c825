// discdiff/nn/ops/activation.hpp: GELU (tanh approximation), the bias + GELU of the first
// MLP layer, gated linear units (SwiGLU, GeGLU) and SiLU, forward and backward
// (spec/MODELS.md 1.2, 5).
//
// GELU is evaluated as x sigma(2u), u = sqrt(2/pi)(x + 0.044715 x^3), which equals
// 0.5 x (1 + tanh u) without its cancellation in the negative tail. The portable DD_HD
// bodies are the reference; on a backend with host_simd and an AVX2/FMA CPU, float GELU
// runs its host-only SIMD twin (nn/simd.hpp), which the tests hold against the body.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../../core/config.hpp"
#include "../../core/numerics.hpp"
#include "../config.hpp"
#include "../simd.hpp"

namespace discdiff {
namespace nn {
namespace detail {
template <class T>
DD_HD constexpr T gelu_k0() {
  return T(0.7978845608028654);  // sqrt(2/pi)
}
/// sigma(2u) = 1/(1 + exp(-2u)).
template <class T>
DD_HD inline T gelu_sig(T x) {
  return T(1) / (T(1) + math::exp(T(-2) * gelu_k0<T>() * (x + T(0.044715) * x * x * x)));
}
template <class T>
DD_HD inline T gelu_value(T x) {
  return x * gelu_sig(x);
}
/// gelu'(x) = s + 2 x s (1 - s) u'(x), s = sigma(2u).
template <class T>
DD_HD inline T gelu_derivative(T x) {
  const T s = gelu_sig(x);
  return s + T(2) * x * s * (T(1) - s) * gelu_k0<T>() * (T(1) + T(3) * T(0.044715) * x * x);
}
/// True when a float kernel of backend Be should run its SIMD twin on this CPU.
template <class Be, class T>
inline bool use_simd_twin() {
#if DISCDIFF_NN_SIMD
  if constexpr (Be::host_simd && std::is_same<T, float>::value) return simd::cpu_has_avx2_fma();
#endif
  return false;
}
/// Elements per chunk of the element-wise kernels (one kernel element per chunk).
constexpr std::int64_t kElemChunk = 4096;
}  // namespace detail

/// y = gelu(x) over one chunk of kElemChunk elements per kernel element.
template <class T>
struct GeluForwardKernel {
  T* y;
  const T* x;
  std::int64_t n;
  DD_HD void operator()(std::int64_t ch) const {
    const std::int64_t i0 = ch * detail::kElemChunk;
    const std::int64_t i1 = i0 + detail::kElemChunk < n ? i0 + detail::kElemChunk : n;
    for (std::int64_t i = i0; i < i1; ++i) y[i] = detail::gelu_value(x[i]);
  }
};
/// dx = dy gelu'(x) over one chunk per element (dx may alias dy).
template <class T>
struct GeluBackwardKernel {
  T* dx;
  const T* dy;
  const T* x;
  std::int64_t n;
  DD_HD void operator()(std::int64_t ch) const {
    const std::int64_t i0 = ch * detail::kElemChunk;
    const std::int64_t i1 = i0 + detail::kElemChunk < n ? i0 + detail::kElemChunk : n;
    for (std::int64_t i = i0; i < i1; ++i) dx[i] = dy[i] * detail::gelu_derivative(x[i]);
  }
};
/// f[n] += b; y[n] = gelu(f[n]), one row of F per element.
template <class T>
struct BiasGeluForwardKernel {
  T* y;
  T* f;
  const T* b;
  int F;
  DD_HD void operator()(std::int64_t n) const {
    T* fr = f + n * F;
    T* yr = y + n * F;
    for (int c = 0; c < F; ++c) {
      fr[c] += b[c];
      yr[c] = detail::gelu_value(fr[c]);
    }
  }
};

#if DISCDIFF_NN_SIMD
/// Host-only SIMD twins of the three GELU kernels (float, AVX2/FMA).
struct GeluForwardSimdTwin {
  float* y;
  const float* x;
  std::int64_t n;
  void operator()(std::int64_t ch) const {
    const std::int64_t i0 = ch * detail::kElemChunk;
    const std::int64_t len = i0 + detail::kElemChunk < n ? detail::kElemChunk : n - i0;
    simd::gelu_forward(y + i0, x + i0, len);
  }
};
struct GeluBackwardSimdTwin {
  float* dx;
  const float* dy;
  const float* x;
  std::int64_t n;
  void operator()(std::int64_t ch) const {
    const std::int64_t i0 = ch * detail::kElemChunk;
    const std::int64_t len = i0 + detail::kElemChunk < n ? detail::kElemChunk : n - i0;
    simd::gelu_backward(dx + i0, dy + i0, x + i0, len);
  }
};
struct BiasGeluForwardSimdTwin {
  float* y;
  float* f;
  const float* b;
  int F;
  void operator()(std::int64_t n) const {
    float* fr = f + n * F;
    for (int c = 0; c < F; ++c) fr[c] += b[c];
    simd::gelu_forward(y + n * F, fr, F);
  }
};
#endif

/// GELU over n elements.
template <class Be, class T>
void gelu_forward(const Be& be, T* y, const T* x, long n) {
  const std::int64_t nch = (n + detail::kElemChunk - 1) / detail::kElemChunk;
#if DISCDIFF_NN_SIMD
  if constexpr (std::is_same<T, float>::value)
    if (detail::use_simd_twin<Be, T>()) {
      be.exec.for_each(nch, GeluForwardSimdTwin{y, x, n}, double(n));
      return;
    }
#endif
  be.exec.for_each(nch, GeluForwardKernel<T>{y, x, n}, double(n));
}
/// dx = dy gelu'(x) over n elements (dx may alias dy).
template <class Be, class T>
void gelu_backward(const Be& be, T* dx, const T* dy, const T* x, long n) {
  const std::int64_t nch = (n + detail::kElemChunk - 1) / detail::kElemChunk;
#if DISCDIFF_NN_SIMD
  if constexpr (std::is_same<T, float>::value)
    if (detail::use_simd_twin<Be, T>()) {
      be.exec.for_each(nch, GeluBackwardSimdTwin{dx, dy, x, n}, double(n));
      return;
    }
#endif
  be.exec.for_each(nch, GeluBackwardKernel<T>{dx, dy, x, n}, double(n));
}
/// The first MLP layer's bias fused with its activation over N rows of F:
/// f[n] += b (f keeps the pre-activation for the backward pass); y[n] = GELU(f[n]).
template <class Be, class T>
void bias_gelu_forward(const Be& be, T* y, T* f, const T* b, long N, int F) {
#if DISCDIFF_NN_SIMD
  if constexpr (std::is_same<T, float>::value)
    if (detail::use_simd_twin<Be, T>()) {
      be.exec.for_each(N, BiasGeluForwardSimdTwin{y, f, b, F}, double(N) * F);
      return;
    }
#endif
  be.exec.for_each(N, BiasGeluForwardKernel<T>{y, f, b, F}, double(N) * F);
}

/// Naive host references of GELU (std::tanh per element).
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
/// act = SiLU (SwiGLU) or GELU-tanh (GeGLU). One row per element.
template <class T>
struct GluForwardKernel {
  T* y;
  const T* u;
  int F;
  bool swiglu;
  DD_HD void operator()(std::int64_t n) const {
    const T* a = u + n * 2 * F;
    const T* b = a + F;
    T* yr = y + n * F;
    for (int j = 0; j < F; ++j) {
      const T x = a[j];
      const T act = swiglu ? x / (T(1) + math::exp(-x))
                           : T(0.5) * x *
                                 (T(1) + math::tanh(detail::gelu_k0<T>() * (x + T(0.044715) * x * x * x)));
      yr[j] = act * b[j];
    }
  }
};
/// Backward: da = dy b act'(a), db = dy act(a) (du is N x 2F, written). One row per element.
template <class T>
struct GluBackwardKernel {
  T* du;
  const T* dy;
  const T* u;
  int F;
  bool swiglu;
  DD_HD void operator()(std::int64_t n) const {
    const T* a = u + n * 2 * F;
    const T* b = a + F;
    const T* g = dy + n * F;
    T* da = du + n * 2 * F;
    T* db = da + F;
    for (int j = 0; j < F; ++j) {
      const T x = a[j];
      T act, dact;
      if (swiglu) {
        const T sg = T(1) / (T(1) + math::exp(-x));
        act = x * sg;
        dact = sg * (T(1) + x * (T(1) - sg));
      } else {
        const T k0 = detail::gelu_k0<T>();
        const T t = math::tanh(k0 * (x + T(0.044715) * x * x * x));
        act = T(0.5) * x * (T(1) + t);
        dact = T(0.5) * (T(1) + t) +
               T(0.5) * x * (T(1) - t * t) * k0 * (T(1) + T(3) * T(0.044715) * x * x);
      }
      da[j] = g[j] * b[j] * dact;
      db[j] = g[j] * act;
    }
  }
};
template <class Be, class T>
void glu_forward(const Be& be, T* y, const T* u, long N, int F, MlpType type) {
  be.exec.for_each(N, GluForwardKernel<T>{y, u, F, type == MlpType::swiglu}, double(N) * F);
}
template <class Be, class T>
void glu_backward(const Be& be, T* du, const T* dy, const T* u, long N, int F, MlpType type) {
  be.exec.for_each(N, GluBackwardKernel<T>{du, dy, u, F, type == MlpType::swiglu}, double(N) * F);
}

/// SiLU y = x sigmoid(x), one element per element.
template <class T>
struct SiluForwardKernel {
  T* y;
  const T* x;
  DD_HD void operator()(std::int64_t i) const { y[i] = x[i] / (T(1) + math::exp(-x[i])); }
};
/// dx = dy sig(x)(1 + x(1 - sig(x))); dx may alias dy.
template <class T>
struct SiluBackwardKernel {
  T* dx;
  const T* dy;
  const T* x;
  DD_HD void operator()(std::int64_t i) const {
    const T s = T(1) / (T(1) + math::exp(-x[i]));
    dx[i] = dy[i] * s * (T(1) + x[i] * (T(1) - s));
  }
};
template <class Be, class T>
void silu_forward(const Be& be, T* y, const T* x, long n) {
  be.exec.for_each(n, SiluForwardKernel<T>{y, x}, double(n));
}
template <class Be, class T>
void silu_backward(const Be& be, T* dx, const T* dy, const T* x, long n) {
  be.exec.for_each(n, SiluBackwardKernel<T>{dx, dy, x}, double(n));
}

}  // namespace nn
}  // namespace discdiff
