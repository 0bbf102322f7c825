// discdiff/exec/algorithm.hpp: small building blocks run by any executor over raw pointers
// in the executor's memory space: fill, copy, scale, and the deterministic reduction.
//
// reduce_sum is a fixed-order block sum, never atomics: index i belongs to block
// i / block; block k sums its terms in ascending i (one element of a for_each), and one
// final element sums the block partials in ascending k. The result is therefore a pure
// function of (n, block, the terms): the same bits on every executor and thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../core/config.hpp"
#include "memory.hpp"

namespace discdiff {

/// p[i] = v.
template <class T>
struct FillKernel {
  T* p;
  T v;
  DD_HD void operator()(std::int64_t i) const { p[i] = v; }
};

/// dst[i] = src[i] (same memory space).
template <class T>
struct CopyKernel {
  T* dst;
  const T* src;
  DD_HD void operator()(std::int64_t i) const { dst[i] = src[i]; }
};

/// p[i] *= a.
template <class T>
struct ScaleKernel {
  T* p;
  T a;
  DD_HD void operator()(std::int64_t i) const { p[i] *= a; }
};

template <class Exec, class T>
void fill_n(const Exec& ex, T* p, std::int64_t n, T v) {
  ex.for_each(n, FillKernel<T>{p, v}, double(n));
}
template <class Exec, class T>
void copy_kernel_n(const Exec& ex, T* dst, const T* src, std::int64_t n) {
  ex.for_each(n, CopyKernel<T>{dst, src}, double(n));
}
template <class Exec, class T>
void scale_n(const Exec& ex, T* p, std::int64_t n, T a) {
  ex.for_each(n, ScaleKernel<T>{p, a}, double(n));
}

/// Block k of a reduction: partial[k] = sum_{i in [k block, min((k+1) block, n))} term(i),
/// accumulated in Acc in ascending i. Term: `DD_HD Acc operator()(std::int64_t i) const`.
template <class Acc, class Term>
struct BlockSumKernel {
  Term term;
  Acc* partial;
  std::int64_t n, block;
  DD_HD void operator()(std::int64_t k) const {
    const std::int64_t i0 = k * block;
    const std::int64_t i1 = i0 + block < n ? i0 + block : n;
    Acc s = Acc(0);
    for (std::int64_t i = i0; i < i1; ++i) s += term(i);
    partial[k] = s;
  }
};

/// out[0] = sum of partial[0..nb) in ascending order.
template <class Acc>
struct PartialSumKernel {
  const Acc* partial;
  std::int64_t nb;
  Acc* out;
  DD_HD void operator()(std::int64_t) const {
    Acc s = Acc(0);
    for (std::int64_t k = 0; k < nb; ++k) s += partial[k];
    out[0] = s;
  }
};

/// Number of blocks (length of the partials buffer) of reduce_sum over n terms.
inline std::int64_t reduce_blocks(std::int64_t n, std::int64_t block) {
  return n <= 0 ? 0 : (n + block - 1) / block;
}

/// out[0] = sum_{i < n} term(i) in the fixed block order described above; partial has
/// reduce_blocks(n, block) elements and out one, both in the executor's memory space.
/// `work_per_term` estimates the elements each term touches (for the executor's hint).
template <class Exec, class Acc, class Term>
void reduce_sum(const Exec& ex, std::int64_t n, std::int64_t block, const Term& term, Acc* partial,
                Acc* out, double work_per_term = 1.0) {
  const std::int64_t nb = reduce_blocks(n, block);
  if (nb > 0)
    ex.for_each(nb, BlockSumKernel<Acc, Term>{term, partial, n, block}, double(n) * work_per_term);
  ex.for_each(1, PartialSumKernel<Acc>{partial, nb, out}, 1.0);
}

/// reduce_sum with its own scratch in the executor's memory, returning the sum on the host.
template <class Exec, class Acc, class Term>
Acc reduce_sum_value(const Exec& ex, std::int64_t n, std::int64_t block, const Term& term,
                     double work_per_term = 1.0) {
  using Space = typename Exec::memory_space;
  Buffer<Acc, Space> scratch(std::size_t(reduce_blocks(n, block)) + 1);
  reduce_sum(ex, n, block, term, scratch.data() + 1, scratch.data(), work_per_term);
  Acc v{};
  copy_n(HostSpace{}, &v, Space{}, scratch.data(), 1);
  return v;
}

}  // namespace discdiff
