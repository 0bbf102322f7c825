// bench/bench_transition.cpp: one column of P_u = exp(uQ), double precision.
//
//   closed/<gen>/N      the O(D) closed form (generator/uniform.hpp, generator/roulette.hpp)
//   dense/<gen>/N       DenseGenerator: Eigen's O(D^3) matrix exponential of uQ, recomputed for
//                       every u (each iteration uses a new u, so the P_u cache never hits), then
//                       the column
//   apply_exp/<gen>/N   the O(D) staggered-score product P_{-Delta} s
//
// Items are column entries (D per iteration); everything runs on one thread (Eigen included). At the end the suite prints, for N = 256, the
// speed ratio closed/dense of each generator (items/s over items/s, same run).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <discdiff/generator/dense.hpp>
#include <discdiff/generator/generators.hpp>

namespace {

using namespace discdiff;

// A different total noise in every iteration, in [0.05, 1.05).
double noise_at(std::int64_t k) { return 0.05 + 1e-3 * static_cast<double>(k % 1000); }

template <class Gen>
Gen make(int n);
template <>
UniformGenerator<double> make(int n) {
  return UniformGenerator<double>(n);
}
template <>
RouletteGenerator<double> make(int n) {
  return RouletteGenerator<double>(n, 0.95);
}

template <class G>
void finish(benchmark::State& state, const G& g) {
  state.SetItemsProcessed(state.iterations() * g.num_states());
  state.SetBytesProcessed(state.iterations() * g.num_states() *
                          static_cast<std::int64_t>(sizeof(double)));
}

template <class Gen>
void closed_column(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const Gen g = make<Gen>(n);
  std::vector<double> out(static_cast<std::size_t>(g.num_states()));
  std::int64_t k = 0;
  for (auto _ : state) {
    g.transition_column(n / 3, noise_at(k++), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, g);
}

template <class Gen>
void dense_column(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const DenseGenerator<double> g = make_dense(make<Gen>(n));
  std::vector<double> out(static_cast<std::size_t>(g.num_states()));
  std::int64_t k = 0;
  for (auto _ : state) {
    g.transition_column(n / 3, noise_at(k++), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, g);
}

template <class Gen>
void staggered(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const Gen g = make<Gen>(n);
  const auto d = static_cast<std::size_t>(g.num_states());
  std::vector<double> s(d), out(d);
  for (std::size_t i = 0; i < d; ++i) s[i] = 1.0 + 0.5 * std::sin(double(i));
  std::int64_t k = 0;
  for (auto _ : state) {
    g.apply_exp(-1e-2 * noise_at(k++), s.data(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, g);
}

void register_all() {
  using U = UniformGenerator<double>;
  using R = RouletteGenerator<double>;
  benchmark::RegisterBenchmark("closed/uniform", closed_column<U>)->Arg(256)->Arg(50257);
  benchmark::RegisterBenchmark("closed/roulette", closed_column<R>)->Arg(256)->Arg(50257);
  benchmark::RegisterBenchmark("dense/uniform", dense_column<U>)->Arg(256)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("dense/roulette", dense_column<R>)->Arg(256)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("apply_exp/uniform", staggered<U>)->Arg(256)->Arg(50257);
  benchmark::RegisterBenchmark("apply_exp/roulette", staggered<R>)->Arg(256)->Arg(50257);
}

// Console output plus the closed/dense ratios of the same run.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      const auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) rate_[r.benchmark_name()] = it->second.value;
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    for (const char* gen : {"uniform", "roulette"}) {
      const std::string c = std::string("closed/") + gen + "/256";
      const std::string d = std::string("dense/") + gen + "/256";
      if (rate_.count(c) && rate_.count(d) && rate_[d] > 0)
        std::printf("speed ratio closed/dense, %s, N = 256: %.3g\n", gen, rate_[c] / rate_[d]);
    }
  }

 private:
  std::map<std::string, double> rate_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // One thread for Eigen's products: Google Benchmark's CPU time is the main thread's, so
  // OpenMP workers inside the exponential would be left out of the dense figures.
  Eigen::setNbThreads(1);
  register_all();
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
