// discdiff/bound/monte_carlo.hpp: Monte Carlo estimators of the likelihood bounds J1, J2
// (spec/MATH.md 6.4-6.7, 8.3, 8.4) and of the MD4 / MDLM ELBO (5.3, 8.2), with the time
// sampling of 8.1, each reported in nats per sequence and per token, bits per token and
// perplexity, with a standard error. docs/math/bounds.md has the derivations.
//
// Per clean sequence x_0 (length L) and one time draw t ~ f on [eps, 1] (McOptions::time_proposal,
// bound/time_sampling.hpp: the inverse CDF of the proposal applied to the unit draw tau; f =
// 1/(1 - eps) for TimeProposal::uniform), x_t ~ p_{t|0}:
//
//   J1hat(x_0) = L KL_prior + (sigma(t)/f(t)) sum_i sum_{b != x_t^i} Q[x_t^i,b] D_K(r_{i,b} || s_theta)
//   J2hat(x_0) = L CE_ref   + (sigma(t)/f(t)) sum_i sum_{b != x_t^i} Q[x_t^i,b] (s_theta - r log s_theta)
//                - X_exit
//
//   KL_prior = prior_kl_per_token(gen, sbar(1), ref), CE_ref = reference_cross_entropy_per_token,
//   X_exit   = exit_rate_integral(gen, L, sbar(eps), sbar(1))       (bound/reference_terms.hpp).
//   The inner sums are SEDD's DWDSE per position e_i with K (J1) and without K (J2, "l-bar"),
//   objective/sedd.hpp sedd_position (include_k = true / false); the scores s_theta are
//     ModelOutput::log_scores  the model's log-scores lambda = log s_theta (V = D), optionally
//                              through SEDD's log-score head (spec 4.4, ScoreBoundOptions::log_score_head);
//     ModelOutput::logits      clean-token logits (V = N or D; CEDD, MD4, MDLM heads), turned into
//                              scores by score/probs_to_score.hpp logits_to_score (spec 4.1-4.2).
//   Both estimates come from the same draws, so J2hat - J1hat (paired) is reported as well: its
//   expectation is L H(P_{sbar(eps)}[., a]) exactly (spec 6.6), whatever the data and the model.
//   The reported J2 (exact convention) is therefore J1hat + L H(P_{sbar(eps)}[., a]): the direct
//   estimate J2hat with the paired difference as a control variate of known mean,
//   J2hat - (J2hat - J1hat - E[J2hat - J1hat]); same expectation, J1's standard error, and
//   J2 >= J1 in every report. J2hat itself is kept as `j2_direct` (a check: the two must agree
//   within their errors). The PBRC convention has no such identity: there j2 = j2_direct.
//
// MD4 ELBO on [t0, t1] (absorbing generator; V = N, or N + 1 with the MASK logit ignored):
//   continuous  l = (w(t)/f(t)) sum_{i: x_t^i = MASK} -log mu^i(x_0^i) + L_recon + L_prior,
//               t ~ f on [t0, t1] (time proposal; uniform: 1/f = t1 - t0), w = sched.elbo_weight
//   discrete T  k = floor(tau T) + 1, t_k = t0 + (t1 - t0) k/T, s_k = t_{k-1}:
//               l = T ((alpha_{s_k} - alpha_{t_k})/(1 - alpha_{t_k})) sum_masked -log mu + L_recon + L_prior
//   L_recon = L (1 - alpha(t0)) log N, L_prior = L alpha(t1) log N; the per-position cross-entropy
//   and weights come from objective/md4.hpp (md4_loss_raw, md4_step_fraction, md4_discrete_step).
//   These are unbiased estimates of md4_continuous_elbo / md4_discrete_elbo (bound/exact_md4.hpp).
//
// Procedure: the sequences are processed in batches of B (the last may be smaller), `passes`
// times, each batch with its own time draws (TimeSampling, default the antithetic lattice) and
// forward noise (ops/forward_corrupt.hpp), all from CounterRng(seed, ...): time draws use stream
// kMcTimeStream and index = batch number; the forward noise of batch k uses stream
// kMcForwardStream + k. A batch is one sample unit: the estimate is sum / count over every row,
// and its standard error is the ratio-estimator (cluster) formula over the K batch sums S_k with
// n_k rows: SE^2 = K/(K-1) sum_k (S_k - mean n_k)^2 / (sum_k n_k)^2. It is valid for the lattice
// and stratified schemes (whose rows are dependent within a batch) and needs K >= 2 (else NaN).
// Per-token figures divide by L; bits = nats/ln 2; perplexity exp(nats/L) with the delta-method
// error perplexity * SE/L. Average before exponentiating (spec 8.4).
//
// BoundConvention::pbrc_code reproduces PBRC `test_perplexity.py` instead (spec 6.7): no (1 - eps)
// factor, no prior KL in J1, CE_ref = log N per token for uniform and 0 otherwise, and the exit
// term uniform: (1 - 1/N) sigma(t) per position inside the average; absorbing: L (1 - eps);
// roulette: L (1 - (1-p_m)/N)(1 - eps)/p_m (the code's "add eps - 1", d ignored). Its average
// over t ~ U[eps, 1] is estimated with weight (1/f(t))/(1 - eps) under a non-uniform proposal.
//
// The model is a Model of model/model.hpp (the samplers' interface: model(const ModelQuery<T>& q,
// T* out) writes the q.B x q.L x V outputs for the noisy tokens q.xt at the per-row times q.t and
// total noises q.sigma_bar), or a bare callable with that signature; it is called once per batch.
// When the model declares num_classes() or `output`, they must agree with the options' V and
// output kind. Backends: any executor whose memory space is the model's; the noisy tokens, the
// outputs and every per-position buffer live in that space, the clean batch and the per-row times
// are copied in, and the per-position terms come back to the host, where every sum runs in a
// fixed order. Inputs are validated: tokens in range, sizes consistent, every model output not NaN
// and not +inf (-inf is a zero probability / score) and, for logits, a finite regular logit per
// position (check_model_output), otherwise std::invalid_argument naming the value. Results are
// bit-identical across executors and thread counts (every position is computed from its own
// inputs, sums run in a fixed order on the host).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "../exec/algorithm.hpp"
#include "../exec/memory.hpp"
#include "../exec/sequential.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/roulette.hpp"
#include "../generator/uniform.hpp"
#include "../model/model.hpp"
#include "../objective/md4.hpp"
#include "../objective/sedd.hpp"
#include "../ops/forward_corrupt.hpp"
#include "../score/probs_to_score.hpp"
#include "reference_terms.hpp"
#include "time_sampling.hpp"

