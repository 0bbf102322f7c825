// tests/nn_layer_checks.hpp: one test body per nn layer family, run on any backend (MatX
// style): the host suite instantiates it for the sequential, OpenMP and host (SIMD twin)
// backends (test_nn_backends.cpp), the Thrust suite for Thrust-OMP
// (thrust/test_thrust_nn.cpp), a CUDA build for Thrust-CUDA.
//
// Each check draws inputs on the host, rounds them to T, copies them into the backend's
// memory, runs the layer's forward and backward there and copies the results back. The
// oracle is a naive reference written here with plain loops in double from the spec's
// formulas (independent of nn/ops): |got - ref| <= tol (|ref| + rms(ref)), with tol = 1e-12
// in double and 1e-5 in float. In double every backward is also checked against central
// finite differences of the backend's own forward pass.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include <discdiff/core/random.hpp>
#include <discdiff/exec/memory.hpp>
#include <discdiff/nn/nn.hpp>

namespace discdiff {
namespace testing {
namespace nnchk {

using V = std::vector<double>;

inline V rvec(std::size_t n, std::uint64_t seed, double lo = -1, double hi = 1) {
  V v(n);
  for (std::size_t i = 0; i < n; ++i) {
    CounterRng r(seed, 11, i);
    v[i] = lo + (hi - lo) * r.uniform<double>();
  }
  return v;
}
/// v rounded to T and back (the reference sees exactly the backend's inputs).
template <class T>
V rounded(const V& v) {
  V o(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) o[i] = double(T(v[i]));
  return o;
}
template <class T, class Space>
Buffer<T, Space> up(const V& v) {
  std::vector<T> h(v.begin(), v.end());
  Buffer<T, Space> b(h.size());
  copy_from_host(b, h.data(), h.size());
  return b;
}
template <class U, class Space>
Buffer<U, Space> up_raw(const std::vector<U>& h) {
  Buffer<U, Space> b(h.size());
  copy_from_host(b, h.data(), h.size());
  return b;
}
template <class T, class Space>
V down(const Buffer<T, Space>& b) {
  const std::vector<T> h = to_host_vector(b);
  return V(h.begin(), h.end());
}
inline double dot(const V& a, const V& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

template <class T>
constexpr double tol() {
  return std::is_same<T, double>::value ? 1e-12 : 1e-5;
}

/// |got - ref| <= tol (|ref| + rms(ref)) for every element.
inline void compare(const std::string& what, const V& got, const V& ref, double tl) {
  REQUIRE(got.size() == ref.size());
  double rms = 0;
  for (double r : ref) rms += r * r;
  rms = ref.empty() ? 0 : std::sqrt(rms / double(ref.size()));
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double e = std::abs(got[i] - ref[i]) / (std::abs(ref[i]) + rms + 1e-300);
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  INFO(what << ": worst relative error " << worst << " at " << at << " (got " << got[at]
            << ", ref " << ref[at] << "), tolerance " << tl);
  CHECK(worst <= tl);
}

/// Central differences of loss() in x[i] against analytic[i] (double only), at most 12
/// evenly spaced indices.
inline void check_fd(const std::string& what, V& x, const V& analytic,
                     const std::function<double()>& loss) {
  const std::size_t stride = x.size() > 12 ? (x.size() + 11) / 12 : 1;
  int bad = 0;
  for (std::size_t i = 0; i < x.size(); i += stride) {
    const double x0 = x[i], h = 1e-5;
    x[i] = x0 + h;
    const double lp = loss();
    x[i] = x0 - h;
    const double lm = loss();
    x[i] = x0;
    const double fd = (lp - lm) / (2 * h);
    if (!(std::abs(fd - analytic[i]) <= 2e-8 + 1e-6 * std::abs(analytic[i]))) {
      ++bad;
      INFO(what << "[" << i << "]: fd " << fd << ", analytic " << analytic[i]);
      CHECK(false);
    }
  }
  INFO(what);
  CHECK(bad == 0);
}

// ------------------------------------------------------------------ naive references (double)
inline double gelu(double x) {
  return 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
inline double gelu_d(double x) {
  const double t = std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
}
inline double sig(double x) { return 1 / (1 + std::exp(-x)); }

/// LayerNorm/RMSNorm + modulation forward and backward for one row set (spec MODELS 1.4).
struct NormRef {
  V out, dx, dg, dshift, dscale;
};
inline NormRef norm_ref(const V& x, const V& g, const V* mod, int sh_off, int sc_off, long ms,
                        const V& dout, int B, int L, int C, bool layer, double eps) {
  NormRef r;
  r.out.assign(x.size(), 0);
  r.dx.assign(x.size(), 0);
  r.dg.assign(C, 0);
  r.dshift.assign(std::size_t(B) * C, 0);
  r.dscale.assign(std::size_t(B) * C, 0);
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < L; ++i) {
      const std::size_t o = (std::size_t(b) * L + i) * C;
      double mean = 0, var = 0;
      if (layer) {
        for (int c = 0; c < C; ++c) mean += x[o + c];
        mean /= C;
      }
      for (int c = 0; c < C; ++c) var += (x[o + c] - mean) * (x[o + c] - mean);
      var /= C;
      const double rs = 1 / std::sqrt(var + eps);
      V xh(C), dxh(C);
      for (int c = 0; c < C; ++c) {
        xh[c] = (x[o + c] - mean) * rs;
        const double sc = mod ? (*mod)[b * ms + sc_off + c] : 0.0;
        const double sh = mod ? (*mod)[b * ms + sh_off + c] : 0.0;
        r.out[o + c] = xh[c] * g[c] * (1 + sc) + sh;
        const double go = dout[o + c];
        r.dscale[std::size_t(b) * C + c] += go * xh[c] * g[c];
        r.dshift[std::size_t(b) * C + c] += go;
        r.dg[c] += go * (1 + sc) * xh[c];
        dxh[c] = go * (1 + sc) * g[c];
      }
      double m1 = 0, m2 = 0;
      for (int c = 0; c < C; ++c) {
        m1 += dxh[c];
        m2 += dxh[c] * xh[c];
      }
      m1 = layer ? m1 / C : 0.0;
      m2 /= C;
      for (int c = 0; c < C; ++c) r.dx[o + c] = rs * (dxh[c] - m1 - xh[c] * m2);
    }
  return r;
}

/// Attention forward (probabilities and output) and backward in double.
struct AttnRef {
  V out, att, dqkv;
};
inline AttnRef attention_ref(const V& qkv, const V& dout, int B, int L, int C, int H, bool causal) {
  AttnRef r;
  r.out.assign(std::size_t(B) * L * C, 0);
  r.att.assign(std::size_t(B) * H * L * L, 0);
  r.dqkv.assign(qkv.size(), 0);
  nn::attention_forward_naive(r.out.data(), r.att.data(), qkv.data(), B, L, C, H, causal);
  nn::attention_backward_naive(r.dqkv.data(), dout.data(), r.att.data(), qkv.data(), B, L, C, H);
  return r;
}

// ------------------------------------------------------------------ the checks
template <class T, class Be>
void check_linear(const Be& be) {
  using S = typename Be::memory_space;
  const int N = 7, C = 11, OC = 9;
  const V x = rounded<T>(rvec(N * C, 1)), W = rounded<T>(rvec(OC * C, 2)), b = rounded<T>(rvec(OC, 3)),
          dy = rounded<T>(rvec(N * OC, 4));
  V y(N * OC), dx(N * C, 0), dW(OC * C, 0), db(OC, 0);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < OC; ++o) {
      double s = b[o];
      for (int c = 0; c < C; ++c) s += x[n * C + c] * W[o * C + c];
      y[n * OC + o] = s;
      for (int c = 0; c < C; ++c) {
        dx[n * C + c] += dy[n * OC + o] * W[o * C + c];
        dW[o * C + c] += dy[n * OC + o] * x[n * C + c];
      }
      db[o] += dy[n * OC + o];
    }
  auto dX = up<T, S>(x), dWb = up<T, S>(W), dB = up<T, S>(b), dDy = up<T, S>(dy);
  Buffer<T, S> dY(N * OC), gX(N * C);
  auto gW = up<T, S>(V(OC * C, 0.0)), gB = up<T, S>(V(OC, 0.0));
  nn::linear_forward(be, dY.data(), dX.data(), dWb.data(), dB.data(), N, C, OC);
  nn::linear_backward(be, gX.data(), gW.data(), gB.data(), dDy.data(), dX.data(), dWb.data(), N, C, OC);
  compare("linear y", down(dY), y, tol<T>());
  compare("linear dx", down(gX), dx, tol<T>());
  compare("linear dW", down(gW), dW, tol<T>());
  compare("linear db", down(gB), db, tol<T>());
  if constexpr (std::is_same<T, double>::value) {
    V xv = x;
    auto loss = [&] {
      auto bx = up<T, S>(xv);
      Buffer<T, S> by(N * OC);
      nn::linear_forward(be, by.data(), bx.data(), dWb.data(), dB.data(), N, C, OC);
      return dot(down(by), dy);
    };
    check_fd("linear dx (fd)", xv, down(gX), loss);
  }
}

template <class T, class Be>
void check_norm(const Be& be) {
  using S = typename Be::memory_space;
  for (nn::NormType nt : {nn::NormType::layer_norm, nn::NormType::rms_norm})
    for (bool modulated : {true, false}) {
      CAPTURE(int(nt));
      CAPTURE(modulated);
      const int B = 3, L = 5, C = 19;  // C: a partial column block and a tail of 8
      const long ms = 6L * C;
      const V x = rounded<T>(rvec(B * L * C, 21, -2, 2)), g = rounded<T>(rvec(C, 22, 0.5, 1.5)),
              mod = rounded<T>(rvec(B * ms, 23, -0.5, 0.5)), dout = rounded<T>(rvec(B * L * C, 24));
      const NormRef ref = norm_ref(x, g, modulated ? &mod : nullptr, 3 * C, 4 * C, ms, dout, B, L, C,
                                   nt == nn::NormType::layer_norm, 1e-5);
      auto bx = up<T, S>(x), bg = up<T, S>(g), bm = up<T, S>(mod), bdo = up<T, S>(dout);
      Buffer<T, S> out(x.size()), xhat(x.size()), rstd(std::size_t(B) * L), part(2 * std::size_t(B) * C);
      auto dx = up<T, S>(V(x.size(), 0.0)), dg = up<T, S>(V(C, 0.0)), dmod = up<T, S>(V(B * ms, 0.0));
      const T* sh = modulated ? bm.data() + 3 * C : nullptr;
      const T* sc = modulated ? bm.data() + 4 * C : nullptr;
      nn::norm_mod_forward(be, out.data(), xhat.data(), rstd.data(), bx.data(), bg.data(), sh, sc, B, L,
                           C, ms, nt, T(1e-5));
      nn::norm_mod_backward(be, dx.data(), dg.data(), modulated ? dmod.data() + 3 * C : nullptr,
                            modulated ? dmod.data() + 4 * C : nullptr, part.data(), bdo.data(),
                            xhat.data(), rstd.data(), bg.data(), sc, B, L, C, ms, nt);
      {  // the other way of running the backward (per sequence vs split): the same bits
        const nn::SeqSplit other = nn::detail::use_split<Be>(nn::SeqSplit::automatic)
                                       ? nn::SeqSplit::per_sequence
                                       : nn::SeqSplit::split;
        auto dx2 = up<T, S>(V(x.size(), 0.0)), dg2 = up<T, S>(V(C, 0.0)), dmod2 = up<T, S>(V(B * ms, 0.0));
        nn::norm_mod_backward(be, dx2.data(), dg2.data(), modulated ? dmod2.data() + 3 * C : nullptr,
                              modulated ? dmod2.data() + 4 * C : nullptr, part.data(), bdo.data(),
                              xhat.data(), rstd.data(), bg.data(), sc, B, L, C, ms, nt, other);
        CHECK(down(dx2) == down(dx));
        CHECK(down(dg2) == down(dg));
        CHECK(down(dmod2) == down(dmod));
      }
      compare("norm out", down(out), ref.out, tol<T>());
      compare("norm dx", down(dx), ref.dx, tol<T>());
      compare("norm dg", down(dg), ref.dg, tol<T>());
      if (modulated) {
        const V dm = down(dmod);
        V dsh, dsc;
        for (int b = 0; b < B; ++b)
          for (int c = 0; c < C; ++c) {
            dsh.push_back(dm[b * ms + 3 * C + c]);
            dsc.push_back(dm[b * ms + 4 * C + c]);
          }
        compare("norm dshift", dsh, ref.dshift, tol<T>());
        compare("norm dscale", dsc, ref.dscale, tol<T>());
      }
      if constexpr (std::is_same<T, double>::value) {
        V xv = x, gv = g;
        auto loss = [&] {
          auto bx2 = up<T, S>(xv), bg2 = up<T, S>(gv);
          Buffer<T, S> o2(x.size()), xh2(x.size()), rs2(std::size_t(B) * L);
          nn::norm_mod_forward(be, o2.data(), xh2.data(), rs2.data(), bx2.data(), bg2.data(), sh, sc, B,
                               L, C, ms, nt, T(1e-5));
          return dot(down(o2), dout);
        };
        check_fd("norm dx (fd)", xv, down(dx), loss);
        check_fd("norm dg (fd)", gv, down(dg), loss);
      }
    }
}

template <class T, class Be>
void check_residual_embedding(const Be& be) {
  using S = typename Be::memory_space;
  const int B = 2, L = 5, C = 21;
  const long ms = 6L * C;
  const V x = rounded<T>(rvec(B * L * C, 31)), F = rounded<T>(rvec(B * L * C, 32)),
          gate = rounded<T>(rvec(B * ms, 33)), dout = rounded<T>(rvec(B * L * C, 34));
  V out(x.size()), dF(x.size()), dgate(std::size_t(B) * C, 0);
  for (int n = 0; n < B * L; ++n)
    for (int c = 0; c < C; ++c) {
      const double gt = gate[(n / L) * ms + 2 * C + c];
      out[n * C + c] = x[n * C + c] + gt * F[n * C + c];
      dF[n * C + c] = dout[n * C + c] * gt;
      dgate[(n / L) * C + c] += dout[n * C + c] * F[n * C + c];
    }
  auto bx = up<T, S>(x), bF = up<T, S>(F), bgt = up<T, S>(gate), bdo = up<T, S>(dout);
  Buffer<T, S> o(x.size()), gF(x.size());
  auto gg = up<T, S>(V(B * ms, 0.0));
  nn::gated_residual_forward(be, o.data(), bx.data(), bF.data(), bgt.data() + 2 * C, B, L, C, ms);
  nn::gated_residual_backward(be, gF.data(), gg.data() + 2 * C, bdo.data(), bF.data(), bgt.data() + 2 * C,
                              B, L, C, ms);
  {  // per sequence and split: the same bits
    Buffer<T, S> gF1(x.size()), gF2(x.size());
    auto gg1 = up<T, S>(V(B * ms, 0.0)), gg2 = up<T, S>(V(B * ms, 0.0));
    nn::gated_residual_backward(be, gF1.data(), gg1.data() + 2 * C, bdo.data(), bF.data(), bgt.data() + 2 * C,
                                B, L, C, ms, nn::SeqSplit::per_sequence);
    nn::gated_residual_backward(be, gF2.data(), gg2.data() + 2 * C, bdo.data(), bF.data(), bgt.data() + 2 * C,
                                B, L, C, ms, nn::SeqSplit::split);
    CHECK(down(gF1) == down(gF2));
    CHECK(down(gg1) == down(gg2));
  }
  compare("residual out", down(o), out, tol<T>());
  compare("residual dF", down(gF), dF, tol<T>());
  const V gv = down(gg);
  V dg;
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c) dg.push_back(gv[b * ms + 2 * C + c]);
  compare("residual dgate", dg, dgate, tol<T>());
  // ungated
  nn::gated_residual_forward(be, o.data(), bx.data(), bF.data(), (const T*)nullptr, B, L, C, ms);
  V plain(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) plain[i] = x[i] + F[i];
  compare("residual ungated", down(o), plain, tol<T>());

