// apps/diffusion.hpp: the diffusion problem of a run (objective, generator, schedule, network
// shape) and the three things the program does with a network: one training step, a
// validation bound, and denoising for the samplers.
//
// Network conventions (docs/usage.md):
//  * inputs: V_in = N + 1 token ids (N regular tokens and MASK = N; the AR model's BOS is N);
//  * outputs: V_out = N clean-token logits (md4, genmd4, cedd, cedd-star, ar), or V_out = D raw
//    outputs of SEDD's log-score head (sedd; spec 4.4: the offsets c(u, x) are added by the
//    objective, the bound and the sampler adapter);
//  * time conditioning: the total noise sbar(t) of the schedule (SEDD/MDLM convention), or
//    1000 t for genmd4 (MD4's convention; its noise is per token); the AR model has none.
// Backend: everything runs on AppBackend (apps/backend.hpp) with its data in AppSpace; a step's
// only host round trips are the clean batch going in, the per-row times and weights going in,
// and the per-row losses (and GenMD4's N schedule gradients) coming back. The objectives are the
// registry entries of apps/objective.hpp; batch_loss() is the one noise draw -> loss kernel path
// of training and of the GenMD4 / AR bounds.
// Randomness: every draw is CounterRng(seed, stream, index) with the step number in the index or
// the stream (streams below), so a step's batch, times, noise and dropout are pure functions of
// (seed, step): a resumed run repeats the uninterrupted one bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <discdiff/bound/monte_carlo.hpp>
#include <discdiff/bound/time_sampling.hpp>
#include <discdiff/data/data.hpp>
#include <discdiff/exec/sequential.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/nn/nn.hpp>
#include <discdiff/objective/objectives.hpp>
#include <discdiff/ops/forward_corrupt.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>

#include "backend.hpp"
#include "comm.hpp"
#include "dyn_schedule.hpp"
#include "memory_check.hpp"
#include "objective.hpp"
#include "run_config.hpp"

namespace discdiff {
namespace app {

using GenVariant =
    std::variant<AbsorbingGenerator<Real>, UniformGenerator<Real>, RouletteGenerator<Real>>;

/// Counter-RNG streams of the training loop.
inline constexpr std::uint32_t kTrainTimeStream = 0x54524E01u;     // times: index = step
inline constexpr std::uint32_t kTrainNoiseStream = 0x20000000u;    // + (2 step + k) mod 2^28
inline constexpr std::uint32_t kValSeedOffset = 0x56414C31u;       // validation seed = seed ^ this

inline TimeSampling parse_time_sampling(const std::string& s) {
  if (s == "iid") return TimeSampling::iid;
  if (s == "stratified") return TimeSampling::stratified;
  return TimeSampling::antithetic;
}

/// Objective, generator, schedule and network shape of a run with N regular tokens.
class Problem {
 public:
  Problem(const RunConfig& cfg, int N) : cfg_(cfg), N_(N), obj_(&objective_info(cfg.objective)) {
    if (N < 2) throw std::invalid_argument("the vocabulary needs at least 2 regular tokens");
    if (!obj_->causal && !obj_->per_token_noise) {
      if (cfg.generator == "absorbing") gen_ = AbsorbingGenerator<Real>(N);
      else if (cfg.generator == "uniform") gen_ = UniformGenerator<Real>(N);
      else gen_ = RouletteGenerator<Real>(N, Real(cfg.p_m));
      sched_ = make_schedule<Real>(cfg.schedule, cfg.eta, cfg.sched_d, cfg.poly_k, cfg.sigma_min,
                                   cfg.sigma_max, cfg.p_m);
    }
  }

  const RunConfig& config() const { return cfg_; }
  const ObjectiveInfo& objective() const { return *obj_; }
  int num_regular() const { return N_; }
  int mask_id() const { return N_; }
  bool causal() const { return obj_->causal; }
  bool per_token_noise() const { return obj_->per_token_noise; }
  bool score_head() const { return obj_->score_head; }
  LossKind loss_kind() const { return obj_->loss; }
  bool has_generator() const { return gen_.has_value(); }
  const GenVariant& generator() const { return *gen_; }
  const DynSchedule<Real>& schedule() const { return sched_; }
  int num_states() const {
    return gen_ ? std::visit([](const auto& g) { return g.num_states(); }, *gen_) : N_ + 1;
  }
  /// Lower end of the training and bound time range.
  double t_min() const { return obj_->t_eps_cutoff ? cfg_.t_eps : obj_->t_min_fixed; }

  nn::ModelConfig model_config() const {
    nn::ModelConfig m;
    m.n_layer = cfg_.n_layer;
    m.n_head = cfg_.n_head;
    m.d_model = cfg_.d_model;
    m.d_ff = cfg_.d_ff > 0 ? cfg_.d_ff : 4 * cfg_.d_model;
    m.seq_len = causal() ? cfg_.seq_len + 1 : cfg_.seq_len;
    m.vocab_in = N_ + 1;
    m.vocab_out = score_head() ? num_states() : N_;
    m.cond_dim = cfg_.cond_dim;
    m.temb_dim = 2 * cfg_.cond_dim;
    // adaLN-zero blocks for every diffusion objective (with --time-cond 0 conditioned on the
    // constant sbar = 0, MDLM's time-independent network); plain pre-norm blocks for the AR
    // baseline and with --block plain (the earlier time-independent network).
    m.time_cond = obj_->time_input != TimeInput::none && cfg_.block != "plain";
    m.zero_time = m.time_cond && cfg_.time_cond == 0;
    m.causal = causal();
    m.norm = cfg_.norm == "rmsnorm" ? nn::NormType::rms_norm : nn::NormType::layer_norm;
    m.mlp = cfg_.mlp == "swiglu" ? nn::MlpType::swiglu
            : cfg_.mlp == "geglu" ? nn::MlpType::geglu
                                  : nn::MlpType::gelu;
    m.dropout = cfg_.dropout;
    m.validate("discdiff train: network");
    return m;
  }

