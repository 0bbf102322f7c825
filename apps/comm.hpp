// apps/comm.hpp: the communicator of data-parallel training and evaluation (docs/distributed.md).
//
// A Communicator joins the K processes (ranks) of one job. The training loop and eval see only
// this interface: rank(), size(), all_reduce_sum / all_reduce_max / all_reduce_mean, broadcast,
// barrier, abort. Implementations:
//  * SingleProcessComm (here): K = 1, every collective is the identity. The default, and the
//    only one in a build without MPI.
//  * MpiComm (apps/comm_mpi.hpp, built with DISCDIFF_ENABLE_MPI): MPI_COMM_WORLD of Open MPI,
//    buffers in host memory.
//  * the slot for NCCL: a communicator whose all_reduce_sum takes buffers in the backend's
//    device memory reports device_buffers() == true; GradientAllReduce below then hands it the
//    gradient slab directly instead of staging it through the host. Nothing else changes.
// world() returns the process's communicator: MpiComm when this build has MPI and the process
// was started by an MPI launcher (mpirun / mpiexec: OMPI_COMM_WORLD_SIZE; srun --mpi=pmix:
// PMIX_RANK; PMI-2: PMI_RANK), SingleProcessComm otherwise (no MPI_Init at all, so a plain
// `discdiff train` is exactly the single-process program).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <discdiff/exec/memory.hpp>

#include "backend.hpp"

namespace discdiff {
namespace app {

/// The collectives that data-parallel training and evaluation need. Every rank must call the
/// same collectives in the same order with the same sizes (the training loop does).
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// "single", "mpi" (an NCCL implementation: "nccl").
  virtual const char* name() const = 0;
  /// Whether all_reduce_sum takes buffers in the backend's device memory (NCCL) rather than
  /// host memory (MPI here, and the single-process identity).
  virtual bool device_buffers() const { return false; }
  /// data[i] <- sum over ranks of data[i], the same result on every rank.
  virtual void all_reduce_sum(float* data, std::size_t n) = 0;
  virtual void all_reduce_sum(double* data, std::size_t n) = 0;
  /// data[i] <- max over ranks of data[i].
  virtual void all_reduce_max(std::int64_t* data, std::size_t n) = 0;
  /// rank root's `bytes` bytes at data are copied to every rank's data.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  /// Ends every rank of the job with exit code `code` after printing msg on this rank's stderr
  /// (K = 1: std::exit). Never returns.
  [[noreturn]] virtual void abort(int code, const std::string& msg) = 0;

  /// data[i] <- mean over ranks of data[i] (the sum times 1 / size()).
  void all_reduce_mean(double* data, std::size_t n) {
    all_reduce_sum(data, n);
    if (size() > 1)
      for (std::size_t i = 0; i < n; ++i) data[i] /= double(size());
  }
  double sum(double v) {
    all_reduce_sum(&v, 1);
    return v;
  }
  std::int64_t max(std::int64_t v) {
    all_reduce_max(&v, 1);
    return v;
  }
  bool is_root() const { return rank() == 0; }
};

/// K = 1: the identity collectives.
class SingleProcessComm final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* name() const override { return "single"; }
  void all_reduce_sum(float*, std::size_t) override {}
  void all_reduce_sum(double*, std::size_t) override {}
  void all_reduce_max(std::int64_t*, std::size_t) override {}
  void broadcast(void*, std::size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code, const std::string& msg) override;
};

/// Whether an MPI launcher started this process (see the file comment).
inline bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

/// The process's communicator (created on first use; MPI_Init happens there).
Communicator& world();
/// The communicator if world() was called, else null (main() uses it on errors).
Communicator* world_if_started();
/// MPI_Finalize when world() started MPI (main() calls it before returning); nothing otherwise.
void finalize_world();
/// Whether this build has the MPI communicator.
bool mpi_available();

/// The rows [row0, row0 + rows) of a global batch of `global` rows that rank r of K takes:
/// contiguous shards, the first global % K ranks one row more.
struct Shard {
  std::int64_t row0 = 0, rows = 0, global = 0;
  static Shard of(std::int64_t global, int rank, int K) {
    const std::int64_t q = global / K, r = global % K;
    Shard s;
    s.global = global;
    s.rows = q + (rank < r ? 1 : 0);
    s.row0 = rank * q + std::min<std::int64_t>(rank, r);
    return s;
  }
  bool whole() const { return row0 == 0 && rows == global; }
};

/// Sums a gradient slab over the ranks in fixed-size buckets, in ascending offset order (every
/// rank issues the same sequence of all-reduces, so the result does not depend on timing). A
/// barrier first: the time spent waiting for the slowest rank is kept apart from the transfer.
/// Host communicators get host memory: on a device backend the bucket goes through a host
/// staging buffer; on the host backend the reduction is in place. Keeps the time it spent.
class GradientAllReduce {
 public:
  explicit GradientAllReduce(Communicator& c, std::size_t bucket_floats = std::size_t(1) << 20)
      : comm_(c), bucket_(bucket_floats) {}
  void operator()(Real* grads, std::size_t n) {
    if (comm_.size() == 1) return;
    // The barrier separates waiting for the slowest rank (load imbalance) from the transfer.
    const auto tw = std::chrono::steady_clock::now();
    comm_.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    wait_seconds_ += std::chrono::duration<double>(t0 - tw).count();
    for (std::size_t off = 0; off < n; off += bucket_) {
      const std::size_t m = std::min(bucket_, n - off);
      if (comm_.device_buffers() || std::is_same<AppSpace, HostSpace>::value) {
        comm_.all_reduce_sum(grads + off, m);
      } else {
        stage_.resize(m);
        copy_n(HostSpace{}, stage_.data(), AppSpace{}, grads + off, m);
        comm_.all_reduce_sum(stage_.data(), m);
        copy_n(AppSpace{}, grads + off, HostSpace{}, stage_.data(), m);
      }
    }
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bytes_ += double(n) * sizeof(Real);
  }
  /// Seconds spent in the all-reduces (after the barrier) and waiting at the barrier.
  double seconds() const { return seconds_; }
  double wait_seconds() const { return wait_seconds_; }
  double bytes() const { return bytes_; }
  Communicator& comm() { return comm_; }

 private:
  Communicator& comm_;
  std::size_t bucket_;
  std::vector<Real> stage_;
  double seconds_ = 0, wait_seconds_ = 0, bytes_ = 0;
};

/// 64-bit FNV-1a of a string (the configuration check across ranks).
inline std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

/// Start-up check of a multi-rank job: every rank's `text` (its resolved configuration) must
/// hash to rank 0's. Throws std::invalid_argument on every rank, naming the lowest differing
/// rank, when one differs. Nothing happens with K = 1.
inline void require_same_on_all_ranks(Communicator& c, const std::string& text, const std::string& what) {
  if (c.size() == 1) return;
  std::uint64_t h = fnv1a64(text), h0 = h;
  c.broadcast(&h0, sizeof h0, 0);
  // The lowest rank whose hash differs from rank 0's (max of -rank, negated back).
  const std::int64_t bad = -c.max(h == h0 ? -std::int64_t(c.size()) : -std::int64_t(c.rank()));
  if (bad < c.size())
    throw std::invalid_argument(what + " of rank " + std::to_string(bad) + " differs from rank 0's (" +
                                std::to_string(c.size()) + " ranks): start every rank with the same "
                                "options, configuration file and data");
}

}  // namespace app
}  // namespace discdiff
