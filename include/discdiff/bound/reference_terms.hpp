// discdiff/bound/reference_terms.hpp: the closed-form, data-independent terms of the bounds J1
// and J2 (spec/MATH.md 6.4, 6.6, 6.7 and 8.4) for the uniform, absorbing and roulette generators.
//
// Every quantity is per token (per position); a sequence of length L gets L times it, because
// the forward process, the references and the exit rates all factorise over positions and,
// for these three generators, do not depend on the clean token (the column P_u[., a] is the
// same up to relabelling for every regular a).
//
//   prior_kl_per_token(gen, u_T, ref)        KL(p_{T|0}(.|a) || ref)           (J1 prior term)
//       uniform,  ref = pi (uniform):   C log(N C) + (N-1) B log(N B),  C, B = C_{u_T}, B_{u_T}
//                                       = C log1p((N-1) e^{-u}) + (N-1) B log1p(-e^{-u})
//       absorbing, ref = pi_alpha:      alpha_T log N,  alpha_T = e^{-u_T}
//       roulette,  ref = pi_alpha:      alpha_T [c log(N c) + (N-1) b log(N b)],  alpha_T = e^{-p_m u_T},
//                                       c = e_g + (1-e_g)/N, b = (1-e_g)/N, e_g = e^{-g u_T}
//       absorbing / roulette (p_m > 0), ref = pi (all-MASK): +inf (spec 6.7: the bound is vacuous)
//   reference_cross_entropy_per_token(gen, u_T, ref)   CE(p_T, ref) per token (J2 "reference entropy")
//       uniform: log N (whatever p_T is);  absorbing / roulette with pi_alpha: H_b(alpha_T) + alpha_T log N
//   exit_rate_integral(gen, L, u_a, u_b)     int_{u_a}^{u_b} E_{p_u}[sum_i exit(x^i)] du   (J2, spec 8.4)
//       uniform: L (1 - 1/N)(u_b - u_a);  absorbing: L (e^{-u_a} - e^{-u_b});
//       roulette: L (1 - (1-p_m)/N)(e^{-p_m u_a} - e^{-p_m u_b})/p_m
//   conditional_entropy_per_token(gen, u)    H(P_u[., a]): E_{x_0} H(p_{u|0}(.|x_0)) = L times it,
//       so J2 - J1 = L * conditional_entropy_per_token(gen, u_eps) (spec 6.6) for every data
//       distribution and every model.
//
// PriorReference names the reference distribution q_T of the learned reverse chain:
//   limit         pi: uniform over the N^L sequences (uniform graph; roulette with p_m = 0),
//                 all-MASK for absorbing and roulette (p_m > 0);
//   masked_prior  pi_alpha = prod_i [(alpha_T/N) sum_j delta_j + (1 - alpha_T) delta_MASK]
//                 (MD4 App. E; spec 6.7), for generators with a MASK.
// default_prior_reference(gen) is the finite choice: limit for uniform, masked_prior otherwise.
// Host and device (every function is DD_HD and never throws; invalid combinations give +inf or
// NaN, which the Monte Carlo drivers reject at the host boundary).
#pragma once

#include <limits>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/roulette.hpp"
#include "../generator/uniform.hpp"

