// discdiff/bound/exact_denoiser.hpp: denoisers for exact enumeration (spec/MATH.md 4.1, 7.1).
//
// A denoiser predicts the clean posterior f^i(h | x, u) ~ p_{0|u}(x_0^i = h | x) over the N
// regular tokens, for every state x and position i. In exact enumeration it may read the exact
// forward quantities at u (a ForwardSlice: p_u, the joints, the posterior), so the concept is
//
//   template <class T> void predict(const ForwardSlice<T>& slice, std::int64_t x, int i, T* f) const;
//
// which writes f[0..N) >= 0 summing to 1. A network-backed denoiser would decode x with
// slice.states->decode() and ignore the rest. Provided:
//
//   ExactDenoiser            f = p_{0|u} (the "exact denoiser" column of 7.2; scores are exact)
//   TiltedDenoiser<Noise>    f ~ p_{0|u}(h|x) exp(amplitude * noise(i, h, x)), i.e. the logits of
//                            the exact posterior plus a fixed perturbation (independent of u, so
//                            the integrands stay smooth in u). Zeros of the posterior stay zero.
//   SineNoise                noise = sin(1.3 + 2.1 i + 0.7 h + 0.37 x): the model of spec 7.1
//                            (with amplitude 0.6)
//   CounterNoise             noise = a standard normal from CounterRng(seed, stream, index(x,i,h))
//                            (Box-Muller on two uniforms): a reproducible random perturbation
//   SmoothedDenoiser         f = (1 - lambda) p_{0|u} + lambda/N (label smoothing towards uniform)
//   TemperedDenoiser         f ~ p_{0|u}^beta, beta in (0, 1] (an over-dispersed posterior)
//
// The last two are functions of the exact posterior alone, f = F(p_{0|u}(.|x)), with
// phi(p) = -sum_h p(h) log F(p)(h) concave in p (smoothed: each term -p log((1-lambda) p + lambda/N)
// has second derivative -(1-lambda)/(..) - (1-lambda) lambda/N/(..)^2 < 0; tempered with beta <= 1:
// -beta sum p log p + log sum p^beta, both concave). Under masking the posterior at a later time
// is a conditional expectation of the posterior at an earlier one, so by Jensen the expected
// masked cross-entropy per masked position is non-decreasing in t: the MD4 discrete-time ELBO
// then decreases in T towards the continuous one (exact_md4.hpp), as for the exact denoiser.
// A tilt (TiltedDenoiser) gives no such guarantee.
//
// Denoisers read the slice at the queried state x only (p_u(x), the joints J_i(x, .), P_u): the
// Monte Carlo adaptor ExactModel (exact_model.hpp) fills nothing else.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "exact_marginals.hpp"

namespace discdiff {
namespace exact {

/// f = the exact posterior p_{0|u}(x_0^i = . | x).
struct ExactDenoiser {
  static constexpr const char* name = "exact";
  template <class T>
  void predict(const ForwardSlice<T>& slice, std::int64_t x, int i, T* f) const {
    slice.posterior(x, i, f);
  }
};

/// The perturbation of spec 7.1: sin(1.3 + 2.1 i + 0.7 h + 0.37 idx(x)).
struct SineNoise {
  double operator()(int i, int h, std::int64_t x) const {
    return std::sin(1.3 + 2.1 * i + 0.7 * h + 0.37 * static_cast<double>(x));
  }
};

/// A fixed standard-normal perturbation per (x, i, h): element index (x << 20) | (i << 10) | h of
/// stream `stream` (requires i, h < 1024), two uniforms, Box-Muller cosine branch.
struct CounterNoise {
  std::uint64_t seed = 0;
  std::uint32_t stream = 0;
  double operator()(int i, int h, std::int64_t x) const {
    const std::uint64_t index = (static_cast<std::uint64_t>(x) << 20) |
                                (static_cast<std::uint64_t>(i) << 10) |
                                static_cast<std::uint64_t>(h);
    CounterRng rng(seed, stream, index);
    const double u1 = rng.uniform_open<double>();
    const double u2 = rng.uniform<double>();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * math::pi<double>() * u2);
  }
};

/// f ~ p_{0|u}(h | x) exp(amplitude * noise(i, h, x)), normalised over h < N (logits of the
/// exact posterior plus amplitude * noise). amplitude = 0 is the exact denoiser.
template <class Noise>
struct TiltedDenoiser {
  static constexpr const char* name = "tilted";
  Noise noise{};
  double amplitude = 0.0;

  template <class T>
  void predict(const ForwardSlice<T>& slice, std::int64_t x, int i, T* f) const {
    slice.posterior(x, i, f);
    T m = T(0);
    for (int h = 0; h < slice.n; ++h) {
      f[h] *= static_cast<T>(std::exp(amplitude * noise(i, h, x)));
      m += f[h];
    }
    for (int h = 0; h < slice.n; ++h) f[h] /= m;
  }
};

/// f = (1 - lambda) p_{0|u} + lambda/N, lambda in [0, 1] (lambda = 0: the exact denoiser).
struct SmoothedDenoiser {
  static constexpr const char* name = "smoothed";
  double lambda = 0.0;

  template <class T>
  void predict(const ForwardSlice<T>& slice, std::int64_t x, int i, T* f) const {
    slice.posterior(x, i, f);
    const T l = static_cast<T>(lambda), c = l / T(slice.n);
    for (int h = 0; h < slice.n; ++h) f[h] = (T(1) - l) * f[h] + c;
  }
};

/// f ~ p_{0|u}^beta normalised over h < N, beta in (0, 1] (beta = 1: the exact denoiser).
/// Zeros of the posterior stay zero.
struct TemperedDenoiser {
  static constexpr const char* name = "tempered";
  double beta = 1.0;

  template <class T>
  void predict(const ForwardSlice<T>& slice, std::int64_t x, int i, T* f) const {
    slice.posterior(x, i, f);
    T m = T(0);
    for (int h = 0; h < slice.n; ++h) {
      f[h] = f[h] > T(0) ? static_cast<T>(std::pow(f[h], static_cast<T>(beta))) : T(0);
      m += f[h];
    }
    for (int h = 0; h < slice.n; ++h) f[h] /= m;
  }
};

/// The imperfect denoiser of spec 7.1: TiltedDenoiser<SineNoise> with amplitude 0.6.
inline TiltedDenoiser<SineNoise> spec_reference_denoiser() { return {SineNoise{}, 0.6}; }

}  // namespace exact
}  // namespace discdiff
