// Schedules (spec/MATH.md sections 2, 11, 12.1): spot values, derivatives by finite
// differences, sbar as the integral of sigma (Boost tanh-sinh quadrature), identities,
// endpoints, float/double stability on a dense grid including the end points, and input
// validation.
#include <doctest/doctest.h>

#include <boost/math/quadrature/tanh_sinh.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <discdiff/schedule/schedules.hpp>

#include "tolerances.hpp"

using namespace discdiff;

namespace {

// ------------------------------------------------------------------ named tolerances

/// Section 12.1 prints 10 decimals: half a unit in the last place, absolute.
/// (For entries >= 0.05 this is <= 1e-9 relative; smaller entries carry fewer digits.)
constexpr double kSpotAbsTol = 0.5e-10 * (1 + 1e-6);

/// sbar(t) - sbar(0) against the tanh-sinh integral of sigma (relative).
constexpr double kQuadRelTol = 1e-10;
/// Requested relative accuracy of the quadrature itself (well below kQuadRelTol).
constexpr double kQuadTarget = 1e-14;

/// Identities between members (alpha = exp(-sbar), w = sigma/expm1(sbar), ...), relative.
/// Each side is a handful of correctly rounded operations; exp(-sbar) amplifies the
/// rounding of sbar by |sbar| (<= 20 for the schedules tested), hence the max(1, sbar) factor.
template <class T>
T identity_rel_tol(T sbar) {
  return T(16) * test::eps<T>() * std::max(T(1), std::fabs(sbar));
}

/// float against double at the same (float) t and the same (float-rounded) parameters.
/// Every member is a composition of at most ~10 float operations, none of which cancels,
/// so it is within a few ulps of the double value (measured: <= 11 ulps); 16 ulps.
/// Schedules that form alpha = exp(-sbar) (S-GEO, S-LINSIG-MDLM, S-LOGLIN-ROU) turn the
/// few-ulp relative error of sbar into an absolute error of the exponent, i.e. a relative
/// error of alpha, alpha' and w amplified by sbar (<= 23 here; measured: S-GEO(1e-5, 20)
/// reaches 115 ulps at t = 0.997, where sbar = 19.4): those get 16 ulps * max(1, sbar).
constexpr double kFloatUlps = 16.0;
double float_vs_double_tol(bool alpha_from_sbar, double sbar) {
  const double ulp = 1.1920928955078125e-07;  // 2^-23
  return kFloatUlps * ulp * (alpha_from_sbar ? std::max(1.0, sbar) : 1.0);
}

/// Finite differences: 5-point central stencil, h = kFdStep * min(t, 1 - t).
/// Truncation ~ (h/t)^4 ~ 1e-12, rounding ~ eps/kFdStep ~ 1e-13, far below fd_rel_tol.
constexpr double kFdStep = 1e-3;
/// Rounding-error factor of the 5-point stencil: (1 + 8 + 8 + 1)/12 = 1.5 times the
/// (few-ulp) error of each function value; 8 leaves room for 4-ulp function values.
constexpr double kFdRound = 8;

bool rel_close(double a, double b, double rel, double abs_floor = 0.0) {
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= rel * std::fabs(b) + abs_floor;
}

// ------------------------------------------------------------------ schedule zoo

/// Adapter: one token v of S-GEN-POLY seen as a scalar schedule.
template <class T>
struct TokenSlice {
  using value_type = T;
  PerTokenPolynomialView<T> view;
  int v;
  T alpha(T t) const { return view.alpha(t, v); }
  T dalpha(T t) const { return view.dalpha(t, v); }
  T sigma(T t) const { return view.sigma(t, v); }
  T sigma_bar(T t) const { return view.sigma_bar(t, v); }
  T one_minus_alpha(T t) const { return view.one_minus_alpha(t, v); }
  T elbo_weight(T t) const { return view.elbo_weight(t, v); }
};

/// Calls f(label, schedule, sbar0, wsing) for every schedule under test, with parameters
/// first rounded to R then converted to T (so that float and double instances share
/// exactly the same parameters). sbar0 is the documented sbar(0); wsing is true when
/// the documented elbo_weight(0) is +inf.
template <class T, class R = T, class F>
void for_each_schedule(F&& f) {
  auto p = [](double x) { return static_cast<T>(static_cast<R>(x)); };
  const double eta = double(p(1e-4));
  f("S-LIN-MD4", LinearSchedule<T>(p(1e-4)), -std::log1p(-eta), false);
  f("S-POLY-MD4(2)", PolynomialSchedule<T>(p(2.0), p(1e-4)), -std::log1p(-eta), false);
  f("S-POLY-MD4(1)", PolynomialSchedule<T>(p(1.0), p(1e-4)), -std::log1p(-eta), false);
  f("S-POLY-MD4(0.5)", PolynomialSchedule<T>(p(0.5), p(1e-4)), -std::log1p(-eta), true);
  f("S-POLY-MD4(3.7)", PolynomialSchedule<T>(p(3.7), p(1e-4)), -std::log1p(-eta), false);
  f("S-COS-MD4", CosineSchedule<T>(p(1e-4)), -std::log1p(-eta), false);
  f("S-COS-MDLM", MdlmCosineSchedule<T>(p(1e-3)), 0.0, true);
  f("S-COSSQ-MDLM", MdlmCosineSquaredSchedule<T>(p(1e-3)), 0.0, true);
  f("S-GEO(1e-4,20)", GeometricSchedule<T>(p(1e-4), p(20)), double(p(1e-4)), false);
  f("S-GEO(1e-5,20)", GeometricSchedule<T>(p(1e-5), p(20)), double(p(1e-5)), false);
  f("S-GEO(1e-3,1)", GeometricSchedule<T>(p(1e-3), p(1)), double(p(1e-3)), false);
  f("S-LINSIG-MDLM(1e-3,7)", MdlmLinearSigmaSchedule<T>(p(1e-3), p(7)), double(p(1e-3)), false);
  f("S-LINSIG-MDLM(0,10)", MdlmLinearSigmaSchedule<T>(p(0), p(10)), 0.0, true);
  f("S-LOGLIN", LogLinearSchedule<T>(p(1e-3)), 0.0, true);
  f("S-LOGLIN-ROU(0.95)", RouletteLogLinearSchedule<T>(p(0.95), p(1e-3)), 0.0, true);
  f("S-LOGLIN-ROU(0.3)", RouletteLogLinearSchedule<T>(p(0.3), p(1e-3)), 0.0, true);
  f("S-LOGLIN-ROU(1)", RouletteLogLinearSchedule<T>(p(1), p(1e-3)), 0.0, true);
  // S-GEN-POLY with exponents w = 0.3, 1 (the initialisation, exactly 1 in T), 2.5, 7.
  const std::vector<T> w_raw = {p(math::softplus_inverse(0.3)),
                                PerTokenPolynomialSchedule<T>::initial_w_raw(),
                                p(math::softplus_inverse(2.5)), p(math::softplus_inverse(7.0))};
  const PerTokenPolynomialSchedule<T> gen(w_raw, p(1e-4));
  f("S-GEN-POLY(w=0.3)", TokenSlice<T>{gen.view(), 0}, 0.0, true);
  f("S-GEN-POLY(w=1)", TokenSlice<T>{gen.view(), 1}, 0.0, true);
  f("S-GEN-POLY(w=2.5)", TokenSlice<T>{gen.view(), 2}, 0.0, true);
  f("S-GEN-POLY(w=7)", TokenSlice<T>{gen.view(), 3}, 0.0, true);
}

/// Dense grid on [0, 1]: the end points, 1e-7, 1 - 1e-7, decades towards both ends,
/// and 1000 uniform steps.
std::vector<double> dense_grid() {
  std::vector<double> g = {0.0, 1.0, 1e-7, 1.0 - 1e-7};
  for (int k = 1; k <= 12; ++k) {
    g.push_back(std::pow(10.0, -k));
    g.push_back(1.0 - std::pow(10.0, -k));
  }
  for (int i = 1; i < 1000; ++i) g.push_back(i / 1000.0);
  return g;
}

/// Interior grid for finite differences and identities.
const std::vector<double> kInterior = {0.003, 0.01, 0.05, 0.1,  0.2,  0.3,  0.37,
                                       0.5,   0.6,  0.7,  0.8,  0.9,  0.95, 0.99, 0.997};

template <class T, class S>
std::vector<std::function<T(T)>> members(const S& s) {
  return {[s](T t) { return s.alpha(t); },     [s](T t) { return s.dalpha(t); },
          [s](T t) { return s.sigma(t); },     [s](T t) { return s.sigma_bar(t); },
          [s](T t) { return s.one_minus_alpha(t); }, [s](T t) { return s.elbo_weight(t); }};
}
const char* const kMemberNames[] = {"alpha",     "dalpha",          "sigma",
                                    "sigma_bar", "one_minus_alpha", "elbo_weight"};

/// Central 5-point derivative of f at t, step h.
template <class F>
double fd5(F&& f, double t, double h) {
  return (-f(t + 2 * h) + 8 * f(t + h) - 8 * f(t - h) + f(t - 2 * h)) / (12 * h);
}

/// The message of the std::invalid_argument thrown by f, or a marker when none is thrown.
template <class F>
std::string invalid_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (...) {
    return "<other exception>";
  }
  return "<no exception>";
}

