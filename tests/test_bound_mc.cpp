// Monte Carlo bound estimators (include/discdiff/bound/monte_carlo.hpp, spec/MATH.md 8) against
// exact enumeration (bound/exact*.hpp): J1, J2 and their paired gap for the uniform, absorbing
// and roulette generators (logit, log-score and SEDD log-score-head models), the MD4 ELBO in
// continuous and discrete time, the PBRC code convention and its spec 6.8 consequence
// (code-level J2 < J1 for masked graphs), the time samplers of 8.1, the closed-form reference
// terms of 6.7, backends and input validation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <discdiff/bound/bounds.hpp>
#include <discdiff/exec/openmp.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/schedule/schedules.hpp>

using namespace discdiff;
using namespace discdiff::exact;

namespace {

constexpr double kSigmas = 4.0;  // acceptance: Monte Carlo within 4 standard errors of exact

void check_within(const McEstimate& mc, double exact, const char* what) {
  INFO(what);
  CAPTURE(mc.mean);
  CAPTURE(mc.std_error);
  CAPTURE(exact);
  REQUIRE(std::isfinite(mc.std_error));
  CHECK(mc.std_error > 0.0);
  CHECK(std::abs(mc.mean - exact) <= kSigmas * mc.std_error);
}

template <class Gen, class Sched>
void check_score_bounds(const Gen& gen, const Sched& sched, double eps, std::uint64_t seed) {
  const std::vector<double> p0 = spec_reference_data(3, 2);
  const ExactForward<Gen> fwd(gen, 2, p0);
  const auto den = spec_reference_denoiser();
  const PriorReference ref = default_prior_reference(gen);
  const double u_eps = sched.sigma_bar(eps), u_1 = sched.sigma_bar(1.0);
  const ExactBounds ex = compute_exact_bounds(fwd, den, u_eps, u_1, ReverseStart{ref, 1.0});

  const std::vector<int> x0 = sample_data(fwd, 8192, seed, 1);
  ScoreBoundOptions opt;
  opt.eps = eps;
  opt.batch_size = 64;
  opt.passes = 2;
  opt.seed = seed;
  const ScoreBoundEstimate mc =
      estimate_score_bounds(gen, sched, ExactModel<Gen, decltype(den)>(fwd, den), x0, 2, opt);
  CHECK(mc.j1.samples == 16384);
  CHECK(mc.j1.batches == 256);
  check_within(mc.j1, ex.j1, "J1");
  check_within(mc.j2, ex.j2, "J2");
  check_within(mc.j2_direct, ex.j2, "J2 direct");
  check_within(mc.gap, ex.j2 - ex.j1, "J2 - J1");
  // J2 = J1hat + EH: the same standard error as J1 (issue 13 part 3).
  CHECK(mc.j2.std_error == mc.j1.std_error);
  CHECK(mc.j2.mean == doctest::Approx(mc.j1.mean + mc.expected_gap).epsilon(1e-14));
  // spec 6.6: E[J2hat - J1hat] = E H(p_{eps|0}) = L H(P_{u_eps}[., a]) (closed form vs enumeration).
  CHECK(std::abs(mc.expected_gap - ex.eh_eps) <= 1e-12);
  // The constants are those of the exact computation (q_T = reference).
  CHECK(std::abs(mc.prior_kl - (ex.ce_T - ex.eh_T)) <= 1e-12);
  CHECK(std::abs(mc.reference_ce - ex.ce_T) <= 1e-12);
  CHECK(std::abs(mc.exit_integral - ex.i_exit) <= 1e-9);
  // The error bars mean something: a few per cent of the value at most.
  CHECK(mc.j1.std_error < 0.04 * ex.j1);
  CHECK(mc.j2.std_error < 0.04 * ex.j2);
  // Units.
  CHECK(mc.j2.nats_per_token() == doctest::Approx(mc.j2.mean / 2).epsilon(1e-15));
  CHECK(mc.j2.bits_per_token() == doctest::Approx(mc.j2.mean / (2 * std::log(2.0))).epsilon(1e-14));
  CHECK(mc.j2.perplexity() == doctest::Approx(std::exp(mc.j2.mean / 2)).epsilon(1e-14));
  CHECK(mc.j2.perplexity_se() ==
        doctest::Approx(mc.j2.perplexity() * mc.j2.std_error / 2).epsilon(1e-14));
}

}  // namespace

