// Forward and limit sampling of the closed-form generators: the fixed number of random words
// each call consumes (so per-element streams stay aligned), reproducibility, and a small sanity
// check of the forward frequencies against the closed-form column. (The chi-squared tests of
// forward sampling live with the forward-corruption kernel.)
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include <discdiff/generator/generators.hpp>

using namespace discdiff;

namespace {

// After one call of f(rng) the stream has advanced by exactly `words` 32-bit words.
template <class F>
void consumes(F f, int words) {
  for (std::uint64_t i = 0; i < 16; ++i) {
    CounterRng a(99, 5, i), b(99, 5, i);
    f(a);
    for (int w = 0; w < words; ++w) b.next_u32();
    CHECK(a.next_u32() == b.next_u32());
  }
}

template <class T>
constexpr int uniform_words() {
  return UniformBits<T>::kWords;
}

}  // namespace

TEST_CASE_TEMPLATE("sample_forward and sample_limit consume a fixed number of words", T, float,
                   double) {
  const int w = uniform_words<T>();
  const UniformGenerator<T> un(7);
  const AbsorbingGenerator<T> ab(7);
  const RouletteGenerator<T> ro(7, T(0.6));
  const StateDependentMaskingGenerator<T> sd(7);
  const std::vector<T> ubar = {T(0), T(0.1), T(1), T(5), T(50), T(700), T(1e-7)};
  for (int x0 : {0, 3, 7}) {
    for (T u : {T(0), T(1e-7), T(0.7), T(700)}) {
      if (x0 < 7) consumes([&](CounterRng& r) { un.sample_forward(x0, u, r); }, w + 2);
      consumes([&](CounterRng& r) { ab.sample_forward(x0, u, r); }, w);
      consumes([&](CounterRng& r) { ro.sample_forward(x0, u, r); }, 2 * w + 2);
    }
    consumes([&](CounterRng& r) { sd.sample_forward(x0, ubar.data(), r); }, w);
  }
  consumes([&](CounterRng& r) { un.sample_limit(r); }, 2);
  consumes([&](CounterRng& r) { ab.sample_limit(r); }, 0);
  consumes([&](CounterRng& r) { ro.sample_limit(r); }, 2);
  consumes([&](CounterRng& r) { sd.sample_limit(r); }, 0);
}

TEST_CASE("sample_forward: limits of the noise and the limit draws") {
  const RouletteGenerator<double> ro(5, 0.9), r0(5, 0.0);
  const AbsorbingGenerator<double> ab(5);
  const UniformGenerator<float> un(5);
  for (std::uint64_t i = 0; i < 200; ++i) {
    CounterRng a(3, 0, i), b(3, 1, i), c(3, 2, i), d(3, 3, i);
    CHECK(ro.sample_forward(2, 0.0, a) == 2);      // u = 0 keeps the token
    CHECK(ab.sample_forward(2, 700.0, b) == 5);    // everything masked
    CHECK(ro.sample_forward(5, 0.3, c) == 5);      // MASK stays MASK
    CHECK(ro.sample_limit(d) == 5);
    CounterRng e(3, 4, i);
    const int y = r0.sample_limit(e);              // p_m = 0: uniform over the regular tokens
    CHECK((y >= 0 && y < 5));
    CounterRng f(3, 5, i);
    const int z = un.sample_forward(1, 700.0f, f);  // fully resampled
    CHECK((z >= 0 && z < 5));
  }
}

TEST_CASE("sample_forward frequencies match the closed-form column (sanity, 5 sigma)") {
  constexpr int m = 40000;
  auto run = [](const auto& g, int x0, auto noise) {
    const int d = g.num_states();
    std::vector<double> col(static_cast<std::size_t>(d));
    std::vector<long> count(col.size(), 0);
    g.transition_column(x0, noise, col.data());
    for (int i = 0; i < m; ++i) {
      CounterRng rng(2024, 11, static_cast<std::uint64_t>(i));
      const int y = g.sample_forward(x0, noise, rng);
      REQUIRE((y >= 0 && y < d));
      ++count[static_cast<std::size_t>(y)];
    }
    for (int y = 0; y < d; ++y) {
      const double p = col[static_cast<std::size_t>(y)];
      const double f = double(count[static_cast<std::size_t>(y)]) / m;
      CAPTURE(y);
      CHECK(std::abs(f - p) <= 5.0 * std::sqrt(p * (1 - p) / m) + 1e-12);
    }
  };
  run(UniformGenerator<double>(5), 0, 0.7);
  run(AbsorbingGenerator<double>(5), 3, 0.7);
  run(RouletteGenerator<double>(5, 0.9), 0, 0.7);
  run(RouletteGenerator<double>(5, 0.3), 4, 1.5);
  const std::vector<double> ubar = {0.2, 0.9, 2.0, 0.05, 1.1};
  run(StateDependentMaskingGenerator<double>(5), 2, ubar.data());
}