bool contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

// ------------------------------------------------------------------ spot values (12.1)

struct SpotRow {
  double t, alpha, sbar, sigma, w;
};

template <class S>
void check_spot_rows(const S& s, const std::vector<SpotRow>& rows) {
  for (const auto& r : rows) {
    CAPTURE(r.t);
    CHECK(std::fabs(s.alpha(r.t) - r.alpha) <= kSpotAbsTol);
    CHECK(std::fabs(s.sigma_bar(r.t) - r.sbar) <= kSpotAbsTol);
    CHECK(std::fabs(s.sigma(r.t) - r.sigma) <= kSpotAbsTol);
    CHECK(std::fabs(s.elbo_weight(r.t) - r.w) <= kSpotAbsTol);
  }
}

}  // namespace

// ==================================================================== type properties

TEST_CASE_TEMPLATE("schedule types are trivially copyable values with the spec names", T, float,
                   double) {
  static_assert(std::is_trivially_copyable<LinearSchedule<T>>::value, "");
  static_assert(std::is_trivially_copyable<PolynomialSchedule<T>>::value, "");
  static_assert(std::is_trivially_copyable<CosineSchedule<T>>::value, "");
  static_assert(std::is_trivially_copyable<MdlmCosineSchedule<T>>::value, "");
  static_assert(std::is_trivially_copyable<MdlmCosineSquaredSchedule<T>>::value, "");
  static_assert(std::is_trivially_copyable<GeometricSchedule<T>>::value, "");
  static_assert(std::is_trivially_copyable<MdlmLinearSigmaSchedule<T>>::value, "");
  static_assert(std::is_trivially_copyable<LogLinearSchedule<T>>::value, "");
  static_assert(std::is_trivially_copyable<RouletteLogLinearSchedule<T>>::value, "");
  static_assert(std::is_trivially_copyable<PerTokenPolynomialView<T>>::value, "");
  static_assert(std::is_trivially_copyable<ScheduleValues<T>>::value, "");
  static_assert(std::is_same<typename LogLinearSchedule<T>::value_type, T>::value, "");
  CHECK(std::string(LinearSchedule<T>::name) == "S-LIN-MD4");
  CHECK(std::string(PolynomialSchedule<T>::name) == "S-POLY-MD4");
  CHECK(std::string(CosineSchedule<T>::name) == "S-COS-MD4");
  CHECK(std::string(MdlmCosineSchedule<T>::name) == "S-COS-MDLM");
  CHECK(std::string(MdlmCosineSquaredSchedule<T>::name) == "S-COSSQ-MDLM");
  CHECK(std::string(GeometricSchedule<T>::name) == "S-GEO");
  CHECK(std::string(MdlmLinearSigmaSchedule<T>::name) == "S-LINSIG-MDLM");
  CHECK(std::string(LogLinearSchedule<T>::name) == "S-LOGLIN");
  CHECK(std::string(RouletteLogLinearSchedule<T>::name) == "S-LOGLIN-ROU");
  CHECK(std::string(PerTokenPolynomialView<T>::name) == "S-GEN-POLY");
  CHECK(std::string(PerTokenPolynomialSchedule<T>::name) == "S-GEN-POLY");
  // Defaults: eta = 1e-4 (MD4), d = 1e-3 (MDLM/SEDD/PBRC).
  CHECK(LinearSchedule<T>().eta() == T(1e-4));
  CHECK(PolynomialSchedule<T>(T(2)).eta() == T(1e-4));
  CHECK(CosineSchedule<T>().eta() == T(1e-4));
  CHECK(MdlmCosineSchedule<T>().d() == T(1e-3));
  CHECK(MdlmCosineSquaredSchedule<T>().d() == T(1e-3));
  CHECK(LogLinearSchedule<T>().d() == T(1e-3));
  CHECK(RouletteLogLinearSchedule<T>(T(0.95)).d() == T(1e-3));
  CHECK(PerTokenPolynomialSchedule<T>(4).eta() == T(1e-4));
}

