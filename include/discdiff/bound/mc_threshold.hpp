// discdiff/bound/mc_threshold.hpp: the critical value of a family of Monte Carlo z-tests.
//
// A Monte Carlo estimate m_hat with standard error se is compared with its exact value m by
// z = (m_hat - m) / se. With se the cluster (ratio-estimator) standard error over K batches
// (monte_carlo.hpp), z is approximately Student-t with K - 1 degrees of freedom under the null
// (the standard error is itself estimated from K batch sums), not standard normal. When a run
// makes `rows` such tests, a fixed per-row threshold fails by chance somewhere in the run with
// a probability that grows with `rows`; this controls the family-wise error rate instead:
// Bonferroni, every row tested at two-sided level alpha / rows, so that
//   P(any row of the run fails | every estimator unbiased) <= alpha
// for any dependence between the rows (they share data draws: J2 = J1hat + EH has J1's z).
// The per-row critical value is the t quantile
//   c = t_{df}^{-1}(1 - alpha / (2 rows)),
// and a row passes when |z| <= c. df = infinity gives the normal quantile.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>

namespace discdiff {

/// Two-sided per-row critical value c = t_{df}^{-1}(1 - alpha / (2 rows)) of a family of `rows`
/// Monte Carlo z-tests at family-wise error rate `alpha` (Bonferroni); df = K - 1 for a cluster
/// standard error over K batches, +infinity for the normal quantile. Throws
/// std::invalid_argument unless 0 < alpha < 1, rows >= 1 and df > 0.
inline double family_wise_critical_value(double alpha, std::int64_t rows, double df) {
  if (!(alpha > 0.0 && alpha < 1.0))
    throw std::invalid_argument("discdiff::family_wise_critical_value: alpha = " +
                                std::to_string(alpha) + " (must be in (0, 1))");
  if (rows < 1)
    throw std::invalid_argument("discdiff::family_wise_critical_value: rows = " +
                                std::to_string(rows) + " (must be >= 1)");
  if (!(df > 0.0))
    throw std::invalid_argument("discdiff::family_wise_critical_value: df = " +
                                std::to_string(df) + " (must be > 0)");
  const double tail = alpha / (2.0 * static_cast<double>(rows));  // upper tail per row
  namespace bm = boost::math;
  if (std::isinf(df)) return bm::quantile(bm::complement(bm::normal_distribution<double>(), tail));
  return bm::quantile(bm::complement(bm::students_t_distribution<double>(df), tail));
}

/// Per-row two-sided level alpha / rows of family_wise_critical_value (Bonferroni).
inline double family_wise_row_level(double alpha, std::int64_t rows) {
  return alpha / static_cast<double>(rows);
}

}  // namespace discdiff