namespace discdiff {

/// Counter-RNG streams of the Monte Carlo drivers (time draws; forward noise of batch k is
/// stream kMcForwardStream + k).
inline constexpr std::uint32_t kMcTimeStream = 0x4d430001u;
inline constexpr std::uint32_t kMcForwardStream = 0x10000000u;
inline constexpr std::uint64_t kMcMaxBatches = 0x3fffffffull;
/// Default bounds of the J estimator's work rows (ScoreBoundOptions::scratch_bytes = 0): host
/// and device executors.
inline constexpr std::size_t kMcHostScratchBytes = std::size_t(64) << 20;
inline constexpr std::size_t kMcDeviceScratchBytes = std::size_t(1) << 30;

// ------------------------------------------------------------------ estimates

/// A Monte Carlo estimate in nats per sequence and the derived per-token units.
struct McEstimate {
  double mean = 0.0;           ///< nats per sequence
  double std_error = 0.0;      ///< standard error of `mean` (NaN with fewer than 2 batches)
  std::int64_t length = 1;     ///< tokens per sequence (per-token figures divide by it)
  std::int64_t samples = 0;    ///< noised sequences averaged
  std::int64_t batches = 0;    ///< batches (the sample units of the standard error)

  double nats_per_token() const { return mean / static_cast<double>(length); }
  double nats_per_token_se() const { return std_error / static_cast<double>(length); }
  double bits_per_token() const { return nats_per_token() / 0.69314718055994530942; }
  double bits_per_token_se() const { return nats_per_token_se() / 0.69314718055994530942; }
  /// exp(nats per token) (spec 1.7).
  double perplexity() const { return std::exp(nats_per_token()); }
  /// Delta method: perplexity * SE per token.
  double perplexity_se() const { return perplexity() * nats_per_token_se(); }
};

/// Per-batch sums -> mean and ratio-estimator (cluster) standard error (file comment).
class BatchMeanAccumulator {
 public:
  void add_batch(double sum, std::int64_t count) {
    sums_.push_back(sum);
    counts_.push_back(count);
  }
  std::int64_t batches() const { return static_cast<std::int64_t>(sums_.size()); }

  McEstimate estimate(std::int64_t length) const {
    McEstimate e;
    e.length = length;
    e.batches = batches();
    detail::CompensatedSum<double> s;
    std::int64_t n = 0;
    for (std::size_t k = 0; k < sums_.size(); ++k) {
      s.add(sums_[k]);
      n += counts_[k];
    }
    e.samples = n;
    if (n == 0) {
      e.mean = e.std_error = std::numeric_limits<double>::quiet_NaN();
      return e;
    }
    e.mean = s.value() / static_cast<double>(n);
    if (sums_.size() < 2) {
      e.std_error = std::numeric_limits<double>::quiet_NaN();
      return e;
    }
    detail::CompensatedSum<double> v;
    for (std::size_t k = 0; k < sums_.size(); ++k) {
      const double dev = sums_[k] - e.mean * static_cast<double>(counts_[k]);
      v.add(dev * dev);
    }
    const double K = static_cast<double>(sums_.size());
    e.std_error = std::sqrt(K / (K - 1.0) * v.value()) / static_cast<double>(n);
    return e;
  }

