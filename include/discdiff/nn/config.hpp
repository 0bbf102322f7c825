// discdiff/nn/config.hpp: the transformer's configuration (spec/MODELS.md 1, 5),
// its parameter count and its FLOPs per token.
//
// One config covers the two networks of MODELS.md:
//  * the DDiT of SEDD/MDLM/PBRC (time_cond = true, causal = false): adaLN-zero
//    blocks conditioned on c = SiLU(W2 SiLU(W1 temb(sbar) + b1) + b2);
//  * MDLM's time-independent DDiT (time_cond = true, zero_time = true): the same network,
//    conditioned on the constant sbar = 0 whatever noise level forward() is given;
//  * plain pre-norm blocks (time_cond = false): the causal AR baseline of MDLM
//    (causal = true), and the old time-independent diffusion network: the blocks without
//    modulation (shift = scale = 0, gates = 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace discdiff {
namespace nn {

/// Normalisation inside the blocks and before the head.
enum class NormType : int {
  layer_norm = 0,  ///< weight-only LayerNorm: (x - mean)/sqrt(var + eps) * g
  rms_norm = 1     ///< RMSNorm: x / sqrt(mean(x^2) + eps) * g
};

/// The MLP of the blocks: GELU-tanh (DDiT), or a gated linear unit whose first linear
/// layer has 2 d_ff outputs [a, b] and whose hidden units are act(a) * b (SwiGLU: act =
/// SiLU, as in LLaMA/MD4; GeGLU: act = GELU-tanh).
enum class MlpType : int {
  gelu = 0,    ///< GELU_tanh(x W1^T + b1) W2^T + b2
  swiglu = 1,  ///< (SiLU(a) * b) W2^T + b2, [a, b] = x W1^T + b1
  geglu = 2    ///< (GELU_tanh(a) * b) W2^T + b2
};

/// Sizes and switches of the transformer (spec/MODELS.md 1.1-1.2, 3.1, 5).
struct ModelConfig {
  int n_layer = 6;       ///< number of blocks
  int n_head = 4;        ///< attention heads (head_dim = d_model / n_head, even)
  int d_model = 256;     ///< hidden width d
  int d_ff = 1024;       ///< MLP hidden width (4 d in every code base)
  int seq_len = 256;     ///< maximum sequence length (RoPE tables)
  int vocab_in = 28;     ///< input vocabulary V_in (includes MASK / BOS)
  int vocab_out = 28;    ///< output classes V_out (untied head)
  int cond_dim = 128;    ///< width of the conditioning vector c
  int temb_dim = 256;    ///< sinusoidal embedding width (cos half first, MODELS.md 3.1)
  bool time_cond = true; ///< adaLN-zero blocks and the time MLP (off: plain pre-norm blocks)
  /// With time_cond: condition on the constant sbar = 0 and ignore the noise level given to
  /// forward() (MDLM's time-independent network; the output does not depend on sbar).
  bool zero_time = false;
  bool causal = false;   ///< causal attention mask (the AR baseline)
  NormType norm = NormType::layer_norm;
  MlpType mlp = MlpType::gelu;
  double norm_eps = 1e-5;
  double rope_base = 10000.0;
  /// Dropout probability on the attention and MLP branches (before the gates), applied
  /// only in forward passes given a DropoutKey (training); 0 disables it. Not part of
  /// to_vector(): it does not change the parameters.
  double dropout = 0.0;

  int head_dim() const { return d_model / n_head; }
  /// Whether the output depends on the noise level given to forward().
  bool time_dependent() const { return time_cond && !zero_time; }
  /// Outputs of the first MLP layer: d_ff (GELU) or 2 d_ff (gated units).
  int fc1_rows() const { return mlp == MlpType::gelu ? d_ff : 2 * d_ff; }

