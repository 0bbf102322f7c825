// apps/verify.cpp: `discdiff verify`, the theorem verifier (spec/MATH.md sections 6 and 7) by
// exact enumeration over small vocabularies and lengths (include/discdiff/bound/exact*.hpp).
//
// Problem set (a pure function of --seed, --problems, --md4-problems, --max-states, --quick):
//   R1..R4  the deterministic setup of spec 7.1; the computed values are compared with the
//           printed table 7.2 (tolerance 1e-6), and every theorem check below is run on them;
//   U*, A*, O*  random problems on the uniform, absorbing and roulette generators: N in 2..5,
//           L up to what --max-states allows, a schedule per generator mapping [eps, 1] to
//           [u_min, u_max], Dirichlet-like data, the exact or a perturbed denoiser (label
//           smoothing, tempering, or the logits of the exact posterior + amplitude * fixed
//           Gaussian noise), and a reverse start q_T;
//   M*      masked-diffusion (MD4) problems: absorbing generator, MD4 schedules on [t0, 1],
//           start pi_alpha; the continuous and discrete-time ELBOs against the exact NLL of the
//           corresponding models, L_inf <= L_T and L_2T <= L_T (exact, smoothed and tempered
//           denoisers), plus every theorem check.
// Monte Carlo: for every problem the estimators of bound/monte_carlo.hpp (J1, J2, J2 - J1; the
// MD4 ELBO in continuous time and with T = 8 steps) are compared with the exact values
// (--mc-sequences sequences drawn from p_0) by z = (estimate - exact) / SE; a row passes when
// |z| <= c, with c the Bonferroni critical value over the run's Monte Carlo rows at
// family-wise error rate --mc-alpha, from Student's t with (batches - 1) degrees of freedom
// (bound/mc_threshold.hpp; docs/theory/verification.md).
// Each check prints both sides, the gap and the tolerance; an identity fails when |gap| > tol, a
// bound (lhs <= rhs) is violated when rhs - lhs < -tol. The exit code is 1 on any failure.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>

#include <discdiff/bound/bounds.hpp>
#include <discdiff/exec/openmp.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/schedule/schedules.hpp>

#include "command.hpp"
#include "dyn_schedule.hpp"
#include "report.hpp"

