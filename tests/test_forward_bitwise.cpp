// Forward corruption is a pure function of (inputs, seed, stream): a 64 x 257 batch gives
// identical tokens on SequentialExecutor and OpenMPExecutor with 1, 2, 7 threads and the
// default team, for every generator, float and double; element (b, l) uses the counter
// CounterRng(seed, stream, b * L + l) (docs/math/ctmc.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <discdiff/exec/executor.hpp>
#include <discdiff/generator/absorbing.hpp>
#include <discdiff/generator/roulette.hpp>
#include <discdiff/generator/state_dependent.hpp>
#include <discdiff/generator/uniform.hpp>
#include <discdiff/ops/forward_corrupt.hpp>

using namespace discdiff;

namespace {

constexpr std::int64_t kB = 64, kL = 257;
constexpr std::uint64_t kSeed = 0x0123456789abcdefull;
constexpr std::uint32_t kStream = 17;

/// Tokens in [0, D) (MASK included for masking generators), from a separate counter stream.
std::vector<int> random_batch(int num_states) {
  std::vector<int> x(static_cast<std::size_t>(kB * kL));
  for (std::size_t i = 0; i < x.size(); ++i) {
    CounterRng rng(99, 1, i);
    x[i] = static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(num_states)));
  }
  return x;
}

/// One noise per row from 0 (identity) to about 20 (saturated), geometric in between.
template <class T>
std::vector<T> row_noise() {
  std::vector<T> u(static_cast<std::size_t>(kB));
  u[0] = T(0);
  for (std::int64_t b = 1; b < kB; ++b) u[b] = T(1e-4 * std::pow(1.17, double(b)));
  return u;
}

template <class Exec, class Gen, class T>
std::vector<int> corrupt(const Exec& exec, const Gen& gen, const std::vector<int>& x0,
                         const std::vector<T>& u) {
  std::vector<int> out(x0.size(), -1);
  forward_corrupt_raw(exec, gen, x0.data(), kB, kL, u.data(), out.data(), kSeed, kStream);
  return out;
}

template <class Exec, class Gen, class T>
std::vector<int> corrupt_tokens(const Exec& exec, const Gen& gen, const std::vector<int>& x0,
                                const std::vector<T>& ubar, std::int64_t stride) {
  std::vector<int> out(x0.size(), -1);
  forward_corrupt_raw(exec, gen, x0.data(), kB, kL, ubar.data(), stride, out.data(), kSeed,
                      kStream);
  return out;
}

template <class Gen, class T>
void check_scalar_backends(const std::string& name, const Gen& gen) {
  static_assert(std::is_trivially_copyable<ForwardCorruptKernel<Gen, T>>::value,
                "kernels must be trivially copyable");
  CAPTURE(name);
  const auto x0 = random_batch(gen.num_states());
  const auto u = row_noise<T>();
  const auto ref = corrupt(SequentialExecutor{}, gen, x0, u);
  CHECK(std::count(ref.begin(), ref.end(), -1) == 0);
  // Row 0 has u = 0: nothing changes.
  CHECK(std::equal(ref.begin(), ref.begin() + kL, x0.begin()));
  for (int nt : {1, 2, 7, 0}) {
    CAPTURE(nt);
    CHECK(corrupt(OpenMPExecutor{nt}, gen, x0, u) == ref);
  }
  // The counter layout: element i = b * L + l draws from CounterRng(seed, stream, i).
  std::int64_t mismatches = 0;
  for (std::int64_t b = 0; b < kB; ++b)
    for (std::int64_t l = 0; l < kL; ++l) {
      const std::int64_t i = b * kL + l;
      CounterRng rng(kSeed, kStream, static_cast<std::uint64_t>(i));
      mismatches += gen.sample_forward(x0[i], u[b], rng) != ref[i];
    }
  CHECK(mismatches == 0);
  // In place (xt == x0) gives the same tokens.
  std::vector<int> inplace = x0;
  forward_corrupt_raw(OpenMPExecutor{2}, gen, inplace.data(), kB, kL, u.data(), inplace.data(),
                      kSeed, kStream);
  CHECK(inplace == ref);
  // Another stream or seed gives other tokens (for the noisy rows).
  std::vector<int> other(x0.size());
  forward_corrupt_raw(SequentialExecutor{}, gen, x0.data(), kB, kL, u.data(), other.data(), kSeed,
                      kStream + 1);
  CHECK(other != ref);
  forward_corrupt_raw(SequentialExecutor{}, gen, x0.data(), kB, kL, u.data(), other.data(),
                      kSeed + 1, kStream);
  CHECK(other != ref);
}

template <class T>
void check_token_backends(int N) {
  using Gen = StateDependentMaskingGenerator<T>;
  static_assert(std::is_trivially_copyable<ForwardCorruptTokenNoiseKernel<Gen, T>>::value,
                "kernels must be trivially copyable");
  const Gen gen(N);
  const auto x0 = random_batch(gen.num_states());
  std::vector<T> shared(static_cast<std::size_t>(N)), table(static_cast<std::size_t>(kB * N));
  for (int v = 0; v < N; ++v) shared[v] = T(0.05 * (v + 1));
  for (std::int64_t k = 0; k < kB * N; ++k) table[k] = T(1e-3 * std::pow(1.3, double(k % 37)));
  for (std::int64_t stride : {std::int64_t(0), std::int64_t(N)}) {
    CAPTURE(stride);
    const auto& ubar = stride == 0 ? shared : table;
    const auto ref = corrupt_tokens(SequentialExecutor{}, gen, x0, ubar, stride);
    for (int nt : {1, 2, 7, 0}) {
      CAPTURE(nt);
      CHECK(corrupt_tokens(OpenMPExecutor{nt}, gen, x0, ubar, stride) == ref);
    }
    std::int64_t mismatches = 0;
    for (std::int64_t i = 0; i < kB * kL; ++i) {
      CounterRng rng(kSeed, kStream, static_cast<std::uint64_t>(i));
      mismatches += gen.sample_forward(x0[i], ubar.data() + (i / kL) * stride, rng) != ref[i];
    }
    CHECK(mismatches == 0);
  }
}

template <class T>
void check_all() {
  check_scalar_backends<UniformGenerator<T>, T>("uniform 27", UniformGenerator<T>(27));
  check_scalar_backends<UniformGenerator<T>, T>("uniform 50257", UniformGenerator<T>(50257));
  check_scalar_backends<AbsorbingGenerator<T>, T>("absorbing 27", AbsorbingGenerator<T>(27));
  check_scalar_backends<RouletteGenerator<T>, T>("roulette 27 0.3",
                                                 RouletteGenerator<T>(27, T(0.3)));
  check_scalar_backends<RouletteGenerator<T>, T>("roulette 50257 0.95",
                                                 RouletteGenerator<T>(50257, T(0.95)));
  check_token_backends<T>(27);
}

}  // namespace

TEST_CASE("forward corruption: Sequential == OpenMP(1, 2, 7, default) bit for bit (float)") {
  check_all<float>();
}

TEST_CASE("forward corruption: Sequential == OpenMP(1, 2, 7, default) bit for bit (double)") {
  check_all<double>();
}

TEST_CASE("forward corruption: empty batches are no-ops") {
  const UniformGenerator<float> gen(5);
  const float u = 1.0f;
  int x = 3, out = -7;
  forward_corrupt_raw(OpenMPExecutor{}, gen, &x, 0, 10, &u, &out, 1, 2);
  forward_corrupt_raw(OpenMPExecutor{}, gen, &x, 1, 0, &u, &out, 1, 2);
  CHECK(out == -7);
}
