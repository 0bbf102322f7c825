// discdiff/bound/time_sampling.hpp: diffusion-time draws for a batch of B sequences
// (spec/MATH.md 8.1), from the Philox counter RNG (a pure function of seed, stream and batch).
//
//   iid          tau_b ~ U[0,1) independently:      tau_b = U(seed, stream, batch * B + b)
//   antithetic   the shifted lattice (MD4 `antithetic_time_sampling`, VDM): one u ~ U[0,1) per
//                batch, tau_b = (u + b/B) mod 1,    u = U(seed, stream, batch)
//   stratified   MDLM's low-discrepancy sampler:  tau_b = (b + U_b)/B, U_b = U(seed, stream, batch * B + b)
//
// Each tau_b is exactly U[0,1) marginally, so (1/B) sum_b g(tau_b) is unbiased for int_0^1 g; the
// lattice and stratified draws are negatively correlated within a batch (lower variance for
// smooth g), so a standard error must be computed from batch means, never from the B draws of
// one batch as if they were independent (bound/monte_carlo.hpp does this).
//
// map_unit_time(tau, t0, t1) = t0 + (t1 - t0) tau, the map to [t0, t1) whose Jacobian (t1 - t0)
// the estimators multiply by (the public codes omit it; spec 2.1, 13.9). A draw that lands on
// t = 0 exactly (tau = 0 with t0 = 0; probability ~ 2^-53 per draw) is moved to
// (t1 - t0) 2^-54, half a lattice step of the generator, since the ELBO weights are singular or
// infinite at t = 0 (spec 11).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "../core/config.hpp"
#include "../core/random.hpp"

namespace discdiff {

/// The three time-sampling schemes of spec 8.1.
enum class TimeSampling {
  iid,         ///< independent U[0,1)
  antithetic,  ///< shifted lattice (u + b/B) mod 1 (MD4 default)
  stratified   ///< (b + U_b)/B (MDLM default)
};

inline const char* time_sampling_name(TimeSampling s) {
  switch (s) {
    case TimeSampling::iid: return "iid";
    case TimeSampling::antithetic: return "antithetic";
    case TimeSampling::stratified: return "stratified";
  }
  return "?";
}

/// tau[0..B) in [0,1) for batch number `batch` (see the file comment). B >= 1.
template <class T>
DD_HD void sample_unit_times(TimeSampling scheme, std::uint64_t seed, std::uint32_t stream,
                             std::uint64_t batch, std::int64_t B, T* tau) {
  const T below_one = T(1) - T(0.5) * std::numeric_limits<T>::epsilon();  // largest T < 1
  switch (scheme) {
    case TimeSampling::antithetic: {
      const T u = uniform<T>(seed, stream, batch);
      for (std::int64_t b = 0; b < B; ++b) {
        T v = u + T(b) / T(B);
        if (v >= T(1)) v -= T(1);
        tau[b] = v < T(1) ? v : below_one;
      }
      return;
    }
    case TimeSampling::stratified:
      for (std::int64_t b = 0; b < B; ++b) {
        const T v = (T(b) + uniform<T>(seed, stream, batch * std::uint64_t(B) + std::uint64_t(b))) / T(B);
        tau[b] = v < T(1) ? v : below_one;
      }
      return;
    case TimeSampling::iid:
      for (std::int64_t b = 0; b < B; ++b)
        tau[b] = uniform<T>(seed, stream, batch * std::uint64_t(B) + std::uint64_t(b));
      return;
  }
}

/// t = t0 + (t1 - t0) tau for tau in [0,1), with t = 0 moved to (t1 - t0) 2^-54 (spec 11).
template <class T>
DD_HD T map_unit_time(T tau, T t0, T t1) {
  const T t = t0 + (t1 - t0) * tau;
  return t > T(0) ? t : (t1 - t0) * T(5.5511151231257827e-17);
}

}  // namespace discdiff
