// discdiff/generator/absorbing.hpp: the absorbing generator (spec/MATH.md 3.2; SEDD, MD4,
// MDLM), D = N + 1 with MASK = N.
//
//   Q[MASK,a] = 1, Q[a,a] = -1 (a regular), every other entry 0 (the MASK column is 0)
//   exit(a) = 1, exit(MASK) = 0
//   P_u[a,a] = e^{-u},  P_u[MASK,a] = m = -expm1(-u),  P_u[MASK,MASK] = 1,  all others 0
//
// Valid noise: any u >= 0, and negative u (P_{-Delta}[a,a] = e^{Delta}) down to
// u > -log(max<T>) where e^{|u|} overflows. See docs/math/ctmc.md.
#pragma once

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "detail.hpp"

namespace discdiff {

/// The absorbing (masking) rate matrix over N regular tokens and MASK = N.
/// Trivially copyable; every member except the constructor is DD_HD and never throws.
template <class T>
class AbsorbingGenerator {
 public:
  using value_type = T;
  static constexpr const char* name = "absorbing";

  /// Host only. Throws std::invalid_argument for N < 2.
  explicit AbsorbingGenerator(long long n) : n_(detail::checked_vocab("AbsorbingGenerator", n)) {}

  DD_HD int num_regular() const { return n_; }
  DD_HD int num_states() const { return n_ + 1; }
  DD_HD bool has_mask() const { return true; }
  DD_HD int mask() const { return n_; }

  /// Q[y,x]: 1 for (MASK, regular x), -1 for (x, x) with x regular, 0 otherwise.
  DD_HD T rate(int y, int x) const {
    if (x == n_) return T(0);
    return y == x ? T(-1) : (y == n_ ? T(1) : T(0));
  }

  /// exit(x) = 1 for regular x, 0 for MASK.
  DD_HD T exit_rate(int x) const { return x == n_ ? T(0) : T(1); }

  /// P_u[y,x] (closed form of 3.2).
  DD_HD T transition(int y, int x, T u) const {
    if (x == n_) return y == n_ ? T(1) : T(0);
    if (y == x) return math::exp(-u);
    return y == n_ ? math::one_minus_exp_neg(u) : T(0);
  }

  /// out[y] = P_u[y,x] for y <= N.
  DD_HD void transition_column(int x, T u, T* out) const {
    for (int y = 0; y <= n_; ++y) out[y] = T(0);
    if (x == n_) {
      out[n_] = T(1);
      return;
    }
    out[x] = math::exp(-u);
    out[n_] = math::one_minus_exp_neg(u);
  }

  /// out[x] = P_u[y,x] for x <= N: row MASK is (m, ..., m, 1); row y regular is e^{-u} e_y.
  DD_HD void transition_row(int y, T u, T* out) const {
    if (y == n_) {
      const T m = math::one_minus_exp_neg(u);
      for (int x = 0; x < n_; ++x) out[x] = m;
      out[n_] = T(1);
      return;
    }
    for (int x = 0; x <= n_; ++x) out[x] = T(0);
    out[y] = math::exp(-u);
  }

  /// out = P_u v: out[a] = e^{-u} v[a], out[MASK] = v[MASK] + m sum_{a<N} v[a]. O(N); out may
  /// alias v. apply_exp(-Delta, s, out) is the staggered score P_{-Delta} s.
  DD_HD void apply_exp(T u, const T* v, T* out) const {
    const T vm = v[n_];
    const T s = detail::compensated_sum(v, n_);
    const T e = math::exp(-u);
    for (int a = 0; a < n_; ++a) out[a] = e * v[a];
    out[n_] = vm + math::one_minus_exp_neg(u) * s;
  }

  /// Conditional ratio P_u[b,a] / P_u[x,a] (spec 1.5 and 3.2):
  ///   x = MASK, b = a:        1/expm1(u) = e^{-u}/m   (= alpha/(1 - alpha))
  ///   x = MASK, b regular != a: 0
  ///   x = a regular, b = MASK:  expm1(u) (not used by reverse rates: Q[x,MASK] = 0; it exceeds
  ///                             the range of T, and is returned as +Inf, once u > log(max<T>))
  ///   x = a regular, b regular != a: 0;   b = x: 1.
  /// Precondition P_u[x,a] > 0 (x = a or x = MASK, and u > 0 when x = MASK != a); otherwise the
  /// result is unspecified (0 here).
  DD_HD T ratio(int x, int b, int a, T u) const {
    if (b == x) return T(1);
    if (a == n_) return T(0);  // column MASK is delta_MASK
    if (x == n_) return b == a ? math::exp(-u) / math::one_minus_exp_neg(u) : T(0);
    if (x == a && b == n_) return math::expm1(u);
    return T(0);
  }

  /// x_t ~ P_u[., x0] for u >= 0. Draws exactly one r = rng.uniform<T>() (also when x0 = MASK);
  /// returns MASK if x0 = MASK or r < -expm1(-u), else x0.
  DD_HD int sample_forward(int x0, T u, CounterRng& rng) const {
    const T r = rng.template uniform<T>();
    return (x0 == n_ || r < math::one_minus_exp_neg(u)) ? n_ : x0;
  }

  /// pi = delta_MASK: returns MASK and draws nothing.
  DD_HD int sample_limit(CounterRng& /*rng*/) const { return n_; }

 private:
  int n_;
};

}  // namespace discdiff
