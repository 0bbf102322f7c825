// apps/run_config.hpp: every option of a training run (`discdiff train`), in one struct that is
// registered on the command line, read from a config file (CLI11 TOML/INI), validated with clear
// messages, and stored in checkpoints as string metadata ("cfg.<name>" -> value).
//
// One field table (RunConfig::visit) drives all four uses, so an option added there is on the
// command line, in --help, in config files and in checkpoints at once. Command-line names are
// the field names with '_' written as '-' (`val_every` -> `--val-every`).
#pragma once

#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "objective.hpp"

#include <CLI/CLI.hpp>

namespace discdiff {
namespace app {

/// Throws std::invalid_argument("option --NAME = VALUE: WHY").
template <class V>
[[noreturn]] inline void bad_option(const std::string& name, const V& value, const std::string& why) {
  std::ostringstream s;
  s << "option --" << name << " = " << value << ": " << why;
  throw std::invalid_argument(s.str());
}

inline std::string dashed(std::string s) {
  for (char& c : s)
    if (c == '_') c = '-';
  return s;
}

/// True when `v` is one of `allowed`.
inline bool one_of(const std::string& v, const std::vector<std::string>& allowed) {
  for (const auto& a : allowed)
    if (v == a) return true;
  return false;
}
inline std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

/// Reads `text` as a value of option --NAME of type V: the one rule of the command line, config
/// files and checkpoints. Integers: decimal digits (a leading '-' for signed types only) within
/// the type's range; reals: a finite number; strings: as they are. Anything else throws
/// std::invalid_argument("option --NAME = TEXT: WHY").
template <class V>
V parse_option_value(const std::string& name, const std::string& text) {
  if constexpr (std::is_same<V, std::string>::value) {
    return text;
  } else {
    const char* b = text.data();
    const char* e = b + text.size();
    V v{};
    const auto r = std::from_chars(b, e, v);
    const bool ok = !text.empty() && r.ec == std::errc() && r.ptr == e;
    if constexpr (std::is_integral<V>::value) {
      if (ok) return v;
      std::ostringstream why;
      why << "must be an integer in [" << +std::numeric_limits<V>::min() << ", "
          << +std::numeric_limits<V>::max() << "]";
      bad_option(dashed(name), text.empty() ? "''" : text, why.str());
    } else {
      if (ok && std::isfinite(v)) return v;
      bad_option(dashed(name), text.empty() ? "''" : text, "must be a finite number");
    }
  }
}

/// Adds --NAME to `app`, read by parse_option_value (CLI11's own conversion wraps negative
/// numbers into unsigned options and caps large ones); the help shows `shown` as the default.
template <class V>
CLI::Option* add_parsed_option(CLI::App& app, const std::string& name, V& ref,
                               const std::string& desc, const std::string& shown) {
  CLI::Option* o = app.add_option_function<std::string>(
      "--" + dashed(name),
      [&ref, name](const std::string& text) {
        try {
          ref = parse_option_value<V>(name, text);
        } catch (const std::invalid_argument& e) {
          throw CLI::ValidationError(e.what());
        }
      },
      desc);
  o->default_str(shown);
  return o;
}

namespace detail_app {
inline std::string number_text(double v) {
  std::ostringstream s;
  s.precision(15);
  s << v;
  return s.str();
}
inline bool read_number(const std::string& text, double& v) {
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  return !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size() && std::isfinite(v);
}
}  // namespace detail_app

/// A CLI11 check that an option's number lies in [lo, hi] ((lo, hi] with lo_open, [lo, hi) with
/// hi_open); the message says so in interval notation ("--top-p: must lie in (0, 1], not 0").
inline CLI::Validator number_in(double lo, double hi, bool lo_open = false, bool hi_open = false) {
  const std::string range = std::string(lo_open ? "(" : "[") + detail_app::number_text(lo) + ", " +
                            detail_app::number_text(hi) + (hi_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double v = 0;
        if (!detail_app::read_number(text, v)) return "'" + text + "' is not a number";
        if (v < lo || v > hi || (lo_open && v == lo) || (hi_open && v == hi))
          return "must lie in " + range + ", not " + text;
        return std::string();
      },
      range);
}

/// A CLI11 check that an option's number is >= lo ("--threads: must be >= 0, not -1").
inline CLI::Validator number_at_least(double lo) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double v = 0;
        if (!detail_app::read_number(text, v)) return "'" + text + "' is not a number";
        if (v < lo) return "must be >= " + detail_app::number_text(lo) + ", not " + text;
        return std::string();
      },
      ">= " + detail_app::number_text(lo));
}