  /// Throws std::invalid_argument naming the first inconsistent field.
  void validate(const char* where = "nn::ModelConfig") const {
    if (n_layer < 1) throw_invalid(where, "n_layer", n_layer, "must be >= 1");
    if (n_head < 1) throw_invalid(where, "n_head", n_head, "must be >= 1");
    if (d_model < 2) throw_invalid(where, "d_model", d_model, "must be >= 2");
    if (d_model % n_head != 0)
      throw_invalid(where, "d_model", d_model, "must be divisible by n_head");
    if (head_dim() % 2 != 0)
      throw_invalid(where, "head_dim", head_dim(), "must be even for rotary embeddings");
    if (d_ff < 1) throw_invalid(where, "d_ff", d_ff, "must be >= 1");
    if (seq_len < 1) throw_invalid(where, "seq_len", seq_len, "must be >= 1");
    if (vocab_in < 1) throw_invalid(where, "vocab_in", vocab_in, "must be >= 1");
    if (vocab_out < 1) throw_invalid(where, "vocab_out", vocab_out, "must be >= 1");
    if (time_cond) {
      if (cond_dim < 1) throw_invalid(where, "cond_dim", cond_dim, "must be >= 1");
      if (temb_dim < 2 || temb_dim % 2 != 0)
        throw_invalid(where, "temb_dim", temb_dim, "must be even and >= 2");
    }
    if (zero_time && !time_cond)
      throw_invalid(where, "zero_time", 1, "needs time_cond (adaLN-zero blocks)");
    if (norm != NormType::layer_norm && norm != NormType::rms_norm)
      throw_invalid(where, "norm", static_cast<int>(norm), "must be 0 (LayerNorm) or 1 (RMSNorm)");
    if (mlp != MlpType::gelu && mlp != MlpType::swiglu && mlp != MlpType::geglu)
      throw_invalid(where, "mlp", static_cast<int>(mlp), "must be 0 (GELU), 1 (SwiGLU) or 2 (GeGLU)");
    if (!(norm_eps > 0)) throw_invalid(where, "norm_eps", norm_eps, "must be > 0");
    if (!(rope_base > 1)) throw_invalid(where, "rope_base", rope_base, "must be > 1");
    if (!(dropout >= 0 && dropout < 1))
      throw_invalid(where, "dropout", dropout, "must be in [0, 1)");
  }

  /// Number of parameters (MODELS.md 1.3):
  /// V_in d + [temb c + c + c c + c] + n_layer (4 d^2 + (r + 1) d d_ff + r d_ff + d + 2 d
  /// + [6 d c + 6 d]) + d + [2 d c + 2 d] + d V_out + V_out, with r = 1 (GELU) or 2 (gated
  /// units); bracketed terms only with time_cond. (GELU, d_ff = 4d: 12 d^2 per block.)
  std::int64_t param_count() const {
    const std::int64_t d = d_model, f = d_ff, c = cond_dim, e = temb_dim, r1 = fc1_rows();
    std::int64_t n = std::int64_t(vocab_in) * d;
    if (time_cond) n += e * c + c + c * c + c;
    std::int64_t blk = 4 * d * d + r1 * d + f * d + r1 + d + 2 * d;
    if (time_cond) blk += 6 * d * c + 6 * d;
    n += n_layer * blk;
    n += d;
    if (time_cond) n += 2 * d * c + 2 * d;
    n += d * vocab_out + vocab_out;
    return n;
  }

