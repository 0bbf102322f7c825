// Exact enumeration of the bounds (spec/MATH.md sections 6 and 7; include/discdiff/bound/exact*.hpp):
// the reference table of 7.2 (both integration methods), Theorems A, B, C, the J1/J2 relation of
// 6.6 and the exit-rate identity on random problems, the exact denoiser (q_t = p_t), the MD4
// ELBO against the exact NLL (and its orderings for the smoothed and tempered denoisers), and the building blocks (index space, marginals and posteriors
// against brute force, scores, integrators, validation).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <discdiff/bound/exact.hpp>
#include <discdiff/generator/dense.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/schedule/schedules.hpp>

using namespace discdiff;
using namespace discdiff::exact;

namespace {

// Tolerances of spec 7.2/7.3 (absolute, nats per sequence).
constexpr double kTableTol = 1e-6;       // reproduction of the printed 7.2 values
constexpr double kIdentityTol = 1e-6;    // Theorem A, Theorem C, exit identity
constexpr double kJ1J2Tol = 1e-8;        // J2 - (J1 + EH)
constexpr double kBoundSlack = 1e-9;     // a bound may be tight up to this much
constexpr double kExactDenoiserTol = 1e-9;

void check_column(const ExactBounds& r, const SpecReferenceColumn& ref, const char* what) {
  INFO(what);
  CHECK(std::abs(r.kl_eps - ref.kl_eps) <= kTableTol);
  CHECK(std::abs(r.thmA_rhs - ref.thmA_rhs) <= kTableTol);
  CHECK(std::abs(r.thmB_bound - ref.thmB_bound) <= kTableTol);
  CHECK(std::abs(r.ce_eps - ref.ce_eps) <= kTableTol);
  CHECK(std::abs(r.j2 - ref.j2) <= kTableTol);
  CHECK(std::abs(r.j1 - ref.j1) <= kTableTol);
  CHECK(std::abs(r.eh_eps - ref.eh) <= kTableTol);
  CHECK(std::abs((r.j1 + r.eh_eps) - ref.j1_plus_eh) <= kTableTol);
  CHECK(std::abs(r.nll_eps - ref.nll_eps) <= kTableTol);
  CHECK(std::abs(r.i_exit - ref.i_exit) <= kTableTol);
  CHECK(std::abs(r.j2 - (r.j1 + r.eh_eps)) <= kJ1J2Tol);
}

// Theorems A, B, C, 6.5, 6.6 and the exit identities on one computed problem.
void check_theorems(const ExactBounds& r, double analytic_exit) {
  CAPTURE(r.kl_eps);
  CAPTURE(r.thmA_rhs);
  CAPTURE(r.j2);
  CAPTURE(r.j1);
  CAPTURE(r.eh_eps);
  CHECK(std::isfinite(r.kl_eps));
  CHECK(std::abs(r.kl_eps - r.thmA_rhs) <= kIdentityTol);           // Theorem A
  CHECK(r.kl_eps <= r.thmB_bound + kBoundSlack);                    // Theorem B
  CHECK(std::abs(r.h_eps - r.thmC_rhs) <= kIdentityTol);            // Theorem C
  CHECK(r.ce_eps <= r.j2 + kBoundSlack);                            // J2 bound
  CHECK(r.ce_eps - r.eh_eps <= r.j1 + kBoundSlack);                 // 6.5 (data processing)
  CHECK(std::abs(r.j2 - r.j1 - r.eh_eps) <= kIdentityTol);          // 6.6
  CHECK(std::abs(r.i_sp - r.i_exit) <= kIdentityTol);               // exit-rate identity
  CHECK(std::abs(r.i_exit - analytic_exit) <= kIdentityTol);        // closed form of 7.2
  CHECK(r.i_corr >= -kBoundSlack);
}

template <class Gen, class Den>
ExactBounds run(const Gen& gen, int L, const std::vector<double>& p0, const Den& den, double u0,
                double u1, ReverseStart start, const ExactOptions& opt = {}) {
  const ExactForward<Gen> fwd(gen, L, p0);
  return compute_exact_bounds(fwd, den, u0, u1, start, opt);
}

std::int64_t ipow(int b, int e) {
  std::int64_t r = 1;
  for (int i = 0; i < e; ++i) r *= b;
  return r;
}

}  // namespace

