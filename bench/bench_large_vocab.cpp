// bench/bench_large_vocab.cpp: training at a GPT-2-sized vocabulary (N = 50257 regular tokens,
// V_in = 50258 with MASK; V_out = 50257 for CEDD and MD4, 50258 for SEDD's score head), with the
// program's own training step (apps/diffusion.hpp: train_step, batch_loss), evaluation
// (evaluate_bounds) and sampling (the grid sampler) on synthetic token ids, no tokenizer.
//
// Modes:
//  * Google Benchmark (default; `run_bench` runs it): BM_LargeVocabStep/{cedd,sedd,md4}, one
//    train_step of the small config below at V = 50257.
//  * --plain [--objectives cedd,sedd,md4] [--steps S] [--batch B] [--seq-len L] [--d-model d]
//    [--n-layer n] [--vocab N]: per objective the median train_step time, and from a profiled
//    replica of the step the share of the loss kernel (batch_loss minus the network forward),
//    of the output head (its GEMMs, forward and backward), of the rest of forward/backward and
//    of clipping + AdamW + EMA; then the CEDD/SEDD step-time ratio. The objectives' steps are
//    interleaved (one step of each per round) so that load changes hit them alike.
//  * --memory OBJECTIVE [--only train|eval|sample] [same sizes]: 2 training steps, one evaluation of the headline bound on
//    2 batches, one sampling run (8 steps), printing the peak RSS (getrusage) after each and
//    the sizes it should be made of: B L V floats for the logits and as many for their
//    gradient, 5 P floats for parameters, gradients, the AdamW moments and the EMA, the
//    activations. Run it under /usr/bin/time -v for the whole process.
// Default config: 2 blocks, d 128, 4 heads, cond_dim 64, L 128, B 4 (N = 512 positions: the
// logits are 512 x 50257 floats = 103 MB). Threads: OMP_NUM_THREADS.
#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "diffusion.hpp"

