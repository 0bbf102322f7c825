// discdiff/generator/uniform.hpp: the uniform generator (spec/MATH.md 3.1, SEDD), D = N.
//
//   Q = (1/N) 1 1^T - I                     Q[y,x] = 1/N (y != x),  exit(x) = (N-1)/N
//   P_u = e^{-u} I + (1 - e^{-u}) (1/N) 1 1^T
//       C_u = P_u[a,a] = e^{-u} + m/N,  B_u = P_u[b,a] = m/N  (b != a),  m = -expm1(-u)
//
// Every entry is O(1) and no N x N matrix is ever formed. Valid noise: any u >= 0
// (u = +700 is fine in float: e^{-u} underflows to 0, nothing becomes NaN or Inf) and
// negative u (the inverse P_{-Delta}, e.g. the staggered score) down to
// u > -(log(max<T>) - log N), beyond which e^{|u|} N overflows. See docs/math/ctmc.md.
#pragma once

#include <cstdint>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "detail.hpp"

namespace discdiff {

/// The uniform rate matrix Q = (1/N) 1 1^T - I over N regular tokens (no MASK).
/// Trivially copyable; every member except the constructor is DD_HD and never throws.
template <class T>
class UniformGenerator {
 public:
  using value_type = T;
  static constexpr const char* name = "uniform";

  /// Host only. Throws std::invalid_argument for N < 2.
  explicit UniformGenerator(long long n) : n_(detail::checked_vocab("UniformGenerator", n)) {}

  DD_HD int num_regular() const { return n_; }
  DD_HD int num_states() const { return n_; }
  DD_HD bool has_mask() const { return false; }
  DD_HD int mask() const { return -1; }

  /// Q[y,x] = 1/N for y != x, -(N-1)/N on the diagonal.
  DD_HD T rate(int y, int x) const { return y == x ? -exit_rate(x) : T(1) / T(n_); }

  /// exit(x) = -Q[x,x] = (N-1)/N for every state.
  DD_HD T exit_rate(int /*x*/) const { return T(n_ - 1) / T(n_); }

  /// P_u[y,x]: C_u = e^{-u} + m/N on the diagonal, B_u = m/N elsewhere (m = -expm1(-u)).
  DD_HD T transition(int y, int x, T u) const {
    const T b = math::one_minus_exp_neg(u) / T(n_);
    return y == x ? math::exp(-u) + b : b;
  }

  /// out[y] = P_u[y,x] for y < N.
  DD_HD void transition_column(int x, T u, T* out) const {
    const T b = math::one_minus_exp_neg(u) / T(n_);
    for (int y = 0; y < n_; ++y) out[y] = b;
    out[x] = math::exp(-u) + b;
  }

  /// out[x] = P_u[y,x] for x < N (P_u is symmetric).
  DD_HD void transition_row(int y, T u, T* out) const { transition_column(y, u, out); }

  /// out = P_u v = e^{-u} v + (m/N) sum(v) 1, O(N); out may alias v. apply_exp(-Delta, s, out)
  /// is the staggered score P_{-Delta} s.
  DD_HD void apply_exp(T u, const T* v, T* out) const {
    const T shift = math::one_minus_exp_neg(u) * (detail::compensated_sum(v, n_) / T(n_));
    const T e = math::exp(-u);
    for (int y = 0; y < n_; ++y) out[y] = e * v[y] + shift;
  }

  /// Conditional ratio P_u[b,a] / P_u[x,a] (spec 1.5, table of 3.1), in the closed forms
  ///   x = a, b != a:  rU_bc = B/C = m / (N e^{-u} + m)     (= expm1(u) / (e^u + N - 1))
  ///   x != a, b = a:  rU_cb = C/B = 1 + N e^{-u} / m       (= 1 + N / expm1(u))
  ///   otherwise 1 (b = x, or b not in {x, a}).
  /// Precondition P_u[x,a] > 0 (u > 0 when x != a); for u = 0 and x != a the result is +Inf.
  DD_HD T ratio(int x, int b, int a, T u) const {
    if (b == x) return T(1);
    if (x == a) {
      const T m = math::one_minus_exp_neg(u);
      return m / (T(n_) * math::exp(-u) + m);
    }
    if (b == a) return T(1) + T(n_) * math::exp(-u) / math::one_minus_exp_neg(u);
    return T(1);
  }

  /// x_t ~ P_u[., x0] for u >= 0. Draws, always in this order and always all of them:
  /// r = rng.uniform<T>() (resampling event iff r < -expm1(-u)), then j = rng.uniform_int(N)
  /// (the resampled token; may equal x0). Returns j if r < -expm1(-u), else x0.
  DD_HD int sample_forward(int x0, T u, CounterRng& rng) const {
    const T r = rng.template uniform<T>();
    const int j = static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(n_)));
    return r < math::one_minus_exp_neg(u) ? j : x0;
  }

  /// A draw from pi = uniform over the N tokens: one rng.uniform_int(N).
  DD_HD int sample_limit(CounterRng& rng) const {
    return static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(n_)));
  }

 private:
  int n_;
};

}  // namespace discdiff
