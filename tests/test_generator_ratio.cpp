// Conditional ratios (spec/MATH.md 1.5 and the tables of 3.1-3.3, 3.5) against the direct
// quotient of transition entries, the rate matrices' own consistency, and the dense oracle
// (DenseGenerator, spec 3.4) against the closed forms.
//
// Reference for the ratios: the quotient P_u[b,a] / P_u[x,a] of the closed-form entries
// evaluated in long double. A quotient of double entries would not do as a reference: for
// u -> 0 the entries B_u = O(u) are fine, but at large u entries such as e^{-u} fall below the
// double range (u > 745), and quotients like r_cb = 1 + N e^{-gu}/m_g are exactly where the
// closed form is more accurate than the division of two rounded entries. The long double
// entries carry 64-bit significands and a 15-bit exponent, so the reference is accurate to
// ~1e-18 relative over the whole grid. The comparison is restricted to quotients inside the
// normal range of the tested type (count reported); outside it only the sign and finiteness
// conventions are checked (+Inf for the unused ratios toward MASK beyond max<T>).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <discdiff/generator/dense.hpp>
#include <discdiff/generator/generators.hpp>

#include "tolerances.hpp"

using namespace discdiff;

namespace {

std::vector<double> u_grid() {
  std::vector<double> u(25);
  for (int i = 0; i < 25; ++i) u[static_cast<std::size_t>(i)] = 1e-7 * std::pow(7e9, i / 24.0);
  u.front() = 1e-7;
  u.back() = 700.0;
  return u;
}

std::vector<double> sd_noise(int n, double u) {
  std::vector<double> ubar(static_cast<std::size_t>(n));
  for (int v = 0; v < n; ++v) {
    const double f = 0.6180339887498949 * (v + 1);
    ubar[static_cast<std::size_t>(v)] = (0.5 + 1.5 * (f - std::floor(f))) * u;
  }
  return ubar;
}

template <class T, bool Scalar>
struct Noise {
  std::vector<T> v;
  explicit Noise(const std::vector<double>& x) : v(x.begin(), x.end()) {}
  auto arg() const {
    if constexpr (Scalar)
      return v[0];
    else
      return v.data();
  }
};

std::vector<double> round_to_float(std::vector<double> x) {
  for (double& e : x) e = double(float(e));
  return x;
}

struct RatioStats {
  long compared = 0, zeros = 0, out_of_range = 0;
  double max_rel = 0;
};

// Compares g.ratio (type T) with the long double quotient of gl's entries at the same noise.
template <class T, bool Scalar, class G, class GL>
void compare_ratios(const G& g, const GL& gl, const std::vector<double>& nv, double rel_tol,
                    RatioStats& st) {
  const Noise<T, Scalar> n(nv);
  const Noise<long double, Scalar> nl(nv);
  const int d = g.num_states();
  for (int a = 0; a < d; ++a)
    for (int x = 0; x < d; ++x) {
      const long double px = gl.transition(x, a, nl.arg());
      if (!(px > 0)) continue;  // precondition P_u[x,a] > 0
      for (int b = 0; b < d; ++b) {
        const long double q = gl.transition(b, a, nl.arg()) / px;
        const T r = g.ratio(x, b, a, n.arg());
        CAPTURE(x);
        CAPTURE(b);
        CAPTURE(a);
        CHECK(!std::isnan(r));
        if (q == 0) {
          ++st.zeros;
          CHECK(r == T(0));
        } else if (q >= std::numeric_limits<T>::min() && q <= std::numeric_limits<T>::max()) {
          ++st.compared;
          const double rel = double(std::abs((static_cast<long double>(r) - q) / q));
          st.max_rel = std::max(st.max_rel, rel);
          CHECK(rel <= rel_tol);
        } else {
          ++st.out_of_range;
          if (q > std::numeric_limits<T>::max())
            CHECK(r == std::numeric_limits<T>::infinity());
          else
            CHECK((r >= T(0) && r < T(2) * std::numeric_limits<T>::min()));
        }
      }
    }
}

// make(tag, param) builds the generator in type decltype(tag).
template <bool Scalar, class Make>
void ratio_family(const char* name, Make make, double param, bool expect_double_in_range) {
  RatioStats sd, sf;
  for (int n : {2, 3, 5, 8}) {
    for (double u : u_grid()) {
      CAPTURE(n);
      CAPTURE(u);
      const std::vector<double> nv = Scalar ? std::vector<double>{u} : sd_noise(n, u);
      // double: relative 1e-12 (the rounding of the exponent arguments, ~u eps, dominates).
      compare_ratios<double, Scalar>(make(double{}, n, param), make(0.0L, n, param),
                                     nv, test::ratio_rel_tol, sd);
      // float: the same parameters and noise rounded to float; relative 16 eps (1 + u): the
      // exponent arguments p_m u, g u are rounded to float (condition number ~u).
      const std::vector<double> nvf = round_to_float(nv);
      const double pf = double(float(param));
      const double umax = *std::max_element(nvf.begin(), nvf.end());
      const double tol_f = 16.0 * double(test::eps<float>()) * (1.0 + umax);
      compare_ratios<float, Scalar>(make(float{}, n, pf), make(0.0L, n, pf), nvf,
                                    tol_f, sf);
    }
  }
  MESSAGE(std::string(name) << " (param " << param << "): double max rel " << sd.max_rel << " over "
                << sd.compared << " ratios (" << sd.zeros << " exact zeros, " << sd.out_of_range
                << " outside the double range); float max rel " << sf.max_rel << " over "
                << sf.compared << " (" << sf.out_of_range << " outside the float range)");
  if (expect_double_in_range) CHECK(sd.out_of_range == 0);
  CHECK(sd.compared > 0);
}

}  // namespace