TEST_CASE("exact: spec 7.2 reference table, log-grid recipe of 7.1 (K = 1200)") {
  ExactOptions opt;
  opt.method = ExactMethod::log_grid;
  opt.grid_intervals = 1200;
  const auto ref = spec_reference_values();
  for (int c = 0; c < 4; ++c) {
    const ExactBounds r = run_spec_reference(SpecColumn(c), opt);
    check_column(r, ref[static_cast<std::size_t>(c)], spec_column_name(SpecColumn(c)));
  }
}

TEST_CASE("exact: spec 7.2 reference table, adaptive Dormand-Prince + Gauss-Kronrod") {
  const auto ref = spec_reference_values();
  for (int c = 0; c < 4; ++c) {
    const ExactBounds r = run_spec_reference(SpecColumn(c));
    check_column(r, ref[static_cast<std::size_t>(c)], spec_column_name(SpecColumn(c)));
    // The adaptive result satisfies Theorem A far below the grid's 4e-8 (spec 7.2 note).
    CHECK(std::abs(r.kl_eps - r.thmA_rhs) <= 1e-9);
    check_theorems(r, r.i_exit);
  }
}

TEST_CASE("exact: log-grid Richardson estimate is small and brackets the adaptive result") {
  ExactOptions opt;
  opt.method = ExactMethod::log_grid;
  opt.grid_intervals = 400;
  opt.richardson = true;
  const ExactBounds g = run_spec_reference(SpecColumn::absorbing, opt);
  const ExactBounds a = run_spec_reference(SpecColumn::absorbing);
  // The K vs K/2 change is dominated by the Simpson sum of I_corr (ThmA_RHS); q itself is
  // accurate to ~1e-13 already at K = 200.
  CHECK(g.discretisation > 0.0);
  CHECK(g.discretisation < 1e-4);
  CHECK(std::abs(g.j2 - a.j2) <= g.discretisation + 1e-9);
  CHECK(std::abs(g.kl_eps - a.kl_eps) <= g.discretisation + 1e-9);
}

TEST_CASE("exact: Theorems A, B, C and J2 = J1 + EH on random problems (three generators)") {
  int count = 0;
  for (int k = 0; k < 4; ++k) {
    const int N = 2 + k % 3, L = 1 + (k + 1) % 3;
    const std::vector<double> p0 = dirichlet_like(ipow(N, L), 777, 1, 1.0 + 0.5 * k, 0.01);
    const TiltedDenoiser<CounterNoise> den{CounterNoise{991, static_cast<std::uint32_t>(k)},
                                           0.3 + 0.2 * k};
    const double u0 = 1e-3 * (1 + k), u1 = 3.0 + 2.0 * k;
    CAPTURE(N);
    CAPTURE(L);
    {
      const UniformGenerator<double> g(N);
      const ExactBounds r = run(g, L, p0, den, u0, u1, ReverseStart{StartReference::limit, 0.2 * k + 0.3});
      check_theorems(r, analytic_exit_integral(g, L, u0, u1));
      // spec 6.7: CE(p_T, pi) = L log N exactly for the uniform reference.
      if (k == 0) {
        const ExactBounds pure =
            run(g, L, p0, den, u0, u1, ReverseStart{StartReference::limit, 1.0});
        CHECK(std::abs(pure.ce_T - L * std::log(double(N))) <= 1e-12);
      }
      ++count;
    }
    {
      const AbsorbingGenerator<double> g(N);
      const ReverseStart start = k % 2 ? ReverseStart{StartReference::masked_prior, 1.0}
                                       : ReverseStart{StartReference::limit, 0.6};
      const ExactBounds r = run(g, L, p0, den, u0, u1, start);
      check_theorems(r, analytic_exit_integral(g, L, u0, u1));
      ++count;
    }
    {
      const RouletteGenerator<double> g(N, 0.4 + 0.15 * k);
      const ExactBounds r = run(g, L, p0, den, u0, u1, ReverseStart{StartReference::masked_prior, 0.5});
      check_theorems(r, analytic_exit_integral(g, L, u0, u1));
      ++count;
    }
  }
  CHECK(count == 12);
}

