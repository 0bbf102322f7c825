// Executors (exec/): each visits every index of [0, n) exactly once, for empty, tiny and
// odd sizes, and OpenMP with 1, 2, 7 threads and the default team.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <discdiff/core/config.hpp>
#include <discdiff/exec/executor.hpp>

#if defined(_OPENMP)
#include <omp.h>
#endif

using namespace discdiff;

namespace {

/// Counts the visits of each index and records the largest OpenMP thread id seen.
struct CountVisits {
  std::atomic<int>* counts;
  std::atomic<int>* max_thread;
  std::int64_t n;
  DD_HD void operator()(std::int64_t i) const {
    if (i >= 0 && i < n) counts[i].fetch_add(1, std::memory_order_relaxed);
#if defined(_OPENMP)
    const int t = omp_get_thread_num();
    int m = max_thread->load(std::memory_order_relaxed);
    while (t > m && !max_thread->compare_exchange_weak(m, t)) {
    }
#endif
  }
};
static_assert(std::is_trivially_copyable<CountVisits>::value, "kernels are trivially copyable");

/// Runs exec over n indices; returns the largest thread id that ran an index (-1 if none).
template <class Exec>
int check_each_index_once(const Exec& exec, std::int64_t n) {
  const std::int64_t m = n > 0 ? n : 0;
  std::unique_ptr<std::atomic<int>[]> counts(new std::atomic<int>[m + 1]);
  for (std::int64_t i = 0; i <= m; ++i) counts[i].store(0);
  std::atomic<int> max_thread{-1};
  exec.for_each(n, CountVisits{counts.get(), &max_thread, m});
  std::int64_t wrong = 0;
  for (std::int64_t i = 0; i < m; ++i) wrong += counts[i].load() != 1;
  CHECK_MESSAGE(wrong == 0, Exec::name, ": n = ", n, ", ", wrong, " indices not visited once");
  CHECK(counts[m].load() == 0);  // nothing beyond n
  return max_thread.load();
}

const std::int64_t kSizes[] = {0, 1, 2, 3, 7, 63, 1001, 65537};

/// Writes out[i] = i * i + 1 (a plain, non-atomic result per slot).
struct Square {
  std::int64_t* out;
  DD_HD void operator()(std::int64_t i) const { out[i] = i * i + 1; }
};

}  // namespace

TEST_CASE("SequentialExecutor visits each index once, in order") {
  for (std::int64_t n : kSizes) check_each_index_once(SequentialExecutor{}, n);
  check_each_index_once(SequentialExecutor{}, -5);  // negative n: no calls

  std::vector<std::int64_t> order;
  struct Record {
    std::vector<std::int64_t>* v;
    void operator()(std::int64_t i) const { v->push_back(i); }
  };
  SequentialExecutor{}.for_each(5, Record{&order});
  CHECK(order == std::vector<std::int64_t>{0, 1, 2, 3, 4});
}

TEST_CASE("OpenMPExecutor visits each index once for 1, 2, 7 threads and the default") {
  for (int nt : {0, 1, 2, 7}) {
    CAPTURE(nt);
    const OpenMPExecutor exec{nt};
    for (std::int64_t n : kSizes) {
      const int max_thread = check_each_index_once(exec, n);
#if defined(_OPENMP)
      CHECK(max_thread < exec.team_size());
      if (nt == 1) CHECK(max_thread <= 0);
#else
      (void)max_thread;
#endif
    }
    check_each_index_once(exec, -3);
  }
}

TEST_CASE("OpenMPExecutor uses the requested team and writes every slot") {
#if defined(_OPENMP)
  CHECK(OpenMPExecutor::enabled());
  CHECK(OpenMPExecutor{7}.team_size() == 7);
  CHECK(OpenMPExecutor{0}.team_size() == omp_get_max_threads());
  // 7 threads over 7000 indices with a static schedule: every thread gets a chunk.
  if (!omp_get_dynamic()) CHECK(check_each_index_once(OpenMPExecutor{7}, 7000) == 6);
#else
  CHECK(!OpenMPExecutor::enabled());
  CHECK(OpenMPExecutor{7}.team_size() == 1);
#endif
  const std::int64_t n = 10007;
  std::vector<std::int64_t> a(n, -1), b(n, -1);
  SequentialExecutor{}.for_each(n, Square{a.data()});
  OpenMPExecutor{3}.for_each(n, Square{b.data()});
  CHECK(a == b);
}

TEST_CASE("OpenMPExecutor rejects a negative thread count") {
  CHECK_THROWS_AS(OpenMPExecutor{-1}.for_each(10, Square{nullptr}), std::invalid_argument);
  CHECK_THROWS_WITH(OpenMPExecutor{-2}.team_size(), doctest::Contains("-2"));
}
