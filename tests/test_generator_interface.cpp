// Generator extension points (docs/architecture.md, "Generator extension points";
// generator/interface.hpp):
//   * compile time: every shipped generator provides the whole interface of its kind (one
//     static_assert per member inside check_*_noise_generator), and the traits can fail (an
//     incomplete toy generator, a member with the wrong signature, the dense oracle);
//   * run time: every generic free function (score/, objective/, sampler/, bound/) returns the
//     generator's member bit for bit, and the member agrees with an independent reference: the
//     dense Eigen exponential of a rate matrix built here from spec/MATH.md section 3 (ratios,
//     concrete scores, tau-leaping weights, rate bounds), direct sums over its columns (prior KL,
//     reference cross-entropy, conditional entropy), Simpson's rule (the exit integral) and the
//     formulas of spec 4.4 and 6.7 written out (log-score offset, PBRC terms).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Dense>

#include <discdiff/bound/exact_theorems.hpp>
#include <discdiff/bound/monte_carlo.hpp>
#include <discdiff/bound/reference_terms.hpp>
#include <discdiff/generator/dense.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/generator/interface.hpp>
#include <discdiff/objective/common.hpp>
#include <discdiff/objective/sedd.hpp>
#include <discdiff/sampler/kernels.hpp>
#include <discdiff/sampler/uniformization.hpp>
#include <discdiff/score/probs_to_score.hpp>

#include "tolerances.hpp"

using namespace discdiff;

// ------------------------------------------------------------------ compile time

static_assert(check_scalar_noise_generator<UniformGenerator<float>>());
static_assert(check_scalar_noise_generator<UniformGenerator<double>>());
static_assert(check_scalar_noise_generator<AbsorbingGenerator<float>>());
static_assert(check_scalar_noise_generator<AbsorbingGenerator<double>>());
static_assert(check_scalar_noise_generator<RouletteGenerator<float>>());
static_assert(check_scalar_noise_generator<RouletteGenerator<double>>());
static_assert(check_token_noise_generator<StateDependentMaskingGenerator<float>>());
static_assert(check_token_noise_generator<StateDependentMaskingGenerator<double>>());

static_assert(is_scalar_noise_generator_v<UniformGenerator<double>>);
static_assert(is_scalar_noise_generator_v<AbsorbingGenerator<float>>);
static_assert(is_scalar_noise_generator_v<RouletteGenerator<double>>);
static_assert(is_token_noise_generator_v<StateDependentMaskingGenerator<double>>);
// the kinds are distinct
static_assert(!is_token_noise_generator_v<RouletteGenerator<double>>);
static_assert(!is_scalar_noise_generator_v<StateDependentMaskingGenerator<double>>);

namespace toy {

/// A two-state flip chain Q = [[-1, 1], [1, -1]] (P_u = ((1 + e^{-2u})/2 on the diagonal) with the
/// core concept only: it deliberately lacks probs_to_score and every closed form of the
/// scalar-noise kind.
template <class T>
struct FlipGenerator {
  using value_type = T;
  static constexpr const char* name = "toy-flip";
  static constexpr bool pure_masking = false;

