// `discdiff eval --convention exact|pbrc|sedd|md4` (issue 17; apps/diffusion.hpp EvalConvention,
// score_bound_options, evaluate_bounds; docs/math/bounds.md "Conventions of the public codes").
//
// On a fixed tiny network (deterministic initialisation, N = 5, L = 8) and fixed clean sequences:
//  1. the program's convention value equals the exact-convention value on the same draws,
//     transformed by the documented constants, computed here from their closed forms
//     (pbrc: J1 = (J1 - L KL_prior)/(1 - eps), J2 = (J2hat - CE_ref + X_exit)/(1 - eps) + CE_code
//     - X_code; sedd: the pbrc J1 at eps = 1e-3; md4: ELBO - L alpha(1) log N), to float rounding;
//  2. a small independent port of each upstream formula (SEDD losses.py + graph_lib.py
//     score_entropy, PBRC test_perplexity.py J1/J2 + simple_score_entropy + probs_to_score, MD4
//     md4.py diffusion_loss + recon_loss), with its own i.i.d. draws (std::mt19937_64), its own
//     schedules and forward noise, evaluated on the same network, agrees with the program's value
//     within Monte Carlo error (|z| < 4; both standard errors include the between-sequence
//     variance, which a mean over the fixed 64 sequences, each used equally often, does not
//     have, so |z| is conservative);
//  3. a convention that does not apply to a checkpoint is a clear error.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "diffusion.hpp"

namespace {

using discdiff::app::Real;
namespace app = discdiff::app;

constexpr int kN = 5;          // regular tokens
constexpr std::int64_t kL = 8;  // sequence length
constexpr std::int64_t kNum = 64;
// Monte Carlo sizes of the z-tests (about 2 s in Release on one thread); a quarter under the
// sanitizers.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kMcScale = 4;
#else
constexpr int kMcScale = 1;
#endif
constexpr int kPasses = 48 / kMcScale;                   // x kNum sequences (discdiff)
constexpr std::int64_t kRefSamples = 32768 / kMcScale;  // i.i.d. samples (ports)

struct Fixture {
  app::RunConfig cfg;
  std::unique_ptr<app::Problem> p;
  std::unique_ptr<app::Net> net;
  std::vector<int> x0;
};

Fixture make_fixture(const std::string& objective, const std::string& generator) {
#ifdef _OPENMP
  omp_set_num_threads(1);  // tiny batches: one thread is faster, and CTest runs two files at once
#endif
  Fixture f;
  app::RunConfig& c = f.cfg;
  c.objective = objective;
  c.generator = generator;
  c.n_layer = 1;
  c.d_model = 16;
  c.n_head = 2;
  c.cond_dim = 8;
  c.seq_len = int(kL);
  c.seed = 0x17c0417u;
  // Large enough that every term by which the conventions differ shows above the Monte Carlo
  // error of the independent ports: d = 0.1 (absorbing, roulette: prior KL 1.3, reference CE 3.9,
  // exit 0.8 nats/seq), sigma_max = 1.5 (uniform: prior KL 0.67), eta = 0.05 (md4: prior 0.64).
  c.sched_d = 0.1;
  c.sigma_max = 1.5;
  c.eta = 0.05;
  c.resolve_auto();
  c.validate();
  f.p = std::make_unique<app::Problem>(c, kN);
  f.net = std::make_unique<app::Net>(f.p->model_config());
  // A fixed, non-trivial network: init() zeroes the output head and the adaLN modulation (the
  // outputs would not depend on x_t or t), so every parameter is redrawn uniformly in +-0.35.
  std::mt19937_64 prng(c.seed);
  std::uniform_real_distribution<double> w(-0.35, 0.35);
  std::vector<Real> params(f.net->num_params());
  for (auto& q : params) q = Real(w(prng));
  f.net->set_params(params);
  // Clean data: a deterministic, non-uniform pattern (a token repeats with its neighbours).
  f.x0.resize(std::size_t(kNum * kL));
  std::uint64_t s = 12345;
  for (auto& v : f.x0) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const int r = int((s >> 33) % 10);
    v = r < 5 ? r % 3 : r - 5;  // tokens 0-2 twice as likely
  }
  return f;
}

