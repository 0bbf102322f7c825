// discdiff/sampler/kernels.hpp: the per-position reverse-step kernels of the samplers
// (spec/MATH.md 9.0-9.7). Each kernel is a trivially copyable struct over raw pointers with
// `DD_HD void operator()(std::int64_t i) const`, run by any executor (exec/) over the B * L
// positions i = b * L + l of a row-major batch. Position i draws only from
// CounterRng(seed, stream, i) (stream = the sampler step) and writes out[i] only, so the samples
// are a pure function of (inputs, seed, stream) on every backend and thread count. Categorical
// draws use double-precision uniforms and an inverse CDF accumulated in double (spec 9.0: no
// float exponential race, no implicit truncation; top-p / top-k are explicit).
//
// Logits: `logits + i * K` holds the K >= N class logits of position i; only the first N (the
// regular classes) are read, i.e. a D-class head is renormalised over the regular classes. The
// unnormalised weights e^{z - max} are evaluated in the logits' precision T (expf for float) and
// accumulated in double.
//
// Kernels (the update rules are in docs/math/samplers.md):
//   PriorKernel             x ~ pi (gen.sample_limit), fixed positions set to their values (9.7)
//   ProjectKernel           out[i] = value[i] at fixed positions (9.7 projection)
//   Md4AncestralKernel      MD4 ancestral step (9.3) with optional top-p / top-k
//   Md4FinalKernel          final step at the remaining MASK positions: argmax or sample (9.3)
//   GenMd4Kernel            GenMD4 reverse step with per-token probabilities (9.5)
//   TauLeapingKernel<Gen>   Euler (9.1) or analytic (9.2) tau-leaping, and the final denoising
//                           step (9.6), for the uniform, absorbing and roulette generators, with
//                           the posterior-to-score closed forms of spec 4.2 evaluated per
//                           candidate token (tau_leaping_coefficients)
//   TauLeapingScoreKernel<Gen>  the same steps for a log-score head (SEDD; K = D log concrete
//                           scores, s_x := 1), with the staggered score P_{-Delta} s and the row
//                           P_Delta[x, .] taken from the generator (TauScoreFactors)
// The drivers (sampler/driver.hpp) validate everything before launching a kernel.
#pragma once

#include <cstdint>
#include <limits>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/extension_types.hpp"
#include "../generator/roulette.hpp"
#include "../generator/uniform.hpp"

