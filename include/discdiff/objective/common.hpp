// discdiff/objective/common.hpp: the pieces every training objective shares (spec/MATH.md 5.0).
//
//   LossBatch<T>            the raw-pointer view of one batch: clean tokens x0, noisy tokens xt
//                           (B x L), network outputs (B x L x V) and the outputs of a loss call
//   softmax_xent_row        fused log-softmax cross-entropy of one row and its gradient (three
//                           passes; the exp pass vectorised with SSE2 on x86-64 hosts)
//   softmax_xent_row_libm   the previous kernel (C library exp, scalar), a reference
//   softmax_xent_row_naive  logsumexp term by term, a reference
//   WeightedXentKernel      weight_b * (-log softmax(z)[x0]) at the selected positions
//                           (CEDD, CEDD*, MD4; spec 5.2, 5.3)
//   RowSumKernel            row_loss[b] = sum_l pos_loss[b, l] + row_const (fixed order)
//   LossPositions           which positions carry a loss: all, or masked only
//   detail::obj::           row helpers: Sum4 / accumulate4 (four-lane reductions; float sums in
//                           double), expm1_fast (expm1 within 2 ulps, ~4x faster than the C
//                           library's on the host), exp_fast (exp within 1.01 ulps over the whole
//                           range, branch-free; exp_fast_ps / exp_fast_pd on SSE2 vectors),
//                           row_max, exp_row_ties (the softmax row passes), row_max_arg,
//                           exp_row_rest (those of the libm reference)
//
// Conventions (spec 5.0): every loss is per sequence, a sum over positions with no 1/L; a batch
// driver writes the per-position losses pos_loss (B x L, already weighted) and the per-sequence
// losses row_loss (B), and grad = grad_scale * d row_loss[b] / d outputs[b, l, :] (pass
// grad_scale = 1/B for the gradient of the batch mean). Every position is computed from its own
// inputs only and each row is summed in a fixed order by one thread, so the results are
// bit-identical on every executor and thread count.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/detail.hpp"
#include "../generator/state_dependent.hpp"

// The host x86-64 path of the softmax row kernel uses SSE2 intrinsics (part of x86-64): GCC
// does not vectorise the branch-free exp_fast loop by itself under the default
// -ftrapping-math (it turns the clamps into branches). Device code and other hosts take the
// portable loops, which do the same operations element by element.
// Whether it is compiled in is the library's one SIMD policy (core/simd.hpp).
#include "../core/simd.hpp"
#define DD_OBJ_SSE2 DISCDIFF_SIMD_SSE2

