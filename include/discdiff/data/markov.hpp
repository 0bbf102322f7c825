// discdiff/data/markov.hpp: a seeded sparse Markov source of order k with an
// exactly known entropy rate (the default training corpus of `discdiff`).
// Host only.
//
// Contexts. A context is the last k = order symbols (c_0 oldest ... c_{k-1}
// newest) over the alphabet {0..A-1}; its index is sum_i c_i A^(k-1-i), so the
// newest symbol is the index mod A. After emitting x the context c moves to
// (c mod A^(k-1)) * A + x. There are A^k <= 2^20 contexts.
//
// Construction, for each context c with newest symbol s:
//   * `branching` distinct successors: the first is always the "ramp"
//     (s + 1) mod A; the other branching - 1 are a uniformly random subset of
//     the remaining A - 1 symbols (partial Fisher-Yates over them in increasing
//     order, each pick by CounterRng::uniform_int), drawn with
//     CounterRng(seed, kMarkovBuildStream, c).
//   * weights w_j = (-log U_j)^(1 / concentration), U_j uniform in (0, 1) from
//     the same rng after the picks, in successor order (computed in the log
//     domain; a concentration so small that a weight underflows to 0 throws) (concentration 1: q is uniform on the
//     simplex, i.e. Dirichlet(1,..,1); small concentration: skewed; large:
//     nearly uniform over the successors); q_j = w_j / sum w.
//   * p(x | c) = (1 - smoothing) q(x) + smoothing / A (q = 0 off the successors).
// The ramp guarantees a single recurrent class: from any context, k ramp moves
// reach a context (x, x+1, ..., x+k-1) on the ramp cycle, which visits all A of
// them; hence a unique stationary distribution pi over contexts.
//
// Stationary distribution: power iteration of the lazy chain (P + I) / 2 from
// the uniform distribution until the L1 change of one step is below 1e-14
// (at most kMaxPowerIterations steps, else std::runtime_error), then the
// residual |pi P - pi|_1 < 1e-12 is checked (std::runtime_error otherwise).
//
// Exact entropies (nats):
//   entropy_rate()   h = sum_c pi(c) H(p(. | c))
//   block_entropy(L) H(X_1..X_L) of a stationary window:
//                    L >= k: H(pi) + (L - k) h;  1 <= L < k: the entropy of the
//                    marginal of the first L symbols of a context drawn from pi;
//                    L = 0: 0.
//
// generate(n, seed, stream): the first k symbols are a context drawn from pi,
// then the chain; one CounterRng(seed, kMarkovGenerateStream, stream) supplies
// one 53-bit uniform per symbol (inverse CDF), so the output is a pure function
// of (options, seed, stream), and a shorter run is a prefix of a longer one.
//
// Errors: std::invalid_argument for bad options or arguments (naming the value
// and its limits); std::runtime_error if the stationary iteration fails.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"

namespace discdiff {
namespace data {

/// Philox stream of the successor sets and weights ("MKVB").
constexpr std::uint32_t kMarkovBuildStream = 0x4D4B5642;
/// Philox stream of generate() ("MKVG").
constexpr std::uint32_t kMarkovGenerateStream = 0x4D4B5647;

class MarkovSource {
 public:
  struct Options {
    int order = 2;
    int alphabet = 27;
    int branching = 4;
    double concentration = 1.0;
    double smoothing = 0.0;
    std::uint64_t seed = 1;
  };

  static constexpr int kMaxPowerIterations = 2000000;

  explicit MarkovSource(const Options& o) : opt_(o) {
    const char* where = "MarkovSource";
    if (o.order < 1 || o.order > 3) throw_invalid(where, "order", o.order, "must lie in [1, 3]");
    if (o.alphabet < 2 || o.alphabet > 256)
      throw_invalid(where, "alphabet", o.alphabet, "must lie in [2, 256]");
    long long C = 1;
    for (int i = 0; i < o.order; ++i) C *= o.alphabet;
    if (C > (1LL << 20)) {
      const std::string why = "alphabet^order = " + std::to_string(C) + " contexts exceed 2^20";
      throw_invalid(where, "alphabet", o.alphabet, why.c_str());
    }
    if (o.branching < 1 || o.branching > o.alphabet) {
      const std::string why = "must lie in [1, alphabet = " + std::to_string(o.alphabet) + "]";
      throw_invalid(where, "branching", o.branching, why.c_str());
    }
    require_positive(where, "concentration", o.concentration);
    require_finite(where, "smoothing", o.smoothing);
    if (!(o.smoothing >= 0.0 && o.smoothing < 1.0))
      throw_invalid(where, "smoothing", o.smoothing, "must lie in [0, 1)");
    C_ = static_cast<int>(C);
    build();
    solve_stationary();
    compute_entropy_rate();
  }

  const Options& options() const { return opt_; }

  /// alphabet^order.
  int num_contexts() const { return C_; }

