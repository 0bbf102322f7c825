// discdiff/nn/ops/dropout.hpp: inverted dropout with counter-based masks.
//
// Row n of site `site` draws its C words from CounterRng(seed, kDropoutStream + site,
// (step << 32) | n) in order c = 0..C-1 and keeps an element when its word is >= p 2^32,
// so a mask is a pure function of (seed, step, site, n, c) on every backend.
#pragma once

#include <cmath>
#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/random.hpp"

namespace discdiff {
namespace nn {

/// Philox stream base of the dropout masks (site s uses kDropoutStream + s).
constexpr std::uint32_t kDropoutStream = 0x4e4e0100u;

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
  DD_HD void operator()(std::int64_t n) const {
    CounterRng rng(seed, kDropoutStream + site, (step << 32) | std::uint64_t(n));
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
                     std::uint64_t seed, std::uint64_t step, std::uint32_t site) {
  const double thr = std::ldexp(p, 32);
  const std::uint64_t cut = thr >= 4294967296.0 ? 4294967296ull : std::uint64_t(std::ceil(thr));
  const T scale = p < 1 ? T(1.0 / (1.0 - p)) : T(0);
  be.exec.for_each(N, DropoutForwardKernel<T>{x, keep, C, cut, scale, seed, step, site}, double(N) * C);
}
/// Backward of dropout_forward (in place).
template <class Be, class T>
void dropout_backward(const Be& be, T* dx, const unsigned char* keep, long N, int C, double p) {
  const T scale = p < 1 ? T(1.0 / (1.0 - p)) : T(0);
  be.exec.for_each(std::int64_t(N) * C, DropoutBackwardKernel<T>{dx, keep, scale}, double(N) * C);
}

}  // namespace nn
}  // namespace discdiff