 private:
  std::vector<double> sums_;
  std::vector<std::int64_t> counts_;
};

// ------------------------------------------------------------------ model interface

/// Which constants and factors the J1/J2 estimators use (file comment).
enum class BoundConvention {
  exact,     ///< spec 8.3/8.4: (1 - eps) factor, prior KL, reference CE, closed-form exit integral
  pbrc_code  ///< PBRC test_perplexity.py (spec 6.7): code-level J1/J2
};

/// Options shared by every estimator.
struct McOptions {
  std::int64_t batch_size = 64;  ///< B: sequences per batch (one lattice per batch)
  int passes = 1;                ///< times every sequence is noised (fresh draws each pass)
  std::uint64_t seed = 0;
  TimeSampling time_sampling = TimeSampling::antithetic;
  /// Density of t on the time range (time_sampling.hpp): the default mask_power mixture makes
  /// every estimator here finite-variance for every shipped schedule (docs/math/bounds.md);
  /// uniform is the public codes' t ~ U[t0, t1] (kept for comparison and reproduction).
  TimeProposal time_proposal = TimeProposal::mask_power;
  /// Split across processes (the program's data-parallel eval, docs/distributed.md): with
  /// parts > 1 this call computes only the batches b (numbered over all passes, b = pass nb + k)
  /// with b % parts == part, and `reduce(data, n)` must replace the n doubles by their
  /// elementwise sum over the parts (an all-reduce). Every batch sum is nonzero on one part only
  /// and the batches are then accumulated in the one-process order, so every part returns the
  /// one-process estimate bit for bit.
  int part = 0;
  int parts = 1;
  std::function<void(double*, std::size_t)> reduce;
};

/// Options of estimate_score_bounds.
struct ScoreBoundOptions : McOptions {
  /// Bytes of the per-position work rows (the D log-scores of each position and a D-entry
  /// gradient row the DWDSE kernel writes): the positions of a batch are processed in chunks of
  /// at most max(1, scratch_bytes / (2 D sizeof(T))) positions, so that at a large vocabulary
  /// the estimator holds no B x L x D buffer (the results do not depend on the chunk size).
  /// 0: 64 MiB for a host executor, 1 GiB for a device one (its threads need many positions).
  std::size_t scratch_bytes = 0;
  double eps = 1e-4;  ///< time cut-off: t in [eps, 1]; sbar(eps) must be > 0
  ModelOutput output = ModelOutput::logits;
  int output_size = 0;          ///< V (0: N for logits, D for log-scores)
  bool log_score_head = false;  ///< log-scores are SEDD head outputs (spec 4.4)
  ScoreOptions score = {};      ///< probs_to_score options (logits)
  std::optional<PriorReference> reference;  ///< unset: default_prior_reference(gen)
  BoundConvention convention = BoundConvention::exact;
};

/// Result of estimate_score_bounds (nats per sequence for the constants).
struct ScoreBoundEstimate {
  McEstimate j1;            ///< SEDD bound (with K), spec 6.5 / 8.3
  /// PBRC bound (without K), spec 6.4 / 8.4. Exact convention: J1hat + expected_gap (same draws
  /// as j1, same standard error); PBRC code convention: the direct estimate (= j2_direct).
  McEstimate j2;
  McEstimate j2_direct;     ///< the direct estimate J2hat (file comment), kept as a check
  McEstimate gap;           ///< J2hat - J1hat from the same draws
  double prior_kl = 0;      ///< L KL_prior (J1 constant)
  double reference_ce = 0;  ///< L CE_ref (J2 constant)
  double exit_integral = 0; ///< X_exit (exact convention; PBRC: the absorbing/roulette constant)
  double expected_gap = 0;  ///< L H(P_{sbar(eps)}[., a]): E[gap] under the exact convention
  double u_eps = 0, u_1 = 0;
};

/// Options of estimate_md4_elbo.
struct Md4ElboOptions : McOptions {
  double t0 = 0.0, t1 = 1.0;  ///< time range (MD4 code: [0, 1])
  int steps = 0;              ///< 0: continuous time; T > 0: discrete time with T steps
  int output_size = 0;        ///< V = N (MD4) or N + 1 (MDLM SUBS, MASK column ignored); 0: N
  bool recon = true;          ///< include L_recon = L (1 - alpha(t0)) log N
  bool prior = true;          ///< include L_prior = L alpha(t1) log N
};

/// Result of estimate_md4_elbo.
struct Md4ElboEstimate {
  McEstimate elbo;  ///< NELBO (upper bound on the NLL), nats per sequence
  double recon = 0, prior = 0;
  int steps = 0;
};

namespace detail {
namespace mc {

// ---- exit terms of the PBRC code convention (spec 6.7): the generator's members
template <class Gen>
double pbrc_exit(const Gen& g, std::int64_t L, double eps, double sigma_t) {
  return g.pbrc_exit(L, eps, sigma_t);
}
template <class Gen>
bool pbrc_exit_per_sample(const Gen& g) { return g.pbrc_exit_per_sample(); }
template <class Gen>
double pbrc_reference_ce(const Gen& g, std::int64_t L) { return g.pbrc_reference_ce(L); }

/// J1 and J2 integrands of one position (without the sigma factor): model outputs -> log-scores
/// lam (D per position; logits go through logits_to_score and log), then sedd_position with and
/// without K. grad is a D-entry scratch row per position (the kernels' gradient, unused here).
/// Runs over the positions [i0, i0 + n) of a batch as j = 0..n-1: lam and grad hold the rows of
/// that chunk only.
template <class Gen, class T>
struct ScoreBoundKernel {
  Gen gen;
  const int* x0;
  const int* xt;
  const T* out;  ///< V per position
  T* lam;        ///< D per position of the chunk
  T* grad;       ///< D per position of the chunk
  T* e_k;        ///< per position: e_i with K
  T* e_bar;      ///< per position: e_i without K
  const T* u;    ///< per row
  std::int64_t L;
  int V, D;
  ModelOutput kind;
  bool head;
  ScoreOptions score;
  std::int64_t i0;  ///< first position of the chunk

