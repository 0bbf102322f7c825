// apps/backend.hpp: the one place where the program picks its compute backend.
//
// The network (nn::Transformer), its optimiser state, the per-step buffers of the objectives,
// the samplers and the bound estimators all run on AppBackend and keep their data in its memory
// space (AppSpace). Everything else in apps/ is written against these names, so a build changes
// backend by changing this file's choice only:
//   default build            nn::HostBackend (OpenMP executor, OpenBLAS/Eigen GEMM, host SIMD
//                            twins): the fast CPU path;
//   DISCDIFF_APP_THRUST=1    nn::PortableBackend<ThrustExecutor, HostGemm> (Thrust with the OMP
//                            device system: the portable kernels every backend runs, the same
//                            host GEMM): the `discdiff-thrust` program the tests build to check
//                            that the program is backend-independent (same checkpoints within
//                            1e-5, checkpoints interchangeable);
//   (the CUDA build adds a device backend here: `--device cuda`).
// `--device` names the device at run time; this build offers the ones in available_devices().
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <discdiff/exec/memory.hpp>
#include <discdiff/nn/nn.hpp>

#if DISCDIFF_APP_THRUST
#include <discdiff/exec/thrust.hpp>
#endif

namespace discdiff {
namespace app {

using Real = float;

#if DISCDIFF_APP_THRUST
using AppBackend = nn::PortableBackend<ThrustExecutor, nn::HostGemm>;
inline constexpr const char* kBackendName = "thrust-omp (portable kernels, host GEMM)";
#else
using AppBackend = nn::HostBackend;
inline constexpr const char* kBackendName = "host (OpenMP, BLAS GEMM, SIMD)";
#endif

using AppExec = AppBackend::exec_type;
using AppSpace = AppBackend::memory_space;
using Net = nn::Transformer<Real, AppBackend>;
template <class U>
using AppBuffer = Buffer<U, AppSpace>;

/// The devices this build can run on (`--device`).
inline std::vector<std::string> available_devices() { return {"cpu"}; }

/// Throws std::invalid_argument unless `device` is one of available_devices().
inline void require_device(const std::string& device) {
  for (const auto& d : available_devices())
    if (d == device) return;
  std::string list;
  for (const auto& d : available_devices()) list += (list.empty() ? "" : ", ") + d;
  throw std::invalid_argument("--device " + device + ": this build runs on " + list +
                              (device == "cuda" ? " only (build with the CUDA preset for the GPU)"
                                                : ""));
}

}  // namespace app
}  // namespace discdiff
