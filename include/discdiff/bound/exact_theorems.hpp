// discdiff/bound/exact_theorems.hpp: Theorems A, B, C, J1 and J2 by exact enumeration
// (spec/MATH.md 6.2-6.6 and 7.1).
//
// compute_exact_bounds(fwd, denoiser, u_min, u_max, start, options) evaluates, for the forward
// process fwd (ExactForward), a denoiser (exact_denoiser.hpp) whose scores come from
// naive_probs_to_score, and the learned reverse chain started at q_T (ReverseStart):
//
//   q_u                 dq/du = -(G_u q) from q_T at u_max down to u_min (spec 1.5)
//   I_SE    = int sum_x p sum_{y~x} Q D_K(s^p || s_theta) du                 (Theorem B)
//   I_corr  = int sum_x p sum_{y~x} Q (s^p/s^q) D_K(s^q || s_theta) du       (Theorem A)
//   I_ent   = int sum_x p sum_{y~x} Q s^p log s^p du                         (Theorem C)
//   I_sp    = int sum_x p sum_{y~x} Q s^p du       (= I_exit: exit-rate identity, 6.4)
//   I_exit  = int sum_x p sum_i exit(x^i) du
//   I_bar   = int sum_x sum_{y~x} Q sum_h J_i(x,h) (s_theta - r_h log s_theta) du   (J2)
//   I_J1    = int sum_x sum_{y~x} Q sum_h J_i(x,h) D_K(r_h || s_theta) du           (J1)
//
// where y = x^{i<-b}, Q = Q[x^i, b], s^p = p_u(y)/p_u(x), s^q = q_u(y)/q_u(x),
// r_h = P_u[b,h]/P_u[x^i,h], and J_i(x,h) = sum_{x_0: x_0^i = h} p_0(x_0) p_{u|0}(x|x_0): the
// x_0-sums of spec 7.1 grouped by the clean token at position i (exact, no denoising identity
// used). From these (eps = u_min, T = u_max):
//
//   ThmA_RHS   = KL(p_T||q_T) + I_SE - I_corr     must equal KL_eps = KL(p_eps||q_eps)
//   ThmB_bound = KL(p_T||q_T) + I_SE              >= KL_eps
//   ThmC_RHS   = H(p_T) - I_ent                   must equal H(p_eps)
//   J2         = CE(p_T,q_T) + I_bar - I_exit     >= CE_eps = CE(p_eps,q_eps)
//   J1         = E_{x_0} KL(p_{T|0}||q_T) + I_J1 = CE(p_T,q_T) - EH_T + I_J1   (spec 6.6 step 2)
//   EH         = E_{x_0} H(p_{eps|0}(.|x_0));     J2 must equal J1 + EH (spec 6.6)
//
// Two integration methods (docs/math/bounds.md):
//   ExactMethod::adaptive  (default) the reverse ODE in v = log u by Dormand-Prince 5(4) with
//                          error control (rtol, atol), I_corr integrated as an extra ODE
//                          component; every q-independent integral by Boost's adaptive
//                          Gauss-Kronrod in v (vector-valued, relative tolerance quad_tol).
//   ExactMethod::log_grid  the recipe of spec 7.1: K intervals uniform in log u, classical RK4 in
//                          u per interval (rates at u_k, the arithmetic midpoint and u_{k-1}),
//                          composite Simpson in log u (integrand g(u) u) at the grid points;
//                          with richardson = true the whole computation is repeated with K/2
//                          and the largest change of a reported quantity is the error estimate.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../generator/absorbing.hpp"
#include "../generator/roulette.hpp"
#include "../generator/uniform.hpp"
#include "exact_divergence.hpp"
#include "exact_integrators.hpp"
#include "exact_marginals.hpp"
#include "exact_score.hpp"
#include "reference_terms.hpp"

