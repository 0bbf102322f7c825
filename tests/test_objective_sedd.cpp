// SEDD diffusion-weighted denoising score entropy (objective/sedd.hpp, spec/MATH.md 5.1):
// spot values of spec 12.3, the fused kernel against the naive generic sum, central finite
// differences of every gradient, the log-score head (4.4), and the batch driver.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <discdiff/generator/dense.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/exec/sequential.hpp>
#include <discdiff/objective/sedd.hpp>

using namespace discdiff;

namespace {

constexpr double kSpotTol = 5e-10;  // spec 12 prints 10 significant digits
constexpr double kGradSpotTol = 5e-7;  // gradients printed with 6 decimals
constexpr double kFdRel = 1e-6;

/// |a - b| <= rel max(|a|, |b|) + abs (doctest's Approx is strict and fails at 0 == 0 with scale 0).
bool close(double a, double b, double rel, double abs = 0.0) {
  return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)) + abs;
}

std::vector<double> spot_lambda(int d) {
  std::vector<double> lam(static_cast<std::size_t>(d));
  for (int b = 0; b < d; ++b) lam[static_cast<std::size_t>(b)] = std::sin(1.0 + b);
  return lam;
}

struct SpotRow {
  int x, a;
  double e, e_nok;
  std::vector<double> grad;
};

template <class Gen>
void check_spot(const Gen& gen, const SpotRow& row) {
  const int d = gen.num_states();
  const auto lam = spot_lambda(d);
  std::vector<double> g(static_cast<std::size_t>(d)), gn(g.size());
  const double e = sedd_position(gen, lam.data(), d, row.x, row.a, 0.7, 1.0, g.data());
  const double en = sedd_position_naive(gen, lam.data(), d, row.x, row.a, 0.7, 1.0, gn.data());
  SeddOptions nok;
  nok.include_k = false;
  std::vector<double> g2(g.size());
  const double e2 = sedd_position(gen, lam.data(), d, row.x, row.a, 0.7, 1.0, g2.data(), nok);
  const double e2n =
      sedd_position_naive(gen, lam.data(), d, row.x, row.a, 0.7, 1.0, g2.data(), nok);
  CAPTURE(gen.name);
  CAPTURE(row.x);
  CHECK(e == doctest::Approx(row.e).epsilon(kSpotTol));
  CHECK(en == doctest::Approx(row.e).epsilon(kSpotTol));
  CHECK(e2 == doctest::Approx(row.e_nok).epsilon(kSpotTol));
  CHECK(e2n == doctest::Approx(row.e_nok).epsilon(kSpotTol));
  for (int b = 0; b < d; ++b) {
    CAPTURE(b);
    CHECK(std::abs(g[b] - row.grad[static_cast<std::size_t>(b)]) <= kGradSpotTol);
    CHECK(std::abs(gn[b] - row.grad[static_cast<std::size_t>(b)]) <= kGradSpotTol);
    CHECK(close(g2[b], g[b], 1e-14));  // K is constant in lambda
  }
}

/// Central finite differences of e(lambda) against the analytic gradient.
template <class Gen>
void check_fd(const Gen& gen, std::vector<double> lam, int x, int a, double u, SeddOptions opt) {
  const int d = gen.num_states();
  std::vector<double> g(static_cast<std::size_t>(d)), tmp(g.size());
  sedd_position(gen, lam.data(), d, x, a, u, 1.0, g.data(), opt);
  double scale = 0;
  for (double v : g) scale = std::max(scale, std::abs(v));
  for (int b = 0; b < d; ++b) {
    const double h = 1e-5, l0 = lam[static_cast<std::size_t>(b)];
    lam[static_cast<std::size_t>(b)] = l0 + h;
    const double ep = sedd_position(gen, lam.data(), d, x, a, u, 1.0, tmp.data(), opt);
    lam[static_cast<std::size_t>(b)] = l0 - h;
    const double em = sedd_position(gen, lam.data(), d, x, a, u, 1.0, tmp.data(), opt);
    lam[static_cast<std::size_t>(b)] = l0;
    const double fd = (ep - em) / (2 * h);
    CAPTURE(std::string(gen.name));
    CAPTURE(x);
    CAPTURE(a);
    CAPTURE(u);
    CAPTURE(b);
    CHECK(std::abs(fd - g[b]) <= kFdRel * std::max(scale, 1e-3));
  }
}

