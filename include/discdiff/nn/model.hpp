// discdiff/nn/model.hpp: the DDiT / causal transformer over flat slabs
// (spec/MODELS.md 1.2, 3.1, 4, 5), forward and hand-written backward, on any backend.
//
//   Transformer<float> net(cfg);                      // HostBackend: OpenMP + OpenBLAS + SIMD twins
//   net.init(seed);                                   // MODELS.md init, Philox stream kInitStream
//   const float* logits = net.forward(x_t, sbar, B, L);   // B x L x V_out
//   float loss = masked_cross_entropy(net.backend(), logits, x0, mask, B * L, V_out, net.dlogits());
//   net.zero_grad();  net.backward();                 // gradients in net.grads()
//
// Transformer<T, Backend>: parameters, gradients, activations (and the AdamW moments and
// EMA of nn/optim.hpp) live in Backend::memory_space; every op runs on the backend's
// executor and GEMM (nn/backend.hpp), so the same class trains on the host, on Thrust-OMP
// and, under nvcc, on the GPU. Pointers passed to forward() (tokens, sbar) are in the
// backend's memory; logits(), dlogits(), params(), grads() are too.
//
// Slab layout: layout.hpp. Activations are kept per layer for the backward pass:
// 12 N d (residual, xhat1, a, qkv, o, p, hmid, xhat2, m, f2) + (r + 1) N d_ff (f1, g;
// r = 2 for gated units) + B H L^2 (attention probabilities) floats, N = B L, plus one
// B H L^2 scratch for the attention backward; the benchmark config (N = 4096, d 256,
// d_ff 1024, 4 heads, L 256) holds about 650 MB in all.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../exec/algorithm.hpp"
#include "../exec/memory.hpp"
#include "../core/random.hpp"
#include "backend.hpp"
#include "config.hpp"
#include "gemm.hpp"
#include "layers.hpp"
#include "layout.hpp"
#include "loss.hpp"

namespace discdiff {
namespace nn {

/// Wall-clock seconds per phase of forward/backward, accumulated while a profile is
/// attached (Transformer::set_profile); for benchmarks only.
struct StepProfile {
  enum Phase {
    cond, embed, norm, qkv, rope, attn, proj, resid, fc1, gelu, fc2, head, num_phases
  };
  static const char* name(int p) {
    static const char* n[] = {"cond (time MLP, adaLN linear)", "embedding", "norm + modulate",
                              "qkv GEMM", "rope", "attention core", "out-proj GEMM",
                              "gated residual", "fc1 GEMM", "gelu", "fc2 GEMM", "head GEMM"};
    return n[p];
  }
  double fwd[num_phases] = {}, bwd[num_phases] = {};
  void clear() { *this = StepProfile{}; }
};

/// Philox stream used by Transformer::init (index = position in the slab).
constexpr std::uint32_t kInitStream = 0x4e4e0001u;

/// The randomness of one training forward pass with dropout: the masks of block l's
/// attention branch (site 2l) and MLP branch (site 2l + 1) come from (seed, step, site)
/// (see dropout_forward). Use a new step for every optimiser step.
struct DropoutKey {
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  DropoutRowMap rows{};  ///< local token row -> row of the whole batch (data-parallel shards)
};

/// The backend a Transformer<T, Backend> gets by default: make_host_backend() for the
/// HostBackend (small passes on the calling thread), a value-initialised one otherwise.
template <class Backend>
Backend default_backend() {
#if DISCDIFF_NN_HOST_GEMM
  if constexpr (std::is_same<Backend, HostBackend>::value) return make_host_backend();
  else
#endif
    return Backend{};
}

/// The transformer: parameters, gradients and activations as flat arrays in the backend's
/// memory space.
#if DISCDIFF_NN_HOST_GEMM
template <class T, class Backend = HostBackend>
#else
template <class T, class Backend>
#endif
class Transformer {
 public:
  using backend_type = Backend;
  using memory_space = typename Backend::memory_space;
  template <class U>
  using Buf = Buffer<U, memory_space>;

  explicit Transformer(const ModelConfig& cfg, const Backend& be = default_backend<Backend>())
      : be_(be),
        cfg_(cfg),
        lay_(cfg),
        rope_(cfg.seq_len, cfg.head_dim(), cfg.rope_base),
        params_(lay_.total),
        grads_(lay_.total) {
    fill_n(be_.exec, params_.data(), std::int64_t(lay_.total), T(0));
    fill_n(be_.exec, grads_.data(), std::int64_t(lay_.total), T(0));
  }

