// discdiff/generator/detail.hpp: small helpers shared by the generator headers.
//
// Not part of the public concept: a compensated sum (used by apply_exp, whose
// O(D) reductions run over up to 50257 entries, where a naive float sum would
// lose about D * eps relative accuracy) and the host-side vocabulary check.
#pragma once

#include <climits>

#include "../core/config.hpp"
#include "../core/error.hpp"

namespace discdiff {
namespace detail {

/// Neumaier's compensated summation: the error of the result is a few ulps of
/// sum |x_i| independent of the number of terms (Higham, Accuracy and Stability
/// of Numerical Algorithms, 2nd ed., section 4.3). Finite inputs only.
template <class T>
class CompensatedSum {
 public:
  DD_HD DD_INLINE void add(T x) {
    const T t = s_ + x;
    const T as = s_ < T(0) ? -s_ : s_;
    const T ax = x < T(0) ? -x : x;
    c_ += as >= ax ? (s_ - t) + x : (x - t) + s_;
    s_ = t;
  }
  DD_HD DD_INLINE T value() const { return s_ + c_; }

 private:
  T s_ = T(0);
  T c_ = T(0);
};

/// Compensated sum of v[0..n), error a few ulps of sum |v_i| independent of n. Four
/// independent accumulators (element i goes to lane i mod 4, combined at the end) break the
/// loop-carried dependency of a single compensated accumulator, so long rows (N = 50257) run at
/// several elements per cycle; the result does not depend on the thread or backend.
template <class T>
DD_HD T compensated_sum(const T* v, int n) {
  CompensatedSum<T> s0, s1, s2, s3;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0.add(v[i]);
    s1.add(v[i + 1]);
    s2.add(v[i + 2]);
    s3.add(v[i + 3]);
  }
  for (; i < n; ++i) s0.add(v[i]);
  CompensatedSum<T> s;
  s.add(s0.value());
  s.add(s1.value());
  s.add(s2.value());
  s.add(s3.value());
  return s.value();
}

/// Host check of a vocabulary size: 2 <= n and MASK = n must still be an int id.
inline int checked_vocab(const char* where, long long n) {
  require_vocab(where, n);
  if (n > static_cast<long long>(INT_MAX) - 1)
    throw_invalid(where, "N", n, "vocabulary too large: MASK = N must fit in a 32-bit token id");
  return static_cast<int>(n);
}

}  // namespace detail

/// How a host-checked API uses its total noise (generator/checked.hpp).
enum class NoiseUse {
  any,         ///< any finite u (negative u is the inverse exponential P_{-Delta})
  nonnegative  ///< u >= 0 (forward sampling)
};

}  // namespace discdiff
