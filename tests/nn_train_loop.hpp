// tests/nn_train_loop.hpp: one training loop of the transformer on any backend, shared by
// the host tests (test_nn_train.cpp, test_nn_backends.cpp) and the Thrust-OMP tests
// (thrust/test_thrust_nn.cpp): forward, one of four losses, backward, clipping, AdamW and
// the EMA, with every buffer in the backend's memory space. Inputs are Philox draws made on
// the host, so a run is a pure function of (backend, steps, seed, config, B, loss).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <discdiff/core/random.hpp>
#include <discdiff/exec/memory.hpp>
#include <discdiff/nn/nn.hpp>
#include <discdiff/objective/objectives.hpp>

namespace discdiff {
namespace testing {

inline nn::ModelConfig small_config() {
  nn::ModelConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.d_model = 16;
  c.d_ff = 32;
  c.seq_len = 12;
  c.vocab_in = 9;
  c.vocab_out = 9;
  c.cond_dim = 8;
  c.temb_dim = 16;
  return c;
}

/// A wider config whose passes are large enough to split over threads.
inline nn::ModelConfig parallel_config() {
  nn::ModelConfig c = small_config();
  c.n_head = 2;
  c.d_model = 32;
  c.d_ff = 64;
  c.seq_len = 32;
  return c;
}

/// The loss of a training step: the masked CE of nn/loss.hpp (every masked position), the
/// AR model's next-token CE (causal, no time input), the MD4 ELBO (objective/md4.hpp,
/// log-linear-free linear schedule weights) or CEDD on the absorbing graph (objective/cedd.hpp).
enum class StepLoss { masked_ce, causal_ce, md4, cedd };

inline const char* step_loss_name(StepLoss l) {
  switch (l) {
    case StepLoss::masked_ce: return "masked-ce";
    case StepLoss::causal_ce: return "causal-ce";
    case StepLoss::md4: return "md4";
    case StepLoss::cedd: return "cedd";
  }
  return "?";
}

/// The config a loss trains: causal CE runs the AR network (causal, no time input); MD4 and
/// CEDD predict the N = vocab_in - 1 regular tokens (MASK = N).
inline nn::ModelConfig config_for(nn::ModelConfig c, StepLoss l) {
  if (l == StepLoss::causal_ce) {
    c.causal = true;
    c.time_cond = false;
  }
  if (l == StepLoss::md4 || l == StepLoss::cedd) c.vocab_out = c.vocab_in - 1;
  return c;
}

/// What a run leaves (all copied to the host).
template <class T>
struct TrainRun {
  std::vector<T> params, grads, ema, adam_m, adam_v;  ///< after the last step (grads: clipped)
  std::vector<T> first_grads;                          ///< the gradients of step 1 (unclipped)
  std::vector<double> losses, grad_norms;              ///< per step
  std::vector<T> params_then_ema() const {
    std::vector<T> v = params;
    v.insert(v.end(), ema.begin(), ema.end());
    return v;
  }
};

/// `steps` training steps of `loss` on backend `be`: batches of B sequences of cfg.seq_len
/// tokens, half of them masked (MASK = vocab_in - 1), sbar_b = 0.1 + b, clip 1.0, AdamW with
/// weight decay 0.01 and a cosine schedule with warm-up, EMA with warm-up.
template <class T, class Be>
TrainRun<T> train_masked_ce(const Be& be, int steps, std::uint64_t seed,
                            const nn::ModelConfig& base = small_config(), int B = 4,
                            StepLoss loss = StepLoss::masked_ce) {
  using Space = typename Be::memory_space;
  const nn::ModelConfig cfg = config_for(base, loss);
  nn::Transformer<T, Be> net(cfg, be);
  net.init(seed);
  {  // nonzero adaLN and head (as after some training): every gradient is nonzero at step 1,
     // and no gradient is an exact cancellation (with a zero head the softmax is uniform, and
     // a class seen exactly M/V times has a head-bias gradient of pure rounding noise, whose
     // sign AdamW's normalised step would turn into +-lr)
    std::vector<T> p = net.params_host();
    for (const auto& t : net.layout().tensors)
      if (t.name.find("ada") != std::string::npos || t.name.find("head") != std::string::npos)
        for (std::size_t i = 0; i < t.size(); ++i) {
          CounterRng r(seed, 99, t.offset + i);
          p[t.offset + i] = T((2.0 * r.template uniform<double>() - 1.0) * 0.2);
        }
    net.set_params(p);
  }
  nn::AdamWConfig ac;
  ac.weight_decay = 0.01;
  nn::AdamW<T, Space> opt(net.num_params(), ac);
  nn::Ema<T, Space> ema(net.params().data(), net.num_params());
  const nn::LrSchedule lr{1e-2, 5, steps, nn::LrSchedule::Kind::cosine, 0.1};
  const int L = cfg.seq_len, mask_id = cfg.vocab_in - 1, V = cfg.vocab_out;
  const std::size_t n = std::size_t(B) * L;
  std::vector<int> x0(n), xt(n);
  std::vector<unsigned char> mask(n);
  std::vector<T> sbar(B), weight(B);
  Buffer<int, Space> d_x0(n), d_xt(n);
  Buffer<unsigned char, Space> d_mask(n);
  Buffer<T, Space> d_sbar{std::size_t(B)}, d_weight{std::size_t(B)}, d_pos{n}, d_row{std::size_t(B)};
  TrainRun<T> run;
  for (int s = 1; s <= steps; ++s) {
    for (std::size_t i = 0; i < n; ++i) {
      CounterRng r(seed, std::uint32_t(s), std::uint64_t(i));
      x0[i] = int(r.uniform_int(std::uint32_t(mask_id)));
      mask[i] = r.template uniform<float>() < 0.5f;
      xt[i] = mask[i] ? mask_id : x0[i];
    }
    if (loss == StepLoss::causal_ce)
      for (int b = 0; b < B; ++b) x0[std::size_t(b) * L] = mask_id;  // BOS at position 0
    for (int b = 0; b < B; ++b) {
      sbar[b] = T(0.1) + T(b);
      weight[b] = T(1) / (T(0.05) + T(b) / T(B));  // an ELBO weight 1/t at t = 0.05 + b/B
    }
    copy_from_host(d_x0, x0.data(), n);
    copy_from_host(d_xt, xt.data(), n);
    copy_from_host(d_mask, mask.data(), n);
    copy_from_host(d_sbar, sbar.data(), sbar.size());
    copy_from_host(d_weight, weight.data(), weight.size());
    double value = 0;
    if (loss == StepLoss::causal_ce) {
      const T* lg = net.forward(d_x0.data(), nullptr, B, L);
      value = double(nn::causal_cross_entropy(net.backend(), lg, d_x0.data(), B, L, V, net.dlogits()));
    } else {
      const T* lg = net.forward(d_xt.data(), d_sbar.data(), B, L);
      if (loss == StepLoss::masked_ce) {
        value = double(nn::masked_cross_entropy(net.backend(), lg, d_x0.data(), d_mask.data(),
                                                long(n), V, net.dlogits()));
      } else {
        LossBatch<T> bt;
        bt.B = B;
        bt.L = L;
        bt.V = V;
        bt.x0 = d_x0.data();
        bt.xt = d_xt.data();
        bt.logits = lg;
        bt.grad = net.dlogits();
        bt.pos_loss = d_pos.data();
        bt.row_loss = d_row.data();
        bt.grad_scale = T(1) / T(B);
        if (loss == StepLoss::md4)
          md4_loss_raw(be.exec, bt, d_weight.data(), V, T(0));
        else
          cedd_loss_raw(be.exec, bt, d_weight.data(), mask_id, LossPositions::masked);
        const std::vector<T> rows = to_host_vector(d_row);
        for (T r : rows) value += double(r);
        value /= B;
      }
    }
    net.zero_grad();
    net.backward();
    if (s == 1) run.first_grads = net.grads_host();
    run.losses.push_back(value);
    run.grad_norms.push_back(nn::clip_grad_norm(net.backend(), net.grads().data(), net.num_params(), 1.0));
    opt.step(net.backend(), net.params().data(), net.grads().data(), lr.at(s));
    ema.update(net.backend(), net.params().data());
  }
  run.params = net.params_host();
  run.grads = net.grads_host();
  run.ema = to_host_vector(ema.shadow());
  run.adam_m = to_host_vector(opt.first_moment());
  run.adam_v = to_host_vector(opt.second_moment());
  return run;
}

/// Every element equal (NaNs in the same places count as equal).
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i]) && !(a[i] != a[i] && b[i] != b[i])) return false;
  return true;
}
/// max |a - b| (absolute); the sizes must match.
template <class T>
double max_abs(const std::vector<T>& a, const std::vector<T>& b) {
  double w = a.size() == b.size() ? 0.0 : HUGE_VAL;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    w = std::max(w, std::abs(double(a[i]) - double(b[i])));
  return w;
}
/// max |a - b| / (|b| + rms(b)) over the elements; the sizes must match.
template <class T>
double max_rel(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return HUGE_VAL;
  double rms = 0;
  for (T v : b) rms += double(v) * double(v);
  rms = b.empty() ? 0 : std::sqrt(rms / double(b.size()));
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    w = std::max(w, std::abs(double(a[i]) - double(b[i])) / (std::abs(double(b[i])) + rms + 1e-300));
  return w;
}

}  // namespace testing
}  // namespace discdiff
