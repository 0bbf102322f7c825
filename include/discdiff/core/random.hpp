// discdiff/core/random.hpp: counter-based random streams and categorical sampling.
//
// A CounterRng is a pure function of (seed, stream, index): element `index` of a
// kernel that belongs to stream `stream` (for example a training step or a
// sampler step) reads its own sequence of numbers, independent of which thread
// or backend runs it. Counter layout of each Philox4x32-10 block:
//   counter = (block, index_lo, index_hi, stream),  key = (seed_lo, seed_hi),
// so one element can draw 4 * 2^32 words before its counter repeats.
#pragma once

#include <cstdint>
#include <limits>

#include "config.hpp"
#include "numerics.hpp"
#include "philox.hpp"

namespace discdiff {

/// Conversion of raw 32-bit words to uniforms in [0, 1).
template <class T>
struct UniformBits;

template <>
struct UniformBits<float> {
  static constexpr int kWords = 1;
  /// 24 random bits: k * 2^-24, k in [0, 2^24).
  DD_HD static DD_INLINE float from_words(std::uint32_t a, std::uint32_t) {
    return static_cast<float>(a >> 8) * 5.9604644775390625e-08f;
  }
  /// Half-step offset: (k + 1/2) 2^-24, strictly inside (0, 1).
  DD_HD static DD_INLINE float open_from_words(std::uint32_t a, std::uint32_t) {
    return (static_cast<float>(a >> 8) + 0.5f) * 5.9604644775390625e-08f;
  }
};

template <>
struct UniformBits<double> {
  static constexpr int kWords = 2;
  /// 53 random bits from two words: k * 2^-53, k in [0, 2^53).
  DD_HD static DD_INLINE double from_words(std::uint32_t a, std::uint32_t b) {
    const std::uint64_t k = (static_cast<std::uint64_t>(a >> 5) << 26) | (b >> 6);
    return static_cast<double>(k) * 1.1102230246251565e-16;
  }
  DD_HD static DD_INLINE double open_from_words(std::uint32_t a, std::uint32_t b) {
    const std::uint64_t k = (static_cast<std::uint64_t>(a >> 5) << 26) | (b >> 6);
    return (static_cast<double>(k) + 0.5) * 1.1102230246251565e-16;
  }
};

/// A per-element random stream keyed by (seed, stream, index).
class CounterRng {
 public:
  DD_HD CounterRng(std::uint64_t seed, std::uint32_t stream, std::uint64_t index)
      : k0_(static_cast<std::uint32_t>(seed)),
        k1_(static_cast<std::uint32_t>(seed >> 32)),
        idx_lo_(static_cast<std::uint32_t>(index)),
        idx_hi_(static_cast<std::uint32_t>(index >> 32)),
        stream_(stream),
        block_(0),
        used_(4) {}

  /// The next raw 32-bit word.
  DD_HD DD_INLINE std::uint32_t next_u32() {
    if (used_ == 4) refill();
    return buf_.v[used_++];
  }

  /// A uniform in [0, 1) with 24 (float) or 53 (double) random bits.
  template <class T>
  DD_HD DD_INLINE T uniform() {
    const std::uint32_t a = next_u32();
    const std::uint32_t b = UniformBits<T>::kWords == 2 ? next_u32() : 0u;
    return UniformBits<T>::from_words(a, b);
  }

  /// A uniform strictly inside (0, 1) (safe for log and inverse CDFs).
  template <class T>
  DD_HD DD_INLINE T uniform_open() {
    const std::uint32_t a = next_u32();
    const std::uint32_t b = UniformBits<T>::kWords == 2 ? next_u32() : 0u;
    return UniformBits<T>::open_from_words(a, b);
  }

