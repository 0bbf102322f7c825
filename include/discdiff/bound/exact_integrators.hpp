// discdiff/bound/exact_integrators.hpp: the ODE integrators and quadratures used by the exact
// bound computations (docs/math/bounds.md, "Integrators and error control").
//
//   dormand_prince45   explicit Runge-Kutta 5(4) of Dormand and Prince (FSAL, 6 new stages per
//                      step) with the embedded 4th-order error estimate and a standard step-size
//                      controller: a step is accepted when max_j |err_j| / (atol + rtol max(|y_j|,
//                      |y_new_j|)) <= 1, and the next step is h * clamp(0.9 err^{-1/5}, 0.2, 5)
//                      (no growth right after a rejection). Integrates forwards or backwards.
//                      Optional per-component absolute tolerances, and a count of leading
//                      components that must stay >= 0 (probabilities): a trial step whose stage
//                      or result leaves the non-negative orthant there is rejected and shrunk
//                      (step-size control, never a clamp). A non-finite value in a derivative or
//                      a trial result is an error naming the component (never skipped).
//   rk4_step           one classical RK4 step (the spec 7.1 recipe: slopes at t, t + h/2, t + h).
//   simpson_weights    composite Simpson weights on K + 1 equispaced nodes (K even).
//   QuadVec<M> and integrate_vector
//                      Boost.Math's adaptive Gauss-Kronrod (31 points, 15-point Gauss error
//                      estimate, recursive bisection) applied to an M-vector of integrands at
//                      once: QuadVec is the vector value type, and its abs() is the max-norm, so
//                      one subdivision serves every component and the tolerance is relative to
//                      the largest component (a component that is ~0, e.g. I_SE for the exact
//                      denoiser, does not force bisection down to round-off).
//
// Host only.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/math/quadrature/gauss_kronrod.hpp>

