// discdiff/core/config.hpp: host/device annotation and library version.
//
// DD_HD marks functions that run on the host and, under nvcc, on the device.
// Shared headers use DD_HD (never raw __host__ __device__) so that the same
// functor compiles with g++ for the sequential/OpenMP/Thrust-OMP executors and
// with nvcc for Thrust-CUDA.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define DD_HD __host__ __device__
#define DD_DEVICE_COMPILER 1
#else
#define DD_HD
#define DD_DEVICE_COMPILER 0
#endif

// DD_INLINE: force inlining in hot kernels where the compiler may hesitate.
#if defined(__CUDACC__)
#define DD_INLINE __forceinline__
#elif defined(__GNUC__)
#define DD_INLINE inline __attribute__((always_inline))
#else
#define DD_INLINE inline
#endif

// DISCDIFF_NO_SIMD: define it (-DDISCDIFF_NO_SIMD) to turn off every host-only SIMD twin of
// the library (objective/common.hpp's SSE2 row kernels, nn/simd.hpp's AVX2 kernels), leaving
// the portable bodies everywhere; core/simd.hpp is the one place that reads it.

#define DISCDIFF_VERSION_MAJOR 0
#define DISCDIFF_VERSION_MINOR 1
#define DISCDIFF_VERSION_PATCH 0

namespace discdiff {
/// Token ids are 32-bit signed integers everywhere (batches are int32).
using token_t = int;
}  // namespace discdiff
