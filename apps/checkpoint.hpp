// apps/checkpoint.hpp: training checkpoints as safetensors files (io/safetensors.hpp).
//
// Tensors (float32; nn/state_dict.hpp, docs/nn.md "Upstream names and formats"):
//   <name>                            the network, one tensor per parameter under the names of the
//                                     PyTorch DDiT of SEDD/MDLM (vocab_embed.embedding,
//                                     blocks.0.attn_qkv.weight, ...) with discdiff's shapes
//   adam.m.<name>, adam.v.<name>      AdamW's moments, named like the parameters
//   ema.<name>                        the EMA of the parameters (absent with --ema 0)
//   w_raw, w_adam.m, w_adam.v         genmd4: the masking-schedule parameters and their moments
// Metadata (string -> string):
//   format = discdiff-checkpoint, format_version = 1
//   step, tokens, elapsed_s, adam_steps, ema_updates, w_adam_steps
//   rng.seed, rng.step                the counter-RNG key and position: every draw of step n is
//                                     CounterRng(seed, stream, f(n, ...)), so these two are the
//                                     whole random state
//   tokenizer                         data::Tokenizer::serialize() (the vocabulary)
//   cfg.<option>                      every RunConfig field
//   model.<field>                     nn::ModelConfig::to_vector() fields (checked on load;
//                                     temb_dim, time_cond = adaLN-zero blocks, zero_time =
//                                     conditioned on sbar = 0; zero_time absent: 0)
//   model.norm_eps, model.rope_base   the two real fields (absent: 1e-5 and 10000, the values
//                                     of every build before they were stored; checked on load)
//   cfg.block                         absent in older files: plain when cfg.time_cond = 0
//   data.*                            what the data was (description, entropy rate if synthetic)
// Checkpoints written before the named layout (one flat 1-D tensor each: params, adam.m, adam.v,
// ema, laid out as nn::ParamLayout) still load: the flat layout is recognised by its `params`
// tensor.
// `safetensors.torch.load_file` gives a PyTorch state dict; the network alone is the entries
// whose names do not start with "adam.", "ema." or "w_" (`discdiff export` writes exactly that,
// plus what SEDD's or MDLM's classes need).
// Writes are atomic (temporary file + fsync + rename): an interrupted write, even kill -9,
// leaves the previous checkpoint intact. Loading checks everything and throws with the path and
// the reason: a truncated or corrupted file, an unknown format, wrong tensor shapes or dtypes, a
// config that does not rebuild the stored network.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <discdiff/data/data.hpp>
#include <discdiff/io/safetensors.hpp>
#include <discdiff/nn/state_dict.hpp>

#include "diffusion.hpp"
#include "run_config.hpp"

