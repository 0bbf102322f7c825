// Closed-form generators (spec/MATH.md 3.1-3.3, 3.5) against Eigen's dense matrix exponential
// (spec 3.4), in double and float, for u on a log grid from 1e-7 to 700; the spot values of
// spec 12.2; the reductions of roulette to absorbing (p_m = 1) and uniform (p_m = 0); and
// columns at the GPT-2 vocabulary size.
//
// The dense Q of each case is built here from the spec's formulas (not from the generators'
// rate()), exponentiated once per (N, u) in double, and used for both precisions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <unsupported/Eigen/MatrixFunctions>

#include <discdiff/generator/generators.hpp>

#include "tolerances.hpp"

using namespace discdiff;

namespace {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;

const int kVocab[] = {2, 3, 5, 27, 128};
const double kPm[] = {0.0, 0.3, 0.95, 1.0};

// ---- independent dense rate matrices (column convention, spec 1.2) -------------------------
Mat q_uniform(int n) {
  Mat q = Mat::Constant(n, n, 1.0 / n);
  q.diagonal().array() = -(n - 1.0) / n;
  return q;
}
Mat q_absorbing(int n) {
  Mat q = Mat::Zero(n + 1, n + 1);
  for (int a = 0; a < n; ++a) {
    q(n, a) = 1.0;
    q(a, a) = -1.0;
  }
  return q;
}
Mat q_roulette(int n, double pm) {
  const double g = 1.0 - pm;
  Mat q = Mat::Zero(n + 1, n + 1);
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) q(b, a) = g / n;
    q(n, a) = pm;
    q(a, a) = -(pm + g * (n - 1.0) / n);
  }
  return q;
}
// Per-token noise rates c_v in [0.5, 2] (fixed, irregular) for state-dependent masking.
std::vector<double> sd_rates(int n) {
  std::vector<double> c(static_cast<std::size_t>(n));
  for (int v = 0; v < n; ++v) {
    const double f = 0.6180339887498949 * (v + 1);
    c[static_cast<std::size_t>(v)] = 0.5 + 1.5 * (f - std::floor(f));
  }
  return c;
}
// Integrated generator Lambda[MASK,v] = ubar_v, Lambda[v,v] = -ubar_v.
Mat q_state_dependent(const std::vector<double>& ubar) {
  const int n = static_cast<int>(ubar.size());
  Mat q = Mat::Zero(n + 1, n + 1);
  for (int v = 0; v < n; ++v) {
    q(n, v) = ubar[static_cast<std::size_t>(v)];
    q(v, v) = -ubar[static_cast<std::size_t>(v)];
  }
  return q;
}

// 25 log-spaced noises from 1e-7 to 700 (both ends exact).
std::vector<double> u_grid() {
  std::vector<double> u(25);
  for (int i = 0; i < 25; ++i) u[static_cast<std::size_t>(i)] = 1e-7 * std::pow(7e9, i / 24.0);
  u.front() = 1e-7;
  u.back() = 700.0;
  return u;
}

// Noise argument of a generator member: a scalar u or per-token ubar (state-dependent).
template <class T, bool Scalar>
struct Noise {
  std::vector<T> v;
  Noise(const std::vector<double>& x) : v(x.begin(), x.end()) {}
  auto arg() const {
    if constexpr (Scalar)
      return v[0];
    else
      return v.data();
  }
};

struct MaxErr {
  double entry = 0, column = 0, row = 0, apply = 0, colsum = 0;
  void report(const std::string& what) const {
    MESSAGE(what << ": max |err| entry " << entry << ", column " << column << ", row " << row
                 << ", apply_exp (scaled) " << apply << ", |colsum-1| " << colsum);
  }
};