TEST_CASE("mc: J1, J2 and J2 - J1 agree with the exact integrals (uniform, S-GEO on [1e-3, 6])") {
  // sbar(t) = 1e-3^{1-t} 6^t maps t in [0, 1] onto the u range of spec 7.1.
  check_score_bounds(UniformGenerator<double>(3), GeometricSchedule<double>(1e-3, 6.0), 0.0, 11);
}

TEST_CASE("mc: J1, J2 and J2 - J1 agree with the exact integrals (absorbing, S-LOGLIN)") {
  check_score_bounds(AbsorbingGenerator<double>(3), LogLinearSchedule<double>(), 1e-3, 12);
}

TEST_CASE("mc: J1, J2 and J2 - J1 agree with the exact integrals (roulette p_m = 0.9, S-LOGLIN-ROU)") {
  check_score_bounds(RouletteGenerator<double>(3, 0.9), RouletteLogLinearSchedule<double>(0.9),
                     1e-3, 13);
}

TEST_CASE("mc: log-score and logit models give the same J1, J2 on the same draws") {
  const RouletteGenerator<double> gen(3, 0.7);
  const GeometricSchedule<double> sched(1e-3, 8.0);
  const ExactForward<RouletteGenerator<double>> fwd(gen, 2, dirichlet_like(9, 3, 0, 1.5, 0.01));
  const TiltedDenoiser<CounterNoise> den{CounterNoise{5, 6}, 0.5};
  const std::vector<int> x0 = sample_data(fwd, 512, 21, 0);
  ScoreBoundOptions opt;
  opt.eps = 0.0;
  opt.batch_size = 32;
  opt.seed = 21;
  const auto a = estimate_score_bounds(gen, sched, ExactModel<RouletteGenerator<double>, decltype(den)>(fwd, den), x0, 2, opt);
  opt.output = ModelOutput::log_scores;
  const auto b = estimate_score_bounds(
      gen, sched, ExactModel<RouletteGenerator<double>, decltype(den)>(fwd, den, ModelOutput::log_scores),
      x0, 2, opt);
  // Closed-form probs_to_score (logits path) vs the generic identity (ExactModel's log-scores).
  CHECK(a.j1.mean == doctest::Approx(b.j1.mean).epsilon(1e-10));
  CHECK(a.j2.mean == doctest::Approx(b.j2.mean).epsilon(1e-10));
  CHECK(a.j1.std_error == doctest::Approx(b.j1.std_error).epsilon(1e-8));
  // SEDD's log-score head (spec 4.4): raw outputs o = lambda - c(u, x) give the same bounds.
  auto head_model = [&](const ModelQuery<double>& q, double* out) {
    ExactModel<RouletteGenerator<double>, decltype(den)>(fwd, den, ModelOutput::log_scores)(q, out);
    for (std::int64_t b = 0; b < q.B; ++b)
      for (std::int64_t l = 0; l < q.L; ++l) {
        const int x = q.xt[b * q.L + l];
        const double c = sedd_log_score_offset(gen, x, q.sigma_bar[b]);
        for (int v = 0; v < 4; ++v)
          if (v != x) out[(b * q.L + l) * 4 + v] -= c;
      }
  };
  opt.log_score_head = true;
  const auto h = estimate_score_bounds(gen, sched, head_model, x0, 2, opt);
  CHECK(h.j1.mean == doctest::Approx(b.j1.mean).epsilon(1e-12));
  CHECK(h.j2.mean == doctest::Approx(b.j2.mean).epsilon(1e-12));
}

