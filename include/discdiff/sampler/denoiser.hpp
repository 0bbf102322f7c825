// discdiff/sampler/denoiser.hpp: the Denoiser concept of the samplers, its host-side validation,
// and exact / perturbed adapters for small problems (spec/MATH.md 1.5, 4.1, 9).
//
// Denoiser concept (host side; the network, or an exact oracle):
//
//   struct MyDenoiser {
//     using value_type = T;                       // float or double
//     int num_classes() const;                    // K: N (MD4-style head) or D = N + 1 (SEDD head)
//     void operator()(const DenoiserInput<T>& in, std::vector<T>& out) const;
//     // optional:
//     bool time_conditioned() const;              // default true (cached ancestral reuses the
//                                                 // output only when this is false)
//     static constexpr DenoiserOutput output = DenoiserOutput::logits;   // or log_scores
//   };
//
// Contract of operator(): `in.xt` holds B x L row-major int32 tokens in [0, D); `in.t[b]` and
// `in.sigma_bar[b]` are the time and total noise sbar(t) of sequence b (sigma_bar may be null for
// per-token schedules, spec 3.5; then only t is meaningful). The denoiser resizes `out` to
// B * L * K and writes, for position (b, l), the K entries out[(b L + l) K + k]:
//   * DenoiserOutput::logits: clean-token logits z, softmax(z) ~ p_{0|t}(x_0^l = k | x_t^b)
//     (spec 4.1). K = N, or K = D with the MASK class ignored: samplers renormalise over the N
//     regular classes (PhiMode::renormalize of score/probs_to_score.hpp). -inf is allowed (a class
//     of probability 0) but every position needs at least one finite regular logit;
//   * DenoiserOutput::log_scores: K = D log concrete scores log s_theta(x_t, t)_{l,k} (spec 1.5,
//     4.4), accepted by Euler and analytic tau-leaping only (MD4 and uniformization need
//     posterior logits); entry k = x_t^l is ignored (s_x := 1), -inf is a zero score.
// NaN and +Inf are never valid. The samplers call check_denoiser_output() after every call, so a
// bad denoiser gives std::invalid_argument naming the entry and value, never a silent NaN.
//
// Adapters (host only, double precision inside, output in T):
//   ExactPosteriorDenoiser<Gen>     the exact posterior of an explicit data distribution p_data over
//                                   the N^L clean sequences, for a scalar-noise generator (uniform,
//                                   absorbing, roulette): with u = sigma_bar[b],
//                                     p(x_0^i = h | x_t) ∝ sum_{x_0 : x_0^i = h} p_data(x_0)
//                                                            prod_j P_u[x_t^j, x_0^j]
//                                   using gen.transition (closed forms). Logits = log posterior.
//   ExactPosteriorTokenNoiseDenoiser<T>  the same for state-dependent masking (spec 3.5) with a
//                                   per-token schedule (S-GEN-POLY): column h uses ubar_h(t).
//   PerturbedDenoiser<Inner>        inner logits + amplitude * xi, xi in [-1, 1) a fixed
//                                   deterministic function of (position l, class k, token x_t^l)
//                                   (CounterRng); -inf entries stay -inf.
//   SyntheticDenoiser<T>            a cheap deterministic stand-in for a network (NOT a model):
//                                   table look-ups keyed by (k, x_t^l, l, t), any B, L and K; for
//                                   backend-identity tests, examples and benchmarks.
// If p_t(x_t) = 0 (a state the data cannot reach, e.g. two positions unmasked together into a pair
// of zero data probability), the posterior is undefined; the exact adapters then fall back to the
// factorised posterior that ignores the other positions, and to the data marginal of position i
// if that is undefined as well (documented approximation; never NaN).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "../generator/state_dependent.hpp"
#include "../schedule/per_token_polynomial.hpp"

