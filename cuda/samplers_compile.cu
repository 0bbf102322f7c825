// Compile check: every sampler step kernel (sampler/kernels.hpp, sampler/uniformization.hpp)
// instantiated on ThrustExecutor with the CUDA device system (float), and the whole drivers
// (sample, sample_genmd4, sample_uniformization, sample_semi_autoregressive) and the Monte Carlo
// estimators (estimate_score_bounds, estimate_md4_elbo) with a model in device memory
// (SyntheticDenoiser on the same executor): the one model interface on the GPU. Nothing runs.
#include <discdiff/bound/monte_carlo.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/schedule/schedules.hpp>
#include <discdiff/exec/thrust.hpp>
using namespace discdiff;
void discdiff_cuda_sampler_compile_check() {
  ThrustExecutor ex;
  int* x = nullptr; float* z = nullptr; int* out = nullptr; float* scratch = nullptr;
  ex.for_each(0, Md4AncestralKernel<float>{x, z, 27, 27, 0.5, 0.9, 5, scratch, out, 1, 2});
  ex.for_each(0, Md4FinalKernel<float>{x, z, 27, 27, false, 0.9, 5, scratch, out, 1, 2});
  ex.for_each(0, GenMd4Kernel<float>{x, z, 27, 27, nullptr, nullptr, out, 1, 2});
  TauStep st;
  ex.for_each(0, TauLeapingKernel<UniformGenerator<float>, float>{UniformGenerator<float>(27), x, z, 27, st, false, false, out, 1, 2});
  ex.for_each(0, TauLeapingKernel<AbsorbingGenerator<float>, float>{AbsorbingGenerator<float>(27), x, z, 28, st, false, false, out, 1, 2});
  ex.for_each(0, TauLeapingKernel<RouletteGenerator<float>, float>{RouletteGenerator<float>(27, 0.9f), x, z, 28, st, false, false, out, 1, 2});
  ex.for_each(0, TauLeapingScoreKernel<RouletteGenerator<float>, float>{RouletteGenerator<float>(27, 0.9f), x, z, 28, st, TauScoreFactors{}, false, false, out, 1, 2});
  ex.for_each(0, PriorKernel<AbsorbingGenerator<float>>{AbsorbingGenerator<float>(27), nullptr, nullptr, x, 1, 0});
  ex.for_each(0, ProjectKernel{nullptr, nullptr, out});
  ex.for_each(0, detail::smp::UniformizationProposeKernel<LogLinearSchedule<float>>{LogLinearSchedule<float>(), nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 1});
  ex.for_each(0, detail::smp::UniformizationAcceptKernel<UniformGenerator<float>, float>{UniformGenerator<float>(27), nullptr, z, 27, 4, nullptr, nullptr, nullptr, x, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 1});

  static_assert(std::is_same<ThrustExecutor::memory_space, DeviceSpace>::value,
                "the CUDA build's ThrustExecutor runs on device memory");
}

/// The drivers and estimators on the GPU (instantiation only; called by nothing).
void discdiff_cuda_sampler_driver_compile_check() {
  ThrustExecutor ex;
  const SyntheticDenoiser<float, ThrustExecutor> den(27, 2.0, false, 7, ex);
  const SyntheticDenoiser<float, ThrustExecutor> den_d(28, 2.0, true, 7, ex);
  const SyntheticDenoiser<float, ThrustExecutor, ModelOutput::log_scores> scores(28, 1.0, true, 7, ex);
  const AbsorbingGenerator<float> ab(27);
  const RouletteGenerator<float> ro(27, 0.9f);
  const CosineSchedule<float> cos_s;
  const RouletteLogLinearSchedule<float> rlog(0.9f);
  SamplerOptions o;
  std::vector<int> x;
  const Conditioning c = prefix_conditioning(2, 8, {1});
  sample(ex, ab, cos_s, den, o, 2, 8, x, &c);
  sample(ex, ro, rlog, scores, o, 2, 8, x);
  sample_semi_autoregressive(ex, ab, cos_s, den, o, 2, 8, {1}, 4, 2, x);
  const PerTokenPolynomialSchedule<float> ps(27);
  sample_genmd4(ex, StateDependentMaskingGenerator<float>(27), ps, den, o, 2, 8, x);
  UniformizationOptions uo;
  sample_uniformization(ex, ro, rlog, den, uo, 2, 8, x);
  const std::vector<int> x0(16, 1);
  ScoreBoundOptions so;
  estimate_score_bounds(ro, rlog, den, x0, 8, so, ex);
  so.output = ModelOutput::log_scores;
  estimate_score_bounds(ro, rlog, scores, x0, 8, so, ex);
  Md4ElboOptions mo;
  estimate_md4_elbo(ab, cos_s, den, x0, 8, mo, ex);
  (void)den_d;
}