// ==================================================================== (a) spot values

TEST_CASE("schedule spot values of MATH.md 12.1 (double)") {
  SUBCASE("S-LIN-MD4") {
    check_spot_rows(LinearSchedule<double>(),
                    {{0.1, 0.8999200000, 0.1054494085, 1.1109876433, 9.9900079936},
                     {0.5, 0.5000000000, 0.6931471806, 1.9996000000, 1.9996000000},
                     {0.9, 0.1000800000, 2.3017854128, 9.9900079936, 1.1109876433}});
  }
  SUBCASE("S-POLY-MD4(2)") {
    check_spot_rows(PolynomialSchedule<double>(2.0),
                    {{0.1, 0.9899020000, 0.0101493307, 0.2019997939, 19.8019409784},
                     {0.5, 0.7499500000, 0.2877487413, 1.3331555437, 3.9984003199},
                     {0.9, 0.1900620000, 1.6604049443, 9.4686996875, 2.2219478528}});
  }
  SUBCASE("S-POLY-MD4(0.5)") {
    check_spot_rows(PolynomialSchedule<double>(0.5),
                    {{0.1, 0.6837354795, 0.3801841620, 2.3120382803, 4.9984190449},
                     {0.5, 0.2929346402, 1.2278057659, 2.4133894149, 0.9998585704},
                     {0.9, 0.0514064386, 2.9679918496, 10.2504838245, 0.5554969893}});
  }
  SUBCASE("S-COS-MD4") {
    check_spot_rows(CosineSchedule<double>(),
                    {{0.1, 0.8434968219, 0.1701991448, 1.8389481570, 9.9112806803},
                     {0.5, 0.2929346402, 1.2278057659, 3.7909432280, 1.5705741696},
                     {0.9, 0.0124091971, 4.3893173819, 19.7980204753, 0.2487645055}});
  }
  SUBCASE("S-COS-MDLM") {
    check_spot_rows(MdlmCosineSchedule<double>(),
                    {{0.1, 0.9877006523, 0.0123756107, 0.2485378093, 19.9588597271},
                     {0.5, 0.7073996744, 0.3461594625, 1.5685758051, 3.7922377959},
                     {0.9, 0.1572780306, 1.8497401444, 9.8545598170, 1.8391661977}});
  }
  SUBCASE("S-COSSQ-MDLM") {
    check_spot_rows(MdlmCosineSquaredSchedule<double>(),
                    {{0.1, 0.9755527299, 0.0247510662, 0.4970693455, 19.8352353751},
                     {0.5, 0.5005000000, 0.6921476802, 3.1353157452, 3.1415926536},
                     {0.9, 0.0254472701, 3.6711468065, 19.0557712012, 0.4975793942}});
  }
  SUBCASE("S-LOGLIN") {
    check_spot_rows(LogLinearSchedule<double>(),
                    {{0.1, 0.9001000000, 0.1052494107, 1.1098766804, 10.0000000000},
                     {0.5, 0.5005000000, 0.6921476802, 1.9960039960, 2.0000000000},
                     {0.9, 0.1009000000, 2.2936253516, 9.9008919722, 1.1111111111}});
  }
  SUBCASE("S-GEO(1e-4, 20)") {
    check_spot_rows(GeometricSchedule<double>(1e-4, 20.0),
                    {{0.1, 0.9996611329, 0.0003389245, 0.0041369374, 12.2040042937},
                     {0.5, 0.9562638985, 0.0447213595, 0.5458721635, 11.9351708414},
                     {0.9, 0.0027366554, 5.9010187707, 72.0282637975, 0.1976574555}});
  }
  SUBCASE("S-LINSIG-MDLM(1e-3, 7)") {
    check_spot_rows(MdlmLinearSigmaSchedule<double>(1e-3, 7.0),
                    {{0.1, 0.4961385781, 0.7009000000, 6.9990000000, 6.8917241068},
                     {0.5, 0.0301822885, 3.5005000000, 6.9990000000, 0.2178201478},
                     {0.9, 0.0018361212, 6.3001000000, 6.9990000000, 0.0128746514}});
  }
  SUBCASE("S-LOGLIN-ROU(0.95)") {
    const RouletteLogLinearSchedule<double> s(0.95);
    struct Row {
      double t, sbar, sigma, mask_prob, resample;
    };
    const Row rows[] = {{0.1, 0.1107888534, 1.1682912425, 0.0999000000, 0.0055394427},
                        {0.5, 0.7285765055, 2.1010568379, 0.4995000000, 0.0364288253},
                        {0.9, 2.4143424754, 10.4219915497, 0.8991000000, 0.1207171238},
                        {1.0, 7.2713213463, 1051.5789473684, 0.9990000000, 0.3635660673}};
    for (const auto& r : rows) {
      CAPTURE(r.t);
      CHECK(std::fabs(s.sigma_bar(r.t) - r.sbar) <= kSpotAbsTol);
      CHECK(std::fabs(s.sigma(r.t) - r.sigma) <= kSpotAbsTol);
      CHECK(std::fabs(s.mask_probability(r.t) - r.mask_prob) <= kSpotAbsTol);
      CHECK(std::fabs(-std::expm1(-0.95 * s.sigma_bar(r.t)) - r.mask_prob) <= kSpotAbsTol);
      CHECK(std::fabs(s.resample_amount(r.t) - r.resample) <= kSpotAbsTol);
      CHECK(s.mask_alpha(r.t) == doctest::Approx(1 - r.mask_prob).epsilon(1e-14));
      CHECK(s.mask_elbo_weight(r.t) == doctest::Approx(1 / r.t).epsilon(1e-15));
    }
  }
  SUBCASE("S-GEN-POLY at w = 1 is alpha = 1 - (1 - eta) t") {
    const PerTokenPolynomialSchedule<double> g(3);
    const auto v = g.view();
    for (double t : {0.1, 0.5, 0.9}) {
      CAPTURE(t);
      const double a = 1 - (1 - 1e-4) * t;
      CHECK(v.alpha(t, 1) == doctest::Approx(a).epsilon(1e-15));
      CHECK(v.sigma_bar(t, 1) == doctest::Approx(-std::log(a)).epsilon(1e-15));
      CHECK(v.sigma(t, 1) == doctest::Approx((1 - 1e-4) / a).epsilon(1e-15));
      CHECK(v.elbo_weight(t, 1) == doctest::Approx(1 / t).epsilon(1e-15));
    }
  }
}

