// bench/bench_sampler.cpp: sampler step throughput (token-steps/s) for a B x L = 64 x 256 batch,
// float logits, V = 27 (text8) and V = 50257 (GPT-2), on every CPU executor: Sequential, OpenMP
// with 2 threads, and Thrust-OMP (when built with DISCDIFF_HAVE_THRUST).
//
//   step/*      one reverse step kernel (sampler/kernels.hpp) over the 16384 positions, with the
//               denoiser output precomputed once by SyntheticDenoiser (the sampler's own cost):
//               MD4 ancestral (all positions masked, p_unmask = 0.3; plus top-p 0.9 at V = 27),
//               analytic tau-leaping (absorbing at MASK, uniform and roulette at random tokens),
//               Euler tau-leaping (uniform);
//   driver/*    sample() end to end with SyntheticDenoiser (a cheap table look-up standing in for a
//               network), MD4 ancestral, 16 cosine steps, V = 27: denoiser + kernels + validation.
// Items = token-steps (positions x steps). Real time is measured (UseRealTime).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include <discdiff/core/random.hpp>
#include <discdiff/exec/executor.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>

namespace {

using namespace discdiff;

constexpr std::int64_t kB = 64, kL = 256, kPos = kB * kL;

struct Data {
  int V;
  std::vector<int> masked, tokens, out;
  std::vector<float> logits, scratch;
  explicit Data(int v) : V(v), masked(kPos, v), tokens(kPos), out(kPos) {
    for (std::int64_t i = 0; i < kPos; ++i) {
      CounterRng rng(3, 0, static_cast<std::uint64_t>(i));
      tokens[static_cast<std::size_t>(i)] = static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(v)));
    }
    std::vector<float> t(kB, 0.5f), s(kB, 0.69f);
    logits.resize(static_cast<std::size_t>(kPos) * static_cast<std::size_t>(v));
    SyntheticDenoiser<float>(v, 3.0, false)(ModelQuery<float>{tokens.data(), kB, kL, t.data(), s.data()},
                                            logits.data());
  }
};

Data& data(int V) {
  if (V == 27) {
    static Data d(27);
    return d;
  }
  static Data d(50257);
  return d;
}

template <class Exec>
void md4_step(benchmark::State& state, int V, double top_p, Exec exec) {
  Data& d = data(V);
  if (top_p < 1 && d.scratch.empty()) d.scratch.resize(d.logits.size());
  std::uint32_t stream = 1;
  for (auto _ : state) {
    exec.for_each(kPos, Md4AncestralKernel<float>{d.masked.data(), d.logits.data(), V, V, 0.3, top_p, 0,
                                                  top_p < 1 ? d.scratch.data() : nullptr, d.out.data(), 7,
                                                  stream++});
    benchmark::DoNotOptimize(d.out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kPos);
}

template <class Gen, class Exec>
void tau_step(benchmark::State& state, const Gen& gen, TauMethod method, bool at_mask, Exec exec) {
  const int V = gen.num_regular();
  Data& d = data(V);
  TauStep st;
  st.method = method;
  st.u = 0.7;
  st.h = 0.01;
  st.delta = 0.01;
  const int* x = at_mask ? d.masked.data() : d.tokens.data();
  std::uint32_t stream = 1;
  for (auto _ : state) {
    exec.for_each(kPos, TauLeapingKernel<Gen, float>{gen, x, d.logits.data(), V, st, false, false,
                                                     d.out.data(), 7, stream++});
    benchmark::DoNotOptimize(d.out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kPos);
}

template <class Exec>
void driver_md4(benchmark::State& state, Exec exec) {
  const AbsorbingGenerator<float> gen(27);
  const SyntheticDenoiser<float> den(27, 3.0, true);
  const CosineSchedule<float> sched;
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  o.steps = 16;
  o.grid = GridKind::cosine;
  std::vector<int> x;
  for (auto _ : state) {
    sample(exec, gen, sched, den, o, kB, kL, x);
    benchmark::DoNotOptimize(x.data());
    ++o.seed;
  }
  state.SetItemsProcessed(state.iterations() * kPos * o.steps);
}

#define DD_SAMPLER_BENCH_EXEC(name, exec)                                                          \
  BENCHMARK_CAPTURE(md4_step, name##_V27, 27, 1.0, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(md4_step, name##_V27_topp, 27, 0.9, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(md4_step, name##_V50257, 50257, 1.0, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(tau_step, analytic_absorbing_##name##_V27, AbsorbingGenerator<float>(27), TauMethod::analytic, true, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(tau_step, analytic_absorbing_##name##_V50257, AbsorbingGenerator<float>(50257), TauMethod::analytic, true, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(tau_step, analytic_uniform_##name##_V27, UniformGenerator<float>(27), TauMethod::analytic, false, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(tau_step, analytic_uniform_##name##_V50257, UniformGenerator<float>(50257), TauMethod::analytic, false, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(tau_step, analytic_roulette_##name##_V27, RouletteGenerator<float>(27, 0.95f), TauMethod::analytic, false, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(tau_step, analytic_roulette_##name##_V50257, RouletteGenerator<float>(50257, 0.95f), TauMethod::analytic, false, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(tau_step, euler_uniform_##name##_V27, UniformGenerator<float>(27), TauMethod::euler, false, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(tau_step, euler_uniform_##name##_V50257, UniformGenerator<float>(50257), TauMethod::euler, false, exec)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(driver_md4, name##_V27_16steps, exec)->Unit(benchmark::kMillisecond)->UseRealTime();

DD_SAMPLER_BENCH_EXEC(sequential, SequentialExecutor{})
DD_SAMPLER_BENCH_EXEC(openmp2, OpenMPExecutor{2})
#if defined(DISCDIFF_HAVE_THRUST) && DISCDIFF_HAVE_THRUST_EXECUTOR
DD_SAMPLER_BENCH_EXEC(thrust_omp, ThrustExecutor{})
#endif

}  // namespace

BENCHMARK_MAIN();
