// cuda/test_samplers_cuda.cu: every sampler and Monte Carlo estimator on the GPU (Thrust-CUDA,
// model and buffers in device memory) equals the host SequentialExecutor bit for bit: the shared
// bodies of tests/sampler_checks.hpp (the same ones the CPU and Thrust-OMP tests run), in float
// and double. Exits 0 with "no GPU, skipped" when no CUDA device is usable.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include <cuda_runtime.h>

#include <discdiff/exec/sequential.hpp>
#include <discdiff/exec/thrust.hpp>

#include "sampler_checks.hpp"

using namespace discdiff;

TEST_CASE("cuda samplers: ThrustExecutor (CUDA, device memory) == SequentialExecutor bit for bit") {
  static_assert(std::is_same<ThrustExecutor::memory_space, DeviceSpace>::value,
                "the CUDA ThrustExecutor runs on device memory");
  discdiff_test::sampler_checks<double>("double", SequentialExecutor{}, ThrustExecutor{});
  discdiff_test::sampler_checks<float>("float", SequentialExecutor{}, ThrustExecutor{});
}

TEST_CASE("cuda estimators: ThrustExecutor (CUDA, device memory) == SequentialExecutor bit for bit") {
  discdiff_test::estimator_checks<double>("double", SequentialExecutor{}, ThrustExecutor{});
  discdiff_test::estimator_checks<float>("float", SequentialExecutor{}, ThrustExecutor{});
}

int main(int argc, char** argv) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::printf("no GPU, skipped (cudaGetDeviceCount: %s, %d devices)\n",
                err == cudaSuccess ? "ok" : cudaGetErrorString(err), count);
    return 0;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("GPU: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
