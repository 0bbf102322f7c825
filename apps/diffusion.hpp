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
// Randomness: every draw is CounterRng(seed, stream, index) with the step number in the index or
// the stream (streams below), so a step's batch, times, noise and dropout are pure functions of
// (seed, step): a resumed run repeats the uninterrupted one bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <discdiff/bound/monte_carlo.hpp>
#include <discdiff/bound/time_sampling.hpp>
#include <discdiff/data/data.hpp>
#include <discdiff/exec/sequential.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/nn/nn.hpp>
#include <discdiff/objective/checked_xt.hpp>
#include <discdiff/objective/objectives.hpp>
#include <discdiff/ops/forward_corrupt.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>

#include "dyn_schedule.hpp"
#include "run_config.hpp"

namespace discdiff {
namespace app {

using Real = float;
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
  Problem(const RunConfig& cfg, int N) : cfg_(cfg), N_(N) {
    if (N < 2) throw std::invalid_argument("the vocabulary needs at least 2 regular tokens");
    const auto& o = cfg.objective;
    if (o != "ar" && o != "genmd4") {
      if (cfg.generator == "absorbing") gen_ = AbsorbingGenerator<Real>(N);
      else if (cfg.generator == "uniform") gen_ = UniformGenerator<Real>(N);
      else gen_ = RouletteGenerator<Real>(N, Real(cfg.p_m));
      sched_ = make_schedule<Real>(cfg.schedule, cfg.eta, cfg.sched_d, cfg.poly_k, cfg.sigma_min,
                                   cfg.sigma_max, cfg.p_m);
    }
  }

  const RunConfig& config() const { return cfg_; }
  int num_regular() const { return N_; }
  int mask_id() const { return N_; }
  bool is_ar() const { return cfg_.objective == "ar"; }
  bool is_genmd4() const { return cfg_.objective == "genmd4"; }
  bool is_sedd() const { return cfg_.objective == "sedd"; }
  bool is_cedd() const { return cfg_.objective == "cedd" || cfg_.objective == "cedd-star"; }
  bool is_md4() const { return cfg_.objective == "md4"; }
  bool has_generator() const { return gen_.has_value(); }
  const GenVariant& generator() const { return *gen_; }
  const DynSchedule<Real>& schedule() const { return sched_; }
  int num_states() const {
    return gen_ ? std::visit([](const auto& g) { return g.num_states(); }, *gen_) : N_ + 1;
  }
  /// Lower end of the training and bound time range.
  double t_min() const { return is_sedd() || is_cedd() ? cfg_.t_eps : is_genmd4() ? 1e-3 : 0.0; }

  nn::ModelConfig model_config() const {
    nn::ModelConfig m;
    m.n_layer = cfg_.n_layer;
    m.n_head = cfg_.n_head;
    m.d_model = cfg_.d_model;
    m.d_ff = cfg_.d_ff > 0 ? cfg_.d_ff : 4 * cfg_.d_model;
    m.seq_len = is_ar() ? cfg_.seq_len + 1 : cfg_.seq_len;
    m.vocab_in = N_ + 1;
    m.vocab_out = is_sedd() ? num_states() : N_;
    m.cond_dim = cfg_.cond_dim;
    m.temb_dim = 2 * cfg_.cond_dim;
    m.time_cond = !is_ar() && cfg_.time_cond != 0;
    m.causal = is_ar();
    m.norm = cfg_.norm == "rmsnorm" ? nn::NormType::rms_norm : nn::NormType::layer_norm;
    m.mlp = cfg_.mlp == "swiglu" ? nn::MlpType::swiglu
            : cfg_.mlp == "geglu" ? nn::MlpType::geglu
                                  : nn::MlpType::gelu;
    m.dropout = cfg_.dropout;
    m.validate("discdiff train: network");
    return m;
  }

  /// The network's time input for time t and total noise u.
  Real time_input(Real t, Real u) const { return is_genmd4() ? Real(1000) * t : u; }