namespace discdiff {
namespace detail {
namespace smp {

/// Vocabularies up to this size keep e^{z - max} in a per-position local buffer.
constexpr int kSmallVocab = 128;
/// Larger vocabularies (up to kBlock * kMaxBlocks classes) keep per-block sums of e^{z - max}
/// from the single exponential pass; the draw then recomputes exponentials inside the one block
/// that holds the target only (about one exponential per class instead of two).
constexpr int kBlock = 256;
constexpr int kMaxBlocks = 256;

/// max_v z[v] over v < n (the validated logits have a finite maximum).
template <class T>
DD_HD DD_INLINE T max_logit(const T* z, int n) {
  T m = z[0];
  for (int v = 1; v < n; ++v) m = z[v] > m ? z[v] : m;
  return m;
}

/// In-place heap sort of a[0..n) into ascending order (O(n log n), no allocation; DD_HD).
template <class T>
DD_HD void heap_sort_ascending(T* a, int n) {
  auto sift = [a](int root, int end) {
    while (true) {
      int child = 2 * root + 1;
      if (child >= end) return;
      if (child + 1 < end && a[child] < a[child + 1]) ++child;
      if (!(a[root] < a[child])) return;
      const T tmp = a[root];
      a[root] = a[child];
      a[child] = tmp;
      root = child;
    }
  };
  for (int s = n / 2 - 1; s >= 0; --s) sift(s, n);
  for (int end = n - 1; end > 0; --end) {
    const T tmp = a[0];
    a[0] = a[end];
    a[end] = tmp;
    sift(0, end);
  }
}

/// The truncation threshold of top-p / top-k (spec 9.3) on the logits z[0..n): every class with
/// z[v] >= threshold is kept (ties kept), the others get probability 0.
///   top-k (k >= 1): the k-th largest logit;
///   top-p (p < 1):  the smallest logit of the shortest prefix of the classes sorted by decreasing
///                   probability whose cumulative probability is >= p.
/// Both: the larger threshold. Neither: -inf. scratch holds n entries (used only when truncating).
template <class T>
DD_HD T truncation_threshold(const T* z, int n, double top_p, int top_k, T* scratch) {
  const bool use_p = top_p < 1.0, use_k = top_k > 0 && top_k < n;
  if (!use_p && !use_k) return -std::numeric_limits<T>::infinity();
  for (int v = 0; v < n; ++v) scratch[v] = z[v];
  heap_sort_ascending(scratch, n);  // descending order is scratch[n-1], scratch[n-2], ...
  T thr = -std::numeric_limits<T>::infinity();
  if (use_k) thr = scratch[n - top_k];
  if (use_p) {
    const T m = scratch[n - 1];
    double total = 0;
    for (int j = 0; j < n; ++j) total += math::exp(static_cast<double>(scratch[j] - m));
    const double target = top_p * total;
    double cum = 0;
    T tp = scratch[0];
    for (int j = n - 1; j >= 0; --j) {
      cum += math::exp(static_cast<double>(scratch[j] - m));
      if (cum >= target) {
        tp = scratch[j];
        break;
      }
    }
    thr = tp > thr ? tp : thr;
  }
  return thr;
}

/// Inverse-CDF draw from softmax(z[0..n)) restricted to {v : z[v] >= thr}, with u in [0, 1):
/// the first v with cumsum_{w <= v} e^{z_w - m} > u * total (double). Never returns a class of
/// probability 0; returns the last kept class if rounding leaves the target uncovered.
template <class T>
DD_HD int draw_logits(const T* z, int n, T thr, double u) {
  const T m = max_logit(z, n);
  const bool cached = n <= kSmallVocab;
  const bool blocked = !cached && n <= kBlock * kMaxBlocks;
  double ebuf[kSmallVocab];  // small vocabularies: one exponential pass
  double bsum[kMaxBlocks];   // large vocabularies: block sums
  double total = 0;
  for (int lo = 0, j = 0; lo < n; lo += kBlock, ++j) {
    const int hi = lo + kBlock < n ? lo + kBlock : n;
    double sj = 0;
    for (int v = lo; v < hi; ++v)
      if (z[v] >= thr) {
        const double e = static_cast<double>(math::exp(z[v] - m));
        if (cached) ebuf[v] = e;
        sj += e;
      }
    if (blocked) bsum[j] = sj;
    total += sj;
  }
  const double target = u * total;
  double cum = 0;
  int start = 0;
  if (blocked) {  // skip whole blocks below the target
    for (int lo = 0, j = 0; lo < n; lo += kBlock, ++j) {
      if (cum + bsum[j] > target) break;
      if (lo + kBlock >= n) break;  // rounding: stay in the last block
      cum += bsum[j];
      start = lo + kBlock;
    }
  }
  int last = -1;
  for (int v = start; v < n; ++v) {
    if (!(z[v] >= thr)) continue;
    const double e = cached ? ebuf[v] : static_cast<double>(math::exp(z[v] - m));
    if (!(e > 0)) continue;
    cum += e;
    last = v;
    if (cum > target) return v;
  }
  if (last >= 0) return last;
  // rounding left the target beyond the scanned blocks: the last class with positive weight
  for (int v = n - 1; v >= 0; --v)
    if (z[v] >= thr && static_cast<double>(math::exp(z[v] - m)) > 0) return v;
  return 0;
}

/// A draw from softmax(z[0..n)) truncated by top-p / top-k (truncation_threshold, then
/// draw_logits with the uniform u): the shared body of the MD4 ancestral and final steps.
template <class T>
DD_HD int draw_truncated(const T* z, int n, double top_p, int top_k, T* scratch, double u) {
  return draw_logits(z, n, truncation_threshold(z, n, top_p, top_k, scratch), u);
}

/// argmax_v z[v] over v < n (the first maximum).
template <class T>
DD_HD int argmax_logits(const T* z, int n) {
  int best = 0;
  for (int v = 1; v < n; ++v)
    if (z[v] > z[best]) best = v;
  return best;
}

}  // namespace smp
}  // namespace detail

// ------------------------------------------------------------------ prior and projection (9.7)

/// x[i] = values[i] where fixed[i] != 0 (fixed may be null), else a draw from the limit pi of gen
/// (gen.sample_limit with CounterRng(seed, stream, i)).
template <class Gen>
struct PriorKernel {
  Gen gen;
  const unsigned char* fixed;
  const int* values;
  int* x;
  std::uint64_t seed;
  std::uint32_t stream;

