// Host-side validation of the generator module: constructors and the checked API throw
// std::invalid_argument whose what() names the bad value.
#include <doctest/doctest.h>

#include <climits>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <discdiff/generator/dense.hpp>
#include <discdiff/generator/generators.hpp>

using namespace discdiff;

namespace {

// Runs f and requires std::invalid_argument whose message contains every needle.
template <class F>
void throws_naming(F f, std::initializer_list<std::string> needles) {
  try {
    f();
    FAIL("no exception thrown");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    for (const auto& nd : needles) CHECK_MESSAGE(what.find(nd) != std::string::npos, what);
  } catch (...) {
    FAIL("an exception other than std::invalid_argument");
  }
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("constructors reject N < 2 and N beyond the int token range") {
  for (long long n : {1LL, 0LL, -3LL}) {
    const std::string v = std::to_string(n);
    throws_naming([n] { UniformGenerator<double> g(n); }, {"UniformGenerator", "N = " + v});
    throws_naming([n] { AbsorbingGenerator<float> g(n); }, {"AbsorbingGenerator", "N = " + v});
    throws_naming([n] { RouletteGenerator<double> g(n, 0.5); }, {"RouletteGenerator", v});
    throws_naming([n] { StateDependentMaskingGenerator<double> g(n); }, {v});
  }
  throws_naming([] { AbsorbingGenerator<double> g(INT_MAX); }, {std::to_string(INT_MAX)});
  CHECK_NOTHROW(UniformGenerator<double>(2));
  CHECK_NOTHROW(RouletteGenerator<float>(50257, 0.95f));
}

TEST_CASE("RouletteGenerator rejects p_m outside [0, 1] and non-finite p_m") {
  throws_naming([] { RouletteGenerator<double> g(5, -0.1); }, {"p_m", "-0.1"});
  throws_naming([] { RouletteGenerator<double> g(5, 1.5); }, {"p_m", "1.5"});
  throws_naming([] { RouletteGenerator<double> g(5, kNaN); }, {"p_m", "nan"});
  throws_naming([] { RouletteGenerator<double> g(5, kInf); }, {"p_m", "inf"});
  throws_naming([] { RouletteGenerator<float> g(5, -0.1f); }, {"p_m", "-0.1"});
  throws_naming([] { RouletteGenerator<float> g(5, 1.5f); }, {"p_m", "1.5"});
  throws_naming([] { RouletteGenerator<float> g(5, std::nanf("")); }, {"p_m", "nan"});
  CHECK_NOTHROW(RouletteGenerator<double>(5, 0.0));
  CHECK_NOTHROW(RouletteGenerator<double>(5, 1.0));
}

TEST_CASE("checked API: token ids out of range are named") {
  auto run = [](const auto& g) {
    const int d = g.num_states();
    const std::string sd = std::to_string(d);
    CHECK_NOTHROW(check_token(g, d - 1));
    throws_naming([&] { check_token(g, -1); }, {"x = -1"});
    throws_naming([&] { check_token(g, d); }, {"x = " + sd});
    throws_naming([&] { checked_rate(g, -1, 0); }, {"checked_rate", "y = -1"});
    throws_naming([&] { checked_exit_rate(g, d); }, {"checked_exit_rate", "x = " + sd});
    throws_naming([&] { checked_transition(g, 0, d, 0.5); }, {"checked_transition", "x = " + sd});
    throws_naming([&] { checked_transition(g, -1, 0, 0.5); }, {"y = -1"});
    throws_naming([&] { checked_transition_column(g, -1, 0.5); }, {"x = -1"});
    throws_naming([&] { checked_transition_row(g, d, 0.5); }, {"y = " + sd});
    throws_naming([&] { checked_ratio(g, d, 0, 0, 0.5); }, {"checked_ratio", "x = " + sd});
    throws_naming([&] { checked_ratio(g, 0, -1, 0, 0.5); }, {"b = -1"});
    throws_naming([&] { checked_ratio(g, 0, 0, d, 0.5); }, {"a = " + sd});
    CounterRng rng(1, 2, 3);
    throws_naming([&] { checked_sample_forward(g, -1, 0.5, rng); }, {"x0 = -1"});
    throws_naming([&] { checked_sample_forward(g, d, 0.5, rng); }, {"x0 = " + sd});
  };
  run(UniformGenerator<double>(5));
  run(AbsorbingGenerator<float>(5));
  run(RouletteGenerator<double>(5, 0.9));
  run(make_dense(RouletteGenerator<double>(4, 0.5)));
  // A 2^40 id is reported whole, not truncated to int.
  throws_naming([] { check_token(UniformGenerator<double>(5), 1LL << 40); },
                {std::to_string(1LL << 40)});
}

TEST_CASE("checked API: non-finite and out-of-range noise are named") {
  auto run = [](const auto& g) {
    CounterRng rng(1, 2, 3);
    std::vector<typename std::decay_t<decltype(g)>::value_type> v(
        static_cast<std::size_t>(g.num_states()), 0.5);
    for (double u : {kNaN, kInf, -kInf}) {
      const std::string s = std::isnan(u) ? "nan" : "inf";
      throws_naming([&] { checked_transition(g, 0, 0, u); }, {"checked_transition", "u = ", s});
      throws_naming([&] { checked_transition_column(g, 0, u); }, {"u = ", s});
      throws_naming([&] { checked_transition_row(g, 0, u); }, {"u = ", s});
      throws_naming([&] { checked_apply_exp(g, u, v); }, {"checked_apply_exp", s});
      throws_naming([&] { checked_ratio(g, 0, 1, 0, u); }, {"checked_ratio", s});
      throws_naming([&] { checked_sample_forward(g, 0, u, rng); }, {"checked_sample_forward", s});
    }
    // Forward sampling needs u >= 0; the inverse has a finite range.
    throws_naming([&] { checked_sample_forward(g, 0, -0.25, rng); }, {"u = -0.25", ">= 0"});
    throws_naming([&] { checked_transition(g, 0, 0, -1e6); }, {"u = -1", "overflows"});
    CHECK_NOTHROW(checked_transition(g, 0, 0, -0.25));
    // apply_exp: length and entries of v.
    v.push_back(1.0);
    throws_naming([&] { checked_apply_exp(g, 0.5, v); }, {"v.size() = " + std::to_string(v.size())});
    v.pop_back();
    v[2] = static_cast<typename decltype(v)::value_type>(kNaN);
    throws_naming([&] { checked_apply_exp(g, 0.5, v); }, {"v[2] = nan"});
  };
  run(UniformGenerator<double>(5));
  run(AbsorbingGenerator<double>(5));
  run(RouletteGenerator<float>(5, 0.3f));
  // A finite double noise that overflows float is reported as passed, not as inf.
  throws_naming([] { checked_transition(RouletteGenerator<float>(5, 0.3f), 0, 0, 1e300); },
                {"u = 1", "e+300", "range"});
  run(make_dense(UniformGenerator<double>(5)));
}

TEST_CASE("checked API for state-dependent masking: ubar length and entries") {
  const StateDependentMaskingGenerator<double> g(4);
  const std::vector<double> ok = {0.1, 0.2, 0.3, 0.4};
  CHECK(checked_transition(g, 4, 1, ok) == doctest::Approx(-std::expm1(-0.2)));
  throws_naming([&] { checked_transition(g, 0, 0, std::vector<double>{0.1, 0.2}); },
                {"ubar.size() = 2", "N = 4"});
  std::vector<double> bad = ok;
  bad[2] = kNaN;
  throws_naming([&] { checked_transition_column(g, 0, bad); }, {"ubar[2] = nan"});
  bad[2] = -kInf;
  throws_naming([&] { checked_transition_row(g, 4, bad); }, {"ubar[2] = -inf"});
  bad[2] = -0.5;
  CHECK_NOTHROW(checked_transition(g, 0, 0, bad));  // the inverse is allowed
  CounterRng rng(1, 2, 3);
  throws_naming([&] { checked_sample_forward(g, 0, bad, rng); }, {"ubar[2] = -0.5"});
  throws_naming([&] { checked_sample_forward(g, 5, ok, rng); }, {"x0 = 5"});
  throws_naming([&] { checked_ratio(g, 0, 4, 1, ok); }, {"checked_ratio", "x = 0"});  // P[0,1] = 0
}

TEST_CASE("DenseGenerator validates Q") {
  using M = DenseGenerator<double>::Matrix;
  M q = make_dense(UniformGenerator<double>(3)).generator_matrix();
  CHECK_NOTHROW(DenseGenerator<double>{q});
  M neg = q;
  neg(1, 0) = -0.25;
  neg(0, 0) = -(neg(1, 0) + neg(2, 0));
  throws_naming([&] { DenseGenerator<double> d(neg); }, {"Q[1,0] = -0.25", "off-diagonal"});
  M sum(2, 2);
  sum << -1.0, 2.5, 1.0, -2.0;  // column 1 sums to 0.5
  throws_naming([&] { DenseGenerator<double> d(sum); }, {"column 1", "0.5"});
  M nan = q;
  nan(0, 2) = kNaN;
  throws_naming([&] { DenseGenerator<double> d(nan); }, {"Q[0,2] = nan"});
  throws_naming([] { DenseGenerator<double> d(M::Zero(3, 2)); }, {"Q.cols() = 2"});
  throws_naming([] { DenseGenerator<double> d(M::Zero(1, 1)); }, {"Q.rows() = 1"});
  throws_naming([&] { DenseGenerator<double> d(q, 1); }, {"mask = 1"});
  CHECK_NOTHROW(DenseGenerator<double>{q, 2});
}
