// apps/comm.cpp: world() and friends of apps/comm.hpp (the one place that knows whether this
// build has MPI).
#include "comm.hpp"

#ifndef DISCDIFF_HAVE_MPI
#define DISCDIFF_HAVE_MPI 0
#endif

#include <cstdio>
#include <cstdlib>
#include <iostream>

#if DISCDIFF_HAVE_MPI
#include "comm_mpi.hpp"
#endif

namespace discdiff {
namespace app {

void SingleProcessComm::abort(int code, const std::string& msg) {
  std::cerr << msg << std::endl;
  std::exit(code);
}

namespace {
std::unique_ptr<Communicator>& world_ptr() {
  static std::unique_ptr<Communicator> w;
  return w;
}
}  // namespace

bool mpi_available() { return DISCDIFF_HAVE_MPI != 0; }

Communicator& world() {
  auto& w = world_ptr();
  if (!w) {
#if DISCDIFF_HAVE_MPI
    if (launched_by_mpi()) w = std::make_unique<MpiComm>();
#endif
    if (!w && launched_by_mpi()) {
      // Without MPI, K copies under mpirun would each train alone into the same directory.
      for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}) {
        const char* n = std::getenv(v);
        if (n != nullptr && std::atoi(n) > 1)
          throw std::invalid_argument(std::string("started by an MPI launcher with ") + v + "=" + n +
                                      ", but this discdiff was built without MPI "
                                      "(DISCDIFF_ENABLE_MPI; install libopenmpi-dev and rebuild)");
      }
    }
    if (!w) w = std::make_unique<SingleProcessComm>();
  }
  return *w;
}

Communicator* world_if_started() { return world_ptr().get(); }

void finalize_world() {
#if DISCDIFF_HAVE_MPI
  if (auto* m = dynamic_cast<MpiComm*>(world_ptr().get())) m->finalize();
#endif
}

}  // namespace app
}  // namespace discdiff
