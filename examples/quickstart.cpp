// examples/quickstart.cpp: the usage example of README.md. The region between the
// two markers below is copied verbatim into the README; the CTest
// docs.readme_quickstart fails if they differ (cmake/CheckReadmeSnippet.cmake).
// [readme:begin]
#include <cmath>
#include <cstdio>
#include <vector>

#include <discdiff/core/random.hpp>
#include <discdiff/generator/roulette.hpp>
#include <discdiff/schedule/loglinear.hpp>

int main() {
  // N = 27 regular tokens ('a'..'z', ' ') plus MASK = 27. Roulette rate matrix:
  // mask at rate p_m = 0.95, resample uniformly among the 27 at rate 0.05.
  const discdiff::RouletteGenerator<double> gen(27, 0.95);
  const discdiff::RouletteLogLinearSchedule<double> sched(0.95);  // P(masked by t) = (1 - 1e-3) t

  // Column x of P_u = exp(u Q) in closed form, at total noise u = sigma_bar(t).
  const double t = 0.5, u = sched.sigma_bar(t);
  std::vector<double> p(gen.num_states());
  gen.transition_column(/*x=*/2, u, p.data());
  double total = 0;
  for (double v : p) total += v;
  std::printf("t = %.1f, u = %.4f: P(stay) = %.4f, P(mask) = %.4f, P(each other) = %.5f\n", t, u,
              p[2], p[gen.mask()], p[0]);

  // Forward sampling x_t ~ P_u[., x0]: a pure function of (seed, stream, index),
  // identical on every executor and thread count.
  const char* text = "hello world";
  for (int i = 0; text[i]; ++i) {
    const int x0 = text[i] == ' ' ? 26 : text[i] - 'a';
    discdiff::CounterRng rng(/*seed=*/42, /*stream=*/0, /*index=*/i);
    const int xt = gen.sample_forward(x0, u, rng);
    std::putchar(xt == gen.mask() ? '_' : xt == 26 ? ' ' : 'a' + xt);
  }
  std::putchar('\n');
  return std::fabs(total - 1) < 1e-12 ? 0 : 1;  // columns of P_u sum to 1
}
// [readme:end]