  const Backend& backend() const { return be_; }
  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return lay_; }
  Buf<T>& params() { return params_; }
  const Buf<T>& params() const { return params_; }
  Buf<T>& grads() { return grads_; }
  const Buf<T>& grads() const { return grads_; }
  std::size_t num_params() const { return lay_.total; }

  /// Replace the parameters from a host vector (size must equal num_params()).
  void set_params(const std::vector<T>& p) {
    check_param_size(p.size());
    copy_from_host(params_, p.data(), p.size());
  }
  /// Replace the parameters from a buffer of the backend's space (e.g. an EMA shadow).
  void set_params(const Buf<T>& p) {
    check_param_size(p.size());
    copy_kernel_n(be_.exec, params_.data(), p.data(), std::int64_t(p.size()));
  }
  /// The parameters as a host vector (a copy).
  std::vector<T> params_host() const { return to_host_vector(params_); }
  /// The gradients as a host vector (a copy).
  std::vector<T> grads_host() const { return to_host_vector(grads_); }

  /// Initialisation of MODELS.md 1.2 from Philox (seed, kInitStream, slab index):
  /// tok_emb and every Linear weight/bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
  /// kaiming-uniform with a = sqrt(5); fan_in = d for the embedding); norm weights 1;
  /// adaLN (ada_*, adaf_*) and the head zero. Computed on the host, then copied.
  void init(std::uint64_t seed) {
    const int d = cfg_.d_model;
    std::vector<T> host(lay_.total, T(0));
    for (const auto& t : lay_.tensors) {
      const std::string& nm = t.name;
      auto ends = [&](const char* s) {
        const std::string suf(s);
        return nm.size() >= suf.size() && nm.compare(nm.size() - suf.size(), suf.size(), suf) == 0;
      };
      T* p = host.data() + t.offset;
      if (ends("ln1_w") || ends("ln2_w") || ends("lnf_w")) {
        std::fill(p, p + t.size(), T(1));
      } else if (ends("ada_w") || ends("ada_b") || ends("adaf_w") || ends("adaf_b") ||
                 ends("head_w") || ends("head_b")) {
        std::fill(p, p + t.size(), T(0));
      } else {
        int fan_in = t.cols;
        if (nm == "tok_emb") fan_in = d;
        else if (ends("t_b1")) fan_in = cfg_.temb_dim;
        else if (ends("t_b2")) fan_in = cfg_.cond_dim;
        else if (ends("fc1_b")) fan_in = d;
        else if (ends("fc2_b")) fan_in = cfg_.d_ff;
        const double bound = 1.0 / std::sqrt(double(fan_in));
        for (std::size_t i = 0; i < t.size(); ++i) {
          CounterRng rng(seed, kInitStream, t.offset + i);
          p[i] = T((2.0 * double(rng.template uniform<T>()) - 1.0) * bound);
        }
      }
    }
    set_params(host);
  }

  /// Attach (or detach with nullptr) a per-phase timing profile (host backends).
  void set_profile(StepProfile* p) { prof_ = p; }

  void zero_grad() { fill_n(be_.exec, grads_.data(), std::int64_t(grads_.size()), T(0)); }