  /// Adds what one pass over B sequences of L tokens allocates (apps/memory_check.hpp): the
  /// network's activations at the shape this objective feeds it (AR: L + 1 with BOS; GenMD4:
  /// its two draws, 2B rows) and the loss and sampler buffers, O(B L) values plus, for
  /// GenMD4 without a gradient (bounds), its 2 B L N workspace.
  /// logit_grad: the network holds its logits' gradient (training and bounds; not sampling).
  void add_pass_memory(MemoryNeed& need, std::int64_t B, std::int64_t L, bool training,
                       const std::string& what, bool logit_grad = true) const {
    const nn::ModelConfig m = model_config();
    const std::int64_t rows = per_token_noise() ? 2 * B : B, len = causal() ? L + 1 : L;
    need.add(what + " activations (" + std::to_string(rows) + " x " + std::to_string(len) + ")",
             m.activation_bytes(rows, len, sizeof(Real), training, logit_grad));
    double scratch = 16.0 * double(rows) * double(len) * sizeof(Real);
    if (per_token_noise())
      scratch += double(B) * N_ * sizeof(Real) * 2 +
                 (training ? 0.0 : 2.0 * double(B) * double(L) * N_ * sizeof(Real));
    need.add(what + " loss buffers", scratch);
  }
  /// Adds what one evaluation pass over B sequences allocates (evaluate_bounds, training's
  /// validation): the network's forward activations with its logits (AR: also their gradient,
  /// the NLL kernel's scratch; the bound estimators read the logits in place, model/model.hpp
  /// evaluate()), the loss buffers and, when J1/J2 are estimated, the estimator's work rows
  /// (ScoreBoundOptions::scratch_bytes: 2 D values per position, at most 64 MiB).
  void add_eval_memory(MemoryNeed& need, std::int64_t B, std::int64_t L, const std::string& what,
                       bool md4_j_bounds = false) const {
    add_pass_memory(need, B, L, false, what, /*logit_grad=*/causal());
    const bool j = !causal() && !per_token_noise() && (loss_kind() != LossKind::md4 || md4_j_bounds);
    if (j)
      need.add(what + " J1/J2 work rows",
               std::min(double(AppSpace::host_accessible ? kMcHostScratchBytes : kMcDeviceScratchBytes),
                        2.0 * double(B) * double(L) * (N_ + 1) * sizeof(Real)));
  }
  /// Adds the GEMM library's work memory for passes of up to B sequences of L tokens on
  /// `threads` threads: OpenBLAS packs the operands into a work buffer of up to 64 MiB per thread
  /// it runs, and a product touches at most its operands' size of it (here the B L V_out logits
  /// of the output head, the largest). Measured at V = 50257 (docs/usage.md): about 90 MB of
  /// resident memory per thread beyond the heap, none at a character vocabulary.
  void add_gemm_memory(MemoryNeed& need, std::int64_t B, std::int64_t L, int threads) const {
    const std::int64_t rows = per_token_noise() ? 2 * B : B, len = causal() ? L + 1 : L;
    const double operand = double(rows) * double(len) * double(model_config().vocab_out) * sizeof(Real);
    need.add("GEMM work buffers (" + std::to_string(threads) + " threads)",
             double(std::max(1, threads)) * std::min(double(std::size_t(64) << 20), operand));
  }
  /// Adds the parameters, gradients and AdamW moments (+ EMA) of a network of this shape
  /// (`copies` float slabs of the parameter count).
  void add_param_memory(MemoryNeed& need, int copies, const std::string& what) const {
    need.add(what, double(copies) * double(model_config().param_count()) * sizeof(Real));
  }

  /// Human-readable one-line description.
  std::string describe() const {
    std::string s = "objective " + cfg_.objective;
    if (gen_) s += ", generator " + cfg_.generator, s += ", schedule " + sched_.label();
    if (cfg_.generator == "roulette") s += " (p_m " + std::to_string(cfg_.p_m) + ")";
    if (per_token_noise()) s += ", state-dependent masking, S-GEN-POLY (learned w)";
    return s;
  }

 private:
  RunConfig cfg_;
  int N_;
  const ObjectiveInfo* obj_;
  std::optional<GenVariant> gen_;
  DynSchedule<Real> sched_;
};

/// Everything that changes during training (and is stored in a checkpoint). The network, its
/// AdamW moments and the EMA live in the backend's memory; GenMD4's N schedule parameters and
/// their optimiser stay on the host.
struct TrainState {
  std::unique_ptr<Net> net;
  std::unique_ptr<nn::AdamW<Real, AppSpace>> opt;
  std::unique_ptr<nn::Ema<Real, AppSpace>> ema;  ///< null when --ema 0
  std::vector<Real> w_raw;                       ///< genmd4: raw masking-schedule parameters (N)
  std::unique_ptr<nn::AdamW<Real>> w_opt;        ///< genmd4: their optimiser (host)
  std::int64_t step = 0;                         ///< optimiser steps done
  std::int64_t tokens = 0;                       ///< training tokens seen
  double elapsed_s = 0;                          ///< training wall time so far (all sessions)