  /// Bytes of the activation and scratch buffers nn::Transformer holds after a forward pass of
  /// B sequences of length L with `elem`-byte values (its activation_bytes() then; the two are
  /// checked equal in tests/test_nn_grad.cpp), computed without allocating: programs use it to
  /// refuse a batch that cannot fit. With N = B L, r = fc1_rows(), per block
  /// 11 N d + 2 N + N r + N d_ff + B H L^2 [+ 6 B d] values (+ 2 N d mask bytes with dropout),
  /// and outside the blocks (n_layer + 1) N d + 8 N d + N + [2|1] N V_out + N d_ff + B H L^2
  /// + 2 B d [+ N r for gated units] [+ B temb + 6 B c + 10 B d] values and N token ids.
  /// logit_grad: whether the N V_out gradient of the logits is held (training and bound
  /// evaluation use it; a forward-only network, as in sampling, never allocates it).
  /// A double: shapes far beyond memory must not overflow.
  double activation_bytes(std::int64_t B, std::int64_t L, std::size_t elem, bool with_dropout,
                          bool logit_grad = true) const {
    const double b = double(B), n = double(B) * double(L), d = d_model, f = d_ff, r = fc1_rows(),
                 att = b * n_head * double(L) * double(L);
    double blk = 11 * n * d + 2 * n + n * r + n * f + att;
    if (time_cond) blk += 6 * b * d;
    double vals = n_layer * blk + (n_layer + 1) * n * d + 8 * n * d + n +
                  (logit_grad ? 2 : 1) * n * vocab_out + n * f + att + 2 * b * d;
    if (mlp != MlpType::gelu) vals += n * r;
    if (time_cond) vals += b * temb_dim + 6 * b * cond_dim + 10 * b * d;
    double bytes = vals * double(elem) + n * sizeof(int);
    if (with_dropout && dropout > 0) bytes += n_layer * 2 * n * d;
    return bytes;
  }

  /// Forward FLOPs per token (2 per multiply-add) at sequence length L (default seq_len):
  /// per block 2(3d^2 + d^2 + (r + 1) d d_ff) for the projections (r = fc1_rows()/d_ff)
  /// and 4 L d for Q K^T and P V (the full L x L square, also when causal), plus 2 d V_out
  /// for the head. The per-sequence conditioning MLP and adaLN projections are not
  /// counted (O(1/L)).
  double forward_flops_per_token(int L = -1) const {
    if (L < 0) L = seq_len;
    const double d = d_model, f = d_ff, r1 = fc1_rows();
    const double blk = 2.0 * (4.0 * d * d + (r1 + f) * d) + 4.0 * double(L) * d;
    return n_layer * blk + 2.0 * d * vocab_out;
  }
  /// Training FLOPs per token: forward + backward (2x forward).
  double train_flops_per_token(int L = -1) const { return 3.0 * forward_flops_per_token(L); }

  /// Names of the fields of to_vector(), in order. zero_time came last, later than the
  /// others: a vector of kFieldsBeforeZeroTime fields (files written before it existed)
  /// reads as zero_time = 0.
  static std::vector<std::string> field_names() {
    return {"n_layer",  "n_head",   "d_model",   "d_ff",   "seq_len", "vocab_in",
            "vocab_out", "cond_dim", "temb_dim", "time_cond", "causal", "norm", "mlp",
            "zero_time"};
  }
  static constexpr std::size_t kFieldsBeforeZeroTime = 13;
  /// The integer fields as one vector (stored beside golden files and in checkpoints).
  std::vector<std::int64_t> to_vector() const {
    return {n_layer,  n_head,   d_model,   d_ff,          seq_len,        vocab_in,
            vocab_out, cond_dim, temb_dim, time_cond ? 1 : 0, causal ? 1 : 0,
            static_cast<int>(norm), static_cast<int>(mlp), zero_time ? 1 : 0};
  }

  /// Throws std::invalid_argument naming the first field where `stored` (a config
  /// vector read from a file) differs from this config. A vector of the
  /// kFieldsBeforeZeroTime older fields is read with zero_time = 0.
  void require_matches(std::vector<std::int64_t> stored, const char* where) const {
    const auto mine = to_vector();
    const auto names = field_names();
    if (stored.size() == kFieldsBeforeZeroTime) stored.push_back(0);
    if (stored.size() != mine.size())
      throw_invalid(where, "config length", stored.size(),
                    ("stored config must have " + std::to_string(mine.size()) + " fields")
                        .c_str());
    for (std::size_t i = 0; i < mine.size(); ++i)
      if (stored[i] != mine[i])
        throw_invalid(where, ("config." + names[i]).c_str(), stored[i],
                      ("the stored config does not match the model, which has " +
                       std::to_string(mine[i]))
                          .c_str());
  }
};

}  // namespace nn
}  // namespace discdiff
