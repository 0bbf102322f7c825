// The family-wise critical value of Monte Carlo z-tests (include/discdiff/bound/mc_threshold.hpp,
// used by `discdiff verify`): against closed-form and tabulated quantiles of Student's t and the
// normal distribution, its Bonferroni composition, and by simulation: a family of t-tests on
// cluster standard errors (BatchMeanAccumulator) keeps its family-wise error rate where the
// normal quantile does not, and a planted bias of a few standard errors is caught.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include <discdiff/bound/mc_threshold.hpp>
#include <discdiff/bound/monte_carlo.hpp>
#include <discdiff/core/random.hpp>

using namespace discdiff;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kInf = std::numeric_limits<double>::infinity();

bool close_rel(double a, double b, double rel) { return std::abs(a - b) <= rel * std::abs(b); }

// Upper-tail quantiles in closed form: t_1 is Cauchy, t_2 has F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
double t1_upper(double q) { return std::tan(kPi * (0.5 - q)); }
double t2_upper(double q) { return (1.0 - 2.0 * q) / std::sqrt(2.0 * q * (1.0 - q)); }

// One standard normal draw (Box-Muller) from a counter stream.
double normal_draw(CounterRng& rng) {
  const double u1 = rng.uniform_open<double>(), u2 = rng.uniform<double>();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

// z of one Monte Carlo row: K batches of one N(mu, 1) draw each, cluster standard error
// (monte_carlo.hpp), tested against 0: z ~ t_{K-1} + mu sqrt(K) under the planted bias mu.
double simulated_z(std::uint64_t seed, std::uint64_t row, int K, double mu) {
  CounterRng rng(seed, 0x7a7a0001u, row);
  BatchMeanAccumulator acc;
  for (int k = 0; k < K; ++k) acc.add_batch(mu + normal_draw(rng), 1);
  const McEstimate e = acc.estimate(1);
  return e.mean / e.std_error;
}

}  // namespace

TEST_CASE("family_wise_critical_value: closed-form t_1 and t_2 quantiles, Bonferroni split") {
  for (double alpha : {0.05, 0.01, 1e-3}) {
    for (std::int64_t m : {1, 7, 306, 10000}) {
      const double q = alpha / (2.0 * static_cast<double>(m));
      CHECK(close_rel(family_wise_critical_value(alpha, m, 1.0), t1_upper(q), 1e-9));
      CHECK(close_rel(family_wise_critical_value(alpha, m, 2.0), t2_upper(q), 1e-9));
    }
  }
  CHECK(close_rel(family_wise_critical_value(0.05, 1, 1.0), 12.706204736174698, 1e-12));
  CHECK(family_wise_row_level(1e-3, 250) == doctest::Approx(4e-6));
}

TEST_CASE("family_wise_critical_value: tabulated t and normal quantiles") {
  // Student t (two-sided 95% and 99%) and the standard normal (df = infinity).
  CHECK(close_rel(family_wise_critical_value(0.05, 1, 10.0), 2.2281388519649385, 1e-8));
  CHECK(close_rel(family_wise_critical_value(0.01, 1, 10.0), 3.1692726726169518, 1e-8));
  CHECK(close_rel(family_wise_critical_value(0.05, 1, 30.0), 2.0422724563012373, 1e-8));
  CHECK(close_rel(family_wise_critical_value(0.05, 1, 60.0), 2.0002978220142609, 1e-8));
  CHECK(close_rel(family_wise_critical_value(0.05, 1, kInf), 1.9599639845400545, 1e-10));
  CHECK(close_rel(family_wise_critical_value(0.05, 5, kInf), 2.5758293035489004, 1e-10));
  // Upper tails 1e-6 and 1e-7 (Bonferroni: 2e-3 over 1000 rows, 1e-3 over 5000 rows).
  CHECK(close_rel(family_wise_critical_value(2e-3, 1000, kInf), 4.7534243088228989, 1e-9));
  CHECK(close_rel(family_wise_critical_value(1e-3, 5000, kInf), 5.1993375821928165, 1e-9));
  // t tends to the normal; more rows or fewer degrees of freedom raise the threshold.
  CHECK(close_rel(family_wise_critical_value(1e-3, 306, 1e9), family_wise_critical_value(1e-3, 306, kInf), 1e-6));
  CHECK(family_wise_critical_value(1e-3, 306, 63.0) > family_wise_critical_value(1e-3, 306, kInf));
  CHECK(family_wise_critical_value(1e-3, 306, 7.0) > family_wise_critical_value(1e-3, 306, 63.0));
  CHECK(family_wise_critical_value(1e-3, 307, 63.0) > family_wise_critical_value(1e-3, 306, 63.0));
  // The shape of `discdiff verify`'s default set (about 300 rows, 64 batches): a bias of 6 SE
  // lies beyond the threshold.
  CHECK(family_wise_critical_value(1e-3, 306, 63.0) < 5.5);
}