app::EvalOptions eval_options(app::EvalConvention c, double eps = 0, int passes = 2) {
  app::EvalOptions eo;
  eo.batch = 16;
  eo.passes = passes;
  eo.seed = 7;
  eo.convention = c;
  eo.eps = eps;
  return eo;
}

discdiff::ScoreBoundEstimate score_bounds(Fixture& f, const app::EvalOptions& eo) {
  const discdiff::ScoreBoundOptions so =
      app::score_bound_options(*f.p, eo, f.net->config().vocab_out);
  return app::estimate_net_score_bounds(*f.p, *f.net, f.x0, kNum, kL, so);
}

// ---------------------------------------------------------------- closed-form constants
// Written from spec/MATH.md 6.7 and 8.4 (per sequence, nats), not from reference_terms.hpp.

double hb(double a) { return -(a > 0 ? a * std::log(a) : 0.0) - (a < 1 ? (1 - a) * std::log1p(-a) : 0.0); }

struct Constants {
  double prior_kl, reference_ce, exit;  // exact convention
  double pbrc_ce, pbrc_exit;            // PBRC code (pbrc_exit: NaN for uniform, estimated per draw)
};

Constants constants(const app::RunConfig& c, double u_eps, double u_1, double eps) {
  const double N = kN, L = double(kL), lN = std::log(N);
  Constants k{};
  if (c.generator == "uniform") {
    const double e = std::exp(-u_1), C = (1 + (N - 1) * e) / N, B = (1 - e) / N;
    k.prior_kl = L * (C * std::log(N * C) + (N - 1) * B * std::log(N * B));
    k.reference_ce = L * lN;
    k.exit = L * (1 - 1 / N) * (u_1 - u_eps);
    k.pbrc_ce = L * lN;
    k.pbrc_exit = std::nan("");
  } else if (c.generator == "absorbing") {
    const double a = std::exp(-u_1);
    k.prior_kl = L * a * lN;
    k.reference_ce = L * (hb(a) + a * lN);
    k.exit = L * (std::exp(-u_eps) - a);
    k.pbrc_ce = 0;
    k.pbrc_exit = L * (1 - eps);
  } else {  // roulette
    const double pm = c.p_m, g = 1 - pm, a = std::exp(-pm * u_1), eg = std::exp(-g * u_1);
    const double cc = eg + (1 - eg) / N, b = (1 - eg) / N;
    k.prior_kl = L * a * (cc * std::log(N * cc) + (N - 1) * b * std::log(N * b));
    k.reference_ce = L * (hb(a) + a * lN);
    k.exit = L * (1 - g / N) * (std::exp(-pm * u_eps) - a) / pm;
    k.pbrc_ce = 0;
    k.pbrc_exit = L * (1 - g / N) * (1 - eps) / pm;
  }
  return k;
}

/// The PBRC uniform exit term, (1 - 1/N) sigma(t) per position inside the average, on the
/// estimator's own time draws (regenerated from the same seed, streams and proposal).
double pbrc_uniform_exit(const Fixture& f, const discdiff::ScoreBoundOptions& so) {
  const auto& sched = f.p->schedule();
  const discdiff::TimeProposalMap<discdiff::app::DynSchedule<Real>> prop(
      sched, Real(so.eps), Real(1), so.time_proposal, kL);
  const bool uniform_t = prop.kind() == discdiff::TimeProposal::uniform;
  const std::int64_t B = so.batch_size, nb = (kNum + B - 1) / B;
  std::vector<Real> tau(static_cast<std::size_t>(B));
  double sum = 0;
  std::int64_t n = 0;
  for (int pass = 0; pass < so.passes; ++pass)
    for (std::int64_t k = 0; k < nb; ++k) {
      const std::int64_t rows = std::min(B, kNum - k * B);
      discdiff::sample_unit_times(so.time_sampling, so.seed, discdiff::kMcTimeStream,
                                  std::uint64_t(pass) * nb + k, rows, tau.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        const Real t = prop.time(tau[r]);
        const double w = uniform_t ? 1.0 : double(prop.inverse_density(t)) / (1.0 - so.eps);
        sum += w * double(kL) * (1.0 - 1.0 / kN) * double(sched.sigma(t));
        ++n;
      }
    }
  return sum / double(n);
}