namespace discdiff {

/// What a denoiser's K entries per position mean.
enum class DenoiserOutput {
  logits,     ///< clean-token logits (softmax = predicted p_{0|t}); K = N or D
  log_scores  ///< log concrete scores log s_theta(x_t,t)_{l,k}; K = D
};

/// The batch a denoiser is queried on (see the concept above).
template <class T>
struct DenoiserInput {
  const int* xt = nullptr;         ///< B x L row-major tokens
  std::int64_t B = 0;              ///< number of sequences
  std::int64_t L = 0;              ///< sequence length
  const T* t = nullptr;            ///< B times
  const T* sigma_bar = nullptr;    ///< B total noises sbar(t) (may be null: per-token schedules)
};

namespace detail {
template <class D, class = void>
struct denoiser_output_of {
  static constexpr DenoiserOutput value = DenoiserOutput::logits;
};
template <class D>
struct denoiser_output_of<D, std::void_t<decltype(D::output)>> {
  static constexpr DenoiserOutput value = D::output;
};
template <class D, class = void>
struct has_time_conditioned : std::false_type {};
template <class D>
struct has_time_conditioned<D, std::void_t<decltype(std::declval<const D&>().time_conditioned())>>
    : std::true_type {};
}  // namespace detail

/// The output kind of denoiser type D (DenoiserOutput::logits unless D::output says otherwise).
template <class D>
constexpr DenoiserOutput denoiser_output_v = detail::denoiser_output_of<D>::value;

/// d.time_conditioned() when D has it, else true.
template <class D>
bool denoiser_time_conditioned(const D& d) {
  if constexpr (detail::has_time_conditioned<D>::value) {
    return d.time_conditioned();
  } else {
    (void)d;
    return true;
  }
}

/// Host check of a denoiser's declared class count K against the generator: K = N or K = D for
/// logits, K = D for log-scores. Throws std::invalid_argument naming K, N and D.
inline void check_denoiser_classes(const char* where, long long K, long long N, long long D,
                                   DenoiserOutput kind) {
  const bool ok = kind == DenoiserOutput::logits ? (K == N || K == D) : K == D;
  if (!ok) {
    const std::string why = kind == DenoiserOutput::logits
                                ? "logits need K = N = " + std::to_string(N) + " or K = D = " +
                                      std::to_string(D) + " classes"
                                : "log-scores need K = D = " + std::to_string(D) + " classes";
    throw_invalid(where, "denoiser.num_classes()", K, why.c_str());
  }
}

/// Host check of one denoiser output: out.size() == B * L * K, no NaN and no +Inf anywhere, and
/// (for logits) every position has a finite logit among its first `regular` classes. Throws
/// std::invalid_argument naming the sizes, or the entry (b, l, k) and its value.
template <class T>
void check_denoiser_output(const char* where, const std::vector<T>& out, std::int64_t B,
                           std::int64_t L, int K, int regular, DenoiserOutput kind) {
  const std::int64_t want = B * L * static_cast<std::int64_t>(K);
  if (static_cast<std::int64_t>(out.size()) != want) {
    const std::string why = "expected B * L * K = " + std::to_string(B) + " * " +
                            std::to_string(L) + " * " + std::to_string(K) + " = " +
                            std::to_string(want) + " entries";
    throw_invalid(where, "denoiser output size", out.size(), why.c_str());
  }
  for (std::int64_t p = 0; p < B * L; ++p) {
    const T* z = out.data() + p * K;
    bool any_finite = false;
    for (int k = 0; k < K; ++k) {
      const T v = z[k];
      const bool bad = std::isnan(static_cast<double>(v)) || v == std::numeric_limits<T>::infinity();
      if (bad) {
        const std::string nm = "denoiser output[b=" + std::to_string(p / L) + ", l=" +
                               std::to_string(p % L) + ", k=" + std::to_string(k) + "]";
        throw_invalid(where, nm.c_str(), v, "NaN and +Inf are not valid logits or log-scores");
      }
      if (k < regular && std::isfinite(static_cast<double>(v))) any_finite = true;
    }
    if (kind == DenoiserOutput::logits && !any_finite) {
      const std::string nm = "denoiser output[b=" + std::to_string(p / L) + ", l=" +
                             std::to_string(p % L) + "]";
      throw_invalid(where, nm.c_str(), "-inf",
                    "every regular logit is -inf: the predicted posterior is empty");
    }
  }
}

namespace detail {

/// Validates an explicit data distribution over N^L sequences (index sum_i x^i N^{L-1-i}):
/// size N^L (<= 2^22), entries finite >= 0, sum 1 within 1e-9. Returns N^L.
inline std::int64_t check_data_distribution(const char* where, int N, int L,
                                            const std::vector<double>& p) {
  if (L < 1) throw_invalid(where, "L", L, "sequence length must be >= 1");
  std::int64_t n = 1;
  for (int i = 0; i < L; ++i) {
    n *= N;
    if (n > (std::int64_t(1) << 22))
      throw_invalid(where, "L", L, "N^L exceeds 2^22 states (exact enumeration only)");
  }
  if (static_cast<std::int64_t>(p.size()) != n) {
    const std::string why = "must equal N^L = " + std::to_string(N) + "^" + std::to_string(L) +
                            " = " + std::to_string(n);
    throw_invalid(where, "p_data.size()", p.size(), why.c_str());
  }
  double s = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (!std::isfinite(p[k]) || p[k] < 0) {
      const std::string nm = "p_data[" + std::to_string(k) + "]";
      throw_invalid(where, nm.c_str(), p[k], "probabilities must be finite and >= 0");
    }
    s += p[k];
  }
  if (!(std::abs(s - 1.0) <= 1e-9)) throw_invalid(where, "sum(p_data)", s, "must be 1");
  return n;
}

/// The enumeration core shared by the exact adapters. ptab[y * N + h] = P[y, h] (D x N, the
/// transition column h restricted to the observed rows); writes the L x N posterior of one
/// sequence x (length L) into post.
class ExactPosteriorCore {
 public:
  ExactPosteriorCore() = default;
  ExactPosteriorCore(int N, int L, std::vector<double> p_data)
      : n_(N), l_(L), p_(std::move(p_data)) {
    size_ = static_cast<std::int64_t>(p_.size());
    marg_.assign(static_cast<std::size_t>(L) * N, 0.0);
    for (std::int64_t k = 0; k < size_; ++k) {
      std::int64_t r = k;
      for (int i = L - 1; i >= 0; --i) {
        marg_[static_cast<std::size_t>(i) * N + static_cast<std::size_t>(r % N)] += p_[k];
        r /= N;
      }
    }
  }