  /// p(next | context).
  double prob(int context, int next) const {
    require_token("MarkovSource::prob", "context", context, C_);
    require_token("MarkovSource::prob", "next", next, opt_.alphabet);
    const double s = opt_.smoothing;
    double q = 0.0;
    const std::size_t b = static_cast<std::size_t>(opt_.branching);
    for (std::size_t j = 0; j < b; ++j)
      if (succ_[static_cast<std::size_t>(context) * b + j] == next)
        q = q_[static_cast<std::size_t>(context) * b + j];
    return (1.0 - s) * q + s / opt_.alphabet;
  }

  /// n symbols (see the header comment); throws for n > 2^33.
  std::vector<int> generate(std::size_t n, std::uint64_t seed, std::uint64_t stream) const {
    if (static_cast<std::uint64_t>(n) > (std::uint64_t(1) << 33))
      throw_invalid("MarkovSource::generate", "n", n, "must be <= 2^33 (one random stream)");
    std::vector<int> out(n);
    if (n == 0) return out;
    CounterRng rng(seed, kMarkovGenerateStream, stream);
    const int k = opt_.order, A = opt_.alphabet;
    const std::size_t b = static_cast<std::size_t>(opt_.branching);
    // Initial context from pi (inverse CDF).
    int ctx = categorical_inverse_cdf(pi_.data(), C_, rng.uniform<double>());
    {
      int c = ctx;
      for (int i = k - 1; i >= 0; --i) {
        if (static_cast<std::size_t>(i) < n) out[static_cast<std::size_t>(i)] = c % A;
        c /= A;
      }
    }
    const int suffix = C_ / A;  // A^(k-1)
    const double s = opt_.smoothing;
    for (std::size_t t = static_cast<std::size_t>(k); t < n; ++t) {
      const double u = rng.uniform<double>();
      int x;
      if (u >= 1.0 - s) {  // the smoothing component: uniform over the alphabet
        x = static_cast<int>((u - (1.0 - s)) / s * A);
        if (x >= A) x = A - 1;
        if (x < 0) x = 0;
      } else {             // the sparse component: inverse CDF of q
        const double target = u / (1.0 - s);
        const std::size_t base = static_cast<std::size_t>(ctx) * b;
        std::size_t j = 0;
        while (j + 1 < b && !(cum_[base + j] > target)) ++j;
        x = succ_[base + j];
      }
      out[t] = x;
      ctx = (ctx % suffix) * A + x;
    }
    return out;
  }

  /// The stationary distribution over contexts.
  const std::vector<double>& stationary() const { return pi_; }

  /// h = sum_c pi(c) H(p(. | c)) in nats per symbol.
  double entropy_rate() const { return h_; }

  /// Exact H(X_1..X_L) in nats of a stationary window (see the header comment).
  double block_entropy(int L) const {
    if (L < 0) throw_invalid("MarkovSource::block_entropy", "L", L, "must be >= 0");
    if (L == 0) return 0.0;
    const int k = opt_.order, A = opt_.alphabet;
    if (L >= k) return entropy_of(pi_) + static_cast<double>(L - k) * h_;
    int group = 1;  // A^(k-L): contexts with the same first L symbols are consecutive
    for (int i = L; i < k; ++i) group *= A;
    std::vector<double> marg(static_cast<std::size_t>(C_ / group), 0.0);
    for (int c = 0; c < C_; ++c) marg[static_cast<std::size_t>(c / group)] += pi_[static_cast<std::size_t>(c)];
    return entropy_of(marg);
  }

  /// One line: order, alphabet, branching, seed, entropy rate in nats and bits.
  std::string describe() const {
    std::ostringstream os;
    os.precision(6);
    os << "Markov source: order " << opt_.order << ", alphabet " << opt_.alphabet
       << ", branching " << opt_.branching << ", concentration " << opt_.concentration
       << ", smoothing " << opt_.smoothing << ", seed " << opt_.seed << "; entropy rate "
       << h_ << " nats = " << h_ / std::log(2.0) << " bits per symbol";
    return os.str();
  }

 private:
  static double entropy_of(const std::vector<double>& p) {
    double h = 0.0;
    for (double v : p)
      if (v > 0.0) h -= v * std::log(v);
    return h;
  }

