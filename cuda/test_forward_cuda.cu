// cuda/test_forward_cuda.cu: the GPU forward corruption equals the host SequentialExecutor
// result bit for bit (same kernel, same counters). Exits 0 with "no GPU, skipped" when no
// CUDA device is usable.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include <discdiff/core/random.hpp>
#include <discdiff/exec/sequential.hpp>
#include <discdiff/ops/forward_corrupt.hpp>

#include "forward_corrupt_cuda.cuh"

namespace {

using namespace discdiff;

constexpr std::int64_t kB = 64, kL = 257;
constexpr std::uint64_t kSeed = 0x5eed5eedull;

int g_failures = 0;

std::vector<int> random_tokens(int num_states, std::uint64_t salt) {
  std::vector<int> x(kB * kL);
  for (std::int64_t i = 0; i < kB * kL; ++i) {
    CounterRng rng(salt, 99u, static_cast<std::uint64_t>(i));
    x[i] = static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(num_states)));
  }
  return x;
}

template <class T>
std::vector<T> row_noise() {
  // From 1e-4 to about 8: small, moderate and saturated corruption.
  std::vector<T> u(kB);
  for (std::int64_t b = 0; b < kB; ++b) u[b] = T(1e-4) * std::pow(T(1.16), T(b));
  return u;
}

void report(const std::string& name, const std::vector<int>& host, const std::vector<int>& dev) {
  std::int64_t bad = 0, first = -1;
  for (std::size_t i = 0; i < host.size(); ++i)
    if (host[i] != dev[i]) {
      if (first < 0) first = static_cast<std::int64_t>(i);
      ++bad;
    }
  if (bad == 0) {
    std::printf("ok    %-40s %zu tokens identical\n", name.c_str(), host.size());
  } else {
    ++g_failures;
    std::printf("FAIL  %-40s %lld of %zu tokens differ (first at %lld: host %d, gpu %d)\n",
                name.c_str(), static_cast<long long>(bad), host.size(),
                static_cast<long long>(first), host[first], dev[first]);
  }
}

template <class Gen, class T>
void check_scalar(const std::string& name, const Gen& gen) {
  const auto x0 = random_tokens(gen.num_states(), 7);
  const auto u = row_noise<T>();
  std::vector<int> host(kB * kL), dev(kB * kL, -1);
  forward_corrupt_raw(SequentialExecutor{}, gen, x0.data(), kB, kL, u.data(), host.data(), kSeed,
                      3u);
  cuda::forward_corrupt_host(gen, x0.data(), kB, kL, u.data(), dev.data(), kSeed, 3u);
  report(name, host, dev);
}

template <class Gen, class T>
void check_token(const std::string& name, const Gen& gen, bool per_row) {
  const auto x0 = random_tokens(gen.num_states(), 11);
  const std::int64_t N = gen.num_regular();
  const std::int64_t stride = per_row ? N : 0;
  std::vector<T> ubar(per_row ? kB * N : N);
  for (std::size_t k = 0; k < ubar.size(); ++k) ubar[k] = T(1e-3) * std::pow(T(1.37), T(k % 40));
  std::vector<int> host(kB * kL), dev(kB * kL, -1);
  forward_corrupt_raw(SequentialExecutor{}, gen, x0.data(), kB, kL, ubar.data(), stride,
                      host.data(), kSeed, 4u);
  cuda::forward_corrupt_host(gen, x0.data(), kB, kL, ubar.data(), stride, dev.data(), kSeed, 4u);
  report(name, host, dev);
}

template <class T>
void check_all(const char* tname) {
  const std::string s = std::string(" <") + tname + ">";
  check_scalar<UniformGenerator<T>, T>("uniform N=27" + s, UniformGenerator<T>(27));
  check_scalar<AbsorbingGenerator<T>, T>("absorbing N=27" + s, AbsorbingGenerator<T>(27));
  check_scalar<RouletteGenerator<T>, T>("roulette N=27 p_m=0.3" + s,
                                        RouletteGenerator<T>(27, T(0.3)));
  check_scalar<RouletteGenerator<T>, T>("roulette N=27 p_m=0.95" + s,
                                        RouletteGenerator<T>(27, T(0.95)));
  check_scalar<UniformGenerator<T>, T>("uniform N=50257" + s, UniformGenerator<T>(50257));
  check_scalar<RouletteGenerator<T>, T>("roulette N=50257 p_m=0.95" + s,
                                        RouletteGenerator<T>(50257, T(0.95)));
  check_token<StateDependentMaskingGenerator<T>, T>("state-dependent shared ubar" + s,
                                                    StateDependentMaskingGenerator<T>(27), false);
  check_token<StateDependentMaskingGenerator<T>, T>("state-dependent per-row ubar" + s,
                                                    StateDependentMaskingGenerator<T>(27), true);
}

}  // namespace

int main() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::printf("no GPU, skipped (cudaGetDeviceCount: %s, %d devices)\n",
                err == cudaSuccess ? "ok" : cudaGetErrorString(err), count);
    return 0;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("GPU: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  check_all<float>("float");
  check_all<double>("double");
  if (g_failures) {
    std::printf("%d case(s) differ between the GPU and the host SequentialExecutor\n", g_failures);
    return 1;
  }
  std::printf("all cases bit-identical\n");
  return 0;
}