namespace discdiff {
namespace app {

inline constexpr const char* kCheckpointFormat = "discdiff-checkpoint";
inline constexpr const char* kCheckpointVersion = "1";

/// A loaded checkpoint: the run's options, vocabulary and training state.
struct Checkpoint {
  RunConfig cfg;
  data::Tokenizer tokenizer = data::Tokenizer::text8();
  TrainState state;
  std::map<std::string, std::string> meta;  ///< every metadata entry as stored
};

namespace detail_app {
/// The shortest text that reads back to the same double.
inline std::string exact_text(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
/// A finite real metadata value, or `absent` when the key is missing.
inline double meta_real(const io::SafetensorsFile& f, const std::string& path,
                        const std::string& key, double absent) {
  if (!f.metadata().count(key)) return absent;
  const std::string v = f.metadata_value(key);
  char* end = nullptr;
  const double x = v.empty() ? 0.0 : std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(x))
    throw io::FormatError(path + ": metadata '" + key + "' = '" + v + "' is not a finite number");
  return x;
}
}  // namespace detail_app

inline void save_checkpoint(const std::string& path, const RunConfig& cfg,
                            const data::Tokenizer& tok, const TrainState& s,
                            const std::map<std::string, std::string>& extra_meta) {
  io::SafetensorsWriter w;
  w.set_metadata("format", kCheckpointFormat);
  w.set_metadata("format_version", kCheckpointVersion);
  w.set_metadata("step", std::to_string(s.step));
  w.set_metadata("tokens", std::to_string(s.tokens));
  {
    std::ostringstream e;
    e.precision(17);
    e << s.elapsed_s;
    w.set_metadata("elapsed_s", e.str());
  }
  w.set_metadata("adam_steps", std::to_string(s.opt->steps()));
  w.set_metadata("ema_updates", std::to_string(s.ema ? s.ema->updates() : 0));
  w.set_metadata("w_adam_steps", std::to_string(s.w_opt ? s.w_opt->steps() : 0));
  w.set_metadata("rng.seed", std::to_string(cfg.seed));
  w.set_metadata("rng.step", std::to_string(s.step));
  w.set_metadata("tokenizer", tok.serialize());
  for (const auto& kv : cfg.to_map()) w.set_metadata("cfg." + kv.first, kv.second);
  const auto names = nn::ModelConfig::field_names();
  const auto vals = s.net->config().to_vector();
  for (std::size_t i = 0; i < names.size(); ++i)
    w.set_metadata("model." + names[i], std::to_string(vals[i]));
  w.set_metadata("model.norm_eps", detail_app::exact_text(s.net->config().norm_eps));
  w.set_metadata("model.rope_base", detail_app::exact_text(s.net->config().rope_base));
  w.set_metadata("param_count", std::to_string(s.net->num_params()));
  for (const auto& kv : extra_meta) w.set_metadata(kv.first, kv.second);
  // The tensors are written from where they are, without a second copy in memory: the host
  // backend's slabs directly, a device backend's through one host copy each, kept until the write.
  const nn::ModelConfig& mc = s.net->config();
  nn::StateDictOptions so;
  so.borrow = true;
  std::vector<std::vector<float>> host_copies;
  host_copies.reserve(4);
  auto host = [&](const auto& buf) -> const float* {
    if constexpr (std::decay_t<decltype(buf)>::memory_space::host_accessible) {
      return buf.data();
    } else {
      host_copies.push_back(to_host_vector(buf));
      return host_copies.back().data();
    }
  };
  nn::add_state_dict(w, mc, host(s.net->params()), so);
  so.prefix = "adam.m.";
  nn::add_state_dict(w, mc, host(s.opt->first_moment()), so);
  so.prefix = "adam.v.";
  nn::add_state_dict(w, mc, host(s.opt->second_moment()), so);
  so.prefix = "ema.";
  if (s.ema) nn::add_state_dict(w, mc, host(s.ema->shadow()), so);
  if (!s.w_raw.empty()) {
    const std::int64_t n = static_cast<std::int64_t>(s.w_raw.size());
    w.add<float>("w_raw", {n}, s.w_raw.data());
    w.add<float>("w_adam.m", {n}, s.w_opt->first_moment().data());
    w.add<float>("w_adam.v", {n}, s.w_opt->second_moment().data());
  }
  w.write_atomic(path);
}

namespace detail_app {
inline std::int64_t meta_int(const io::SafetensorsFile& f, const std::string& path,
                             const std::string& key) {
  const std::string v = f.metadata_value(key);
  bool ok = !v.empty() && v.size() <= 18;
  for (char c : v) ok = ok && c >= '0' && c <= '9';
  if (!ok)
    throw io::FormatError(path + ": metadata '" + key + "' = '" + v +
                          "' is not a non-negative integer");
  return std::stoll(v);
}

/// Reads a float tensor of the given shape and checks every value is finite (and >= 0 when
/// `nonnegative`, for second moments).
inline std::vector<float> read_finite(const io::SafetensorsFile& f, const std::string& path,
                                      const std::string& name, std::int64_t n,
                                      bool nonnegative = false) {
  std::vector<float> v = f.read<float>(name, {n});
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]) || (nonnegative && v[i] < 0))
      throw io::FormatError(path + ": tensor '" + name + "' holds " +
                            (std::isfinite(v[i]) ? "a negative value" : "a non-finite value") +
                            " at index " + std::to_string(i));
  return v;
}

