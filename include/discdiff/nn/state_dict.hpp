// discdiff/nn/state_dict.hpp: the network as named tensors, under the names of the PyTorch
// DDiT of SEDD (model/transformer.py) and MDLM (models/dit.py; the causal AR of
// models/autoregressive.py), so that a safetensors file written here is a PyTorch state dict.
//
//   io::SafetensorsWriter w;
//   nn::add_state_dict(w, net.config(), net.params_host().data());              // native
//   nn::add_state_dict(w, net.config(), p, {nn::StateDictFormat::sedd});        // SEDD's class
//   std::vector<float> slab = nn::read_state_dict(file, cfg, {nn::StateDictFormat::mdlm});
//
// Formats (docs/nn.md, "Upstream names and formats"):
//   native  every slab tensor of ParamLayout under its TensorInfo::torch_name, with discdiff's
//           shapes (vocab_embed V_in rows, output_layer.linear V_out rows); `prefix` puts the
//           same names under e.g. "adam.m." for the optimiser moments of a checkpoint.
//   sedd    SEDD's `SEDD` module: vocab_embed and output_layer.linear both have D rows (the
//           states), plus the `rotary_emb.inv_freq` buffer. With `drop_mask_embedding` (SEDD
//           uniform: discdiff's input row MASK = V_in - 1 is never read) the MASK row of the
//           embedding is left out on write and set to zero on read.
//   mdlm    MDLM's `DIT` (time-conditioned) or `AR` (causal) module: vocab_embed and the head
//           have V_in = N + 1 rows (MASK last), plus `rotary_emb.inv_freq`. A head with N
//           outputs (md4, cedd, ar) gets a zero row for the MASK logit on write (MDLM overwrites
//           that logit with -infinity / -1000) and loses it on read.
// Every tensor is float32, row-major, Linear weights [out, in] as in PyTorch. Reading checks
// every name, dtype and shape and that no tensor is left over (io::FormatError naming the file
// and the tensor), like `load_state_dict(strict=True)`.
#pragma once

#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "../io/safetensors.hpp"
#include "config.hpp"
#include "layout.hpp"

