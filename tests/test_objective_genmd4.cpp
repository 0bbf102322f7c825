// GenMD4 with the two-sample REINFORCE leave-one-out surrogate (objective/genmd4.hpp,
// spec/MATH.md 5.4): the spot values of spec 12.4, the fused batch driver against its naive twin,
// central finite differences for both logits and for w / w_raw (surrogate with its stop-gradient
// held fixed), the reduction to MD4 at w = 1, and, by exact enumeration of every pair of masks,
// that the expected RLOO gradient is the gradient of the expected NELBO (the pathwise gradient
// alone is not).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <discdiff/exec/openmp.hpp>
#include <discdiff/exec/sequential.hpp>
#include <discdiff/objective/checked_xt.hpp>
#include <discdiff/schedule/schedules.hpp>

#include "tolerances.hpp"

using namespace discdiff;

namespace {

bool close(double a, double b, double rel, double abs = 0.0) {
  return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)) + abs;
}

std::vector<double> raw_from_w(const std::vector<double>& w) {
  std::vector<double> r(w.size());
  for (std::size_t v = 0; v < w.size(); ++v) r[v] = math::softplus_inverse(w[v]);
  return r;
}

struct Problem {
  int N, B, L, V;
  std::vector<double> w;
  xt::xtensor<int, 2> x0, z1, z2;
  xt::xtensor<double, 3> g1, g2;  // logits
  xt::xtensor<double, 1> t;
};

/// A random problem; every row has at least one masked and one unmasked position per draw.
Problem make_problem(int N, int B, int L, int V, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.3);
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  Problem p{N, B, L, V, {}, {}, {}, {}, {}, {}, {}};
  for (int v = 0; v < N; ++v) p.w.push_back(0.4 + 2.0 * ud(rng));
  const auto sB = std::size_t(B), sL = std::size_t(L), sV = std::size_t(V);
  p.x0 = xt::xtensor<int, 2>::from_shape({sB, sL});
  p.z1 = p.x0;
  p.z2 = p.x0;
  p.g1 = xt::xtensor<double, 3>::from_shape({sB, sL, sV});
  p.g2 = p.g1;
  p.t = xt::xtensor<double, 1>::from_shape({sB});
  for (int b = 0; b < B; ++b) {
    p.t(b) = 1e-3 + (1 - 1e-3) * (b + ud(rng)) / B;
    for (int l = 0; l < L; ++l) {
      const int a = static_cast<int>(rng() % std::uint64_t(N));
      p.x0(b, l) = a;
      p.z1(b, l) = (l == 0 || (l != 1 && ud(rng) < 0.5)) ? N : a;
      p.z2(b, l) = (l == 1 || (l != 0 && ud(rng) < 0.5)) ? N : a;
    }
  }
  for (auto& v : p.g1) v = nd(rng);
  for (auto& v : p.g2) v = nd(rng);
  return p;
}

GenMd4Result<double> run(const Problem& p, const std::vector<double>& w, GenMd4Options<double> opt = {}) {
  const PerTokenPolynomialSchedule<double> sched(raw_from_w(w));
  return genmd4_loss(sched, p.x0, p.z1, p.z2, p.g1, p.g2, p.t, opt);
}

}  // namespace

