// bench/bench_objective.cpp: loss + gradient throughput of the fused objective kernels
// (objective/*.hpp), float, per token (= per position of a B x L batch), for V in {27, 50257}:
//
//   CEDD   (cedd_loss_raw)  roulette p_m = 0.95 (all positions, V = D) and absorbing (masked
//                           positions, V = D)
//   CEDD libm                the same batch with the previous row kernel softmax_xent_row_libm
//                           (C library exp, scalar), sequential only: the speed-up of the
//                           vectorised exp_fast kernel in the same run
//   SEDD   (sedd_loss_raw)  DWDSE with the K term and SEDD's log-score head (spec 4.4), same two
//                           graphs and outputs, V = D
//   MD4    (md4_loss_raw)   absorbing, continuous time, masked positions, V = N
//   GenMD4 (genmd4_loss_raw) two draws per example (2 B L rows) and the w-gradient pass
//
// on the Sequential executor, OpenMP with 2 threads and Thrust-OMP (when built with
// DISCDIFF_HAVE_THRUST). Times t_b on a lattice in [1e-3, 1], x_t drawn by forward sampling,
// Gaussian outputs. Items = tokens; bytes = outputs read + gradient written. The CEDD / SEDD
// cost ratio is the ratio of the time per token of BM_sedd_* and BM_cedd_* of the same graph,
// V and executor (see docs/benchmarks.md). Real time is measured (UseRealTime).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <discdiff/core/random.hpp>
#include <discdiff/exec/executor.hpp>
#include <discdiff/generator/absorbing.hpp>
#include <discdiff/generator/roulette.hpp>
#include <discdiff/objective/objectives.hpp>
#include <discdiff/schedule/loglinear.hpp>
#include <discdiff/schedule/per_token_polynomial.hpp>

