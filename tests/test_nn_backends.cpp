// The nn layers and the whole training step on every host backend (one test body per layer
// family, tests/nn_layer_checks.hpp; the Thrust-OMP instantiation is in
// thrust/test_thrust_nn.cpp): the portable kernels on the sequential executor with the
// naive GEMM, the portable kernels on OpenMP with the host GEMM, and the host default
// (OpenMP, OpenBLAS/Eigen, SIMD twins), each in float and double against the naive
// references, plus finite differences in double.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <discdiff/exec/executor.hpp>
#include <discdiff/nn/nn.hpp>

#include "nn_layer_checks.hpp"
#include "nn_train_loop.hpp"

using namespace discdiff;
using namespace discdiff::nn;
namespace tst = discdiff::testing;

namespace {
/// Portable kernels on 2 OpenMP threads, every pass parallel, host GEMM.
PortableBackend<OpenMPExecutor, HostGemm> omp_portable() {
  PortableBackend<OpenMPExecutor, HostGemm> be;
  be.exec.num_threads = 2;
  be.gemm.exec.num_threads = 2;
  return be;
}
/// Portable kernels on 2 OpenMP threads with the naive GEMM (also on OpenMP).
PortableBackend<OpenMPExecutor> omp_naive() {
  PortableBackend<OpenMPExecutor> be;
  be.exec.num_threads = 2;
  be.gemm.exec.num_threads = 2;
  return be;
}

using tst::max_abs;
using tst::max_rel;
using tst::same_bits;
}  // namespace

TEST_CASE_TEMPLATE("nn backends: every layer on the sequential reference backend", T, float, double) {
  tst::nnchk::check_all_layers<T>(ReferenceBackend{});
}
TEST_CASE_TEMPLATE("nn backends: every layer on OpenMP (portable kernels, host GEMM)", T, float, double) {
  tst::nnchk::check_all_layers<T>(omp_portable());
}
TEST_CASE_TEMPLATE("nn backends: every layer on the host default (SIMD twins, OpenBLAS)", T, float, double) {
  tst::nnchk::check_all_layers<T>(make_host_backend(2, 0));
}

TEST_CASE("nn backends: a training step is bit-identical on every executor with the same GEMM") {
  // Portable kernels: sequential vs OpenMP, the naive GEMM on both; then the host GEMM on
  // OpenMP against the host GEMM with every pass on the calling thread.
  // the last case: MD4 on the time-independent network (adaLN-zero on sbar = 0)
  for (int k = 0; k < 5; ++k) {
    const tst::StepLoss loss = k == 4 ? tst::StepLoss::md4 : tst::StepLoss(k);
    const std::string loss_name = std::string(tst::step_loss_name(loss)) + (k == 4 ? " zero-time" : "");
    CAPTURE(loss_name);
    auto cfg = tst::small_config();
    cfg.zero_time = k == 4;
    const auto seq = tst::train_masked_ce<float>(ReferenceBackend{}, 5, 21, cfg, 3, loss);
    const auto omp = tst::train_masked_ce<float>(omp_naive(), 5, 21, cfg, 3, loss);
    CHECK(same_bits(seq.losses, omp.losses));
    CHECK(same_bits(seq.first_grads, omp.first_grads));
    CHECK(same_bits(seq.params, omp.params));
    CHECK(same_bits(seq.adam_v, omp.adam_v));
    CHECK(same_bits(seq.ema, omp.ema));
    for (double l : seq.losses) CHECK(std::isfinite(l));
  }
}

TEST_CASE("nn backends: the host default (SIMD twins, OpenBLAS) equals the portable step within 1e-5") {
  // Loss and step-1 gradients within 1e-5 relative; after 5 AdamW steps each parameter within
  // 1e-3 of one step (lr = 1e-2): AdamW's division by sqrt(v) amplifies gradient rounding.
  // the last case: MD4 on the time-independent network (adaLN-zero on sbar = 0)
  for (int k = 0; k < 5; ++k) {
    const tst::StepLoss loss = k == 4 ? tst::StepLoss::md4 : tst::StepLoss(k);
    const std::string loss_name = std::string(tst::step_loss_name(loss)) + (k == 4 ? " zero-time" : "");
    CAPTURE(loss_name);
    auto cfg = tst::small_config();
    cfg.zero_time = k == 4;
    const auto host = tst::train_masked_ce<float>(make_host_backend(2, 0), 5, 33, cfg, 3, loss);
    const auto port = tst::train_masked_ce<float>(ReferenceBackend{}, 5, 33, cfg, 3, loss);
    INFO("loss " << max_rel(host.losses, port.losses) << ", step-1 gradients "
                 << max_rel(host.first_grads, port.first_grads) << ", parameters after 5 steps "
                 << max_abs(host.params, port.params) / 1e-2 << " of a step");
    CHECK(max_rel(host.losses, port.losses) < 1e-5);
    CHECK(max_rel(host.first_grads, port.first_grads) < 1e-5);
    CHECK(max_abs(host.params, port.params) / 1e-2 < 1e-3);
  }
}