  // embedding: repeated ids accumulate in ascending row order
  const int Vv = 6, N = 13;
  std::vector<int> tok = {0, 3, 3, 5, 1, 3, 0, 2, 2, 5, 4, 3, 0};
  const V E = rounded<T>(rvec(Vv * C, 37)), dh = rounded<T>(rvec(N * C, 38));
  V h(N * C), dE(Vv * C, 0);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      h[n * C + c] = E[tok[n] * C + c];
      dE[tok[n] * C + c] += dh[n * C + c];
    }
  auto bt = up_raw<int, S>(tok);
  auto bE = up<T, S>(E), bdh = up<T, S>(dh);
  Buffer<T, S> bh(N * C);
  auto gE = up<T, S>(V(Vv * C, 0.0));
  nn::embedding_forward(be, bh.data(), bt.data(), bE.data(), N, C);
  nn::embedding_backward(be, gE.data(), bt.data(), bdh.data(), N, C);
  compare("embedding h", down(bh), h, 0.0);
  compare("embedding dE", down(gE), dE, tol<T>());
}

template <class T, class Be>
void check_activations(const Be& be) {
  using S = typename Be::memory_space;
  // lengths across the chunk size (4096) and with a tail of 8
  for (long n : {37L, 4099L}) {
    const V x = rounded<T>(rvec(std::size_t(n), 41, -6, 6)), dy = rounded<T>(rvec(std::size_t(n), 42));
    V y(n), dx(n), sy(n), sdx(n);
    for (long i = 0; i < n; ++i) {
      y[i] = gelu(x[i]);
      dx[i] = dy[i] * gelu_d(x[i]);
      sy[i] = x[i] * sig(x[i]);
      sdx[i] = dy[i] * sig(x[i]) * (1 + x[i] * (1 - sig(x[i])));
    }
    auto bx = up<T, S>(x), bdy = up<T, S>(dy);
    Buffer<T, S> by(n), bdx(n);
    nn::gelu_forward(be, by.data(), bx.data(), n);
    nn::gelu_backward(be, bdx.data(), bdy.data(), bx.data(), n);
    compare("gelu y", down(by), y, tol<T>());
    compare("gelu dx", down(bdx), dx, tol<T>());
    nn::silu_forward(be, by.data(), bx.data(), n);
    nn::silu_backward(be, bdx.data(), bdy.data(), bx.data(), n);
    compare("silu y", down(by), sy, tol<T>());
    compare("silu dx", down(bdx), sdx, tol<T>());
  }
  {  // fused bias + GELU over rows
    const long N = 5;
    const int F = 37;
    const V f = rounded<T>(rvec(N * F, 43, -4, 4)), b = rounded<T>(rvec(F, 44));
    V fo(f), y(N * F);
    for (long n = 0; n < N; ++n)
      for (int c = 0; c < F; ++c) {
        fo[n * F + c] = double(T(f[n * F + c] + b[c]));  // the stored pre-activation is T
        y[n * F + c] = gelu(fo[n * F + c]);
      }
    auto bf = up<T, S>(f), bb = up<T, S>(b);
    Buffer<T, S> by(N * F);
    nn::bias_gelu_forward(be, by.data(), bf.data(), bb.data(), N, F);
    compare("bias+gelu f", down(bf), fo, 0.0);
    compare("bias+gelu y", down(by), y, tol<T>());
  }
  for (nn::MlpType m : {nn::MlpType::swiglu, nn::MlpType::geglu}) {
    CAPTURE(int(m));
    const int rows = 4, F = 13;
    const V u = rounded<T>(rvec(rows * 2 * F, 45, -3, 3)), dy = rounded<T>(rvec(rows * F, 46));
    V y(rows * F), du(rows * 2 * F);
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < F; ++j) {
        const double a = u[r * 2 * F + j], bb = u[r * 2 * F + F + j];
        const double act = m == nn::MlpType::swiglu ? a * sig(a) : gelu(a);
        const double dact = m == nn::MlpType::swiglu ? sig(a) * (1 + a * (1 - sig(a))) : gelu_d(a);
        y[r * F + j] = act * bb;
        du[r * 2 * F + j] = dy[r * F + j] * bb * dact;
        du[r * 2 * F + F + j] = dy[r * F + j] * act;
      }
    auto bu = up<T, S>(u), bdy = up<T, S>(dy);
    Buffer<T, S> by(rows * F), bdu(rows * 2 * F);
    nn::glu_forward(be, by.data(), bu.data(), rows, F, m);
    nn::glu_backward(be, bdu.data(), bdy.data(), bu.data(), rows, F, m);
    compare("glu y", down(by), y, tol<T>());
    compare("glu du", down(bdu), du, tol<T>());
  }
  {  // timestep embedding (cos half first), evaluated in double
    const int B = 3, dim = 10;
    const V sb = rounded<T>(V{0.0, 0.37, 41.5});
    V ref(B * dim);
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < dim / 2; ++k) {
        const double f = std::exp(-std::log(10000.0) * k / (dim / 2));
        ref[b * dim + k] = std::cos(sb[b] * f);
        ref[b * dim + dim / 2 + k] = std::sin(sb[b] * f);
      }
    auto bs = up<T, S>(sb);
    Buffer<T, S> out(B * dim);
    nn::timestep_embedding(be, out.data(), bs.data(), B, dim);
    compare("timestep embedding", down(out), rounded<T>(ref), std::is_same<T, double>::value ? 1e-15 : 1e-7);
  }
}

