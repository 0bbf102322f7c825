// discdiff/objective/genmd4.hpp: GenMD4, state-dependent masking with the learnable per-token
// polynomial schedule S-GEN-POLY and the two-sample REINFORCE leave-one-out (RLOO) surrogate
// (spec/MATH.md 5.4; MD4 Section 6 and App. I.2).
//
// Schedule (schedule/per_token_polynomial.hpp): alpha_{t,v} = 1 - (1 - eta) t^{w_v},
// w = softplus(w_raw), eta = 1e-4. Per example x_0 (length L, a_n = x_0^n), two independent masks
// z^1, z^2 ~ q(.|x_0; w) at the same t (keep n with probability alpha_{t,a_n}) and two network
// passes mu^{(k),n} = softmax(logits^{(k),n}) over the N regular tokens:
//
//   L_k   = (1/t) sum_{n: z^k_n = MASK} [ -w_{a_n} (1 + log mu_{a_n}) + sum_v w_v mu_v ]
//           (per-draw diffusion loss, MD4 Eq. 12 contracted; >= 0)
//   log q(z|x_0; w) = sum_n [ z_n = MASK ? log(1 - eta) + w_{a_n} log t
//                                        : log(1 - (1 - eta) t^{w_{a_n}}) ]
//   L_recon = sum_n rho_n c_n,  rho_n = (1 - eta) t_1^{w_{a_n}},
//             c_n = -(w_{a_n} log t_1 - LSE_v(w_v log t_1)) = -log pi_{t_1}(a_n)
//   L_prior = L eta log N (constant; GenMd4Options::prior)
//   S     = 0.5 (L_1 + L_2) + 0.5 stopgrad(L_1 - L_2) (log q(z^1) - log q(z^2)) + L_recon + L_prior
//   NELBO = 0.5 (L_1 + L_2) + L_recon + L_prior   (the reported bound)
//
// Gradients (spec 5.4):
//   dS/dz^{(k),n}_v = 0.5 (1/t) [ w_a (mu_v - [v = a]) + mu_v (w_v - wbar) ],  wbar = sum_u w_u mu_u,
//                     at masked n (0 at unmasked n);
//   dL_k/dw_v       = (1/t) sum_{n masked in z^k} [ mu^{(k),n}_v - [a_n = v] (1 + log mu^{(k),n}_v) ]
//   d log q(z^k)/dw_v = sum_{n: a_n = v} ( z^k_n = MASK ? log t
//                                          : -(1 - eta) t^{w_v} log t / (1 - (1 - eta) t^{w_v}) )
//   dL_recon/dw_v   = log t_1 [ sum_{n: a_n = v} rho_n (c_n - 1) + pi_{t_1}(v) sum_n rho_n ]
//   dS/dw_v         = 0.5 (dL_1/dw_v + dL_2/dw_v)
//                     + 0.5 (L_1 - L_2) (d log q(z^1)/dw_v - d log q(z^2)/dw_v) + dL_recon/dw_v
//   dS/dw_raw_v     = dS/dw_v * sigmoid(w_raw_v)  (host driver, objective/checked_xt.hpp)
//
// Execution (deterministic on every executor): (1) one index computes LSE_v(w_v log t_1);
// (2) a kernel over the 2 B L positions writes the logits gradients, the per-position L_k and
// log q terms and each row's log-sum-exp; (3) a kernel over rows sums them and forms S and the
// NELBO; (4) a kernel over tiles of the vocabulary accumulates dS/dw in a fixed order over the
// positions (it re-reads the logits once; mu_v = exp(z_v - lse)). No B x L x V temporary.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "../generator/detail.hpp"
#include "../schedule/per_token_polynomial.hpp"
#include "common.hpp"

