// apps/sample.cpp: `discdiff sample`: draw text from a trained checkpoint with any grid
// sampler of the library (MD4 ancestral, cached ancestral, Euler and analytic tau-leaping, the
// GenMD4 reverse step) or, for an autoregressive checkpoint, ancestral next-token sampling;
// optional prefix or infill template, top-p / top-k, a seed, and --n samples to a JSONL file.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "checkpoint.hpp"
#include "command.hpp"
#include "diffusion.hpp"
#include "memory_check.hpp"
#include "run_files.hpp"
#include "session.hpp"

namespace discdiff {
namespace app {
namespace {

struct SampleArgs {
  std::string checkpoint;
  std::string sampler = "auto";
  int steps = 256;
  std::string grid = "auto";
  std::string final_step = "auto";
  double top_p = 1.0;
  int top_k = 0;
  std::uint64_t seed = 0;
  int n = 1;
  int batch = 16;
  int length = 0;
  std::string prefix;
  std::string infill;
  std::string blank = "_";
  std::string out;
  int windows = 1;
  int stride = 0;
  bool raw = false;
  bool quiet = false;
  bool force = false;
  int threads = 0;
  std::string device = "cpu";
  std::string max_memory;        ///< --max-memory (empty: the memory available)
  std::set<std::string> given;  ///< the options given on the command line
};

inline constexpr std::uint32_t kArSampleStream = 0x41520001u;

/// Row b's input at AR step j: its BOS and the j tokens so far (tok is B x (L + 1)).
struct ArPrefixKernel {
  const int* tok;
  int* in;
  std::int64_t L1, j1;  // row stride of tok, prefix length j + 1
  DD_HD void operator()(std::int64_t i) const {
    const std::int64_t b = i / j1, l = i % j1;
    in[i] = tok[b * L1 + l];
  }
};

/// AR step j of row b: the fixed token, or a draw from the last position's logits truncated by
/// top-p / top-k (the samplers' one truncation, sampler/kernels.hpp draw_truncated) with the
/// uniform of CounterRng(seed, kArSampleStream, (row0 + b) L + j).
struct ArNextTokenKernel {
  const Real* logits;  ///< B x (j + 1) x N
  const unsigned char* fixed;
  const int* values;  ///< B x L, or null
  int* tok;           ///< B x (L + 1)
  Real* scratch;      ///< B x N (top-p / top-k only)
  std::int64_t j, L;
  int N;
  double top_p;
  int top_k;
  std::uint64_t seed, row0;
  DD_HD void operator()(std::int64_t b) const {
    const std::int64_t i = b * L + j;
    int v;
    if (fixed != nullptr && fixed[i]) {
      v = values[i];
    } else {
      CounterRng rng(seed, kArSampleStream, (row0 + std::uint64_t(b)) * std::uint64_t(L) + std::uint64_t(j));
      const double u = rng.template uniform<double>();
      v = discdiff::detail::smp::draw_truncated(logits + (b * (j + 1) + j) * N, N, top_p, top_k,
                                                scratch != nullptr ? scratch + b * N : nullptr, u);
    }
    tok[b * (L + 1) + j + 1] = v;
  }
};

/// Ancestral next-token sampling from a causal network (BOS = N), with top-p / top-k and
/// conditioning by fixed positions, on the network's backend.
std::vector<int> sample_ar(const Problem& p, Net& net, std::int64_t B, std::int64_t L,
                           const SampleArgs& a, const Conditioning* cond, std::uint64_t row0,
                           int& nfe, const std::function<void(double)>& on_token) {
  const int N = p.num_regular();
  const std::int64_t L1 = L + 1;
  const auto& ex = net.backend().exec;
  const std::vector<int> start = with_bos(std::vector<int>(static_cast<std::size_t>(B * L), 0).data(), B, L, N);
  AppBuffer<int> tok(start.size()), in(start.size());
  copy_from_host(tok, start.data(), start.size());
  const discdiff::detail::smp::ConditioningBuffers<AppSpace> cb(cond);
  const bool truncate = a.top_p < 1.0 || (a.top_k > 0 && a.top_k < N);
  AppBuffer<Real> scratch(truncate ? static_cast<std::size_t>(B * N) : 0);
  for (std::int64_t j = 0; j < L; ++j) {
    ex.for_each(B * (j + 1), ArPrefixKernel{tok.data(), in.data(), L1, j + 1});
    const Real* lg = net.forward(in.data(), nullptr, int(B), int(j + 1));
    ++nfe;
    ex.for_each(B, ArNextTokenKernel{lg, cb.fixed_ptr(), cb.values_ptr(), tok.data(),
                                     truncate ? scratch.data() : nullptr, j, L, N, a.top_p, a.top_k,
                                     a.seed, row0});
    on_token(double(j + 1) / double(L));
  }
  const std::vector<int> all = to_host_vector(tok);
  std::vector<int> x(static_cast<std::size_t>(B * L));
  for (std::int64_t b = 0; b < B; ++b)
    std::copy(all.begin() + b * L1 + 1, all.begin() + (b + 1) * L1, x.begin() + b * L);
  return x;
}

int run_sample(const SampleArgs& a) {
  require_device(a.device);
  set_threads(a.threads);
  Checkpoint ck = load_checkpoint(a.checkpoint);
  const RunConfig& cfg = ck.cfg;
  const data::Tokenizer& tok = ck.tokenizer;
  const Problem p(cfg, tok.num_regular());
  Net& net = *ck.state.net;
  if (!a.raw && ck.state.ema) net.set_params(ck.state.ema->shadow());
  const int N = p.num_regular();

  // Conditioning: an infill template fixes every non-blank character; a prefix the first ones.
  std::int64_t L = a.length > 0 ? a.length : cfg.seq_len;
  std::vector<int> fixed_pos, fixed_val;
  if (!a.infill.empty() && !a.prefix.empty())
    throw std::invalid_argument("give either --prefix or --infill, not both");
  if (a.blank.size() != 1) throw std::invalid_argument("--blank must be one character");
  if (!a.infill.empty()) {
    if (a.length > 0 && a.length != std::int64_t(a.infill.size()))
      throw std::invalid_argument("--length " + std::to_string(a.length) +
                                  " differs from the infill template's length " +
                                  std::to_string(a.infill.size()));
    L = std::int64_t(a.infill.size());
    for (std::size_t i = 0; i < a.infill.size(); ++i)
      if (a.infill[i] != a.blank[0]) {
        fixed_pos.push_back(int(i));
        fixed_val.push_back(tok.encode(a.infill.substr(i, 1)).at(0));
      }
  } else if (!a.prefix.empty()) {
    const auto ids = tok.encode(a.prefix);
    if (std::int64_t(ids.size()) > L)
      throw std::invalid_argument("the prefix has " + std::to_string(ids.size()) +
                                  " tokens, more than the length " + std::to_string(L));
    for (std::size_t i = 0; i < ids.size(); ++i) fixed_pos.push_back(int(i)), fixed_val.push_back(ids[i]);
  }
  const int Lmax = p.causal() ? net.config().seq_len - 1 : net.config().seq_len;
  if (L > Lmax)
    throw std::invalid_argument("--length " + std::to_string(L) + " exceeds the network's sequence "
                                "length " + std::to_string(Lmax));

  // The objective's registry entry lists the samplers it supports (the first is "auto").
  const ObjectiveInfo& obj = p.objective();
  std::string kind = a.sampler == "auto" ? obj.samplers.front() : a.sampler;
  if (!one_of(kind, obj.samplers))
    throw std::invalid_argument("--sampler " + kind + " does not fit a checkpoint trained with --objective " +
                                cfg.objective + " (it samples with " + join(obj.samplers) + ")");
  const bool md4_kind = kind == "md4" || kind == "md4-cached";
  // An option this sampler does not read is an error, not a silent no-op.
  if (kind == "ar") {
    refuse_ignored(a.given, {"steps", "grid", "final"},
                   "with the autoregressive sampler (one network evaluation per token of --length)");
  } else if (kind == "uniformization") {
    refuse_ignored(a.given, {"grid", "final", "top-p", "top-k"},
                   "with --sampler uniformization (exact simulation on log-spaced intervals; its "
                   "final draw is untruncated)");
  } else if (kind == "euler" || kind == "analytic") {
    refuse_ignored(a.given, {"top-p", "top-k"},
                   "with the tau-leaping sampler " + kind + " (truncation applies to the md4, "
                   "md4-cached, genmd4 and ar samplers)");
  }
  if (a.windows <= 1) refuse_ignored(a.given, {"stride"}, "without --windows > 1");
  if (a.infill.empty()) refuse_ignored(a.given, {"blank"}, "without --infill");
  if (a.windows > 1 && (kind == "ar" || kind == "genmd4" || kind == "uniformization" || !a.infill.empty()))
    throw std::invalid_argument("--windows > 1 (semi-autoregressive continuation) works with the grid "
                                "samplers md4, md4-cached, euler and analytic, without --infill");
  if (a.windows > 1 && (a.stride < 1 || a.stride > L))
    throw std::invalid_argument("--stride " + std::to_string(a.stride) + " must lie in [1, " +
                                std::to_string(L) + "] with --windows > 1");
  if (md4_kind && cfg.generator != "absorbing")
    throw std::invalid_argument("--sampler " + kind + " needs the absorbing generator (this checkpoint: " +
                                cfg.generator + ")");

  SamplerOptions so;
  so.steps = a.steps;
  so.seed = a.seed;
  so.top_p = a.top_p;
  so.top_k = a.top_k;
  so.kind = kind == "md4"          ? SamplerKind::md4_ancestral
            : kind == "md4-cached" ? SamplerKind::md4_cached
            : kind == "euler"      ? SamplerKind::euler
                                   : SamplerKind::analytic;
  std::string grid = a.grid;
  if (grid == "auto") grid = (md4_kind || kind == "genmd4") ? "uniform" : "sedd";
  so.grid = grid == "cosine" ? GridKind::cosine : grid == "uniform" ? GridKind::uniform : GridKind::sedd;
  so.eps = obj.t_eps_cutoff ? cfg.t_eps : 1e-5;
  std::string fin = a.final_step == "auto" ? "sample" : a.final_step;
  so.final_step = fin == "argmax" ? FinalStep::argmax : fin == "none" ? FinalStep::none : FinalStep::sample;

  // -o: the samples go to a temporary file renamed over the destination at the end (an error
  // or a signal leaves an existing file untouched); an existing file needs --force.
  std::unique_ptr<AtomicFile> out;
  if (!a.out.empty()) {
    std::error_code ec;
    if (!a.force && std::filesystem::exists(a.out, ec))
      throw std::invalid_argument("'" + a.out + "' exists: pass --force to overwrite it");
    // A temporary of a `sample -o` of the same file killed before its rename goes first.
    const std::filesystem::path op(a.out);
    for (const auto& name : remove_stale_temps(op.has_parent_path() ? op.parent_path().string() : ".",
                                               op.filename().string()))
      if (!a.quiet)
        std::cerr << "discdiff sample: removed '" << name << "' (a temporary file of a killed writer)\n";
    out = std::make_unique<AtomicFile>(a.out);
  }
  {  // memory: refuse before allocating what cannot fit
    MemoryNeed need;
    const std::int64_t B = std::min(a.batch, a.n);
    p.add_pass_memory(need, B, L, false, "network", /*logit_grad=*/false);
    p.add_gemm_memory(need, B, L, current_threads());
    // The samplers read the network's logits in place (NetModel::evaluate); a truncation scratch
    // of their size with --top-p / --top-k (grid samplers), a host copy for the final draw of
    // uniformization.
    const bool truncating = (a.top_p < 1.0 || a.top_k > 0) && kind != "ar";
    const double copies = (truncating ? 1.0 : 0.0) + (kind == "uniformization" ? 1.0 : 0.0);
    if (copies > 0)
      need.add("sampler buffers", copies * double(B) * double(L) * (N + 1) * sizeof(Real));
    require_memory(need, a.max_memory,
                   "lower --batch or --length");
  }
  int total_nfe = 0;
  const auto t0 = std::chrono::steady_clock::now();
  // On a terminal, a progress line on stderr (redrawn at most 10 times a second).
  Progress progress(!a.quiet);
  auto last_draw = t0 - std::chrono::seconds(1);
  for (int done = 0; done < a.n;) {
    const std::int64_t B = std::min(a.batch, a.n - done);
    auto show = [&](double frac) {
      if (!progress.active()) return;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_draw < std::chrono::milliseconds(100) && frac < 1) return;
      last_draw = now;
      const double finished = done + frac * double(B), el = seconds_since(t0);
      const double eta = finished > 0 ? el * (a.n - finished) / finished : -1;
      progress.show("[samples " + std::to_string(done + 1) + "-" + std::to_string(done + B) + " of " +
                    std::to_string(a.n) + "] " + fmt(100.0 * frac, 0) + "%  elapsed " +
                    format_duration(el) + "  ETA " + format_duration(eta));
    };
    auto on_step = [&](const StepInfo& si) { show(std::min(1.0, double(si.step + 1) / a.steps)); };
    show(0);
    std::vector<int> x;
    std::unique_ptr<Conditioning> cond;
    if (!fixed_pos.empty() && a.windows == 1) {
      if (a.infill.empty()) {
        std::vector<int> pre(fixed_val);
        cond = std::make_unique<Conditioning>(prefix_conditioning(B, L, pre));
      } else {
        cond = std::make_unique<Conditioning>(infill_conditioning(B, L, fixed_pos, fixed_val));
      }
    }
    // Each batch gets its own seed offset so that --batch does not change the samples' seeds
    // within a batch of rows; the row index enters every draw.
    SamplerOptions sb = so;
    sb.seed = a.seed + std::uint64_t(done) * 0x9E3779B97F4A7C15ull;
    int nfe = 0;
    if (kind == "ar") {
      x = sample_ar(p, net, B, L, a, cond.get(), std::uint64_t(done), nfe, show);
    } else if (kind == "genmd4") {
      PerTokenPolynomialSchedule<Real> sched(ck.state.w_raw, Real(cfg.eta));
      StateDependentMaskingGenerator<Real> gen(N);
      NetModel<ModelOutput::logits> den{&p, &net};
      nfe = sample_genmd4(net.backend().exec, gen, sched, den, sb, B, L, x, cond.get(), on_step).nfe;
    } else if (kind == "uniformization") {
      NetModel<ModelOutput::logits> den{&p, &net};
      UniformizationOptions uo;
      uo.t_min = so.eps;
      uo.intervals = a.steps;
      uo.seed = sb.seed;
      nfe = std::visit([&](const auto& g) {
              return sample_uniformization(net.backend().exec, g, p.schedule(), den, uo, B, L, x,
                                           cond.get()).rounds;
            }, p.generator());
      // Positions still masked at t_min (absorbing, roulette; probability ~ t_min per position)
      // get one draw from the denoiser's logits there, as the grid samplers' final step does.
      bool masked = false;
      for (int v : x) masked = masked || v == N;
      if (masked && cfg.generator != "uniform") {
        const std::size_t n = x.size(), K = std::size_t(den.num_classes());
        std::vector<Real> tv(static_cast<std::size_t>(B), Real(uo.t_min));
        std::vector<Real> uv(static_cast<std::size_t>(B), p.schedule().sigma_bar(Real(uo.t_min)));
        AppBuffer<int> xd(n);
        AppBuffer<Real> td(tv.size()), ud(uv.size());
        copy_from_host(xd, x.data(), n);
        copy_from_host(td, tv.data(), tv.size());
        copy_from_host(ud, uv.data(), uv.size());
        const Real* lgd = den.evaluate(ModelQuery<Real>{xd.data(), B, L, td.data(), ud.data()});
        std::vector<Real> lg(n * K);
        copy_n(HostSpace{}, lg.data(), AppSpace{}, lgd, lg.size());
        ++nfe;
        for (std::int64_t i = 0; i < B * L; ++i)
          if (x[i] == N) {
            CounterRng rng(sb.seed, 0x46494E31u, std::uint64_t(i));
            x[i] = sample_gumbel_max(lg.data() + i * K, N, rng);
          }
      }
    } else {
      // Grid samplers: sedd checkpoints give log-scores, the others logits.
      auto run_grid = [&](const auto& den) {
        return std::visit([&](const auto& g) {
                 return a.windows > 1
                            ? sample_semi_autoregressive(net.backend().exec, g, p.schedule(), den, sb,
                                                         B, L, fixed_val, a.stride, a.windows, x).nfe
                            : sample(net.backend().exec, g, p.schedule(), den, sb, B, L, x, cond.get(),
                                     on_step).nfe;
               }, p.generator());
      };
      nfe = p.score_head() ? run_grid(NetModel<ModelOutput::log_scores>{&p, &net})
                        : run_grid(NetModel<ModelOutput::logits>{&p, &net});
    }
    const std::int64_t Lout = std::int64_t(x.size()) / B;
    total_nfe += nfe;
    progress.clear();
    for (std::int64_t b = 0; b < B; ++b) {
      for (std::int64_t l = 0; l < Lout; ++l)
        if (x[b * Lout + l] < 0 || x[b * Lout + l] > N)
          throw std::runtime_error("the sampler produced an invalid token id " +
                                   std::to_string(x[b * Lout + l]));
      const std::string text = tok.decode(x.data() + b * Lout, std::size_t(Lout), '_');
      if (out) {
        nlohmann::json j;
        j["sample"] = done + b;
        // JSON text is Unicode: a sample that is not valid UTF-8 (a byte-level model's) has its
        // invalid bytes shown as U+FFFD in "text" and its exact bytes in "text_hex".
        j["text"] = text;
        if (!valid_utf8(text)) j["text_hex"] = hex_bytes(text);
        j["tokens"] = std::vector<int>(x.begin() + b * Lout, x.begin() + (b + 1) * Lout);
        j["sampler"] = kind;
        j["steps"] = kind == "ar" ? int(L) : a.steps;
        j["nfe"] = nfe;
        j["seed"] = a.seed;
        out->write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      } else {
        if (!a.quiet) std::cout << "--- sample " << done + b << " ---\n";
        std::cout << text << "\n";
        if (!std::cout.flush())
          throw std::runtime_error("writing the samples to standard output failed (closed pipe?) "
                                   "after " + std::to_string(done + b) + " samples");
      }
    }
    done += int(B);
  }
  progress.clear();
  if (out) out->commit();
  if (!a.quiet)
    std::cerr << "discdiff sample: " << a.n << " samples of length " << L << " with " << kind
              << (kind == "ar" ? "" : ", " + std::to_string(a.steps) + " steps") << ", " << total_nfe
              << " network evaluations, " << format_duration(seconds_since(t0))
              << (a.out.empty() ? "" : "; written to " + a.out) << "\n";
  return 0;
}

const RegisterCommand reg{
    {"sample", "Draw text from a trained checkpoint (any sampler; prefix or infill; top-p)",
     [](CLI::App& sub) -> Action {
       auto a = std::make_shared<SampleArgs>();
       sub.add_option("--checkpoint,-c", a->checkpoint, "checkpoint to sample from")
           ->required()
           ->check(CLI::ExistingFile);
       sub.add_option("--sampler", a->sampler,
                      "auto, md4 (ancestral), md4-cached, euler, analytic (tau-leaping), genmd4, "
                      "uniformization (exact simulation; --steps = intervals), ar "
                      "(auto: md4 for md4, genmd4 for genmd4, ar for ar, analytic otherwise)")
           ->check(CLI::IsMember({"auto", "md4", "md4-cached", "euler", "analytic", "genmd4",
                                  "uniformization", "ar"}))
           ->capture_default_str();
       sub.add_option("--steps", a->steps, "grid steps (network evaluations, less with caching)")
           ->check(number_in(1, 1 << 20))
           ->capture_default_str();
       sub.add_option("--grid", a->grid, "time grid: auto, sedd, uniform, cosine")
           ->check(CLI::IsMember({"auto", "sedd", "uniform", "cosine"}))
           ->capture_default_str();
       sub.add_option("--final", a->final_step, "after the last step: auto (sample), sample, argmax, none")
           ->check(CLI::IsMember({"auto", "sample", "argmax", "none"}))
           ->capture_default_str();
       sub.add_option("--top-p", a->top_p, "nucleus mass in (0, 1] (md4 kinds and ar)")
           ->check(number_in(0, 1, true))
           ->capture_default_str();
       sub.add_option("--top-k", a->top_k, "keep the k most likely tokens (0: off)")
           ->check(number_at_least(0))
           ->capture_default_str();
       add_parsed_option(sub, "seed", a->seed, "seed of every draw", std::to_string(a->seed));
       sub.add_option("--n", a->n, "number of samples")->check(number_in(1, 1 << 24))->capture_default_str();
       sub.add_option("--batch", a->batch, "samples per network batch")
           ->check(number_in(1, 65536))
           ->capture_default_str();
       sub.add_option("--length", a->length, "sample length (0: the training length)")
           ->check(number_at_least(0));
       sub.add_option("--prefix", a->prefix, "fixed text at the start of every sample");
       sub.add_option("--infill", a->infill,
                      "template: every character but --blank is fixed, blanks are generated");
       sub.add_option("--blank", a->blank, "the blank character of --infill")->capture_default_str();
       sub.add_option("--windows", a->windows,
                      "semi-autoregressive continuation: this many windows of --length, each "
                      "keeping the last length - stride tokens (grid samplers; --prefix is the prompt)")
           ->check(number_in(1, 1 << 20))
           ->capture_default_str();
       sub.add_option("--stride", a->stride, "new tokens per window after the first (--windows > 1)")
           ->check(number_at_least(0));
       sub.add_option("--out,-o", a->out, "write the samples as JSONL (text, tokens, nfe) to this file");
       sub.add_flag("--force", a->force, "overwrite an existing --out file");
       sub.add_flag("--raw", a->raw, "use the raw parameters instead of the EMA");
       sub.add_flag("--quiet,-q", a->quiet, "print only the samples");
       sub.add_option("--device", a->device,
                      "where the network runs: cpu (a CUDA build adds cuda); this build's backend: " +
                          std::string(kBackendName))
           ->capture_default_str();
       sub.add_option("--threads", a->threads, "OpenMP threads (0: default)")->check(number_at_least(0));
       add_max_memory_option(sub, a->max_memory);
       CLI::App* subp = &sub;
       return [a, subp] {
         a->given = given_options(*subp);
         return run_sample(*a);
       };
     }}};

}  // namespace
}  // namespace app
}  // namespace discdiff
