// discdiff/schedule/common.hpp: helpers shared by the schedule headers.
//
// Every schedule computes alpha_t and 1 - alpha_t separately, each without
// cancellation, and derives sbar = -log alpha from whichever of the two is the
// accurate argument (spec/MATH.md section 11).
#pragma once

#include <limits>
#include <string>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/numerics.hpp"

namespace discdiff {
namespace detail {

/// -log(alpha) given alpha and oma = 1 - alpha, both accurate to a few ulps:
/// -log(alpha) when alpha < 1/2 (alpha is the accurate small number), else
/// -log1p(-oma) (keeps full relative accuracy of sbar ~ oma for alpha near 1).
template <class T>
DD_HD DD_INLINE T neg_log_alpha(T alpha, T oma) {
  return alpha < T(0.5) ? -math::log(alpha) : -math::log1p(-oma);
}

/// +infinity in T (the documented value of a singular ELBO weight at t = 0).
template <class T>
DD_HD DD_INLINE T schedule_inf() {
  return std::numeric_limits<T>::infinity();
}

/// Require lo < value < hi (and finite); host only.
template <class T>
void require_open_interval(const char* where, const char* name, T value, T lo, T hi) {
  require_finite(where, name, value);
  if (!(value > lo && value < hi)) {
    const std::string why =
        "must lie in (" + format_value(lo) + ", " + format_value(hi) + ")";
    throw_invalid(where, name, value, why.c_str());
  }
}

/// Require lo < value <= hi (and finite); host only.
template <class T>
void require_half_open_interval(const char* where, const char* name, T value, T lo, T hi) {
  require_finite(where, name, value);
  if (!(value > lo && value <= hi)) {
    const std::string why =
        "must lie in (" + format_value(lo) + ", " + format_value(hi) + "]";
    throw_invalid(where, name, value, why.c_str());
  }
}

}  // namespace detail
}  // namespace discdiff
