// discdiff/bound/exact_marginals.hpp: the exact forward process on sequences for small N and L
// (spec/MATH.md 1.4, 1.5 and 7.1).
//
// ExactForward<Gen> holds a generator (any type of the Generator concept, docs/architecture.md:
// num_regular, num_states, rate, exit_rate, transition), a length L and a data distribution p_0
// over the N^L clean sequences (mixed-radix index k(x_0), exact_space.hpp). At a total noise u it
// computes, by products of per-position transitions applied to p_0 (never a D^L x D^L matrix):
//
//   p_{u|0}(x|x_0) = prod_i P_u[x^i, x_0^i]                                  conditional()
//   p_u(x)         = sum_{x_0} p_0(x_0) p_{u|0}(x|x_0)                        marginal(), slice()
//   J_i(x, h)      = sum_{x_0: x_0^i = h} p_0(x_0) p_{u|0}(x|x_0)             slice().joint
//   p_{0|u}(x_0^i = h | x) = J_i(x, h) / p_u(x)                               slice().posterior()
//   E_{x_0} H(p_{u|0}(.|x_0)) = sum_i sum_h m_i(h) H(P_u[., h])               expected_conditional_entropy()
//
// (m_i is the marginal of p_0 at position i.) Cost of slice(): about L^2 D^L max(D, N) for the
// joints; memory D^L L N numbers. Host only; intended for N^L up to about 1e5.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "exact_divergence.hpp"
#include "exact_space.hpp"
#include "reference_terms.hpp"

namespace discdiff {
namespace exact {

/// P_u as a dense D x D table: P[y * D + x] = gen.transition(y, x, u).
template <class Gen>
std::vector<typename Gen::value_type> transition_table(const Gen& gen,
                                                       typename Gen::value_type u) {
  const int d = gen.num_states();
  std::vector<typename Gen::value_type> p(static_cast<std::size_t>(d) * d);
  for (int y = 0; y < d; ++y)
    for (int x = 0; x < d; ++x) p[static_cast<std::size_t>(y) * d + x] = gen.transition(y, x, u);
  return p;
}

/// Every exact forward quantity at one total noise u.
template <class T>
struct ForwardSlice {
  T u = T(0);
  int n = 0;  ///< N regular tokens
  int d = 0;  ///< D token states
  int length = 0;
  const SequenceSpace* states = nullptr;  ///< the D^L noised states
  std::vector<T> P;      ///< P_u, P[y * D + x]
  std::vector<T> p;      ///< p_u(x), x < D^L
  std::vector<T> joint;  ///< J_i(x, h) at [(x * L + i) * N + h]

  T joint_at(std::int64_t x, int i, int h) const {
    return joint[static_cast<std::size_t>((x * length + i) * n + h)];
  }
  /// out[h] = p_{0|u}(x_0^i = h | x), h < N; the uniform 1/N where p_u(x) = 0 (undefined there).
  void posterior(std::int64_t x, int i, T* out) const {
    const T px = p[static_cast<std::size_t>(x)];
    const T* j = joint.data() + (x * length + i) * n;
    if (!(px > T(0))) {
      for (int h = 0; h < n; ++h) out[h] = T(1) / T(n);
      return;
    }
    T s = T(0);
    for (int h = 0; h < n; ++h) s += j[h];  // = p_u(x) up to rounding; normalise exactly
    for (int h = 0; h < n; ++h) out[h] = j[h] / s;
  }
};

/// Which reference distribution the learned reverse chain starts from (spec 6.7 and 7.1):
/// q_T = weight * ref + (1 - weight) * p_T, with ref = pi (StartReference::limit: uniform for the
/// uniform graph, all-MASK for absorbing and roulette with p_m > 0) or pi_alpha
/// (StartReference::masked_prior: per token (alpha_T/N) sum_j delta_j + (1 - alpha_T) delta_MASK).
/// The same enumeration as the Monte Carlo estimators' PriorReference (reference_terms.hpp).
using StartReference = PriorReference;

struct ReverseStart {
  StartReference reference = StartReference::limit;
  double weight = 0.7;  ///< in [0, 1]; 0 gives q_T = p_T, spec 7.1 uses 0.7 with the limit
};

/// The forward process on sequences of length L with data distribution p_0 (spec 1.4, 7.1).
template <class Gen>
class ExactForward {
 public:
  using T = typename Gen::value_type;
  using generator_type = Gen;

