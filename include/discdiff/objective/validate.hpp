// discdiff/objective/validate.hpp: host-side validation of objective inputs over raw pointers and
// explicit sizes (used by objective/checked_xt.hpp; callers of the raw drivers may use it too).
//
// Every function throws std::invalid_argument whose message names the function, the argument,
// its value and, for size mismatches, both sizes (core/error.hpp conventions).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "../core/error.hpp"

namespace discdiff {
namespace objective_check {

inline std::string shape_string(std::int64_t a, std::int64_t b) {
  return std::to_string(a) + " x " + std::to_string(b);
}
inline std::string shape_string(std::int64_t a, std::int64_t b, std::int64_t c) {
  return std::to_string(a) + " x " + std::to_string(b) + " x " + std::to_string(c);
}
inline std::string at(const char* array, std::int64_t b, std::int64_t l) {
  return std::string(array) + "[" + std::to_string(b) + "," + std::to_string(l) + "]";
}
inline std::string at(const char* array, std::int64_t b, std::int64_t l, std::int64_t v) {
  return std::string(array) + "[" + std::to_string(b) + "," + std::to_string(l) + "," +
         std::to_string(v) + "]";
}

/// A B x L token array must have the shape of x0: "xt.shape() = 2 x 5 (must equal x0.shape() =
/// 2 x 4)".
inline void require_same_shape(const char* where, const char* name, std::int64_t b,
                               std::int64_t l, const char* ref, std::int64_t B, std::int64_t L) {
  if (b == B && l == L) return;
  const std::string nm = std::string(name) + ".shape()";
  const std::string why = "must equal " + std::string(ref) + ".shape() = " + shape_string(B, L);
  throw_invalid(where, nm.c_str(), shape_string(b, l), why.c_str());
}

/// A per-row array must hold B entries.
inline void require_rows(const char* where, const char* name, std::int64_t size, std::int64_t B) {
  if (size == B) return;
  const std::string nm = std::string(name) + ".size()";
  const std::string why = "must equal the number of sequences B = " + std::to_string(B);
  throw_invalid(where, nm.c_str(), size, why.c_str());
}

/// Outputs of shape B x L x V with V one of the allowed widths (v1, or v2 when v2 >= 0).
inline void require_outputs_shape(const char* where, const char* name, std::int64_t b,
                                  std::int64_t l, std::int64_t v, std::int64_t B, std::int64_t L,
                                  std::int64_t v1, const char* v1_name, std::int64_t v2 = -1,
                                  const char* v2_name = "") {
  if (b != B || l != L) {
    const std::string nm = std::string(name) + ".shape()";
    const std::string why =
        "the first two extents must equal x0.shape() = " + shape_string(B, L);
    throw_invalid(where, nm.c_str(), shape_string(b, l, v), why.c_str());
  }
  if (v == v1 || (v2 >= 0 && v == v2)) return;
  const std::string nm = std::string(name) + ".shape()[2]";
  std::string why = "must equal " + std::string(v1_name) + " = " + std::to_string(v1);
  if (v2 >= 0) why += " or " + std::string(v2_name) + " = " + std::to_string(v2);
  throw_invalid(where, nm.c_str(), v, why.c_str());
}

/// Every output finite: NaN or Inf logits are rejected (a loss is never NaN).
template <class T>
void require_finite_outputs(const char* where, const char* name, const T* p, std::int64_t B,
                            std::int64_t L, std::int64_t V) {
  const std::int64_t n = B * L * V;
  for (std::int64_t i = 0; i < n; ++i) {
    if (std::isfinite(static_cast<double>(p[i]))) continue;
    const std::int64_t v = i % V, bl = i / V;
    throw_invalid(where, at(name, bl / L, bl % L, v).c_str(), p[i], "must be finite");
  }
}

/// Every token of a B x L array in [0, bound).
inline void require_tokens(const char* where, const char* name, const int* x, std::int64_t B,
                           std::int64_t L, int bound, const char* what) {
  for (std::int64_t i = 0; i < B * L; ++i) {
    if (x[i] >= 0 && x[i] < bound) continue;
    const std::string why = std::string(what) + " must lie in [0, " + std::to_string(bound) + ")";
    throw_invalid(where, at(name, i / L, i % L).c_str(), x[i], why.c_str());
  }
}

/// Per-row times t_b finite in (lo, 1] (lo = 0: weights are singular at t = 0, rule 11) or
/// [lo, 1] when lo > 0 is a floor (GenMD4's t_1).
template <class T>
void require_times(const char* where, const T* t, std::int64_t B, T lo) {
  for (std::int64_t b = 0; b < B; ++b) {
    const std::string nm = "t[" + std::to_string(b) + "]";
    require_finite(where, nm.c_str(), t[b]);
    const bool ok = lo > T(0) ? (t[b] >= lo && t[b] <= T(1)) : (t[b] > T(0) && t[b] <= T(1));
    if (ok) continue;
    const std::string why = lo > T(0)
                                ? "must lie in [" + detail::format_value(lo) + ", 1]"
                                : std::string("must lie in (0, 1] (weights are singular at t = 0)");
    throw_invalid(where, nm.c_str(), t[b], why.c_str());
  }
}

/// A per-row value computed from the schedule (u, sigma, weight) must be finite (and > 0 where
/// positive is required).
template <class T>
void require_row_value(const char* where, const char* name, std::int64_t b, T value,
                       bool positive, T t) {
  const bool ok = std::isfinite(static_cast<double>(value)) && (!positive || value > T(0));
  if (ok) return;
  const std::string nm = std::string(name) + "[" + std::to_string(b) + "]";
  const std::string why = std::string(positive ? "must be finite and > 0" : "must be finite") +
                          " (at t = " + detail::format_value(t) + ")";
  throw_invalid(where, nm.c_str(), value, why.c_str());
}

/// x_t must be reachable from x_0: P_{u_b}[xt, x0] > 0 at every position (the ratio
/// precondition of spec 1.5; e.g. an absorbing xt is x0 or MASK).
template <class Gen, class T>
void require_consistent(const char* where, const Gen& gen, const int* x0, const int* xt,
                        std::int64_t B, std::int64_t L, const T* u) {
  for (std::int64_t i = 0; i < B * L; ++i) {
    if (gen.transition(xt[i], x0[i], u[i / L]) > T(0)) continue;
    const std::string why = "P_u[xt, x0] = 0 for x0 = " + std::to_string(x0[i]) + ", u = " +
                            detail::format_value(u[i / L]) + ": x_t cannot come from x_0";
    throw_invalid(where, at("xt", i / L, i % L).c_str(), xt[i], why.c_str());
  }
}

}  // namespace objective_check
}  // namespace discdiff