TEST_CASE("exact: with the exact denoiser and q_T = p_T the reverse marginals are p_t") {
  const ReverseStart start{StartReference::limit, 0.0};
  const std::vector<double> p0 = dirichlet_like(ipow(3, 3), 5, 0, 2.0, 0.0);
  auto check_exact = [&](const ExactBounds& r) {
    double m = 0.0;
    for (std::size_t x = 0; x < r.p_eps.size(); ++x) m = std::max(m, std::abs(r.p_eps[x] - r.q_eps[x]));
    CHECK(m <= kExactDenoiserTol);
    CHECK(std::abs(r.kl_eps) <= 1e-12);
    CHECK(std::abs(r.kl_T) == 0.0);
    CHECK(std::abs(r.i_se) <= 1e-12);
    CHECK(std::abs(r.i_corr) <= 1e-10);  // an ODE component: controlled to rtol = 1e-10
    CHECK(std::abs(r.ce_eps - r.h_eps) <= 1e-12);
  };
  check_exact(run(UniformGenerator<double>(3), 3, p0, ExactDenoiser{}, 1e-3, 8.0, start));
  check_exact(run(AbsorbingGenerator<double>(3), 3, p0, ExactDenoiser{}, 1e-3, 8.0, start));
  check_exact(run(RouletteGenerator<double>(3, 0.7), 3, p0, ExactDenoiser{}, 1e-3, 8.0, start));
}

TEST_CASE("exact: a tilt of amplitude 0 is the exact denoiser; the dense oracle gives the same bounds") {
  const std::vector<double> p0 = spec_reference_data(3, 2);
  const RouletteGenerator<double> g(3, 0.8);
  const ReverseStart start{StartReference::limit, 0.7};
  const ExactBounds a = run(g, 2, p0, ExactDenoiser{}, 1e-3, 6.0, start);
  const ExactBounds b = run(g, 2, p0, TiltedDenoiser<SineNoise>{SineNoise{}, 0.0}, 1e-3, 6.0, start);
  CHECK(a.kl_eps == doctest::Approx(b.kl_eps).epsilon(1e-12));
  CHECK(a.j2 == doctest::Approx(b.j2).epsilon(1e-12));
  // Generic over the Generator concept: Eigen's dense exponential of the same Q.
  const DenseGenerator<double> dense = make_dense(g);
  const ExactBounds c = run(dense, 2, p0, spec_reference_denoiser(), 1e-3, 6.0, start);
  const ExactBounds d = run(g, 2, p0, spec_reference_denoiser(), 1e-3, 6.0, start);
  CHECK(std::abs(c.kl_eps - d.kl_eps) <= 1e-9);
  CHECK(std::abs(c.j2 - d.j2) <= 1e-9);
  CHECK(std::abs(c.j1 - d.j1) <= 1e-9);
}