  int num_regular() const { return 2; }
  int num_states() const { return 2; }
  bool has_mask() const { return false; }
  int mask() const { return -1; }
  T rate(int y, int x) const { return y == x ? T(-1) : T(1); }
  T exit_rate(int /*x*/) const { return T(1); }
  T transition(int y, int x, T u) const {
    const T e = std::exp(T(-2) * u);
    return y == x ? (T(1) + e) / T(2) : (T(1) - e) / T(2);
  }
  void transition_column(int x, T u, T* out) const {
    for (int y = 0; y < 2; ++y) out[y] = transition(y, x, u);
  }
  void transition_row(int y, T u, T* out) const { transition_column(y, u, out); }
  void apply_exp(T u, const T* v, T* out) const {
    const T a = transition(0, 0, u), b = transition(1, 0, u);
    const T v0 = v[0], v1 = v[1];
    out[0] = a * v0 + b * v1;
    out[1] = b * v0 + a * v1;
  }
  T ratio(int x, int b, int a, T u) const { return transition(b, a, u) / transition(x, a, u); }
  int sample_forward(int x0, T u, CounterRng& rng) const {
    return rng.template uniform<T>() < transition(1 - x0, x0, u) ? 1 - x0 : x0;
  }
  int sample_limit(CounterRng& rng) const { return static_cast<int>(rng.uniform_int(2u)); }
};

/// A complete roulette generator except for one member with the wrong signature (the offset
/// is not const, so the generic algorithms cannot call it on their const generator): the
/// member-by-member traits must notice.
template <class T>
struct WrongOffset : RouletteGenerator<T> {
  using RouletteGenerator<T>::RouletteGenerator;
  T sedd_log_score_offset(int x, T u) { return RouletteGenerator<T>::sedd_log_score_offset(x, u); }
};

}  // namespace toy

TEST_CASE("generator interface: the traits report an incomplete generator") {
  namespace gt = generator_traits;
  using Toy = toy::FlipGenerator<double>;
  // the core members are detected ...
  CHECK(gt::has_value_type<Toy>::value);
  CHECK(gt::has_name<Toy>::value);
  CHECK(gt::has_rate<Toy>::value);
  CHECK(gt::has_transition<Toy, double>::value);
  CHECK(gt::has_apply_exp<Toy, double>::value);
  CHECK(gt::has_sample_forward<Toy, double>::value);
  CHECK(gt::has_pure_masking<Toy>::value);
  // ... the missing ones are reported, and so the whole interface is
  CHECK_FALSE(gt::has_probs_to_score<Toy, double>::value);
  CHECK_FALSE(gt::has_sedd_coeffs<Toy>::value);
  CHECK_FALSE(gt::has_tau_leaping_coefficients<Toy>::value);
  CHECK_FALSE(gt::has_prior_kl_per_token<Toy>::value);
  CHECK_FALSE(gt::core_members<Toy, double>::value);
  CHECK_FALSE(gt::scalar_closed_forms<Toy>::value);
  CHECK_FALSE(is_scalar_noise_generator<Toy>::value);
  CHECK_FALSE(is_token_noise_generator<Toy>::value);
  // the generic free functions are constrained on the members: no SEDD head for the toy
  CHECK_FALSE(detail::sedd::has_offset<Toy, double>::value);
  CHECK(detail::sedd::has_offset<RouletteGenerator<double>, double>::value);
  CHECK(default_loss_positions<Toy>::value == LossPositions::all);

  // a member with the wrong signature counts as missing
  using Wrong = toy::WrongOffset<double>;
  CHECK(gt::has_sedd_coeffs<Wrong>::value);
  CHECK_FALSE(gt::has_sedd_log_score_offset<Wrong>::value);
  CHECK_FALSE(is_scalar_noise_generator<Wrong>::value);
  CHECK(is_scalar_noise_generator<RouletteGenerator<double>>::value);

  // the dense oracle has the core transitions but is host-only state (not trivially copyable)
  // and has no closed forms
  CHECK(gt::has_transition<DenseGenerator<double>, double>::value);
  CHECK(gt::has_ratio<DenseGenerator<double>, double>::value);
  CHECK_FALSE(gt::has_sedd_coeffs<DenseGenerator<double>>::value);
  CHECK_FALSE(is_scalar_noise_generator<DenseGenerator<double>>::value);
  CHECK(default_loss_positions<DenseGenerator<double>>::value == LossPositions::all);

  // a type that is no generator at all
  CHECK_FALSE(is_scalar_noise_generator<int>::value);
  CHECK_FALSE(is_token_noise_generator<std::vector<double>>::value);
}

// ------------------------------------------------------------------ run time

