// discdiff/ops/forward_corrupt_xt.hpp: the CPU-facing forward-corruption API on xtensor
// containers. Validates every input on the host (std::invalid_argument naming the bad
// value and its position), then runs the kernels of ops/forward_corrupt.hpp on the given
// executor. The executor must work on host memory (Sequential, OpenMP, Thrust-OMP);
// for Thrust-CUDA call forward_corrupt_raw on device buffers.
//
// Element (b, l) uses CounterRng(seed, stream, b * L + l): the result is identical for
// every host executor and thread count (docs/math/ctmc.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include <xtensor/xtensor.hpp>

#include "../core/error.hpp"
#include "../exec/sequential.hpp"
#include "forward_corrupt.hpp"

namespace discdiff {
namespace detail {
namespace forward_xt {

template <class Exec>
constexpr void require_host_executor() {
  static_assert(Exec::host_memory,
                "forward_corrupt (xtensor API) needs an executor that reads host memory; "
                "use forward_corrupt_raw with device buffers for Thrust-CUDA");
}

inline std::string index_name(const char* array, std::size_t i) {
  return std::string(array) + "[" + std::to_string(i) + "]";
}
inline std::string index_name(const char* array, std::size_t i, std::size_t j) {
  return std::string(array) + "[" + std::to_string(i) + "," + std::to_string(j) + "]";
}

/// Every token of the B x L batch lies in [0, D); the message names the id and (b, l).
inline void require_tokens(const char* where, const xt::xtensor<int, 2>& x0, int num_states) {
  const std::size_t B = x0.shape()[0], L = x0.shape()[1];
  const int* p = x0.data();
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t l = 0; l < L; ++l) {
      const int v = p[b * L + l];
      if (v < 0 || v >= num_states)
        require_token(where, index_name("x0", b, l).c_str(), v, num_states);
    }
}

/// Total noises for forward sampling: finite and >= 0 (negative u is the inverse
/// exponential, not a probability kernel).
template <class T>
void require_noise(const char* where, const char* array, const T* u, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!(u[i] >= T(0)) || !(u[i] <= std::numeric_limits<T>::max()))
      require_nonnegative(where, index_name(array, i).c_str(), u[i]);
}

template <class Sched, class T, class = void>
struct has_sigma_bar : std::false_type {};
template <class Sched, class T>
struct has_sigma_bar<Sched, T,
                     std::void_t<decltype(std::declval<const Sched&>().sigma_bar(
                         std::declval<T>()))>> : std::true_type {};

template <class Sched, class T, class = void>
struct has_total_noise : std::false_type {};
template <class Sched, class T>
struct has_total_noise<Sched, T,
                       std::void_t<decltype(std::declval<const Sched&>().total_noise(
                           std::declval<T>(), std::declval<T*>()))>> : std::true_type {};

}  // namespace forward_xt
}  // namespace detail

/// Forward corruption x_t ~ prod_l P_{u_b}[x_t^l, x_0^l] of a B x L batch with one total
/// noise u_b = sbar(t_b) per row (spec 1.4; forward sampling of 3.1-3.3).
/// Throws std::invalid_argument if u_per_row.size() != B, a token is outside
/// [0, gen.num_states()), or some u_b is negative or not finite.
template <class Gen, class T, class Exec = SequentialExecutor,
          std::enable_if_t<has_scalar_noise_v<Gen, T>, int> = 0>
xt::xtensor<int, 2> forward_corrupt(const Gen& gen, const xt::xtensor<int, 2>& x0,
                                    const xt::xtensor<T, 1>& u_per_row, std::uint64_t seed,
                                    std::uint32_t stream, const Exec& exec = Exec{}) {
  detail::forward_xt::require_host_executor<Exec>();
  constexpr const char* where = "discdiff::forward_corrupt";
  const std::size_t B = x0.shape()[0], L = x0.shape()[1];
  if (u_per_row.size() != B) {
    const std::string why = "must equal the number of rows of x0, B = " + std::to_string(B);
    throw_invalid(where, "u_per_row.size()", u_per_row.size(), why.c_str());
  }
  detail::forward_xt::require_tokens(where, x0, gen.num_states());
  detail::forward_xt::require_noise(where, "u_per_row", u_per_row.data(), B);
  xt::xtensor<int, 2> out(x0.shape());
  forward_corrupt_raw(exec, gen, x0.data(), static_cast<std::int64_t>(B),
                      static_cast<std::int64_t>(L), u_per_row.data(), out.data(), seed, stream);
  return out;
}

/// State-dependent masking (spec 3.5) with one per-token total-noise vector ubar (length
/// N = gen.num_regular()) shared by every row: keep x0 with probability exp(-ubar[x0]).
template <class Gen, class T, class Exec = SequentialExecutor,
          std::enable_if_t<has_token_noise_v<Gen, T>, int> = 0>
xt::xtensor<int, 2> forward_corrupt(const Gen& gen, const xt::xtensor<int, 2>& x0,
                                    const xt::xtensor<T, 1>& ubar, std::uint64_t seed,
                                    std::uint32_t stream, const Exec& exec = Exec{}) {
  detail::forward_xt::require_host_executor<Exec>();
  constexpr const char* where = "discdiff::forward_corrupt";
  const std::size_t B = x0.shape()[0], L = x0.shape()[1];
  const std::size_t N = static_cast<std::size_t>(gen.num_regular());
  if (ubar.size() != N) {
    const std::string why = "must equal the number of regular tokens N = " + std::to_string(N);
    throw_invalid(where, "ubar.size()", ubar.size(), why.c_str());
  }
  detail::forward_xt::require_tokens(where, x0, gen.num_states());
  detail::forward_xt::require_noise(where, "ubar", ubar.data(), N);
  xt::xtensor<int, 2> out(x0.shape());
  forward_corrupt_raw(exec, gen, x0.data(), static_cast<std::int64_t>(B),
                      static_cast<std::int64_t>(L), ubar.data(), std::int64_t(0), out.data(),
                      seed, stream);
  return out;
}

