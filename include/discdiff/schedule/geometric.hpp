// discdiff/schedule/geometric.hpp: S-GEO, the geometric noise schedule
// [SEDD `Geometric`, MD4 Table 4, MDLM `geometric`]; spec/MATH.md section 2.
//
//   sbar(t)  = smin^(1-t) smax^t = smin exp(t L),  L = log(smax/smin)
//   sigma(t) = sbar(t) L                           alpha_t = exp(-sbar), 1 - alpha_t = -expm1(-sbar)
//   alpha'_t = -sigma alpha_t                      w = sigma/expm1(sbar) > 0
//
// sbar(0) = smin and sbar(1) = smax: the total noise starts at smin, not at 0, so
// sbar(t) = smin + integral_0^t sigma. Every value is finite on [0, 1]; w -> 0 when
// expm1(sbar) overflows. Defaults differ per code base (spec 2): SEDD (1e-4, 20),
// MD4 Fig. 1 (1e-5, 20), MDLM class (1e-3, 1); the constructor therefore takes both.
// (MD4 Table 4 prints the weight with log(smin/smax), a sign typo; spec 13.4.)
#pragma once

#include "common.hpp"

namespace discdiff {

/// S-GEO(sigma_min, sigma_max).
template <class T>
class GeometricSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-GEO";

  /// Requires finite 0 < sigma_min < sigma_max.
  GeometricSchedule(T sigma_min, T sigma_max) : smin_(sigma_min), smax_(sigma_max), L_(T(0)) {
    require_positive("discdiff::GeometricSchedule", "sigma_min", sigma_min);
    require_positive("discdiff::GeometricSchedule", "sigma_max", sigma_max);
    if (!(sigma_max > sigma_min))
      throw_invalid("discdiff::GeometricSchedule", "sigma_max", sigma_max,
                    ("must be > sigma_min = " + detail::format_value(sigma_min)).c_str());
    const T ratio = sigma_max / sigma_min;  // may overflow for extreme inputs
    L_ = math::isfinite(ratio) ? math::log(ratio) : math::log(sigma_max) - math::log(sigma_min);
  }

  DD_HD T sigma_min() const { return smin_; }
  DD_HD T sigma_max() const { return smax_; }
  /// L = log(sigma_max/sigma_min), the constant d log(sbar)/dt.
  DD_HD T log_ratio() const { return L_; }

  DD_HD T sigma_bar(T t) const { return smin_ * math::exp(t * L_); }
  DD_HD T sigma(T t) const { return sigma_bar(t) * L_; }
  DD_HD T alpha(T t) const { return math::exp(-sigma_bar(t)); }
  DD_HD T one_minus_alpha(T t) const { return math::one_minus_exp_neg(sigma_bar(t)); }
  DD_HD T dalpha(T t) const {
    const T sb = sigma_bar(t);
    return -sb * L_ * math::exp(-sb);
  }
  DD_HD T elbo_weight(T t) const {
    const T sb = sigma_bar(t);
    return sb * L_ / math::expm1(sb);
  }

 private:
  T smin_;
  T smax_;
  T L_;
};

}  // namespace discdiff