namespace {

using Mat = Eigen::MatrixXd;

/// Bitwise equality (NaN == NaN of the same payload, +0 != -0).
template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

bool close(double a, double b, double rel) {
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= rel * std::max(1.0, std::max(std::abs(a), std::abs(b)));
}

// ---- rate matrices written from spec/MATH.md 3.1-3.3 (column convention), not from rate()
Mat q_uniform(int n) {
  Mat q = Mat::Constant(n, n, 1.0 / n);
  q.diagonal().array() = -(n - 1.0) / n;
  return q;
}
Mat q_roulette(int n, double pm) {
  const double g = 1.0 - pm;
  Mat q = Mat::Zero(n + 1, n + 1);
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) q(b, a) = g / n;
    q(n, a) = pm;
    q(a, a) = -(pm + g * (n - 1.0) / n);
  }
  return q;
}
Mat q_absorbing(int n) { return q_roulette(n, 1.0); }

DenseGenerator<double> oracle(const UniformGenerator<double>& g) {
  return DenseGenerator<double>(q_uniform(g.num_regular()));
}
DenseGenerator<double> oracle(const AbsorbingGenerator<double>& g) {
  return DenseGenerator<double>(q_absorbing(g.num_regular()), g.num_regular());
}
DenseGenerator<double> oracle(const RouletteGenerator<double>& g) {
  return DenseGenerator<double>(q_roulette(g.num_regular(), g.p_m()), g.num_regular());
}

/// An irregular probability vector over n classes (no two equal entries).
template <class T>
std::vector<T> posterior(int n, int seed) {
  std::vector<T> f(static_cast<std::size_t>(n));
  double s = 0;
  for (int h = 0; h < n; ++h) {
    const double v = 0.3 + std::fmod(0.6180339887498949 * (h + 1 + 3 * seed), 1.0);
    f[static_cast<std::size_t>(h)] = static_cast<T>(v);
    s += v;
  }
  for (auto& v : f) v = static_cast<T>(static_cast<double>(v) / s);
  return f;
}

const double kNoise[] = {0.05, 0.7, 3.0};

// ---- generic free function == member, bit for bit (float and double)
template <class Gen>
void check_forwarding(const Gen& g) {
  using T = typename Gen::value_type;
  const int n = g.num_regular(), d = g.num_states();
  for (double ud : kNoise) {
    const T u = static_cast<T>(ud);
    for (int x = 0; x < d; ++x) {
      CHECK(same_bits(sedd_log_score_offset(g, x, u), g.sedd_log_score_offset(x, u)));
      for (int a = 0; a < n; ++a) {
        const SeddCoeffs<T> c1 = sedd_coeffs(g, x, a, u), c2 = g.sedd_coeffs(x, a, u);
        CHECK((same_bits(c1.q, c2.q) && same_bits(c1.r_other, c2.r_other) &&
               same_bits(c1.r_a, c2.r_a) && c1.a_candidate == c2.a_candidate));
      }
      for (int nf : {n, d}) {
        const std::vector<T> f = posterior<T>(nf, x);
        for (ScoreOptions o : {ScoreOptions{}, ScoreOptions{PhiMode::renormalize, false},
                               ScoreOptions::pbrc()}) {
          std::vector<T> s1(static_cast<std::size_t>(d)), s2(s1);
          probs_to_score(g, f.data(), nf, x, u, s1.data(), o);
          const T scale = (o.phi == PhiMode::renormalize && nf > n) ? T(1) / (T(1) - f[n]) : T(1);
          g.probs_to_score(f.data(), x, u, scale, o.phi == PhiMode::ignore, o.pbrc_safeguards,
                           s2.data());
          bool same = true;
          for (int b = 0; b < d; ++b) same = same && same_bits(s1[b], s2[b]);
          CHECK(same);
        }
      }
      for (TauMethod m : {TauMethod::euler, TauMethod::analytic}) {
        const TauStep st{m, ud, 0.01, 0.3 * ud};
        const TauCoefficients k1 = tau_leaping_coefficients(g, st, x, 0.2, 0.8);
        const TauCoefficients k2 = g.tau_leaping_coefficients(st, x, 0.2, 0.8);
        CHECK((same_bits(k1.c0, k2.c0) && same_bits(k1.c1, k2.c1) && same_bits(k1.wx, k2.wx) &&
               k1.stay == k2.stay));
      }
    }
    CHECK(same_bits(uniformization_rate_bound(g, ud), g.uniformization_rate_bound(ud)));
    CHECK(default_prior_reference(g) == g.default_prior_reference());
    for (PriorReference r : {PriorReference::limit, PriorReference::masked_prior}) {
      CHECK(same_bits(prior_kl_per_token(g, u, r), g.prior_kl_per_token(u, r)));
      CHECK(same_bits(reference_cross_entropy_per_token(g, u, r),
                      g.reference_cross_entropy_per_token(u, r)));
    }
    CHECK(same_bits(exit_rate_integral(g, 7, u / T(10), u), g.exit_rate_integral(7, u / T(10), u)));
    CHECK(same_bits(exact::analytic_exit_integral(g, 7, ud / 10, ud),
                    static_cast<double>(g.exit_rate_integral(7, T(ud / 10), T(ud)))));
    CHECK(same_bits(conditional_entropy_per_token(g, u), g.conditional_entropy_per_token(u)));
    CHECK(same_bits(detail::mc::pbrc_exit(g, 7, 1e-3, ud), g.pbrc_exit(7, 1e-3, ud)));
    CHECK(same_bits(detail::mc::pbrc_reference_ce(g, 7), g.pbrc_reference_ce(7)));
    CHECK(detail::mc::pbrc_exit_per_sample(g) == g.pbrc_exit_per_sample());
  }
  CHECK((default_loss_positions<Gen>::value == LossPositions::masked) == Gen::pure_masking);
}

