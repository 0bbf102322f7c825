// discdiff/schedule/evaluate.hpp: host-side evaluation of a schedule with validation.
//
// evaluate(sched, t) checks t in [0, 1] (finite) and returns every concept value at t;
// it throws std::invalid_argument naming t and its value otherwise. The per-token
// schedule (S-GEN-POLY) takes a token v in [0, N) as well.
#pragma once

#include "common.hpp"
#include "per_token_polynomial.hpp"

namespace discdiff {

/// All values of a schedule at one time t (spec/MATH.md sections 1.3 and 2).
template <class T>
struct ScheduleValues {
  T alpha;            ///< alpha_t = exp(-sbar(t))
  T dalpha;           ///< alpha'(t)
  T sigma;            ///< sigma(t) = -alpha'/alpha
  T sigma_bar;        ///< sbar(t) = -log alpha_t
  T one_minus_alpha;  ///< 1 - alpha_t
  T elbo_weight;      ///< w(t) = -alpha'/(1 - alpha) (may be +inf at t = 0, see each header)
};

/// Every value of a scalar schedule at t; t must be finite and lie in [0, 1].
template <class S>
ScheduleValues<typename S::value_type> evaluate(const S& sched, typename S::value_type t) {
  using T = typename S::value_type;
  require_in_closed("discdiff::evaluate", "t", t, T(0), T(1));
  return {sched.alpha(t),     sched.dalpha(t),          sched.sigma(t),
          sched.sigma_bar(t), sched.one_minus_alpha(t), sched.elbo_weight(t)};
}

/// Every value of token v's S-GEN-POLY schedule at t; t in [0, 1], v in [0, N).
template <class T>
ScheduleValues<T> evaluate(const PerTokenPolynomialView<T>& s, T t, int v) {
  require_in_closed("discdiff::evaluate", "t", t, T(0), T(1));
  require_token("discdiff::evaluate", "v", v, s.n);
  return {s.alpha(t, v),     s.dalpha(t, v),          s.sigma(t, v),
          s.sigma_bar(t, v), s.one_minus_alpha(t, v), s.elbo_weight(t, v)};
}

template <class T>
ScheduleValues<T> evaluate(const PerTokenPolynomialSchedule<T>& s, T t, int v) {
  return evaluate(s.view(), t, v);
}

}  // namespace discdiff
