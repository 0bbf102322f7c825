// discdiff/model/model.hpp: the one model interface of the objectives' consumers: the samplers
// (sampler/), the Monte Carlo bound estimators (bound/monte_carlo.hpp) and the program's network
// adapter all query a model the same way (spec/MATH.md 4.1, 4.4, 9).
//
// Model concept:
//
//   struct MyModel {
//     using value_type = T;                       // float or double
//     using memory_space = HostSpace;             // optional (default HostSpace): where the query's
//                                                 // pointers and the output live; must equal the
//                                                 // executor's memory_space
//     int num_classes() const;                    // K: N (MD4-style head) or D = N + 1
//     void operator()(const ModelQuery<T>& q, T* out) const;
//     // optional:
//     bool time_conditioned() const;              // default true (the cached ancestral sampler
//                                                 // reuses an output only when this is false)
//     static constexpr ModelOutput output = ModelOutput::logits;   // or log_scores
//     T* evaluate(const ModelQuery<T>& q) const;  // the output in the model's own storage
//   };
//
// Contract of operator(): q.xt holds B x L row-major int32 tokens in [0, D); q.t[b] and
// q.sigma_bar[b] are the time and the total noise sbar(t) of row b (sigma_bar may be null for
// per-token schedules, spec 3.5; then only t is meaningful). Every pointer of q and `out` lies in
// the model's memory space. The model writes out[(b L + l) K + k] for all B * L * K entries:
//   * ModelOutput::logits: clean-token logits z, softmax(z) ~ p_{0|t}(x_0^l = k | x_t^b) (spec 4.1).
//     K = N, or K = D with the MASK class ignored. -inf is allowed (a class of probability 0) but
//     every position needs at least one finite regular logit;
//   * ModelOutput::log_scores: K = D log concrete scores log s_theta(x_t, t)_{l,k} (spec 1.5, 4.4);
//     entry k = x_t^l is ignored (s_x := 1), -inf is a zero score.
// evaluate(q), when a model has it, does what operator() does but returns a pointer to B * L * K
// outputs in storage the model owns (its memory space) instead of writing the caller's buffer: a
// network's own logits. The pointer stays valid, and the caller may overwrite the entries (as a
// loss kernel's scratch), until the model's next call. The consumers use it through
// model_outputs(), which falls back to operator() and a buffer of the consumer's, so at a large
// vocabulary (V = 50257) a consumer holds no B x L x K copy of what the model already holds.
// NaN and +Inf are never valid. Every consumer calls check_model_output() after each call (a
// per-position kernel on the executor, then a host scan of one status byte per position), so a
// bad model gives std::invalid_argument naming the entry (b, l, k) and its value, on any backend.
//
// The Monte Carlo estimators also accept a bare callable f(const ModelQuery<T>&, T* out) (a
// lambda): its class count and output kind then come from the estimator's options.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../exec/memory.hpp"

namespace discdiff {

/// What a model's K entries per position mean.
enum class ModelOutput {
  logits,     ///< clean-token logits (softmax = predicted p_{0|t}); K = N or D
  log_scores  ///< log concrete scores log s_theta(x_t, t)_{l,k}; K = D
};

/// The batch a model is queried on (see the concept above); every pointer lies in the model's
/// memory space.
template <class T>
struct ModelQuery {
  const int* xt = nullptr;       ///< B x L row-major tokens
  std::int64_t B = 0;            ///< number of sequences
  std::int64_t L = 0;            ///< sequence length
  const T* t = nullptr;          ///< B times
  const T* sigma_bar = nullptr;  ///< B total noises sbar(t) (may be null: per-token schedules)
};

namespace detail {
template <class M, class = void>
struct model_output_of {
  static constexpr ModelOutput value = ModelOutput::logits;
};
template <class M>
struct model_output_of<M, std::void_t<decltype(M::output)>> {
  static constexpr ModelOutput value = M::output;
};
template <class M, class = void>
struct model_space_of {
  using type = HostSpace;
};
template <class M>
struct model_space_of<M, std::void_t<typename M::memory_space>> {
  using type = typename M::memory_space;
};
template <class M, class = void>
struct has_time_conditioned : std::false_type {};
template <class M>
struct has_time_conditioned<M, std::void_t<decltype(std::declval<const M&>().time_conditioned())>>
    : std::true_type {};
template <class M, class = void>
struct has_evaluate : std::false_type {};
template <class M>
struct has_evaluate<M, std::void_t<decltype(std::declval<const M&>().evaluate(
                           std::declval<const ModelQuery<typename M::value_type>&>()))>>
    : std::true_type {};
template <class M, class = void>
struct has_num_classes : std::false_type {};
template <class M>
struct has_num_classes<M, std::void_t<decltype(std::declval<const M&>().num_classes())>>
    : std::true_type {};
}  // namespace detail

/// The output kind of model type M (ModelOutput::logits unless M::output says otherwise).
template <class M>
constexpr ModelOutput model_output_v = detail::model_output_of<std::decay_t<M>>::value;

/// The memory space of model type M (HostSpace unless M::memory_space says otherwise).
template <class M>
using model_memory_space_t = typename detail::model_space_of<std::decay_t<M>>::type;

/// True when M declares num_classes() (a full model, not a bare callable).
template <class M>
constexpr bool model_has_num_classes_v = detail::has_num_classes<std::decay_t<M>>::value;

/// True when M has evaluate(q) (the output in the model's own storage; see the concept above).
template <class M>
constexpr bool model_has_evaluate_v = detail::has_evaluate<std::decay_t<M>>::value;

/// One model call: m.evaluate(q) when M has it (no copy), otherwise m(q, own) into the caller's
/// buffer `own`, grown to the K outputs per position the query needs (a Buffer in the model's
/// memory space; it keeps its size between calls). Returns the outputs, B * L * K entries that
/// the caller may overwrite until the model's next call.
template <class M, class T, class Space>
T* model_outputs(M& m, const ModelQuery<T>& q, int K, Buffer<T, Space>& own) {
  if constexpr (model_has_evaluate_v<M>) {
    (void)K;
    (void)own;
    return m.evaluate(q);
  } else {
    const std::size_t n = static_cast<std::size_t>(q.B * q.L) * static_cast<std::size_t>(K);
    if (own.size() < n) own.resize(n);
    m(q, own.data());
    return own.data();
  }
}

/// m.time_conditioned() when M has it, else true.
template <class M>
bool model_time_conditioned(const M& m) {
  if constexpr (detail::has_time_conditioned<M>::value) {
    return m.time_conditioned();
  } else {
    (void)m;
    return true;
  }
}

/// Compile-time check that model M can be run by executor Exec (same memory space).
template <class M, class Exec>
constexpr void static_check_model_space() {
  static_assert(std::is_same<model_memory_space_t<M>, typename Exec::memory_space>::value,
                "the model's memory_space must equal the executor's memory_space");
}

/// Host check of a model's declared class count K against the generator: K = N or K = D for
/// logits, K = D for log-scores. Throws std::invalid_argument naming K, N and D.
inline void check_model_classes(const char* where, long long K, long long N, long long D,
                                ModelOutput kind) {
  const bool ok = kind == ModelOutput::logits ? (K == N || K == D) : K == D;
  if (!ok) {
    const std::string why = kind == ModelOutput::logits
                                ? "logits need K = N = " + std::to_string(N) + " or K = D = " +
                                      std::to_string(D) + " classes"
                                : "log-scores need K = D = " + std::to_string(D) + " classes";
    throw_invalid(where, "model.num_classes()", K, why.c_str());
  }
}

/// Status of one output row (check_model_output): 0 valid, 1 a NaN or +Inf entry, 2 (logits) no
/// finite regular logit.
template <class T>
struct ModelOutputCheckKernel {
  const T* out;
  int K, regular;
  bool need_regular;
  unsigned char* status;

