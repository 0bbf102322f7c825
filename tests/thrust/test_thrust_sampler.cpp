// Thrust-OMP samplers equal the SequentialExecutor result bit for bit (counter-based randomness
// keyed by (seed, step, b * L + l)): MD4 ancestral with top-p, cached ancestral, GenMD4, Euler and
// analytic tau-leaping on the uniform, absorbing and roulette generators (posterior logits and a
// log-score head), uniformization, infilling
// and semi-autoregressive continuation, in float and double.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <discdiff/exec/executor.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>

using namespace discdiff;

namespace {

constexpr std::int64_t kB = 29, kL = 23;

template <class F>
void thrust_matches_sequential(const char* label, F f) {
  CAPTURE(label);
  const std::vector<int> ref = f(SequentialExecutor{});
  REQUIRE(ref.size() > 0);
  CHECK(f(ThrustExecutor{}) == ref);
}

/// A synthetic log-score head (K = D).
template <class T>
struct SyntheticScores {
  using value_type = T;
  static constexpr DenoiserOutput output = DenoiserOutput::log_scores;
  SyntheticDenoiser<T> inner;
  int num_classes() const { return inner.num_classes(); }
  void operator()(const DenoiserInput<T>& in, std::vector<T>& out) const { inner(in, out); }
};

template <class T>
void check_all(const char* tname) {
  CAPTURE(tname);
  const int N = 9;
  const AbsorbingGenerator<T> ab(N);
  const UniformGenerator<T> un(N);
  const RouletteGenerator<T> ro(N, T(0.7));
  const SyntheticDenoiser<T> den(N, 2.0, false);
  const CosineSchedule<T> cos_s;
  const LogLinearSchedule<T> loglin;
  const RouletteLogLinearSchedule<T> rlog(T(0.7));
  for (SamplerKind kind : {SamplerKind::md4_ancestral, SamplerKind::md4_cached})
    thrust_matches_sequential("md4", [&](const auto& ex) {
      SamplerOptions o;
      o.kind = kind;
      o.steps = 10;
      o.grid = GridKind::cosine;
      o.seed = 5;
      o.top_p = 0.85;
      o.top_k = 6;
      o.final_step = FinalStep::sample;
      std::vector<int> x;
      sample(ex, ab, cos_s, den, o, kB, kL, x);
      return x;
    });
  for (SamplerKind kind : {SamplerKind::euler, SamplerKind::analytic}) {
    thrust_matches_sequential("tau uniform", [&](const auto& ex) {
      SamplerOptions o;
      o.kind = kind;
      o.steps = 6;
      o.seed = 6;
      o.final_step = FinalStep::sample;
      std::vector<int> x;
      sample(ex, un, loglin, den, o, kB, kL, x);
      return x;
    });
    thrust_matches_sequential("tau absorbing", [&](const auto& ex) {
      SamplerOptions o;
      o.kind = kind;
      o.steps = 6;
      o.seed = 7;
      o.final_step = FinalStep::argmax;
      std::vector<int> x;
      sample(ex, ab, loglin, den, o, kB, kL, x);
      return x;
    });
    thrust_matches_sequential("tau roulette", [&](const auto& ex) {
      SamplerOptions o;
      o.kind = kind;
      o.steps = 6;
      o.seed = 8;
      o.final_step = FinalStep::sample;
      const Conditioning c = infill_conditioning(kB, kL, {2, 3}, {0, 8});
      std::vector<int> x;
      sample(ex, ro, rlog, den, o, kB, kL, x, &c);
      return x;
    });
  }
  thrust_matches_sequential("tau roulette, log-score head", [&](const auto& ex) {
    SamplerOptions o;
    o.kind = SamplerKind::analytic;
    o.steps = 6;
    o.seed = 12;
    o.final_step = FinalStep::sample;
    std::vector<int> x;
    sample(ex, ro, rlog, SyntheticScores<T>{SyntheticDenoiser<T>(N + 1, 1.0)}, o, kB, kL, x);
    return x;
  });
  thrust_matches_sequential("genmd4", [&](const auto& ex) {
    const PerTokenPolynomialSchedule<T> ps(std::vector<T>(N, T(-0.4)));
    SamplerOptions o;
    o.steps = 8;
    o.grid = GridKind::uniform;
    o.seed = 9;
    o.final_step = FinalStep::argmax;
    std::vector<int> x;
    sample_genmd4(ex, StateDependentMaskingGenerator<T>(N), ps, den, o, kB, kL, x);
    return x;
  });
  thrust_matches_sequential("uniformization", [&](const auto& ex) {
    UniformizationOptions o;
    o.seed = 10;
    o.t_min = 1e-2;
    o.intervals = 20;
    std::vector<int> x;
    sample_uniformization(ex, un, loglin, den, o, 7, 3, x);
    return x;
  });
  thrust_matches_sequential("semi-autoregressive", [&](const auto& ex) {
    SamplerOptions o;
    o.kind = SamplerKind::md4_ancestral;
    o.steps = 5;
    o.grid = GridKind::cosine;
    o.seed = 11;
    o.final_step = FinalStep::sample;
    std::vector<int> x;
    sample_semi_autoregressive(ex, ab, cos_s, den, o, 4, kL, {1, 2}, 7, 3, x);
    return x;
  });
}

}  // namespace

TEST_CASE("thrust samplers: ThrustExecutor (OMP) == SequentialExecutor bit for bit") {
  check_all<double>("double");
  check_all<float>("float");
}
