// discdiff/sampler/denoiser.hpp: the Denoiser concept of the samplers, its host-side validation,
// and exact / perturbed adapters for small problems (spec/MATH.md 1.5, 4.1, 9).
//
// The samplers query a network through the one model interface of model/model.hpp (ModelQuery,
// ModelOutput, check_model_output): a "denoiser" is any Model in that sense.
//
// Adapters (the exact and perturbed ones on host memory, double precision inside, output in T):
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
//   SyntheticDenoiser<T, Exec, Out> a cheap deterministic stand-in for a network (NOT a model of
//                                   anything): table look-ups keyed by (k, x_t^l, l, t), any B, L
//                                   and K, run by any executor in its memory space (logits or
//                                   log-scores); for backend-identity tests, examples, benchmarks.
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
#include "../exec/memory.hpp"
#include "../exec/sequential.hpp"
#include "../model/model.hpp"
#include "../generator/state_dependent.hpp"
#include "../schedule/per_token_polynomial.hpp"

namespace discdiff {

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
void check_query(const char* where, const ModelQuery<T>& in, int L, int D, bool need_sbar) {
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
  static constexpr ModelOutput output = ModelOutput::logits;

  ExactPosteriorDenoiser(const Gen& gen, int L, std::vector<double> p_data) : gen_(gen) {
    detail::check_data_distribution("discdiff::ExactPosteriorDenoiser", gen.num_regular(), L,
                                    p_data);
    core_ = detail::ExactPosteriorCore(gen.num_regular(), L, std::move(p_data));
  }

  int num_classes() const { return gen_.num_regular(); }
  int length() const { return core_.L(); }
  const std::vector<double>& p_data() const { return core_.p_data(); }
  bool time_conditioned() const { return gen_.has_mask() ? !is_absorbing() : true; }

  void operator()(const ModelQuery<value_type>& in, value_type* out) const {
    using T = value_type;
    const int N = gen_.num_regular(), D = gen_.num_states(), L = core_.L();
    detail::check_query("discdiff::ExactPosteriorDenoiser", in, L, D, true);
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
      T* dst = out + b * L * N;
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
  static constexpr ModelOutput output = ModelOutput::logits;

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

  void operator()(const ModelQuery<T>& in, T* out) const {
    const int N = gen_.num_regular(), D = gen_.num_states(), L = core_.L();
    detail::check_query("discdiff::ExactPosteriorTokenNoiseDenoiser", in, L, D, false);
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
      T* dst = out + b * L * N;
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
  static constexpr ModelOutput output = model_output_v<Inner>;

  PerturbedDenoiser(Inner inner, double amplitude, int num_states, std::uint64_t seed = 12345)
      : inner_(std::move(inner)), amp_(amplitude), d_(num_states), seed_(seed) {
    require_finite("discdiff::PerturbedDenoiser", "amplitude", amplitude);
  }

  int num_classes() const { return inner_.num_classes(); }
  bool time_conditioned() const { return model_time_conditioned(inner_); }
  const Inner& inner() const { return inner_; }

  void operator()(const ModelQuery<value_type>& in, value_type* out) const {
    using T = value_type;
    inner_(in, out);
    const int K = num_classes();
    for (std::int64_t p = 0; p < in.B * in.L; ++p) {
      const std::int64_t l = p % in.L;
      for (int k = 0; k < K; ++k) {
        T& z = out[p * K + k];
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

/// The per-position kernel of SyntheticDenoiser (see there).
template <class T>
struct SyntheticLogitsKernel {
  const int* xt;
  const T* t;
  const T* table;
  T* out;
  std::int64_t L;
  int K;
  bool timed;

  DD_HD void operator()(std::int64_t p) const {
    constexpr std::int64_t P = 1031;
    const std::int64_t b = p / L, l = p % L;
    const std::int64_t tq =
        timed ? static_cast<std::int64_t>(math::floor(1000.0 * static_cast<double>(t[b]))) : 0;
    std::int64_t j = (17 * static_cast<std::int64_t>(xt[p]) + 7 * l + tq) % P;
    if (j < 0) j += P;
    T* z = out + p * K;
    for (int k = 0; k < K; ++k) {
      z[k] = table[j];
      j += 131;
      if (j >= P) j -= P;
    }
  }
};

/// A cheap deterministic stand-in for a network, for backend tests and benchmarks (not a model of
/// anything): entry k of position (b, l) is table[(131 k + 17 x_t^{b,l} + 7 l + tq_b) mod 1031],
/// with a table of 1031 values uniform in [-scale, scale) (CounterRng(seed, 0x5d, j)) and
/// tq_b = floor(1000 t_b) when time_conditioned (else 0). K classes (N or D); MASK inputs are fine.
/// Runs on the executor Exec, in its memory space (the table is copied there once); Out says
/// whether the entries are read as logits or as log-scores (then K must be D).
template <class T, class Exec = SequentialExecutor, ModelOutput Out = ModelOutput::logits>
class SyntheticDenoiser {
 public:
  using value_type = T;
  using memory_space = typename Exec::memory_space;
  static constexpr ModelOutput output = Out;

  explicit SyntheticDenoiser(int num_classes, double scale = 2.0, bool time_conditioned = true,
                             std::uint64_t seed = 7, const Exec& exec = Exec{})
      : k_(num_classes), timed_(time_conditioned), exec_(exec), table_(kP) {
    if (num_classes < 2) throw_invalid("discdiff::SyntheticDenoiser", "num_classes", num_classes, "must be >= 2");
    require_finite("discdiff::SyntheticDenoiser", "scale", scale);
    std::vector<T> host(kP);
    for (int j = 0; j < kP; ++j)
      host[static_cast<std::size_t>(j)] =
          static_cast<T>(scale * (2.0 * uniform<double>(seed, 0x5du, static_cast<std::uint64_t>(j)) - 1.0));
    copy_from_host(table_, host.data(), host.size());
  }

  int num_classes() const { return k_; }
  bool time_conditioned() const { return timed_; }

  void operator()(const ModelQuery<T>& in, T* out) const {
    exec_.for_each(in.B * in.L, SyntheticLogitsKernel<T>{in.xt, in.t, table_.data(), out, in.L, k_, timed_},
                   double(in.B * in.L) * k_);
  }

 private:
  static constexpr int kP = 1031;
  int k_;
  bool timed_;
  Exec exec_;
  Buffer<T, memory_space> table_;
};

}  // namespace discdiff