/// The help line of --objective (every registered objective).
inline const char* objective_help() {
  static const std::string h = "training objective: " + objective_names();
  return h.c_str();
}

struct RunConfig {
  // ---- what is trained
  std::string objective = "md4";
  std::string generator = "auto";
  double p_m = 0.95;
  std::string schedule = "auto";
  double eta = 1e-4;
  double sched_d = 1e-3;
  double poly_k = 2.0;
  double sigma_min = 1e-4;
  double sigma_max = 20.0;
  std::string time_sampling = "antithetic";
  double t_eps = 1e-4;
  // ---- data
  std::string data = "synthetic";
  std::string tokenizer = "auto";
  int markov_order = 1;
  int markov_branching = 3;
  double markov_concentration = 1.0;
  double markov_smoothing = 0.0;
  std::uint64_t markov_seed = 1;
  std::int64_t synthetic_tokens = 2000000;
  // ---- network
  int n_layer = 4;
  int n_head = 4;
  int d_model = 128;
  int d_ff = 0;
  int cond_dim = 64;
  int seq_len = 64;
  std::string mlp = "gelu";
  std::string norm = "layernorm";
  double dropout = 0.0;
  int time_cond = 1;
  std::string block = "adaln";
  // ---- optimisation
  int batch = 32;
  std::int64_t steps = 2000;
  double lr = 1e-3;
  std::int64_t warmup = 100;
  std::string lr_schedule = "cosine";
  double min_lr_ratio = 0.1;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.98;
  double clip = 1.0;
  double ema = 0.999;
  double w_lr = 1e-2;
  std::uint64_t seed = 0;
  // ---- validation, checkpoints, logs
  std::int64_t val_every = 250;
  int val_sequences = 256;
  int val_batch = 64;
  std::int64_t ckpt_every = 500;
  std::int64_t log_every = 10;
  std::string out = "run";
  std::string run_name = "";
  int threads = 0;