namespace discdiff {
namespace nn {

/// How a state dict lays out the network (see the file comment).
enum class StateDictFormat { native, sedd, mdlm };

/// Parses "native", "sedd" or "mdlm"; throws std::invalid_argument otherwise.
inline StateDictFormat parse_state_dict_format(const std::string& s) {
  if (s == "native") return StateDictFormat::native;
  if (s == "sedd") return StateDictFormat::sedd;
  if (s == "mdlm") return StateDictFormat::mdlm;
  throw std::invalid_argument("state dict format '" + s + "': must be native, sedd or mdlm");
}

struct StateDictOptions {
  StateDictFormat format = StateDictFormat::native;
  /// sedd: the embedding's MASK row (the last) is not part of the state dict (SEDD uniform).
  bool drop_mask_embedding = false;
  /// Prepended to every name (e.g. "adam.m."); native format only.
  std::string prefix;
  /// The writer references the slab instead of copying it (SafetensorsWriter::add_borrowed): the
  /// slab must then outlive the writer's last write. Padded tensors (mdlm) are always copied.
  bool borrow = false;
};

/// The name of the rotary buffer upstream.
inline constexpr const char* kRotaryBufferName = "rotary_emb.inv_freq";

/// The rotary buffer of SEDD/MDLM: inv_freq[k] = 1 / base^(2k / hd), k < hd / 2, evaluated as
/// PyTorch does (the exponent in float32, the power in float32).
inline std::vector<float> rotary_inv_freq(const ModelConfig& cfg) {
  const int hd = cfg.head_dim();
  std::vector<float> v(std::size_t(hd / 2));
  for (int k = 0; k < hd / 2; ++k) {
    const float e = float(2 * k) / float(hd);
    v[std::size_t(k)] = 1.0f / std::pow(float(cfg.rope_base), e);
  }
  return v;
}

namespace detail {

/// Rows of vocab_embed and of the head in a state dict of the given format (throws
/// std::invalid_argument when the format cannot hold the config).
struct StateDictRows {
  int embed = 0, head = 0;
};

inline StateDictRows state_dict_rows(const ModelConfig& cfg, const StateDictOptions& o) {
  const char* where = "nn::state_dict";
  StateDictRows r{cfg.vocab_in, cfg.vocab_out};
  if (o.format == StateDictFormat::native) return r;
  if (!o.prefix.empty())
    throw std::invalid_argument(std::string(where) + ": a prefix is only allowed in the native format");
  if (cfg.norm != NormType::layer_norm || cfg.mlp != MlpType::gelu)
    throw std::invalid_argument(std::string(where) +
                                ": the upstream DDiT has LayerNorm and a GELU MLP only (this "
                                "network has another norm or MLP: use the native format)");
  if (!cfg.time_cond && !cfg.causal)
    throw std::invalid_argument(std::string(where) +
                                ": the upstream DDiT is always time-conditioned (this network was "
                                "trained with --time-cond 0: use the native format)");
  if (o.format == StateDictFormat::sedd) {
    if (cfg.causal)
      throw std::invalid_argument(std::string(where) +
                                  ": SEDD has no causal model (use --format mdlm for ar)");
    if (o.drop_mask_embedding) {
      if (cfg.vocab_out != cfg.vocab_in - 1)
        throw std::invalid_argument(std::string(where) +
                                    ": dropping the MASK embedding needs V_out = V_in - 1");
      r.embed = cfg.vocab_out;
    } else if (cfg.vocab_out != cfg.vocab_in) {
      throw std::invalid_argument(
          std::string(where) + ": SEDD's head has one output per input state (V_in = " +
          std::to_string(cfg.vocab_in) + ", V_out = " + std::to_string(cfg.vocab_out) +
          "): use --format mdlm for a head without the MASK output");
    }
    return r;
  }
  // mdlm
  if (cfg.vocab_out != cfg.vocab_in && cfg.vocab_out != cfg.vocab_in - 1)
    throw std::invalid_argument(std::string(where) + ": MDLM needs V_out = V_in or V_in - 1");
  r.head = cfg.vocab_in;
  return r;
}

inline std::vector<std::int64_t> st_shape(const TensorInfo& t, int rows) {
  if (t.vector) return {rows};
  return {rows, t.cols};
}

}  // namespace detail

/// The names of the state dict of `cfg` in format `o`, in slab order (plus the rotary buffer
/// last for sedd/mdlm).
inline std::vector<std::string> state_dict_names(const ModelConfig& cfg, const StateDictOptions& o = {}) {
  (void)detail::state_dict_rows(cfg, o);
  std::vector<std::string> names;
  for (const auto& t : ParamLayout(cfg).tensors) names.push_back(o.prefix + t.torch_name);
  if (o.format != StateDictFormat::native) names.push_back(kRotaryBufferName);
  return names;
}

/// Adds the network `slab` (host, ParamLayout(cfg).total values) to `w` as named float32 tensors.
inline void add_state_dict(io::SafetensorsWriter& w, const ModelConfig& cfg, const float* slab,
                           const StateDictOptions& o = {}) {
  const auto rows = detail::state_dict_rows(cfg, o);
  const ParamLayout lay(cfg);
  for (const auto& t : lay.tensors) {
    const float* p = slab + t.offset;
    int r = t.rows;
    if (t.offset == lay.tok_emb) r = rows.embed;
    if (t.offset == lay.head_w || t.offset == lay.head_b) r = rows.head;
    if (r <= t.rows) {
      auto shape = detail::st_shape(t, r);
      std::size_t n = sizeof(float);
      for (auto d : shape) n *= std::size_t(d);
      if (o.borrow)
        w.add_borrowed(o.prefix + t.torch_name, io::Dtype::F32, std::move(shape), p, n);
      else
        w.add<float>(o.prefix + t.torch_name, std::move(shape), p);
    } else {  // mdlm: the MASK output row, zero
      std::vector<float> padded(std::size_t(r) * std::size_t(t.cols), 0.0f);
      std::copy(p, p + t.size(), padded.begin());
      w.add<float>(o.prefix + t.torch_name, detail::st_shape(t, r), padded.data());
    }
  }
  if (o.format != StateDictFormat::native) {
    const auto f = rotary_inv_freq(cfg);
    w.add<float>(kRotaryBufferName, {std::int64_t(f.size())}, f.data());
  }
}

/// Reads the network of `cfg` from `f` (see the file comment): every tensor must be there with
/// dtype F32 and the expected shape. Adds the names read to `used` (when given); with `strict`,
/// a tensor of `f` that is not part of the state dict is an error. The rotary buffer, when
/// present (sedd/mdlm), must equal rotary_inv_freq(cfg) within 1e-6 relative (it fixes the head
/// width and the RoPE base). Throws io::FormatError naming the file and the tensor.
inline std::vector<float> read_state_dict(const io::SafetensorsFile& f, const ModelConfig& cfg,
                                          const StateDictOptions& o = {}, bool strict = true,
                                          std::set<std::string>* used = nullptr) {
  const auto rows = detail::state_dict_rows(cfg, o);
  const ParamLayout lay(cfg);
  std::vector<float> slab(lay.total, 0.0f);
  std::set<std::string> seen;
  for (const auto& t : lay.tensors) {
    const std::string name = o.prefix + t.torch_name;
    if (!f.has(name))
      throw io::FormatError(f.origin() + ": tensor '" + name + "' is missing (a " +
                            (o.format == StateDictFormat::sedd   ? std::string("SEDD")
                             : o.format == StateDictFormat::mdlm ? std::string("MDLM")
                                                                 : std::string("discdiff")) +
                            " state dict of this network has " +
                            std::to_string(lay.tensors.size()) + " tensors)");
    int r = t.rows;
    if (t.offset == lay.tok_emb) r = rows.embed;
    if (t.offset == lay.head_w || t.offset == lay.head_b) r = rows.head;
    const std::vector<float> v = f.read<float>(name, detail::st_shape(t, r));
    const std::size_t n = std::min(v.size(), t.size());
    std::copy(v.begin(), v.begin() + std::ptrdiff_t(n), slab.begin() + std::ptrdiff_t(t.offset));
    seen.insert(name);
  }
  if (o.format != StateDictFormat::native && f.has(kRotaryBufferName)) {
    const auto want = rotary_inv_freq(cfg);
    const auto got = f.read<float>(kRotaryBufferName, {std::int64_t(want.size())});
    for (std::size_t k = 0; k < want.size(); ++k)
      if (!(std::fabs(got[k] - want[k]) <= 1e-6f * std::fabs(want[k])))
        throw io::FormatError(f.origin() + ": tensor '" + kRotaryBufferName + "'[" +
                              std::to_string(k) + "] = " + std::to_string(got[k]) +
                              " is not the RoPE frequency of head width " +
                              std::to_string(cfg.head_dim()) + " and base " +
                              std::to_string(cfg.rope_base) + " (" + std::to_string(want[k]) + ")");
    seen.insert(kRotaryBufferName);
  }
  if (strict)
    for (const auto& name : f.names())
      if (!seen.count(name))
        throw io::FormatError(f.origin() + ": unexpected tensor '" + name +
                              "' (not part of this network's state dict)");
  if (used) used->insert(seen.begin(), seen.end());
  return slab;
}

/// What the tensor shapes of an upstream state dict say about the network (read_state_dict
/// then checks every shape against the config built from these).
struct StateDictShape {
  int n_layer = 0, d_model = 0, vocab_embed = 0, vocab_head = 0, d_ff = 0;
  int cond_dim = 0, temb_dim = 0;  ///< 0 without sigma_map (the causal AR)
  int n_head = 0;                  ///< from rotary_emb.inv_freq (hd = 2 len); 0 without it
  bool time_cond() const { return cond_dim > 0; }
};

/// Reads the sizes of an upstream (sedd/mdlm) state dict from its tensor shapes. Throws
/// io::FormatError when a tensor that fixes a size is missing or has the wrong rank.
inline StateDictShape infer_state_dict_shape(const io::SafetensorsFile& f) {
  auto shape2 = [&](const std::string& name) {
    if (!f.has(name))
      throw io::FormatError(f.origin() + ": tensor '" + name +
                            "' is missing (not a SEDD/MDLM DDiT state dict?)");
    const auto& s = f.info(name).shape;
    if (s.size() != 2 || s[0] < 1 || s[1] < 1 || s[0] > (1 << 30) || s[1] > (1 << 30))
      throw io::FormatError(f.origin() + ": tensor '" + name + "' has shape " +
                            io::detail::st_shape_str(s) + ", but a matrix was expected");
    return s;
  };
  StateDictShape r;
  const auto e = shape2("vocab_embed.embedding");
  r.vocab_embed = int(e[0]);
  r.d_model = int(e[1]);
  r.vocab_head = int(shape2("output_layer.linear.weight")[0]);
  while (f.has("blocks." + std::to_string(r.n_layer) + ".attn_qkv.weight")) ++r.n_layer;
  if (r.n_layer == 0)
    throw io::FormatError(f.origin() + ": no tensor 'blocks.0.attn_qkv.weight' (no blocks)");
  r.d_ff = int(shape2("blocks.0.mlp.0.weight")[0]);
  if (f.has("sigma_map.mlp.0.weight")) {
    const auto s = shape2("sigma_map.mlp.0.weight");
    r.cond_dim = int(s[0]);
    r.temb_dim = int(s[1]);
  }
  if (f.has(kRotaryBufferName)) {
    const auto& s = f.info(kRotaryBufferName).shape;
    if (s.size() != 1 || s[0] < 1 || 2 * s[0] > r.d_model || r.d_model % (2 * s[0]) != 0)
      throw io::FormatError(f.origin() + ": tensor '" + kRotaryBufferName + "' has shape " +
                            io::detail::st_shape_str(s) + ", which is not half a head width of d_model " +
                            std::to_string(r.d_model));
    r.n_head = int(r.d_model / (2 * s[0]));
  }
  return r;
}

}  // namespace nn
}  // namespace discdiff