// ==================================================================== (b) derivatives

TEST_CASE("schedule derivatives: d sbar/dt = sigma, d alpha/dt = dalpha (finite differences)") {
  for_each_schedule<double>([](const char* label, const auto& s, double, bool) {
    for (double t : kInterior) {
      CAPTURE(std::string(label));
      CAPTURE(t);
      const double h = kFdStep * std::min(t, 1 - t);
      const double dsbar = fd5([&](double x) { return s.sigma_bar(x); }, t, h);
      const double dalpha = fd5([&](double x) { return s.alpha(x); }, t, h);
      const double doma = fd5([&](double x) { return s.one_minus_alpha(x); }, t, h);
      CHECK(rel_close(dsbar, s.sigma(t), test::fd_rel_tol));
      // alpha' from the difference quotient of whichever of alpha and 1 - alpha is the
      // smaller (the well-conditioned one), to fd_rel_tol; the other one up to its
      // rounding error ~ kFdRound * eps * |f| / h as well.
      const double a = s.alpha(t), oma = s.one_minus_alpha(t);
      const double good = a < oma ? dalpha : -doma;
      CHECK(rel_close(good, s.dalpha(t), test::fd_rel_tol));
      CHECK(rel_close(dalpha, s.dalpha(t), test::fd_rel_tol, kFdRound * test::eps<double>() * a / h));
      CHECK(rel_close(-doma, s.dalpha(t), test::fd_rel_tol,
                      kFdRound * test::eps<double>() * oma / h));
    }
  });
}

// ==================================================================== (c) quadrature

TEST_CASE("schedule sbar(t) equals sbar(0) + the tanh-sinh integral of sigma over [0, t]") {
  boost::math::quadrature::tanh_sinh<double> integrator;
  for_each_schedule<double>([&](const char* label, const auto& s, double sbar0, bool) {
    CAPTURE(std::string(label));
    CHECK(rel_close(s.sigma_bar(0.0), sbar0, 1e-15));
    for (double t : {1e-3, 0.1, 0.25, 0.5, 0.77, 0.9, 1.0}) {
      CAPTURE(t);
      double err = 0;
      const double integral = integrator.integrate(
          [&](double x) { return s.sigma(x); }, 0.0, t, kQuadTarget, &err);
      CHECK(err <= kQuadRelTol * integral);
      // sbar(t) = sbar(0) + integral (compared relative to sbar(t): the difference
      // sbar(t) - sbar(0) would cancel for the shifted MD4 schedules at small t).
      CHECK(rel_close(s.sigma_bar(0.0) + integral, s.sigma_bar(t), kQuadRelTol));
    }
  });
}

// ==================================================================== (d) identities