// ---- members against the dense oracle and the spec's formulas (double)

/// pure_masking is a property of the type: when it is true, the oracle's Q has no regular ->
/// regular move (an instance may mask only without it, e.g. roulette with p_m = 1).
template <class Gen>
void check_pure_masking(const Gen& g, const DenseGenerator<double>& dense) {
  bool only_mask = true;
  for (int a = 0; a < g.num_regular(); ++a)
    for (int b = 0; b < g.num_regular(); ++b)
      if (a != b && dense.rate(b, a) > 0) only_mask = false;
  if (Gen::pure_masking) CHECK(only_mask);
}

template <class Gen>
void check_scores_and_sedd(const Gen& g, const DenseGenerator<double>& dense, double u) {
  const int n = g.num_regular(), d = g.num_states();
  const double tol = test::extension_rel_tol;
  for (int x = 0; x < d; ++x) {
    // probs_to_score: the closed form vs the identity of spec 4.1 through the dense P_u
    bool reachable = false;
    for (int h = 0; h < n; ++h) reachable = reachable || dense.transition(x, h, u) > 0;
    if (reachable) {
      for (int nf : {n, d}) {
        const std::vector<double> f = posterior<double>(nf, x + 1);
        for (ScoreOptions o : {ScoreOptions{}, ScoreOptions{PhiMode::renormalize, false}}) {
          std::vector<double> s(static_cast<std::size_t>(d)), sn(s);
          probs_to_score(g, f.data(), nf, x, u, s.data(), o);
          probs_to_score_naive(dense, f.data(), nf, x, u, sn.data(), o);
          for (int b = 0; b < d; ++b) {
            INFO(std::string(Gen::name) << " u=" << u << " x=" << x << " nf=" << nf << " b=" << b);
            CHECK(close(s[b], sn[b], tol));
          }
        }
      }
    }
    // sedd_coeffs: q = Q[x,b] for every candidate (regular b != x), ratios from P_u
    for (int a = 0; a < n; ++a) {
      if (!(dense.transition(x, a, u) > 0)) continue;
      INFO(std::string(Gen::name) << " u=" << u << " x=" << x << " a=" << a);
      const SeddCoeffs<double> c = g.sedd_coeffs(x, a, u);
      for (int b = 0; b < n; ++b) {
        if (b == x) continue;
        if (!(c.q > 0)) {
          CHECK(!(dense.rate(x, b) > 1e-15));
          continue;
        }
        CHECK(close(c.q, dense.rate(x, b), tol));
        const double r = dense.ratio(x, b, a, u);
        CHECK(close(b == a ? c.r_a : c.r_other, r, tol));
      }
      CHECK(c.a_candidate == (c.q > 0 && a != x));
    }
  }
}

