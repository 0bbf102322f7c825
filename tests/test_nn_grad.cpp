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
void check_fd(const std::string& what, std::vector<double>& x, const std::vector<double>& analytic,
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
      gemm<double>(ta, tb, M, N, K, 0.5, A.data(), lda, Bm.data(), ldb, 1.0, C1.data(), N);
      gemm_naive<double>(ta, tb, M, N, K, 0.5, A.data(), lda, Bm.data(), ldb, 1.0, C2.data(), N);
      for (std::size_t i = 0; i < C1.size(); ++i) CHECK(C1[i] == doctest::Approx(C2[i]).epsilon(1e-13));
    }
}

TEST_CASE("nn: linear layer gradients (finite differences)") {
  const int N = 6, C = 5, OC = 4;
  auto x = rand_vec(N * C, 11), W = rand_vec(OC * C, 12), b = rand_vec(OC, 13), R = rand_vec(N * OC, 14);
  std::vector<double> y(N * OC);
  auto loss = [&] { linear_forward(y.data(), x.data(), W.data(), b.data(), N, C, OC); return dot(y, R); };
  std::vector<double> dx(N * C), dW(OC * C, 0.0), db(OC, 0.0);
  linear_backward(dx.data(), dW.data(), db.data(), R.data(), x.data(), W.data(), N, C, OC);
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
        norm_mod_forward(out.data(), xhat.data(), rstd.data(), x.data(), g.data(),
                         modulated ? mod.data() + 3 * C : nullptr,
                         modulated ? mod.data() + 4 * C : nullptr, B, L, C, ms, nt, 1e-5);
        return dot(out, R);
      };
      loss();
      std::vector<double> dx(B * L * C, 0.0), dg(C, 0.0), dmod(B * ms, 0.0), part(B * C);
      norm_mod_backward(dx.data(), dg.data(), modulated ? dmod.data() + 3 * C : nullptr,
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
      gated_residual_forward(out.data(), x.data(), F.data(), gate.data() + 2 * C, B, L, C, ms);
      return dot(out, R);
    };
    std::vector<double> dF(B * L * C), dgate(B * ms, 0.0);
    gated_residual_backward(dF.data(), dgate.data() + 2 * C, R.data(), F.data(), gate.data() + 2 * C,
                            B, L, C, ms);
    check_fd("gated residual dF", F, dF, loss);
    check_fd("gated residual dgate", gate, dgate, loss);
    check_fd("gated residual dx", x, R, loss);
  }
  {
    auto x = rand_vec(40, 35, -4, 4), R = rand_vec(40, 36);
    std::vector<double> y(40), dx(40);
    auto lg = [&] { gelu_forward(y.data(), x.data(), 40); return dot(y, R); };
    gelu_backward(dx.data(), R.data(), x.data(), 40);
    check_fd("gelu", x, dx, lg);
    auto ls = [&] { silu_forward(y.data(), x.data(), 40); return dot(y, R); };
    silu_backward(dx.data(), R.data(), x.data(), 40);
    check_fd("silu", x, dx, ls);
  }
  {
    const int V = 5, N = 7;
    std::vector<int> tok = {0, 3, 3, 4, 1, 3, 0};
    auto E = rand_vec(V * C, 37), R = rand_vec(N * C, 38);
    std::vector<double> h(N * C), dE(V * C, 0.0);
    auto loss = [&] { embedding_forward(h.data(), tok.data(), E.data(), N, C); return dot(h, R); };
    embedding_backward(dE.data(), tok.data(), R.data(), N, C);
    check_fd("embedding", E, dE, loss);
  }
}

