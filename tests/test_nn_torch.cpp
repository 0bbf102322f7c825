// The fp32 transformer against PyTorch (golden files of tests/torch_reference/,
// written by make_golden.py from the same parameters): logits, loss and every
// gradient tensor within 1e-4 relative or 1e-5 absolute, and the parameters after
// 5 AdamW steps (with clipping and warm-up) within 1e-5, for a bidirectional
// time-conditioned config, a causal config, and a config with the RMSNorm and SwiGLU
// options.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <discdiff/nn/nn.hpp>

using namespace discdiff;
using namespace discdiff::nn;

namespace {

const HostBackend be = make_host_backend();

// Acceptance tolerances of issue 5.
constexpr double kTorchRel = 1e-4;
constexpr double kTorchAbs = 1e-5;
constexpr double kAdamTol = 1e-5;

/// Golden directory: DISCDIFF_NN_GOLDEN_DIR if the build defines it, else next to this file.
std::string golden_dir(const std::string& name) {
#ifdef DISCDIFF_NN_GOLDEN_DIR
  std::string base = DISCDIFF_NN_GOLDEN_DIR;
#else
  std::string base = __FILE__;
  base = base.substr(0, base.find_last_of("/\\") + 1) + "torch_reference/golden";
#endif
  return base + "/" + name + "/";
}

struct Golden {
  std::vector<int> tokens, targets;
  std::vector<unsigned char> mask;
  std::vector<float> sbar, params, logits, grads, params5;
  std::vector<double> optim;
  float loss = 0;
  int B = 0, L = 0;
};

/// Reads a golden case and checks that its stored config matches `cfg`
/// (std::invalid_argument naming the first differing field otherwise).
Golden load_golden(const std::string& name, const ModelConfig& cfg) {
  const std::string dir = golden_dir(name);
  cfg.require_matches(load_npy(dir + "config.npy").as<std::int64_t>(), ("golden file " + dir).c_str());
  Golden g;
  const NpyArray tok = load_npy(dir + "tokens.npy");
  if (tok.shape.size() != 2) throw std::runtime_error("golden tokens must be B x L");
  g.B = int(tok.shape[0]);
  g.L = int(tok.shape[1]);
  g.tokens = tok.as<int>();
  g.targets = load_npy(dir + "targets.npy").as<int>();
  g.mask = load_npy(dir + "mask.npy").as<unsigned char>();
  g.sbar = load_npy(dir + "sbar.npy").as<float>();
  g.params = load_npy(dir + "params.npy").as<float>();
  g.logits = load_npy(dir + "logits.npy").as<float>();
  g.grads = load_npy(dir + "grads.npy").as<float>();
  g.params5 = load_npy(dir + "params_adamw5.npy").as<float>();
  g.optim = load_npy(dir + "optim.npy").as<double>();
  g.loss = load_npy(dir + "loss.npy").as<float>().at(0);
  return g;
}

float loss_and_dlogits(Transformer<float>& net, const Golden& g) {
  const ModelConfig& c = net.config();
  const float* lg = net.forward(g.tokens.data(), g.sbar.data(), g.B, g.L);
  if (c.causal) return causal_cross_entropy(be, lg, g.tokens.data(), g.B, g.L, c.vocab_out, net.dlogits());
  return masked_cross_entropy(be, lg, g.targets.data(), g.mask.data(), long(g.B) * g.L, c.vocab_out,
                              net.dlogits());
}

/// Counts entries of a outside |a - b| <= abs + rel |b|, reporting the first few.
int compare(const std::string& what, const float* a, const float* b, std::size_t n, double rel,
            double abs) {
  int bad = 0;
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double err = std::abs(double(a[i]) - double(b[i]));
    const double tol = std::max(abs, rel * std::abs(double(b[i])));
    worst = std::max(worst, err / tol);
    if (!(err <= tol) && ++bad <= 3) {
      INFO(what << "[" << i << "]: C++ " << a[i] << ", torch " << b[i]);
      CHECK(false);
    }
  }
  INFO(what << ": worst error / tolerance = " << worst);
  CHECK(bad == 0);
  return bad;
}

