// ThrustExecutor with the OMP device system (plain g++, target discdiff_thrust_omp): visits
// every index of [0, n) exactly once.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <discdiff/core/config.hpp>
#include <discdiff/exec/executor.hpp>

static_assert(DISCDIFF_HAVE_THRUST_EXECUTOR == 1, "the Thrust suite needs ThrustExecutor");
static_assert(discdiff::ThrustExecutor::host_memory, "OMP device system reads host memory");
static_assert(THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP, "built for Thrust-OMP");

using namespace discdiff;

namespace {

struct CountVisits {
  std::atomic<int>* counts;
  DD_HD void operator()(std::int64_t i) const {
    counts[i].fetch_add(1, std::memory_order_relaxed);
  }
};

struct Square {
  std::int64_t* out;
  DD_HD void operator()(std::int64_t i) const { out[i] = i * i + 1; }
};

}  // namespace

TEST_CASE("ThrustExecutor (OMP) visits each index once") {
  for (std::int64_t n : {0, 1, 2, 3, 7, 63, 1001, 65537}) {
    CAPTURE(n);
    std::unique_ptr<std::atomic<int>[]> counts(new std::atomic<int>[n + 1]);
    for (std::int64_t i = 0; i <= n; ++i) counts[i].store(0);
    ThrustExecutor{}.for_each(n, CountVisits{counts.get()});
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < n; ++i) wrong += counts[i].load() != 1;
    CHECK(wrong == 0);
    CHECK(counts[n].load() == 0);
  }
  ThrustExecutor{}.for_each(-4, CountVisits{nullptr});  // negative n: no calls

  const std::int64_t n = 100003;
  std::vector<std::int64_t> a(n, -1), b(n, -1);
  SequentialExecutor{}.for_each(n, Square{a.data()});
  ThrustExecutor{}.for_each(n, Square{b.data()});
  CHECK(a == b);
}