namespace {

using namespace discdiff;
using namespace discdiff::app;
using namespace discdiff::app::detail_app;

struct Sizes {
  int vocab = 50257, n_layer = 2, d_model = 128, n_head = 4, cond_dim = 64, seq_len = 128,
      batch = 4;
};

RunConfig bench_run_config(const std::string& objective, const Sizes& z) {
  RunConfig c;
  c.objective = objective;
  c.generator = "absorbing";
  c.n_layer = z.n_layer;
  c.d_model = z.d_model;
  c.n_head = z.n_head;
  c.cond_dim = z.cond_dim;
  c.seq_len = z.seq_len;
  c.batch = z.batch;
  c.steps = 1000000;
  c.warmup = 10;
  c.lr = 1e-4;
  c.seed = 7;
  c.resolve_auto();
  c.validate();
  return c;
}

/// Synthetic clean data: B x L ids, a Zipf-like law over the N tokens (id = floor(N u^3)).
std::vector<int> synthetic_batch(int N, std::int64_t B, std::int64_t L, std::uint64_t step) {
  std::vector<int> x(std::size_t(B * L));
  for (std::size_t i = 0; i < x.size(); ++i) {
    CounterRng rng(0xB16B00u, 3u, (step << 32) | i);
    const double u = double(rng.uniform<float>());
    x[i] = std::min(N - 1, int(double(N) * u * u * u));
  }
  return x;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

struct Bench {
  RunConfig cfg;
  Problem p;
  TrainState s;
  StepScratch sc;
  std::int64_t step = 0;
  Bench(const std::string& objective, const Sizes& z)
      : cfg(bench_run_config(objective, z)), p(cfg, z.vocab), s(TrainState::fresh(p)) {}
  StepResult train_once() {
    ++step;
    const auto x0 = synthetic_batch(p.num_regular(), cfg.batch, cfg.seq_len, std::uint64_t(step));
    return train_step(p, s, sc, x0, cfg.batch, cfg.seq_len, step);
  }
};

void BM_LargeVocabStep(benchmark::State& st, const char* objective) {
  Bench b(objective, Sizes{});
  b.train_once();
  for (auto _ : st) benchmark::DoNotOptimize(b.train_once().loss_per_token);
  st.counters["tokens/s"] =
      benchmark::Counter(double(b.cfg.batch * b.cfg.seq_len), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(BM_LargeVocabStep, cedd, "cedd")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LargeVocabStep, sedd, "sedd")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LargeVocabStep, md4, "md4")->Unit(benchmark::kMillisecond)->UseRealTime();

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// One profiled step, the phases of train_step timed separately (same calls, same order).
struct Phases {
  double fwd = 0, loss = 0, bwd = 0, head = 0, opt = 0, total = 0;
};
Phases profiled_step(Bench& b, nn::StepProfile* sum = nullptr) {
  Net& net = *b.s.net;
  nn::StepProfile prof;
  net.set_profile(&prof);
  ++b.step;
  const auto x0 = synthetic_batch(b.p.num_regular(), b.cfg.batch, b.cfg.seq_len, std::uint64_t(b.step));
  DrawKeys keys;
  keys.seed = b.cfg.seed;
  keys.time_stream = kTrainTimeStream;
  keys.time_index = std::uint64_t(b.step);
  keys.noise[0] = noise_stream(b.step, 0);
  keys.noise[1] = noise_stream(b.step, 1);
  const std::int64_t B = b.cfg.batch, L = b.cfg.seq_len;
  std::vector<Real> gw;
  const double t0 = now_s();
  (void)batch_loss(b.p, net, b.s.w_raw, x0.data(), B, L, keys, nullptr, Real(1.0 / double(B * L)),
                   b.sc, &gw);
  const double t1 = now_s();
  net.zero_grad();
  net.backward();
  const double t2 = now_s();
  (void)nn::clip_grad_norm(net.backend(), net.grads().data(), net.num_params(), b.cfg.clip);
  b.s.opt->step(net.backend(), net.params().data(), net.grads().data(), b.cfg.lr);
  if (b.s.ema) b.s.ema->update(net.backend(), net.params().data());
  const double t3 = now_s();
  net.set_profile(nullptr);
  if (sum)
    for (int k = 0; k < nn::StepProfile::num_phases; ++k) {
      sum->fwd[k] += prof.fwd[k];
      sum->bwd[k] += prof.bwd[k];
    }
  Phases ph;
  for (int k = 0; k < nn::StepProfile::num_phases; ++k) ph.fwd += prof.fwd[k];
  ph.loss = (t1 - t0) - ph.fwd;
  ph.bwd = t2 - t1;
  ph.head = prof.fwd[nn::StepProfile::head] + prof.bwd[nn::StepProfile::head];
  ph.opt = t3 - t2;
  ph.total = t3 - t0;
  return ph;
}

int run_plain(const std::vector<std::string>& objectives, const Sizes& z, int steps) {
  std::printf("V = %d regular tokens; %d blocks, d %d, %d heads, cond_dim %d, L %d, B %d; "
              "OMP threads %s\n",
              z.vocab, z.n_layer, z.d_model, z.n_head, z.cond_dim, z.seq_len, z.batch,
              std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : "default");
  // All objectives live side by side and their steps are interleaved (round r: one step of
  // each), so that a change of the machine's load hits them alike; medians over the rounds.
  std::vector<std::unique_ptr<Bench>> bs;
  for (const auto& obj : objectives) {
    bs.push_back(std::make_unique<Bench>(obj, z));
    bs.back()->train_once();  // warm-up: allocations, first touch
  }
  const std::size_t n = bs.size();
  std::vector<std::vector<double>> t(n);
  std::vector<std::vector<Phases>> ph(n);
  std::vector<nn::StepProfile> prof_sum(n);
  for (int r = 0; r < steps; ++r)
    for (std::size_t i = 0; i < n; ++i) {
      const double t0 = now_s();
      bs[i]->train_once();
      t[i].push_back(now_s() - t0);
      ph[i].push_back(profiled_step(*bs[i], &prof_sum[i]));
    }
  double cedd = 0, sedd = 0;
  std::vector<double> ratio;  // per round: CEDD step / SEDD step
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& obj = objectives[i];
    const double step_ms = 1e3 * median(t[i]);
    auto med = [&](double Phases::*m) {
      std::vector<double> v;
      for (const auto& x : ph[i]) v.push_back(x.*m);
      return 1e3 * median(v);
    };
    const double tot = med(&Phases::total);
    const double rest = med(&Phases::fwd) + med(&Phases::bwd) - med(&Phases::head);
    std::printf("%-5s V_out %d  params %zu  train_step %.1f ms (median of %d)  | profiled step "
                "%.1f ms: loss %.1f ms (%.1f%%), output head %.1f ms (%.1f%%), rest of fwd+bwd "
                "%.1f ms (%.1f%%), clip+AdamW+EMA %.1f ms (%.1f%%)\n",
                obj.c_str(), bs[i]->s.net->config().vocab_out, bs[i]->s.net->num_params(), step_ms,
                steps, tot, med(&Phases::loss), 100 * med(&Phases::loss) / tot, med(&Phases::head),
                100 * med(&Phases::head) / tot, rest, 100 * rest / tot, med(&Phases::opt),
                100 * med(&Phases::opt) / tot);
    std::printf("      network phases, ms per step (forward / backward):");
    for (int k = 0; k < nn::StepProfile::num_phases; ++k)
      if (prof_sum[i].fwd[k] + prof_sum[i].bwd[k] > 0.005 * steps)
        std::printf(" %s %.0f/%.0f;", nn::StepProfile::name(k), 1e3 * prof_sum[i].fwd[k] / steps,
                    1e3 * prof_sum[i].bwd[k] / steps);
    std::printf("\n");
    if (obj == "cedd") cedd = step_ms;
    if (obj == "sedd") sedd = step_ms;
  }
  std::size_t ic = n, is = n;
  for (std::size_t i = 0; i < n; ++i) {
    if (objectives[i] == "cedd") ic = i;
    if (objectives[i] == "sedd") is = i;
  }
  if (ic < n && is < n) {
    for (int r = 0; r < steps; ++r) ratio.push_back(t[ic][std::size_t(r)] / t[is][std::size_t(r)]);
    std::printf("CEDD / SEDD step time: %.3f from the medians, %.3f median of the %d per-round "
                "ratios (CEDD %.1f%% faster)\n",
                cedd / sedd, median(ratio), steps, 100 * (1 - median(ratio)));
  }
  return 0;
}

int run_memory(const std::string& objective, const Sizes& z, const std::string& only) {
  const double base = peak_rss_mb();
  Bench b(objective, z);
  Net& net = *b.s.net;
  const double P = double(net.num_params());
  const double N = double(z.batch) * z.seq_len, V = net.config().vocab_out;
  const double mb = 1.0 / (1 << 20);
  std::printf("objective %s, V_out %.0f, %.0f positions, %.0f parameters\n", objective.c_str(), V, N, P);
  std::printf("  at start (program, libraries):          peak RSS %8.1f MB\n", base);
  const double logits = N * V * 4 * mb, state = 5 * P * 4 * mb;
  std::printf("  network built (params, AdamW m, v, EMA; init's host copy): peak RSS %8.1f MB\n",
              peak_rss_mb());
  if (only.empty() || only == "train") {
    b.train_once();
    b.train_once();
    std::printf("  after 2 training steps:                 peak RSS %8.1f MB\n", peak_rss_mb());
    std::printf("    expected: logits %.1f MB + their gradient %.1f MB + params/grads/AdamW m, v/EMA "
                "%.1f MB + other activations %.1f MB = %.1f MB above the start\n",
                logits, logits, state, double(net.activation_bytes()) * mb - 2 * logits,
                state + double(net.activation_bytes()) * mb);
  }
  if (only.empty() || only == "eval") {
    EvalOptions eo;
    eo.batch = z.batch;
    const std::int64_t num = 2 * z.batch;
    std::vector<int> x0;
    for (std::int64_t k = 0; k < num / z.batch; ++k) {
      const auto xb = synthetic_batch(b.p.num_regular(), z.batch, z.seq_len, 1000 + std::uint64_t(k));
      x0.insert(x0.end(), xb.begin(), xb.end());
    }
    const auto reps = evaluate_bounds(b.p, net, b.s.w_raw, x0, num, z.seq_len, eo);
    std::printf("  after evaluating %s on %lld sequences: peak RSS %8.1f MB (%s = %.3f bits/token; "
                "one B x L x V buffer = %.1f MB)\n",
                reps.front().name.c_str(), (long long)num, peak_rss_mb(), reps.front().name.c_str(),
                reps.front().est.bits_per_token(), logits);
  }
  if (only.empty() || only == "sample") {
    SamplerOptions so;
    so.steps = 8;
    so.seed = 1;
    so.kind = objective == "md4" ? SamplerKind::md4_ancestral : SamplerKind::analytic;
    so.grid = objective == "md4" ? GridKind::uniform : GridKind::sedd;
    so.eps = objective == "md4" ? 1e-5 : b.cfg.t_eps;
    so.final_step = FinalStep::sample;
    std::vector<int> x;
    int nfe = std::visit(
        [&](const auto& g) {
          return b.p.score_head()
                     ? sample(net.backend().exec, g, b.p.schedule(),
                              NetModel<ModelOutput::log_scores>{&b.p, &net}, so, z.batch, z.seq_len, x)
                           .nfe
                     : sample(net.backend().exec, g, b.p.schedule(),
                              NetModel<ModelOutput::logits>{&b.p, &net}, so, z.batch, z.seq_len, x)
                           .nfe;
        },
        b.p.generator());
    int bad = 0;
    for (int v : x) bad += v < 0 || v >= b.p.num_regular();
    std::printf("  after sampling %d x %d tokens (%d NFE): peak RSS %8.1f MB (%d ids outside the "
                "vocabulary)\n", z.batch, z.seq_len, nfe, peak_rss_mb(), bad);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Sizes z;
  std::vector<std::string> objectives = {"cedd", "sedd", "md4"};
  int steps = 5;
  std::string memory, only;
  bool plain = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--plain") plain = true;
    else if (a == "--memory") memory = next();
    else if (a == "--only") only = next();
    else if (a == "--steps") steps = std::atoi(next());
    else if (a == "--batch") z.batch = std::atoi(next());
    else if (a == "--seq-len") z.seq_len = std::atoi(next());
    else if (a == "--d-model") z.d_model = std::atoi(next());
    else if (a == "--n-layer") z.n_layer = std::atoi(next());
    else if (a == "--vocab") z.vocab = std::atoi(next());
    else if (a == "--objectives") {
      objectives.clear();
      std::stringstream ss(next());
      std::string o;
      while (std::getline(ss, o, ',')) objectives.push_back(o);
    }
  }
  try {
    if (!memory.empty()) return run_memory(memory, z, only);
    if (plain) return run_plain(objectives, z, std::max(1, steps));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_large_vocab: %s\n", e.what());
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