TEST_CASE("ratio() equals the quotient of transition entries: uniform") {
  ratio_family<true>(
      "uniform", [](auto t, int n, double) { return UniformGenerator<decltype(t)>(n); }, 0.0,
      true);
}

TEST_CASE("ratio() equals the quotient of transition entries: absorbing") {
  ratio_family<true>(
      "absorbing", [](auto t, int n, double) { return AbsorbingGenerator<decltype(t)>(n); }, 0.0,
      true);
}

TEST_CASE("ratio() equals the quotient of transition entries: roulette") {
  for (double pm : {0.0, 0.3, 0.9, 0.95, 1.0})
    ratio_family<true>(
        "roulette",
        [](auto t, int n, double p) {
          using T = decltype(t);
          return RouletteGenerator<T>(n, T(p));
        },
        pm, true);
}

TEST_CASE("ratio() equals the quotient of transition entries: state-dependent masking") {
  // ubar_v = c_v u reaches 1400: 1/expm1(ubar) and expm1(ubar) leave the double range there.
  ratio_family<false>(
      "state-dependent",
      [](auto t, int n, double) { return StateDependentMaskingGenerator<decltype(t)>(n); }, 0.0,
      false);
}

TEST_CASE("reciprocal ratios: r_cb r_bc = 1 and rU_cb rU_bc = 1") {
  for (double u : u_grid()) {
    if (u > 30) continue;  // r_cb - 1 ~ N e^{-gu} leaves nothing to check beyond
    const UniformGenerator<double> un(7);
    CHECK(un.ratio(1, 0, 0, u) * un.ratio(0, 1, 0, u) == doctest::Approx(1.0).epsilon(8e-16));
    for (double pm : {0.3, 0.95}) {
      const RouletteGenerator<double> r(7, pm);
      CHECK(r.ratio(1, 0, 0, u) * r.ratio(0, 1, 0, u) == doctest::Approx(1.0).epsilon(8e-16));
    }
  }
}

TEST_CASE("rate matrices: columns sum to 0, exit rates are the off-diagonal sums") {
  auto check = [](const auto& g, auto... beta) {
    const int d = g.num_states();
    for (int x = 0; x < d; ++x) {
      double off = 0, sum = 0;
      for (int y = 0; y < d; ++y) {
        const double q = g.rate(y, x, beta...);
        if (y != x) {
          CHECK(q >= 0.0);
          off += q;
        }
        sum += q;
      }
      CHECK(std::abs(sum) <= 4 * d * test::eps<double>());
      CHECK(g.exit_rate(x, beta...) == doctest::Approx(off).epsilon(4e-16));
    }
  };
  for (int n : {2, 5, 27}) {
    check(UniformGenerator<double>(n));
    check(AbsorbingGenerator<double>(n));
    for (double pm : {0.0, 0.3, 0.95, 1.0}) check(RouletteGenerator<double>(n, pm));
    const std::vector<double> beta = sd_noise(n, 1.3);
    check(StateDependentMaskingGenerator<double>(n), beta.data());
  }
}

