// tests/tools/interop_logits.cpp: the network output of a discdiff checkpoint on given inputs,
// for the PyTorch interop test (tests/interop/test_interop_torch.py).
//
//   discdiff_interop_logits CHECKPOINT INPUTS OUTPUT [raw|ema]
//
// INPUTS is a safetensors file with `tokens` (I64 [B, L]) and, for a time-conditioned network,
// `sigma` (F32 [B]: the network's time input as given to forward()); OUTPUT gets `logits`
// (F32 [B, L, V_out]), the raw head output of nn::Transformer::forward with the checkpoint's
// raw parameters (default) or its EMA. Exit 0 on success, 2 with one line on any error.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <discdiff/io/safetensors.hpp>

#include "checkpoint.hpp"

int main(int argc, char** argv) {
  using namespace discdiff;
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: %s CHECKPOINT INPUTS OUTPUT [raw|ema]\n", argv[0]);
    return 2;
  }
  try {
    app::Checkpoint ck = app::load_checkpoint(argv[1]);
    app::Net& net = *ck.state.net;
    if (argc == 5 && std::string(argv[4]) == "ema") {
      if (!ck.state.ema) throw std::runtime_error("the checkpoint has no EMA");
      net.set_params(ck.state.ema->shadow());
    }
    const auto in = io::SafetensorsFile::load(argv[2]);
    const auto& ti = in.info("tokens");
    if (ti.shape.size() != 2) throw std::runtime_error("tokens must be [B, L]");
    const int B = int(ti.shape[0]), L = int(ti.shape[1]);
    const std::vector<std::int64_t> t64 = in.read<std::int64_t>("tokens", ti.shape);
    const std::vector<int> tokens(t64.begin(), t64.end());
    std::vector<float> sigma;
    if (net.config().time_cond) sigma = in.read<float>("sigma", {B});
    app::AppBuffer<int> dt(tokens.size());
    copy_from_host(dt, tokens.data(), tokens.size());
    app::AppBuffer<float> ds(sigma.size());
    if (!sigma.empty()) copy_from_host(ds, sigma.data(), sigma.size());
    net.forward(dt.data(), sigma.empty() ? nullptr : ds.data(), B, L);
    const int V = net.config().vocab_out;
    std::vector<float> logits(std::size_t(B) * L * V);
    {
      app::AppBuffer<float> lb(logits.size());
      copy_kernel_n(net.backend().exec, lb.data(), net.logits(), std::int64_t(logits.size()));
      logits = to_host_vector(lb);
    }
    io::SafetensorsWriter w;
    w.add<float>("logits", {B, L, V}, logits.data());
    w.write_atomic(argv[3]);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "discdiff_interop_logits: %s\n", e.what());
    return 2;
  }
}
