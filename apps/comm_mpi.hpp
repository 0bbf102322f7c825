// apps/comm_mpi.hpp: the MPI communicator (apps/comm.hpp's interface over MPI_COMM_WORLD), built
// only with DISCDIFF_ENABLE_MPI (DISCDIFF_HAVE_MPI = 1; Debian's libopenmpi-dev).
//
// Host memory only (device_buffers() is false). MPI_COMM_WORLD keeps Open MPI's default error
// handler, MPI_ERRORS_ARE_FATAL: a failed collective (a peer that died) ends the job instead of
// returning, and mpirun / srun then stop every other rank and name the one that died.
// all_reduce_sum splits buffers above 2^30 elements (MPI counts are int).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <string>

#include "comm.hpp"

namespace discdiff {
namespace app {

class MpiComm final : public Communicator {
 public:
  /// Calls MPI_Init (MPI_THREAD_FUNNELED: OpenMP threads never call MPI).
  MpiComm() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* name() const override { return "mpi"; }
  void all_reduce_sum(float* data, std::size_t n) override { reduce(data, n, MPI_FLOAT, MPI_SUM); }
  void all_reduce_sum(double* data, std::size_t n) override { reduce(data, n, MPI_DOUBLE, MPI_SUM); }
  void all_reduce_max(std::int64_t* data, std::size_t n) override {
    reduce(data, n, MPI_INT64_T, MPI_MAX);
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* p = static_cast<unsigned char*>(data);
    for (std::size_t off = 0; off < bytes; off += kChunk)
      MPI_Bcast(p + off, int(std::min(kChunk, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(int code, const std::string& msg) override {
    std::fprintf(stderr, "%s\n", msg.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is for the compiler
  }
  void finalize() {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }

 private:
  static constexpr std::size_t kChunk = std::size_t(1) << 30;
  template <class U>
  void reduce(U* data, std::size_t n, MPI_Datatype t, MPI_Op op) {
    for (std::size_t off = 0; off < n; off += kChunk)
      MPI_Allreduce(MPI_IN_PLACE, data + off, int(std::min(kChunk, n - off)), t, op, MPI_COMM_WORLD);
  }
  int rank_ = 0, size_ = 1;
};

}  // namespace app
}  // namespace discdiff
