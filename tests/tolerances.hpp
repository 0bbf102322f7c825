// tests/tolerances.hpp: every test tolerance, as a named constant (k * epsilon<T>
// where it is a rounding bound, an absolute figure where the issue sets one).
#pragma once

#include <limits>

namespace discdiff {
namespace test {

template <class T>
constexpr T eps() {
  return std::numeric_limits<T>::epsilon();
}

/// Closed-form transition vs Eigen's dense exponential (issue 2 acceptance).
template <class T>
constexpr T expm_abs_tol();
template <>
constexpr double expm_abs_tol<double>() { return 1e-12; }
template <>
constexpr float expm_abs_tol<float>() { return 1e-5f; }

/// Column sums of a transition column: a few ulps per summed entry.
template <class T>
constexpr T column_sum_tol(int n) {
  return T(8) * T(n) * eps<T>();
}

/// Conditional ratio vs the direct quotient of transition entries (relative, double).
constexpr double ratio_rel_tol = 1e-12;

/// Relative tolerance for central finite differences of smooth functions (double).
constexpr double fd_rel_tol = 1e-6;

/// Spot values of spec/MATH.md section 12 are printed with 10 significant digits.
constexpr double spot_rel_tol = 5e-10;

/// A generator's closed-form extension point (tests/test_generator_interface.cpp) vs its
/// reference through the dense exponential (double, N <= 5, u in [0.05, 3]; relative to
/// max(1, |value|)).
constexpr double extension_rel_tol = 1e-10;

/// Composite Simpson's rule with 400 intervals vs a closed-form integral of a smooth integrand.
constexpr double simpson_rel_tol = 1e-9;

/// p-value below which a chi-squared goodness-of-fit test fails (fixed seed).
constexpr double chi2_min_pvalue = 1e-4;

}  // namespace test
}  // namespace discdiff
