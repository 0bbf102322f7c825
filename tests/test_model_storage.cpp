// Models that hand out their own output storage (Model::evaluate(), model/model.hpp) and the
// consumers' memory at a large output size (issue 15 item 6: no B x L x V buffer beyond what the
// model holds):
//  * the Monte Carlo J1/J2 and MD4 ELBO estimators and the grid and uniformization samplers give
//    bit-identical results whether the model writes into the consumer's buffer (operator()) or
//    returns its own (evaluate()), and the J estimator's results do not depend on the size of its
//    work-row chunks (ScoreBoundOptions::scratch_bytes);
//  * with evaluate() the estimators and samplers allocate no buffer of B L V values (the
//    allocations are recorded by a host memory space of the test), with operator() they do: the
//    check sees the copy when there is one;
//  * softmax_xent_row, its libm and naive references work in place (grad = z), bit for bit as
//    with a separate gradient row (the MD4 ELBO's loss runs over the model's outputs).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include <discdiff/bound/bounds.hpp>
#include <discdiff/generator/generators.hpp>
#include <discdiff/objective/objectives.hpp>
#include <discdiff/sampler/sampler.hpp>
#include <discdiff/sampler/uniformization.hpp>
#include <discdiff/schedule/schedules.hpp>

using namespace discdiff;

namespace {

/// Host memory that records its largest single allocation.
struct TrackedSpace {
  static constexpr const char* name = "tracked-host";
  static constexpr bool host_accessible = true;
  static inline std::size_t largest = 0;
  static void* allocate(std::size_t bytes) {
    largest = std::max(largest, bytes);
    return HostSpace::allocate(bytes);
  }
  static void deallocate(void* p) noexcept { HostSpace::deallocate(p); }
};

/// The sequential executor over that memory.
struct TrackedExecutor : SequentialExecutor {
  using memory_space = TrackedSpace;
};

/// A deterministic logits (or log-score) model over K classes: entry k of position (b, l) is a
/// smooth function of k, x_t, l and t_b. Own = true: it keeps its outputs in its own storage (a
/// std::vector, not the tracked space, as a network keeps its logits) and has evaluate().
template <bool Own, ModelOutput Out = ModelOutput::logits>
struct FnModel {
  using value_type = double;
  using memory_space = TrackedSpace;
  static constexpr ModelOutput output = Out;
  int K;
  mutable std::vector<double> store;
  mutable int calls = 0;