  DD_HD void operator()(std::int64_t p) const {
    // Eight independent lanes of flags, no early exit: the compiler vectorises both passes.
    // bad: NaN or +Inf (!(v < inf) holds exactly for those); fin: a finite regular entry.
    const T* z = out + p * K;
    const T inf = std::numeric_limits<T>::infinity();
    unsigned bad[8] = {0, 0, 0, 0, 0, 0, 0, 0}, fin[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int k = 0;
    for (; k + 8 <= K; k += 8)
      for (int j = 0; j < 8; ++j) bad[j] |= !(z[k + j] < inf) ? 1u : 0u;
    for (; k < K; ++k) bad[0] |= !(z[k] < inf) ? 1u : 0u;
    const int R = regular < K ? regular : K;
    k = 0;
    for (; k + 8 <= R; k += 8)
      for (int j = 0; j < 8; ++j) fin[j] |= z[k + j] > -inf ? 1u : 0u;
    for (; k < R; ++k) fin[0] |= z[k] > -inf ? 1u : 0u;
    unsigned b = 0, f = 0;
    for (int j = 0; j < 8; ++j) b |= bad[j], f |= fin[j];
    status[p] = b ? 1 : (need_regular && !f) ? 2 : 0;
  }
};

/// Checks the B * L * K outputs `out` (in the executor's memory) of one model call: no NaN and no
/// +Inf anywhere and, for logits, a finite entry among the first `regular` classes of every
/// position. `status` is scratch of B * L bytes in the executor's memory. Throws
/// std::invalid_argument naming the first bad entry (b, l, k) and its value.
template <class Exec, class T>
void check_model_output(const Exec& exec, const char* where, const T* out, std::int64_t B,
                        std::int64_t L, int K, int regular, ModelOutput kind,
                        unsigned char* status) {
  using Space = typename Exec::memory_space;
  const std::int64_t n = B * L;
  if (n <= 0) return;
  exec.for_each(n, ModelOutputCheckKernel<T>{out, K, regular, kind == ModelOutput::logits, status},
                double(n) * K);
  // Host-accessible memory is scanned in place; device memory is copied first.
  std::vector<unsigned char> copy;
  const unsigned char* st = status;
  if constexpr (!Space::host_accessible) {
    copy.resize(static_cast<std::size_t>(n));
    copy_n(HostSpace{}, copy.data(), Space{}, status, copy.size());
    st = copy.data();
  }
  for (std::int64_t p = 0; p < n; ++p) {
    if (st[p] == 0) continue;
    std::vector<T> row(static_cast<std::size_t>(K));
    copy_n(HostSpace{}, row.data(), Space{}, out + p * K, row.size());
    const std::string pos = "b=" + std::to_string(p / L) + ", l=" + std::to_string(p % L);
    if (st[p] == 2)
      throw_invalid(where, ("model output[" + pos + "]").c_str(), "-inf",
                    "every regular logit is -inf: the predicted posterior is empty");
    for (int k = 0; k < K; ++k) {
      const T v = row[static_cast<std::size_t>(k)];
      if (std::isnan(static_cast<double>(v)) || v == std::numeric_limits<T>::infinity())
        throw_invalid(where, ("model output[" + pos + ", k=" + std::to_string(k) + "]").c_str(), v,
                      "NaN and +Inf are not valid logits or log-scores");
    }
  }
}

}  // namespace discdiff
