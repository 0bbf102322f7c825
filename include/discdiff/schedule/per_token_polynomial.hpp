// discdiff/schedule/per_token_polynomial.hpp: S-GEN-POLY, GenMD4's learnable per-token
// polynomial masking schedule [`LearnableVecMaskingSchedule`]; spec/MATH.md section 2.
//
// One schedule per regular token value v in [0, N), with exponent w_v = softplus(w_raw_v):
//   alpha_{t,v}  = 1 - (1 - eta) t^{w_v}          1 - alpha_{t,v} = (1 - eta) t^{w_v}
//   alpha'_{t,v} = -(1 - eta) w_v t^{w_v - 1}     sbar_v = -log alpha_{t,v}
//   sigma_v      = beta_v(t) = -alpha'_v/alpha_v  elbo_weight_v = -alpha'_v/(1 - alpha_v) = w_v/t exactly
// eta = 1e-4; w_raw initialised to log(e - 1), so w = 1 (S-LOGLIN-like alpha = 1 - (1 - eta) t).
// alpha(0) = 1 exactly, sbar(0) = 0, alpha(1) = eta.
//
// Stable forms: alpha = -expm1(w log t) + eta t^w (a sum of non-negative terms, no
// cancellation near t = 1); sbar from -log alpha when alpha < 1/2, else -log1p(-(1 - alpha)).
// At t = 0: elbo_weight = +inf; for w_v < 1 also dalpha = -inf and sigma = +inf (singular,
// integrable); for w_v > 1, dalpha = sigma = 0. GenMD4 keeps t >= t_1 = 1e-3 (spec 2.1).
//
// PerTokenPolynomialView<T> is the trivially copyable DD_HD view (members take (t, v), v a
// regular token, not checked); PerTokenPolynomialSchedule<T> owns the parameters on the host.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"

namespace discdiff {

/// Non-owning DD_HD view of S-GEN-POLY: w[v] = softplus(w_raw[v]) > 0 for v < n.
template <class T>
struct PerTokenPolynomialView {
  using value_type = T;
  static constexpr const char* name = "S-GEN-POLY";

  const T* w;  ///< the N exponents w_v = softplus(w_raw_v)
  int n;       ///< N, the number of regular tokens
  T eta;       ///< alpha(1) = eta

  DD_HD int num_regular() const { return n; }

  DD_HD T alpha(T t, int v) const {
    return -math::expm1(w[v] * math::log(t)) + eta * math::pow(t, w[v]);
  }
  DD_HD T one_minus_alpha(T t, int v) const { return (T(1) - eta) * math::pow(t, w[v]); }
  DD_HD T dalpha(T t, int v) const { return -(T(1) - eta) * w[v] * math::pow(t, w[v] - T(1)); }
  /// beta_v(t) = -alpha'_v/alpha_v.
  DD_HD T sigma(T t, int v) const { return -dalpha(t, v) / alpha(t, v); }
  DD_HD T sigma_bar(T t, int v) const {
    return detail::neg_log_alpha(alpha(t, v), one_minus_alpha(t, v));
  }
  /// w_v/t exactly; +inf at t = 0.
  DD_HD T elbo_weight(T t, int v) const {
    return t > T(0) ? w[v] / t : detail::schedule_inf<T>();
  }
  /// out[v] = sbar_v(t) for v < n (the ubar vector of generator/state_dependent.hpp).
  DD_HD void total_noise(T t, T* out) const {
    for (int v = 0; v < n; ++v) out[v] = sigma_bar(t, v);
  }
};

/// Host owner of the S-GEN-POLY parameters w_raw (and of w = softplus(w_raw)).
template <class T>
class PerTokenPolynomialSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "S-GEN-POLY";

