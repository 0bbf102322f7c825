// discdiff/schedule/linear_sigma.hpp: S-LINSIG-MDLM, MDLM's `linear` noise schedule,
// linear in sbar (NOT in alpha; MD4's `linear` is S-LIN-MD4, spec 13.5); spec/MATH.md section 2.
//
//   sbar(t)  = smin + t (smax - smin)       sigma = smax - smin (constant)
//   alpha_t  = exp(-sbar)                   1 - alpha_t = -expm1(-sbar)
//   alpha'_t = -sigma alpha_t               w = (smax - smin)/expm1(sbar)
//
// sbar(0) = smin. With smin = 0 (the MDLM class default) w(0) = +inf (documented), otherwise
// every value is finite on [0, 1]. MDLM's yaml uses (1e-3, 7), its class defaults (0, 10);
// the constructor therefore takes both.
#pragma once

#include "common.hpp"

namespace discdiff {

/// S-LINSIG-MDLM(sigma_min, sigma_max).
template <class T>
class MdlmLinearSigmaSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-LINSIG-MDLM";

  /// Requires finite 0 <= sigma_min < sigma_max.
  MdlmLinearSigmaSchedule(T sigma_min, T sigma_max)
      : smin_(sigma_min), smax_(sigma_max), rate_(sigma_max - sigma_min) {
    require_nonnegative("discdiff::MdlmLinearSigmaSchedule", "sigma_min", sigma_min);
    require_finite("discdiff::MdlmLinearSigmaSchedule", "sigma_max", sigma_max);
    if (!(sigma_max > sigma_min))
      throw_invalid("discdiff::MdlmLinearSigmaSchedule", "sigma_max", sigma_max,
                    ("must be > sigma_min = " + detail::format_value(sigma_min)).c_str());
  }

  DD_HD T sigma_min() const { return smin_; }
  DD_HD T sigma_max() const { return smax_; }

  DD_HD T sigma_bar(T t) const { return smin_ + t * rate_; }
  DD_HD T sigma(T) const { return rate_; }
  DD_HD T alpha(T t) const { return math::exp(-sigma_bar(t)); }
  DD_HD T one_minus_alpha(T t) const { return math::one_minus_exp_neg(sigma_bar(t)); }
  DD_HD T dalpha(T t) const { return -rate_ * alpha(t); }
  /// +inf at sbar = 0 (only when sigma_min = 0 and t = 0).
  DD_HD T elbo_weight(T t) const { return rate_ / math::expm1(sigma_bar(t)); }

 private:
  T smin_;
  T smax_;
  T rate_;  // smax - smin
};

}  // namespace discdiff