  /// Forward pass. tokens: B x L ids in [0, vocab_in); sbar: B noise levels (required
  /// when cfg.time_dependent(), ignored otherwise: with zero_time the network is
  /// conditioned on sbar = 0 for every row); both in the backend's memory. Returns the logits,
  /// B x L x vocab_out (backend memory).
  /// dropout: null (evaluation) or the key of a training pass; it applies dropout with
  /// probability cfg.dropout to both branches of every block (nothing when it is 0).
  /// Throws std::invalid_argument for out-of-vocabulary ids, L > seq_len, non-finite sbar.
  const T* forward(const int* tokens, const T* sbar, int B, int L,
                   const DropoutKey* dropout = nullptr) {
    const char* where = "nn::Transformer::forward";
    if (B < 1) throw_invalid(where, "B", B, "must be >= 1");
    if (L < 1) throw_invalid(where, "L", L, "must be >= 1");
    if (L > cfg_.seq_len)
      throw_invalid(where, "L", L,
                    ("sequence longer than the model's seq_len = " + std::to_string(cfg_.seq_len))
                        .c_str());
    if (!tokens) throw_invalid(where, "tokens", "null", "must point to B * L ids");
    const long N = long(B) * L;
    {
      std::vector<int> tmp;
      const int* ht = detail::host_view<memory_space>(tokens, std::size_t(N), tmp);
      for (long n = 0; n < N; ++n)
        if (ht[n] < 0 || ht[n] >= cfg_.vocab_in) {
          const std::string name =
              "tokens[" + std::to_string(n / L) + ", " + std::to_string(n % L) + "]";
          require_token(where, name.c_str(), ht[n], cfg_.vocab_in);
        }
    }
    if (cfg_.time_dependent()) {
      if (!sbar) throw_invalid(where, "sbar", "null", "a time-conditioned model needs B noise levels");
      std::vector<T> tmp;
      const T* hs = detail::host_view<memory_space>(sbar, std::size_t(B), tmp);
      for (int b = 0; b < B; ++b) require_finite(where, "sbar[b]", hs[b]);
    }
    allocate(B, L);
    copy_kernel_n(be_.exec, tokens_.data(), tokens, std::int64_t(N));
    drop_ = dropout != nullptr && cfg_.dropout > 0;
    if (drop_) {
      drop_key_ = *dropout;
      for (auto& A : a_.layers)
        if (A.keep_a.size() != std::size_t(N) * cfg_.d_model) {
          A.keep_a.resize(std::size_t(N) * cfg_.d_model);
          A.keep_m.resize(std::size_t(N) * cfg_.d_model);
        }
    }
    const Backend& be = be_;
    const int d = cfg_.d_model, f = cfg_.d_ff, r1 = cfg_.fc1_rows(), H = cfg_.n_head,
              V = cfg_.vocab_out;
    const T eps = T(cfg_.norm_eps);
    const T* P = params_.data();

    mark_start();
    // conditioning: c = SiLU(W2 SiLU(W1 temb + b1) + b2); mod_l = Wada_l c + bada_l
    if (cfg_.time_cond) {
      const int cd = cfg_.cond_dim, e = cfg_.temb_dim;
      // zero_time: the embedding of the constant sbar = 0 (a_.zero holds B zeros)
      timestep_embedding(be, a_.temb.data(), cfg_.zero_time ? a_.zero.data() : sbar, B, e);
      linear_forward(be, a_.t1.data(), a_.temb.data(), P + lay_.t_w1, P + lay_.t_b1, B, e, cd);
      silu_forward(be, a_.s1.data(), a_.t1.data(), long(B) * cd);
      linear_forward(be, a_.t2.data(), a_.s1.data(), P + lay_.t_w2, P + lay_.t_b2, B, cd, cd);
      silu_forward(be, a_.c.data(), a_.t2.data(), long(B) * cd);
      for (int l = 0; l < cfg_.n_layer; ++l)
        linear_forward(be, a_.layers[l].mod.data(), a_.c.data(), P + lay_.blocks[l].ada_w,
                       P + lay_.blocks[l].ada_b, B, cd, 6 * d);
      linear_forward(be, a_.modf.data(), a_.c.data(), P + lay_.adaf_w, P + lay_.adaf_b, B, cd, 2 * d);
    }
    mark(StepProfile::cond, false);

    embedding_forward(be, a_.res.data(), tokens_.data(), P + lay_.tok_emb, N, d);
    mark(StepProfile::embed, false);
    for (int l = 0; l < cfg_.n_layer; ++l) {
      auto& A = a_.layers[l];
      const auto& o = lay_.blocks[l];
      const T* x = a_.res.data() + std::size_t(l) * N * d;
      T* y = a_.res.data() + std::size_t(l + 1) * N * d;
      const T* mod = cfg_.time_cond ? A.mod.data() : nullptr;
      const long ms = 6L * d;
      norm_mod_forward(be, A.a.data(), A.xhat1.data(), A.rstd1.data(), x, P + o.ln1_w,
                       mod ? mod : nullptr, mod ? mod + d : nullptr, B, L, d, ms, cfg_.norm, eps);
      mark(StepProfile::norm, false);
      linear_forward(be, A.qkv.data(), A.a.data(), P + o.qkv_w, (const T*)nullptr, int(N), d, 3 * d);
      mark(StepProfile::qkv, false);
      rope_apply(be, A.qkv.data(), rope_, B, L, d, H, false);
      mark(StepProfile::rope, false);
      attention_forward(be, A.o.data(), A.att.data(), A.qkv.data(), B, L, d, H, cfg_.causal);
      mark(StepProfile::attn, false);
      linear_forward(be, A.p.data(), A.o.data(), P + o.out_w, (const T*)nullptr, int(N), d, d);
      if (drop_)
        dropout_forward(be, A.p.data(), A.keep_a.data(), N, d, cfg_.dropout, drop_key_.seed,
                        drop_key_.step, std::uint32_t(2 * l), drop_key_.rows);
      mark(StepProfile::proj, false);
      gated_residual_forward(be, A.hmid.data(), x, A.p.data(), mod ? mod + 2 * d : nullptr, B, L, d, ms);
      mark(StepProfile::resid, false);
      norm_mod_forward(be, A.m.data(), A.xhat2.data(), A.rstd2.data(), A.hmid.data(), P + o.ln2_w,
                       mod ? mod + 3 * d : nullptr, mod ? mod + 4 * d : nullptr, B, L, d, ms,
                       cfg_.norm, eps);
      mark(StepProfile::norm, false);
      if (cfg_.mlp == MlpType::gelu) {  // bias added by the fused bias + GELU kernel
        linear_forward(be, A.f1.data(), A.m.data(), P + o.fc1_w, (const T*)nullptr, int(N), d, r1);
        mark(StepProfile::fc1, false);
        bias_gelu_forward(be, A.g.data(), A.f1.data(), P + o.fc1_b, N, f);
      } else {
        linear_forward(be, A.f1.data(), A.m.data(), P + o.fc1_w, P + o.fc1_b, int(N), d, r1);
        mark(StepProfile::fc1, false);
        glu_forward(be, A.g.data(), A.f1.data(), N, f, cfg_.mlp);
      }
      mark(StepProfile::gelu, false);
      linear_forward(be, A.f2.data(), A.g.data(), P + o.fc2_w, P + o.fc2_b, int(N), f, d);
      if (drop_)
        dropout_forward(be, A.f2.data(), A.keep_m.data(), N, d, cfg_.dropout, drop_key_.seed,
                        drop_key_.step, std::uint32_t(2 * l + 1), drop_key_.rows);
      mark(StepProfile::fc2, false);
      gated_residual_forward(be, y, A.hmid.data(), A.f2.data(), mod ? mod + 5 * d : nullptr, B, L, d, ms);
      mark(StepProfile::resid, false);
    }
    const T* xl = a_.res.data() + std::size_t(cfg_.n_layer) * N * d;
    const T* modf = cfg_.time_cond ? a_.modf.data() : nullptr;
    norm_mod_forward(be, a_.hf.data(), a_.xhatf.data(), a_.rstdf.data(), xl, P + lay_.lnf_w,
                     modf ? modf : nullptr, modf ? modf + d : nullptr, B, L, d, 2L * d, cfg_.norm,
                     eps);
    mark(StepProfile::norm, false);
    linear_forward(be, a_.logits.data(), a_.hf.data(), P + lay_.head_w, P + lay_.head_b, int(N), d, V);
    mark(StepProfile::head, false);
    return a_.logits.data();
  }