TEST_CASE("exact: MD4 ELBO vs the exact NLL (continuous and discrete time)") {
  const LinearSchedule<double> lin;       // S-LIN-MD4, alpha(0) = 1 - 1e-4
  const CosineSchedule<double> cosine;    // S-COS-MD4
  for (int k = 0; k < 2; ++k) {
    const int N = 3, L = 2 + k;
    const std::vector<double> p0 = dirichlet_like(ipow(N, L), 31, static_cast<std::uint32_t>(k), 1.5, 0.01);
    const ExactForward<AbsorbingGenerator<double>> fwd(AbsorbingGenerator<double>(N), L, p0);
    CAPTURE(L);
    // Exact denoiser: every ordering holds.
    {
      const Md4Elbo c = md4_continuous_elbo(fwd, lin, 0.0, 1.0, ExactDenoiser{});
      const ExactBounds b =
          compute_exact_bounds(fwd, ExactDenoiser{}, lin.sigma_bar(0.0), lin.sigma_bar(1.0),
                               ReverseStart{StartReference::masked_prior, 1.0});
      const double nll = md4_decoder_nll(fwd, b.q_eps);
      CHECK(c.total >= nll - kBoundSlack);
      CHECK(nll >= entropy(p0) - kBoundSlack);  // NLL = CE(p_0, p_model) >= H(p_0)
      CHECK(std::abs(c.total - (b.j1 + c.recon)) <= 1e-8);  // spec 5.3: MD4 ELBO = J1 + recon
      CHECK(std::abs(c.prior - L * 1e-4 * std::log(3.0)) <= 1e-15);
      double prev = 1e300;
      for (int T = 1; T <= 64; T *= 2) {
        const Md4Elbo d = md4_discrete_elbo(fwd, lin, 0.0, 1.0, ExactDenoiser{}, T);
        const double nll_t = md4_discrete_nll(fwd, lin, 0.0, 1.0, ExactDenoiser{}, T);
        CAPTURE(T);
        CHECK(d.total >= nll_t - kBoundSlack);     // discrete ELBO
        CHECK(d.total >= c.total - kBoundSlack);   // discrete >= continuous
        CHECK(d.total <= prev + kBoundSlack);      // decreasing in T
        prev = d.total;
      }
      // Schedule invariance of the continuous ELBO (spec 5.3): same alpha(0), alpha(1).
      const Md4Elbo cc = md4_continuous_elbo(fwd, cosine, 0.0, 1.0, ExactDenoiser{});
      CHECK(std::abs(cc.total - c.total) <= 1e-9);
    }
    // Perturbed denoiser: the ELBOs still bound the NLL of their own models.
    {
      const TiltedDenoiser<CounterNoise> den{CounterNoise{3, 4}, 0.7};
      const Md4Elbo c = md4_continuous_elbo(fwd, cosine, 0.0, 1.0, den);
      const ExactBounds b =
          compute_exact_bounds(fwd, den, cosine.sigma_bar(0.0), cosine.sigma_bar(1.0),
                               ReverseStart{StartReference::masked_prior, 1.0});
      CHECK(c.total >= md4_decoder_nll(fwd, b.q_eps) - kBoundSlack);
      CHECK(std::abs(c.total - (b.j1 + c.recon)) <= 1e-8);
      for (int T : {1, 3, 16}) {
        const Md4Elbo d = md4_discrete_elbo(fwd, cosine, 0.0, 1.0, den, T);
        CHECK(d.total >= md4_discrete_nll(fwd, cosine, 0.0, 1.0, den, T) - kBoundSlack);
      }
    }
  }
}