namespace {

using namespace discdiff;
using namespace discdiff::exact;
using discdiff::app::fmt;

// ------------------------------------------------------------------ tolerances
constexpr double kTolTable = 1e-6;      // reproduction of the printed 7.2 values (spec 7.2)
constexpr double kTolIdentity = 1e-6;   // Theorem A, Theorem C, exit identities (spec 7.3)
constexpr double kTolJ1J2 = 1e-8;       // J2 = J1 + EH; MD4 ELBO = J1 + L_recon (spec 7.2)
constexpr double kTolExact = 1e-8;      // exact denoiser: q_eps = p_eps, KL_eps = 0
constexpr double kTolBound = 1e-8;      // numerical slack allowed on a bound
// --tol-scale multiplies every tolerance (0 turns every identity with a rounding-level gap into a
// failure: a way to exercise the failure path and the exit code).
double g_tol_scale = 1.0;
// --mc-bias-se plants a bias of this many standard errors in every Monte Carlo estimate (a test
// that the z-tests catch an error of a few standard errors).
double g_mc_bias_se = 0.0;

struct VerifyOptions {
  std::uint64_t seed = 20240917;
  int problems = 20;
  int md4_problems = 25;
  std::int64_t mc_sequences = 4096;  // Monte Carlo checks: sequences per estimate (0: off)
  double mc_alpha = 1e-3;            // family-wise error rate of the Monte Carlo z-tests
  double mc_bias_se = 0.0;           // planted bias of every Monte Carlo estimate, in SE
  std::int64_t max_states = 1500;
  bool quick = false;
  std::string markdown;
  std::string method = "adaptive";
  int grid_intervals = 1200;
  double rtol = 1e-10;
  double quad_tol = 1e-12;
  int threads = 0;
  bool quiet = false;
  double tol_scale = 1.0;
};

// ------------------------------------------------------------------ run-time schedule
// The program's run-time schedule (apps/dyn_schedule.hpp): a library schedule and its label.
using AnySchedule = app::DynSchedule<double>;

// ------------------------------------------------------------------ problems and checks
enum class Group { reference, uniform, absorbing, roulette, md4 };

const char* group_prefix(Group g) {
  switch (g) {
    case Group::reference: return "R";
    case Group::uniform: return "U";
    case Group::absorbing: return "A";
    case Group::roulette: return "O";
    case Group::md4: return "M";
  }
  return "?";
}

enum class DenoiserKind { exact, sine, counter, smoothed, tempered };

struct Problem {
  std::string id;
  Group group = Group::uniform;
  int spec_column = -1;  // reference problems: the 7.2 column
  int n = 2, length = 1;
  double p_m = 1.0;
  std::int64_t states = 0;
  AnySchedule sched;
  double t0 = 0, t1 = 1, u_min = 0, u_max = 0;
  std::vector<double> p0;
  std::string data_desc;
  DenoiserKind denoiser = DenoiserKind::exact;
  double amplitude = 0.0;  // tilt amplitude, smoothing lambda or tempering beta
  std::uint64_t noise_seed = 0;
  std::uint32_t noise_stream = 0;
  ReverseStart start;
  std::vector<int> md4_steps;
  std::uint32_t index = 0;  // position in the problem set (RNG stream of its Monte Carlo data)
};

// identity: |lhs - rhs| <= tol; bound: lhs <= rhs + tol; statistical: a Monte Carlo estimate
// (lhs) against the exact value (rhs), |lhs - rhs| <= tol = c SE with c the family-wise critical
// value (set_mc_tolerances); info: not a check.
enum class Kind { identity, bound, statistical, info };

struct Check {
  std::string problem, family, name;
  Kind kind = Kind::identity;
  double lhs = 0, rhs = 0, tol = 0;
  double se = 0, df = 0;  // statistical: standard error and its degrees of freedom (batches - 1)
  double gap() const { return kind == Kind::bound ? rhs - lhs : lhs - rhs; }
  double z() const { return gap() / se; }
  bool pass() const {
    if (kind == Kind::info) return true;
    if (!std::isfinite(lhs) || !std::isfinite(rhs)) return false;
    return kind == Kind::bound ? gap() >= -tol : std::abs(gap()) <= tol;
  }
  std::string status() const {
    if (kind == Kind::info) return "info";
    const std::string s = pass() ? "ok" : kind == Kind::bound ? "VIOLATED" : "FAIL";
    return kind == Kind::statistical ? s + fmt(" (z %+.2f)", z()) : s;
  }
};

struct Outcome {
  std::vector<Check> checks;
  double seconds = 0;
  std::string error;
};

std::string generator_desc(const Problem& p) {
  switch (p.group) {
    case Group::uniform: return "uniform";
    case Group::absorbing:
    case Group::md4: return "absorbing";
    case Group::roulette: return fmt("roulette(p_m=%.3f)", p.p_m);
    case Group::reference:
      return p.spec_column == 0 ? "uniform" : p.spec_column == 1 ? "absorbing" : "roulette(p_m=0.9)";
  }
  return "?";
}

std::string denoiser_desc(const Problem& p) {
  switch (p.denoiser) {
    case DenoiserKind::exact: return "exact";
    case DenoiserKind::sine: return fmt("tilted sine (spec 7.1), a=%.2f", p.amplitude);
    case DenoiserKind::counter: return fmt("tilted Gaussian, a=%.3f", p.amplitude);
    case DenoiserKind::smoothed: return fmt("smoothed, lambda=%.3f", p.amplitude);
    case DenoiserKind::tempered: return fmt("tempered, beta=%.3f", p.amplitude);
  }
  return "?";
}

std::string start_desc(const Problem& p) {
  if (p.start.weight == 0.0) return "q_T = p_T";
  const char* ref = p.start.reference == StartReference::limit ? "pi" : "pi_alpha";
  if (p.start.weight == 1.0) return std::string("q_T = ") + ref;
  return fmt("%.3f %s + %.3f p_T", p.start.weight, ref, 1.0 - p.start.weight);
}

// ------------------------------------------------------------------ problem set
std::vector<AnySchedule> schedules_for(Group g, double p_m) {
  using D = AnySchedule;
  switch (g) {
    case Group::uniform:
      return {D::wrap(GeometricSchedule<double>(1e-4, 20.0), "S-GEO(1e-4,20)"),
              D::wrap(LogLinearSchedule<double>(), "S-LOGLIN"),
              D::wrap(MdlmLinearSigmaSchedule<double>(1e-3, 7.0), "S-LINSIG-MDLM(1e-3,7)")};
    case Group::absorbing:
      return {D::wrap(LogLinearSchedule<double>(), "S-LOGLIN"),
              D::wrap(GeometricSchedule<double>(1e-4, 20.0), "S-GEO(1e-4,20)"),
              D::wrap(MdlmCosineSchedule<double>(), "S-COS-MDLM"),
              D::wrap(LinearSchedule<double>(), "S-LIN-MD4")};
    case Group::roulette:
      return {D::wrap(RouletteLogLinearSchedule<double>(p_m), "S-LOGLIN-ROU"),
              D::wrap(LogLinearSchedule<double>(), "S-LOGLIN"),
              D::wrap(GeometricSchedule<double>(1e-4, 20.0), "S-GEO(1e-4,20)")};
    case Group::md4:
      return {D::wrap(LinearSchedule<double>(), "S-LIN-MD4"),
              D::wrap(CosineSchedule<double>(), "S-COS-MD4"),
              D::wrap(PolynomialSchedule<double>(2.0), "S-POLY-MD4(2)"),
              D::wrap(PolynomialSchedule<double>(0.5), "S-POLY-MD4(0.5)"),
              D::wrap(LogLinearSchedule<double>(), "S-LOGLIN")};
    case Group::reference: break;
  }
  return {};
}

std::int64_t ipow(int b, int e) {
  std::int64_t r = 1;
  for (int i = 0; i < e; ++i) r *= b;
  return r;
}

Problem reference_problem(int column) {
  Problem p;
  p.group = Group::reference;
  p.spec_column = column;
  p.id = fmt("R%d", column + 1);
  p.n = kSpecN;
  p.length = kSpecL;
  p.p_m = column >= 2 ? kSpecRoulettePm : 1.0;
  p.states = ipow(column == 0 ? kSpecN : kSpecN + 1, kSpecL);
  p.sched = AnySchedule().with_label("spec 7.1 (u range)");
  p.t0 = p.t1 = std::nan("");
  p.u_min = kSpecUMin;
  p.u_max = kSpecUMax;
  p.p0 = spec_reference_data(kSpecN, kSpecL);
  p.data_desc = "spec 7.1";
  p.denoiser = column == 3 ? DenoiserKind::exact : DenoiserKind::sine;
  p.amplitude = column == 3 ? 0.0 : 0.6;
  p.start = ReverseStart{StartReference::limit, 0.7};
  return p;
}

Problem random_problem(Group g, int k, const VerifyOptions& o) {
  CounterRng rng(o.seed, 0x5600u + static_cast<std::uint32_t>(g), static_cast<std::uint64_t>(k));
  Problem p;
  p.group = g;
  p.id = fmt("%s%d", group_prefix(g), k + 1);
  // Draws, always all of them and in this order.
  p.n = 2 + static_cast<int>(rng.uniform_int(4));
  const int d = p.n + (g == Group::uniform ? 0 : 1);
  int lmax = 1;
  while (lmax < 6 && ipow(d, lmax + 1) <= o.max_states) ++lmax;
  p.length = 1 + static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(lmax)));
  const double u_pm = rng.uniform<double>();
  const std::uint32_t sched_pick = rng.uniform_int(8);
  const double u_eps = rng.uniform<double>();
  const double u_sharp = rng.uniform<double>();
  const double u_amp = rng.uniform<double>();
  const double u_weight = rng.uniform<double>();
  const std::uint32_t start_pick = rng.uniform_int(2);

  p.states = ipow(d, p.length);
  p.p_m = g == Group::roulette ? 0.3 + 0.68 * u_pm : 1.0;
  const auto scheds = schedules_for(g, p.p_m);
  p.sched = scheds[sched_pick % scheds.size()];
  const double eps = std::pow(10.0, -4.0 + 2.0 * u_eps);
  // MD4 schedules shift alpha into [eta, 1 - eta], so t0 = 0 is allowed; S-LOGLIN needs t0 > 0.
  p.t0 = (g == Group::md4 && p.sched.label() != "S-LOGLIN") ? 0.0 : eps;
  p.t1 = 1.0;
  p.u_min = p.sched.sigma_bar(p.t0);
  p.u_max = p.sched.sigma_bar(p.t1);
  const double sharp = 0.5 + 2.5 * u_sharp;
  p.p0 = dirichlet_like(ipow(p.n, p.length), o.seed,
                        0x10000u * (static_cast<std::uint32_t>(g) + 1) + static_cast<std::uint32_t>(k),
                        sharp, 0.01);
  p.data_desc = fmt("dirichlet-like s=%.2f", sharp);
  if (k == 0 && g != Group::md4) {
    p.denoiser = DenoiserKind::exact;  // q_t = p_t check
    p.start = ReverseStart{StartReference::limit, 0.0};
  } else {
    // Denoisers: k = 1 exact; otherwise label-smoothed, tempered or Gaussian-tilted posteriors.
    // MD4 problems use mostly smoothed/tempered ones (the discrete-time ELBO then decreases in T,
    // exact_denoiser.hpp), with a tilt every fifth problem; U, A, O cycle through all three.
    const int cyc = g == Group::md4 ? (k % 5 == 4 ? 2 : k % 2) : k % 3;
    if (k == 1) {
      p.denoiser = DenoiserKind::exact;
      p.amplitude = 0.0;
    } else if (cyc == 0) {
      p.denoiser = DenoiserKind::smoothed;
      p.amplitude = 0.05 + 0.6 * u_amp;
    } else if (cyc == 1) {
      p.denoiser = DenoiserKind::tempered;
      p.amplitude = 0.4 + 0.55 * u_amp;
    } else {
      p.denoiser = DenoiserKind::counter;
      p.amplitude = 0.05 + 0.95 * u_amp;
    }
    p.noise_seed = o.seed;
    p.noise_stream = 0x20000u * (static_cast<std::uint32_t>(g) + 1) + static_cast<std::uint32_t>(k);
    if (g == Group::md4) {
      p.start = ReverseStart{StartReference::masked_prior, 1.0};
    } else if (g == Group::uniform) {
      p.start = ReverseStart{StartReference::limit, 0.3 + 0.7 * u_weight};
    } else if (start_pick == 0) {
      // all-MASK pi lacks support: mix in p_T (weight < 1)
      p.start = ReverseStart{StartReference::limit, 0.3 + 0.65 * u_weight};
    } else {
      p.start = ReverseStart{StartReference::masked_prior, 0.5 + 0.5 * u_weight};
    }
  }
  if (g == Group::md4) {
    if (o.quick)
      p.md4_steps = {1, 2, 4, 8};
    else
      p.md4_steps = {1, 2, 4, 8, 16, 32, 64};
  }
  return p;
}