namespace discdiff {

/// Options of the GenMD4 objective.
template <class T>
struct GenMd4Options {
  T t1 = T(1e-3);       ///< time floor t_1 of the exact reconstruction term
  bool prior = true;    ///< add L_prior = L eta log N (constant)
  T grad_scale = T(1);  ///< multiplies every gradient (1/B: gradient of the batch mean)
};

/// Raw view of one GenMD4 batch: inputs, outputs and workspace (device-accessible for the
/// executor used). Position n = b * L + l.
template <class T>
struct GenMd4Batch {
  std::int64_t B = 0, L = 0;
  int V = 0;                                 ///< logits per position: N, or N + 1 (MASK column ignored)
  const int* x0 = nullptr;                   ///< B x L clean tokens
  const int* z[2] = {nullptr, nullptr};      ///< the two masked draws: x0 or MASK = N
  const T* logits[2] = {nullptr, nullptr};   ///< B x L x V per draw
  const T* t = nullptr;                      ///< B times (t_1 <= t <= 1)
  T* grad[2] = {nullptr, nullptr};           ///< B x L x V: grad_scale dS/dlogits^{(k)}
  T* grad_w = nullptr;                       ///< N: grad_scale sum_b dS_b/dw
  T* loss[2] = {nullptr, nullptr};           ///< B: L_1, L_2
  T* log_q[2] = {nullptr, nullptr};          ///< B: log q(z^1|x_0), log q(z^2|x_0)
  T* recon = nullptr;                        ///< B: L_recon
  T* surrogate = nullptr;                    ///< B: S
  T* nelbo = nullptr;                        ///< B: 0.5 (L_1 + L_2) + L_recon + L_prior
  // workspace
  T* lse[2] = {nullptr, nullptr};            ///< B x L row log-sum-exp per draw
  T* pos_loss[2] = {nullptr, nullptr};       ///< B x L per-position L_k terms
  T* pos_log_q[2] = {nullptr, nullptr};      ///< B x L per-position log q terms
  T* rho_sum = nullptr;                      ///< B: sum_n rho_n
  T* lse_w = nullptr;                        ///< 1: LSE_v(w_v log t_1)
};

namespace detail {
namespace genmd4 {

/// log alpha_{t,v} without cancellation: log1p(-(1 - alpha)) when 1 - alpha < 1/2.
template <class T>
DD_HD DD_INLINE T log_alpha(const PerTokenPolynomialView<T>& s, T t, int v) {
  const T oma = s.one_minus_alpha(t, v);
  return oma < T(0.5) ? math::log1p(-oma) : math::log(s.alpha(t, v));
}

/// d log q / d w_v of one position with clean token v (spec 5.4 score function).
template <class T>
DD_HD DD_INLINE T dlogq_dw(const PerTokenPolynomialView<T>& s, T t, T log_t, int v, bool masked) {
  if (masked) return log_t;
  return -s.one_minus_alpha(t, v) * log_t / s.alpha(t, v);
}

/// -log(1 - q) - q >= 0 for q = 1 - mu_a in [0, 1], given ce = -log mu_a: ce - q, except for
/// q < 1/64 (mu_a -> 1, where ce - q would cancel), the series sum_{k = 2..13} q^k / k (the
/// remainder is below q^12 / 7 < 1e-22 relative to q^2 / 2).
template <class T>
DD_HD DD_INLINE T neg_log1m_minus(T q, T ce) {
  if (!(q < T(1) / T(64))) return ce - q;
  T s = T(1) / T(13);
  for (int k = 12; k >= 2; --k) s = T(1) / T(k) + q * s;
  return q * q * s;
}

/// LSE_v(w_v log t_1) into lse_w[0] (one index).
template <class T>
struct LseWKernel {
  PerTokenPolynomialView<T> sched;
  T log_t1;
  T* lse_w;
  DD_HD void operator()(std::int64_t) const {
    T mx = sched.w[0] * log_t1;
    for (int v = 1; v < sched.n; ++v) mx = math::max(mx, sched.w[v] * log_t1);
    CompensatedSum<T> s;
    for (int v = 0; v < sched.n; ++v) s.add(math::exp(sched.w[v] * log_t1 - mx));
    lse_w[0] = mx + math::log(s.value());
  }
};

}  // namespace genmd4
}  // namespace detail

/// One masked position of one draw, fused (four passes over the N logits: max, exp (the SSE2
/// exp_fast pass of softmax_xent_row), the w-weighted sum, the gradient; softmax with max
/// subtraction). Returns its L_k term
///   (1/t) [ -w_a (1 + log mu_a) + sum_v w_v mu_v ]
///     = (1/t) [ w_a (-log mu_a - (1 - mu_a)) + sum_{v != a} w_v mu_v ]
/// (evaluated in the second form, a sum of non-negative parts; -log mu_a - (1 - mu_a) by the
/// series of neg_log1m_minus as mu_a -> 1, so it keeps its relative accuracy as mu -> delta_a);
/// writes grad[v] = gw (1/t) [w_a (mu_v - [v = a]) + mu_v (w_v - wbar)] for v < N
/// (= gw dL_k/dz_v), 0 for N <= v < V, and the row's log-sum-exp to *lse. S carries a factor
/// 0.5 per draw: the batch kernel passes gw = 0.5 grad_scale.
template <class T>
DD_HD T genmd4_position(const T* z, int N, int V, int a, T t, const T* w, T gw, T* grad, T* lse) {
  // e_v = exp(z_v - mx) into grad (the vectorised pass of softmax_xent_row, objective/common.hpp),
  // r = sum_v e_v - 1 (entries at the maximum are exactly 1), wnot_a = sum_{v != a} w_v e_v.
  const T mx = detail::obj::row_max(z, N);
  const T r = detail::obj::exp_row_ties(z, N, mx, grad);
  detail::obj::Sum4<T> wnot_a;
  detail::obj::accumulate4(N, wnot_a, [&](int v) { return v == a ? T(0) : w[v] * grad[v]; });
  const T total = T(1) + r;
  const T inv_total = T(1) / total;
  const T l1p = math::log1p(r);
  *lse = mx + l1p;
  // q = 1 - mu_a = sum_{v != a} e_v / total: r when z_a is the maximum (e_a = 1); otherwise
  // total - e_a >= total/2 (mu_a <= 1/2), without cancellation.
  const T delta = (z[a] == mx ? r : total - grad[a]) * inv_total;
  const T wrest = wnot_a.value() * inv_total;    // sum_{v != a} w_v mu_v
  const T wa = w[a];
  const T wbar = wrest + wa * grad[a] * inv_total;
  const T inv_t = T(1) / t;
  const T c = gw * inv_t;
  for (int v = 0; v < N; ++v) grad[v] = c * ((wa + w[v] - wbar) * (grad[v] * inv_total));
  grad[a] -= c * wa;
  for (int v = N; v < V; ++v) grad[v] = T(0);
  return inv_t * (wa * detail::genmd4::neg_log1m_minus(delta, (mx - z[a]) + l1p) + wrest);
}

/// Kernel (2) over the 2 B L positions: index i = k * B L + n.
template <class T>
struct GenMd4PositionKernel {
  GenMd4Batch<T> batch;
  PerTokenPolynomialView<T> sched;
  T grad_scale;

