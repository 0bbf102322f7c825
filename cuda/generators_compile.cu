// Compile check: every DD_HD extension point of the generators (docs/architecture.md, "Generator
// extension points"), called through its generic free function from a kernel run by
// ThrustExecutor with the CUDA device system, for the uniform, absorbing and roulette generators
// (float and double) and state-dependent masking. Nothing runs.
#include <cstdint>

#include <discdiff/bound/reference_terms.hpp>
#include <discdiff/exec/thrust.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/objective/sedd.hpp>
#include <discdiff/sampler/kernels.hpp>
#include <discdiff/sampler/uniformization.hpp>
#include <discdiff/score/probs_to_score.hpp>
using namespace discdiff;

template <class Gen>
struct ScalarExtensionKernel {
  using T = typename Gen::value_type;
  Gen gen;
  const T* f;
  T* out;
  int D;

  DD_HD void operator()(std::int64_t i) const {
    const int x = static_cast<int>(i % D);
    const T u = T(0.5);
    T* s = out + i * D;
    probs_to_score(gen, f, D, x, u, s);
    const SeddCoeffs<T> c = sedd_coeffs(gen, x, 0, u);
    const TauCoefficients k = tau_leaping_coefficients(gen, TauStep{}, x, 0.1, 0.9);
    const PriorReference ref = default_prior_reference(gen);
    s[0] += c.q + c.r_other + c.r_a + sedd_log_score_offset(gen, x, u) +
            prior_kl_per_token(gen, u, ref) + reference_cross_entropy_per_token(gen, u, ref) +
            exit_rate_integral(gen, 3, u, T(2) * u) + conditional_entropy_per_token(gen, u) +
            T(k.c0 + k.c1 + k.wx + gen.uniformization_rate_bound(0.5) +
              gen.pbrc_exit(3, 1e-3, 0.5) + gen.pbrc_reference_ce(3)) +
            T(gen.pbrc_exit_per_sample() ? 1 : 0) + T(Gen::pure_masking ? 1 : 0);
  }
};

template <class T>
struct TokenExtensionKernel {
  StateDependentMaskingGenerator<T> gen;
  const T* f;
  const T* ubar;
  T* out;
  int D;

  DD_HD void operator()(std::int64_t i) const {
    probs_to_score(gen, f, D, static_cast<int>(i % D), ubar, out + i * D);
  }
};

template <class T>
void run(const T* f, const T* ubar, T* out) {
  ThrustExecutor ex;
  ex.for_each(0, ScalarExtensionKernel<UniformGenerator<T>>{UniformGenerator<T>(5), f, out, 5});
  ex.for_each(0, ScalarExtensionKernel<AbsorbingGenerator<T>>{AbsorbingGenerator<T>(5), f, out, 6});
  ex.for_each(0, ScalarExtensionKernel<RouletteGenerator<T>>{RouletteGenerator<T>(5, T(0.9)), f, out, 6});
  ex.for_each(0, TokenExtensionKernel<T>{StateDependentMaskingGenerator<T>(5), f, ubar, out, 6});
}
template void run<float>(const float*, const float*, float*);
template void run<double>(const double*, const double*, double*);