  /// The logits of the last forward pass (backend memory).
  const T* logits() const { return a_.logits.data(); }
  /// The same, writable: the backward pass does not read them, so a caller may use them as
  /// scratch once it has read them (an evaluation's in-place loss, model/model.hpp evaluate()).
  T* logits() { return a_.logits.data(); }
  /// The gradient buffer for the logits (B x L x vocab_out of the last forward pass,
  /// backend memory): the loss writes it, backward() reads it.
  /// Allocated (zero-filled) on the first call after a forward pass of a new (B, L): a network
  /// that only runs forward (sampling) never holds this B x L x V_out buffer.
  T* dlogits() {
    if (B_ == 0) throw std::logic_error("nn::Transformer::dlogits: no forward pass yet");
    const std::size_t n = std::size_t(B_) * std::size_t(L_) * std::size_t(cfg_.vocab_out);
    if (a_.dlogits.size() != n) {
      a_.dlogits.resize(n);
      // dlogits starts at zero, so a backward() before any loss is defined (zero gradient).
      fill_n(be_.exec, a_.dlogits.data(), std::int64_t(n), T(0));
    }
    return a_.dlogits.data();
  }
  int batch() const { return B_; }
  int length() const { return L_; }

  /// Backward pass from dlogits(); gradients are ADDED to grads() (call zero_grad first).
  /// Needs the activations of the preceding forward().
  void backward() {
    if (B_ == 0) throw std::logic_error("nn::Transformer::backward: no forward pass yet");
    const Backend& be = be_;
    const int B = B_, L = L_;
    const long N = long(B) * L;
    const int d = cfg_.d_model, f = cfg_.d_ff, r1 = cfg_.fc1_rows(), H = cfg_.n_head,
              V = cfg_.vocab_out;
    const int cd = cfg_.cond_dim;
    const bool tc = cfg_.time_cond;
    const T* P = params_.data();
    T* G = grads_.data();
    T* dres = a_.dres.data();
    T* bd = a_.bd.data();
    T* bd2 = a_.bd2.data();

    mark_start();
    linear_backward(be, bd, G + lay_.head_w, G + lay_.head_b, dlogits(), a_.hf.data(),
                    P + lay_.head_w, int(N), d, V);
    mark(StepProfile::head, true);
    fill_n(be.exec, dres, std::int64_t(a_.dres.size()), T(0));
    T* dmodf = tc ? a_.dmodf.data() : nullptr;
    const T* modf = tc ? a_.modf.data() : nullptr;
    norm_mod_backward(be, dres, G + lay_.lnf_w, dmodf, dmodf ? dmodf + d : nullptr,
                      a_.dg_part.data(), bd, a_.xhatf.data(), a_.rstdf.data(), P + lay_.lnf_w,
                      modf ? modf + d : nullptr, B, L, d, 2L * d, cfg_.norm);
    mark(StepProfile::norm, true);
    if (tc) {
      fill_n(be.exec, a_.dc.data(), std::int64_t(a_.dc.size()), T(0));
      linear_backward(be, a_.dc.data(), G + lay_.adaf_w, G + lay_.adaf_b, dmodf, a_.c.data(),
                      P + lay_.adaf_w, B, cd, 2 * d, true);
      mark(StepProfile::cond, true);
    }
    for (int l = cfg_.n_layer - 1; l >= 0; --l) {
      auto& A = a_.layers[l];
      const auto& o = lay_.blocks[l];
      const T* mod = tc ? A.mod.data() : nullptr;
      T* dmod = tc ? a_.dmod.data() : nullptr;
      const long ms = 6L * d;
      // MLP branch: h_out = hmid + gate_m F
      gated_residual_backward(be, bd, dmod ? dmod + 5 * d : nullptr, dres, A.f2.data(),
                              mod ? mod + 5 * d : nullptr, B, L, d, ms);
      mark(StepProfile::resid, true);
      if (drop_) dropout_backward(be, bd, A.keep_m.data(), N, d, cfg_.dropout);
      linear_backward(be, a_.bff.data(), G + o.fc2_w, G + o.fc2_b, bd, A.g.data(), P + o.fc2_w,
                      int(N), f, d);  // dg
      mark(StepProfile::fc2, true);
      T* df1 = a_.bff.data();  // GELU: in place; gated units: the N x 2 d_ff buffer bglu
      if (cfg_.mlp == MlpType::gelu) {
        gelu_backward(be, df1, a_.bff.data(), A.f1.data(), N * f);
      } else {
        df1 = a_.bglu.data();
        glu_backward(be, df1, a_.bff.data(), A.f1.data(), N, f, cfg_.mlp);
      }
      mark(StepProfile::gelu, true);
      linear_backward(be, bd, G + o.fc1_w, G + o.fc1_b, df1, A.m.data(), P + o.fc1_w, int(N), d, r1);
      mark(StepProfile::fc1, true);
      norm_mod_backward(be, dres, G + o.ln2_w, dmod ? dmod + 3 * d : nullptr,
                        dmod ? dmod + 4 * d : nullptr, a_.dg_part.data(), bd, A.xhat2.data(),
                        A.rstd2.data(), P + o.ln2_w, mod ? mod + 4 * d : nullptr, B, L, d, ms,
                        cfg_.norm);
      mark(StepProfile::norm, true);
      // attention branch: hmid = x + gate_a (o Wout^T)
      gated_residual_backward(be, bd, dmod ? dmod + 2 * d : nullptr, dres, A.p.data(),
                              mod ? mod + 2 * d : nullptr, B, L, d, ms);
      mark(StepProfile::resid, true);
      if (drop_) dropout_backward(be, bd, A.keep_a.data(), N, d, cfg_.dropout);
      linear_backward(be, bd2, G + o.out_w, (T*)nullptr, bd, A.o.data(), P + o.out_w, int(N), d, d);
      mark(StepProfile::proj, true);
      attention_backward(be, a_.dqkv.data(), a_.att_scratch.data(), bd2, A.att.data(), A.qkv.data(),
                         B, L, d, H);
      mark(StepProfile::attn, true);
      rope_apply(be, a_.dqkv.data(), rope_, B, L, d, H, true);
      mark(StepProfile::rope, true);
      linear_backward(be, bd, G + o.qkv_w, (T*)nullptr, a_.dqkv.data(), A.a.data(), P + o.qkv_w,
                      int(N), d, 3 * d);
      mark(StepProfile::qkv, true);
      norm_mod_backward(be, dres, G + o.ln1_w, dmod ? dmod : nullptr, dmod ? dmod + d : nullptr,
                        a_.dg_part.data(), bd, A.xhat1.data(), A.rstd1.data(), P + o.ln1_w,
                        mod ? mod + d : nullptr, B, L, d, ms, cfg_.norm);
      mark(StepProfile::norm, true);
      if (tc)
        linear_backward(be, a_.dc.data(), G + o.ada_w, G + o.ada_b, dmod, a_.c.data(), P + o.ada_w, B,
                        cd, 6 * d, true);
      mark(StepProfile::cond, true);
    }
    embedding_backward(be, G + lay_.tok_emb, tokens_.data(), dres, N, d);
    mark(StepProfile::embed, true);
    if (tc) {
      const int e = cfg_.temb_dim;
      silu_backward(be, a_.dc.data(), a_.dc.data(), a_.t2.data(), long(B) * cd);  // dt2
      linear_backward(be, a_.ds1.data(), G + lay_.t_w2, G + lay_.t_b2, a_.dc.data(), a_.s1.data(),
                      P + lay_.t_w2, B, cd, cd);
      silu_backward(be, a_.ds1.data(), a_.ds1.data(), a_.t1.data(), long(B) * cd);  // dt1
      linear_backward(be, (T*)nullptr, G + lay_.t_w1, G + lay_.t_b1, a_.ds1.data(), a_.temb.data(),
                      P + lay_.t_w1, B, e, cd);
      mark(StepProfile::cond, true);
    }
  }

