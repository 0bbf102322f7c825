// discdiff/nn/layout.hpp: where every parameter tensor lives in the flat slab.
//
// Parameters, gradients and the optimiser moments are one contiguous array each,
// with the same layout. Matrices are row-major with PyTorch's Linear convention
// W[out, in] (y = x W^T + b). Order (tensors in brackets only with time_cond):
//   tok_emb [V_in, d]
//   [t_w1 [c, temb], t_b1 [c], t_w2 [c, c], t_b2 [c]]
//   per block l: ln1_w [d], [ada_w [6d, c], ada_b [6d]], qkv_w [3d, d], out_w [d, d],
//                ln2_w [d], fc1_w [r, d], fc1_b [r], fc2_w [d, d_ff], fc2_b [d]
//                (r = d_ff for GELU, 2 d_ff for the gated units: rows [a; b])
//   lnf_w [d], [adaf_w [2d, c], adaf_b [2d]], head_w [V_out, d], head_b [V_out]
// tests/torch_reference/ddit_ref.py builds the same order (`param_layout`).
// Every tensor also has its upstream PyTorch name (TensorInfo::torch_name: the DDiT of SEDD's
// model/transformer.py and MDLM's models/dit.py, and MDLM's causal AR in
// models/autoregressive.py), under which checkpoints store it (nn/state_dict.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config.hpp"

namespace discdiff {
namespace nn {

/// Marks a tensor that the config does not have.
constexpr std::size_t kNoTensor = static_cast<std::size_t>(-1);

/// One named tensor of the slab (a vector has cols == 1). `name` is discdiff's short name;
/// `torch_name` is the name of the same tensor in the PyTorch DDiT of SEDD and MDLM
/// (`vocab_embed.embedding`, `blocks.0.attn_qkv.weight`, ...; docs/nn.md, "Upstream names"),
/// the name a checkpoint stores it under.
struct TensorInfo {
  std::string name;
  std::size_t offset;
  int rows, cols;
  std::string torch_name;
  bool vector = false;  ///< one dimension in a state dict ([rows]), else [rows, cols]
  std::size_t size() const { return std::size_t(rows) * std::size_t(cols); }
  /// The shape of the tensor in a state dict.
  std::vector<std::int64_t> shape() const {
    if (vector) return {std::int64_t(rows)};
    return {std::int64_t(rows), std::int64_t(cols)};
  }
};

/// Offsets of one block's tensors.
struct BlockOffsets {
  std::size_t ln1_w, ada_w, ada_b, qkv_w, out_w, ln2_w, fc1_w, fc1_b, fc2_w, fc2_b;
};

/// The slab layout of a ModelConfig.
struct ParamLayout {
  std::vector<TensorInfo> tensors;
  std::size_t tok_emb = kNoTensor, t_w1 = kNoTensor, t_b1 = kNoTensor, t_w2 = kNoTensor,
              t_b2 = kNoTensor;
  std::vector<BlockOffsets> blocks;
  std::size_t lnf_w = kNoTensor, adaf_w = kNoTensor, adaf_b = kNoTensor, head_w = kNoTensor,
              head_b = kNoTensor;
  std::size_t total = 0;

  ParamLayout() = default;
  explicit ParamLayout(const ModelConfig& cfg) {
    cfg.validate("nn::ParamLayout");
    const int d = cfg.d_model, c = cfg.cond_dim, f = cfg.d_ff, r1 = cfg.fc1_rows();
    tok_emb = add("tok_emb", "vocab_embed.embedding", cfg.vocab_in, d);
    if (cfg.time_cond) {
      t_w1 = add("t_w1", "sigma_map.mlp.0.weight", c, cfg.temb_dim);
      t_b1 = addv("t_b1", "sigma_map.mlp.0.bias", c);
      t_w2 = add("t_w2", "sigma_map.mlp.2.weight", c, c);
      t_b2 = addv("t_b2", "sigma_map.mlp.2.bias", c);
    }
    for (int l = 0; l < cfg.n_layer; ++l) {
      const std::string p = "blocks." + std::to_string(l) + ".";
      BlockOffsets b{};
      b.ln1_w = addv(p + "ln1_w", p + "norm1.weight", d);
      b.ada_w = b.ada_b = kNoTensor;
      if (cfg.time_cond) {
        b.ada_w = add(p + "ada_w", p + "adaLN_modulation.weight", 6 * d, c);
        b.ada_b = addv(p + "ada_b", p + "adaLN_modulation.bias", 6 * d);
      }
      b.qkv_w = add(p + "qkv_w", p + "attn_qkv.weight", 3 * d, d);
      b.out_w = add(p + "out_w", p + "attn_out.weight", d, d);
      b.ln2_w = addv(p + "ln2_w", p + "norm2.weight", d);
      b.fc1_w = add(p + "fc1_w", p + "mlp.0.weight", r1, d);
      b.fc1_b = addv(p + "fc1_b", p + "mlp.0.bias", r1);
      b.fc2_w = add(p + "fc2_w", p + "mlp.2.weight", d, f);
      b.fc2_b = addv(p + "fc2_b", p + "mlp.2.bias", d);
      blocks.push_back(b);
    }
    lnf_w = addv("lnf_w", "output_layer.norm_final.weight", d);
    if (cfg.time_cond) {
      adaf_w = add("adaf_w", "output_layer.adaLN_modulation.weight", 2 * d, c);
      adaf_b = addv("adaf_b", "output_layer.adaLN_modulation.bias", 2 * d);
    }
    head_w = add("head_w", "output_layer.linear.weight", cfg.vocab_out, d);
    head_b = addv("head_b", "output_layer.linear.bias", cfg.vocab_out);
  }

 private:
  /// A vector (norm weight or bias): shape [rows] in a state dict.
  std::size_t addv(const std::string& name, const std::string& torch_name, int rows) {
    const std::size_t off = add(name, torch_name, rows, 1);
    tensors.back().vector = true;
    return off;
  }
  std::size_t add(const std::string& name, const std::string& torch_name, int rows, int cols) {
    const std::size_t off = total;
    tensors.push_back(TensorInfo{name, off, rows, cols, torch_name, false});
    total += std::size_t(rows) * std::size_t(cols);
    return off;
  }
};

}  // namespace nn
}  // namespace discdiff
