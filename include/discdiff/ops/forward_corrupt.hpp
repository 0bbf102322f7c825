// discdiff/ops/forward_corrupt.hpp: forward corruption of a token batch, x_t ~ P_u[., x_0]
// independently per position (spec/MATH.md 1.4 "Sequence transition", and the
// "Forward sampling" items of 3.1-3.3 and 3.5).
//
// Kernels are plain trivially copyable structs over raw pointers, run by any executor
// (exec/): element i = b * L + l of a row-major B x L batch draws from its own counter
// stream CounterRng(seed, stream, i) and writes xt[i] only, so the output is a pure
// function of (inputs, seed, stream) on every backend and thread count.
//
// The drivers here do no validation (device code never throws; preconditions hold at the
// host boundary). ops/forward_corrupt_xt.hpp is the validated xtensor API on the host.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "../core/config.hpp"
#include "../core/random.hpp"
#include "../exec/sequential.hpp"

namespace discdiff {
namespace detail {

template <class Gen, class U, class = void>
struct forward_sampler_accepts : std::false_type {};
template <class Gen, class U>
struct forward_sampler_accepts<
    Gen, U,
    std::void_t<decltype(std::declval<const Gen&>().sample_forward(
        std::declval<int>(), std::declval<U>(), std::declval<CounterRng&>()))>>
    : std::true_type {};

/// Parallel executors share one kernel object between threads (and Thrust-CUDA copies it
/// to the device), so the generator must be a plain value type. Generators with mutable
/// host state (DenseGenerator caches P_u) run on SequentialExecutor only.
template <class Gen, class Exec>
constexpr bool shareable_generator_v =
    std::is_trivially_copyable<Gen>::value || std::is_same<Exec, SequentialExecutor>::value;

}  // namespace detail

/// True when Gen::sample_forward(x0, u, rng) takes one scalar total noise u of type T
/// (uniform, absorbing, roulette, dense).
template <class Gen, class T>
constexpr bool has_scalar_noise_v = detail::forward_sampler_accepts<Gen, T>::value;

/// True when Gen::sample_forward(x0, ubar, rng) takes a per-token total-noise vector
/// `const T* ubar` of length N (state-dependent masking, spec 3.5).
template <class Gen, class T>
constexpr bool has_token_noise_v = detail::forward_sampler_accepts<Gen, const T*>::value;

/// Forward corruption with one total noise per row (training draws one t per sequence):
///   xt[b*L + l] ~ P_{u[b]}[., x0[b*L + l]],   rng = CounterRng(seed, stream, b*L + l).
/// x0, xt: B x L row-major int32 (device-accessible for the executor used); u: length B;
/// L > 0 (the drivers return early on empty batches).
template <class Gen, class T>
struct ForwardCorruptKernel {
  Gen gen;
  const int* x0;
  const T* u;
  int* xt;
  std::int64_t L;
  std::uint64_t seed;
  std::uint32_t stream;
  std::uint64_t index0 = 0;  ///< counter offset: element i draws index index0 + i

  DD_HD void operator()(std::int64_t i) const {
    CounterRng rng(seed, stream, index0 + static_cast<std::uint64_t>(i));
    xt[i] = gen.sample_forward(x0[i], u[i / L], rng);
  }
};

/// Host variant of ForwardCorruptKernel: element c handles the positions
/// [c * chunk, min((c + 1) * chunk, L)) of one row, so the row's noise is read once and the
/// index arithmetic is hoisted out of the token loop. Position i still draws from
/// CounterRng(seed, stream, i), so the output is bit-identical to the per-token kernel.
template <class Gen, class T>
struct ForwardCorruptRowChunkKernel {
  Gen gen;
  const int* x0;
  const T* u;
  int* xt;
  std::int64_t L;
  std::int64_t chunk;
  std::int64_t chunks_per_row;
  std::uint64_t seed;
  std::uint32_t stream;
  std::uint64_t index0 = 0;  ///< counter offset (as ForwardCorruptKernel)