namespace discdiff {

/// Raw view of one batch for the objective kernels (row-major; device-accessible pointers for
/// the executor used). Position i = b * L + l; its outputs are logits[i * V, (i + 1) * V).
template <class T>
struct LossBatch {
  std::int64_t B = 0;         ///< sequences
  std::int64_t L = 0;         ///< positions per sequence
  int V = 0;                  ///< outputs per position
  const int* x0 = nullptr;    ///< B x L clean tokens (regular, < N)
  const int* xt = nullptr;    ///< B x L noisy tokens (< D)
  const T* logits = nullptr;  ///< B x L x V network outputs (logits, or log-scores for SEDD)
  T* grad = nullptr;          ///< B x L x V: grad_scale * d row_loss / d logits
  T* pos_loss = nullptr;      ///< B x L weighted per-position losses
  T* row_loss = nullptr;      ///< B per-sequence losses
  T grad_scale = T(1);        ///< multiplies every gradient (1/B: gradient of the batch mean)
};

/// Which positions carry a loss (spec 5.2 I(x_t), 5.3, 5.5).
enum class LossPositions {
  all,    ///< every position (uniform, roulette)
  masked  ///< x_t = MASK only (absorbing, state-dependent masking: unmasked tokens never change)
};

/// The positions of CEDD (spec 5.2): masked only when the generator's only moves are
/// regular -> MASK (its member `static constexpr bool pure_masking` is true: the absorbing graph,
/// state-dependent masking), all positions otherwise (also for generators without the member,
/// e.g. the dense oracle).
template <class Gen, class = void>
struct default_loss_positions {
  static constexpr LossPositions value = LossPositions::all;
};
template <class Gen>
struct default_loss_positions<Gen, std::enable_if_t<Gen::pure_masking>> {
  static constexpr LossPositions value = LossPositions::masked;
};

namespace detail {
namespace obj {

/// One lane of a row reduction: Neumaier's compensated sum for double (error a few ulps of
/// sum |x| independent of the count); for float a plain sum in double (error below
/// n * 1.1e-16 * sum |x|, i.e. far below one float ulp for any vocabulary), which pipelines
/// better than the compensated float sum.
template <class T>
struct Lane {
  CompensatedSum<T> s;
  DD_HD DD_INLINE void add(T x) { s.add(x); }
  DD_HD DD_INLINE T value() const { return s.value(); }
  DD_HD DD_INLINE void merge(const Lane& o) { s.add(o.value()); }  ///< adds another lane
  DD_HD DD_INLINE void add_count(int k) { s.add(T(k)); }           ///< adds an integer
};
template <>
struct Lane<float> {
  double s = 0.0;
  DD_HD DD_INLINE void add(float x) { s += static_cast<double>(x); }
  DD_HD DD_INLINE float value() const { return static_cast<float>(s); }
  DD_HD DD_INLINE void merge(const Lane& o) { s += o.s; }  // in double, rounded once by value()
  DD_HD DD_INLINE void add_count(int k) { s += static_cast<double>(k); }
};

/// Row reduction in four independent lanes (element v goes to lane v mod 4 and the lanes are
/// combined in a fixed order, so the value does not depend on the backend); the four lanes break
/// the loop-carried dependency of a single accumulator.
template <class T>
struct Sum4 {
  Lane<T> lane[4];
  DD_HD DD_INLINE T value() const {
    Lane<T> s;
    for (int j = 0; j < 4; ++j) s.add(lane[j].value());
    return s.value();
  }
};

/// Calls f(v) for v in [0, n) in order and adds the returned term into acc.lane[v mod 4] (the
/// loop is unrolled by four so that the lanes stay in registers). f may also write outputs.
template <class T, class F>
DD_HD DD_INLINE void accumulate4(int n, Sum4<T>& acc, F&& f) {
  int v = 0;
  for (; v + 4 <= n; v += 4) {
    acc.lane[0].add(f(v));
    acc.lane[1].add(f(v + 1));
    acc.lane[2].add(f(v + 2));
    acc.lane[3].add(f(v + 3));
  }
  for (; v < n; ++v) acc.lane[v & 3].add(f(v));
}

// GCC (12, -O3) compiles the max pass and the exp pass about 1.6x slower when both are inlined
// into one function (measured on V = 50257 rows); keeping them out of line on the host restores
// the speed of the separate loops. No effect on the results.
#if defined(__GNUC__) && !defined(__CUDACC__)
#define DD_OBJ_NOINLINE __attribute__((noinline))
#else
#define DD_OBJ_NOINLINE
#endif

/// Taylor coefficients 1/k! of expm1 on (-1/2, 1/2): k = 1..8 reach float accuracy
/// (remainder 2^-9/9! < 2^-27 relative), k = 1..15 double (2^-15/16! < 2^-59).
template <class T>
struct Expm1Degree {
  static constexpr int value = 15;
};
template <>
struct Expm1Degree<float> {
  static constexpr int value = 8;
};

/// expm1(d) to a few ulps, branch-free and about 4x faster on the host than the C library's
/// expm1 (which has no fast path): the Taylor polynomial for |d| < 1/2, where exp(d) - 1 would
/// cancel, and exp(d) - 1 otherwise (relative error <= 3 ulps there, since exp(d) - 1 >=
/// 1 - e^{-1/2} ~ 0.39 in magnitude). Used by the DWDSE kernel, one call per vocabulary entry.
template <class T>
DD_HD DD_INLINE T expm1_fast(T d) {
  constexpr int K = Expm1Degree<T>::value;
  // The polynomial at d clamped to [-1/2, 1/2] (min/max, no branch), so that both candidates
  // are finite and cheap and the final choice compiles to a select rather than a branch.
  const T c = math::min(math::max(d, T(-0.5)), T(0.5));
  T p = T(1);
  for (int k = K; k >= 2; --k) p = T(1) + c * p * (T(1) / T(k));
  p *= c;  // c (1 + c/2 (1 + c/3 (...)))
  const T e = math::exp(d) - T(1);
  return (d < T(0.5) && d > T(-0.5)) ? p : e;
}

/// The maximum of a row and its first position.
template <class T>
struct MaxArg {
  T max;
  int arg;
};

/// max_v z_v and the first v where it is attained (n >= 1).
template <class T>
DD_HD DD_OBJ_NOINLINE MaxArg<T> row_max_arg(const T* z, int n) {
  T mx = z[0];
  int arg = 0;
  for (int v = 1; v < n; ++v)
    if (z[v] > mx) {
      mx = z[v];
      arg = v;
    }
  return {mx, arg};
}

/// e_v = exp(z_v - max) into e[v] for v < n; returns sum_{v != arg} e_v (the arg-max term, 1,
/// excluded, so that log1p of the result is accurate when one class dominates).
template <class T>
DD_HD DD_OBJ_NOINLINE T exp_row_rest(const T* z, int n, MaxArg<T> ma, T* e) {
  Sum4<T> rest;
  accumulate4(n, rest, [&](int v) {
    const T x = math::exp(z[v] - ma.max);
    e[v] = x;
    return v == ma.arg ? T(0) : x;
  });
  return rest.value();
}

// ------------------------------------------------------------------ exp_fast

/// Constants of exp_fast. Range reduction x = n ln2 + r, |r| <= ln2/2 (+ rounding), with
/// n = round(x log2(e)) by the 1.5 * 2^p "magic" addition and ln2 = ln2_hi + ln2_lo split so
/// that n ln2_hi is exact (Cody and Waite); exp(r) by its Taylor polynomial of degree K
/// (remainder |r|^{K+1}/(K+1)! e^{|r|} < 2^-27 (float, K = 7) and < 2^-57 (double, K = 13)
/// relative); 2^n = 2^n1 2^n2 (n1 = round(n/2), n2 = n - n1) by exponent bits, so that results
/// below the smallest normal number round once (gradual underflow) and the clamp bounds lo/hi
/// give exactly 0 and +inf.
template <class T>
struct ExpFastConsts;
template <>
struct ExpFastConsts<float> {
  using U = std::uint32_t;
  static constexpr int degree = 7;
  static constexpr int mant = 23;                       // fraction bits
  static constexpr U bias = 127;                        // exponent bias
  static constexpr float lo = -120.0f;                  // exp(-120) < 2^-150: rounds to 0
  static constexpr float hi = 89.0f;                    // exp(89) > FLT_MAX: rounds to +inf
  static constexpr float magic = 12582912.0f;           // 1.5 * 2^23
  static constexpr float log2e = 1.44269504088896341f;  // 1 / ln 2
  static constexpr float ln2_hi = 0.693359375f;         // 355/512 (9 bits: n ln2_hi exact)
  static constexpr float ln2_lo = -2.12194440e-4f;      // ln 2 - ln2_hi
};
template <>
struct ExpFastConsts<double> {
  using U = std::uint64_t;
  static constexpr int degree = 13;
  static constexpr int mant = 52;
  static constexpr U bias = 1023;
  static constexpr double lo = -1100.0;                  // exp(-1100) < 2^-1075: rounds to 0
  static constexpr double hi = 710.0;                    // exp(710) > DBL_MAX: rounds to +inf
  static constexpr double magic = 6755399441055744.0;    // 1.5 * 2^52
  static constexpr double log2e = 1.44269504088896340736;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;  // 32 bits (fdlibm)
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
};

/// 1/k! rounded once to double (k! is exact in double for k <= 18).
DD_HD constexpr double inv_factorial(int k) {
  double f = 1.0;
  for (int i = 2; i <= k; ++i) f *= i;
  return 1.0 / f;
}

/// The IEEE bits of x and back (memcpy: a plain register move after optimisation, also in
/// vectorised loops and in device code).
template <class T, class U>
DD_HD DD_INLINE U float_bits(T x) {
  static_assert(sizeof(T) == sizeof(U), "float_bits: size");
  U u;
  std::memcpy(&u, &x, sizeof(T));
  return u;
}
template <class T, class U>
DD_HD DD_INLINE T bits_float(U u) {
  static_assert(sizeof(T) == sizeof(U), "bits_float: size");
  T x;
  std::memcpy(&x, &u, sizeof(T));
  return x;
}

/// 2^k for an integer-valued h = k + magic (|k| <= bias - 1): the exponent field k + bias. The
/// fraction of h is 2^(p-1) + k, so (bits(h) + bias) << p keeps exactly (k + bias) << p (the
/// bits of the magic constant shift out).
template <class T>
DD_HD DD_INLINE T exp2_from_magic(T h) {
  using C = ExpFastConsts<T>;
  using U = typename C::U;
  return bits_float<T, U>(static_cast<U>((float_bits<T, U>(h) + C::bias) << C::mant));
}

/// exp(x) without the C library: branch-free (min/max clamps, no table), so that the same
/// operations run on SSE2 vectors (exp_fast_ps, exp_fast_pd: the C library's expf/exp are
/// scalar calls) and every entry of a row gets the same bits in the vector and the scalar form.
/// Error (tests/test_objective_ce.cpp, against long double exp on dense grids of the whole
/// range): at most 1.01 ulps for normal results (float and double; truncation below 0.12 ulp,
/// the rest from the Horner steps and the final 1 + (...)); results below the smallest normal
/// number are rounded once (gradual underflow, <= 0.75 of the subnormal spacing measured);
/// exp(0) = 1 exactly; x <= -103.98 (float) / -745.14 (double) gives 0, x >= 88.73 / 709.79
/// gives +inf (as the true value rounds), -inf gives 0, +inf gives +inf, NaN gives NaN.
template <class T>
DD_HD DD_INLINE T exp_fast(T x) {
  using C = ExpFastConsts<T>;
  constexpr int K = C::degree;
  const T xc = math::min(math::max(x, T(C::lo)), T(C::hi));  // NaN passes through
  const T n = (xc * T(C::log2e) + T(C::magic)) - T(C::magic);  // round(x / ln 2)
  const T r = (xc - n * T(C::ln2_hi)) - n * T(C::ln2_lo);     // |r| <= 0.3466
  constexpr double c[14] = {1.0,
                            1.0,
                            inv_factorial(2),
                            inv_factorial(3),
                            inv_factorial(4),
                            inv_factorial(5),
                            inv_factorial(6),
                            inv_factorial(7),
                            inv_factorial(8),
                            inv_factorial(9),
                            inv_factorial(10),
                            inv_factorial(11),
                            inv_factorial(12),
                            inv_factorial(13)};
  static_assert(K <= 13, "exp_fast: degree");
  T q = T(c[K]);
  for (int k = K - 1; k >= 2; --k) q = q * r + T(c[k]);
  const T p = T(1) + (r + (r * r) * q);  // exp(r) = 1 + (r + r^2 (1/2 + r/6 + ...))
  const T h1 = n * T(0.5) + T(C::magic);   // round(n/2) + magic
  const T n2 = n - (h1 - T(C::magic));     // n - round(n/2)
  return (p * exp2_from_magic(h1)) * exp2_from_magic(n2 + T(C::magic));
}

#if DD_OBJ_SSE2
/// exp_fast on four floats: the operations of exp_fast<float> lane by lane (_mm_max_ps(lo, x)
/// and _mm_min_ps(hi, x) are exactly math::max(x, lo) and math::min(x, hi), NaN included).
inline __m128 exp_fast_ps(__m128 x) {
  using C = ExpFastConsts<float>;
  constexpr int K = C::degree;
  const __m128 magic = _mm_set1_ps(C::magic);
  const __m128 xc = _mm_min_ps(_mm_set1_ps(C::hi), _mm_max_ps(_mm_set1_ps(C::lo), x));
  const __m128 n = _mm_sub_ps(_mm_add_ps(_mm_mul_ps(xc, _mm_set1_ps(C::log2e)), magic), magic);
  const __m128 r = _mm_sub_ps(_mm_sub_ps(xc, _mm_mul_ps(n, _mm_set1_ps(C::ln2_hi))),
                              _mm_mul_ps(n, _mm_set1_ps(C::ln2_lo)));
  __m128 q = _mm_set1_ps(static_cast<float>(inv_factorial(K)));
  for (int k = K - 1; k >= 2; --k)
    q = _mm_add_ps(_mm_mul_ps(q, r), _mm_set1_ps(static_cast<float>(inv_factorial(k))));
  const __m128 p =
      _mm_add_ps(_mm_set1_ps(1.0f), _mm_add_ps(r, _mm_mul_ps(_mm_mul_ps(r, r), q)));
  const __m128 h1 = _mm_add_ps(_mm_mul_ps(n, _mm_set1_ps(0.5f)), magic);
  const __m128 h2 = _mm_add_ps(_mm_sub_ps(n, _mm_sub_ps(h1, magic)), magic);
  const __m128i bias = _mm_set1_epi32(static_cast<int>(C::bias));
  const __m128 s1 =
      _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(_mm_castps_si128(h1), bias), C::mant));
  const __m128 s2 =
      _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(_mm_castps_si128(h2), bias), C::mant));
  return _mm_mul_ps(_mm_mul_ps(p, s1), s2);
}

