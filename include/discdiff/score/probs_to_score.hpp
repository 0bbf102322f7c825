// discdiff/score/probs_to_score.hpp: from a predicted clean-token posterior to concrete scores
// ("probs_to_score", spec/MATH.md section 4).
//
// At one position with current token x = x_t^i and total noise u = sbar(t), a denoiser predicts
// f(h) ~ p_{0|t}(x_0^i = h | x_t). The denoising identity (spec 1.5, 4.1) turns f into the
// concrete score
//
//   s_b = sum_{h < N, P_u[x,h] > 0} f(h) P_u[b,h] / P_u[x,h]     (b != x),     s_x := 1.
//
// This header evaluates it
//   * in closed form in O(D) (spec 4.2): `probs_to_score` for UniformGenerator,
//     AbsorbingGenerator, RouletteGenerator and StateDependentMaskingGenerator (any generator
//     with the member probs_to_score of docs/architecture.md, "Generator extension points";
//     the formulas below live in the generator headers);
//   * generically in O(D^2) through gen.transition (the naive reference, any generator including
//     the dense oracle): `probs_to_score_naive`;
//   * from logits z (softmax with max subtraction, then the closed form): `logits_to_score`;
//   * with host validation: `probs_to_score_checked`, `logits_to_score_checked` (std::vector).
//
// The predicted distribution f has nf = N entries (MD4-style heads, no MASK class) or nf = D
// entries (SEDD/PBRC heads whose softmax also covers MASK; phi := f(MASK) = f[N]). The clean token
// is never MASK, so the identity sums over regular h only; PhiMode says what happens to phi:
//   exact        the identity as written, with f as given (regular mass S = 1 - phi);
//   renormalize  f(h) / (1 - phi) over the regular classes (the regular mass becomes 1);
//   ignore       phi taken as 0 in the closed forms (S := 1), as the PBRC code does (spec 4.2,
//                13.11). With nf = N (phi = 0) the three modes coincide.
// ScoreOptions::pbrc_safeguards additionally reproduces the numerical hacks of spec 4.3 (uniform:
// u floored at 0.0015; roulette: r_bc and r_cb at u_eff = ln(1.1 u + 1.1) for u < 0.5). They are
// not part of the mathematics; use them only to match PBRC numbers. ScoreOptions::pbrc() turns on
// both PBRC behaviours.
//
// Closed forms (spec 4.2), with e = e^{-u}, m = -expm1(-u), em1 = expm1(u) = m/e, written so that
// every term is >= 0 (no cancellation, also when f(x) -> 1 or a ratio is tiny):
//   uniform:                 s_b = R_x + f(x) rU_bc + f(b) (rU_cb - 1)
//                            rU_cb - 1 = N e/m = N/em1,  rU_bc = m/(N e + m) = em1/(em1 + N)
//                            [= S + f(b)(rU_cb - 1) + f(x)(rU_bc - 1) of the spec, S = R_x + f(x)]
//   absorbing, x = MASK:     s_b = f(b)/em1 (b regular),  s_MASK = 1
//   absorbing, x regular:    s_b = 0 (b regular != x),    s_MASK = f(x) em1 (unused by reverse
//                            rates; not the true ratio p_t(x^{i<-MASK})/p_t(x), see 4.2)
//   roulette,  x = MASK:     s_b = r_ba (S - f(b)) + r_ca f(b) = r_ba S + f(b) e_g/sm
//   roulette,  x = c regular: s_b = R_c + f(c) r_bc + f(b) (r_cb - 1)  (b regular),
//                            s_MASK = R_c A/B + f(c) A/C (unused: Q[c,MASK] = 0)
//   state-dependent, x = MASK:   s_b = f(b) alpha_{t,b}/(1 - alpha_{t,b}) = f(b)/expm1(ubar_b)
//   state-dependent, x regular:  s_b = 0,  s_MASK = f(x) expm1(ubar_x)
// where S = sum_{h < N} f(h) (= 1 - phi for a normalised f) and R_x = sum_{h < N, h != x} f(h),
// both summed (compensated) over the input; with PhiMode::renormalize every f is divided by
// 1 - phi; with PhiMode::ignore (PBRC) S = 1 and R_x = 1 - f(x).
//
// Preconditions of the DD_HD functions (not checked; the *_checked wrappers check them): x in
// [0, D), u > 0 finite (every ubar_v > 0 for state-dependent masking), f a probability vector of
// length nf in {N, D}, P_u[x,h] > 0 for some regular h. `s` has D entries; it may alias f (the
// closed forms and logits_to_score work in place).
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/checked.hpp"
#include "../generator/detail.hpp"
#include "../generator/roulette.hpp"
#include "../generator/state_dependent.hpp"
#include "../generator/uniform.hpp"

