// discdiff/objective/checked_xt.hpp: the validated host API of the objectives on xtensor
// containers (spec/MATH.md section 5).
//
//   sedd_loss           DWDSE (5.1), uniform / absorbing / roulette, outputs = log-scores
//   cedd_loss           CEDD and CEDD* (5.2), outputs = logits
//   md4_loss            MD4 / MDLM continuous-time ELBO (5.3), any schedule
//   md4_discrete_loss   MD4 discrete-time ELBO with T steps (5.3)
//   genmd4_loss         GenMD4 with the two-sample RLOO surrogate (5.4)
//
// Each validates every input on the host and throws std::invalid_argument naming the argument,
// its value and, for shape mismatches, both sizes: token ids in range (x0 regular; xt < D; xt
// reachable from x0, i.e. P_u[xt, x0] > 0), times in (0, 1] (GenMD4: [t_1, 1]), the per-row
// schedule values finite, and every network output finite (NaN or Inf logits throw, so a loss is
// never NaN). Then it runs the fused kernels on the given host executor (Sequential, OpenMP,
// Thrust-OMP); results are bit-identical across them. For device buffers call the *_raw drivers.
//
// Results: loss[b] is the per-sequence loss l_b (spec 5.0: a sum over positions, no 1/L),
// position_loss[b, l] its weighted per-position terms, grad = grad_scale * d l_b / d outputs
// (grad_scale = 1/B gives the gradient of the batch mean).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "../core/error.hpp"
#include "../exec/sequential.hpp"
#include "../generator/absorbing.hpp"
#include "../schedule/per_token_polynomial.hpp"
#include "cedd.hpp"
#include "common.hpp"
#include "genmd4.hpp"
#include "md4.hpp"
#include "sedd.hpp"
#include "validate.hpp"

namespace discdiff {

/// Result of a batch objective.
template <class T>
struct LossResult {
  xt::xtensor<T, 1> loss;           ///< B per-sequence losses
  xt::xtensor<T, 2> position_loss;  ///< B x L weighted per-position terms (constants excluded)
  xt::xtensor<T, 3> grad;           ///< B x L x V: grad_scale * d loss[b] / d outputs
  /// The batch mean of loss.
  T mean() const {
    T s = T(0);
    for (std::size_t b = 0; b < loss.size(); ++b) s += loss(b);
    return loss.size() ? s / T(loss.size()) : T(0);
  }
};

/// Result of genmd4_loss.
template <class T>
struct GenMd4Result {
  xt::xtensor<T, 1> surrogate;   ///< B: S (its value; minimise the batch mean)
  xt::xtensor<T, 1> nelbo;       ///< B: 0.5 (L_1 + L_2) + L_recon + L_prior
  xt::xtensor<T, 1> loss1, loss2;   ///< B: L_1, L_2
  xt::xtensor<T, 1> log_q1, log_q2; ///< B: log q(z^k | x_0; w)
  xt::xtensor<T, 1> recon;          ///< B: L_recon
  xt::xtensor<T, 3> grad_logits1, grad_logits2;  ///< grad_scale dS/dlogits per draw
  xt::xtensor<T, 1> grad_w;      ///< N: grad_scale sum_b dS_b/dw
  xt::xtensor<T, 1> grad_w_raw;  ///< N: grad_w * sigmoid(w_raw)
};

namespace detail {
namespace objxt {

template <class Exec>
constexpr void require_host_executor() {
  static_assert(Exec::host_memory,
                "the xtensor objective API needs an executor that reads host memory; use the "
                "*_raw drivers with device buffers for Thrust-CUDA");
}

template <class T>
struct Prepared {
  std::int64_t B, L, V;
  LossResult<T> result;
  LossBatch<T> batch;