template <class T, class Be>
void check_rope_attention(const Be& be) {
  using S = typename Be::memory_space;
  const int B = 2, L = 11, C = 16, H = 2, hd = C / H;
  const nn::RopeTables<T, S> rt(L, hd, 10000.0);
  const V qkv = rounded<T>(rvec(B * L * 3 * C, 51, -1.5, 1.5)), dq = rounded<T>(rvec(B * L * 3 * C, 52));
  {  // rope forward is R, backward R^T (angles in double, tables rounded to T)
    V ref = qkv, inv = dq;
    for (int n = 0; n < B * L; ++n)
      for (int part = 0; part < 2; ++part)
        for (int h = 0; h < H; ++h)
          for (int k = 0; k < hd / 2; ++k) {
            const double th = (n % L) * std::pow(10000.0, -2.0 * k / hd);
            const double c = double(T(std::cos(th))), s = double(T(std::sin(th)));
            const std::size_t o = std::size_t(n) * 3 * C + std::size_t(part) * C + std::size_t(h) * hd;
            const double x1 = qkv[o + k], x2 = qkv[o + k + hd / 2];
            ref[o + k] = x1 * c - x2 * s;
            ref[o + k + hd / 2] = x2 * c + x1 * s;
            const double g1 = dq[o + k], g2 = dq[o + k + hd / 2];
            inv[o + k] = g1 * c + g2 * s;
            inv[o + k + hd / 2] = g2 * c - g1 * s;
          }
    auto b1 = up<T, S>(qkv), b2 = up<T, S>(dq);
    nn::rope_apply(be, b1.data(), rt, B, L, C, H, false);
    nn::rope_apply(be, b2.data(), rt, B, L, C, H, true);
    compare("rope", down(b1), ref, tol<T>());
    compare("rope inverse", down(b2), inv, tol<T>());
  }
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const V dout = rounded<T>(rvec(B * L * C, 53));
    const AttnRef ref = attention_ref(qkv, dout, B, L, C, H, causal);
    auto bq = up<T, S>(qkv), bdo = up<T, S>(dout);
    Buffer<T, S> out(B * L * C), att(std::size_t(B) * H * L * L), dqkv(qkv.size()),
        scratch(std::size_t(B) * H * L * L);
    nn::attention_forward(be, out.data(), att.data(), bq.data(), B, L, C, H, causal);
    nn::attention_backward(be, dqkv.data(), scratch.data(), bdo.data(), att.data(), bq.data(), B, L, C, H);
    compare("attention out", down(out), ref.out, tol<T>());
    compare("attention P", down(att), ref.att, tol<T>());
    compare("attention dqkv", down(dqkv), ref.dqkv, tol<T>());
    if (causal) {
      const V p = down(att);
      for (int i = 0; i < L; ++i)
        for (int j = i + 1; j < L; ++j) REQUIRE(p[std::size_t(i) * L + j] == 0.0);
    }
    if constexpr (std::is_same<T, double>::value) {
      V xv = qkv;
      auto loss = [&] {
        auto b = up<T, S>(xv);
        Buffer<T, S> o2(B * L * C), a2(std::size_t(B) * H * L * L);
        nn::attention_forward(be, o2.data(), a2.data(), b.data(), B, L, C, H, causal);
        return dot(down(o2), dout);
      };
      check_fd("attention dqkv (fd)", xv, down(dqkv), loss);
    }
  }
}