/// The SEDD log-score offset of spec 4.4 written out: log of the scale 1 + 1/em - 1/(em + N)
/// (em = expm1 of the uniform-resampling noise) at regular x, 1/(expm1(mask noise) N) at MASK.
double offset_formula(int n, double mask_noise, double uniform_noise, bool masked) {
  if (masked) return -std::log(std::expm1(mask_noise) * n);
  const double em = std::expm1(uniform_noise);
  return std::log(1.0 + 1.0 / em - 1.0 / (em + n));
}

template <class Gen>
void check_tau_leaping(const Gen& g, const DenseGenerator<double>& dense, double u) {
  const int n = g.num_regular(), d = g.num_states();
  const double tol = test::extension_rel_tol;
  for (int x = 0; x < d; ++x) {
    bool reachable = false;  // the kernels never see an unreachable x (MASK when p_m = 0)
    for (int h = 0; h < n; ++h) reachable = reachable || dense.transition(x, h, u) > 0;
    if (!reachable) continue;
    for (TauMethod m : {TauMethod::euler, TauMethod::analytic}) {
      const TauStep st{m, u, 0.01, 0.3 * u};
      const std::vector<double> f = posterior<double>(n, 2 * x + 1);
      const double fx = x < n ? f[x] : 0.0, R = 1.0 - fx;
      const TauCoefficients k = g.tau_leaping_coefficients(st, x, fx, R);
      INFO(std::string(Gen::name) << " u=" << u << " x=" << x << " method=" << int(m));
      if (k.stay) {
        for (int b = 0; b < d; ++b)
          if (b != x) CHECK(!(dense.rate(x, b) > 1e-15));
        continue;
      }
      // the weights through the generic route: s from the identity, then Euler h Q[x,b] s_b or
      // analytic (P_{-Delta} s)_b P_Delta[x,b]
      std::vector<double> s(static_cast<std::size_t>(d)), shat(s);
      probs_to_score_naive(dense, f.data(), n, x, u, s.data());
      std::vector<double> w(static_cast<std::size_t>(d));
      if (m == TauMethod::euler) {
        double tot = 0;
        for (int b = 0; b < d; ++b) {
          w[b] = b == x ? 0.0 : st.h * dense.rate(x, b) * s[b];
          tot += w[b];
        }
        w[x] = 1.0 - tot;
      } else {
        dense.apply_exp(-st.delta, s.data(), shat.data());
        for (int b = 0; b < d; ++b) w[b] = shat[b] * dense.transition(x, b, st.delta);
      }
      for (int b = 0; b < n; ++b)
        if (b != x) CHECK(close(k.c0 + k.c1 * f[b], w[b], tol));
      CHECK(close(k.wx, w[x], tol));
    }
  }
}

template <class Gen>
void check_rate_bound(const Gen& g, const DenseGenerator<double>& dense, double u) {
  const int n = g.num_regular(), d = g.num_states();
  const double bound = g.uniformization_rate_bound(u);
  // the total reverse rate sum_{b != x} Q[x,b] s_b over point-mass and irregular posteriors:
  // never above the bound, and the bound is attained
  double best = 0;
  for (int x = 0; x < d; ++x)
    for (int h = -1; h < n; ++h) {
      std::vector<double> f = posterior<double>(n, x + 7);
      if (h >= 0) f.assign(static_cast<std::size_t>(n), 0.0), f[h] = 1.0;
      bool reachable = false;
      for (int a = 0; a < n; ++a) reachable = reachable || (f[a] > 0 && dense.transition(x, a, u) > 0);
      if (!reachable) continue;
      std::vector<double> s(static_cast<std::size_t>(d));
      probs_to_score_naive(dense, f.data(), n, x, u, s.data());
      double tot = 0;
      for (int b = 0; b < d; ++b)
        if (b != x) tot += dense.rate(x, b) * s[b];
      CHECK(tot <= bound * (1 + test::extension_rel_tol));
      best = std::max(best, tot);
    }
  INFO(std::string(Gen::name) << " u=" << u);
  CHECK(close(best, bound, test::extension_rel_tol));
}

