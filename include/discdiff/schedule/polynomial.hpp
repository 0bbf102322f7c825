// discdiff/schedule/polynomial.hpp: S-POLY-MD4(K), MD4's `polyK` masking schedule
// (e.g. `poly2`, `poly0.5`); spec/MATH.md section 2.
//
//   alpha_t  = (1 - 2 eta)(1 - t^K) + eta        1 - alpha_t = (1 - 2 eta) t^K + eta
//   alpha'_t = -(1 - 2 eta) K t^(K-1)            sbar = -log alpha_t
//   sigma    = -alpha'_t/alpha_t                 w    = (1 - 2 eta) K t^(K-1)/((1 - 2 eta) t^K + eta)
//
// Stable forms: 1 - t^K = -expm1(K log t) (no cancellation near t = 1; t = 0 gives 1).
// At t = 0: for K > 1, alpha' = sigma = w = 0; for K = 1 the values of S-LIN-MD4; for
// K < 1, alpha' is singular (integrable): dalpha(0) = -inf, sigma(0) = w(0) = +inf
// (documented; spec 11 says never evaluate weights at t = 0). Never NaN on [0, 1].
#pragma once

#include "common.hpp"

namespace discdiff {

/// S-POLY-MD4(K) with exponent K > 0 (a real number, as MD4 parses it).
template <class T>
class PolynomialSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-POLY-MD4";

  /// K must be finite and > 0; eta must lie in (0, 1/2).
  explicit PolynomialSchedule(T K, T eta = T(1e-4)) : K_(K), eta_(eta), c_(T(1) - T(2) * eta) {
    require_positive("discdiff::PolynomialSchedule", "K", K);
    detail::require_open_interval("discdiff::PolynomialSchedule", "eta", eta, T(0), T(0.5));
  }

  DD_HD T exponent() const { return K_; }
  DD_HD T eta() const { return eta_; }

  DD_HD T alpha(T t) const { return c_ * -math::expm1(K_ * math::log(t)) + eta_; }
  DD_HD T one_minus_alpha(T t) const { return c_ * math::pow(t, K_) + eta_; }
  DD_HD T dalpha(T t) const { return -c_ * K_ * math::pow(t, K_ - T(1)); }
  DD_HD T sigma(T t) const { return -dalpha(t) / alpha(t); }
  DD_HD T sigma_bar(T t) const { return detail::neg_log_alpha(alpha(t), one_minus_alpha(t)); }
  DD_HD T elbo_weight(T t) const { return -dalpha(t) / one_minus_alpha(t); }

 private:
  T K_;
  T eta_;
  T c_;  // 1 - 2 eta
};

}  // namespace discdiff