/// exp_fast on two doubles (the operations of exp_fast<double> lane by lane).
inline __m128d exp_fast_pd(__m128d x) {
  using C = ExpFastConsts<double>;
  constexpr int K = C::degree;
  const __m128d magic = _mm_set1_pd(C::magic);
  const __m128d xc = _mm_min_pd(_mm_set1_pd(C::hi), _mm_max_pd(_mm_set1_pd(C::lo), x));
  const __m128d n = _mm_sub_pd(_mm_add_pd(_mm_mul_pd(xc, _mm_set1_pd(C::log2e)), magic), magic);
  const __m128d r = _mm_sub_pd(_mm_sub_pd(xc, _mm_mul_pd(n, _mm_set1_pd(C::ln2_hi))),
                               _mm_mul_pd(n, _mm_set1_pd(C::ln2_lo)));
  __m128d q = _mm_set1_pd(inv_factorial(K));
  for (int k = K - 1; k >= 2; --k)
    q = _mm_add_pd(_mm_mul_pd(q, r), _mm_set1_pd(inv_factorial(k)));
  const __m128d p = _mm_add_pd(_mm_set1_pd(1.0), _mm_add_pd(r, _mm_mul_pd(_mm_mul_pd(r, r), q)));
  const __m128d h1 = _mm_add_pd(_mm_mul_pd(n, _mm_set1_pd(0.5)), magic);
  const __m128d h2 = _mm_add_pd(_mm_sub_pd(n, _mm_sub_pd(h1, magic)), magic);
  const __m128i bias = _mm_set1_epi64x(static_cast<long long>(C::bias));
  const __m128d s1 =
      _mm_castsi128_pd(_mm_slli_epi64(_mm_add_epi64(_mm_castpd_si128(h1), bias), C::mant));
  const __m128d s2 =
      _mm_castsi128_pd(_mm_slli_epi64(_mm_add_epi64(_mm_castpd_si128(h2), bias), C::mant));
  return _mm_mul_pd(_mm_mul_pd(p, s1), s2);
}

