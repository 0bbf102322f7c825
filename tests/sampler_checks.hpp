// tests/sampler_checks.hpp: one body per sampler and Monte Carlo estimator family, run over an
// executor list (tests/backend_equality.hpp): the same seed must give the same tokens and the
// same estimates on every executor. The model is SyntheticDenoiser built on the executor under
// test (in its memory space), so the model interface is exercised on every backend too.
// Instantiated by tests/test_sampler_backends.cpp (Sequential, OpenMP 1/2/7 threads) and
// tests/thrust/test_thrust_sampler.cpp (Sequential, Thrust-OMP).
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <discdiff/bound/monte_carlo.hpp>
#include <discdiff/exec/executor.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>

#include "backend_equality.hpp"

namespace discdiff_test {

using namespace discdiff;

/// A synthetic model of K classes on executor `ex` (logits, or log-scores with Out).
template <class T, ModelOutput Out = ModelOutput::logits, class Exec>
SyntheticDenoiser<T, Exec, Out> synth_on(const Exec& ex, int K, double scale, bool timed) {
  return SyntheticDenoiser<T, Exec, Out>(K, scale, timed, 7, ex);
}

/// Every grid sampler, GenMD4, uniformization, infilling and semi-autoregressive continuation,
/// with posterior logits (K = N and K = D) and log-score heads, on the executors given.
template <class T, class... Execs>
void sampler_checks(const char* tname, const Execs&... execs) {
  CAPTURE(tname);
  constexpr std::int64_t kB = 37, kL = 19;
  const int N = 11;
  const AbsorbingGenerator<T> ab(N);
  const UniformGenerator<T> un(N);
  const RouletteGenerator<T> ro(N, T(0.8));
  const CosineSchedule<T> cos_s;
  const LogLinearSchedule<T> loglin;
  const RouletteLogLinearSchedule<T> rlog(T(0.8));

  for (SamplerKind kind : {SamplerKind::md4_ancestral, SamplerKind::md4_cached})
    same_on_executors(kind == SamplerKind::md4_cached ? "md4 cached top-p" : "md4 top-p",
                      [&](const auto& ex) {
                        SamplerOptions o;
                        o.kind = kind;
                        o.steps = 12;
                        o.grid = GridKind::cosine;
                        o.seed = 71;
                        o.top_p = 0.9;
                        o.final_step = FinalStep::sample;
                        std::vector<int> x;
                        sample(ex, ab, cos_s, synth_on<T>(ex, N, 2.5, false), o, kB, kL, x);
                        return x;
                      },
                      execs...);
  same_on_executors("md4 top-k, D-class head", [&](const auto& ex) {
    SamplerOptions o;
    o.kind = SamplerKind::md4_ancestral;
    o.steps = 9;
    o.grid = GridKind::uniform;
    o.seed = 72;
    o.top_k = 3;
    o.final_step = FinalStep::argmax;
    std::vector<int> x;
    sample(ex, ab, loglin, synth_on<T>(ex, N + 1, 2.5, true), o, kB, kL, x);
    return x;
  }, execs...);
  for (SamplerKind kind : {SamplerKind::euler, SamplerKind::analytic})
    for (FinalStep fin : {FinalStep::sample, FinalStep::argmax}) {
      const std::string k = std::string(kind == SamplerKind::euler ? "euler" : "analytic") +
                            (fin == FinalStep::sample ? " sample" : " argmax");
      auto opts = [&](std::uint64_t seed) {
        SamplerOptions o;
        o.kind = kind;
        o.steps = 7;
        o.seed = seed;
        o.final_step = fin;
        return o;
      };
      same_on_executors(k + " uniform", [&](const auto& ex) {
        std::vector<int> x;
        sample(ex, un, loglin, synth_on<T>(ex, N, 2.5, false), opts(73), kB, kL, x);
        return x;
      }, execs...);
      same_on_executors(k + " absorbing", [&](const auto& ex) {
        std::vector<int> x;
        sample(ex, ab, loglin, synth_on<T>(ex, N + 1, 2.5, true), opts(74), kB, kL, x);
        return x;
      }, execs...);
      same_on_executors(k + " roulette, infill", [&](const auto& ex) {
        const Conditioning c = infill_conditioning(kB, kL, {2, 3}, {0, 8});
        std::vector<int> x;
        sample(ex, ro, rlog, synth_on<T>(ex, N, 2.5, false), opts(75), kB, kL, x, &c);
        for (std::int64_t b = 0; b < kB; ++b) {
          CHECK(x[static_cast<std::size_t>(b * kL + 2)] == 0);
          CHECK(x[static_cast<std::size_t>(b * kL + 3)] == 8);
        }
        return x;
      }, execs...);
      same_on_executors(k + " uniform, log-score head", [&](const auto& ex) {
        std::vector<int> x;
        sample(ex, un, loglin, synth_on<T, ModelOutput::log_scores>(ex, N, 1.0, true), opts(90), kB,
               kL, x);
        return x;
      }, execs...);
      same_on_executors(k + " roulette, log-score head", [&](const auto& ex) {
        std::vector<int> x;
        sample(ex, ro, rlog, synth_on<T, ModelOutput::log_scores>(ex, N + 1, 1.0, true), opts(91),
               kB, kL, x);
        if (fin != FinalStep::sample)
          for (int v : x) CHECK(v < N);  // the final step drops MASK
        return x;
      }, execs...);
    }
  same_on_executors("genmd4", [&](const auto& ex) {
    const PerTokenPolynomialSchedule<T> ps(std::vector<T>(N, T(0.3)));
    const StateDependentMaskingGenerator<T> sg(N);
    SamplerOptions o;
    o.steps = 10;
    o.grid = GridKind::cosine;
    o.seed = 76;
    o.final_step = FinalStep::sample;
    o.top_p = 0.8;
    std::vector<int> x;
    sample_genmd4(ex, sg, ps, synth_on<T>(ex, N, 2.5, true), o, kB, kL, x);
    return x;
  }, execs...);
  same_on_executors("uniformization roulette", [&](const auto& ex) {
    UniformizationOptions o;
    o.seed = 77;
    o.t_min = 1e-2;
    o.intervals = 20;
    std::vector<int> x;
    sample_uniformization(ex, ro, rlog, synth_on<T>(ex, N, 2.5, false), o, 9, 4, x);
    return x;
  }, execs...);
  same_on_executors("uniformization uniform, prefix", [&](const auto& ex) {
    UniformizationOptions o;
    o.seed = 10;
    o.t_min = 1e-2;
    o.intervals = 20;
    const Conditioning c = prefix_conditioning(7, 3, {4});
    std::vector<int> x;
    sample_uniformization(ex, un, loglin, synth_on<T>(ex, N, 2.5, true), o, 7, 3, x, &c);
    for (std::int64_t b = 0; b < 7; ++b) CHECK(x[static_cast<std::size_t>(b * 3)] == 4);
    return x;
  }, execs...);
  same_on_executors("semi-autoregressive", [&](const auto& ex) {
    SamplerOptions o;
    o.kind = SamplerKind::md4_ancestral;
    o.steps = 6;
    o.grid = GridKind::cosine;
    o.seed = 79;
    o.final_step = FinalStep::argmax;
    std::vector<int> x;
    sample_semi_autoregressive(ex, ab, cos_s, synth_on<T>(ex, N, 2.5, false), o, 5, kL, {4, 4, 4},
                               8, 3, x);
    return x;
  }, execs...);
}

/// The bits of an estimate, for exact comparison across executors.
inline std::vector<double> estimate_bits(const McEstimate& e) {
  return {e.mean, e.std_error, double(e.samples), double(e.batches)};
}

/// J1 / J2 (logits and log-score models, exact and PBRC conventions) and the MD4 ELBO
/// (continuous and discrete time) on the executors given: identical estimates.
template <class T, class... Execs>
void estimator_checks(const char* tname, const Execs&... execs) {
  CAPTURE(tname);
  const int N = 9;
  const std::int64_t L = 13, num = 45;
  std::vector<int> x0(static_cast<std::size_t>(num * L));
  for (std::size_t i = 0; i < x0.size(); ++i) x0[i] = static_cast<int>((7 * i + i / 5) % N);
  const AbsorbingGenerator<T> ab(N);
  const UniformGenerator<T> un(N);
  const RouletteGenerator<T> ro(N, T(0.6));
  const LogLinearSchedule<T> loglin;
  const RouletteLogLinearSchedule<T> rlog(T(0.6));
  const CosineSchedule<T> cos_s;
  ScoreBoundOptions so;
  so.batch_size = 8;
  so.passes = 2;
  so.seed = 31;
  so.eps = 1e-3;
  auto score_bits = [](const ScoreBoundEstimate& e) {
    std::vector<double> v = estimate_bits(e.j1);
    for (double d : estimate_bits(e.j2)) v.push_back(d);
    for (double d : estimate_bits(e.j2_direct)) v.push_back(d);
    return v;
  };
  for (BoundConvention conv : {BoundConvention::exact, BoundConvention::pbrc_code}) {
    so.convention = conv;
    so.output = ModelOutput::logits;
    so.output_size = 0;
    same_on_executors("j1/j2 uniform, logits", [&](const auto& ex) {
      return score_bits(estimate_score_bounds(un, loglin, synth_on<T>(ex, N, 1.5, true), x0, L, so, ex));
    }, execs...);
    same_on_executors("j1/j2 absorbing, D logits", [&](const auto& ex) {
      ScoreBoundOptions o = so;
      o.output_size = N + 1;
      return score_bits(estimate_score_bounds(ab, loglin, synth_on<T>(ex, N + 1, 1.5, true), x0, L, o, ex));
    }, execs...);
    same_on_executors("j1/j2 roulette, log-scores", [&](const auto& ex) {
      ScoreBoundOptions o = so;
      o.output = ModelOutput::log_scores;
      return score_bits(estimate_score_bounds(
          ro, rlog, synth_on<T, ModelOutput::log_scores>(ex, N + 1, 0.5, true), x0, L, o, ex));
    }, execs...);
  }
  for (int steps : {0, 16})
    same_on_executors(steps == 0 ? "md4 elbo continuous" : "md4 elbo discrete", [&](const auto& ex) {
      Md4ElboOptions mo;
      mo.batch_size = 8;
      mo.seed = 32;
      mo.steps = steps;
      return estimate_bits(
          estimate_md4_elbo(ab, cos_s, synth_on<T>(ex, N, 1.5, false), x0, L, mo, ex).elbo);
    }, execs...);
}

}  // namespace discdiff_test
