// Categorical sampling (inverse CDF and Gumbel-max) against exact probabilities:
// chi-squared goodness of fit with Boost.Math p-values, fixed seeds.
#include <doctest/doctest.h>

#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include <discdiff/core/random.hpp>

#include "tolerances.hpp"

using namespace discdiff;

namespace {
// Pearson chi-squared p-value of observed counts against probabilities p.
double chi2_pvalue(const std::vector<long>& counts, const std::vector<double>& p, long n) {
  double stat = 0;
  int dof = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      REQUIRE(counts[i] == 0);  // zero-probability categories are never drawn
      continue;
    }
    const double e = p[i] * n;
    stat += (counts[i] - e) * (counts[i] - e) / e;
    ++dof;
  }
  boost::math::chi_squared dist(dof);
  return boost::math::cdf(boost::math::complement(dist, stat));
}
}  // namespace

TEST_CASE_TEMPLATE("inverse-CDF and Gumbel-max categorical draws match the probabilities", T,
                   float, double) {
  // Unnormalized weights with zeros at the ends and inside.
  const std::vector<T> w = {T(0), T(3), T(0.5), T(0), T(1e-2), T(6), T(0.25), T(0)};
  double total = 0;
  for (T v : w) total += v;
  std::vector<double> p;
  for (T v : w) p.push_back(v / total);
  std::vector<T> logits;
  for (T v : w)
    logits.push_back(v > 0 ? std::log(v) + T(7) : -std::numeric_limits<T>::infinity());

  const long n = 400000;
  std::vector<long> c_icdf(w.size(), 0), c_gumbel(w.size(), 0), c_gumbel_p(w.size(), 0);
  for (long i = 0; i < n; ++i) {
    CounterRng r1(11, 0, std::uint64_t(i));
    const int a = sample_categorical(w.data(), int(w.size()), r1);
    REQUIRE(a >= 0);
    ++c_icdf[a];
    CounterRng r2(12, 0, std::uint64_t(i));
    const int b = sample_gumbel_max(logits.data(), int(logits.size()), r2);
    REQUIRE(b >= 0);
    ++c_gumbel[b];
    CounterRng r3(13, 0, std::uint64_t(i));
    const int c = sample_gumbel_max_probs(w.data(), int(w.size()), r3);
    REQUIRE(c >= 0);
    ++c_gumbel_p[c];
  }
  CHECK(chi2_pvalue(c_icdf, p, n) > test::chi2_min_pvalue);
  CHECK(chi2_pvalue(c_gumbel, p, n) > test::chi2_min_pvalue);
  CHECK(chi2_pvalue(c_gumbel_p, p, n) > test::chi2_min_pvalue);
}

TEST_CASE("inverse CDF edge cases") {
  const std::vector<double> w = {0.0, 2.0, 0.0, 1.0, 0.0};
  // u = 0 picks the first positive weight; u -> 1 the last positive weight.
  CHECK(categorical_inverse_cdf(w.data(), 5, 0.0) == 1);
  CHECK(categorical_inverse_cdf(w.data(), 5, std::nextafter(1.0, 0.0)) == 3);
  CHECK(categorical_inverse_cdf(w.data(), 5, 0.6) == 1);
  CHECK(categorical_inverse_cdf(w.data(), 5, 0.7) == 3);
  const std::vector<double> z = {0.0, 0.0};
  CHECK(categorical_inverse_cdf(z.data(), 2, 0.5) == -1);
  CounterRng rng(1, 1, 1);
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> l = {-inf, -inf};
  CHECK(sample_gumbel_max(l.data(), 2, rng) == -1);
}
