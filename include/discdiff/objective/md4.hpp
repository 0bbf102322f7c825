// discdiff/objective/md4.hpp: the MD4 / MDLM masked-diffusion ELBO for the absorbing process and
// any alpha schedule (spec/MATH.md 5.3).
//
// Parameterisation: mu^i = softmax over the N regular tokens. MD4 heads emit V = N logits; MDLM
// SUBS heads emit V = D = N + 1 with the MASK logit forced to -inf, which is the same as
// excluding the MASK column from the softmax (its gradient is 0). Only masked positions count.
//
// Continuous time (MD4 Eq. 4-5, MDLM Eq. 10-11), per sequence:
//   l = w(t) * sum_{i: x_t^i = MASK} -log mu^i(x_0^i) + L_recon + L_prior,
//   w(t) = -alpha'/(1 - alpha) = sched.elbo_weight(t)   (S-LOGLIN: 1/t)
// Discrete time with T steps, t(i) = i/T, s(i) = (i-1)/T, one step i drawn uniformly:
//   l = T * ((alpha_s - alpha_t)/(1 - alpha_t)) * sum_masked -log mu(x_0) + L_recon + L_prior
//   (MD4 code variant: i in {1..T}, s(1) = 0, reconstruction at alpha(0));
//   paper variant (MD4 Section 3, App. D): i in {2..T} with factor (T - 1), reconstruction at
//   t(1) = 1/T.
// Constant terms (no gradient):
//   L_recon = L (1 - alpha_0) log N   (code: alpha(0) = 1 - eta gives L eta log N;
//                                      paper discrete: L (1 - alpha_{1/T}) log N)
//   L_prior = L alpha_1 log N         (the App. E prior; the MD4 code uses 0: Md4Options::prior)
// Gradient: d l / d z^i_v = weight (mu^i_v - [v = x_0^i]) at masked positions, 0 elsewhere
// (weight = w(t), or the discrete weight).
#pragma once

#include <cstdint>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "common.hpp"

namespace discdiff {

/// Which constant terms the MD4 ELBO includes.
struct Md4Options {
  bool recon = true;  ///< L_recon (MD4 code: yes)
  bool prior = true;  ///< L_prior = L alpha_1 log N (MD4 code: no)
};

/// The discrete-time variants of spec 5.3.
enum class Md4DiscreteVariant {
  code,  ///< steps i = 1..T (s(1) = 0), factor T, L_recon at alpha(0)
  paper  ///< steps i = 2..T, factor T - 1, L_recon at alpha(1/T)
};

/// Continuous-time weight w(t) = -alpha'/(1 - alpha) (spec 1.3); t > 0.
template <class Sched, class T>
DD_HD T md4_weight(const Sched& sched, T t) {
  return sched.elbo_weight(t);
}

/// (alpha_s - alpha_t)/(1 - alpha_t) for s < t, from whichever pair of alpha, 1 - alpha is the
/// accurate one (alpha_s < 1/2: alpha_s - alpha_t; else (1 - alpha_t) - (1 - alpha_s)).
template <class Sched, class T>
DD_HD T md4_step_fraction(const Sched& sched, T s, T t) {
  const T oma_t = sched.one_minus_alpha(t);
  const T a_s = sched.alpha(s);
  const T num = a_s < T(0.5) ? a_s - sched.alpha(t) : oma_t - sched.one_minus_alpha(s);
  return num / oma_t;
}

/// Discrete-time weight of step i of nsteps: factor * (alpha_s - alpha_t)/(1 - alpha_t) with
/// t = i/T, s = (i-1)/T, factor T (code variant) or T - 1 (paper variant).
template <class Sched>
DD_HD typename Sched::value_type md4_discrete_weight(const Sched& sched, int i, int nsteps,
                                                     Md4DiscreteVariant variant) {
  using T = typename Sched::value_type;
  const T tt = T(i) / T(nsteps), ss = T(i - 1) / T(nsteps);
  const T factor = variant == Md4DiscreteVariant::code ? T(nsteps) : T(nsteps - 1);
  return factor * md4_step_fraction(sched, ss, tt);
}

/// The step of the MD4 code's Monte Carlo estimate for a uniform draw tau in [0, 1):
/// i = floor(tau T) + 1 in {1..T} (code variant) or floor(tau (T - 1)) + 2 in {2..T} (paper).
/// The noisy tokens must then be drawn at t = i/T.
template <class T>
DD_HD int md4_discrete_step(T tau, int nsteps, Md4DiscreteVariant variant) {
  const int first = variant == Md4DiscreteVariant::code ? 1 : 2;
  const int count = nsteps - first + 1;
  int k = static_cast<int>(math::floor(tau * T(count)));
  k = k < 0 ? 0 : (k >= count ? count - 1 : k);
  return first + k;
}

/// L_recon + L_prior of the continuous-time ELBO for L positions and N regular tokens:
/// L (1 - alpha(0)) log N + L alpha(1) log N (each as selected by opt).
template <class Sched>
typename Sched::value_type md4_constant_terms(const Sched& sched, std::int64_t L, int N,
                                              Md4Options opt = {}) {
  using T = typename Sched::value_type;
  const T lg = math::log(T(N)) * T(L);
  T c = T(0);
  if (opt.recon) c += sched.one_minus_alpha(T(0)) * lg;
  if (opt.prior) c += sched.alpha(T(1)) * lg;
  return c;
}

/// L_recon + L_prior of the discrete-time ELBO: reconstruction at alpha(0) (code) or at
/// alpha(1/T) (paper), prior L alpha(1) log N.
template <class Sched>
typename Sched::value_type md4_discrete_constant_terms(const Sched& sched, std::int64_t L, int N,
                                                       int nsteps, Md4DiscreteVariant variant,
                                                       Md4Options opt = {}) {
  using T = typename Sched::value_type;
  const T lg = math::log(T(N)) * T(L);
  const T t_rec = variant == Md4DiscreteVariant::code ? T(0) : T(1) / T(nsteps);
  T c = T(0);
  if (opt.recon) c += sched.one_minus_alpha(t_rec) * lg;
  if (opt.prior) c += sched.alpha(T(1)) * lg;
  return c;
}

/// Raw-pointer MD4 driver on any executor (no validation), continuous or discrete time alike:
/// weight[b] = w(t_b) or the discrete weight of row b's step; row_const = the constant terms.
/// Softmax over the first N outputs (batch.V = N, or N + 1 with the MASK column excluded);
/// masked positions (xt = N) only.
template <class Exec, class T>
void md4_loss_raw(const Exec& exec, const LossBatch<T>& batch, const T* weight, int N,
                  T row_const) {
  weighted_xent_raw(exec, batch, weight, N, N, LossPositions::masked, row_const);
}

/// Naive reference of md4_loss_raw.
template <class T>
void md4_loss_naive(const LossBatch<T>& batch, const T* weight, int N, T row_const) {
  weighted_xent_naive(batch, weight, N, N, LossPositions::masked, row_const);
}

}  // namespace discdiff
