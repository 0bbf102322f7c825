// discdiff/nn/simd.hpp: host-only SIMD twins (AVX2/FMA) of the float exp-based nn
// kernels (attention softmax rows, GELU), chosen at run time. The portable DD_HD kernels
// in nn/ops/ are the reference; tests hold these twins against them.
//
// The library is compiled for the baseline ISA (x86-64: SSE2) unless the user passes
// -march flags, so Eigen's vectorised exp/tanh run 4 wide. These functions carry
// __attribute__((target("avx2,fma"))) and are called only when the CPU reports AVX2 and
// FMA (cpu_has_avx2_fma(), checked once), so they run 8 wide on any x86-64 build.
// Elsewhere (other compilers or architectures, or DISCDIFF_NO_SIMD defined: core/simd.hpp)
// the callers keep their portable path. Results are deterministic: the same inputs give the
// same bits on a given machine, whatever the thread count.
//
// exp8: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and Cephes' degree-6
// polynomial for exp(r) (relative error about 2 ulp), times 2^n built in the exponent
// field; inputs are clamped to [-87.3, 88.3] (so exp8(-inf) is ~1e-38, not 0; the
// softmax masks causal entries explicitly). GELU is evaluated as x sigma(2u), which equals
// 0.5 x (1 + tanh u) without its cancellation for negative x.
#pragma once

#include "../core/config.hpp"
#include "../core/simd.hpp"

// The library's one SIMD policy (core/simd.hpp) decides whether these twins are compiled in.
#define DISCDIFF_NN_SIMD DISCDIFF_SIMD_AVX2

namespace discdiff {
namespace nn {
namespace simd {

#if DISCDIFF_NN_SIMD

using discdiff::simd::cpu_has_avx2_fma;

#define DD_NN_AVX2 __attribute__((target("avx2,fma")))

DD_NN_AVX2 inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_floor_ps(
      _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/// Scalar twin of exp8 (the same operations on one lane), for loop tails.
DD_NN_AVX2 inline float exp1(float x) {
  alignas(32) float v[8] = {x, x, x, x, x, x, x, x};
  _mm256_store_ps(v, exp8(_mm256_load_ps(v)));
  return v[0];
}

/// Loads n < 8 floats (the rest `fill`), and stores the first n lanes.
DD_NN_AVX2 inline __m256 load_partial(const float* p, int n, float fill) {
  alignas(32) float v[8];
  for (int i = 0; i < 8; ++i) v[i] = i < n ? p[i] : fill;
  return _mm256_load_ps(v);
}
DD_NN_AVX2 inline void store_partial(float* p, __m256 x, int n) {
  alignas(32) float v[8];
  _mm256_store_ps(v, x);
  for (int i = 0; i < n; ++i) p[i] = v[i];
}

DD_NN_AVX2 inline __m256 gelu_u8(__m256 x) {  // sqrt(2/pi) (x + 0.044715 x^3)
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  return _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                       _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
}

/// sigma(2u) = (1 + tanh u)/2 = 1/(1 + exp(-2u)): GELU as v sigma(2u) has no cancellation
/// in the negative tail (1 + tanh u would lose every digit there).
DD_NN_AVX2 inline __m256 gelu_sig8(__m256 v) {
  const __m256 u = gelu_u8(v);
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_add_ps(u, u)));
  return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

DD_NN_AVX2 inline __m256 gelu8(__m256 v) {  // 0.5 v (1 + tanh u) = v sigma(2u)
  return _mm256_mul_ps(v, gelu_sig8(v));
}

/// g gelu'(v) with gelu'(v) = s + 2 v s (1 - s) sqrt(2/pi) (1 + 3 0.044715 v^2), s = sigma(2u)
/// (the same as 0.5 (1 + t) + 0.5 v (1 - t^2) u'(v) with t = tanh u = 2 s - 1).
DD_NN_AVX2 inline __m256 gelu_grad8(__m256 v, __m256 g) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 s = gelu_sig8(v);
  const __m256 du = _mm256_mul_ps(_mm256_set1_ps(2.0f * 0.7978845608028654f),
                                  _mm256_fmadd_ps(_mm256_set1_ps(3.0f * 0.044715f), _mm256_mul_ps(v, v), one));
  const __m256 b = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(v, s), _mm256_sub_ps(one, s)), du);
  return _mm256_mul_ps(g, _mm256_add_ps(s, b));
}

/// y = 0.5 x (1 + tanh(u)) over n floats.
DD_NN_AVX2 inline void gelu_forward(float* y, const float* x, long n) {
  long i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu8(_mm256_loadu_ps(x + i)));
  if (i < n) store_partial(y + i, gelu8(load_partial(x + i, int(n - i), 0.0f)), int(n - i));
}

/// dx = dy gelu'(x) over n floats (dx may alias dy).
DD_NN_AVX2 inline void gelu_backward(float* dx, const float* dy, const float* x, long n) {
  long i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dx + i, gelu_grad8(_mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i)));
  if (i < n) {
    const int r = int(n - i);
    store_partial(dx + i, gelu_grad8(load_partial(x + i, r, 0.0f), load_partial(dy + i, r, 0.0f)), r);
  }
}

/// In-place softmax of row[0, n): row = exp(row - max) / sum.
DD_NN_AVX2 inline void softmax_row(float* row, int n) {
  const __m256 ninf = _mm256_set1_ps(-3.402823466e38f);
  __m256 m8 = ninf;
  int j = 0;
  for (; j + 8 <= n; j += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(row + j));
  if (j < n) m8 = _mm256_max_ps(m8, load_partial(row + j, n - j, -3.402823466e38f));
  alignas(32) float mv[8];
  _mm256_store_ps(mv, m8);
  float mx = mv[0];
  for (int k = 1; k < 8; ++k) mx = mv[k] > mx ? mv[k] : mx;
  const __m256 m = _mm256_set1_ps(mx);
  __m256 s8 = _mm256_setzero_ps();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), m));
    _mm256_storeu_ps(row + j, e);
    s8 = _mm256_add_ps(s8, e);
  }
  alignas(32) float sv[8];
  _mm256_store_ps(sv, s8);
  float s = ((sv[0] + sv[1]) + (sv[2] + sv[3])) + ((sv[4] + sv[5]) + (sv[6] + sv[7]));
  for (; j < n; ++j) {
    row[j] = exp1(row[j] - mx);
    s += row[j];
  }
  const __m256 inv = _mm256_set1_ps(1.0f / s);
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), inv));
  for (; j < n; ++j) row[j] *= 1.0f / s;
}

#undef DD_NN_AVX2

#else
inline bool cpu_has_avx2_fma() { return false; }
#endif

}  // namespace simd
}  // namespace nn
}  // namespace discdiff