TEST_CASE("genmd4: the spot values of spec 12.4") {
  // V = N = 4, t = 0.37, w = (0.5, 1, 1.5, 2), logits cos(v), x0 = 2, eta = 1e-4.
  const int N = 4;
  const std::vector<double> w = {0.5, 1.0, 1.5, 2.0};
  std::vector<double> z(N), g(N);
  for (int v = 0; v < N; ++v) z[v] = std::cos(v);
  double lse = 0;
  const double l = genmd4_position(z.data(), N, N, 2, 0.37, w.data(), 1.0, g.data(), &lse);
  CHECK(l == doctest::Approx(6.896469488996896).epsilon(1e-13));
  CHECK(std::exp(z[0] - lse) == doctest::Approx(0.4973100145).epsilon(test::spot_rel_tol));
  CHECK(std::exp(z[3] - lse) == doctest::Approx(0.0679805141).epsilon(test::spot_rel_tol));
  const double dz[4] = {1.505826575477, 1.375267593405, -3.362531996509, 0.481437827627};
  for (int v = 0; v < N; ++v) CHECK(g[v] == doctest::Approx(dz[v]).epsilon(1e-11));

  // Through the batch driver: one position, both draws masked with the same logits, so
  // L_1 = L_2 = L, S = L + L_recon + L_prior and dS/dw = dL/dw + dL_recon/dw.
  Problem p{N, 1, 1, N, w, {{2}}, {{N}}, {{N}}, {}, {}, {0.37}};
  p.g1 = xt::xtensor<double, 3>::from_shape({1, 1, std::size_t(N)});
  for (int v = 0; v < N; ++v) p.g1(0, 0, v) = z[v];
  p.g2 = p.g1;
  const auto r = run(p, w);
  CHECK(r.loss1(0) == doctest::Approx(6.896469488996896).epsilon(1e-13));
  CHECK(r.loss2(0) == r.loss1(0));
  // Reconstruction at t_1 (independent evaluation): rho (-log pi_{t1}(2)).
  const double t1 = 1e-3, eta = 1e-4;
  double zsum = 0;
  for (int v = 0; v < N; ++v) zsum += std::pow(t1, w[v]);
  const double rho = (1 - eta) * std::pow(t1, w[2]);
  const double pi2 = std::pow(t1, w[2]) / zsum;
  CHECK(r.recon(0) == doctest::Approx(rho * -std::log(pi2)).epsilon(1e-13));
  CHECK(r.nelbo(0) == doctest::Approx(6.896469488996896 + r.recon(0) + eta * std::log(N)).epsilon(1e-13));
  CHECK(r.surrogate(0) == doctest::Approx(r.nelbo(0)).epsilon(1e-15));
  const double dw[4] = {1.344081120199, 0.848752973641, 3.338809144622, 0.183731119162};
  for (int v = 0; v < N; ++v) {
    // dL_recon/dw_v = rho log t1 ([v = 2](-log pi(2)) - ([v = 2] - pi(v))).
    const double piv = std::pow(t1, w[v]) / zsum, ind = v == 2 ? 1.0 : 0.0;
    const double drec = rho * std::log(t1) * (ind * -std::log(pi2) - (ind - piv));
    CHECK(r.grad_w(v) - drec == doctest::Approx(dw[v]).epsilon(1e-11));
  }
  // The surrogate carries a factor 0.5 per draw.
  for (int v = 0; v < N; ++v) {
    CHECK(r.grad_logits1(0, 0, v) == doctest::Approx(0.5 * dz[v]).epsilon(1e-11));
    CHECK(r.grad_logits2(0, 0, v) == doctest::Approx(0.5 * dz[v]).epsilon(1e-11));
  }
  // Score function of one position (spec 12.4): log t masked; -(1-eta) t^w log t/alpha unmasked.
  const PerTokenPolynomialSchedule<double> sched(raw_from_w(w));
  const auto view = sched.view();
  const double lt = std::log(0.37);
  CHECK(detail::genmd4::dlogq_dw(view, 0.37, lt, 2, true) ==
        doctest::Approx(-0.994252273344).epsilon(1e-11));
  CHECK(detail::genmd4::dlogq_dw(view, 0.37, lt, 2, false) ==
        doctest::Approx(0.288719619329).epsilon(1e-11));
  // MD4 comparison of spec 12.4: with every w_v = 1, L_k = (1/t)(-log mu_a).
  const std::vector<double> ones(N, 1.0);
  const double l1 = genmd4_position(z.data(), N, N, 2, 0.37, ones.data(), 1.0, g.data(), &lse);
  CHECK(l1 * 0.37 == doctest::Approx(2.1146885123).epsilon(test::spot_rel_tol));
}

