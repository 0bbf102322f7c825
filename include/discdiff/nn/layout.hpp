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
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "config.hpp"

namespace discdiff {
namespace nn {

/// Marks a tensor that the config does not have.
constexpr std::size_t kNoTensor = static_cast<std::size_t>(-1);

/// One named tensor of the slab (a vector has cols == 1).
struct TensorInfo {
  std::string name;
  std::size_t offset;
  int rows, cols;
  std::size_t size() const { return std::size_t(rows) * std::size_t(cols); }
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
    tok_emb = add("tok_emb", cfg.vocab_in, d);
    if (cfg.time_cond) {
      t_w1 = add("t_w1", c, cfg.temb_dim);
      t_b1 = add("t_b1", c, 1);
      t_w2 = add("t_w2", c, c);
      t_b2 = add("t_b2", c, 1);
    }
    for (int l = 0; l < cfg.n_layer; ++l) {
      const std::string p = "blocks." + std::to_string(l) + ".";
      BlockOffsets b{};
      b.ln1_w = add(p + "ln1_w", d, 1);
      b.ada_w = b.ada_b = kNoTensor;
      if (cfg.time_cond) {
        b.ada_w = add(p + "ada_w", 6 * d, c);
        b.ada_b = add(p + "ada_b", 6 * d, 1);
      }
      b.qkv_w = add(p + "qkv_w", 3 * d, d);
      b.out_w = add(p + "out_w", d, d);
      b.ln2_w = add(p + "ln2_w", d, 1);
      b.fc1_w = add(p + "fc1_w", r1, d);
      b.fc1_b = add(p + "fc1_b", r1, 1);
      b.fc2_w = add(p + "fc2_w", d, f);
      b.fc2_b = add(p + "fc2_b", d, 1);
      blocks.push_back(b);
    }
    lnf_w = add("lnf_w", d, 1);
    if (cfg.time_cond) {
      adaf_w = add("adaf_w", 2 * d, c);
      adaf_b = add("adaf_b", 2 * d, 1);
    }
    head_w = add("head_w", cfg.vocab_out, d);
    head_b = add("head_b", cfg.vocab_out, 1);
  }

 private:
  std::size_t add(const std::string& name, int rows, int cols) {
    const std::size_t off = total;
    tensors.push_back(TensorInfo{name, off, rows, cols});
    total += std::size_t(rows) * std::size_t(cols);
    return off;
  }
};

}  // namespace nn
}  // namespace discdiff
