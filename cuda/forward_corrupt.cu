// cuda/forward_corrupt.cu: Thrust-CUDA instantiations of the forward-corruption kernels
// (ops/forward_corrupt.hpp) for every generator, float and double.
#include "forward_corrupt_cuda.cuh"

#include <cuda_runtime.h>

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include <discdiff/exec/thrust.hpp>
#include <discdiff/ops/forward_corrupt.hpp>

static_assert(DISCDIFF_HAVE_THRUST_EXECUTOR, "nvcc must see Thrust (CUDA toolkit CCCL)");
static_assert(!discdiff::ThrustExecutor::host_memory,
              "cuda/ must be compiled with the CUDA device system");

namespace discdiff {
namespace cuda {

bool device_available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky error of a missing driver/device
    return false;
  }
  return count > 0;
}

template <class Gen, class T>
void forward_corrupt_device(const Gen& gen, const int* d_x0, std::int64_t B, std::int64_t L,
                            const T* d_u, int* d_xt, std::uint64_t seed, std::uint32_t stream) {
  forward_corrupt_raw(ThrustExecutor{}, gen, d_x0, B, L, d_u, d_xt, seed, stream);
}

template <class Gen, class T>
void forward_corrupt_device(const Gen& gen, const int* d_x0, std::int64_t B, std::int64_t L,
                            const T* d_ubar, std::int64_t ubar_row_stride, int* d_xt,
                            std::uint64_t seed, std::uint32_t stream) {
  forward_corrupt_raw(ThrustExecutor{}, gen, d_x0, B, L, d_ubar, ubar_row_stride, d_xt, seed,
                      stream);
}

template <class Gen, class T>
void forward_corrupt_host(const Gen& gen, const int* x0, std::int64_t B, std::int64_t L,
                          const T* u, int* xt, std::uint64_t seed, std::uint32_t stream) {
  if (B <= 0 || L <= 0) return;
  const std::int64_t n = B * L;
  thrust::device_vector<int> dx0(x0, x0 + n), dxt(n);
  thrust::device_vector<T> du(u, u + B);
  forward_corrupt_device(gen, thrust::raw_pointer_cast(dx0.data()), B, L,
                         thrust::raw_pointer_cast(du.data()), thrust::raw_pointer_cast(dxt.data()),
                         seed, stream);
  thrust::copy(dxt.begin(), dxt.end(), xt);
}

template <class Gen, class T>
void forward_corrupt_host(const Gen& gen, const int* x0, std::int64_t B, std::int64_t L,
                          const T* ubar, std::int64_t ubar_row_stride, int* xt,
                          std::uint64_t seed, std::uint32_t stream) {
  if (B <= 0 || L <= 0) return;
  const std::int64_t n = B * L;
  const std::int64_t nu = ubar_row_stride * (B - 1) + gen.num_regular();
  thrust::device_vector<int> dx0(x0, x0 + n), dxt(n);
  thrust::device_vector<T> du(ubar, ubar + nu);
  forward_corrupt_device(gen, thrust::raw_pointer_cast(dx0.data()), B, L,
                         thrust::raw_pointer_cast(du.data()), ubar_row_stride,
                         thrust::raw_pointer_cast(dxt.data()), seed, stream);
  thrust::copy(dxt.begin(), dxt.end(), xt);
}

#define DISCDIFF_CUDA_FORWARD_DEFINE(GEN, T)                                                    \
  template void forward_corrupt_device<GEN<T>, T>(const GEN<T>&, const int*, std::int64_t,      \
                                                  std::int64_t, const T*, int*, std::uint64_t,  \
                                                  std::uint32_t);                               \
  template void forward_corrupt_host<GEN<T>, T>(const GEN<T>&, const int*, std::int64_t,        \
                                                std::int64_t, const T*, int*, std::uint64_t,    \
                                                std::uint32_t);

#define DISCDIFF_CUDA_FORWARD_DEFINE_TOKEN(GEN, T)                                              \
  template void forward_corrupt_device<GEN<T>, T>(const GEN<T>&, const int*, std::int64_t,      \
                                                  std::int64_t, const T*, std::int64_t, int*,   \
                                                  std::uint64_t, std::uint32_t);                \
  template void forward_corrupt_host<GEN<T>, T>(const GEN<T>&, const int*, std::int64_t,        \
                                                std::int64_t, const T*, std::int64_t, int*,     \
                                                std::uint64_t, std::uint32_t);

DISCDIFF_CUDA_FORWARD_DEFINE(UniformGenerator, float)
DISCDIFF_CUDA_FORWARD_DEFINE(UniformGenerator, double)
DISCDIFF_CUDA_FORWARD_DEFINE(AbsorbingGenerator, float)
DISCDIFF_CUDA_FORWARD_DEFINE(AbsorbingGenerator, double)
DISCDIFF_CUDA_FORWARD_DEFINE(RouletteGenerator, float)
DISCDIFF_CUDA_FORWARD_DEFINE(RouletteGenerator, double)
DISCDIFF_CUDA_FORWARD_DEFINE_TOKEN(StateDependentMaskingGenerator, float)
DISCDIFF_CUDA_FORWARD_DEFINE_TOKEN(StateDependentMaskingGenerator, double)

}  // namespace cuda
}  // namespace discdiff