template <class Gen>
void fused_vs_naive_all_states(const Gen& gen, std::mt19937_64& rng) {
  const int n = gen.num_regular(), d = gen.num_states();
  std::normal_distribution<double> nd(0.0, 1.5);
  for (double u : {1e-6, 1e-3, 0.05, 0.7, 3.0, 12.0, 40.0}) {
    for (int x = 0; x < d; ++x) {
      for (int a = 0; a < n; ++a) {
        if (!(gen.transition(x, a, u) > 0)) continue;
        for (bool head : {false, true}) {
          for (bool k : {true, false}) {
            std::vector<double> lam(static_cast<std::size_t>(d));
            for (auto& v : lam) v = nd(rng);
            SeddOptions opt;
            opt.include_k = k;
            opt.log_score_head = head;
            std::vector<double> g(lam.size()), gn(lam.size());
            const double gw = 0.37;
            const double e = sedd_position(gen, lam.data(), d, x, a, u, gw, g.data(), opt);
            const double en =
                sedd_position_naive(gen, lam.data(), d, x, a, u, gw, gn.data(), opt);
            CAPTURE(std::string(gen.name));
            CAPTURE(u);
            CAPTURE(x);
            CAPTURE(a);
            CAPTURE(head);
            CAPTURE(k);
            CAPTURE(e);
            CAPTURE(en);
            // The naive sum pos - neg + K cancels: compare at its accuracy.
            double mag = 0;
            for (int b = 0; b < d; ++b) {
              const double r = b == x ? 0.0 : gen.ratio(x, b, a, u);
              mag += gen.rate(x, b) > 0 && b != x
                         ? std::abs(gen.rate(x, b)) *
                               (std::exp(lam[b]) + std::abs(r * lam[b]) +
                                std::abs(math::score_entropy_k(r)) + 1.0)
                         : 0.0;
            }
            CAPTURE(mag);
            CHECK(std::abs(e - en) <= 1e-13 * std::max(1.0, mag) + 1e-12 * std::abs(en));
            for (int b = 0; b < d; ++b)
              CHECK(close(g[b], gn[b], 1e-12, 1e-13 * mag));
            if (k) CHECK(e >= 0.0);
          }
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("sedd: DWDSE per position reproduces the spot values of spec 12.3") {
  const UniformGenerator<double> uni(5);
  const AbsorbingGenerator<double> abs(5);
  const RouletteGenerator<double> rou(5, 0.9);
  check_spot(uni, {0, 0, 0.5447949064, 0.9197525070, {0, 0.462801, 0.196598, 0.060118, 0.042947}});
  check_spot(uni,
             {1, 0, 0.5072145329, 0.1813334492, {-0.722478, 0, 0.030313, -0.106167, -0.123339}});
  check_spot(abs, {0, 0, 0, 0, {0, 0, 0, 0, 0, 0}});
  check_spot(abs, {1, 0, 0, 0, {0, 0, 0, 0, 0, 0}});
  check_spot(abs, {5, 0, 4.9764235346, 5.9763310956,
                   {1.333343, 2.482578, 1.151563, 0.469164, 0.383305, 0}});
  check_spot(rou, {0, 0, 0.0839211847, 0.0899223981,
                   {0, 0.049366, 0.022745, 0.009097, 0.007380, 0}});
  check_spot(rou, {1, 0, 3.4249226185, -1.0593797832,
                   {-1.352759, 0, 0.003031, -0.010617, -0.012334, 0}});
  check_spot(rou, {5, 0, 4.1344486717, 5.3187067735,
                   {1.117752, 2.220454, 1.022540, 0.408382, 0.331108, 0}});
}

TEST_CASE("sedd: the per-generator coefficients match the closed forms of spec 5.1") {
  // Uniform constant (spec 7.3 check 8): sum_b Q[x,b] K(r_b) = ((N-1)/N) K(rU_bc) at x = a and
  // (K(rU_cb) - (N-2))/N at x != a.
  const int N = 5;
  const UniformGenerator<double> uni(N);
  const double u = 0.7;
  const double rbc = uni.ratio(0, 1, 0, u), rcb = uni.ratio(1, 0, 0, u);
  for (int x : {0, 1}) {
    const auto c = sedd_coeffs(uni, x, 0, u);
    double k = 0;
    for (int b = 0; b < N; ++b)
      if (b != x) k += c.q * math::score_entropy_k(c.a_candidate && b == 0 ? c.r_a : c.r_other);
    const double want = x == 0 ? (N - 1.0) / N * math::score_entropy_k(rbc)
                               : (math::score_entropy_k(rcb) - (N - 2)) / N;
    CHECK(k == doctest::Approx(want).epsilon(1e-14));
    // Code form of the last constant: ((-log rU_bc - 1)/rU_bc - (N-2))/N.
    if (x == 1) CHECK(k == doctest::Approx(((-std::log(rbc) - 1) / rbc - (N - 2)) / N).epsilon(1e-13));
  }
  // Roulette ratios of spec 12.2.
  const RouletteGenerator<double> rou(N, 0.9);
  const auto cm = sedd_coeffs(rou, N, 0, u);
  CHECK(cm.q == 0.9);
  CHECK(cm.r_a == doctest::Approx(1.0778300515903894).epsilon(1e-14));
  CHECK(cm.r_other == doctest::Approx(0.0154068744592214).epsilon(1e-14));
  const auto ca = sedd_coeffs(rou, 0, 0, u);
  CHECK(ca.q == doctest::Approx(0.1 / N).epsilon(1e-15));
  CHECK(ca.r_other == doctest::Approx(0.0142943448612217).epsilon(1e-14));
  CHECK_FALSE(ca.a_candidate);
  const auto cc = sedd_coeffs(rou, 1, 0, u);
  CHECK(cc.r_a == doctest::Approx(69.95773571357155).epsilon(1e-14));
  CHECK(cc.r_other == 1.0);
  // Roulette with p_m = 1 has no weighted candidate at regular x (it is the absorbing graph).
  const RouletteGenerator<double> rou1(N, 1.0);
  CHECK(sedd_coeffs(rou1, 2, 2, u).q == 0.0);
}

TEST_CASE("sedd: fused kernel == naive generic sum for every state, clean token and noise") {
  std::mt19937_64 rng(11);
  fused_vs_naive_all_states(UniformGenerator<double>(4), rng);
  fused_vs_naive_all_states(AbsorbingGenerator<double>(4), rng);
  fused_vs_naive_all_states(RouletteGenerator<double>(4, 0.9), rng);
  fused_vs_naive_all_states(RouletteGenerator<double>(3, 0.5), rng);
  fused_vs_naive_all_states(RouletteGenerator<double>(2, 0.95), rng);
  fused_vs_naive_all_states(RouletteGenerator<double>(4, 1.0), rng);
  fused_vs_naive_all_states(UniformGenerator<double>(2), rng);
}

TEST_CASE("sedd: the naive sum through the dense oracle agrees with the closed-form generators") {
  // sedd_position_naive is generic; through DenseGenerator (Eigen's Pade exponential) it gives
  // the DWDSE of spec 3.4 "generic replacements".
  const int N = 4;
  const RouletteGenerator<double> rou(N, 0.8);
  Eigen::MatrixXd q(N + 1, N + 1);
  for (int y = 0; y <= N; ++y)
    for (int x = 0; x <= N; ++x) q(y, x) = rou.rate(y, x);
  DenseGenerator<double> dense(q, N);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> nd(0.0, 1.0);
  for (double u : {0.01, 0.5, 2.0}) {
    for (int x = 0; x <= N; ++x)
      for (int a = 0; a < N; ++a) {
        std::vector<double> lam(N + 1), g1(N + 1), g2(N + 1);
        for (auto& v : lam) v = nd(rng);
        const double e1 = sedd_position(rou, lam.data(), N + 1, x, a, u, 1.0, g1.data());
        const double e2 = sedd_position_naive(dense, lam.data(), N + 1, x, a, u, 1.0, g2.data());
        CHECK(e1 == doctest::Approx(e2).epsilon(1e-11));
        for (int b = 0; b <= N; ++b) CHECK(close(g1[b], g2[b], 1e-11, 1e-12));
      }
  }
}

TEST_CASE("sedd: every gradient matches central finite differences (uniform, absorbing, roulette)") {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> nd(0.0, 1.0);
  auto run = [&](const auto& gen) {
    const int d = gen.num_states(), n = gen.num_regular();
    for (double u : {0.02, 0.7, 4.0})
      for (int x = 0; x < d; ++x)
        for (int a = 0; a < n; ++a) {
          if (!(gen.transition(x, a, u) > 0)) continue;
          for (int variant = 0; variant < 3; ++variant) {
            SeddOptions opt;
            opt.include_k = variant != 1;
            opt.log_score_head = variant == 2;
            std::vector<double> lam(static_cast<std::size_t>(d));
            for (auto& v : lam) v = nd(rng);
            check_fd(gen, lam, x, a, u, opt);
          }
        }
  };
  run(UniformGenerator<double>(5));
  run(AbsorbingGenerator<double>(5));
  run(RouletteGenerator<double>(5, 0.9));
  run(RouletteGenerator<double>(4, 0.3));
}

TEST_CASE("sedd: the log-score head offsets of spec 4.4") {
  const double u = 0.7;
  const int N = 5;
  const double em = std::expm1(u);
  CHECK(sedd_log_score_offset(UniformGenerator<double>(N), 2, u) ==
        doctest::Approx(std::log(1 + 1 / em - 1 / (em + N))).epsilon(1e-14));
  CHECK(sedd_log_score_offset(AbsorbingGenerator<double>(N), N, u) ==
        doctest::Approx(-std::log(em) - std::log(N)).epsilon(1e-14));
  const RouletteGenerator<double> rou(N, 0.9);
  const double sm = std::expm1(0.9 * u), sg = std::expm1(0.1 * u);
  CHECK(sedd_log_score_offset(rou, N, u) == doctest::Approx(-std::log(sm * N)).epsilon(1e-14));
  CHECK(sedd_log_score_offset(rou, 1, u) ==
        doctest::Approx(std::log(1 + 1 / sg - 1 / (sg + N))).epsilon(1e-14));
  // Large u: no overflow, the uniform offset tends to 0 and the absorbing one to -u - log N.
  CHECK(sedd_log_score_offset(UniformGenerator<double>(N), 0, 800.0) == 0.0);
  CHECK(sedd_log_score_offset(AbsorbingGenerator<double>(N), N, 800.0) ==
        doctest::Approx(-800 - std::log(N)).epsilon(1e-14));
  CHECK(std::isfinite(sedd_log_score_offset(AbsorbingGenerator<float>(N), N, 200.0f)));

  // With the head the raw output o gives the same loss as lambda = o + c.
  const auto lam = spot_lambda(N + 1);
  std::vector<double> o(lam), g1(N + 1), g2(N + 1);
  const double c = sedd_log_score_offset(rou, N, u);
  for (int b = 0; b < N; ++b) o[b] = lam[b] - c;
  SeddOptions head;
  head.log_score_head = true;
  const double e1 = sedd_position(rou, lam.data(), N + 1, N, 0, u, 1.0, g1.data());
  const double e2 = sedd_position(rou, o.data(), N + 1, N, 0, u, 1.0, g2.data(), head);
  CHECK(e2 == doctest::Approx(e1).epsilon(1e-13));
  for (int b = 0; b <= N; ++b) CHECK(close(g2[b], g1[b], 1e-13, 1e-15));
}

TEST_CASE("sedd: each summand is evaluated without cancellation (small u, float)") {
  // At u = 1e-4 the absorbing ratio is r_a = 1/expm1(u) ~ 1e4 and K(r_a) ~ 8e4; with the exact
  // log-score lambda_a = log r_a the summand D_K(r_a || r_a) is 0 and the loss must stay small
  // in float, where the textbook form pos - neg + const would lose ~1e-2 absolutely.
  const int N = 8;
  const AbsorbingGenerator<float> gen(N);
  const float u = 1e-4f;
  std::vector<float> lam(N + 1, -30.0f), g(N + 1);
  const float ra = gen.ratio(N, 3, 3, u);
  lam[3] = std::log(ra);
  const float e = sedd_position(gen, lam.data(), N + 1, N, 3, u, 1.0f, g.data());
  CHECK(e >= 0.0f);
  CHECK(e < 1e-5f);
  CHECK(std::abs(g[3]) <= 1e-3f * ra);
}

TEST_CASE("sedd: the batch driver is sigma(t) times the per-position sum, fused == naive") {
  const int N = 6, B = 3, L = 4;
  const RouletteGenerator<double> gen(N, 0.85);
  std::mt19937_64 rng(8);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<int> x0(B * L), xt(B * L);
  std::vector<double> u = {0.05, 0.6, 2.5}, sigma = {1.3, 0.4, 7.0};
  for (int i = 0; i < B * L; ++i) {
    x0[i] = static_cast<int>(rng() % N);
    xt[i] = i % 3 == 0 ? N : static_cast<int>(rng() % N);
  }
  std::vector<double> out(B * L * (N + 1));
  for (auto& v : out) v = nd(rng);
  auto make = [&](std::vector<double>& grad, std::vector<double>& pos, std::vector<double>& row) {
    grad.assign(out.size(), -1.0);
    pos.assign(B * L, -1.0);
    row.assign(B, -1.0);
    LossBatch<double> bt;
    bt.B = B;
    bt.L = L;
    bt.V = N + 1;
    bt.x0 = x0.data();
    bt.xt = xt.data();
    bt.logits = out.data();
    bt.grad = grad.data();
    bt.pos_loss = pos.data();
    bt.row_loss = row.data();
    bt.grad_scale = 0.25;
    return bt;
  };
  std::vector<double> g1, p1, r1, g2, p2, r2;
  sedd_loss_raw(SequentialExecutor{}, gen, make(g1, p1, r1), u.data(), sigma.data());
  sedd_loss_naive(gen, make(g2, p2, r2), u.data(), sigma.data());
  for (int b = 0; b < B; ++b) {
    double want = 0;
    for (int l = 0; l < L; ++l) {
      const int i = b * L + l;
      std::vector<double> g(N + 1);
      want += sigma[b] * sedd_position(gen, out.data() + i * (N + 1), N + 1, xt[i], x0[i], u[b],
                                       1.0, g.data());
      for (int v = 0; v <= N; ++v)
        CHECK(close(g1[i * (N + 1) + v], 0.25 * sigma[b] * g[v], 1e-14));
    }
    CHECK(r1[b] == doctest::Approx(want).epsilon(1e-14));
    CHECK(r1[b] == doctest::Approx(r2[b]).epsilon(1e-12));
  }
  for (std::size_t i = 0; i < g1.size(); ++i) CHECK(close(g1[i], g2[i], 1e-12, 1e-14));
}

TEST_CASE("sedd: expm1_fast is within 2 ulps of expm1 (float and double)") {
  // The DWDSE kernel's expm1: the Taylor polynomial on (-1/2, 1/2), exp(d) - 1 outside.
  // Reference: long double expm1.
  auto ulps = [](auto got, long double want) {
    using T = decltype(got);
    const T w = static_cast<T>(want);
    const T ulp = std::nextafter(std::abs(w), std::numeric_limits<T>::infinity()) - std::abs(w);
    return static_cast<double>(std::abs(static_cast<long double>(got) - want) / ulp);
  };
  double worst_f = 0, worst_d = 0;
  for (int i = -300000; i <= 300000; ++i) {
    const double d = i * 2e-5 * (1 + (i % 7 == 0) * 30);  // dense near 0, spread to +-180
    if (d == 0) continue;
    if (std::abs(d) < 80) {
      const float f = static_cast<float>(d);
      worst_f = std::max(worst_f, ulps(detail::obj::expm1_fast(f), std::expm1(static_cast<long double>(f))));
    }
    worst_d = std::max(worst_d, ulps(detail::obj::expm1_fast(d), std::expm1(static_cast<long double>(d))));
  }
  for (double d : {1e-300, -1e-300, 1e-12, -1e-12, 0.5, -0.5, std::nextafter(0.5, 0.0),
                   std::nextafter(-0.5, 0.0), 700.0, -745.0})
    worst_d = std::max(worst_d, ulps(detail::obj::expm1_fast(d), std::expm1(static_cast<long double>(d))));
  CHECK(worst_f <= 2.0);
  CHECK(worst_d <= 2.0);
  CHECK(detail::obj::expm1_fast(0.0) == 0.0);
  CHECK(std::isinf(detail::obj::expm1_fast(1000.0)));
  CHECK(detail::obj::expm1_fast(-1000.0) == -1.0);
}

TEST_CASE("sedd: without K, a zero score where the ratio is 0 contributes 0 (no 0 * -inf NaN)") {
  // Absorbing at x = MASK: r_b = 0 for every regular b != a, so a model that puts zero score
  // (lambda = -inf) there is exactly right and the J2 integrand exp(lambda) - r lambda is 0 for
  // those b. Only b = a remains: exp(lambda_a) - r_a lambda_a.
  const AbsorbingGenerator<double> gen(4);
  const int x = gen.mask(), a = 1;
  const double u = 0.5, inf = std::numeric_limits<double>::infinity();
  std::vector<double> out = {-inf, 0.3, -inf, -inf, 0.0}, grad(5), grad_naive(5);
  SeddOptions opt;
  opt.include_k = false;
  const double e = sedd_position(gen, out.data(), 5, x, a, u, 1.0, grad.data(), opt);
  const double e_naive = sedd_position_naive(gen, out.data(), 5, x, a, u, 1.0, grad_naive.data(), opt);
  const double r_a = gen.ratio(x, a, a, u);
  const double expected = std::exp(0.3) - r_a * 0.3;
  CHECK(std::isfinite(e));
  CHECK(e == doctest::Approx(expected).epsilon(1e-14));
  CHECK(e_naive == doctest::Approx(expected).epsilon(1e-14));
  CHECK(grad[0] == 0.0);
  CHECK(grad[a] == doctest::Approx(std::exp(0.3) - r_a).epsilon(1e-14));
}