void check_close(double got, double want, double scale, const char* what) {
  INFO(what << ": got " << got << ", want " << want);
  CHECK(std::fabs(got - want) <= 1e-6 * scale);
}

// ---------------------------------------------------------------- independent upstream ports

struct RefEstimate {
  double mean = 0, se = 0;
};

/// i.i.d. samples: sequence k mod kNum with its own t, per-sample value from `sample`.
template <class F>
RefEstimate run_reference(Fixture& f, std::int64_t samples, std::uint64_t seed, F&& sample) {
  std::mt19937_64 rng(seed);
  double s = 0, s2 = 0;
  const std::int64_t B = 64;
  std::vector<int> x0b(static_cast<std::size_t>(B * kL)), xt(x0b.size());
  std::vector<double> t(static_cast<std::size_t>(B));
  for (std::int64_t done = 0; done < samples; done += B) {
    const std::int64_t rows = std::min(B, samples - done);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t k = (done + r) % kNum;
      std::copy(f.x0.begin() + k * kL, f.x0.begin() + (k + 1) * kL, x0b.begin() + r * kL);
    }
    const std::vector<double> v = sample(rng, x0b, rows);
    for (double x : v) s += x, s2 += x * x;
  }
  const double n = double(samples), m = s / n;
  return {m, std::sqrt((s2 / n - m * m) / (n - 1))};
}

double zscore(double a, double sa, double b, double sb) { return (a - b) / std::sqrt(sa * sa + sb * sb); }

/// Network outputs for noisy rows xt at per-row (t, sigma): the model as the program runs it.
const Real* net_outputs(Fixture& f, const std::vector<int>& xt, const std::vector<double>& t,
                        const std::vector<double>& sig, std::int64_t rows) {
  std::vector<Real> cond(static_cast<std::size_t>(rows));
  // sedd, cedd and md4 read the total noise sbar(t) (apps/objective.hpp TimeInput::sigma_bar).
  REQUIRE(f.p->objective().time_input == app::TimeInput::sigma_bar);
  (void)t;
  for (std::int64_t r = 0; r < rows; ++r) cond[r] = Real(sig[r]);
  return f.net->forward(xt.data(), cond.data(), int(rows), int(kL));
}

/// SEDD noise_lib.py: (total noise, rate) of LogLinearNoise(eps = d) or GeometricNoise.
void sedd_noise(const app::RunConfig& c, double t, double& sigma, double& dsigma) {
  if (c.schedule == "loglinear") {
    sigma = -std::log1p(-(1 - c.sched_d) * t);
    dsigma = (1 - c.sched_d) / (1 - (1 - c.sched_d) * t);
  } else {  // geometric
    sigma = std::pow(c.sigma_min, 1 - t) * std::pow(c.sigma_max, t);
    dsigma = sigma * std::log(c.sigma_max / c.sigma_min);
  }
}

double esigm1(double s) { return s < 0.5 ? std::expm1(s) : std::exp(s) - 1; }

/// The model's log-scores over D = dim entries at one position (graph_lib dims: uniform N,
/// absorbing N + 1). sedd: the raw head output plus the spec 4.4 offsets (SEDD scale_by_sigma;
/// PBRC model.scale for uniform); cedd: PBRC probs_to_score on softmax(logits) (no safeguards).
/// The current token's entry is 0 (log 1), as both codes' scatter.
std::vector<double> log_scores(const Fixture& f, const Real* out, int x, double sigma) {
  const bool absorb = f.cfg.generator == "absorbing";
  const int dim = absorb ? kN + 1 : kN;
  std::vector<double> ls(std::size_t(dim), 0.0);
  if (f.p->score_head()) {
    const double em = esigm1(sigma);
    const double c = absorb ? -std::log(em) - std::log(double(kN))
                            : std::log(1 + 1 / em - 1 / (em + kN));
    for (int v = 0; v < dim; ++v) ls[v] = double(out[v]) + c;
  } else {  // softmax over the network's N logits
    double mx = -1e300, z = 0;
    for (int v = 0; v < kN; ++v) mx = std::max(mx, double(out[v]));
    std::vector<double> pr(static_cast<std::size_t>(kN));
    for (int v = 0; v < kN; ++v) z += (pr[v] = std::exp(double(out[v]) - mx));
    for (auto& q : pr) q /= z;
    if (absorb) {
      for (int v = 0; v < kN; ++v) ls[v] = std::log(pr[v] / std::expm1(sigma));
    } else {
      const double rbc = std::expm1(sigma) / (std::exp(sigma) + kN - 1), rcb = 1 / rbc;
      for (int v = 0; v < kN; ++v) ls[v] = std::log(1 + pr[v] * (rcb - 1) + pr[x] * (rbc - 1));
    }
  }
  ls[std::size_t(x)] = 0.0;
  return ls;
}