std::vector<Problem> problem_set(const VerifyOptions& o) {
  std::vector<Problem> ps;
  for (int c = 0; c < 4; ++c) ps.push_back(reference_problem(c));
  for (Group g : {Group::uniform, Group::absorbing, Group::roulette})
    for (int k = 0; k < o.problems; ++k) ps.push_back(random_problem(g, k, o));
  for (int k = 0; k < o.md4_problems; ++k) ps.push_back(random_problem(Group::md4, k, o));
  for (std::size_t i = 0; i < ps.size(); ++i) ps[i].index = static_cast<std::uint32_t>(i);
  return ps;
}

// ------------------------------------------------------------------ evaluation
template <class F>
auto with_denoiser(const Problem& p, F&& f) {
  switch (p.denoiser) {
    case DenoiserKind::sine: return f(TiltedDenoiser<SineNoise>{SineNoise{}, p.amplitude});
    case DenoiserKind::counter:
      return f(TiltedDenoiser<CounterNoise>{CounterNoise{p.noise_seed, p.noise_stream}, p.amplitude});
    case DenoiserKind::smoothed: return f(SmoothedDenoiser{p.amplitude});
    case DenoiserKind::tempered: return f(TemperedDenoiser{p.amplitude});
    case DenoiserKind::exact: break;
  }
  return f(ExactDenoiser{});
}

void add(std::vector<Check>& out, const Problem& p, Kind kind, std::string family, std::string name,
         double lhs, double rhs, double tol) {
  Check c;
  c.problem = p.id;
  c.family = std::move(family);
  c.name = std::move(name);
  c.kind = kind;
  c.lhs = lhs;
  c.rhs = rhs;
  c.tol = tol * g_tol_scale;
  out.push_back(std::move(c));
}

// A Monte Carlo estimate against its exact value; its tolerance is set once every row of the run
// is known (set_mc_tolerances).
void add_mc(std::vector<Check>& out, const Problem& p, std::string family, std::string name,
            const McEstimate& e, double exact) {
  Check c;
  c.problem = p.id;
  c.family = std::move(family);
  c.name = std::move(name);
  c.kind = Kind::statistical;
  c.lhs = e.mean + g_mc_bias_se * e.std_error;
  c.rhs = exact;
  c.se = e.std_error;
  c.df = static_cast<double>(e.batches - 1);
  c.tol = std::nan("");
  out.push_back(std::move(c));
}

