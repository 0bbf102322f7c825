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
// The formulas live in the generator headers (members of the same name, docs/architecture.md
// "Generator extension points"); each function here forwards to gen's member. Host and device (every function is DD_HD and never throws; invalid combinations give +inf or
// NaN, which the Monte Carlo drivers reject at the host boundary).
#pragma once

#include "../core/config.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/extension_types.hpp"
#include "../generator/roulette.hpp"
#include "../generator/uniform.hpp"

namespace discdiff {

// PriorReference (limit, masked_prior) is defined in generator/extension_types.hpp.

/// The finite reference of the generator (spec 6.7): pi for uniform, pi_alpha for absorbing and
/// roulette. Forwards to gen.default_prior_reference().
template <class Gen>
DD_HD auto default_prior_reference(const Gen& gen) -> decltype(gen.default_prior_reference()) {
  return gen.default_prior_reference();
}

/// KL(p_{T|0}(.|a) || ref) per token (J1 prior term, spec 6.7); +inf where ref is unreachable
/// from data in finite time, NaN where ref does not exist for the generator. Forwards to
/// gen.prior_kl_per_token(u_T, ref).
template <class Gen>
DD_HD auto prior_kl_per_token(const Gen& gen, typename Gen::value_type u_T, PriorReference ref)
    -> decltype(gen.prior_kl_per_token(u_T, ref)) {
  return gen.prior_kl_per_token(u_T, ref);
}

/// CE(p_T, ref) per token (J2 reference entropy, spec 6.7). Forwards to
/// gen.reference_cross_entropy_per_token(u_T, ref).
template <class Gen>
DD_HD auto reference_cross_entropy_per_token(const Gen& gen, typename Gen::value_type u_T,
                                             PriorReference ref)
    -> decltype(gen.reference_cross_entropy_per_token(u_T, ref)) {
  return gen.reference_cross_entropy_per_token(u_T, ref);
}

/// int_{u_a}^{u_b} E_{p_u}[sum_i exit(x^i)] du for L positions (spec 7.2, 8.4). Forwards to
/// gen.exit_rate_integral(L, u_a, u_b).
template <class Gen>
DD_HD auto exit_rate_integral(const Gen& gen, long long L, typename Gen::value_type u_a,
                              typename Gen::value_type u_b)
    -> decltype(gen.exit_rate_integral(L, u_a, u_b)) {
  return gen.exit_rate_integral(L, u_a, u_b);
}

/// H(P_u[., a]), the same for every regular a (spec 6.6). Forwards to
/// gen.conditional_entropy_per_token(u).
template <class Gen>
DD_HD auto conditional_entropy_per_token(const Gen& gen, typename Gen::value_type u)
    -> decltype(gen.conditional_entropy_per_token(u)) {
  return gen.conditional_entropy_per_token(u);
}

}  // namespace discdiff