TEST_CASE("genmd4: fused batch driver == naive reference; OpenMP == sequential bit for bit") {
  for (int V : {7, 8}) {
    const Problem p = make_problem(7, 5, 6, V, 40 + V);
    const PerTokenPolynomialSchedule<double> sched(raw_from_w(p.w));
    GenMd4Options<double> opt;
    opt.grad_scale = 0.2;
    const auto r = genmd4_loss(sched, p.x0, p.z1, p.z2, p.g1, p.g2, p.t, opt);
    const auto ro = genmd4_loss(sched, p.x0, p.z1, p.z2, p.g1, p.g2, p.t, opt, OpenMPExecutor{3});
    // naive
    const std::size_t BL = std::size_t(p.B * p.L);
    std::vector<double> gl1(BL * V), gl2(BL * V), gw(p.N), out(7 * p.B);
    GenMd4Batch<double> bt;
    bt.B = p.B;
    bt.L = p.L;
    bt.V = V;
    bt.x0 = p.x0.data();
    bt.z[0] = p.z1.data();
    bt.z[1] = p.z2.data();
    bt.logits[0] = p.g1.data();
    bt.logits[1] = p.g2.data();
    bt.t = p.t.data();
    bt.grad[0] = gl1.data();
    bt.grad[1] = gl2.data();
    bt.grad_w = gw.data();
    bt.loss[0] = out.data();
    bt.loss[1] = out.data() + p.B;
    bt.log_q[0] = out.data() + 2 * p.B;
    bt.log_q[1] = out.data() + 3 * p.B;
    bt.recon = out.data() + 4 * p.B;
    bt.surrogate = out.data() + 5 * p.B;
    bt.nelbo = out.data() + 6 * p.B;
    genmd4_loss_naive(sched.view(), bt, opt);
    for (int b = 0; b < p.B; ++b) {
      CHECK(close(r.loss1(b), out[b], 1e-13));
      CHECK(close(r.loss2(b), out[p.B + b], 1e-13));
      CHECK(close(r.log_q1(b), out[2 * p.B + b], 1e-13));
      CHECK(close(r.log_q2(b), out[3 * p.B + b], 1e-13));
      CHECK(close(r.recon(b), out[4 * p.B + b], 1e-13));
      CHECK(close(r.surrogate(b), out[5 * p.B + b], 1e-13));
      CHECK(close(r.nelbo(b), out[6 * p.B + b], 1e-13));
      CHECK(r.surrogate(b) == ro.surrogate(b));
      CHECK(r.nelbo(b) == ro.nelbo(b));
    }
    for (std::size_t i = 0; i < gl1.size(); ++i) {
      CHECK(close(r.grad_logits1.data()[i], gl1[i], 1e-12, 1e-15));
      CHECK(close(r.grad_logits2.data()[i], gl2[i], 1e-12, 1e-15));
      CHECK(r.grad_logits1.data()[i] == ro.grad_logits1.data()[i]);
      CHECK(r.grad_logits2.data()[i] == ro.grad_logits2.data()[i]);
    }
    for (int v = 0; v < p.N; ++v) {
      CHECK(close(r.grad_w(v), gw[v], 1e-12, 1e-14));
      CHECK(r.grad_w(v) == ro.grad_w(v));
      CHECK(r.grad_w_raw(v) == doctest::Approx(r.grad_w(v) / (1 + std::exp(-sched.w_raw()[v]))).epsilon(1e-14));
    }
    // The MASK column of V = N + 1 logits is ignored.
    if (V == p.N + 1)
      for (int b = 0; b < p.B; ++b)
        for (int l = 0; l < p.L; ++l) CHECK(r.grad_logits1(b, l, p.N) == 0.0);
  }
}

TEST_CASE("genmd4: logits gradients match finite differences of the NELBO") {
  // The stop-gradient term does not depend on the logits' gradient path, so dS/dlogits is the
  // derivative of 0.5 (L_1 + L_2) (+ constants) = the NELBO.
  Problem p = make_problem(5, 3, 4, 5, 7);
  const auto base = run(p, p.w);
  for (int k = 0; k < 2; ++k) {
    auto& z = k == 0 ? p.g1 : p.g2;
    const auto& g = k == 0 ? base.grad_logits1 : base.grad_logits2;
    double scale = 0;
    for (double v : g) scale = std::max(scale, std::abs(v));
    REQUIRE(scale > 0);
    for (std::size_t i = 0; i < z.size(); ++i) {
      const double h = 1e-5, z0 = z.data()[i];
      double f[2];
      for (int s = 0; s < 2; ++s) {
        z.data()[i] = z0 + (s ? -h : h);
        const auto r = run(p, p.w);
        f[s] = 0;
        for (int b = 0; b < p.B; ++b) f[s] += r.nelbo(b);
      }
      z.data()[i] = z0;
      CAPTURE(k);
      CAPTURE(i);
      CHECK(std::abs((f[0] - f[1]) / (2 * h) - g.data()[i]) <= test::fd_rel_tol * scale);
    }
  }
}