  int N() const { return n_; }
  int L() const { return l_; }
  const std::vector<double>& p_data() const { return p_; }

  void posterior(const double* ptab, const int* x, double* post) const {
    const int N = n_, L = l_;
    for (int q = 0; q < L * N; ++q) post[q] = 0;
    double total = 0;
    int digits[32];
    for (std::int64_t k = 0; k < size_; ++k) {
      const double pk = p_[k];
      if (pk == 0) continue;
      std::int64_t r = k;
      double w = pk;
      for (int i = L - 1; i >= 0; --i) {
        digits[i] = static_cast<int>(r % N);
        r /= N;
        w *= ptab[static_cast<std::int64_t>(x[i]) * N + digits[i]];
      }
      if (w == 0) continue;
      total += w;
      for (int i = 0; i < L; ++i) post[i * N + digits[i]] += w;
    }
    if (total > 0) {
      for (int q = 0; q < L * N; ++q) post[q] /= total;
      return;
    }
    // p_t(x) = 0: factorised fallback per position, then the data marginal.
    for (int i = 0; i < L; ++i) {
      double s = 0;
      for (int h = 0; h < N; ++h) {
        post[i * N + h] = marg_[static_cast<std::size_t>(i) * N + h] *
                          ptab[static_cast<std::int64_t>(x[i]) * N + h];
        s += post[i * N + h];
      }
      for (int h = 0; h < N; ++h)
        post[i * N + h] = s > 0 ? post[i * N + h] / s : marg_[static_cast<std::size_t>(i) * N + h];
    }
  }

 private:
  int n_ = 0, l_ = 0;
  std::int64_t size_ = 0;
  std::vector<double> p_;
  std::vector<double> marg_;
};

/// Per-call memo of computed posteriors, keyed by the state index of x (radix D), used while the
/// noise stays the same between consecutive rows (a batch shares one t): rows with an already
/// seen state copy its logits. Active only when D^L <= 2^16; stores row offsets, not copies.
class PosteriorMemo {
 public:
  PosteriorMemo(int D, int L) : d_(D), l_(L) {
    std::int64_t s = 1;
    for (int i = 0; i < L && s <= (1 << 16); ++i) s *= D;
    if (s <= (1 << 16)) slot_.assign(static_cast<std::size_t>(s), Slot{nullptr, 0});
  }
  /// Forget every entry (O(1): a new generation).
  void clear() { ++gen_; }
  template <class T>
  bool copy_if_known(const int* x, T* dst, int n) const {
    if (slot_.empty()) return false;
    const Slot& e = slot_[static_cast<std::size_t>(key(x))];
    if (e.gen != gen_ || e.src == nullptr) return false;
    const T* s = static_cast<const T*>(e.src);
    for (int q = 0; q < n; ++q) dst[q] = s[q];
    return true;
  }
  template <class T>
  void remember(const int* x, const T* dst) {
    if (!slot_.empty()) slot_[static_cast<std::size_t>(key(x))] = Slot{dst, gen_};
  }