TEST_CASE("exact: smoothed and tempered denoisers keep the MD4 orderings L_inf <= L_2T <= L_T") {
  // Their expected masked cross-entropy per masked position is non-decreasing in t (concave
  // functions of the posterior, exact_denoiser.hpp), so the discrete ELBO is a decreasing
  // sequence of upper Riemann sums of the continuous one.
  const CosineSchedule<double> cosine;  // S-COS-MD4
  for (int k = 0; k < 3; ++k) {
    const int N = 2 + k, L = 3 - k % 2;
    const std::vector<double> p0 = dirichlet_like(ipow(N, L), 61, static_cast<std::uint32_t>(k), 2.0, 0.0);
    const ExactForward<AbsorbingGenerator<double>> fwd(AbsorbingGenerator<double>(N), L, p0);
    auto check = [&](const auto& den, const char* what) {
      INFO(what);
      CAPTURE(k);
      const Md4Elbo c = md4_continuous_elbo(fwd, cosine, 0.0, 1.0, den);
      double prev = 1e300;
      for (int T = 1; T <= 32; T *= 2) {
        CAPTURE(T);
        const Md4Elbo d = md4_discrete_elbo(fwd, cosine, 0.0, 1.0, den, T);
        CHECK(d.total >= c.total - kBoundSlack);
        CHECK(d.total <= prev + kBoundSlack);
        prev = d.total;
      }
      CHECK(prev - c.total < 0.05 * c.total);  // and the sums converge
    };
    check(SmoothedDenoiser{0.1 + 0.3 * k}, "smoothed");
    check(TemperedDenoiser{0.9 - 0.2 * k}, "tempered");
  }
  // lambda = 0 and beta = 1 are the exact denoiser; the predictions are distributions.
  const ExactForward<AbsorbingGenerator<double>> fwd(AbsorbingGenerator<double>(3), 2,
                                                     spec_reference_data(3, 2));
  const ForwardSlice<double> sl = fwd.slice(0.8);
  double f0[3], f1[3], f2[3];
  for (std::int64_t x = 0; x < 16; ++x)
    for (int i = 0; i < 2; ++i) {
      ExactDenoiser{}.predict(sl, x, i, f0);
      SmoothedDenoiser{0.0}.predict(sl, x, i, f1);
      TemperedDenoiser{1.0}.predict(sl, x, i, f2);
      for (int h = 0; h < 3; ++h) {
        CHECK(f1[h] == doctest::Approx(f0[h]).epsilon(1e-15));
        CHECK(f2[h] == doctest::Approx(f0[h]).epsilon(1e-14));
      }
      SmoothedDenoiser{0.4}.predict(sl, x, i, f1);
      TemperedDenoiser{0.5}.predict(sl, x, i, f2);
      CHECK(f1[0] + f1[1] + f1[2] == doctest::Approx(1.0).epsilon(1e-15));
      CHECK(f2[0] + f2[1] + f2[2] == doctest::Approx(1.0).epsilon(1e-15));
      for (int h = 0; h < 3; ++h) CHECK(f1[h] >= 0.4 / 3 - 1e-15);
    }
}

TEST_CASE("exact: MD4 discrete NLL converges to the continuous model's NLL") {
  const LinearSchedule<double> lin;
  const std::vector<double> p0 = spec_reference_data(3, 2);
  const ExactForward<AbsorbingGenerator<double>> fwd(AbsorbingGenerator<double>(3), 2, p0);
  const auto den = spec_reference_denoiser();
  const ExactBounds b = compute_exact_bounds(fwd, den, lin.sigma_bar(0.0), lin.sigma_bar(1.0),
                                             ReverseStart{StartReference::masked_prior, 1.0});
  const double nll = md4_decoder_nll(fwd, b.q_eps);
  const double e256 = std::abs(md4_discrete_nll(fwd, lin, 0.0, 1.0, den, 256) - nll);
  const double e1024 = std::abs(md4_discrete_nll(fwd, lin, 0.0, 1.0, den, 1024) - nll);
  CHECK(e1024 < e256);
  CHECK(e1024 < 1e-4);
}