  /// Points the raw view at the result's buffers (call once the object is in its final place).
  void bind() {
    batch.grad = result.grad.data();
    batch.pos_loss = result.position_loss.data();
    batch.row_loss = result.loss.data();
  }
};

/// Common shape/token/time/output checks; allocates the result and fills the raw view.
template <class T>
Prepared<T> prepare(const char* where, int N, int D, const xt::xtensor<int, 2>& x0,
                    const xt::xtensor<int, 2>& xt, std::int64_t rows_size, const char* rows_name,
                    const xt::xtensor<T, 3>& out, const char* out_name, std::int64_t v1,
                    const char* v1_name, std::int64_t v2, const char* v2_name, T grad_scale) {
  namespace oc = objective_check;
  const std::int64_t B = static_cast<std::int64_t>(x0.shape()[0]);
  const std::int64_t L = static_cast<std::int64_t>(x0.shape()[1]);
  oc::require_same_shape(where, "xt", static_cast<std::int64_t>(xt.shape()[0]),
                         static_cast<std::int64_t>(xt.shape()[1]), "x0", B, L);
  oc::require_rows(where, rows_name, rows_size, B);
  const std::int64_t V = static_cast<std::int64_t>(out.shape()[2]);
  oc::require_outputs_shape(where, out_name, static_cast<std::int64_t>(out.shape()[0]),
                            static_cast<std::int64_t>(out.shape()[1]), V, B, L, v1, v1_name, v2,
                            v2_name);
  oc::require_tokens(where, "x0", x0.data(), B, L, N, "clean tokens (regular, never MASK)");
  oc::require_tokens(where, "xt", xt.data(), B, L, D, "noisy tokens");
  oc::require_finite_outputs(where, out_name, out.data(), B, L, V);
  require_finite(where, "grad_scale", grad_scale);
  Prepared<T> p{B, L, V, {}, {}};
  p.result.loss = xt::xtensor<T, 1>::from_shape({static_cast<std::size_t>(B)});
  p.result.position_loss =
      xt::xtensor<T, 2>::from_shape({static_cast<std::size_t>(B), static_cast<std::size_t>(L)});
  p.result.grad = xt::xtensor<T, 3>::from_shape(
      {static_cast<std::size_t>(B), static_cast<std::size_t>(L), static_cast<std::size_t>(V)});
  p.batch.B = B;
  p.batch.L = L;
  p.batch.V = static_cast<int>(V);
  p.batch.x0 = x0.data();
  p.batch.xt = xt.data();
  p.batch.logits = out.data();
  p.batch.grad_scale = grad_scale;
  return p;
}

}  // namespace objxt
}  // namespace detail

/// DWDSE (spec 5.1) of a batch: outputs are the B x L x D log-scores (raw outputs of the 4.4 head
/// with opt.log_score_head). Row b uses u_b = sched.sigma_bar(t_b) and sigma_b = sched.sigma(t_b)
/// (S-LOGLIN for absorbing, S-LOGLIN-ROU for roulette, S-GEO for uniform, ... any schedule).
/// loss[b] = sigma_b sum_l e_{b,l}; grad = grad_scale sigma_b Q (exp(lambda) - r).
template <class Gen, class Sched, class T, class Exec = SequentialExecutor>
LossResult<T> sedd_loss(const Gen& gen, const Sched& sched, const xt::xtensor<int, 2>& x0,
                        const xt::xtensor<int, 2>& xt, const xt::xtensor<T, 1>& t,
                        const xt::xtensor<T, 3>& outputs, SeddOptions opt = {},
                        T grad_scale = T(1), const Exec& exec = Exec{}) {
  detail::objxt::require_host_executor<Exec>();
  constexpr const char* where = "discdiff::sedd_loss";
  auto p = detail::objxt::prepare<T>(where, gen.num_regular(), gen.num_states(), x0, xt,
                                     static_cast<std::int64_t>(t.size()), "t", outputs, "outputs",
                                     gen.num_states(), "D", -1, "", grad_scale);
  p.bind();
  objective_check::require_times(where, t.data(), p.B, T(0));
  std::vector<T> u(static_cast<std::size_t>(p.B)), sigma(u.size());
  for (std::int64_t b = 0; b < p.B; ++b) {
    u[b] = sched.sigma_bar(t(b));
    sigma[b] = sched.sigma(t(b));
    objective_check::require_row_value(where, "sigma_bar(t)", b, u[b], true, t(b));
    objective_check::require_row_value(where, "sigma(t)", b, sigma[b], false, t(b));
  }
  objective_check::require_consistent(where, gen, x0.data(), xt.data(), p.B, p.L, u.data());
  sedd_loss_raw(exec, gen, p.batch, u.data(), sigma.data(), opt);
  return std::move(p.result);
}

/// CEDD / CEDD* (spec 5.2) of a batch: logits B x L x V with V = D (PBRC, MASK class included)
/// or N; weight omega(t_b); positions all (uniform, roulette) or masked (absorbing). The
/// schedule gives u_b = sbar(t_b) for the check that xt is reachable from x0.
template <class Gen, class Sched, class T, class Exec = SequentialExecutor>
LossResult<T> cedd_loss(const Gen& gen, const Sched& sched, const xt::xtensor<int, 2>& x0,
                        const xt::xtensor<int, 2>& xt, const xt::xtensor<T, 1>& t,
                        const xt::xtensor<T, 3>& logits, CeddVariant variant = CeddVariant::cedd,
                        T grad_scale = T(1), const Exec& exec = Exec{}) {
  detail::objxt::require_host_executor<Exec>();
  constexpr const char* where = "discdiff::cedd_loss";
  const bool has_mask = gen.num_states() > gen.num_regular();
  auto p = detail::objxt::prepare<T>(where, gen.num_regular(), gen.num_states(), x0, xt,
                                     static_cast<std::int64_t>(t.size()), "t", logits, "logits",
                                     gen.num_states(), "D", has_mask ? gen.num_regular() : -1, "N",
                                     grad_scale);
  p.bind();
  objective_check::require_times(where, t.data(), p.B, T(0));
  std::vector<T> u(static_cast<std::size_t>(p.B)), w(u.size());
  for (std::int64_t b = 0; b < p.B; ++b) {
    u[b] = sched.sigma_bar(t(b));
    w[b] = cedd_weight(variant, t(b));
    objective_check::require_row_value(where, "sigma_bar(t)", b, u[b], true, t(b));
    objective_check::require_row_value(where, "omega(t)", b, w[b], true, t(b));
  }
  objective_check::require_consistent(where, gen, x0.data(), xt.data(), p.B, p.L, u.data());
  cedd_loss_raw(exec, p.batch, w.data(), has_mask ? gen.mask() : -1,
                default_loss_positions<Gen>::value);
  return std::move(p.result);
}

/// MD4 / MDLM continuous-time ELBO (spec 5.3) of a batch on the absorbing graph: logits
/// B x L x V with V = N (MD4) or D = N + 1 (MDLM SUBS; the MASK column is excluded, gradient 0);
/// weight w(t_b) = sched.elbo_weight(t_b); masked positions; loss[b] adds L_recon + L_prior.
template <class Sched, class T, class Exec = SequentialExecutor>
LossResult<T> md4_loss(const AbsorbingGenerator<T>& gen, const Sched& sched,
                       const xt::xtensor<int, 2>& x0, const xt::xtensor<int, 2>& xt,
                       const xt::xtensor<T, 1>& t, const xt::xtensor<T, 3>& logits,
                       Md4Options opt = {}, T grad_scale = T(1), const Exec& exec = Exec{}) {
  detail::objxt::require_host_executor<Exec>();
  constexpr const char* where = "discdiff::md4_loss";
  const int N = gen.num_regular();
  auto p = detail::objxt::prepare<T>(where, N, gen.num_states(), x0, xt,
                                     static_cast<std::int64_t>(t.size()), "t", logits, "logits", N,
                                     "N", gen.num_states(), "D", grad_scale);
  p.bind();
  objective_check::require_times(where, t.data(), p.B, T(0));
  std::vector<T> u(static_cast<std::size_t>(p.B)), w(u.size());
  for (std::int64_t b = 0; b < p.B; ++b) {
    u[b] = sched.sigma_bar(t(b));
    w[b] = md4_weight(sched, t(b));
    objective_check::require_row_value(where, "sigma_bar(t)", b, u[b], true, t(b));
    objective_check::require_row_value(where, "w(t)", b, w[b], false, t(b));
  }
  objective_check::require_consistent(where, gen, x0.data(), xt.data(), p.B, p.L, u.data());
  md4_loss_raw(exec, p.batch, w.data(), N, md4_constant_terms(sched, p.L, N, opt));
  return std::move(p.result);
}

/// MD4 discrete-time ELBO with nsteps = T steps (spec 5.3): row b was noised at t = step[b]/T
/// (step in {1..T} for the code variant, {2..T} for the paper variant; md4_discrete_step maps a
/// uniform draw to a step); weight factor (alpha_s - alpha_t)/(1 - alpha_t); loss[b] adds the
/// reconstruction and prior terms of the variant.
template <class Sched, class T, class Exec = SequentialExecutor>
LossResult<T> md4_discrete_loss(const AbsorbingGenerator<T>& gen, const Sched& sched,
                                const xt::xtensor<int, 2>& x0, const xt::xtensor<int, 2>& xt,
                                const xt::xtensor<int, 1>& step, int nsteps,
                                const xt::xtensor<T, 3>& logits,
                                Md4DiscreteVariant variant = Md4DiscreteVariant::code,
                                Md4Options opt = {}, T grad_scale = T(1),
                                const Exec& exec = Exec{}) {
  detail::objxt::require_host_executor<Exec>();
  constexpr const char* where = "discdiff::md4_discrete_loss";
  const int N = gen.num_regular();
  const int first = variant == Md4DiscreteVariant::code ? 1 : 2;
  if (nsteps < first)
    throw_invalid(where, "nsteps", nsteps,
                  variant == Md4DiscreteVariant::code ? "need T >= 1" : "the paper variant needs T >= 2");
  auto p = detail::objxt::prepare<T>(where, N, gen.num_states(), x0, xt,
                                     static_cast<std::int64_t>(step.size()), "step", logits,
                                     "logits", N, "N", gen.num_states(), "D", grad_scale);
  p.bind();
  std::vector<T> u(static_cast<std::size_t>(p.B)), w(u.size());
  for (std::int64_t b = 0; b < p.B; ++b) {
    const int i = step(b);
    if (i < first || i > nsteps) {
      const std::string nm = "step[" + std::to_string(b) + "]";
      const std::string why =
          "must lie in [" + std::to_string(first) + ", " + std::to_string(nsteps) + "]";
      throw_invalid(where, nm.c_str(), i, why.c_str());
    }
    const T ti = T(i) / T(nsteps);
    u[b] = sched.sigma_bar(ti);
    w[b] = md4_discrete_weight(sched, i, nsteps, variant);
    objective_check::require_row_value(where, "sigma_bar(t)", b, u[b], true, ti);
    objective_check::require_row_value(where, "weight", b, w[b], false, ti);
  }
  objective_check::require_consistent(where, gen, x0.data(), xt.data(), p.B, p.L, u.data());
  md4_loss_raw(exec, p.batch, w.data(), N,
               md4_discrete_constant_terms(sched, p.L, N, nsteps, variant, opt));
  return std::move(p.result);
}

/// GenMD4 (spec 5.4) of a batch: two masked draws z1, z2 (B x L; each entry x0 or MASK = N) of
/// x0 at the same t_b in [t_1, 1], their logits (B x L x V, V = N or N + 1 with the MASK column
/// ignored), the learnable schedule (w = softplus(w_raw)). Returns S, the NELBO, the pieces and
/// the gradients for both logits, w and w_raw.
template <class T, class Exec = SequentialExecutor>
GenMd4Result<T> genmd4_loss(const PerTokenPolynomialSchedule<T>& sched,
                            const xt::xtensor<int, 2>& x0, const xt::xtensor<int, 2>& z1,
                            const xt::xtensor<int, 2>& z2, const xt::xtensor<T, 3>& logits1,
                            const xt::xtensor<T, 3>& logits2, const xt::xtensor<T, 1>& t,
                            GenMd4Options<T> opt = {}, const Exec& exec = Exec{}) {
  detail::objxt::require_host_executor<Exec>();
  namespace oc = objective_check;
  constexpr const char* where = "discdiff::genmd4_loss";
  const int N = sched.num_regular();
  const std::int64_t B = static_cast<std::int64_t>(x0.shape()[0]);
  const std::int64_t L = static_cast<std::int64_t>(x0.shape()[1]);
  const xt::xtensor<int, 2>* zs[2] = {&z1, &z2};
  const xt::xtensor<T, 3>* lg[2] = {&logits1, &logits2};
  const char* znames[2] = {"z1", "z2"};
  const char* lnames[2] = {"logits1", "logits2"};
  detail::require_open_interval(where, "t1", opt.t1, T(0), T(1));
  require_finite(where, "grad_scale", opt.grad_scale);
  oc::require_rows(where, "t", static_cast<std::int64_t>(t.size()), B);
  const std::int64_t V = static_cast<std::int64_t>(logits1.shape()[2]);
  for (int k = 0; k < 2; ++k) {
    oc::require_same_shape(where, znames[k], static_cast<std::int64_t>(zs[k]->shape()[0]),
                           static_cast<std::int64_t>(zs[k]->shape()[1]), "x0", B, L);
    oc::require_outputs_shape(where, lnames[k], static_cast<std::int64_t>(lg[k]->shape()[0]),
                              static_cast<std::int64_t>(lg[k]->shape()[1]),
                              static_cast<std::int64_t>(lg[k]->shape()[2]), B, L, N, "N", N + 1,
                              "D");
  }
  if (static_cast<std::int64_t>(logits2.shape()[2]) != V) {
    const std::string why = "must equal logits1.shape()[2] = " + std::to_string(V);
    throw_invalid(where, "logits2.shape()[2]", logits2.shape()[2], why.c_str());
  }
  oc::require_tokens(where, "x0", x0.data(), B, L, N, "clean tokens (regular, never MASK)");
  for (int k = 0; k < 2; ++k) {
    const int* z = zs[k]->data();
    for (std::int64_t i = 0; i < B * L; ++i)
      if (z[i] != x0.data()[i] && z[i] != N) {
        const std::string why = "a masked draw holds x0 (= " + std::to_string(x0.data()[i]) +
                                ") or MASK (= " + std::to_string(N) + ")";
        throw_invalid(where, oc::at(znames[k], i / L, i % L).c_str(), z[i], why.c_str());
      }
  }
  oc::require_times(where, t.data(), B, opt.t1);
  for (int k = 0; k < 2; ++k) oc::require_finite_outputs(where, lnames[k], lg[k]->data(), B, L, V);

  const std::size_t sB = static_cast<std::size_t>(B), sL = static_cast<std::size_t>(L);
  GenMd4Result<T> r;
  for (auto* a : {&r.surrogate, &r.nelbo, &r.loss1, &r.loss2, &r.log_q1, &r.log_q2, &r.recon})
    *a = xt::xtensor<T, 1>::from_shape({sB});
  r.grad_logits1 = xt::xtensor<T, 3>::from_shape({sB, sL, static_cast<std::size_t>(V)});
  r.grad_logits2 = xt::xtensor<T, 3>::from_shape({sB, sL, static_cast<std::size_t>(V)});
  r.grad_w = xt::xtensor<T, 1>::from_shape({static_cast<std::size_t>(N)});
  r.grad_w_raw = xt::xtensor<T, 1>::from_shape({static_cast<std::size_t>(N)});
  std::vector<T> work(sB * sL * 6 + sB + 1);
  GenMd4Batch<T> bt;
  bt.B = B;
  bt.L = L;
  bt.V = static_cast<int>(V);
  bt.x0 = x0.data();
  bt.t = t.data();
  T* wp = work.data();
  for (int k = 0; k < 2; ++k) {
    bt.z[k] = zs[k]->data();
    bt.logits[k] = lg[k]->data();
    bt.lse[k] = wp;
    bt.pos_loss[k] = wp + sB * sL;
    bt.pos_log_q[k] = wp + 2 * sB * sL;
    wp += 3 * sB * sL;
  }
  bt.rho_sum = wp;
  bt.lse_w = wp + sB;
  bt.grad[0] = r.grad_logits1.data();
  bt.grad[1] = r.grad_logits2.data();
  bt.grad_w = r.grad_w.data();
  bt.loss[0] = r.loss1.data();
  bt.loss[1] = r.loss2.data();
  bt.log_q[0] = r.log_q1.data();
  bt.log_q[1] = r.log_q2.data();
  bt.recon = r.recon.data();
  bt.surrogate = r.surrogate.data();
  bt.nelbo = r.nelbo.data();
  genmd4_loss_raw(exec, sched.view(), bt, opt);
  for (int v = 0; v < N; ++v) r.grad_w_raw(v) = r.grad_w(v) * sched.dw_dwraw(v);
  return r;
}

}  // namespace discdiff
