// discdiff/core/philox.hpp: the Philox4x32-10 counter-based bijection
// (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011). A pure function of a 128-bit counter and a 64-bit key, so every
// backend and thread count draws the same numbers for the same (key, counter).
#pragma once

#include <cstdint>

#include "config.hpp"

namespace discdiff {

/// Four 32-bit words: a Philox counter or output block.
struct Philox4x32Block {
  std::uint32_t v[4];
};

/// Philox4x32 with a configurable round count (10 is the standard, "Philox4x32-10").
struct Philox4x32 {
  static constexpr std::uint32_t kMul0 = 0xD2511F53u;
  static constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
  static constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
  static constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

  DD_HD static DD_INLINE void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                      std::uint32_t& lo) {
    const std::uint64_t p = static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b);
    hi = static_cast<std::uint32_t>(p >> 32);
    lo = static_cast<std::uint32_t>(p);
  }

  /// One Philox S-box round on counter c with round key (k0, k1).
  DD_HD static DD_INLINE void round(std::uint32_t c[4], std::uint32_t k0, std::uint32_t k1) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c[0], hi0, lo0);
    mulhilo(kMul1, c[2], hi1, lo1);
    const std::uint32_t n0 = hi1 ^ c[1] ^ k0;
    const std::uint32_t n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
  }

  /// Encrypt a counter block under key (k0, k1) with R rounds (default 10).
  template <int R = 10>
  DD_HD static Philox4x32Block apply(Philox4x32Block ctr, std::uint32_t k0, std::uint32_t k1) {
    for (int r = 0; r < R; ++r) {
      if (r > 0) {
        k0 += kWeyl0;
        k1 += kWeyl1;
      }
      round(ctr.v, k0, k1);
    }
    return ctr;
  }
};

}  // namespace discdiff