/// Row maximum, SSE2 (max is exact: same value as the portable loop).
inline float row_max_simd(const float* z, int n) {
  __m128 m0 = _mm_set1_ps(z[0]), m1 = m0;
  int v = 0;
  for (; v + 8 <= n; v += 8) {
    m0 = _mm_max_ps(m0, _mm_loadu_ps(z + v));
    m1 = _mm_max_ps(m1, _mm_loadu_ps(z + v + 4));
  }
  float m[8];
  _mm_storeu_ps(m, m0);
  _mm_storeu_ps(m + 4, m1);
  for (; v < n; ++v) m[0] = math::max(m[0], z[v]);
  for (int j = 1; j < 8; ++j) m[0] = math::max(m[0], m[j]);
  return m[0];
}
inline double row_max_simd(const double* z, int n) {
  __m128d m0 = _mm_set1_pd(z[0]), m1 = m0;
  int v = 0;
  for (; v + 4 <= n; v += 4) {
    m0 = _mm_max_pd(m0, _mm_loadu_pd(z + v));
    m1 = _mm_max_pd(m1, _mm_loadu_pd(z + v + 2));
  }
  double m[4];
  _mm_storeu_pd(m, m0);
  _mm_storeu_pd(m + 2, m1);
  for (; v < n; ++v) m[0] = math::max(m[0], z[v]);
  for (int j = 1; j < 4; ++j) m[0] = math::max(m[0], m[j]);
  return m[0];
}

