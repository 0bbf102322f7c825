// The objective batch drivers (objective/checked_xt.hpp) on ThrustExecutor with the OMP device
// system give bit-identical losses and gradients to the sequential executor: SEDD, CEDD*,
// MD4 (continuous and discrete time) and GenMD4 (both logits and w).
#include <doctest/doctest.h>

#include <cstdint>
#include <random>

#include <discdiff/exec/executor.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/objective/checked_xt.hpp>
#include <discdiff/schedule/schedules.hpp>

static_assert(DISCDIFF_HAVE_THRUST_EXECUTOR == 1, "the Thrust suite needs ThrustExecutor");

using namespace discdiff;

namespace {

template <class Gen, class Sched>
void make(const Gen& gen, const Sched& sched, int B, int L, int V, xt::xtensor<int, 2>& x0,
          xt::xtensor<int, 2>& xt, xt::xtensor<double, 1>& t, xt::xtensor<double, 3>& z) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> nd(0.0, 1.0);
  x0 = xt::xtensor<int, 2>::from_shape({std::size_t(B), std::size_t(L)});
  xt = x0;
  t = xt::xtensor<double, 1>::from_shape({std::size_t(B)});
  z = xt::xtensor<double, 3>::from_shape({std::size_t(B), std::size_t(L), std::size_t(V)});
  for (int b = 0; b < B; ++b) t(b) = 0.05 + 0.9 * (b + 0.5) / B;
  for (int b = 0; b < B; ++b)
    for (int l = 0; l < L; ++l) {
      x0(b, l) = static_cast<int>(rng() % std::uint64_t(gen.num_regular()));
      CounterRng r(1, 0, static_cast<std::uint64_t>(b * L + l));
      xt(b, l) = gen.sample_forward(x0(b, l), sched.sigma_bar(t(b)), r);
    }
  for (auto& v : z) v = nd(rng);
}

template <class R>
void same(const R& a, const R& b) {
  for (std::size_t i = 0; i < a.loss.size(); ++i) CHECK(a.loss(i) == b.loss(i));
  for (std::size_t i = 0; i < a.grad.size(); ++i) CHECK(a.grad.data()[i] == b.grad.data()[i]);
}

}  // namespace

TEST_CASE("objectives on Thrust-OMP == sequential, bit for bit") {
  const int N = 40, B = 6, L = 17;
  const RouletteGenerator<double> rou(N, 0.95);
  const AbsorbingGenerator<double> abs(N);
  const RouletteLogLinearSchedule<double> rsched(0.95);
  const LogLinearSchedule<double> loglin;
  const SequentialExecutor seq;
  const ThrustExecutor thr;
  xt::xtensor<int, 2> x0, xt;
  xt::xtensor<double, 1> t;
  xt::xtensor<double, 3> z;
  make(rou, rsched, B, L, N + 1, x0, xt, t, z);
  same(sedd_loss(rou, rsched, x0, xt, t, z, {}, 0.5, seq),
       sedd_loss(rou, rsched, x0, xt, t, z, {}, 0.5, thr));
  same(cedd_loss(rou, rsched, x0, xt, t, z, CeddVariant::cedd_star, 0.5, seq),
       cedd_loss(rou, rsched, x0, xt, t, z, CeddVariant::cedd_star, 0.5, thr));
  make(abs, loglin, B, L, N, x0, xt, t, z);
  same(md4_loss(abs, loglin, x0, xt, t, z, {}, 0.5, seq),
       md4_loss(abs, loglin, x0, xt, t, z, {}, 0.5, thr));
  const xt::xtensor<int, 1> step = {1, 2, 3, 4, 5, 6};
  make(abs, loglin, B, L, N, x0, xt, t, z);
  for (int b = 0; b < B; ++b)
    for (int l = 0; l < L; ++l) {
      CounterRng r(2, 0, static_cast<std::uint64_t>(b * L + l));
      xt(b, l) = abs.sample_forward(x0(b, l), loglin.sigma_bar(step(b) / 6.0), r);
    }
  same(md4_discrete_loss(abs, loglin, x0, xt, step, 6, z, Md4DiscreteVariant::code, {}, 0.5, seq),
       md4_discrete_loss(abs, loglin, x0, xt, step, 6, z, Md4DiscreteVariant::code, {}, 0.5, thr));

  // GenMD4: two masked draws of x0.
  std::vector<double> wr(N);
  for (int v = 0; v < N; ++v) wr[v] = -1.0 + 0.05 * v;
  const PerTokenPolynomialSchedule<double> gs(wr);
  xt::xtensor<int, 2> z1 = x0, z2 = x0;
  for (int i = 0; i < B * L; ++i) {
    z1.data()[i] = i % 3 == 0 ? N : x0.data()[i];
    z2.data()[i] = i % 2 == 0 ? N : x0.data()[i];
  }
  for (int b = 0; b < B; ++b) t(b) = 1e-3 + 0.9 * (b + 0.5) / B;
  xt::xtensor<double, 3> z2l = z * 0.5;
  const auto a = genmd4_loss(gs, x0, z1, z2, z, z2l, t, {}, seq);
  const auto c = genmd4_loss(gs, x0, z1, z2, z, z2l, t, {}, thr);
  for (int b = 0; b < B; ++b) {
    CHECK(a.surrogate(b) == c.surrogate(b));
    CHECK(a.nelbo(b) == c.nelbo(b));
  }
  for (std::size_t i = 0; i < a.grad_logits1.size(); ++i) {
    CHECK(a.grad_logits1.data()[i] == c.grad_logits1.data()[i]);
    CHECK(a.grad_logits2.data()[i] == c.grad_logits2.data()[i]);
  }
  for (int v = 0; v < N; ++v) CHECK(a.grad_w(v) == c.grad_w(v));
}
