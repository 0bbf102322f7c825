// cuda/forward_corrupt_cuda.cuh: forward corruption on the GPU (Thrust-CUDA executor).
//
// The templates are defined and explicitly instantiated in forward_corrupt.cu (compiled
// by nvcc into the static library discdiff_cuda_forward), so this header can also be
// included from host code compiled by g++: it names only the generator value types.
// Instantiated for T in {float, double} and the generators Uniform, Absorbing, Roulette
// (scalar total noise per row) and StateDependentMasking (per-token total noise).
//
// The result equals forward_corrupt_raw(SequentialExecutor{}, ...) on the host element for
// element: the same kernel (ops/forward_corrupt.hpp) with the same counters
// (seed, stream, b * L + l); see docs/math/ctmc.md for the one caveat (device libm).
#pragma once

#include <cstdint>

#include <discdiff/generator/absorbing.hpp>
#include <discdiff/generator/roulette.hpp>
#include <discdiff/generator/state_dependent.hpp>
#include <discdiff/generator/uniform.hpp>

namespace discdiff {
namespace cuda {

/// True when the CUDA runtime reports at least one usable device.
bool device_available();

/// x_t for a B x L batch in DEVICE memory: d_x0, d_u (length B), d_xt are device pointers.
/// Synchronous. Throws thrust::system_error on a CUDA error.
template <class Gen, class T>
void forward_corrupt_device(const Gen& gen, const int* d_x0, std::int64_t B, std::int64_t L,
                            const T* d_u, int* d_xt, std::uint64_t seed, std::uint32_t stream);

/// State-dependent masking on device memory: d_ubar holds one length-N vector
/// (ubar_row_stride = 0) or a B x N table (ubar_row_stride = N).
template <class Gen, class T>
void forward_corrupt_device(const Gen& gen, const int* d_x0, std::int64_t B, std::int64_t L,
                            const T* d_ubar, std::int64_t ubar_row_stride, int* d_xt,
                            std::uint64_t seed, std::uint32_t stream);

/// Host-memory convenience: copies x0 (B x L) and u (length B) to the device, runs
/// forward_corrupt_device and copies the result into xt (B x L, host memory).
template <class Gen, class T>
void forward_corrupt_host(const Gen& gen, const int* x0, std::int64_t B, std::int64_t L,
                          const T* u, int* xt, std::uint64_t seed, std::uint32_t stream);

/// Host-memory convenience for state-dependent masking (ubar has stride * (B-1) + N
/// entries: N for stride 0, B * N for stride N).
template <class Gen, class T>
void forward_corrupt_host(const Gen& gen, const int* x0, std::int64_t B, std::int64_t L,
                          const T* ubar, std::int64_t ubar_row_stride, int* xt,
                          std::uint64_t seed, std::uint32_t stream);

// Instantiated (forward_corrupt.cu) for Gen<T>, T in {float, double}, with
// Gen = UniformGenerator, AbsorbingGenerator, RouletteGenerator (scalar u) and
// Gen = StateDependentMaskingGenerator (ubar); other combinations fail at link time.

}  // namespace cuda
}  // namespace discdiff
