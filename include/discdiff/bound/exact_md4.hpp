// discdiff/bound/exact_md4.hpp: the MD4 / MDLM masked-diffusion ELBO, in continuous and in
// discrete time, and the exact negative log-likelihood of the corresponding models, by exact
// enumeration (spec/MATH.md 5.3, 6.5 and 6.7).
//
// Setting: the absorbing generator, a schedule alpha_t (any Schedule type) on [t0, t1] with
// alpha(t0) < 1 (so u0 = sbar(t0) > 0), and a denoiser mu^i(.|x_t) over the N regular tokens
// (exact_denoiser.hpp) used only at masked positions (carry-over elsewhere). Write
//   c(u) = E_{x_0} E_{x_u|x_0} sum_{i: x_u^i = MASK} -log mu^i(x_u, u)(x_0^i)
//        = sum_x sum_{i: x^i = MASK} sum_h J_i(x,h) (-log mu^i(h|x))         (J_i: exact_marginals.hpp)
// Then, in nats per sequence:
//   continuous  L_inf = int_{u0}^{u1} c(u) / expm1(u) du + L_recon + L_prior      (w(t) dt = du/expm1(u))
//   discrete    L_T   = sum_{k=1}^T ((alpha_{s_k} - alpha_{t_k}) / (1 - alpha_{t_k})) c(u_{t_k})
//                       + L_recon + L_prior,   t_k = t0 + (t1 - t0) k/T,  s_k = t_{k-1}
//   L_recon = L (1 - alpha(t0)) log N,   L_prior = L alpha(t1) log N.
// The models whose NLL these bound (exactly, by enumeration over the D^L states):
//   continuous  the learned reverse CTMC (scores mu/expm1(u) at masked positions, spec 4.2) from
//               pi_alpha at u1 down to u0 (compute_exact_bounds with StartReference::masked_prior
//               and weight 1 gives its marginal q_{u0}; its J1 + L_recon equals L_inf, spec 5.3),
//               then the decoder (uniform over N at masked positions, identity elsewhere);
//   discrete    start pi_alpha(t1); for k = T..1 every masked position of x_{t_k} independently
//               becomes a w.p. ((alpha_s - alpha_t)/(1 - alpha_t)) mu^i(a|x_{t_k}) and stays MASK
//               w.p. (1 - alpha_s)/(1 - alpha_t); then the same decoder at t0.
// L_inf >= NLL_inf and L_T >= NLL_T hold for every denoiser. L_T >= L_2T >= L_inf holds when the
// expected masked cross-entropy per masked position is non-decreasing in t (true for the exact
// denoiser; not guaranteed for an arbitrary one).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../generator/absorbing.hpp"
#include "exact_divergence.hpp"
#include "exact_integrators.hpp"
#include "exact_marginals.hpp"