 private:
  struct Slot {
    const void* src;
    std::uint64_t gen;
  };
  std::int64_t key(const int* x) const {
    std::int64_t k = 0;
    for (int i = 0; i < l_; ++i) k = k * d_ + x[i];
    return k;
  }
  int d_, l_;
  std::uint64_t gen_ = 1;
  std::vector<Slot> slot_;
};

template <class T>
void check_query(const char* where, const DenoiserInput<T>& in, int L, int D, bool need_sbar) {
  if (in.L != L) {
    const std::string why = "the data distribution has L = " + std::to_string(L);
    throw_invalid(where, "in.L", in.L, why.c_str());
  }
  if (in.B < 0) throw_invalid(where, "in.B", in.B, "must be >= 0");
  for (std::int64_t q = 0; q < in.B * in.L; ++q)
    if (in.xt[q] < 0 || in.xt[q] >= D) {
      const std::string nm = "xt[" + std::to_string(q) + "]";
      const std::string why = "token id must lie in [0, " + std::to_string(D) + ")";
      throw_invalid(where, nm.c_str(), in.xt[q], why.c_str());
    }
  for (std::int64_t b = 0; b < in.B; ++b) {
    if (!std::isfinite(static_cast<double>(in.t[b])) || in.t[b] < 0) {
      const std::string nm = "t[" + std::to_string(b) + "]";
      throw_invalid(where, nm.c_str(), in.t[b], "must be finite and >= 0");
    }
    if (need_sbar && (!std::isfinite(static_cast<double>(in.sigma_bar[b])) || in.sigma_bar[b] < 0)) {
      const std::string nm = "sigma_bar[" + std::to_string(b) + "]";
      throw_invalid(where, nm.c_str(), in.sigma_bar[b], "must be finite and >= 0");
    }
  }
}

template <class T>
void write_log_posterior(const double* post, int L, int N, T* out) {
  for (int q = 0; q < L * N; ++q)
    out[q] = post[q] > 0 ? static_cast<T>(std::log(post[q])) : -std::numeric_limits<T>::infinity();
}

}  // namespace detail

/// The exact posterior of an explicit data distribution as a denoiser (K = N logits), for a
/// scalar-noise generator Gen (UniformGenerator, AbsorbingGenerator, RouletteGenerator): see the
/// file comment. p_data has N^L entries, sequence index sum_i x^i N^{L-1-i}. Uses
/// in.sigma_bar[b] as u. Not time-conditioned for the absorbing generator (the u-factors cancel:
/// P_u[MASK,h] does not depend on h and P_u[a,h] = e^{-u} delta_{ah}).
template <class Gen>
class ExactPosteriorDenoiser {
 public:
  using value_type = typename Gen::value_type;
  static constexpr DenoiserOutput output = DenoiserOutput::logits;

  ExactPosteriorDenoiser(const Gen& gen, int L, std::vector<double> p_data) : gen_(gen) {
    detail::check_data_distribution("discdiff::ExactPosteriorDenoiser", gen.num_regular(), L,
                                    p_data);
    core_ = detail::ExactPosteriorCore(gen.num_regular(), L, std::move(p_data));
  }

  int num_classes() const { return gen_.num_regular(); }
  int length() const { return core_.L(); }
  const std::vector<double>& p_data() const { return core_.p_data(); }
  bool time_conditioned() const { return gen_.has_mask() ? !is_absorbing() : true; }

