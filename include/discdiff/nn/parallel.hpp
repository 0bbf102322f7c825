// discdiff/nn/parallel.hpp: OpenMP helpers of the nn kernels.
//
// Loops are parallel only when their work (elements touched) reaches
// parallel_min_work(): shorter loops skip the fork/join. Results never depend on this:
// every parallel loop writes disjoint outputs, each computed by a fixed sequence of
// operations, so the threshold changes the speed, never a bit of the result.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

namespace discdiff {
namespace nn {

/// Default of parallel_min_work(): 2^21 elements, a millisecond or more of streaming
/// work on one core. Below it the fork/join costs more than it saves, and on a busy
/// machine a barrier can wait for a descheduled thread for a whole time slice. In the
/// benchmark config (N = 4096 rows, d = 256) the norm, residual and RoPE passes
/// (N d = 2^20) run on the calling thread; GELU (N d_ff), the attention heads, AdamW and
/// the GEMMs run in parallel.
constexpr long kParallelMinWork = 1L << 21;

/// The current threshold (initially kParallelMinWork). Tests lower it to run every
/// parallel path on small inputs. Do not change it while a pass is running.
inline long& parallel_min_work() {
  static long v = kParallelMinWork;
  return v;
}

namespace detail {
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
/// True inside an active parallel region (more than one thread).
inline bool omp_in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
}  // namespace detail

}  // namespace nn
}  // namespace discdiff