template <class T, class Be>
void check_dropout_losses_optim(const Be& be) {
  using S = typename Be::memory_space;
  {  // dropout: the mask of (seed, step, site, n, c), scale 1/(1 - p)
    const long N = 9;
    const int C = 21;
    const double p = 0.3;
    const V x = rounded<T>(rvec(N * C, 61)), dy = rounded<T>(rvec(N * C, 62));
    V y(N * C), dx(N * C);
    const double cut = std::ceil(std::ldexp(p, 32)), sc = double(T(1 / (1 - p)));
    for (long n = 0; n < N; ++n) {
      CounterRng rng(5, nn::kDropoutStream + 3, (std::uint64_t(7) << 32) | std::uint64_t(n));
      for (int c = 0; c < C; ++c) {
        const bool k = double(rng.next_u32()) >= cut;
        y[n * C + c] = k ? x[n * C + c] * sc : 0.0;
        dx[n * C + c] = k ? dy[n * C + c] * sc : 0.0;
      }
    }
    auto bx = up<T, S>(x), bdy = up<T, S>(dy);
    Buffer<unsigned char, S> keep(N * C);
    nn::dropout_forward(be, bx.data(), keep.data(), N, C, p, 5, 7, 3);
    nn::dropout_backward(be, bdy.data(), keep.data(), N, C, p);
    compare("dropout y", down(bx), rounded<T>(y), tol<T>());
    compare("dropout dx", down(bdy), rounded<T>(dx), tol<T>());
  }
  {  // losses
    const int B = 3, L = 7, Vv = 10;
    const V z = rounded<T>(rvec(B * L * Vv, 63, -3, 3));
    std::vector<int> tok(B * L);
    std::vector<unsigned char> mask(B * L);
    for (int i = 0; i < B * L; ++i) {
      tok[i] = (i * 7 + 3) % Vv;
      mask[i] = (i % 3) != 1;
    }
    auto lse = [&](int n) {
      double m = z[n * Vv];
      for (int v = 1; v < Vv; ++v) m = std::max(m, z[n * Vv + v]);
      double s = 0;
      for (int v = 0; v < Vv; ++v) s += std::exp(z[n * Vv + v] - m);
      return m + std::log(s);
    };
    double lm = 0, lc = 0;
    long M = 0;
    V gm(z.size(), 0), gc(z.size(), 0);
    for (int n = 0; n < B * L; ++n) M += mask[n];
    for (int n = 0; n < B * L; ++n) {
      const double ls = lse(n);
      if (mask[n]) {
        lm += ls - z[n * Vv + tok[n]];
        for (int v = 0; v < Vv; ++v) gm[n * Vv + v] = (std::exp(z[n * Vv + v] - ls) - (v == tok[n])) / M;
      }
      if (n % L < L - 1) {
        lc += ls - z[n * Vv + tok[n + 1]];
        for (int v = 0; v < Vv; ++v)
          gc[n * Vv + v] = (std::exp(z[n * Vv + v] - ls) - (v == tok[n + 1])) / (B * (L - 1.0));
      }
    }
    lm /= M;
    lc /= B * (L - 1.0);
    auto bz = up<T, S>(z);
    auto bt = up_raw<int, S>(tok);
    auto bm = up_raw<unsigned char, S>(mask);
    Buffer<T, S> g(z.size());
    const T vm = nn::masked_cross_entropy(be, bz.data(), bt.data(), bm.data(), B * L, Vv, g.data());
    compare("masked CE", V{double(vm)}, V{lm}, tol<T>());
    compare("masked CE dlogits", down(g), gm, tol<T>());
    const T vc = nn::causal_cross_entropy(be, bz.data(), bt.data(), B, L, Vv, g.data());
    compare("causal CE", V{double(vc)}, V{lc}, tol<T>());
    compare("causal CE dlogits", down(g), gc, tol<T>());
  }
  {  // clipping, AdamW, EMA over a slab longer than one reduction chunk (2^14)
    const std::size_t n = 40000;
    const V th = rounded<T>(rvec(n, 64)), gr = rounded<T>(rvec(n, 65, -0.01, 0.01));
    double ss = 0;
    for (double v : gr) ss += v * v;
    auto bg = up<T, S>(gr);
    const double norm = nn::clip_grad_norm(be, bg.data(), n, 0.1);
    compare("global norm", V{norm}, V{std::sqrt(ss)}, tol<T>());
    V clipped(n);
    const double coef = double(T(0.1 / (std::sqrt(ss) + 1e-6)));
    for (std::size_t i = 0; i < n; ++i) clipped[i] = gr[i] * coef;
    compare("clipped", down(bg), clipped, tol<T>());
    nn::AdamWConfig ac;
    ac.weight_decay = 0.1;
    nn::AdamW<T, S> opt(n, ac);
    auto bth = up<T, S>(th);
    nn::Ema<T, S> ema(bth.data(), n, 0.99, true);
    const V gq = down(bg);
    V t = th, m(n, 0), v(n, 0), sh = th;
    for (int step = 1; step <= 2; ++step) {
      const double lr = 0.01 * step;
      opt.step(be, bth.data(), bg.data(), lr);
      ema.update(be, bth.data());
      const double bc1 = 1 - std::pow(0.9, step), bc2 = 1 - std::pow(0.999, step);
      const double d = std::min(0.99, (1.0 + step) / (10.0 + step));
      for (std::size_t i = 0; i < n; ++i) {
        t[i] *= 1 - lr * 0.1;
        m[i] = 0.9 * m[i] + 0.1 * gq[i];
        v[i] = 0.999 * v[i] + 0.001 * gq[i] * gq[i];
        t[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + 1e-8);
        sh[i] = d * sh[i] + (1 - d) * t[i];
      }
    }
    // float: AdamW's normalised step divides by sqrt(v) ~ |g|, so compare in units of lr
    const double at = std::is_same<T, double>::value ? 1e-12 : 2e-5;
    compare("AdamW theta", down(bth), t, at);
    compare("AdamW m", down(opt.first_moment()), m, tol<T>());
    compare("AdamW v", down(opt.second_moment()), v, tol<T>());
    compare("EMA", down(ema.shadow()), sh, at);
  }
}

/// Every layer family on backend be, in precision T.
template <class T, class Be>
void check_all_layers(const Be& be) {
  SUBCASE("linear") { check_linear<T>(be); }
  SUBCASE("norm + modulation") { check_norm<T>(be); }
  SUBCASE("gated residual, embedding") { check_residual_embedding<T>(be); }
  SUBCASE("activations, time embedding") { check_activations<T>(be); }
  SUBCASE("rope, attention") { check_rope_attention<T>(be); }
  SUBCASE("dropout, losses, clip, AdamW, EMA") { check_dropout_losses_optim<T>(be); }
}

}  // namespace nnchk
}  // namespace testing
}  // namespace discdiff
