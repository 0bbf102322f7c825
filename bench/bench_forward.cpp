// bench/bench_forward.cpp: forward corruption (ops/forward_corrupt.hpp) of a 512 x 1024
// token batch, float, roulette p_m = 0.95 and absorbing, on every CPU executor:
// Sequential, OpenMP with 1 and 2 threads, and Thrust-OMP (when built with
// DISCDIFF_HAVE_THRUST). Reports tokens/s (items) and bytes/s (x0 read + xt written).
// Real time is measured (UseRealTime), so the parallel executors are compared fairly.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include <discdiff/core/random.hpp>
#include <discdiff/exec/executor.hpp>
#include <discdiff/generator/absorbing.hpp>
#include <discdiff/generator/roulette.hpp>
#include <discdiff/ops/forward_corrupt.hpp>

namespace {

using namespace discdiff;

constexpr std::int64_t kB = 512, kL = 1024;
constexpr int kN = 50257;  // GPT-2 vocabulary

struct Batch {
  std::vector<int> x0, xt;
  std::vector<float> u;
  Batch() : x0(kB * kL), xt(kB * kL), u(kB) {
    for (std::int64_t i = 0; i < kB * kL; ++i) {
      CounterRng rng(1, 0, static_cast<std::uint64_t>(i));
      x0[i] = static_cast<int>(rng.uniform_int(kN));
    }
    // One time per row on a lattice, S-LOGLIN total noise u = -log1p(-(1-1e-3) t).
    for (std::int64_t b = 0; b < kB; ++b) {
      const double t = (b + 0.5) / kB;
      u[b] = static_cast<float>(-std::log1p(-(1.0 - 1e-3) * t));
    }
  }
};

Batch& batch() {
  static Batch b;
  return b;
}

template <class Gen, class Exec>
void run(benchmark::State& state, const Gen& gen, const Exec& exec) {
  Batch& b = batch();
  std::uint32_t step = 0;
  for (auto _ : state) {
    forward_corrupt_raw(exec, gen, b.x0.data(), kB, kL, b.u.data(), b.xt.data(), 42, step++);
    benchmark::DoNotOptimize(b.xt.data());
    benchmark::ClobberMemory();
  }
  const std::int64_t tokens = kB * kL;
  state.SetItemsProcessed(state.iterations() * tokens);
  state.SetBytesProcessed(state.iterations() *
                          (tokens * std::int64_t(2 * sizeof(int)) + kB * std::int64_t(sizeof(float))));
}

const RouletteGenerator<float> kRoulette(kN, 0.95f);
const AbsorbingGenerator<float> kAbsorbing(kN);

void BM_roulette_sequential(benchmark::State& s) { run(s, kRoulette, SequentialExecutor{}); }
void BM_roulette_openmp1(benchmark::State& s) { run(s, kRoulette, OpenMPExecutor{1}); }
void BM_roulette_openmp2(benchmark::State& s) { run(s, kRoulette, OpenMPExecutor{2}); }
void BM_absorbing_sequential(benchmark::State& s) { run(s, kAbsorbing, SequentialExecutor{}); }
void BM_absorbing_openmp1(benchmark::State& s) { run(s, kAbsorbing, OpenMPExecutor{1}); }
void BM_absorbing_openmp2(benchmark::State& s) { run(s, kAbsorbing, OpenMPExecutor{2}); }

BENCHMARK(BM_roulette_sequential)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_roulette_openmp1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_roulette_openmp2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_absorbing_sequential)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_absorbing_openmp1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_absorbing_openmp2)->Unit(benchmark::kMillisecond)->UseRealTime();

#if defined(DISCDIFF_HAVE_THRUST) && DISCDIFF_HAVE_THRUST_EXECUTOR
void BM_roulette_thrust_omp(benchmark::State& s) { run(s, kRoulette, ThrustExecutor{}); }
void BM_absorbing_thrust_omp(benchmark::State& s) { run(s, kAbsorbing, ThrustExecutor{}); }
BENCHMARK(BM_roulette_thrust_omp)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_absorbing_thrust_omp)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
