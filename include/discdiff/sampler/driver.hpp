// discdiff/sampler/driver.hpp: host drivers of the grid samplers (spec/MATH.md 9): a time grid, a
// step count, a seed and a per-step callback around the kernels of sampler/kernels.hpp.
//
//   sample(exec, gen, sched, denoiser, options, B, L, x [, conditioning, callback])
//       SamplerKind::euler / analytic      tau-leaping (9.1 / 9.2) for uniform, absorbing, roulette;
//                                          the denoiser may be a log-score head (K = D)
//       SamplerKind::md4_ancestral         MD4 ancestral (9.3), absorbing only, top-p / top-k
//       SamplerKind::md4_cached            the same, reusing the denoiser output while x is
//                                          unchanged and the denoiser ignores t (9.4 ddpm_cache);
//                                          otherwise identical samples (same streams)
//   sample_genmd4(exec, gen, sched, denoiser, options, B, L, x [, conditioning, callback])
//       the GenMD4 reverse step (9.5) for state-dependent masking with an S-GEN-POLY schedule
//   sample_semi_autoregressive(...)      window-by-window continuation (9.8)
//
// Randomness: the prior draw uses stream 0, step k (0-based) stream k + 1 and the final step
// stream S + 1, each keyed by (seed, stream, index = b * L + l) (core/random.hpp), so every
// executor and thread count gives bit-identical samples.
//
// Backends: the drivers run on any executor. The denoiser is a Model (model/model.hpp) in the
// executor's memory space; the tokens, the model outputs, the times and the conditioning live in
// that space too (Buffer), and only the scalars of the grid and a few reductions (is any position
// MASK, did x change) cross to the host. The samples come back to the caller's host vector x;
// StepInfo::x points into the executor's memory (read it on the host only for host executors).
//
// Every input is validated on the host (steps >= 1, B, L >= 1, the denoiser's class count and
// every output it returns, top-p in (0, 1], top-k >= 0, the conditioning) with
// std::invalid_argument naming the bad value.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../exec/algorithm.hpp"
#include "../exec/memory.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/state_dependent.hpp"
#include "../schedule/per_token_polynomial.hpp"
#include "conditioning.hpp"
#include "denoiser.hpp"
#include "grid.hpp"
#include "kernels.hpp"

namespace discdiff {

/// The grid samplers of sample().
enum class SamplerKind { euler, analytic, md4_ancestral, md4_cached };

/// What happens after the last grid step.
enum class FinalStep {
  none,    ///< nothing (MASK tokens may remain)
  argmax,  ///< MD4: argmax of the logits at MASK positions; tau-leaping: 9.6 then argmax
  sample   ///< MD4: a draw from the (truncated) logits at MASK; tau-leaping: 9.6 then a draw
};

/// Options of sample() and sample_genmd4().
struct SamplerOptions {
  SamplerKind kind = SamplerKind::analytic;
  int steps = 128;                   ///< S >= 1 grid steps
  std::uint64_t seed = 0;            ///< counter-RNG key
  GridKind grid = GridKind::sedd;    ///< time grid (grid.hpp)
  double eps = 1e-5;                 ///< end of the sedd grid
  FinalStep final_step = FinalStep::none;
  double top_p = 1.0;                ///< MD4 kinds: nucleus mass in (0, 1]; 1 = off
  int top_k = 0;                     ///< MD4 kinds: keep the k most likely tokens; 0 = off
};

/// What a sampler run did.
struct SamplerStats {
  int steps = 0;  ///< grid steps taken
  int nfe = 0;    ///< denoiser (network) evaluations, final step included
};

/// Passed to the per-step callback after step `step` (0-based; step = S for the final step) with
/// the current tokens x (B x L, after the projection, in the executor's memory space).
struct StepInfo {
  int step;
  double t, s;
  const int* x;
  std::int64_t B, L;
  int nfe;
};

/// The default callback: does nothing.
struct NoStepCallback {
  void operator()(const StepInfo&) const {}
};

namespace detail {
namespace smp {

inline void check_common(const char* where, const SamplerOptions& opt, std::int64_t B,
                         std::int64_t L) {
  if (opt.steps < 1) throw_invalid(where, "steps", opt.steps, "must be >= 1");
  if (B < 1) throw_invalid(where, "B", B, "must be >= 1");
  if (L < 1) throw_invalid(where, "L", L, "must be >= 1");
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw_invalid(where, "top_p", opt.top_p, "must lie in (0, 1]");
  if (opt.top_k < 0) throw_invalid(where, "top_k", opt.top_k, "must be >= 0 (0 = off)");
}

template <class Gen>
struct is_absorbing : std::false_type {};
template <class G>
struct is_absorbing<AbsorbingGenerator<G>> : std::true_type {};

/// Counts the positions of x (n entries) that equal `value`.
struct CountEqualTerm {
  const int* x;
  int value;
  DD_HD std::int64_t operator()(std::int64_t i) const { return x[i] == value ? 1 : 0; }
};

/// Counts the positions where a and b differ.
struct CountDiffTerm {
  const int* a;
  const int* b;
  DD_HD std::int64_t operator()(std::int64_t i) const { return a[i] != b[i] ? 1 : 0; }
};

/// A Conditioning copied into the executor's memory space (empty when nothing is fixed).
template <class Space>
struct ConditioningBuffers {
  Buffer<unsigned char, Space> fixed;
  Buffer<int, Space> values;