TEST_CASE("nn: RoPE is a rotation (rotate-half) and its backward is the inverse rotation") {
  const int B = 2, L = 5, C = 8, H = 2;
  RopeTables<double> rt(L, C / H, 10000.0);
  auto qkv = rand_vec(B * L * 3 * C, 41), R = rand_vec(B * L * 3 * C, 42);
  std::vector<double> y;
  auto loss = [&] { y = qkv; rope_apply(y.data(), rt, B, L, C, H, false); return dot(y, R); };
  std::vector<double> d = R;
  rope_apply(d.data(), rt, B, L, C, H, true);
  check_fd("rope", qkv, d, loss);
  // explicit convention check at position p = 3 (b = 0), head 1, pair k = 1: (k, k + hd/2)
  y = qkv;
  rope_apply(y.data(), rt, B, L, C, H, false);
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
        if (rope) rope_apply(rq.data(), rt, B, L, C, H, false);
        attention_forward(out.data(), att.data(), rq.data(), B, L, C, H, causal);
        return dot(out, R);
      };
      loss();
      std::vector<double> dqkv(B * L * 3 * C), scratch(std::size_t(nn::detail::max_threads()) * L * L);
      attention_backward(dqkv.data(), scratch.data(), R.data(), att.data(), rq.data(), B, L, C, H);
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
      if (rope) rope_apply(dqkv.data(), rt, B, L, C, H, true);
      check_fd(std::string("attention") + (causal ? " causal" : " bidirectional") +
                   (rope ? " + rope" : ""), qkv, dqkv, loss, 0, std::size_t(-1), 400);
    }
}

TEST_CASE("nn: losses and their logit gradients (finite differences)") {
  const int B = 2, L = 4, V = 6;
  auto z = rand_vec(B * L * V, 61, -3, 3);
  std::vector<int> tok = {1, 5, 2, 0, 3, 3, 4, 1};
  std::vector<unsigned char> mask = {1, 0, 1, 1, 0, 0, 1, 0};
  std::vector<double> g(z.size());
  masked_cross_entropy(z.data(), tok.data(), mask.data(), B * L, V, g.data());
  check_fd("masked CE", z, g, [&] { return masked_cross_entropy<double>(z.data(), tok.data(), mask.data(), B * L, V, nullptr); });
  causal_cross_entropy(z.data(), tok.data(), B, L, V, g.data());
  check_fd("causal CE", z, g, [&] { return causal_cross_entropy<double>(z.data(), tok.data(), B, L, V, nullptr); });
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
  struct Case { bool tc, causal; NormType nt; };
  for (Case cs : {Case{true, false, NormType::layer_norm}, Case{false, true, NormType::layer_norm},
                  Case{true, false, NormType::rms_norm}, Case{true, true, NormType::layer_norm}}) {
    const ModelConfig cfg = tiny_config(cs.tc, cs.causal, cs.nt);
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
      const double* lg = net.forward(in, sbar.data(), B, L);
      if (cs.causal) return causal_cross_entropy<double>(lg, x0.data(), B, L, cfg.vocab_out, net.dlogits());
      return masked_cross_entropy<double>(lg, x0.data(), mask.data(), B * L, cfg.vocab_out, net.dlogits());
    };
    loss();
    net.zero_grad();
    net.backward();
    const std::vector<double> grad = net.grads();
    for (const auto& t : net.layout().tensors) {
      const std::string what = std::string(cs.causal ? "causal " : "bidir ") +
                               (cs.tc ? "time-cond " : "") + (cs.nt == NormType::rms_norm ? "rms " : "") + t.name;
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
    for (bool c : {true, false}) {
      auto cfg = tiny_config(tc, c);
      CHECK(ParamLayout(cfg).total == std::size_t(cfg.param_count()));
    }
  ModelConfig bench;  // the defaults: 6 layers, d 256, 4 heads, L 256, V 28
  CHECK(bench.forward_flops_per_token() ==
        doctest::Approx(6 * (2.0 * (4 * 256.0 * 256 + 2 * 256.0 * 1024) + 4 * 256.0 * 256) + 2 * 256.0 * 28));
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
  const double loss = masked_cross_entropy(lg, x0.data(), mask.data(), 10, cfg.vocab_out, net.dlogits());
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
  masked_cross_entropy(lg, x0.data(), mask.data(), 10, cfg.vocab_out, net.dlogits());
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
  CHECK(net2.params() == net.params());
  net2.init(43);
  CHECK(net2.params() != net.params());
}