/// The reference terms of the bounds from the dense column P_u[., a] (a = 0; the same up to
/// relabelling for every a).
template <class Gen>
void check_reference_terms(const Gen& g, const DenseGenerator<double>& dense, double u) {
  const int n = g.num_regular(), d = g.num_states();
  const double tol = test::extension_rel_tol;
  std::vector<double> c(static_cast<std::size_t>(d));
  dense.transition_column(0, u, c.data());
  double h = 0;
  for (double p : c) h -= p > 0 ? p * std::log(p) : 0.0;
  INFO(std::string(Gen::name) << " u=" << u);
  CHECK(close(g.conditional_entropy_per_token(u), h, tol));

  // ref = limit: pi where Q has a unique stationary law reachable from data; otherwise the
  // all-MASK law (KL and CE infinite: the column has regular mass)
  const double kl_lim = g.prior_kl_per_token(u, PriorReference::limit);
  const double ce_lim = g.reference_cross_entropy_per_token(u, PriorReference::limit);
  if (!g.has_mask() || dense.rate(g.mask(), 0) == 0) {  // uniform over the regular tokens
    double kl = 0, ce = 0;
    for (int y = 0; y < n; ++y) {
      kl += c[y] * std::log(c[y] * n);
      ce += c[y] * std::log(double(n));
    }
    CHECK(close(kl_lim, kl, tol));
    CHECK(close(ce_lim, ce, tol));
  } else {
    CHECK(std::isinf(kl_lim));
    CHECK(std::isinf(ce_lim));
  }
  // ref = pi_alpha with alpha = P(not masked) = 1 - c[MASK]; none without MASK (NaN)
  const double kl_a = g.prior_kl_per_token(u, PriorReference::masked_prior);
  const double ce_a = g.reference_cross_entropy_per_token(u, PriorReference::masked_prior);
  if (g.has_mask()) {
    const double cm = c[g.mask()], alpha = 1 - cm;
    double kl = 0;  // MASK: c[MASK] log(c[MASK] / (1 - alpha)) = 0
    double ce = cm > 0 ? -cm * std::log(cm) : 0.0;
    for (int y = 0; y < n; ++y) {
      if (c[y] > 0) kl += c[y] * std::log(c[y] / (alpha / n));
      ce -= c[y] * std::log(alpha / n);
    }
    CHECK(close(kl_a, kl, tol));
    CHECK(close(ce_a, ce, tol));
    CHECK(g.default_prior_reference() == PriorReference::masked_prior);
  } else {
    CHECK(std::isnan(kl_a));
    CHECK(std::isnan(ce_a));
    CHECK(g.default_prior_reference() == PriorReference::limit);
  }

  // exit integral: L int_{u_a}^{u_b} sum_y P_v[y,0] exit(y) dv by Simpson's rule (K intervals)
  const long long L = 3;
  const double ua = 0.1 * u, ub = u;
  const int K = 400;
  double acc = 0;
  for (int k = 0; k <= K; ++k) {
    const double v = ua + (ub - ua) * k / K;
    std::vector<double> cv(static_cast<std::size_t>(d));
    dense.transition_column(0, v, cv.data());
    double e = 0;
    for (int y = 0; y < d; ++y) e += cv[y] * dense.exit_rate(y);
    acc += (k == 0 || k == K ? 1.0 : (k % 2 ? 4.0 : 2.0)) * e;
  }
  const double simpson = L * acc * (ub - ua) / (3.0 * K);
  CHECK(close(g.exit_rate_integral(L, ua, ub), simpson, test::simpson_rel_tol));
}

