// core/numerics.hpp against independent references: long double evaluations of
// the defining formulas, and limits where the naive formula loses all digits.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <discdiff/core/numerics.hpp>

using namespace discdiff;

namespace {
template <class T>
bool close_rel(T a, long double ref, T rel) {
  if (ref == 0) return a == T(0);
  return std::abs((static_cast<long double>(a) - ref) / ref) <= rel;
}
// Relative error, or absolute error where the result is near a zero of the
// function (log(x) near x = 1 is ill-conditioned in the relative sense).
template <class T>
bool close_mixed(T a, long double ref, T tol) {
  return std::abs(static_cast<long double>(a) - ref) <= tol * std::max(1.0L, std::abs(ref));
}
}  // namespace

TEST_CASE_TEMPLATE("one_minus_exp_neg and log_expm1 keep full relative accuracy", T, float,
                   double) {
  const T rel = T(8) * std::numeric_limits<T>::epsilon();
  for (long double u0 : {1e-7L, 1e-5L, 1e-3L, 0.1L, 0.69L, 0.7L, 1.0L, 3.0L, 30.0L, 80.0L}) {
    const long double u = static_cast<T>(u0);  // reference at the rounded input
    const long double ref = -std::expm1(-u);
    CHECK(close_rel(math::one_minus_exp_neg(static_cast<T>(u)), ref, rel));
    const long double ref_l = std::log(std::expm1(u));
    CHECK(close_mixed(math::log_expm1(static_cast<T>(u)), ref_l, rel));
    const long double ref_m = std::log(-std::expm1(-u));
    CHECK(close_mixed(math::log_one_minus_exp_neg(static_cast<T>(u)), ref_m, rel));
  }
  // Huge u: expm1 would overflow, log_expm1 must not.
  CHECK(math::log_expm1(T(700)) == doctest::Approx(700.0));
  CHECK(std::isfinite(math::log_expm1(T(700))));
}

TEST_CASE_TEMPLATE("softplus and its inverse", T, float, double) {
  for (T x : {T(-50), T(-3), T(-1e-3), T(0), T(1e-3), T(2), T(40)}) {
    const long double ref = std::log1p(std::exp(static_cast<long double>(x)));
    CHECK(close_rel(math::softplus(x), ref, T(8) * std::numeric_limits<T>::epsilon()));
    if (x > T(-15)) CHECK(math::softplus_inverse(math::softplus(x)) == doctest::Approx(x).epsilon(1e-4).scale(1));
  }
  CHECK(math::softplus(T(1000)) == T(1000));  // no overflow
  CHECK(math::softplus(T(-1000)) == T(0));
}

TEST_CASE_TEMPLATE("K(a) = a(log a - 1) with K(0) = 0, and xlogy", T, float, double) {
  CHECK(math::score_entropy_k(T(0)) == T(0));
  CHECK(math::score_entropy_k(T(1)) == T(-1));
  CHECK(math::score_entropy_k(std::exp(T(1))) == doctest::Approx(0.0).epsilon(1e-6).scale(1));
  const T a = T(0.37);
  CHECK(math::score_entropy_k(a) == doctest::Approx(0.37 * (std::log(0.37) - 1)).epsilon(1e-6));
  CHECK(math::xlogy(T(0), T(0)) == T(0));
  CHECK(math::xlogy(T(2), T(3)) == doctest::Approx(2 * std::log(3.0)).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("logsumexp is exact under shifts and does not overflow", T, float, double) {
  std::vector<T> x = {T(1), T(2), T(3), T(-4)};
  long double ref = 0;
  for (T v : x) ref += std::exp(static_cast<long double>(v));
  ref = std::log(ref);
  CHECK(close_rel(math::logsumexp(x.data(), long(x.size())), ref,
                  T(16) * std::numeric_limits<T>::epsilon()));
  for (T& v : x) v += T(1000);  // e^1000 overflows; the max-shift must not
  const T big = math::logsumexp(x.data(), long(x.size()));
  CHECK(std::isfinite(big));
  CHECK(big == doctest::Approx(static_cast<double>(ref) + 1000).epsilon(1e-6));
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> all_neg_inf = {-inf, -inf};
  CHECK(math::logsumexp(all_neg_inf.data(), 2) == -inf);
  CHECK(math::logsumexp(x.data(), 0) == -inf);
  std::vector<T> with_neg_inf = {-inf, T(0)};
  CHECK(math::logsumexp(with_neg_inf.data(), 2) == T(0));
  CHECK(math::logaddexp(T(0), T(0)) == doctest::Approx(std::log(2.0)).epsilon(1e-6));
  CHECK(math::logaddexp(-inf, T(5)) == T(5));
}
