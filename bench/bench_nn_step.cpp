// bench/bench_nn_step.cpp: one training step of the nn/ transformer (forward, masked-token
// cross-entropy, backward, clip by global norm 1.0, AdamW), float32, for the config of
// issue 5: 6 layers, d_model 256, 4 heads, d_ff 1024, L = 256, B = 16, V = 28,
// time-conditioned. Tokens/s = B L / (seconds per step). Also the GEMM of the MLP
// (M = 4096 tokens, K = 256, N = 1024) through OpenBLAS, Eigen with its own threads, and
// Eigen threaded by nn::EigenGemm (the fallback), in GFLOP/s.
//
// Two modes:
//  * Google Benchmark (default; `run_bench` runs it): BM_NnTrainStep, BM_Sgemm/{blas,eigen};
//  * --plain [--steps S] [--warmup W] [--profile] [--gemm] [--batch B]
//    [--parallel-min-work N] (the host backend's OpenMP min_work): prints one line
//    `cpp tokens_per_s=... step_ms=...` (median of S steps), for bench/compare_torch.sh,
//    and with --profile the per-phase time of forward and backward (ms per step, summed
//    over the 6 blocks), with --gemm the GEMM GFLOP/s of both backends.
// Threads: OMP_NUM_THREADS (OpenBLAS-openmp and our loops share libgomp's pool).
#include <benchmark/benchmark.h>

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <discdiff/core/random.hpp>
#include <discdiff/nn/nn.hpp>

namespace {

using namespace discdiff;
using namespace discdiff::nn;

ModelConfig bench_config() {
  ModelConfig c;  // the defaults are the bench config
  c.n_layer = 6;
  c.n_head = 4;
  c.d_model = 256;
  c.d_ff = 1024;
  c.seq_len = 256;
  c.vocab_in = c.vocab_out = 28;
  c.cond_dim = 128;
  c.temb_dim = 256;
  c.time_cond = true;
  c.causal = false;
  return c;
}

/// Model, optimiser and one fixed masked batch.
struct Trainer {
  ModelConfig cfg = bench_config();
  int B, L;
  Transformer<float> net;
  AdamW<float> opt;
  std::vector<int> x0, xt;
  std::vector<unsigned char> mask;
  std::vector<float> sbar;

  /// min_work: the host backend's OpenMP threshold (passes below it run on one thread).
  explicit Trainer(int batch, double min_work = kParallelMinWork)
      : B(batch),
        L(cfg.seq_len),
        net(cfg, make_host_backend(0, min_work)),
        opt(net.num_params(), AdamWConfig{0.9, 0.999, 1e-8, 0.01}) {
    net.init(7);
    // nonzero adaLN and head (as after some training), so that nothing is trivially zero
    const auto& lay = net.layout();
    for (const auto& t : lay.tensors)
      if (t.name.find("ada") != std::string::npos || t.name.find("head") != std::string::npos)
        for (std::size_t i = 0; i < t.size(); ++i) {
          CounterRng r(7, 99, t.offset + i);
          net.params()[t.offset + i] = (2.0f * r.uniform<float>() - 1.0f) * 0.05f;
        }
    const int N = B * L, mask_id = cfg.vocab_in - 1;
    x0.resize(N);
    xt.resize(N);
    mask.resize(N);
    sbar.resize(B);
    for (int n = 0; n < N; ++n) {
      CounterRng r(11, 0, std::uint64_t(n));
      x0[n] = int(r.uniform_int(std::uint32_t(mask_id)));
      mask[n] = r.uniform<float>() < 0.5f;
      xt[n] = mask[n] ? mask_id : x0[n];
    }
    for (int b = 0; b < B; ++b) sbar[b] = 0.1f + 4.9f * float(b) / float(B);
  }