  DD_HD void operator()(std::int64_t j) const {
    const std::int64_t i = i0 + j;
    const std::int64_t b = i / L;
    const int x = xt[i], a = x0[i];
    T* lm = lam + j * D;
    const T* z = out + i * V;
    SeddOptions o;
    o.log_score_head = false;
    if (kind == ModelOutput::logits) {
      logits_to_score(gen, z, V, x, u[b], lm, score);
      for (int v = 0; v < D; ++v)
        lm[v] = lm[v] > T(0) ? math::log(lm[v]) : -std::numeric_limits<T>::infinity();
    } else {
      for (int v = 0; v < D; ++v) lm[v] = z[v];
      o.log_score_head = head;
    }
    o.include_k = true;
    e_k[i] = sedd_position(gen, lm, D, x, a, u[b], T(0), grad + j * D, o);
    // Without K a summand is exp(lambda) - r lambda; a zero score (lambda = -inf) with r = 0
    // must give 0, not 0 * inf: use the most negative finite log-score instead.
    for (int v = 0; v < D; ++v)
      if (lm[v] == -std::numeric_limits<T>::infinity()) lm[v] = std::numeric_limits<T>::lowest();
    o.include_k = false;
    e_bar[i] = sedd_position(gen, lm, D, x, a, u[b], T(0), grad + j * D, o);
  }
};

inline void check_batching(const char* where, std::int64_t num_sequences, std::int64_t L,
                           const McOptions& o) {
  if (num_sequences < 1) throw_invalid(where, "num_sequences", num_sequences, "must be >= 1");
  if (L < 1) throw_invalid(where, "L", L, "sequence length must be >= 1");
  if (o.batch_size < 1) throw_invalid(where, "batch_size", o.batch_size, "must be >= 1");
  if (o.passes < 1) throw_invalid(where, "passes", o.passes, "must be >= 1");
  const std::int64_t nb = (num_sequences + o.batch_size - 1) / o.batch_size;
  if (static_cast<std::uint64_t>(nb) * static_cast<std::uint64_t>(o.passes) > kMcMaxBatches)
    throw_invalid(where, "passes", o.passes, "too many batches (more than 2^30 - 1)");
  if (o.parts < 1) throw_invalid(where, "parts", o.parts, "must be >= 1");
  if (o.part < 0 || o.part >= o.parts) throw_invalid(where, "part", o.part, "must lie in [0, parts)");
  if (o.parts > 1 && !o.reduce) throw_invalid(where, "reduce", "empty", "parts > 1 needs a reduce function");
}

/// The per-batch sums of `series` estimates over `batches` batches, for McOptions' split: each
/// part fills its own batches, finish() sums over the parts, accumulator(s) feeds the batches
/// to a BatchMeanAccumulator in batch order (with one part: exactly the values, in the order,
/// that the estimator would have added directly).
class BatchSums {
 public:
  BatchSums(const McOptions& o, std::int64_t batches, int series)
      : o_(o), n_(static_cast<std::size_t>(batches)), sums_(n_ * static_cast<std::size_t>(series), 0.0),
        counts_(n_, 0) {}
  bool mine(std::uint64_t b) const { return o_.parts <= 1 || static_cast<int>(b % static_cast<std::uint64_t>(o_.parts)) == o_.part; }
  void count(std::uint64_t b, std::int64_t rows) { counts_[b] = rows; }
  void set(int series, std::uint64_t b, double v) { sums_[static_cast<std::size_t>(series) * n_ + b] = v; }
  void finish() {
    if (o_.parts > 1) o_.reduce(sums_.data(), sums_.size());
  }
  BatchMeanAccumulator accumulator(int series) const {
    BatchMeanAccumulator acc;
    for (std::size_t b = 0; b < n_; ++b) acc.add_batch(sums_[static_cast<std::size_t>(series) * n_ + b], counts_[b]);
    return acc;
  }