  int num_classes() const { return K; }
  bool time_conditioned() const { return true; }
  void fill(const ModelQuery<double>& q, double* out) const {
    ++calls;
    for (std::int64_t i = 0; i < q.B * q.L; ++i) {
      const double t = q.t[i / q.L];
      const int x = q.xt[i];
      for (int k = 0; k < K; ++k)
        out[i * K + k] = 2.5 * std::sin(0.37 * k + 1.3 * x + 0.11 * double(i % q.L) + 2.0 * t) +
                         0.01 * double(k % 7);
    }
  }
  void operator()(const ModelQuery<double>& q, double* out) const { fill(q, out); }
};

template <ModelOutput Out>
struct FnModel<true, Out> : FnModel<false, Out> {
  double* evaluate(const ModelQuery<double>& q) const {
    this->store.resize(static_cast<std::size_t>(q.B * q.L * this->K));
    this->fill(q, this->store.data());
    return this->store.data();
  }
};

static_assert(!model_has_evaluate_v<FnModel<false>>, "operator() only");
static_assert(model_has_evaluate_v<FnModel<true>>, "evaluate()");

std::vector<int> tokens(std::int64_t n, int N, std::uint64_t seed) {
  std::vector<int> x(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    x[static_cast<std::size_t>(i)] = int(uniform<double>(seed, 0x77u, std::uint64_t(i)) * N) % N;
  return x;
}

void same(const McEstimate& a, const McEstimate& b) {
  CHECK(a.mean == b.mean);
  CHECK(a.std_error == b.std_error);
  CHECK(a.samples == b.samples);
}

constexpr int kN = 300;                  // regular tokens
constexpr std::int64_t kB = 4, kL = 8;   // estimator batch
constexpr std::int64_t kSeqs = 10;       // 3 batches, the last one short

template <class Gen, class Sched>
void check_score_bounds(const Gen& gen, const Sched& sched, ModelOutput out_kind) {
  const int D = gen.num_states();
  const std::vector<int> x0 = tokens(kSeqs * kL, kN, 11);
  ScoreBoundOptions o;
  o.batch_size = kB;
  o.passes = 2;
  o.seed = 9;
  o.eps = 1e-3;
  o.output = out_kind;
  const int V = out_kind == ModelOutput::logits ? kN : D;
  o.output_size = V;
  const TrackedExecutor ex;
  const std::size_t blv = std::size_t(kB * kL) * std::size_t(V) * sizeof(double);
  auto run = [&](auto&& model, std::size_t scratch) {
    ScoreBoundOptions s = o;
    s.scratch_bytes = scratch;
    TrackedSpace::largest = 0;
    return estimate_score_bounds(gen, sched, model, x0, kL, s, ex);
  };
  // Reference: the model writes into the estimator's buffer, one chunk of work rows.
  const auto ref = [&] {
    if (out_kind == ModelOutput::logits) return run(FnModel<false>{V, {}, 0}, 0);
    return run(FnModel<false, ModelOutput::log_scores>{V, {}, 0}, 0);
  }();
  CHECK(TrackedSpace::largest >= blv);  // the copy of the outputs and the B L D work rows
  REQUIRE(std::isfinite(ref.j1.mean));
  REQUIRE(std::isfinite(ref.j2_direct.mean));
  // Chunks of 1, 5 and 7 positions (7 does not divide B L = 32 nor the short batch's 16).
  for (std::int64_t c : {1, 5, 7, 32}) {
    CAPTURE(c);
    const std::size_t bytes = std::size_t(c) * 2 * std::size_t(D) * sizeof(double);
    const ScoreBoundEstimate e = out_kind == ModelOutput::logits
                                     ? run(FnModel<true>{V, {}, 0}, bytes)
                                     : run(FnModel<true, ModelOutput::log_scores>{V, {}, 0}, bytes);
    // What the estimator allocated: the work rows of c positions, O(B L) values, never B L V.
    CHECK(TrackedSpace::largest <= std::max<std::size_t>(bytes / 2, std::size_t(kB * kL) * 8));
    if (c < 32) CHECK(TrackedSpace::largest < blv);
    same(e.j1, ref.j1);
    same(e.j2, ref.j2);
    same(e.j2_direct, ref.j2_direct);
    same(e.gap, ref.gap);
  }
}

}  // namespace

TEST_CASE("model storage: J1/J2 from the model's own outputs, in chunks of work rows, bit for bit") {
  const LogLinearSchedule<double> ll(1e-3);
  SUBCASE("absorbing, logits") { check_score_bounds(AbsorbingGenerator<double>(kN), ll, ModelOutput::logits); }
  SUBCASE("uniform, logits") { check_score_bounds(UniformGenerator<double>(kN), GeometricSchedule<double>(1e-3, 6.0), ModelOutput::logits); }
  SUBCASE("roulette, logits") { check_score_bounds(RouletteGenerator<double>(kN, 0.9), ll, ModelOutput::logits); }
  SUBCASE("absorbing, log-scores") { check_score_bounds(AbsorbingGenerator<double>(kN), ll, ModelOutput::log_scores); }
}

TEST_CASE("model storage: the MD4 ELBO runs its loss over the model's outputs, no B L V buffer") {
  const AbsorbingGenerator<double> gen(kN);
  const LinearSchedule<double> lin;
  const std::vector<int> x0 = tokens(kSeqs * kL, kN, 12);
  const TrackedExecutor ex;
  for (int V : {kN, kN + 1}) {
    for (int steps : {0, 16}) {
      CAPTURE(V);
      CAPTURE(steps);
      Md4ElboOptions o;
      o.batch_size = kB;
      o.passes = 2;
      o.seed = 4;
      o.steps = steps;
      o.output_size = V;
      const std::size_t blv = std::size_t(kB * kL) * std::size_t(V) * sizeof(double);
      TrackedSpace::largest = 0;
      const Md4ElboEstimate a = estimate_md4_elbo(gen, lin, FnModel<false>{V, {}, 0}, x0, kL, o, ex);
      CHECK(TrackedSpace::largest >= blv);  // the estimator's copy of the outputs
      TrackedSpace::largest = 0;
      const Md4ElboEstimate b = estimate_md4_elbo(gen, lin, FnModel<true>{V, {}, 0}, x0, kL, o, ex);
      CHECK(TrackedSpace::largest < blv / 4);
      REQUIRE(std::isfinite(a.elbo.mean));
      same(b.elbo, a.elbo);
    }
  }
}

TEST_CASE("model storage: samplers read the model's own outputs, bit for bit, no B L V copy") {
  const AbsorbingGenerator<double> gen(kN);
  const LogLinearSchedule<double> ll(1e-3);
  const TrackedExecutor ex;
  const std::int64_t B = 3, L = 6;
  const std::size_t blk = std::size_t(B * L) * std::size_t(kN) * sizeof(double);
  struct Case {
    SamplerKind kind;
    GridKind grid;
    double top_p;
  };
  for (const Case c : {Case{SamplerKind::md4_ancestral, GridKind::uniform, 1.0},
                       Case{SamplerKind::md4_ancestral, GridKind::uniform, 0.9},
                       Case{SamplerKind::analytic, GridKind::sedd, 1.0},
                       Case{SamplerKind::euler, GridKind::sedd, 1.0}}) {
    CAPTURE(int(c.kind));
    CAPTURE(c.top_p);
    SamplerOptions so;
    so.kind = c.kind;
    so.grid = c.grid;
    so.steps = 12;
    so.seed = 21;
    so.eps = c.kind == SamplerKind::md4_ancestral ? 1e-5 : 1e-3;
    so.top_p = c.top_p;
    so.final_step = FinalStep::sample;
    std::vector<int> xa, xb;
    TrackedSpace::largest = 0;
    const FnModel<false> copy{kN, {}, 0};
    sample(ex, gen, ll, copy, so, B, L, xa);
    CHECK(TrackedSpace::largest >= blk);
    TrackedSpace::largest = 0;
    const FnModel<true> own{kN, {}, 0};
    sample(ex, gen, ll, own, so, B, L, xb);
    CHECK(xa == xb);
    CHECK(own.calls == copy.calls);
    // Top-p keeps one truncation scratch of the outputs' size; without it nothing V-sized.
    if (c.top_p < 1.0)
      CHECK(TrackedSpace::largest <= blk);
    else
      CHECK(TrackedSpace::largest < blk / 4);
  }
  // Uniformization (compact batches of the rows still running).
  UniformizationOptions uo;
  uo.t_min = 1e-3;
  uo.intervals = 8;
  uo.seed = 2;
  std::vector<int> xa, xb;
  TrackedSpace::largest = 0;
  sample_uniformization(ex, gen, ll, FnModel<false>{kN, {}, 0}, uo, B, L, xa);
  CHECK(TrackedSpace::largest >= blk);
  TrackedSpace::largest = 0;
  sample_uniformization(ex, gen, ll, FnModel<true>{kN, {}, 0}, uo, B, L, xb);
  CHECK(TrackedSpace::largest < blk / 4);
  CHECK(xa == xb);
}

TEST_CASE("model storage: softmax cross-entropy rows in place equal the separate-row results") {
  for (int V : {1, 3, 4, 5, 8, 27, 301}) {
    for (int a : {0, V / 2, V - 1}) {
      CAPTURE(V);
      CAPTURE(a);
      std::vector<double> z(static_cast<std::size_t>(V));
      for (int v = 0; v < V; ++v) z[std::size_t(v)] = 3.0 * std::sin(0.9 * v + 0.3 * V) + (v == a ? 1.0 : 0.0);
      if (V > 3) z[1] = z[2];  // a tie
      std::vector<float> zf(z.begin(), z.end());
      // row(z, grad) -> ce, run with a separate gradient row and in place (grad = z): the same
      // value and gradient, bit for bit. Returns the separate run's ce.
      auto same_in_place = [&](const auto& zs, auto row) {
        using T = typename std::decay_t<decltype(zs)>::value_type;
        std::vector<T> g(zs.size()), w = zs;
        const T ce = row(zs.data(), g.data());
        const T ci = row(w.data(), w.data());
        CHECK(std::memcmp(&ce, &ci, sizeof ce) == 0);
        CHECK(std::memcmp(g.data(), w.data(), g.size() * sizeof(T)) == 0);
        return ce;
      };
      for (double gw : {0.0, 0.75}) {
        const float gf = float(gw);
        same_in_place(z, [&](const double* x, double* g) { return softmax_xent_row(x, V, V, a, gw, g); });
        same_in_place(zf, [&](const float* x, float* g) { return softmax_xent_row(x, V, V, a, gf, g); });
        same_in_place(z, [&](const double* x, double* g) { return softmax_xent_row_libm(x, V, V, a, gw, g); });
        const double ce =
            same_in_place(z, [&](const double* x, double* g) { return softmax_xent_row_naive(x, V, V, a, gw, g); });
        {
          // and the value is the cross-entropy: log sum exp z - z_a (independent form)
          double m = z[0];
          for (double v : z) m = std::max(m, v);
          double s = 0;
          for (double v : z) s += std::exp(v - m);
          CHECK(ce == doctest::Approx(m + std::log(s) - z[std::size_t(a)]).epsilon(1e-12));
        }
      }
    }
  }
}