  DD_HD void operator()(std::int64_t i) const {
    CounterRng rng(seed, stream, static_cast<std::uint64_t>(i));
    const int v = gen.sample_limit(rng);
    x[i] = (fixed != nullptr && fixed[i]) ? values[i] : v;
  }
};

/// out[i] = values[i] where fixed[i] != 0 (the projection after every step, spec 9.7).
struct ProjectKernel {
  const unsigned char* fixed;
  const int* values;
  int* out;

  DD_HD void operator()(std::int64_t i) const {
    if (fixed[i]) out[i] = values[i];
  }
};

// ------------------------------------------------------------------ MD4 ancestral (9.3)

/// One MD4 ancestral step from t to s < t (spec 9.3, MD4 Alg. 2) over the absorbing chain with
/// MASK = N: an unmasked token is copied; at MASK, with r, u the first two double uniforms of
/// CounterRng(seed, stream, i):
///   r <  p_unmask = (alpha_s - alpha_t)/(1 - alpha_t):  x_s ~ softmax(z[0..N)) truncated by
///        top-p / top-k (inverse CDF with u);
///   otherwise: x_s = MASK.
/// This is a draw from the N + 1 weights [p_unmask mu, 1 - p_unmask]. scratch: B*L*K entries,
/// needed only when top_p < 1 or 0 < top_k < N.
template <class T>
struct Md4AncestralKernel {
  const int* x;
  const T* logits;
  int K;
  int N;
  double p_unmask;
  double top_p;
  int top_k;
  T* scratch;
  int* out;
  std::uint64_t seed;
  std::uint32_t stream;

  DD_HD void operator()(std::int64_t i) const {
    const int xi = x[i];
    if (xi != N) {
      out[i] = xi;
      return;
    }
    CounterRng rng(seed, stream, static_cast<std::uint64_t>(i));
    const double r = rng.template uniform<double>();
    const double u = rng.template uniform<double>();
    if (!(r < p_unmask)) {
      out[i] = N;
      return;
    }
    const T* z = logits + i * K;
    out[i] = detail::smp::draw_truncated(z, N, top_p, top_k,
                                         scratch != nullptr ? scratch + i * K : nullptr, u);
  }
};

/// The final step of MD4 / MDLM (spec 9.3, 9.4): every position still at MASK = N becomes the
/// argmax of its logits (argmax = true) or a draw from softmax(z[0..N)) truncated by top-p / top-k
/// (first double uniform of CounterRng(seed, stream, i)); other tokens are copied.
template <class T>
struct Md4FinalKernel {
  const int* x;
  const T* logits;
  int K;
  int N;
  bool argmax;
  double top_p;
  int top_k;
  T* scratch;
  int* out;
  std::uint64_t seed;
  std::uint32_t stream;

  DD_HD void operator()(std::int64_t i) const {
    const int xi = x[i];
    if (xi != N) {
      out[i] = xi;
      return;
    }
    const T* z = logits + i * K;
    if (argmax) {
      out[i] = detail::smp::argmax_logits(z, N);
      return;
    }
    CounterRng rng(seed, stream, static_cast<std::uint64_t>(i));
    const double u = rng.template uniform<double>();
    out[i] = detail::smp::draw_truncated(z, N, top_p, top_k,
                                         scratch != nullptr ? scratch + i * K : nullptr, u);
  }
};

// ------------------------------------------------------------------ GenMD4 (9.5)

/// GenMD4 reverse step from t to s < t (spec 9.5) for state-dependent masking, MASK = N. With
/// mu = softmax(z[0..N)), a[v] = (alpha_{s,v} - alpha_{t,v})/(1 - alpha_{t,v}) and
/// c[v] = (1 - alpha_{s,v})/(1 - alpha_{t,v}) (host-computed, length N):
///   Pr(x_s = v) = a[v] mu_v,   Pr(x_s = MASK) = sum_v c[v] mu_v,
/// one inverse-CDF draw over the N + 1 weights (first double uniform of CounterRng(seed, stream,
/// i)). Unmasked tokens are copied.
template <class T>
struct GenMd4Kernel {
  const int* x;
  const T* logits;
  int K;
  int N;
  const double* a;
  const double* c;
  int* out;
  std::uint64_t seed;
  std::uint32_t stream;