  void operator()(const DenoiserInput<value_type>& in, std::vector<value_type>& out) const {
    using T = value_type;
    const int N = gen_.num_regular(), D = gen_.num_states(), L = core_.L();
    detail::check_query("discdiff::ExactPosteriorDenoiser", in, L, D, true);
    out.resize(static_cast<std::size_t>(in.B * L * N));
    std::vector<double> ptab(static_cast<std::size_t>(D) * N), post(static_cast<std::size_t>(L) * N);
    T last_u = std::numeric_limits<T>::quiet_NaN();
    std::vector<T> col(static_cast<std::size_t>(D));
    detail::PosteriorMemo memo(D, L);
    for (std::int64_t b = 0; b < in.B; ++b) {
      const T u = in.sigma_bar[b];
      if (!(u == last_u)) {
        for (int h = 0; h < N; ++h) {
          gen_.transition_column(h, u, col.data());
          for (int y = 0; y < D; ++y)
            ptab[static_cast<std::size_t>(y) * N + h] = static_cast<double>(col[static_cast<std::size_t>(y)]);
        }
        last_u = u;
        memo.clear();
      }
      T* dst = out.data() + b * L * N;
      if (memo.copy_if_known(in.xt + b * L, dst, L * N)) continue;
      core_.posterior(ptab.data(), in.xt + b * L, post.data());
      detail::write_log_posterior(post.data(), L, N, dst);
      memo.remember(in.xt + b * L, dst);
    }
  }

 private:
  bool is_absorbing() const {
    // Absorbing (and roulette with p_m = 1): no regular-to-regular rate.
    return gen_.rate(1, 0) == typename Gen::value_type(0);
  }
  Gen gen_;
  detail::ExactPosteriorCore core_;
};

/// The exact posterior for state-dependent masking (spec 3.5) with the S-GEN-POLY schedule
/// `sched` (kept by value: the exponents are copied): column h of the transition uses
/// ubar_h = sched.sigma_bar(in.t[b], h). K = N logits; in.sigma_bar is not read.
template <class T>
class ExactPosteriorTokenNoiseDenoiser {
 public:
  using value_type = T;
  static constexpr DenoiserOutput output = DenoiserOutput::logits;

  ExactPosteriorTokenNoiseDenoiser(const PerTokenPolynomialSchedule<T>& sched, int L,
                                   std::vector<double> p_data)
      : w_(sched.w()), eta_(sched.eta()), gen_(sched.num_regular()) {
    detail::check_data_distribution("discdiff::ExactPosteriorTokenNoiseDenoiser",
                                    sched.num_regular(), L, p_data);
    core_ = detail::ExactPosteriorCore(sched.num_regular(), L, std::move(p_data));
  }

  int num_classes() const { return gen_.num_regular(); }
  int length() const { return core_.L(); }
  bool time_conditioned() const { return true; }

  void operator()(const DenoiserInput<T>& in, std::vector<T>& out) const {
    const int N = gen_.num_regular(), D = gen_.num_states(), L = core_.L();
    detail::check_query("discdiff::ExactPosteriorTokenNoiseDenoiser", in, L, D, false);
    out.resize(static_cast<std::size_t>(in.B * L * N));
    const PerTokenPolynomialView<T> view{w_.data(), N, eta_};
    std::vector<T> ubar(static_cast<std::size_t>(N));
    std::vector<double> ptab(static_cast<std::size_t>(D) * N), post(static_cast<std::size_t>(L) * N);
    T last_t = std::numeric_limits<T>::quiet_NaN();
    detail::PosteriorMemo memo(D, L);
    for (std::int64_t b = 0; b < in.B; ++b) {
      const T t = in.t[b];
      if (t > T(1)) throw_invalid("discdiff::ExactPosteriorTokenNoiseDenoiser", "t", t, "must be <= 1");
      if (!(t == last_t)) {
        view.total_noise(t, ubar.data());
        for (int y = 0; y < D; ++y)
          for (int h = 0; h < N; ++h)
            ptab[static_cast<std::size_t>(y) * N + h] =
                static_cast<double>(gen_.transition(y, h, ubar.data()));
        last_t = t;
        memo.clear();
      }
      T* dst = out.data() + b * L * N;
      if (memo.copy_if_known(in.xt + b * L, dst, L * N)) continue;
      core_.posterior(ptab.data(), in.xt + b * L, post.data());
      detail::write_log_posterior(post.data(), L, N, dst);
      memo.remember(in.xt + b * L, dst);
    }
  }

 private:
  std::vector<T> w_;
  T eta_;
  StateDependentMaskingGenerator<T> gen_;
  detail::ExactPosteriorCore core_;
};

