// discdiff/generator/state_dependent.hpp: state-dependent masking (spec/MATH.md 3.5; GenMD4,
// MD4 section 6), D = N + 1 with MASK = N.
//
// Each regular token v has its own total noise ubar_v = -log alpha_{t,v} (the per-token
// schedule's total_noise). Column v of the transition uses ubar_v only:
//   P[v,v] = e^{-ubar_v},  P[MASK,v] = -expm1(-ubar_v),  P[MASK,MASK] = 1,  all others 0,
// i.e. P = exp(Lambda) for the integrated generator Lambda[MASK,v] = ubar_v, Lambda[v,v] = -ubar_v
// (the columns commute). The members of the scalar-u generators take `const T* ubar` (length N)
// in place of u; an increment Delta_v from s to t is passed as ubar = Delta, and the inverse as
// ubar = -Delta. The instantaneous rates Q_t[MASK,v] = beta_v(t) are not of the form
// sigma(t) Q, so rate() and exit_rate() take the per-token rate vector beta explicitly.
//
// Valid noise: every ubar_v >= 0, and negative ubar_v > -log(max<T>). See
// docs/math/ctmc.md.
#pragma once

#include <string>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "../core/random.hpp"
#include "detail.hpp"

namespace discdiff {

/// Masking with a per-token clock. Trivially copyable; every member except the constructor is
/// DD_HD and never throws. Pointer arguments hold N entries indexed by regular token.
template <class T>
class StateDependentMaskingGenerator {
 public:
  using value_type = T;
  static constexpr const char* name = "state-dependent";

  /// Host only. Throws std::invalid_argument for N < 2.
  explicit StateDependentMaskingGenerator(long long n)
      : n_(detail::checked_vocab("StateDependentMaskingGenerator", n)) {}

  DD_HD int num_regular() const { return n_; }
  DD_HD int num_states() const { return n_ + 1; }
  DD_HD bool has_mask() const { return true; }
  DD_HD int mask() const { return n_; }

  /// Q_t[y,x] for per-token rates beta[v] = beta_v(t) = -alpha'_{t,v}/alpha_{t,v}:
  /// beta[x] at (MASK, x), -beta[x] at (x, x) for regular x, 0 otherwise. With beta = ubar this
  /// is the integrated generator Lambda, P = exp(Lambda).
  DD_HD T rate(int y, int x, const T* beta) const {
    if (x == n_) return T(0);
    return y == x ? -beta[x] : (y == n_ ? beta[x] : T(0));
  }

  /// exit(x) = beta[x] for regular x, 0 for MASK.
  DD_HD T exit_rate(int x, const T* beta) const { return x == n_ ? T(0) : beta[x]; }

  /// P[y,x]: e^{-ubar_x} at (x, x), -expm1(-ubar_x) at (MASK, x); column MASK is delta_MASK.
  /// Reads ubar[x] only (nothing when x = MASK).
  DD_HD T transition(int y, int x, const T* ubar) const {
    if (x == n_) return y == n_ ? T(1) : T(0);
    if (y == x) return math::exp(-ubar[x]);
    return y == n_ ? math::one_minus_exp_neg(ubar[x]) : T(0);
  }

  /// out[y] = P[y,x] for y <= N. Reads ubar[x] only.
  DD_HD void transition_column(int x, const T* ubar, T* out) const {
    for (int y = 0; y <= n_; ++y) out[y] = T(0);
    if (x == n_) {
      out[n_] = T(1);
      return;
    }
    out[x] = math::exp(-ubar[x]);
    out[n_] = math::one_minus_exp_neg(ubar[x]);
  }

  /// out[x] = P[y,x] for x <= N: row MASK is (-expm1(-ubar_0), ..., -expm1(-ubar_{N-1}), 1)
  /// (reads all of ubar); row y regular is e^{-ubar_y} e_y (reads ubar[y]).
  DD_HD void transition_row(int y, const T* ubar, T* out) const {
    if (y == n_) {
      for (int x = 0; x < n_; ++x) out[x] = math::one_minus_exp_neg(ubar[x]);
      out[n_] = T(1);
      return;
    }
    for (int x = 0; x <= n_; ++x) out[x] = T(0);
    out[y] = math::exp(-ubar[y]);
  }

  /// out = P v: out[a] = e^{-ubar_a} v[a], out[MASK] = v[MASK] + sum_a -expm1(-ubar_a) v[a].
  /// O(N); out may alias v. Pass ubar = -Delta for the inverse (staggered score).
  DD_HD void apply_exp(const T* ubar, const T* v, T* out) const {
    const T vm = v[n_];
    detail::CompensatedSum<T> s;
    for (int a = 0; a < n_; ++a) {
      const T va = v[a];
      s.add(math::one_minus_exp_neg(ubar[a]) * va);
      out[a] = math::exp(-ubar[a]) * va;
    }
    out[n_] = vm + s.value();
  }