TEST_CASE("mc: with the exact denoiser the J1 integrand is exact in expectation and J2 - J1 = EH") {
  // Exact scores: J1 = E KL(p_{T|0} || q_T) + int E D_K(r || s^p) and the Monte Carlo still agrees.
  const AbsorbingGenerator<double> gen(4);
  const LogLinearSchedule<double> sched;
  const ExactForward<AbsorbingGenerator<double>> fwd(gen, 2, dirichlet_like(16, 9, 0, 2.0, 0.0));
  const ExactBounds ex = compute_exact_bounds(fwd, ExactDenoiser{}, sched.sigma_bar(1e-2),
                                              sched.sigma_bar(1.0),
                                              ReverseStart{PriorReference::masked_prior, 1.0});
  const std::vector<int> x0 = sample_data(fwd, 2048, 4, 0);
  ScoreBoundOptions opt;
  opt.eps = 1e-2;
  opt.batch_size = 32;
  opt.seed = 4;
  opt.passes = 2;
  const auto mc = estimate_score_bounds(gen, sched, ExactModel<AbsorbingGenerator<double>, ExactDenoiser>(fwd, {}), x0, 2, opt);
  check_within(mc.j1, ex.j1, "J1 (exact denoiser)");
  check_within(mc.j2, ex.j2, "J2 (exact denoiser)");
  check_within(mc.j2_direct, ex.j2, "J2 direct (exact denoiser)");
  check_within(mc.gap, ex.eh_eps, "J2 - J1 (exact denoiser)");
}

namespace {
/// An in-process all-reduce over `parts` threads (the MPI all-reduce of the program's eval);
/// it also keeps each part's contribution as it arrived.
struct ThreadAllReduce {
  int parts;
  std::mutex m;
  std::condition_variable cv;
  std::vector<double> sum;
  std::vector<std::vector<double>> seen;
  int arrived = 0;
  explicit ThreadAllReduce(int k) : parts(k), seen(static_cast<std::size_t>(k)) {}
  void reduce(int part, double* d, std::size_t n) {
    std::unique_lock<std::mutex> lk(m);
    if (sum.empty()) sum.assign(n, 0.0);
    for (std::size_t i = 0; i < n; ++i) sum[i] += d[i];
    seen[static_cast<std::size_t>(part)].assign(d, d + n);
    ++arrived;
    cv.notify_all();
    cv.wait(lk, [&] { return arrived == parts; });
    std::copy(sum.begin(), sum.end(), d);
  }
};

/// Runs est(opt) for parts 0..K-1 in K threads (McOptions' split) and returns the results and
/// the per-part batch sums before the reduction.
template <class Opt, class Est>
auto run_split(const Opt& base, int K, Est est) {
  ThreadAllReduce ar(K);
  std::vector<decltype(est(base))> out(static_cast<std::size_t>(K));
  std::vector<std::thread> th;
  for (int k = 0; k < K; ++k)
    th.emplace_back([&, k] {
      Opt o = base;
      o.part = k;
      o.parts = K;
      o.reduce = [&ar, k](double* d, std::size_t n) { ar.reduce(k, d, n); };
      out[static_cast<std::size_t>(k)] = est(o);
    });
  for (auto& t : th) t.join();
  return std::make_pair(out, ar.seen);
}

void check_same(const McEstimate& a, const McEstimate& b) {
  CHECK(a.mean == b.mean);  // bit for bit
  CHECK(a.std_error == b.std_error);
  CHECK(a.samples == b.samples);
  CHECK(a.batches == b.batches);
}
}  // namespace