void theorem_checks(const Problem& p, const ExactBounds& r, double exit_closed_form,
                    std::vector<Check>& out) {
  add(out, p, Kind::identity, "Thm A", "Thm A: KL(p_eps||q_eps) = KL_T + I_SE - I_corr", r.kl_eps,
      r.thmA_rhs, kTolIdentity);
  add(out, p, Kind::bound, "Thm B", "Thm B: KL(p_eps||q_eps) <= KL_T + I_SE", r.kl_eps,
      r.thmB_bound, kTolBound);
  add(out, p, Kind::identity, "Thm C", "Thm C: H(p_eps) = H(p_T) - I_ent", r.h_eps, r.thmC_rhs,
      kTolIdentity);
  add(out, p, Kind::identity, "exit identity", "exit: int E_p sum Q s^p = I_exit", r.i_sp, r.i_exit,
      kTolIdentity);
  add(out, p, Kind::identity, "I_exit closed form", "exit: I_exit = closed form (7.2)", r.i_exit,
      exit_closed_form, kTolIdentity);
  add(out, p, Kind::bound, "J2 bound", "J2: CE(p_eps,q_eps) <= J2", r.ce_eps, r.j2, kTolBound);
  add(out, p, Kind::bound, "J1 bound (6.5)", "6.5: CE_eps - EH <= J1", r.ce_eps - r.eh_eps, r.j1,
      kTolBound);
  add(out, p, Kind::identity, "J2 = J1 + EH", "6.6: J2 = J1 + EH", r.j2, r.j1 + r.eh_eps, kTolJ1J2);
  if (p.denoiser == DenoiserKind::exact)  // spec 7.3 check 5: s_theta = s^p, so I_SE = 0
    add(out, p, Kind::identity, "exact denoiser I_SE = 0", "exact: I_SE = 0 (s_theta = s^p)", r.i_se,
        0.0, kTolExact);
  if (p.denoiser == DenoiserKind::exact && p.start.weight == 0.0) {
    double m = 0.0;
    for (std::size_t x = 0; x < r.p_eps.size(); ++x) m = max_or_nan(m, std::abs(r.p_eps[x] - r.q_eps[x]));
    add(out, p, Kind::identity, "exact denoiser q = p", "exact: max_x |q_eps - p_eps| = 0", m, 0.0,
        kTolExact);
    add(out, p, Kind::identity, "exact denoiser KL = 0", "exact: KL(p_eps||q_eps) = 0", r.kl_eps, 0.0,
        kTolExact);
  }
  add(out, p, Kind::info, "J2 - J1 (info)", "info: J2 - J1 = EH >= 0 (J2 looser)", r.j2, r.j1, 0.0);
  add(out, p, Kind::info, "J1 - CE_eps (info)", "info: J1 vs CE(p_eps,q_eps)", r.j1, r.ce_eps, 0.0);
}

template <class Gen>
double closed_exit(const Gen& g, int L, double a, double b) {
  return analytic_exit_integral(g, L, a, b);
}

ExactOptions exact_options(const VerifyOptions& o) {
  ExactOptions e;
  e.method = o.method == "grid" ? ExactMethod::log_grid : ExactMethod::adaptive;
  e.grid_intervals = o.grid_intervals;
  e.ode.rtol = o.rtol;
  e.quad_tol = o.quad_tol;
  return e;
}

// Monte Carlo J1, J2 and J2 - J1 (bound/monte_carlo.hpp) against the exact values, with the
// reverse chain started at the generator's finite reference (pi for uniform, pi_alpha for
// absorbing and roulette): J1 and J2 depend on q_T only through CE(p_T, q_T), so
// J_ref = J - CE(p_T, q_T) + L CE_ref per token. J1 and J2 depend on the schedule only through
// the u range, so the time draws may use any schedule with the same end points: S-GEO(u_min,
// u_max) on [0, 1], i.e. u log-uniform, which is importance sampling for the 1/u-type ratios
// near u_min; the estimators' own time proposal (bound/time_sampling.hpp, mask_power) comes on
// top. MC J2 is J1hat + EH (J1's draws and standard error); MC J2 direct is the direct J2hat.
template <class Gen, class Den>
void mc_score_checks(const Problem& p, const Gen& gen, const ExactForward<Gen>& fwd, const Den& den,
                     const ExactBounds& r, const VerifyOptions& o, std::vector<Check>& out) {
  if (o.mc_sequences <= 0) return;
  const GeometricSchedule<double> sched(p.u_min, p.u_max);
  const double eps = 0.0;
  const PriorReference ref = default_prior_reference(gen);
  const double ce_ref = p.length * reference_cross_entropy_per_token(gen, p.u_max, ref);
  const double j1 = r.j1 - r.ce_T + ce_ref, j2 = r.j2 - r.ce_T + ce_ref;
  const std::vector<int> x0 = sample_data(fwd, o.mc_sequences, o.seed, 0x6d630000u + p.index);
  ScoreBoundOptions so;
  so.eps = eps;
  so.batch_size = 64;
  so.seed = o.seed + 7919u * (p.index + 1);
  const ScoreBoundEstimate mc =
      estimate_score_bounds(gen, sched, ExactModel<Gen, Den>(fwd, den), x0, p.length, so);
  add_mc(out, p, "MC J1", "MC: J1 (q_T = ref) = exact", mc.j1, j1);
  add_mc(out, p, "MC J2", "MC: J2 = J1hat + EH (q_T = ref) = exact", mc.j2, j2);
  add_mc(out, p, "MC J2 direct", "MC: J2hat direct (q_T = ref) = exact", mc.j2_direct, j2);
  add_mc(out, p, "MC J2 - J1", "MC: J2 - J1 = EH", mc.gap, r.eh_eps);
  add(out, p, Kind::info, "MC SE(J1)/SE(J2 direct) (info)", "info: SE of MC J1 vs SE of direct J2",
      mc.j1.std_error, mc.j2_direct.std_error, 0.0);
}

template <class Gen>
void run_theorems(const Problem& p, const Gen& gen, const VerifyOptions& o, std::vector<Check>& out) {
  const ExactForward<Gen> fwd(gen, p.length, p.p0);
  with_denoiser(p, [&](const auto& den) {
    const ExactBounds r = compute_exact_bounds(fwd, den, p.u_min, p.u_max, p.start, exact_options(o));
    if (p.group == Group::reference) {
      const SpecReferenceColumn ref =
          spec_reference_values()[static_cast<std::size_t>(p.spec_column)];
      const std::pair<const char*, std::pair<double, double>> rows[] = {
          {"KL_eps", {r.kl_eps, ref.kl_eps}},       {"ThmA_RHS", {r.thmA_rhs, ref.thmA_rhs}},
          {"ThmB_bound", {r.thmB_bound, ref.thmB_bound}}, {"CE_eps", {r.ce_eps, ref.ce_eps}},
          {"J2", {r.j2, ref.j2}},                   {"J1", {r.j1, ref.j1}},
          {"EH", {r.eh_eps, ref.eh}},               {"J1+EH", {r.j1 + r.eh_eps, ref.j1_plus_eh}},
          {"NLL_eps", {r.nll_eps, ref.nll_eps}},    {"I_exit", {r.i_exit, ref.i_exit}}};
      for (const auto& row : rows)
        add(out, p, Kind::identity, "7.2 table", std::string("7.2: ") + row.first + " = printed value",
            row.second.first, row.second.second, kTolTable);
    }
    theorem_checks(p, r, closed_exit(gen, p.length, p.u_min, p.u_max), out);
    mc_score_checks(p, gen, fwd, den, r, o, out);
    return 0;
  });
}