TEST_CASE("family_wise_critical_value: input validation") {
  CHECK_THROWS_AS(family_wise_critical_value(0.0, 10, 63.0), std::invalid_argument);
  CHECK_THROWS_AS(family_wise_critical_value(1.0, 10, 63.0), std::invalid_argument);
  CHECK_THROWS_AS(family_wise_critical_value(std::nan(""), 10, 63.0), std::invalid_argument);
  CHECK_THROWS_AS(family_wise_critical_value(0.01, 0, 63.0), std::invalid_argument);
  CHECK_THROWS_AS(family_wise_critical_value(0.01, 10, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(family_wise_critical_value(0.01, 10, std::nan("")), std::invalid_argument);
}

TEST_CASE("family-wise error rate by simulation: t holds it, the normal quantile does not") {
  // 2000 runs of m = 50 rows, each a cluster-SE z over K = 8 batches (7 df), alpha = 0.1.
  // Bonferroni with independent rows: rate 1 - (1 - alpha/m)^m = 0.0952 (binomial SD over
  // 2000 runs 0.0066); with the normal quantile each row fails at P(|t_7| > 3.09) = 0.0175, a
  // family-wise rate near 0.59.
  const int runs = 2000, m = 50, K = 8;
  const double alpha = 0.1;
  const double c_t = family_wise_critical_value(alpha, m, K - 1.0);
  const double c_n = family_wise_critical_value(alpha, m, kInf);
  int fail_t = 0, fail_n = 0;
  for (int r = 0; r < runs; ++r) {
    bool any_t = false, any_n = false;
    for (int i = 0; i < m; ++i) {
      const double z = std::abs(simulated_z(20240917u, static_cast<std::uint64_t>(r) * m + i, K, 0.0));
      any_t = any_t || z > c_t;
      any_n = any_n || z > c_n;
    }
    fail_t += any_t;
    fail_n += any_n;
  }
  const double rate_t = static_cast<double>(fail_t) / runs, rate_n = static_cast<double>(fail_n) / runs;
  MESSAGE("family-wise false-alarm rate: t " << rate_t << " (c = " << c_t << "), normal " << rate_n
                                             << " (c = " << c_n << ")");
  CHECK(rate_t <= alpha + 4 * 0.0066);
  CHECK(rate_t >= 0.0952 - 4 * 0.0066);
  CHECK(rate_n > 0.4);
}

TEST_CASE("a planted bias of 6 standard errors in one row of a 306-row run is caught") {
  // K = 64 batches (63 df), alpha = 1e-3: c is about 5.1, so a 6-SE bias on one row fails it
  // with probability about 0.8; without the bias a row fails at 1e-3/306.
  const int K = 64, trials = 400;
  const double c = family_wise_critical_value(1e-3, 306, K - 1.0);
  const double mu = 6.0 / std::sqrt(static_cast<double>(K));  // 6 true standard errors
  int caught = 0, false_alarm = 0;
  for (int r = 0; r < trials; ++r) {
    caught += std::abs(simulated_z(77u, static_cast<std::uint64_t>(r), K, mu)) > c;
    false_alarm += std::abs(simulated_z(78u, static_cast<std::uint64_t>(r), K, 0.0)) > c;
  }
  MESSAGE("c = " << c << ": 6-SE bias caught in " << caught << " of " << trials << ", unbiased rows over c: "
                 << false_alarm);
  CHECK(caught >= 0.65 * trials);
  CHECK(false_alarm <= 1);
}
