// apps/eval.cpp: `discdiff eval`: likelihood bounds of a checkpoint on a data split (J1 and J2,
// the MD4 ELBO in continuous and discrete time, GenMD4's NELBO, or the exact NLL of an AR model)
// as bits per token and perplexity with standard errors, in the exact convention or in that of a
// public code (--convention pbrc|sedd|md4: the numbers PBRC's test_perplexity.py, SEDD's
// losses.py or MD4's md4.py would print; docs/math/bounds.md); and the generative perplexity of
// samples (a JSONL file from `discdiff sample --out`) under an autoregressive checkpoint.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "checkpoint.hpp"
#include "command.hpp"
#include "corpus_loader.hpp"
#include "diffusion.hpp"
#include "memory_check.hpp"
#include "run_files.hpp"
#include "session.hpp"

namespace discdiff {
namespace app {
namespace {

struct EvalArgs {
  std::string checkpoint;
  std::string data;
  std::string split = "valid";
  std::int64_t sequences = 1024;
  int batch = 64;
  int passes = 1;
  std::uint64_t seed = 1;
  std::vector<int> md4_steps;
  bool j_bounds = false;
  std::string convention = "exact";
  double eps = 0;
  bool verbose = false;
  bool raw = false;
  std::string samples;
  std::string ar;
  std::string json;
  int threads = 0;
  std::string device = "cpu";
  std::string max_memory;  ///< --max-memory (empty: the memory available)
};

/// Generative perplexity: exp of the mean NLL per token of the samples under the AR model
/// (every sample scored as [BOS, tokens], in windows of the AR model's length).
nlohmann::json generative_perplexity(const EvalArgs& a) {
  Checkpoint ck = load_checkpoint(a.ar);
  const Problem p(ck.cfg, ck.tokenizer.num_regular());
  if (!p.causal())
    throw std::invalid_argument("--ar " + a.ar + " was trained with --objective " + ck.cfg.objective +
                                "; generative perplexity needs an autoregressive checkpoint");
  StepScratch sc;
  Net& net = *ck.state.net;
  if (!a.raw && ck.state.ema) net.set_params(ck.state.ema->shadow());
  std::ifstream in(a.samples);
  if (!in) throw std::runtime_error("cannot open the samples file '" + a.samples + "'");
  const int Lmax = ck.cfg.seq_len;
  BatchMeanAccumulator acc;
  std::string line;
  std::int64_t lineno = 0, count = 0, tokens = 0, bytes = 0;
  double total = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string text;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      // "text_hex" holds the exact bytes of a sample that is not valid UTF-8 (sample -o).
      text = j.contains("text_hex") ? unhex_bytes(j.at("text_hex").get<std::string>())
                                    : j.at("text").get<std::string>();
    } catch (const std::exception& e) {
      throw std::invalid_argument(a.samples + ":" + std::to_string(lineno) +
                                  ": not a sample line with a \"text\" string (" + e.what() + ")");
    }
    std::vector<int> ids;
    try {
      ids = ck.tokenizer.encode(text);
    } catch (const std::exception& e) {
      throw std::invalid_argument(a.samples + ":" + std::to_string(lineno) +
                                  ": the sample does not fit the AR model's vocabulary: " + e.what());
    }
    if (ids.empty()) continue;
    double nll = 0;
    for (std::size_t s0 = 0; s0 < ids.size(); s0 += std::size_t(Lmax)) {
      const int L = int(std::min<std::size_t>(std::size_t(Lmax), ids.size() - s0));
      nll += batch_loss(p, net, {}, ids.data() + s0, 1, L, DrawKeys{}, nullptr, Real(0), sc);
    }
    acc.add_batch(nll, std::int64_t(ids.size()));
    total += nll;
    tokens += std::int64_t(ids.size());
    bytes += std::int64_t(text.size());
    ++count;
  }
  if (count < 2) throw std::invalid_argument("'" + a.samples + "' holds fewer than 2 samples");
  const McEstimate e = acc.estimate(1);  // per token: sums over samples / total tokens
  require_finite_estimate("the generative perplexity's NLL under --ar " + a.ar, e);
  nlohmann::json j;
  j["event"] = "genppl";
  j["samples"] = count;
  j["tokens"] = tokens;
  j["ar_checkpoint"] = a.ar;
  j["nats_per_token"] = e.mean;
  j["nats_per_token_se"] = e.std_error;
  j["gen_ppl"] = std::exp(e.mean);
  j["gen_ppl_se"] = std::exp(e.mean) * e.std_error;
  // Bits per byte: the same NLL over the UTF-8 bytes of the samples (docs/usage.md).
  const double tpb = double(tokens) / double(bytes);
  j["bytes"] = bytes;
  j["bits_per_byte"] = e.mean / std::log(2.0) * tpb;
  j["bits_per_byte_se"] = e.std_error / std::log(2.0) * tpb;
  std::cout << "generative perplexity of " << count << " samples (" << tokens << " tokens) under "
            << a.ar << ": " << fmt(std::exp(e.mean), 3) << " +- "
            << fmt(std::exp(e.mean) * e.std_error, 3) << " (" << fmt(e.mean / std::log(2.0))
            << " bits/token, " << fmt(e.mean / std::log(2.0) * tpb) << " bits/byte over " << bytes
            << " bytes)\n";
  return j;
}

/// Signed fixed-point figure with `prec` decimals (the convention terms).
std::string sfmt(double v, int prec = 6) { return (v >= 0 ? "+" : "") + fmt(v, prec); }

/// --verbose: the J1/J2 estimators in detail (bound/monte_carlo.hpp), recomputed with the options
/// of evaluate_bounds (same seed, so the same draws): the reported J2 = J1hat + E H(p_{eps|0}),
/// the direct estimate J2hat, their paired difference against its exact expectation. Under
/// --convention pbrc or sedd the exact estimators run at the convention's cut-off, and the
/// convention's J1/J2 on the same draws are split into the terms by which they differ
/// (docs/math/bounds.md, "Conventions of the public codes"); the constants are computed, the
/// uniform graph's PBRC exit term is the mean of its per-draw values.
void print_j_detail(const Problem& p, Net& net, const std::vector<int>& x0,
                    std::int64_t num, std::int64_t L, const EvalOptions& eo, nlohmann::json& results,
                    const EvalArgs& a) {
  const int V = net.config().vocab_out;
  EvalOptions ex = eo;
  ex.convention = EvalConvention::exact;
  ex.eps = j_bound_eps(p, eo);
  const ScoreBoundOptions so = score_bound_options(p, ex, V);
  auto run = [&](const ScoreBoundOptions& o) { return estimate_net_score_bounds(p, net, x0, num, L, o); };
  const ScoreBoundEstimate e = run(so);
  require_finite_estimate("the direct j2 estimate (--verbose)", e.j2_direct);
  require_finite_estimate("j2 direct - j1 (--verbose)", e.gap);
  const double l2 = std::log(2.0), Ld = double(L);
  auto line = [&](const char* name, const McEstimate& m) {
    std::cout << "    " << name << std::string(20 - std::string(name).size(), ' ')
              << fmt(m.bits_per_token()) << " +- " << fmt(m.bits_per_token_se()) << " bits/token\n";
  };
  std::cout << "  J1/J2 estimators, exact convention (eps = " << so.eps << ", u in [" << fmt(e.u_eps)
            << ", " << fmt(e.u_1) << "]):\n";
  line("j1", e.j1);
  line("j2 = j1 + EH", e.j2);
  line("j2 direct", e.j2_direct);
  line("j2 direct - j1", e.gap);
  std::cout << "    EH = E H(p_eps|0)    " << fmt(e.expected_gap / Ld / l2)
            << " bits/token (exact; the expectation of j2 direct - j1)\n"
            << "    constants (nats/seq): prior KL " << fmt(e.prior_kl) << ", reference CE "
            << fmt(e.reference_ce) << ", exit integral " << fmt(e.exit_integral) << "\n";
  nlohmann::json j;
  j["event"] = "eval_j_detail";
  j["checkpoint"] = a.checkpoint;
  j["split"] = a.split;
  j["sequences"] = num;
  j["convention"] = "exact";
  j["eps"] = so.eps;
  j["j1_bpc"] = e.j1.bits_per_token();
  j["j1_bpc_se"] = e.j1.bits_per_token_se();
  j["j2_bpc"] = e.j2.bits_per_token();
  j["j2_bpc_se"] = e.j2.bits_per_token_se();
  j["j2_direct_bpc"] = e.j2_direct.bits_per_token();
  j["j2_direct_bpc_se"] = e.j2_direct.bits_per_token_se();
  j["gap_bpc"] = e.gap.bits_per_token();
  j["gap_bpc_se"] = e.gap.bits_per_token_se();
  j["expected_gap_bpc"] = e.expected_gap / Ld / l2;
  j["prior_kl_nats"] = e.prior_kl;            // per sequence
  j["reference_ce_nats"] = e.reference_ce;    // per sequence
  j["exit_integral_nats"] = e.exit_integral;  // per sequence
  results.push_back(j);
  if (eo.convention != EvalConvention::pbrc && eo.convention != EvalConvention::sedd) return;

  // The convention on the same draws, split into its terms (per sequence, nats):
  //   J1_conv = (J1 - KL_prior)/(1 - eps)
  //   J2_conv = I2/(1 - eps) + CE_conv - X_conv,  I2 = J2hat - CE_ref + X_exit.
  const ScoreBoundEstimate c = run(score_bound_options(p, eo, V));
  const double eps = so.eps, jac = eps / (1.0 - eps);
  const double i1 = e.j1.mean - e.prior_kl, i2 = e.j2_direct.mean - e.reference_ce + e.exit_integral;
  const double x_conv = i2 / (1.0 - eps) + c.reference_ce - c.j2_direct.mean;
  auto b = [&](double nats_per_seq) { return nats_per_seq / Ld / l2; };
  const char* name = convention_name(eo.convention);
  std::cout << "  " << name << " convention against exact on the same draws (eps = " << eps
            << "; bits/token, " << name << " - exact):\n";
  auto term = [&](const char* bound, const char* what, double v) {
    std::cout << "    " << bound << std::string(5 - std::string(bound).size(), ' ') << what
              << std::string(24 - std::string(what).size(), ' ') << sfmt(b(v)) << "\n";
  };
  term("j1", "prior KL omitted", -e.prior_kl);
  term("", "no (1 - eps) factor", i1 * jac);
  term("", "total", c.j1.mean - e.j1.mean);
  std::cout << "         (" << name << " " << fmt(c.j1.bits_per_token(), 6) << ", exact "
            << fmt(e.j1.bits_per_token(), 6) << ")\n";
  nlohmann::json t;
  t["event"] = "eval_convention_terms";
  t["checkpoint"] = a.checkpoint;
  t["split"] = a.split;
  t["sequences"] = num;
  t["convention"] = name;
  t["eps"] = eps;
  t["j1_bpc"] = c.j1.bits_per_token();
  t["j1_exact_bpc"] = e.j1.bits_per_token();
  t["j1_prior_bpc"] = b(-e.prior_kl);
  t["j1_eps_factor_bpc"] = b(i1 * jac);
  t["j1_total_bpc"] = b(c.j1.mean - e.j1.mean);
  if (eo.convention == EvalConvention::pbrc) {
    term("j2", "reference CE", c.reference_ce - e.reference_ce);
    term("", "exit term", e.exit_integral - x_conv);
    term("", "no (1 - eps) factor", i2 * jac);
    term("", "total", c.j2_direct.mean - e.j2_direct.mean);
    std::cout << "         (" << name << " " << fmt(c.j2.bits_per_token(), 6) << ", exact direct "
              << fmt(e.j2_direct.bits_per_token(), 6) << ", exact j1 + EH "
              << fmt(e.j2.bits_per_token(), 6) << ")\n";
    t["j2_bpc"] = c.j2.bits_per_token();
    t["j2_exact_direct_bpc"] = e.j2_direct.bits_per_token();
    t["j2_exact_bpc"] = e.j2.bits_per_token();
    t["j2_reference_bpc"] = b(c.reference_ce - e.reference_ce);
    t["j2_exit_bpc"] = b(e.exit_integral - x_conv);
    t["j2_eps_factor_bpc"] = b(i2 * jac);
    t["j2_total_bpc"] = b(c.j2_direct.mean - e.j2_direct.mean);
  }
  results.push_back(t);
}

/// --verbose under --convention md4: MD4's code sets the prior term L alpha(1) log N to 0.
void print_md4_detail(const Problem& p, std::int64_t L, nlohmann::json& results, const EvalArgs& a) {
  const double prior = double(p.schedule().alpha(Real(1))) * std::log(double(p.num_regular()));
  std::cout << "  md4 convention against exact (bits/token, md4 - exact): prior term omitted "
            << sfmt(-prior / std::log(2.0), 8) << " (L alpha(1) log N = " << L * prior
            << " nats/seq)\n";
  nlohmann::json t;
  t["event"] = "eval_convention_terms";
  t["checkpoint"] = a.checkpoint;
  t["convention"] = "md4";
  t["elbo_prior_bpc"] = -prior / std::log(2.0);
  results.push_back(t);
}

int run_eval(const EvalArgs& a) {
  require_device(a.device);
  set_threads(a.threads);
  // Data parallel (docs/distributed.md): the bounds' Monte Carlo batches are split over the
  // ranks; rank 0 prints and writes --json, the others print nothing.
  Communicator& comm = world();
  if (!comm.is_root()) std::cout.setstate(std::ios::badbit);
  if (!a.json.empty()) require_writable(a.json);  // before the work, not after it
  nlohmann::json results = nlohmann::json::array();
  if (!a.samples.empty() || !a.ar.empty()) {
    if (a.samples.empty() || a.ar.empty())
      throw std::invalid_argument("generative perplexity needs both --samples and --ar");
    results.push_back(generative_perplexity(a));
  }
  if (!a.checkpoint.empty()) {
    Checkpoint ck = load_checkpoint(a.checkpoint);
    const RunConfig& cfg = ck.cfg;
    const Problem p(cfg, ck.tokenizer.num_regular());
    Net& net = *ck.state.net;
    const bool ema = !a.raw && ck.state.ema;
    if (ema) net.set_params(ck.state.ema->shadow());
    {  // a convention that does not apply is an error before any data is read
      EvalOptions chk;
      chk.convention = parse_convention(a.convention);
      chk.eps = a.eps;
      chk.md4_j_bounds = a.j_bounds;
      check_eval_convention(p, chk);
      for (int T : a.md4_steps) chk.md4_steps = T, check_eval_convention(p, chk);
    }
    std::string data = a.data;  // default: the run's data, by its stored absolute path if need be
    const auto abs_it = ck.meta.find("data.path");
    if (data.empty() && cfg.data != "synthetic" && !std::filesystem::exists(cfg.data) &&
        abs_it != ck.meta.end())
      data = abs_it->second;
    const Corpus corpus = load_corpus(cfg, &ck.tokenizer, data, a.split);
    const int L = cfg.seq_len;
    std::int64_t num = a.sequences;
    const std::vector<int> x0 = eval_sequences(corpus.split(a.split), L, num, a.split.c_str());
    // Bits per byte = bits per token x tokens / bytes, the bytes being the UTF-8 bytes of the
    // decoded evaluation text (docs/usage.md): comparable across tokenizers.
    const double eval_bytes = double(ck.tokenizer.decode(x0).size());
    const double tokens_per_byte = double(x0.size()) / eval_bytes;
    if (num < 2)
      throw std::invalid_argument("the " + a.split + " split holds only " + std::to_string(num) +
                                  " window of " + std::to_string(L) +
                                  " tokens; a standard error needs at least 2");
    EvalOptions eo;
    eo.batch = bound_batch(a.batch, num);
    {  // memory: refuse before allocating what cannot fit
      MemoryNeed need;
      p.add_eval_memory(need, eo.batch, L, "network", a.j_bounds);
      p.add_gemm_memory(need, eo.batch, L, current_threads());
      require_memory(need, a.max_memory,
                     "lower --batch");
    }
    eo.passes = a.passes;
    eo.seed = a.seed;
    eo.md4_j_bounds = a.j_bounds;
    eo.convention = parse_convention(a.convention);
    eo.eps = a.eps;
    eo.comm = &comm;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<BoundReport> reps;
    if (a.md4_steps.empty()) {
      reps = evaluate_bounds(p, net, ck.state.w_raw, x0, num, L, eo);
    } else {
      for (std::size_t k = 0; k < a.md4_steps.size(); ++k) {
        EvalOptions ek = eo;  // J bounds (and their cut-off) once, with the first T
        ek.md4_steps = a.md4_steps[k];
        ek.md4_j_bounds = a.j_bounds && k == 0;
        if (k > 0) ek.eps = 0;
        auto r = evaluate_bounds(p, net, ck.state.w_raw, x0, num, L, ek);
        for (auto& b : r) {
          bool dup = false;
          for (const auto& o : reps) dup = dup || o.name == b.name;
          if (!dup) reps.push_back(b);
        }
      }
    }
    // Never a NaN in the table: a bound that is not finite is an error naming it.
    for (const auto& b : reps) require_finite_estimate("the " + b.name + " bound", b.est);
    const double secs = seconds_since(t0);
    std::cout << "discdiff eval: " << a.checkpoint << " (step " << ck.state.step << ", "
              << (ema ? "EMA" : "raw") << " weights), " << p.describe() << "\n  data "
              << corpus.description << "\n  split " << a.split << ": " << num << " sequences of "
              << L << " tokens (" << std::int64_t(eval_bytes) << " bytes of text), " << a.passes
              << " pass(es), " << format_duration(secs) << "\n";
    const std::string conv = convention_name(eo.convention);
    bool has_j = false;
    for (const auto& b : reps) has_j = has_j || b.name == "j1" || b.name == "j2";
    if (eo.convention != EvalConvention::exact)
      std::cout << "  convention " << conv << ": "
                << (eo.convention == EvalConvention::pbrc
                        ? "PBRC test_perplexity.py (no prior KL, no (1 - eps) factor; J2 with the code's reference and exit constants)"
                    : eo.convention == EvalConvention::sedd
                        ? "SEDD losses.py score entropy (no prior KL, no (1 - eps) factor)"
                        : "MD4 md4.py (prior term 0)");
    if (has_j) std::cout << (eo.convention != EvalConvention::exact ? ", " : "  ") << "J cut-off eps = " << j_bound_eps(p, eo);
    if (eo.convention != EvalConvention::exact || has_j) std::cout << "\n";
    std::cout << "  bound        convention  bits/token       bits/byte        perplexity\n";
    for (const auto& b : reps) {
      std::cout << "  " << b.name << std::string(b.name.size() < 12 ? 12 - b.name.size() : 1, ' ')
                << " " << conv << std::string(conv.size() < 11 ? 11 - conv.size() : 1, ' ')
                << " " << fmt(b.est.bits_per_token()) << " +- " << fmt(b.est.bits_per_token_se())
                << "  " << fmt(b.est.bits_per_token() * tokens_per_byte) << " +- "
                << fmt(b.est.bits_per_token_se() * tokens_per_byte)
                << "  " << fmt(b.est.perplexity(), 3) << " +- " << fmt(b.est.perplexity_se(), 3) << "\n";
      nlohmann::json j;
      j["event"] = "eval";
      j["checkpoint"] = a.checkpoint;
      j["step"] = ck.state.step;
      j["split"] = a.split;
      j["sequences"] = num;
      j["bound"] = b.name;
      j["convention"] = conv;
      if (b.name == "j1" || b.name == "j2") j["eps"] = j_bound_eps(p, eo);
      j["nats_per_token"] = b.est.nats_per_token();
      j["bpc"] = b.est.bits_per_token();
      j["bpc_se"] = b.est.bits_per_token_se();
      j["ppl"] = b.est.perplexity();
      j["ppl_se"] = b.est.perplexity_se();
      j["bytes"] = std::int64_t(eval_bytes);
      j["bits_per_byte"] = b.est.bits_per_token() * tokens_per_byte;
      j["bits_per_byte_se"] = b.est.bits_per_token_se() * tokens_per_byte;
      results.push_back(j);
    }
    if (a.verbose && has_j) {
      EvalOptions ej = eo;
      ej.md4_steps = 0;
      print_j_detail(p, net, x0, num, L, ej, results, a);
    }
    if (a.verbose && eo.convention == EvalConvention::md4) print_md4_detail(p, L, results, a);
    if (corpus.source) {
      const double hw = corpus.window_entropy_bits(L);
      std::cout << "  source entropy: " << fmt(hw) << " bits/token per " << L << "-window (rate "
                << fmt(corpus.entropy_rate_bits()) << "); the headline bound is "
                << fmt(100.0 * (reps.front().est.bits_per_token() / hw - 1.0), 1) << "% above it\n";
    }
  }
  if (results.empty())
    throw std::invalid_argument("nothing to evaluate: give --checkpoint, or --samples with --ar");
  if (!a.json.empty() && comm.is_root()) {
    std::string text;
    for (const auto& j : results) text += j.dump() + '\n';
    write_file_atomic(a.json, text);
  }
  return 0;
}

const RegisterCommand reg{
    {"eval",
     "Likelihood bounds of a checkpoint on a split (J1, J2, MD4 ELBO, NELBO, AR NLL), and the "
     "generative perplexity of samples under an AR checkpoint",
     [](CLI::App& sub) -> Action {
       auto a = std::make_shared<EvalArgs>();
       sub.add_option("--checkpoint,-c", a->checkpoint, "checkpoint to evaluate")
           ->check(CLI::ExistingFile);
       sub.add_option("--data", a->data,
                      "data to evaluate on (default: the checkpoint's; text must fit its vocabulary)");
       sub.add_option("--split", a->split, "train, valid or test")
           ->check(CLI::IsMember({"train", "valid", "test"}))
           ->capture_default_str();
       sub.add_option("--sequences", a->sequences, "at most this many non-overlapping sequences")
           ->check(number_in(2, double(std::int64_t(1) << 40)))
           ->capture_default_str();
       sub.add_option("--batch", a->batch, "sequences per batch (one time lattice per batch)")
           ->check(number_in(1, 65536))
           ->capture_default_str();
       sub.add_option("--passes", a->passes, "noise draws per sequence")
           ->check(number_in(1, 1 << 20))
           ->capture_default_str();
       add_parsed_option(sub, "seed", a->seed, "seed of the time and noise draws", std::to_string(a->seed));
       sub.add_option("--md4-steps", a->md4_steps,
                      "md4: also the discrete-time ELBO with T steps (several values allowed)")
           ->check(number_in(1, 1 << 24));
       sub.add_flag("--j-bounds", a->j_bounds, "md4: also J1 and J2 from the posterior logits");
       sub.add_option("--convention", a->convention,
                      "whose numbers: exact (spec 8.2-8.4), pbrc (PBRC test_perplexity.py J1/J2: no "
                      "prior KL, no (1 - eps) factor, the code's J2 constants; eps 1e-4), sedd (SEDD "
                      "losses.py score entropy = J1 without prior KL and (1 - eps); eps 1e-3) or md4 "
                      "(md4.py ELBO, prior term 0; md4 checkpoints only). docs/math/bounds.md")
           ->check(CLI::IsMember({"exact", "pbrc", "sedd", "md4"}))
           ->capture_default_str();
       sub.add_option("--eps", a->eps,
                      "J1/J2 time cut-off, t in [eps, 1] (default: the convention's: exact the run's "
                      "--t-eps, 1e-4 for md4; pbrc 1e-4; sedd 1e-3)")
           ->check(number_in(0, 1, false, true));
       sub.add_flag("--verbose,-v", a->verbose,
                    "J1/J2 in detail: J2 = J1 + E H(p_eps|0) beside the direct J2 estimate and "
                    "the paired J2 - J1 (recomputed with the same draws); with --convention, the "
                    "terms by which it differs from exact");
       sub.add_flag("--raw", a->raw, "use the raw parameters instead of the EMA");
       sub.add_option("--samples", a->samples, "JSONL samples (discdiff sample --out) to score")
           ->check(CLI::ExistingFile);
       sub.add_option("--ar", a->ar, "autoregressive checkpoint that scores --samples")
           ->check(CLI::ExistingFile);
       sub.add_option("--json", a->json, "also write the results as JSONL to this file");
       add_max_memory_option(sub, a->max_memory);
       sub.add_option("--device", a->device,
                      "where the network runs: cpu (a CUDA build adds cuda); this build's backend: " +
                          std::string(kBackendName))
           ->capture_default_str();
       sub.add_option("--threads", a->threads, "OpenMP threads (0: default)")->check(number_at_least(0));
       return [a] { return run_eval(*a); };
     }}};

}  // namespace
}  // namespace app
}  // namespace discdiff