  /// Bytes held by the activation and scratch buffers of the current (B, L).
  std::size_t activation_bytes() const {
    std::size_t n = a_.res.size() + a_.temb.size() + a_.t1.size() + a_.s1.size() + a_.t2.size() +
                    a_.c.size() + a_.zero.size() + a_.modf.size() + a_.xhatf.size() + a_.rstdf.size() +
                    a_.hf.size() + a_.logits.size() + a_.dlogits.size() + a_.dres.size() +
                    a_.bd.size() + a_.bd2.size() + a_.bff.size() + a_.bglu.size() + a_.dqkv.size() +
                    a_.att_scratch.size() + a_.dg_part.size() + a_.dmod.size() +
                    a_.dmodf.size() + a_.dc.size() + a_.ds1.size();
    std::size_t bytes = tokens_.size() * sizeof(int);
    for (const auto& A : a_.layers) {
      n += A.xhat1.size() + A.rstd1.size() + A.a.size() + A.qkv.size() + A.att.size() +
           A.o.size() + A.p.size() + A.hmid.size() + A.xhat2.size() + A.rstd2.size() +
           A.m.size() + A.f1.size() + A.g.size() + A.f2.size() + A.mod.size();
      bytes += A.keep_a.size() + A.keep_m.size();
    }
    return n * sizeof(T) + bytes;
  }