  /// Human-readable one-line description.
  std::string describe() const {
    std::string s = "objective " + cfg_.objective;
    if (gen_) s += ", generator " + cfg_.generator, s += ", schedule " + sched_.label();
    if (cfg_.generator == "roulette") s += " (p_m " + std::to_string(cfg_.p_m) + ")";
    if (is_genmd4()) s += ", state-dependent masking, S-GEN-POLY (learned w)";
    return s;
  }

 private:
  RunConfig cfg_;
  int N_;
  std::optional<GenVariant> gen_;
  DynSchedule<Real> sched_;
};

/// Everything that changes during training (and is stored in a checkpoint).
struct TrainState {
  std::unique_ptr<nn::Transformer<Real>> net;
  std::unique_ptr<nn::AdamW<Real>> opt;
  std::unique_ptr<nn::Ema<Real>> ema;      ///< null when --ema 0
  std::vector<Real> w_raw;                 ///< genmd4: raw masking-schedule parameters (N)
  std::unique_ptr<nn::AdamW<Real>> w_opt;  ///< genmd4: their optimiser
  std::int64_t step = 0;                   ///< optimiser steps done
  std::int64_t tokens = 0;                 ///< training tokens seen
  double elapsed_s = 0;                    ///< training wall time so far (all sessions)

