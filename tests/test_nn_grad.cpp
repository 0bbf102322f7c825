// nn/ layers and the whole transformer against central finite differences (double):
// every layer's backward (linear, LayerNorm/RMSNorm + adaLN modulation, gated residual,
// GELU, SiLU, embedding, RoPE, attention bidirectional/causal, attention with RoPE,
// the losses) and the gradient of the full model's loss for every parameter tensor.
// Also: optimised kernels against their naive references, the parameter count of
// MODELS.md 1.3, and the adaLN-zero initialisation.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <discdiff/core/random.hpp>
#include <discdiff/nn/nn.hpp>

using namespace discdiff;
using namespace discdiff::nn;

namespace {

// The host backend with every kernel parallel (min_work 0).
const HostBackend be = make_host_backend(0, 0);

// Central differences in double: step, and the allowed |fd - analytic| <= abs + rel |analytic|.
constexpr double kFdStep = 1e-5;
constexpr double kFdAbs = 2e-8;
constexpr double kFdRel = 1e-6;

std::vector<double> rand_vec(std::size_t n, std::uint64_t seed, double lo = -1, double hi = 1) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    CounterRng r(seed, 7, i);
    v[i] = lo + (hi - lo) * r.uniform<double>();
  }
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

/// Compare analytic[i] with the central difference of loss() in x[i] for the indices
/// [begin, end) (at most max_checks of them, evenly spaced).
template <class Vec>
void check_fd(const std::string& what, Vec& x, const std::vector<double>& analytic,
              const std::function<double()>& loss, std::size_t begin = 0,
              std::size_t end = std::size_t(-1), std::size_t max_checks = 64) {
  if (end > x.size()) end = x.size();
  const std::size_t n = end - begin;
  const std::size_t stride = n > max_checks ? (n + max_checks - 1) / max_checks : 1;
  int bad = 0;
  for (std::size_t i = begin; i < end; i += stride) {
    const double x0 = x[i];
    x[i] = x0 + kFdStep;
    const double lp = loss();
    x[i] = x0 - kFdStep;
    const double lm = loss();
    x[i] = x0;
    const double fd = (lp - lm) / (2 * kFdStep);
    const double an = analytic[i];
    if (!(std::abs(fd - an) <= kFdAbs + kFdRel * std::abs(an))) {
      if (++bad <= 5) {
        INFO(what << "[" << i - begin << "]: fd = " << fd << ", analytic = " << an);
        CHECK(false);
      }
    }
  }
  INFO(what);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("nn: gemm (Eigen/BLAS) matches the naive reference for every transpose") {
  const int M = 7, N = 5, K = 9;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      auto A = rand_vec(std::size_t(M) * K, 1), Bm = rand_vec(std::size_t(K) * N, 2);
      auto C1 = rand_vec(std::size_t(M) * N, 3), C2 = C1;
      const int lda = ta ? M : K, ldb = tb ? K : N;
      HostGemm{}.gemm<double>(ta, tb, M, N, K, 0.5, A.data(), lda, Bm.data(), ldb, 1.0, C1.data(), N);
      gemm_naive<double>(ta, tb, M, N, K, 0.5, A.data(), lda, Bm.data(), ldb, 1.0, C2.data(), N);
      for (std::size_t i = 0; i < C1.size(); ++i) CHECK(C1[i] == doctest::Approx(C2[i]).epsilon(1e-13));
    }
}

TEST_CASE("nn: linear layer gradients (finite differences)") {
  const int N = 6, C = 5, OC = 4;
  auto x = rand_vec(N * C, 11), W = rand_vec(OC * C, 12), b = rand_vec(OC, 13), R = rand_vec(N * OC, 14);
  std::vector<double> y(N * OC);
  auto loss = [&] { linear_forward(be, y.data(), x.data(), W.data(), b.data(), N, C, OC); return dot(y, R); };
  std::vector<double> dx(N * C), dW(OC * C, 0.0), db(OC, 0.0);
  linear_backward(be, dx.data(), dW.data(), db.data(), R.data(), x.data(), W.data(), N, C, OC);
  check_fd("linear dx", x, dx, loss);
  check_fd("linear dW", W, dW, loss);
  check_fd("linear db", b, db, loss);
}

