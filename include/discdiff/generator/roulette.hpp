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
#include <limits>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "closed_form_detail.hpp"
#include "detail.hpp"
#include "extension_types.hpp"

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

  // ---------------------------------------------------------------- extension points
  // The closed forms the generic algorithms call (docs/architecture.md, "Generator extension
  // points"); the free function of the same name (generator first) forwards here.

  /// Regular tokens also move among themselves (for p_m < 1): losses act at every position.
  static constexpr bool pure_masking = false;

  /// Concrete scores from a clean-token posterior f (spec 4.2, 4.3; score/probs_to_score.hpp),
  /// f(h) counting as scale * f[h]:
  ///   x = MASK:      s_b = r_ba S + f(b) (r_ca - r_ba),   S = sum_{h < N} f(h), r_ca - r_ba = e_g/sm
  ///   x = c regular: s_b = R_c + f(c) r_bc + f(b) (r_cb - 1),  R_c = sum_{h < N, h != c} f(h)
  /// (every term >= 0), s_MASK = R_c A/B + f(c) A/C (unused). With phi_ignored S = 1 and
  /// R_c = 1 - f[c]; pbrc_safeguards evaluates r_bc, r_cb at u_eff = ln(1.1 u + 1.1) for u < 0.5.
  /// p_m = 1 is the absorbing closed form. s (D entries) may alias f.
  DD_HD void probs_to_score(const T* f, int x, T u, T scale, bool phi_ignored,
                            bool pbrc_safeguards, T* s) const {
    const int n = n_;
    const T nn = T(n), pm = p_m_, g = g_;
    if (g == T(0)) {  // p_m = 1 is the absorbing graph
      detail::cf::absorbing_scores(n, scale, f, x, u, s);
      return;
    }
    const T rx = detail::cf::regular_mass(f, n, x, scale, phi_ignored);  // S at x = MASK
    if (x == n) {
      // 1/sm = e_m/m_m; r_ba = (m_g/N)/sm; r_ca - r_ba = e_g/sm.
      const T inv_sm = math::exp(-pm * u) / math::one_minus_exp_neg(pm * u);
      const T base = math::one_minus_exp_neg(g * u) / nn * inv_sm * rx;
      const T k = scale * math::exp(-g * u) * inv_sm;
      for (int b = 0; b < n; ++b) s[b] = base + k * f[b];
      s[n] = T(1);
      return;
    }
    const T ur = pbrc_safeguards ? detail::cf::pbrc_roulette_u(u) : u;
    const T e_g = math::exp(-g * ur), m_g = math::one_minus_exp_neg(g * ur);
    const T rcb_m1 = nn * e_g / m_g;      // r_cb - 1
    const T rbc = m_g / (nn * e_g + m_g);  // r_bc
    const T fx = scale * f[x];
    const T base = rx + fx * rbc;
    const T k = scale * rcb_m1;
    for (int b = 0; b < n; ++b) s[b] = base + k * f[b];
    s[x] = T(1);
    // s_MASK = sum_h f(h) A/P[x,h] (true u): A/B for h != x, A/C for h = x. Unused by any rate.
    const T e_g0 = math::exp(-g * u), m_g0 = math::one_minus_exp_neg(g * u);
    const T sm = math::expm1(pm * u);
    s[n] = sm * (rx * nn / m_g0 + fx / (e_g0 + m_g0 / nn));
  }

  /// Offset of SEDD's log-score head (spec 4.4): -log(sm N) at masked positions
  /// (sm = expm1(p_m u)); log(1 + 1/sg - 1/(sg + N)) = log1p(N/(sg (sg + N))) at unmasked ones
  /// (sg = expm1(g u); 0 when g = 0, where no candidate is weighted).
  DD_HD T sedd_log_score_offset(int x, T u) const {
    const T nn = T(n_);
    if (x == n_) return -(math::log_expm1(p_m_ * u) + math::log(nn));
    if (g_ == T(0)) return T(0);
    const T sg = math::expm1(g_ * u);
    return math::log1p(nn / (sg * (sg + nn)));
  }

  /// SEDD's per-position weights and ratios (spec 5.1, 3.3): q = p_m at MASK (r_other = r_ba,
  /// r_a = r_ca), q = g/N at a regular x (r_bc at x = a; 1 and r_cb at x != a); q = 0 for a
  /// regular x when g = 0.
  DD_HD SeddCoeffs<T> sedd_coeffs(int x, int a, T u) const {
    const int other = detail::cf::other_than(a);
    if (x == n_) return {p_m_, ratio(x, other, a, u), ratio(x, a, a, u), true};
    const T q = g_ / T(n_);
    if (q == T(0)) return {T(0), T(0), T(0), false};
    if (x == a) return {q, ratio(x, other, a, u), T(0), false};
    return {q, T(1), ratio(x, a, a, u), true};
  }

  /// Tau-leaping weights (spec 3.3, 4.2, 9.1, 9.2), g = 1 - p_m.
  ///   x = MASK:  s_b = r_ba + f(b)(r_ca - r_ba), r_ba = (m_g/N)/sm, r_ca - r_ba = e_g/sm,
  ///              sm = expm1(p_m u). Euler: q = p_m, wx = 1 - h p_m (N r_ba + (r_ca - r_ba) R).
  ///              Analytic: S_reg = N r_ba + (r_ca - r_ba) R, shat_b = bi S_reg + e^Delta s_b,
  ///              shat_MASK = ai S_reg + 1, P_Delta[MASK,b] = A = 1 - e^{-p_m Delta}:
  ///              c0 = A (bi S_reg + e^Delta r_ba), c1 = A e^Delta (r_ca - r_ba), wx = ai S_reg + 1,
  ///              ai = -expm1(p_m Delta), bi = -e^{p_m Delta} expm1(g Delta)/N.
  ///   x regular: the uniform-type rows with q = g/N, k_same = e^Delta, k_all = bi,
  ///              B = e^{-p_m Delta}(1 - e^{-g Delta})/N, C = e^{-p_m Delta} e^{-g Delta} + B.
  ///              p_m = 1 (g = 0): a regular token stays.
  DD_HD TauCoefficients tau_leaping_coefficients(const TauStep& st, int x, double fx,
                                                 double R) const {
    const int n = n_;
    const double pm = p_m_, g = g_, nn = n, d = st.delta;
    const double bi = -math::exp(pm * d) * math::expm1(g * d) / nn;
    if (x == n_) {
      const double inv_sm = math::exp(-pm * st.u) / (-math::expm1(-pm * st.u));
      const double rba = (-math::expm1(-g * st.u) / nn) * inv_sm;
      const double dca = math::exp(-g * st.u) * inv_sm;
      TauCoefficients k;
      if (st.method == TauMethod::euler) {
        k.c0 = st.h * pm * rba;
        k.c1 = st.h * pm * dca;
        k.wx = 1.0 - st.h * pm * (nn * rba + dca * R);
      } else {
        const double sreg = nn * rba + dca * R;
        const double A = -math::expm1(-pm * d), ed = math::exp(d);
        k.c0 = A * (bi * sreg + ed * rba);
        k.c1 = A * ed * dca;
        k.wx = -math::expm1(pm * d) * sreg + 1.0;
      }
      return k;
    }
    if (!(g > 0)) {
      TauCoefficients k;
      k.stay = true;
      return k;
    }
    const detail::cf::RegularScores sc = detail::cf::regular_scores(n, g * st.u, fx, R);
    const double em = math::exp(-pm * d);
    const double B = em * (-math::expm1(-g * d)) / nn;
    return detail::cf::regular_coefficients(st, n, g / nn, sc, R, math::exp(d), bi, B,
                                            em * math::exp(-g * d) + B);
  }

  /// sup over f and x of the total reverse rate of one position in the u variable (spec 10.2):
  /// max(p_m (N r_ba + (r_ca - r_ba)), (g/N)(N - 1 + N e^{-gu}/(1 - e^{-gu}))), decreasing in
  /// u > 0.
  DD_HD double uniformization_rate_bound(double u) const {
    const double n = n_, pm = p_m_, g = g_;
    double best = 0;
    if (pm > 0) {
      const double inv_sm = math::exp(-pm * u) / (-math::expm1(-pm * u));
      best = pm * (n * (-math::expm1(-g * u) / n) * inv_sm + math::exp(-g * u) * inv_sm);
    }
    if (g > 0) {
      const double reg = (g / n) * (n - 1 + n * math::exp(-g * u) / (-math::expm1(-g * u)));
      best = reg > best ? reg : best;
    }
    return best;
  }

  /// The finite reference of the bounds (spec 6.7): pi_alpha.
  DD_HD PriorReference default_prior_reference() const { return PriorReference::masked_prior; }

  /// KL(p_{T|0}(.|a) || ref) per token (spec 6.7): alpha_T [c log(N c) + (N-1) b log(N b)] for
  /// pi_alpha (alpha_T = e^{-p_m u_T}, c, b the uniform-resampling column at g u_T); +inf for the
  /// all-MASK pi when p_m > 0; with p_m = 0 (MASK unreachable) pi is uniform over the regular
  /// tokens.
  DD_HD T prior_kl_per_token(T u_T, PriorReference ref) const {
    const T kl_g = detail::cf::uniform_column_kl(n_, g_ * u_T);
    if (ref == PriorReference::limit)
      return p_m_ > T(0) ? std::numeric_limits<T>::infinity() : kl_g;
    return math::exp(-p_m_ * u_T) * kl_g;
  }

  /// CE(p_T, ref) per token (spec 6.7): H_b(alpha_T) + alpha_T log N for pi_alpha
  /// (alpha_T = e^{-p_m u_T}); +inf for the all-MASK pi when p_m > 0; log N when p_m = 0 and
  /// ref = pi (uniform over the regular tokens).
  DD_HD T reference_cross_entropy_per_token(T u_T, PriorReference ref) const {
    if (ref == PriorReference::limit)
      return p_m_ > T(0) ? std::numeric_limits<T>::infinity() : math::log(T(n_));
    return detail::cf::masked_prior_cross_entropy(n_, p_m_ * u_T);
  }

  /// int_{u_a}^{u_b} E_{p_u}[sum_i exit(x^i)] du for L positions (spec 7.2, 8.4):
  /// L (1 - (1-p_m)/N)(e^{-p_m u_a} - e^{-p_m u_b})/p_m (L (1 - 1/N)(u_b - u_a) at p_m = 0).
  DD_HD T exit_rate_integral(long long L, T u_a, T u_b) const {
    const T ex = exit_rate(0), pm = p_m_;
    if (pm == T(0)) return T(L) * ex * (u_b - u_a);
    return T(L) * ex * math::exp(-pm * u_a) * math::one_minus_exp_neg(pm * (u_b - u_a)) / pm;
  }

  /// H(P_u[., a]) = -A log A - C log C - (N-1) B log B = H_b(e_m) + e_m H(uniform-resampling
  /// column at g u) (spec 6.6; the same for every a).
  DD_HD T conditional_entropy_per_token(T u) const {
    const T em = math::exp(-p_m_ * u), mm = math::one_minus_exp_neg(p_m_ * u);
    return detail::cf::binary_entropy(em, mm) +
           em * detail::cf::uniform_column_entropy(n_, g_ * u);
  }

  /// The exit term of the PBRC code convention (spec 6.7): L (1 - (1-p_m)/N)(1 - eps)/p_m once
  /// per estimate; at p_m = 0 the uniform per-sample term L (1 - 1/N) sigma_t.
  DD_HD double pbrc_exit(std::int64_t L, double eps, double sigma_t) const {
    const double pm = static_cast<double>(p_m_);
    if (pm == 0.0) return static_cast<double>(L) * static_cast<double>(exit_rate(0)) * sigma_t;
    return static_cast<double>(L) * static_cast<double>(exit_rate(0)) * (1.0 - eps) / pm;
  }
  /// Whether pbrc_exit depends on the time draw (then it is averaged per sample): p_m = 0.
  DD_HD bool pbrc_exit_per_sample() const { return p_m_ == T(0); }
  /// CE_ref of the PBRC code convention (spec 6.7): 0.
  DD_HD double pbrc_reference_ce(std::int64_t /*L*/) const { return 0.0; }

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