  /// Calls f(name, member, description) for every field, in a fixed order.
  template <class F>
  void visit(F&& f) {
    f("objective", objective, objective_help());
    f("generator", generator, "forward process: absorbing, uniform, roulette (auto: absorbing; genmd4: "
                              "state-dependent masking)");
    f("p_m", p_m, "roulette: probability of the mask branch, in (0, 1)");
    f("schedule", schedule, "noise schedule: auto, linear, cosine, poly, geometric, loglinear, "
                            "roulette-loglinear, mdlm-cosine, mdlm-cosine2, mdlm-linear");
    f("eta", eta, "linear/cosine/poly/genmd4: the shift eta in (0, 1/2)");
    f("sched_d", sched_d, "loglinear/roulette-loglinear/mdlm-cosine*: the floor d in (0, 1)");
    f("poly_k", poly_k, "poly: exponent K > 0");
    f("sigma_min", sigma_min, "geometric/mdlm-linear: sigma_min > 0");
    f("sigma_max", sigma_max, "geometric/mdlm-linear: sigma_max > sigma_min");
    f("time_sampling", time_sampling, "time draws per batch: antithetic, stratified, iid");
    f("t_eps", t_eps, "sedd/cedd: times lie in [t_eps, 1] (the bounds' cut-off), in (0, 1)");
    f("data", data, "training text: 'synthetic' (built-in Markov source) or a text file (.xz read "
                    "through liblzma; a .tar.xz: its files joined)");
    f("tokenizer", tokenizer, "text tokenizer: auto (text8 if the text is a-z and space, else "
                              "chars), text8, chars, bytes, gpt2:DIR (GPT-2 byte-level BPE from "
                              "DIR/vocab.json + DIR/merges.txt, or OpenAI's encoder.json + "
                              "vocab.bpe), spm:FILE (a SentencePiece .model); "
                              "the checkpoint stores the whole tokenizer");
    f("markov_order", markov_order, "synthetic source: Markov order k in 1..3");
    f("markov_branching", markov_branching, "synthetic source: successors per context");
    f("markov_concentration", markov_concentration, "synthetic source: weight skew (> 0)");
    f("markov_smoothing", markov_smoothing, "synthetic source: uniform mixing in [0, 1)");
    f("markov_seed", markov_seed, "synthetic source: seed of the transition table");
    f("synthetic_tokens", synthetic_tokens, "synthetic source: training tokens generated");
    f("n_layer", n_layer, "transformer blocks");
    f("n_head", n_head, "attention heads");
    f("d_model", d_model, "hidden width");
    f("d_ff", d_ff, "MLP width (0: 4 d_model)");
    f("cond_dim", cond_dim, "width of the time conditioning vector");
    f("seq_len", seq_len, "training sequence length L");
    f("mlp", mlp, "MLP type: gelu, swiglu, geglu");
    f("norm", norm, "normalisation: layernorm, rmsnorm");
    f("dropout", dropout, "dropout probability in [0, 1)");
    f("time_cond", time_cond, "1: condition the network on the noise level; 0: a time-independent "
                              "network (absorbing diffusion needs none; lets md4-cached reuse outputs)");
    f("block", block, "diffusion blocks: adaln (adaLN-zero; with --time-cond 0 conditioned on the "
                      "constant noise level 0, as MDLM) or plain (pre-norm blocks without "
                      "modulation, needs --time-cond 0); the ar objective always uses plain");
    f("batch", batch, "sequences per step");
    f("steps", steps, "optimiser steps of the whole run");
    f("lr", lr, "peak learning rate");
    f("warmup", warmup, "linear warm-up steps");
    f("lr_schedule", lr_schedule, "after warm-up: constant or cosine");
    f("min_lr_ratio", min_lr_ratio, "cosine: final lr / peak lr, in [0, 1]");
    f("weight_decay", weight_decay, "AdamW decoupled weight decay");
    f("beta1", beta1, "AdamW beta1");
    f("beta2", beta2, "AdamW beta2");
    f("clip", clip, "gradient clipping by global norm (0: off)");
    f("ema", ema, "EMA decay of the parameters (0: off; with the SEDD warm-up)");
    f("w_lr", w_lr, "genmd4: learning rate of the masking-schedule parameters w");
    f("seed", seed, "seed of every random draw (data crops, times, noise, init, dropout)");
    f("val_every", val_every, "validation bound every N steps (0: only at the end)");
    f("val_sequences", val_sequences, "validation sequences per bound estimate");
    f("val_batch", val_batch, "validation batch size");
    f("ckpt_every", ckpt_every, "checkpoint every N steps (0: only at the end)");
    f("log_every", log_every, "write a train line to metrics.jsonl every N steps");
    f("out", out, "output directory (checkpoint.safetensors, metrics.jsonl)");
    f("run_name", run_name, "name of the run in the logs (default: objective-generator-schedule)");
    f("threads", threads, "OpenMP threads (0: the OpenMP default)");
  }
  template <class F>
  void visit(F&& f) const {
    const_cast<RunConfig*>(this)->visit(std::forward<F>(f));
  }