TEST_CASE("nn: LayerNorm/RMSNorm + adaLN modulation gradients (finite differences)") {
  for (NormType nt : {NormType::layer_norm, NormType::rms_norm})
    for (bool modulated : {true, false}) {
      const int B = 2, L = 3, C = 6;
      const long ms = 6L * C;  // stride as in a block's split6
      auto x = rand_vec(B * L * C, 21, -2, 2), g = rand_vec(C, 22, 0.5, 1.5);
      auto mod = rand_vec(B * ms, 23, -0.5, 0.5), R = rand_vec(B * L * C, 24);
      std::vector<double> out(B * L * C), xhat(B * L * C), rstd(B * L);
      const double* sh = modulated ? mod.data() + 3 * C : nullptr;
      const double* sc = modulated ? mod.data() + 4 * C : nullptr;
      auto loss = [&] {
        norm_mod_forward(be, out.data(), xhat.data(), rstd.data(), x.data(), g.data(),
                         modulated ? mod.data() + 3 * C : nullptr,
                         modulated ? mod.data() + 4 * C : nullptr, B, L, C, ms, nt, 1e-5);
        return dot(out, R);
      };
      loss();
      std::vector<double> dx(B * L * C, 0.0), dg(C, 0.0), dmod(B * ms, 0.0), part(2 * B * C);
      norm_mod_backward(be, dx.data(), dg.data(), modulated ? dmod.data() + 3 * C : nullptr,
                        modulated ? dmod.data() + 4 * C : nullptr, part.data(), R.data(),
                        xhat.data(), rstd.data(), g.data(), sc, B, L, C, ms, nt);
      (void)sh;
      const std::string tag = std::string(nt == NormType::layer_norm ? "LN" : "RMS") +
                              (modulated ? "+mod" : "");
      check_fd(tag + " dx", x, dx, loss);
      check_fd(tag + " dg", g, dg, loss);
      if (modulated) check_fd(tag + " dshift/dscale", mod, dmod, loss);
    }
}

