// Samplers on every host backend and with bad input:
//   * SequentialExecutor, OpenMPExecutor with 1, 2 and 7 threads give bit-identical samples for
//     the same seed (counter-based randomness keyed by (seed, step, b * L + l)) for every sampler:
//     MD4 ancestral (with top-p and top-k), cached ancestral, GenMD4, Euler and analytic
//     tau-leaping on the uniform, absorbing and roulette generators (final step sample / argmax),
//     uniformization, infilling and semi-autoregressive continuation; float and double;
//   * different seeds give different samples; the prior and projections hold;
//   * the Monte Carlo estimators (J1/J2, MD4 ELBO) give bit-identical estimates likewise;
//   * bad input gives std::invalid_argument naming the value: a denoiser returning NaN or +Inf
//     or an all -inf row, a wrong class count, steps < 1, a prefix longer than L, bad options,
//     bad data distributions.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <discdiff/exec/executor.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>

#include "backend_equality.hpp"
#include "sampler_checks.hpp"

using namespace discdiff;

namespace {

constexpr std::int64_t kB = 37, kL = 19;

/// Runs `f(exec)` on Sequential and OpenMP(1, 2, 7) and checks every result equals the first.
template <class F>
void same_on_all_backends(const char* label, F f) {
  discdiff_test::same_on_executors(label, f, SequentialExecutor{}, OpenMPExecutor{1},
                                   OpenMPExecutor{2}, OpenMPExecutor{7});
}

/// Wraps a denoiser and corrupts its output on call number `at`.
template <class Inner>
struct BadDenoiser {
  using value_type = typename Inner::value_type;
  const Inner* inner;
  int mode;  // 0 NaN, 1 +Inf, 3 all -inf at one position
  int at;
  mutable int calls = 0;
  int num_classes() const { return inner->num_classes(); }
  void operator()(const ModelQuery<value_type>& in, value_type* out) const {
    (*inner)(in, out);
    if (calls++ != at) return;
    if (mode == 0) out[5] = std::numeric_limits<value_type>::quiet_NaN();
    if (mode == 1) out[7] = std::numeric_limits<value_type>::infinity();
    if (mode == 3)
      for (int k = 0; k < num_classes(); ++k) out[k] = -std::numeric_limits<value_type>::infinity();
  }
};

/// A synthetic log-score head (K = D) on the sequential executor.
using SyntheticScores = SyntheticDenoiser<double, SequentialExecutor, ModelOutput::log_scores>;

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<no std::invalid_argument>";
}

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("sampler backends: Sequential == OpenMP(1, 2, 7) bit for bit, every sampler") {
  discdiff_test::sampler_checks<double>("double", SequentialExecutor{}, OpenMPExecutor{1},
                                        OpenMPExecutor{2}, OpenMPExecutor{7});
  discdiff_test::sampler_checks<float>("float", SequentialExecutor{}, OpenMPExecutor{1},
                                       OpenMPExecutor{2}, OpenMPExecutor{7});
}

TEST_CASE("estimator backends: Sequential == OpenMP(1, 2, 7) bit for bit, J1/J2 and MD4 ELBO") {
  discdiff_test::estimator_checks<double>("double", SequentialExecutor{}, OpenMPExecutor{1},
                                          OpenMPExecutor{2}, OpenMPExecutor{7});
  discdiff_test::estimator_checks<float>("float", SequentialExecutor{}, OpenMPExecutor{2});
}

TEST_CASE("sampler backends: large vocabulary (N = 300, blocked draws) is bit-identical too") {
  const int N = 300;
  const AbsorbingGenerator<float> ab(N);
  const UniformGenerator<float> un(N);
  const SyntheticDenoiser<float> den(N, 4.0, true);
  const LogLinearSchedule<float> loglin;
  for (SamplerKind kind : {SamplerKind::md4_ancestral, SamplerKind::analytic, SamplerKind::euler})
    same_on_all_backends("large N", [&](const auto& ex) {
      SamplerOptions o;
      o.kind = kind;
      o.steps = 4;
      o.grid = kind == SamplerKind::md4_ancestral ? GridKind::cosine : GridKind::sedd;
      o.seed = 80;
      o.top_p = kind == SamplerKind::md4_ancestral ? 0.95 : 1.0;
      o.final_step = FinalStep::sample;
      std::vector<int> x;
      if (kind == SamplerKind::euler)
        sample(ex, un, loglin, den, o, 8, 16, x);
      else
        sample(ex, ab, loglin, den, o, 8, 16, x);
      return x;
    });
}