TEST_CASE_TEMPLATE("schedule identities: alpha = exp(-sbar), w = sigma/expm1(sbar), ...", T,
                   float, double) {
  std::vector<double> grid = kInterior;
  for (double t : {1e-7, 1e-5, 1e-3, 1 - 1e-3, 1 - 1e-5, 1 - 1e-7, 1.0}) grid.push_back(t);
  for_each_schedule<T>([&](const char* label, const auto& s, double, bool) {
    for (double td : grid) {
      const T t = static_cast<T>(td);
      CAPTURE(std::string(label));
      CAPTURE(td);
      const T a = s.alpha(t), oma = s.one_minus_alpha(t), sb = s.sigma_bar(t);
      const T sg = s.sigma(t), da = s.dalpha(t), w = s.elbo_weight(t);
      const T tol = identity_rel_tol(sb);
      CHECK(rel_close(a, std::exp(-sb), tol));
      CHECK(rel_close(oma, -std::expm1(-sb), tol));
      CHECK(std::fabs(a + oma - T(1)) <= T(4) * test::eps<T>());
      CHECK(rel_close(sg, -da / a, tol));
      // The quotients below need 1 - alpha in the normal range: S-GEN-POLY(w=7) at t = 1e-7
      // has 1 - alpha = t^7 ~ 1e-49, which underflows in float (elbo_weight = w/t is fine).
      if (oma > T(1e-30)) {
        CHECK(rel_close(w, -da / oma, tol));
        // w = sigma/expm1(sbar); expm1 overflow is not reached for the schedules tested.
        CHECK(rel_close(w, sg / std::expm1(sb), tol));
      }
      // Signs: alpha in (0, 1], decreasing; sbar, sigma, w >= 0.
      CHECK(a > T(0));
      CHECK(a <= T(1));
      CHECK(da <= T(0));
      CHECK(sb >= T(0));
      CHECK(sg >= T(0));
      CHECK(w >= T(0));
    }
  });
}

// ==================================================================== (e) endpoints

TEST_CASE_TEMPLATE("schedule endpoint values", T, float, double) {
  const T inf = std::numeric_limits<T>::infinity();
  const T eta = T(1e-4), d = T(1e-3);
  const T tol = T(4) * test::eps<T>();
  auto close = [&](T a, T b) { return rel_close(a, b, tol); };

  const LinearSchedule<T> lin;
  CHECK(close(lin.alpha(T(0)), T(1) - eta));
  CHECK(close(lin.alpha(T(1)), eta));
  CHECK(close(lin.sigma_bar(T(0)), -std::log1p(-eta)));
  CHECK(close(lin.sigma_bar(T(1)), -std::log(eta)));
  CHECK(close(lin.elbo_weight(T(0)), (T(1) - T(2) * eta) / eta));

  const PolynomialSchedule<T> p2(T(2)), p05(T(0.5));
  CHECK(close(p2.alpha(T(0)), T(1) - eta));
  CHECK(close(p2.alpha(T(1)), eta));
  CHECK(p2.dalpha(T(0)) == T(0));
  CHECK(p2.sigma(T(0)) == T(0));
  CHECK(p2.elbo_weight(T(0)) == T(0));
  CHECK(close(p05.alpha(T(0)), T(1) - eta));
  CHECK(close(p05.alpha(T(1)), eta));
  CHECK(p05.dalpha(T(0)) == -inf);  // documented singularity (K < 1)
  CHECK(p05.sigma(T(0)) == inf);
  CHECK(p05.elbo_weight(T(0)) == inf);
  CHECK(std::isfinite(p05.sigma_bar(T(0))));

  const CosineSchedule<T> cmd4;
  CHECK(close(cmd4.alpha(T(0)), T(1) - eta));
  CHECK(close(cmd4.alpha(T(1)), eta));
  CHECK(cmd4.dalpha(T(1)) == T(0));
  CHECK(cmd4.sigma(T(1)) == T(0));
  CHECK(close(cmd4.elbo_weight(T(0)), math::pi<T>() / T(2) * (T(1) - T(2) * eta) / eta));

  const MdlmCosineSchedule<T> cm;
  CHECK(cm.alpha(T(0)) == T(1));
  CHECK(close(cm.alpha(T(1)), d));
  CHECK(cm.sigma_bar(T(0)) == T(0));
  CHECK(close(cm.sigma_bar(T(1)), -std::log(d)));
  CHECK(cm.sigma(T(0)) == T(0));
  CHECK(cm.elbo_weight(T(0)) == inf);
  CHECK(close(cm.elbo_weight(T(1)), math::pi<T>() / T(2)));  // (pi/2) cot(pi/4)

  const MdlmCosineSquaredSchedule<T> csq;
  CHECK(csq.alpha(T(0)) == T(1));
  CHECK(close(csq.alpha(T(1)), d));
  CHECK(csq.sigma_bar(T(0)) == T(0));
  CHECK(csq.sigma(T(0)) == T(0));
  CHECK(csq.sigma(T(1)) == T(0));
  CHECK(csq.elbo_weight(T(0)) == inf);
  CHECK(csq.elbo_weight(T(1)) == T(0));  // pi cot(pi/2)

  const GeometricSchedule<T> geo(T(1e-4), T(20));
  CHECK(geo.sigma_bar(T(0)) == T(1e-4));
  CHECK(close(geo.sigma_bar(T(1)), T(20)));
  CHECK(close(geo.sigma(T(0)), T(1e-4) * std::log(T(20) / T(1e-4))));
  // exp(-sbar) amplifies the few-ulp error of sbar(1) = 20 by 20.
  CHECK(rel_close(geo.alpha(T(1)), std::exp(T(-20)), T(64) * test::eps<T>()));

  const MdlmLinearSigmaSchedule<T> ls(T(1e-3), T(7)), ls0(T(0), T(10));
  CHECK(ls.sigma_bar(T(0)) == T(1e-3));
  CHECK(close(ls.sigma_bar(T(1)), T(7)));
  CHECK(ls0.sigma_bar(T(0)) == T(0));
  CHECK(ls0.alpha(T(0)) == T(1));
  CHECK(ls0.elbo_weight(T(0)) == inf);

  const LogLinearSchedule<T> ll;
  CHECK(ll.alpha(T(0)) == T(1));
  CHECK(close(ll.alpha(T(1)), d));
  CHECK(ll.sigma_bar(T(0)) == T(0));
  CHECK(close(ll.sigma_bar(T(1)), -std::log(d)));  // 6.9078
  CHECK(close(ll.sigma(T(1)), T(999)));            // (1 - d)/d
  CHECK(close(ll.sigma(T(0)), T(1) - d));
  CHECK(ll.elbo_weight(T(0)) == inf);
  CHECK(ll.elbo_weight(T(0.25)) == T(4));  // 1/t exactly
  if (std::is_same<T, double>::value) {
    CHECK(ll.sigma_bar(T(1)) == doctest::Approx(6.907755278982137).epsilon(1e-15));
  }

  const RouletteLogLinearSchedule<T> rou(T(0.95));
  CHECK(rou.sigma_bar(T(0)) == T(0));
  CHECK(rou.alpha(T(0)) == T(1));
  CHECK(close(rou.sigma_bar(T(1)), -std::log(d) / T(0.95)));
  CHECK(close(rou.sigma(T(1)), (T(1) - d) / (d * T(0.95))));
  CHECK(close(rou.mask_alpha(T(1)), d));
  CHECK(rou.elbo_weight(T(0)) == inf);
  CHECK(rou.mask_elbo_weight(T(0)) == inf);

  // S-GEN-POLY: alpha(0) = 1 exactly, alpha(1) = eta, sbar(0) = 0, w(0) = +inf;
  // w < 1: dalpha(0) = -inf, sigma(0) = +inf; w > 1: dalpha(0) = sigma(0) = 0.
  const PerTokenPolynomialSchedule<T> gen(
      std::vector<T>{T(math::softplus_inverse(0.3)), T(math::softplus_inverse(2.5))});
  const auto g = gen.view();
  for (int v = 0; v < 2; ++v) {
    CAPTURE(v);
    CHECK(g.alpha(T(0), v) == T(1));
    CHECK(close(g.alpha(T(1), v), eta));
    CHECK(g.sigma_bar(T(0), v) == T(0));
    CHECK(g.elbo_weight(T(0), v) == inf);
  }
  CHECK(g.dalpha(T(0), 0) == -inf);
  CHECK(g.sigma(T(0), 0) == inf);
  CHECK(g.dalpha(T(0), 1) == T(0));
  CHECK(g.sigma(T(0), 1) == T(0));
}