/// graph_lib.py score_entropy (with K; k = true) or PBRC simple_score_entropy (k = false), one
/// position; the absorbing graph counts masked positions only.
double score_entropy(const Fixture& f, const std::vector<double>& ls, double sigma, int x, int a,
                     bool k) {
  const double em = esigm1(sigma);
  if (f.cfg.generator == "absorbing") {
    if (x != kN) return 0.0;
    const double ratio = 1 / em;
    double pos = 0;
    for (int v = 0; v < kN; ++v) pos += std::exp(ls[v]);  // score[:, :-1]
    return pos - ratio * ls[a] + (k ? ratio * (std::log(ratio) - 1) : 0.0);
  }
  const double dim = kN, ratio = 1 - dim / (em + dim);
  double mean = 0, mexp = 0;
  for (int v = 0; v < kN; ++v) mean += ls[v] / dim, mexp += std::exp(ls[v]) / dim;
  double neg = mean - ls[x] / dim;
  neg = x == a ? ratio * neg : ls[a] / em + neg;
  const double cst = x == a ? (dim - 1) / dim * ratio * (std::log(ratio) - 1)
                            : ((-std::log(ratio) - 1) / ratio - (dim - 2)) / dim;
  const double pos = mexp - std::exp(ls[x]) / dim;
  return pos - neg + (k ? cst : 0.0);
}

/// SEDD losses.py loss_fn / PBRC J1 (j2 = false) or PBRC J2 with its constants (j2 = true), per
/// sequence in nats: t = (1 - eps) U + eps, graph.sample_transition, the model's log-scores.
RefEstimate reference_j(Fixture& f, double eps, bool j2, std::int64_t samples, std::uint64_t seed) {
  const bool absorb = f.cfg.generator == "absorbing";
  return run_reference(f, samples, seed, [&](std::mt19937_64& rng, const std::vector<int>& x0b,
                                             std::int64_t rows) {
    std::uniform_real_distribution<double> U(0.0, 1.0);
    std::uniform_int_distribution<int> tok(0, kN - 1);
    std::vector<double> t(static_cast<std::size_t>(rows)), sig(t.size()), dsig(t.size());
    std::vector<int> xt(static_cast<std::size_t>(rows * kL));
    for (std::int64_t r = 0; r < rows; ++r) {
      t[r] = (1 - eps) * U(rng) + eps;
      sedd_noise(f.cfg, t[r], sig[r], dsig[r]);
      const double move = -std::expm1(-sig[r]);
      for (std::int64_t l = 0; l < kL; ++l) {
        const int a = x0b[r * kL + l];
        const bool m = U(rng) < move;
        const int other = tok(rng);  // drawn always, used when moved (uniform)
        xt[r * kL + l] = m ? (absorb ? kN : other) : a;
      }
    }
    const Real* out = net_outputs(f, xt, t, sig, rows);
    const int V = f.net->config().vocab_out;
    std::vector<double> v(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) {
      double acc = 0;
      for (std::int64_t l = 0; l < kL; ++l) {
        const std::int64_t i = r * kL + l;
        const auto ls = log_scores(f, out + i * V, xt[i], sig[r]);
        const double e = score_entropy(f, ls, sig[r], xt[i], x0b[i], !j2);
        acc += dsig[r] * e - (j2 && !absorb ? (1 - 1.0 / kN) * dsig[r] : 0.0);
      }
      if (j2) acc += absorb ? double(kL) * (eps - 1) : double(kL) * std::log(double(kN));
      v[r] = acc;
    }
    return v;
  });
}

