// discdiff/generator/closed_form_detail.hpp: helpers shared by the closed forms of several
// generators (the extension points of docs/architecture.md). Not part of the public concept.
//
//   regular_mass, absorbing_scores, pbrc_roulette_u   probs_to_score closed forms (spec 4.2, 4.3)
//   other_than                                        SEDD's representative b != a (spec 5.1)
//   regular_scores, regular_coefficients              tau-leaping weights of a regular row
//                                                     (spec 4.2, 9.1, 9.2)
//   binary_entropy, uniform_column_kl,                the reference terms of the bounds
//   uniform_column_entropy, masked_prior_cross_entropy (spec 6.6, 6.7)
#pragma once

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "detail.hpp"
#include "extension_types.hpp"

namespace discdiff {
namespace detail {
namespace cf {

// ------------------------------------------------------------------ probs_to_score (spec 4.2)

/// The regular mass without token `skip` (skip = MASK = n excludes nothing):
/// sum_{h < n, h != skip} f(h) * scale, summed (compensated) so that it stays accurate when f(skip)
/// is close to 1; with phi_ignored (PBRC, PhiMode::ignore) phi is taken as 0, i.e. 1 - f(skip).
template <class T>
DD_HD T regular_mass(const T* f, int n, int skip, T scale, bool phi_ignored) {
  if (phi_ignored) return skip < n ? T(1) - f[skip] : T(1);
  CompensatedSum<T> acc;
  for (int h = 0; h < n; ++h)
    if (h != skip) acc.add(f[h]);
  return scale * acc.value();
}

/// Absorbing closed form for n regular tokens (shared by the absorbing graph and roulette with
/// p_m = 1); u enters only through e^{-u}/m = 1/expm1(u) and expm1(u).
template <class T>
DD_HD DD_INLINE void absorbing_scores(int n, T scale, const T* f, int x, T u, T* s) {
  if (x == n) {
    const T k = scale * math::exp(-u) / math::one_minus_exp_neg(u);  // 1/expm1(u)
    for (int b = 0; b < n; ++b) s[b] = k * f[b];
    s[n] = T(1);
    return;
  }
  const T fx = scale * f[x];
  for (int b = 0; b < n; ++b) s[b] = T(0);
  s[x] = T(1);
  s[n] = fx * math::expm1(u);
}

/// PBRC's effective noise for r_bc and r_cb of the roulette graph (spec 4.3).
template <class T>
DD_HD DD_INLINE T pbrc_roulette_u(T u) {
  return u < T(0.5) ? math::log(T(1.1) * u + T(1.1)) : u;
}

// ------------------------------------------------------------------ SEDD (spec 5.1)

/// A regular token != a (the representative of "b != a" in the ratio tables).
DD_HD DD_INLINE int other_than(int a) { return a == 0 ? 1 : 0; }

// ------------------------------------------------------------------ tau-leaping (spec 9.1, 9.2)

/// Uniform-type scores at a regular x (spec 4.2, uniform and roulette-regular rows): for b != x,
/// s_b = alpha + beta f(b) with alpha = R + f(x) r_bc, beta = r_cb - 1, where e_g = e^{-g u},
/// m_g = 1 - e^{-g u}, r_cb - 1 = N e_g/m_g, r_bc = m_g/(N e_g + m_g), R = sum_{h != x} f(h).
struct RegularScores {
  double alpha, beta;
};
DD_HD inline RegularScores regular_scores(int n, double gu, double fx, double R) {
  const double e = math::exp(-gu), m = -math::expm1(-gu), nn = n;
  return {R + fx * (m / (nn * e + m)), nn * e / m};
}

/// Linear weights of a regular position x whose regular moves have reverse factor q (Q[x,b],
/// b != x regular) and whose scores are alpha + beta f(b) (b != x), s_x = 1.
///   Euler:    c0 = h q alpha, c1 = h q beta, wx = 1 - (N - 1) c0 - c1 R
///   analytic: with the inverse exponential of the regular block,
///             shat_b = k_same s_b + k_all S_reg (S_reg = sum_{z<N} s_z = 1 + (N-1) alpha + beta R)
///             and the row x of P_Delta: B (b != x), C (b = x),
///             c0 = B (k_same alpha + k_all S_reg), c1 = B k_same beta, wx = C (k_same + k_all S_reg).
DD_HD inline TauCoefficients regular_coefficients(const TauStep& st, int n, double q,
                                                  RegularScores sc, double R, double k_same,
                                                  double k_all, double B, double C) {
  TauCoefficients k;
  if (st.method == TauMethod::euler) {
    k.c0 = st.h * q * sc.alpha;
    k.c1 = st.h * q * sc.beta;
    k.wx = 1.0 - (k.c0 * (n - 1) + k.c1 * R);
  } else {
    const double sreg = 1.0 + (n - 1) * sc.alpha + sc.beta * R;
    k.c0 = B * (k_same * sc.alpha + k_all * sreg);
    k.c1 = B * k_same * sc.beta;
    k.wx = C * (k_same + k_all * sreg);
  }
  return k;
}

// ------------------------------------------------------------------ reference terms (spec 6.6, 6.7)

/// Binary entropy H_b(a) = -a log a - (1-a) log(1-a), given a and 1 - a separately (each exact).
template <class T>
DD_HD DD_INLINE T binary_entropy(T a, T one_minus_a) {
  return -math::xlogy(a, a) - math::xlogy(one_minus_a, one_minus_a);
}

/// c log(N c) + (N-1) b log(N b) with N c = 1 + (N-1) e, N b = 1 - e, c = (1 + (N-1) e)/N,
/// e = e^{-v}: the KL of the uniform-resampling column P_v[., a] from the uniform law.
template <class T>
DD_HD DD_INLINE T uniform_column_kl(int n, T v) {
  const T nn = T(n), e = math::exp(-v), m = math::one_minus_exp_neg(v);
  const T c = (T(1) + (nn - T(1)) * e) / nn, b = m / nn;
  return c * math::log1p((nn - T(1)) * e) + (nn - T(1)) * math::xlogy(b, m);
}

/// -sum_y P[y] log P[y] over the uniform-resampling column (C on the diagonal, B elsewhere).
template <class T>
DD_HD DD_INLINE T uniform_column_entropy(int n, T v) {
  const T nn = T(n), e = math::exp(-v), m = math::one_minus_exp_neg(v);
  const T c = e + m / nn, b = m / nn;
  return -math::xlogy(c, c) - (nn - T(1)) * math::xlogy(b, b);
}

/// H_b(alpha) + alpha log N: CE(p_T, pi_alpha) per token, alpha = e^{-v}.
template <class T>
DD_HD DD_INLINE T masked_prior_cross_entropy(int n, T v) {
  const T a = math::exp(-v), oma = math::one_minus_exp_neg(v);
  return binary_entropy(a, oma) + a * math::log(T(n));
}

}  // namespace cf
}  // namespace detail
}  // namespace discdiff
