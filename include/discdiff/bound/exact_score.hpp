// discdiff/bound/exact_score.hpp: model scores from a denoiser and the learned reverse CTMC on
// enumerated sequences (spec/MATH.md 1.5 and 4.1).
//
//   naive_probs_to_score:  s_b = sum_{h < N, P_u[x,h] > 0} f(h) P_u[b,h] / P_u[x,h]  (b != x),
//                          s_x = 1 (spec 4.1), read off the generator's transition(): the generic,
//                          unoptimised twin of score/probs_to_score.hpp, for any generator.
//   ReverseEdges:          the one-position moves x -> y = x^{i<-b} that the reverse chain can make,
//                          i.e. those with forward rate Q[x^i, b] > 0 (spec 1.5 argument-order trap:
//                          Q[x^i, b] is the FORWARD rate b -> x^i).
//   ExactEvaluator:        at a total noise u, the forward slice (exact_marginals.hpp) and the
//                          model score s_theta(x,u)_{i,b} of every edge; apply_generator() gives
//                          (G_u q)(x) = sum_{y~x} [R(y->x) q(y) - R(x->y) q(x)] with
//                          R(x -> x^{i<-b}) = Q[x^i, b] s_theta(x,u)_{i,b} (the sigma factor is
//                          dropped: the variable is u = sbar), so dq/du = -(G_u q).
#pragma once

#include <cstdint>
#include <vector>

#include "exact_marginals.hpp"

namespace discdiff {
namespace exact {

/// s[b] for b < D from the D x D table P (P[y * D + x] = P_u[y,x]), the current token x and the
/// predicted clean posterior f[0..N): s_b = sum_{h<N, P[x,h]>0} f[h] P[b,h]/P[x,h], s_x = 1.
template <class T>
void naive_probs_to_score(const T* P, int d, int n, int x, const T* f, T* s) {
  for (int b = 0; b < d; ++b) s[b] = T(0);
  for (int h = 0; h < n; ++h) {
    const T pxh = P[static_cast<std::size_t>(x) * d + h];
    if (!(pxh > T(0)) || f[h] == T(0)) continue;
    const T w = f[h] / pxh;
    for (int b = 0; b < d; ++b) s[b] += w * P[static_cast<std::size_t>(b) * d + h];
  }
  s[x] = T(1);
}

/// The same from a generator at total noise u (evaluates one D x N block of P_u).
template <class Gen>
void naive_probs_to_score(const Gen& gen, int x, typename Gen::value_type u,
                          const typename Gen::value_type* f, typename Gen::value_type* s) {
  using T = typename Gen::value_type;
  const int d = gen.num_states(), n = gen.num_regular();
  for (int b = 0; b < d; ++b) s[b] = T(0);
  for (int h = 0; h < n; ++h) {
    const T pxh = gen.transition(x, h, u);
    if (!(pxh > T(0)) || f[h] == T(0)) continue;
    const T w = f[h] / pxh;
    for (int b = 0; b < d; ++b) s[b] += w * gen.transition(b, h, u);
  }
  s[x] = T(1);
}

/// The reverse moves of the sequence chain, grouped by source state x (edges of x are
/// [offset[x], offset[x+1]), ordered by position i then candidate b).
template <class T>
struct ReverseEdges {
  std::vector<std::int64_t> offset;  ///< size D^L + 1
  std::vector<std::int64_t> target;  ///< y = x^{i<-b}
  std::vector<int> position;         ///< i
  std::vector<int> candidate;        ///< b
  std::vector<T> forward_rate;       ///< Q[x^i, b] > 0
  std::int64_t size() const { return static_cast<std::int64_t>(target.size()); }
};

template <class Gen>
ReverseEdges<typename Gen::value_type> build_reverse_edges(const Gen& gen,
                                                           const SequenceSpace& states) {
  using T = typename Gen::value_type;
  ReverseEdges<T> e;
  const int d = gen.num_states();
  e.offset.reserve(static_cast<std::size_t>(states.size()) + 1);
  e.offset.push_back(0);
  for (std::int64_t x = 0; x < states.size(); ++x) {
    for (int i = 0; i < states.length(); ++i) {
      const int xi = states.digit(x, i);
      for (int b = 0; b < d; ++b) {
        if (b == xi) continue;
        const T q = gen.rate(xi, b);
        if (!(q > T(0))) continue;
        e.target.push_back(states.with_digit(x, i, b));
        e.position.push_back(i);
        e.candidate.push_back(b);
        e.forward_rate.push_back(q);
      }
    }
    e.offset.push_back(static_cast<std::int64_t>(e.target.size()));
  }
  return e;
}

/// Forward slice and model scores at one u, for a fixed forward process and denoiser.
template <class Gen, class Denoiser>
class ExactEvaluator {
 public:
  using T = typename Gen::value_type;

  struct Eval {
    ForwardSlice<T> slice;
    std::vector<T> score;  ///< s_theta(x,u)_{i,b} per edge
  };

  ExactEvaluator(const ExactForward<Gen>& fwd, const Denoiser& den)
      : fwd_(&fwd), den_(den), edges_(build_reverse_edges(fwd.generator(), fwd.state_space())) {}

  const ExactForward<Gen>& forward() const { return *fwd_; }
  const ReverseEdges<T>& edges() const { return edges_; }
  const Denoiser& denoiser() const { return den_; }

  /// Slice and scores at u.
  Eval evaluate(T u) const {
    Eval ev;
    ev.slice = fwd_->slice(u);
    ev.score.assign(static_cast<std::size_t>(edges_.size()), T(0));
    const int n = fwd_->num_regular(), d = fwd_->num_states(), L = fwd_->length();
    const SequenceSpace& S = fwd_->state_space();
    std::vector<T> f(static_cast<std::size_t>(n)), s(static_cast<std::size_t>(d));
    for (std::int64_t x = 0; x < S.size(); ++x) {
      std::int64_t e = edges_.offset[static_cast<std::size_t>(x)];
      const std::int64_t end = edges_.offset[static_cast<std::size_t>(x) + 1];
      for (int i = 0; i < L && e < end; ++i) {
        if (edges_.position[static_cast<std::size_t>(e)] != i) continue;
        den_.predict(ev.slice, x, i, f.data());
        naive_probs_to_score(ev.slice.P.data(), d, n, S.digit(x, i), f.data(), s.data());
        for (; e < end && edges_.position[static_cast<std::size_t>(e)] == i; ++e)
          ev.score[static_cast<std::size_t>(e)] = s[static_cast<std::size_t>(edges_.candidate[static_cast<std::size_t>(e)])];
      }
    }
    return ev;
  }

  /// out = G_u q: out(x) = sum_{y~x} R(y->x) q(y) - sum_{y~x} R(x->y) q(x).
  void apply_generator(const Eval& ev, const T* q, T* out) const {
    const std::int64_t S = fwd_->state_space().size();
    for (std::int64_t x = 0; x < S; ++x) out[x] = T(0);
    for (std::int64_t x = 0; x < S; ++x) {
      const T qx = q[x];
      for (std::int64_t e = edges_.offset[static_cast<std::size_t>(x)];
           e < edges_.offset[static_cast<std::size_t>(x) + 1]; ++e) {
        const T flow = edges_.forward_rate[static_cast<std::size_t>(e)] *
                       ev.score[static_cast<std::size_t>(e)] * qx;
        out[x] -= flow;
        out[edges_.target[static_cast<std::size_t>(e)]] += flow;
      }
    }
  }

 private:
  const ExactForward<Gen>* fwd_;
  Denoiser den_;
  ReverseEdges<T> edges_;
};

}  // namespace exact
}  // namespace discdiff
