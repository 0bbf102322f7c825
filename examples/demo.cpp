// examples/demo.cpp: the job `make demo` runs (until the discdiff program's training demo
// replaces it). It shows the CTMC core end to end:
//   1. a table of closed-form transition probabilities P_u[y, x] = [exp(u Q)](y, x) for the
//      uniform, absorbing and roulette generators along the log-linear schedules, with the
//      largest deviation from Eigen-free invariants (columns sum to 1);
//   2. a batch of text forward-corrupted at several times t by the OpenMP executor, checked
//      bit for bit against the sequential executor (same seed: same sample).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <discdiff/exec/executor.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/ops/forward_corrupt_xt.hpp>
#include <discdiff/schedule/schedules.hpp>

namespace {

constexpr int kN = 27;  // text8 alphabet: 'a'..'z' -> 0..25, ' ' -> 26; MASK = 27

int encode(char c) { return c == ' ' ? 26 : c - 'a'; }
char decode(int x) { return x == kN ? '_' : x == 26 ? ' ' : static_cast<char>('a' + x); }

// One row of the table: P(stay), P(one given other token), P(MASK), column sum.
template <class Gen>
double row(const char* name, const Gen& gen, double t, double u) {
  std::vector<double> p(gen.num_states());
  gen.transition_column(/*x=*/0, u, p.data());
  double sum = 0;
  for (double v : p) sum += v;
  const double mask = gen.has_mask() ? p[gen.mask()] : 0.0;
  std::printf("  %-16s %6.3f %9.5f %11.3e %11.3e %11.3e\n", name, t, u, p[0], p[1], mask);
  return std::fabs(sum - 1);
}

}  // namespace

int main() {
  using namespace discdiff;
  const UniformGenerator<double> uniform(kN);
  const AbsorbingGenerator<double> absorbing(kN);
  const RouletteGenerator<double> roulette(kN, 0.95);
  const LogLinearSchedule<double> loglin;                  // S-LOGLIN, d = 1e-3
  const RouletteLogLinearSchedule<double> rou_sched(0.95);  // S-LOGLIN-ROU

  std::printf("discdiff demo: closed-form transition probabilities, N = %d (+MASK)\n", kN);
  std::printf("  %-16s %6s %9s %11s %11s %11s\n", "generator", "t", "sbar(t)", "P[x|x]",
              "P[y!=x|x]", "P[MASK|x]");
  double worst = 0;
  for (double t : {1e-3, 0.1, 0.5, 0.9, 1.0}) {
    worst = std::fmax(worst, row("uniform", uniform, t, loglin.sigma_bar(t)));
    worst = std::fmax(worst, row("absorbing", absorbing, t, loglin.sigma_bar(t)));
    worst = std::fmax(worst, row("roulette(0.95)", roulette, t, rou_sched.sigma_bar(t)));
  }
  std::printf("  largest |column sum - 1| = %.2e\n\n", worst);

  // A batch: one sentence per row, corrupted at increasing t.
  const std::string text = "the quick brown fox jumps over the lazy dog";
  const std::vector<double> times = {0.0, 0.25, 0.5, 0.75, 1.0};
  const std::size_t B = times.size(), L = text.size();
  xt::xtensor<int, 2> x0 = xt::xtensor<int, 2>::from_shape({B, L});
  xt::xtensor<double, 1> t = xt::xtensor<double, 1>::from_shape({B});
  for (std::size_t b = 0; b < B; ++b) {
    t(b) = times[b];
    for (std::size_t l = 0; l < L; ++l) x0(b, l) = encode(text[l]);
  }
  const std::uint64_t seed = 2024;
  bool identical = true;
  for (int which = 0; which < 2; ++which) {
    const char* name = which == 0 ? "absorbing, S-LOGLIN" : "roulette p_m=0.95, S-LOGLIN-ROU";
    const auto xt_omp =
        which == 0 ? forward_corrupt(absorbing, loglin, x0, t, seed, 0, OpenMPExecutor{})
                   : forward_corrupt(roulette, rou_sched, x0, t, seed, 0, OpenMPExecutor{});
    const auto xt_seq =
        which == 0 ? forward_corrupt(absorbing, loglin, x0, t, seed, 0, SequentialExecutor{})
                   : forward_corrupt(roulette, rou_sched, x0, t, seed, 0, SequentialExecutor{});
    identical = identical && (xt_omp == xt_seq);
    std::printf("forward corruption x_t ~ p_t|0(. | x_0), %s ('_' = MASK), seed %llu:\n", name,
                static_cast<unsigned long long>(seed));
    for (std::size_t b = 0; b < B; ++b) {
      std::string s;
      for (std::size_t l = 0; l < L; ++l) s += decode(xt_omp(b, l));
      std::printf("  t = %4.2f  %s\n", times[b], s.c_str());
    }
  }
  std::printf("\nOpenMP and sequential executors give %s samples for the same seed.\n",
              identical ? "bit-identical" : "DIFFERENT");
  return identical && worst < 1e-12 ? 0 : 1;
}