namespace discdiff {

/// What to do with the predicted MASK mass phi = f(MASK) (spec 4.1, 4.2).
enum class PhiMode {
  exact,        ///< the identity over regular h with f as given (regular mass 1 - phi)
  renormalize,  ///< f(h)/(1 - phi) over the regular classes
  ignore        ///< phi taken as 0 in the closed forms (PBRC code)
};

/// Options of probs_to_score.
struct ScoreOptions {
  PhiMode phi = PhiMode::exact;
  /// spec 4.3: uniform u floored at 0.0015; roulette r_bc, r_cb at u_eff = ln(1.1 u + 1.1), u < 0.5.
  bool pbrc_safeguards = false;

  /// The PBRC code's behaviour: phi ignored and the 4.3 safeguards on.
  DD_HD static ScoreOptions pbrc() { return ScoreOptions{PhiMode::ignore, true}; }
};

namespace detail {
namespace score {

/// The factor applied to every f(h) for the chosen PhiMode: 1/(1 - phi) (renormalize), else 1.
template <class T>
DD_HD DD_INLINE T phi_scale(const T* f, int nf, int n, PhiMode mode) {
  return (mode == PhiMode::renormalize && nf > n) ? T(1) / (T(1) - f[n]) : T(1);
}

}  // namespace score
}  // namespace detail

// ------------------------------------------------------------------ closed forms (spec 4.2)

/// The closed form of spec 4.2 for the generator's kind, O(D): computes the PhiMode scale
/// (1/(1 - phi) for PhiMode::renormalize with nf = D, else 1) and forwards to the generator's
/// member gen.probs_to_score(f, x, u, scale, opt.phi == PhiMode::ignore, opt.pbrc_safeguards, s)
/// (generator/uniform.hpp, absorbing.hpp, roulette.hpp, state_dependent.hpp hold the formulas
/// listed above). U is T (scalar-noise generators) or const T* (per-token ubar, state-dependent
/// masking). s (D entries) may alias f.
template <class Gen, class U>
DD_HD auto probs_to_score(const Gen& gen, const typename Gen::value_type* f, int nf, int x,
                          const U& u, typename Gen::value_type* s, ScoreOptions opt = {})
    -> decltype(gen.probs_to_score(f, x, u, typename Gen::value_type(1), false, false, s)) {
  const typename Gen::value_type scale =
      detail::score::phi_scale(f, nf, gen.num_regular(), opt.phi);
  gen.probs_to_score(f, x, u, scale, opt.phi == PhiMode::ignore, opt.pbrc_safeguards, s);
}

// ------------------------------------------------------------------ naive reference (spec 4.1)

/// The identity of spec 4.1 term by term through gen.transition, O(D * N): any generator (also
/// the host-only DenseGenerator), scalar u or per-token ubar. PhiMode::ignore is treated as
/// exact (the PBRC shortcut has no generic counterpart); pbrc_safeguards are not applied.
template <class Gen, class U>
DD_HD void probs_to_score_naive(const Gen& gen, const typename Gen::value_type* f, int nf, int x,
                                const U& u, typename Gen::value_type* s, ScoreOptions opt = {}) {
  using T = typename Gen::value_type;
  const int n = gen.num_regular(), d = gen.num_states();
  const T scale = (opt.phi == PhiMode::renormalize && nf > n) ? T(1) / (T(1) - f[n]) : T(1);
  for (int b = 0; b < d; ++b) {
    if (b == x) {
      s[b] = T(1);
      continue;
    }
    T acc = T(0);
    for (int h = 0; h < n; ++h) {
      const T pxh = gen.transition(x, h, u);
      if (pxh > T(0)) acc += scale * f[h] * gen.transition(b, h, u) / pxh;
    }
    s[b] = acc;
  }
}

// ------------------------------------------------------------------ from logits

/// softmax(z) (nz entries, max subtracted) written to p; returns nothing. p may alias z.
template <class T>
DD_HD void softmax(const T* z, int nz, T* p) {
  T mx = z[0];
  for (int v = 1; v < nz; ++v) mx = z[v] > mx ? z[v] : mx;
  T sum = T(0);
  for (int v = 0; v < nz; ++v) {
    p[v] = math::exp(z[v] - mx);
    sum += p[v];
  }
  const T inv = T(1) / sum;
  for (int v = 0; v < nz; ++v) p[v] *= inv;
}

/// f = softmax(z) over the nz in {N, D} logits (max subtraction), then the closed form of
/// probs_to_score; s (D entries) holds f in between, so no other buffer is needed. U is T, or
/// const T* for state-dependent masking.
template <class Gen, class U>
DD_HD void logits_to_score(const Gen& gen, const typename Gen::value_type* z, int nz, int x,
                           const U& u, typename Gen::value_type* s, ScoreOptions opt = {}) {
  softmax(z, nz, s);
  probs_to_score(gen, s, nz, x, u, s, opt);
}

// ------------------------------------------------------------------ host-checked wrappers

namespace detail {
namespace score {

template <class Gen>
void check_f_size(const Gen& gen, std::size_t size, const char* where, const char* name) {
  const std::size_t n = static_cast<std::size_t>(gen.num_regular());
  const std::size_t d = static_cast<std::size_t>(gen.num_states());
  if (size != n && size != d) {
    const std::string why = "must equal N = " + std::to_string(n) + " or D = " +
                            std::to_string(d) + " (the generator's vocabulary)";
    throw_invalid(where, name, size, why.c_str());
  }
}

template <class T>
void check_finite_vector(const std::vector<T>& v, const char* where, const char* array) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(static_cast<double>(v[i]))) {
      const std::string nm = std::string(array) + "[" + std::to_string(i) + "]";
      throw_invalid(where, nm.c_str(), v[i], "must be finite");
    }
}

/// u > 0 finite (scalar generators); returns u as T.
template <class Gen, class U, std::enable_if_t<std::is_arithmetic<U>::value, int> = 0>
typename Gen::value_type checked_score_noise(const Gen& g, U u, const char* where) {
  const auto ut = validate_noise(g, u, where, NoiseUse::nonnegative);
  if (!(ut > 0)) throw_invalid(where, "u", u, "ratios need u > 0");
  return ut;
}

/// Every ubar_v > 0 finite (per-token noise, e.g. state-dependent masking; the generator's
/// validate_noise hook checks the length); returns ubar.data().
template <class Gen, class T>
const T* checked_score_noise(const Gen& g, const std::vector<T>& ubar, const char* where) {
  const T* p = validate_noise(g, ubar, where, NoiseUse::nonnegative);
  for (std::size_t v = 0; v < ubar.size(); ++v)
    if (!(ubar[v] > T(0))) {
      const std::string nm = "ubar[" + std::to_string(v) + "]";
      throw_invalid(where, nm.c_str(), ubar[v], "ratios need ubar > 0");
    }
  return p;
}

/// Some regular h has P_u[x,h] > 0 (otherwise the state x cannot be reached from data).
template <class Gen, class N>
void check_reachable(const Gen& gen, int x, const N& u, const char* where) {
  for (int h = 0; h < gen.num_regular(); ++h)
    if (gen.transition(x, h, u) > 0) return;
  throw_invalid(where, "x", x, "P_u[x,h] = 0 for every regular h: x is unreachable from data");
}

}  // namespace score
}  // namespace detail