// The discrete-time ELBO is >= the continuous one and decreases along T = 1, 2, 4, ... when the
// expected masked cross-entropy per masked position is non-decreasing in t: true for the exact,
// smoothed and tempered denoisers (exact_denoiser.hpp); for a tilt the orderings are reported
// as information only.
bool md4_monotone(const Problem& p) {
  return p.denoiser == DenoiserKind::exact || p.denoiser == DenoiserKind::smoothed ||
         p.denoiser == DenoiserKind::tempered;
}

constexpr int kMcMd4Steps = 8;  // the discrete T of the Monte Carlo MD4 check

void run_md4(const Problem& p, const VerifyOptions& o, std::vector<Check>& out) {
  const AbsorbingGenerator<double> gen(p.n);
  const ExactForward<AbsorbingGenerator<double>> fwd(gen, p.length, p.p0);
  with_denoiser(p, [&](const auto& den) {
    using Den = std::decay_t<decltype(den)>;
    const ExactBounds r = compute_exact_bounds(fwd, den, p.u_min, p.u_max, p.start, exact_options(o));
    theorem_checks(p, r, closed_exit(gen, p.length, p.u_min, p.u_max), out);
    const Md4Elbo c = md4_continuous_elbo(fwd, p.sched, p.t0, p.t1, den, o.quad_tol);
    const double nll = md4_decoder_nll(fwd, r.q_eps);
    add(out, p, Kind::bound, "MD4 NLL <= L_inf", "MD4: NLL_inf <= L_inf", nll, c.total, kTolBound);
    add(out, p, Kind::identity, "MD4 L_inf = J1 + L_recon", "MD4: L_inf = J1 + L_recon (5.3)",
        c.total, r.j1 + c.recon, kTolJ1J2);
    const bool mono = md4_monotone(p);
    double prev = 0.0, min_over = 1e300, max_rise = -1e300, l_mc_steps = std::nan("");
    for (std::size_t k = 0; k < p.md4_steps.size(); ++k) {
      const int T = p.md4_steps[k];
      const Md4Elbo d = md4_discrete_elbo(fwd, p.sched, p.t0, p.t1, den, T);
      if (T == kMcMd4Steps) l_mc_steps = d.total;
      const double nll_t = md4_discrete_nll(fwd, p.sched, p.t0, p.t1, den, T);
      add(out, p, Kind::bound, "MD4 NLL_T <= L_T", fmt("MD4: NLL_T <= L_T (T=%d)", T), nll_t, d.total,
          kTolBound);
      if (mono) {
        add(out, p, Kind::bound, "MD4 L_inf <= L_T", fmt("MD4: L_inf <= L_%d", T), c.total, d.total,
            kTolBound);
        if (k > 0)
          add(out, p, Kind::bound, "MD4 L_2T <= L_T", fmt("MD4: L_%d <= L_%d", T, p.md4_steps[k - 1]),
              d.total, prev, kTolBound);
      }
      min_over = -max_or_nan(-min_over, -(d.total - c.total));
      if (k > 0) max_rise = max_or_nan(max_rise, d.total - prev);
      prev = d.total;
    }
    if (!mono) {
      add(out, p, Kind::info, "MD4 tilt: min_T (L_T - L_inf) (info)",
          "info (tilt): min_T (L_T - L_inf) vs 0", min_over, 0.0, 0.0);
      add(out, p, Kind::info, "MD4 tilt: max_T (L_2T - L_T) (info)",
          "info (tilt): max_T (L_2T - L_T) vs 0", max_rise, 0.0, 0.0);
    }
    if (o.mc_sequences > 0) {
      const std::vector<int> x0 = sample_data(fwd, o.mc_sequences, o.seed, 0x6d630000u + p.index);
      Md4ElboOptions mo;
      mo.t0 = p.t0;
      mo.t1 = p.t1;
      mo.batch_size = 64;
      mo.seed = o.seed + 7919u * (p.index + 1);
      using Model = ExactModel<AbsorbingGenerator<double>, Den>;
      const Md4ElboEstimate mc = estimate_md4_elbo(gen, p.sched, Model(fwd, den), x0, p.length, mo);
      add_mc(out, p, "MC MD4 L_inf", "MC: MD4 L_inf = exact", mc.elbo, c.total);
      if (!std::isnan(l_mc_steps)) {
        mo.steps = kMcMd4Steps;
        const Md4ElboEstimate md = estimate_md4_elbo(gen, p.sched, Model(fwd, den), x0, p.length, mo);
        add_mc(out, p, "MC MD4 L_T", fmt("MC: MD4 L_%d = exact", kMcMd4Steps), md.elbo,
               l_mc_steps);
      }
    }
    return 0;
  });
}