  static TrainState fresh(const Problem& p) {
    const RunConfig& c = p.config();
    TrainState s;
    s.net = std::make_unique<nn::Transformer<Real>>(p.model_config());
    s.net->init(c.seed);
    nn::AdamWConfig ac;
    ac.beta1 = c.beta1;
    ac.beta2 = c.beta2;
    ac.weight_decay = c.weight_decay;
    s.opt = std::make_unique<nn::AdamW<Real>>(s.net->num_params(), ac);
    if (c.ema > 0)
      s.ema = std::make_unique<nn::Ema<Real>>(s.net->params().data(), s.net->num_params(), c.ema);
    if (p.is_genmd4()) {
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

inline xt::xtensor<int, 2> as_tokens(const int* p, std::int64_t B, std::int64_t L) {
  auto x = xt::xtensor<int, 2>::from_shape({std::size_t(B), std::size_t(L)});
  std::copy(p, p + B * L, x.data());
  return x;
}
template <class T>
xt::xtensor<T, 3> as_outputs(const T* p, std::int64_t B, std::int64_t L, int V) {
  auto x = xt::xtensor<T, 3>::from_shape({std::size_t(B), std::size_t(L), std::size_t(V)});
  std::copy(p, p + B * L * V, x.data());
  return x;
}
template <class T>
xt::xtensor<T, 1> as_vector(const std::vector<T>& v) {
  auto x = xt::xtensor<T, 1>::from_shape({v.size()});
  std::copy(v.begin(), v.end(), x.data());
  return x;
}

/// Per-row times t = t0 + (1 - t0) tau for step `index` of stream `stream`.
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

}  // namespace detail_app

/// One optimiser step on the clean batch x0 (B x L): forward noise, network forward, objective,
/// backward, clipping, AdamW, EMA. `step` is the 1-based number of this step.
inline StepResult train_step(const Problem& p, TrainState& s, const std::vector<int>& x0,
                             std::int64_t B, std::int64_t L, std::int64_t step) {
  using namespace detail_app;
  const RunConfig& c = p.config();
  nn::Transformer<Real>& net = *s.net;
  const nn::DropoutKey dk{c.seed, static_cast<std::uint64_t>(step)};
  const int N = p.num_regular();
  const Real gs = Real(1.0 / double(B * L));
  double loss_tok = 0;
  std::vector<Real> grad_w;
  if (p.is_ar()) {
    const std::int64_t L1 = L + 1;
    std::vector<int> tok(static_cast<std::size_t>(B * L1));
    for (std::int64_t b = 0; b < B; ++b) {
      tok[b * L1] = N;
      std::copy(x0.begin() + b * L, x0.begin() + (b + 1) * L, tok.begin() + b * L1 + 1);
    }
    const Real* logits = net.forward(tok.data(), nullptr, int(B), int(L1), &dk);
    loss_tok = nn::causal_cross_entropy(net.backend(), logits, tok.data(), int(B), int(L1), N, net.dlogits());
  } else if (p.is_genmd4()) {
    PerTokenPolynomialSchedule<Real> sched(s.w_raw, Real(c.eta));
    StateDependentMaskingGenerator<Real> gen(N);
    const auto t = draw_times(p, c.seed, kTrainTimeStream, std::uint64_t(step), B);
    std::vector<Real> ubar(static_cast<std::size_t>(B * N));
    for (std::int64_t b = 0; b < B; ++b) sched.total_noise(t[b], ubar.data() + b * N);
    // Both masked draws in one forward pass of 2B sequences (rows 0..B-1: z1, B..2B-1: z2).
    std::vector<int> z(static_cast<std::size_t>(2 * B * L));
    for (int k = 0; k < 2; ++k)
      forward_corrupt_raw(SequentialExecutor{}, gen, x0.data(), B, L, ubar.data(), N,
                          z.data() + k * B * L, c.seed, noise_stream(step, k));
    std::vector<Real> cond(static_cast<std::size_t>(2 * B));
    for (std::int64_t b = 0; b < B; ++b) cond[b] = cond[B + b] = p.time_input(t[b], 0);
    const Real* logits = net.forward(z.data(), cond.data(), int(2 * B), int(L), &dk);
    const std::int64_t half = B * L * N;
    GenMd4Options<Real> go;
    go.t1 = Real(p.t_min());
    go.grad_scale = gs;
    auto r = genmd4_loss(sched, as_tokens(x0.data(), B, L), as_tokens(z.data(), B, L),
                         as_tokens(z.data() + B * L, B, L), as_outputs(logits, B, L, N),
                         as_outputs(logits + half, B, L, N), as_vector(t), go);
    Real* dl = net.dlogits();
    std::copy(r.grad_logits1.data(), r.grad_logits1.data() + half, dl);
    std::copy(r.grad_logits2.data(), r.grad_logits2.data() + half, dl + half);
    double sum = 0;
    for (std::int64_t b = 0; b < B; ++b) sum += double(r.nelbo(b));
    loss_tok = sum / double(B * L);
    grad_w.assign(r.grad_w_raw.data(), r.grad_w_raw.data() + N);
  } else {
    const auto t = draw_times(p, c.seed, kTrainTimeStream, std::uint64_t(step), B);
    std::vector<Real> u(t.size()), cond(t.size());
    for (std::size_t b = 0; b < t.size(); ++b) {
      u[b] = p.schedule().sigma_bar(t[b]);
      cond[b] = p.time_input(t[b], u[b]);
    }
    std::vector<int> xt(x0.size());
    std::visit(
        [&](const auto& g) {
          forward_corrupt_raw(SequentialExecutor{}, g, x0.data(), B, L, u.data(), xt.data(), c.seed,
                              noise_stream(step, 0));
        },
        p.generator());
    const Real* out = net.forward(xt.data(), cond.data(), int(B), int(L), &dk);
    const int V = net.config().vocab_out;
    const auto x0x = as_tokens(x0.data(), B, L), xtx = as_tokens(xt.data(), B, L);
    const auto tx = as_vector(t);
    const auto outx = as_outputs(out, B, L, V);
    LossResult<Real> r = std::visit(
        [&](const auto& g) -> LossResult<Real> {
          using G = std::decay_t<decltype(g)>;
          if (p.is_sedd()) {
            SeddOptions so;
            so.include_k = true;
            so.log_score_head = true;
            return sedd_loss(g, p.schedule(), x0x, xtx, tx, outx, so, gs);
          }
          if (p.is_cedd())
            return cedd_loss(g, p.schedule(), x0x, xtx, tx, outx,
                             c.objective == "cedd" ? CeddVariant::cedd : CeddVariant::cedd_star, gs);
          if constexpr (std::is_same<G, AbsorbingGenerator<Real>>::value)
            return md4_loss(g, p.schedule(), x0x, xtx, tx, outx, Md4Options{}, gs);
          throw std::invalid_argument("md4 needs the absorbing generator");
        },
        p.generator());
    std::copy(r.grad.data(), r.grad.data() + B * L * V, net.dlogits());
    double sum = 0;
    for (std::int64_t b = 0; b < B; ++b) sum += double(r.loss(b));
    loss_tok = sum / double(B * L);
  }
  if (!std::isfinite(loss_tok))
    throw std::runtime_error("the training loss is not finite at step " + std::to_string(step) +
                             " (lower --lr, or raise --clip)");
  net.zero_grad();
  net.backward();
  StepResult res;
  res.loss_per_token = loss_tok;
  res.grad_norm = c.clip > 0 ? nn::clip_grad_norm(net.backend(), net.grads().data(), net.num_params(), c.clip)
                             : nn::global_norm(net.backend(), net.grads().data(), net.num_params());
  if (!std::isfinite(res.grad_norm))
    throw std::runtime_error("the gradient norm is not finite at step " + std::to_string(step));
  res.lr = lr_schedule(c).at(long(step));
  s.opt->step(net.backend(), net.params().data(), net.grads().data(), res.lr);
  if (s.ema) s.ema->update(net.backend(), net.params().data());
  if (p.is_genmd4() && s.w_opt && c.w_lr > 0) {
    const double wlr = c.w_lr * res.lr / c.lr;  // same warm-up and decay as the network
    s.w_opt->step(net.backend(), s.w_raw.data(), grad_w.data(), wlr);
  }
  s.step = step;
  s.tokens += B * L;
  return res;
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
};

/// The J1/J2 cut-off that evaluate_bounds uses (EvalOptions::eps, or the convention's default).
inline double j_bound_eps(const Problem& p, const EvalOptions& eo) {
  if (eo.eps > 0) return eo.eps;
  switch (eo.convention) {
    case EvalConvention::pbrc: return 1e-4;
    case EvalConvention::sedd: return 1e-3;
    default: return p.is_md4() ? 1e-4 : p.config().t_eps;
  }
}

/// Throws std::invalid_argument when eo.convention (or eo.eps) does not apply to the run p.
inline void check_eval_convention(const Problem& p, const EvalOptions& eo) {
  const std::string c = std::string("--convention ") + convention_name(eo.convention);
  const std::string what = "this checkpoint was trained with --objective " + p.config().objective;
  if (!(eo.eps >= 0 && eo.eps < 1))
    throw std::invalid_argument("--eps " + std::to_string(eo.eps) + ": must lie in (0, 1)");
  if (eo.convention == EvalConvention::exact) {
    if (eo.eps > 0 && (p.is_ar() || p.is_genmd4() || (p.is_md4() && !eo.md4_j_bounds)))
      throw std::invalid_argument("--eps sets the J1/J2 cut-off, but " + what +
                                  (p.is_md4() ? " and its J bounds need --j-bounds"
                                              : ", which has no J bounds"));
    return;
  }
  if (p.is_ar() || p.is_genmd4())
    throw std::invalid_argument(c + " does not apply: " + what +
                                (p.is_ar() ? " (its exact NLL has no bound convention)"
                                           : " (its NELBO is reported in the exact convention only)") +
                                "; use --convention exact");
  if (eo.convention == EvalConvention::md4) {
    if (!p.is_md4())
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

/// Model callable for the Monte Carlo bounds: runs the network on q.xt at the rows' times.
struct NetModel {
  const Problem* p;
  nn::Transformer<Real>* net;
  void operator()(const McQuery<Real>& q, Real* out) const {
    std::vector<Real> cond(static_cast<std::size_t>(q.B));
    for (std::int64_t b = 0; b < q.B; ++b) cond[b] = p->time_input(q.t[b], q.u ? q.u[b] : Real(0));
    const Real* o = net->forward(q.xt, p->is_ar() ? nullptr : cond.data(), int(q.B), int(q.L));
    const std::size_t n = std::size_t(q.B * q.L) * std::size_t(net->config().vocab_out);
    std::copy(o, o + n, out);
  }
};

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
  so.output = p.is_sedd() ? ModelOutput::log_scores : ModelOutput::logits;
  so.output_size = V;
  so.log_score_head = p.is_sedd();
  return so;
}

/// Bounds of the negative log-likelihood of the num x L clean sequences x0 under the network
/// (whose parameters must already be the ones to evaluate, e.g. the EMA). The first report is
/// the run's headline bound: ELBO (md4), J1 (sedd), J2 (cedd, cedd-star), NELBO (genmd4), exact
/// NLL (ar). Every report follows eo.convention (check_eval_convention throws where it does not
/// apply): pbrc gives j1 and j2 (j2 first for cedd), sedd gives j1, md4 the ELBOs without the
/// prior term; for an md4 checkpoint pbrc and sedd compute J1/J2 from the posterior logits.
inline std::vector<BoundReport> evaluate_bounds(const Problem& p, nn::Transformer<Real>& net,
                                                const std::vector<Real>& w_raw,
                                                const std::vector<int>& x0, std::int64_t num,
                                                std::int64_t L, const EvalOptions& eo) {
  using namespace detail_app;
  check_eval_convention(p, eo);
  std::vector<BoundReport> out;
  const int N = p.num_regular();
  if (p.is_ar()) {
    BatchMeanAccumulator acc;
    const std::int64_t L1 = L + 1;
    for (std::int64_t b0 = 0; b0 < num; b0 += eo.batch) {
      const std::int64_t B = std::min<std::int64_t>(eo.batch, num - b0);
      std::vector<int> tok(static_cast<std::size_t>(B * L1));
      for (std::int64_t b = 0; b < B; ++b) {
        tok[b * L1] = N;
        std::copy(x0.begin() + (b0 + b) * L, x0.begin() + (b0 + b + 1) * L, tok.begin() + b * L1 + 1);
      }
      const Real* lg = net.forward(tok.data(), nullptr, int(B), int(L1));
      const double mean_tok = nn::causal_cross_entropy(net.backend(), lg, tok.data(), int(B), int(L1), N, (Real*)nullptr);
      acc.add_batch(mean_tok * double(B * L), B);
    }
    out.push_back({"nll", acc.estimate(L)});
    return out;
  }
  if (p.is_genmd4()) {
    PerTokenPolynomialSchedule<Real> sched(w_raw, Real(p.config().eta));
    StateDependentMaskingGenerator<Real> gen(N);
    BatchMeanAccumulator acc;
    std::uint64_t k = 0;
    for (int pass = 0; pass < eo.passes; ++pass)
      for (std::int64_t b0 = 0; b0 < num; b0 += eo.batch, ++k) {
        const std::int64_t B = std::min<std::int64_t>(eo.batch, num - b0);
        std::vector<int> xb(x0.begin() + b0 * L, x0.begin() + (b0 + B) * L);
        const auto t = draw_times(p, eo.seed, kMcTimeStream, k, B);
        std::vector<Real> ubar(static_cast<std::size_t>(B * N));
        for (std::int64_t b = 0; b < B; ++b) sched.total_noise(t[b], ubar.data() + b * N);
        std::vector<int> z(static_cast<std::size_t>(2 * B * L));
        for (int j = 0; j < 2; ++j)
          forward_corrupt_raw(SequentialExecutor{}, gen, xb.data(), B, L, ubar.data(), N,
                              z.data() + j * B * L, eo.seed, kMcForwardStream + std::uint32_t(2 * k + j));
        std::vector<Real> cond(static_cast<std::size_t>(2 * B));
        for (std::int64_t b = 0; b < B; ++b) cond[b] = cond[B + b] = p.time_input(t[b], 0);
        const Real* lg = net.forward(z.data(), cond.data(), int(2 * B), int(L));
        GenMd4Options<Real> go;
        go.t1 = Real(p.t_min());
        const std::int64_t half = B * L * N;
        auto r = genmd4_loss(sched, as_tokens(xb.data(), B, L), as_tokens(z.data(), B, L),
                             as_tokens(z.data() + B * L, B, L), as_outputs(lg, B, L, N),
                             as_outputs(lg + half, B, L, N), as_vector(t), go);
        double s = 0;
        for (std::int64_t b = 0; b < B; ++b) s += double(r.nelbo(b));
        acc.add_batch(s, B);
      }
    out.push_back({"nelbo", acc.estimate(L)});
    return out;
  }
  NetModel model{&p, &net};
  const int V = net.config().vocab_out;
  const bool elbo_rows =
      eo.convention == EvalConvention::exact || eo.convention == EvalConvention::md4;
  if (p.is_md4() && elbo_rows) {
    const auto& g = std::get<AbsorbingGenerator<Real>>(p.generator());
    Md4ElboOptions mo;
    mo.batch_size = eo.batch;
    mo.passes = eo.passes;
    mo.seed = eo.seed;
    mo.time_sampling = parse_time_sampling(p.config().time_sampling);
    mo.output_size = V;
    mo.prior = eo.convention != EvalConvention::md4;  // md4.py latent_loss() = 0
    out.push_back({"elbo", estimate_md4_elbo(g, p.schedule(), model, x0.data(), num, L, mo).elbo});
    if (eo.md4_steps > 0) {
      mo.steps = eo.md4_steps;
      out.push_back({"elbo-T" + std::to_string(eo.md4_steps),
                     estimate_md4_elbo(g, p.schedule(), model, x0.data(), num, L, mo).elbo});
    }
    if (!eo.md4_j_bounds) return out;
  }
  const ScoreBoundOptions so = score_bound_options(p, eo, V);
  const ScoreBoundEstimate e = std::visit(
      [&](const auto& g) {
        return estimate_score_bounds(g, p.schedule(), model, x0.data(), num, L, so);
      },
      p.generator());
  if (eo.convention == EvalConvention::sedd) {
    out.push_back({"j1", e.j1});  // SEDD's code has no J2
  } else if (p.is_cedd()) {
    out.push_back({"j2", e.j2});
    out.push_back({"j1", e.j1});
  } else {
    out.push_back({"j1", e.j1});
    out.push_back({"j2", e.j2});
  }
  return out;
}

/// The network as a sampler Denoiser (sampler/denoiser.hpp): logits (K = N) or, for SEDD, log
/// concrete scores (K = D, the head's raw outputs plus the offsets c(u, x) of spec 4.4).
template <DenoiserOutput Out>
struct NetDenoiser {
  using value_type = Real;
  static constexpr DenoiserOutput output = Out;
  const Problem* p;
  nn::Transformer<Real>* net;
  mutable std::int64_t calls = 0;

  int num_classes() const { return net->config().vocab_out; }
  bool time_conditioned() const { return net->config().time_cond; }
  void operator()(const DenoiserInput<Real>& in, std::vector<Real>& out) const {
    std::vector<Real> cond(static_cast<std::size_t>(in.B));
    for (std::int64_t b = 0; b < in.B; ++b)
      cond[b] = p->time_input(in.t[b], in.sigma_bar ? in.sigma_bar[b] : Real(0));
    const Real* o = net->forward(in.xt, cond.data(), int(in.B), int(in.L));
    const int K = num_classes();
    out.assign(o, o + std::size_t(in.B * in.L) * std::size_t(K));
    ++calls;
    if constexpr (Out == DenoiserOutput::log_scores) {
      std::visit(
          [&](const auto& g) {
            for (std::int64_t b = 0; b < in.B; ++b)
              for (std::int64_t l = 0; l < in.L; ++l) {
                const std::int64_t i = b * in.L + l;
                const int x = in.xt[i];
                const Real c = sedd_log_score_offset(g, x, in.sigma_bar[b]);
                Real* row = out.data() + i * K;
                for (int k = 0; k < K; ++k)
                  if (k != x) row[k] += c;
              }
          },
          p->generator());
    }
  }
};

}  // namespace app
}  // namespace discdiff