/// Host wrapper of probs_to_score: validates x in [0, D), u > 0 (every ubar_v > 0), f.size() in
/// {N, D} with finite entries >= 0 summing to 1 within sqrt(eps), and that x is reachable; then
/// returns the D scores. Throws std::invalid_argument naming the argument and its value.
template <class Gen, class U>
std::vector<typename Gen::value_type> probs_to_score_checked(
    const Gen& gen, const std::vector<typename Gen::value_type>& f, long long x, const U& u,
    ScoreOptions opt = {}) {
  using T = typename Gen::value_type;
  const char* where = "discdiff::probs_to_score";
  detail::score::check_f_size(gen, f.size(), where, "f.size()");
  require_token(where, "x", x, gen.num_states());
  detail::score::check_finite_vector(f, where, "f");
  double sum = 0;
  for (std::size_t h = 0; h < f.size(); ++h) {
    if (f[h] < T(0)) {
      const std::string nm = "f[" + std::to_string(h) + "]";
      throw_invalid(where, nm.c_str(), f[h], "probabilities must be >= 0");
    }
    sum += static_cast<double>(f[h]);
  }
  const double tol = std::sqrt(static_cast<double>(std::numeric_limits<T>::epsilon()));
  if (!(std::abs(sum - 1.0) <= tol))
    throw_invalid(where, "sum(f)", sum, "f must be a probability vector (sum 1)");
  const auto un = detail::score::checked_score_noise(gen, u, where);
  detail::score::check_reachable(gen, static_cast<int>(x), un, where);
  if (opt.phi == PhiMode::renormalize && f.size() > static_cast<std::size_t>(gen.num_regular()) &&
      !(f[static_cast<std::size_t>(gen.num_regular())] < T(1)))
    throw_invalid(where, "f[MASK]", f.back(), "renormalisation needs phi < 1");
  std::vector<T> s(static_cast<std::size_t>(gen.num_states()));
  probs_to_score(gen, f.data(), static_cast<int>(f.size()), static_cast<int>(x), un, s.data(),
                 opt);
  return s;
}

/// Host wrapper of logits_to_score: validates z (size N or D, every entry finite: NaN or Inf
/// logits throw), x and u as probs_to_score_checked; returns the D scores.
template <class Gen, class U>
std::vector<typename Gen::value_type> logits_to_score_checked(
    const Gen& gen, const std::vector<typename Gen::value_type>& z, long long x, const U& u,
    ScoreOptions opt = {}) {
  using T = typename Gen::value_type;
  const char* where = "discdiff::logits_to_score";
  detail::score::check_f_size(gen, z.size(), where, "z.size()");
  require_token(where, "x", x, gen.num_states());
  detail::score::check_finite_vector(z, where, "z");
  const auto un = detail::score::checked_score_noise(gen, u, where);
  detail::score::check_reachable(gen, static_cast<int>(x), un, where);
  std::vector<T> s(static_cast<std::size_t>(gen.num_states()));
  logits_to_score(gen, z.data(), static_cast<int>(z.size()), static_cast<int>(x), un, s.data(),
                  opt);
  return s;
}

}  // namespace discdiff