// ==================================================================== (f) stability

TEST_CASE("schedules: no NaN, documented infinities only at t = 0, float agrees with double") {
  const std::vector<double> grid = dense_grid();
  // values[schedule][member][grid point], in float and in double (same float-rounded
  // parameters, same float t).
  using Table = std::vector<std::vector<std::vector<double>>>;
  auto tabulate = [&](auto tag, Table& table, std::vector<std::string>* labels,
                      std::vector<bool>* wsing) {
    using T = decltype(tag);
    for_each_schedule<T, float>([&](const char* label, const auto& s, double, bool ws) {
      const auto ms = members<T>(s);
      std::vector<std::vector<double>> vals(6);
      for (int m = 0; m < 6; ++m)
        for (double td : grid) vals[m].push_back(ms[m](static_cast<T>(static_cast<float>(td))));
      table.push_back(vals);
      if (labels) labels->push_back(label);
      if (wsing) wsing->push_back(ws);
    });
  };
  Table tf, td;
  std::vector<std::string> labels;
  std::vector<bool> wsing;
  tabulate(float{}, tf, &labels, &wsing);
  tabulate(double{}, td, nullptr, nullptr);
  REQUIRE(tf.size() == td.size());

  std::string summary;
  for (std::size_t k = 0; k < tf.size(); ++k) {
    const std::string& label = labels[k];
    const bool from_sbar = label.rfind("S-GEO", 0) == 0 || label.rfind("S-LINSIG", 0) == 0 ||
                           label.rfind("S-LOGLIN-ROU", 0) == 0;
    double worst_ulps = 0;
    for (std::size_t i = 0; i < grid.size(); ++i) {
      const float t = static_cast<float>(grid[i]);
      for (int m = 0; m < 6; ++m) {
        const double vf = tf[k][m][i], vd = td[k][m][i];
        CAPTURE(label);
        CAPTURE(std::string(kMemberNames[m]));
        CAPTURE(t);
        REQUIRE(!std::isnan(vf));
        REQUIRE(!std::isnan(vd));
        if (t > 0.0f) {
          REQUIRE(std::isfinite(vf));
          REQUIRE(std::isfinite(vd));
        } else if (!std::isfinite(vd) || !std::isfinite(vf)) {
          // Documented: elbo_weight(0) = +inf where w ~ c/t; S-POLY-MD4(K < 1) and
          // S-GEN-POLY(w < 1) also have dalpha(0) = -inf and sigma(0) = +inf.
          CHECK(vf == vd);
          const bool singular_power = label == "S-POLY-MD4(0.5)" || label == "S-GEN-POLY(w=0.3)";
          const bool documented = (m == 5 && wsing[k]) || (singular_power && (m == 1 || m == 2));
          CHECK(documented);
          continue;
        }
        // Below 1e-30 (powers t^K at tiny t) float underflows to subnormals; absolute check.
        if (std::fabs(vd) < 1e-30) {
          CHECK(std::fabs(vf - vd) <= 1e-30);
          continue;
        }
        const double rel = std::fabs(vf - vd) / std::fabs(vd);
        worst_ulps = std::max(worst_ulps, rel / 1.1920928955078125e-07);
        CHECK(rel <= float_vs_double_tol(from_sbar, td[k][3][i]));
      }
    }
    summary += " " + label + ":" + std::to_string(static_cast<int>(std::ceil(worst_ulps)));
  }
  MESSAGE("worst float/double difference in ulps:" << summary);
}