/// exp_row_ties for float, SSE2: four entries per step (entry v in lane v mod 4: lanes 0, 1 in
/// one double vector, 2, 3 in the other). The last n mod 4 entries go through the same vector
/// code, padded with -inf (exp 0, below the maximum), so every entry sees the same operations.
inline float exp_row_ties_simd(const float* z, int n, float mx, float* e) {
  const __m128 mxv = _mm_set1_ps(mx);
  __m128d s01 = _mm_setzero_pd(), s23 = _mm_setzero_pd();
  __m128i ties = _mm_setzero_si128();
  auto step = [&](__m128 zv) {
    const __m128 ev = exp_fast_ps(_mm_sub_ps(zv, mxv));
    const __m128 t = _mm_and_ps(_mm_cmplt_ps(zv, mxv), ev);
    s01 = _mm_add_pd(s01, _mm_cvtps_pd(t));
    s23 = _mm_add_pd(s23, _mm_cvtps_pd(_mm_movehl_ps(t, t)));
    ties = _mm_sub_epi32(ties, _mm_castps_si128(_mm_cmpnlt_ps(zv, mxv)));
    return ev;
  };
  int v = 0;
  for (; v + 4 <= n; v += 4) _mm_storeu_ps(e + v, step(_mm_loadu_ps(z + v)));
  if (v < n) {
    float buf[4];
    for (int j = 0; j < 4; ++j)
      buf[j] = v + j < n ? z[v + j] : -std::numeric_limits<float>::infinity();
    _mm_storeu_ps(buf, step(_mm_loadu_ps(buf)));
    for (int j = 0; v + j < n; ++j) e[v + j] = buf[j];
  }
  double l[4];
  _mm_storeu_pd(l, s01);
  _mm_storeu_pd(l + 2, s23);
  int c[4];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(c), ties);
  Lane<float> tot;
  for (int j = 0; j < 4; ++j) tot.s += l[j];
  tot.add_count(c[0] + c[1] + c[2] + c[3] - 1);
  return tot.value();
}

