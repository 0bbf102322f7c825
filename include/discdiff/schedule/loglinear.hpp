// discdiff/schedule/loglinear.hpp: the log-linear noise schedules; spec/MATH.md section 2.
//
// S-LOGLIN [SEDD/MDLM/PBRC `loglinear`]                LogLinearSchedule<T>(d = 1e-3)
//   alpha_t = 1 - (1 - d) t  (evaluated as (1 - t) + d t),   1 - alpha_t = (1 - d) t
//   sbar    = -log1p(-(1 - d) t),   sigma = (1 - d)/alpha_t,  alpha' = -(1 - d)
//   w       = 1/t EXACTLY (+inf at t = 0);  sigma(1) = (1 - d)/d = 999, sbar(1) = -log d.
// S-LOGLIN-ROU [PBRC `LogLinearNoiseRoulette(p_m)`]    RouletteLogLinearSchedule<T>(p_m, d = 1e-3)
//   sbar    = -(1/p_m) log1p(-(1 - d) t),   sigma = (1 - d)/(p_m (1 - (1 - d) t))
//   The concept members keep their generic meaning: alpha = exp(-sbar) (no event of either
//   kind), 1 - alpha = -expm1(-sbar), alpha' = -sigma alpha, w = sigma/expm1(sbar) (+inf at 0).
//   The roulette-specific quantities are extra members: mask_alpha = exp(-p_m sbar) =
//   1 - (1 - d) t, mask_probability = (1 - d) t, resample_amount = (1 - p_m) sbar and the
//   masking-part weight mask_elbo_weight = p_m sigma/expm1(p_m sbar) = 1/t exactly.
//
// Stable forms: 1 - (1 - d) t as (1 - t) + d t (1 - t exact for t >= 1/2, so alpha keeps full
// relative accuracy near alpha(1) = d); sbar from -log alpha when alpha < 1/2, else from
// -log1p(-(1 - d) t).
#pragma once

#include "common.hpp"

namespace discdiff {

/// S-LOGLIN. Finite on [0, 1] except elbo_weight(0) = +inf.
template <class T>
class LogLinearSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-LOGLIN";

  /// d must lie in (0, 1) (d = 0 makes sigma(1) and sbar(1) infinite).
  explicit LogLinearSchedule(T d = T(1e-3)) : d_(d), c_(T(1) - d) {
    detail::require_open_interval("discdiff::LogLinearSchedule", "d", d, T(0), T(1));
  }

  DD_HD T d() const { return d_; }

  DD_HD T alpha(T t) const { return (T(1) - t) + d_ * t; }
  DD_HD T one_minus_alpha(T t) const { return c_ * t; }
  DD_HD T dalpha(T) const { return -c_; }
  DD_HD T sigma(T t) const { return c_ / alpha(t); }
  DD_HD T sigma_bar(T t) const { return detail::neg_log_alpha(alpha(t), one_minus_alpha(t)); }
  /// 1/t exactly; +inf at t = 0.
  DD_HD T elbo_weight(T t) const { return t > T(0) ? T(1) / t : detail::schedule_inf<T>(); }

 private:
  T d_;
  T c_;  // 1 - d
};

/// S-LOGLIN-ROU(p_m). Finite on [0, 1] except elbo_weight(0) = mask_elbo_weight(0) = +inf.
template <class T>
class RouletteLogLinearSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-LOGLIN-ROU";

  /// p_m must lie in (0, 1] (p_m = 0 divides by zero; p_m = 1 is S-LOGLIN); d in (0, 1).
  explicit RouletteLogLinearSchedule(T p_m, T d = T(1e-3)) : p_m_(p_m), d_(d), c_(T(1) - d) {
    detail::require_half_open_interval("discdiff::RouletteLogLinearSchedule", "p_m", p_m, T(0),
                                       T(1));
    detail::require_open_interval("discdiff::RouletteLogLinearSchedule", "d", d, T(0), T(1));
  }

  DD_HD T p_m() const { return p_m_; }
  DD_HD T d() const { return d_; }

  /// exp(-p_m sbar) = 1 - (1 - d) t: probability of not being masked.
  DD_HD T mask_alpha(T t) const { return (T(1) - t) + d_ * t; }
  /// 1 - exp(-p_m sbar) = (1 - d) t: probability of being masked.
  DD_HD T mask_probability(T t) const { return c_ * t; }
  /// (1 - p_m) sbar: the total uniform-resampling amount.
  DD_HD T resample_amount(T t) const { return (T(1) - p_m_) * sigma_bar(t); }
  /// -alpha^m'/(1 - alpha^m) = 1/t exactly; +inf at t = 0.
  DD_HD T mask_elbo_weight(T t) const {
    return t > T(0) ? T(1) / t : detail::schedule_inf<T>();
  }

  DD_HD T sigma_bar(T t) const {
    return detail::neg_log_alpha(mask_alpha(t), mask_probability(t)) / p_m_;
  }
  DD_HD T sigma(T t) const { return c_ / (p_m_ * mask_alpha(t)); }
  DD_HD T alpha(T t) const { return math::exp(-sigma_bar(t)); }
  DD_HD T one_minus_alpha(T t) const { return math::one_minus_exp_neg(sigma_bar(t)); }
  DD_HD T dalpha(T t) const { return -sigma(t) * alpha(t); }
  /// sigma/expm1(sbar); +inf at t = 0.
  DD_HD T elbo_weight(T t) const {
    return t > T(0) ? sigma(t) / math::expm1(sigma_bar(t)) : detail::schedule_inf<T>();
  }

 private:
  T p_m_;
  T d_;
  T c_;  // 1 - d
};

}  // namespace discdiff
