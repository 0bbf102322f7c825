// discdiff/bound/exact_space.hpp: sequences as mixed-radix indices, for exact enumeration
// (spec/MATH.md 1.4 and 7.1).
//
// A sequence x = (x^0, ..., x^{L-1}) over `radix` symbols is the index
//   idx(x) = sum_i x^i radix^{L-1-i}      (lexicographic, position 0 most significant),
// so the clean sequences of 7.1 are k(x_0) = x_0^0 N + x_0^1 (radix N) and the noised states are
// idx(x) = x^0 D + x^1 (radix D). Dense tensors over such index spaces are plain std::vectors;
// apply_axis() applies a per-position matrix along one axis (one factor of a Kronecker product),
// which is how every product of per-position transitions is formed without a D^L x D^L matrix.
//
// Host only; sizes are validated (at most kMaxExactStates indices).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace discdiff {
namespace exact {

/// Largest index space the exact-enumeration code accepts (memory: a few doubles per state per
/// position).
inline constexpr std::int64_t kMaxExactStates = std::int64_t(1) << 22;

/// radix^length as a checked 64-bit integer; throws when it exceeds `limit`.
inline std::int64_t checked_power(const char* where, int radix, int length, std::int64_t limit) {
  if (radix < 1) throw_invalid(where, "radix", radix, "must be >= 1");
  if (length < 1) throw_invalid(where, "L", length, "sequence length must be >= 1");
  std::int64_t s = 1;
  for (int i = 0; i < length; ++i) {
    if (s > limit / radix) {
      const std::string why = "radix^L = " + std::to_string(radix) + "^" + std::to_string(length) +
                              " exceeds the exact-enumeration limit of " + std::to_string(limit) +
                              " states";
      throw_invalid(where, "L", length, why.c_str());
    }
    s *= radix;
  }
  return s;
}

/// The index space of sequences of length L over `radix` symbols (mixed radix, all equal).
class SequenceSpace {
 public:
  SequenceSpace() = default;
  SequenceSpace(int radix, int length, std::int64_t max_states = kMaxExactStates)
      : radix_(radix), length_(length) {
    size_ = checked_power("discdiff::exact::SequenceSpace", radix, length, max_states);
    stride_.assign(static_cast<std::size_t>(length), 1);
    for (int i = length - 2; i >= 0; --i)
      stride_[static_cast<std::size_t>(i)] = stride_[static_cast<std::size_t>(i) + 1] * radix;
  }

  int radix() const { return radix_; }
  int length() const { return length_; }
  std::int64_t size() const { return size_; }
  /// radix^{L-1-i}: the weight of position i.
  std::int64_t stride(int i) const { return stride_[static_cast<std::size_t>(i)]; }

  /// The token at position i of sequence idx.
  int digit(std::int64_t idx, int i) const {
    return static_cast<int>((idx / stride_[static_cast<std::size_t>(i)]) % radix_);
  }
  /// idx with position i set to b (x^{i<-b}).
  std::int64_t with_digit(std::int64_t idx, int i, int b) const {
    return idx + static_cast<std::int64_t>(b - digit(idx, i)) * stride_[static_cast<std::size_t>(i)];
  }
  /// Index of tokens[0..L).
  std::int64_t encode(const int* tokens) const {
    std::int64_t idx = 0;
    for (int i = 0; i < length_; ++i) idx = idx * radix_ + tokens[i];
    return idx;
  }
  /// tokens[0..L) of idx.
  void decode(std::int64_t idx, int* tokens) const {
    for (int i = length_ - 1; i >= 0; --i) {
      tokens[i] = static_cast<int>(idx % radix_);
      idx /= radix_;
    }
  }
  /// Re-encode a sequence of this space in another radix (e.g. a clean sequence, radix N, as a
  /// state of the noised space, radix D >= N). Requires every token < other.radix().
  std::int64_t embed(std::int64_t idx, const SequenceSpace& other) const {
    std::int64_t out = 0;
    for (int i = 0; i < length_; ++i) out = out * other.radix_ + digit(idx, i);
    return out;
  }

 private:
  int radix_ = 1;
  int length_ = 1;
  std::int64_t size_ = 1;
  std::vector<std::int64_t> stride_{1};
};

/// One Kronecker factor: out[p][r][q] = sum_{c < cols} M[r * cols + c] * in[p][c][q] for
/// p < pre, r < rows, q < post (row-major tensors; the axis has `cols` entries in `in` and `rows`
/// entries in `out`). `out` must not alias `in`.
template <class T>
void apply_axis(const T* in, std::int64_t pre, int cols, std::int64_t post, const T* m, int rows,
                T* out) {
  for (std::int64_t p = 0; p < pre; ++p) {
    const T* src = in + p * cols * post;
    T* dst = out + p * rows * post;
    for (int r = 0; r < rows; ++r) {
      T* d = dst + r * post;
      for (std::int64_t q = 0; q < post; ++q) d[q] = T(0);
      for (int c = 0; c < cols; ++c) {
        const T w = m[r * cols + c];
        if (w == T(0)) continue;
        const T* s = src + c * post;
        for (std::int64_t q = 0; q < post; ++q) d[q] += w * s[q];
      }
    }
  }
}

}  // namespace exact
}  // namespace discdiff