TEST_CASE("mc: split over parts, each part computes its own batches and the reduction gives the one-part estimate bit for bit") {
  const AbsorbingGenerator<double> gen(3);
  const LinearSchedule<double> lin;
  const ExactForward<AbsorbingGenerator<double>> fwd(gen, 3, dirichlet_like(27, 17, 0, 1.5, 0.01));
  const TiltedDenoiser<CounterNoise> den{CounterNoise{8, 1}, 0.6};
  using Model = ExactModel<AbsorbingGenerator<double>, decltype(den)>;
  const std::vector<int> x0 = sample_data(fwd, 100, 30, 0);  // 100 sequences: a short last batch
  Md4ElboOptions mo;
  mo.batch_size = 16;
  mo.passes = 2;  // 14 batches, numbered over both passes
  mo.seed = 5;
  auto md4 = [&](const Md4ElboOptions& o) { return estimate_md4_elbo(gen, lin, Model(fwd, den), x0, 3, o); };
  const Md4ElboEstimate one = md4(mo);
  for (int K : {2, 3, 5}) {
    CAPTURE(K);
    const auto r = run_split(mo, K, md4);
    for (int k = 0; k < K; ++k) {
      check_same(r.first[static_cast<std::size_t>(k)].elbo, one.elbo);
      // Part k filled exactly its batches b = k (mod K) and left the others at 0.
      const auto& v = r.second[static_cast<std::size_t>(k)];
      REQUIRE(v.size() == 14u);
      for (std::size_t b = 0; b < v.size(); ++b) CHECK((v[b] != 0.0) == (int(b % std::size_t(K)) == k));
    }
  }
  ScoreBoundOptions so;
  so.eps = 1e-2;
  so.batch_size = 16;
  so.seed = 3;
  auto sb = [&](const ScoreBoundOptions& o) { return estimate_score_bounds(gen, lin, Model(fwd, den), x0, 3, o); };
  const ScoreBoundEstimate s1 = sb(so);
  const auto r = run_split(so, 3, sb);
  for (const auto& e : r.first) {
    check_same(e.j1, s1.j1);
    check_same(e.j2, s1.j2);
    check_same(e.j2_direct, s1.j2_direct);
    check_same(e.gap, s1.gap);
  }
  // A split needs a reduce function and a part in range.
  Md4ElboOptions bad = mo;
  bad.parts = 2;
  CHECK_THROWS_AS(md4(bad), std::invalid_argument);
  bad.reduce = [](double*, std::size_t) {};
  bad.part = 2;
  CHECK_THROWS_AS(md4(bad), std::invalid_argument);
}

TEST_CASE("mc: MD4 ELBO, continuous and discrete time, agrees with the exact ELBO") {
  const AbsorbingGenerator<double> gen(3);
  const LinearSchedule<double> lin;  // S-LIN-MD4 on [0, 1]
  const ExactForward<AbsorbingGenerator<double>> fwd(gen, 3, dirichlet_like(27, 17, 0, 1.5, 0.01));
  const TiltedDenoiser<CounterNoise> den{CounterNoise{8, 1}, 0.6};
  using Model = ExactModel<AbsorbingGenerator<double>, decltype(den)>;
  const std::vector<int> x0 = sample_data(fwd, 4096, 30, 0);
  Md4ElboOptions opt;
  opt.batch_size = 64;
  opt.seed = 30;
  const Md4Elbo c = md4_continuous_elbo(fwd, lin, 0.0, 1.0, den);
  const Md4ElboEstimate mc = estimate_md4_elbo(gen, lin, Model(fwd, den), x0, 3, opt);
  check_within(mc.elbo, c.total, "MD4 continuous");
  CHECK(mc.recon == doctest::Approx(c.recon).epsilon(1e-14));
  CHECK(mc.prior == doctest::Approx(c.prior).epsilon(1e-14));
  CHECK(mc.elbo.std_error < 0.03 * c.total);
  for (int T : {1, 4, 16}) {
    CAPTURE(T);
    opt.steps = T;
    const Md4Elbo d = md4_discrete_elbo(fwd, lin, 0.0, 1.0, den, T);
    const Md4ElboEstimate md = estimate_md4_elbo(gen, lin, Model(fwd, den), x0, 3, opt);
    check_within(md.elbo, d.total, "MD4 discrete");
  }
  // A sub-range [t0, t1] and the MDLM head (V = N + 1, MASK logit ignored).
  const CosineSchedule<double> cosine;
  opt.steps = 0;
  opt.t0 = 0.05;
  opt.t1 = 0.9;
  opt.output_size = 4;
  auto mdlm = [&](const ModelQuery<double>& q, double* out) {
    std::vector<double> tmp(static_cast<std::size_t>(q.B * q.L * 3));
    Model(fwd, den)(q, tmp.data());
    for (std::int64_t k = 0; k < q.B * q.L; ++k) {
      for (int v = 0; v < 3; ++v) out[k * 4 + v] = tmp[static_cast<std::size_t>(k * 3 + v)];
      out[k * 4 + 3] = 123.0;  // any value: excluded from the softmax
    }
  };
  const Md4Elbo cs = md4_continuous_elbo(fwd, cosine, 0.05, 0.9, den);
  check_within(estimate_md4_elbo(gen, cosine, mdlm, x0, 3, opt).elbo, cs.total, "MD4 on [0.05, 0.9]");
}

