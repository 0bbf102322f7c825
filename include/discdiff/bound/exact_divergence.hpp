// discdiff/bound/exact_divergence.hpp: entropies, cross-entropies, KL and the score-entropy
// divergence D_K over enumerated distributions (spec/MATH.md 1.6 and 6.1).
//
//   H(p) = -sum p log p,   CE(p, q) = -sum p log q,   KL(p || q) = sum p log(p/q),
//   D_K(a || b) = a log(a/b) - a + b   (D_K(0 || b) = b, +inf for a > 0 = b),
// with the conventions 0 log 0 = 0 and 0 log q = 0 for every q (spec 1.6). Sums over states are
// compensated (Neumaier), so their error does not grow with the number of states. Host only.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../core/numerics.hpp"
#include "../generator/detail.hpp"

namespace discdiff {
namespace exact {

/// a log a with 0 log 0 = 0.
template <class T>
T xlogx(T a) {
  return a == T(0) ? T(0) : a * std::log(a);
}

/// D_K(a || b) = a log(a/b) - a + b >= 0 (spec 1.6), evaluated as a (delta - log1p(delta)) with
/// delta = b/a - 1, which keeps full relative accuracy when b is close to a (where the textbook
/// form cancels). D_K(0 || b) = b; D_K(a || 0) = +inf for a > 0.
template <class T>
T score_entropy_divergence(T a, T b) {
  if (a == T(0)) return b;
  if (b == T(0)) return std::numeric_limits<T>::infinity();
  const T delta = b / a - T(1);
  if (std::abs(delta) < T(0.5)) return a * (delta - std::log1p(delta));
  return a * std::log(a / b) - a + b;
}

/// H(p) = -sum p log p.
template <class T>
T entropy(const std::vector<T>& p) {
  detail::CompensatedSum<T> s;
  for (const T v : p) s.add(-xlogx(v));
  return s.value();
}

/// CE(p, q) = -sum p log q (terms with p = 0 are 0; +inf if q = 0 < p).
template <class T>
T cross_entropy(const std::vector<T>& p, const std::vector<T>& q) {
  detail::CompensatedSum<T> s;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == T(0)) continue;
    if (q[i] <= T(0)) return std::numeric_limits<T>::infinity();
    s.add(-p[i] * std::log(q[i]));
  }
  return s.value();
}

/// KL(p || q) = sum p log(p/q) (terms with p = 0 are 0; +inf if q = 0 < p). Summed termwise as
/// p log(p/q), not as CE - H, so that KL ~ 1e-15 is resolved when q ~ p.
template <class T>
T kl_divergence(const std::vector<T>& p, const std::vector<T>& q) {
  detail::CompensatedSum<T> s;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == T(0)) continue;
    if (q[i] <= T(0)) return std::numeric_limits<T>::infinity();
    // p log(p/q) = p log1p((p - q)/q): accurate when q ~ p.
    const T rel = (p[i] - q[i]) / q[i];
    s.add(std::abs(rel) < T(0.5) ? p[i] * std::log1p(rel) : p[i] * std::log(p[i] / q[i]));
  }
  return s.value();
}

}  // namespace exact
}  // namespace discdiff
