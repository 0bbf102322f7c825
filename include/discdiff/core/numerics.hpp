// discdiff/core/numerics.hpp: stable elementary functions usable on host and device.
//
// spec/MATH.md section 11: never form 1 - exp(-u) or exp(u) - 1 directly; use
// expm1 / log1p; cross-entropies through logsumexp with max subtraction; the
// score-entropy function K(a) = a (log a - 1) with K(0) = 0 (section 1.6).
#pragma once

#include <cmath>
#include <limits>

#include "config.hpp"

namespace discdiff {
namespace math {

// Thin overload sets that resolve to the CUDA device math library under nvcc
// device compilation and to <cmath> elsewhere.
#if defined(__CUDA_ARCH__)
DD_HD DD_INLINE float exp(float x) { return ::expf(x); }
DD_HD DD_INLINE double exp(double x) { return ::exp(x); }
DD_HD DD_INLINE float expm1(float x) { return ::expm1f(x); }
DD_HD DD_INLINE double expm1(double x) { return ::expm1(x); }
DD_HD DD_INLINE float log(float x) { return ::logf(x); }
DD_HD DD_INLINE double log(double x) { return ::log(x); }
DD_HD DD_INLINE float log1p(float x) { return ::log1pf(x); }
DD_HD DD_INLINE double log1p(double x) { return ::log1p(x); }
DD_HD DD_INLINE float sqrt(float x) { return ::sqrtf(x); }
DD_HD DD_INLINE double sqrt(double x) { return ::sqrt(x); }
DD_HD DD_INLINE float pow(float x, float y) { return ::powf(x, y); }
DD_HD DD_INLINE double pow(double x, double y) { return ::pow(x, y); }
DD_HD DD_INLINE float sin(float x) { return ::sinf(x); }
DD_HD DD_INLINE double sin(double x) { return ::sin(x); }
DD_HD DD_INLINE float cos(float x) { return ::cosf(x); }
DD_HD DD_INLINE double cos(double x) { return ::cos(x); }
DD_HD DD_INLINE float tanh(float x) { return ::tanhf(x); }
DD_HD DD_INLINE double tanh(double x) { return ::tanh(x); }
DD_HD DD_INLINE float floor(float x) { return ::floorf(x); }
DD_HD DD_INLINE double floor(double x) { return ::floor(x); }
DD_HD DD_INLINE bool isfinite(float x) { return ::isfinite(x); }
DD_HD DD_INLINE bool isfinite(double x) { return ::isfinite(x); }
#else
using std::cos;
using std::exp;
using std::expm1;
using std::floor;
using std::isfinite;
using std::log;
using std::log1p;
using std::pow;
using std::sin;
using std::sqrt;
using std::tanh;
#endif

template <class T>
DD_HD DD_INLINE T max(T a, T b) {
  return a < b ? b : a;
}
template <class T>
DD_HD DD_INLINE T min(T a, T b) {
  return b < a ? b : a;
}

/// pi in the requested precision.
template <class T>
DD_HD constexpr T pi() {
  return T(3.14159265358979323846264338327950288);
}

/// -expm1(-u) = 1 - exp(-u), exact for small u.
template <class T>
DD_HD DD_INLINE T one_minus_exp_neg(T u) {
  return -math::expm1(-u);
}

/// log(expm1(u)) for u > 0, stable for tiny u (log of a small number) and for
/// huge u (u + log1p(-exp(-u)), no overflow).
template <class T>
DD_HD DD_INLINE T log_expm1(T u) {
  return u > T(1) ? u + math::log1p(-math::exp(-u)) : math::log(math::expm1(u));
}

/// log(1 - exp(-u)) for u > 0 (log of the masking probability).
template <class T>
DD_HD DD_INLINE T log_one_minus_exp_neg(T u) {
  // Maechler's switch at log 2: expm1 branch for small u, log1p branch otherwise.
  return u < T(0.6931471805599453) ? math::log(-math::expm1(-u)) : math::log1p(-math::exp(-u));
}

/// softplus(x) = log(1 + e^x) without overflow.
template <class T>
DD_HD DD_INLINE T softplus(T x) {
  return x > T(0) ? x + math::log1p(math::exp(-x)) : math::log1p(math::exp(x));
}

/// Inverse softplus: log(expm1(y)) for y > 0.
template <class T>
DD_HD DD_INLINE T softplus_inverse(T y) {
  return log_expm1(y);
}

/// The score-entropy function K(a) = a (log a - 1), K(0) = 0 (MATH.md 1.6).
template <class T>
DD_HD DD_INLINE T score_entropy_k(T a) {
  return a == T(0) ? T(0) : a * (math::log(a) - T(1));
}

/// r * log(s) with the convention that r = 0 gives 0 even when s = 0 (MATH.md 1.6).
template <class T>
DD_HD DD_INLINE T xlogy(T r, T s) {
  return r == T(0) ? T(0) : r * math::log(s);
}

/// logsumexp of n values with max subtraction; -inf for n = 0 or all -inf.
template <class T>
DD_HD T logsumexp(const T* x, long n) {
  T m = -std::numeric_limits<T>::infinity();
  for (long i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  if (!(m > -std::numeric_limits<T>::infinity())) return m;
  T s = T(0);
  for (long i = 0; i < n; ++i) s += math::exp(x[i] - m);
  return m + math::log(s);
}

/// Two-argument logaddexp(a, b) = log(e^a + e^b).
template <class T>
DD_HD DD_INLINE T logaddexp(T a, T b) {
  T m = a > b ? a : b;
  if (!(m > -std::numeric_limits<T>::infinity())) return m;
  T d = a > b ? b - a : a - b;
  return m + math::log1p(math::exp(d));
}

}  // namespace math
}  // namespace discdiff