  DD_HD void operator()(std::int64_t i) const {
    const std::int64_t bl = batch.B * batch.L;
    const int k = i >= bl ? 1 : 0;
    const std::int64_t n = i - k * bl;
    const std::int64_t b = n / batch.L;
    const int N = sched.n;
    const int a = batch.x0[n];
    const T t = batch.t[b];
    T* g = batch.grad[k] + n * batch.V;
    if (batch.z[k][n] == N) {
      batch.pos_loss[k][n] =
          genmd4_position(batch.logits[k] + n * batch.V, N, batch.V, a, t, sched.w,
                          T(0.5) * grad_scale, g, batch.lse[k] + n);
      batch.pos_log_q[k][n] = math::log1p(-sched.eta) + sched.w[a] * math::log(t);
    } else {
      for (int v = 0; v < batch.V; ++v) g[v] = T(0);
      batch.pos_loss[k][n] = T(0);
      batch.lse[k][n] = T(0);
      batch.pos_log_q[k][n] = detail::genmd4::log_alpha(sched, t, a);
    }
  }
};

/// Kernel (3) over rows: L_k, log q_k, L_recon, sum rho, S and the NELBO.
template <class T>
struct GenMd4RowKernel {
  GenMd4Batch<T> batch;
  PerTokenPolynomialView<T> sched;
  T log_t1;
  T prior;  ///< L_prior (constant)

  DD_HD void operator()(std::int64_t b) const {
    const std::int64_t L = batch.L;
    detail::CompensatedSum<T> l[2], q[2], rec, rho;
    const T lse_w = batch.lse_w[0];
    for (std::int64_t j = 0; j < L; ++j) {
      const std::int64_t n = b * L + j;
      for (int k = 0; k < 2; ++k) {
        l[k].add(batch.pos_loss[k][n]);
        q[k].add(batch.pos_log_q[k][n]);
      }
      const T lw = sched.w[batch.x0[n]] * log_t1;
      const T r = (T(1) - sched.eta) * math::exp(lw);
      rec.add(r * (lse_w - lw));
      rho.add(r);
    }
    const T l1 = l[0].value(), l2 = l[1].value(), q1 = q[0].value(), q2 = q[1].value();
    batch.loss[0][b] = l1;
    batch.loss[1][b] = l2;
    batch.log_q[0][b] = q1;
    batch.log_q[1][b] = q2;
    batch.recon[b] = rec.value();
    batch.rho_sum[b] = rho.value();
    const T mean = T(0.5) * (l1 + l2);
    batch.nelbo[b] = mean + batch.recon[b] + prior;
    batch.surrogate[b] = mean + T(0.5) * (l1 - l2) * (q1 - q2) + batch.recon[b] + prior;
  }
};

/// Kernel (4) over vocabulary tiles of TV tokens: dS/dw for v in [j TV, min((j+1) TV, N)), summed
/// over every position in a fixed order (rows, positions, draws).
template <class T, int TV = 16>
struct GenMd4WGradKernel {
  GenMd4Batch<T> batch;
  PerTokenPolynomialView<T> sched;
  T log_t1;
  T grad_scale;