  ConditioningBuffers() = default;
  explicit ConditioningBuffers(const Conditioning* c) { assign(c); }
  void assign(const Conditioning* c) {
    if (c == nullptr || c->empty()) {
      fixed.clear();
      values.clear();
      return;
    }
    fixed.resize(c->fixed.size());
    values.resize(c->values.size());
    copy_from_host(fixed, c->fixed.data(), c->fixed.size());
    copy_from_host(values, c->values.data(), c->values.size());
  }
  const unsigned char* fixed_ptr() const { return fixed.empty() ? nullptr : fixed.data(); }
  const int* values_ptr() const { return values.empty() ? nullptr : values.data(); }
};

/// Shared state of a grid run: buffers in the executor's memory, the model call with
/// validation, projection, reductions, the copy of the samples back to the host.
template <class Exec, class Den, class T>
struct GridRun {
  using Space = typename Exec::memory_space;
  const Exec& exec;
  const Den& den;
  std::int64_t B, L;
  int K, N;
  ConditioningBuffers<Space> cond;
  Buffer<int, Space> x, next;
  Buffer<T, Space> own, tvec, svec;  // own: the outputs of a model without evaluate()
  T* logits = nullptr;                // the last call's outputs (the model's storage or own)
  Buffer<unsigned char, Space> status;
  SamplerStats stats;
  const char* where;

  GridRun(const Exec& e, const Den& d, std::int64_t b, std::int64_t l, int n, const Conditioning* c,
          const char* w)
      : exec(e), den(d), B(b), L(l), K(d.num_classes()), N(n), cond(c), where(w) {
    x.resize(static_cast<std::size_t>(B * L));
    next.resize(x.size());
    tvec.resize(static_cast<std::size_t>(B));
    svec.resize(static_cast<std::size_t>(B));
    status.resize(x.size());
  }

  void call(double t, double sbar, bool with_sbar) {
    fill_n(exec, tvec.data(), B, static_cast<T>(t));
    fill_n(exec, svec.data(), B, static_cast<T>(sbar));
    logits = model_outputs(den, ModelQuery<T>{x.data(), B, L, tvec.data(), with_sbar ? svec.data() : nullptr},
                           K, own);
    ++stats.nfe;
    check_model_output(exec, where, logits, B, L, K, N, model_output_v<Den>, status.data());
  }

