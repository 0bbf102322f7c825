// apps/train.cpp: `discdiff train`: train a diffusion language model (sedd, cedd, cedd-star,
// md4, genmd4) or the autoregressive baseline (ar) on the synthetic source or a text file, with
// JSONL metrics, a periodic validation bound, atomic checkpoints, and bit-identical resume.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <new>
#include <set>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "checkpoint.hpp"
#include "comm.hpp"
#include "command.hpp"
#include "corpus_loader.hpp"
#include "diffusion.hpp"
#include "memory_check.hpp"
#include "run_config.hpp"
#include "run_files.hpp"
#include "session.hpp"

namespace discdiff {
namespace app {
namespace {

struct TrainArgs {
  RunConfig cfg;
  std::string device = "cpu";
  std::string config_file;
  std::string resume;
  bool force = false;
  bool allow_data_change = false;
  bool quiet = false;
  std::int64_t stop_after = 0;
  std::string max_memory;  ///< --max-memory (empty: the memory available)
};

/// Resuming at checkpoint step `step`: metrics.jsonl keeps the lines up to that step and loses
/// those an interrupted session wrote after it (they are repeated from the checkpoint on) and a
/// line cut short by kill -9. The file is rewritten atomically. Returns the lines dropped.
std::int64_t truncate_metrics(const std::string& path, std::int64_t step) {
  std::ifstream in(path);
  if (!in) return 0;
  std::string line, kept;
  std::int64_t dropped = 0;
  while (std::getline(in, line)) {
    bool keep = false;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      keep = j.is_object() && (!j.contains("step") || j.at("step").get<std::int64_t>() <= step);
    } catch (const std::exception&) {
      keep = false;  // a partial line of a killed writer
    }
    if (keep) kept += line + '\n';
    else ++dropped;
  }
  if (in.bad()) throw std::runtime_error("reading the log file '" + path + "' failed");
  in.close();
  if (dropped > 0) write_file_atomic(path, kept);
  return dropped;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    case SIGPIPE: return "SIGPIPE";
    default: return "a signal";
  }
}

/// The JSON of a validation ("val") or final ("end") line. `bytes`: the UTF-8 bytes of the
/// decoded validation windows (0: not known, no bits-per-byte keys); bits per byte = bits per
/// token x tokens / bytes, as `discdiff eval` reports it.
nlohmann::json bound_json(const std::string& event, const TrainState& s, const BoundReport& b,
                          const std::vector<BoundReport>& all, double elapsed,
                          double tokens_per_byte, std::int64_t bytes) {
  const double ln2 = std::log(2.0);
  nlohmann::json j;
  j["event"] = event;
  j["step"] = s.step;
  j["tokens"] = s.tokens;
  j["bound"] = b.name;
  j["nats_per_token"] = b.est.nats_per_token();
  j["bpc"] = b.est.bits_per_token();
  j["bpc_se"] = b.est.bits_per_token_se();
  j["ppl"] = b.est.perplexity();
  if (bytes > 0) {
    j["bytes"] = bytes;
    j["bits_per_byte"] = b.est.bits_per_token() * tokens_per_byte;
    j["bits_per_byte_se"] = b.est.bits_per_token_se() * tokens_per_byte;
  }
  for (const auto& o : all)
    if (&o != &b) {
      j["bpc_" + o.name] = o.est.nats_per_token() / ln2;
      j["bpc_se_" + o.name] = o.est.nats_per_token_se() / ln2;
    }
  j["elapsed_s"] = elapsed;
  return j;
}

int run_train(TrainArgs& a, CLI::App& sub) {
  require_device(a.device);
  namespace fs = std::filesystem;
  // Data parallel (docs/distributed.md): under mpirun / srun every rank runs this function;
  // rank 0 alone takes the directory lock and writes the log and the checkpoint.
  Communicator& comm = world();
  const bool root = comm.is_root();
  if (!root) a.quiet = true;
  // A config file sets the options that the command line does not.
  std::set<std::string> given_names;  // options set by the command line or the config file
  a.cfg.visit([&](const char* name, const auto&, const char*) {
    if (sub.get_option("--" + dashed(name))->count() > 0) given_names.insert(name);
  });
  if (!a.config_file.empty()) {
    for (const auto& kv : RunConfig::read_config_file(a.config_file)) {
      if (given_names.count(kv.first)) continue;
      given_names.insert(kv.first);
      try {
        a.cfg.from_map({kv});
      } catch (const std::exception& e) {
        throw std::invalid_argument("config file '" + a.config_file + "': " + e.what());
      }
    }
  }
  RunConfig cfg = a.cfg;
  std::string cfg_data_path = cfg.data;  // where the data is read from (resume: maybe data.path)
  TrainState state;
  Corpus corpus;
  const bool resuming = !a.resume.empty();
  if (resuming) {
    Checkpoint ck = load_checkpoint(a.resume);
    // Options given on this command line must either be resumable overrides or equal the stored.
    const auto given = a.cfg.to_map(), stored = ck.cfg.to_map();
    std::string bad;
    a.cfg.visit([&](const char* name, const auto&, const char*) {
      if (!given_names.count(name)) return;
      if (RunConfig::resumable_override(name)) return;
      if (given.at(name) != stored.at(name))
        bad += "\n  --" + dashed(name) + " " + given.at(name) + " (the checkpoint has " +
               stored.at(name) + ")";
    });
    if (!bad.empty())
      throw std::invalid_argument("these options differ from the checkpoint being resumed and "
                                  "cannot change mid-run:" + bad);
    cfg = ck.cfg;
    a.cfg.visit([&](const char* name, const auto&, const char*) {
      if (given_names.count(name) && RunConfig::resumable_override(name)) {
        cfg.from_map({{name, given.at(name)}});
      }
    });
    cfg.validate();
    if (cfg.steps <= ck.state.step)
      throw std::invalid_argument("the checkpoint is at step " + std::to_string(ck.state.step) +
                                  ", which is not before --steps " + std::to_string(cfg.steps) +
                                  " (pass a larger --steps to train further)");
    // The data: the stored path as given (relative to the working directory), else the absolute
    // path stored beside it; its size and digest must be the stored ones.
    std::string data_path = cfg.data;
    const auto abs_it = ck.meta.find("data.path");
    if (cfg.data != "synthetic" && !fs::exists(data_path) && abs_it != ck.meta.end() &&
        fs::exists(abs_it->second))
      data_path = abs_it->second;
    const auto bytes_it = ck.meta.find("data.bytes"), digest_it = ck.meta.find("data.fnv1a64");
    if (cfg.data != "synthetic" && bytes_it != ck.meta.end() && digest_it != ck.meta.end()) {
      const DataFingerprint now = data_fingerprint(data_path);
      if ((std::to_string(now.bytes) != bytes_it->second || now.fnv1a64 != digest_it->second) &&
          !a.allow_data_change)
        throw std::invalid_argument(
            "the data file '" + data_path + "' is not the one the checkpoint was trained on (" +
            bytes_it->second + " bytes, fnv1a64 " + digest_it->second + "; now " +
            std::to_string(now.bytes) + " bytes, fnv1a64 " + now.fnv1a64 +
            "): pass --allow-data-change to resume on it anyway");
    }
    corpus = load_corpus(cfg, &ck.tokenizer, data_path == cfg.data ? "" : data_path);
    cfg_data_path = data_path;
    state = std::move(ck.state);
  } else {
    cfg.resolve_auto();
    cfg.validate();
    corpus = load_corpus(cfg);
  }
  set_threads(cfg.threads);
  const Problem p(cfg, corpus.tokenizer.num_regular());
  // Memory: refuse before allocating what cannot fit (a resumed state is already in memory).
  MemoryNeed need;
  if (!resuming)
    p.add_param_memory(need, 4 + (cfg.ema > 0 ? 1 : 0), "parameters, gradients, AdamW moments" +
                                                            std::string(cfg.ema > 0 ? " and EMA" : ""));
  p.add_param_memory(need, 2, "validation network");
  p.add_pass_memory(need, cfg.batch, cfg.seq_len, true, "training");
  p.add_eval_memory(need, std::min<std::int64_t>(cfg.val_batch, cfg.val_sequences), cfg.seq_len,
                    "validation");
  p.add_gemm_memory(need, std::max<std::int64_t>(cfg.batch, std::min<std::int64_t>(cfg.val_batch, cfg.val_sequences)),
                    cfg.seq_len, current_threads());
  require_memory(need, a.max_memory,
                 "lower --batch, --val-batch or --seq-len, or the network's size");
  if (!resuming) state = TrainState::fresh(p);
  if (root && cfg.warmup > cfg.steps)
    std::cerr << "discdiff train: warning: --warmup " << cfg.warmup << " exceeds --steps "
              << cfg.steps << ": the learning rate rises for the whole run and peaks at "
              << fmt(cfg.lr * double(cfg.steps) / double(std::max<std::int64_t>(1, cfg.warmup)), 6)
              << ", never reaching --lr " << fmt(cfg.lr, 6) << "\n";
  if (comm.size() > 1) {
    // Every rank must train the same problem on the same data from the same state.
    std::string text;
    for (const auto& kv : cfg.to_map()) text += kv.first + "=" + kv.second + "\n";
    text += "step=" + std::to_string(state.step) + "\ntrain_tokens=" +
            std::to_string(corpus.train.size()) + "\nvocab=" +
            std::to_string(corpus.tokenizer.num_regular()) + "\n";
    require_same_on_all_ranks(comm, text, "the configuration (options, data, resumed step)");
    if (cfg.batch < comm.size())
      throw std::invalid_argument("--batch " + std::to_string(cfg.batch) + " is smaller than the " +
                                  std::to_string(comm.size()) + " ranks: each rank needs a row");
  }

  if (root) fs::create_directories(cfg.out);
  // One run per directory: a second `train --out` of the same directory stops here.
  std::unique_ptr<DirLock> lock;
  if (root) lock = std::make_unique<DirLock>(cfg.out, "discdiff train");
  const std::string ckpt = (fs::path(cfg.out) / "checkpoint.safetensors").string();
  const std::string logp = (fs::path(cfg.out) / "metrics.jsonl").string();
  if (root) for (const auto& name : remove_stale_temps(cfg.out))
    if (!a.quiet)
      std::cerr << "discdiff train: removed '" << name << "' (a temporary file of a killed writer)\n";
  // Every output is checked before the first step, not when the first write fails.
  if (root) require_writable(ckpt);
  if (root && !resuming && !a.force && fs::exists(ckpt))
    throw std::invalid_argument("'" + ckpt + "' exists: continue it with --resume " + ckpt +
                                ", or pass --force to start over (the old run is overwritten)");
  if (root) {
    const double ckpt_bytes = 4.0 * double(state.net->num_params()) * (state.ema ? 4 : 3) + (1 << 20);
    std::error_code ec;
    const auto sp = fs::space(cfg.out, ec);
    if (!ec && double(sp.available) < ckpt_bytes)
      throw std::runtime_error("'" + cfg.out + "' has " + std::to_string(sp.available >> 20) +
                               " MiB free; a checkpoint needs about " +
                               std::to_string(std::int64_t(ckpt_bytes) >> 20) + " MiB");
  }
  if (root && !resuming && a.force) {
    // --force starts over: the old run's checkpoint goes now, so that a new run that fails
    // before its first checkpoint does not leave the old checkpoint beside the new metrics.
    std::error_code ec;
    if (fs::is_regular_file(ckpt, ec) && !fs::remove(ckpt, ec))
      throw std::runtime_error("cannot remove the old checkpoint '" + ckpt + "': " + ec.message());
  }
  if (root && resuming) {
    const std::int64_t dropped = truncate_metrics(logp, state.step);
    if (dropped > 0 && !a.quiet)
      std::cerr << "discdiff train: " << logp << ": dropped " << dropped
                << " line(s) written after the checkpoint's step " << state.step << "\n";
  }
  // Ranks other than 0 write their (identical) log lines nowhere.
  JsonlLog log(root ? logp : "/dev/null", resuming);
  GradientAllReduce all_reduce(comm);
  // The other ranks start when rank 0 has checked the run directory (an error there ends the
  // job before the first collective of the loop).
  comm.barrier();
  const int L = cfg.seq_len, B = cfg.batch;
  if (corpus.train.size() < std::size_t(L))
    throw std::invalid_argument("the training split has " + std::to_string(corpus.train.size()) +
                                " tokens, fewer than --seq-len " + std::to_string(L));
  std::int64_t nval = cfg.val_sequences;
  const std::vector<int> val = eval_sequences(corpus.valid, L, nval, "validation");
  if (nval < 2)
    throw std::invalid_argument("the validation split holds only " + std::to_string(nval) +
                                " window of " + std::to_string(L) +
                                " tokens; a standard error needs at least 2 (lower --seq-len)");
  if (nval < cfg.val_sequences && !a.quiet)
    std::cerr << "discdiff train: note: the validation split holds " << nval << " windows of " << L
              << " tokens, fewer than --val-sequences " << cfg.val_sequences << "\n";
  const double h_win = corpus.window_entropy_bits(L), h_rate = corpus.entropy_rate_bits();
  // Bits per byte of validation = bits per token x tokens / bytes, the bytes being the UTF-8
  // bytes of the decoded validation windows (as `discdiff eval` counts them; docs/usage.md).
  const std::int64_t val_bytes = std::int64_t(corpus.tokenizer.decode(val).size());
  const double val_tokens_per_byte = val_bytes > 0 ? double(val.size()) / double(val_bytes) : 0.0;

  std::map<std::string, std::string> extra;
  extra["data.description"] = corpus.description;
  if (cfg.data != "synthetic") {
    const DataFingerprint fp = data_fingerprint(cfg_data_path);
    extra["data.path"] = fs::absolute(cfg_data_path).lexically_normal().string();
    extra["data.bytes"] = std::to_string(fp.bytes);
    extra["data.fnv1a64"] = fp.fnv1a64;
  }
  if (corpus.source) {
    extra["data.entropy_rate_bpc"] = fmt(h_rate, 10);
    extra["data.window_entropy_bpc"] = fmt(h_win, 10);
  }
  {
    nlohmann::json j;
    j["event"] = resuming ? "resume" : "start";
    j["run"] = cfg.run_name;
    j["objective"] = cfg.objective;
    j["generator"] = cfg.generator;
    j["schedule"] = cfg.schedule;
    j["params"] = state.net->num_params();
    j["seq_len"] = L;
    j["batch"] = B;
    j["steps"] = cfg.steps;
    j["step"] = state.step;
    j["threads"] = current_threads();
    j["ranks"] = comm.size();
    j["comm"] = comm.name();
    j["device"] = a.device;
    j["backend"] = kBackendName;
    j["data"] = corpus.description;
    j["memory_estimate_bytes"] = need.total();
    j["config"] = cfg.to_map();
    if (corpus.source) {
      j["entropy_rate_bpc"] = h_rate;
      j["window_entropy_bpc"] = h_win;
    }
    log.write(j);
  }
  if (!a.quiet) {
    std::cout << "discdiff train: " << p.describe() << "\n  network " << state.net->num_params()
              << " parameters (" << cfg.n_layer << " layers, d " << cfg.d_model << ", " << cfg.n_head
              << " heads), L " << L << ", batch " << B << ", " << current_threads() << " threads"
              << (comm.size() > 1 ? " x " + std::to_string(comm.size()) + " ranks (" + comm.name() + ")" : "")
              << "\n  data "
              << corpus.description << "\n";
    if (corpus.source)
      std::cout << "  source entropy: rate " << fmt(h_rate) << " bits/token; exact per token of an "
                << L << "-window " << fmt(h_win) << " bits (the best possible bound)\n";
    if (resuming) std::cout << "  resuming at step " << state.step << " of " << cfg.steps << "\n";
    std::cout << "  logging to " << logp << ", checkpoints to " << ckpt << std::endl;
  }

  Net evalnet(p.model_config());
  StepScratch scratch;
  EvalOptions eo;
  eo.batch = bound_batch(cfg.val_batch, nval);  // eval's rule: at least 2 batches
  eo.seed = cfg.seed ^ kValSeedOffset;
  eo.comm = &comm;  // the validation batches are split over the ranks
  std::vector<BoundReport> last_val;
  std::int64_t saved_step = resuming ? state.step : -1;
  // A failure during training (a diverged model) stops the run: an "error" line in the log, the
  // last checkpoint (written before the failure) is kept as it is.
  auto fail = [&](std::int64_t step, const std::string& why) {
    nlohmann::json j;
    j["event"] = "error";
    j["step"] = step;
    j["message"] = why;
    log.write(j);
    throw std::runtime_error(why + "; " +
                             (saved_step >= 0 ? "the checkpoint of step " + std::to_string(saved_step) +
                                                    " is kept"
                                              : std::string("no checkpoint was written")));
  };
  auto validate_now = [&](double elapsed) {
    evalnet.set_params(state.ema ? state.ema->shadow() : state.net->params());
    last_val = evaluate_bounds(p, evalnet, state.w_raw, val, nval, L, eo);
    for (const auto& b : last_val) {
      try {
        require_finite_estimate("validation " + b.name + " at step " + std::to_string(state.step) +
                                    " (" + (state.ema ? "EMA" : "raw") + " weights)",
                                b.est);
      } catch (const std::exception& e) {
        fail(state.step, std::string(e.what()) + "; lower --lr");
      }
    }
    auto j = bound_json("val", state, last_val.front(), last_val, elapsed, val_tokens_per_byte,
                        val_bytes);
    j["weights"] = state.ema ? "ema" : "raw";
    if (corpus.source) j["window_entropy_bpc"] = h_win;
    log.write(j);
  };
  auto save = [&]() {
    if (root) save_checkpoint(ckpt, cfg, corpus.tokenizer, state, extra);
    saved_step = state.step;
  };

  install_stop_handlers();
  Progress progress(!a.quiet);
  const auto t_session = std::chrono::steady_clock::now();
  const double elapsed0 = state.elapsed_s;
  const std::int64_t first = state.step + 1;
  std::vector<int> x0(static_cast<std::size_t>(B) * L);
  double loss_ema = std::nan(""), tps = 0;
  std::int64_t session_steps = 0;
  int exit_code = 0;
  for (std::int64_t step = first; step <= cfg.steps; ++step) {
    const auto t_step = std::chrono::steady_clock::now();
    // The whole batch's crops on every rank (cheap); train_step takes this rank's rows.
    data::random_crops(corpus.train, B, L, cfg.seed, std::uint64_t(step), x0.data());
    StepResult r;
    const double ar_s0 = all_reduce.seconds(), ar_w0 = all_reduce.wait_seconds();
    try {
      r = train_step(p, state, scratch, x0, B, L, step, &all_reduce);
    } catch (const std::runtime_error& e) {
      fail(step, e.what());
    } catch (const std::bad_alloc&) {
      fail(step, "out of memory (an allocation failed during the step): lower --batch or --seq-len");
    }
    const double dt = seconds_since(t_step);
    state.elapsed_s = elapsed0 + seconds_since(t_session);
    ++session_steps;
    tps = double(B) * L * double(session_steps) / std::max(1e-9, seconds_since(t_session));
    loss_ema = std::isnan(loss_ema) ? r.loss_per_token : 0.95 * loss_ema + 0.05 * r.loss_per_token;
    if (step % cfg.log_every == 0 || step == cfg.steps || step == first) {
      nlohmann::json j;
      j["event"] = "train";
      j["step"] = step;
      j["tokens"] = state.tokens;
      j["loss_nats_per_token"] = r.loss_per_token;
      j["loss_bits_per_token"] = r.loss_per_token / std::log(2.0);
      j["loss_nats"] = r.loss_per_token * L;  // per sequence
      j["lr"] = r.lr;
      j["grad_norm"] = r.grad_norm;
      j["tokens_per_s"] = tps;
      j["step_s"] = dt;
      if (comm.size() > 1) {
        j["allreduce_s"] = all_reduce.seconds() - ar_s0;
        j["allreduce_wait_s"] = all_reduce.wait_seconds() - ar_w0;
      }
      j["elapsed_s"] = state.elapsed_s;
      log.write(j);
    }
    const bool last = step == cfg.steps;
    if ((cfg.val_every > 0 && step % cfg.val_every == 0) || last) {
      validate_now(state.elapsed_s);
      const auto& v = last_val.front();
      const std::string line = "step " + std::to_string(step) + "/" + std::to_string(cfg.steps) +
                               "  val " + v.name + " " + fmt(v.est.bits_per_token()) + " +- " +
                               fmt(v.est.bits_per_token_se()) + " bits/token" +
                               (val_bytes > 0 ? ", " + fmt(v.est.bits_per_token() * val_tokens_per_byte) +
                                                    " +- " +
                                                    fmt(v.est.bits_per_token_se() * val_tokens_per_byte) +
                                                    " bits/byte"
                                              : std::string()) +
                               (corpus.source ? " (source " + fmt(h_win) + ")" : "");
      progress.clear();
      if (!a.quiet) std::cout << "  " << line << std::endl;
    }
    if ((cfg.ckpt_every > 0 && step % cfg.ckpt_every == 0) || last) save();
    const double eta_s = double(cfg.steps - step) * seconds_since(t_session) / double(session_steps);
    progress.show("[" + std::to_string(step) + "/" + std::to_string(cfg.steps) + "] loss " +
                  fmt(loss_ema / std::log(2.0), 3) + " bits/token  " + fmt(tps, 0) + " tok/s  ETA " +
                  format_duration(eta_s));
    // A signal seen by any rank stops every rank at the same step.
    const int sig = int(comm.max(stop_signal().load()));
    const bool stop_now = a.stop_after > 0 && session_steps >= a.stop_after && !last;
    if ((sig != 0 || stop_now) && !last) {
      save();
      progress.clear();
      nlohmann::json j;
      j["event"] = "interrupted";
      j["step"] = step;
      j["signal"] = sig;
      log.write(j);
      if (root) std::cerr << "discdiff train: "
                << (sig ? std::string(signal_name(sig)) + " received" : std::string("--stop-after reached"))
                << "; checkpoint at step " << step << " written to " << ckpt
                << "\n  continue with: discdiff train --resume " << ckpt << "\n";
      exit_code = sig ? 128 + sig : 0;
      return exit_code;
    }
  }
  progress.clear();
  nlohmann::json j = bound_json("end", state, last_val.front(), last_val, state.elapsed_s,
                                val_tokens_per_byte, val_bytes);
  if (peak_rss_bytes() > 0) j["peak_rss_bytes"] = peak_rss_bytes();
  if (corpus.source) {
    j["entropy_rate_bpc"] = h_rate;
    j["window_entropy_bpc"] = h_win;
  }
  log.write(j);
  if (!a.quiet) {
    const auto& v = last_val.front();
    std::cout << "done: " << cfg.steps << " steps in " << format_duration(state.elapsed_s)
              << "; validation " << v.name << " = " << fmt(v.est.bits_per_token()) << " +- "
              << fmt(v.est.bits_per_token_se()) << " bits/token";
    if (val_bytes > 0) std::cout << ", " << fmt(v.est.bits_per_token() * val_tokens_per_byte) << " bits/byte";
    std::cout << " (perplexity " << fmt(v.est.perplexity(), 3) << ")";
    if (corpus.source)
      std::cout << "; source " << fmt(h_win) << " bits/token, gap "
                << fmt(100.0 * (v.est.bits_per_token() / h_win - 1.0), 1) << "%";
    std::cout << "\n  checkpoint: " << ckpt << std::endl;
  }
  return exit_code;
}

const RegisterCommand reg{
    {"train",
     "Train a diffusion language model (sedd, cedd, cedd-star, md4, genmd4) or the autoregressive "
     "baseline (ar)",
     [](CLI::App& sub) -> Action {
       auto a = std::make_shared<TrainArgs>();
       sub.add_option("--config", a->config_file,
                      "read options from a file of 'key = value' lines (TOML/INI subset; keys are the "
                      "long option names; the command line wins)")
           ->check(CLI::ExistingFile);
       a->cfg.add_options(sub);
       sub.add_option("--resume", a->resume,
                      "continue from this checkpoint; the result is bit-identical to an "
                      "uninterrupted run with the same seed and --threads")
           ->check(CLI::ExistingFile);
       sub.add_option("--device", a->device,
                      "where the network runs: cpu (a CUDA build adds cuda); this build's backend: " +
                          std::string(kBackendName))
           ->capture_default_str();
       sub.add_flag("--force", a->force, "start over even if --out already holds a checkpoint");
       sub.add_flag("--allow-data-change", a->allow_data_change,
                    "resume even if the data file's size or digest differs from the checkpoint's");
       sub.add_flag("--quiet,-q", a->quiet, "no progress display and no summary");
       sub.add_option("--stop-after", a->stop_after,
                      "checkpoint and stop after this many steps of this session (0: off)")
           ->check(number_at_least(0));
       add_max_memory_option(sub, a->max_memory);
       CLI::App* subp = &sub;
       return [a, subp] { return run_train(*a, *subp); };
     }}};

}  // namespace
}  // namespace app
}  // namespace discdiff
