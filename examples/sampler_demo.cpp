// sampler_demo: the samplers of discdiff/sampler on a tiny problem where the answer is known.
//
// A random data distribution over the 3^2 sequences of length 2 over 3 tokens is denoised by its
// exact posterior (ExactPosteriorDenoiser). Each sampler draws 10000 sequences; the demo prints
// the empirical distribution next to p_data and the total variation distance (the Monte Carlo
// noise level of TV with 10000 draws over 9 states is about 0.015). It then samples a larger batch
// with a synthetic denoiser on the sequential and OpenMP executors and checks that both give the
// same tokens (counter-based randomness). Runs in well under a second.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <discdiff/exec/executor.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>

using namespace discdiff;

namespace {

constexpr int kN = 3, kL = 2;
constexpr std::int64_t kDraws = 10000;

std::vector<double> empirical(const std::vector<int>& x, int radix) {
  std::vector<double> h(static_cast<std::size_t>(radix * radix), 0.0);
  for (std::size_t b = 0; b < x.size() / kL; ++b) h[static_cast<std::size_t>(x[2 * b] * radix + x[2 * b + 1])] += 1.0;
  for (double& v : h) v /= static_cast<double>(x.size() / kL);
  return h;
}

double tv_to_data(const std::vector<double>& q, int radix, const std::vector<double>& p) {
  double s = 0;
  for (int a = 0; a < radix; ++a)
    for (int b = 0; b < radix; ++b) {
      const double pd = (a < kN && b < kN) ? p[static_cast<std::size_t>(a * kN + b)] : 0.0;
      s += std::abs(q[static_cast<std::size_t>(a * radix + b)] - pd);
    }
  return 0.5 * s;
}

void report(const char* name, const std::vector<int>& x, int radix, const std::vector<double>& p,
            int nfe) {
  const auto q = empirical(x, radix);
  std::printf("%-36s calls %3d   TV(empirical, p_data) = %.4f\n", name, nfe, tv_to_data(q, radix, p));
}

}  // namespace

int main() {
  // p_data: a fixed random (correlated) distribution over {0,1,2}^2.
  std::vector<double> p(kN * kN);
  double z = 0;
  for (int k = 0; k < kN * kN; ++k) z += (p[static_cast<std::size_t>(k)] = 0.2 + uniform<double>(2024, 0, static_cast<std::uint64_t>(k)));
  for (double& v : p) v /= z;
  std::printf("p_data over (x0, x1):");
  for (double v : p) std::printf(" %.3f", v);
  std::printf("\n\n");

  const AbsorbingGenerator<double> absorbing(kN);
  const ExactPosteriorDenoiser<AbsorbingGenerator<double>> exact(absorbing, kL, p);
  const LogLinearSchedule<double> loglinear;
  const CosineSchedule<double> cosine;
  std::vector<int> x;

  SamplerOptions md4;
  md4.kind = SamplerKind::md4_ancestral;
  md4.steps = 64;
  md4.grid = GridKind::cosine;
  md4.final_step = FinalStep::sample;
  md4.seed = 1;
  auto st = sample(SequentialExecutor{}, absorbing, cosine, exact, md4, kDraws, kL, x);
  report("MD4 ancestral, cosine grid, 64", x, kN, p, st.nfe);

  md4.kind = SamplerKind::md4_cached;
  st = sample(SequentialExecutor{}, absorbing, cosine, exact, md4, kDraws, kL, x);
  report("MD4 cached ancestral, 64", x, kN, p, st.nfe);

  SamplerOptions tau;
  tau.kind = SamplerKind::analytic;
  tau.steps = 64;
  tau.final_step = FinalStep::sample;
  tau.seed = 2;
  st = sample(SequentialExecutor{}, absorbing, loglinear, exact, tau, kDraws, kL, x);
  report("analytic tau-leaping, absorbing, 64", x, kN, p, st.nfe);

  const UniformGenerator<double> uniform_gen(kN);
  const ExactPosteriorDenoiser<UniformGenerator<double>> exact_u(uniform_gen, kL, p);
  tau.kind = SamplerKind::euler;
  st = sample(SequentialExecutor{}, uniform_gen, loglinear, exact_u, tau, kDraws, kL, x);
  report("Euler tau-leaping, uniform, 64", x, kN, p, st.nfe);

  UniformizationOptions uo;
  uo.seed = 3;
  uo.t_min = 1e-3;
  uo.intervals = 50;
  const auto us = sample_uniformization(SequentialExecutor{}, absorbing, loglinear, exact, uo, kDraws, kL, x);
  // at t_min = 1e-3 a token is still masked with probability ~1e-3: count over D^2 states
  report("uniformization (exact), absorbing", x, kN + 1, p, us.rounds);
  std::printf("  uniformization: %.1f proposals and %.2f jumps per sequence, %lld bound violations\n",
              static_cast<double>(us.proposals) / kDraws, static_cast<double>(us.jumps) / kDraws,
              static_cast<long long>(us.violations));

  // Infilling: position 0 fixed to token 2.
  const Conditioning cond = infill_conditioning(kDraws, kL, {0}, {2});
  st = sample(SequentialExecutor{}, absorbing, cosine, exact, md4, kDraws, kL, x, &cond);
  std::vector<double> cnt(kN, 0.0);
  for (std::int64_t b = 0; b < kDraws; ++b) cnt[static_cast<std::size_t>(x[static_cast<std::size_t>(2 * b + 1)])] += 1.0 / kDraws;
  const double zc = p[6] + p[7] + p[8];
  std::printf("\ninfill x0 = 2: x1 frequencies %.3f %.3f %.3f, exact conditional %.3f %.3f %.3f\n",
              cnt[0], cnt[1], cnt[2], p[6] / zc, p[7] / zc, p[8] / zc);

  // Backends: a synthetic denoiser on a 32 x 128 batch, sequential vs OpenMP.
  const AbsorbingGenerator<float> big_gen(27);
  const SyntheticDenoiser<float> synth(27);
  const CosineSchedule<float> cos_f;
  SamplerOptions o;
  o.kind = SamplerKind::md4_ancestral;
  o.steps = 32;
  o.grid = GridKind::cosine;
  o.top_p = 0.9;
  o.final_step = FinalStep::argmax;
  o.seed = 4;
  std::vector<int> xs, xo;
  sample(SequentialExecutor{}, big_gen, cos_f, synth, o, 32, 128, xs);
  sample(OpenMPExecutor{}, big_gen, cos_f, synth, o, 32, 128, xo);
  const bool same = xs == xo;
  std::printf("\nsequential vs OpenMP (32 x 128 tokens, top-p 0.9): %s\n",
              same ? "bit-identical" : "DIFFERENT");
  return same ? 0 : 1;
}
