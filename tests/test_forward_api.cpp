// The xtensor forward-corruption API (ops/forward_corrupt_xt.hpp): equals the raw driver,
// the schedule overloads compute u = sigma_bar(t), and bad inputs throw
// std::invalid_argument whose message names the bad value (and its position).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <discdiff/exec/executor.hpp>
#include <discdiff/generator/absorbing.hpp>
#include <discdiff/generator/roulette.hpp>
#include <discdiff/generator/state_dependent.hpp>
#include <discdiff/generator/uniform.hpp>
#include <discdiff/ops/forward_corrupt_xt.hpp>
#include <discdiff/schedule/loglinear.hpp>
#include <discdiff/schedule/per_token_polynomial.hpp>

using namespace discdiff;

namespace {

xt::xtensor<int, 2> batch(std::size_t B, std::size_t L, int num_states) {
  xt::xtensor<int, 2> x = xt::xtensor<int, 2>::from_shape({B, L});
  for (std::size_t i = 0; i < B * L; ++i) x.data()[i] = static_cast<int>((i * 7 + 3) % num_states);
  return x;
}

/// The message of the std::invalid_argument thrown by f ("" if none).
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

TEST_CASE("forward_corrupt (xtensor) equals the raw driver on every host executor") {
  const RouletteGenerator<float> gen(27, 0.95f);
  const auto x0 = batch(8, 33, 28);
  xt::xtensor<float, 1> u = {0.f, 0.01f, 0.1f, 0.5f, 1.f, 2.f, 4.f, 30.f};
  const auto a = forward_corrupt(gen, x0, u, 5, 6);
  std::vector<int> ref(8 * 33);
  forward_corrupt_raw(SequentialExecutor{}, gen, x0.data(), 8, 33, u.data(), ref.data(), 5, 6);
  CHECK(std::vector<int>(a.begin(), a.end()) == ref);
  CHECK(a.shape()[0] == 8);
  CHECK(a.shape()[1] == 33);
  CHECK(forward_corrupt(gen, x0, u, 5, 6, OpenMPExecutor{2}) == a);
  CHECK(forward_corrupt(gen, x0, u, 5, 6, OpenMPExecutor{7}) == a);
  CHECK(forward_corrupt(gen, x0, u, 5, 7) != a);
  // u = 0 keeps row 0.
  CHECK(xt::view(a, 0, xt::all()) == xt::view(x0, 0, xt::all()));
  // Empty batches.
  const xt::xtensor<int, 2> empty = xt::xtensor<int, 2>::from_shape({0, 5});
  CHECK(forward_corrupt(gen, empty, xt::xtensor<float, 1>::from_shape({0}), 1, 1).size() == 0);
}

TEST_CASE("forward_corrupt with a schedule uses u = sigma_bar(t)") {
  const AbsorbingGenerator<double> gen(27);
  const LogLinearSchedule<double> sched;
  const auto x0 = batch(4, 100, 27);
  xt::xtensor<double, 1> t = {0.0, 0.25, 0.5, 1.0};
  xt::xtensor<double, 1> u = xt::xtensor<double, 1>::from_shape({4});
  for (std::size_t b = 0; b < 4; ++b) u(b) = sched.sigma_bar(t(b));
  CHECK(forward_corrupt(gen, sched, x0, t, 9, 1) == forward_corrupt(gen, x0, u, 9, 1));
  CHECK(forward_corrupt(gen, sched, x0, t, 9, 1, OpenMPExecutor{2}) ==
        forward_corrupt(gen, x0, u, 9, 1));
}

TEST_CASE("forward_corrupt for state-dependent masking (shared, per-row, schedule)") {
  const int N = 5;
  const StateDependentMaskingGenerator<double> gen(N);
  const auto x0 = batch(3, 50, N + 1);
  xt::xtensor<double, 1> ubar = {0.1, 0.2, 0.3, 0.4, 5.0};
  xt::xtensor<double, 2> table = xt::xtensor<double, 2>::from_shape({3, 5});
  for (std::size_t b = 0; b < 3; ++b)
    for (std::size_t v = 0; v < 5; ++v) table(b, v) = ubar(v);
  const auto a = forward_corrupt(gen, x0, ubar, 3, 4);
  CHECK(forward_corrupt(gen, x0, table, 3, 4) == a);
  CHECK(forward_corrupt(gen, x0, ubar, 3, 4, OpenMPExecutor{2}) == a);

  const PerTokenPolynomialSchedule<double> sched(N);
  xt::xtensor<double, 1> t = {0.1, 0.5, 0.9};
  for (std::size_t b = 0; b < 3; ++b) sched.total_noise(t(b), &table(b, 0));
  CHECK(forward_corrupt(gen, sched, x0, t, 3, 4) == forward_corrupt(gen, x0, table, 3, 4));
  CHECK(forward_corrupt(gen, sched.view(), x0, t, 3, 4) == forward_corrupt(gen, x0, table, 3, 4));
}

TEST_CASE("forward_corrupt rejects bad inputs, naming the value") {
  const UniformGenerator<float> uni(5);
  const AbsorbingGenerator<float> abs(5);
  const auto x0 = batch(2, 4, 5);
  xt::xtensor<float, 1> u = {0.5f, 1.0f};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();

  // Shape mismatch.
  xt::xtensor<float, 1> u3 = {0.5f, 1.0f, 2.0f};
  std::string m = invalid_message([&] { forward_corrupt(uni, x0, u3, 1, 1); });
  CHECK(contains(m, "u_per_row.size() = 3"));
  CHECK(contains(m, "B = 2"));

  // Token id out of range: the id and its position.
  auto bad = x0;
  bad(1, 2) = 5;  // MASK id of absorbing, out of range for uniform (D = 5)
  m = invalid_message([&] { forward_corrupt(uni, bad, u, 1, 1); });
  CHECK(contains(m, "x0[1,2] = 5"));
  CHECK_NOTHROW(forward_corrupt(abs, bad, u, 1, 1));  // D = 6 for absorbing
  bad(0, 3) = -1;
  m = invalid_message([&] { forward_corrupt(abs, bad, u, 1, 1); });
  CHECK(contains(m, "x0[0,3] = -1"));
  bad(0, 3) = 6;
  CHECK(contains(invalid_message([&] { forward_corrupt(abs, bad, u, 1, 1); }), "x0[0,3] = 6"));

  // Non-finite or negative noise.
  for (float v : {nan, inf, -inf, -0.25f}) {
    xt::xtensor<float, 1> ub = {0.5f, v};
    m = invalid_message([&] { forward_corrupt(uni, x0, ub, 1, 1); });
    CAPTURE(m);
    CHECK(contains(m, "u_per_row[1] = "));
    CHECK(contains(m, v == -0.25f ? std::string("-0.25") : std::string(v != v ? "nan" : "inf")));
  }

  // Times outside [0, 1].
  const LogLinearSchedule<float> sched;
  for (float t : {-0.1f, 1.5f, nan}) {
    xt::xtensor<float, 1> tt = {0.5f, t};
    m = invalid_message([&] { forward_corrupt(uni, sched, x0, tt, 1, 1); });
    CAPTURE(m);
    CHECK(contains(m, "t_per_row[1] = "));
  }
  xt::xtensor<float, 1> t1 = {0.5f};
  CHECK(contains(invalid_message([&] { forward_corrupt(uni, sched, x0, t1, 1, 1); }),
                 "t_per_row.size() = 1"));
}

TEST_CASE("forward_corrupt (state-dependent) rejects bad ubar, naming the value") {
  const StateDependentMaskingGenerator<double> gen(3);
  const auto x0 = batch(2, 4, 4);
  xt::xtensor<double, 1> ubar4 = {0.1, 0.2, 0.3, 0.4};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, x0, ubar4, 1, 1); }),
                 "ubar.size() = 4"));
  xt::xtensor<double, 1> neg = {0.1, -2.5, 0.3};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, x0, neg, 1, 1); }),
                 "ubar[1] = -2.5"));
  xt::xtensor<double, 2> table = {{0.1, 0.2, 0.3}, {0.1, 0.2, std::nan("")}};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, x0, table, 1, 1); }),
                 "ubar_per_row[1,2] = nan"));
  xt::xtensor<double, 2> wrong = {{0.1, 0.2, 0.3}};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, x0, wrong, 1, 1); }),
                 "ubar_per_row.shape() = 1 x 3"));
  auto bad = x0;
  bad(1, 1) = 4;
  xt::xtensor<double, 1> ok = {0.1, 0.2, 0.3};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, bad, ok, 1, 1); }), "x0[1,1] = 4"));
  const PerTokenPolynomialSchedule<double> sched4(4);
  xt::xtensor<double, 1> t = {0.5, 0.5};
  CHECK(contains(invalid_message([&] { forward_corrupt(gen, sched4, x0, t, 1, 1); }),
                 "sched.num_regular() = 4"));
}
