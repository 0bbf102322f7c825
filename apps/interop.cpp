// apps/interop.cpp: `discdiff export` and `discdiff import`: the network of a checkpoint as a
// PyTorch state dict (safetensors) that SEDD's and MDLM's DDiT classes load with strict=True,
// and such a state dict (trained with the PyTorch code) as a discdiff checkpoint that
// eval/sample/info read. Names, shapes and what each format adds: nn/state_dict.hpp and
// docs/nn.md ("Upstream names and formats").
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include <discdiff/nn/state_dict.hpp>

#include "checkpoint.hpp"
#include "command.hpp"
#include "corpus_loader.hpp"
#include "diffusion.hpp"
#include "run_config.hpp"
#include "run_files.hpp"

namespace discdiff {
namespace app {
namespace {

/// The state-dict options of `format` for the run of a checkpoint: SEDD with the uniform
/// generator leaves out the embedding's MASK row (never an input there).
nn::StateDictOptions interop_options(const std::string& format, const Problem& p) {
  nn::StateDictOptions o;
  o.format = nn::parse_state_dict_format(format);
  o.drop_mask_embedding = o.format == nn::StateDictFormat::sedd && p.has_generator() &&
                          p.config().generator == "uniform";
  return o;
}

// ---------------------------------------------------------------- export

struct ExportArgs {
  std::string checkpoint, out, format = "sedd";
  bool raw = false;
};

int run_export(const ExportArgs& a) {
  Checkpoint ck = load_checkpoint(a.checkpoint);
  const Problem p(ck.cfg, ck.tokenizer.num_regular());
  Net& net = *ck.state.net;
  const bool ema = !a.raw && ck.state.ema;
  if (ema) net.set_params(ck.state.ema->shadow());
  const nn::StateDictOptions o = interop_options(a.format, p);
  require_writable(a.out);
  io::SafetensorsWriter w;
  // What PyTorch's safetensors.torch.save_file writes, and where the tensors came from.
  w.set_metadata("format", "pt");
  w.set_metadata("discdiff.source", a.checkpoint);
  w.set_metadata("discdiff.state_dict_format", a.format);
  w.set_metadata("discdiff.weights", ema ? "ema" : "raw");
  w.set_metadata("discdiff.step", std::to_string(ck.state.step));
  w.set_metadata("discdiff.objective", ck.cfg.objective);
  const auto names = nn::ModelConfig::field_names();
  const auto vals = net.config().to_vector();
  for (std::size_t i = 0; i < names.size(); ++i)
    w.set_metadata("discdiff.model." + names[i], std::to_string(vals[i]));
  nn::add_state_dict(w, net.config(), net.params_host().data(), o);
  w.write_atomic(a.out);
  std::cout << "discdiff export: " << a.out << ": " << net.num_params() << " parameters ("
            << (ema ? "EMA" : "raw") << " weights, step " << ck.state.step << ") as a " << a.format
            << " state dict, " << nn::state_dict_names(net.config(), o).size() << " tensors\n";
  return 0;
}

// ---------------------------------------------------------------- import

struct ImportArgs {
  RunConfig cfg;
  std::string state_dict, format = "sedd";
  std::string checkpoint_out;
  bool force = false;
};

int run_import(ImportArgs& a, CLI::App& sub) {
  const io::SafetensorsFile f = io::SafetensorsFile::load(a.state_dict);
  const nn::StateDictFormat fmt = nn::parse_state_dict_format(a.format);
  if (fmt == nn::StateDictFormat::native)
    throw std::invalid_argument("--format native: a discdiff checkpoint is read as it is; import "
                                "takes an upstream state dict (--format sedd or mdlm)");
  refuse_ignored(given_options(sub), {"out"},
                 "with import: the checkpoint is written to --checkpoint");
  RunConfig cfg = a.cfg;
  // The network's sizes come from the tensor shapes; an option given on the command line must
  // agree with them.
  const nn::StateDictShape sh = nn::infer_state_dict_shape(f);
  auto given = [&](const char* opt) { return sub.get_option(opt)->count() > 0; };
  auto take = [&](const char* opt, int& field, int value, const std::string& from) {
    if (given(opt) && field != value)
      throw std::invalid_argument(std::string(opt) + " " + std::to_string(field) + " differs from " +
                                  from + " = " + std::to_string(value) + " in '" + a.state_dict + "'");
    field = value;
  };
  take("--n-layer", cfg.n_layer, sh.n_layer, "the number of blocks");
  take("--d-model", cfg.d_model, sh.d_model, "the width of vocab_embed.embedding");
  take("--d-ff", cfg.d_ff, sh.d_ff, "the rows of blocks.0.mlp.0.weight");
  if (sh.n_head > 0) take("--n-head", cfg.n_head, sh.n_head, "d_model / (2 len(rotary_emb.inv_freq))");
  else if (!given("--n-head"))
    throw std::invalid_argument("'" + a.state_dict + "' has no rotary_emb.inv_freq buffer: pass "
                                "--n-head (the attention heads are not visible in the shapes)");
  if (sh.time_cond()) {
    take("--cond-dim", cfg.cond_dim, sh.cond_dim, "the rows of sigma_map.mlp.0.weight");
    if (sh.temb_dim != 2 * cfg.cond_dim)
      throw std::invalid_argument(
          "sigma_map.mlp.0.weight is [" + std::to_string(sh.cond_dim) + ", " +
          std::to_string(sh.temb_dim) + "]: a time embedding of width " + std::to_string(sh.temb_dim) +
          ", but discdiff's network uses 2 cond_dim = " + std::to_string(2 * cfg.cond_dim) +
          " (docs/nn.md: upstream's width is 256, which discdiff matches for --cond-dim 128)");
  } else if (!objective_info(cfg.objective).causal) {
    throw std::invalid_argument("'" + a.state_dict + "' has no sigma_map (a causal AR model): "
                                "import it with --objective ar");
  }
  cfg.resolve_auto();
  cfg.validate();
  Corpus corpus = load_corpus(cfg);
  const Problem p(cfg, corpus.tokenizer.num_regular());
  const nn::StateDictOptions o = interop_options(a.format, p);
  TrainState s = TrainState::fresh(p);
  const nn::ModelConfig mc = s.net->config();
  if (sh.vocab_embed != (o.drop_mask_embedding ? mc.vocab_out : mc.vocab_in))
    throw std::invalid_argument(
        "vocab_embed.embedding has " + std::to_string(sh.vocab_embed) + " rows, but the " +
        corpus.tokenizer.kind_name() + " vocabulary of the data (" +
        std::to_string(corpus.tokenizer.num_regular()) + " symbols) gives the " + cfg.objective +
        " network " + std::to_string(o.drop_mask_embedding ? mc.vocab_out : mc.vocab_in) +
        " input rows (" + (o.drop_mask_embedding ? "no MASK" : "with MASK") + ")");
  std::vector<float> slab = nn::read_state_dict(f, mc, o, true);
  for (const auto& t : nn::ParamLayout(mc).tensors)
    for (std::size_t i = 0; i < t.size(); ++i)
      if (!std::isfinite(slab[t.offset + i]))
        throw std::invalid_argument("'" + a.state_dict + "': tensor '" + t.torch_name +
                                    "' holds a non-finite value at index " + std::to_string(i));
  s.net->set_params(slab);
  if (s.ema) s.ema->restore(s.net->params_host(), 0);
  if (std::filesystem::exists(a.checkpoint_out) && !a.force)
    throw std::invalid_argument("'" + a.checkpoint_out + "' exists: pass --force to overwrite it");
  require_writable(a.checkpoint_out);
  std::map<std::string, std::string> extra;
  extra["data.description"] = corpus.description;
  if (cfg.data != "synthetic") {
    const DataFingerprint fp = data_fingerprint(cfg.data);
    extra["data.path"] = std::filesystem::absolute(cfg.data).lexically_normal().string();
    extra["data.bytes"] = std::to_string(fp.bytes);
    extra["data.fnv1a64"] = fp.fnv1a64;
  }
  extra["imported.from"] = a.state_dict;
  extra["imported.format"] = a.format;
  s.elapsed_s = 0;
  save_checkpoint(a.checkpoint_out, cfg, corpus.tokenizer, s, extra);
  std::cout << "discdiff import: " << a.checkpoint_out << ": " << s.net->num_params()
            << " parameters from " << a.state_dict << " (" << a.format << "): " << cfg.n_layer
            << " layers, d " << cfg.d_model << ", " << cfg.n_head << " heads, d_ff " << mc.d_ff
            << ", " << p.describe() << "; step 0 (evaluate or sample it; training continues from "
            << "fresh optimiser moments)\n";
  return 0;
}

const RegisterCommand reg_export{
    {"export",
     "Write a checkpoint's network as a PyTorch state dict (safetensors) for SEDD's or MDLM's DDiT",
     [](CLI::App& sub) -> Action {
       auto a = std::make_shared<ExportArgs>();
       sub.add_option("checkpoint", a->checkpoint, "checkpoint file")->required()->check(CLI::ExistingFile);
       sub.add_option("--out,-o", a->out, "the state dict to write (.safetensors)")->required();
       sub.add_option("--format", a->format,
                      "sedd: SEDD's `SEDD` module (head with one output per state); mdlm: MDLM's "
                      "`DIT` or causal `AR` (MASK row added to the head); native: the checkpoint's "
                      "own shapes, no rotary buffer")
           ->check(CLI::IsMember({"sedd", "mdlm", "native"}))
           ->capture_default_str();
       sub.add_flag("--raw", a->raw, "the raw parameters instead of the EMA");
       sub.footer(
           "Load in PyTorch: model.load_state_dict(safetensors.torch.load_file(OUT), strict=True).\n"
           "The network output is the head's raw output (SEDD: before scale_by_sigma and the x_t\n"
           "zero; MDLM: before the MASK logit is set to -inf); see docs/nn.md.");
       return [a] { return run_export(*a); };
     }}};

const RegisterCommand reg_import{
    {"import",
     "Read a PyTorch DDiT state dict (SEDD/MDLM, safetensors) as a discdiff checkpoint to eval/sample",
     [](CLI::App& sub) -> Action {
       auto a = std::make_shared<ImportArgs>();
       sub.add_option("state_dict", a->state_dict, "the PyTorch state dict (.safetensors, float32)")
           ->required()
           ->check(CLI::ExistingFile);
       sub.add_option("--checkpoint", a->checkpoint_out, "the checkpoint to write")->required();
       sub.add_option("--format", a->format, "sedd or mdlm (what the state dict's class is)")
           ->check(CLI::IsMember({"sedd", "mdlm", "native"}))
           ->capture_default_str();
       sub.add_flag("--force", a->force, "overwrite an existing checkpoint");
       a->cfg.add_options(sub);
       sub.footer(
           "The network sizes (--n-layer, --d-model, --d-ff, --cond-dim, and --n-head when the\n"
           "rotary buffer is present) are read from the tensor shapes; the other options say what\n"
           "the model is (--objective, --generator, --schedule, --data, --tokenizer, --seq-len)\n"
           "as for `discdiff train`, and the data's vocabulary must match the embedding.");
       return [a, &sub] { return run_import(*a, sub); };
     }}};

}  // namespace
}  // namespace app
}  // namespace discdiff