TEST_CASE("genmd4: w and w_raw gradients match finite differences of the surrogate") {
  // S(w) = 0.5 (L_1(w) + L_2(w)) + 0.5 [L_1 - L_2]_{w0} (log q_1(w) - log q_2(w)) + L_recon(w)
  //        + L_prior, with the bracket held at w0 (the stop-gradient).
  for (std::uint64_t seed : {3u, 4u}) {
    const Problem p = make_problem(6, 4, 5, 6, seed);
    const auto base = run(p, p.w);
    auto surrogate = [&](const std::vector<double>& w) {
      const auto r = run(p, w);
      double s = 0;
      for (int b = 0; b < p.B; ++b)
        s += 0.5 * (r.loss1(b) + r.loss2(b)) +
             0.5 * (base.loss1(b) - base.loss2(b)) * (r.log_q1(b) - r.log_q2(b)) + r.recon(b);
      return s;
    };
    double scale = 0;
    for (double v : base.grad_w) scale = std::max(scale, std::abs(v));
    const auto raw0 = raw_from_w(p.w);
    for (int v = 0; v < p.N; ++v) {
      const double h = 1e-6;
      auto wp = p.w, wm = p.w;
      wp[v] += h;
      wm[v] -= h;
      const double fd = (surrogate(wp) - surrogate(wm)) / (2 * h);
      CAPTURE(v);
      CHECK(std::abs(fd - base.grad_w(v)) <= test::fd_rel_tol * std::max(scale, std::abs(fd)));
      // w_raw: chain rule through softplus.
      auto rp = raw0, rm = raw0;
      rp[v] += h;
      rm[v] -= h;
      std::vector<double> wrp(p.N), wrm(p.N);
      for (int j = 0; j < p.N; ++j) {
        wrp[j] = math::softplus(rp[j]);
        wrm[j] = math::softplus(rm[j]);
      }
      const double fdr = (surrogate(wrp) - surrogate(wrm)) / (2 * h);
      CHECK(std::abs(fdr - base.grad_w_raw(v)) <= test::fd_rel_tol * std::max(scale, std::abs(fdr)));
    }
  }
}

namespace {

/// Logits as a deterministic function of the network input (the masked sequence).
std::vector<double> net(const std::vector<int>& z, int N) {
  std::vector<double> out(z.size() * std::size_t(N));
  int key = 0;
  for (int zi : z) key = key * (N + 1) + zi;
  for (std::size_t l = 0; l < z.size(); ++l)
    for (int v = 0; v < N; ++v) out[l * N + v] = std::sin(1.0 + 0.7 * key + 2.3 * l + 1.9 * v);
  return out;
}

}  // namespace

TEST_CASE("genmd4: the expected RLOO gradient is the gradient of the expected NELBO (enumeration)") {
  // x0 fixed, t fixed; z1, z2 independent masks from q(.|x0; w); the logits depend on the mask.
  // E_{z1,z2}[dS/dw] = d/dw ( E_z[L(z; w)] + L_recon(w) ), checked against finite differences of
  // the exact expectation over the 2^L masks. The pathwise term alone is biased.
  const int N = 3, L = 3;
  const std::vector<int> x0 = {0, 2, 2};
  const std::vector<double> w = {0.6, 1.7, 1.1};
  const double t = 0.45;
  const int nm = 1 << L;
  auto mask_seq = [&](int m) {
    std::vector<int> z(L);
    for (int l = 0; l < L; ++l) z[l] = (m >> l & 1) ? N : x0[l];
    return z;
  };
  auto one = [&](int m1, int m2, const std::vector<double>& ww) {
    Problem p{N, 1, L, N, ww, {}, {}, {}, {}, {}, {t}};
    p.x0 = xt::xtensor<int, 2>::from_shape({1, std::size_t(L)});
    p.z1 = p.x0;
    p.z2 = p.x0;
    p.g1 = xt::xtensor<double, 3>::from_shape({1, std::size_t(L), std::size_t(N)});
    p.g2 = p.g1;
    const auto z1 = mask_seq(m1), z2 = mask_seq(m2);
    const auto o1 = net(z1, N), o2 = net(z2, N);
    for (int l = 0; l < L; ++l) {
      p.x0(0, l) = x0[l];
      p.z1(0, l) = z1[l];
      p.z2(0, l) = z2[l];
    }
    std::copy(o1.begin(), o1.end(), p.g1.begin());
    std::copy(o2.begin(), o2.end(), p.g2.begin());
    return run(p, ww);
  };
  // Exact E_z[0.5 (L_1 + L_2)] + L_recon = E_z[L(z)] + L_recon at w.
  auto expected_nelbo = [&](const std::vector<double>& ww) {
    double e = 0, recon = 0;
    for (int m = 0; m < nm; ++m) {
      const auto r = one(m, m, ww);
      e += std::exp(r.log_q1(0)) * r.loss1(0);
      recon = r.recon(0);
    }
    return e + recon;
  };
  std::vector<double> grad(N, 0.0), path(N, 0.0);
  double qsum = 0;
  for (int m1 = 0; m1 < nm; ++m1)
    for (int m2 = 0; m2 < nm; ++m2) {
      const auto r = one(m1, m2, w);
      const double q = std::exp(r.log_q1(0) + r.log_q2(0));
      qsum += q;
      for (int v = 0; v < N; ++v) grad[v] += q * r.grad_w(v);
    }
  CHECK(qsum == doctest::Approx(1.0).epsilon(1e-13));
  // Pathwise-only: the same with the score-function term removed (the draws' log q held fixed).
  for (int m1 = 0; m1 < nm; ++m1)
    for (int m2 = 0; m2 < nm; ++m2) {
      const double h = 1e-6;
      const auto r0 = one(m1, m2, w);
      const double q = std::exp(r0.log_q1(0) + r0.log_q2(0));
      for (int v = 0; v < N; ++v) {
        auto wp = w, wm = w;
        wp[v] += h;
        wm[v] -= h;
        const auto rp = one(m1, m2, wp), rm = one(m1, m2, wm);
        path[v] += q * 0.5 * ((rp.loss1(0) + rp.loss2(0)) - (rm.loss1(0) + rm.loss2(0))) / (2 * h);
      }
    }
  double max_bias = 0;
  for (int v = 0; v < N; ++v) {
    const double h = 1e-6;
    auto wp = w, wm = w;
    wp[v] += h;
    wm[v] -= h;
    const double fd = (expected_nelbo(wp) - expected_nelbo(wm)) / (2 * h);
    // Remove the reconstruction gradient (identical in every draw) for the pathwise comparison.
    const double drec = (one(0, 0, wp).recon(0) - one(0, 0, wm).recon(0)) / (2 * h);
    CAPTURE(v);
    CHECK(std::abs(grad[v] - fd) <= test::fd_rel_tol * std::max(1.0, std::abs(fd)));
    max_bias = std::max(max_bias, std::abs(path[v] + drec - fd));
  }
  CHECK(max_bias > 1e-2);  // the pathwise-only gradient is biased (spec 5.4)
}