namespace discdiff {

/// The reference distribution q_T the learned reverse chain starts from (spec 6.7).
enum class PriorReference {
  limit,        ///< pi: uniform (uniform graph), all-MASK (absorbing, roulette with p_m > 0)
  masked_prior  ///< pi_alpha: per token (alpha_T/N) on each regular token, 1 - alpha_T on MASK
};

/// The finite reference of each generator: pi for uniform, pi_alpha for absorbing and roulette.
template <class T>
DD_HD PriorReference default_prior_reference(const UniformGenerator<T>&) {
  return PriorReference::limit;
}
template <class T>
DD_HD PriorReference default_prior_reference(const AbsorbingGenerator<T>&) {
  return PriorReference::masked_prior;
}
template <class T>
DD_HD PriorReference default_prior_reference(const RouletteGenerator<T>&) {
  return PriorReference::masked_prior;
}

namespace detail {
namespace bound {

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

}  // namespace bound
}  // namespace detail

// ------------------------------------------------------------------ prior KL (J1)

/// KL(p_{T|0}(.|a) || pi) per token, uniform reference (spec 6.7). `ref` must be limit (a
/// uniform graph has no pi_alpha); masked_prior gives NaN.
template <class T>
DD_HD T prior_kl_per_token(const UniformGenerator<T>& gen, T u_T, PriorReference ref) {
  if (ref != PriorReference::limit) return std::numeric_limits<T>::quiet_NaN();
  return detail::bound::uniform_column_kl(gen.num_regular(), u_T);
}

/// Absorbing: alpha_T log N for pi_alpha; +inf for the all-MASK pi (u_T finite).
template <class T>
DD_HD T prior_kl_per_token(const AbsorbingGenerator<T>& gen, T u_T, PriorReference ref) {
  if (ref == PriorReference::limit) return std::numeric_limits<T>::infinity();
  return math::exp(-u_T) * math::log(T(gen.num_regular()));
}

/// Roulette: alpha_T [c log(N c) + (N-1) b log(N b)] for pi_alpha; +inf for the all-MASK pi when
/// p_m > 0; with p_m = 0 (MASK unreachable) pi is uniform over the regular tokens.
template <class T>
DD_HD T prior_kl_per_token(const RouletteGenerator<T>& gen, T u_T, PriorReference ref) {
  const int n = gen.num_regular();
  const T kl_g = detail::bound::uniform_column_kl(n, gen.g() * u_T);
  if (ref == PriorReference::limit)
    return gen.p_m() > T(0) ? std::numeric_limits<T>::infinity() : kl_g;
  return math::exp(-gen.p_m() * u_T) * kl_g;
}

// ------------------------------------------------------------------ reference CE (J2)

/// CE(p_T, pi) per token for the uniform graph: log N, for every p_T (spec 6.7).
template <class T>
DD_HD T reference_cross_entropy_per_token(const UniformGenerator<T>& gen, T /*u_T*/,
                                          PriorReference ref) {
  if (ref != PriorReference::limit) return std::numeric_limits<T>::quiet_NaN();
  return math::log(T(gen.num_regular()));
}

namespace detail {
namespace bound {
/// H_b(alpha) + alpha log N: CE(p_T, pi_alpha) per token, alpha = e^{-v}.
template <class T>
DD_HD DD_INLINE T masked_prior_cross_entropy(int n, T v) {
  const T a = math::exp(-v), oma = math::one_minus_exp_neg(v);
  return binary_entropy(a, oma) + a * math::log(T(n));
}
}  // namespace bound
}  // namespace detail

/// Absorbing: H_b(alpha_T) + alpha_T log N for pi_alpha; +inf for the all-MASK pi.
template <class T>
DD_HD T reference_cross_entropy_per_token(const AbsorbingGenerator<T>& gen, T u_T,
                                          PriorReference ref) {
  if (ref == PriorReference::limit) return std::numeric_limits<T>::infinity();
  return detail::bound::masked_prior_cross_entropy(gen.num_regular(), u_T);
}

/// Roulette: H_b(alpha_T) + alpha_T log N for pi_alpha (alpha_T = e^{-p_m u_T}); +inf for the
/// all-MASK pi when p_m > 0; log N when p_m = 0 and ref = pi (uniform over the regular tokens).
template <class T>
DD_HD T reference_cross_entropy_per_token(const RouletteGenerator<T>& gen, T u_T,
                                          PriorReference ref) {
  if (ref == PriorReference::limit)
    return gen.p_m() > T(0) ? std::numeric_limits<T>::infinity()
                            : math::log(T(gen.num_regular()));
  return detail::bound::masked_prior_cross_entropy(gen.num_regular(), gen.p_m() * u_T);
}

// ------------------------------------------------------------------ exit integral (J2)

/// int_{u_a}^{u_b} E_{p_u}[sum_i exit(x^i)] du for L positions (spec 7.2, 8.4): uniform.
template <class T>
DD_HD T exit_rate_integral(const UniformGenerator<T>& gen, long long L, T u_a, T u_b) {
  return T(L) * gen.exit_rate(0) * (u_b - u_a);
}
/// Absorbing: L (e^{-u_a} - e^{-u_b}), as e^{-u_a} (-expm1(-(u_b - u_a))).
template <class T>
DD_HD T exit_rate_integral(const AbsorbingGenerator<T>&, long long L, T u_a, T u_b) {
  return T(L) * math::exp(-u_a) * math::one_minus_exp_neg(u_b - u_a);
}
/// Roulette: L (1 - (1-p_m)/N)(e^{-p_m u_a} - e^{-p_m u_b})/p_m (L (1 - 1/N)(u_b - u_a) at p_m = 0).
template <class T>
DD_HD T exit_rate_integral(const RouletteGenerator<T>& gen, long long L, T u_a, T u_b) {
  const T ex = gen.exit_rate(0), pm = gen.p_m();
  if (pm == T(0)) return T(L) * ex * (u_b - u_a);
  return T(L) * ex * math::exp(-pm * u_a) * math::one_minus_exp_neg(pm * (u_b - u_a)) / pm;
}

// ------------------------------------------------------------------ conditional entropy (6.6)

/// H(P_u[., a]) for the uniform graph: -C log C - (N-1) B log B.
template <class T>
DD_HD T conditional_entropy_per_token(const UniformGenerator<T>& gen, T u) {
  return detail::bound::uniform_column_entropy(gen.num_regular(), u);
}
/// Absorbing: H_b(e^{-u}).
template <class T>
DD_HD T conditional_entropy_per_token(const AbsorbingGenerator<T>&, T u) {
  return detail::bound::binary_entropy(math::exp(-u), math::one_minus_exp_neg(u));
}
/// Roulette: -A log A - C log C - (N-1) B log B = H_b(e_m) + e_m H(uniform-resampling column at g u).
template <class T>
DD_HD T conditional_entropy_per_token(const RouletteGenerator<T>& gen, T u) {
  const T em = math::exp(-gen.p_m() * u), mm = math::one_minus_exp_neg(gen.p_m() * u);
  return detail::bound::binary_entropy(em, mm) +
         em * detail::bound::uniform_column_entropy(gen.num_regular(), gen.g() * u);
}

}  // namespace discdiff
