// discdiff/core/simd.hpp: the one host-SIMD policy of the library: which host-only SIMD twins
// exist in this build and on this CPU. Every SIMD twin sits next to the portable DD_HD body it
// doubles (the reference, which tests hold it against) and asks this header whether it may run:
//
//   DISCDIFF_SIMD_SSE2     1 when SSE2 intrinsics are compiled in: x86-64 host code (SSE2 is part
//                          of the ABI), not device code. Used by the objectives' softmax row
//                          (objective/common.hpp exp_row_ties_simd), four lanes.
//   DISCDIFF_SIMD_AVX2     1 when AVX2/FMA twins are compiled in (GCC or Clang on x86-64, host
//                          code; they carry __attribute__((target("avx2,fma"))) so the library
//                          needs no -march flag). They run only when simd::cpu_has_avx2_fma()
//                          says the CPU has both (checked once): the network's exp-based kernels
//                          (nn/simd.hpp: attention softmax rows, GELU), eight lanes.
//   DISCDIFF_NO_SIMD       define it to turn every twin off (both macros 0): the portable bodies
//                          run everywhere.
// Results are deterministic either way: the same inputs give the same bits on a given machine
// and build, whatever the thread count.
#pragma once

#if !defined(DISCDIFF_NO_SIMD) && defined(__SSE2__) && !defined(__CUDA_ARCH__)
#define DISCDIFF_SIMD_SSE2 1
#include <emmintrin.h>
#else
#define DISCDIFF_SIMD_SSE2 0
#endif

#if !defined(DISCDIFF_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && \
    defined(__x86_64__) && !defined(__CUDACC__)
#define DISCDIFF_SIMD_AVX2 1
#include <immintrin.h>
#else
#define DISCDIFF_SIMD_AVX2 0
#endif

namespace discdiff {
namespace simd {

/// True when the CPU has AVX2 and FMA (evaluated once); false where the twins are not built.
inline bool cpu_has_avx2_fma() {
#if DISCDIFF_SIMD_AVX2
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

}  // namespace simd
}  // namespace discdiff