 private:
  struct LayerActs {
    Buf<T> xhat1, rstd1, a, qkv, att, o, p, hmid, xhat2, rstd2, m, f1, g, f2, mod;
    Buf<unsigned char> keep_a, keep_m;  // dropout masks (only with dropout)
  };
  struct Acts {
    Buf<T> res, temb, t1, s1, t2, c, modf, xhatf, rstdf, hf, logits;
    Buf<T> zero;  // zero_time: B noise levels 0
    std::vector<LayerActs> layers;
    Buf<T> dlogits, dres, bd, bd2, bff, bglu, dqkv, att_scratch, dg_part, dmod, dmodf, dc, ds1;
  };

  void check_param_size(std::size_t n) const {
    if (n != lay_.total)
      throw_invalid("nn::Transformer::set_params", "size", n,
                    ("must equal the parameter count " + std::to_string(lay_.total)).c_str());
  }

  void allocate(int B, int L) {
    if (B == B_ && L == L_) return;
    B_ = B;
    L_ = L;
    const std::size_t N = std::size_t(B) * L, d = cfg_.d_model, f = cfg_.d_ff,
                      H = cfg_.n_head, V = cfg_.vocab_out, cd = cfg_.cond_dim;
    const bool tc = cfg_.time_cond;
    a_ = Acts{};
    tokens_.resize(N);
    a_.res.resize((cfg_.n_layer + 1) * N * d);
    if (tc) {
      a_.temb.resize(B * std::size_t(cfg_.temb_dim));
      a_.t1.resize(B * cd);
      a_.s1.resize(B * cd);
      a_.t2.resize(B * cd);
      a_.c.resize(B * cd);
      a_.modf.resize(B * 2 * d);
      a_.dmod.resize(B * 6 * d);
      a_.dmodf.resize(B * 2 * d);
      a_.dc.resize(B * cd);
      a_.ds1.resize(B * cd);
      if (cfg_.zero_time) {
        a_.zero.resize(B);
        fill_n(be_.exec, a_.zero.data(), std::int64_t(B), T(0));
      }
    }
    a_.layers.resize(cfg_.n_layer);
    for (auto& A : a_.layers) {
      A.xhat1.resize(N * d);
      A.rstd1.resize(N);
      A.a.resize(N * d);
      A.qkv.resize(N * 3 * d);
      A.att.resize(std::size_t(B) * H * L * L);
      A.o.resize(N * d);
      A.p.resize(N * d);
      A.hmid.resize(N * d);
      A.xhat2.resize(N * d);
      A.rstd2.resize(N);
      A.m.resize(N * d);
      A.f1.resize(N * cfg_.fc1_rows());
      A.g.resize(N * f);
      A.f2.resize(N * d);
      if (tc) A.mod.resize(B * 6 * d);
    }
    a_.xhatf.resize(N * d);
    a_.rstdf.resize(N);
    a_.hf.resize(N * d);
    a_.logits.resize(N * V);
    a_.dres.resize(N * d);
    a_.bd.resize(N * d);
    a_.bd2.resize(N * d);
    a_.bff.resize(N * f);
    if (cfg_.mlp != MlpType::gelu) a_.bglu.resize(N * cfg_.fc1_rows());
    a_.dqkv.resize(N * 3 * d);
    a_.att_scratch.resize(std::size_t(B) * H * L * L);
    a_.dg_part.resize(2 * B * d);  // norm backward: B x d partial sums + B x d rows
    // dlogits (N x V) is allocated by the first dlogits() call (forward-only use never does).
  }

  // Profiling: mark(phase) charges the time since the previous mark to `phase`.
  void mark_start() {
    if (prof_) last_ = std::chrono::steady_clock::now();
  }
  void mark(int phase, bool backward) {
    if (!prof_) return;
    const auto now = std::chrono::steady_clock::now();
    (backward ? prof_->bwd : prof_->fwd)[phase] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

  Backend be_;
  bool drop_ = false;
  DropoutKey drop_key_{};
  StepProfile* prof_ = nullptr;
  std::chrono::steady_clock::time_point last_{};
  ModelConfig cfg_;
  ParamLayout lay_;
  RopeTables<T, memory_space> rope_;
  Buf<T> params_, grads_;
  Buf<int> tokens_;
  Acts a_;
  int B_ = 0, L_ = 0;
};

}  // namespace nn
}  // namespace discdiff
