// Thrust-OMP samplers and Monte Carlo estimators equal the SequentialExecutor results bit for bit
// (counter-based randomness keyed by (seed, step, b * L + l); fixed-order sums), with the model
// (SyntheticDenoiser) running on the executor under test: the shared bodies of
// tests/sampler_checks.hpp, in float and double.
#include <doctest/doctest.h>

#include <discdiff/exec/executor.hpp>

#include "../sampler_checks.hpp"

using namespace discdiff;

TEST_CASE("thrust samplers: ThrustExecutor (OMP) == SequentialExecutor bit for bit") {
  discdiff_test::sampler_checks<double>("double", SequentialExecutor{}, ThrustExecutor{});
  discdiff_test::sampler_checks<float>("float", SequentialExecutor{}, ThrustExecutor{});
}

TEST_CASE("thrust estimators: ThrustExecutor (OMP) == SequentialExecutor bit for bit") {
  discdiff_test::estimator_checks<double>("double", SequentialExecutor{}, ThrustExecutor{});
  discdiff_test::estimator_checks<float>("float", SequentialExecutor{}, ThrustExecutor{});
}