TEST_CASE("exact: SequenceSpace indices (position 0 most significant)") {
  const SequenceSpace s(4, 3);
  CHECK(s.size() == 64);
  const int tok[3] = {3, 1, 2};
  const std::int64_t idx = s.encode(tok);
  CHECK(idx == 3 * 16 + 1 * 4 + 2);
  int back[3];
  s.decode(idx, back);
  CHECK(back[0] == 3);
  CHECK(back[1] == 1);
  CHECK(back[2] == 2);
  CHECK(s.digit(idx, 1) == 1);
  CHECK(s.with_digit(idx, 1, 0) == 3 * 16 + 2);
  const SequenceSpace clean(3, 3);
  const int c[3] = {2, 0, 1};
  CHECK(clean.embed(clean.encode(c), s) == 2 * 16 + 0 + 1);
  CHECK_THROWS_AS(SequenceSpace(10, 8, 1000), std::invalid_argument);
}

TEST_CASE("exact: marginals, joints and posteriors against brute-force enumeration") {
  const int N = 3, L = 3;
  const RouletteGenerator<double> g(N, 0.6);
  const std::vector<double> p0 = dirichlet_like(ipow(N, L), 9, 9, 1.0, 0.0);
  const ExactForward<RouletteGenerator<double>> fwd(g, L, p0);
  const double u = 0.37;
  const ForwardSlice<double> sl = fwd.slice(u);
  const SequenceSpace& S = fwd.state_space();
  const SequenceSpace& C = fwd.clean_space();
  double maxerr = 0.0;
  for (std::int64_t x = 0; x < S.size(); ++x) {
    double px = 0.0;
    std::vector<double> joint(static_cast<std::size_t>(L * N), 0.0);
    for (std::int64_t k = 0; k < C.size(); ++k) {
      double w = p0[static_cast<std::size_t>(k)];
      for (int i = 0; i < L; ++i) w *= g.transition(S.digit(x, i), C.digit(k, i), u);
      px += w;
      for (int i = 0; i < L; ++i) joint[static_cast<std::size_t>(i * N + C.digit(k, i))] += w;
    }
    maxerr = std::max(maxerr, std::abs(px - sl.p[static_cast<std::size_t>(x)]));
    for (int i = 0; i < L; ++i)
      for (int h = 0; h < N; ++h)
        maxerr = std::max(maxerr, std::abs(joint[static_cast<std::size_t>(i * N + h)] - sl.joint_at(x, i, h)));
    // conditional() is the product of per-position transitions
    const std::vector<double> cond = fwd.conditional(5, u);
    double w = 1.0;
    for (int i = 0; i < L; ++i) w *= g.transition(S.digit(x, i), C.digit(5, i), u);
    maxerr = std::max(maxerr, std::abs(cond[static_cast<std::size_t>(x)] - w));
  }
  CHECK(maxerr <= 1e-15);
  // EH factorises: compare with the direct sum over x_0 and x.
  double eh = 0.0;
  for (std::int64_t k = 0; k < C.size(); ++k) eh += p0[static_cast<std::size_t>(k)] * entropy(fwd.conditional(k, u));
  CHECK(std::abs(eh - fwd.expected_conditional_entropy(u)) <= 1e-13);
}

