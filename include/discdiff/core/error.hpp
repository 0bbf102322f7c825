// discdiff/core/error.hpp: host-side input validation.
//
// Every host API validates its inputs and throws std::invalid_argument whose
// message names the function, the argument and the bad value. Device code never
// throws; kernels assume validated inputs.
#pragma once

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace discdiff {
namespace detail {

template <class V>
std::string format_value(const V& v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

}  // namespace detail

/// Throw std::invalid_argument("where: name = value (why)").
template <class V>
[[noreturn]] void throw_invalid(const char* where, const char* name, const V& value,
                                const char* why) {
  throw std::invalid_argument(std::string(where) + ": " + name + " = " +
                              detail::format_value(value) + " (" + why + ")");
}

/// Require a finite floating-point value.
template <class T>
void require_finite(const char* where, const char* name, T value) {
  if (!std::isfinite(static_cast<double>(value)))
    throw_invalid(where, name, value, "must be finite");
}

/// Require lo <= value <= hi (and finite).
template <class T>
void require_in_closed(const char* where, const char* name, T value, T lo, T hi) {
  require_finite(where, name, value);
  if (!(value >= lo && value <= hi)) {
    std::string why = "must lie in [" + detail::format_value(lo) + ", " +
                      detail::format_value(hi) + "]";
    throw_invalid(where, name, value, why.c_str());
  }
}

/// Require value > 0 (and finite).
template <class T>
void require_positive(const char* where, const char* name, T value) {
  require_finite(where, name, value);
  if (!(value > T(0))) throw_invalid(where, name, value, "must be > 0");
}

/// Require value >= 0 (and finite).
template <class T>
void require_nonnegative(const char* where, const char* name, T value) {
  require_finite(where, name, value);
  if (!(value >= T(0))) throw_invalid(where, name, value, "must be >= 0");
}

/// Require a token id in [0, num_states).
inline void require_token(const char* where, const char* name, long long token,
                          long long num_states) {
  if (token < 0 || token >= num_states) {
    std::string why = "token id must lie in [0, " + std::to_string(num_states) + ")";
    throw_invalid(where, name, token, why.c_str());
  }
}

/// Require a vocabulary size N >= 2.
inline void require_vocab(const char* where, long long n) {
  if (n < 2) throw_invalid(where, "N", n, "vocabulary needs at least 2 regular tokens");
}

}  // namespace discdiff
