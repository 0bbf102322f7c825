// discdiff/generator/generators.hpp: the closed-form generators of spec/MATH.md section 3 and
// their host-checked wrappers.
//
// The dense oracle (generator/dense.hpp) needs Eigen and is host only, so it is not included
// here; include it explicitly where Eigen is available.
//
// Extension points (docs/architecture.md, "Generator extension points"): everything the generic
// algorithms of score/, objective/, sampler/ and bound/ need to know about a generator is a
// member of its class, in its own header. Besides the core concept (rate, exit_rate,
// transition, transition_column, transition_row, apply_exp, ratio, sample_forward,
// sample_limit) a generator has
//   static constexpr bool pure_masking             only regular -> MASK moves (CEDD positions)
//   probs_to_score(f, x, u, scale, phi_ignored, pbrc_safeguards, s)   spec 4.2, 4.3
// and a scalar-noise generator (uniform, absorbing, roulette) also
//   sedd_log_score_offset(x, u), sedd_coeffs(x, a, u)                 spec 4.4, 5.1
//   tau_leaping_coefficients(step, x, fx, R)                          spec 9.1, 9.2, 9.6
//   uniformization_rate_bound(u)                                      spec 10.2
//   default_prior_reference(), prior_kl_per_token(u_T, ref),
//   reference_cross_entropy_per_token(u_T, ref), exit_rate_integral(L, u_a, u_b),
//   conditional_entropy_per_token(u)                                  spec 6.6, 6.7, 8.4
//   pbrc_exit(L, eps, sigma_t), pbrc_exit_per_sample(), pbrc_reference_ce(L)   spec 6.7
// (the value types they exchange are in extension_types.hpp). Each public free function of the
// same name, generator first (e.g. sedd_coeffs(gen, x, a, u)), is a generic template that
// forwards to the member. A new generator implements these members and is checked at compile
// time by generator/interface.hpp: static_assert(check_scalar_noise_generator<MyGen<float>>()).
#pragma once

#include "absorbing.hpp"
#include "checked.hpp"
#include "extension_types.hpp"
#include "interface.hpp"
#include "roulette.hpp"
#include "state_dependent.hpp"
#include "uniform.hpp"
