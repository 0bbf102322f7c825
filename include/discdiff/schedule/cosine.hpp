// discdiff/schedule/cosine.hpp: the cosine masking schedules; spec/MATH.md section 2.
// MD4's and MDLM's "cosine" are DIFFERENT functions (spec 13.3), hence distinct names.
//
// S-COS-MD4 [MD4 `cosine`, MaskGIT]                  CosineSchedule<T>(eta = 1e-4)
//   alpha_t = (1 - 2 eta)(1 - sin(pi t/2)) + eta,    1 - alpha_t = (1 - 2 eta) sin(pi t/2) + eta
//   alpha'  = -(1 - 2 eta)(pi/2) cos(pi t/2),        w = -alpha'/(1 - alpha) (finite, (pi/2)(1-2eta)/eta at 0)
// S-COS-MDLM [MDLM `cosine`]                         MdlmCosineSchedule<T>(d = 1e-3)
//   alpha_t = d + (1 - d) cos(pi t/2),               1 - alpha_t = 2 (1 - d) sin^2(pi t/4)
//   alpha'  = -(1 - d)(pi/2) sin(pi t/2),            w = (pi/2) cot(pi t/4) (d cancels; +inf at t = 0)
// S-COSSQ-MDLM [MDLM `cosinesqr`]                    MdlmCosineSquaredSchedule<T>(d = 1e-3)
//   alpha_t = d + (1 - d) cos^2(pi t/2),             1 - alpha_t = (1 - d) sin^2(pi t/2)
//   alpha'  = -(1 - d)(pi/2) sin(pi t),              w = pi cot(pi t/2) (d cancels; +inf at t = 0)
// In all three sbar = -log alpha and sigma = -alpha'/alpha.
//
// Stable forms: cos(pi t/2) is evaluated as sin(pi (1 - t)/2) (1 - t is exact for t >= 1/2,
// so values that vanish at t = 1 keep full relative accuracy), 1 - sin(pi t/2) as
// 2 sin^2(pi (1 - t)/4), 1 - cos(pi t/2) as 2 sin^2(pi t/4), sin(pi t) as 2 sin cos.
#pragma once

#include "common.hpp"

namespace discdiff {
namespace detail {
/// cos(pi t/2) for t in [0, 1], accurate relative to its value also near t = 1.
template <class T>
DD_HD DD_INLINE T cos_half_pi(T t) {
  return math::sin(math::pi<T>() / T(2) * (T(1) - t));
}
}  // namespace detail

/// S-COS-MD4 (MD4/MaskGIT cosine, shifted into [eta, 1 - eta]). Finite on [0, 1].
template <class T>
class CosineSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-COS-MD4";

  /// eta must lie in (0, 1/2).
  explicit CosineSchedule(T eta = T(1e-4)) : eta_(eta), c_(T(1) - T(2) * eta) {
    detail::require_open_interval("discdiff::CosineSchedule", "eta", eta, T(0), T(0.5));
  }

  DD_HD T eta() const { return eta_; }

  DD_HD T alpha(T t) const {
    const T h = math::sin(math::pi<T>() / T(4) * (T(1) - t));  // 1 - sin(pi t/2) = 2 h^2
    return c_ * T(2) * h * h + eta_;
  }
  DD_HD T one_minus_alpha(T t) const { return c_ * math::sin(math::pi<T>() / T(2) * t) + eta_; }
  DD_HD T dalpha(T t) const { return -c_ * (math::pi<T>() / T(2)) * detail::cos_half_pi(t); }
  DD_HD T sigma(T t) const { return -dalpha(t) / alpha(t); }
  DD_HD T sigma_bar(T t) const { return detail::neg_log_alpha(alpha(t), one_minus_alpha(t)); }
  DD_HD T elbo_weight(T t) const { return -dalpha(t) / one_minus_alpha(t); }

 private:
  T eta_;
  T c_;  // 1 - 2 eta
};

/// S-COS-MDLM (MDLM `cosine`). Finite on [0, 1] except elbo_weight(0) = +inf.
template <class T>
class MdlmCosineSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-COS-MDLM";

  /// d must lie in (0, 1) (alpha(1) = d).
  explicit MdlmCosineSchedule(T d = T(1e-3)) : d_(d), c_(T(1) - d) {
    detail::require_open_interval("discdiff::MdlmCosineSchedule", "d", d, T(0), T(1));
  }

  DD_HD T d() const { return d_; }

  DD_HD T alpha(T t) const { return d_ + c_ * detail::cos_half_pi(t); }
  DD_HD T one_minus_alpha(T t) const {
    const T s = math::sin(math::pi<T>() / T(4) * t);
    return T(2) * c_ * s * s;
  }
  DD_HD T dalpha(T t) const {
    return -c_ * (math::pi<T>() / T(2)) * math::sin(math::pi<T>() / T(2) * t);
  }
  DD_HD T sigma(T t) const { return -dalpha(t) / alpha(t); }
  DD_HD T sigma_bar(T t) const { return detail::neg_log_alpha(alpha(t), one_minus_alpha(t)); }
  /// (pi/2) cot(pi t/4); +inf at t = 0.
  DD_HD T elbo_weight(T t) const {
    if (!(t > T(0))) return detail::schedule_inf<T>();
    const T x = math::pi<T>() / T(4) * t;
    return (math::pi<T>() / T(2)) * math::cos(x) / math::sin(x);
  }

 private:
  T d_;
  T c_;  // 1 - d
};

/// S-COSSQ-MDLM (MDLM `cosinesqr`). Finite on [0, 1] except elbo_weight(0) = +inf.
template <class T>
class MdlmCosineSquaredSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-COSSQ-MDLM";

  /// d must lie in (0, 1) (alpha(1) = d).
  explicit MdlmCosineSquaredSchedule(T d = T(1e-3)) : d_(d), c_(T(1) - d) {
    detail::require_open_interval("discdiff::MdlmCosineSquaredSchedule", "d", d, T(0), T(1));
  }

  DD_HD T d() const { return d_; }

  DD_HD T alpha(T t) const {
    const T c = detail::cos_half_pi(t);
    return d_ + c_ * c * c;
  }
  DD_HD T one_minus_alpha(T t) const {
    const T s = math::sin(math::pi<T>() / T(2) * t);
    return c_ * s * s;
  }
  DD_HD T dalpha(T t) const {
    return -c_ * math::pi<T>() * math::sin(math::pi<T>() / T(2) * t) * detail::cos_half_pi(t);
  }
  DD_HD T sigma(T t) const { return -dalpha(t) / alpha(t); }
  DD_HD T sigma_bar(T t) const { return detail::neg_log_alpha(alpha(t), one_minus_alpha(t)); }
  /// pi cot(pi t/2); +inf at t = 0.
  DD_HD T elbo_weight(T t) const {
    if (!(t > T(0))) return detail::schedule_inf<T>();
    return math::pi<T>() * detail::cos_half_pi(t) / math::sin(math::pi<T>() / T(2) * t);
  }

 private:
  T d_;
  T c_;  // 1 - d
};

}  // namespace discdiff