/// State-dependent masking with a B x N table of per-token total noises (row b is the
/// vector ubar(t_b) of sequence b).
template <class Gen, class T, class Exec = SequentialExecutor,
          std::enable_if_t<has_token_noise_v<Gen, T>, int> = 0>
xt::xtensor<int, 2> forward_corrupt(const Gen& gen, const xt::xtensor<int, 2>& x0,
                                    const xt::xtensor<T, 2>& ubar_per_row, std::uint64_t seed,
                                    std::uint32_t stream, const Exec& exec = Exec{}) {
  detail::forward_xt::require_host_executor<Exec>();
  constexpr const char* where = "discdiff::forward_corrupt";
  const std::size_t B = x0.shape()[0], L = x0.shape()[1];
  const std::size_t N = static_cast<std::size_t>(gen.num_regular());
  if (ubar_per_row.shape()[0] != B || ubar_per_row.shape()[1] != N) {
    const std::string got = std::to_string(ubar_per_row.shape()[0]) + " x " +
                            std::to_string(ubar_per_row.shape()[1]);
    const std::string why = "shape must be B x N = " + std::to_string(B) + " x " +
                            std::to_string(N);
    throw_invalid(where, "ubar_per_row.shape()", got, why.c_str());
  }
  detail::forward_xt::require_tokens(where, x0, gen.num_states());
  const T* p = ubar_per_row.data();
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t v = 0; v < N; ++v) {
      const T u = p[b * N + v];
      if (!(u >= T(0)) || !(u <= std::numeric_limits<T>::max()))
        require_nonnegative(where, detail::forward_xt::index_name("ubar_per_row", b, v).c_str(), u);
    }
  xt::xtensor<int, 2> out(x0.shape());
  forward_corrupt_raw(exec, gen, x0.data(), static_cast<std::int64_t>(B),
                      static_cast<std::int64_t>(L), p, static_cast<std::int64_t>(N), out.data(),
                      seed, stream);
  return out;
}

/// Forward corruption at times t_b (one per row) of a schedule: u_b = sched.sigma_bar(t_b).
/// Throws std::invalid_argument if some t_b is outside [0, 1] (or not finite), if
/// t_per_row.size() != B, or on a bad token.
template <class Gen, class Sched, class T, class Exec = SequentialExecutor,
          std::enable_if_t<has_scalar_noise_v<Gen, T> && detail::forward_xt::has_sigma_bar<Sched, T>::value,
                           int> = 0>
xt::xtensor<int, 2> forward_corrupt(const Gen& gen, const Sched& sched,
                                    const xt::xtensor<int, 2>& x0,
                                    const xt::xtensor<T, 1>& t_per_row, std::uint64_t seed,
                                    std::uint32_t stream, const Exec& exec = Exec{}) {
  constexpr const char* where = "discdiff::forward_corrupt";
  const std::size_t B = x0.shape()[0];
  if (t_per_row.size() != B) {
    const std::string why = "must equal the number of rows of x0, B = " + std::to_string(B);
    throw_invalid(where, "t_per_row.size()", t_per_row.size(), why.c_str());
  }
  xt::xtensor<T, 1> u = xt::xtensor<T, 1>::from_shape({B});
  for (std::size_t b = 0; b < B; ++b) {
    const T t = t_per_row(b);
    require_in_closed(where, detail::forward_xt::index_name("t_per_row", b).c_str(), t, T(0), T(1));
    u(b) = sched.sigma_bar(t);
  }
  return forward_corrupt(gen, x0, u, seed, stream, exec);
}

/// State-dependent masking at times t_b of a per-token schedule (S-GEN-POLY, e.g.
/// PerTokenPolynomialSchedule or its view): row b uses ubar_b = sched.total_noise(t_b)
/// (length N = sched.num_regular() = gen.num_regular()).
template <class Gen, class Sched, class T, class Exec = SequentialExecutor,
          std::enable_if_t<has_token_noise_v<Gen, T> && detail::forward_xt::has_total_noise<Sched, T>::value,
                           int> = 0>
xt::xtensor<int, 2> forward_corrupt(const Gen& gen, const Sched& sched,
                                    const xt::xtensor<int, 2>& x0,
                                    const xt::xtensor<T, 1>& t_per_row, std::uint64_t seed,
                                    std::uint32_t stream, const Exec& exec = Exec{}) {
  constexpr const char* where = "discdiff::forward_corrupt";
  const std::size_t B = x0.shape()[0];
  const std::size_t N = static_cast<std::size_t>(gen.num_regular());
  if (t_per_row.size() != B) {
    const std::string why = "must equal the number of rows of x0, B = " + std::to_string(B);
    throw_invalid(where, "t_per_row.size()", t_per_row.size(), why.c_str());
  }
  if (static_cast<std::size_t>(sched.num_regular()) != N) {
    const std::string why = "schedule and generator disagree: gen.num_regular() = " +
                            std::to_string(N);
    throw_invalid(where, "sched.num_regular()", sched.num_regular(), why.c_str());
  }
  xt::xtensor<T, 2> ubar = xt::xtensor<T, 2>::from_shape({B, N});
  for (std::size_t b = 0; b < B; ++b) {
    const T t = t_per_row(b);
    require_in_closed(where, detail::forward_xt::index_name("t_per_row", b).c_str(), t, T(0), T(1));
    sched.total_noise(t, ubar.data() + b * N);
  }
  return forward_corrupt(gen, x0, ubar, seed, stream, exec);
}

}  // namespace discdiff
