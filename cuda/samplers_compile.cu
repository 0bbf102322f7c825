// Compile check: every sampler step kernel (sampler/kernels.hpp, sampler/uniformization.hpp)
// instantiated on ThrustExecutor with the CUDA device system (float). Nothing runs.
#include <discdiff/sampler/kernels.hpp>
#include <discdiff/sampler/uniformization.hpp>
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

}