 private:
  const McOptions& o_;
  std::size_t n_;
  std::vector<double> sums_;
  std::vector<std::int64_t> counts_;
};

/// Positions per chunk of the J estimator's work rows (ScoreBoundOptions::scratch_bytes).
template <class T, class Space>
std::int64_t score_chunk_positions(std::size_t scratch_bytes, int D, std::int64_t positions) {
  if (scratch_bytes == 0) scratch_bytes = Space::host_accessible ? kMcHostScratchBytes : kMcDeviceScratchBytes;
  const std::size_t per = 2 * static_cast<std::size_t>(D) * sizeof(T);
  const std::int64_t c = static_cast<std::int64_t>(std::max<std::size_t>(1, scratch_bytes / per));
  return std::min(c, positions);
}

inline void check_tokens(const char* where, const int* x0, std::int64_t count, int n) {
  for (std::int64_t k = 0; k < count; ++k)
    if (x0[k] < 0 || x0[k] >= n)
      throw_invalid(where, ("x0[" + std::to_string(k) + "]").c_str(), x0[k],
                    ("clean tokens must be regular, in [0, " + std::to_string(n) + ")").c_str());
}

/// Compile- and run-time agreement of a model with the estimator's V and output kind (file
/// comment); bare callables are taken at the options' word.
template <class Model, class Exec>
void check_model(const char* where, const Model& model, int V, ModelOutput kind) {
  static_check_model_space<Model, Exec>();
  if constexpr (model_has_num_classes_v<Model>) {
    if (model.num_classes() != V)
      throw_invalid(where, "model.num_classes()", model.num_classes(),
                    ("must equal the output size V = " + std::to_string(V)).c_str());
    if (model_output_v<Model> != kind)
      throw_invalid(where, "model output",
                    model_output_v<Model> == ModelOutput::logits ? "logits" : "log_scores",
                    "must match the estimator's output kind");
  }
}

/// The per-batch buffers of an estimator in the executor's memory space. The model's outputs
/// are its own storage when it has evaluate() (model/model.hpp), else `own`; `out` points to
/// them after query() and may be overwritten until the next query.
template <class T, class Space>
struct McBatch {
  Buffer<int, Space> x0, xt;
  Buffer<T, Space> t, u, own;
  Buffer<unsigned char, Space> status;
  T* out = nullptr;
  McBatch(std::int64_t B, std::int64_t L)
      : x0(static_cast<std::size_t>(B * L)), xt(x0.size()), t(static_cast<std::size_t>(B)),
        u(t.size()), status(x0.size()) {}

  /// Copies the rows' clean tokens and times in.
  void load(const int* x0_host, const std::vector<T>& t_host, const std::vector<T>& u_host,
            std::int64_t rows, std::int64_t L) {
    copy_n(Space{}, x0.data(), HostSpace{}, x0_host, static_cast<std::size_t>(rows * L));
    copy_n(Space{}, t.data(), HostSpace{}, t_host.data(), static_cast<std::size_t>(rows));
    copy_n(Space{}, u.data(), HostSpace{}, u_host.data(), static_cast<std::size_t>(rows));
  }

