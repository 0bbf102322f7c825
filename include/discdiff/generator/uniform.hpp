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
#include <limits>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "closed_form_detail.hpp"
#include "detail.hpp"
#include "extension_types.hpp"

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

  // ---------------------------------------------------------------- extension points
  // The closed forms the generic algorithms call (docs/architecture.md, "Generator extension
  // points"); the free function of the same name (generator first) forwards here.

  /// Regular tokens also move among themselves: losses and reverse steps act at every position.
  static constexpr bool pure_masking = false;

  /// Concrete scores from a clean-token posterior f (spec 4.2; score/probs_to_score.hpp):
  /// s_b = R_x + f(x) rU_bc + f(b) (rU_cb - 1), s_x = 1, every term >= 0, where f(h) counts as
  /// scale * f[h] and R_x = sum_{h != x} f(h) (1 - f[x] with phi_ignored). pbrc_safeguards
  /// floors u at 0.0015 (spec 4.3). s (N entries) may alias f.
  DD_HD void probs_to_score(const T* f, int x, T u, T scale, bool phi_ignored,
                            bool pbrc_safeguards, T* s) const {
    const int n = n_;
    const T rx = detail::cf::regular_mass(f, n, x, scale, phi_ignored);
    if (pbrc_safeguards && u < T(0.0015)) u = T(0.0015);
    const T e = math::exp(-u), m = math::one_minus_exp_neg(u), nn = T(n);
    const T rcb_m1 = nn * e / m;      // rU_cb - 1 = N/expm1(u)
    const T rbc = m / (nn * e + m);    // rU_bc = expm1(u)/(expm1(u) + N)
    const T base = rx + scale * f[x] * rbc;
    const T k = scale * rcb_m1;
    for (int b = 0; b < n; ++b) s[b] = base + k * f[b];
    s[x] = T(1);
  }

  /// Offset c(u, x) of SEDD's log-score head (spec 4.4): log(1 + 1/expm1(u) - 1/(expm1(u) + N))
  /// = log1p(N / (expm1(u) (expm1(u) + N))).
  DD_HD T sedd_log_score_offset(int /*x*/, T u) const {
    const T em = math::expm1(u), nn = T(n_);
    return math::log1p(nn / (em * (em + nn)));
  }

  /// SEDD's per-position weights and ratios (spec 5.1, 3.1): q = 1/N; at x = a r_other = rU_bc
  /// (a is no candidate), at x != a r_other = 1 and r_a = rU_cb.
  DD_HD SeddCoeffs<T> sedd_coeffs(int x, int a, T u) const {
    const T q = T(1) / T(n_);
    if (x == a) return {q, ratio(x, detail::cf::other_than(a), a, u), T(0), false};
    return {q, T(1), ratio(x, a, a, u), true};
  }

  /// Tau-leaping weights (spec 3.1, 4.2, 9.1, 9.2): q = 1/N; P_{-Delta} = e^Delta I -
  /// expm1(Delta)/N 11^T (k_same = e^Delta, k_all = -expm1(Delta)/N); row x of P_Delta:
  /// B = (1 - e^{-Delta})/N, C = e^{-Delta} + B. fx = f(x), R = sum_{h != x} f(h).
  DD_HD TauCoefficients tau_leaping_coefficients(const TauStep& st, int /*x*/, double fx,
                                                 double R) const {
    const int n = n_;
    const detail::cf::RegularScores sc = detail::cf::regular_scores(n, st.u, fx, R);
    const double B = -math::expm1(-st.delta) / n;
    return detail::cf::regular_coefficients(st, n, 1.0 / n, sc, R, math::exp(st.delta),
                                            -math::expm1(st.delta) / n, B,
                                            math::exp(-st.delta) + B);
  }

  /// sup over f and x of the total reverse rate of one position in the u variable (spec 10.2):
  /// (N - 1 + N/expm1(u))/N, decreasing in u > 0.
  DD_HD double uniformization_rate_bound(double u) const {
    const double n = n_;
    return (n - 1 + n / math::expm1(u)) / n;
  }

  /// The finite reference of the bounds (spec 6.7): pi, uniform over the N tokens.
  DD_HD PriorReference default_prior_reference() const { return PriorReference::limit; }

  /// KL(p_{T|0}(.|a) || pi) per token (spec 6.7): C log(N C) + (N-1) B log(N B) at u_T. `ref`
  /// must be limit (no pi_alpha without MASK); masked_prior gives NaN.
  DD_HD T prior_kl_per_token(T u_T, PriorReference ref) const {
    if (ref != PriorReference::limit) return std::numeric_limits<T>::quiet_NaN();
    return detail::cf::uniform_column_kl(n_, u_T);
  }

  /// CE(p_T, pi) per token (spec 6.7): log N for every p_T; masked_prior gives NaN.
  DD_HD T reference_cross_entropy_per_token(T /*u_T*/, PriorReference ref) const {
    if (ref != PriorReference::limit) return std::numeric_limits<T>::quiet_NaN();
    return math::log(T(n_));
  }

  /// int_{u_a}^{u_b} E_{p_u}[sum_i exit(x^i)] du for L positions (spec 7.2, 8.4):
  /// L (1 - 1/N)(u_b - u_a).
  DD_HD T exit_rate_integral(long long L, T u_a, T u_b) const {
    return T(L) * exit_rate(0) * (u_b - u_a);
  }

  /// H(P_u[., a]) = -C log C - (N-1) B log B (spec 6.6; the same for every a).
  DD_HD T conditional_entropy_per_token(T u) const {
    return detail::cf::uniform_column_entropy(n_, u);
  }

  /// The exit term of the PBRC code convention (spec 6.7): (1 - 1/N) sigma(t) per position,
  /// inside the time average (pbrc_exit_per_sample() is true): L (1 - 1/N) sigma_t.
  DD_HD double pbrc_exit(std::int64_t L, double /*eps*/, double sigma_t) const {
    return static_cast<double>(L) * static_cast<double>(exit_rate(0)) * sigma_t;
  }
  /// Whether pbrc_exit depends on the time draw (then it is averaged per sample).
  DD_HD bool pbrc_exit_per_sample() const { return true; }
  /// CE_ref of the PBRC code convention (spec 6.7): L log N.
  DD_HD double pbrc_reference_ce(std::int64_t L) const {
    return static_cast<double>(L) * math::log(static_cast<double>(n_));
  }

 private:
  int n_;
};

}  // namespace discdiff