  void build() {
    const int A = opt_.alphabet;
    const std::size_t b = static_cast<std::size_t>(opt_.branching);
    succ_.assign(static_cast<std::size_t>(C_) * b, 0);
    q_.assign(succ_.size(), 0.0);
    cum_.assign(succ_.size(), 0.0);
    std::vector<int> pool(static_cast<std::size_t>(A - 1));
    std::vector<double> w(b);
    for (int c = 0; c < C_; ++c) {
      CounterRng rng(opt_.seed, kMarkovBuildStream, static_cast<std::uint64_t>(c));
      const int ramp = (c % A + 1) % A;
      // The other symbols in increasing order, then a partial Fisher-Yates.
      std::size_t m = 0;
      for (int x = 0; x < A; ++x)
        if (x != ramp) pool[m++] = x;
      int* row = succ_.data() + static_cast<std::size_t>(c) * b;
      row[0] = ramp;
      for (std::size_t j = 1; j < b; ++j) {
        const std::size_t left = pool.size() - (j - 1);
        const std::size_t pick = (j - 1) + rng.uniform_int(static_cast<std::uint32_t>(left));
        std::swap(pool[j - 1], pool[pick]);
        row[j] = pool[j - 1];
      }
      // w_j = E_j^(1/concentration), E_j = -log U_j ~ Exp(1), evaluated in the
      // log domain relative to the largest one so that it cannot overflow.
      double lmax = -HUGE_VAL;
      for (std::size_t j = 0; j < b; ++j) {
        w[j] = std::log(-std::log(rng.uniform_open<double>())) / opt_.concentration;
        if (w[j] > lmax) lmax = w[j];
      }
      double total = 0.0;
      for (std::size_t j = 0; j < b; ++j) {
        w[j] = std::exp(w[j] - lmax);
        total += w[j];
      }
      for (std::size_t j = 0; j < b; ++j)
        if (!(w[j] / total > 0.0))
          throw std::invalid_argument(
              "MarkovSource: concentration = " + discdiff::detail::format_value(opt_.concentration) +
              " is so small that a successor weight of context " + std::to_string(c) +
              " underflows to 0 in double precision; use a larger concentration");
      double cum = 0.0;
      for (std::size_t j = 0; j < b; ++j) {
        const std::size_t i = static_cast<std::size_t>(c) * b + j;
        q_[i] = w[j] / total;
        cum += q_[i];
        cum_[i] = cum;
      }
    }
  }

  /// y = x P (sparse successors plus the smoothing term).
  void apply_P(const std::vector<double>& x, std::vector<double>& y) const {
    const int A = opt_.alphabet;
    const std::size_t b = static_cast<std::size_t>(opt_.branching);
    const int suffix = C_ / A;
    const double s = opt_.smoothing;
    std::fill(y.begin(), y.end(), 0.0);
    std::vector<double> by_suffix(static_cast<std::size_t>(suffix), 0.0);
    for (int c = 0; c < C_; ++c) {
      const double xc = x[static_cast<std::size_t>(c)];
      if (xc == 0.0) continue;
      const int base = (c % suffix) * A;
      by_suffix[static_cast<std::size_t>(c % suffix)] += xc;
      const std::size_t r = static_cast<std::size_t>(c) * b;
      for (std::size_t j = 0; j < b; ++j)
        y[static_cast<std::size_t>(base + succ_[r + j])] += (1.0 - s) * xc * q_[r + j];
    }
    if (s > 0.0)
      for (int c2 = 0; c2 < C_; ++c2)
        y[static_cast<std::size_t>(c2)] += s / A * by_suffix[static_cast<std::size_t>(c2 / A)];
  }

  void solve_stationary() {
    const std::size_t C = static_cast<std::size_t>(C_);
    std::vector<double> pi(C, 1.0 / C_), y(C), next(C);
    bool converged = false;
    double change = 0.0;
    int it = 0;
    for (; it < kMaxPowerIterations; ++it) {
      apply_P(pi, y);
      double total = 0.0;
      for (std::size_t c = 0; c < C; ++c) {
        next[c] = 0.5 * (pi[c] + y[c]);
        total += next[c];
      }
      change = 0.0;
      for (std::size_t c = 0; c < C; ++c) {
        next[c] /= total;
        change += std::fabs(next[c] - pi[c]);
      }
      pi.swap(next);
      if (change < 1e-14) {
        converged = true;
        break;
      }
    }
    if (!converged)
      throw std::runtime_error("MarkovSource: the stationary power iteration did not converge in " +
                               std::to_string(kMaxPowerIterations) + " steps (last L1 change " +
                               discdiff::detail::format_value(change) + ")");
    apply_P(pi, y);
    double residual = 0.0;
    for (std::size_t c = 0; c < C; ++c) residual += std::fabs(y[c] - pi[c]);
    if (!(residual < 1e-12))
      throw std::runtime_error("MarkovSource: stationary residual |pi P - pi|_1 = " +
                               discdiff::detail::format_value(residual) +
                               " is not below 1e-12 after " + std::to_string(it + 1) + " steps");
    pi_ = std::move(pi);
  }

  void compute_entropy_rate() {
    const int A = opt_.alphabet;
    const std::size_t b = static_cast<std::size_t>(opt_.branching);
    const double s = opt_.smoothing;
    const double floor_p = s / A;
    const double floor_term = floor_p > 0.0 ? -(A - opt_.branching) * floor_p * std::log(floor_p) : 0.0;
    double h = 0.0;
    for (int c = 0; c < C_; ++c) {
      double hc = floor_term;
      for (std::size_t j = 0; j < b; ++j) {
        const double p = (1.0 - s) * q_[static_cast<std::size_t>(c) * b + j] + floor_p;
        if (p > 0.0) hc -= p * std::log(p);
      }
      h += pi_[static_cast<std::size_t>(c)] * hc;
    }
    h_ = h;
  }

  Options opt_;
  int C_ = 0;
  std::vector<int> succ_;     // C x branching successors (ramp first)
  std::vector<double> q_;     // C x branching sparse probabilities
  std::vector<double> cum_;   // C x branching cumulative q
  std::vector<double> pi_;    // stationary distribution over contexts
  double h_ = 0.0;
};

}  // namespace data
}  // namespace discdiff