TEST_CASE("nn: gated residual, GELU, SiLU, embedding gradients (finite differences)") {
  const int B = 2, L = 3, C = 4;
  const long ms = 6L * C;
  {
    auto x = rand_vec(B * L * C, 31), F = rand_vec(B * L * C, 32), gate = rand_vec(B * ms, 33),
         R = rand_vec(B * L * C, 34);
    std::vector<double> out(B * L * C);
    auto loss = [&] {
      gated_residual_forward(be, out.data(), x.data(), F.data(), gate.data() + 2 * C, B, L, C, ms);
      return dot(out, R);
    };
    std::vector<double> dF(B * L * C), dgate(B * ms, 0.0);
    gated_residual_backward(be, dF.data(), dgate.data() + 2 * C, R.data(), F.data(), gate.data() + 2 * C,
                            B, L, C, ms);
    check_fd("gated residual dF", F, dF, loss);
    check_fd("gated residual dgate", gate, dgate, loss);
    check_fd("gated residual dx", x, R, loss);
  }
  {
    auto x = rand_vec(40, 35, -4, 4), R = rand_vec(40, 36);
    std::vector<double> y(40), dx(40);
    auto lg = [&] { gelu_forward(be, y.data(), x.data(), 40); return dot(y, R); };
    gelu_backward(be, dx.data(), R.data(), x.data(), 40);
    check_fd("gelu", x, dx, lg);
    std::vector<double> y2(40), dx2(40);
    gelu_forward(be, y.data(), x.data(), 40);
    gelu_forward_naive(y2.data(), x.data(), 40);
    gelu_backward(be, dx.data(), R.data(), x.data(), 40);
    gelu_backward_naive(dx2.data(), R.data(), x.data(), 40);
    for (int i = 0; i < 40; ++i) {
      CHECK(y[i] == doctest::Approx(y2[i]).epsilon(1e-13));
      CHECK(dx[i] == doctest::Approx(dx2[i]).epsilon(1e-13));
    }
    // float (the AVX2 path where the CPU has it), including a tail of 40 mod 8 = 0 and
    // 4099 mod 8 = 3 elements across two chunks
    for (long n : {40L, 4099L}) {
      auto xd = rand_vec(std::size_t(n), 36, -6, 6), gd = rand_vec(std::size_t(n), 37);
      std::vector<float> xf(xd.begin(), xd.end()), gf(gd.begin(), gd.end()), yf(n), df(n);
      gelu_forward(be, yf.data(), xf.data(), n);
      gelu_backward(be, df.data(), gf.data(), xf.data(), n);
      // reference: the naive kernels in double on the same float inputs
      std::vector<double> xr(xf.begin(), xf.end()), gr(gf.begin(), gf.end()), yr(n), dr(n);
      gelu_forward_naive(yr.data(), xr.data(), n);
      gelu_backward_naive(dr.data(), gr.data(), xr.data(), n);
      double worst = 0;  // error in units of float epsilon x (1 + |value|)
      for (long i = 0; i < n; ++i) {
        worst = std::max(worst, std::abs(yf[i] - yr[i]) / (1.1920929e-7 * (1 + std::abs(yr[i]))));
        worst = std::max(worst, std::abs(df[i] - dr[i]) / (1.1920929e-7 * (1 + std::abs(dr[i]))));
      }
      INFO("float GELU vs double naive, n = " << n << ": worst error " << worst << " eps (1 + |y|)");
      CHECK(worst < 16);
    }
    {  // the fused fc1 bias + GELU equals adding the bias, then gelu_forward (to rounding:
       // Eigen's path may take a packet or a scalar tail for an element, by position)
      const long N = 3;
      const int F = 37;
      auto fd = rand_vec(std::size_t(N) * F, 38, -4, 4), bd = rand_vec(F, 39);
      std::vector<float> f1(fd.begin(), fd.end()), b(bd.begin(), bd.end()), f2 = f1, y1(N * F), y2(N * F);
      bias_gelu_forward(be, y1.data(), f1.data(), b.data(), N, F);
      for (long n = 0; n < N; ++n)
        for (int c = 0; c < F; ++c) f2[n * F + c] += b[c];
      gelu_forward(be, y2.data(), f2.data(), N * F);
      CHECK(f1 == f2);
      for (long i = 0; i < N * F; ++i) CHECK(y1[i] == doctest::Approx(y2[i]).epsilon(1e-6));
    }
    for (MlpType m : {MlpType::swiglu, MlpType::geglu}) {  // gated units over rows [a, b]
      const int rows = 4, F = 5;
      auto u = rand_vec(rows * 2 * F, 39, -3, 3), Rg = rand_vec(rows * F, 40);
      std::vector<double> yg(rows * F), du(rows * 2 * F);
      auto lgl = [&] { glu_forward(be, yg.data(), u.data(), rows, F, m); return dot(yg, Rg); };
      glu_backward(be, du.data(), Rg.data(), u.data(), rows, F, m);
      check_fd(m == MlpType::swiglu ? "swiglu" : "geglu", u, du, lgl);
      lgl();
      const double a = u[2 * F + 1], b = u[2 * F + F + 1];  // row 1, unit 1
      const double act = m == MlpType::swiglu ? a / (1 + std::exp(-a))
                                              : 0.5 * a * (1 + std::tanh(0.7978845608028654 * (a + 0.044715 * a * a * a)));
      CHECK(yg[F + 1] == doctest::Approx(act * b).epsilon(1e-13));
    }
    auto ls = [&] { silu_forward(be, y.data(), x.data(), 40); return dot(y, R); };
    silu_backward(be, dx.data(), R.data(), x.data(), 40);
    check_fd("silu", x, dx, ls);
  }
  {
    const int V = 5, N = 7;
    std::vector<int> tok = {0, 3, 3, 4, 1, 3, 0};
    auto E = rand_vec(V * C, 37), R = rand_vec(N * C, 38);
    std::vector<double> h(N * C), dE(V * C, 0.0);
    auto loss = [&] { embedding_forward(be, h.data(), tok.data(), E.data(), N, C); return dot(h, R); };
    embedding_backward(be, dE.data(), tok.data(), R.data(), N, C);
    check_fd("embedding", E, dE, loss);
  }
}

TEST_CASE("nn: dropout keeps 1 - p of the values, scaled by 1/(1 - p), as a pure function of the key") {
  const long N = 64;
  const int C = 32;
  const double p = 0.25;
  std::vector<double> x(N * C, 1.0), y = x, z = x, w = x;
  std::vector<unsigned char> k1(N * C), k2(N * C), k3(N * C);
  dropout_forward(be, y.data(), k1.data(), N, C, p, 5, 9, 1);
  dropout_forward(be, z.data(), k2.data(), N, C, p, 5, 9, 1);
  dropout_forward(be, w.data(), k3.data(), N, C, p, 5, 10, 1);  // next step
  CHECK(y == z);
  CHECK(k1 != k3);
  long kept = 0;
  for (long i = 0; i < N * C; ++i) {
    kept += k1[i];
    CHECK(y[i] == (k1[i] ? 1.0 / (1.0 - p) : 0.0));
  }
  // binomial(2048, 0.75): mean 1536, sd 19.6; allow 5 sd
  CHECK(std::abs(double(kept) - 0.75 * N * C) < 5 * std::sqrt(N * C * p * (1 - p)));
  // p = 0 keeps everything
  std::vector<double> v = x;
  dropout_forward(be, v.data(), k3.data(), N, C, 0.0, 5, 9, 1);
  CHECK(v == x);
  // backward: the same mask and scale (finite differences of a linear function)
  auto xs = rand_vec(N * C, 71), R = rand_vec(N * C, 72);
  std::vector<double> out;
  auto loss = [&] { out = xs; dropout_forward(be, out.data(), k2.data(), N, C, p, 5, 9, 1); return dot(out, R); };
  std::vector<double> dx = R;
  dropout_backward(be, dx.data(), k1.data(), N, C, p);
  check_fd("dropout", xs, dx, loss);
  // a rate outside [0, 1) is rejected
  ModelConfig cfg;
  cfg.dropout = 1.0;
  CHECK_THROWS_AS(cfg.validate(), std::invalid_argument);
  cfg.dropout = -0.1;
  CHECK_THROWS_AS(cfg.validate(), std::invalid_argument);
}