  DD_HD void operator()(std::int64_t tile) const {
    const int N = sched.n;
    const int v0 = static_cast<int>(tile) * TV;
    const int nv = N - v0 < TV ? N - v0 : TV;
    detail::CompensatedSum<T> acc[TV];
    detail::CompensatedSum<T> rho_total;
    for (std::int64_t b = 0; b < batch.B; ++b) rho_total.add(batch.rho_sum[b]);
    const T lse_w = batch.lse_w[0];
    for (std::int64_t b = 0; b < batch.B; ++b) {
      const T t = batch.t[b];
      const T c = T(0.5) / t;
      const T log_t = math::log(t);
      const T diff = batch.loss[0][b] - batch.loss[1][b];
      for (std::int64_t j = 0; j < batch.L; ++j) {
        const std::int64_t n = b * batch.L + j;
        const int a = batch.x0[n];
        const bool in_tile = a >= v0 && a < v0 + nv;
        bool masked[2];
        for (int k = 0; k < 2; ++k) {
          masked[k] = batch.z[k][n] == N;
          if (!masked[k]) continue;
          const T* zz = batch.logits[k] + n * batch.V;
          const T ls = batch.lse[k][n];
          for (int jj = 0; jj < nv; ++jj) acc[jj].add(c * math::exp(zz[v0 + jj] - ls));
          if (in_tile) acc[a - v0].add(-c * (T(1) + (zz[a] - ls)));
        }
        if (in_tile) {
          const T dq = detail::genmd4::dlogq_dw(sched, t, log_t, a, masked[0]) -
                       detail::genmd4::dlogq_dw(sched, t, log_t, a, masked[1]);
          acc[a - v0].add(T(0.5) * diff * dq);
          const T lw = sched.w[a] * log_t1;
          const T r = (T(1) - sched.eta) * math::exp(lw);
          acc[a - v0].add(log_t1 * r * ((lse_w - lw) - T(1)));
        }
      }
    }
    for (int jj = 0; jj < nv; ++jj) {
      const int v = v0 + jj;
      const T pi = math::exp(sched.w[v] * log_t1 - lse_w);
      acc[jj].add(log_t1 * pi * rho_total.value());
      batch.grad_w[v] = grad_scale * acc[jj].value();
    }
  }
};

/// Number of vocabulary tiles of GenMd4WGradKernel<T, TV>.
template <int TV = 16>
constexpr std::int64_t genmd4_num_tiles(int N) {
  return (static_cast<std::int64_t>(N) + TV - 1) / TV;
}

/// Raw-pointer GenMD4 driver on any executor (no validation; objective/checked_xt.hpp has the
/// validated host API). sched.w must be device-accessible for device executors.
/// Preconditions (unchecked): x0 in [0, N), z[k] entries x0 or N, t_1 <= t_b <= 1, logits finite.
template <class Exec, class T>
void genmd4_loss_raw(const Exec& exec, const PerTokenPolynomialView<T>& sched,
                     const GenMd4Batch<T>& batch, GenMd4Options<T> opt = {}) {
  const T log_t1 = math::log(opt.t1);
  exec.for_each(1, detail::genmd4::LseWKernel<T>{sched, log_t1, batch.lse_w});
  if (batch.B > 0 && batch.L > 0) {
    exec.for_each(2 * batch.B * batch.L, GenMd4PositionKernel<T>{batch, sched, opt.grad_scale});
    const T prior = opt.prior ? T(batch.L) * sched.eta * math::log(T(sched.n)) : T(0);
    exec.for_each(batch.B, GenMd4RowKernel<T>{batch, sched, log_t1, prior});
  }
  exec.for_each(genmd4_num_tiles(sched.n), GenMd4WGradKernel<T>{batch, sched, log_t1,
                                                                opt.grad_scale});
}

/// Naive reference of genmd4_loss_raw (host, sequential): the formulas of spec 5.4 term by term
/// with explicit softmax vectors. Fills every output of `batch` (the workspace is not used).
template <class T>
void genmd4_loss_naive(const PerTokenPolynomialView<T>& sched, const GenMd4Batch<T>& batch,
                       GenMd4Options<T> opt = {}) {
  const int N = sched.n;
  const T eta = sched.eta, t1 = opt.t1, log_t1 = math::log(t1);
  // pi_{t_1} and the reconstruction pieces
  T mx = sched.w[0] * log_t1;
  for (int v = 1; v < N; ++v) mx = math::max(mx, sched.w[v] * log_t1);
  T sum = T(0);
  for (int v = 0; v < N; ++v) sum += math::exp(sched.w[v] * log_t1 - mx);
  const T lse_w = mx + math::log(sum);
  for (int v = 0; v < N; ++v) batch.grad_w[v] = T(0);
  const T prior = opt.prior ? T(batch.L) * eta * math::log(T(N)) : T(0);
  const std::size_t nn = static_cast<std::size_t>(N);
  std::vector<T> mu(nn);
  std::vector<T> dldw[2] = {std::vector<T>(nn), std::vector<T>(nn)};
  std::vector<T> dq[2] = {std::vector<T>(nn), std::vector<T>(nn)};
  for (std::int64_t b = 0; b < batch.B; ++b) {
    const T t = batch.t[b];
    T lk[2] = {T(0), T(0)}, lq[2] = {T(0), T(0)};
    for (int k = 0; k < 2; ++k)
      for (int v = 0; v < N; ++v) dldw[k][v] = dq[k][v] = T(0);
    T recon = T(0), rho_sum = T(0);
    for (std::int64_t j = 0; j < batch.L; ++j) {
      const std::int64_t n = b * batch.L + j;
      const int a = batch.x0[n];
      for (int k = 0; k < 2; ++k) {
        T* g = batch.grad[k] + n * batch.V;
        for (int v = 0; v < batch.V; ++v) g[v] = T(0);
        const T alpha = T(1) - (T(1) - eta) * math::pow(t, sched.w[a]);
        if (batch.z[k][n] != N) {
          lq[k] += math::log(alpha);
          dq[k][a] += -(T(1) - eta) * math::pow(t, sched.w[a]) * math::log(t) / alpha;
          continue;
        }
        lq[k] += math::log(T(1) - eta) + sched.w[a] * math::log(t);
        dq[k][a] += math::log(t);
        const T* z = batch.logits[k] + n * batch.V;
        const T lse = math::logsumexp(z, N);
        T wbar = T(0);
        for (int v = 0; v < N; ++v) {
          mu[v] = math::exp(z[v] - lse);
          wbar += sched.w[v] * mu[v];
        }
        lk[k] += (-sched.w[a] * (T(1) + math::log(mu[a])) + wbar) / t;
        for (int v = 0; v < N; ++v) {
          const T ind = v == a ? T(1) : T(0);
          g[v] = opt.grad_scale * T(0.5) / t *
                 (sched.w[a] * (mu[v] - ind) + mu[v] * (sched.w[v] - wbar));
          dldw[k][v] += (mu[v] - ind * (T(1) + math::log(mu[v]))) / t;
        }
      }
      const T rho = (T(1) - eta) * math::pow(t1, sched.w[a]);
      const T cn = -(sched.w[a] * log_t1 - lse_w);
      recon += rho * cn;
      rho_sum += rho;
      for (int v = 0; v < N; ++v) {
        const T ind = v == a ? T(1) : T(0);
        const T pi = math::exp(sched.w[v] * log_t1 - lse_w);
        batch.grad_w[v] += opt.grad_scale * rho * (ind * log_t1 * cn - log_t1 * (ind - pi));
      }
    }
    for (int v = 0; v < N; ++v)
      batch.grad_w[v] += opt.grad_scale * (T(0.5) * (dldw[0][v] + dldw[1][v]) +
                                           T(0.5) * (lk[0] - lk[1]) * (dq[0][v] - dq[1][v]));
    batch.loss[0][b] = lk[0];
    batch.loss[1][b] = lk[1];
    batch.log_q[0][b] = lq[0];
    batch.log_q[1][b] = lq[1];
    batch.recon[b] = recon;
    if (batch.rho_sum) batch.rho_sum[b] = rho_sum;
    batch.nelbo[b] = T(0.5) * (lk[0] + lk[1]) + recon + prior;
    batch.surrogate[b] =
        T(0.5) * (lk[0] + lk[1]) + T(0.5) * (lk[0] - lk[1]) * (lq[0] - lq[1]) + recon + prior;
  }
}

}  // namespace discdiff