  /// Conditional ratio P[b,a] / P[x,a] (spec 3.5), reading ubar[a]:
  ///   x = MASK, b = a: 1/expm1(ubar_a) = alpha_{t,a}/(1 - alpha_{t,a});  b regular != a: 0
  ///   x = a regular, b = MASK: expm1(ubar_a) (unused by reverse rates; +Inf beyond the range of
  ///   T);  b regular != a: 0;  b = x: 1.
  /// Precondition P[x,a] > 0; otherwise the result is unspecified (0 here).
  DD_HD T ratio(int x, int b, int a, const T* ubar) const {
    if (b == x) return T(1);
    if (a == n_) return T(0);
    if (x == n_)
      return b == a ? math::exp(-ubar[a]) / math::one_minus_exp_neg(ubar[a]) : T(0);
    if (x == a && b == n_) return math::expm1(ubar[a]);
    return T(0);
  }

  /// x_t ~ P[., x0] for ubar >= 0 (keep x0 with probability alpha_{t,x0}, otherwise MASK).
  /// Draws exactly one r = rng.uniform<T>() (also when x0 = MASK); returns MASK if x0 = MASK
  /// or r < -expm1(-ubar[x0]), else x0.
  DD_HD int sample_forward(int x0, const T* ubar, CounterRng& rng) const {
    const T r = rng.template uniform<T>();
    return (x0 == n_ || r < math::one_minus_exp_neg(ubar[x0])) ? n_ : x0;
  }

  /// pi = delta_MASK: returns MASK and draws nothing.
  DD_HD int sample_limit(CounterRng& /*rng*/) const { return n_; }

  // ---------------------------------------------------------------- extension points
  // The closed forms the generic algorithms call (docs/architecture.md, "Generator extension
  // points"); the free function of the same name (generator first) forwards here.

  /// The only moves are regular -> MASK: a regular x_t equals x_0, so losses and reverse steps
  /// act at MASK positions only.
  static constexpr bool pure_masking = true;

  /// Concrete scores from a clean-token posterior f (spec 4.2; score/probs_to_score.hpp), f(h)
  /// counting as scale * f[h]: at x = MASK s_b = f(b)/expm1(ubar_b) (= f(b) alpha_{t,b}/(1 -
  /// alpha_{t,b})), s_MASK = 1; at regular x s_b = 0 and s_MASK = f(x) expm1(ubar_x).
  /// phi_ignored and pbrc_safeguards change nothing here. s (D entries) may alias f.
  DD_HD void probs_to_score(const T* f, int x, const T* ubar, T scale, bool /*phi_ignored*/,
                            bool /*pbrc_safeguards*/, T* s) const {
    const int n = n_;
    if (x == n) {
      for (int b = 0; b < n; ++b)
        s[b] = scale * f[b] * math::exp(-ubar[b]) / math::one_minus_exp_neg(ubar[b]);
      s[n] = T(1);
      return;
    }
    const T fx = scale * f[x];
    for (int b = 0; b < n; ++b) s[b] = T(0);
    s[x] = T(1);
    s[n] = fx * math::expm1(ubar[x]);
  }

 private:
  int n_;
};

/// Host validation hook of generator/checked.hpp for state-dependent masking: ubar must hold
/// N finite entries (and be >= 0 for NoiseUse::nonnegative). Returns ubar.data().
template <class T>
const T* validate_noise(const StateDependentMaskingGenerator<T>& g, const std::vector<T>& ubar,
                        const char* where, NoiseUse use = NoiseUse::any) {
  if (ubar.size() != static_cast<std::size_t>(g.num_regular())) {
    const std::string why = "ubar must hold N = " + std::to_string(g.num_regular()) + " entries";
    throw_invalid(where, "ubar.size()", ubar.size(), why.c_str());
  }
  for (std::size_t v = 0; v < ubar.size(); ++v) {
    const bool finite = math::isfinite(ubar[v]);
    if (finite && !(use == NoiseUse::nonnegative && ubar[v] < T(0))) continue;
    const std::string nm = "ubar[" + std::to_string(v) + "]";
    throw_invalid(where, nm.c_str(), ubar[v],
                  finite ? "forward sampling needs ubar >= 0" : "must be finite");
  }
  return ubar.data();
}

}  // namespace discdiff