void check_case(const std::string& name, const ModelConfig& cfg) {
  const Golden g = load_golden(name, cfg);
  Transformer<float> net(cfg);
  net.set_params(g.params);
  const float loss = loss_and_dlogits(net, g);
  const std::size_t nlog = std::size_t(g.B) * g.L * cfg.vocab_out;
  REQUIRE(g.logits.size() == nlog);
  compare(name + " logits", net.logits(), g.logits.data(), nlog, kTorchRel, kTorchAbs);
  compare(name + " loss", &loss, &g.loss, 1, kTorchRel, kTorchAbs);
  net.zero_grad();
  net.backward();
  REQUIRE(g.grads.size() == net.num_params());
  for (const auto& t : net.layout().tensors)
    compare(name + " grad " + t.name, net.grads().data() + t.offset, g.grads.data() + t.offset,
            t.size(), kTorchRel, kTorchAbs);

  // 5 AdamW steps on the same batch: clip 1.0, lr_n = lr min(1, n / warmup).
  net.set_params(g.params);
  AdamWConfig ac;
  ac.beta1 = g.optim[2];
  ac.beta2 = g.optim[3];
  ac.eps = g.optim[4];
  ac.weight_decay = g.optim[5];
  AdamW<float> opt(net.num_params(), ac);
  LrSchedule lr{g.optim[0], long(g.optim[1]), 0, LrSchedule::Kind::constant, 0.0};
  for (int n = 1; n <= int(g.optim[7]); ++n) {
    loss_and_dlogits(net, g);
    net.zero_grad();
    net.backward();
    clip_grad_norm(be, net.grads().data(), net.num_params(), g.optim[6]);
    opt.step(be, net.params().data(), net.grads().data(), lr.at(n));
  }
  for (const auto& t : net.layout().tensors)
    compare(name + " AdamW x5 " + t.name, net.params().data() + t.offset,
            g.params5.data() + t.offset, t.size(), 0.0, kAdamTol);
}

ModelConfig bidir_config() {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.d_model = 16;
  c.d_ff = 64;
  c.seq_len = 8;
  c.vocab_in = 12;
  c.vocab_out = 12;
  c.cond_dim = 8;
  c.temb_dim = 16;
  c.time_cond = true;
  c.causal = false;
  return c;
}
ModelConfig causal_config() {
  ModelConfig c = bidir_config();
  c.vocab_out = 11;
  c.cond_dim = 128;
  c.temb_dim = 256;
  c.time_cond = false;
  c.causal = true;
  return c;
}

/// MDLM's time-independent network: the bidirectional DDiT conditioned on sbar = 0. The golden
/// sbar.npy holds random noise levels; the PyTorch reference replaces them by 0, the C++ network
/// must ignore them.
ModelConfig notime_config() {
  ModelConfig c = bidir_config();
  c.zero_time = true;
  return c;
}

ModelConfig rms_swiglu_config() {
  ModelConfig c = bidir_config();
  c.d_ff = 24;
  c.norm = NormType::rms_norm;
  c.mlp = MlpType::swiglu;
  return c;
}

}  // namespace

TEST_CASE("nn vs PyTorch: bidirectional time-conditioned DDiT (masked CE)") {
  check_case("bidir_timecond", bidir_config());
}

TEST_CASE("nn vs PyTorch: causal transformer (next-token CE)") {
  check_case("causal", causal_config());
}

TEST_CASE("nn vs PyTorch: the options RMSNorm and SwiGLU (time-conditioned, masked CE)") {
  check_case("rms_swiglu", rms_swiglu_config());
}

TEST_CASE("nn vs PyTorch: time-independent DDiT (adaLN-zero on sbar = 0, masked CE)") {
  check_case("bidir_notime", notime_config());
  // the golden noise levels are not 0, so the case is not the time-conditioned one in disguise
  const Golden g = load_golden("bidir_notime", notime_config());
  for (float sb : g.sbar) CHECK(sb > 0.01f);
}

TEST_CASE("nn vs PyTorch: a golden file whose config does not match is rejected") {
  ModelConfig c = bidir_config();
  c.d_model = 32;
  try {
    load_golden("bidir_timecond", c);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    CHECK(m.find("config.d_model = 16") != std::string::npos);
    CHECK(m.find("32") != std::string::npos);
  }
  CHECK_THROWS_AS(load_golden("causal", bidir_config()), std::invalid_argument);
  try {
    load_golden("rms_swiglu", bidir_config());
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("config.d_ff = 24") != std::string::npos);
  }
  CHECK_THROWS_AS(load_golden("no_such_case", bidir_config()), std::runtime_error);
  for (const auto& [name, cfg] : {std::pair<const char*, ModelConfig>{"bidir_notime", bidir_config()},
                                  {"bidir_timecond", notime_config()}}) {
    try {
      load_golden(name, cfg);
      FAIL("no exception");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find("config.zero_time") != std::string::npos);
    }
  }
}