TEST_CASE("exact: scores of the exact posterior are the concrete score p_u(y)/p_u(x)") {
  const int N = 3, L = 2;
  const std::vector<double> p0 = spec_reference_data(N, L);
  auto check = [&](const auto& g) {
    using G = std::decay_t<decltype(g)>;
    const ExactForward<G> fwd(g, L, p0);
    const ExactEvaluator<G, ExactDenoiser> E(fwd, ExactDenoiser{});
    const double u = 0.8;
    const auto ev = E.evaluate(u);
    const auto& ed = E.edges();
    double maxrel = 0.0;
    for (std::int64_t x = 0; x < fwd.state_space().size(); ++x)
      for (std::int64_t e = ed.offset[static_cast<std::size_t>(x)]; e < ed.offset[static_cast<std::size_t>(x) + 1]; ++e) {
        const double sp = ev.slice.p[static_cast<std::size_t>(ed.target[static_cast<std::size_t>(e)])] / ev.slice.p[static_cast<std::size_t>(x)];
        maxrel = std::max(maxrel, std::abs(ev.score[static_cast<std::size_t>(e)] - sp) / sp);
      }
    CHECK(maxrel <= 1e-13);
    // the generator overload of naive_probs_to_score agrees with the table overload
    const double f[3] = {0.2, 0.5, 0.3};
    std::vector<double> s1(static_cast<std::size_t>(g.num_states())), s2(s1.size());
    naive_probs_to_score(g, g.num_states() - 1, u, f, s1.data());
    naive_probs_to_score(ev.slice.P.data(), g.num_states(), N, g.num_states() - 1, f, s2.data());
    for (std::size_t b = 0; b < s1.size(); ++b) CHECK(s1[b] == doctest::Approx(s2[b]).epsilon(1e-15));
  };
  check(UniformGenerator<double>(N));
  check(AbsorbingGenerator<double>(N));
  check(RouletteGenerator<double>(N, 0.9));
  // Absorbing closed form (spec 4.2): s_b = f(b)/expm1(u) at MASK.
  const AbsorbingGenerator<double> ga(N);
  const double f[3] = {0.2, 0.5, 0.3};
  double s[4];
  naive_probs_to_score(ga, N, 0.3, f, s);
  for (int b = 0; b < N; ++b) CHECK(s[b] == doctest::Approx(f[b] / std::expm1(0.3)).epsilon(1e-14));
}

TEST_CASE("exact: integrators (Dormand-Prince 5(4), RK4, Simpson, vector Gauss-Kronrod)") {
  // y' = -2 t y, y(0) = 1: y = exp(-t^2); integrate backwards from 2 to 0 as well.
  auto f = [](double t, const std::vector<double>& y, std::vector<double>& dy) { dy[0] = -2.0 * t * y[0]; };
  std::vector<double> y{1.0};
  const OdeStats st = dormand_prince45(f, 0.0, 2.0, y, OdeOptions{1e-12, 1e-14, 0.0, 100000});
  CHECK(std::abs(y[0] - std::exp(-4.0)) <= 1e-11);
  CHECK(st.accepted > 0);
  std::vector<double> z{std::exp(-4.0)};
  dormand_prince45(f, 2.0, 0.0, z, OdeOptions{1e-12, 1e-14, 0.0, 100000});
  CHECK(std::abs(z[0] - 1.0) <= 1e-10);
  // RK4 is 4th order: halving h divides the error by about 16.
  auto rk_error = [&](int n) {
    std::vector<double> w{1.0}, k1(1), k2(1), k3(1), k4(1), tmp(1);
    for (int i = 0; i < n; ++i) rk4_step(f, 2.0 * i / n, 2.0 / n, w, k1, k2, k3, k4, tmp);
    return std::abs(w[0] - std::exp(-4.0));
  };
  const double ratio = rk_error(40) / rk_error(80);
  CHECK(ratio > 14.0);
  CHECK(ratio < 18.0);
  // Simpson is exact for cubics.
  const std::vector<double> w = simpson_weights(4, 0.25);
  double s = 0.0;
  for (int k = 0; k <= 4; ++k) s += w[static_cast<std::size_t>(k)] * std::pow(0.25 * k, 3);
  CHECK(s == doctest::Approx(0.25).epsilon(1e-15));
  CHECK_THROWS_AS(simpson_weights(3, 1.0), std::invalid_argument);
  // Vector Gauss-Kronrod: a component that is 0 does not stall the adaptive refinement.
  const auto q = integrate_vector<3>(
      [](double x) {
        QuadVec<3> v;
        v[0] = std::exp(x);
        v[1] = 0.0;
        v[2] = 1.0 / (1.0 + 25.0 * x * x);
        return v;
      },
      -1.0, 1.0, 1e-13);
  CHECK(q.value[0] == doctest::Approx(std::exp(1.0) - std::exp(-1.0)).epsilon(1e-13));
  CHECK(q.value[1] == 0.0);
  CHECK(q.value[2] == doctest::Approx(0.4 * std::atan(5.0)).epsilon(1e-12));
}