/// The PBRC code's terms (spec 6.7) written out: CE_ref = L log N (uniform) or 0; exit
/// L (1 - 1/N) sigma per sample (uniform, roulette with p_m = 0), L (1 - eps) (absorbing),
/// L (1 - (1 - p_m)/N)(1 - eps)/p_m (roulette).
void check_pbrc(const UniformGenerator<double>& g) {
  const int n = g.num_regular();
  CHECK(close(g.pbrc_reference_ce(7), 7 * std::log(double(n)), 1e-15));
  CHECK(close(g.pbrc_exit(7, 1e-3, 2.5), 7 * (1 - 1.0 / n) * 2.5, 1e-15));
  CHECK(g.pbrc_exit_per_sample());
}
void check_pbrc(const AbsorbingGenerator<double>& g) {
  CHECK(g.pbrc_reference_ce(7) == 0.0);
  CHECK(close(g.pbrc_exit(7, 1e-3, 2.5), 7 * (1 - 1e-3), 1e-15));
  CHECK_FALSE(g.pbrc_exit_per_sample());
}
void check_pbrc(const RouletteGenerator<double>& g) {
  const int n = g.num_regular();
  const double pm = g.p_m();
  CHECK(g.pbrc_reference_ce(7) == 0.0);
  if (pm > 0) {
    CHECK(close(g.pbrc_exit(7, 1e-3, 2.5), 7 * (1 - (1 - pm) / n) * (1 - 1e-3) / pm, 1e-15));
    CHECK_FALSE(g.pbrc_exit_per_sample());
  } else {
    CHECK(close(g.pbrc_exit(7, 1e-3, 2.5), 7 * (1 - 1.0 / n) * 2.5, 1e-15));
    CHECK(g.pbrc_exit_per_sample());
  }
}

template <class Gen>
void check_against_oracle(const Gen& g) {
  const DenseGenerator<double> dense = oracle(g);
  check_pure_masking(g, dense);
  check_pbrc(g);
  for (double u : kNoise) {
    check_scores_and_sedd(g, dense, u);
    check_tau_leaping(g, dense, u);
    check_rate_bound(g, dense, u);
    check_reference_terms(g, dense, u);
  }
}

}  // namespace

TEST_CASE("generator interface: uniform members == free functions == references") {
  for (int n : {2, 5}) {
    check_forwarding(UniformGenerator<float>(n));
    check_forwarding(UniformGenerator<double>(n));
    const UniformGenerator<double> g(n);
    check_against_oracle(g);
    for (double u : kNoise)
      for (int x = 0; x < n; ++x)
        CHECK(close(g.sedd_log_score_offset(x, u), offset_formula(n, 0, u, false), 1e-12));
  }
}

TEST_CASE("generator interface: absorbing members == free functions == references") {
  check_forwarding(AbsorbingGenerator<float>(5));
  check_forwarding(AbsorbingGenerator<double>(5));
  const AbsorbingGenerator<double> g(5);
  check_against_oracle(g);
  for (double u : kNoise) CHECK(close(g.sedd_log_score_offset(5, u), offset_formula(5, u, 0, true), 1e-12));
}

TEST_CASE("generator interface: roulette members == free functions == references") {
  for (double pm : {0.0, 0.3, 0.9, 1.0}) {
    INFO("p_m = " << pm);
    check_forwarding(RouletteGenerator<float>(5, static_cast<float>(pm)));
    check_forwarding(RouletteGenerator<double>(5, pm));
    const RouletteGenerator<double> g(5, pm);
    check_against_oracle(g);
    for (double u : kNoise) {
      if (pm > 0) CHECK(close(g.sedd_log_score_offset(5, u), offset_formula(5, pm * u, 0, true), 1e-12));
      if (pm < 1)
        CHECK(close(g.sedd_log_score_offset(1, u), offset_formula(5, 0, (1 - pm) * u, false), 1e-12));
    }
  }
}

