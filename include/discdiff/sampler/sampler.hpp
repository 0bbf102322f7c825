// discdiff/sampler/sampler.hpp: every sampler (umbrella header; spec/MATH.md 9 and 10).
//
// denoiser.hpp       the Denoiser concept, its validation, exact / perturbed adapters
// grid.hpp           time grids (SEDD, MD4 uniform, MD4 cosine)
// kernels.hpp        per-position step kernels (MD4 ancestral, GenMD4, Euler and analytic
//                    tau-leaping, final denoising, prior, projection)
// conditioning.hpp   fixed prefix / infill positions
// driver.hpp         sample(), sample_genmd4(), sample_semi_autoregressive()
// uniformization.hpp exact reverse-chain sampling by thinning (reference sampler)
// See docs/math/samplers.md for every update rule as implemented.
#pragma once

#include "conditioning.hpp"
#include "denoiser.hpp"
#include "driver.hpp"
#include "grid.hpp"
#include "kernels.hpp"
#include "uniformization.hpp"