/// MD4 md4.py: diffusion_loss (continuous, or discrete with T steps) + recon_loss + 0 prior, per
/// sequence in nats, with MaskingSchedule('linear', eps = eta) and i.i.d. t.
RefEstimate reference_md4(Fixture& f, int T, std::int64_t samples, std::uint64_t seed) {
  const double eta = f.cfg.eta;
  auto alpha = [&](double t) { return (1 - 2 * eta) * (1 - t) + eta; };
  auto gamma = [&](double t) { return std::log(alpha(t) / (1 - alpha(t))); };
  const double recon = double(kL) * (1 - alpha(0.0)) * std::log(double(kN));
  return run_reference(f, samples, seed, [&](std::mt19937_64& rng, const std::vector<int>& x0b,
                                             std::int64_t rows) {
    std::uniform_real_distribution<double> U(0.0, 1.0);
    std::vector<double> t(static_cast<std::size_t>(rows)), u(t.size());
    std::vector<int> zt(static_cast<std::size_t>(rows * kL));
    for (std::int64_t r = 0; r < rows; ++r) {
      t[r] = U(rng);
      if (T > 0) t[r] = (std::floor(t[r] * T) + 1) / T;
      u[r] = -std::log(alpha(t[r]));
      for (std::int64_t l = 0; l < kL; ++l)
        zt[r * kL + l] = U(rng) < alpha(t[r]) ? x0b[r * kL + l] : kN;
    }
    const Real* out = net_outputs(f, zt, t, u, rows);
    std::vector<double> v(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) {
      double nce = 0;  // masked_neg_cross_ent: sum of log p(x0) at masked positions
      for (std::int64_t l = 0; l < kL; ++l) {
        const std::int64_t i = r * kL + l;
        if (zt[i] != kN) continue;
        double mx = -1e300, z = 0;
        for (int c = 0; c < kN; ++c) mx = std::max(mx, double(out[i * kN + c]));
        for (int c = 0; c < kN; ++c) z += std::exp(double(out[i * kN + c]) - mx);
        nce += double(out[i * kN + x0b[i]]) - mx - std::log(z);
      }
      double loss;
      if (T == 0) {
        loss = -(1 - 2 * eta) / (1 - alpha(t[r])) * nce;  // dgamma_times_alpha * nce
      } else {
        const double s = t[r] - 1.0 / T;
        loss = T * std::expm1(gamma(t[r]) - gamma(s)) * alpha(s) * nce;
      }
      v[r] = loss + recon;  // both factors of loss_diff are <= 0 (dgamma, expm1 and log p)
    }
    return v;
  });
}

}  // namespace

// ---------------------------------------------------------------- 1. the documented transforms

TEST_CASE("eval --convention pbrc: J1, J2 = the exact values on the same draws, transformed by the constants") {
  for (const char* gen : {"absorbing", "uniform", "roulette"}) {
    for (const char* obj : {"sedd", "cedd"}) {
      CAPTURE(gen);
      CAPTURE(obj);
      Fixture f = make_fixture(obj, gen);
      const auto ex = score_bounds(f, eval_options(app::EvalConvention::exact, 1e-4));
      const app::EvalOptions po = eval_options(app::EvalConvention::pbrc);
      const auto so = app::score_bound_options(*f.p, po, f.net->config().vocab_out);
      CHECK(so.eps == 1e-4);  // test_perplexity.py sampling_eps
      CHECK(so.convention == discdiff::BoundConvention::pbrc_code);
      const auto pb = score_bounds(f, po);
      const double eps = 1e-4;
      const Constants k = constants(f.cfg, ex.u_eps, ex.u_1, eps);
      const double xp = std::isnan(k.pbrc_exit) ? pbrc_uniform_exit(f, so) : k.pbrc_exit;
      check_close(pb.j1.mean, (ex.j1.mean - k.prior_kl) / (1 - eps),
                  std::fabs(ex.j1.mean) + k.prior_kl, "J1_pbrc = (J1 - L KL_prior)/(1 - eps)");
      const double want2 = (ex.j2_direct.mean - k.reference_ce + k.exit) / (1 - eps) + k.pbrc_ce - xp;
      check_close(pb.j2.mean, want2,
                  std::fabs(ex.j2_direct.mean) + k.reference_ce + k.exit + xp,
                  "J2_pbrc = (J2hat - CE_ref + X_exit)/(1 - eps) + CE_code - X_code");
      // The program's rows are these numbers, in the same order as the exact convention's.
      const auto rows = app::evaluate_bounds(*f.p, *f.net, {}, f.x0, kNum, kL, po);
      REQUIRE(rows.size() == 2);
      const bool cedd = std::string(obj) == "cedd";
      CHECK(rows[0].name == (cedd ? "j2" : "j1"));
      CHECK(rows[cedd ? 1 : 0].est.mean == pb.j1.mean);
      CHECK(rows[cedd ? 0 : 1].est.mean == pb.j2.mean);
      // Reported exact J2 is J1 + EH: the exact convention's rows are unchanged.
      const auto rex = app::evaluate_bounds(*f.p, *f.net, {}, f.x0, kNum, kL,
                                            eval_options(app::EvalConvention::exact, 1e-4));
      CHECK(rex[cedd ? 1 : 0].est.mean == ex.j1.mean);
      CHECK(rex[cedd ? 0 : 1].est.mean == ex.j2.mean);
    }
  }
}