  /// One model call on the current noisy tokens, then the output check.
  template <class Exec, class Model>
  void query(const Exec& exec, const char* where, Model& model, std::int64_t rows, std::int64_t L,
             int V, int regular, ModelOutput kind) {
    out = model_outputs(model, ModelQuery<T>{xt.data(), rows, L, t.data(), u.data()}, V, own);
    check_model_output(exec, where, out, rows, L, V, regular, kind, status.data());
  }
};

}  // namespace mc
}  // namespace detail

// ------------------------------------------------------------------ J1 and J2

/// Monte Carlo J1 and J2 (file comment) for the uniform, absorbing and roulette generators and
/// any schedule (sigma, sigma_bar). x0: num_sequences x L clean tokens (row-major, regular).
template <class Gen, class Sched, class Model, class Exec = SequentialExecutor>
ScoreBoundEstimate estimate_score_bounds(const Gen& gen, const Sched& sched, Model&& model,
                                         const int* x0, std::int64_t num_sequences,
                                         std::int64_t L, const ScoreBoundOptions& opt,
                                         const Exec& exec = Exec{}) {
  using T = typename Gen::value_type;
  using Space = typename Exec::memory_space;
  const char* where = "discdiff::estimate_score_bounds";
  detail::mc::check_batching(where, num_sequences, L, opt);
  require_in_closed(where, "eps", opt.eps, 0.0, 1.0);
  if (!(opt.eps < 1.0)) throw_invalid(where, "eps", opt.eps, "must be < 1");
  const int n = gen.num_regular(), D = gen.num_states();
  detail::mc::check_tokens(where, x0, num_sequences * L, n);
  int V = opt.output_size;
  if (V == 0) V = opt.output == ModelOutput::logits ? n : D;
  if (opt.output == ModelOutput::logits && V != n && V != D)
    throw_invalid(where, "output_size", V,
                  ("logits need V = N = " + std::to_string(n) + " or V = D = " +
                   std::to_string(D)).c_str());
  if (opt.output == ModelOutput::log_scores && V != D)
    throw_invalid(where, "output_size", V,
                  ("log-scores need V = D = " + std::to_string(D)).c_str());
  if (opt.log_score_head && opt.output != ModelOutput::log_scores)
    throw_invalid(where, "log_score_head", 1, "only meaningful with ModelOutput::log_scores");

  ScoreBoundEstimate res;
  const double eps = opt.eps;
  res.u_eps = static_cast<double>(sched.sigma_bar(T(eps)));
  res.u_1 = static_cast<double>(sched.sigma_bar(T(1)));
  if (!(res.u_eps > 0.0))
    throw_invalid(where, "eps", eps, "needs sbar(eps) > 0 (the ratios diverge at zero noise)");
  require_finite(where, "sbar(1)", res.u_1);
  const PriorReference ref = opt.reference ? *opt.reference : default_prior_reference(gen);
  const bool exact = opt.convention == BoundConvention::exact;
  const double Ld = static_cast<double>(L);
  if (exact) {
    res.prior_kl = Ld * static_cast<double>(prior_kl_per_token(gen, T(res.u_1), ref));
    res.reference_ce = Ld * static_cast<double>(reference_cross_entropy_per_token(gen, T(res.u_1), ref));
    res.exit_integral = static_cast<double>(exit_rate_integral(gen, L, T(res.u_eps), T(res.u_1)));
    if (std::isnan(res.prior_kl) || std::isnan(res.reference_ce))
      throw_invalid(where, "reference", static_cast<int>(ref),
                    "this generator has no masked prior pi_alpha (use PriorReference::limit)");
  } else {
    res.reference_ce = detail::mc::pbrc_reference_ce(gen, L);
    res.exit_integral = detail::mc::pbrc_exit(gen, L, eps, 0.0);
  }
  res.expected_gap = Ld * static_cast<double>(conditional_entropy_per_token(gen, T(res.u_eps)));

  const std::int64_t B = opt.batch_size;
  const std::int64_t nb = (num_sequences + B - 1) / B;
  detail::mc::check_model<std::decay_t<Model>, Exec>(where, model, V, opt.output);
  std::vector<T> tau(static_cast<std::size_t>(B)), t(tau.size()), u(tau.size()), sig(tau.size());
  detail::mc::McBatch<T, Space> mb(B, L);
  const std::int64_t chunk = detail::mc::score_chunk_positions<T, Space>(opt.scratch_bytes, D, B * L);
  Buffer<T, Space> lam(static_cast<std::size_t>(chunk * D)), grad(lam.size());
  Buffer<T, Space> ek_d(static_cast<std::size_t>(B * L)), eb_d(ek_d.size());
  std::vector<T> ek(ek_d.size()), eb(eb_d.size());
  detail::mc::BatchSums sums(opt, nb * opt.passes, 3);  // j1, j2, j2 - j1
  const TimeProposalMap<Sched> prop(sched, T(eps), T(1), opt.time_proposal, L);
  const bool uniform_t = prop.kind() == TimeProposal::uniform;
  // The integral over t in [eps, 1] is estimated as integrand(t) / f(t). The PBRC code averages
  // over t ~ U[eps, 1] without the (1 - eps) Jacobian: its weight is (1/f(t)) / (1 - eps) (1 for
  // the uniform proposal).
  std::vector<double> jac(tau.size());
  const bool exit_per_sample = !exact && detail::mc::pbrc_exit_per_sample(gen);
  for (int pass = 0; pass < opt.passes; ++pass) {
    for (std::int64_t k = 0; k < nb; ++k) {
      const std::uint64_t batch = static_cast<std::uint64_t>(pass) * nb + k;
      const std::int64_t rows = std::min(B, num_sequences - k * B);
      const int* x0b = x0 + k * B * L;
      sums.count(batch, rows);
      if (!sums.mine(batch)) continue;
      sample_unit_times(opt.time_sampling, opt.seed, kMcTimeStream, batch, rows, tau.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        t[r] = prop.time(tau[r]);
        u[r] = sched.sigma_bar(t[r]);
        sig[r] = sched.sigma(t[r]);
        const double inv_f = static_cast<double>(prop.inverse_density(t[r]));
        jac[r] = exact ? inv_f : (uniform_t ? 1.0 : inv_f / (1.0 - eps));
      }
      mb.load(x0b, t, u, rows, L);
      forward_corrupt_raw(exec, gen, mb.x0.data(), rows, L, mb.u.data(), mb.xt.data(), opt.seed,
                          kMcForwardStream + static_cast<std::uint32_t>(batch));
      mb.query(exec, where, model, rows, L, V, n, opt.output);
      for (std::int64_t i0 = 0; i0 < rows * L; i0 += chunk)
        exec.for_each(std::min(chunk, rows * L - i0),
                      detail::mc::ScoreBoundKernel<Gen, T>{
                          gen, mb.x0.data(), mb.xt.data(), mb.out, lam.data(), grad.data(),
                          ek_d.data(), eb_d.data(), mb.u.data(), L, V, D, opt.output,
                          opt.log_score_head, opt.score, i0});
      copy_n(HostSpace{}, ek.data(), Space{}, ek_d.data(), static_cast<std::size_t>(rows * L));
      copy_n(HostSpace{}, eb.data(), Space{}, eb_d.data(), static_cast<std::size_t>(rows * L));
      detail::CompensatedSum<double> s1, s2, sg;
      for (std::int64_t r = 0; r < rows; ++r) {
        detail::CompensatedSum<double> a1, a2;
        for (std::int64_t l = 0; l < L; ++l) {
          a1.add(static_cast<double>(ek[r * L + l]));
          a2.add(static_cast<double>(eb[r * L + l]));
        }
        const double w = jac[r] * static_cast<double>(sig[r]);
        const double exit_r =
            exit_per_sample
                ? jac[r] * detail::mc::pbrc_exit(gen, L, eps, static_cast<double>(sig[r]))
                : res.exit_integral;
        const double j1 = res.prior_kl + w * a1.value();
        const double j2 = res.reference_ce + w * a2.value() - exit_r;
        s1.add(j1);
        s2.add(j2);
        sg.add(j2 - j1);
      }
      sums.set(0, batch, s1.value());
      sums.set(1, batch, s2.value());
      sums.set(2, batch, sg.value());
    }
  }
  sums.finish();
  res.j1 = sums.accumulator(0).estimate(L);
  res.j2_direct = sums.accumulator(1).estimate(L);
  res.gap = sums.accumulator(2).estimate(L);
  res.j2 = res.j2_direct;
  if (exact) {  // J2 = J1 + E H(p_{eps|0}) (spec 6.6): J1's draws plus the exact entropy term
    res.j2 = res.j1;
    res.j2.mean = res.j1.mean + res.expected_gap;
  }
  if (exit_per_sample) res.exit_integral = std::numeric_limits<double>::quiet_NaN();
  return res;
}

/// Overload for a token vector of num_sequences * L entries.
template <class Gen, class Sched, class Model, class Exec = SequentialExecutor>
ScoreBoundEstimate estimate_score_bounds(const Gen& gen, const Sched& sched, Model&& model,
                                         const std::vector<int>& x0, std::int64_t L,
                                         const ScoreBoundOptions& opt, const Exec& exec = Exec{}) {
  if (L < 1 || x0.size() % static_cast<std::size_t>(L) != 0)
    throw_invalid("discdiff::estimate_score_bounds", "x0.size()", x0.size(),
                  ("must be a positive multiple of L = " + std::to_string(L)).c_str());
  return estimate_score_bounds(gen, sched, model, x0.data(),
                               static_cast<std::int64_t>(x0.size()) / L, L, opt, exec);
}

// ------------------------------------------------------------------ MD4 ELBO

/// Monte Carlo MD4 / MDLM NELBO (file comment), continuous (opt.steps = 0) or discrete time.
/// The model emits logits over V = N (or N + 1, MASK ignored) classes at every position.
template <class T, class Sched, class Model, class Exec = SequentialExecutor>
Md4ElboEstimate estimate_md4_elbo(const AbsorbingGenerator<T>& gen, const Sched& sched,
                                  Model&& model, const int* x0, std::int64_t num_sequences,
                                  std::int64_t L, const Md4ElboOptions& opt,
                                  const Exec& exec = Exec{}) {
  using Space = typename Exec::memory_space;
  const char* where = "discdiff::estimate_md4_elbo";
  detail::mc::check_batching(where, num_sequences, L, opt);
  require_in_closed(where, "t0", opt.t0, 0.0, 1.0);
  require_in_closed(where, "t1", opt.t1, 0.0, 1.0);
  if (!(opt.t1 > opt.t0))
    throw_invalid(where, "t1", opt.t1, ("must be > t0 = " + detail::format_value(opt.t0)).c_str());
  if (opt.steps < 0) throw_invalid(where, "steps", opt.steps, "must be >= 0 (0: continuous)");
  const int n = gen.num_regular();
  detail::mc::check_tokens(where, x0, num_sequences * L, n);
  const int V = opt.output_size == 0 ? n : opt.output_size;
  if (V != n && V != n + 1)
    throw_invalid(where, "output_size", V,
                  ("MD4 logits need V = N = " + std::to_string(n) + " or N + 1").c_str());

  Md4ElboEstimate res;
  res.steps = opt.steps;
  const double logn = std::log(static_cast<double>(n)), Ld = static_cast<double>(L);
  const T t0 = T(opt.t0), t1 = T(opt.t1);
  res.recon = opt.recon ? Ld * static_cast<double>(sched.one_minus_alpha(t0)) * logn : 0.0;
  res.prior = opt.prior ? Ld * static_cast<double>(sched.alpha(t1)) * logn : 0.0;
  const double row_const = res.recon + res.prior;

  const std::int64_t B = opt.batch_size;
  const std::int64_t nb = (num_sequences + B - 1) / B;
  detail::mc::check_model<std::decay_t<Model>, Exec>(where, model, V, ModelOutput::logits);
  std::vector<T> tau(static_cast<std::size_t>(B)), t(tau.size()), u(tau.size()), w(tau.size());
  detail::mc::McBatch<T, Space> mb(B, L);
  Buffer<T, Space> pos(static_cast<std::size_t>(B * L));
  Buffer<T, Space> w_d(w.size()), row_d(w.size());
  std::vector<T> row(w.size());
  detail::mc::BatchSums sums(opt, nb * opt.passes, 1);
  const TimeProposalMap<Sched> prop(sched, t0, t1, opt.time_proposal, L);
  for (int pass = 0; pass < opt.passes; ++pass) {
    for (std::int64_t k = 0; k < nb; ++k) {
      const std::uint64_t batch = static_cast<std::uint64_t>(pass) * nb + k;
      const std::int64_t rows = std::min(B, num_sequences - k * B);
      const int* x0b = x0 + k * B * L;
      sums.count(batch, rows);
      if (!sums.mine(batch)) continue;
      sample_unit_times(opt.time_sampling, opt.seed, kMcTimeStream, batch, rows, tau.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        if (opt.steps == 0) {
          t[r] = prop.time(tau[r]);
          w[r] = prop.inverse_density(t[r]) * sched.elbo_weight(t[r]);
        } else {
          const int i = md4_discrete_step(tau[r], opt.steps, Md4DiscreteVariant::code);
          const T ti = i == opt.steps ? t1 : t0 + (t1 - t0) * T(i) / T(opt.steps);
          const T si = t0 + (t1 - t0) * T(i - 1) / T(opt.steps);
          t[r] = ti;
          w[r] = T(opt.steps) * md4_step_fraction(sched, si, ti);
        }
        u[r] = sched.sigma_bar(t[r]);
      }
      mb.load(x0b, t, u, rows, L);
      copy_n(Space{}, w_d.data(), HostSpace{}, w.data(), static_cast<std::size_t>(rows));
      forward_corrupt_raw(exec, gen, mb.x0.data(), rows, L, mb.u.data(), mb.xt.data(), opt.seed,
                          kMcForwardStream + static_cast<std::uint32_t>(batch));
      mb.query(exec, where, model, rows, L, V, n, ModelOutput::logits);
      LossBatch<T> lb;
      lb.B = rows;
      lb.L = L;
      lb.V = V;
      lb.x0 = mb.x0.data();
      lb.xt = mb.xt.data();
      // The loss kernel's gradient row goes over the logits themselves (softmax_xent_row works in
      // place): no B x L x V buffer beyond the model's outputs.
      lb.logits = mb.out;
      lb.grad = mb.out;
      lb.pos_loss = pos.data();
      lb.row_loss = row_d.data();
      lb.grad_scale = T(0);
      md4_loss_raw(exec, lb, w_d.data(), n, T(0));
      copy_n(HostSpace{}, row.data(), Space{}, row_d.data(), static_cast<std::size_t>(rows));
      detail::CompensatedSum<double> s;
      for (std::int64_t r = 0; r < rows; ++r) s.add(static_cast<double>(row[r]) + row_const);
      sums.set(0, batch, s.value());
    }
  }
  sums.finish();
  res.elbo = sums.accumulator(0).estimate(L);
  return res;
}

/// Overload for a token vector of num_sequences * L entries.
template <class T, class Sched, class Model, class Exec = SequentialExecutor>
Md4ElboEstimate estimate_md4_elbo(const AbsorbingGenerator<T>& gen, const Sched& sched,
                                  Model&& model, const std::vector<int>& x0, std::int64_t L,
                                  const Md4ElboOptions& opt, const Exec& exec = Exec{}) {
  if (L < 1 || x0.size() % static_cast<std::size_t>(L) != 0)
    throw_invalid("discdiff::estimate_md4_elbo", "x0.size()", x0.size(),
                  ("must be a positive multiple of L = " + std::to_string(L)).c_str());
  return estimate_md4_elbo(gen, sched, model, x0.data(), static_cast<std::int64_t>(x0.size()) / L,
                           L, opt, exec);
}

}  // namespace discdiff
