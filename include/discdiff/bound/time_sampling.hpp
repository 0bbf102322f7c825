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
//
// TimeProposal / TimeProposalMap: importance sampling in t (docs/math/bounds.md, "Time proposal
// and finite variance"). The unit draw tau (any scheme above) is mapped through the inverse CDF
// of a proposal density f on [t0, t1], and the estimators multiply the integrand by 1/f(t):
//   uniform     f = 1/(t1 - t0): t = map_unit_time(tau, t0, t1), weight t1 - t0 (the public codes).
//   mask_power  the defensive mixture f = (1 - beta)/(t1 - t0) + beta q m^{q-1} m' 1{m < m*}/(m*^q - m0^q)
//               with m(t) = 1 - alpha_t = 1 - e^{-sbar(t)} (the masking / corruption probability
//               scale), m' = -alpha' = elbo_weight(t) m(t), m0 = m(t0), q = 1/4, and for
//               sequences of L tokens m* = min(m(t1), 1/L), beta = min(1/2, 1/(q L)): a share
//               beta of the draws uniform in m^q on [m0, m*], the rest uniform in t. The power
//               part absorbs the 1/m singularity of the per-sample weights where fewer than one
//               token is masked on average (masking probability m per token, weight ~ 1/m): the
//               per-sample second moment there is ~ int m^{-q} dm and the fourth ~ int m^{-3q}
//               dm, both finite for q = 1/4, so the batch standard error is itself a finite-
//               variance estimate. For long sequences beta is small (1/16 at L = 64) and the
//               weight in the bulk is within 1/(1 - beta) of the uniform proposal's, so nothing
//               is lost where the uniform proposal was already good (for the linear schedule
//               the two densities meet continuously at m*). The inverse CDF is solved by
//               bisection to the last bit (F is strictly increasing), so a lattice in tau stays
//               a lattice in F and the antithetic property is kept.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

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

/// Proposal densities of the diffusion time (file comment).
enum class TimeProposal {
  uniform,     ///< t uniform on [t0, t1] (the public codes)
  mask_power   ///< uniform in t, plus a share uniform in m^{1/4} at small m = 1 - alpha_t; default
};

/// The exponent q of the mask_power proposal (uniform in m^q).
inline constexpr double kTimeProposalPower = 0.25;

inline const char* time_proposal_name(TimeProposal p) {
  return p == TimeProposal::uniform ? "uniform" : "mask_power";
}

/// t(tau) and the importance weight 1/f(t) of a TimeProposal for one schedule on [t0, t1]
/// (host; the schedule needs one_minus_alpha and elbo_weight). See the file comment.
template <class Sched>
class TimeProposalMap {
 public:
  using T = typename Sched::value_type;

  /// length: tokens per sequence L (>= 1), which sets the share and the range of the power
  /// component (file comment).
  TimeProposalMap(const Sched& sched, T t0, T t1, TimeProposal kind, std::int64_t length = 1)
      : sched_(&sched), t0_(t0), t1_(t1), kind_(kind) {
    const char* where = "discdiff::TimeProposalMap";
    if (length < 1)
      throw std::invalid_argument(std::string(where) + ": length = " + std::to_string(length) +
                                  " (must be >= 1)");
    if (!(t1 > t0))
      throw std::invalid_argument(std::string(where) + ": needs t1 > t0 (t0 = " +
                                  std::to_string(double(t0)) + ", t1 = " + std::to_string(double(t1)) + ")");
    if (kind_ == TimeProposal::uniform) return;
    const double q = kTimeProposalPower;
    const double m0 = double(sched.one_minus_alpha(t0)), m1 = double(sched.one_minus_alpha(t1));
    if (std::isnan(m0) || std::isnan(m1) || !(m0 >= 0.0) || !(m1 <= 1.0))
      throw std::invalid_argument(std::string(where) + ": 1 - alpha is not in [0, 1] at the end "
                                  "points (t0, t1) = (" + std::to_string(double(t0)) + ", " +
                                  std::to_string(double(t1)) + ")");
    const double L = double(length);
    mstar_ = std::min(m1, 1.0 / L);
    share_ = std::min(0.5, 1.0 / (q * L));
    m0q_ = std::pow(m0, q);
    dm_ = std::pow(mstar_, q) - m0q_;
    // A schedule whose 1 - alpha does not move on [t0, t1]: nothing to absorb, uniform draws.
    if (!(dm_ > 0.0)) kind_ = TimeProposal::uniform;
  }

  TimeProposal kind() const { return kind_; }

  /// The time of unit draw tau in [0, 1): the inverse CDF of the proposal (never 0: a draw at
  /// t = 0 is moved as in map_unit_time, or to the smallest normal T for the mixtures; never t1).
  T time(T tau) const {
    if (kind_ == TimeProposal::uniform) return map_unit_time(tau, t0_, t1_);
    const double target = double(tau);
    T lo = t0_, hi = t1_;
    for (int it = 0; it < 4000; ++it) {
      const T mid = lo + (hi - lo) / T(2);
      if (!(mid > lo && mid < hi)) break;
      if (cdf(mid) < target) lo = mid;
      else hi = mid;
    }
    T t = (cdf(hi) - target <= target - cdf(lo)) ? hi : lo;
    if (!(t < t1_)) t = lo;
    return t > T(0) ? t : std::numeric_limits<T>::min();
  }

  /// 1/f(t): the factor the integrand is multiplied by (t1 - t0 for the uniform proposal).
  /// Throws std::runtime_error if the density is not positive and finite (a schedule value NaN).
  T inverse_density(T t) const {
    if (kind_ == TimeProposal::uniform) return t1_ - t0_;
    const double q = kTimeProposalPower;
    const double span = double(t1_) - double(t0_);
    double f = (1.0 - share_) / span;
    const double m = double(sched_->one_minus_alpha(t));
    // d(m^q)/dt = q m^{q-1} m', m' = -alpha' = elbo_weight m: q m^q elbo_weight (for m < m*).
    if (m > 0.0 && m < mstar_)
      f += share_ * q * std::pow(m, q) * double(sched_->elbo_weight(t)) / dm_;
    if (!(f > 0.0) || !std::isfinite(f))
      throw std::runtime_error("discdiff::TimeProposalMap: proposal density " + std::to_string(f) +
                               " at t = " + std::to_string(double(t)) +
                               " (the schedule is not finite there)");
    return T(1.0 / f);
  }

  /// The proposal CDF F(t) on [t0, t1].
  double cdf(T t) const {
    const double span = double(t1_) - double(t0_);
    const double u = (double(t) - double(t0_)) / span;
    if (kind_ == TimeProposal::uniform) return u;
    const double q = kTimeProposalPower;
    const double m = std::min(double(sched_->one_minus_alpha(t)), mstar_);
    return (1.0 - share_) * u + share_ * (std::pow(m > 0.0 ? m : 0.0, q) - m0q_) / dm_;
  }

 private:
  const Sched* sched_;
  T t0_, t1_;
  TimeProposal kind_;
  double share_ = 0.5;  ///< beta: the power component's share (the rest is uniform in t)
  double mstar_ = 1.0;  ///< m*: the power component lives on m in [m0, m*]
  double m0q_ = 0.0, dm_ = 0.0;
};

}  // namespace discdiff
