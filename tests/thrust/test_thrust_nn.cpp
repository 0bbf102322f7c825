// The nn layers and the whole training step on Thrust-OMP (the host instantiations of the
// same bodies are in test_nn_backends.cpp): every layer family in float and double against
// the naive references and finite differences, and 5 training steps of each loss (masked
// CE, causal CE, MD4, CEDD) against the host: bit-identical to the portable host step with
// the same GEMM (and to the sequential reference with the naive GEMM), and within 1e-5 of
// the host default (SIMD twins) in float for the loss and gradients.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <discdiff/exec/executor.hpp>
#include <discdiff/nn/nn.hpp>

#include "../nn_layer_checks.hpp"
#include "../nn_train_loop.hpp"

using namespace discdiff;
using namespace discdiff::nn;
namespace tst = discdiff::testing;

namespace {
/// Thrust-OMP kernels with the host GEMM (OpenBLAS/Eigen): the CPU stand-in of a device backend.
using ThrustHostGemm = PortableBackend<ThrustExecutor, HostGemm>;
/// Thrust-OMP kernels and the naive GEMM on Thrust: nothing host-specific at all.
using ThrustNaive = PortableBackend<ThrustExecutor>;

using tst::max_abs;
using tst::max_rel;
using tst::same_bits;
}  // namespace

TEST_CASE_TEMPLATE("thrust nn: every layer on Thrust-OMP (host GEMM)", T, float, double) {
  tst::nnchk::check_all_layers<T>(ThrustHostGemm{});
}
TEST_CASE_TEMPLATE("thrust nn: every layer on Thrust-OMP (naive GEMM on Thrust)", T, float, double) {
  tst::nnchk::check_all_layers<T>(ThrustNaive{});
}

TEST_CASE("thrust nn: 5 training steps on Thrust-OMP equal the host's") {
  for (tst::StepLoss loss : {tst::StepLoss::masked_ce, tst::StepLoss::causal_ce, tst::StepLoss::md4,
                             tst::StepLoss::cedd}) {
    const std::string loss_name = tst::step_loss_name(loss);
    CAPTURE(loss_name);
    const auto cfg = tst::small_config();
    const int B = 3, steps = 5;
    // Same GEMM, same portable kernels: every bit equal (loss, step-1 gradients, parameters,
    // moments and EMA after 5 steps).
    const auto th = tst::train_masked_ce<float>(ThrustHostGemm{}, steps, 8, cfg, B, loss);
    PortableBackend<OpenMPExecutor, HostGemm> omp;
    const auto host = tst::train_masked_ce<float>(omp, steps, 8, cfg, B, loss);
    CHECK(same_bits(th.losses, host.losses));
    CHECK(same_bits(th.first_grads, host.first_grads));
    CHECK(same_bits(th.params, host.params));
    CHECK(same_bits(th.adam_m, host.adam_m));
    CHECK(same_bits(th.adam_v, host.adam_v));
    CHECK(same_bits(th.ema, host.ema));
    // The naive GEMM on Thrust against the sequential reference: also every bit.
    const auto tn = tst::train_masked_ce<float>(ThrustNaive{}, steps, 8, cfg, B, loss);
    const auto ref = tst::train_masked_ce<float>(ReferenceBackend{}, steps, 8, cfg, B, loss);
    CHECK(same_bits(tn.losses, ref.losses));
    CHECK(same_bits(tn.params, ref.params));
    CHECK(same_bits(tn.ema, ref.ema));
    // Against the host default (SIMD twins, OpenBLAS): the loss and the step-1 gradients
    // within 1e-5 relative in float. After 5 AdamW steps the parameters are compared in
    // units of the learning rate: AdamW divides by sqrt(v) ~ |g|, so the rounding of a
    // gradient whose steps nearly cancel in m is amplified; each element still moves within
    // 1e-3 of one step (the same-kernel comparisons above are exact).
    const auto def = tst::train_masked_ce<float>(make_host_backend(), steps, 8, cfg, B, loss);
    INFO("loss " << max_rel(th.losses, def.losses) << ", step-1 gradients "
                 << max_rel(th.first_grads, def.first_grads) << ", parameters after 5 steps "
                 << max_rel(th.params, def.params) << " relative, " << max_abs(th.params, def.params) / 1e-2
                 << " of a step");
    CHECK(max_rel(th.losses, def.losses) < 1e-5);
    CHECK(max_rel(th.first_grads, def.first_grads) < 1e-5);
    CHECK(max_abs(th.params, def.params) / 1e-2 < 1e-3);
  }
}