  /// The GenMD4 initial raw parameter log(e - 1), for which softplus gives w = 1. The value
  /// returned is the T nearest to log(e - 1) whose softplus is exactly T(1), so that the
  /// initial schedule is exactly alpha = 1 - (1 - eta) t in every precision (a w one ulp
  /// below 1 would make dalpha(0) = -inf, one ulp above would make it 0).
  static T initial_w_raw() {
    const T x0 = math::softplus_inverse(T(1));
    for (int k = 0; k <= 16; ++k) {
      T up = x0, down = x0;
      for (int i = 0; i < k; ++i) {
        up = std::nextafter(up, T(2));
        down = std::nextafter(down, T(0));
      }
      if (math::softplus(down) == T(1)) return down;
      if (math::softplus(up) == T(1)) return up;
    }
    return x0;  // not reached for IEEE float/double with a faithful log1p/exp
  }

  /// N tokens, every w_raw_v = log(e - 1) (w = 1). N >= 2; eta in (0, 1).
  explicit PerTokenPolynomialSchedule(int N, T eta = T(1e-4)) : eta_(eta) {
    require_vocab("discdiff::PerTokenPolynomialSchedule", N);
    check_eta(eta);
    set_w_raw(std::vector<T>(static_cast<std::size_t>(N), initial_w_raw()));
  }

  /// From raw parameters (N = w_raw.size() >= 2, every entry finite, softplus > 0).
  explicit PerTokenPolynomialSchedule(std::vector<T> w_raw, T eta = T(1e-4)) : eta_(eta) {
    require_vocab("discdiff::PerTokenPolynomialSchedule", static_cast<long long>(w_raw.size()));
    check_eta(eta);
    set_w_raw(std::move(w_raw));
  }

  /// Replace the raw parameters (same N) and recompute w; validates like the constructor.
  void set_w_raw(std::vector<T> w_raw) {
    if (!w_.empty() && w_raw.size() != w_.size())
      throw_invalid("discdiff::PerTokenPolynomialSchedule::set_w_raw", "w_raw.size()",
                    w_raw.size(), ("must equal N = " + std::to_string(w_.size())).c_str());
    std::vector<T> w(w_raw.size());
    for (std::size_t v = 0; v < w_raw.size(); ++v) {
      const std::string arg = "w_raw[" + std::to_string(v) + "]";
      require_finite("discdiff::PerTokenPolynomialSchedule", arg.c_str(), w_raw[v]);
      w[v] = math::softplus(w_raw[v]);
      if (!(w[v] > T(0)))
        throw_invalid("discdiff::PerTokenPolynomialSchedule", arg.c_str(), w_raw[v],
                      "softplus underflows to 0; the exponent must be > 0");
    }
    w_raw_ = std::move(w_raw);
    w_ = std::move(w);
  }

  int num_regular() const { return static_cast<int>(w_.size()); }
  T eta() const { return eta_; }
  const std::vector<T>& w_raw() const { return w_raw_; }
  /// The exponents w_v = softplus(w_raw_v).
  const std::vector<T>& w() const { return w_; }
  /// d w_v / d w_raw_v = sigmoid(w_raw_v) (chain rule for the GenMD4 gradient).
  T dw_dwraw(int v) const {
    require_token("discdiff::PerTokenPolynomialSchedule::dw_dwraw", "v", v, num_regular());
    const T x = w_raw_[static_cast<std::size_t>(v)];
    return x >= T(0) ? T(1) / (T(1) + math::exp(-x)) : math::exp(x) / (T(1) + math::exp(x));
  }

  /// The DD_HD view; valid while this object lives and its parameters are not replaced.
  PerTokenPolynomialView<T> view() const { return {w_.data(), num_regular(), eta_}; }

  /// out[v] = sbar_v(t) for v < N; t must lie in [0, 1].
  void total_noise(T t, T* out) const {
    require_in_closed("discdiff::PerTokenPolynomialSchedule::total_noise", "t", t, T(0), T(1));
    view().total_noise(t, out);
  }

 private:
  static void check_eta(T eta) {
    detail::require_open_interval("discdiff::PerTokenPolynomialSchedule", "eta", eta, T(0), T(1));
  }

  T eta_;
  std::vector<T> w_raw_;
  std::vector<T> w_;
};

}  // namespace discdiff