  float step() {
    const float* lg = net.forward(xt.data(), sbar.data(), B, L);
    const float loss =
        masked_cross_entropy(net.backend(), lg, x0.data(), mask.data(), long(B) * L, cfg.vocab_out, net.dlogits());
    net.zero_grad();
    net.backward();
    clip_grad_norm(net.backend(), net.grads().data(), net.num_params(), 1.0);
    opt.step(net.backend(), net.params().data(), net.grads().data(), 3e-4);
    return loss;
  }
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// CPU seconds of the whole process (all threads): on a shared machine, work per CPU
/// second is less sensitive than wall time to what the other processes do.
double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

const char* gemm_backend() { return DISCDIFF_USE_BLAS ? "OpenBLAS (cblas_sgemm)" : "Eigen"; }

/// GFLOP/s of C[M,N] = A[M,K] B[N,K]^T (the linear layer's forward) by one backend:
/// 0 OpenBLAS, 1 Eigen with its own threads, 2 Eigen threaded by nn::EigenGemm (the
/// fallback of nn::HostGemm).
double gemm_gflops(int backend, int M, int N, int K, int reps) {
  std::vector<float> A(std::size_t(M) * K), Bm(std::size_t(N) * K), C(std::size_t(M) * N);
  for (std::size_t i = 0; i < A.size(); ++i) A[i] = float(i % 13) * 0.01f - 0.05f;
  for (std::size_t i = 0; i < Bm.size(); ++i) Bm[i] = float(i % 7) * 0.01f - 0.03f;
  auto run = [&] {
#if DISCDIFF_USE_BLAS
    if (backend == 0) {
      nn::detail::gemm_blas(false, true, M, N, K, 1.0f, A.data(), K, Bm.data(), K, 0.0f, C.data(), N);
      return;
    }
#endif
    if (backend == 2)
      nn::EigenGemm{}.gemm(false, true, M, N, K, 1.0f, A.data(), K, Bm.data(), K, 0.0f, C.data(), N);
    else
      nn::detail::gemm_eigen(false, true, M, N, K, 1.0f, A.data(), K, Bm.data(), K, 0.0f, C.data(), N);
  };
  run();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
    run();
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return 2.0 * M * N * K / t[t.size() / 2] * 1e-9;
}

int plain_main(int argc, char** argv) {
  int steps = 5, warmup = 1, batch = 16;
  double min_work = kParallelMinWork;
  bool profile = false, gemm = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc) warmup = std::atoi(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::atoi(argv[++i]);
    else if (a == "--parallel-min-work" && i + 1 < argc) min_work = std::atof(argv[++i]);
    else if (a == "--profile") profile = true;
    else if (a == "--gemm") gemm = true;
    else if (a != "--plain") {
      std::fprintf(stderr, "bench_nn_step: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (steps < 1 || batch < 1) {
    std::fprintf(stderr, "bench_nn_step: --steps and --batch must be >= 1\n");
    return 2;
  }
  if (gemm) {
    const int M = 4096, N = 1024, K = 256;
    const double blas = DISCDIFF_USE_BLAS ? gemm_gflops(0, M, N, K, 10) : 0.0;
    const double eig = gemm_gflops(1, M, N, K, 10), eig_mt = gemm_gflops(2, M, N, K, 10);
    std::printf("gemm M=%d N=%d K=%d openblas_gflops=%.1f eigen_gflops=%.1f "
                "eigen_our_threads_gflops=%.1f threads=%d\n",
                M, N, K, blas, eig, eig_mt, OpenMPExecutor{}.team_size());
  }
  Trainer tr(batch, min_work);
  for (int i = 0; i < warmup; ++i) tr.step();
  StepProfile prof;
  if (profile) tr.net.set_profile(&prof);
  std::vector<double> t, tc;
  for (int i = 0; i < steps; ++i) {
    const double t0 = now_s(), c0 = cpu_s();
    tr.step();
    t.push_back(now_s() - t0);
    tc.push_back(cpu_s() - c0);
  }
  tr.net.set_profile(nullptr);
  std::vector<double> ts = t;
  std::sort(ts.begin(), ts.end());
  const double med = ts[ts.size() / 2];
  std::sort(tc.begin(), tc.end());
  const double cpu_med = tc[tc.size() / 2];
  const double tokens = double(tr.B) * tr.L;
  const double flops = tr.cfg.train_flops_per_token(tr.L) * tokens;
  std::printf("cpp tokens_per_s=%.1f step_ms=%.1f min_step_ms=%.1f tokens_per_cpu_s=%.1f "
              "cpu_ms=%.1f threads=%d peak_rss_mb=%.0f activation_mb=%.0f params=%zu "
              "gflops_per_s=%.1f gemm=%s\n",
              tokens / med, 1e3 * med, 1e3 * ts.front(), tokens / cpu_med, 1e3 * cpu_med,
              OpenMPExecutor{}.team_size(), peak_rss_mb(),
              double(tr.net.activation_bytes()) / (1 << 20), tr.net.num_params(), flops / med * 1e-9,
              DISCDIFF_USE_BLAS ? "openblas" : "eigen");
  if (profile) {
    double tf = 0, tb = 0;
    for (int p = 0; p < StepProfile::num_phases; ++p) {
      tf += prof.fwd[p];
      tb += prof.bwd[p];
    }
    for (int p = 0; p < StepProfile::num_phases; ++p)
      std::printf("phase %-30s fwd_ms=%8.2f bwd_ms=%8.2f\n", StepProfile::name(p),
                  1e3 * prof.fwd[p] / steps, 1e3 * prof.bwd[p] / steps);
    double total = 0;
    for (double x : t) total += x;
    std::printf("phase %-30s fwd_ms=%8.2f bwd_ms=%8.2f\n", "total (forward / backward)",
                1e3 * tf / steps, 1e3 * tb / steps);
    std::printf("phase %-30s ms=%8.2f\n", "loss + zero_grad + clip + AdamW",
                1e3 * (total - tf - tb) / steps);
  }
  return 0;
}

void BM_NnTrainStep(benchmark::State& state) {
  Trainer tr(int(state.range(0)));
  tr.step();
  for (auto _ : state) benchmark::DoNotOptimize(tr.step());
  const double tokens = double(tr.B) * tr.L;
  state.SetItemsProcessed(std::int64_t(state.iterations() * tokens));
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MB"] = peak_rss_mb();
  state.SetLabel(gemm_backend());
}
BENCHMARK(BM_NnTrainStep)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_Sgemm(benchmark::State& state, int backend) {
  const int M = 4096, N = 1024, K = 256;
  std::vector<float> A(std::size_t(M) * K, 0.01f), Bm(std::size_t(N) * K, 0.02f),
      C(std::size_t(M) * N);
  for (auto _ : state) {
#if DISCDIFF_USE_BLAS
    if (backend == 0)
      nn::detail::gemm_blas(false, true, M, N, K, 1.0f, A.data(), K, Bm.data(), K, 0.0f, C.data(), N);
    else
#endif
    if (backend == 2)
      nn::EigenGemm{}.gemm(false, true, M, N, K, 1.0f, A.data(), K, Bm.data(), K, 0.0f, C.data(), N);
    else
      nn::detail::gemm_eigen(false, true, M, N, K, 1.0f, A.data(), K, Bm.data(), K, 0.0f, C.data(), N);
    benchmark::DoNotOptimize(C.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}
#if DISCDIFF_USE_BLAS
BENCHMARK_CAPTURE(BM_Sgemm, openblas, 0)->UseRealTime()->Unit(benchmark::kMillisecond);
#endif
BENCHMARK_CAPTURE(BM_Sgemm, eigen, 1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Sgemm, eigen_our_threads, 2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--plain") == 0) return plain_main(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
