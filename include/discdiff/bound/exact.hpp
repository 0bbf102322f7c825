// discdiff/bound/exact.hpp: exact enumeration of the bounds for small N and L
// (spec/MATH.md sections 6 and 7; docs/math/bounds.md).
//
//   exact_space.hpp        SequenceSpace (mixed-radix sequence indices), apply_axis
//   exact_divergence.hpp   H, CE, KL, D_K with the conventions of spec 1.6
//   exact_marginals.hpp    ExactForward: p_u, p_{u|0}, joints and posteriors, pi, pi_alpha, q_T
//   exact_denoiser.hpp     ExactDenoiser, TiltedDenoiser (+ SineNoise, CounterNoise),
//                          SmoothedDenoiser, TemperedDenoiser
//   exact_score.hpp        naive_probs_to_score, reverse edges, ExactEvaluator (G_u q)
//   exact_integrators.hpp  Dormand-Prince 5(4), RK4, Simpson, vector Gauss-Kronrod (Boost.Math)
//   exact_theorems.hpp     compute_exact_bounds: Theorems A, B, C, J1, J2; analytic I_exit
//   exact_md4.hpp          MD4 ELBO (continuous, discrete T) and the exact NLL of both models
//   exact_reference.hpp    the spec 7.1 setup and the 7.2 reference table
//   exact_random.hpp       dirichlet_like: reproducible random data distributions
//   exact_model.hpp        ExactModel (a denoiser as a Monte Carlo model), sample_data (x_0 ~ p_0)
//
// The Monte Carlo estimators (monte_carlo.hpp) and the closed-form reference terms
// (reference_terms.hpp) are included as well; bound/bounds.hpp is the umbrella of the module.
//
// Host only; needs Boost.Math (header-only).
#pragma once

#include "exact_denoiser.hpp"
#include "exact_divergence.hpp"
#include "exact_integrators.hpp"
#include "exact_marginals.hpp"
#include "exact_md4.hpp"
#include "exact_model.hpp"
#include "exact_random.hpp"
#include "exact_reference.hpp"
#include "exact_score.hpp"
#include "exact_space.hpp"
#include "exact_theorems.hpp"
