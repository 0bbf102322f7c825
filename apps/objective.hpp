// apps/objective.hpp: the training objectives of the program as a small registry, the way
// subcommands are (command.hpp): each objective is one entry that says what it needs (generator,
// schedule, time input, output head) and how it turns a clean batch into a loss and into its
// headline bound. The program never compares objective names: it asks the entry.
//
// An entry (ObjectiveInfo) holds
//   name, description                  the `--objective` value and its help line;
//   generators                         the accepted `--generator` values (first: the "auto" one);
//   default_schedule                   the "auto" schedule (per generator where it matters);
//   head                               ModelOutput::logits (V_out = N) or log_scores (V_out = D,
//                                      SEDD's raw log-score head, spec 4.4);
//   causal                             next-token model (ar): BOS prefix, no time input;
//   per_token_noise                    state-dependent masking (genmd4): learned schedule w;
//   time_input                         what the network reads as its time: the total noise
//                                      sbar(t) (SEDD/MDLM) or 1000 t (MD4's convention);
//   t_min                              lower end of the training and bound time range;
//   headline                           the name of its bound (elbo, j1, j2, nelbo, nll);
//   samplers                           the `sample --sampler` kinds it supports (first: default).
// The loss and bound behaviour lives in apps/diffusion.hpp (one function per step family, chosen
// by the entry's `loss` kind), so adding an objective is one entry here plus, if it needs a new
// loss kernel, one branch there.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace discdiff {
namespace app {

/// Which loss kernel family an objective uses (objective/*.hpp *_raw drivers).
enum class LossKind { sedd, cedd, cedd_star, md4, genmd4, ar };

/// The network's time input.
enum class TimeInput { none, sigma_bar, thousand_t };

struct ObjectiveInfo {
  std::string name;
  std::string description;
  LossKind loss = LossKind::md4;
  std::vector<std::string> generators;  ///< accepted --generator values; the first is "auto"
  bool score_head = false;              ///< V_out = D log-score head (else N logits)
  bool causal = false;                  ///< next-token model with a BOS prefix
  bool per_token_noise = false;         ///< state-dependent masking with a learned schedule
  TimeInput time_input = TimeInput::sigma_bar;
  bool t_eps_cutoff = false;            ///< t in [t_eps, 1] (else [t_min_fixed, 1])
  double t_min_fixed = 0.0;
  std::string headline;                 ///< name of the headline bound
  std::vector<std::string> samplers;    ///< sample --sampler kinds; the first is the default
};

/// An entry with its identity set and every flag at its default.
inline ObjectiveInfo objective_entry(std::string name, std::string description, LossKind loss,
                                     std::vector<std::string> generators) {
  ObjectiveInfo o;
  o.name = std::move(name);
  o.description = std::move(description);
  o.loss = loss;
  o.generators = std::move(generators);
  return o;
}

/// Every objective (a function-local static, filled once).
inline const std::vector<ObjectiveInfo>& objective_registry() {
  static const std::vector<ObjectiveInfo> reg = [] {
    const std::vector<std::string> ctmc = {"absorbing", "uniform", "roulette"};
    std::vector<ObjectiveInfo> r;
    {
      ObjectiveInfo o = objective_entry(
          "sedd", "score entropy (SEDD, spec 5.1), log-score head, bound J1", LossKind::sedd, ctmc);
      o.score_head = true;
      o.t_eps_cutoff = true;
      o.headline = "j1";
      o.samplers = {"analytic", "euler"};
      r.push_back(o);
    }
    for (const char* name : {"cedd", "cedd-star"}) {
      const bool star = std::string(name) == "cedd-star";
      ObjectiveInfo o = objective_entry(
          name,
          star ? "denoising cross-entropy with omega = 1 (CEDD*, spec 5.2), bound J2"
               : "denoising cross-entropy (CEDD, spec 5.2), bound J2",
          star ? LossKind::cedd_star : LossKind::cedd, ctmc);
      o.t_eps_cutoff = true;
      o.headline = "j2";
      o.samplers = {"analytic", "euler", "uniformization", "md4", "md4-cached"};
      r.push_back(o);
    }
    {
      ObjectiveInfo o = objective_entry("md4", "masked diffusion ELBO (MD4/MDLM, spec 5.3)",
                                        LossKind::md4, {"absorbing"});
      o.headline = "elbo";
      o.samplers = {"md4", "md4-cached", "analytic", "euler", "uniformization"};
      r.push_back(o);
    }
    {
      ObjectiveInfo o = objective_entry(
          "genmd4", "GenMD4: state-dependent masking with a learned schedule (spec 5.4)",
          LossKind::genmd4, {"state-dependent"});
      o.per_token_noise = true;
      o.time_input = TimeInput::thousand_t;
      o.t_min_fixed = 1e-3;
      o.headline = "nelbo";
      o.samplers = {"genmd4"};
      r.push_back(o);
    }
    {
      ObjectiveInfo o = objective_entry(
          "ar", "autoregressive next-token baseline (causal transformer)", LossKind::ar, {"none"});
      o.causal = true;
      o.time_input = TimeInput::none;
      o.headline = "nll";
      o.samplers = {"ar"};
      r.push_back(o);
    }
    return r;
  }();
  return reg;
}

/// The names of every objective, comma separated (for help and error messages).
inline std::string objective_names() {
  std::string s;
  for (const auto& o : objective_registry()) s += (s.empty() ? "" : ", ") + o.name;
  return s;
}

/// The entry of `name`, or null.
inline const ObjectiveInfo* find_objective(const std::string& name) {
  for (const auto& o : objective_registry())
    if (o.name == name) return &o;
  return nullptr;
}

/// The entry of `name`; throws std::invalid_argument listing the objectives otherwise.
inline const ObjectiveInfo& objective_info(const std::string& name) {
  const ObjectiveInfo* o = find_objective(name);
  if (o == nullptr)
    throw std::invalid_argument("--objective " + name + ": must be one of " + objective_names());
  return *o;
}

}  // namespace app
}  // namespace discdiff
