// apps/command.hpp: how a subcommand of the `discdiff` program plugs in.
//
// Each subcommand lives in its own source file and registers itself at static-initialisation
// time:
//
//   static const discdiff::app::RegisterCommand reg{{"verify", "Check the theorems ...",
//       [](CLI::App& sub) -> discdiff::app::Action { ...add options...; return [=] { ...; }; }}};
//
// main.cpp creates one CLI11 subcommand per registered command (sorted by name), calls `setup`
// to add its options, parses, and runs the action of the chosen subcommand. Adding a subcommand
// (train, sample, eval, info, ...) is: a new file here plus its name in apps/CMakeLists.txt.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace discdiff {
namespace app {

/// What runs when the subcommand is chosen; returns the process exit code.
using Action = std::function<int()>;

struct Command {
  std::string name;
  std::string description;
  /// Adds the options to `sub` (binding them to state the returned Action owns) and returns
  /// the action.
  std::function<Action(CLI::App& sub)> setup;
};

/// Every registered subcommand (a function-local static: safe during static initialisation).
inline std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

/// Registers a subcommand when constructed (use as a namespace-scope static object).
struct RegisterCommand {
  explicit RegisterCommand(Command c) { command_registry().push_back(std::move(c)); }
};

/// The long names (without dashes) of the options given on the command line of `sub`, after
/// parsing: what a command checks to refuse an option that would be silently ignored.
inline std::set<std::string> given_options(const CLI::App& sub) {
  std::set<std::string> given;
  for (const CLI::Option* o : sub.get_options())
    if (o->count() > 0)
      for (const std::string& n : o->get_lnames()) given.insert(n);
  return given;
}

/// Throws std::invalid_argument when an option of `ignored` was given: "--a and --b do
/// nothing <why>".
inline void refuse_ignored(const std::set<std::string>& given, const std::vector<std::string>& ignored,
                           const std::string& why) {
  std::string names;
  int n = 0;
  for (const std::string& o : ignored)
    if (given.count(o)) names += (names.empty() ? "--" : " and --") + o, ++n;
  if (n > 0) throw std::invalid_argument(names + (n > 1 ? " do" : " does") + " nothing " + why);
}

}  // namespace app
}  // namespace discdiff
