// discdiff/nn/ops/dropout.hpp: inverted dropout with counter-based masks.
//
// Row n of site `site` draws its C words from CounterRng(seed, kDropoutStream + site,
// (step << 32) | n) in order c = 0..C-1 and keeps an element when its word is >= p 2^32,
// so a mask is a pure function of (seed, step, site, n, c) on every backend. A pass over some
// rows of a larger batch (a data-parallel shard) maps its local row n to the row it has in the
// whole batch with a DropoutRowMap (n + lo below `split`, n + hi from `split` on).
#pragma once

#include <cmath>
#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/random.hpp"

namespace discdiff {
namespace nn {

/// Philox stream base of the dropout masks (site s uses kDropoutStream + s).
constexpr std::uint32_t kDropoutStream = 0x4e4e0100u;

/// Local row n of a pass draws the counter of row n + lo (n < split) or n + hi (n >= split)
/// of the whole batch. The default is the identity. Two pieces cover GenMD4's pass of 2 B rows
/// (its two draws stacked): a shard of rows [r0, r0 + b) of each half has lo = r0 L,
/// split = b L, hi = (B - b + r0) L.
struct DropoutRowMap {
  std::uint64_t lo = 0;
  std::int64_t split = INT64_MAX;
  std::uint64_t hi = 0;
  DD_HD std::uint64_t operator()(std::int64_t n) const {
    return std::uint64_t(n) + (n < split ? lo : hi);
  }
};

/// x[n, c] <- x[n, c] keep[n, c] / (1 - p), one row per element (keep saved as bytes).
template <class T>
struct DropoutForwardKernel {
  T* x;
  unsigned char* keep;
  int C;
  std::uint64_t cut;
  T scale;
  std::uint64_t seed, step;
  std::uint32_t site;
  DropoutRowMap rows{};
  DD_HD void operator()(std::int64_t n) const {
    CounterRng rng(seed, kDropoutStream + site, (step << 32) | rows(n));
    T* xr = x + n * C;
    unsigned char* kr = keep + n * C;
    for (int c = 0; c < C; ++c) {
      const bool k = std::uint64_t(rng.next_u32()) >= cut;
      kr[c] = k ? 1 : 0;
      xr[c] = k ? xr[c] * scale : T(0);
    }
  }
};

/// dx <- dx keep / (1 - p), one element per element.
template <class T>
struct DropoutBackwardKernel {
  T* dx;
  const unsigned char* keep;
  T scale;
  DD_HD void operator()(std::int64_t i) const { dx[i] = keep[i] ? dx[i] * scale : T(0); }
};

/// Inverted dropout in place over N rows of C (p = 0 keeps everything).
template <class Be, class T>
void dropout_forward(const Be& be, T* x, unsigned char* keep, long N, int C, double p,
                     std::uint64_t seed, std::uint64_t step, std::uint32_t site,
                     DropoutRowMap rows = {}) {
  const double thr = std::ldexp(p, 32);
  const std::uint64_t cut = thr >= 4294967296.0 ? 4294967296ull : std::uint64_t(std::ceil(thr));
  const T scale = p < 1 ? T(1.0 / (1.0 - p)) : T(0);
  be.exec.for_each(N, DropoutForwardKernel<T>{x, keep, C, cut, scale, seed, step, site, rows}, double(N) * C);
}
/// Backward of dropout_forward (in place).
template <class Be, class T>
void dropout_backward(const Be& be, T* dx, const unsigned char* keep, long N, int C, double p) {
  const T scale = p < 1 ? T(1.0 / (1.0 - p)) : T(0);
  be.exec.for_each(std::int64_t(N) * C, DropoutBackwardKernel<T>{dx, keep, scale}, double(N) * C);
}

}  // namespace nn
}  // namespace discdiff