  /// p0 has N^L entries (index k(x_0), position 0 most significant), finite, >= 0, summing to 1
  /// within 1e-6 (it is renormalised exactly). D^L must not exceed max_states.
  ExactForward(const Gen& gen, int length, std::vector<T> p0,
               std::int64_t max_states = kMaxExactStates)
      : gen_(gen),
        n_(gen.num_regular()),
        d_(gen.num_states()),
        length_(length),
        clean_(n_, length, max_states),
        states_(d_, length, max_states),
        p0_(std::move(p0)) {
    const char* where = "discdiff::exact::ExactForward";
    if (static_cast<std::int64_t>(p0_.size()) != clean_.size())
      throw_invalid(where, "p0.size()", p0_.size(),
                    ("must equal N^L = " + std::to_string(clean_.size())).c_str());
    detail::CompensatedSum<T> s;
    for (std::size_t k = 0; k < p0_.size(); ++k) {
      if (!std::isfinite(static_cast<double>(p0_[k])) || p0_[k] < T(0))
        throw_invalid(where, ("p0[" + std::to_string(k) + "]").c_str(), p0_[k],
                      "probabilities must be finite and >= 0");
      s.add(p0_[k]);
    }
    const T total = s.value();
    if (!(std::abs(total - T(1)) <= T(1e-6)))
      throw_invalid(where, "sum(p0)", total, "must be 1 (within 1e-6)");
    for (T& v : p0_) v /= total;
    marg_.assign(static_cast<std::size_t>(length_) * n_, T(0));
    for (std::int64_t k = 0; k < clean_.size(); ++k)
      for (int i = 0; i < length_; ++i)
        marg_[static_cast<std::size_t>(i) * n_ + clean_.digit(k, i)] += p0_[static_cast<std::size_t>(k)];
  }

  const Gen& generator() const { return gen_; }
  int num_regular() const { return n_; }
  int num_states() const { return d_; }
  int length() const { return length_; }
  const SequenceSpace& clean_space() const { return clean_; }
  const SequenceSpace& state_space() const { return states_; }
  /// p_0 over the clean sequences.
  const std::vector<T>& data() const { return p0_; }
  /// m_i(h) = Pr_{p_0}(x_0^i = h).
  T data_marginal(int i, int h) const { return marg_[static_cast<std::size_t>(i) * n_ + h]; }

  /// p_0 as a distribution over the D^L states (clean sequences embedded; spec 7.1 NLL_eps).
  std::vector<T> data_on_states() const {
    std::vector<T> out(static_cast<std::size_t>(states_.size()), T(0));
    for (std::int64_t k = 0; k < clean_.size(); ++k)
      out[static_cast<std::size_t>(clean_.embed(k, states_))] = p0_[static_cast<std::size_t>(k)];
    return out;
  }

  /// p_u over the D^L states.
  std::vector<T> marginal(T u) const {
    const std::vector<T> P = transition_table(gen_, u);
    return marginal_from_table(P);
  }

  /// p_{u|0}(. | x_0) over the D^L states, for the clean index k0.
  std::vector<T> conditional(std::int64_t k0, T u) const {
    const std::vector<T> P = transition_table(gen_, u);
    std::vector<T> out(static_cast<std::size_t>(states_.size()));
    for (std::int64_t x = 0; x < states_.size(); ++x) {
      T v = T(1);
      for (int i = 0; i < length_; ++i)
        v *= P[static_cast<std::size_t>(states_.digit(x, i)) * d_ + clean_.digit(k0, i)];
      out[static_cast<std::size_t>(x)] = v;
    }
    return out;
  }

  /// p_u, the joints J_i(x, h) and P_u at u.
  ForwardSlice<T> slice(T u) const {
    ForwardSlice<T> s;
    s.u = u;
    s.n = n_;
    s.d = d_;
    s.length = length_;
    s.states = &states_;
    s.P = transition_table(gen_, u);
    s.p = marginal_from_table(s.P);
    const std::int64_t S = states_.size();
    s.joint.assign(static_cast<std::size_t>(S * length_ * n_), T(0));
    // P restricted to clean columns: D x N, M[y * N + h] = P_u[y, h].
    std::vector<T> m(static_cast<std::size_t>(d_) * n_);
    for (int y = 0; y < d_; ++y)
      for (int h = 0; h < n_; ++h)
        m[static_cast<std::size_t>(y) * n_ + h] = s.P[static_cast<std::size_t>(y) * d_ + h];
    std::vector<T> a, b;
    std::vector<int> radix(static_cast<std::size_t>(length_));
    for (int i = 0; i < length_; ++i) {
      // T_i = (x) P along every axis j != i, applied to p_0: axis i keeps the clean token h.
      a = p0_;
      for (int j = 0; j < length_; ++j) radix[static_cast<std::size_t>(j)] = n_;
      for (int j = 0; j < length_; ++j) {
        if (j == i) continue;
        std::int64_t pre = 1, post = 1;
        for (int k = 0; k < j; ++k) pre *= radix[static_cast<std::size_t>(k)];
        for (int k = j + 1; k < length_; ++k) post *= radix[static_cast<std::size_t>(k)];
        b.assign(static_cast<std::size_t>(pre * d_ * post), T(0));
        apply_axis(a.data(), pre, n_, post, m.data(), d_, b.data());
        radix[static_cast<std::size_t>(j)] = d_;
        a.swap(b);
      }
      // Strides of the mixed radix (D, ..., N at i, ..., D).
      std::vector<std::int64_t> stride(static_cast<std::size_t>(length_), 1);
      for (int k = length_ - 2; k >= 0; --k)
        stride[static_cast<std::size_t>(k)] =
            stride[static_cast<std::size_t>(k) + 1] * radix[static_cast<std::size_t>(k) + 1];
      for (std::int64_t x = 0; x < S; ++x) {
        std::int64_t base = 0;
        for (int k = 0; k < length_; ++k)
          if (k != i) base += states_.digit(x, k) * stride[static_cast<std::size_t>(k)];
        const int xi = states_.digit(x, i);
        T* out = s.joint.data() + (x * length_ + i) * n_;
        for (int h = 0; h < n_; ++h)
          out[h] = m[static_cast<std::size_t>(xi) * n_ + h] *
                   a[static_cast<std::size_t>(base + h * stride[static_cast<std::size_t>(i)])];
      }
    }
    return s;
  }

