// Thrust-OMP forward corruption equals the SequentialExecutor result bit for bit for every
// generator (float and double, raw driver and xtensor API), and the xtensor API rejects bad
// inputs with std::invalid_argument naming the value when run on ThrustExecutor.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <discdiff/exec/executor.hpp>
#include <discdiff/generator/absorbing.hpp>
#include <discdiff/generator/roulette.hpp>
#include <discdiff/generator/state_dependent.hpp>
#include <discdiff/generator/uniform.hpp>
#include <discdiff/ops/forward_corrupt.hpp>
#include <discdiff/ops/forward_corrupt_xt.hpp>
#include <discdiff/schedule/loglinear.hpp>

using namespace discdiff;

namespace {

constexpr std::size_t kB = 64, kL = 257;
constexpr std::uint64_t kSeed = 0xfeedfacecafebeefull;
constexpr std::uint32_t kStream = 5;

xt::xtensor<int, 2> random_batch(int num_states) {
  xt::xtensor<int, 2> x = xt::xtensor<int, 2>::from_shape({kB, kL});
  for (std::size_t i = 0; i < kB * kL; ++i) {
    CounterRng rng(7, 2, i);
    x.data()[i] = static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(num_states)));
  }
  return x;
}

template <class T>
xt::xtensor<T, 1> row_noise() {
  xt::xtensor<T, 1> u = xt::xtensor<T, 1>::from_shape({kB});
  u(0) = T(0);
  for (std::size_t b = 1; b < kB; ++b) u(b) = T(1e-4 * std::pow(1.17, double(b)));
  return u;
}

template <class Gen>
void check_scalar(const char* name, const Gen& gen) {
  using T = typename Gen::value_type;
  CAPTURE(name);
  const auto x0 = random_batch(gen.num_states());
  const auto u = row_noise<T>();
  std::vector<int> ref(kB * kL), thr(kB * kL, -1);
  forward_corrupt_raw(SequentialExecutor{}, gen, x0.data(), kB, kL, u.data(), ref.data(), kSeed,
                      kStream);
  forward_corrupt_raw(ThrustExecutor{}, gen, x0.data(), kB, kL, u.data(), thr.data(), kSeed,
                      kStream);
  CHECK(thr == ref);
  const auto a = forward_corrupt(gen, x0, u, kSeed, kStream, ThrustExecutor{});
  CHECK(std::vector<int>(a.begin(), a.end()) == ref);
  CHECK(a == forward_corrupt(gen, x0, u, kSeed, kStream, OpenMPExecutor{2}));
}

template <class T>
void check_token(int N) {
  const StateDependentMaskingGenerator<T> gen(N);
  const auto x0 = random_batch(gen.num_states());
  xt::xtensor<T, 1> ubar = xt::xtensor<T, 1>::from_shape({std::size_t(N)});
  xt::xtensor<T, 2> table = xt::xtensor<T, 2>::from_shape({kB, std::size_t(N)});
  for (int v = 0; v < N; ++v) ubar(v) = T(0.05 * (v + 1));
  for (std::size_t k = 0; k < table.size(); ++k)
    table.data()[k] = T(1e-3 * std::pow(1.3, double(k % 37)));
  std::vector<int> ref(kB * kL), thr(kB * kL, -1);
  forward_corrupt_raw(SequentialExecutor{}, gen, x0.data(), kB, kL, table.data(), N, ref.data(),
                      kSeed, kStream);
  forward_corrupt_raw(ThrustExecutor{}, gen, x0.data(), kB, kL, table.data(), N, thr.data(),
                      kSeed, kStream);
  CHECK(thr == ref);
  CHECK(forward_corrupt(gen, x0, table, kSeed, kStream, ThrustExecutor{}) ==
        forward_corrupt(gen, x0, table, kSeed, kStream));
  CHECK(forward_corrupt(gen, x0, ubar, kSeed, kStream, ThrustExecutor{}) ==
        forward_corrupt(gen, x0, ubar, kSeed, kStream));
}

template <class T>
void check_all() {
  check_scalar("uniform 27", UniformGenerator<T>(27));
  check_scalar("uniform 50257", UniformGenerator<T>(50257));
  check_scalar("absorbing 27", AbsorbingGenerator<T>(27));
  check_scalar("roulette 27 p_m=0.3", RouletteGenerator<T>(27, T(0.3)));
  check_scalar("roulette 27 p_m=0.95", RouletteGenerator<T>(27, T(0.95)));
  check_scalar("roulette 50257 p_m=0.95", RouletteGenerator<T>(50257, T(0.95)));
  check_token<T>(27);
}

template <class F>
std::string invalid_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("Thrust-OMP forward corruption == Sequential bit for bit (float)") { check_all<float>(); }

TEST_CASE("Thrust-OMP forward corruption == Sequential bit for bit (double)") {
  check_all<double>();
}

TEST_CASE("Thrust-OMP forward corruption with a schedule") {
  const RouletteGenerator<float> gen(27, 0.95f);
  const LogLinearSchedule<float> sched;
  const auto x0 = random_batch(28);
  xt::xtensor<float, 1> t = xt::xtensor<float, 1>::from_shape({kB});
  for (std::size_t b = 0; b < kB; ++b) t(b) = float(b) / float(kB - 1);
  CHECK(forward_corrupt(gen, sched, x0, t, 1, 2, ThrustExecutor{}) ==
        forward_corrupt(gen, sched, x0, t, 1, 2, SequentialExecutor{}));
}

TEST_CASE("xtensor API on ThrustExecutor: bad inputs throw with the value in the message") {
  const ThrustExecutor exec{};
  const AbsorbingGenerator<double> gen(4);
  xt::xtensor<int, 2> x0 = {{0, 1, 2}, {3, 4, 0}};  // 4 = MASK is valid (D = 5)
  xt::xtensor<double, 1> u = {0.5, 1.0};
  CHECK_NOTHROW(forward_corrupt(gen, x0, u, 1, 1, exec));

  xt::xtensor<double, 1> u1 = {0.5};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, x0, u1, 1, 1, exec); }),
                 "u_per_row.size() = 1"));
  auto bad = x0;
  bad(1, 2) = 9;
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, bad, u, 1, 1, exec); }),
                 "x0[1,2] = 9"));
  bad(1, 2) = -3;
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, bad, u, 1, 1, exec); }),
                 "x0[1,2] = -3"));
  xt::xtensor<double, 1> un = {std::numeric_limits<double>::quiet_NaN(), 1.0};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, x0, un, 1, 1, exec); }),
                 "u_per_row[0] = nan"));
  xt::xtensor<double, 1> ui = {0.5, std::numeric_limits<double>::infinity()};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, x0, ui, 1, 1, exec); }),
                 "u_per_row[1] = inf"));
  xt::xtensor<double, 1> neg = {0.5, -1.5};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, x0, neg, 1, 1, exec); }),
                 "u_per_row[1] = -1.5"));
  xt::xtensor<double, 1> t = {0.5, 2.0};
  CHECK(contains(invalid_message([&] {
                   forward_corrupt(gen, LogLinearSchedule<double>(), x0, t, 1, 1, exec);
                 }),
                 "t_per_row[1] = 2"));

  const StateDependentMaskingGenerator<double> sd(4);
  xt::xtensor<double, 1> ubar = {0.1, 0.2, -0.25, 0.4};
  CHECK(contains(invalid_message([&] { forward_corrupt(sd, x0, ubar, 1, 1, exec); }),
                 "ubar[2] = -0.25"));
}