Outcome run_problem(const Problem& p, const VerifyOptions& o) {
  Outcome res;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    switch (p.group) {
      case Group::reference:
        if (p.spec_column == 0)
          run_theorems(p, UniformGenerator<double>(p.n), o, res.checks);
        else if (p.spec_column == 1)
          run_theorems(p, AbsorbingGenerator<double>(p.n), o, res.checks);
        else
          run_theorems(p, RouletteGenerator<double>(p.n, p.p_m), o, res.checks);
        break;
      case Group::uniform: run_theorems(p, UniformGenerator<double>(p.n), o, res.checks); break;
      case Group::absorbing: run_theorems(p, AbsorbingGenerator<double>(p.n), o, res.checks); break;
      case Group::roulette:
        run_theorems(p, RouletteGenerator<double>(p.n, p.p_m), o, res.checks);
        break;
      case Group::md4: run_md4(p, o, res.checks); break;
    }
  } catch (const std::exception& e) {
    res.error = e.what();
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

// ------------------------------------------------------------------ reporting
std::string num(double v) {
  if (!std::isfinite(v)) return v > 0 ? "inf" : (v < 0 ? "-inf" : "nan");
  return fmt("%.9f", v);
}

// With `seconds` (terminal output only; the markdown report stays reproducible) a run-time column.
app::Table problems_table(const std::vector<Problem>& ps,
                          const std::vector<double>* seconds = nullptr) {
  std::vector<std::string> head{"id", "generator", "N", "L", "states", "schedule", "t range",
                                "u range", "data", "denoiser", "reverse start"};
  std::vector<bool> right{false, false, true, true, true, false, false, false, false, false, false};
  if (seconds) {
    head.push_back("seconds");
    right.push_back(true);
  }
  app::Table t(head, right);
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const Problem& p = ps[i];
    const std::string trange = std::isnan(p.t0) ? "-" : fmt("[%.3g, %.3g]", p.t0, p.t1);
    std::vector<std::string> row{p.id, generator_desc(p), std::to_string(p.n),
                                 std::to_string(p.length), std::to_string(p.states), p.sched.label(),
                                 trange, fmt("[%.4g, %.4g]", p.u_min, p.u_max), p.data_desc,
                                 denoiser_desc(p), start_desc(p)};
    if (seconds) row.push_back(fmt("%.2f", (*seconds)[i]));
    t.add(row);
  }
  return t;
}

app::Table checks_table(const std::vector<Check>& cs) {
  app::Table t({"problem", "check", "lhs", "rhs", "gap", "tol", "status"},
               {false, false, true, true, true, true, false});
  for (const auto& c : cs)
    t.add({c.problem, c.name, num(c.lhs), num(c.rhs), fmt("%.3e", c.gap()),
           c.kind == Kind::info          ? "-"
           : c.kind == Kind::statistical ? fmt("%.2e", c.tol)
                                         : fmt("%.0e", c.tol),
           c.status()});
  return t;
}

app::Table summary_table(const std::vector<Check>& cs) {
  // NaN-aware: a NaN gap (or an error row) makes max |gap| and the range NaN, never a clean
  // figure (std::max(worst, NaN) would return worst and hide it).
  struct Agg {
    Kind kind;
    int n = 0, failed = 0, nan = 0;
    double worst = 0, lo = 1e300, hi = -1e300;
  };
  std::vector<std::string> order;
  std::map<std::string, Agg> agg;
  for (const auto& c : cs) {
    if (!agg.count(c.family)) {
      order.push_back(c.family);
      agg[c.family].kind = c.kind;
    }
    Agg& a = agg[c.family];
    ++a.n;
    if (!c.pass()) ++a.failed;
    const double g = c.gap();
    if (std::isnan(g)) ++a.nan;
    a.worst = max_or_nan(a.worst, std::abs(g));
    a.lo = -max_or_nan(-a.lo, -g);
    a.hi = max_or_nan(a.hi, g);
  }
  app::Table t({"check", "kind", "count", "failed", "max |gap|", "gap range"},
               {false, false, true, true, true, false});
  for (const auto& f : order) {
    const Agg& a = agg[f];
    const char* kind = a.kind == Kind::identity      ? "identity"
                       : a.kind == Kind::bound       ? "bound (slack)"
                       : a.kind == Kind::statistical ? "Monte Carlo (z-test)"
                                                     : "info";
    const std::string nan_note = a.nan ? fmt(" (%d NaN)", a.nan) : std::string();
    t.add({f, kind, std::to_string(a.n), a.kind == Kind::info ? "-" : std::to_string(a.failed),
           fmt("%.2e", a.worst) + nan_note, fmt("[%.3e, %.3e]", a.lo, a.hi)});
  }
  return t;
}

// The Monte Carlo rows as one family of z-tests (bound/mc_threshold.hpp): each row's tolerance is
// c SE, c = t_{df}^{-1}(1 - alpha / (2 m)) over the m rows of the run (Bonferroni, family-wise
// error rate alpha), df = batches - 1 of the row's cluster standard error.
struct McFamily {
  std::int64_t rows = 0;
  int failed = 0;
  double alpha = 0, df_lo = 0, df_hi = 0, c_lo = 0, c_hi = 0;
  double worst_z = 0;  // the z of largest |z| (NaN when a z is NaN)
  std::string worst;   // its row
};

McFamily set_mc_tolerances(std::vector<Check>& cs, double alpha) {
  McFamily f;
  f.alpha = alpha;
  for (const auto& c : cs) f.rows += c.kind == Kind::statistical ? 1 : 0;
  bool first = true;
  for (auto& c : cs) {
    if (c.kind != Kind::statistical) continue;
    const double crit =
        c.df >= 1.0 ? family_wise_critical_value(alpha, f.rows, c.df) : std::nan("");
    c.tol = crit * c.se * g_tol_scale;
    if (first || c.df < f.df_lo) f.df_lo = c.df;
    if (first || c.df > f.df_hi) f.df_hi = c.df;
    if (first || crit < f.c_lo) f.c_lo = crit;
    if (first || crit > f.c_hi) f.c_hi = crit;
    first = false;
    const double z = c.z();
    if (!std::isnan(f.worst_z) && (std::isnan(z) || std::abs(z) > std::abs(f.worst_z))) {
      f.worst_z = z;
      f.worst = c.problem + " " + c.name;
    }
    if (!c.pass()) ++f.failed;
  }
  return f;
}

std::string mc_family_desc(const McFamily& f) {
  if (f.rows == 0) return "Monte Carlo z-tests: none (--mc-sequences 0).";
  std::string s = fmt("Monte Carlo z-tests: %lld rows, z = (estimate - exact) / SE; family-wise error "
                      "rate %g (Bonferroni: two-sided level %.3g per row), Student t with ",
                      static_cast<long long>(f.rows), f.alpha, f.alpha / static_cast<double>(f.rows));
  s += f.df_lo == f.df_hi ? fmt("%g df (batches - 1) -> a row passes when |z| <= %.3f", f.df_lo, f.c_lo)
                          : fmt("%g-%g df (batches - 1) -> a row passes when |z| <= %.3f-%.3f",
                                f.df_lo, f.df_hi, f.c_lo, f.c_hi);
  if (g_tol_scale != 1.0) s += fmt(" (x --tol-scale %g)", g_tol_scale);
  if (g_mc_bias_se != 0.0) s += fmt("; planted bias %g SE (--mc-bias-se)", g_mc_bias_se);
  s += fmt("; largest |z|: z = %+.2f (%s); %d failed.", f.worst_z, f.worst.c_str(), f.failed);
  return s;
}