TEST_CASE("mc: the PBRC code convention drops the prior, the reference CE and the (1 - eps) factor") {
  const std::vector<double> p0 = spec_reference_data(3, 2);
  const double eps = 1e-2;
  {
    const AbsorbingGenerator<double> gen(3);
    const LogLinearSchedule<double> sched;
    const ExactForward<AbsorbingGenerator<double>> fwd(gen, 2, p0);
    const auto den = spec_reference_denoiser();
    const std::vector<int> x0 = sample_data(fwd, 256, 2, 0);
    ScoreBoundOptions opt;
    opt.eps = eps;
    opt.batch_size = 16;
    const auto ex = estimate_score_bounds(gen, sched, ExactModel<AbsorbingGenerator<double>, decltype(den)>(fwd, den), x0, 2, opt);
    opt.convention = BoundConvention::pbrc_code;
    const auto pb = estimate_score_bounds(gen, sched, ExactModel<AbsorbingGenerator<double>, decltype(den)>(fwd, den), x0, 2, opt);
    // Same draws: J1_code = (J1 - L KL_prior)/(1 - eps); J2_code = (J2hat - CE_ref + X_exit)/(1 - eps)
    // - L (1 - eps), with the direct J2hat (the exact convention reports J2 = J1hat + EH).
    CHECK(pb.prior_kl == 0.0);
    CHECK(pb.reference_ce == 0.0);
    CHECK(pb.j1.mean == doctest::Approx((ex.j1.mean - ex.prior_kl) / (1 - eps)).epsilon(1e-12));
    CHECK(pb.j2.mean ==
          doctest::Approx((ex.j2_direct.mean - ex.reference_ce + ex.exit_integral) / (1 - eps) - 2 * (1 - eps))
              .epsilon(1e-12));
  }
  {
    const UniformGenerator<double> gen(3);
    const GeometricSchedule<double> sched(1e-3, 6.0);
    const ExactForward<UniformGenerator<double>> fwd(gen, 2, p0);
    const auto den = spec_reference_denoiser();
    const std::vector<int> x0 = sample_data(fwd, 4096, 2, 0);
    ScoreBoundOptions opt;
    opt.eps = eps;
    opt.batch_size = 64;
    const auto ex = estimate_score_bounds(gen, sched, ExactModel<UniformGenerator<double>, decltype(den)>(fwd, den), x0, 2, opt);
    opt.convention = BoundConvention::pbrc_code;
    const auto pb = estimate_score_bounds(gen, sched, ExactModel<UniformGenerator<double>, decltype(den)>(fwd, den), x0, 2, opt);
    // Uniform: CE_ref = L log N is kept; the exit term is (1 - 1/N) sigma(t) per position per draw.
    CHECK(pb.reference_ce == doctest::Approx(2 * std::log(3.0)).epsilon(1e-15));
    CHECK(pb.j1.mean == doctest::Approx((ex.j1.mean - ex.prior_kl) / (1 - eps)).epsilon(1e-12));
    // The exit term (1 - 1/N) L sigma(t) is drawn with t, E[.] = X_exit/(1 - eps), so
    // E[J2_code] = CE_ref + (J2 - CE_ref)/(1 - eps) with the exact J2 (q_T = pi).
    const ExactBounds exb = compute_exact_bounds(fwd, den, sched.sigma_bar(eps), sched.sigma_bar(1.0),
                                                 ReverseStart{PriorReference::limit, 1.0});
    check_within(pb.j2, pb.reference_ce + (exb.j2 - pb.reference_ce) / (1 - eps), "J2 (PBRC, uniform)");
  }
}

