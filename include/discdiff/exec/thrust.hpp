// discdiff/exec/thrust.hpp: the Thrust executor (Thrust's device system).
//
// thrust::for_each_n(thrust::device, counting_iterator<int64_t>(0), n, f): the device
// system is OpenMP when compiled with a host compiler and
// THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP (the CMake target discdiff_thrust_omp),
// and CUDA under nvcc (pointers must then be device pointers and the functor is copied
// to the device by value, which is why every kernel is a trivially copyable struct).
//
// The executor is defined only where it can compile: Thrust headers are reachable and
// either the compiler is nvcc or a device system was chosen explicitly (with a host
// compiler Thrust would otherwise default to CUDA). DISCDIFF_HAVE_THRUST_EXECUTOR is 1
// when ThrustExecutor exists and 0 otherwise, so this header is always safe to include.
#pragma once

#include <cstdint>

#include "memory.hpp"

#if !defined(DISCDIFF_HAVE_THRUST_EXECUTOR)
#if defined(__has_include)
#if __has_include(<thrust/for_each.h>) && (defined(__CUDACC__) || defined(THRUST_DEVICE_SYSTEM))
#define DISCDIFF_HAVE_THRUST_EXECUTOR 1
#endif
#endif
#if !defined(DISCDIFF_HAVE_THRUST_EXECUTOR)
#define DISCDIFF_HAVE_THRUST_EXECUTOR 0
#endif
#endif

#if DISCDIFF_HAVE_THRUST_EXECUTOR
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

namespace discdiff {

/// Runs f(i), i in [0, n), with thrust::for_each_n on thrust::device.
/// Under the CUDA device system the call is synchronous on return (Thrust synchronizes
/// for_each_n), and every pointer the functor dereferences must be device-accessible.
struct ThrustExecutor {
  static constexpr const char* name = "thrust";
  /// True for host device systems (OMP, CPP, TBB): the functor may dereference host
  /// pointers. False under the CUDA device system (device pointers only).
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
  static constexpr bool host_memory = false;
  using memory_space = DeviceSpace;
#else
  static constexpr bool host_memory = true;
  using memory_space = HostSpace;
#endif

  template <class F>
  void for_each(std::int64_t n, const F& f) const {
    if (n <= 0) return;
    thrust::for_each_n(thrust::device, thrust::counting_iterator<std::int64_t>(0), n, f);
  }
  /// The same with a work estimate, which Thrust ignores (it sizes its own launches).
  template <class F>
  void for_each(std::int64_t n, const F& f, double /*work*/) const {
    for_each(n, f);
  }
};

}  // namespace discdiff
#endif  // DISCDIFF_HAVE_THRUST_EXECUTOR