  /// E_{x_0} H(p_{u|0}(. | x_0)) = sum_i sum_h m_i(h) H(P_u[., h]) (the conditional law factorises).
  T expected_conditional_entropy(T u) const {
    const std::vector<T> P = transition_table(gen_, u);
    detail::CompensatedSum<T> s;
    for (int h = 0; h < n_; ++h) {
      T hcol = T(0);
      for (int y = 0; y < d_; ++y) hcol -= xlogx(P[static_cast<std::size_t>(y) * d_ + h]);
      for (int i = 0; i < length_; ++i) s.add(data_marginal(i, h) * hcol);
    }
    return s.value();
  }

  /// Whether the limit of the forward chain is all-MASK (a MASK that regular tokens reach).
  bool limit_is_mask() const { return gen_.has_mask() && gen_.rate(gen_.mask(), 0) > T(0); }

  /// pi over the D^L states: all-MASK when limit_is_mask(); otherwise uniform over the regular
  /// sequences (uniform graph: all N^L states; roulette with p_m = 0: MASK unreachable).
  std::vector<T> limit_distribution() const {
    std::vector<T> out(static_cast<std::size_t>(states_.size()), T(0));
    if (limit_is_mask()) {
      std::vector<int> tok(static_cast<std::size_t>(length_), gen_.mask());
      out[static_cast<std::size_t>(states_.encode(tok.data()))] = T(1);
      return out;
    }
    const T w = T(1) / static_cast<T>(clean_.size());
    for (std::int64_t k = 0; k < clean_.size(); ++k)
      out[static_cast<std::size_t>(clean_.embed(k, states_))] = w;
    return out;
  }

  /// pi_alpha at total noise u (spec 6.7, MD4 App. E): the product of per-token laws
  /// (alpha/N) on each regular token and 1 - alpha on MASK, alpha = 1 - P_u[MASK, 0].
  /// Requires a generator with a MASK.
  std::vector<T> masked_prior(T u) const {
    if (!gen_.has_mask())
      throw_invalid("discdiff::exact::ExactForward::masked_prior", "generator", Gen::name,
                    "pi_alpha needs a generator with a MASK state");
    const T masked = gen_.transition(gen_.mask(), 0, u);
    const T alpha = T(1) - masked;
    std::vector<T> tok(static_cast<std::size_t>(d_), alpha / T(n_));
    tok[static_cast<std::size_t>(gen_.mask())] = masked;
    std::vector<T> out(static_cast<std::size_t>(states_.size()));
    for (std::int64_t x = 0; x < states_.size(); ++x) {
      T v = T(1);
      for (int i = 0; i < length_; ++i) v *= tok[static_cast<std::size_t>(states_.digit(x, i))];
      out[static_cast<std::size_t>(x)] = v;
    }
    return out;
  }

  /// q_T = weight * ref + (1 - weight) * p_T at u_max (spec 7.1 "Reverse start").
  std::vector<T> reverse_start(const ReverseStart& start, T u_max) const {
    require_in_closed("discdiff::exact::ExactForward::reverse_start", "weight", start.weight, 0.0,
                      1.0);
    std::vector<T> q = marginal(u_max);
    if (start.weight == 0.0) return q;
    const std::vector<T> ref = start.reference == StartReference::limit
                                   ? limit_distribution()
                                   : masked_prior(u_max);
    const T w = static_cast<T>(start.weight);
    for (std::size_t x = 0; x < q.size(); ++x) q[x] = w * ref[x] + (T(1) - w) * q[x];
    return q;
  }

 private:
  std::vector<T> marginal_from_table(const std::vector<T>& P) const {
    std::vector<T> m(static_cast<std::size_t>(d_) * n_);
    for (int y = 0; y < d_; ++y)
      for (int h = 0; h < n_; ++h)
        m[static_cast<std::size_t>(y) * n_ + h] = P[static_cast<std::size_t>(y) * d_ + h];
    std::vector<T> a = p0_, b;
    std::int64_t pre = 1;
    for (int j = 0; j < length_; ++j) {
      std::int64_t post = 1;
      for (int k = j + 1; k < length_; ++k) post *= n_;
      b.assign(static_cast<std::size_t>(pre * d_ * post), T(0));
      apply_axis(a.data(), pre, n_, post, m.data(), d_, b.data());
      a.swap(b);
      pre *= d_;
    }
    return a;
  }

  Gen gen_;
  int n_, d_, length_;
  SequenceSpace clean_, states_;
  std::vector<T> p0_;
  std::vector<T> marg_;
};

}  // namespace exact
}  // namespace discdiff