std::string canonical_command(const VerifyOptions& o) {
  std::string s = "discdiff verify";
  if (o.quick) s += " --quick";
  s += " --seed " + std::to_string(o.seed);
  s += " --problems " + std::to_string(o.problems);
  s += " --md4-problems " + std::to_string(o.md4_problems);
  s += " --max-states " + std::to_string(o.max_states);
  s += " --mc-sequences " + std::to_string(o.mc_sequences);
  if (o.mc_sequences > 0) s += fmt(" --mc-alpha %g", o.mc_alpha);
  if (o.mc_bias_se != 0.0) s += fmt(" --mc-bias-se %g", o.mc_bias_se);
  s += " --method " + o.method;
  if (o.method == "grid") s += " --grid-intervals " + std::to_string(o.grid_intervals);
  else s += fmt(" --rtol %g --quad-tol %g", o.rtol, o.quad_tol);
  if (o.tol_scale != 1.0) s += fmt(" --tol-scale %g", o.tol_scale);
  return s;
}

void write_markdown(const std::string& path, const VerifyOptions& o, const std::vector<Problem>& ps,
                    const std::vector<Check>& cs, int failures, const McFamily& mc) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot open --markdown file '" + path + "' for writing");
  f << "# Theorem verification by exact enumeration\n\n"
    << "Generated by `" << canonical_command(o) << "`; do not edit by hand.\n"
    << "The mathematics is in `../math/bounds.md` and in spec/MATH.md sections 6 to 8.\n\n"
    << "Every problem is solved exactly by enumerating the D^L states: the forward marginals p_u,\n"
    << "the exact posteriors, the reverse Kolmogorov equation for q_u (adaptive Dormand-Prince 5(4)\n"
    << "in log u, unless the grid method is selected) and every integral over u (Boost.Math\n"
    << "Gauss-Kronrod in log u). Columns of the check table: `lhs` and `rhs` are the two sides,\n"
    << "`gap` is lhs - rhs for an identity and the slack rhs - lhs for a bound `lhs <= rhs`, and\n"
    << "`tol` is the tolerance (|gap| <= tol for an identity, gap >= -tol for a bound). `MC` rows\n"
    << "compare a Monte Carlo estimate (lhs; bound/monte_carlo.hpp, antithetic time lattice, batches\n"
    << "of 64, " << o.mc_sequences << " sequences x_0 ~ p_0) with the exact value (rhs) by\n"
    << "z = (lhs - rhs) / SE, printed in the status; their tol is c SE, with c the Bonferroni\n"
    << "critical value that keeps the probability of any Monte Carlo row of the run failing by\n"
    << "chance below the family-wise error rate `--mc-alpha`, from Student's t with (batches - 1)\n"
    << "degrees of freedom (the SE is estimated from the batch sums; `../math/bounds.md`, \"The\n"
    << "Monte Carlo z-tests\"; calibration over seeds in `verification_seeds.md`).\n"
    << "`info` rows are observations, not checks. All values are in nats per sequence.\n"
    << "Other seeds and larger problem sets: `verification_seeds.md`.\n\n"
    << "Tolerances: printed 7.2 values " << fmt("%.0e", kTolTable) << "; Theorem A, Theorem C and the exit identities "
    << fmt("%.0e", kTolIdentity) << "; J2 = J1 + EH and the MD4 ELBO = J1 + L_recon " << fmt("%.0e", kTolJ1J2)
    << "; exact-denoiser checks " << fmt("%.0e", kTolExact) << "; numerical slack on bounds "
    << fmt("%.0e", kTolBound) << ".\n\n"
    << "Problems R1-R4 are the deterministic setup of spec 7.1 (columns of table 7.2); U, A and O are\n"
    << "random problems on the uniform, absorbing and roulette generators; M are masked-diffusion\n"
    << "(MD4) problems. The first random problem of U, A and O uses the exact denoiser with\n"
    << "q_T = p_T (then q_t = p_t and KL = 0), the second the exact denoiser with a mixed start;\n"
    << "the others perturb the exact posterior: label smoothing (1 - lambda) p + lambda/N, tempering\n"
    << "p^beta, or a Gaussian tilt of its logits. The MD4 orderings L_inf <= L_T and L_2T <= L_T are\n"
    << "checked for the exact, smoothed and tempered denoisers (their expected masked cross-entropy\n"
    << "per masked position is non-decreasing in t, see bounds.md); for a tilt they are reported as\n"
    << "information. The Monte Carlo J1/J2 rows start the reverse chain at the finite reference (pi\n"
    << "for uniform, pi_alpha for absorbing and roulette) instead of the problem's q_T.\n\n";
  const int n_checks = static_cast<int>(std::count_if(cs.begin(), cs.end(), [](const Check& c) { return c.kind != Kind::info; }));
  f << "## Summary\n\n" << ps.size() << " problems, " << n_checks << " checks, " << failures
    << " failed.\n\n" << mc_family_desc(mc) << "\n\n";
  summary_table(cs).markdown(f);
  f << "\n## Problems\n\n";
  problems_table(ps).markdown(f);
  f << "\n## Checks\n\n";
  checks_table(cs).markdown(f);
}

