// probs_to_score (score/probs_to_score.hpp, spec/MATH.md section 4): the closed forms of 4.2
// against the naive identity of 4.1 (through the closed-form generators and through the dense
// Eigen oracle), the PBRC variant (4.2, 4.3), logits input, and, with the exact posterior of a
// small data distribution as f, the exact concrete score p_t(x^{i<-b})/p_t(x) by enumeration; the
// score-entropy integrand I_SE (spec 7.1) then vanishes and so does the expected DWDSE gradient.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <discdiff/generator/dense.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/objective/sedd.hpp>
#include <discdiff/score/probs_to_score.hpp>

using namespace discdiff;

namespace {

bool close(double a, double b, double rel, double abs = 0.0) {
  return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)) + abs;
}

std::vector<double> random_probs(std::mt19937_64& rng, int n, double spread = 1.5) {
  std::normal_distribution<double> nd(0.0, spread);
  std::vector<double> z(static_cast<std::size_t>(n)), f(z.size());
  for (auto& v : z) v = nd(rng);
  softmax(z.data(), n, f.data());
  return f;
}

std::vector<double> sd_ubar(int n, double u) {
  std::vector<double> ubar(static_cast<std::size_t>(n));
  for (int v = 0; v < n; ++v) ubar[static_cast<std::size_t>(v)] = u * (0.5 + 0.37 * v);
  return ubar;
}

