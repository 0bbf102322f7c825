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

#include <cstdint>
#include <limits>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "closed_form_detail.hpp"
#include "detail.hpp"
#include "extension_types.hpp"

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

  // ---------------------------------------------------------------- extension points
  // The closed forms the generic algorithms call (docs/architecture.md, "Generator extension
  // points"); the free function of the same name (generator first) forwards here.

  /// The only moves are regular -> MASK: a regular x_t equals x_0, so losses and reverse steps
  /// act at MASK positions only.
  static constexpr bool pure_masking = true;

  /// Concrete scores from a clean-token posterior f (spec 4.2; score/probs_to_score.hpp): at
  /// x = MASK s_b = f(b)/expm1(u) and s_MASK = 1; at regular x every regular b != x has s_b = 0
  /// and s_MASK = f(x) expm1(u). f(h) counts as scale * f[h]; phi_ignored and pbrc_safeguards
  /// change nothing here. s (D entries) may alias f.
  DD_HD void probs_to_score(const T* f, int x, T u, T scale, bool /*phi_ignored*/,
                            bool /*pbrc_safeguards*/, T* s) const {
    detail::cf::absorbing_scores(n_, scale, f, x, u, s);
  }

  /// Offset of SEDD's log-score head (spec 4.4): -log(expm1(u)) - log N.
  DD_HD T sedd_log_score_offset(int /*x*/, T u) const {
    return -math::log_expm1(u) - math::log(T(n_));
  }

  /// SEDD's per-position weights and ratios (spec 5.1, 3.2): q = 1 at MASK (r_other = 0,
  /// r_a = 1/expm1(u)); no candidate at a regular x (q = 0).
  DD_HD SeddCoeffs<T> sedd_coeffs(int x, int a, T u) const {
    if (x != n_) return {T(0), T(0), T(0), false};
    return {T(1), T(0), ratio(x, a, a, u), true};
  }

  /// Tau-leaping weights (spec 3.2, 4.2, 9.1, 9.2): a regular token stays; at x = MASK,
  /// s_b = f(b)/expm1(u), Euler c1 = h/expm1(u), wx = 1 - h R/expm1(u); analytic
  /// c1 = expm1(Delta)/expm1(u), wx = 1 - R expm1(Delta)/expm1(u) (R = sum_b f(b) = 1), i.e. the
  /// MD4 ancestral step.
  DD_HD TauCoefficients tau_leaping_coefficients(const TauStep& st, int x, double /*fx*/,
                                                 double R) const {
    TauCoefficients k;
    if (x != n_) {
      k.stay = true;
      return k;
    }
    const double em1u = math::expm1(st.u);
    k.c0 = 0;
    k.c1 = (st.method == TauMethod::euler ? st.h : math::expm1(st.delta)) / em1u;
    k.wx = 1.0 - k.c1 * R;
    return k;
  }

  /// sup over f and x of the total reverse rate of one position in the u variable (spec 10.2):
  /// 1/expm1(u), decreasing in u > 0.
  DD_HD double uniformization_rate_bound(double u) const { return 1.0 / math::expm1(u); }

  /// The finite reference of the bounds (spec 6.7): pi_alpha.
  DD_HD PriorReference default_prior_reference() const { return PriorReference::masked_prior; }

  /// KL(p_{T|0}(.|a) || ref) per token (spec 6.7): alpha_T log N for pi_alpha (alpha_T =
  /// e^{-u_T}); +inf for the all-MASK pi (u_T finite).
  DD_HD T prior_kl_per_token(T u_T, PriorReference ref) const {
    if (ref == PriorReference::limit) return std::numeric_limits<T>::infinity();
    return math::exp(-u_T) * math::log(T(n_));
  }

  /// CE(p_T, ref) per token (spec 6.7): H_b(alpha_T) + alpha_T log N for pi_alpha; +inf for the
  /// all-MASK pi.
  DD_HD T reference_cross_entropy_per_token(T u_T, PriorReference ref) const {
    if (ref == PriorReference::limit) return std::numeric_limits<T>::infinity();
    return detail::cf::masked_prior_cross_entropy(n_, u_T);
  }

  /// int_{u_a}^{u_b} E_{p_u}[sum_i exit(x^i)] du for L positions (spec 7.2, 8.4):
  /// L (e^{-u_a} - e^{-u_b}), as e^{-u_a} (-expm1(-(u_b - u_a))).
  DD_HD T exit_rate_integral(long long L, T u_a, T u_b) const {
    return T(L) * math::exp(-u_a) * math::one_minus_exp_neg(u_b - u_a);
  }

  /// H(P_u[., a]) = H_b(e^{-u}) (spec 6.6; the same for every a).
  DD_HD T conditional_entropy_per_token(T u) const {
    return detail::cf::binary_entropy(math::exp(-u), math::one_minus_exp_neg(u));
  }

  /// The exit term of the PBRC code convention (spec 6.7): L (1 - eps), once per estimate
  /// (pbrc_exit_per_sample() is false).
  DD_HD double pbrc_exit(std::int64_t L, double eps, double /*sigma_t*/) const {
    return static_cast<double>(L) * (1.0 - eps);
  }
  /// Whether pbrc_exit depends on the time draw (then it is averaged per sample).
  DD_HD bool pbrc_exit_per_sample() const { return false; }
  /// CE_ref of the PBRC code convention (spec 6.7): 0.
  DD_HD double pbrc_reference_ce(std::int64_t /*L*/) const { return 0.0; }

 private:
  int n_;
};

}  // namespace discdiff
