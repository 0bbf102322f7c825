// apps/info.cpp: `discdiff info`: what a checkpoint holds (run options, network, vocabulary,
// training progress, tensors), after the same checks as loading it for training.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "checkpoint.hpp"
#include "command.hpp"

namespace discdiff {
namespace app {
namespace {

struct InfoArgs {
  std::string checkpoint;
  bool json = false;
  bool digest = false;
};

/// FNV-1a 64 of a tensor's bytes, as 16 hex digits (compares checkpoints bit for bit).
std::string fnv1a64(const unsigned char* p, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

int run_info(const InfoArgs& a) {
  const Checkpoint ck = load_checkpoint(a.checkpoint);  // full validation first
  const io::SafetensorsFile f = io::SafetensorsFile::load(a.checkpoint);
  const Problem p(ck.cfg, ck.tokenizer.num_regular());
  if (a.json) {
    nlohmann::json j;
    j["metadata"] = ck.meta;
    nlohmann::json t = nlohmann::json::object();
    for (const auto& name : f.names()) {
      const auto& ti = f.info(name);
      t[name] = {{"dtype", io::dtype_name(ti.dtype)}, {"shape", ti.shape}};
      if (a.digest) t[name]["fnv1a64"] = fnv1a64(f.data(name), ti.end - ti.begin);
    }
    j["tensors"] = t;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  const auto& s = ck.state;
  std::cout << a.checkpoint << "\n"
            << "  run        " << ck.cfg.run_name << ": " << p.describe() << "\n"
            << "  progress   step " << s.step << " of " << ck.cfg.steps << ", " << s.tokens
            << " training tokens, " << s.elapsed_s << " s of training\n"
            << "  network    " << s.net->num_params() << " parameters: " << ck.cfg.n_layer
            << " layers, d " << ck.cfg.d_model << ", " << ck.cfg.n_head << " heads, d_ff "
            << s.net->config().d_ff << ", L " << ck.cfg.seq_len
            << (s.net->config().causal ? ", causal" : "")
            << (s.net->config().time_dependent() ? ", time-conditioned"
                : s.net->config().time_cond       ? ", no time input (adaLN-zero on sbar = 0)"
                                                  : ", no time input (plain pre-norm blocks)")
            << "\n"
            << "  vocabulary " << ck.tokenizer.kind_name() << ", " << ck.tokenizer.num_regular()
            << " symbols + MASK"
            << (ck.tokenizer.is_subword() ? " (" + ck.tokenizer.describe() + ", stored in the checkpoint)" : "")
            << "\n";
  auto d = ck.meta.find("data.description");
  if (d != ck.meta.end()) std::cout << "  data       " << d->second << "\n";
  auto h = ck.meta.find("data.window_entropy_bpc");
  if (h != ck.meta.end()) std::cout << "  entropy    " << h->second << " bits/token (source, per window)\n";
  std::cout << "  random     Philox counter key seed " << ck.meta.at("rng.seed") << ", step "
            << ck.meta.at("rng.step") << "\n  tensors\n";
  for (const auto& name : f.names()) {
    const auto& ti = f.info(name);
    std::cout << "    " << name << "  " << io::dtype_name(ti.dtype) << " [";
    for (std::size_t i = 0; i < ti.shape.size(); ++i) std::cout << (i ? ", " : "") << ti.shape[i];
    std::cout << "]";
    if (a.digest) std::cout << "  fnv1a64 " << fnv1a64(f.data(name), ti.end - ti.begin);
    std::cout << "\n";
  }
  std::cout << "  options   ";
  int k = 0;
  for (const auto& kv : ck.cfg.to_map()) std::cout << (k++ % 4 ? "  " : "\n    ") << kv.first << "=" << kv.second;
  std::cout << "\n";
  return 0;
}

const RegisterCommand reg{
    {"info", "Show what a checkpoint holds (options, network, vocabulary, progress, tensors)",
     [](CLI::App& sub) -> Action {
       auto a = std::make_shared<InfoArgs>();
       sub.add_option("checkpoint", a->checkpoint, "checkpoint file")->required()->check(CLI::ExistingFile);
       sub.add_flag("--json", a->json, "print the metadata and tensor list as JSON");
       sub.add_flag("--digest", a->digest,
                    "also print a 64-bit FNV-1a digest of every tensor's bytes (to compare runs)");
       return [a] { return run_info(*a); };
     }}};

}  // namespace
}  // namespace app
}  // namespace discdiff