  DD_HD void operator()(std::int64_t c) const {
    const std::int64_t b = c / chunks_per_row;
    const std::int64_t l0 = (c - b * chunks_per_row) * chunk;
    const std::int64_t l1 = l0 + chunk < L ? l0 + chunk : L;
    const T ub = u[b];
    for (std::int64_t i = b * L + l0, end = b * L + l1; i < end; ++i) {
      CounterRng rng(seed, stream, index0 + static_cast<std::uint64_t>(i));
      xt[i] = gen.sample_forward(x0[i], ub, rng);
    }
  }
};

/// Forward corruption for state-dependent masking (spec 3.5): position i of row b keeps
/// x0 with probability exp(-ubar_b[x0]) and is masked otherwise, where
/// ubar_b = ubar + b * ubar_row_stride. ubar_row_stride = 0 shares one length-N vector
/// between all rows (one t for the batch); ubar_row_stride = N reads a B x N row-major
/// table (one t per row).
template <class Gen, class T>
struct ForwardCorruptTokenNoiseKernel {
  Gen gen;
  const int* x0;
  const T* ubar;
  std::int64_t ubar_row_stride;
  int* xt;
  std::int64_t L;
  std::uint64_t seed;
  std::uint32_t stream;
  std::uint64_t index0 = 0;  ///< counter offset (as ForwardCorruptKernel)

  DD_HD void operator()(std::int64_t i) const {
    CounterRng rng(seed, stream, index0 + static_cast<std::uint64_t>(i));
    const T* row_ubar = ubar + (i / L) * ubar_row_stride;
    xt[i] = gen.sample_forward(x0[i], row_ubar, rng);
  }
};

/// Raw-pointer driver, one total noise per row: runs ForwardCorruptKernel over the
/// B * L positions on `exec`. Preconditions (unchecked): x0[i] in [0, gen.num_states()),
/// u[b] finite and >= 0, x0 and xt do not overlap unless equal (in-place is allowed:
/// element i reads x0[i] before writing xt[i]). index0: element i draws counter index0 + i, so
/// rows [r0, r0 + B) of a larger batch (a data-parallel shard) pass index0 = r0 L and get the
/// draws those rows have in the whole batch.
template <class Exec, class Gen, class T>
void forward_corrupt_raw(const Exec& exec, const Gen& gen, const int* x0, std::int64_t B,
                         std::int64_t L, const T* u, int* xt, std::uint64_t seed,
                         std::uint32_t stream, std::uint64_t index0 = 0) {
  static_assert(has_scalar_noise_v<Gen, T>,
                "forward_corrupt_raw: Gen::sample_forward(int, T, CounterRng&) is required; "
                "state-dependent masking takes (ubar, ubar_row_stride)");
  static_assert(detail::shareable_generator_v<Gen, Exec>,
                "forward_corrupt_raw: a generator that is not trivially copyable (e.g. the "
                "caching DenseGenerator) may only run on SequentialExecutor");
  if (B <= 0 || L <= 0) return;
  if constexpr (Exec::host_memory) {
    // Host executors: chunks of up to 256 positions within a row (same output).
    constexpr std::int64_t kChunk = 256;
    const std::int64_t per_row = (L + kChunk - 1) / kChunk;
    exec.for_each(B * per_row, ForwardCorruptRowChunkKernel<Gen, T>{
                                   gen, x0, u, xt, L, kChunk, per_row, seed, stream, index0});
  } else {
    exec.for_each(B * L, ForwardCorruptKernel<Gen, T>{gen, x0, u, xt, L, seed, stream, index0});
  }
}

/// Raw-pointer driver for state-dependent masking (per-token total noise ubar, see
/// ForwardCorruptTokenNoiseKernel; ubar_row_stride 0 = one vector for all rows, N = a
/// B x N table). Preconditions (unchecked): x0[i] in [0, gen.num_states()), every ubar
/// entry read finite and >= 0. index0: the counter offset, as in the driver above.
template <class Exec, class Gen, class T>
void forward_corrupt_raw(const Exec& exec, const Gen& gen, const int* x0,
                                     std::int64_t B, std::int64_t L, const T* ubar,
                                     std::int64_t ubar_row_stride, int* xt,
                                     std::uint64_t seed, std::uint32_t stream,
                                     std::uint64_t index0 = 0) {
  static_assert(has_token_noise_v<Gen, T>,
                "forward_corrupt_raw (with ubar_row_stride): Gen::sample_forward(int, "
                "const T*, CounterRng&) is required");
  static_assert(detail::shareable_generator_v<Gen, Exec>,
                "forward_corrupt_raw: a generator that is not trivially copyable may only run "
                "on SequentialExecutor");
  if (B <= 0 || L <= 0) return;
  exec.for_each(B * L, ForwardCorruptTokenNoiseKernel<Gen, T>{gen, x0, ubar, ubar_row_stride,
                                                               xt, L, seed, stream, index0});
}

}  // namespace discdiff