TEST_CASE("nn: RoPE is a rotation (rotate-half) and its backward is the inverse rotation") {
  const int B = 2, L = 5, C = 8, H = 2;
  RopeTables<double> rt(L, C / H, 10000.0);
  auto qkv = rand_vec(B * L * 3 * C, 41), R = rand_vec(B * L * 3 * C, 42);
  std::vector<double> y;
  auto loss = [&] { y = qkv; rope_apply(be, y.data(), rt, B, L, C, H, false); return dot(y, R); };
  std::vector<double> d = R;
  rope_apply(be, d.data(), rt, B, L, C, H, true);
  check_fd("rope", qkv, d, loss);
  // explicit convention check at position p = 3 (b = 0), head 1, pair k = 1: (k, k + hd/2)
  y = qkv;
  rope_apply(be, y.data(), rt, B, L, C, H, false);
  const int hd = C / H, p = 3, h = 1, k = 1;
  const double th = p * std::pow(10000.0, -2.0 * k / hd);
  const std::size_t base = std::size_t(p) * 3 * C + std::size_t(h) * hd;
  const double x1 = qkv[base + k], x2 = qkv[base + k + hd / 2];
  CHECK(y[base + k] == doctest::Approx(x1 * std::cos(th) - x2 * std::sin(th)));
  CHECK(y[base + k + hd / 2] == doctest::Approx(x2 * std::cos(th) + x1 * std::sin(th)));
  // v is not rotated
  for (int c = 0; c < C; ++c) CHECK(y[base - std::size_t(h) * hd + 2 * C + c] == qkv[base - std::size_t(h) * hd + 2 * C + c]);
}

TEST_CASE("nn: attention (bidirectional, causal, with RoPE) gradients and naive twins") {
  for (bool causal : {false, true})
    for (bool rope : {false, true}) {
      const int B = 2, L = 5, C = 8, H = 2;
      RopeTables<double> rt(L, C / H, 10000.0);
      auto qkv = rand_vec(B * L * 3 * C, 51, -1.5, 1.5), R = rand_vec(B * L * C, 52);
      std::vector<double> rq, out(B * L * C), att(B * H * L * L);
      auto loss = [&] {
        rq = qkv;
        if (rope) rope_apply(be, rq.data(), rt, B, L, C, H, false);
        attention_forward(be, out.data(), att.data(), rq.data(), B, L, C, H, causal);
        return dot(out, R);
      };
      loss();
      std::vector<double> dqkv(B * L * 3 * C), scratch(std::size_t(B) * H * L * L);
      attention_backward(be, dqkv.data(), scratch.data(), R.data(), att.data(), rq.data(), B, L, C, H);
      // naive twins
      std::vector<double> out2(out.size()), att2(att.size()), dqkv2(dqkv.size());
      attention_forward_naive(out2.data(), att2.data(), rq.data(), B, L, C, H, causal);
      attention_backward_naive(dqkv2.data(), R.data(), att2.data(), rq.data(), B, L, C, H);
      for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == doctest::Approx(out2[i]).epsilon(1e-12));
      for (std::size_t i = 0; i < att.size(); ++i) REQUIRE(att[i] == doctest::Approx(att2[i]).epsilon(1e-12));
      for (std::size_t i = 0; i < dqkv.size(); ++i) REQUIRE(dqkv[i] == doctest::Approx(dqkv2[i]).epsilon(1e-12));
      if (causal)  // the future never leaks: P[i, j] = 0 for j > i
        for (int i = 0; i < L; ++i)
          for (int j = i + 1; j < L; ++j) CHECK(att[std::size_t(i) * L + j] == 0.0);
      if (rope) rope_apply(be, dqkv.data(), rt, B, L, C, H, true);
      check_fd(std::string("attention") + (causal ? " causal" : " bidirectional") +
                   (rope ? " + rope" : ""), qkv, dqkv, loss, 0, std::size_t(-1), 400);
    }
}

