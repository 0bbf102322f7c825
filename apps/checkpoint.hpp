// apps/checkpoint.hpp: training checkpoints as safetensors files (io/safetensors.hpp).
//
// Tensors (float32, 1-D over the flat parameter slab of nn::ParamLayout):
//   params, adam.m, adam.v            the network and AdamW's moments
//   ema                               the EMA of the parameters (absent with --ema 0)
//   w_raw, w_adam.m, w_adam.v         genmd4: the masking-schedule parameters and their moments
// Metadata (string -> string):
//   format = discdiff-checkpoint, format_version = 1
//   step, tokens, elapsed_s, adam_steps, ema_updates, w_adam_steps
//   rng.seed, rng.step                the counter-RNG key and position: every draw of step n is
//                                     CounterRng(seed, stream, f(n, ...)), so these two are the
//                                     whole random state
//   tokenizer                         data::Tokenizer::serialize() (the vocabulary)
//   cfg.<option>                      every RunConfig field
//   model.<field>                     nn::ModelConfig::to_vector() fields (checked on load)
//   data.*                            what the data was (description, entropy rate if synthetic)
// Writes are atomic (temporary file + fsync + rename): an interrupted write, even kill -9,
// leaves the previous checkpoint intact. Loading checks everything and throws with the path and
// the reason: a truncated or corrupted file, an unknown format, wrong tensor shapes or dtypes, a
// config that does not rebuild the stored network.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <discdiff/data/data.hpp>
#include <discdiff/io/safetensors.hpp>

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
  w.set_metadata("param_count", std::to_string(s.net->num_params()));
  for (const auto& kv : extra_meta) w.set_metadata(kv.first, kv.second);
  const std::int64_t P = static_cast<std::int64_t>(s.net->num_params());
  w.add<float>("params", {P}, s.net->params().data());
  w.add<float>("adam.m", {P}, s.opt->first_moment().data());
  w.add<float>("adam.v", {P}, s.opt->second_moment().data());
  if (s.ema) w.add<float>("ema", {P}, s.ema->shadow().data());
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
  std::size_t pos = 0;
  long long x = 0;
  try {
    x = std::stoll(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || pos != v.size() || x < 0)
    throw io::FormatError(path + ": metadata '" + key + "' = '" + v +
                          "' is not a non-negative integer");
  return x;
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
  try {
    ck.cfg.from_map(cm);
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
    stored.push_back(meta_int(f, path, "model." + name));
  try {
    mc.require_matches(stored, "checkpoint");
  } catch (const std::exception& e) {
    throw io::FormatError(path + ": the stored network does not match its configuration and "
                                 "vocabulary: " + e.what());
  }
  TrainState& s = ck.state;
  s = TrainState::fresh(p);
  const std::int64_t P = static_cast<std::int64_t>(s.net->num_params());
  s.net->set_params(f.read<float>("params", {P}));
  s.opt->restore(f.read<float>("adam.m", {P}), f.read<float>("adam.v", {P}),
                 long(meta_int(f, path, "adam_steps")));
  if (s.ema) {
    if (!f.has("ema")) throw io::FormatError(path + ": tensor 'ema' is missing (the run has --ema " +
                                             std::to_string(ck.cfg.ema) + ")");
    s.ema->restore(f.read<float>("ema", {P}), long(meta_int(f, path, "ema_updates")));
  }
  if (p.is_genmd4()) {
    const std::int64_t n = p.num_regular();
    s.w_raw = f.read<float>("w_raw", {n});
    for (float v : s.w_raw)
      if (!std::isfinite(v)) throw io::FormatError(path + ": tensor 'w_raw' holds a non-finite value");
    s.w_opt->restore(f.read<float>("w_adam.m", {n}), f.read<float>("w_adam.v", {n}),
                     long(meta_int(f, path, "w_adam_steps")));
  }
  for (float v : s.net->params())
    if (!std::isfinite(v)) throw io::FormatError(path + ": tensor 'params' holds a non-finite value");
  s.step = meta_int(f, path, "step");
  s.tokens = meta_int(f, path, "tokens");
  try {
    s.elapsed_s = std::stod(f.metadata_value("elapsed_s"));
  } catch (const io::FormatError&) {
    throw;
  } catch (const std::exception&) {
    throw io::FormatError(path + ": metadata 'elapsed_s' is not a number");
  }
  return ck;
}

}  // namespace app
}  // namespace discdiff