// ==================================================================== host class, evaluate

TEST_CASE_TEMPLATE("PerTokenPolynomialSchedule: init, softplus, total_noise, dw/dw_raw", T, float,
                   double) {
  const PerTokenPolynomialSchedule<T> g(5);
  CHECK(g.num_regular() == 5);
  REQUIRE(g.w().size() == 5);
  for (int v = 0; v < 5; ++v) {
    CHECK(g.w_raw()[v] == PerTokenPolynomialSchedule<T>::initial_w_raw());
    CHECK(g.w()[v] == T(1));  // exactly
  }
  CHECK(std::fabs(PerTokenPolynomialSchedule<T>::initial_w_raw() -
                  T(std::log(std::exp(1.0) - 1.0))) <= T(2) * test::eps<T>());

  PerTokenPolynomialSchedule<T> h(std::vector<T>{T(-2), T(0), T(0.5), T(3)});
  const std::vector<T> raw = {T(-2), T(0), T(0.5), T(3)};
  for (int v = 0; v < 4; ++v) {
    CAPTURE(v);
    CHECK(h.w()[v] == doctest::Approx(std::log1p(std::exp(double(raw[v])))).epsilon(
                          8 * test::eps<T>()));
    const double x = raw[v], e = 1e-5;
    const double fd =
        (std::log1p(std::exp(x + e)) - std::log1p(std::exp(x - e))) / (2 * e);
    CHECK(h.dw_dwraw(v) == doctest::Approx(fd).epsilon(std::is_same<T, float>::value ? 1e-6
                                                                                      : 1e-9));
  }
  std::vector<T> out(4, T(-1));
  h.total_noise(T(0.3), out.data());
  for (int v = 0; v < 4; ++v) CHECK(out[v] == h.view().sigma_bar(T(0.3), v));
  h.set_w_raw({T(1), T(1), T(1), T(1)});
  CHECK(h.w()[2] == math::softplus(T(1)));
  CHECK(invalid_message([&] { h.set_w_raw({T(1), T(2)}); }).find("w_raw.size()") !=
        std::string::npos);

  const auto ev = evaluate(h, T(0.4), 3);
  CHECK(ev.sigma_bar == h.view().sigma_bar(T(0.4), 3));
  CHECK(ev.elbo_weight == h.view().elbo_weight(T(0.4), 3));
}

TEST_CASE_TEMPLATE("evaluate() returns every member at t", T, float, double) {
  for_each_schedule<T>([](const char* label, const auto& s, double, bool) {
    CAPTURE(std::string(label));
    for (T t : {T(0), T(0.2), T(0.5), T(1)}) {
      const ScheduleValues<T> v = evaluate(s, t);
      const auto cmp = [](T a, T b) { return a == b || (std::isnan(a) && std::isnan(b)); };
      CHECK(cmp(v.alpha, s.alpha(t)));
      CHECK(cmp(v.dalpha, s.dalpha(t)));
      CHECK(cmp(v.sigma, s.sigma(t)));
      CHECK(cmp(v.sigma_bar, s.sigma_bar(t)));
      CHECK(cmp(v.one_minus_alpha, s.one_minus_alpha(t)));
      CHECK(cmp(v.elbo_weight, s.elbo_weight(t)));
    }
  });
  // The S-LOGLIN-ROU schedule with p_m = 1 is S-LOGLIN.
  const RouletteLogLinearSchedule<T> r1(T(1));
  const LogLinearSchedule<T> ll;
  for (T t : {T(0.1), T(0.5), T(0.9), T(1)}) {
    CHECK(r1.sigma_bar(t) == ll.sigma_bar(t));
    CHECK(r1.sigma(t) == ll.sigma(t));
  }
}

// ==================================================================== (g) bad input