// Compares every entry, column, row, column sum and apply_exp of generator g at noise `noise`
// with P (the dense exponential of the same noise) within tol (absolute).
template <class T, class Gen, class NoiseArg>
void compare(const Gen& g, NoiseArg noise, const Mat& p, double tol, MaxErr& err) {
  const int d = g.num_states();
  REQUIRE(p.rows() == d);
  std::vector<T> col(static_cast<std::size_t>(d)), row(col), v(col), out(col);
  bool finite = true;
  for (int x = 0; x < d; ++x) {
    g.transition_column(x, noise, col.data());
    g.transition_row(x, noise, row.data());
    T sum = T(0);
    for (int y = 0; y < d; ++y) {
      const T e = g.transition(y, x, noise);
      const auto sy = static_cast<std::size_t>(y);
      finite = finite && std::isfinite(e) && std::isfinite(col[sy]) && std::isfinite(row[sy]);
      err.entry = std::max(err.entry, std::abs(double(e) - p(y, x)));
      err.column = std::max(err.column, std::abs(double(col[sy]) - p(y, x)));
      err.row = std::max(err.row, std::abs(double(row[sy]) - p(x, y)));
      sum += col[sy];
    }
    const double cs = std::abs(double(sum) - 1.0);
    err.colsum = std::max(err.colsum, cs);
    CHECK(cs <= double(test::column_sum_tol<T>(d)));
  }
  CHECK(finite);
  CHECK(err.entry <= tol);
  CHECK(err.column <= tol);
  CHECK(err.row <= tol);
  // apply_exp with an irregular vector; the error is scaled by (|P| |v|)_y.
  Vec vd(d);
  for (int i = 0; i < d; ++i) {
    v[static_cast<std::size_t>(i)] = T(std::sin(1.0 + i));
    vd(i) = double(v[static_cast<std::size_t>(i)]);
  }
  g.apply_exp(noise, v.data(), out.data());
  const Vec ref = p * vd, mag = p.cwiseAbs() * vd.cwiseAbs();
  for (int y = 0; y < d; ++y) {
    const double e = std::abs(double(out[static_cast<std::size_t>(y)]) - ref(y));
    err.apply = std::max(err.apply, e / std::max(1.0, mag(y)));
  }
  CHECK(err.apply <= tol);
}

// One generator family over the vocabulary sizes and the u grid, in double and float.
// make(T{}, n) builds the generator; q(n, noise_values) the dense Q (or Lambda).
template <bool Scalar, class Make, class MakeQ, class NoiseValues>
void oracle_family(const char* name, Make make, MakeQ q_of, NoiseValues noise_values) {
  MaxErr ed, ef;
  for (int n : kVocab) {
    for (double u : u_grid()) {
      const std::vector<double> nv = noise_values(n, u);
      const Mat p = (Scalar ? u * q_of(n, nv) : q_of(n, nv)).exp();
      CAPTURE(n);
      CAPTURE(u);
      compare<double>(make(double{}, n), Noise<double, Scalar>(nv).arg(), p,
                      double(test::expm_abs_tol<double>()), ed);
      const Noise<float, Scalar> nf(nv);
      compare<float>(make(float{}, n), nf.arg(), p, double(test::expm_abs_tol<float>()), ef);
    }
  }
  ed.report(std::string(name) + " double");
  ef.report(std::string(name) + " float");
}

std::vector<double> scalar_noise(int, double u) { return {u}; }
std::vector<double> sd_noise(int n, double u) {
  std::vector<double> ubar = sd_rates(n);
  for (double& x : ubar) x *= u;
  return ubar;
}
Mat q_sd(int, const std::vector<double>& ubar) { return q_state_dependent(ubar); }

}  // namespace

TEST_CASE("uniform generator: closed form equals the dense exponential") {
  oracle_family<true>(
      "uniform", [](auto t, int n) { return UniformGenerator<decltype(t)>(n); },
      [](int n, const std::vector<double>&) { return q_uniform(n); }, scalar_noise);
}

TEST_CASE("absorbing generator: closed form equals the dense exponential") {
  oracle_family<true>(
      "absorbing", [](auto t, int n) { return AbsorbingGenerator<decltype(t)>(n); },
      [](int n, const std::vector<double>&) { return q_absorbing(n); }, scalar_noise);
}

TEST_CASE("roulette generator: closed form equals the dense exponential") {
  for (double pm : kPm) {
    CAPTURE(pm);
    oracle_family<true>(
        "roulette",
        [pm](auto t, int n) {
          using T = decltype(t);
          return RouletteGenerator<T>(n, T(pm));
        },
        [pm](int n, const std::vector<double>&) { return q_roulette(n, pm); }, scalar_noise);
  }
}

TEST_CASE("state-dependent masking: closed form equals exp(Lambda)") {
  oracle_family<false>(
      "state-dependent",
      [](auto t, int n) { return StateDependentMaskingGenerator<decltype(t)>(n); }, q_sd,
      sd_noise);
}

