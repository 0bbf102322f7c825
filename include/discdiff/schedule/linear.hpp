// discdiff/schedule/linear.hpp: S-LIN-MD4, MD4's `linear` masking schedule
// (linear in alpha, shifted into [eta, 1 - eta]); spec/MATH.md section 2.
//
//   alpha_t  = (1 - 2 eta)(1 - t) + eta          1 - alpha_t = (1 - 2 eta) t + eta
//   alpha'_t = -(1 - 2 eta)                      sbar = -log alpha_t
//   sigma    = (1 - 2 eta)/alpha_t               w    = (1 - 2 eta)/((1 - 2 eta) t + eta)
//
// eta = 1e-4 by default. alpha(0) = 1 - eta, alpha(1) = eta, sbar(0) = -log1p(-eta)
// (not 0: the shift is part of the schedule), w(0) = (1 - 2 eta)/eta (finite).
// Not to be confused with MDLM's `linear`, which is linear in sbar (S-LINSIG-MDLM).
#pragma once

#include "common.hpp"

namespace discdiff {

/// S-LIN-MD4. Valid for t in [0, 1]; every value is finite there.
template <class T>
class LinearSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-LIN-MD4";

  /// eta must lie in (0, 1/2) (eta = 1/2 is a constant schedule; eta = 0 makes sbar(1) infinite).
  explicit LinearSchedule(T eta = T(1e-4)) : eta_(eta), c_(T(1) - T(2) * eta) {
    detail::require_open_interval("discdiff::LinearSchedule", "eta", eta, T(0), T(0.5));
  }

  DD_HD T eta() const { return eta_; }

  DD_HD T alpha(T t) const { return c_ * (T(1) - t) + eta_; }
  DD_HD T one_minus_alpha(T t) const { return c_ * t + eta_; }
  DD_HD T dalpha(T) const { return -c_; }
  DD_HD T sigma(T t) const { return c_ / alpha(t); }
  DD_HD T sigma_bar(T t) const { return detail::neg_log_alpha(alpha(t), one_minus_alpha(t)); }
  DD_HD T elbo_weight(T t) const { return c_ / one_minus_alpha(t); }

 private:
  T eta_;
  T c_;  // 1 - 2 eta
};

}  // namespace discdiff