  /// Fields that may differ between a checkpoint and the command that resumes it.
  static bool resumable_override(const std::string& name) {
    return one_of(name, {"steps", "val_every", "ckpt_every", "log_every", "out", "threads",
                         "run_name", "val_sequences", "val_batch"});
  }

  /// Registers every field as --name on `app` (with its current value as the default), read by
  /// parse_option_value as config files and checkpoints are.
  void add_options(CLI::App& app) {
    const auto shown = to_map();
    visit([&](const char* name, auto& ref, const char* desc) {
      add_parsed_option(app, name, ref, desc, shown.at(name));
    });
  }

  std::map<std::string, std::string> to_map() const {
    std::map<std::string, std::string> m;
    visit([&](const char* name, const auto& ref, const char*) {
      using V = std::decay_t<decltype(ref)>;
      if constexpr (std::is_floating_point<V>::value) {
        char buf[64];  // shortest text that reads back to the same double
        const auto r = std::to_chars(buf, buf + sizeof buf, ref);
        m[name] = std::string(buf, r.ptr);
      } else {
        std::ostringstream s;
        s << ref;
        m[name] = s.str();
      }
    });
    return m;
  }

  /// Reads fields from a map written by to_map; a missing key keeps the current value, a
  /// malformed one throws.
  void from_map(const std::map<std::string, std::string>& m, const std::string& key_prefix = "") {
    visit([&](const char* name, auto& ref, const char*) {
      auto it = m.find(name);
      if (it == m.end()) return;
      using V = std::decay_t<decltype(ref)>;
      try {
        ref = parse_option_value<V>(name, it->second);
      } catch (const std::invalid_argument& e) {
        if (key_prefix.empty()) throw;
        throw std::invalid_argument("'" + key_prefix + name + "': " + e.what());
      }
    });
  }