TEST_CASE("rates and exit rates equal the dense Q") {
  for (int n : kVocab) {
    CAPTURE(n);
    auto check_q = [](const auto& g, const Mat& q) {
      const int d = g.num_states();
      REQUIRE(q.rows() == d);
      for (int x = 0; x < d; ++x) {
        for (int y = 0; y < d; ++y) CHECK(g.rate(y, x) == doctest::Approx(q(y, x)).epsilon(1e-15));
        CHECK(g.exit_rate(x) == doctest::Approx(-q(x, x)).epsilon(1e-15));
      }
    };
    check_q(UniformGenerator<double>(n), q_uniform(n));
    check_q(AbsorbingGenerator<double>(n), q_absorbing(n));
    for (double pm : kPm) check_q(RouletteGenerator<double>(n, pm), q_roulette(n, pm));
    const std::vector<double> beta = sd_noise(n, 0.37);
    const Mat lam = q_state_dependent(beta);
    StateDependentMaskingGenerator<double> sd(n);
    for (int x = 0; x <= n; ++x) {
      for (int y = 0; y <= n; ++y) CHECK(sd.rate(y, x, beta.data()) == lam(y, x));
      CHECK(sd.exit_rate(x, beta.data()) == -lam(x, x));
    }
  }
}

TEST_CASE("inverse exponential: apply_exp(-Delta) equals exp(-Delta Q) and undoes P_Delta") {
  const double deltas[] = {1e-7, 1e-4, 1e-2, 0.3, 1.0, 2.0};
  auto run = [&deltas](const auto& gd, const auto& gf, auto q_of) {
    const int d = gd.num_states();
    std::vector<double> v(static_cast<std::size_t>(d)), out(v), col(v);
    std::vector<float> vf(v.size()), outf(v.size()), colf(v.size());
    for (double delta : deltas) {
      CAPTURE(delta);
      const Mat q = q_of(delta);  // already multiplied by -delta
      const Mat pinv = q.exp();
      Vec vd(d);
      for (int i = 0; i < d; ++i) vd(i) = v[static_cast<std::size_t>(i)] = std::cos(0.5 + i);
      const Vec ref = pinv * vd;
      gd.apply_exp(-delta, v.data(), out.data());
      for (int y = 0; y < d; ++y) {
        CHECK(std::abs(out[static_cast<std::size_t>(y)] - ref(y)) <= 1e-12 * std::exp(delta));
        for (int x = 0; x < d; ++x)
          CHECK(std::abs(gd.transition(y, x, -delta) - pinv(y, x)) <= 1e-12 * std::exp(delta));
      }
      // P_{-u} P_u = I, column by column, in double and float.
      for (int x = 0; x < d; ++x) {
        gd.transition_column(x, delta, col.data());
        gd.apply_exp(-delta, col.data(), col.data());  // in place
        gf.transition_column(x, float(delta), colf.data());
        gf.apply_exp(-float(delta), colf.data(), outf.data());
        for (int y = 0; y < d; ++y) {
          const double id = y == x ? 1.0 : 0.0;
          CHECK(std::abs(col[static_cast<std::size_t>(y)] - id) <= 1e-12 * std::exp(2 * delta));
          CHECK(std::abs(outf[static_cast<std::size_t>(y)] - id) <= 1e-5 * std::exp(2 * delta));
        }
      }
    }
  };
  for (int n : {2, 5, 27}) {
    CAPTURE(n);
    run(UniformGenerator<double>(n), UniformGenerator<float>(n),
        [n](double dl) { return Mat(-dl * q_uniform(n)); });
    run(AbsorbingGenerator<double>(n), AbsorbingGenerator<float>(n),
        [n](double dl) { return Mat(-dl * q_absorbing(n)); });
    for (double pm : kPm)
      run(RouletteGenerator<double>(n, pm), RouletteGenerator<float>(n, float(pm)),
          [n, pm](double dl) { return Mat(-dl * q_roulette(n, pm)); });
  }
}

TEST_CASE("state-dependent masking: inverse with ubar = -Delta") {
  const int n = 27;
  StateDependentMaskingGenerator<double> g(n);
  for (double delta : {1e-7, 1e-3, 0.5, 2.0}) {
    CAPTURE(delta);
    const std::vector<double> inc = sd_noise(n, delta);
    std::vector<double> neg(inc);
    for (double& x : neg) x = -x;
    const Mat pinv = q_state_dependent(neg).exp();
    for (int x = 0; x <= n; ++x)
      for (int y = 0; y <= n; ++y)
        CHECK(std::abs(g.transition(y, x, neg.data()) - pinv(y, x)) <= 1e-12 * std::exp(2 * delta));
    std::vector<double> col(static_cast<std::size_t>(n + 1));
    for (int x = 0; x <= n; ++x) {
      g.transition_column(x, inc.data(), col.data());
      g.apply_exp(neg.data(), col.data(), col.data());
      for (int y = 0; y <= n; ++y)
        CHECK(std::abs(col[static_cast<std::size_t>(y)] - (x == y ? 1.0 : 0.0)) <=
              1e-12 * std::exp(4 * delta));
    }
  }
}

