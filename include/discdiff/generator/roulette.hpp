// discdiff/generator/roulette.hpp: the roulette generator (spec/MATH.md 3.3, PBRC),
// parameter p_m in [0, 1], g = 1 - p_m, D = N + 1 with MASK = N.
//
//   Q = p_m Q_absorb + g Q_unif^(N)   (Q_unif^(N) = (1/N) 1 1^T - I on the regular block)
//   Q[MASK,a] = p_m, Q[b,a] = g/N (b != a regular), Q[a,a] = -(p_m + g (N-1)/N), MASK column 0
//   exit(a) = 1 - g/N, exit(MASK) = 0
//   e_m = e^{-p_m u}, m_m = -expm1(-p_m u), e_g = e^{-g u}, m_g = -expm1(-g u):
//   A_u = P_u[MASK,a] = m_m,  B_u = P_u[b,a] = e_m m_g / N,  C_u = P_u[a,a] = e_m (e_g + m_g/N)
//
// p_m = 1 reproduces AbsorbingGenerator bit for bit; p_m = 0 reproduces UniformGenerator on the
// regular block bit for bit (MASK unreachable). Valid noise: any u >= 0, and negative u down to
// u > -(log(max<T>) - log N). See docs/math/ctmc.md.
#pragma once

#include <cstdint>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "detail.hpp"

namespace discdiff {

/// The roulette rate matrix: mask at rate p_m, resample uniformly among the N regular tokens at
/// rate g = 1 - p_m. Trivially copyable; every member except the constructor is DD_HD and never
/// throws.
template <class T>
class RouletteGenerator {
 public:
  using value_type = T;
  static constexpr const char* name = "roulette";

  /// Host only. Throws std::invalid_argument for N < 2 and for p_m outside [0, 1] or non-finite.
  RouletteGenerator(long long n, T p_m)
      : n_(detail::checked_vocab("RouletteGenerator", n)), p_m_(checked_pm(p_m)), g_(T(1) - p_m) {}

  DD_HD int num_regular() const { return n_; }
  DD_HD int num_states() const { return n_ + 1; }
  DD_HD bool has_mask() const { return true; }
  DD_HD int mask() const { return n_; }
  /// The masking rate p_m.
  DD_HD T p_m() const { return p_m_; }
  /// The uniform-resampling rate g = 1 - p_m.
  DD_HD T g() const { return g_; }

  /// Q[y,x]: p_m for (MASK, regular x); g/N for distinct regular (y, x); -exit(x) on the
  /// diagonal; 0 in the MASK column.
  DD_HD T rate(int y, int x) const {
    if (x == n_) return T(0);
    if (y == x) return -exit_rate(x);
    return y == n_ ? p_m_ : g_ / T(n_);
  }

  /// exit(a) = p_m + g (N-1)/N = 1 - g/N for regular a; 0 for MASK.
  DD_HD T exit_rate(int x) const {
    return x == n_ ? T(0) : p_m_ + g_ * (T(n_ - 1) / T(n_));
  }

  /// P_u[y,x] (closed form of 3.3): A_u, B_u, C_u above; column MASK is delta_MASK.
  DD_HD T transition(int y, int x, T u) const {
    if (x == n_) return y == n_ ? T(1) : T(0);
    if (y == n_) return math::one_minus_exp_neg(p_m_ * u);
    const T e_m = math::exp(-p_m_ * u);
    const T m_g = math::one_minus_exp_neg(g_ * u);
    return y == x ? e_m * (math::exp(-g_ * u) + m_g / T(n_)) : e_m * m_g / T(n_);
  }

  /// out[y] = P_u[y,x] for y <= N.
  DD_HD void transition_column(int x, T u, T* out) const {
    if (x == n_) {
      for (int y = 0; y < n_; ++y) out[y] = T(0);
      out[n_] = T(1);
      return;
    }
    const F f = factors(u);
    for (int y = 0; y < n_; ++y) out[y] = f.b;
    out[x] = f.c;
    out[n_] = f.a;
  }

  /// out[x] = P_u[y,x] for x <= N: row MASK is (A, ..., A, 1); row y regular is B except C at y
  /// and 0 at MASK.
  DD_HD void transition_row(int y, T u, T* out) const {
    if (y == n_) {
      const T a = math::one_minus_exp_neg(p_m_ * u);
      for (int x = 0; x < n_; ++x) out[x] = a;
      out[n_] = T(1);
      return;
    }
    const F f = factors(u);
    for (int x = 0; x < n_; ++x) out[x] = f.b;
    out[y] = f.c;
    out[n_] = T(0);
  }