  static TrainState fresh(const Problem& p) {
    const RunConfig& c = p.config();
    TrainState s;
    s.net = std::make_unique<Net>(p.model_config());
    s.net->init(c.seed);
    nn::AdamWConfig ac;
    ac.beta1 = c.beta1;
    ac.beta2 = c.beta2;
    ac.weight_decay = c.weight_decay;
    s.opt = std::make_unique<nn::AdamW<Real, AppSpace>>(s.net->num_params(), ac);
    if (c.ema > 0)
      s.ema = std::make_unique<nn::Ema<Real, AppSpace>>(s.net->params().data(), s.net->num_params(), c.ema);
    if (p.per_token_noise()) {
      s.w_raw = PerTokenPolynomialSchedule<Real>(p.num_regular(), Real(c.eta)).w_raw();
      nn::AdamWConfig wc;
      wc.beta1 = c.beta1;
      wc.beta2 = c.beta2;
      s.w_opt = std::make_unique<nn::AdamW<Real>>(s.w_raw.size(), wc);
    }
    return s;
  }
};

/// What one training step reports.
struct StepResult {
  double loss_per_token = 0;  ///< the objective (per token; GenMD4: the NELBO, not the surrogate)
  double grad_norm = 0;       ///< before clipping
  double lr = 0;
};

inline nn::LrSchedule lr_schedule(const RunConfig& c) {
  nn::LrSchedule s;
  s.base = c.lr;
  s.warmup = c.warmup;
  s.total = c.steps;
  s.kind = c.lr_schedule == "cosine" ? nn::LrSchedule::Kind::cosine : nn::LrSchedule::Kind::constant;
  s.min_ratio = c.min_lr_ratio;
  return s;
}

namespace detail_app {

/// Per-row times t = max(t0, t0 + (1 - t0) tau) for draw `index` of stream `stream`.
inline std::vector<Real> draw_times(const Problem& p, std::uint64_t seed, std::uint32_t stream,
                                    std::uint64_t index, std::int64_t B) {
  std::vector<Real> tau(static_cast<std::size_t>(B)), t(tau.size());
  sample_unit_times(parse_time_sampling(p.config().time_sampling), seed, stream, index, B,
                    tau.data());
  const Real t0 = Real(p.t_min());
  for (std::size_t b = 0; b < t.size(); ++b) {
    Real v = map_unit_time(tau[b], t0, Real(1));
    t[b] = v < t0 ? t0 : v;
  }
  return t;
}

inline std::uint32_t noise_stream(std::int64_t step, int k) {
  return kTrainNoiseStream + static_cast<std::uint32_t>((2 * std::uint64_t(step) + std::uint64_t(k)) &
                                                        0x0FFFFFFFu);
}

/// The network's time input per row (TimeInput of the objective): sbar(t) or 1000 t.
template <class T>
struct TimeInputKernel {
  const T* t;
  const T* sbar;  ///< may be null (per-token schedules): 0 is used
  T* cond;
  std::int64_t rows;  ///< the input repeats every `rows` rows (GenMD4's two draws share t)
  bool thousand_t;
  DD_HD void operator()(std::int64_t i) const {
    const std::int64_t b = i % rows;
    cond[i] = thousand_t ? T(1000) * t[b] : (sbar != nullptr ? sbar[b] : T(0));
  }
};

/// x[i] *= a (a data-parallel shard's share of a gradient).
template <class T>
struct ScaleKernel {
  T* x;
  T a;
  DD_HD void operator()(std::int64_t i) const { x[i] *= a; }
};

/// SEDD's log-score head (spec 4.4): out[i, k] += c(u_b, x_i) for every k != x_i.
template <class Gen, class T>
struct SeddOffsetKernel {
  Gen gen;
  const int* xt;
  const T* sbar;
  T* out;
  std::int64_t L;
  int K;
  DD_HD void operator()(std::int64_t i) const {
    const int x = xt[i];
    const T c = sedd_log_score_offset(gen, x, sbar[i / L]);
    T* row = out + i * K;
    for (int k = 0; k < K; ++k)
      if (k != x) row[k] += c;
  }
};

}  // namespace detail_app

/// The one AR prefix: B rows of [BOS = N, x0 row] (B x (L + 1) tokens), for training, the NLL
/// and sampling.
inline std::vector<int> with_bos(const int* x0, std::int64_t B, std::int64_t L, int N) {
  const std::int64_t L1 = L + 1;
  std::vector<int> tok(static_cast<std::size_t>(B * L1));
  for (std::int64_t b = 0; b < B; ++b) {
    tok[static_cast<std::size_t>(b * L1)] = N;
    std::copy(x0 + b * L, x0 + (b + 1) * L, tok.begin() + b * L1 + 1);
  }
  return tok;
}

/// The counters of one batch's draws: the row times from (seed, time_stream, time_index), the
/// forward noise of draw k from (seed, noise[k], b L + l). A data-parallel shard is rows
/// [row0, row0 + B) of a batch of `total_rows` rows (0: the batch is whole): its rows get the
/// times, noise and dropout masks that they have in the whole batch.
struct DrawKeys {
  std::uint64_t seed = 0;
  std::uint32_t time_stream = 0;
  std::uint64_t time_index = 0;
  std::uint32_t noise[2] = {0, 0};
  std::int64_t row0 = 0;
  std::int64_t total_rows = 0;
};

/// Per-batch buffers in the backend's memory, grown on demand (not part of the run's state).
struct StepScratch {
  AppBuffer<int> x0, xt;                            // B L clean; up to 2 B (L + 1) noisy / input
  AppBuffer<Real> rows;                             // per-row values: t, u, weight, cond (2B)
  AppBuffer<Real> pos, row_loss, ubar, wsched, gw;  // per position / row / GenMD4
  AppBuffer<Real> work;                             // GenMD4 workspace
  template <class U>
  static U* need(AppBuffer<U>& b, std::size_t n) {
    if (b.size() < n) b.resize(n);
    return b.data();
  }
};

/// One noise draw -> network forward -> loss kernel of the objective on the B x L clean batch
/// x0 (host): returns the sum over rows of the per-sequence loss (nats; GenMD4: the NELBO, AR:
/// the NLL). With grad_scale != 0 the network's dlogits() receive grad_scale * d loss / d logits
/// (the gradient of the batch mean for grad_scale = 1/(B L)), ready for net.backward(), and
/// GenMD4 writes grad_scale * d S / d w_raw to grad_w_raw. dropout: the training key, or null.
/// A shard (keys.total_rows > B): x0 holds rows [keys.row0, keys.row0 + B) of the batch; the
/// result and the gradient are those rows' terms of the whole batch's (the AR model's
/// gradient, a mean over its rows, is weighted by B / total_rows).
inline double batch_loss(const Problem& p, Net& net, const std::vector<Real>& w_raw,
                         const int* x0, std::int64_t B, std::int64_t L, const DrawKeys& keys,
                         const nn::DropoutKey* dropout_key, Real grad_scale, StepScratch& sc,
                         std::vector<Real>* grad_w_raw = nullptr) {
  using namespace detail_app;
  const auto& ex = net.backend().exec;
  const int N = p.num_regular();
  const std::size_t BL = static_cast<std::size_t>(B * L);
  const std::int64_t Btot = keys.total_rows > 0 ? keys.total_rows : B, r0 = keys.row0;
  const bool shard = Btot != B;
  // The dropout masks of local token row n are those of row n + offset of the whole batch.
  nn::DropoutKey dk_shard;
  const nn::DropoutKey* dropout = dropout_key;
  if (dropout_key != nullptr && shard) {
    dk_shard = *dropout_key;
    const std::int64_t rowlen = p.causal() ? L + 1 : L;
    dk_shard.rows.lo = std::uint64_t(r0 * rowlen);
    if (p.per_token_noise()) {  // two draws stacked: rows [0, B) and [B, 2B) of 2 Btot
      dk_shard.rows.split = B * L;
      dk_shard.rows.hi = std::uint64_t((Btot - B + r0) * L);
    }
    dropout = &dk_shard;
  }
  // The network's dlogits buffer is (re)sized by forward(): read it after each forward only.
  const bool want_grad = grad_scale != Real(0);
  std::vector<Real> row_host(static_cast<std::size_t>(B));
  auto sum_rows = [&](const Real* rows_dev, std::int64_t n) {
    copy_n(HostSpace{}, row_host.data(), AppSpace{}, rows_dev, static_cast<std::size_t>(n));
    double s = 0;
    for (std::int64_t b = 0; b < n; ++b) s += double(row_host[static_cast<std::size_t>(b)]);
    return s;
  };

  if (p.causal()) {
    const std::vector<int> tok = with_bos(x0, B, L, N);
    int* td = StepScratch::need(sc.xt, tok.size());
    copy_n(AppSpace{}, td, HostSpace{}, tok.data(), tok.size());
    const Real* lg = net.forward(td, nullptr, int(B), int(L + 1), dropout);
    // Without a gradient the network's dlogits buffer is the row kernels' scratch.
    const double mean =
        nn::causal_cross_entropy(net.backend(), lg, td, int(B), int(L + 1), N, net.dlogits());
    if (shard && want_grad)  // the gradient of this shard's mean, weighted by its share
      ex.for_each(B * (L + 1) * net.config().vocab_out,
                  ScaleKernel<Real>{net.dlogits(), Real(double(B) / double(Btot))});
    return mean * double(B * L);
  }

  int* x0d = StepScratch::need(sc.x0, BL);
  copy_n(AppSpace{}, x0d, HostSpace{}, x0, BL);
  std::vector<Real> t = draw_times(p, keys.seed, keys.time_stream, keys.time_index, Btot);
  if (shard) t = std::vector<Real>(t.begin() + r0, t.begin() + r0 + B);
  Real* rows = StepScratch::need(sc.rows, static_cast<std::size_t>(5 * B));
  Real *td = rows, *ud = rows + B, *wd = rows + 2 * B, *cond = rows + 3 * B;  // cond: 2B
  copy_n(AppSpace{}, td, HostSpace{}, t.data(), t.size());
  const bool thousand_t = p.objective().time_input == TimeInput::thousand_t;

  if (p.per_token_noise()) {
    // GenMD4 (spec 5.4): two masked draws at the same t in one forward pass of 2B sequences
    // (rows 0..B-1: z1, B..2B-1: z2); the schedule's gradient comes back to the host.
    PerTokenPolynomialSchedule<Real> sched(w_raw, Real(p.config().eta));
    StateDependentMaskingGenerator<Real> gen(N);
    std::vector<Real> ubar(static_cast<std::size_t>(B * N));
    for (std::int64_t b = 0; b < B; ++b) sched.total_noise(t[static_cast<std::size_t>(b)], ubar.data() + b * N);
    Real* ubd = StepScratch::need(sc.ubar, ubar.size());
    copy_n(AppSpace{}, ubd, HostSpace{}, ubar.data(), ubar.size());
    Real* wsd = StepScratch::need(sc.wsched, static_cast<std::size_t>(N));
    copy_n(AppSpace{}, wsd, HostSpace{}, sched.w().data(), static_cast<std::size_t>(N));
    int* z = StepScratch::need(sc.xt, 2 * BL);
    for (int k = 0; k < 2; ++k)
      forward_corrupt_raw(ex, gen, x0d, B, L, ubd, N, z + k * BL, keys.seed, keys.noise[k],
                          std::uint64_t(r0 * L));
    ex.for_each(2 * B, TimeInputKernel<Real>{td, nullptr, cond, B, true});
    const Real* lg = net.forward(z, cond, int(2 * B), int(L), dropout);
    Real* dl = want_grad ? net.dlogits() : nullptr;
    const std::size_t half = BL * static_cast<std::size_t>(N);
    const std::size_t sB = static_cast<std::size_t>(B);
    Real* work = StepScratch::need(sc.work, 6 * BL + 8 * sB + 1 + 2 * half * (dl ? 0 : 1));
    Real* gw = StepScratch::need(sc.gw, static_cast<std::size_t>(N));
    GenMd4Batch<Real> bt;
    bt.B = B;
    bt.L = L;
    bt.V = N;
    bt.x0 = x0d;
    bt.t = td;
    Real* wp = work;
    for (int k = 0; k < 2; ++k) {
      bt.z[k] = z + k * BL;
      bt.logits[k] = lg + k * half;
      bt.lse[k] = wp;
      bt.pos_loss[k] = wp + BL;
      bt.pos_log_q[k] = wp + 2 * BL;
      wp += 3 * BL;
      bt.loss[k] = wp;
      bt.log_q[k] = wp + sB;
      wp += 2 * sB;
    }
    bt.recon = wp;
    bt.surrogate = wp + sB;
    bt.nelbo = wp + 2 * sB;
    bt.rho_sum = wp + 3 * sB;
    bt.lse_w = wp + 4 * sB;
    wp += 4 * sB + 1;
    bt.grad[0] = dl ? dl : wp;  // without a gradient the kernel writes into scratch
    bt.grad[1] = dl ? dl + half : wp + half;
    bt.grad_w = gw;
    GenMd4Options<Real> go;
    go.t1 = Real(p.t_min());
    go.grad_scale = grad_scale;
    genmd4_loss_raw(ex, PerTokenPolynomialView<Real>{wsd, N, sched.eta()}, bt, go);
    if (grad_w_raw != nullptr) {
      std::vector<Real> g(static_cast<std::size_t>(N));
      copy_n(HostSpace{}, g.data(), AppSpace{}, gw, g.size());
      grad_w_raw->resize(g.size());
      for (int v = 0; v < N; ++v) (*grad_w_raw)[static_cast<std::size_t>(v)] = g[static_cast<std::size_t>(v)] * sched.dw_dwraw(v);
    }
    return sum_rows(bt.nelbo, B);
  }

  // Scalar-noise objectives: forward noise at u = sbar(t), the loss kernel of the entry.
  const DynSchedule<Real>& sched = p.schedule();
  const LossKind kind = p.loss_kind();
  std::vector<Real> u(t.size()), w(t.size());
  for (std::size_t b = 0; b < t.size(); ++b) {
    u[b] = sched.sigma_bar(t[b]);
    w[b] = kind == LossKind::sedd ? sched.sigma(t[b])
           : kind == LossKind::md4 ? md4_weight(sched, t[b])
                                   : cedd_weight(kind == LossKind::cedd ? CeddVariant::cedd
                                                                        : CeddVariant::cedd_star,
                                                 t[b]);
  }
  copy_n(AppSpace{}, ud, HostSpace{}, u.data(), u.size());
  copy_n(AppSpace{}, wd, HostSpace{}, w.data(), w.size());
  int* xtd = StepScratch::need(sc.xt, BL);
  ex.for_each(B, TimeInputKernel<Real>{td, ud, cond, B, thousand_t});
  std::visit([&](const auto& g) {
               forward_corrupt_raw(ex, g, x0d, B, L, ud, xtd, keys.seed, keys.noise[0], std::uint64_t(r0 * L));
             },
             p.generator());
  const Real* out = net.forward(xtd, cond, int(B), int(L), dropout);
  Real* dl = want_grad ? net.dlogits() : nullptr;
  const int V = net.config().vocab_out;
  LossBatch<Real> lb;
  lb.B = B;
  lb.L = L;
  lb.V = V;
  lb.x0 = x0d;
  lb.xt = xtd;
  lb.logits = out;
  lb.grad = dl ? dl : StepScratch::need(sc.work, BL * static_cast<std::size_t>(V));
  lb.pos_loss = StepScratch::need(sc.pos, BL);
  lb.row_loss = StepScratch::need(sc.row_loss, static_cast<std::size_t>(B));
  lb.grad_scale = grad_scale;
  std::visit(
      [&](const auto& g) {
        using G = std::decay_t<decltype(g)>;
        if (kind == LossKind::sedd) {
          SeddOptions so;
          so.include_k = true;
          so.log_score_head = true;
          sedd_loss_raw(ex, g, lb, ud, wd, so);
        } else if (kind == LossKind::md4) {
          md4_loss_raw(ex, lb, wd, N, md4_constant_terms(sched, L, N, Md4Options{}));
        } else {
          const bool has_mask = g.num_states() > g.num_regular();
          cedd_loss_raw(ex, lb, wd, has_mask ? g.mask() : -1, default_loss_positions<G>::value);
        }
      },
      p.generator());
  return sum_rows(lb.row_loss, B);
}

/// One optimiser step on the clean batch x0 (B x L, host): batch_loss (forward noise, network
/// forward, the objective's loss kernel), backward, clipping, AdamW, EMA. `step` is the 1-based
/// number of this step.
/// Data parallel (dp with K > 1 ranks, docs/distributed.md): every rank holds the whole batch
/// x0 and computes the loss and gradient of its shard (Shard::of: contiguous rows, the draws
/// of the whole batch); the shard losses and, after backward, the gradients (dp: bucketed, in
/// a fixed order) and GenMD4's schedule gradient are summed over the ranks, so every rank
/// clips and steps with the gradient of the whole batch's mean loss.
inline StepResult train_step(const Problem& p, TrainState& s, StepScratch& sc,
                             const std::vector<int>& x0, std::int64_t B, std::int64_t L,
                             std::int64_t step, GradientAllReduce* dp = nullptr) {
  using namespace detail_app;
  const RunConfig& c = p.config();
  Net& net = *s.net;
  const nn::DropoutKey dk{c.seed, static_cast<std::uint64_t>(step)};
  DrawKeys keys;
  keys.seed = c.seed;
  keys.time_stream = kTrainTimeStream;
  keys.time_index = std::uint64_t(step);
  keys.noise[0] = noise_stream(step, 0);
  keys.noise[1] = noise_stream(step, 1);
  std::vector<Real> grad_w;
  const std::string diverged = "the training diverged at step " + std::to_string(step) + ": ";
  std::ostringstream lr_text;
  lr_text << c.lr;
  const std::string advice = " (lower --lr, now " + lr_text.str() + ", or raise --warmup)";
  Communicator* comm = dp != nullptr && dp->comm().size() > 1 ? &dp->comm() : nullptr;
  const Shard sh = comm ? Shard::of(B, comm->rank(), comm->size()) : Shard::of(B, 0, 1);
  keys.row0 = sh.row0;
  keys.total_rows = B;
  double loss_sum = 0;
  std::string bad_output;
  try {
    loss_sum = batch_loss(p, net, s.w_raw, x0.data() + sh.row0 * L, sh.rows, L, keys, &dk,
                          Real(1.0 / double(B * L)), sc, &grad_w);
  } catch (const std::invalid_argument& e) {
    // The loss kernels reject non-finite network outputs (objective/validate.hpp).
    bad_output = e.what();
    if (!comm) throw std::runtime_error(diverged + "the network's output is not finite [" + bad_output +
                                        "]" + advice);
  }
  if (comm) {
    // Every rank learns the batch's loss and whether some rank's output was not finite, so all
    // stop together (no rank is left waiting in a collective).
    double v[2] = {loss_sum, bad_output.empty() ? 0.0 : 1.0};
    comm->all_reduce_sum(v, 2);
    if (v[1] > 0)
      throw std::runtime_error(diverged + "the network's output is not finite on " +
                               (bad_output.empty() ? std::string("another rank")
                                                   : "rank " + std::to_string(comm->rank()) + " [" + bad_output + "]") +
                               advice);
    loss_sum = v[0];
    if (!grad_w.empty()) comm->all_reduce_sum(grad_w.data(), grad_w.size());
  }
  const double loss_tok = loss_sum / double(B * L);
  if (!std::isfinite(loss_tok))
    throw std::runtime_error(diverged + "the training loss is " + std::to_string(loss_tok) + advice);
  for (std::size_t v = 0; v < grad_w.size(); ++v)
    if (!std::isfinite(grad_w[v]))
      throw std::runtime_error(diverged + "the gradient of the masking schedule w[" +
                               std::to_string(v) + "] is not finite" + advice);
  net.zero_grad();
  net.backward();
  if (comm) (*dp)(net.grads().data(), net.num_params());  // the batch's gradient on every rank
  StepResult res;
  res.loss_per_token = loss_tok;
  res.grad_norm = c.clip > 0 ? nn::clip_grad_norm(net.backend(), net.grads().data(), net.num_params(), c.clip)
                             : nn::global_norm(net.backend(), net.grads().data(), net.num_params());
  if (!std::isfinite(res.grad_norm))
    throw std::runtime_error(diverged + "the gradient norm is " + std::to_string(res.grad_norm) +
                             advice);
  res.lr = lr_schedule(c).at(long(step));
  s.opt->step(net.backend(), net.params().data(), net.grads().data(), res.lr);
  if (s.ema) s.ema->update(net.backend(), net.params().data());
  if (p.per_token_noise() && s.w_opt && c.w_lr > 0) {
    const double wlr = c.w_lr * res.lr / c.lr;  // same warm-up and decay as the network
    s.w_opt->step(nn::ReferenceBackend{}, s.w_raw.data(), grad_w.data(), wlr);
  }
  s.step = step;
  s.tokens += B * L;
  return res;
}

/// The network as a Model (model/model.hpp), the one adapter of the samplers and the bounds:
/// logits (K = N) or, for SEDD, log concrete scores (K = D: the head's raw outputs plus the
/// offsets c(u, x) of spec 4.4). Everything stays in the network backend's memory.
template <ModelOutput Out = ModelOutput::logits>
struct NetModel {
  using value_type = Real;
  using memory_space = AppSpace;
  static constexpr ModelOutput output = Out;
  const Problem* p;
  Net* net;