  /// A uniform integer in [0, n) for 0 < n <= 2^32 (Lemire's multiply-shift,
  /// bias below n / 2^64 for the 64-bit product of two words).
  DD_HD DD_INLINE std::uint32_t uniform_int(std::uint32_t n) {
    const std::uint64_t a = next_u32();
    const std::uint64_t b = next_u32();
    const std::uint64_t x = (a << 32) | b;  // 64 random bits
    // floor(x * n / 2^64) via two 32x32 products.
    const std::uint64_t lo = (x & 0xffffffffull) * n;
    const std::uint64_t hi = (x >> 32) * n + (lo >> 32);
    return static_cast<std::uint32_t>(hi >> 32);
  }

  /// Standard Gumbel draw -log(-log U), U in (0, 1).
  template <class T>
  DD_HD DD_INLINE T gumbel() {
    return -math::log(-math::log(uniform_open<T>()));
  }

  /// Index of the next Philox block (for tests and for skipping).
  DD_HD std::uint32_t block() const { return block_; }

 private:
  DD_HD void refill() {
    Philox4x32Block c{{block_, idx_lo_, idx_hi_, stream_}};
    buf_ = Philox4x32::apply<10>(c, k0_, k1_);
    ++block_;
    used_ = 0;
  }

  std::uint32_t k0_, k1_, idx_lo_, idx_hi_, stream_, block_;
  int used_;
  Philox4x32Block buf_{};
};

/// The first uniform in [0, 1) of element `index` in `stream`.
template <class T>
DD_HD DD_INLINE T uniform(std::uint64_t seed, std::uint32_t stream, std::uint64_t index) {
  CounterRng rng(seed, stream, index);
  return rng.template uniform<T>();
}

/// Inverse-CDF categorical draw from n unnormalized, non-negative weights p,
/// using one uniform u in [0, 1). Returns the first i with cumsum(p)[i] > u * sum(p),
/// never an index of weight 0. Returns -1 when all weights are zero.
/// (Naive reference: two passes, O(n).)
template <class T>
DD_HD int categorical_inverse_cdf(const T* p, int n, T u) {
  T total = T(0);
  int last_positive = -1;
  for (int i = 0; i < n; ++i) {
    total += p[i];
    if (p[i] > T(0)) last_positive = i;
  }
  if (last_positive < 0) return -1;
  const T target = u * total;
  T cum = T(0);
  for (int i = 0; i < last_positive; ++i) {
    cum += p[i];
    if (p[i] > T(0) && cum > target) return i;
  }
  return last_positive;  // rounding guard: the mass above the last partial sum
}

/// Categorical draw by inverse CDF with the next uniform of rng.
template <class T>
DD_HD int sample_categorical(const T* p, int n, CounterRng& rng) {
  return categorical_inverse_cdf(p, n, rng.template uniform<T>());
}

/// Gumbel-max categorical draw from n unnormalized log-weights (logits):
/// argmax_i logits[i] + G_i with G_i i.i.d. standard Gumbel from rng.
/// Entries equal to -inf are never chosen; returns -1 if all are -inf.
template <class T>
DD_HD int sample_gumbel_max(const T* logits, int n, CounterRng& rng) {
  int best = -1;
  T best_v = -std::numeric_limits<T>::infinity();
  for (int i = 0; i < n; ++i) {
    const T g = rng.template gumbel<T>();  // always drawn: fixed stream layout
    if (!(logits[i] > -std::numeric_limits<T>::infinity())) continue;
    const T v = logits[i] + g;
    if (best < 0 || v > best_v) {
      best = i;
      best_v = v;
    }
  }
  return best;
}

/// Gumbel-max draw from unnormalized probabilities (log taken inside; zeros skipped).
template <class T>
DD_HD int sample_gumbel_max_probs(const T* p, int n, CounterRng& rng) {
  int best = -1;
  T best_v = -std::numeric_limits<T>::infinity();
  for (int i = 0; i < n; ++i) {
    const T g = rng.template gumbel<T>();
    if (!(p[i] > T(0))) continue;
    const T v = math::log(p[i]) + g;
    if (best < 0 || v > best_v) {
      best = i;
      best_v = v;
    }
  }
  return best;
}

}  // namespace discdiff