namespace {

using namespace discdiff;

/// Positions per batch: about 2^16 tokens at V = 27, 256 at V = 50257 (13 M outputs).
std::int64_t positions_for(int n) { return n < 1000 ? 65536 : 256; }

enum class Graph { roulette, absorbing };

struct Data {
  int N = 0, V = 0;
  std::int64_t B = 0, L = 0;
  std::vector<int> x0, xt, z2;
  std::vector<float> t, u, sigma, w_cedd, w_md4, logits, logits2, grad, grad2, pos, row;
  // GenMD4 workspace and outputs
  std::vector<float> gw, work;
};

/// One batch per (graph, N, V); B = 8 sequences.
Data make(Graph graph, int N, int V) {
  Data d;
  d.N = N;
  d.V = V;
  d.B = 8;
  d.L = positions_for(N) / d.B;
  const std::int64_t P = d.B * d.L;
  d.x0.resize(P);
  d.xt.resize(P);
  d.z2.resize(P);
  d.t.resize(d.B);
  d.u.resize(d.B);
  d.sigma.resize(d.B);
  d.w_cedd.resize(d.B);
  d.w_md4.resize(d.B);
  const RouletteLogLinearSchedule<double> rsched(0.95);
  const LogLinearSchedule<double> lsched;
  for (std::int64_t b = 0; b < d.B; ++b) {
    const double t = 1e-3 + (1 - 1e-3) * (b + 0.5) / d.B;
    d.t[b] = static_cast<float>(t);
    const double u = graph == Graph::roulette ? rsched.sigma_bar(t) : lsched.sigma_bar(t);
    d.u[b] = static_cast<float>(u);
    d.sigma[b] = static_cast<float>(graph == Graph::roulette ? rsched.sigma(t) : lsched.sigma(t));
    d.w_cedd[b] = cedd_weight(CeddVariant::cedd_star, static_cast<float>(t));
    d.w_md4[b] = static_cast<float>(lsched.elbo_weight(t));
  }
  const RouletteGenerator<float> rou(N, 0.95f);
  const AbsorbingGenerator<float> abs(N);
  for (std::int64_t i = 0; i < P; ++i) {
    CounterRng r(7, 0, static_cast<std::uint64_t>(i));
    d.x0[i] = static_cast<int>(r.uniform_int(static_cast<std::uint32_t>(N)));
    const float u = d.u[i / d.L];
    d.xt[i] = graph == Graph::roulette ? rou.sample_forward(d.x0[i], u, r)
                                       : abs.sample_forward(d.x0[i], u, r);
    d.z2[i] = abs.sample_forward(d.x0[i], u, r);
  }
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  d.logits.resize(static_cast<std::size_t>(P) * V);
  for (auto& v : d.logits) v = nd(rng);
  d.grad.resize(d.logits.size());
  d.pos.resize(P);
  d.row.resize(d.B);
  return d;
}

LossBatch<float> view(Data& d) {
  LossBatch<float> bt;
  bt.B = d.B;
  bt.L = d.L;
  bt.V = d.V;
  bt.x0 = d.x0.data();
  bt.xt = d.xt.data();
  bt.logits = d.logits.data();
  bt.grad = d.grad.data();
  bt.pos_loss = d.pos.data();
  bt.row_loss = d.row.data();
  bt.grad_scale = 1.0f / static_cast<float>(d.B);
  return bt;
}

/// Cached batches (built once per configuration).
Data& data(Graph graph, int N, int V) {
  static std::unique_ptr<Data> cache[2][2][2];
  auto& slot = cache[graph == Graph::roulette][N > 1000][V > N];
  if (!slot) slot = std::make_unique<Data>(make(graph, N, V));
  return *slot;
}

void finish(benchmark::State& state, const Data& d, int rows_per_token = 1) {
  const std::int64_t tokens = d.B * d.L;
  state.SetItemsProcessed(state.iterations() * tokens);
  state.SetBytesProcessed(state.iterations() * tokens * rows_per_token * d.V *
                          std::int64_t(2 * sizeof(float)));
  state.counters["V"] = d.V;
}

template <class Exec>
void cedd(benchmark::State& state, Graph graph, int N, const Exec& exec) {
  Data& d = data(graph, N, N + 1);
  const LossBatch<float> bt = view(d);
  const LossPositions pos = graph == Graph::roulette ? LossPositions::all : LossPositions::masked;
  for (auto _ : state) {
    cedd_loss_raw(exec, bt, d.w_cedd.data(), N, pos);
    benchmark::DoNotOptimize(d.row.data());
    benchmark::ClobberMemory();
  }
  finish(state, d);
}

/// WeightedXentKernel with softmax_xent_row_libm (the previous row kernel).
struct LibmXentKernel {
  LossBatch<float> batch;
  const float* weight;
  int mask;
  LossPositions positions;
  void operator()(std::int64_t i) const {
    float* g = batch.grad + i * batch.V;
    if (positions == LossPositions::masked && batch.xt[i] != mask) {
      for (int v = 0; v < batch.V; ++v) g[v] = 0.0f;
      batch.pos_loss[i] = 0.0f;
      return;
    }
    const float w = weight[i / batch.L];
    batch.pos_loss[i] = w * softmax_xent_row_libm(batch.logits + i * batch.V, batch.V, batch.V,
                                                  batch.x0[i], batch.grad_scale * w, g);
  }
};

template <class Exec>
void cedd_libm(benchmark::State& state, Graph graph, int N, const Exec& exec) {
  Data& d = data(graph, N, N + 1);
  const LossBatch<float> bt = view(d);
  const LossPositions pos = graph == Graph::roulette ? LossPositions::all : LossPositions::masked;
  for (auto _ : state) {
    exec.for_each(bt.B * bt.L, LibmXentKernel{bt, d.w_cedd.data(), N, pos});
    exec.for_each(bt.B, RowSumKernel<float>{bt.pos_loss, bt.row_loss, bt.L, 0.0f});
    benchmark::DoNotOptimize(d.row.data());
    benchmark::ClobberMemory();
  }
  finish(state, d);
}

template <class Exec>
void sedd(benchmark::State& state, Graph graph, int N, const Exec& exec) {
  Data& d = data(graph, N, N + 1);
  const LossBatch<float> bt = view(d);
  const RouletteGenerator<float> rou(N, 0.95f);
  const AbsorbingGenerator<float> abs(N);
  SeddOptions opt;
  opt.log_score_head = true;  // SEDD's head (spec 4.4): lambda = o + c(u, x)
  for (auto _ : state) {
    if (graph == Graph::roulette)
      sedd_loss_raw(exec, rou, bt, d.u.data(), d.sigma.data(), opt);
    else
      sedd_loss_raw(exec, abs, bt, d.u.data(), d.sigma.data(), opt);
    benchmark::DoNotOptimize(d.row.data());
    benchmark::ClobberMemory();
  }
  finish(state, d);
}

template <class Exec>
void md4(benchmark::State& state, int N, const Exec& exec) {
  Data& d = data(Graph::absorbing, N, N);
  const LossBatch<float> bt = view(d);
  for (auto _ : state) {
    md4_loss_raw(exec, bt, d.w_md4.data(), N, 0.0f);
    benchmark::DoNotOptimize(d.row.data());
    benchmark::ClobberMemory();
  }
  finish(state, d);
}

template <class Exec>
void genmd4(benchmark::State& state, int N, const Exec& exec) {
  Data& d = data(Graph::absorbing, N, N);
  const std::int64_t P = d.B * d.L;
  if (d.logits2.empty()) {
    d.logits2 = d.logits;
    d.grad2.resize(d.logits.size());
    d.gw.resize(N);
    d.work.resize(static_cast<std::size_t>(P) * 6 + d.B * 8 + 1);
  }
  std::vector<float> wv(N, 1.0f);
  for (int v = 0; v < N; ++v) wv[v] = 0.5f + 1.5f * static_cast<float>(v % 7) / 7.0f;
  const PerTokenPolynomialView<float> sched{wv.data(), N, 1e-4f};
  GenMd4Batch<float> bt;
  bt.B = d.B;
  bt.L = d.L;
  bt.V = N;
  bt.x0 = d.x0.data();
  bt.z[0] = d.xt.data();
  bt.z[1] = d.z2.data();
  bt.logits[0] = d.logits.data();
  bt.logits[1] = d.logits2.data();
  bt.t = d.t.data();
  bt.grad[0] = d.grad.data();
  bt.grad[1] = d.grad2.data();
  bt.grad_w = d.gw.data();
  float* w = d.work.data();
  for (int k = 0; k < 2; ++k) {
    bt.lse[k] = w;
    bt.pos_loss[k] = w + P;
    bt.pos_log_q[k] = w + 2 * P;
    w += 3 * P;
  }
  bt.loss[0] = w;
  bt.loss[1] = w + d.B;
  bt.log_q[0] = w + 2 * d.B;
  bt.log_q[1] = w + 3 * d.B;
  bt.recon = w + 4 * d.B;
  bt.surrogate = w + 5 * d.B;
  bt.nelbo = w + 6 * d.B;
  bt.rho_sum = w + 7 * d.B;
  bt.lse_w = w + 8 * d.B;
  GenMd4Options<float> opt;
  opt.grad_scale = 1.0f / static_cast<float>(d.B);
  for (auto _ : state) {
    genmd4_loss_raw(exec, sched, bt, opt);
    benchmark::DoNotOptimize(d.gw.data());
    benchmark::ClobberMemory();
  }
  finish(state, d, 2);
}

constexpr int kText8 = 27, kGpt2 = 50257;

#define DD_OBJ_BENCH(EXEC_NAME, EXEC)                                                          \
  void BM_cedd_roulette_V27_##EXEC_NAME(benchmark::State& s) { cedd(s, Graph::roulette, kText8, EXEC); } \
  void BM_sedd_roulette_V27_##EXEC_NAME(benchmark::State& s) { sedd(s, Graph::roulette, kText8, EXEC); } \
  void BM_cedd_absorbing_V27_##EXEC_NAME(benchmark::State& s) { cedd(s, Graph::absorbing, kText8, EXEC); } \
  void BM_sedd_absorbing_V27_##EXEC_NAME(benchmark::State& s) { sedd(s, Graph::absorbing, kText8, EXEC); } \
  void BM_md4_V27_##EXEC_NAME(benchmark::State& s) { md4(s, kText8, EXEC); }                \
  void BM_genmd4_V27_##EXEC_NAME(benchmark::State& s) { genmd4(s, kText8, EXEC); }          \
  void BM_cedd_roulette_V50257_##EXEC_NAME(benchmark::State& s) { cedd(s, Graph::roulette, kGpt2, EXEC); } \
  void BM_sedd_roulette_V50257_##EXEC_NAME(benchmark::State& s) { sedd(s, Graph::roulette, kGpt2, EXEC); } \
  void BM_cedd_absorbing_V50257_##EXEC_NAME(benchmark::State& s) { cedd(s, Graph::absorbing, kGpt2, EXEC); } \
  void BM_sedd_absorbing_V50257_##EXEC_NAME(benchmark::State& s) { sedd(s, Graph::absorbing, kGpt2, EXEC); } \
  void BM_md4_V50257_##EXEC_NAME(benchmark::State& s) { md4(s, kGpt2, EXEC); }              \
  void BM_genmd4_V50257_##EXEC_NAME(benchmark::State& s) { genmd4(s, kGpt2, EXEC); }        \
  BENCHMARK(BM_cedd_roulette_V27_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime();  \
  BENCHMARK(BM_sedd_roulette_V27_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime();  \
  BENCHMARK(BM_cedd_absorbing_V27_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime(); \
  BENCHMARK(BM_sedd_absorbing_V27_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime(); \
  BENCHMARK(BM_md4_V27_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime();            \
  BENCHMARK(BM_genmd4_V27_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime();         \
  BENCHMARK(BM_cedd_roulette_V50257_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime(); \
  BENCHMARK(BM_sedd_roulette_V50257_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime(); \
  BENCHMARK(BM_cedd_absorbing_V50257_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime(); \
  BENCHMARK(BM_sedd_absorbing_V50257_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime(); \
  BENCHMARK(BM_md4_V50257_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime();         \
  BENCHMARK(BM_genmd4_V50257_##EXEC_NAME)->Unit(benchmark::kMicrosecond)->UseRealTime();

DD_OBJ_BENCH(sequential, SequentialExecutor{})

void BM_cedd_libm_roulette_V27_sequential(benchmark::State& s) { cedd_libm(s, Graph::roulette, kText8, SequentialExecutor{}); }
void BM_cedd_libm_absorbing_V27_sequential(benchmark::State& s) { cedd_libm(s, Graph::absorbing, kText8, SequentialExecutor{}); }
void BM_cedd_libm_roulette_V50257_sequential(benchmark::State& s) { cedd_libm(s, Graph::roulette, kGpt2, SequentialExecutor{}); }
void BM_cedd_libm_absorbing_V50257_sequential(benchmark::State& s) { cedd_libm(s, Graph::absorbing, kGpt2, SequentialExecutor{}); }
BENCHMARK(BM_cedd_libm_roulette_V27_sequential)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_cedd_libm_absorbing_V27_sequential)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_cedd_libm_roulette_V50257_sequential)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_cedd_libm_absorbing_V50257_sequential)->Unit(benchmark::kMicrosecond)->UseRealTime();
DD_OBJ_BENCH(openmp2, OpenMPExecutor{2})
#if defined(DISCDIFF_HAVE_THRUST) && DISCDIFF_HAVE_THRUST_EXECUTOR
DD_OBJ_BENCH(thrust_omp, ThrustExecutor{})
#endif

}  // namespace

BENCHMARK_MAIN();