/// Neumaier's step (CompensatedSum::add) on two lanes, the same operations as the scalar one.
inline void neumaier_pd(__m128d& s, __m128d& c, __m128d x) {
  const __m128d sign = _mm_set1_pd(-0.0);
  const __m128d t = _mm_add_pd(s, x);
  const __m128d ge = _mm_cmpge_pd(_mm_andnot_pd(sign, s), _mm_andnot_pd(sign, x));
  const __m128d big_s = _mm_add_pd(_mm_sub_pd(s, t), x);
  const __m128d big_x = _mm_add_pd(_mm_sub_pd(x, t), s);
  c = _mm_add_pd(c, _mm_or_pd(_mm_and_pd(ge, big_s), _mm_andnot_pd(ge, big_x)));
  s = t;
}

/// exp_row_ties for double, SSE2: four entries per step in two vectors (lanes 0, 1 and 2, 3),
/// each lane a compensated sum; the tail padded with -inf as for float.
inline double exp_row_ties_simd(const double* z, int n, double mx, double* e) {
  const __m128d mxv = _mm_set1_pd(mx);
  __m128d s01 = _mm_setzero_pd(), c01 = s01, s23 = s01, c23 = s01;
  __m128i t01 = _mm_setzero_si128(), t23 = t01;
  auto half = [&](__m128d zv, __m128d& s, __m128d& c, __m128i& ties) {
    const __m128d ev = exp_fast_pd(_mm_sub_pd(zv, mxv));
    neumaier_pd(s, c, _mm_and_pd(_mm_cmplt_pd(zv, mxv), ev));
    ties = _mm_sub_epi64(ties, _mm_castpd_si128(_mm_cmpnlt_pd(zv, mxv)));
    return ev;
  };
  auto step = [&](const double* zp, double* ep) {
    _mm_storeu_pd(ep, half(_mm_loadu_pd(zp), s01, c01, t01));
    _mm_storeu_pd(ep + 2, half(_mm_loadu_pd(zp + 2), s23, c23, t23));
  };
  int v = 0;
  for (; v + 4 <= n; v += 4) step(z + v, e + v);
  if (v < n) {
    double zb[4], eb[4];
    for (int j = 0; j < 4; ++j)
      zb[j] = v + j < n ? z[v + j] : -std::numeric_limits<double>::infinity();
    step(zb, eb);
    for (int j = 0; v + j < n; ++j) e[v + j] = eb[j];
  }
  double s[4], c[4];
  _mm_storeu_pd(s, s01);
  _mm_storeu_pd(s + 2, s23);
  _mm_storeu_pd(c, c01);
  _mm_storeu_pd(c + 2, c23);
  long long k[4];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(k), t01);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(k + 2), t23);
  CompensatedSum<double> tot;
  for (int j = 0; j < 4; ++j) tot.add(s[j] + c[j]);
  tot.add(static_cast<double>(k[0] + k[1] + k[2] + k[3] - 1));
  return tot.value();
}
#endif  // DD_OBJ_SSE2

/// The row sums of the portable softmax kernel: four lanes of the terms below the maximum
/// (float terms in double, double terms compensated) and the count of entries at the maximum.
template <class T>
struct XentRowSums {
  Lane<T> lane[4];
  int ties[4] = {0, 0, 0, 0};
};

/// max_v z_v (n >= 1), one entry after the other (device code, hosts without SSE2).
template <class T>
DD_HD T row_max_portable(const T* z, int n) {
  T m = z[0];
  for (int v = 1; v < n; ++v) m = math::max(m, z[v]);
  return m;
}
/// max_v z_v (n >= 1): row_max_simd on x86-64 hosts (the same value: max is exact),
/// row_max_portable elsewhere.
template <class T>
DD_HD DD_OBJ_NOINLINE T row_max(const T* z, int n) {
#if DD_OBJ_SSE2
  if constexpr (std::is_same<T, float>::value || std::is_same<T, double>::value)
    return row_max_simd(z, n);
  else
#endif
    return row_max_portable(z, n);
}

