// discdiff/sampler/conditioning.hpp: fixed positions for prefix conditioning and infilling
// (spec/MATH.md 9.7).
//
// A Conditioning holds, for a B x L batch, a flag per position (fixed or free) and the value of
// every fixed position. The samplers initialise fixed positions to their values and overwrite them
// after every step and after the final step (projection), so fixed positions never change, on
// every generator (for absorbing chains initialisation alone would suffice; uniform and roulette
// chains need the projection). The denoiser always sees the conditioning tokens.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace discdiff {

/// Fixed positions of a B x L batch: fixed[b L + l] != 0 marks a fixed position whose token is
/// values[b L + l] (a regular token).
struct Conditioning {
  std::int64_t B = 0;
  std::int64_t L = 0;
  std::vector<unsigned char> fixed;
  std::vector<int> values;

  /// True when no position is fixed.
  bool empty() const {
    for (unsigned char f : fixed)
      if (f) return false;
    return true;
  }
};

/// The same prefix (tokens for positions 0..P-1) in every row. Throws std::invalid_argument if
/// the prefix is longer than L, or B, L < 1.
inline Conditioning prefix_conditioning(std::int64_t B, std::int64_t L,
                                        const std::vector<int>& prefix) {
  const char* where = "discdiff::prefix_conditioning";
  if (B < 1) throw_invalid(where, "B", B, "must be >= 1");
  if (L < 1) throw_invalid(where, "L", L, "must be >= 1");
  if (static_cast<std::int64_t>(prefix.size()) > L) {
    const std::string why = "the prefix is longer than the sequence length L = " + std::to_string(L);
    throw_invalid(where, "prefix.size()", prefix.size(), why.c_str());
  }
  Conditioning c{B, L, std::vector<unsigned char>(static_cast<std::size_t>(B * L), 0),
                 std::vector<int>(static_cast<std::size_t>(B * L), 0)};
  for (std::int64_t b = 0; b < B; ++b) {
    const auto row = static_cast<std::ptrdiff_t>(b * L);
    std::fill_n(c.fixed.begin() + row, prefix.size(), static_cast<unsigned char>(1));
    std::copy(prefix.begin(), prefix.end(), c.values.begin() + row);
  }
  return c;
}

/// The same fixed positions (any subset of 0..L-1, no duplicates) with the same values in every
/// row (infilling). Throws std::invalid_argument for a position outside [0, L), a duplicate, or
/// positions.size() != values.size().
inline Conditioning infill_conditioning(std::int64_t B, std::int64_t L,
                                        const std::vector<int>& positions,
                                        const std::vector<int>& values) {
  const char* where = "discdiff::infill_conditioning";
  if (B < 1) throw_invalid(where, "B", B, "must be >= 1");
  if (L < 1) throw_invalid(where, "L", L, "must be >= 1");
  if (positions.size() != values.size()) {
    const std::string why = "must equal positions.size() = " + std::to_string(positions.size());
    throw_invalid(where, "values.size()", values.size(), why.c_str());
  }
  Conditioning c{B, L, std::vector<unsigned char>(static_cast<std::size_t>(B * L), 0),
                 std::vector<int>(static_cast<std::size_t>(B * L), 0)};
  for (std::size_t k = 0; k < positions.size(); ++k) {
    const int p = positions[k];
    if (p < 0 || p >= L) {
      const std::string why = "position must lie in [0, L = " + std::to_string(L) + ")";
      throw_invalid(where, "positions[k]", p, why.c_str());
    }
    if (c.fixed[static_cast<std::size_t>(p)])
      throw_invalid(where, "positions[k]", p, "duplicate position");
    for (std::int64_t b = 0; b < B; ++b) {
      c.fixed[static_cast<std::size_t>(b * L + p)] = 1;
      c.values[static_cast<std::size_t>(b * L + p)] = values[k];
    }
  }
  return c;
}

namespace detail {

/// Host check of a conditioning against a B x L batch over N regular tokens.
inline void check_conditioning(const char* where, const Conditioning& c, std::int64_t B,
                               std::int64_t L, int N) {
  if (c.B != B || c.L != L) {
    const std::string why = "conditioning is " + std::to_string(c.B) + " x " +
                            std::to_string(c.L) + ", the batch is " + std::to_string(B) + " x " +
                            std::to_string(L);
    throw_invalid(where, "conditioning shape", c.B * c.L, why.c_str());
  }
  if (static_cast<std::int64_t>(c.fixed.size()) != B * L ||
      static_cast<std::int64_t>(c.values.size()) != B * L) {
    const std::string why = "fixed and values must hold B * L = " + std::to_string(B * L) +
                            " entries";
    throw_invalid(where, "conditioning.fixed.size()", c.fixed.size(), why.c_str());
  }
  for (std::int64_t q = 0; q < B * L; ++q)
    if (c.fixed[static_cast<std::size_t>(q)]) {
      const int v = c.values[static_cast<std::size_t>(q)];
      if (v < 0 || v >= N) {
        const std::string nm = "conditioning.values[" + std::to_string(q) + "]";
        const std::string why = "a fixed token must be a regular token in [0, N = " +
                                std::to_string(N) + ")";
        throw_invalid(where, nm.c_str(), v, why.c_str());
      }
    }
}

}  // namespace detail
}  // namespace discdiff