TEST_CASE("sampler errors: log-score heads only where they are accepted") {
  const int N = 7;
  const AbsorbingGenerator<double> ab(N);
  const LogLinearSchedule<double> loglin;
  // MD4 and uniformization need posterior logits; a log-score head of the wrong size is rejected
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  std::vector<int> x;
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, loglin, SyntheticScores(N + 1), o, 2, 3, x); }),
                 "log_scores"));
  o.kind = SamplerKind::analytic;
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, loglin, SyntheticScores(N), o, 2, 3, x); }),
                 "log-scores need K = D = 8"));
  UniformizationOptions uo;
  CHECK(contains(error_of([&] { sample_uniformization(SequentialExecutor{}, ab, loglin, SyntheticScores(N + 1), uo, 2, 3, x); }),
                 "log_scores"));
}

TEST_CASE("sampler backends: seeds matter, the prior is pi, no MASK after a final step") {
  const int N = 6;
  const AbsorbingGenerator<double> ab(N);
  const SyntheticDenoiser<double> den(N);
  const CosineSchedule<double> sched;
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  o.steps = 8;
  o.grid = GridKind::cosine;
  o.final_step = FinalStep::sample;
  std::vector<int> x1, x2, first;
  o.seed = 1;
  sample(SequentialExecutor{}, ab, sched, den, o, kB, kL, x1, nullptr, [&](const StepInfo& info) {
    if (info.step == 0) first.assign(info.x, info.x + info.B * info.L);
  });
  o.seed = 2;
  sample(SequentialExecutor{}, ab, sched, den, o, kB, kL, x2);
  CHECK(x1 != x2);
  for (int v : x1) CHECK(v < N);  // final step removes every MASK
  // after the first of 8 cosine steps most tokens are still masked
  std::int64_t masked = 0;
  for (int v : first) masked += v == N;
  CHECK(masked > kB * kL / 2);
}

TEST_CASE("sampler errors: bad denoiser outputs name the entry and value") {
  const int N = 4;
  const AbsorbingGenerator<double> ab(N);
  const LogLinearSchedule<double> sched;
  const SyntheticDenoiser<double> good(N);
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  o.steps = 3;
  o.grid = GridKind::uniform;
  std::vector<int> x;
  auto run = [&](int mode, int at) {
    return error_of([&] { sample(SequentialExecutor{}, ab, sched, BadDenoiser<SyntheticDenoiser<double>>{&good, mode, at}, o, 2, 3, x); });
  };
  const std::string e_nan = run(0, 1);
  CHECK(contains(e_nan, "model output[b=0, l=1, k=1]"));
  CHECK(contains(e_nan, "nan"));
  const std::string e_inf = run(1, 0);
  CHECK(contains(e_inf, "model output[b=0, l=1, k=3]"));
  CHECK(contains(e_inf, "inf"));
  CHECK(contains(run(3, 0), "every regular logit is -inf"));
  // uniformization and GenMD4 validate too
  const RouletteGenerator<double> ro(N, 0.5);
  UniformizationOptions uo;
  CHECK(contains(error_of([&] {
                   sample_uniformization(SequentialExecutor{}, ro, sched,
                                         BadDenoiser<SyntheticDenoiser<double>>{&good, 0, 0}, uo, 2, 3, x);
                 }),
                 "nan"));
  const PerTokenPolynomialSchedule<double> ps(N);
  CHECK(contains(error_of([&] {
                   sample_genmd4(SequentialExecutor{}, StateDependentMaskingGenerator<double>(N), ps,
                                 BadDenoiser<SyntheticDenoiser<double>>{&good, 1, 0}, o, 2, 3, x);
                 }),
                 "inf"));
}