  int num_classes() const { return net->config().vocab_out; }
  bool time_conditioned() const { return net->config().time_dependent(); }
  /// The outputs in the network's own logits buffer (no copy; model/model.hpp): valid, and
  /// writable, until the next forward pass.
  Real* evaluate(const ModelQuery<Real>& q) const {
    const auto& ex = net->backend().exec;
    AppBuffer<Real> cond(static_cast<std::size_t>(q.B));
    ex.for_each(q.B, detail_app::TimeInputKernel<Real>{
                         q.t, q.sigma_bar, cond.data(), q.B,
                         p->objective().time_input == TimeInput::thousand_t});
    net->forward(q.xt, p->causal() ? nullptr : cond.data(), int(q.B), int(q.L));
    Real* out = net->logits();
    const int K = num_classes();
    if constexpr (Out == ModelOutput::log_scores) {
      std::visit(
          [&](const auto& g) {
            using G = std::decay_t<decltype(g)>;
            ex.for_each(q.B * q.L, detail_app::SeddOffsetKernel<G, Real>{g, q.xt, q.sigma_bar, out, q.L, K});
          },
          p->generator());
    }
    return out;
  }
  /// The Model call of the concept: evaluate(), copied into `out`.
  void operator()(const ModelQuery<Real>& q, Real* out) const {
    copy_kernel_n(net->backend().exec, out, evaluate(q), q.B * q.L * num_classes());
  }
};

/// J1 and J2 of the network (estimate_score_bounds through the adapter matching its head), on
/// the network's executor.
inline ScoreBoundEstimate estimate_net_score_bounds(const Problem& p, Net& net,
                                                    const std::vector<int>& x0, std::int64_t num,
                                                    std::int64_t L, const ScoreBoundOptions& so) {
  const auto& ex = net.backend().exec;
  return std::visit(
      [&](const auto& g) {
        return p.score_head() ? estimate_score_bounds(g, p.schedule(),
                                                      NetModel<ModelOutput::log_scores>{&p, &net},
                                                      x0.data(), num, L, so, ex)
                              : estimate_score_bounds(g, p.schedule(),
                                                      NetModel<ModelOutput::logits>{&p, &net},
                                                      x0.data(), num, L, so, ex);
      },
      p.generator());
}

/// Throws std::runtime_error("WHAT is not finite ...") unless e's mean and standard error are
/// finite numbers (the program never reports a NaN bound).
inline void require_finite_estimate(const std::string& what, const McEstimate& e) {
  if (std::isfinite(e.mean) && std::isfinite(e.std_error)) return;
  const bool mean_ok = std::isfinite(e.mean);
  std::string why;
  if (!mean_ok) {
    why = std::string("its mean is ") + (std::isnan(e.mean) ? "NaN" : e.mean > 0 ? "+inf" : "-inf") +
          ", the network's outputs overflow the estimator (a diverged model)";
  } else if (e.batches < 2) {
    why = "its standard error needs at least 2 batches, this estimate has " +
          std::to_string(e.batches);
  } else {
    why = "its standard error is not finite (mean " + std::to_string(e.nats_per_token()) +
          " nats/token): some batch overflowed";
  }
  throw std::runtime_error(what + " is not finite: " + why);
}

/// A validation (or evaluation) bound in nats per sequence of length L, with its name.
struct BoundReport {
  std::string name;  ///< elbo, elbo-T<steps>, j1, j2, nelbo, nll
  McEstimate est;
};

/// Whose evaluation code the reported numbers follow (docs/math/bounds.md, "Conventions of the
/// public codes"). exact: spec 8.2-8.4 (today's numbers); pbrc: PBRC test_perplexity.py J1/J2
/// (BoundConvention::pbrc_code, cut-off 1e-4); sedd: SEDD losses.py's score entropy (= the PBRC
/// code's J1: no prior KL, no (1 - eps) factor; cut-off sampling_eps = 1e-3); md4: md4.py's ELBO
/// (prior term 0).
enum class EvalConvention { exact, pbrc, sedd, md4 };

inline const char* convention_name(EvalConvention c) {
  switch (c) {
    case EvalConvention::pbrc: return "pbrc";
    case EvalConvention::sedd: return "sedd";
    case EvalConvention::md4: return "md4";
    default: return "exact";
  }
}

inline EvalConvention parse_convention(const std::string& s) {
  if (s == "exact") return EvalConvention::exact;
  if (s == "pbrc") return EvalConvention::pbrc;
  if (s == "sedd") return EvalConvention::sedd;
  if (s == "md4") return EvalConvention::md4;
  throw std::invalid_argument("--convention '" + s + "': expected exact, pbrc, sedd or md4");
}

/// The batch size of a bound estimate over `num` sequences: `requested`, made smaller when
/// needed so that there are at least 2 batches (the standard error is over batches). Training's
/// validation and eval use this one rule.
inline int bound_batch(int requested, std::int64_t num) {
  return int(std::min<std::int64_t>(requested, std::max<std::int64_t>(1, num / 2)));
}

/// Options of evaluate_bounds.
struct EvalOptions {
  int batch = 64;
  int passes = 1;
  std::uint64_t seed = 0;
  int md4_steps = 0;      ///< > 0: also the discrete-time MD4 ELBO with this many steps
  bool md4_j_bounds = false;
  EvalConvention convention = EvalConvention::exact;
  /// J1/J2 time cut-off; 0: the convention's (exact: the run's --t-eps, 1e-4 for md4; pbrc:
  /// 1e-4, test_perplexity.py sampling_eps; sedd: 1e-3, losses.py sampling_eps).
  double eps = 0;
  /// Data parallel (docs/distributed.md): the Monte Carlo batches are dealt to the ranks
  /// (McOptions' split) and their sums all-reduced; every rank gets the one-process numbers.
  /// Null or K = 1: one process.
  Communicator* comm = nullptr;
};

/// McOptions' split over eo.comm's ranks (nothing without one).
inline void set_mc_split(McOptions& o, const EvalOptions& eo) {
  if (eo.comm == nullptr || eo.comm->size() == 1) return;
  Communicator* c = eo.comm;
  o.part = c->rank();
  o.parts = c->size();
  o.reduce = [c](double* d, std::size_t n) { c->all_reduce_sum(d, n); };
}

/// The J1/J2 cut-off that evaluate_bounds uses (EvalOptions::eps, or the convention's default).
inline double j_bound_eps(const Problem& p, const EvalOptions& eo) {
  if (eo.eps > 0) return eo.eps;
  switch (eo.convention) {
    case EvalConvention::pbrc: return 1e-4;
    case EvalConvention::sedd: return 1e-3;
    default: return p.loss_kind() == LossKind::md4 ? 1e-4 : p.config().t_eps;
  }
}

/// Throws std::invalid_argument when eo.convention (or eo.eps) does not apply to the run p.
inline void check_eval_convention(const Problem& p, const EvalOptions& eo) {
  const std::string c = std::string("--convention ") + convention_name(eo.convention);
  const std::string what = "this checkpoint was trained with --objective " + p.config().objective;
  if (!(eo.eps >= 0 && eo.eps < 1))
    throw std::invalid_argument("--eps " + std::to_string(eo.eps) + ": must lie in (0, 1)");
  // MD4-only options do nothing on other checkpoints: an error, not a silent no-op.
  if (p.loss_kind() != LossKind::md4 && (eo.md4_steps > 0 || eo.md4_j_bounds))
    throw std::invalid_argument(std::string(eo.md4_steps > 0 ? "--md4-steps (the discrete-time MD4 ELBO)"
                                                             : "--j-bounds (J1/J2 beside MD4's ELBO)") +
                                " needs a masked-diffusion checkpoint (--objective md4); " + what +
                                (p.has_generator() && !p.per_token_noise() ? ", whose J bounds eval reports anyway" : ""));
  if (eo.convention == EvalConvention::exact) {
    if (eo.eps > 0 && (p.causal() || p.per_token_noise() || (p.loss_kind() == LossKind::md4 && !eo.md4_j_bounds)))
      throw std::invalid_argument("--eps sets the J1/J2 cut-off, but " + what +
                                  (p.loss_kind() == LossKind::md4 ? " and its J bounds need --j-bounds"
                                              : ", which has no J bounds"));
    return;
  }
  if (p.causal() || p.per_token_noise())
    throw std::invalid_argument(c + " does not apply: " + what +
                                (p.causal() ? " (its exact NLL has no bound convention)"
                                           : " (its NELBO is reported in the exact convention only)") +
                                "; use --convention exact");
  if (eo.convention == EvalConvention::md4) {
    if (p.loss_kind() != LossKind::md4)
      throw std::invalid_argument(c + " (MD4's ELBO, md4.py) needs a masked-diffusion checkpoint "
                                  "(--objective md4); " + what + ": use --convention exact, pbrc or sedd");
    if (eo.md4_j_bounds)
      throw std::invalid_argument(c + ": MD4's code has no J1/J2; --j-bounds needs --convention "
                                  "exact, pbrc or sedd");
    if (eo.eps > 0)
      throw std::invalid_argument(c + ": MD4's ELBO has no time cut-off (t in [0, 1]); --eps "
                                  "applies to J1/J2");
    return;
  }
  if (eo.md4_steps > 0)
    throw std::invalid_argument(c + " reports J1/J2 only; --md4-steps needs --convention exact or md4");
  if (eo.convention == EvalConvention::sedd && p.config().generator == "roulette")
    throw std::invalid_argument(c + ": SEDD's code (graph_lib.py) has the uniform and absorbing "
                                "graphs only, this checkpoint uses roulette: use --convention exact or pbrc");
}

/// The J1/J2 estimator options of evaluate_bounds (also used by eval --verbose, which repeats
/// the same draws): the run's batch, passes, seed and time sampling, the cut-off eps
/// (j_bound_eps), the convention (exact, or the PBRC code's constants for pbrc and sedd), and the
/// network's output head.
inline ScoreBoundOptions score_bound_options(const Problem& p, const EvalOptions& eo, int V) {
  ScoreBoundOptions so;
  so.batch_size = eo.batch;
  so.passes = eo.passes;
  so.seed = eo.seed;
  so.time_sampling = parse_time_sampling(p.config().time_sampling);
  so.eps = j_bound_eps(p, eo);
  // sedd: SEDD's losses.py loss is the PBRC code's J1 (DWDSE with K, no prior, no (1 - eps)).
  so.convention = eo.convention == EvalConvention::exact ? BoundConvention::exact
                                                         : BoundConvention::pbrc_code;
  so.output = p.score_head() ? ModelOutput::log_scores : ModelOutput::logits;
  so.output_size = V;
  so.log_score_head = false;  // NetModel<log_scores> adds the head's offsets itself
  set_mc_split(so, eo);
  return so;
}

/// Bounds of the negative log-likelihood of the num x L clean sequences x0 under the network
/// (whose parameters must already be the ones to evaluate, e.g. the EMA). The first report is
/// the run's headline bound (the objective entry's `headline`): ELBO (md4), J1 (sedd), J2 (cedd,
/// cedd-star), NELBO (genmd4), exact NLL (ar). Every report follows eo.convention
/// (check_eval_convention throws where it does not apply): pbrc gives j1 and j2 (j2 first for
/// cedd), sedd gives j1, md4 the ELBOs without the prior term; for an md4 checkpoint pbrc and sedd
/// compute J1/J2 from the posterior logits.
inline std::vector<BoundReport> evaluate_bounds(const Problem& p, Net& net,
                                                const std::vector<Real>& w_raw,
                                                const std::vector<int>& x0, std::int64_t num,
                                                std::int64_t L, const EvalOptions& eo) {
  check_eval_convention(p, eo);
  std::vector<BoundReport> out;
  const std::string& headline = p.objective().headline;
  if (p.causal() || p.per_token_noise()) {
    // The exact NLL (ar) and the GenMD4 NELBO: the training loss path, without gradients.
    StepScratch sc;
    std::uint64_t k = 0;
    const int passes = p.causal() ? 1 : eo.passes;
    McOptions split;
    set_mc_split(split, eo);
    detail::mc::BatchSums sums(split, passes * ((num + eo.batch - 1) / eo.batch), 1);
    for (int pass = 0; pass < passes; ++pass)
      for (std::int64_t b0 = 0; b0 < num; b0 += eo.batch, ++k) {
        const std::int64_t B = std::min<std::int64_t>(eo.batch, num - b0);
        sums.count(k, B);
        if (!sums.mine(k)) continue;
        DrawKeys keys;
        keys.seed = eo.seed;
        keys.time_stream = kMcTimeStream;
        keys.time_index = k;
        keys.noise[0] = kMcForwardStream + std::uint32_t(2 * k);
        keys.noise[1] = kMcForwardStream + std::uint32_t(2 * k + 1);
        sums.set(0, k, batch_loss(p, net, w_raw, x0.data() + b0 * L, B, L, keys, nullptr, Real(0), sc));
      }
    sums.finish();
    out.push_back({headline, sums.accumulator(0).estimate(L)});
    return out;
  }
  const NetModel<ModelOutput::logits> model{&p, &net};
  const int V = net.config().vocab_out;
  const bool elbo_rows =
      eo.convention == EvalConvention::exact || eo.convention == EvalConvention::md4;
  if (p.loss_kind() == LossKind::md4 && elbo_rows) {
    const auto& g = std::get<AbsorbingGenerator<Real>>(p.generator());
    Md4ElboOptions mo;
    mo.batch_size = eo.batch;
    mo.passes = eo.passes;
    mo.seed = eo.seed;
    mo.time_sampling = parse_time_sampling(p.config().time_sampling);
    mo.output_size = V;
    mo.prior = eo.convention != EvalConvention::md4;  // md4.py latent_loss() = 0
    set_mc_split(mo, eo);
    const auto& ex = net.backend().exec;
    out.push_back({headline, estimate_md4_elbo(g, p.schedule(), model, x0.data(), num, L, mo, ex).elbo});
    if (eo.md4_steps > 0) {
      mo.steps = eo.md4_steps;
      out.push_back({"elbo-T" + std::to_string(eo.md4_steps),
                     estimate_md4_elbo(g, p.schedule(), model, x0.data(), num, L, mo, ex).elbo});
    }
    if (!eo.md4_j_bounds) return out;
  }
  const ScoreBoundOptions so = score_bound_options(p, eo, V);
  const ScoreBoundEstimate e = estimate_net_score_bounds(p, net, x0, num, L, so);
  if (eo.convention == EvalConvention::sedd) {
    out.push_back({"j1", e.j1});  // SEDD's code has no J2
  } else if (headline == "j2") {
    out.push_back({"j2", e.j2});
    out.push_back({"j1", e.j1});
  } else {
    out.push_back({"j1", e.j1});
    out.push_back({"j2", e.j2});
  }
  return out;
}

}  // namespace app
}  // namespace discdiff