TEST_CASE("nn: float attention (AVX2 softmax where available) matches the naive reference") {
  for (bool causal : {false, true})
    for (int L : {5, 13, 40}) {  // row lengths with and without a tail of 8
      const int B = 2, C = 16, H = 2;
      auto qd = rand_vec(std::size_t(B) * L * 3 * C, 53, -3, 3);
      std::vector<float> qkv(qd.begin(), qd.end()), out(std::size_t(B) * L * C),
          att(std::size_t(B) * H * L * L);
      attention_forward(be, out.data(), att.data(), qkv.data(), B, L, C, H, causal);
      // reference: the naive kernel in double on the same float inputs
      std::vector<double> qr(qkv.begin(), qkv.end()), out2(out.size()), att2(att.size());
      attention_forward_naive(out2.data(), att2.data(), qr.data(), B, L, C, H, causal);
      double worst = 0;  // probabilities: eps (|p| + 1e-6); outputs: eps (1 + |o|)
      for (std::size_t i = 0; i < att.size(); ++i)
        worst = std::max(worst, std::abs(att[i] - att2[i]) / (1.1920929e-7 * (1e-6 + std::abs(att2[i]))));
      for (std::size_t i = 0; i < out.size(); ++i)
        worst = std::max(worst, std::abs(out[i] - out2[i]) / (1.1920929e-7 * (1 + std::abs(out2[i]))));
      INFO("L = " << L << (causal ? " causal" : "") << ": worst error " << worst << " eps");
      CHECK(worst < 256);
      if (causal)
        for (int i = 0; i < L; ++i)
          for (int j = i + 1; j < L; ++j) CHECK(att[std::size_t(i) * L + j] == 0.0f);
    }
}

TEST_CASE("nn: losses and their logit gradients (finite differences)") {
  const int B = 2, L = 4, V = 6;
  auto z = rand_vec(B * L * V, 61, -3, 3);
  std::vector<int> tok = {1, 5, 2, 0, 3, 3, 4, 1};
  std::vector<unsigned char> mask = {1, 0, 1, 1, 0, 0, 1, 0};
  std::vector<double> g(z.size());
  masked_cross_entropy(be, z.data(), tok.data(), mask.data(), B * L, V, g.data());
  check_fd("masked CE", z, g, [&] { return masked_cross_entropy(be, z.data(), tok.data(), mask.data(), B * L, V, (double*)nullptr); });
  causal_cross_entropy(be, z.data(), tok.data(), B, L, V, g.data());
  check_fd("causal CE", z, g, [&] { return causal_cross_entropy(be, z.data(), tok.data(), B, L, V, (double*)nullptr); });
}

namespace {
ModelConfig tiny_config(bool time_cond, bool causal, NormType nt = NormType::layer_norm) {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.d_model = 8;
  c.d_ff = 16;
  c.seq_len = 6;
  c.vocab_in = 7;
  c.vocab_out = causal ? 6 : 7;
  c.cond_dim = 6;
  c.temb_dim = 8;
  c.time_cond = time_cond;
  c.causal = causal;
  c.norm = nt;
  return c;
}

/// Random parameters everywhere (gates and head nonzero, unlike init()).
template <class T>
void randomize(Transformer<T>& net, std::uint64_t seed) {
  for (const auto& t : net.layout().tensors) {
    const bool norm_w = t.name.find("ln") != std::string::npos && t.cols == 1;
    const double bound = t.cols > 1 ? 1.0 / std::sqrt(double(t.cols)) : 0.3;
    for (std::size_t i = 0; i < t.size(); ++i) {
      CounterRng r(seed, 9, t.offset + i);
      const double u = 2 * r.uniform<double>() - 1;
      net.params()[t.offset + i] = T(norm_w ? 1 + 0.2 * u : (t.name == "tok_emb" ? u : 1.5 * bound * u));
    }
  }
}
}  // namespace