  DD_HD void operator()(std::int64_t i) const {
    const int xi = x[i];
    if (xi != N) {
      out[i] = xi;
      return;
    }
    CounterRng rng(seed, stream, static_cast<std::uint64_t>(i));
    const double u = rng.template uniform<double>();
    const T* z = logits + i * K;
    const T m = detail::smp::max_logit(z, N);
    double s1 = 0, s0 = 0;
    for (int v = 0; v < N; ++v) {
      const double e = static_cast<double>(math::exp(z[v] - m));
      s1 += e * a[v];
      s0 += e * c[v];
    }
    const double target = u * (s1 + s0);
    double cum = 0;
    for (int v = 0; v < N; ++v) {
      const double w = static_cast<double>(math::exp(z[v] - m)) * a[v];
      cum += w;
      if (w > 0 && cum > target) {
        out[i] = v;
        return;
      }
    }
    out[i] = s0 > 0 ? N : detail::smp::argmax_logits(z, N);
  }
};

// ------------------------------------------------------------------ tau-leaping (9.1, 9.2, 9.6)

// TauMethod, TauStep and TauCoefficients (the step parameters and the weights of one
// tau-leaping step) are defined in generator/extension_types.hpp.

/// The weights of one tau-leaping step (spec 4.2, 9.1, 9.2, 9.6) at current token x as a linear
/// function of the predicted clean posterior (fx = f(x), R = sum_{h != x} f(h) over the regular
/// tokens): forwards to the generator's member gen.tau_leaping_coefficients(st, x, fx, R)
/// (generator/uniform.hpp, absorbing.hpp, roulette.hpp hold the closed forms).
template <class Gen>
DD_HD auto tau_leaping_coefficients(const Gen& gen, const TauStep& st, int x, double fx, double R)
    -> decltype(gen.tau_leaping_coefficients(st, x, fx, R)) {
  return gen.tau_leaping_coefficients(st, x, fx, R);
}

/// One tau-leaping step (Euler 9.1 or analytic 9.2) or the final denoising step (9.6:
/// step.method = analytic, step.delta = step.u, drop_mask = true; argmax picks the largest weight
/// instead of drawing). At position i with x = x[i] and f = softmax(logits[i][0..N)), the weights
/// of tau_leaping_coefficients are clamped at 0 and one class is drawn by inverse CDF in the order
/// 0..N-1, MASK, with the first double uniform of CounterRng(seed, stream, i). If every weight is
/// 0 the token stays.
template <class Gen, class T>
struct TauLeapingKernel {
  Gen gen;
  const int* x;
  const T* logits;
  int K;
  TauStep step;
  bool drop_mask;
  bool argmax;
  int* out;
  std::uint64_t seed;
  std::uint32_t stream;