TEST_CASE("mc: time samplers of spec 8.1") {
  const std::int64_t B = 8;
  std::vector<double> tau(B);
  for (std::uint64_t batch = 0; batch < 50; ++batch) {
    sample_unit_times(TimeSampling::antithetic, 7, 3, batch, B, tau.data());
    std::vector<double> s = tau;
    std::sort(s.begin(), s.end());
    for (std::int64_t b = 0; b < B; ++b) {
      CHECK(tau[b] >= 0.0);
      CHECK(tau[b] < 1.0);
      if (b > 0) CHECK(s[b] - s[b - 1] == doctest::Approx(1.0 / B).epsilon(1e-12));
    }
    CHECK(s[0] < 1.0 / B);
    sample_unit_times(TimeSampling::stratified, 7, 3, batch, B, tau.data());
    for (std::int64_t b = 0; b < B; ++b) {
      CHECK(tau[b] >= double(b) / B);
      CHECK(tau[b] < double(b + 1) / B);
    }
  }
  // Each scheme is unbiased for int_0^1 g (g = tau^2, value 1/3); the lattice and the stratified
  // draws have a smaller batch-mean variance than i.i.d. draws for this smooth g.
  double sd[3];
  int k = 0;
  for (TimeSampling s : {TimeSampling::iid, TimeSampling::antithetic, TimeSampling::stratified}) {
    BatchMeanAccumulator acc;
    for (std::uint64_t batch = 0; batch < 2000; ++batch) {
      sample_unit_times(s, 99, 5, batch, B, tau.data());
      double sum = 0.0;
      for (double v : tau) sum += v * v;
      acc.add_batch(sum, B);
    }
    const McEstimate e = acc.estimate(1);
    CAPTURE(time_sampling_name(s));
    CHECK(std::abs(e.mean - 1.0 / 3.0) <= 4.0 * e.std_error);
    sd[k++] = e.std_error;
  }
  CHECK(sd[1] < 0.5 * sd[0]);
  CHECK(sd[2] < 0.2 * sd[0]);
  // t = 0 is never returned (spec 11).
  CHECK(map_unit_time(0.0, 0.0, 1.0) > 0.0);
  CHECK(map_unit_time(0.5, 0.2, 1.0) == doctest::Approx(0.6));
  // The ratio-estimator standard error of unequal batches: batches (2, 1 row) and (4, 1 row)
  // give mean 3 and SE sqrt(2/1 * ((2-3)^2 + (4-3)^2)) / 2 = 1.
  BatchMeanAccumulator two;
  two.add_batch(2.0, 1);
  two.add_batch(4.0, 1);
  CHECK(two.estimate(1).mean == 3.0);
  CHECK(two.estimate(1).std_error == doctest::Approx(1.0));
  BatchMeanAccumulator one;
  one.add_batch(1.0, 3);
  CHECK(std::isnan(one.estimate(1).std_error));
}

TEST_CASE("mc: closed-form reference terms of spec 6.7 against enumeration (L = 1)") {
  const std::vector<double> p0 = dirichlet_like(4, 1, 0, 1.0, 0.0);
  for (double u : {1e-3, 0.37, 5.0}) {
    CAPTURE(u);
    auto check = [&](const auto& gen, PriorReference ref) {
      using Gen = std::decay_t<decltype(gen)>;
      const ExactForward<Gen> fwd(gen, 1, p0);
      const std::vector<double> q = ref == PriorReference::limit ? fwd.limit_distribution()
                                                                 : fwd.masked_prior(u);
      for (int a = 0; a < 4; ++a) {
        const std::vector<double> c = fwd.conditional(a, u);
        CHECK(prior_kl_per_token(gen, u, ref) == doctest::Approx(kl_divergence(c, q)).epsilon(1e-12));
        CHECK(conditional_entropy_per_token(gen, u) == doctest::Approx(entropy(c)).epsilon(1e-12));
      }
      CHECK(reference_cross_entropy_per_token(gen, u, ref) ==
            doctest::Approx(cross_entropy(fwd.marginal(u), q)).epsilon(1e-12));
    };
    check(UniformGenerator<double>(4), PriorReference::limit);
    check(AbsorbingGenerator<double>(4), PriorReference::masked_prior);
    check(RouletteGenerator<double>(4, 0.6), PriorReference::masked_prior);
    check(RouletteGenerator<double>(4, 0.0), PriorReference::limit);
    CHECK(std::isinf(prior_kl_per_token(AbsorbingGenerator<double>(4), u, PriorReference::limit)));
    CHECK(std::isinf(reference_cross_entropy_per_token(RouletteGenerator<double>(4, 0.5), u,
                                                       PriorReference::limit)));
  }
  // Spec 6.6 example: absorbing H_b((1 - d) eps) at eps = 1e-4 is about 1.0e-3 nats.
  const LogLinearSchedule<double> s;
  CHECK(conditional_entropy_per_token(AbsorbingGenerator<double>(50257), s.sigma_bar(1e-4)) ==
        doctest::Approx(1.02e-3).epsilon(0.01));
}