TEST_CASE("DenseGenerator (Eigen expm) agrees with the closed forms") {
  const double tol = 1e-12;
  auto check = [tol](const auto& g) {
    const DenseGenerator<double> dense = make_dense(g);
    const int d = g.num_states();
    REQUIRE(dense.num_states() == d);
    CHECK(dense.num_regular() == g.num_regular());
    CHECK(dense.has_mask() == g.has_mask());
    CHECK(dense.mask() == g.mask());
    std::vector<double> c1(static_cast<std::size_t>(d)), c2(c1), v(c1), o1(c1), o2(c1);
    for (int i = 0; i < d; ++i) v[static_cast<std::size_t>(i)] = std::sin(2.0 + i);
    for (double u : {1e-5, 0.01, 0.7, 3.0, 40.0, -0.05}) {
      CAPTURE(u);
      for (int x = 0; x < d; ++x) {
        CHECK(dense.exit_rate(x) == g.exit_rate(x));
        g.transition_column(x, u, c1.data());
        dense.transition_column(x, u, c2.data());
        for (int y = 0; y < d; ++y) {
          CHECK(std::abs(c1[std::size_t(y)] - c2[std::size_t(y)]) <= tol);
          CHECK(std::abs(g.transition(x, y, u) - dense.transition(x, y, u)) <= tol);
        }
        g.transition_row(x, u, c1.data());
        dense.transition_row(x, u, c2.data());
        for (int y = 0; y < d; ++y) CHECK(std::abs(c1[std::size_t(y)] - c2[std::size_t(y)]) <= tol);
        if (u <= 0) continue;
        // Ratios where both entries are well above the oracle's absolute error.
        for (int a = 0; a < d; ++a)
          for (int b = 0; b < d; ++b) {
            const double px = g.transition(x, a, u), pb = g.transition(b, a, u);
            if (px < 1e-4 || pb < 1e-4) continue;
            CHECK(dense.ratio(x, b, a, u) == doctest::Approx(g.ratio(x, b, a, u)).epsilon(1e-9));
          }
      }
      g.apply_exp(u, v.data(), o1.data());
      dense.apply_exp(u, v.data(), o2.data());
      for (int y = 0; y < d; ++y) CHECK(std::abs(o1[std::size_t(y)] - o2[std::size_t(y)]) <= tol);
      // Forward draws land on reachable states.
      if (u > 0) {
        for (std::uint64_t i = 0; i < 64; ++i) {
          CounterRng rng(7, 1, i);
          const int x0 = static_cast<int>(i % static_cast<std::uint64_t>(d));
          const int y = dense.sample_forward(x0, u, rng);
          REQUIRE((y >= 0 && y < d));
          CHECK(g.transition(y, x0, u) > 0);
        }
      }
    }
    return dense;
  };
  for (int n : {2, 5, 27}) {
    CAPTURE(n);
    const auto du = check(UniformGenerator<double>(n));
    REQUIRE(du.has_unique_limit());
    for (int i = 0; i < n; ++i) CHECK(du.limit_distribution()(i) == doctest::Approx(1.0 / n));
    const auto da = check(AbsorbingGenerator<double>(n));
    REQUIRE(da.has_unique_limit());
    CHECK(da.limit_distribution()(n) == doctest::Approx(1.0));
    CounterRng rng(1, 2, 3);
    CHECK(da.sample_limit(rng) == n);
    for (double pm : {0.3, 0.95, 1.0}) {
      const auto dr = check(RouletteGenerator<double>(n, pm));
      REQUIRE(dr.has_unique_limit());
      CHECK(dr.limit_distribution()(n) == doctest::Approx(1.0));
    }
    // p_m = 0: MASK and the regular block are two closed classes, no unique limit.
    const auto d0 = check(RouletteGenerator<double>(n, 0.0));
    CHECK_FALSE(d0.has_unique_limit());
    CHECK_THROWS_AS(d0.sample_limit(rng), std::logic_error);
  }
}

TEST_CASE("DenseGenerator of the integrated state-dependent generator Lambda") {
  const int n = 6;
  const StateDependentMaskingGenerator<double> g(n);
  for (double u : {1e-6, 0.2, 5.0}) {
    const std::vector<double> ubar = sd_noise(n, u);
    const DenseGenerator<double> dense = make_dense(g, ubar.data());
    for (int x = 0; x <= n; ++x)
      for (int y = 0; y <= n; ++y)
        CHECK(std::abs(dense.transition(y, x, 1.0) - g.transition(y, x, ubar.data())) <= 1e-12);
  }
}

TEST_CASE("checked_ratio matches ratio() and rejects P_u[x,a] = 0") {
  const RouletteGenerator<double> r(5, 0.9);
  CHECK(checked_ratio(r, 5, 1, 0, 0.7) == r.ratio(5, 1, 0, 0.7));
  CHECK(checked_ratio(r, 2, 0, 0, 0.7) == r.ratio(2, 0, 0, 0.7));
  const AbsorbingGenerator<float> ab(5);
  CHECK(checked_ratio(ab, 5, 0, 0, 0.7) == ab.ratio(5, 0, 0, 0.7f));
  CHECK_THROWS_AS(checked_ratio(ab, 1, 0, 0, 0.7), std::invalid_argument);  // P[1,0] = 0
  const std::vector<double> ubar = sd_noise(5, 0.7);
  const StateDependentMaskingGenerator<double> sd(5);
  CHECK(checked_ratio(sd, 5, 3, 3, ubar) == sd.ratio(5, 3, 3, ubar.data()));
}