TEST_CASE("generator interface: state-dependent members == free functions == references") {
  const int n = 4, d = 5;
  {
    auto run = [&](auto zero) {
      using T = decltype(zero);
      const StateDependentMaskingGenerator<T> g(n);
      const std::vector<T> ubar = {T(0.05), T(0.4), T(1.3), T(3.0)};
      for (int x = 0; x < d; ++x)
        for (int nf : {n, d}) {
          const std::vector<T> f = posterior<T>(nf, x);
          for (ScoreOptions o : {ScoreOptions{}, ScoreOptions{PhiMode::renormalize, false}}) {
            std::vector<T> s1(d), s2(d);
            probs_to_score(g, f.data(), nf, x, ubar.data(), s1.data(), o);
            const T scale = (o.phi == PhiMode::renormalize && nf > n) ? T(1) / (T(1) - f[n]) : T(1);
            g.probs_to_score(f.data(), x, ubar.data(), scale, false, false, s2.data());
            bool same = true;
            for (int b = 0; b < d; ++b) same = same && same_bits(s1[b], s2[b]);
            CHECK(same);
            // logits_to_score is softmax, then the same member
            if (std::is_same<T, double>::value && o.phi == PhiMode::exact) {
              std::vector<T> z(static_cast<std::size_t>(nf)), s3(d), s4(d);
              for (int k = 0; k < nf; ++k) z[k] = std::log(f[k]);
              logits_to_score(g, z.data(), nf, x, ubar.data(), s3.data());
              probs_to_score(g, f.data(), nf, x, ubar.data(), s4.data());
              for (int b = 0; b < d; ++b) CHECK(close(double(s3[b]), double(s4[b]), 1e-13));
            }
          }
        }
      CHECK(default_loss_positions<StateDependentMaskingGenerator<T>>::value ==
            LossPositions::masked);
    };
    run(0.0f);
    run(0.0);
  }
  // against the identity of spec 4.1 through the dense exponential of the integrated generator
  // Lambda[MASK,v] = ubar_v, Lambda[v,v] = -ubar_v (P = exp(Lambda), i.e. u = 1), built here
  const std::vector<double> ubar = {0.05, 0.4, 1.3, 3.0};
  Mat lam = Mat::Zero(d, d);
  for (int v = 0; v < n; ++v) {
    lam(n, v) = ubar[v];
    lam(v, v) = -ubar[v];
  }
  const DenseGenerator<double> dense(lam, n);
  const StateDependentMaskingGenerator<double> g(n);
  for (int x = 0; x < d; ++x) {
    const std::vector<double> f = posterior<double>(d, x);
    std::vector<double> s(d), sn(d);
    probs_to_score(g, f.data(), d, x, ubar.data(), s.data());
    probs_to_score_naive(dense, f.data(), d, x, 1.0, sn.data());
    for (int b = 0; b < d; ++b) CHECK(close(s[b], sn[b], test::extension_rel_tol));
  }
  // the checked wrapper's per-token noise check is generic (the generator's validate_noise hook)
  CHECK(probs_to_score_checked(g, posterior<double>(d, 0), 4, ubar).size() == std::size_t(d));
  CHECK_THROWS_AS(probs_to_score_checked(g, posterior<double>(d, 0), 4, std::vector<double>{0.1, 0.2}),
                  std::invalid_argument);
  CHECK_THROWS_AS(probs_to_score_checked(g, posterior<double>(d, 0), 4,
                                         std::vector<double>{0.1, 0.0, 0.3, 0.4}),
                  std::invalid_argument);
  bool only_mask = true;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      if (a != b && lam(b, a) > 0) only_mask = false;
  CHECK(StateDependentMaskingGenerator<double>::pure_masking == only_mask);
}