/// A slab stored in the checkpoint: the named tensors `prefix` + torch name (the named layout),
/// or the flat 1-D tensor `flat` (the layout before it). Every value must be finite (and >= 0
/// when `nonnegative`); errors name the tensor and the index within it.
inline std::vector<float> read_slab(const io::SafetensorsFile& f, const std::string& path,
                                    const nn::ModelConfig& mc, bool flat_layout,
                                    const std::string& prefix, const std::string& flat,
                                    std::vector<std::string>& expected, bool nonnegative = false) {
  const nn::ParamLayout lay(mc);
  if (flat_layout) {
    expected.push_back(flat);
    return read_finite(f, path, flat, std::int64_t(lay.total), nonnegative);
  }
  nn::StateDictOptions so;
  so.prefix = prefix;
  std::set<std::string> used;
  std::vector<float> v = nn::read_state_dict(f, mc, so, false, &used);
  expected.insert(expected.end(), used.begin(), used.end());
  for (const auto& t : lay.tensors)
    for (std::size_t i = 0; i < t.size(); ++i) {
      const float x = v[t.offset + i];
      if (!std::isfinite(x) || (nonnegative && x < 0))
        throw io::FormatError(path + ": tensor '" + prefix + t.torch_name + "' holds " +
                              (std::isfinite(x) ? "a negative value" : "a non-finite value") +
                              " at index " + std::to_string(i));
    }
  return v;
}

/// Throws unless metadata `key` equals `expected` (consistency of the stored counters).
inline void require_meta(const io::SafetensorsFile& f, const std::string& path,
                         const std::string& key, std::int64_t expected, const std::string& why) {
  const std::int64_t v = meta_int(f, path, key);
  if (v != expected)
    throw io::FormatError(path + ": metadata '" + key + "' = " + std::to_string(v) + " but " + why +
                          " gives " + std::to_string(expected) + " (inconsistent checkpoint)");
}
}  // namespace detail_app