TEST_CASE("exact: divergences follow the conventions of spec 1.6") {
  CHECK(score_entropy_divergence(0.0, 0.7) == 0.7);
  CHECK(std::isinf(score_entropy_divergence(0.3, 0.0)));
  CHECK(score_entropy_divergence(2.0, 2.0) == 0.0);
  const double a = 1.7, b = 0.4;
  CHECK(score_entropy_divergence(a, b) == doctest::Approx(a * std::log(a / b) - a + b).epsilon(1e-14));
  CHECK(score_entropy_divergence(1.0, 1.0 + 1e-9) == doctest::Approx(0.5e-18).epsilon(1e-6));
  const std::vector<double> p{0.5, 0.5, 0.0}, q{0.25, 0.25, 0.5};
  CHECK(kl_divergence(p, q) == doctest::Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(cross_entropy(p, q) == doctest::Approx(std::log(4.0)).epsilon(1e-15));
  CHECK(entropy(p) == doctest::Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(std::isinf(kl_divergence(q, p)));
}

TEST_CASE("exact: input validation names the bad argument") {
  const UniformGenerator<double> g(3);
  auto throws_with = [](const std::function<void()>& fn, const std::string& needle) {
    try {
      fn();
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      CAPTURE(msg);
      CHECK(msg.find(needle) != std::string::npos);
      return;
    }
    FAIL("no exception for " << needle);
  };
  throws_with([&] { ExactForward<UniformGenerator<double>>(g, 2, std::vector<double>(8, 0.125)); }, "p0.size()");
  throws_with([&] {
    std::vector<double> p(9, 1.0 / 9);
    p[3] = -0.1;
    ExactForward<UniformGenerator<double>>(g, 2, p);
  }, "p0[3]");
  throws_with([&] { ExactForward<UniformGenerator<double>>(g, 2, std::vector<double>(9, 0.2)); }, "sum(p0)");
  throws_with([&] { ExactForward<UniformGenerator<double>>(g, 30, std::vector<double>(9, 0.2)); }, "exact-enumeration limit");
  const ExactForward<UniformGenerator<double>> fwd(g, 2, std::vector<double>(9, 1.0 / 9));
  throws_with([&] { compute_exact_bounds(fwd, ExactDenoiser{}, 0.0, 1.0, ReverseStart{}); }, "u_min");
  throws_with([&] { compute_exact_bounds(fwd, ExactDenoiser{}, 2.0, 1.0, ReverseStart{}); }, "u_max");
  throws_with([&] { compute_exact_bounds(fwd, ExactDenoiser{}, 0.1, 1.0, ReverseStart{StartReference::limit, 1.5}); }, "weight");
  throws_with([&] { compute_exact_bounds(fwd, ExactDenoiser{}, 0.1, 1.0, ReverseStart{StartReference::masked_prior, 0.5}); }, "pi_alpha");
  ExactOptions opt;
  opt.method = ExactMethod::log_grid;
  opt.grid_intervals = 7;
  throws_with([&] { compute_exact_bounds(fwd, ExactDenoiser{}, 0.1, 1.0, ReverseStart{}, opt); }, "grid_intervals");
  const ExactForward<AbsorbingGenerator<double>> afwd(AbsorbingGenerator<double>(3), 2, std::vector<double>(9, 1.0 / 9));
  const LogLinearSchedule<double> loglin;  // alpha(0) = 1: the exact MD4 computation needs t0 > 0
  throws_with([&] { md4_continuous_elbo(afwd, loglin, 0.0, 1.0, ExactDenoiser{}); }, "t0");
  throws_with([&] { md4_discrete_elbo(afwd, loglin, 0.01, 1.0, ExactDenoiser{}, 0); }, "steps");
  throws_with([&] { dirichlet_like(0, 1, 1); }, "size");
}