TEST_CASE("nn: whole-model gradients for every parameter tensor (finite differences)") {
  struct Case { bool tc, causal; NormType nt; double dropout; MlpType mlp; bool zt = false; };
  const auto LN = NormType::layer_norm, RMS = NormType::rms_norm;
  for (Case cs : {Case{true, false, LN, 0.0, MlpType::gelu}, Case{false, true, LN, 0.0, MlpType::gelu},
                  Case{true, false, RMS, 0.0, MlpType::gelu}, Case{true, true, LN, 0.0, MlpType::gelu},
                  Case{true, false, LN, 0.3, MlpType::gelu}, Case{true, false, RMS, 0.0, MlpType::swiglu},
                  Case{false, true, LN, 0.0, MlpType::geglu},
                  Case{true, false, LN, 0.0, MlpType::gelu, true},     // time-independent (sbar = 0)
                  Case{false, false, LN, 0.0, MlpType::gelu}}) {      // plain bidirectional blocks
    ModelConfig cfg = tiny_config(cs.tc, cs.causal, cs.nt);
    cfg.dropout = cs.dropout;
    cfg.mlp = cs.mlp;
    cfg.zero_time = cs.zt;
    const DropoutKey key{17, 4};  // a fixed key: the same masks in every evaluation
    Transformer<double> net(cfg);
    randomize(net, 5);
    const int B = 2, L = 5;
    std::vector<int> x0 = {1, 4, 0, 2, 5, 3, 3, 1, 0, 6};
    std::vector<int> xt = x0;
    std::vector<unsigned char> mask(B * L, 0);
    for (int n : {1, 3, 4, 6, 9}) { xt[n] = 6; mask[n] = 1; }  // MASK = 6
    if (cs.causal) { x0 = {6, 1, 4, 0, 2, 6, 5, 3, 3, 1}; }    // BOS = 6 at position 0
    std::vector<double> sbar = {0.7, 2.3};
    auto loss = [&]() -> double {
      const int* in = cs.causal ? x0.data() : xt.data();
      const double* lg = net.forward(in, sbar.data(), B, L, cs.dropout > 0 ? &key : nullptr);
      if (cs.causal) return causal_cross_entropy(be, lg, x0.data(), B, L, cfg.vocab_out, net.dlogits());
      return masked_cross_entropy(be, lg, x0.data(), mask.data(), B * L, cfg.vocab_out, net.dlogits());
    };
    loss();
    net.zero_grad();
    net.backward();
    const std::vector<double> grad = net.grads_host();
    for (const auto& t : net.layout().tensors) {
      const std::string what = std::string(cs.causal ? "causal " : "bidir ") +
                               (cs.zt ? "zero-time " : cs.tc ? "time-cond " : "") +
                               (cs.nt == NormType::rms_norm ? "rms " : "") +
                               (cs.dropout > 0 ? "dropout " : "") +
                               (cs.mlp == MlpType::swiglu ? "swiglu " : cs.mlp == MlpType::geglu ? "geglu " : "") +
                               t.name;
      check_fd(what, net.params(), grad, loss, t.offset, t.offset + t.size(), 24);
    }
  }
}

TEST_CASE("nn: parameter count matches MODELS.md 1.3 and the slab layout") {
  ModelConfig small;
  small.n_layer = 12; small.n_head = 12; small.d_model = 768; small.d_ff = 3072;
  small.seq_len = 1024; small.vocab_in = small.vocab_out = 50258;
  small.cond_dim = 128; small.temb_dim = 256;
  CHECK(small.param_count() == 169627218);
  CHECK(ParamLayout(small).total == std::size_t(small.param_count()));
  const std::int64_t blocks = small.n_layer * (12LL * 768 * 768 + 5 * 768 + 2 * 768 + 6 * 768 * 128 + 6 * 768);
  CHECK(blocks == 92132352);
  for (bool tc : {true, false})
    for (bool c : {true, false})
      for (MlpType m : {MlpType::gelu, MlpType::swiglu, MlpType::geglu}) {
        auto cfg = tiny_config(tc, c);
        cfg.mlp = m;
        CHECK(ParamLayout(cfg).total == std::size_t(cfg.param_count()));
      }
  ModelConfig glu = tiny_config(false, false);
  glu.mlp = MlpType::swiglu;
  const ParamLayout gl(glu);
  int fc1_rows = 0;
  for (const auto& t : gl.tensors)
    if (t.name == "blocks.0.fc1_w") fc1_rows = t.rows;
  CHECK(fc1_rows == 2 * glu.d_ff);
  ModelConfig bench;  // the defaults: 6 layers, d 256, 4 heads, L 256, V 28
  CHECK(bench.forward_flops_per_token() ==
        doctest::Approx(6 * (2.0 * (4 * 256.0 * 256 + 2 * 256.0 * 1024) + 4 * 256.0 * 256) + 2 * 256.0 * 28));
}