/// Loads and checks a checkpoint (see the file comment). Throws io::FormatError (a
/// std::runtime_error) naming the path and the problem.
inline Checkpoint load_checkpoint(const std::string& path) {
  using detail_app::meta_int;
  const io::SafetensorsFile f = io::SafetensorsFile::load(path);
  Checkpoint ck;
  ck.meta = f.metadata();
  auto fmt = ck.meta.find("format");
  if (fmt == ck.meta.end() || fmt->second != kCheckpointFormat)
    throw io::FormatError(path + ": not a discdiff checkpoint (metadata 'format' is " +
                          (fmt == ck.meta.end() ? std::string("missing") : "'" + fmt->second + "'") +
                          ")");
  if (f.metadata_value("format_version") != kCheckpointVersion)
    throw io::FormatError(path + ": checkpoint format version '" +
                          f.metadata_value("format_version") + "' is not supported (this build reads " +
                          kCheckpointVersion + ")");
  std::map<std::string, std::string> cm;
  for (const auto& kv : ck.meta)
    if (kv.first.rfind("cfg.", 0) == 0) cm[kv.first.substr(4)] = kv.second;
  // Before --block existed, --time-cond 0 meant plain pre-norm blocks.
  if (!cm.count("block"))
    cm["block"] = cm.count("time_cond") && cm["time_cond"] == "0" ? "plain" : "adaln";
  try {
    ck.cfg.from_map(cm, "cfg.");
    ck.cfg.validate();
    ck.tokenizer = data::Tokenizer::deserialize(f.metadata_value("tokenizer"));
  } catch (const io::FormatError&) {
    throw;
  } catch (const std::exception& e) {
    throw io::FormatError(path + ": invalid stored configuration: " + e.what());
  }
  const Problem p(ck.cfg, ck.tokenizer.num_regular());
  const nn::ModelConfig mc = p.model_config();
  std::vector<std::int64_t> stored;
  for (const auto& name : nn::ModelConfig::field_names())
    if (name != "zero_time" || ck.meta.count("model.zero_time"))  // absent: 0 (older files)
      stored.push_back(meta_int(f, path, "model." + name));
  try {
    mc.require_matches(stored, "checkpoint");
  } catch (const std::exception& e) {
    throw io::FormatError(path + ": the stored network does not match its configuration and "
                                 "vocabulary: " + e.what());
  }
  for (const auto& [key, mine, old_default] :
       {std::tuple<const char*, double, double>{"model.norm_eps", mc.norm_eps, 1e-5},
        {"model.rope_base", mc.rope_base, 10000.0}}) {
    const double v = detail_app::meta_real(f, path, key, old_default);
    if (v != mine)
      throw io::FormatError(path + ": metadata '" + key + "' = " + detail_app::exact_text(v) +
                            " but this build's network has " + detail_app::exact_text(mine));
  }
  TrainState& s = ck.state;
  s = TrainState::fresh(p);
  using detail_app::read_finite;
  using detail_app::require_meta;
  const std::int64_t P = static_cast<std::int64_t>(s.net->num_params());
  std::vector<std::string> expected;
  const bool flat = f.has("params");  // the layout before named tensors
  s.step = meta_int(f, path, "step");
  s.tokens = meta_int(f, path, "tokens");
  require_meta(f, path, "rng.step", s.step, "the step");
  if (f.metadata_value("rng.seed") != std::to_string(ck.cfg.seed))
    throw io::FormatError(path + ": metadata 'rng.seed' = '" + f.metadata_value("rng.seed") +
                          "' differs from cfg.seed = " + std::to_string(ck.cfg.seed));
  require_meta(f, path, "adam_steps", s.step, "the step");
  (void)P;
  using detail_app::read_slab;
  s.net->set_params(read_slab(f, path, mc, flat, "", "params", expected));
  {
    std::vector<float> m = read_slab(f, path, mc, flat, "adam.m.", "adam.m", expected);
    s.opt->restore(m, read_slab(f, path, mc, flat, "adam.v.", "adam.v", expected, true),
                   long(s.step));
  }
  if (s.ema) {
    const std::string probe = flat ? std::string("ema") : "ema." + nn::ParamLayout(mc).tensors[0].torch_name;
    if (!f.has(probe))
      throw io::FormatError(path + ": tensor '" + probe + "' is missing (the run has --ema " +
                            std::to_string(ck.cfg.ema) + ")");
    require_meta(f, path, "ema_updates", s.step, "the step");
    s.ema->restore(read_slab(f, path, mc, flat, "ema.", "ema", expected), long(s.step));
  }
  if (p.per_token_noise()) {
    const std::int64_t n = p.num_regular();
    s.w_raw = read_finite(f, path, "w_raw", n);
    const std::int64_t wsteps = ck.cfg.w_lr > 0 ? s.step : 0;
    require_meta(f, path, "w_adam_steps", wsteps, "the step and --w-lr");
    s.w_opt->restore(read_finite(f, path, "w_adam.m", n), read_finite(f, path, "w_adam.v", n, true),
                     long(wsteps));
    for (const char* t : {"w_raw", "w_adam.m", "w_adam.v"}) expected.push_back(t);
  }
  for (const auto& name : f.names())
    if (std::find(expected.begin(), expected.end(), name) == expected.end())
      throw io::FormatError(path + ": unexpected tensor '" + name + "' for this configuration");
  const std::string es = f.metadata_value("elapsed_s");
  char* end = nullptr;
  s.elapsed_s = es.empty() ? -1.0 : std::strtod(es.c_str(), &end);
  if (es.empty() || end != es.c_str() + es.size() || !std::isfinite(s.elapsed_s) || s.elapsed_s < 0)
    throw io::FormatError(path + ": metadata 'elapsed_s' = '" + es +
                          "' is not a finite non-negative number");
  return ck;
}

}  // namespace app
}  // namespace discdiff