namespace discdiff {
namespace exact {

/// Tolerances and limits of dormand_prince45.
struct OdeOptions {
  double rtol = 1e-10;
  double atol = 1e-13;
  double initial_step = 0.0;  ///< |h0|; 0 picks 1e-3 |t1 - t0|
  long max_steps = 1000000;
  /// Per-component absolute tolerances (size y.size()); empty: `atol` for every component.
  /// A tiny value (e.g. 1e-300) makes the control relative in that component.
  std::vector<double> atol_per_component = {};
  /// The first `nonnegative` components must stay >= 0: a trial step that makes one of them
  /// negative (in a stage or in the result) is rejected and retried with h / 4.
  std::size_t nonnegative = 0;
};

/// What dormand_prince45 did.
struct OdeStats {
  long accepted = 0;
  long rejected = 0;
  long evaluations = 0;
};

namespace detail_ode {

inline std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

/// Throws std::runtime_error naming the first non-finite entry of v (what: "derivative", ...).
inline void require_finite_vector(const std::vector<double>& v, const char* what, double t) {
  for (std::size_t j = 0; j < v.size(); ++j)
    if (!std::isfinite(v[j]))
      throw std::runtime_error(std::string("discdiff::exact::dormand_prince45: non-finite ") + what +
                               " in component " + std::to_string(j) + " (value " + num(v[j]) +
                               ") at t = " + num(t));
}

/// True when every one of the first m entries of v is >= 0.
inline bool leading_nonnegative(const std::vector<double>& v, std::size_t m) {
  for (std::size_t j = 0; j < m; ++j)
    if (v[j] < 0.0) return false;
  return true;
}

}  // namespace detail_ode

/// max(a, b) that propagates a NaN in either argument (std::max(a, NaN) returns a, which would
/// hide a NaN in a running maximum).
inline double max_or_nan(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  return a > b ? a : b;
}

/// Integrate y' = f(t, y) from t0 to t1 (either direction) in place. f has the signature
/// void f(double t, const std::vector<double>& y, std::vector<double>& dydt).
/// Throws std::runtime_error if the step size underflows, max_steps is exceeded, or a derivative
/// or trial value is not finite (the message names the component); std::invalid_argument on
/// inconsistent options or a non-finite initial value.
template <class F>
OdeStats dormand_prince45(F&& f, double t0, double t1, std::vector<double>& y,
                          const OdeOptions& opt = {}) {
  // Butcher tableau of Dormand & Prince (1980), RK5(4)7FM.
  constexpr double c2 = 1.0 / 5, c3 = 3.0 / 10, c4 = 4.0 / 5, c5 = 8.0 / 9;
  constexpr double a21 = 1.0 / 5;
  constexpr double a31 = 3.0 / 40, a32 = 9.0 / 40;
  constexpr double a41 = 44.0 / 45, a42 = -56.0 / 15, a43 = 32.0 / 9;
  constexpr double a51 = 19372.0 / 6561, a52 = -25360.0 / 2187, a53 = 64448.0 / 6561,
                   a54 = -212.0 / 729;
  constexpr double a61 = 9017.0 / 3168, a62 = -355.0 / 33, a63 = 46732.0 / 5247,
                   a64 = 49.0 / 176, a65 = -5103.0 / 18656;
  constexpr double b1 = 35.0 / 384, b3 = 500.0 / 1113, b4 = 125.0 / 192, b5 = -2187.0 / 6784,
                   b6 = 11.0 / 84;
  // e = b(5th order) - b*(4th order)
  constexpr double e1 = 71.0 / 57600, e3 = -71.0 / 16695, e4 = 71.0 / 1920,
                   e5 = -17253.0 / 339200, e6 = 22.0 / 525, e7 = -1.0 / 40;

  OdeStats st;
  const std::size_t n = y.size();
  if (!opt.atol_per_component.empty() && opt.atol_per_component.size() != n)
    throw std::invalid_argument("discdiff::exact::dormand_prince45: atol_per_component has " +
                                std::to_string(opt.atol_per_component.size()) +
                                " entries for " + std::to_string(n) + " components");
  if (opt.nonnegative > n)
    throw std::invalid_argument("discdiff::exact::dormand_prince45: nonnegative = " +
                                std::to_string(opt.nonnegative) + " > " + std::to_string(n) +
                                " components");
  for (std::size_t j = 0; j < n; ++j)
    if (!std::isfinite(y[j]))
      throw std::invalid_argument("discdiff::exact::dormand_prince45: initial value of component " +
                                  std::to_string(j) + " is not finite");
  if (!detail_ode::leading_nonnegative(y, opt.nonnegative))
    throw std::invalid_argument(
        "discdiff::exact::dormand_prince45: a component declared non-negative starts negative");
  if (t0 == t1) return st;
  const double dir = t1 > t0 ? 1.0 : -1.0;
  const double span = std::abs(t1 - t0);
  double h = opt.initial_step > 0 ? opt.initial_step : 1e-3 * span;
  std::vector<double> k1(n), k2(n), k3(n), k4(n), k5(n), k6(n), k7(n), tmp(n), ynew(n);
  f(t0, y, k1);
  ++st.evaluations;
  detail_ode::require_finite_vector(k1, "derivative", t0);
  double t = t0;
  bool last_rejected = false;
  while (dir * (t1 - t) > 0) {
    if (st.accepted + st.rejected >= opt.max_steps)
      throw std::runtime_error("discdiff::exact::dormand_prince45: more than " +
                               std::to_string(opt.max_steps) + " steps");
    if (h > std::abs(t1 - t)) h = std::abs(t1 - t);
    const double hs = dir * h;
    const std::size_t m = opt.nonnegative;
    // A stage that leaves the non-negative orthant: reject before evaluating f there.
    auto reject_negative = [&]() {
      ++st.rejected;
      h *= 0.25;
      last_rejected = true;
    };
    do {  // one trial step; `break` abandons it (rejected above)
      for (std::size_t j = 0; j < n; ++j) tmp[j] = y[j] + hs * a21 * k1[j];
      if (!detail_ode::leading_nonnegative(tmp, m)) { reject_negative(); break; }
      f(t + c2 * hs, tmp, k2);
      ++st.evaluations;
      detail_ode::require_finite_vector(k2, "derivative", t + c2 * hs);
      for (std::size_t j = 0; j < n; ++j) tmp[j] = y[j] + hs * (a31 * k1[j] + a32 * k2[j]);
      if (!detail_ode::leading_nonnegative(tmp, m)) { reject_negative(); break; }
      f(t + c3 * hs, tmp, k3);
      ++st.evaluations;
      detail_ode::require_finite_vector(k3, "derivative", t + c3 * hs);
      for (std::size_t j = 0; j < n; ++j)
        tmp[j] = y[j] + hs * (a41 * k1[j] + a42 * k2[j] + a43 * k3[j]);
      if (!detail_ode::leading_nonnegative(tmp, m)) { reject_negative(); break; }
      f(t + c4 * hs, tmp, k4);
      ++st.evaluations;
      detail_ode::require_finite_vector(k4, "derivative", t + c4 * hs);
      for (std::size_t j = 0; j < n; ++j)
        tmp[j] = y[j] + hs * (a51 * k1[j] + a52 * k2[j] + a53 * k3[j] + a54 * k4[j]);
      if (!detail_ode::leading_nonnegative(tmp, m)) { reject_negative(); break; }
      f(t + c5 * hs, tmp, k5);
      ++st.evaluations;
      detail_ode::require_finite_vector(k5, "derivative", t + c5 * hs);
      for (std::size_t j = 0; j < n; ++j)
        tmp[j] = y[j] + hs * (a61 * k1[j] + a62 * k2[j] + a63 * k3[j] + a64 * k4[j] + a65 * k5[j]);
      if (!detail_ode::leading_nonnegative(tmp, m)) { reject_negative(); break; }
      {
        const double tnew = (h == std::abs(t1 - t)) ? t1 : t + hs;
        f(tnew, tmp, k6);
        ++st.evaluations;
        detail_ode::require_finite_vector(k6, "derivative", tnew);
        for (std::size_t j = 0; j < n; ++j)
          ynew[j] = y[j] + hs * (b1 * k1[j] + b3 * k3[j] + b4 * k4[j] + b5 * k5[j] + b6 * k6[j]);
        detail_ode::require_finite_vector(ynew, "trial value", tnew);
        if (!detail_ode::leading_nonnegative(ynew, m)) { reject_negative(); break; }
        f(tnew, ynew, k7);
        ++st.evaluations;
        detail_ode::require_finite_vector(k7, "derivative", tnew);
        double err = 0.0;
        for (std::size_t j = 0; j < n; ++j) {
          const double ej = hs * (e1 * k1[j] + e3 * k3[j] + e4 * k4[j] + e5 * k5[j] + e6 * k6[j] +
                                  e7 * k7[j]);
          const double aj = opt.atol_per_component.empty() ? opt.atol : opt.atol_per_component[j];
          const double sc = aj + opt.rtol * std::max(std::abs(y[j]), std::abs(ynew[j]));
          err = max_or_nan(err, std::abs(ej) / sc);
        }
        if (!std::isfinite(err))
          throw std::runtime_error(
              "discdiff::exact::dormand_prince45: non-finite error estimate at t = " +
              std::to_string(t) + " (a zero tolerance scale?)");
        if (err <= 1.0) {
          t = tnew;
          y.swap(ynew);
          k1.swap(k7);  // first same as last
          ++st.accepted;
          double fac = err > 0 ? 0.9 * std::pow(err, -0.2) : 5.0;
          fac = std::min(5.0, std::max(0.2, fac));
          if (last_rejected) fac = std::min(1.0, fac);
          h *= fac;
          last_rejected = false;
        } else {
          ++st.rejected;
          h *= std::max(0.2, 0.9 * std::pow(err, -0.2));
          last_rejected = true;
        }
      }
    } while (false);
    if (h < 1e-14 * span)
      throw std::runtime_error("discdiff::exact::dormand_prince45: step size underflow at t = " +
                               std::to_string(t));
  }
  return st;
}

/// One classical RK4 step y(t) -> y(t + h) (h may be negative), slopes at t, t + h/2 (twice) and
/// t + h. k1..k4 and tmp are workspaces of y.size().
template <class F>
void rk4_step(F&& f, double t, double h, std::vector<double>& y, std::vector<double>& k1,
              std::vector<double>& k2, std::vector<double>& k3, std::vector<double>& k4,
              std::vector<double>& tmp) {
  const std::size_t n = y.size();
  f(t, y, k1);
  for (std::size_t j = 0; j < n; ++j) tmp[j] = y[j] + 0.5 * h * k1[j];
  f(t + 0.5 * h, tmp, k2);
  for (std::size_t j = 0; j < n; ++j) tmp[j] = y[j] + 0.5 * h * k2[j];
  f(t + 0.5 * h, tmp, k3);
  for (std::size_t j = 0; j < n; ++j) tmp[j] = y[j] + h * k3[j];
  f(t + h, tmp, k4);
  for (std::size_t j = 0; j < n; ++j) y[j] += h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
}

/// Composite Simpson weights for K + 1 equispaced nodes with spacing h (K even).
inline std::vector<double> simpson_weights(int K, double h) {
  if (K < 2 || K % 2 != 0)
    throw std::invalid_argument("discdiff::exact::simpson_weights: K = " + std::to_string(K) +
                                " (must be even and >= 2)");
  std::vector<double> w(static_cast<std::size_t>(K) + 1);
  for (int k = 0; k <= K; ++k) w[static_cast<std::size_t>(k)] = (k == 0 || k == K) ? 1.0 : (k % 2 ? 4.0 : 2.0);
  for (double& v : w) v *= h / 3.0;
  return w;
}

/// A fixed-size vector of integrand values, the value type of integrate_vector(). Arithmetic is
/// componentwise; abs() is the max-norm (found by argument-dependent lookup inside Boost).
template <std::size_t M>
struct QuadVec {
  std::array<double, M> v{};
  QuadVec() = default;
  QuadVec(double c) { v.fill(c); }  // NOLINT: Boost initialises its sums with K x = 0
  double& operator[](std::size_t i) { return v[i]; }
  double operator[](std::size_t i) const { return v[i]; }
  QuadVec& operator+=(const QuadVec& o) {
    for (std::size_t i = 0; i < M; ++i) v[i] += o.v[i];
    return *this;
  }
  friend QuadVec operator+(QuadVec a, const QuadVec& b) { return a += b; }
  friend QuadVec operator-(QuadVec a, const QuadVec& b) {
    for (std::size_t i = 0; i < M; ++i) a.v[i] -= b.v[i];
    return a;
  }
  friend QuadVec operator-(QuadVec a) {
    for (double& x : a.v) x = -x;
    return a;
  }
  friend QuadVec operator*(QuadVec a, double s) {
    for (double& x : a.v) x *= s;
    return a;
  }
  friend QuadVec operator*(double s, QuadVec a) { return a * s; }
  friend double abs(const QuadVec& a) {
    double m = 0.0;
    for (double x : a.v) m = max_or_nan(m, std::abs(x));  // a NaN component gives NaN
    return m;
  }
};

/// Result of integrate_vector.
template <std::size_t M>
struct QuadResult {
  QuadVec<M> value;
  double error = 0.0;  ///< Boost's error estimate (max-norm over the components)
  double l1 = 0.0;     ///< integral of the max-norm of the integrand (Boost's L1 figure)
};

/// integral_a^b f(x) dx for an M-vector f by Boost.Math's adaptive Gauss-Kronrod (31 points),
/// bisecting while the Kronrod - Gauss difference exceeds tol * |estimate| (max-norms).
template <std::size_t M, class F>
QuadResult<M> integrate_vector(F&& f, double a, double b, double tol = 1e-12,
                               unsigned max_depth = 12) {
  QuadResult<M> r;
  auto g = [&f](double x) -> QuadVec<M> { return f(x); };
  r.value = boost::math::quadrature::gauss_kronrod<double, 31>::integrate(g, a, b, max_depth, tol,
                                                                          &r.error, &r.l1);
  return r;
}

}  // namespace exact
}  // namespace discdiff