  DD_HD void operator()(std::int64_t i) const {
    const int xi = x[i];
    const int n = gen.num_regular();
    if (tau_leaping_coefficients(gen, step, xi, 0.0, 1.0).stay) {  // frozen token: no work
      out[i] = xi;
      return;
    }
    const T* z = logits + i * K;
    const T m = detail::smp::max_logit(z, n);
    // small vocabularies keep e^{z - m} in a local buffer (one exponential pass instead of three);
    // large ones keep block sums of e^{z - m} over b != x (see kBlock)
    double ebuf[detail::smp::kSmallVocab];
    double bsum[detail::smp::kMaxBlocks];
    const bool cached = n <= detail::smp::kSmallVocab;
    const bool blocked = !cached && n <= detail::smp::kBlock * detail::smp::kMaxBlocks;
    double rsum = 0, ex = 0;
    for (int lo = 0, j = 0; lo < n; lo += detail::smp::kBlock, ++j) {
      const int hi = lo + detail::smp::kBlock < n ? lo + detail::smp::kBlock : n;
      double sj = 0;
      for (int h = lo; h < hi; ++h) {
        const double e = static_cast<double>(math::exp(z[h] - m));
        if (cached) ebuf[h] = e;
        if (h == xi)
          ex = e;
        else
          sj += e;
      }
      if (blocked) bsum[j] = sj;
      rsum += sj;
    }
    const double zsum = rsum + ex, fx = ex / zsum, R = rsum / zsum;
    const TauCoefficients k = tau_leaping_coefficients(gen, step, xi, fx, R);
    const double wx = (drop_mask && xi == n) ? 0.0 : (k.wx > 0 ? k.wx : 0.0);
    const double inv_z = 1.0 / zsum;
    auto weight = [&](int b) {
      if (b == xi) return wx;
      const double e = cached ? ebuf[b] : static_cast<double>(math::exp(z[b] - m));
      const double w = k.c0 + k.c1 * (e * inv_z);
      return w > 0 ? w : 0.0;
    };
    if (argmax) {
      int best = xi;
      double bw = -1;
      for (int b = 0; b < n; ++b) {
        const double w = weight(b);
        if (w > bw) {
          bw = w;
          best = b;
        }
      }
      if (xi == n && wx > bw) best = n;
      out[i] = best;
      return;
    }
    CounterRng rng(seed, stream, static_cast<std::uint64_t>(i));
    const double u = rng.template uniform<double>();
    double total;
    if (k.c0 >= 0 && k.c1 >= 0) {
      total = (xi == n ? n : n - 1) * k.c0 + k.c1 * R + wx;
    } else {
      total = wx;
      for (int b = 0; b < n; ++b)
        if (b != xi) total += weight(b);
    }
    if (!(total > 0)) {
      out[i] = xi;
      return;
    }
    const double target = u * total;
    double cum = 0;
    int last = xi;
    int start = 0;
    if (blocked && k.c0 >= 0 && k.c1 >= 0) {  // no clamping: block weights in closed form
      for (int lo = 0, j = 0; lo < n; lo += detail::smp::kBlock, ++j) {
        const int hi = lo + detail::smp::kBlock < n ? lo + detail::smp::kBlock : n;
        const bool has_x = xi >= lo && xi < hi;
        const double wj = (hi - lo - (has_x ? 1 : 0)) * k.c0 + k.c1 * bsum[j] * inv_z + (has_x ? wx : 0.0);
        if (cum + wj > target || hi == n) break;
        cum += wj;
        start = hi;
      }
    }
    for (int b = start; b < n; ++b) {
      const double w = weight(b);
      if (!(w > 0)) continue;
      cum += w;
      last = b;
      if (cum > target) {
        out[i] = b;
        return;
      }
    }
    if (xi == n && wx > 0) last = n;
    out[i] = last;
  }
};

// ------------------------------------------------------------------ tau-leaping from log-scores

/// The generator factors a log-score tau-leaping step needs, read once per step from the
/// generator's closed-form transition (any of uniform, absorbing, roulette):
///   inverse regular block P_{-Delta}[b', b] = k_same [b' = b] + k_all, P_{-Delta}[MASK, b] = ai;
///   row x of P_Delta: B (regular b != x), C (b = x, x regular), A (x = MASK, regular b).
struct TauScoreFactors {
  double k_same = 1, k_all = 0, ai = 0, B = 0, C = 1, A = 0;