int run_verify(VerifyOptions o, bool problems_given, bool md4_given, bool states_given) {
  if (o.quick) {
    if (!problems_given) o.problems = 3;
    if (!md4_given) o.md4_problems = 2;
    if (!states_given) o.max_states = 200;
  }
  if (o.method == "grid" && (o.grid_intervals < 2 || o.grid_intervals % 2))
    throw std::invalid_argument("--grid-intervals = " + std::to_string(o.grid_intervals) +
                                " (must be even and >= 2)");
  g_tol_scale = o.tol_scale;
  g_mc_bias_se = o.mc_bias_se;
  const auto t_start = std::chrono::steady_clock::now();
  const std::vector<Problem> ps = problem_set(o);
  std::vector<Outcome> res(ps.size());
  // Problems differ in cost by orders of magnitude: one at a time to whichever thread is free.
  // run_problem catches everything (an error becomes the problem's outcome).
  OpenMPExecutor ex{o.threads > 0 ? o.threads : 0};
  ex.dynamic = true;
  ex.for_each(static_cast<std::int64_t>(ps.size()), [&](std::int64_t i) {
    res[static_cast<std::size_t>(i)] = run_problem(ps[static_cast<std::size_t>(i)], o);
  });

  std::vector<Check> cs;
  int failures = 0;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    if (!res[i].error.empty()) {
      Check c;
      c.problem = ps[i].id;
      c.family = "errors";
      c.name = "error: " + res[i].error;
      c.lhs = c.rhs = std::nan("");
      cs.push_back(c);
    }
    for (const auto& c : res[i].checks) cs.push_back(c);
  }
  const McFamily mc = set_mc_tolerances(cs, o.mc_alpha);
  for (const auto& c : cs) failures += c.pass() ? 0 : 1;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

  std::ostream& os = std::cout;
  os << canonical_command(o) << "\n\n";
  if (!o.quiet) {
    std::vector<double> secs;
    for (const auto& r : res) secs.push_back(r.seconds);
    problems_table(ps, &secs).print(os);
    os << "\n";
    checks_table(cs).print(os);
    os << "\n";
  }
  summary_table(cs).print(os);
  os << "\n" << mc_family_desc(mc) << "\n";
  double slowest = 0;
  std::string slowest_id;
  for (std::size_t i = 0; i < ps.size(); ++i)
    if (res[i].seconds > slowest) {
      slowest = res[i].seconds;
      slowest_id = ps[i].id;
    }
  const int n_checks = static_cast<int>(std::count_if(cs.begin(), cs.end(), [](const Check& c) { return c.kind != Kind::info; }));
  os << "\n" << ps.size() << " problems, " << n_checks << " checks, " << failures << " failed; "
     << fmt("%.1f s (slowest problem %s: %.2f s)", seconds, slowest_id.c_str(), slowest) << "\n";
  if (!o.markdown.empty()) {
    write_markdown(o.markdown, o, ps, cs, failures, mc);
    os << "markdown written to " << o.markdown << "\n";
  }
  if (failures) {
    std::cerr << "discdiff verify: " << failures << " check(s) failed or were violated\n";
    return 1;
  }
  return 0;
}

const discdiff::app::RegisterCommand registration{discdiff::app::Command{
    "verify",
    "Verify the KL identity (Theorem A), the score-entropy bound (B), the entropy identity (C), "
    "J1, J2, J2 = J1 + EH and the MD4 ELBO by exact enumeration on small random problems, and "
    "the Monte Carlo J1/J2/ELBO estimators against the exact values",
    [](CLI::App& sub) -> discdiff::app::Action {
      auto o = std::make_shared<VerifyOptions>();
      sub.add_option("--seed", o->seed, "Seed of the random problem set")->capture_default_str();
      auto* pr = sub.add_option("--problems", o->problems,
                                "Random problems per generator (uniform, absorbing, roulette)")
                     ->check(CLI::Range(1, 10000))
                     ->capture_default_str();
      auto* mp = sub.add_option("--md4-problems", o->md4_problems,
                                "Random masked-diffusion (MD4 ELBO) problems")
                     ->check(CLI::Range(0, 10000))
                     ->capture_default_str();
      auto* ms = sub.add_option("--max-states", o->max_states,
                                "Largest state space D^L of a random problem")
                     ->check(CLI::Range(std::int64_t(16), std::int64_t(200000)))
                     ->capture_default_str();
      sub.add_option("--mc-sequences", o->mc_sequences,
                     "Sequences per Monte Carlo estimate (J1, J2, MD4 ELBO vs exact); 0 disables")
          ->check(CLI::Range(std::int64_t(0), std::int64_t(100000000)))
          ->capture_default_str();
      sub.add_option("--mc-alpha", o->mc_alpha,
                     "Family-wise error rate of the Monte Carlo z-tests: the probability that any "
                     "Monte Carlo row of the run fails by chance (Bonferroni over the rows, "
                     "Student t for the batch standard error)")
          ->check(CLI::Range(1e-12, 0.5))
          ->capture_default_str();
      sub.add_option("--mc-bias-se", o->mc_bias_se,
                     "Plant a bias of this many standard errors in every Monte Carlo estimate "
                     "(checks that the z-tests catch an error of a few SE)")
          ->check(CLI::Range(-1e6, 1e6))
          ->capture_default_str();
      sub.add_flag("--quick", o->quick,
                   "Small problem set (3 per generator, 2 MD4, max 200 states) for CI; explicit "
                   "--problems/--md4-problems/--max-states still apply");
      sub.add_option("--markdown", o->markdown, "Also write the report as markdown to FILE")
          ->type_name("FILE");
      sub.add_option("--method", o->method,
                     "Integration: adaptive (Dormand-Prince + Gauss-Kronrod) or grid (spec 7.1 "
                     "RK4 + Simpson on a log grid)")
          ->check(CLI::IsMember({"adaptive", "grid"}))
          ->capture_default_str();
      sub.add_option("--grid-intervals", o->grid_intervals, "K for --method grid (even)")
          ->check(CLI::Range(2, 1000000))
          ->capture_default_str();
      sub.add_option("--rtol", o->rtol, "Relative tolerance of the reverse ODE (adaptive)")
          ->check(CLI::Range(1e-14, 1e-3))
          ->capture_default_str();
      sub.add_option("--quad-tol", o->quad_tol, "Relative tolerance of the quadratures (adaptive)")
          ->check(CLI::Range(1e-15, 1e-3))
          ->capture_default_str();
      sub.add_option("--threads", o->threads, "OpenMP threads over problems (0: the OpenMP default)")
          ->check(CLI::Range(0, 1024))
          ->capture_default_str();
      sub.add_option("--tol-scale", o->tol_scale,
                     "Multiply every tolerance (checks the failure path: 0 makes rounding-level "
                     "gaps fail)")
          ->check(CLI::Range(0.0, 1e6))
          ->capture_default_str();
      sub.add_flag("--quiet", o->quiet, "Print only the summary (the markdown file stays complete)");
      return [o, pr, mp, ms] {
        return run_verify(*o, pr->count() > 0, mp->count() > 0, ms->count() > 0);
      };
    }}};

}  // namespace
