// Compile check: every objective's batch driver instantiated with ThrustExecutor under nvcc
// (CUDA device system), float and double.
#include <discdiff/exec/thrust.hpp>
#include <discdiff/generator/absorbing.hpp>
#include <discdiff/generator/roulette.hpp>
#include <discdiff/generator/uniform.hpp>
#include <discdiff/objective/objectives.hpp>
#include <discdiff/score/probs_to_score.hpp>
using namespace discdiff;
template <class T>
struct ScoreKernel {
  RouletteGenerator<T> gen; const T* z; T* s; int D;
  DD_HD void operator()(std::int64_t i) const { logits_to_score(gen, z + i * D, D, int(i % D), T(0.5), s + i * D); }
};
template <class T>
void run(LossBatch<T> b, GenMd4Batch<T> g, const T* u, const T* sig, const T* w, PerTokenPolynomialView<T> v) {
  ThrustExecutor ex;
  sedd_loss_raw(ex, RouletteGenerator<T>(5, T(0.9)), b, u, sig);
  sedd_loss_raw(ex, UniformGenerator<T>(5), b, u, sig);
  sedd_loss_raw(ex, AbsorbingGenerator<T>(5), b, u, sig);
  cedd_loss_raw(ex, b, w, 5, LossPositions::all);
  md4_loss_raw(ex, b, w, 5, T(0));
  genmd4_loss_raw(ex, v, g);
  ex.for_each(3, ScoreKernel<T>{RouletteGenerator<T>(5, T(0.9)), b.logits, b.grad, 6});
}
template void run<float>(LossBatch<float>, GenMd4Batch<float>, const float*, const float*, const float*, PerTokenPolynomialView<float>);
template void run<double>(LossBatch<double>, GenMd4Batch<double>, const double*, const double*, const double*, PerTokenPolynomialView<double>);