namespace discdiff {
namespace exact {

/// The terms of an MD4 ELBO (nats per sequence).
struct Md4Elbo {
  double diffusion = 0;  ///< the integral (continuous) or the sum over steps (discrete)
  double recon = 0;      ///< L (1 - alpha(t0)) log N
  double prior = 0;      ///< L alpha(t1) log N
  double total = 0;
  double quad_error = 0;  ///< continuous: Gauss-Kronrod error estimate
  int steps = 0;          ///< discrete: T (0 for continuous)
};

namespace detail_md4 {

template <class T, class Sched>
void check_range(const char* where, const Sched& sched, double t0, double t1) {
  require_in_closed(where, "t0", t0, 0.0, 1.0);
  require_in_closed(where, "t1", t1, 0.0, 1.0);
  if (!(t1 > t0))
    throw_invalid(where, "t1", t1, ("must be > t0 = " + discdiff::detail::format_value(t0)).c_str());
  if (!(sched.one_minus_alpha(static_cast<T>(t0)) > T(0)))
    throw_invalid(where, "t0", t0, "needs alpha(t0) < 1 (sbar(t0) > 0) for the exact computation");
}

/// c(u): the expected masked cross-entropy per sequence at the slice's u.
template <class T, class Den>
double masked_cross_entropy(const ExactForward<AbsorbingGenerator<T>>& fwd,
                            const ForwardSlice<T>& sl, const Den& den) {
  const SequenceSpace& S = fwd.state_space();
  const int n = fwd.num_regular(), L = fwd.length(), mask = fwd.generator().mask();
  std::vector<T> f(static_cast<std::size_t>(n));
  discdiff::detail::CompensatedSum<double> c;
  for (std::int64_t x = 0; x < S.size(); ++x) {
    if (!(sl.p[static_cast<std::size_t>(x)] > T(0))) continue;
    for (int i = 0; i < L; ++i) {
      if (S.digit(x, i) != mask) continue;
      den.predict(sl, x, i, f.data());
      for (int h = 0; h < n; ++h) {
        const T J = sl.joint_at(x, i, h);
        if (J == T(0)) continue;
        c.add(J * (f[static_cast<std::size_t>(h)] > T(0) ? -std::log(f[static_cast<std::size_t>(h)])
                                                          : std::numeric_limits<T>::infinity()));
      }
    }
  }
  return c.value();
}

template <class T, class Sched>
void fill_constants(const ExactForward<AbsorbingGenerator<T>>& fwd, const Sched& sched, double t0,
                    double t1, Md4Elbo& r) {
  const double L = fwd.length(), logn = std::log(static_cast<double>(fwd.num_regular()));
  r.recon = L * sched.one_minus_alpha(static_cast<T>(t0)) * logn;
  r.prior = L * sched.alpha(static_cast<T>(t1)) * logn;
  r.total = r.diffusion + r.recon + r.prior;
}

}  // namespace detail_md4

/// The continuous-time NELBO L_inf on [t0, t1] (schedule-invariant: depends on the schedule only
/// through alpha(t0), alpha(t1)). The integral runs over v = log u with Boost's adaptive
/// Gauss-Kronrod (relative tolerance quad_tol).
template <class T, class Sched, class Den>
Md4Elbo md4_continuous_elbo(const ExactForward<AbsorbingGenerator<T>>& fwd, const Sched& sched,
                            double t0, double t1, const Den& den, double quad_tol = 1e-12,
                            unsigned quad_depth = 12) {
  detail_md4::check_range<T>("discdiff::exact::md4_continuous_elbo", sched, t0, t1);
  const double u0 = sched.sigma_bar(static_cast<T>(t0)), u1 = sched.sigma_bar(static_cast<T>(t1));
  auto g = [&](double v) {
    const double u = std::exp(v);
    QuadVec<1> out;
    out[0] = detail_md4::masked_cross_entropy(fwd, fwd.slice(static_cast<T>(u)), den) * u /
             std::expm1(u);
    return out;
  };
  const QuadResult<1> q = integrate_vector<1>(g, std::log(u0), std::log(u1), quad_tol, quad_depth);
  Md4Elbo r;
  r.diffusion = q.value[0];
  r.quad_error = q.error;
  detail_md4::fill_constants(fwd, sched, t0, t1, r);
  return r;
}

/// The discrete-time NELBO L_T with T = steps uniform steps on [t0, t1].
template <class T, class Sched, class Den>
Md4Elbo md4_discrete_elbo(const ExactForward<AbsorbingGenerator<T>>& fwd, const Sched& sched,
                          double t0, double t1, const Den& den, int steps) {
  const char* where = "discdiff::exact::md4_discrete_elbo";
  detail_md4::check_range<T>(where, sched, t0, t1);
  if (steps < 1) throw_invalid(where, "steps", steps, "must be >= 1");
  Md4Elbo r;
  r.steps = steps;
  discdiff::detail::CompensatedSum<double> acc;
  for (int k = 1; k <= steps; ++k) {
    const double t = k == steps ? t1 : t0 + (t1 - t0) * k / steps;
    const double s = t0 + (t1 - t0) * (k - 1) / steps;
    const double omt = sched.one_minus_alpha(static_cast<T>(t));
    const double oms = sched.one_minus_alpha(static_cast<T>(s));
    const double c =
        detail_md4::masked_cross_entropy(fwd, fwd.slice(sched.sigma_bar(static_cast<T>(t))), den);
    acc.add((omt - oms) / omt * c);
  }
  r.diffusion = acc.value();
  detail_md4::fill_constants(fwd, sched, t0, t1, r);
  return r;
}

/// -sum_{x_0} p_0(x_0) log p(x_0) for p(x_0) = sum_x q(x) prod_i dec(x_0^i | x^i), the MD4
/// decoder at t0 (dec(a|MASK) = 1/N, dec(a|c) = [a = c]); q is a distribution over the D^L states.
template <class T>
double md4_decoder_nll(const ExactForward<AbsorbingGenerator<T>>& fwd, const std::vector<double>& q) {
  const int n = fwd.num_regular(), d = fwd.num_states(), L = fwd.length();
  std::vector<double> dec(static_cast<std::size_t>(n) * d, 0.0);  // dec[a * D + c]
  for (int a = 0; a < n; ++a) {
    dec[static_cast<std::size_t>(a) * d + a] = 1.0;
    dec[static_cast<std::size_t>(a) * d + n] = 1.0 / n;
  }
  std::vector<double> cur(q), nxt;
  std::int64_t pre = 1;
  for (int j = 0; j < L; ++j) {
    std::int64_t post = 1;
    for (int k = j + 1; k < L; ++k) post *= d;
    nxt.assign(static_cast<std::size_t>(pre * n * post), 0.0);
    apply_axis(cur.data(), pre, d, post, dec.data(), n, nxt.data());
    cur.swap(nxt);
    pre *= n;
  }
  std::vector<double> p0(fwd.data().begin(), fwd.data().end());
  return cross_entropy(p0, cur);
}

/// The exact NLL of the T-step discrete-time MD4 model (ancestral chain from pi_alpha(t1)).
template <class T, class Sched, class Den>
double md4_discrete_nll(const ExactForward<AbsorbingGenerator<T>>& fwd, const Sched& sched,
                        double t0, double t1, const Den& den, int steps) {
  const char* where = "discdiff::exact::md4_discrete_nll";
  detail_md4::check_range<T>(where, sched, t0, t1);
  if (steps < 1) throw_invalid(where, "steps", steps, "must be >= 1");
  const SequenceSpace& S = fwd.state_space();
  const int n = fwd.num_regular(), L = fwd.length(), mask = fwd.generator().mask();
  std::vector<double> q;
  {
    const std::vector<T> prior = fwd.masked_prior(sched.sigma_bar(static_cast<T>(t1)));
    q.assign(prior.begin(), prior.end());
  }
  std::vector<double> nq(q.size());
  std::vector<T> f(static_cast<std::size_t>(n));
  std::vector<std::pair<std::int64_t, double>> cur, nxt;
  for (int k = steps; k >= 1; --k) {
    const double t = k == steps ? t1 : t0 + (t1 - t0) * k / steps;
    const double s = t0 + (t1 - t0) * (k - 1) / steps;
    const double omt = sched.one_minus_alpha(static_cast<T>(t));
    const double oms = sched.one_minus_alpha(static_cast<T>(s));
    const double unmask = (omt - oms) / omt, stay = oms / omt;
    const ForwardSlice<T> sl = fwd.slice(sched.sigma_bar(static_cast<T>(t)));
    std::fill(nq.begin(), nq.end(), 0.0);
    for (std::int64_t x = 0; x < S.size(); ++x) {
      const double qx = q[static_cast<std::size_t>(x)];
      if (qx == 0.0) continue;
      cur.assign(1, {x, qx});
      for (int i = 0; i < L; ++i) {
        if (S.digit(x, i) != mask) continue;
        den.predict(sl, x, i, f.data());
        nxt.clear();
        for (const auto& [y, m] : cur) {
          nxt.emplace_back(y, m * stay);
          for (int a = 0; a < n; ++a)
            if (f[static_cast<std::size_t>(a)] > T(0))
              nxt.emplace_back(S.with_digit(y, i, a), m * unmask * f[static_cast<std::size_t>(a)]);
        }
        cur.swap(nxt);
      }
      for (const auto& [y, m] : cur) nq[static_cast<std::size_t>(y)] += m;
    }
    q.swap(nq);
  }
  return md4_decoder_nll(fwd, q);
}

}  // namespace exact
}  // namespace discdiff
