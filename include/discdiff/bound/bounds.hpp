// discdiff/bound/bounds.hpp: the bound/ module (spec/MATH.md sections 6-8; docs/math/bounds.md).
//
//   time_sampling.hpp    iid, antithetic-lattice and stratified time draws (spec 8.1)
//   reference_terms.hpp  closed-form prior KL, reference cross-entropy, exit-rate integral and
//                        conditional entropy of the uniform, absorbing and roulette generators
//   monte_carlo.hpp      Monte Carlo J1, J2 (estimate_score_bounds) and MD4 ELBO
//                        (estimate_md4_elbo), with standard errors and per-token units
//   exact.hpp            exact enumeration for small N and L: marginals, posteriors, the learned
//                        reverse CTMC, Theorems A, B, C, J1, J2, the MD4 ELBO and exact NLL
//                        (host only; needs Boost.Math)
//   mc_threshold.hpp     the family-wise (Bonferroni, Student t) critical value of a set of
//                        Monte Carlo z-tests against exact values (host only; Boost.Math)
#pragma once

#include "exact.hpp"
#include "mc_threshold.hpp"
#include "monte_carlo.hpp"
#include "reference_terms.hpp"
#include "time_sampling.hpp"