TEST_CASE("eval --convention sedd: J1 without prior KL and (1 - eps), at losses.py's cut-off 1e-3") {
  for (const char* gen : {"absorbing", "uniform"}) {
    CAPTURE(gen);
    Fixture f = make_fixture("sedd", gen);
    const auto ex = score_bounds(f, eval_options(app::EvalConvention::exact, 1e-3));
    const app::EvalOptions se = eval_options(app::EvalConvention::sedd);
    CHECK(app::j_bound_eps(*f.p, se) == 1e-3);
    const auto rows = app::evaluate_bounds(*f.p, *f.net, {}, f.x0, kNum, kL, se);
    REQUIRE(rows.size() == 1);  // SEDD's code has no J2
    CHECK(rows[0].name == "j1");
    const Constants k = constants(f.cfg, ex.u_eps, ex.u_1, 1e-3);
    check_close(rows[0].est.mean, (ex.j1.mean - k.prior_kl) / (1 - 1e-3),
                std::fabs(ex.j1.mean) + k.prior_kl, "J1_sedd = (J1 - L KL_prior)/(1 - 1e-3)");
    // --eps overrides the cut-off.
    CHECK(app::j_bound_eps(*f.p, eval_options(app::EvalConvention::sedd, 2e-3)) == 2e-3);
  }
}

TEST_CASE("eval --convention md4: the ELBOs without the prior term L alpha(1) log N") {
  Fixture f = make_fixture("md4", "absorbing");
  app::EvalOptions ex = eval_options(app::EvalConvention::exact);
  ex.md4_steps = 8;
  app::EvalOptions md = ex;
  md.convention = app::EvalConvention::md4;
  const auto a = app::evaluate_bounds(*f.p, *f.net, {}, f.x0, kNum, kL, ex);
  const auto b = app::evaluate_bounds(*f.p, *f.net, {}, f.x0, kNum, kL, md);
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  const double prior = double(kL) * f.cfg.eta * std::log(double(kN));  // alpha(1) = eta (S-LIN-MD4)
  for (int i = 0; i < 2; ++i) {
    CHECK(a[i].name == b[i].name);
    check_close(b[i].est.mean, a[i].est.mean - prior, std::fabs(a[i].est.mean), "ELBO_md4 = ELBO - prior");
    CHECK(b[i].est.std_error == doctest::Approx(a[i].est.std_error).epsilon(1e-9));
  }
}

// ---------------------------------------------------------------- 2. independent upstream ports