TEST_CASE_TEMPLATE("schedule constructors and evaluate() reject bad input", T, float, double) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  // (value, its printed form) for parameters that must be rejected.
  struct Bad {
    T value;
    const char* text;
  };
  auto expect = [](const std::string& msg, const char* arg, const char* text) {
    CAPTURE(msg);
    CHECK(contains(msg, arg));
    CHECK(contains(msg, text));
  };

  const std::vector<Bad> bad_eta = {{nan, "nan"}, {inf, "inf"}, {-inf, "-inf"}, {T(0), "0"},
                                    {T(0.5), "0.5"}, {T(-0.1), "-0.1"}, {T(0.75), "0.75"}};
  for (const auto& b : bad_eta) {
    expect(invalid_message([&] { LinearSchedule<T> s(b.value); }), "eta", b.text);
    expect(invalid_message([&] { PolynomialSchedule<T> s(T(2), b.value); }), "eta", b.text);
    expect(invalid_message([&] { CosineSchedule<T> s(b.value); }), "eta", b.text);
  }
  const std::vector<Bad> bad_K = {{nan, "nan"}, {inf, "inf"}, {T(0), "0"}, {T(-1.5), "-1.5"}};
  for (const auto& b : bad_K)
    expect(invalid_message([&] { PolynomialSchedule<T> s(b.value); }), "K", b.text);

  const std::vector<Bad> bad_d = {{nan, "nan"}, {inf, "inf"},   {T(0), "0"},
                                  {T(1), "1"},  {T(1.5), "1.5"}, {T(-0.1), "-0.1"}};
  for (const auto& b : bad_d) {
    expect(invalid_message([&] { MdlmCosineSchedule<T> s(b.value); }), "d", b.text);
    expect(invalid_message([&] { MdlmCosineSquaredSchedule<T> s(b.value); }), "d", b.text);
    expect(invalid_message([&] { LogLinearSchedule<T> s(b.value); }), "d", b.text);
    expect(invalid_message([&] { RouletteLogLinearSchedule<T> s(T(0.95), b.value); }), "d",
           b.text);
  }
  // p_m must lie in (0, 1]: 0, negative, > 1 and non-finite values throw; 1 is accepted.
  const std::vector<Bad> bad_pm = {{nan, "nan"},    {inf, "inf"},      {T(0), "0"},
                                   {T(-0.1), "-0.1"}, {T(1.5), "1.5"}, {T(-0.0), "0"}};
  for (const auto& b : bad_pm) {
    const std::string msg = invalid_message([&] { RouletteLogLinearSchedule<T> s(b.value); });
    expect(msg, "p_m", b.text);
    if (std::isfinite(b.value)) CHECK(contains(msg, "(0, 1]"));
  }
  CHECK_NOTHROW(RouletteLogLinearSchedule<T>(T(1)));
  CHECK_NOTHROW(RouletteLogLinearSchedule<T>(T(1e-6)));

  expect(invalid_message([] { GeometricSchedule<T> s(std::numeric_limits<T>::quiet_NaN(), T(20)); }),
         "sigma_min", "nan");
  expect(invalid_message([] { GeometricSchedule<T> s(T(1e-4), std::numeric_limits<T>::infinity()); }),
         "sigma_max", "inf");
  expect(invalid_message([] { GeometricSchedule<T> s(T(0), T(20)); }), "sigma_min", "0");
  expect(invalid_message([] { GeometricSchedule<T> s(T(-1), T(20)); }), "sigma_min", "-1");
  expect(invalid_message([] { GeometricSchedule<T> s(T(20), T(2)); }), "sigma_max", "2");
  expect(invalid_message([] { GeometricSchedule<T> s(T(5), T(5)); }), "sigma_max", "5");

  expect(invalid_message([] { MdlmLinearSigmaSchedule<T> s(T(-1), T(7)); }), "sigma_min", "-1");
  expect(invalid_message([] {
           MdlmLinearSigmaSchedule<T> s(std::numeric_limits<T>::quiet_NaN(), T(7));
         }),
         "sigma_min", "nan");
  expect(invalid_message([] {
           MdlmLinearSigmaSchedule<T> s(T(1e-3), std::numeric_limits<T>::infinity());
         }),
         "sigma_max", "inf");
  expect(invalid_message([] { MdlmLinearSigmaSchedule<T> s(T(8), T(7)); }), "sigma_max", "7");

  expect(invalid_message([] { PerTokenPolynomialSchedule<T> s(1); }), "N", "1");
  expect(invalid_message([] { PerTokenPolynomialSchedule<T> s(-3); }), "N", "-3");
  expect(invalid_message([] { PerTokenPolynomialSchedule<T> s(4, T(1)); }), "eta", "1");
  expect(invalid_message([] { PerTokenPolynomialSchedule<T> s(4, T(-2)); }), "eta", "-2");
  expect(invalid_message([&] { PerTokenPolynomialSchedule<T> s(std::vector<T>{T(0), nan}); }),
         "w_raw[1]", "nan");
  expect(invalid_message([&] { PerTokenPolynomialSchedule<T> s(std::vector<T>{inf, T(0)}); }),
         "w_raw[0]", "inf");
  expect(invalid_message([] { PerTokenPolynomialSchedule<T> s(std::vector<T>{T(0), T(-1e4)}); }),
         "w_raw[1]", "-10000");
  PerTokenPolynomialSchedule<T> g(3);
  std::vector<T> out(3);
  expect(invalid_message([&] { g.total_noise(T(1.5), out.data()); }), "t", "1.5");

  // evaluate(): t outside [0, 1] or non-finite.
  const std::vector<Bad> bad_t = {{T(-0.1), "-0.1"}, {T(1.5), "1.5"}, {nan, "nan"},
                                  {inf, "inf"},      {-inf, "-inf"}};
  for (const auto& b : bad_t) {
    for_each_schedule<T>([&](const char* label, const auto& s, double, bool) {
      CAPTURE(std::string(label));
      const std::string msg = invalid_message([&] { evaluate(s, b.value); });
      expect(msg, "t = ", b.text);
      CHECK(contains(msg, "evaluate"));
    });
    expect(invalid_message([&] { evaluate(g, b.value, 0); }), "t = ", b.text);
  }
  expect(invalid_message([&] { evaluate(g, T(0.5), 3); }), "v = ", "3");
  expect(invalid_message([&] { evaluate(g.view(), T(0.5), -1); }), "v = ", "-1");
  CHECK_NOTHROW(evaluate(LogLinearSchedule<T>(), T(0)));
  CHECK_NOTHROW(evaluate(LogLinearSchedule<T>(), T(1)));
}