TEST_CASE("nn: the activation-memory estimate equals what a forward pass allocates") {
  // ModelConfig::activation_bytes is what programs check before a run; the network's own
  // count after a forward (and backward) pass at that shape is the reference.
  for (bool tc : {true, false})
    for (bool c : {true, false})
      for (MlpType m : {MlpType::gelu, MlpType::swiglu})
        for (double drop : {0.0, 0.25})
          for (int B : {1, 3}) {
            ModelConfig cfg = tiny_config(tc, c);
            cfg.mlp = m;
            cfg.dropout = drop;
            Transformer<float> net(cfg);
            net.init(3);
            const int L = cfg.seq_len - 1;
            std::vector<int> tok(std::size_t(B) * L);
            for (std::size_t i = 0; i < tok.size(); ++i) tok[i] = int(i % std::size_t(cfg.vocab_in));
            std::vector<float> sbar(std::size_t(B), 0.5f);
            const DropoutKey key{11, 0};
            net.forward(tok.data(), tc ? sbar.data() : nullptr, B, L, drop > 0 ? &key : nullptr);
            INFO("time_cond " << tc << " causal " << c << " mlp " << int(m) << " dropout " << drop
                              << " B " << B);
            // Forward only (sampling): no logit gradient; then a backward pass allocates it.
            CHECK(cfg.activation_bytes(B, L, sizeof(float), drop > 0, false) ==
                  double(net.activation_bytes()));
            net.zero_grad();
            net.backward();
            CHECK(cfg.activation_bytes(B, L, sizeof(float), drop > 0) == double(net.activation_bytes()));
          }
  // The shapes a hostile command line gives stay finite (no integer overflow).
  ModelConfig big;
  big.seq_len = 65536;
  const double huge = big.activation_bytes(65536, 65536, 4, false);
  CHECK(std::isfinite(huge));
  // The attention probabilities alone: B H L^2 = 2^16 * 4 * 2^32 values in each of the 6
  // blocks and once more as scratch, 4 bytes each.
  CHECK(huge > 7.0 * 4 * std::ldexp(1.0, 50));
}

TEST_CASE("nn: adaLN-zero initialisation gives zero logits and a nonzero gate gradient") {
  const ModelConfig cfg = tiny_config(true, false);
  Transformer<double> net(cfg);
  net.init(42);
  std::vector<int> tok = {1, 2, 3, 6, 6, 0, 1, 6, 2, 4};
  std::vector<int> x0 = {1, 2, 3, 4, 5, 0, 1, 2, 2, 4};
  std::vector<unsigned char> mask = {0, 0, 0, 1, 1, 0, 0, 1, 0, 0};
  std::vector<double> sbar = {1.0, 0.1};
  const double* lg = net.forward(tok.data(), sbar.data(), 2, 5);
  for (int i = 0; i < 2 * 5 * cfg.vocab_out; ++i) CHECK(lg[i] == 0.0);
  const double loss = masked_cross_entropy(be, lg, x0.data(), mask.data(), 10, cfg.vocab_out, net.dlogits());
  CHECK(loss == doctest::Approx(std::log(double(cfg.vocab_out))));
  net.zero_grad();
  net.backward();
  // With a zero head only the head receives a gradient at step 0.
  const auto& lay = net.layout();
  double head = 0, rest = 0;
  for (std::size_t i = 0; i < lay.total; ++i)
    (i >= lay.head_w ? head : rest) += std::abs(net.grads()[i]);
  CHECK(head > 0);
  CHECK(rest == 0.0);
  // Once the head is nonzero, the zero-initialised adaLN gates get a gradient
  // (dgate = sum_pos dout * F != 0), so training moves away from identity blocks.
  for (std::size_t i = lay.head_w; i < lay.total; ++i) net.params()[i] = 0.01 * double(i % 7) - 0.03;
  lg = net.forward(tok.data(), sbar.data(), 2, 5);
  masked_cross_entropy(be, lg, x0.data(), mask.data(), 10, cfg.vocab_out, net.dlogits());
  net.zero_grad();
  net.backward();
  double gate = 0;
  for (int l = 0; l < cfg.n_layer; ++l)
    for (int c = 0; c < cfg.d_model; ++c) {
      gate += std::abs(net.grads()[lay.blocks[l].ada_b + 2 * cfg.d_model + c]);  // gate_a
      gate += std::abs(net.grads()[lay.blocks[l].ada_b + 5 * cfg.d_model + c]);  // gate_m
    }
  CHECK(gate > 0);
  // init is a pure function of the seed
  net.init(42);
  Transformer<double> net2(cfg);
  net2.init(42);
  CHECK(net2.params_host() == net.params_host());
  net2.init(43);
  CHECK(net2.params_host() != net.params_host());
}