  /// Reads a config file of `key = value` lines (the TOML/INI subset: '#' or ';' comments,
  /// [section] lines ignored, values optionally in double or single quotes; keys are option names
  /// with '-' or '_'). Throws std::invalid_argument naming the file, the line and the problem
  /// (unreadable file, a line without '=', an unknown option, a repeated key).
  static std::map<std::string, std::string> read_config_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::invalid_argument("cannot read the config file '" + path + "'");
    std::map<std::string, std::string> known;
    RunConfig{}.visit([&](const char* name, const auto&, const char*) { known[name] = ""; });
    std::map<std::string, std::string> out;
    std::string line;
    int no = 0;
    auto trim = [](std::string x) {
      const auto a = x.find_first_not_of(" \t\r");
      if (a == std::string::npos) return std::string();
      const auto b = x.find_last_not_of(" \t\r");
      return x.substr(a, b - a + 1);
    };
    while (std::getline(in, line)) {
      ++no;
      const std::string where = path + ":" + std::to_string(no) + ": ";
      for (unsigned char ch : line)  // never echo binary junk to the terminal
        if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", ch);
          throw std::invalid_argument(where + "holds the control byte " + hex +
                                      ": not a text file of 'key = value' lines");
        }
      std::string t = trim(line);
      if (t.empty() || t[0] == '#' || t[0] == ';' || t[0] == '[') continue;
      const auto eq = t.find('=');
      if (eq == std::string::npos) throw std::invalid_argument(where + "expected 'key = value'");
      std::string key = trim(t.substr(0, eq)), value = trim(t.substr(eq + 1));
      for (char& c : key)
        if (c == '-') c = '_';
      if (!known.count(key))
        throw std::invalid_argument(where + "unknown option '" +
                                    (key.size() > 40 ? key.substr(0, 40) + "..." : key) + "'");
      if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0]) {
        value = value.substr(1, value.size() - 2);
      } else {
        const auto hash = value.find(" #");
        if (hash != std::string::npos) value = trim(value.substr(0, hash));
      }
      if (out.count(key)) throw std::invalid_argument(where + "option '" + key + "' is given twice");
      out[key] = value;
    }
    return out;
  }

  std::string default_run_name() const { return objective + "-" + generator + "-" + schedule; }

  /// Resolves "auto" choices (generator, schedule) for the objective.
  void resolve_auto() {
    const ObjectiveInfo* o = find_objective(objective);
    if (o == nullptr) return;  // validate() names the bad objective
    if (generator == "auto") generator = o->generators.front();
    if (o->causal) generator = "none", schedule = "none";
    if (o->per_token_noise) schedule = "genpoly";
    if (schedule == "auto") {
      if (o->loss == LossKind::md4) schedule = "linear";
      else if (generator == "absorbing") schedule = "loglinear";
      else if (generator == "roulette") schedule = "roulette-loglinear";
      else schedule = "geometric";
    }
    if (d_ff == 0) d_ff = 4 * d_model;
    if (run_name.empty()) run_name = default_run_name();
  }

  /// Throws std::invalid_argument naming the first bad option (after resolve_auto()).
  void validate() const {
    const ObjectiveInfo* o = find_objective(objective);
    if (o == nullptr) bad_option("objective", objective, "must be one of " + objective_names());
    if (!one_of(generator, o->generators))
      bad_option("generator", generator,
                 o->generators.size() == 1
                     ? objective + " needs the " + o->generators.front() + " generator (leave --generator auto)"
                     : "must be one of " + join(o->generators) + " for " + objective);
    if (generator == "roulette" && !(p_m > 0 && p_m < 1)) bad_option("p-m", p_m, "must lie in (0, 1)");
    const std::vector<std::string> scheds = {"linear", "cosine", "poly", "geometric", "loglinear",
                                             "roulette-loglinear", "mdlm-cosine", "mdlm-cosine2",
                                             "mdlm-linear"};
    if (!o->causal && !o->per_token_noise && !one_of(schedule, scheds))
      bad_option("schedule", schedule, "must be auto or one of " + join(scheds));
    if (schedule == "roulette-loglinear" && generator != "roulette")
      bad_option("schedule", schedule, "is the schedule of the roulette generator");
    if (!(eta > 0 && eta < 0.5)) bad_option("eta", eta, "must lie in (0, 0.5)");
    if (!(sched_d > 0 && sched_d < 1)) bad_option("sched-d", sched_d, "must lie in (0, 1)");
    if (!(poly_k > 0) || !std::isfinite(poly_k)) bad_option("poly-k", poly_k, "must be > 0");
    if (!(sigma_min > 0)) bad_option("sigma-min", sigma_min, "must be > 0");
    if (!(sigma_max > sigma_min) || !std::isfinite(sigma_max))
      bad_option("sigma-max", sigma_max, "must be finite and > sigma-min");
    if (!one_of(time_sampling, {"antithetic", "stratified", "iid"}))
      bad_option("time-sampling", time_sampling, "must be antithetic, stratified or iid");
    if (!(t_eps > 0 && t_eps < 1)) bad_option("t-eps", t_eps, "must lie in (0, 1)");
    if (!one_of(tokenizer, {"auto", "text8", "chars", "bytes"}) &&
        !((tokenizer.rfind("gpt2:", 0) == 0 || tokenizer.rfind("spm:", 0) == 0) &&
          tokenizer.find(':') + 1 < tokenizer.size()))
      bad_option("tokenizer", tokenizer, "must be auto, text8, chars, bytes, gpt2:DIR or spm:FILE");
    if (markov_order < 1 || markov_order > 3) bad_option("markov-order", markov_order, "must be 1, 2 or 3");
    if (markov_branching < 1 || markov_branching > 27)
      bad_option("markov-branching", markov_branching, "must lie in 1..27");
    if (!(markov_concentration > 0)) bad_option("markov-concentration", markov_concentration, "must be > 0");
    if (!(markov_smoothing >= 0 && markov_smoothing < 1))
      bad_option("markov-smoothing", markov_smoothing, "must lie in [0, 1)");
    if (synthetic_tokens < 1000) bad_option("synthetic-tokens", synthetic_tokens, "must be >= 1000");
    if (n_layer < 1 || n_layer > 256) bad_option("n-layer", n_layer, "must lie in 1..256");
    if (n_head < 1) bad_option("n-head", n_head, "must be >= 1");
    if (d_model < 2 || d_model > 65536) bad_option("d-model", d_model, "must lie in 2..65536");
    if (d_model % n_head != 0 || (d_model / n_head) % 2 != 0)
      bad_option("d-model", d_model, "must be a multiple of n-head with an even head size");
    if (d_ff < 1) bad_option("d-ff", d_ff, "must be >= 1 (0: 4 d-model)");
    if (cond_dim < 1) bad_option("cond-dim", cond_dim, "must be >= 1");
    if (seq_len < 2 || seq_len > 65536) bad_option("seq-len", seq_len, "must lie in 2..65536");
    if (!one_of(mlp, {"gelu", "swiglu", "geglu"})) bad_option("mlp", mlp, "must be gelu, swiglu or geglu");
    if (!one_of(norm, {"layernorm", "rmsnorm"})) bad_option("norm", norm, "must be layernorm or rmsnorm");
    if (!(dropout >= 0 && dropout < 1)) bad_option("dropout", dropout, "must lie in [0, 1)");
    if (time_cond != 0 && time_cond != 1) bad_option("time-cond", time_cond, "must be 0 or 1");
    if (!one_of(block, {"adaln", "plain"})) bad_option("block", block, "must be adaln or plain");
    if (block == "plain" && time_cond == 1 && objective != "ar")
      bad_option("block", block, "plain blocks take no noise level: use it with --time-cond 0");
    if (batch < 1 || batch > 65536) bad_option("batch", batch, "must lie in 1..65536");
    if (steps < 1) bad_option("steps", steps, "must be >= 1");
    if (!(lr > 0) || !std::isfinite(lr)) bad_option("lr", lr, "must be finite and > 0");
    if (warmup < 0) bad_option("warmup", warmup, "must be >= 0");
    if (!one_of(lr_schedule, {"constant", "cosine"}))
      bad_option("lr-schedule", lr_schedule, "must be constant or cosine");
    if (!(min_lr_ratio >= 0 && min_lr_ratio <= 1)) bad_option("min-lr-ratio", min_lr_ratio, "must lie in [0, 1]");
    if (!(weight_decay >= 0)) bad_option("weight-decay", weight_decay, "must be >= 0");
    if (!(beta1 >= 0 && beta1 < 1)) bad_option("beta1", beta1, "must lie in [0, 1)");
    if (!(beta2 >= 0 && beta2 < 1)) bad_option("beta2", beta2, "must lie in [0, 1)");
    if (!(clip >= 0)) bad_option("clip", clip, "must be >= 0 (0: off)");
    if (!(ema >= 0 && ema < 1)) bad_option("ema", ema, "must lie in [0, 1) (0: off)");
    if (!(w_lr >= 0)) bad_option("w-lr", w_lr, "must be >= 0");
    if (val_every < 0) bad_option("val-every", val_every, "must be >= 0");
    if (val_sequences < 2) bad_option("val-sequences", val_sequences, "must be >= 2");
    if (val_batch < 1) bad_option("val-batch", val_batch, "must be >= 1");
    if (val_sequences / val_batch < 2)
      bad_option("val-sequences", val_sequences,
                 "needs at least 2 batches of --val-batch for a standard error");
    if (ckpt_every < 0) bad_option("ckpt-every", ckpt_every, "must be >= 0");
    if (log_every < 1) bad_option("log-every", log_every, "must be >= 1");
    if (out.empty()) bad_option("out", "''", "must name a directory");
    if (threads < 0) bad_option("threads", threads, "must be >= 0");
  }
};

}  // namespace app
}  // namespace discdiff