/// Inner logits plus amplitude * xi(l, k, x_t^l), xi = 2 U - 1 with U the first double uniform of
/// CounterRng(seed, 0x5e7u, (l * D + x_t^l) * K + k): a fixed deterministic perturbation (the same
/// at every t and for every sequence with the same token at l). -inf entries stay -inf.
template <class Inner>
class PerturbedDenoiser {
 public:
  using value_type = typename Inner::value_type;
  static constexpr DenoiserOutput output = denoiser_output_v<Inner>;

  PerturbedDenoiser(Inner inner, double amplitude, int num_states, std::uint64_t seed = 12345)
      : inner_(std::move(inner)), amp_(amplitude), d_(num_states), seed_(seed) {
    require_finite("discdiff::PerturbedDenoiser", "amplitude", amplitude);
  }

  int num_classes() const { return inner_.num_classes(); }
  bool time_conditioned() const { return denoiser_time_conditioned(inner_); }
  const Inner& inner() const { return inner_; }

  void operator()(const DenoiserInput<value_type>& in, std::vector<value_type>& out) const {
    using T = value_type;
    inner_(in, out);
    const int K = num_classes();
    if (static_cast<std::int64_t>(out.size()) != in.B * in.L * K) return;  // caller reports it
    for (std::int64_t p = 0; p < in.B * in.L; ++p) {
      const std::int64_t l = p % in.L;
      for (int k = 0; k < K; ++k) {
        T& z = out[static_cast<std::size_t>(p * K + k)];
        if (!(z > -std::numeric_limits<T>::infinity())) continue;
        const std::uint64_t idx =
            static_cast<std::uint64_t>((l * d_ + in.xt[p]) * K + k);
        const double xi = 2.0 * uniform<double>(seed_, 0x5e7u, idx) - 1.0;
        z = static_cast<T>(static_cast<double>(z) + amp_ * xi);
      }
    }
  }

 private:
  Inner inner_;
  double amp_;
  std::int64_t d_;
  std::uint64_t seed_;
};

/// A cheap deterministic stand-in for a network, for backend tests and benchmarks (not a model of
/// anything): logit(b, l, k) = table[(131 k + 17 x_t^{b,l} + 7 l + tq_b) mod 1031], with a table
/// of 1031 values uniform in [-scale, scale) (CounterRng(seed, 0x5d, j)) and tq_b = floor(1000 t_b)
/// when time_conditioned (else 0). K classes (N or D); MASK inputs are fine.
template <class T>
class SyntheticDenoiser {
 public:
  using value_type = T;
  static constexpr DenoiserOutput output = DenoiserOutput::logits;

  explicit SyntheticDenoiser(int num_classes, double scale = 2.0, bool time_conditioned = true,
                             std::uint64_t seed = 7)
      : k_(num_classes), timed_(time_conditioned), table_(kP) {
    if (num_classes < 2) throw_invalid("discdiff::SyntheticDenoiser", "num_classes", num_classes, "must be >= 2");
    require_finite("discdiff::SyntheticDenoiser", "scale", scale);
    for (int j = 0; j < kP; ++j)
      table_[static_cast<std::size_t>(j)] =
          static_cast<T>(scale * (2.0 * uniform<double>(seed, 0x5du, static_cast<std::uint64_t>(j)) - 1.0));
  }

  int num_classes() const { return k_; }
  bool time_conditioned() const { return timed_; }

  void operator()(const DenoiserInput<T>& in, std::vector<T>& out) const {
    out.resize(static_cast<std::size_t>(in.B * in.L * k_));
    const std::int64_t n = in.B * in.L;
    for (std::int64_t p = 0; p < n; ++p) {
      const std::int64_t b = p / in.L, l = p % in.L;
      const std::int64_t tq = timed_ ? static_cast<std::int64_t>(std::floor(1000.0 * static_cast<double>(in.t[b]))) : 0;
      std::int64_t j = (17 * static_cast<std::int64_t>(in.xt[p]) + 7 * l + tq) % kP;
      if (j < 0) j += kP;
      T* z = out.data() + p * k_;
      for (int k = 0; k < k_; ++k) {
        z[k] = table_[static_cast<std::size_t>(j)];
        j += 131;
        if (j >= kP) j -= kP;
      }
    }
  }

 private:
  static constexpr int kP = 1031;
  int k_;
  bool timed_;
  std::vector<T> table_;
};

}  // namespace discdiff