/// One entry of the portable exp_row_ties: e = exp_fast(z - mx) into out, the term (0 at the
/// maximum) into lane j, a tie into ties[j].
template <class T>
DD_HD DD_INLINE void exp_entry(T zv, T mx, T* out, XentRowSums<T>& s, int j) {
  const T e = exp_fast(zv - mx);
  *out = e;
  s.lane[j].add(zv < mx ? e : T(0));
  s.ties[j] += zv < mx ? 0 : 1;
}

/// The portable exp_row_ties (device code, hosts without SSE2): the same operations per entry
/// and the same lanes as exp_row_ties_simd.
template <class T>
DD_HD T exp_row_ties_portable(const T* z, int n, T mx, T* e) {
  XentRowSums<T> s;
  int v = 0;
  for (; v + 4 <= n; v += 4) {
    exp_entry(z[v], mx, e + v, s, 0);
    exp_entry(z[v + 1], mx, e + v + 1, s, 1);
    exp_entry(z[v + 2], mx, e + v + 2, s, 2);
    exp_entry(z[v + 3], mx, e + v + 3, s, 3);
  }
  for (; v < n; ++v) exp_entry(z[v], mx, e + v, s, v & 3);
  Lane<T> tot;
  for (int j = 0; j < 4; ++j) tot.merge(s.lane[j]);
  tot.add_count(s.ties[0] + s.ties[1] + s.ties[2] + s.ties[3] - 1);
  return tot.value();
}

/// e_v = exp_fast(z_v - mx) into e[v] for v < n (mx = max_v z_v); entry v adds to lane v mod 4,
/// the lanes are combined in order 0..3. Returns rest = sum_{z_v < mx} e_v + (ties - 1)
/// = sum_v e_v - 1, formed without the cancellation of that subtraction (the entries at the
/// maximum are exactly 1). SSE2 on x86-64 hosts (exp_row_ties_simd), portable loop elsewhere.
template <class T>
DD_HD DD_OBJ_NOINLINE T exp_row_ties(const T* z, int n, T mx, T* e) {
#if DD_OBJ_SSE2
  if constexpr (std::is_same<T, float>::value || std::is_same<T, double>::value)
    return exp_row_ties_simd(z, n, mx, e);
  else
#endif
    return exp_row_ties_portable(z, n, mx, e);
}

}  // namespace obj
}  // namespace detail

/// Softmax cross-entropy of one row, fused with its gradient (spec 5.2/5.3, numerical rule 11:
/// log-softmax with max subtraction):
///   ce = -log f(a) = (m - z_a) + log1p(rest),  f = softmax(z[0, nsoft)),  m = max z
///   grad[v] = gw (f(v) - [v = a])  for v < nsoft;   grad[v] = 0 for nsoft <= v < V.
/// Three passes over the row, all vectorised by the compiler: (1) the maximum (eight lanes);
/// (2) e_v = exp_fast(z_v - m) into grad and the sums (one exponential per entry, four fixed
/// lanes, float terms in double); (3) grad *= gw / (1 + rest). rest = sum_v e_v - 1 is formed as
/// the sum of the entries below the maximum plus (number of entries at the maximum - 1), so ce
/// keeps its relative accuracy when f(a) -> 1. The result depends only on the row (not on the
/// thread, executor or alignment): bit-identical for a given build.
/// Returns ce; writes the row's log-sum-exp to *lse_out when lse_out != nullptr.
/// grad may be z itself (in place: every entry is read before its gradient is written; an
/// evaluation without a gradient then needs no row of its own).
/// Preconditions: 1 <= nsoft <= V, 0 <= a < nsoft, z finite.
template <class T>
DD_HD T softmax_xent_row(const T* z, int nsoft, int V, int a, T gw, T* grad,
                         T* lse_out = nullptr) {
  const T za = z[a];
  const T mx = detail::obj::row_max(z, nsoft);
  const T r = detail::obj::exp_row_ties(z, nsoft, mx, grad);
  const T inv = gw / (T(1) + r);
  for (int v = 0; v < nsoft; ++v) grad[v] *= inv;
  grad[a] -= gw;
  for (int v = nsoft; v < V; ++v) grad[v] = T(0);
  const T l1p = math::log1p(r);
  if (lse_out) *lse_out = mx + l1p;
  return (mx - za) + l1p;
}

/// The previous softmax_xent_row, kept as a reference for the tests and the benchmark: the same
/// three passes with the C library's exp (scalar calls, not vectorised), the arg-max term
/// excluded from the sum by its position.
template <class T>
DD_HD T softmax_xent_row_libm(const T* z, int nsoft, int V, int a, T gw, T* grad,
                              T* lse_out = nullptr) {
  const T za = z[a];
  const detail::obj::MaxArg<T> ma = detail::obj::row_max_arg(z, nsoft);
  const T r = detail::obj::exp_row_rest(z, nsoft, ma, grad);
  const T inv = gw / (T(1) + r);
  for (int v = 0; v < nsoft; ++v) grad[v] *= inv;
  grad[a] -= gw;
  for (int v = nsoft; v < V; ++v) grad[v] = T(0);
  const T l1p = math::log1p(r);
  if (lse_out) *lse_out = ma.max + l1p;
  return (ma.max - za) + l1p;
}