  /// out = P_u v: out[b] = e_m (e_g v[b] + (m_g/N) S), out[MASK] = v[MASK] + m_m S with
  /// S = sum_{a<N} v[a]. O(N); out may alias v. apply_exp(-Delta, s, out) is P_{-Delta} s.
  DD_HD void apply_exp(T u, const T* v, T* out) const {
    const T vm = v[n_];
    const T s = detail::compensated_sum(v, n_);
    const T e_m = math::exp(-p_m_ * u);
    const T e_g = math::exp(-g_ * u);
    const T shift = math::one_minus_exp_neg(g_ * u) * (s / T(n_));
    for (int b = 0; b < n_; ++b) out[b] = e_m * (e_g * v[b] + shift);
    out[n_] = vm + math::one_minus_exp_neg(p_m_ * u) * s;
  }

  /// Conditional ratio P_u[b,a] / P_u[x,a] (spec 1.5, table of 3.3), with
  /// 1/sm = 1/expm1(p_m u) = e_m / m_m:
  ///   x = MASK,  b = a:              r_ca = C/A = (e_g + m_g/N) / sm
  ///   x = MASK,  b regular != a:     r_ba = B/A = (m_g/N) / sm
  ///   x = a,     b regular != a:     r_bc = B/C = m_g / (N e_g + m_g)
  ///   x = c != a regular, b = a:     r_cb = C/B = 1 + N e_g / m_g
  ///   x = c != a regular, b not in {a, c} regular: 1;   b = x: 1
  ///   x regular, b = MASK:           A/C = expm1(p_m u)/(e_g + m_g/N), A/B = N expm1(p_m u)/m_g
  ///                                  (not used by reverse rates: Q[x,MASK] = 0; +Inf once they
  ///                                  exceed the range of T).
  /// Precondition P_u[x,a] > 0 (u > 0 and p_m > 0 when x = MASK != a; u > 0 and p_m < 1 when
  /// x != a are regular); otherwise the result is unspecified (0, +Inf or NaN).
  DD_HD T ratio(int x, int b, int a, T u) const {
    if (b == x) return T(1);
    if (a == n_) return T(0);  // column MASK is delta_MASK
    const T nn = T(n_);
    const T e_g = math::exp(-g_ * u);
    const T m_g = math::one_minus_exp_neg(g_ * u);
    if (x == n_) {
      const T inv_sm = math::exp(-p_m_ * u) / math::one_minus_exp_neg(p_m_ * u);
      return b == a ? inv_sm * (e_g + m_g / nn) : inv_sm * (m_g / nn);
    }
    if (x == a) {
      if (b == n_) return math::expm1(p_m_ * u) / (e_g + m_g / nn);
      return m_g / (nn * e_g + m_g);
    }
    if (b == a) return T(1) + nn * e_g / m_g;
    if (b == n_) return nn * math::expm1(p_m_ * u) / m_g;
    return T(1);
  }

  /// x_t ~ P_u[., x0] for u >= 0 (recipe of 3.3). Draws, always in this order and always all
  /// of them (also when x0 = MASK): r_m = rng.uniform<T>() (masking event iff r_m < m_m), then
  /// r_g = rng.uniform<T>() (resampling event iff r_g < m_g), then j = rng.uniform_int(N).
  /// Returns MASK if x0 = MASK or r_m < m_m; else j if r_g < m_g; else x0.
  DD_HD int sample_forward(int x0, T u, CounterRng& rng) const {
    const T r_m = rng.template uniform<T>();
    const T r_g = rng.template uniform<T>();
    const int j = static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(n_)));
    if (x0 == n_ || r_m < math::one_minus_exp_neg(p_m_ * u)) return n_;
    return r_g < math::one_minus_exp_neg(g_ * u) ? j : x0;
  }

  /// A draw from the limit: MASK when p_m > 0; uniform over the N regular tokens when p_m = 0
  /// (the limit from a regular start). Always draws one rng.uniform_int(N).
  DD_HD int sample_limit(CounterRng& rng) const {
    const int j = static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(n_)));
    return p_m_ > T(0) ? n_ : j;
  }

 private:
  struct F {
    T a, b, c;
  };
  DD_HD F factors(T u) const {
    const T e_m = math::exp(-p_m_ * u);
    const T m_g = math::one_minus_exp_neg(g_ * u);
    const T nn = T(n_);
    return F{math::one_minus_exp_neg(p_m_ * u), e_m * m_g / nn,
             e_m * (math::exp(-g_ * u) + m_g / nn)};
  }
  static T checked_pm(T p_m) {
    require_in_closed("RouletteGenerator", "p_m", p_m, T(0), T(1));
    return p_m;
  }

  int n_;
  T p_m_;
  T g_;
};

}  // namespace discdiff
