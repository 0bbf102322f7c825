// discdiff/exec/sequential.hpp: the sequential executor (one host thread).
//
// Executor contract (docs/architecture.md, "Executors"): `exec.for_each(n, f)` calls
// f(i) once for every i in [0, n), where f is a trivially copyable functor with
// `DD_HD void operator()(std::int64_t i) const` that never throws. The order of the
// calls is unspecified for parallel executors; a functor's result for index i must
// therefore depend on i only (counter-based randomness keyed by i, writes to slot i).
// `exec.for_each(n, f, work)` passes an estimate of the elements the whole call touches;
// an executor may run a small call on the calling thread (OpenMPExecutor::min_work), which
// never changes a result. Every executor names its memory space (exec/memory.hpp):
// `typename Exec::memory_space`, and `Exec::host_memory` == memory_space::host_accessible.
#pragma once

#include <cstdint>

#include "../core/config.hpp"
#include "memory.hpp"

namespace discdiff {

/// Runs f(0), f(1), ..., f(n-1) in order on the calling thread. The reference backend.
struct SequentialExecutor {
  static constexpr const char* name = "sequential";
  /// The functor may dereference host pointers.
  static constexpr bool host_memory = true;
  using memory_space = HostSpace;

  template <class F>
  void for_each(std::int64_t n, const F& f) const {
    const F local = f;  // a local copy keeps the functor's fields in registers
    for (std::int64_t i = 0; i < n; ++i) local(i);
  }
  /// The same with a work estimate (elements touched), which a sequential run ignores.
  template <class F>
  void for_each(std::int64_t n, const F& f, double /*work*/) const {
    for_each(n, f);
  }
};

}  // namespace discdiff
