// examples/consumer/main.cpp: a program built against an *installed* discdiff
// (find_package(discdiff CONFIG REQUIRED)); it exits non-zero if anything is off.
#include <cmath>
#include <cstdio>

#include <discdiff/core/config.hpp>
#include <discdiff/core/random.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/schedule/loglinear.hpp>

int main() {
  static_assert(DISCDIFF_VERSION_MAJOR == 0, "unexpected discdiff major version");
  int failures = 0;

  // A schedule: sbar(t) = -log1p(-(1 - d) t), alpha = exp(-sbar).
  const discdiff::LogLinearSchedule<double> schedule(1e-3);
  for (double t : {0.1, 0.5, 0.9}) {
    const double sbar = schedule.sigma_bar(t);
    const double expected = -std::log1p(-(1.0 - 1e-3) * t);
    if (!(std::fabs(sbar - expected) <= 1e-12 * expected)) {
      std::printf("sigma_bar(%g) = %.17g, expected %.17g\n", t, sbar, expected);
      ++failures;
    }
  }

  // A generator: every column of P_u = exp(u Q) is a probability vector.
  const discdiff::RouletteGenerator<double> gen(8, 0.5);
  double column[9];
  gen.transition_column(3, schedule.sigma_bar(0.5), column);
  double total = 0;
  for (double p : column) total += p;
  if (!(std::fabs(total - 1.0) <= 1e-12)) {
    std::printf("column sum %.17g\n", total);
    ++failures;
  }

  // Counter-based randomness: a pure function of (seed, stream, index).
  discdiff::CounterRng a(42, 7, 1000), b(42, 7, 1000);
  for (int i = 0; i < 16; ++i) {
    if (a.uniform<double>() != b.uniform<double>()) ++failures;
  }
  const double weights[4] = {0.1, 0.2, 0.3, 0.4};
  discdiff::CounterRng rng(42, 0, 0);
  const int k = discdiff::sample_categorical(weights, 4, rng);
  if (k < 0 || k >= 4) ++failures;
  const int xt = gen.sample_forward(3, schedule.sigma_bar(0.5), rng);
  if (xt < 0 || xt >= gen.num_states()) ++failures;

  std::printf("discdiff %d.%d.%d consumer: %s (%s, sbar(0.5) = %.6f, draw %d)\n",
              DISCDIFF_VERSION_MAJOR, DISCDIFF_VERSION_MINOR, DISCDIFF_VERSION_PATCH,
              failures == 0 ? "OK" : "FAILED", discdiff::LogLinearSchedule<double>::name,
              schedule.sigma_bar(0.5), k);
  return failures == 0 ? 0 : 1;
}