  /// Projection of `next`, then swap into x.
  void finish_step() {
    if (cond.fixed_ptr() != nullptr)
      exec.for_each(B * L, ProjectKernel{cond.fixed_ptr(), cond.values_ptr(), next.data()});
    std::swap(x, next);
  }

  template <class Gen>
  void prior(const Gen& gen, std::uint64_t seed, std::uint32_t stream = 0u) {
    exec.for_each(B * L, PriorKernel<Gen>{gen, cond.fixed_ptr(), cond.values_ptr(), x.data(), seed,
                                          stream});
  }

  bool any_equal(int value) const {
    return reduce_sum_value<Exec, std::int64_t>(exec, B * L, 4096, CountEqualTerm{x.data(), value}) > 0;
  }
  bool next_differs() const {
    return reduce_sum_value<Exec, std::int64_t>(exec, B * L, 4096,
                                                CountDiffTerm{x.data(), next.data()}) > 0;
  }
  std::size_t logits_size() const { return static_cast<std::size_t>(B * L) * static_cast<std::size_t>(K); }
  void copy_out(std::vector<int>& out) const {
    out.resize(x.size());
    copy_n(HostSpace{}, out.data(), Space{}, x.data(), x.size());
  }
};

template <class Den, class T, class Exec, class Gen>
void check_denoiser_setup(const char* where, const Den& den, const Gen& gen,
                          bool scores_ok = false) {
  static_assert(std::is_same<typename Den::value_type, T>::value,
                "sampler: the denoiser's value_type must equal the generator's value_type");
  static_check_model_space<Den, Exec>();
  if (model_output_v<Den> != ModelOutput::logits && !scores_ok)
    throw_invalid(where, "denoiser output", "log_scores",
                  "this sampler needs clean-token logits (log-score heads: Euler and analytic "
                  "tau-leaping only)");
  check_model_classes(where, den.num_classes(), gen.num_regular(), gen.num_states(),
                      model_output_v<Den>);
}

}  // namespace smp
}  // namespace detail

/// Runs a grid sampler (see the file comment) and writes the B x L samples to x (resized).
/// gen: UniformGenerator, AbsorbingGenerator or RouletteGenerator (MD4 kinds: absorbing only);
/// sched: a scalar schedule (sigma, sigma_bar, alpha, one_minus_alpha); den: a Denoiser with
/// value_type = Gen::value_type; cond: fixed positions (may be null). The callback is called after
/// every step with a StepInfo.
template <class Exec, class Gen, class Sched, class Den, class Callback = NoStepCallback>
SamplerStats sample(const Exec& exec, const Gen& gen, const Sched& sched, const Den& den,
                    const SamplerOptions& opt, std::int64_t B, std::int64_t L, std::vector<int>& x,
                    const Conditioning* cond = nullptr, Callback&& callback = Callback{}) {
  using T = typename Gen::value_type;
  const char* where = "discdiff::sample";
  detail::smp::check_common(where, opt, B, L);
  const bool md4 = opt.kind == SamplerKind::md4_ancestral || opt.kind == SamplerKind::md4_cached;
  constexpr bool scores = model_output_v<Den> == ModelOutput::log_scores;
  detail::smp::check_denoiser_setup<Den, T, Exec>(where, den, gen, !md4);
  const int N = gen.num_regular();
  if (cond != nullptr) detail::check_conditioning(where, *cond, B, L, N);
  if (md4 && !detail::smp::is_absorbing<Gen>::value)
    throw_invalid(where, "kind", static_cast<int>(opt.kind),
                  "the MD4 ancestral samplers need the absorbing generator");
  const std::vector<double> grid = time_grid(opt.grid, opt.steps, opt.eps);
  if (!md4 && opt.final_step != FinalStep::none && !(sched.sigma_bar(T(grid.back())) > T(0)))
    throw_invalid(where, "t_S", grid.back(),
                  "the final denoising step of tau-leaping needs sbar(t_S) > 0 (use GridKind::sedd)");

  detail::smp::GridRun<Exec, Den, T> run(exec, den, B, L, N, cond, where);
  run.prior(gen, opt.seed);
  const bool truncate = opt.top_p < 1.0 || (opt.top_k > 0 && opt.top_k < N);
  Buffer<T, typename Exec::memory_space> scratch;
  const bool cache_ok = opt.kind == SamplerKind::md4_cached && !model_time_conditioned(den);
  bool changed = true;

  for (int k = 0; k < opt.steps; ++k) {
    const double t = grid[static_cast<std::size_t>(k)], s = grid[static_cast<std::size_t>(k) + 1];
    const std::uint32_t stream = static_cast<std::uint32_t>(k) + 1u;
    const double sbar_t = static_cast<double>(sched.sigma_bar(T(t)));
    if (!(cache_ok && !changed)) run.call(t, sbar_t, true);
    if (md4) {
      if (truncate && scratch.empty()) scratch.resize(run.logits_size());
      const double oma_t = static_cast<double>(sched.one_minus_alpha(T(t)));
      const double oma_s = static_cast<double>(sched.one_minus_alpha(T(s)));
      const double p_unmask = (oma_t - oma_s) / oma_t;
      exec.for_each(B * L, Md4AncestralKernel<T>{run.x.data(), run.logits, run.K, N, p_unmask,
                                                 opt.top_p, opt.top_k,
                                                 truncate ? scratch.data() : nullptr,
                                                 run.next.data(), opt.seed, stream});
    } else {
      TauStep st;
      st.u = sbar_t;
      if (opt.kind == SamplerKind::euler) {
        st.method = TauMethod::euler;
        st.h = (t - s) * static_cast<double>(sched.sigma(T(t)));
      } else {
        st.method = TauMethod::analytic;
        st.delta = sbar_t - static_cast<double>(sched.sigma_bar(T(s)));
      }
      if constexpr (scores) {
        exec.for_each(B * L, TauLeapingScoreKernel<Gen, T>{
                                 gen, run.x.data(), run.logits, run.K, st,
                                 TauScoreFactors::from(gen, st.delta), false, false,
                                 run.next.data(), opt.seed, stream});
      } else {
        exec.for_each(B * L, TauLeapingKernel<Gen, T>{gen, run.x.data(), run.logits, run.K, st,
                                                      false, false, run.next.data(), opt.seed,
                                                      stream});
      }
    }
    if (cache_ok) changed = run.next_differs();
    run.finish_step();
    ++run.stats.steps;
    callback(StepInfo{k, t, s, run.x.data(), B, L, run.stats.nfe});
  }

  if (opt.final_step != FinalStep::none) {
    const double tf = grid.back();
    const std::uint32_t stream = static_cast<std::uint32_t>(opt.steps) + 1u;
    const double sbar_f = static_cast<double>(sched.sigma_bar(T(tf)));
    const bool argmax = opt.final_step == FinalStep::argmax;
    const bool any_mask = run.any_equal(N);
    if (md4) {
      if (any_mask) {
        if (!(cache_ok && !changed)) run.call(tf, sbar_f, true);
        if (truncate && scratch.empty()) scratch.resize(run.logits_size());
        exec.for_each(B * L, Md4FinalKernel<T>{run.x.data(), run.logits, run.K, N, argmax,
                                               opt.top_p, opt.top_k,
                                               truncate ? scratch.data() : nullptr,
                                               run.next.data(), opt.seed, stream});
        run.finish_step();
      }
    } else {
      run.call(tf, sbar_f, true);
      TauStep st;
      st.method = TauMethod::analytic;
      st.u = sbar_f;
      st.delta = sbar_f;
      if constexpr (scores) {
        exec.for_each(B * L, TauLeapingScoreKernel<Gen, T>{
                                 gen, run.x.data(), run.logits, run.K, st,
                                 TauScoreFactors::from(gen, st.delta), true, argmax,
                                 run.next.data(), opt.seed, stream});
      } else {
        exec.for_each(B * L, TauLeapingKernel<Gen, T>{gen, run.x.data(), run.logits, run.K, st,
                                                      true, argmax, run.next.data(), opt.seed,
                                                      stream});
      }
      run.finish_step();
    }
    callback(StepInfo{opt.steps, tf, tf, run.x.data(), B, L, run.stats.nfe});
  }
  run.copy_out(x);
  return run.stats;
}

/// The GenMD4 sampler (spec 9.5): state-dependent masking with the S-GEN-POLY schedule `sched`,
/// on an MD4 grid (opt.grid uniform or cosine; opt.kind is ignored). The denoiser gets t and a
/// null sigma_bar. Final step: argmax or a draw of the logits at the remaining MASK positions.
template <class Exec, class T, class Den, class Callback = NoStepCallback>
SamplerStats sample_genmd4(const Exec& exec, const StateDependentMaskingGenerator<T>& gen,
                           const PerTokenPolynomialSchedule<T>& sched, const Den& den,
                           const SamplerOptions& opt, std::int64_t B, std::int64_t L,
                           std::vector<int>& x, const Conditioning* cond = nullptr,
                           Callback&& callback = Callback{}) {
  const char* where = "discdiff::sample_genmd4";
  detail::smp::check_common(where, opt, B, L);
  detail::smp::check_denoiser_setup<Den, T, Exec>(where, den, gen);
  const int N = gen.num_regular();
  if (sched.num_regular() != N) {
    const std::string why = "must equal the generator's N = " + std::to_string(N);
    throw_invalid(where, "sched.num_regular()", sched.num_regular(), why.c_str());
  }
  if (cond != nullptr) detail::check_conditioning(where, *cond, B, L, N);
  const std::vector<double> grid = time_grid(opt.grid, opt.steps, opt.eps);
  const PerTokenPolynomialView<T> view = sched.view();

  detail::smp::GridRun<Exec, Den, T> run(exec, den, B, L, N, cond, where);
  run.prior(gen, opt.seed);
  std::vector<double> a(static_cast<std::size_t>(N)), c(static_cast<std::size_t>(N));
  Buffer<double, typename Exec::memory_space> ab(a.size()), cb(c.size());
  for (int k = 0; k < opt.steps; ++k) {
    const double t = grid[static_cast<std::size_t>(k)], s = grid[static_cast<std::size_t>(k) + 1];
    const std::uint32_t stream = static_cast<std::uint32_t>(k) + 1u;
    run.call(t, 0.0, false);
    for (int v = 0; v < N; ++v) {
      const double oma_t = static_cast<double>(view.one_minus_alpha(T(t), v));
      const double oma_s = static_cast<double>(view.one_minus_alpha(T(s), v));
      a[static_cast<std::size_t>(v)] = (oma_t - oma_s) / oma_t;
      c[static_cast<std::size_t>(v)] = oma_s / oma_t;
    }
    copy_from_host(ab, a.data(), a.size());
    copy_from_host(cb, c.data(), c.size());
    exec.for_each(B * L, GenMd4Kernel<T>{run.x.data(), run.logits, run.K, N, ab.data(), cb.data(),
                                         run.next.data(), opt.seed, stream});
    run.finish_step();
    ++run.stats.steps;
    callback(StepInfo{k, t, s, run.x.data(), B, L, run.stats.nfe});
  }
  if (opt.final_step != FinalStep::none) {
    const bool any_mask = run.any_equal(N);
    if (any_mask) {
      const double tf = grid.back();
      run.call(tf, 0.0, false);
      const bool truncate = opt.top_p < 1.0 || (opt.top_k > 0 && opt.top_k < N);
      Buffer<T, typename Exec::memory_space> scratch(truncate ? run.logits_size() : 0);
      exec.for_each(B * L, Md4FinalKernel<T>{run.x.data(), run.logits, run.K, N,
                                             opt.final_step == FinalStep::argmax, opt.top_p,
                                             opt.top_k, truncate ? scratch.data() : nullptr,
                                             run.next.data(), opt.seed,
                                             static_cast<std::uint32_t>(opt.steps) + 1u});
      run.finish_step();
    }
    callback(StepInfo{opt.steps, grid.back(), grid.back(), run.x.data(), B, L, run.stats.nfe});
  }
  run.copy_out(x);
  return run.stats;
}

/// Semi-autoregressive continuation (spec 9.8) with windows of length L: the first window keeps
/// `prompt` (P < L tokens, the same for every row) fixed and samples the other L - P positions;
/// every later window keeps the last L - stride tokens generated so far as its fixed prefix and
/// samples `stride` new positions. Output: B rows of P + (L - P) + (num_windows - 1) * stride
/// tokens in x (row-major). Window w uses opt with seed = opt.seed + w * 0x9E3779B97F4A7C15 (each
/// window is an independent sample() call on the same executor). Throws for a prompt of L or more
/// tokens, stride outside [1, L], num_windows < 1, or opt.final_step = none.
template <class Exec, class Gen, class Sched, class Den>
SamplerStats sample_semi_autoregressive(const Exec& exec, const Gen& gen, const Sched& sched,
                                        const Den& den, const SamplerOptions& opt, std::int64_t B,
                                        std::int64_t L, const std::vector<int>& prompt,
                                        std::int64_t stride, int num_windows,
                                        std::vector<int>& x) {
  const char* where = "discdiff::sample_semi_autoregressive";
  if (L < 1) throw_invalid(where, "L", L, "must be >= 1");
  if (static_cast<std::int64_t>(prompt.size()) >= L) {
    const std::string why = "the prompt must be shorter than the window length L = " +
                            std::to_string(L);
    throw_invalid(where, "prompt.size()", prompt.size(), why.c_str());
  }
  if (stride < 1 || stride > L) {
    const std::string why = "must lie in [1, L = " + std::to_string(L) + "]";
    throw_invalid(where, "stride", stride, why.c_str());
  }
  if (num_windows < 1) throw_invalid(where, "num_windows", num_windows, "must be >= 1");
  if (opt.final_step == FinalStep::none)
    throw_invalid(where, "final_step", "none",
                  "each window must end with argmax or sample, so that the carried-over prefix "
                  "holds regular tokens only");
  const std::int64_t total = L + static_cast<std::int64_t>(num_windows - 1) * stride;
  x.assign(static_cast<std::size_t>(B * total), 0);
  SamplerStats stats;
  std::vector<int> win;
  Conditioning cond = prefix_conditioning(B, L, prompt);
  for (int w = 0; w < num_windows; ++w) {
    const std::int64_t start = static_cast<std::int64_t>(w) * stride;  // window = [start, start+L)
    if (w > 0) {
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t l = 0; l < L; ++l) {
          const bool fix = l < L - stride;
          cond.fixed[static_cast<std::size_t>(b * L + l)] = fix ? 1 : 0;
          cond.values[static_cast<std::size_t>(b * L + l)] =
              fix ? x[static_cast<std::size_t>(b * total + start + l)] : 0;
        }
    }
    SamplerOptions o = opt;
    o.seed = opt.seed + static_cast<std::uint64_t>(w) * 0x9E3779B97F4A7C15ull;
    const SamplerStats s = sample(exec, gen, sched, den, o, B, L, win, &cond);
    stats.steps += s.steps;
    stats.nfe += s.nfe;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t l = 0; l < L; ++l)
        x[static_cast<std::size_t>(b * total + start + l)] = win[static_cast<std::size_t>(b * L + l)];
  }
  return stats;
}

}  // namespace discdiff