  template <class Gen>
  static TauScoreFactors from(const Gen& gen, double delta) {
    using G = typename Gen::value_type;
    TauScoreFactors f;
    const G d = static_cast<G>(delta);
    f.k_all = static_cast<double>(gen.transition(1, 0, -d));
    f.k_same = static_cast<double>(gen.transition(0, 0, -d)) - f.k_all;
    f.B = static_cast<double>(gen.transition(1, 0, d));
    f.C = static_cast<double>(gen.transition(0, 0, d));
    if (gen.has_mask()) {
      f.ai = static_cast<double>(gen.transition(gen.mask(), 0, -d));
      f.A = static_cast<double>(gen.transition(gen.mask(), 0, d));
    }
    return f;
  }
};

/// One tau-leaping step (Euler 9.1 or analytic 9.2), or the final denoising step (9.6), for a
/// log-score head: o = logits + i * K holds K = D log-scores, s_b = e^{o_b} (b != x), s_x = 1.
///   Euler:    W(b) = h Q[x,b] s_b (b != x, Q[x,b] = gen.rate(x, b)), W(x) = 1 - sum_b W(b);
///   analytic: shat_b = k_same s_b + k_all S_reg (b regular), shat_MASK = s_MASK + ai S_reg,
///             S_reg = sum_{z<N} s_z, and w(b) = shat_b P_Delta[x, b] (factors in `fac`).
/// Weights clamped at 0, drawn by inverse CDF over 0..D-1 with the first double uniform of
/// CounterRng(seed, stream, i) (or argmax). Absorbing at a regular token stays.
template <class Gen, class T>
struct TauLeapingScoreKernel {
  Gen gen;
  const int* x;
  const T* scores;
  int K;
  TauStep step;
  TauScoreFactors fac;
  bool drop_mask;
  bool argmax;
  int* out;
  std::uint64_t seed;
  std::uint32_t stream;

  DD_HD double weight(int xi, int b, const T* o, double sreg) const {
    const int n = gen.num_regular();
    const bool mask_x = gen.has_mask() && xi == n;
    if (step.method == TauMethod::euler) {
      if (b == xi) return 0.0;  // filled in by the caller
      return step.h * static_cast<double>(gen.rate(xi, b)) * static_cast<double>(math::exp(o[b]));
    }
    if (b == n) {  // MASK (only reachable from MASK)
      if (!mask_x || drop_mask) return 0.0;
      return 1.0 + fac.ai * sreg;
    }
    const double sb = b == xi ? 1.0 : static_cast<double>(math::exp(o[b]));
    const double shat = fac.k_same * sb + fac.k_all * sreg;
    const double row = mask_x ? fac.A : (b == xi ? fac.C : fac.B);
    return shat * row;
  }

  DD_HD void operator()(std::int64_t i) const {
    const int xi = x[i];
    const int n = gen.num_regular(), d = gen.num_states();
    if (xi != gen.mask() && !(gen.rate(xi, xi == 0 ? 1 : 0) > 0)) {
      out[i] = xi;  // Q[x, b] = 0 for every b != x (absorbing): a regular token is frozen
      return;
    }
    const T* o = scores + i * K;
    double sreg = 0;  // S_reg = sum_{z<N} s_z with s_x = 1
    if (step.method == TauMethod::analytic)
      for (int z = 0; z < n; ++z) sreg += z == xi ? 1.0 : static_cast<double>(math::exp(o[z]));
    double wx = 1.0;
    if (step.method == TauMethod::euler) {
      double tot = 0;
      for (int b = 0; b < d; ++b)
        if (b != xi) tot += weight(xi, b, o, sreg);
      wx = 1.0 - tot;
    } else {
      wx = weight(xi, xi, o, sreg);
    }
    if (drop_mask && xi == n) wx = 0.0;
    wx = wx > 0 ? wx : 0.0;
    auto w = [&](int b) {
      if (b == xi) return wx;
      const double v = weight(xi, b, o, sreg);
      return v > 0 ? v : 0.0;
    };
    if (argmax) {
      int best = xi;
      double bw = -1;
      for (int b = 0; b < d; ++b) {
        const double v = w(b);
        if (v > bw) {
          bw = v;
          best = b;
        }
      }
      out[i] = best;
      return;
    }
    CounterRng rng(seed, stream, static_cast<std::uint64_t>(i));
    const double u = rng.template uniform<double>();
    double total = 0;
    for (int b = 0; b < d; ++b) total += w(b);
    if (!(total > 0)) {
      out[i] = xi;
      return;
    }
    const double target = u * total;
    double cum = 0;
    int last = xi;
    for (int b = 0; b < d; ++b) {
      const double v = w(b);
      if (!(v > 0)) continue;
      cum += v;
      last = b;
      if (cum > target) {
        out[i] = b;
        return;
      }
    }
    out[i] = last;
  }
};

}  // namespace discdiff
