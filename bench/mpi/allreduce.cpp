// bench/mpi/allreduce.cpp: MPI_Allreduce (MPI_SUM, float, in place) time and bus bandwidth on
// this machine, for the cost model of docs/distributed.md. Built with DISCDIFF_ENABLE_MPI.
//
//   mpirun -np 2 bench_mpi_allreduce [MB ...]     (default: 1 4 24.2 100 MB)
//   BUCKET_MB=1 mpirun -np 2 bench_mpi_allreduce   (each size as consecutive all-reduces of
//                                                   at most 1 MB, as the training loop's buckets)
//
// Per size: the median over 20 repetitions (after 3 warm-up calls, a barrier before each) of
// the all-reduce time, and the bus bandwidth 2 (K - 1)/K S / t (what a ring moves per rank).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, K = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &K);
  std::vector<double> mbs = {1, 4, 24.2, 100};
  if (argc > 1) {
    mbs.clear();
    for (int i = 1; i < argc; ++i) mbs.push_back(std::atof(argv[i]));
  }
  const char* bucket_env = std::getenv("BUCKET_MB");
  const double bucket_mb = bucket_env != nullptr ? std::atof(bucket_env) : 0.0;
  if (rank == 0)
    std::printf("ranks %d, buckets %s MB\n%10s %12s %12s\n", K, bucket_mb > 0 ? bucket_env : "(none)",
                "MB", "median ms", "bus GB/s");
  for (double mb : mbs) {
    const std::size_t n = static_cast<std::size_t>(mb * 1e6 / sizeof(float));
    std::vector<float> buf(n, 1.0f);
    std::vector<double> t;
    for (int rep = 0; rep < 23; ++rep) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = MPI_Wtime();
      const std::size_t step = bucket_mb > 0 ? static_cast<std::size_t>(bucket_mb * 1e6 / sizeof(float)) : n;
      for (std::size_t off = 0; off < n; off += step)
        MPI_Allreduce(MPI_IN_PLACE, buf.data() + off, static_cast<int>(std::min(step, n - off)), MPI_FLOAT,
                      MPI_SUM, MPI_COMM_WORLD);
      const double dt = MPI_Wtime() - t0;
      if (rep >= 3) t.push_back(dt);
      std::fill(buf.begin(), buf.end(), 1.0f);
    }
    std::sort(t.begin(), t.end());
    double med = t[t.size() / 2];
    MPI_Allreduce(MPI_IN_PLACE, &med, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    const double bus = 2.0 * (K - 1) / K * double(n) * sizeof(float) / med / 1e9;
    if (rank == 0) std::printf("%10.1f %12.3f %12.2f\n", mb, med * 1e3, bus);
  }
  MPI_Finalize();
  return 0;
}