/// Naive reference of softmax_xent_row: logsumexp, then -log f(a) and f - e_a term by term
/// (grad may be z, as there).
template <class T>
DD_HD T softmax_xent_row_naive(const T* z, int nsoft, int V, int a, T gw, T* grad) {
  const T lse = math::logsumexp(z, nsoft);
  const T ce = lse - z[a];
  for (int v = 0; v < V; ++v)
    grad[v] = v < nsoft ? gw * (math::exp(z[v] - lse) - (v == a ? T(1) : T(0))) : T(0);
  return ce;
}

/// weight[b] * (-log softmax(z[0, nsoft))[x0]) at the selected positions, 0 (and a zero gradient
/// row) elsewhere: CEDD / CEDD* (spec 5.2, nsoft = V) and MD4 / MDLM (spec 5.3, nsoft = N, with a
/// MASK output column V = N + 1 treated as -inf: excluded from the softmax, gradient 0).
/// pos_loss[i] = weight[b] ce_i; grad row = grad_scale weight[b] (f - e_a).
template <class T>
struct WeightedXentKernel {
  LossBatch<T> batch;
  const T* weight;  ///< per row
  int nsoft;        ///< classes in the softmax (the first nsoft outputs)
  int mask;         ///< the MASK id (positions with xt = mask are "masked")
  LossPositions positions;

  DD_HD void operator()(std::int64_t i) const {
    const std::int64_t b = i / batch.L;
    T* g = batch.grad + i * batch.V;
    if (positions == LossPositions::masked && batch.xt[i] != mask) {
      for (int v = 0; v < batch.V; ++v) g[v] = T(0);
      batch.pos_loss[i] = T(0);
      return;
    }
    const T w = weight[b];
    const T ce = softmax_xent_row(batch.logits + i * batch.V, nsoft, batch.V, batch.x0[i],
                                  batch.grad_scale * w, g);
    batch.pos_loss[i] = w * ce;
  }
};

/// row_loss[b] = sum_l pos_loss[b * L + l] (compensated, in order) + row_const.
template <class T>
struct RowSumKernel {
  const T* pos_loss;
  T* row_loss;
  std::int64_t L;
  T row_const;

  DD_HD void operator()(std::int64_t b) const {
    detail::CompensatedSum<T> s;
    const T* p = pos_loss + b * L;
    for (std::int64_t l = 0; l < L; ++l) s.add(p[l]);
    row_loss[b] = s.value() + row_const;
  }
};

/// Runs WeightedXentKernel over the B * L positions and RowSumKernel over the rows.
template <class Exec, class T>
void weighted_xent_raw(const Exec& exec, const LossBatch<T>& batch, const T* weight, int nsoft,
                       int mask, LossPositions positions, T row_const) {
  if (batch.B <= 0 || batch.L <= 0) return;
  exec.for_each(batch.B * batch.L, WeightedXentKernel<T>{batch, weight, nsoft, mask, positions});
  exec.for_each(batch.B, RowSumKernel<T>{batch.pos_loss, batch.row_loss, batch.L, row_const});
}

/// Naive reference of weighted_xent_raw (host, sequential): softmax_xent_row_naive per position
/// and a plain sum per row.
template <class T>
void weighted_xent_naive(const LossBatch<T>& batch, const T* weight, int nsoft, int mask,
                         LossPositions positions, T row_const) {
  for (std::int64_t b = 0; b < batch.B; ++b) {
    T row = T(0);
    for (std::int64_t l = 0; l < batch.L; ++l) {
      const std::int64_t i = b * batch.L + l;
      T* g = batch.grad + i * batch.V;
      T loss = T(0);
      if (positions == LossPositions::masked && batch.xt[i] != mask) {
        for (int v = 0; v < batch.V; ++v) g[v] = T(0);
      } else {
        loss = weight[b] * softmax_xent_row_naive(batch.logits + i * batch.V, nsoft, batch.V,
                                                  batch.x0[i], batch.grad_scale * weight[b], g);
      }
      batch.pos_loss[i] = loss;
      row += loss;
    }
    batch.row_loss[b] = row + row_const;
  }
}

}  // namespace discdiff