TEST_CASE("mc: sequential and OpenMP executors give identical estimates") {
  const UniformGenerator<double> gen(3);
  const GeometricSchedule<double> sched(1e-3, 6.0);
  const ExactForward<UniformGenerator<double>> fwd(gen, 2, spec_reference_data(3, 2));
  const auto den = spec_reference_denoiser();
  using Model = ExactModel<UniformGenerator<double>, decltype(den)>;
  const std::vector<int> x0 = sample_data(fwd, 300, 1, 0);
  ScoreBoundOptions opt;
  opt.eps = 0.0;
  opt.batch_size = 64;  // the last batch has 44 rows
  opt.time_sampling = TimeSampling::stratified;
  const auto a = estimate_score_bounds(gen, sched, Model(fwd, den), x0, 2, opt, SequentialExecutor{});
  const auto b = estimate_score_bounds(gen, sched, Model(fwd, den), x0, 2, opt, OpenMPExecutor{2});
  CHECK(a.j1.mean == b.j1.mean);
  CHECK(a.j2.mean == b.j2.mean);
  CHECK(a.j1.std_error == b.j1.std_error);
  CHECK(a.j1.samples == 300);
  CHECK(a.j1.batches == 5);
}

TEST_CASE("mc: input validation names the bad value") {
  const AbsorbingGenerator<double> gen(3);
  const LogLinearSchedule<double> sched;
  const ExactForward<AbsorbingGenerator<double>> fwd(gen, 2, spec_reference_data(3, 2));
  using Model = ExactModel<AbsorbingGenerator<double>, ExactDenoiser>;
  std::vector<int> x0 = sample_data(fwd, 8, 1, 0);
  ScoreBoundOptions opt;
  opt.eps = 1e-3;
  opt.batch_size = 4;
  auto message = [](const auto& f) -> std::string {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  // A MASK as a clean token.
  std::vector<int> bad = x0;
  bad[5] = 3;
  CHECK(message([&] { estimate_score_bounds(gen, sched, Model(fwd, {}), bad, 2, opt); }).find("x0[5] = 3") !=
        std::string::npos);
  // Token count not a multiple of L.
  CHECK(message([&] { estimate_score_bounds(gen, sched, Model(fwd, {}), std::vector<int>(7, 0), 2, opt); })
            .find("x0.size() = 7") != std::string::npos);
  // sbar(eps) = 0.
  ScoreBoundOptions z = opt;
  z.eps = 0.0;
  CHECK(message([&] { estimate_score_bounds(gen, sched, Model(fwd, {}), x0, 2, z); }).find("eps = 0") !=
        std::string::npos);
  // Log-scores must have V = D.
  ScoreBoundOptions ls = opt;
  ls.output = ModelOutput::log_scores;
  ls.output_size = 3;
  CHECK(message([&] { estimate_score_bounds(gen, sched, Model(fwd, {}), x0, 2, ls); }).find("output_size = 3") !=
        std::string::npos);
  // A NaN logit is an error, never a NaN bound.
  auto nan_model = [&](const ModelQuery<double>& q, double* out) {
    Model(fwd, {})(q, out);
    out[4] = std::nan("");
  };
  const std::string m = message([&] { estimate_score_bounds(gen, sched, nan_model, x0, 2, opt); });
  CHECK(m.find("model output[b=0, l=1, k=1]") != std::string::npos);
  CHECK(m.find("nan") != std::string::npos);
  Md4ElboOptions mo;
  mo.batch_size = 4;
  CHECK_THROWS_AS(estimate_md4_elbo(gen, LinearSchedule<double>(), nan_model, x0, 2, mo),
                  std::invalid_argument);
  // The uniform graph has no masked prior.
  ScoreBoundOptions mp = opt;
  mp.reference = PriorReference::masked_prior;
  const ExactForward<UniformGenerator<double>> ufwd(UniformGenerator<double>(3), 2, spec_reference_data(3, 2));
  CHECK_THROWS_AS(estimate_score_bounds(UniformGenerator<double>(3), GeometricSchedule<double>(1e-3, 6.0),
                                        ExactModel<UniformGenerator<double>, ExactDenoiser>(ufwd, {}), x0, 2, mp),
                  std::invalid_argument);
  Md4ElboOptions bad_range;
  bad_range.t0 = 0.5;
  bad_range.t1 = 0.5;
  CHECK_THROWS_AS(estimate_md4_elbo(gen, LinearSchedule<double>(), Model(fwd, {}), x0, 2, bad_range),
                  std::invalid_argument);
}

TEST_CASE("mc: spec 6.8, the PBRC code-level J2 is below J1 for absorbing and roulette, above for uniform") {
  // Expectations of the pbrc_code estimators from the exact integrals (spec 7.1 data and
  // denoiser, eps = 1e-4): J1_code = (J1 - L KL_prior)/(1 - eps); J2_code = CE_ref + (J2 - CE_ref)/(1 - eps)
  // for uniform, I_bar/(1 - eps) - X_code otherwise (I_bar = J2 - CE_ref + X_exit).
  const double eps = 1e-4;
  const int L = 2;
  const auto den = spec_reference_denoiser();
  auto levels = [&](const auto& gen, const auto& sched, double x_code) {
    using Gen = std::decay_t<decltype(gen)>;
    const ExactForward<Gen> fwd(gen, L, spec_reference_data(3, 2));
    const PriorReference ref = default_prior_reference(gen);
    const double ue = sched.sigma_bar(eps), u1 = sched.sigma_bar(1.0);
    const ExactBounds ex = compute_exact_bounds(fwd, den, ue, u1, ReverseStart{ref, 1.0});
    const double kl = L * prior_kl_per_token(gen, u1, ref);
    const double ce = L * reference_cross_entropy_per_token(gen, u1, ref);
    const double ibar = ex.j2 - ce + exit_rate_integral(gen, L, ue, u1);
    const double j1c = (ex.j1 - kl) / (1 - eps);
    const double j2c = x_code < 0 ? ce + (ex.j2 - ce) / (1 - eps) : ibar / (1 - eps) - L * x_code;
    CHECK(ex.j2 - ex.j1 == doctest::Approx(ex.eh_eps).epsilon(1e-9));  // exact: J2 >= J1
    return std::pair<double, double>((j2c - j1c) / L, (ex.j2 - ex.j1) / L);
  };
  const auto u = levels(UniformGenerator<double>(3), GeometricSchedule<double>(1e-4, 20.0), -1.0);
  const auto a = levels(AbsorbingGenerator<double>(3), LogLinearSchedule<double>(), 1 - eps);
  const double pm = 0.95;
  const auto r = levels(RouletteGenerator<double>(3, pm), RouletteLogLinearSchedule<double>(pm),
                        (1 - (1 - pm) / 3) * (1 - eps) / pm);
  CHECK(u.first > 0.0);   // nothing is dropped for uniform (CE_ref = L log N is exact)
  CHECK(a.first < 0.0);   // the dropped reference CE H_b(d) + d log N dominates EH
  CHECK(r.first < 0.0);
  CHECK(a.second > 0.0);
  // spec 6.8 (absorbing, S-LOGLIN, d = 1e-3, eps = 1e-4): (EH/L - H_b(d))/(1 - eps) - (d - eps)
  // = 0.00102 - 0.00791 - 0.0009 ~ -0.0078 nats per token.
  const double d = 1e-3, hb = -d * std::log(d) - (1 - d) * std::log1p(-d);
  CHECK(a.first == doctest::Approx((a.second - hb) / (1 - eps) - (d - eps)).epsilon(1e-9));
  CHECK(a.first == doctest::Approx(-0.0078).epsilon(0.01));
}
