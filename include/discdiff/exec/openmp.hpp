// discdiff/exec/openmp.hpp: the OpenMP executor (host threads, static schedule).
//
// Same contract as SequentialExecutor (see exec/sequential.hpp). Compiled without
// OpenMP (no -fopenmp), the pragma is inactive and the loop runs sequentially, so
// code that names OpenMPExecutor always builds.
#pragma once

#include <cstdint>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "memory.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace discdiff {

/// `#pragma omp parallel for schedule(static)` over [0, n).
/// num_threads = 0 uses the OpenMP default (OMP_NUM_THREADS / omp_get_max_threads());
/// a positive value fixes the team size for this call; negative values are rejected.
struct OpenMPExecutor {
  int num_threads = 0;
  /// Calls given a work estimate below min_work run on the calling thread (the fork/join
  /// costs more than it saves, and on a busy machine a barrier can wait a whole time slice
  /// for a descheduled thread). 0: always parallel. Results never depend on it.
  double min_work = 0;
  /// Hand out indices one at a time as threads become free (schedule(dynamic, 1)) instead of
  /// in equal contiguous blocks: for a few host tasks of very different cost. Results never
  /// depend on it (an element's output depends on its index only).
  bool dynamic = false;

  static constexpr const char* name = "openmp";
  /// The functor may dereference host pointers.
  static constexpr bool host_memory = true;
  using memory_space = HostSpace;

  /// True when the library was compiled with OpenMP (otherwise for_each is sequential).
  static constexpr bool enabled() {
#if defined(_OPENMP)
    return true;
#else
    return false;
#endif
  }

  /// The team size a call will use (1 without OpenMP).
  int team_size() const {
    if (num_threads < 0)
      throw_invalid("OpenMPExecutor", "num_threads", num_threads, "must be >= 0 (0 = default)");
#if defined(_OPENMP)
    return num_threads > 0 ? num_threads : omp_get_max_threads();
#else
    return 1;
#endif
  }

  template <class F>
  void for_each(std::int64_t n, const F& f) const {
    const int nt = team_size();
    if (n <= 0) return;
#if defined(_OPENMP)
#pragma omp parallel num_threads(nt)
    {
      // A private copy per thread: the functor's fields (pointers, parameters) can
      // then stay in registers instead of being reloaded through the shared
      // reference after every store the kernel makes (possible aliasing).
      const F local = f;
      if (dynamic) {
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t i = 0; i < n; ++i) local(i);
      } else {
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < n; ++i) local(i);
      }
    }
#else
    (void)nt;
    for (std::int64_t i = 0; i < n; ++i) f(i);
#endif
  }

  /// The index of the calling thread in the current parallel region (0 outside one), for
  /// host-only kernels that keep per-thread scratch; always < team_size() of the region.
  static int worker_index() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
  }

  /// for_each with a work estimate (elements the call touches): below min_work the loop
  /// runs on the calling thread, as does a call made inside an active parallel region.
  template <class F>
  void for_each(std::int64_t n, const F& f, double work) const {
    if (n <= 0) return;
#if defined(_OPENMP)
    if (work >= min_work && n > 1 && !omp_in_parallel()) {
      for_each(n, f);
      return;
    }
#endif
    (void)work;
    const F local = f;
    for (std::int64_t i = 0; i < n; ++i) local(i);
  }
};

}  // namespace discdiff