TEST_CASE("spot values of spec 12.2 (N = 5, p_m = 0.9, u = 0.7)") {
  const double tol = 1e-12, u = 0.7;
  const RouletteGenerator<double> r(5, 0.9);
  const int mask = r.mask(), a = 0, b = 1, c = 2;
  CHECK(r.transition(mask, a, u) == doctest::Approx(0.4674081989931028).epsilon(tol));  // A
  CHECK(r.transition(b, a, u) == doctest::Approx(0.0072012994430975).epsilon(tol));     // B
  CHECK(r.transition(a, a, u) == doctest::Approx(0.5037866032345071).epsilon(tol));     // C
  CHECK(r.ratio(mask, a, a, u) == doctest::Approx(1.0778300515903894).epsilon(tol));    // r_ca
  CHECK(r.ratio(mask, b, a, u) == doctest::Approx(0.0154068744592214).epsilon(tol));    // r_ba
  CHECK(r.ratio(a, b, a, u) == doctest::Approx(0.0142943448612217).epsilon(tol));       // r_bc
  CHECK(r.ratio(c, a, a, u) == doctest::Approx(69.95773571357155).epsilon(tol));        // r_cb
  const UniformGenerator<double> un(5);
  CHECK(un.ratio(a, b, a, u) == doctest::Approx(0.168572396768354).epsilon(tol));  // rU_bc
  CHECK(un.ratio(c, a, a, u) == doctest::Approx(5.932169318172317).epsilon(tol));  // rU_cb
}

TEST_CASE("roulette reduces to absorbing (p_m = 1) and to uniform (p_m = 0) bit for bit") {
  for (int n : {2, 5, 27}) {
    const RouletteGenerator<double> r1(n, 1.0), r0(n, 0.0);
    const AbsorbingGenerator<double> ab(n);
    const UniformGenerator<double> un(n);
    for (double u : u_grid()) {
      for (int x = 0; x <= n; ++x)
        for (int y = 0; y <= n; ++y) {
          CHECK(r1.transition(y, x, u) == ab.transition(y, x, u));
          if (x < n && y < n) CHECK(r0.transition(y, x, u) == un.transition(y, x, u));
        }
      CHECK(r0.transition(n, 0, u) == 0.0);  // MASK unreachable
      for (int x = 0; x < n; ++x)
        for (int bb = 0; bb < n; ++bb) {
          CHECK(r1.ratio(n, bb, x, u) == ab.ratio(n, bb, x, u));
          CHECK(r0.ratio(x, bb, 0, u) == un.ratio(x, bb, 0, u));
        }
    }
  }
}

TEST_CASE("GPT-2 vocabulary (N = 50257): O(N) columns sum to 1 and stay finite") {
  const int n = 50257;
  auto run = [n](auto tag) {
    using T = decltype(tag);
    const UniformGenerator<T> un(n);
    const AbsorbingGenerator<T> ab(n);
    const RouletteGenerator<T> ro(n, T(0.95));
    std::vector<T> col(static_cast<std::size_t>(n + 1));
    for (double ud : u_grid()) {
      const T u = T(ud);
      CAPTURE(ud);
      auto check_col = [&](const auto& g, int x) {
        const int d = g.num_states();
        g.transition_column(x, u, col.data());
        T sum = T(0);
        bool ok = true;
        for (int y = 0; y < d; ++y) {
          const T e = col[static_cast<std::size_t>(y)];
          ok = ok && std::isfinite(e) && e >= T(0);
          sum += e;
        }
        CHECK(ok);
        CHECK(std::abs(double(sum) - 1.0) <= double(test::column_sum_tol<T>(d)));
        // The O(1) entries agree with the column.
        CHECK(g.transition(x, x, u) == col[static_cast<std::size_t>(x)]);
        CHECK(g.transition(d - 1, x, u) == col[static_cast<std::size_t>(d - 1)]);
        CHECK(g.transition(x == 0 ? 1 : 0, x, u) == col[x == 0 ? 1u : 0u]);
      };
      check_col(un, 12345);
      check_col(ab, 12345);
      check_col(ro, 12345);
      check_col(ro, n);  // MASK column
    }
  };
  run(double{});
  run(float{});
}