TEST_CASE("nn: the time-independent network (zero_time) is the time-conditioned one at sbar = 0") {
  // Same parameters in both; the zero_time network must give, for any noise levels (or none),
  // the logits and gradients of the time-conditioned network fed sbar = 0, bit for bit, and
  // differ from it at other noise levels (so the comparison can fail).
  ModelConfig tc = tiny_config(true, false), zt = tc;
  zt.zero_time = true;
  CHECK(tc.time_dependent());
  CHECK_FALSE(zt.time_dependent());
  CHECK(zt.param_count() == tc.param_count());
  Transformer<double> a(tc), z(zt);
  randomize(a, 8);
  z.set_params(a.params_host());
  const std::vector<int> tok = {1, 2, 3, 6, 6, 0, 1, 6, 2, 4};
  const std::vector<int> x0 = {1, 2, 3, 4, 5, 0, 1, 2, 2, 4};
  const std::vector<unsigned char> mask = {0, 0, 0, 1, 1, 0, 0, 1, 0, 0};
  const std::size_t n = tok.size() * std::size_t(tc.vocab_out);
  auto run = [&](Transformer<double>& net, const double* sbar) {
    const double* lg = net.forward(tok.data(), sbar, 2, 5);
    std::vector<double> out(lg, lg + n);
    masked_cross_entropy(be, lg, x0.data(), mask.data(), 10, tc.vocab_out, net.dlogits());
    net.zero_grad();
    net.backward();
    const auto g = net.grads_host();
    out.insert(out.end(), g.begin(), g.end());
    return out;
  };
  const std::vector<double> zero = {0.0, 0.0}, s1 = {0.7, 2.3}, s2 = {5.0, 1e-3};
  const auto ref = run(a, zero.data());
  CHECK(run(z, s1.data()) == ref);
  CHECK(run(z, s2.data()) == ref);
  CHECK(run(z, nullptr) == ref);  // no noise levels needed
  CHECK(run(a, s1.data()) != ref);
  // the constant conditioning still trains: the time MLP's cos-half inputs and biases get
  // gradients (temb(0) = [1, ..., 1, 0, ..., 0])
  const auto g = z.grads_host();
  const auto& lay = z.layout();
  double gw1 = 0, gb1 = 0, gw1_sin = 0;
  for (int r = 0; r < tc.cond_dim; ++r) {
    gb1 += std::abs(g[lay.t_b1 + r]);
    for (int k = 0; k < tc.temb_dim; ++k)
      (k < tc.temb_dim / 2 ? gw1 : gw1_sin) += std::abs(g[lay.t_w1 + r * tc.temb_dim + k]);
  }
  CHECK(gw1 > 0);
  CHECK(gb1 > 0);
  CHECK(gw1_sin == 0.0);
  // a time-conditioned network still needs the noise levels
  CHECK_THROWS_AS(a.forward(tok.data(), nullptr, 2, 5), std::invalid_argument);
}

TEST_CASE("nn: dropout acts only in forward passes given a key") {
  ModelConfig cfg = tiny_config(true, false);
  cfg.dropout = 0.5;
  ModelConfig off = cfg;
  off.dropout = 0.0;
  Transformer<double> net(cfg), ref(off);
  randomize(net, 3);
  ref.set_params(net.params_host());
  const std::vector<int> tok = {1, 2, 3, 6, 6, 0, 1, 6, 2, 4};
  const std::vector<double> sbar = {1.0, 0.1};
  const std::size_t n = tok.size() * std::size_t(cfg.vocab_out);
  const double* a = net.forward(tok.data(), sbar.data(), 2, 5);
  const std::vector<double> eval(a, a + n);
  const double* b = ref.forward(tok.data(), sbar.data(), 2, 5);
  CHECK(eval == std::vector<double>(b, b + n));  // no key: evaluation, no dropout
  const DropoutKey key{1, 1};
  const double* c = net.forward(tok.data(), sbar.data(), 2, 5, &key);
  CHECK(eval != std::vector<double>(c, c + n));
  const DropoutKey key2{1, 2};
  const std::vector<double> train1(c, c + n);
  const double* e = net.forward(tok.data(), sbar.data(), 2, 5, &key2);
  CHECK(train1 != std::vector<double>(e, e + n));  // a new step draws new masks
  const double* f = ref.forward(tok.data(), sbar.data(), 2, 5, &key);
  CHECK(eval == std::vector<double>(f, f + n));  // dropout = 0: the key changes nothing
}