namespace discdiff {
namespace exact {

enum class ExactMethod { adaptive, log_grid };

struct ExactOptions {
  ExactMethod method = ExactMethod::adaptive;
  double quad_tol = 1e-12;   ///< adaptive: relative tolerance of the Gauss-Kronrod integrals
  unsigned quad_depth = 12;  ///< adaptive: maximum bisection depth
  OdeOptions ode{1e-10, 1e-14, 0.0, 1000000};  ///< adaptive: reverse ODE tolerances
  /// adaptive: absolute tolerance of the q components of the reverse ODE (ode.atol applies to
  /// the I_corr component only). The default makes the control relative in every state, so a
  /// probability of 1e-30 is resolved to rtol like one of 0.5 (docs/math/bounds.md); trial steps
  /// that make a q component negative are rejected.
  double q_atol = 1e-300;
  int grid_intervals = 1200;  ///< log_grid: K (even)
  bool richardson = false;    ///< log_grid: also run K/2 and report the difference
};

/// Every quantity of spec 7.1 (names as in the 7.2 table where there is one); nats per sequence.
struct ExactBounds {
  double u_min = 0, u_max = 0;
  // endpoint quantities
  double kl_eps = 0, kl_T = 0;   ///< KL(p_eps||q_eps), KL(p_T||q_T)
  double ce_eps = 0, ce_T = 0;   ///< CE(p_eps,q_eps), CE(p_T,q_T)
  double h_eps = 0, h_T = 0;     ///< H(p_eps), H(p_T)
  double eh_eps = 0, eh_T = 0;   ///< E_{x_0} H(p_{u|0}(.|x_0)) at u_min, u_max
  double nll_eps = 0;            ///< -sum p_0(x_0) log q_eps(x_0)
  // integrals over u in [u_min, u_max]
  double i_se = 0, i_corr = 0, i_ent = 0, i_sp = 0, i_exit = 0, i_bar = 0, i_j1 = 0;
  // derived
  double thmA_rhs = 0, thmB_bound = 0, thmC_rhs = 0, j2 = 0, j1 = 0;
  // error control
  double quad_error = 0;      ///< adaptive: Boost's Gauss-Kronrod error estimate (max-norm)
  double discretisation = 0;  ///< log_grid with richardson: max |value(K) - value(K/2)|
  long ode_steps = 0, ode_rejected = 0, evaluations = 0;
  std::vector<double> p_eps, q_eps;  ///< the two marginals at u_min
};

namespace detail_bounds {

/// Indices of the q-independent integrands.
enum : std::size_t { kSE = 0, kEnt, kSp, kExit, kBar, kJ1, kData };

/// Data-side integrands at one u (spec 7.1 "Integrands at each grid u").
template <class Gen, class Den>
QuadVec<kData> data_integrands(const ExactEvaluator<Gen, Den>& E,
                               const typename ExactEvaluator<Gen, Den>::Eval& ev) {
  using T = typename Gen::value_type;
  const auto& fwd = E.forward();
  const auto& ed = E.edges();
  const auto& sl = ev.slice;
  const SequenceSpace& S = fwd.state_space();
  const int n = fwd.num_regular(), d = fwd.num_states(), L = fwd.length();
  discdiff::detail::CompensatedSum<T> se, ent, sp, ex, bar, j1;
  for (std::int64_t x = 0; x < S.size(); ++x) {
    const T px = sl.p[static_cast<std::size_t>(x)];
    if (px > T(0)) {
      T e = T(0);
      for (int i = 0; i < L; ++i) e += fwd.generator().exit_rate(S.digit(x, i));
      ex.add(px * e);
    }
    for (std::int64_t k = ed.offset[static_cast<std::size_t>(x)];
         k < ed.offset[static_cast<std::size_t>(x) + 1]; ++k) {
      const std::size_t kk = static_cast<std::size_t>(k);
      const T q = ed.forward_rate[kk];
      const T s = ev.score[kk];
      const T py = sl.p[static_cast<std::size_t>(ed.target[kk])];
      if (px > T(0)) {
        const T spx = py / px;
        se.add(px * q * score_entropy_divergence(spx, s));
        ent.add(px * q * xlogx(spx));
        sp.add(q * py);
      }
      const int i = ed.position[kk], b = ed.candidate[kk];
      const int xi = S.digit(x, i);
      const T logs = std::log(s);
      for (int h = 0; h < n; ++h) {
        const T J = sl.joint_at(x, i, h);
        if (J == T(0)) continue;
        const T r = sl.P[static_cast<std::size_t>(b) * d + h] / sl.P[static_cast<std::size_t>(xi) * d + h];
        bar.add(q * J * (s - (r == T(0) ? T(0) : r * logs)));
        j1.add(q * J * score_entropy_divergence(r, s));
      }
    }
  }
  QuadVec<kData> out;
  out[kSE] = se.value();
  out[kEnt] = ent.value();
  out[kSp] = sp.value();
  out[kExit] = ex.value();
  out[kBar] = bar.value();
  out[kJ1] = j1.value();
  return out;
}

/// The Theorem A correction integrand sum_x p sum_y Q (s^p/s^q) D_K(s^q||s_theta)
/// = sum_x sum_y Q p(y) D_K(s^q||s_theta)/s^q over x with p(x) > 0.
template <class Gen, class Den>
double correction_integrand(const ExactEvaluator<Gen, Den>& E,
                            const typename ExactEvaluator<Gen, Den>::Eval& ev, const double* q) {
  const auto& ed = E.edges();
  const auto& sl = ev.slice;
  const std::int64_t S = E.forward().state_space().size();
  discdiff::detail::CompensatedSum<double> c;
  for (std::int64_t x = 0; x < S; ++x) {
    if (!(sl.p[static_cast<std::size_t>(x)] > 0)) continue;
    for (std::int64_t k = ed.offset[static_cast<std::size_t>(x)];
         k < ed.offset[static_cast<std::size_t>(x) + 1]; ++k) {
      const std::size_t kk = static_cast<std::size_t>(k);
      const double py = sl.p[static_cast<std::size_t>(ed.target[kk])];
      if (py == 0) continue;
      const double sq = q[ed.target[kk]] / q[x];
      if (!(sq >= 0) || std::isnan(sq))  // q(y) = 0 < p(y) would be a legitimate +inf below
        throw std::runtime_error(
            "discdiff::exact::compute_exact_bounds: reverse marginal ratio q(y)/q(x) = " +
            discdiff::detail::format_value(sq) + " (q(y) = " +
            discdiff::detail::format_value(q[ed.target[kk]]) +
            ", q(x) = " + discdiff::detail::format_value(q[x]) + ", states x = " +
            std::to_string(x) + ", y = " + std::to_string(ed.target[kk]) +
            ") where p(y) > 0: the Theorem A correction needs q > 0 (assumption A5)");
      c.add(ed.forward_rate[kk] * py * score_entropy_divergence(sq, double(ev.score[kk])) / sq);
    }
  }
  return c.value();
}

template <class Gen, class Den>
void finish_endpoints(const ExactForward<Gen>& fwd, const std::vector<double>& qT,
                      std::vector<double> q_eps, ExactBounds& r) {
  const std::vector<double> pT = fwd.marginal(r.u_max);
  r.p_eps = fwd.marginal(r.u_min);
  r.q_eps = std::move(q_eps);
  r.kl_T = kl_divergence(pT, qT);
  r.ce_T = cross_entropy(pT, qT);
  r.h_T = entropy(pT);
  r.kl_eps = kl_divergence(r.p_eps, r.q_eps);
  r.ce_eps = cross_entropy(r.p_eps, r.q_eps);
  r.h_eps = entropy(r.p_eps);
  r.eh_eps = fwd.expected_conditional_entropy(r.u_min);
  r.eh_T = fwd.expected_conditional_entropy(r.u_max);
  r.nll_eps = cross_entropy(fwd.data_on_states(), r.q_eps);
  r.thmA_rhs = r.kl_T + r.i_se - r.i_corr;
  r.thmB_bound = r.kl_T + r.i_se;
  r.thmC_rhs = r.h_T - r.i_ent;
  r.j2 = r.ce_T + r.i_bar - r.i_exit;
  r.j1 = (r.ce_T - r.eh_T) + r.i_j1;
}

template <class Gen, class Den>
ExactBounds bounds_adaptive(const ExactEvaluator<Gen, Den>& E, double u_min, double u_max,
                            const std::vector<double>& qT, const ExactOptions& opt) {
  ExactBounds r;
  r.u_min = u_min;
  r.u_max = u_max;
  const double v0 = std::log(u_min), v1 = std::log(u_max);
  long evals = 0;
  // q-independent integrals: int g(u) du = int g(e^v) e^v dv.
  auto g = [&](double v) {
    const double u = std::exp(v);
    ++evals;
    const QuadVec<kData> val = data_integrands(E, E.evaluate(u)) * u;
    for (std::size_t k = 0; k < kData; ++k)
      if (std::isnan(val[k]))  // +inf is a legitimate value (a zero model score)
        throw std::runtime_error("discdiff::exact::compute_exact_bounds: integrand " +
                                 std::to_string(k) + " (0 I_SE, 1 I_ent, 2 I_sp, 3 I_exit, 4 I_bar, "
                                 "5 I_J1) is NaN at u = " +
                                 discdiff::detail::format_value(u));
    return val;
  };
  const QuadResult<kData> qr = integrate_vector<kData>(g, v0, v1, opt.quad_tol, opt.quad_depth);
  r.i_se = qr.value[kSE];
  r.i_ent = qr.value[kEnt];
  r.i_sp = qr.value[kSp];
  r.i_exit = qr.value[kExit];
  r.i_bar = qr.value[kBar];
  r.i_j1 = qr.value[kJ1];
  r.quad_error = qr.error;
  // Reverse ODE in v from v1 down to v0, y = (q, A) with dA/dv = u I_corr(u, q).
  const std::size_t S = qT.size();
  std::vector<double> y(qT);
  y.push_back(0.0);
  std::vector<double> gq(S);
  auto rhs = [&](double v, const std::vector<double>& yy, std::vector<double>& dy) {
    const double u = std::exp(v);
    const auto ev = E.evaluate(u);
    E.apply_generator(ev, yy.data(), gq.data());
    for (std::size_t x = 0; x < S; ++x) dy[x] = -u * gq[x];
    dy[S] = u * correction_integrand(E, ev, yy.data());
  };
  OdeOptions ode = opt.ode;
  ode.atol_per_component.assign(S + 1, opt.q_atol);
  ode.atol_per_component[S] = opt.ode.atol;
  ode.nonnegative = S;
  const OdeStats st = dormand_prince45(rhs, v1, v0, y, ode);
  r.i_corr = -y[S];
  y.pop_back();
  r.ode_steps = st.accepted;
  r.ode_rejected = st.rejected;
  r.evaluations = evals + st.evaluations;
  finish_endpoints<Gen, Den>(E.forward(), qT, std::move(y), r);
  return r;
}

template <class Gen, class Den>
ExactBounds bounds_log_grid(const ExactEvaluator<Gen, Den>& E, double u_min, double u_max,
                            const std::vector<double>& qT, int K) {
  ExactBounds r;
  r.u_min = u_min;
  r.u_max = u_max;
  const double v0 = std::log(u_min), v1 = std::log(u_max), hv = (v1 - v0) / K;
  auto grid_u = [&](int k) {
    if (k == 0) return u_min;
    if (k == K) return u_max;
    return std::exp(v0 + (v1 - v0) * static_cast<double>(k) / K);
  };
  const std::vector<double> w = simpson_weights(K, hv);
  const std::size_t S = qT.size();
  std::vector<double> q(qT), k1(S), k2(S), k3(S), k4(S), tmp(S);
  QuadVec<kData> acc(0.0);
  double corr = 0.0;
  long evals = 0;
  auto ev = E.evaluate(u_max);
  ++evals;
  for (int k = K;; --k) {
    const double u = grid_u(k);
    acc += data_integrands(E, ev) * (w[static_cast<std::size_t>(k)] * u);
    corr += w[static_cast<std::size_t>(k)] * u * correction_integrand(E, ev, q.data());
    if (k == 0) break;
    const double un = grid_u(k - 1), h = un - u;
    const auto mid = E.evaluate(0.5 * (u + un));
    auto next = E.evaluate(un);
    evals += 2;
    E.apply_generator(ev, q.data(), k1.data());
    for (std::size_t j = 0; j < S; ++j) tmp[j] = q[j] - 0.5 * h * k1[j];
    E.apply_generator(mid, tmp.data(), k2.data());
    for (std::size_t j = 0; j < S; ++j) tmp[j] = q[j] - 0.5 * h * k2[j];
    E.apply_generator(mid, tmp.data(), k3.data());
    for (std::size_t j = 0; j < S; ++j) tmp[j] = q[j] - h * k3[j];
    E.apply_generator(next, tmp.data(), k4.data());
    for (std::size_t j = 0; j < S; ++j)
      q[j] -= h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
    ev = std::move(next);
  }
  r.i_se = acc[kSE];
  r.i_ent = acc[kEnt];
  r.i_sp = acc[kSp];
  r.i_exit = acc[kExit];
  r.i_bar = acc[kBar];
  r.i_j1 = acc[kJ1];
  r.i_corr = corr;
  r.ode_steps = K;
  r.evaluations = evals;
  finish_endpoints<Gen, Den>(E.forward(), qT, std::move(q), r);
  return r;
}

inline double max_change(const ExactBounds& a, const ExactBounds& b) {
  const double pairs[][2] = {{a.kl_eps, b.kl_eps},     {a.thmA_rhs, b.thmA_rhs},
                             {a.thmB_bound, b.thmB_bound}, {a.ce_eps, b.ce_eps},
                             {a.j2, b.j2},             {a.j1, b.j1},
                             {a.nll_eps, b.nll_eps},   {a.i_exit, b.i_exit},
                             {a.thmC_rhs, b.thmC_rhs}, {a.i_corr, b.i_corr}};
  double m = 0.0;
  for (const auto& p : pairs) m = max_or_nan(m, std::abs(p[0] - p[1]));
  return m;
}

}  // namespace detail_bounds

/// Theorems A, B, C, J1 and J2 for one problem (see the file comment). Requires
/// 0 < u_min < u_max (finite); q_T from `start` must be > 0 wherever p_T > 0 (assumption A5),
/// otherwise KL(p_T||q_T) and the bounds are +inf.
template <class Gen, class Den>
ExactBounds compute_exact_bounds(const ExactForward<Gen>& fwd, const Den& denoiser, double u_min,
                                 double u_max, const ReverseStart& start,
                                 const ExactOptions& opt = {}) {
  const char* where = "discdiff::exact::compute_exact_bounds";
  require_positive(where, "u_min", u_min);
  require_finite(where, "u_max", u_max);
  if (!(u_max > u_min))
    throw_invalid(where, "u_max", u_max,
                  ("must be > u_min = " + discdiff::detail::format_value(u_min)).c_str());
  const std::vector<double> qT = fwd.reverse_start(start, u_max);
  const ExactEvaluator<Gen, Den> E(fwd, denoiser);
  if (opt.method == ExactMethod::adaptive) {
    require_positive(where, "quad_tol", opt.quad_tol);
    require_positive(where, "ode.rtol", opt.ode.rtol);
    require_positive(where, "q_atol", opt.q_atol);
    return detail_bounds::bounds_adaptive(E, u_min, u_max, qT, opt);
  }
  const int K = opt.grid_intervals;
  if (K < 2 || K % 2 != 0) throw_invalid(where, "grid_intervals", K, "must be even and >= 2");
  ExactBounds r = detail_bounds::bounds_log_grid(E, u_min, u_max, qT, K);
  if (opt.richardson) {
    if (K % 4 != 0)
      throw_invalid(where, "grid_intervals", K, "Richardson check needs K divisible by 4");
    const ExactBounds h = detail_bounds::bounds_log_grid(E, u_min, u_max, qT, K / 2);
    r.discretisation = detail_bounds::max_change(r, h);
    r.evaluations += h.evaluations;
  }
  return r;
}

/// Closed forms of I_exit = int_{u_min}^{u_max} E_{p_u} sum_i exit(x^i) du (spec 7.2), for every
/// generator with the member exit_rate_integral (uniform, absorbing, roulette): the generic
/// exit_rate_integral of reference_terms.hpp, evaluated in the generator's precision.
template <class Gen>
auto analytic_exit_integral(const Gen& g, int L, double u_min, double u_max)
    -> decltype(static_cast<double>(g.exit_rate_integral(L, u_min, u_max))) {
  using T = typename Gen::value_type;
  return static_cast<double>(exit_rate_integral(g, L, T(u_min), T(u_max)));
}

}  // namespace exact
}  // namespace discdiff
