// A GPT-2-sized vocabulary (N = 50257 regular tokens) through the program's training step,
// bounds and sampler (apps/diffusion.hpp) on a tiny network and synthetic token ids:
//  * at initialisation the head is zero, so every logit is 0 and the AR model's exact NLL is
//    log N nats per token (closed form), the MD4 ELBO's reconstruction term per masked token is
//    log N as well;
//  * training steps of ar, md4, cedd and sedd give finite losses and change the parameters;
//  * a forward-only use of the network (sampling, evaluation) does not allocate the B x L x V
//    gradient of the logits (nn::Transformer allocates dlogits on first use), training does;
//  * the sampler returns ids inside the vocabulary.
// Memory and speed at this vocabulary are measured by bench/bench_large_vocab.cpp
// (docs/benchmarks.md).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "diffusion.hpp"

namespace {

using namespace discdiff;
using namespace discdiff::app;

constexpr int kGpt2 = 50257;

RunConfig tiny(const std::string& objective) {
  RunConfig c;
  c.objective = objective;
  c.n_layer = 1;
  c.d_model = 8;
  c.n_head = 2;
  c.cond_dim = 4;
  c.seq_len = 8;
  c.batch = 2;
  c.steps = 10;
  c.warmup = 1;
  c.lr = 1e-2;
  c.seed = 3;
  c.resolve_auto();
  c.validate();
  return c;
}

std::vector<int> ids(std::size_t n, std::uint64_t salt) {
  std::vector<int> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    CounterRng rng(0x1A26E5u, 1u, (salt << 32) | i);
    x[i] = int(rng.uniform_int(kGpt2));
  }
  return x;
}

}  // namespace

TEST_CASE("large vocabulary: at initialisation the AR NLL is log N per token (N = 50257)") {
  const RunConfig c = tiny("ar");
  const Problem p(c, kGpt2);
  TrainState s = TrainState::fresh(p);
  CHECK(s.net->config().vocab_in == kGpt2 + 1);
  CHECK(s.net->config().vocab_out == kGpt2);
  const std::vector<int> x0 = ids(4 * 8, 1);
  EvalOptions eo;
  eo.batch = 2;
  const auto reps = evaluate_bounds(p, *s.net, s.w_raw, x0, 4, 8, eo);
  REQUIRE(reps.size() == 1);
  CHECK(reps[0].est.nats_per_token() == doctest::Approx(std::log(double(kGpt2))).epsilon(1e-6));
}

TEST_CASE("large vocabulary: training steps, the gradient buffer only when training, sampling") {
  for (const char* obj : {"ar", "md4", "cedd", "sedd"}) {
    CAPTURE(obj);
    const RunConfig c = tiny(obj);
    const Problem p(c, kGpt2);
    TrainState s = TrainState::fresh(p);
    Net& net = *s.net;
    const std::size_t V = std::size_t(net.config().vocab_out);
    CHECK(V == (std::string(obj) == "sedd" ? std::size_t(kGpt2) + 1 : std::size_t(kGpt2)));
    if (std::string(obj) != "ar") {
      // Sampling first: forward passes only; the logits (B L V) but not their gradient.
      SamplerOptions so;
      so.steps = 3;
      so.seed = 5;
      so.kind = std::string(obj) == "md4" ? SamplerKind::md4_ancestral : SamplerKind::analytic;
      so.grid = std::string(obj) == "md4" ? GridKind::uniform : GridKind::sedd;
      so.eps = std::string(obj) == "md4" ? 1e-5 : c.t_eps;
      so.final_step = FinalStep::sample;
      std::vector<int> x;
      std::visit(
          [&](const auto& g) {
            if (p.score_head())
              sample(net.backend().exec, g, p.schedule(), NetModel<ModelOutput::log_scores>{&p, &net},
                     so, 2, 8, x);
            else
              sample(net.backend().exec, g, p.schedule(), NetModel<ModelOutput::logits>{&p, &net}, so,
                     2, 8, x);
          },
          p.generator());
      REQUIRE(x.size() == 16);
      for (int v : x) CHECK((v >= 0 && v < kGpt2));
      const std::size_t logits_bytes = 2 * 8 * V * sizeof(Real);
      const std::size_t fwd_only = net.activation_bytes();
      CHECK(fwd_only >= logits_bytes);
      CHECK(fwd_only < 2 * logits_bytes);  // no second B x L x V buffer
      // Evaluation (the headline bound, and J1/J2 for md4 too) reads the network's own logits
      // (NetModel::evaluate): still no gradient buffer in the network; the estimators' side is
      // tested in test_model_storage.cpp.
      static_assert(model_has_evaluate_v<NetModel<ModelOutput::logits>> &&
                        model_has_evaluate_v<NetModel<ModelOutput::log_scores>>,
                    "the network hands out its own outputs");
      EvalOptions eo;
      eo.batch = 2;
      eo.md4_j_bounds = std::string(obj) == "md4";
      const auto reps = evaluate_bounds(p, net, s.w_raw, ids(4 * 8, 3), 4, 8, eo);
      REQUIRE(reps.size() >= 2);
      for (const auto& r : reps) CHECK(std::isfinite(r.est.mean));
      CHECK(net.activation_bytes() == fwd_only);
    }
    const std::vector<Real> before = net.params_host();
    StepScratch sc;
    for (std::int64_t k = 1; k <= 2; ++k) {
      const StepResult r = train_step(p, s, sc, ids(2 * 8, std::uint64_t(10 + k)), 2, 8, k);
      CHECK(std::isfinite(r.loss_per_token));
      CHECK(r.loss_per_token > 0);
      CHECK(std::isfinite(r.grad_norm));
    }
    CHECK(net.params_host() != before);
    if (std::string(obj) != "ar") {  // ar runs at L + 1 (the BOS), its own buffer sizes
      const std::size_t logits_bytes = 2 * 8 * V * sizeof(Real);
      CHECK(net.activation_bytes() >= 2 * logits_bytes);  // logits and their gradient
    }
  }
}
