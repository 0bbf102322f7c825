// discdiff/generator/checked.hpp: host-side checked wrappers around the Generator concept.
//
// The DD_HD members of a generator never throw and assume valid token ids and noise. These
// wrappers are the host boundary: they validate and then call the member, throwing
// std::invalid_argument whose message names the function, the argument and the bad value
// (core/error.hpp). They work with every generator type of this module, including
// StateDependentMaskingGenerator (pass the per-token noises as a std::vector<T>) and
// DenseGenerator; a user generator plugs in by providing value_type, num_states() and, for a
// non-scalar noise argument, a `validate_noise` overload found by argument-dependent lookup.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "detail.hpp"

namespace discdiff {

/// The most negative total noise the checked API accepts for D states: u > -(log(max<T>) -
/// log D). Beyond it e^{|u|} D, the scale of the inverse exponential P_u = exp(uQ) for the
/// closed-form generators (all exit rates <= 1), overflows T.
template <class T>
T max_inverse_noise(int num_states) {
  return std::log(std::numeric_limits<T>::max()) - std::log(static_cast<T>(num_states));
}

/// Throws std::invalid_argument naming `name` and the id unless 0 <= x < g.num_states().
template <class Gen>
void check_token(const Gen& g, long long x, const char* where = "check_token",
                 const char* name = "x") {
  require_token(where, name, x, g.num_states());
}

/// Validation hook for a scalar total noise u (any arithmetic type U): finite, representable
/// in the generator's value_type T, u >= -max_inverse_noise<T>(D), and u >= 0 for
/// NoiseUse::nonnegative. Messages show u as the caller passed it. Returns u converted to T.
template <class Gen, class U, std::enable_if_t<std::is_arithmetic<U>::value, int> = 0>
typename Gen::value_type validate_noise(const Gen& g, U u, const char* where,
                                        NoiseUse use = NoiseUse::any) {
  using T = typename Gen::value_type;
  require_finite(where, "u", u);
  const T ut = static_cast<T>(u);
  if (!std::isfinite(static_cast<double>(ut)))
    throw_invalid(where, "u", u, "outside the range of the generator's value type");
  if (use == NoiseUse::nonnegative && ut < T(0))
    throw_invalid(where, "u", u, "forward sampling needs u >= 0");
  const T lim = max_inverse_noise<T>(g.num_states());
  if (ut < -lim) {
    const std::string why =
        "inverse exponential overflows: need u >= -" + detail::format_value(lim);
    throw_invalid(where, "u", u, why.c_str());
  }
  return ut;
}

/// Q[y,x] after checking both ids (scalar-noise generators).
template <class Gen>
typename Gen::value_type checked_rate(const Gen& g, long long y, long long x) {
  check_token(g, y, "checked_rate", "y");
  check_token(g, x, "checked_rate", "x");
  return g.rate(static_cast<int>(y), static_cast<int>(x));
}

/// exit(x) = -Q[x,x] after checking the id (scalar-noise generators).
template <class Gen>
typename Gen::value_type checked_exit_rate(const Gen& g, long long x) {
  check_token(g, x, "checked_exit_rate", "x");
  return g.exit_rate(static_cast<int>(x));
}

/// P_u[y,x] after checking the ids and the noise.
template <class Gen, class U>
typename Gen::value_type checked_transition(const Gen& g, long long y, long long x, const U& u) {
  const char* where = "checked_transition";
  check_token(g, y, where, "y");
  check_token(g, x, where, "x");
  return g.transition(static_cast<int>(y), static_cast<int>(x), validate_noise(g, u, where));
}

/// Column x of P_u (length D) after checking the id and the noise.
template <class Gen, class U>
std::vector<typename Gen::value_type> checked_transition_column(const Gen& g, long long x,
                                                                const U& u) {
  const char* where = "checked_transition_column";
  check_token(g, x, where, "x");
  std::vector<typename Gen::value_type> out(static_cast<std::size_t>(g.num_states()));
  g.transition_column(static_cast<int>(x), validate_noise(g, u, where), out.data());
  return out;
}

/// Row y of P_u (length D) after checking the id and the noise.
template <class Gen, class U>
std::vector<typename Gen::value_type> checked_transition_row(const Gen& g, long long y,
                                                             const U& u) {
  const char* where = "checked_transition_row";
  check_token(g, y, where, "y");
  std::vector<typename Gen::value_type> out(static_cast<std::size_t>(g.num_states()));
  g.transition_row(static_cast<int>(y), validate_noise(g, u, where), out.data());
  return out;
}

/// P_u v after checking the noise, the length of v (D) and its entries (finite).
template <class Gen, class U>
std::vector<typename Gen::value_type> checked_apply_exp(
    const Gen& g, const U& u, const std::vector<typename Gen::value_type>& v) {
  const char* where = "checked_apply_exp";
  const auto n = validate_noise(g, u, where);
  if (v.size() != static_cast<std::size_t>(g.num_states())) {
    const std::string why = "v must hold D = " + std::to_string(g.num_states()) + " entries";
    throw_invalid(where, "v.size()", v.size(), why.c_str());
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::isfinite(static_cast<double>(v[i]))) continue;
    const std::string nm = "v[" + std::to_string(i) + "]";
    throw_invalid(where, nm.c_str(), v[i], "must be finite");
  }
  std::vector<typename Gen::value_type> out(v.size());
  g.apply_exp(n, v.data(), out.data());
  return out;
}

/// The conditional ratio P_u[b,a] / P_u[x,a] after checking the ids, the noise and the
/// precondition P_u[x,a] > 0 as evaluated in the generator's precision (an entry that
/// underflows to 0 counts as 0).
template <class Gen, class U>
typename Gen::value_type checked_ratio(const Gen& g, long long x, long long b, long long a,
                                       const U& u) {
  const char* where = "checked_ratio";
  check_token(g, x, where, "x");
  check_token(g, b, where, "b");
  check_token(g, a, where, "a");
  const auto n = validate_noise(g, u, where);
  const int xi = static_cast<int>(x), bi = static_cast<int>(b), ai = static_cast<int>(a);
  const auto p = g.transition(xi, ai, n);
  if (!(p > 0)) {
    const std::string why = "P_u[x,a] = " + detail::format_value(p) + " for a = " +
                            std::to_string(a) + ": the ratio needs P_u[x,a] > 0";
    throw_invalid(where, "x", x, why.c_str());
  }
  return g.ratio(xi, bi, ai, n);
}

/// A forward draw x_t ~ P_u[., x0] after checking x0 and u (u >= 0).
template <class Gen, class U>
int checked_sample_forward(const Gen& g, long long x0, const U& u, CounterRng& rng) {
  const char* where = "checked_sample_forward";
  check_token(g, x0, where, "x0");
  return g.sample_forward(static_cast<int>(x0), validate_noise(g, u, where, NoiseUse::nonnegative),
                          rng);
}

}  // namespace discdiff
