// discdiff/nn/backend.hpp: what the network runs on.
//
// A backend is an executor (exec/), the memory space it names, a GEMM engine (gemm.hpp)
// and a switch for host-only SIMD twins:
//
//   Backend<Exec, Gemm, HostSimd>
//     exec          runs every non-GEMM kernel of nn/ (norms, RoPE, softmax rows, ...);
//     gemm          runs the products (NaiveGemm<Exec>, HostGemm, cuBLAS on the GPU);
//     memory_space  where parameters, gradients, moments and activations live;
//     host_simd     true: the float exp-based kernels (GELU, attention softmax) use their
//                   AVX2/FMA twins (nn/simd.hpp) where the CPU has them; false: every
//                   kernel runs its portable DD_HD body, the reference for all backends.
//
// HostBackend (OpenMP + OpenBLAS/Eigen + SIMD twins) is the CPU default; make_backend
// builds the others. The precision is the scalar type T of the Transformer.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../exec/memory.hpp"
#include "../exec/openmp.hpp"
#include "../exec/sequential.hpp"
#include "gemm.hpp"

// The host GEMM engines need Eigen (and OpenBLAS where linked); nvcc builds only the portable
// and device backends. DISCDIFF_NN_HOST_GEMM is 1 where HostBackend exists.
#if !defined(__CUDACC__)
#include "gemm_host.hpp"
#define DISCDIFF_NN_HOST_GEMM 1
#else
#define DISCDIFF_NN_HOST_GEMM 0
#endif

namespace discdiff {
namespace nn {

/// Default of HostBackend's OpenMP min_work: 2^21 elements, a millisecond or more of
/// streaming work on one core. Smaller passes run on the calling thread (in the benchmark
/// config, N = 4096 rows of d = 256, the norm, residual and RoPE passes; GELU, attention,
/// AdamW and the GEMMs run in parallel). Results never depend on it.
constexpr double kParallelMinWork = double(1L << 21);

template <class Exec, class Gemm, bool HostSimd = false>
struct Backend {
  using exec_type = Exec;
  using gemm_type = Gemm;
  using memory_space = typename Exec::memory_space;
  static_assert(Exec::host_memory == memory_space::host_accessible,
                "Backend: the executor's host_memory flag must match its memory space");
  /// Host SIMD twins only where host code runs the kernels.
  static constexpr bool host_simd = HostSimd && Exec::host_memory;

  Exec exec{};
  Gemm gemm{};
};

#if DISCDIFF_NN_HOST_GEMM
/// The CPU default: OpenMP (small passes on the calling thread), OpenBLAS (or threaded
/// Eigen), SIMD twins.
using HostBackend = Backend<OpenMPExecutor, HostGemm, true>;

/// HostBackend with `threads` OpenMP threads (0: the OpenMP default) and the given
/// min_work threshold (0: every pass parallel, as the tests use).
inline HostBackend make_host_backend(int threads = 0, double min_work = kParallelMinWork) {
  HostBackend be;
  be.exec.num_threads = threads;
  be.exec.min_work = min_work;
  be.gemm.exec.num_threads = threads;
  be.gemm.exec.min_work = 0;
  return be;
}

#endif  // DISCDIFF_NN_HOST_GEMM

/// The portable reference on one host thread: SequentialExecutor, naive GEMM, no twins.
using ReferenceBackend = Backend<SequentialExecutor, NaiveGemm<SequentialExecutor>, false>;

/// A backend whose kernels are the portable bodies on executor `Exec` and whose GEMM is
/// Gemm (HostGemm to share the host products; NaiveGemm<Exec> for a fully portable run).
template <class Exec, class Gemm = NaiveGemm<Exec>>
using PortableBackend = Backend<Exec, Gemm, false>;

}  // namespace nn
}  // namespace discdiff