TEST_CASE("genmd4: with every w_v = 1 the diffusion term is MD4's (1/t) sum -log mu") {
  const Problem p0 = make_problem(5, 3, 4, 5, 21);
  const std::vector<double> ones(5, 1.0);
  const auto r = run(p0, ones);
  for (int b = 0; b < p0.B; ++b) {
    double want = 0;
    for (int l = 0; l < p0.L; ++l)
      if (p0.z1(b, l) == p0.N) {
        const double* z = p0.g1.data() + (b * p0.L + l) * p0.V;
        want += (math::logsumexp(z, p0.N) - z[p0.x0(b, l)]) / p0.t(b);
      }
    CHECK(r.loss1(b) == doctest::Approx(want).epsilon(1e-13));
  }
}

TEST_CASE("genmd4: the per-position loss keeps its relative accuracy as mu -> delta_a") {
  // L = (1/t) [ w_a (-log mu_a - (1 - mu_a)) + sum_{v != a} w_v mu_v ] with mu_a -> 1: compare
  // with a long double evaluation of the same expression.
  const int N = 6;
  const std::vector<double> w = {0.5, 1.2, 2.0, 0.8, 1.5, 3.0};
  const std::vector<float> wf(w.begin(), w.end());
  for (double gap : {3.0, 8.0, 15.0, 30.0}) {
    std::vector<double> z(N), g(N);
    std::vector<float> zf(N), gf(N);
    for (int v = 0; v < N; ++v) z[v] = -gap + 0.3 * v;
    z[2] = 0.0;
    for (int v = 0; v < N; ++v) zf[v] = static_cast<float>(z[v]);
    long double sum = 0, want = 0;
    for (int v = 0; v < N; ++v) sum += std::exp(static_cast<long double>(z[v]));
    long double q = 0;
    for (int v = 0; v < N; ++v)
      if (v != 2) {
        const long double mu = std::exp(static_cast<long double>(z[v])) / sum;
        q += mu;
        want += w[v] * mu;
      }
    want += w[2] * (-std::log1p(-q) - q);
    want /= 0.4L;
    double lse = 0;
    float lsef = 0;
    const double l = genmd4_position(z.data(), N, N, 2, 0.4, w.data(), 1.0, g.data(), &lse);
    const float lf = genmd4_position(zf.data(), N, N, 2, 0.4f, wf.data(), 1.0f, gf.data(), &lsef);
    CAPTURE(gap);
    CHECK(l > 0);
    CHECK(std::abs(l - static_cast<double>(want)) <= 1e-14 * static_cast<double>(want));
    CHECK(std::abs(lf - static_cast<double>(want)) <= 1e-5 * static_cast<double>(want));
  }
}