/// Closed form == naive identity for every reachable x, both f lengths and both exact modes.
template <class Gen, class U>
void closed_vs_naive(const Gen& gen, const U& u, std::mt19937_64& rng) {
  const int n = gen.num_regular(), d = gen.num_states();
  for (int x = 0; x < d; ++x) {
    bool reachable = false;
    for (int h = 0; h < n; ++h) reachable = reachable || gen.transition(x, h, u) > 0;
    if (!reachable) continue;
    std::vector<int> lengths = {n};
    if (d > n) lengths.push_back(d);
    for (int nf : lengths) {
      for (PhiMode mode : {PhiMode::exact, PhiMode::renormalize}) {
        const auto f = random_probs(rng, nf);
        ScoreOptions opt;
        opt.phi = mode;
        std::vector<double> s(static_cast<std::size_t>(d)), sn(s.size());
        probs_to_score(gen, f.data(), nf, x, u, s.data(), opt);
        probs_to_score_naive(gen, f.data(), nf, x, u, sn.data(), opt);
        CAPTURE(std::string(gen.name));
        CAPTURE(x);
        CAPTURE(nf);
        CAPTURE(static_cast<int>(mode));
        for (int b = 0; b < d; ++b) {
          CAPTURE(b);
          CHECK(close(s[b], sn[b], 1e-12, 1e-300));
        }
        // In place: s may alias f.
        if (nf == d) {
          std::vector<double> g(f);
          probs_to_score(gen, g.data(), nf, x, u, g.data(), opt);
          for (int b = 0; b < d; ++b) CHECK(g[b] == s[b]);
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("probs_to_score: closed forms (spec 4.2) == the naive identity (spec 4.1)") {
  std::mt19937_64 rng(1);
  for (double u : {1e-7, 1e-3, 0.05, 0.7, 3.0, 20.0, 60.0}) {
    CAPTURE(u);
    closed_vs_naive(UniformGenerator<double>(5), u, rng);
    closed_vs_naive(UniformGenerator<double>(2), u, rng);
    closed_vs_naive(AbsorbingGenerator<double>(5), u, rng);
    closed_vs_naive(RouletteGenerator<double>(5, 0.9), u, rng);
    closed_vs_naive(RouletteGenerator<double>(3, 0.3), u, rng);
    closed_vs_naive(RouletteGenerator<double>(4, 1.0), u, rng);
    const auto ubar = sd_ubar(4, u);
    closed_vs_naive(StateDependentMaskingGenerator<double>(4), ubar.data(), rng);
  }
}

TEST_CASE("probs_to_score: agrees with the identity through the dense Eigen oracle") {
  std::mt19937_64 rng(2);
  const int N = 5;
  const RouletteGenerator<double> rou(N, 0.8);
  const UniformGenerator<double> uni(N);
  Eigen::MatrixXd qr(N + 1, N + 1), qu(N, N);
  for (int y = 0; y <= N; ++y)
    for (int x = 0; x <= N; ++x) qr(y, x) = rou.rate(y, x);
  for (int y = 0; y < N; ++y)
    for (int x = 0; x < N; ++x) qu(y, x) = uni.rate(y, x);
  DenseGenerator<double> dr(qr, N), du(qu);
  for (double u : {0.01, 0.4, 3.0}) {
    for (int x = 0; x <= N; ++x) {
      const auto f = random_probs(rng, N + 1);
      std::vector<double> s(N + 1), sd(N + 1);
      probs_to_score(rou, f.data(), N + 1, x, u, s.data());
      probs_to_score_naive(dr, f.data(), N + 1, x, u, sd.data());
      for (int b = 0; b <= N; ++b) CHECK(close(s[b], sd[b], 1e-10, 1e-13));
    }
    for (int x = 0; x < N; ++x) {
      const auto f = random_probs(rng, N);
      std::vector<double> s(N), sd(N);
      probs_to_score(uni, f.data(), N, x, u, s.data());
      probs_to_score_naive(du, f.data(), N, x, u, sd.data());
      for (int b = 0; b < N; ++b) CHECK(close(s[b], sd[b], 1e-10, 1e-13));
    }
  }
}

TEST_CASE("probs_to_score: a point-mass posterior gives the conditional ratios of spec 3") {
  // f = delta_a: s_b = P_u[b,a]/P_u[x,a] = generator.ratio(x, b, a, u) (spec 1.5) for every b,
  // including the unused ratios toward MASK. Spec 12.2 values at N = 5, p_m = 0.9, u = 0.7.
  const int N = 5;
  const double u = 0.7;
  const RouletteGenerator<double> rou(N, 0.9);
  std::vector<double> f(N + 1, 0.0), s(N + 1);
  f[0] = 1.0;
  probs_to_score(rou, f.data(), N + 1, N, u, s.data());
  CHECK(s[0] == doctest::Approx(1.0778300515903894).epsilon(1e-14));  // r_ca
  CHECK(s[3] == doctest::Approx(0.0154068744592214).epsilon(1e-14));  // r_ba
  probs_to_score(rou, f.data(), N + 1, 0, u, s.data());
  CHECK(s[2] == doctest::Approx(0.0142943448612217).epsilon(1e-14));  // r_bc
  probs_to_score(rou, f.data(), N + 1, 1, u, s.data());
  CHECK(s[0] == doctest::Approx(69.95773571357155).epsilon(1e-14));  // r_cb
  const UniformGenerator<double> uni(N);
  std::vector<double> fu(N, 0.0), su(N);
  fu[0] = 1.0;
  probs_to_score(uni, fu.data(), N, 0, u, su.data());
  CHECK(su[1] == doctest::Approx(0.168572396768354).epsilon(1e-14));
  probs_to_score(uni, fu.data(), N, 2, u, su.data());
  CHECK(su[0] == doctest::Approx(5.932169318172317).epsilon(1e-14));
  CHECK(su[1] == doctest::Approx(1.0).epsilon(1e-15));

  auto all = [&](const auto& gen, const auto& un) {
    const int n = gen.num_regular(), d = gen.num_states();
    for (int a = 0; a < n; ++a)
      for (int x = 0; x < d; ++x) {
        if (!(gen.transition(x, a, un) > 0)) continue;
        std::vector<double> fa(static_cast<std::size_t>(n), 0.0), sa(static_cast<std::size_t>(d));
        fa[static_cast<std::size_t>(a)] = 1.0;
        probs_to_score(gen, fa.data(), n, x, un, sa.data());
        for (int b = 0; b < d; ++b) {
          CAPTURE(std::string(gen.name));
          CAPTURE(a);
          CAPTURE(x);
          CAPTURE(b);
          CAPTURE(sa[b]);
          CAPTURE(gen.ratio(x, b, a, un));
          CHECK(close(sa[b], gen.ratio(x, b, a, un), 1e-13, 1e-300));
        }
      }
  };
  for (double uu : {1e-4, 0.7, 9.0}) {
    all(UniformGenerator<double>(4), uu);
    all(AbsorbingGenerator<double>(4), uu);
    all(RouletteGenerator<double>(4, 0.9), uu);
    const auto ubar = sd_ubar(4, uu);
    all(StateDependentMaskingGenerator<double>(4), ubar.data());
  }
}

TEST_CASE("probs_to_score: phi handling and the PBRC variant (spec 4.2, 4.3)") {
  std::mt19937_64 rng(4);
  const int N = 6;
  const RouletteGenerator<double> rou(N, 0.95);
  for (double u : {0.01, 0.3, 0.7, 4.0}) {
    auto f = random_probs(rng, N + 1);  // phi = f[N] > 0
    const double phi = f[N];
    // exact: s_b = r_ba (1 - phi - f(b)) + r_ca f(b) at MASK.
    std::vector<double> s(N + 1), sp(N + 1), sr(N + 1);
    probs_to_score(rou, f.data(), N + 1, N, u, s.data());
    const double r_ba = rou.ratio(N, 1, 0, u), r_ca = rou.ratio(N, 0, 0, u);
    for (int b = 0; b < N; ++b)
      CHECK(close(s[b], r_ba * (1 - phi - f[b]) + r_ca * f[b], 1e-13));
    // PBRC code at MASK: r_ba + f(b)(r_ca - r_ba), phi taken as 0.
    probs_to_score(rou, f.data(), N + 1, N, u, sp.data(), ScoreOptions::pbrc());
    for (int b = 0; b < N; ++b) {
      CHECK(close(sp[b], r_ba + f[b] * (r_ca - r_ba), 1e-13));
      CHECK(close(sp[b] - s[b], r_ba * phi, 1e-9, 1e-15));
    }
    // renormalize: f(h)/(1 - phi), then the exact identity with unit regular mass.
    ScoreOptions ren;
    ren.phi = PhiMode::renormalize;
    probs_to_score(rou, f.data(), N + 1, N, u, sr.data(), ren);
    for (int b = 0; b < N; ++b)
      CHECK(close(sr[b], r_ba * (1 - f[b] / (1 - phi)) + r_ca * f[b] / (1 - phi), 1e-13));
    // PBRC code at a regular x: 1 + f(b)(r_cb - 1) + f(x)(r_bc - 1), with r_bc, r_cb at
    // u_eff = ln(1.1 u + 1.1) for u < 0.5.
    const int x = 2;
    probs_to_score(rou, f.data(), N + 1, x, u, sp.data(), ScoreOptions::pbrc());
    probs_to_score(rou, f.data(), N + 1, x, u, s.data());
    const double ue = u < 0.5 ? std::log(1.1 * u + 1.1) : u;
    const double r_bc = rou.ratio(x, 0, x, ue), r_cb = rou.ratio(x, 0, 0, ue);
    const double r_bc0 = rou.ratio(x, 0, x, u), r_cb0 = rou.ratio(x, 0, 0, u);
    for (int b = 0; b < N; ++b) {
      if (b == x) {
        CHECK(sp[b] == 1.0);
        continue;
      }
      CHECK(close(sp[b], 1 + f[b] * (r_cb - 1) + f[x] * (r_bc - 1), 1e-12));
      CHECK(close(s[b], (1 - phi) + f[b] * (r_cb0 - 1) + f[x] * (r_bc0 - 1), 1e-12));
    }
  }
  // Uniform: PBRC floors u at 0.0015.
  const UniformGenerator<double> uni(N);
  const auto fu = random_probs(rng, N);
  std::vector<double> s1(N), s2(N);
  probs_to_score(uni, fu.data(), N, 1, 1e-5, s1.data(), ScoreOptions::pbrc());
  probs_to_score(uni, fu.data(), N, 1, 0.0015, s2.data());
  for (int b = 0; b < N; ++b) CHECK(s1[b] == s2[b]);
  // With nf = N (no MASK class) the three modes coincide.
  const auto fr = random_probs(rng, N);
  std::vector<double> a(N + 1), c(N + 1), e(N + 1);
  ScoreOptions ign;
  ign.phi = PhiMode::ignore;
  ScoreOptions ren;
  ren.phi = PhiMode::renormalize;
  probs_to_score(rou, fr.data(), N, N, 0.4, a.data());
  probs_to_score(rou, fr.data(), N, N, 0.4, c.data(), ign);
  probs_to_score(rou, fr.data(), N, N, 0.4, e.data(), ren);
  for (int b = 0; b <= N; ++b) {
    CHECK(a[b] == c[b]);
    CHECK(a[b] == e[b]);
  }
}

TEST_CASE("logits_to_score: softmax with max subtraction, then the closed form") {
  std::mt19937_64 rng(9);
  std::normal_distribution<double> nd(0.0, 3.0);
  const int N = 7;
  const RouletteGenerator<double> rou(N, 0.9);
  for (int x = 0; x <= N; ++x) {
    std::vector<double> z(N + 1), f(N + 1), s1(N + 1), s2(N + 1);
    for (auto& v : z) v = nd(rng) + 500.0;  // large logits: max subtraction needed
    softmax(z.data(), N + 1, f.data());
    probs_to_score(rou, f.data(), N + 1, x, 0.3, s1.data());
    logits_to_score(rou, z.data(), N + 1, x, 0.3, s2.data());
    for (int b = 0; b <= N; ++b) CHECK(close(s1[b], s2[b], 1e-14));
  }
}

TEST_CASE("probs_to_score: float stays finite where the reverse rates use it") {
  const int N = 50;
  std::mt19937_64 rng(6);
  const auto fd = random_probs(rng, N + 1);
  std::vector<float> f(fd.begin(), fd.end()), s(N + 1);
  const RouletteGenerator<float> rou(N, 0.95f);
  const AbsorbingGenerator<float> abs(N);
  const UniformGenerator<float> uni(N);
  for (float u : {1e-7f, 1e-4f, 0.5f, 10.0f, 80.0f, 700.0f}) {
    for (int x : {0, N}) {
      probs_to_score(rou, f.data(), N + 1, x, u, s.data());
      for (int b = 0; b < N; ++b) CHECK(std::isfinite(s[b]));
      probs_to_score(abs, f.data(), N + 1, x, u, s.data());
      for (int b = 0; b < N; ++b) CHECK(std::isfinite(s[b]));
    }
    probs_to_score(uni, f.data(), N, 3, u, s.data());
    for (int b = 0; b < N; ++b) CHECK(std::isfinite(s[b]));
  }
}

// ------------------------------------------------------------------ exact posterior (spec 7.1)

namespace {

/// A small data distribution over N^L clean sequences and the exact quantities at noise u.
template <class Gen, class U>
struct Enumeration {
  Gen gen;
  U u;
  int n, d, len;
  std::vector<double> p0;  // N^L, p_0(k) proportional to 0.05 + ((7k + 3) mod 11)/10
  std::vector<double> pt;  // D^L

  Enumeration(const Gen& g, const U& uu, int L) : gen(g), u(uu), n(g.num_regular()),
                                                  d(g.num_states()), len(L) {
    int nk = 1, nx = 1;
    for (int i = 0; i < L; ++i) {
      nk *= n;
      nx *= d;
    }
    p0.resize(static_cast<std::size_t>(nk));
    double z = 0;
    for (int k = 0; k < nk; ++k) z += p0[k] = 0.05 + ((7 * k + 3) % 11) / 10.0;
    for (auto& v : p0) v /= z;
    pt.assign(static_cast<std::size_t>(nx), 0.0);
    for (int x = 0; x < nx; ++x)
      for (int k = 0; k < nk; ++k) pt[x] += p0[k] * cond(x, k);
  }
  int digit(int idx, int i, int base) const {  // position 0 most significant
    for (int j = len - 1; j > i; --j) idx /= base;
    return idx % base;
  }
  int replace(int x, int i, int b) const {
    int p = 1;
    for (int j = len - 1; j > i; --j) p *= d;
    return x + (b - digit(x, i, d)) * p;
  }
  double cond(int x, int k) const {  // p_{u|0}(x | x_0 = k)
    double p = 1;
    for (int i = 0; i < len; ++i) p *= gen.transition(digit(x, i, d), digit(k, i, n), u);
    return p;
  }
  std::vector<double> posterior(int x, int i) const {  // p_{0|u}(x_0^i = . | x)
    std::vector<double> f(static_cast<std::size_t>(n), 0.0);
    for (std::size_t k = 0; k < p0.size(); ++k)
      f[digit(static_cast<int>(k), i, n)] += p0[k] * cond(x, static_cast<int>(k));
    for (auto& v : f) v /= pt[x];
    return f;
  }
  /// supp P[b, .] within supp P[x, .] over regular h: the identity of 4.1 holds for candidate b.
  bool identity_holds(int xi, int b) const {
    for (int h = 0; h < n; ++h)
      if (!(gen.transition(xi, h, u) > 0) && gen.transition(b, h, u) > 0) return false;
    return true;
  }
};

double dk(double a, double b) {  // D_K(a || b) = a log(a/b) - a + b
  return a == 0 ? b : a * std::log(a / b) - a + b;
}

template <class Gen, class U, class Rate>
void check_exact_posterior(const Gen& gen, const U& u, int L, Rate rate) {
  const Enumeration<Gen, U> en(gen, u, L);
  const int n = en.n, d = en.d;
  int compared = 0;
  double ise = 0, ise_scale = 0;
  for (std::size_t x = 0; x < en.pt.size(); ++x) {
    if (!(en.pt[x] > 0)) continue;
    for (int i = 0; i < L; ++i) {
      const int xi = en.digit(static_cast<int>(x), i, d);
      const auto f = en.posterior(static_cast<int>(x), i);
      std::vector<double> s(static_cast<std::size_t>(d)), fd(static_cast<std::size_t>(d), 0.0);
      probs_to_score(gen, f.data(), n, xi, u, s.data());
      // The CEDD route: logits log f (exact zeros as -800, whose exp underflows to 0), softmax,
      // then the closed form, gives the same scores.
      std::vector<double> zl(static_cast<std::size_t>(n)), sl(static_cast<std::size_t>(d));
      for (int h = 0; h < n; ++h) zl[h] = f[h] > 0 ? std::log(f[h]) : -800.0;
      logits_to_score(gen, zl.data(), n, xi, u, sl.data());
      for (int b = 0; b < d; ++b) CHECK(close(sl[b], s[b], 1e-12, 1e-300));
      // The same with a D-entry f whose MASK class is 0 (every phi mode).
      std::copy(f.begin(), f.end(), fd.begin());
      std::vector<double> s2(static_cast<std::size_t>(d));
      if (d > n) {
        probs_to_score(gen, fd.data(), d, xi, u, s2.data());
        for (int b = 0; b < d; ++b) CHECK(s2[b] == s[b]);
      }
      for (int b = 0; b < d; ++b) {
        if (b == xi) continue;
        const double sp = en.pt[en.replace(static_cast<int>(x), i, b)] / en.pt[x];
        const double q = rate(xi, b);
        if (en.identity_holds(xi, b)) {
          CAPTURE(std::string(gen.name));
          CAPTURE(x);
          CAPTURE(i);
          CAPTURE(b);
          CHECK(close(s[b], sp, 1e-10, 1e-300));
          ++compared;
        }
        if (q > 0) {
          ise += en.pt[x] * q * dk(sp, s[b]);
          ise_scale += en.pt[x] * q * (sp + s[b]);
        }
      }
      // The expected DWDSE gradient vanishes at lambda = log s^p (denoising score matching):
      // sum_{x_0} p_0(x_0) p(x|x_0) Q (s^p - r(x_0)) = 0 for every weighted candidate b.
      std::vector<double> lam(static_cast<std::size_t>(d), 0.0), g(lam.size()),
          gsum(lam.size(), 0.0);
      bool any = false;
      for (int b = 0; b < d; ++b)
        if (b != xi && rate(xi, b) > 0) {
          lam[b] = std::log(s[b]);
          any = true;
        }
      if constexpr (std::is_arithmetic<U>::value) {
        if (!any) continue;
        for (std::size_t k = 0; k < en.p0.size(); ++k) {
          const double w = en.p0[k] * en.cond(static_cast<int>(x), static_cast<int>(k));
          if (!(w > 0)) continue;
          sedd_position(gen, lam.data(), d, xi, en.digit(static_cast<int>(k), i, n), u, 1.0,
                        g.data());
          for (int b = 0; b < d; ++b) gsum[b] += w * g[b];
        }
        for (int b = 0; b < d; ++b)
          CHECK(std::abs(gsum[b]) <= 1e-12 * en.pt[x] * (1 + s[b]));
      }
    }
  }
  CHECK(compared > 0);
  CHECK(std::abs(ise) <= 1e-13 * std::max(1.0, ise_scale));
}

}  // namespace

TEST_CASE("probs_to_score: with the exact posterior it is the exact concrete score, I_SE = 0") {
  for (double u : {1e-3, 0.3, 2.0, 6.0}) {
    CAPTURE(u);
    const UniformGenerator<double> uni(3);
    check_exact_posterior(uni, u, 3, [&](int x, int b) { return uni.rate(x, b); });
    const UniformGenerator<double> uni4(4);
    check_exact_posterior(uni4, u, 2, [&](int x, int b) { return uni4.rate(x, b); });
    const AbsorbingGenerator<double> abs(3);
    check_exact_posterior(abs, u, 3, [&](int x, int b) { return abs.rate(x, b); });
    const RouletteGenerator<double> rou(3, 0.9);
    check_exact_posterior(rou, u, 3, [&](int x, int b) { return rou.rate(x, b); });
    const RouletteGenerator<double> rou4(4, 0.5);
    check_exact_posterior(rou4, u, 2, [&](int x, int b) { return rou4.rate(x, b); });
    // State-dependent masking: per-token noises; reverse factor at MASK toward b is beta_b (any
    // positive weight works for I_SE: take 1).
    const StateDependentMaskingGenerator<double> sd(3);
    const auto ubar = sd_ubar(3, u);
    check_exact_posterior(sd, ubar.data(), 3,
                          [&](int x, int b) { return x == 3 && b < 3 ? 1.0 : 0.0; });
  }
}

TEST_CASE("probs_to_score_checked / logits_to_score_checked: validation") {
  const RouletteGenerator<double> rou(4, 0.9);
  const std::vector<double> f = {0.1, 0.2, 0.3, 0.35, 0.05};
  const auto s = probs_to_score_checked(rou, f, 4, 0.5);
  std::vector<double> s2(5);
  probs_to_score(rou, f.data(), 5, 4, 0.5, s2.data());
  for (int b = 0; b < 5; ++b) CHECK(s[b] == s2[b]);
  const auto sn = probs_to_score_checked(rou, std::vector<double>{0.25, 0.25, 0.25, 0.25}, 1, 0.5);
  CHECK(sn.size() == 5u);

  auto msg = [](auto&& fn) {
    try {
      fn();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no throw");
  };
  const std::string m1 = msg([&] { probs_to_score_checked(rou, std::vector<double>(3, 1.0 / 3), 0, 0.5); });
  CHECK(m1.find("f.size() = 3") != std::string::npos);
  CHECK(m1.find("N = 4") != std::string::npos);
  CHECK(m1.find("D = 5") != std::string::npos);
  CHECK_THROWS_AS(probs_to_score_checked(rou, f, 5, 0.5), std::invalid_argument);
  CHECK_THROWS_AS(probs_to_score_checked(rou, f, -1, 0.5), std::invalid_argument);
  CHECK_THROWS_AS(probs_to_score_checked(rou, f, 0, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(probs_to_score_checked(rou, f, 0, -1.0), std::invalid_argument);
  CHECK_THROWS_AS(probs_to_score_checked(rou, f, 0, std::nan("")), std::invalid_argument);
  CHECK_THROWS_AS(probs_to_score_checked(rou, std::vector<double>{0.5, 0.5, 0.5, -0.5, 0.0}, 0, 0.5),
                  std::invalid_argument);
  CHECK(msg([&] { probs_to_score_checked(rou, std::vector<double>{0.1, 0.1, 0.1, 0.1, 0.1}, 0, 0.5); })
            .find("sum(f)") != std::string::npos);
  CHECK_THROWS_AS(
      probs_to_score_checked(rou, std::vector<double>{0.1, std::nan(""), 0.3, 0.3, 0.3}, 0, 0.5),
      std::invalid_argument);
  // MASK is unreachable from data when p_m = 0.
  const RouletteGenerator<double> p0(4, 0.0);
  CHECK(msg([&] { probs_to_score_checked(p0, f, 4, 0.5); }).find("unreachable") != std::string::npos);
  // Logits: NaN / Inf throw, the message names the entry.
  std::vector<double> z = {0.1, 2.0, -1.0, 0.5, 0.0};
  CHECK(logits_to_score_checked(rou, z, 4, 0.5).size() == 5u);
  z[2] = std::numeric_limits<double>::infinity();
  CHECK(msg([&] { logits_to_score_checked(rou, z, 4, 0.5); }).find("z[2]") != std::string::npos);
  z[2] = std::nan("");
  CHECK_THROWS_AS(logits_to_score_checked(rou, z, 4, 0.5), std::invalid_argument);
  // State-dependent: ubar must hold N positive entries.
  const StateDependentMaskingGenerator<double> sd(4);
  CHECK(probs_to_score_checked(sd, f, 4, std::vector<double>{0.1, 0.2, 0.3, 0.4}).size() == 5u);
  CHECK_THROWS_AS(probs_to_score_checked(sd, f, 4, std::vector<double>{0.1, 0.2, 0.3}),
                  std::invalid_argument);
  CHECK_THROWS_AS(probs_to_score_checked(sd, f, 4, std::vector<double>{0.1, 0.0, 0.3, 0.4}),
                  std::invalid_argument);
}