TEST_CASE("sampler errors: shapes, steps, prefix, options, data distributions") {
  const int N = 4;
  const AbsorbingGenerator<double> ab(N);
  const UniformGenerator<double> un(N);
  const LogLinearSchedule<double> sched;
  const SyntheticDenoiser<double> den(N);
  std::vector<int> x;
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  o.grid = GridKind::uniform;
  for (int steps : {0, -3}) {
    o.steps = steps;
    CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, sched, den, o, 2, 3, x); }),
                   ("steps = " + std::to_string(steps)).c_str()));
    CHECK(contains(error_of([&] { time_grid(GridKind::sedd, steps); }), "steps"));
  }
  o.steps = 4;
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, sched, den, o, 0, 3, x); }), "B = 0"));
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, sched, den, o, 2, 0, x); }), "L = 0"));
  // wrong class count: 7 is neither N = 4 nor D = 5
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, sched, SyntheticDenoiser<double>(7), o, 2, 3, x); }),
                 "model.num_classes() = 7"));
  // MD4 needs the absorbing generator
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, un, sched, den, o, 2, 3, x); }), "absorbing"));
  o.top_p = 0;
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, sched, den, o, 2, 3, x); }), "top_p = 0"));
  o.top_p = 1;
  o.top_k = -1;
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, sched, den, o, 2, 3, x); }), "top_k = -1"));
  o.top_k = 0;
  // tau-leaping final step needs sbar(t_S) > 0
  SamplerOptions ot;
  ot.kind = SamplerKind::analytic;
  ot.grid = GridKind::uniform;
  ot.final_step = FinalStep::sample;
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, un, sched, den, ot, 2, 3, x); }), "t_S"));
  // prefix longer than L
  CHECK(contains(error_of([&] { prefix_conditioning(2, 3, {1, 2, 3, 0}); }), "prefix.size() = 4"));
  CHECK(contains(error_of([&] { sample_semi_autoregressive(SequentialExecutor{}, ab, sched, den, o, 2, 3, {1, 2, 3}, 1, 2, x); }),
                 "prompt.size() = 3"));
  CHECK(contains(error_of([&] { sample_semi_autoregressive(SequentialExecutor{}, ab, sched, den, o, 2, 3, {1}, 4, 2, x); }),
                 "stride = 4"));
  o.final_step = FinalStep::none;
  CHECK(contains(error_of([&] { sample_semi_autoregressive(SequentialExecutor{}, ab, sched, den, o, 2, 3, {1}, 1, 2, x); }),
                 "final_step = none"));
  // conditioning: shape and values
  const Conditioning c = prefix_conditioning(2, 3, {1});
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, sched, den, o, 3, 3, x, &c); }), "conditioning"));
  Conditioning cm = prefix_conditioning(2, 3, {N});  // MASK is not a valid fixed token
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, sched, den, o, 2, 3, x, &cm); }),
                 "conditioning.values[0] = 4"));
  CHECK(contains(error_of([&] { infill_conditioning(2, 3, {3}, {1}); }), "positions[k] = 3"));
  CHECK(contains(error_of([&] { infill_conditioning(2, 3, {1, 1}, {1, 1}); }), "duplicate"));
  // uniformization options
  UniformizationOptions uo;
  uo.t_min = 0;
  CHECK(contains(error_of([&] { sample_uniformization(SequentialExecutor{}, ab, sched, den, uo, 2, 3, x); }), "t_min = 0"));
  uo.t_min = 1e-3;
  uo.intervals = 0;
  CHECK(contains(error_of([&] { sample_uniformization(SequentialExecutor{}, ab, sched, den, uo, 2, 3, x); }), "intervals = 0"));
  // exact denoiser: data distribution checks, and queries of the wrong length
  CHECK(contains(error_of([&] { ExactPosteriorDenoiser<AbsorbingGenerator<double>>(ab, 2, std::vector<double>(15, 1.0 / 15)); }),
                 "p_data.size() = 15"));
  CHECK(contains(error_of([&] { ExactPosteriorDenoiser<AbsorbingGenerator<double>>(ab, 1, {0.5, 0.5, 0.5, -0.5}); }),
                 "p_data[3] = -0.5"));
  CHECK(contains(error_of([&] { ExactPosteriorDenoiser<AbsorbingGenerator<double>>(ab, 1, {0.5, 0.5, 0.5, 0.5}); }),
                 "sum(p_data) = 2"));
  const ExactPosteriorDenoiser<AbsorbingGenerator<double>> ex(ab, 2, std::vector<double>(16, 1.0 / 16));
  CHECK(contains(error_of([&] { sample(SequentialExecutor{}, ab, sched, ex, o, 2, 3, x); }), "in.L = 3"));
}