TEST_CASE("eval conventions agree with independent ports of the upstream formulas (|z| < 4)") {
  SUBCASE("SEDD losses.py (absorbing, uniform) and PBRC test_perplexity.py J1/J2 (sedd, cedd heads)") {
    struct Case {
      const char* obj;
      const char* gen;
      app::EvalConvention conv;
    };
    for (const Case& c : {Case{"sedd", "absorbing", app::EvalConvention::sedd},
                          Case{"sedd", "uniform", app::EvalConvention::sedd},
                          Case{"sedd", "absorbing", app::EvalConvention::pbrc},
                          Case{"sedd", "uniform", app::EvalConvention::pbrc},
                          Case{"cedd", "absorbing", app::EvalConvention::pbrc},
                          Case{"cedd", "uniform", app::EvalConvention::pbrc}}) {
      CAPTURE(c.obj);
      CAPTURE(c.gen);
      CAPTURE(app::convention_name(c.conv));
      Fixture f = make_fixture(c.obj, c.gen);
      const auto rows = app::evaluate_bounds(*f.p, *f.net, {}, f.x0, kNum, kL,
                                             eval_options(c.conv, 0, kPasses));
      const double eps = c.conv == app::EvalConvention::sedd ? 1e-3 : 1e-4;
      for (const auto& r : rows) {
        const RefEstimate ref = reference_j(f, eps, r.name == "j2", kRefSamples, 99 + (r.name == "j2"));
        const double z = zscore(r.est.mean, r.est.std_error, ref.mean, ref.se);
        INFO(r.name << ": discdiff " << r.est.mean << " +- " << r.est.std_error << ", port "
                    << ref.mean << " +- " << ref.se << ", z = " << z);
        CHECK(std::fabs(z) < 4.0);
      }
    }
  }
  SUBCASE("MD4 md4.py ELBO, continuous and T = 8") {
    Fixture f = make_fixture("md4", "absorbing");
    app::EvalOptions md = eval_options(app::EvalConvention::md4, 0, kPasses);
    md.md4_steps = 8;
    const auto rows = app::evaluate_bounds(*f.p, *f.net, {}, f.x0, kNum, kL, md);
    REQUIRE(rows.size() == 2);
    for (int i = 0; i < 2; ++i) {
      const RefEstimate ref = reference_md4(f, i == 0 ? 0 : 8, kRefSamples, 7 + i);
      const double z = zscore(rows[i].est.mean, rows[i].est.std_error, ref.mean, ref.se);
      INFO(rows[i].name << ": discdiff " << rows[i].est.mean << " +- " << rows[i].est.std_error
                        << ", port " << ref.mean << " +- " << ref.se << ", z = " << z);
      CHECK(std::fabs(z) < 4.0);
    }
  }
}

// ---------------------------------------------------------------- 3. errors

TEST_CASE("eval --convention: a convention that does not apply is a clear error") {
  auto msg = [](const Fixture& f, app::EvalOptions eo) -> std::string {
    try {
      app::check_eval_convention(*f.p, eo);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  Fixture sedd = make_fixture("sedd", "absorbing");
  Fixture rou = make_fixture("cedd", "roulette");
  Fixture md4 = make_fixture("md4", "absorbing");
  Fixture ar = make_fixture("ar", "auto");
  Fixture gen = make_fixture("genmd4", "auto");
  using C = app::EvalConvention;
  CHECK(msg(sedd, eval_options(C::md4)).find("needs a masked-diffusion checkpoint") != std::string::npos);
  CHECK(msg(sedd, eval_options(C::md4)).find("sedd") != std::string::npos);
  CHECK(msg(rou, eval_options(C::sedd)).find("roulette") != std::string::npos);
  CHECK(msg(rou, eval_options(C::pbrc)).empty());
  CHECK(msg(ar, eval_options(C::pbrc)).find("--objective ar") != std::string::npos);
  CHECK(msg(gen, eval_options(C::md4)).find("--objective genmd4") != std::string::npos);
  CHECK(msg(ar, eval_options(C::exact)).empty());
  app::EvalOptions eo = eval_options(C::md4);
  eo.md4_j_bounds = true;
  CHECK(msg(md4, eo).find("--j-bounds") != std::string::npos);
  eo = eval_options(C::pbrc);
  eo.md4_steps = 4;
  CHECK(msg(md4, eo).find("--md4-steps") != std::string::npos);
  CHECK(msg(md4, eval_options(C::pbrc)).empty());  // J1/J2 from the posterior logits
  CHECK(msg(md4, eval_options(C::md4, 1e-3)).find("--eps") != std::string::npos);
  CHECK(msg(md4, eval_options(C::exact, 1e-3)).find("--j-bounds") != std::string::npos);
  CHECK(msg(sedd, eval_options(C::exact, 1.0)).find("(0, 1)") != std::string::npos);
  CHECK_THROWS_AS(app::parse_convention("paper"), std::invalid_argument);
  CHECK_THROWS_AS(app::evaluate_bounds(*sedd.p, *sedd.net, {}, sedd.x0, kNum, kL, eval_options(C::md4)),
                  std::invalid_argument);
}
