// apps/main.cpp: the `discdiff` command-line program. The subcommands register themselves
// (apps/command.hpp); this file only builds the CLI11 tree, parses and dispatches.
#include <algorithm>
#include <csignal>
#include <exception>
#include <iostream>
#include <map>
#include <new>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <CLI/CLI.hpp>

#include <discdiff/core/config.hpp>

#include "comm.hpp"
#include "command.hpp"

namespace {

/// Edit distance (insertions, deletions, substitutions, adjacent transpositions).
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

}  // namespace

int main(int argc, char** argv) {
  // A closed pipe on stdout or stderr makes writes fail instead of killing the program (train
  // installs its own handler: it checkpoints and stops, apps/session.hpp).
  std::signal(SIGPIPE, SIG_IGN);
  using discdiff::app::Action;
#if defined(__GLIBC__)
  // The network allocates its activations afresh on every forward pass. glibc serves blocks above
  // its mmap threshold (128 KiB at first) with mmap and returns them on free, so each pass
  // page-faults its buffers in again: half of a sampling run's time went to the kernel. Serving
  // blocks up to 32 MiB (glibc's largest threshold) from the heap and not trimming it keeps them
  // mapped; samples and results are unchanged, sampling runs about 2x faster on 2 cores.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  CLI::App app{
      "discdiff: continuous-time discrete diffusion (CTMC) for language, header-only C++17.\n"
      "Run `discdiff <subcommand> --help` for the options of a subcommand."};
  app.name("discdiff");
  app.set_version_flag("--version", std::to_string(DISCDIFF_VERSION_MAJOR) + "." +
                                        std::to_string(DISCDIFF_VERSION_MINOR) + "." +
                                        std::to_string(DISCDIFF_VERSION_PATCH));
  app.require_subcommand(1);

  auto commands = discdiff::app::command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::map<CLI::App*, Action> actions;
  for (const auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.description);
    actions[sub] = c.setup(*sub);
  }

  std::string names;
  for (const auto& c : commands) names += (names.empty() ? "" : ", ") + c.name;
  if (argc >= 2 && argv[1][0] != '-') {
    // An unknown subcommand: name the closest one.
    const std::string word = argv[1];
    bool known = false;
    std::string best;
    std::size_t best_d = 3;  // suggest within two edits
    for (const auto& c : commands) {
      known = known || c.name == word;
      const std::size_t d = edit_distance(word, c.name);
      if (d < best_d) best_d = d, best = c.name;
    }
    if (!known) {
      std::cerr << "discdiff: error: unknown subcommand '" << word << "'"
                << (best.empty() ? "" : " (did you mean '" + best + "'?)") << "; the subcommands are "
                << names << "\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0 with CLI11's output; every command-line error is one line
    // `discdiff <subcommand>: error: ...` and exits 2, as errors found later do.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::string who = "discdiff";
    for (const CLI::App* sub : app.get_subcommands()) who += " " + sub->get_name();
    std::string msg = e.what();
    if (msg == "A subcommand is required") msg += " (" + names + ")";
    std::cerr << who << ": error: " << msg << " (see `" << who << " --help`)\n";
    return 2;
  }
  for (CLI::App* sub : app.get_subcommands()) {
    int code = 2;
    std::string error;
    try {
      code = actions.at(sub)();
    } catch (const std::bad_alloc&) {
      // An allocation beyond the up-front estimate (apps/memory_check.hpp) failed: the files a
      // command writes are atomic, so what was there before is intact.
      error = "out of memory (an allocation failed): this run needs more memory than the process "
              "may use (see MemAvailable, the cgroup limit and `ulimit -v`); lower --batch or "
              "--seq-len, or use a smaller network";
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty()) {
      // Data parallel (apps/comm.hpp): an error on one rank ends every rank of the job (the
      // others may be waiting in a collective), naming the rank.
      discdiff::app::Communicator* w = discdiff::app::world_if_started();
      if (w != nullptr && w->size() > 1)
        w->abort(2, "discdiff " + sub->get_name() + " (rank " + std::to_string(w->rank()) + " of " +
                        std::to_string(w->size()) + "): error: " + error);
      std::cerr << "discdiff " << sub->get_name() << ": error: " << error << "\n";
    }
    discdiff::app::finalize_world();
    return code;
  }
  return 0;
}
