// apps/memory_check.hpp: how much memory a command is about to need, how much this process may
// still take, and a refusal naming both before anything large is allocated (docs/usage.md,
// "Exit codes and guarantees").
//
//   MemoryNeed need;
//   need.add("network activations (batch 32 x 256)", cfg.activation_bytes(32, 256, 4, true));
//   require_memory(need, max_memory_option, "lower --batch or --seq-len");
//
// What this process may still take (memory_available()) is the smallest of: MemAvailable of
// /proc/meminfo, the cgroup's limit less its usage (v2 memory.max / memory.current, or v1
// memory.limit_in_bytes / memory.usage_in_bytes), and the address-space and data rlimits
// (`ulimit -v`, `ulimit -d`) less what the process already maps. An allocation that fails anyway
// (the estimate is of the large buffers, not of every byte) ends as one clear line from main().
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace discdiff {
namespace app {

/// A byte count for people: "812 MiB", "3.4 GiB", "2.1e+06 TiB" (three digits).
inline std::string human_bytes(double b) {
  std::ostringstream s;
  const double kib = 1024, mib = kib * 1024, gib = mib * 1024, tib = gib * 1024;
  s.precision(3);
  if (b >= tib) s << b / tib << " TiB";
  else if (b >= gib) s << b / gib << " GiB";
  else if (b >= mib) s << b / mib << " MiB";
  else s << b / kib << " KiB";
  return s.str();
}

/// Parses a size: a number with an optional K, M, G or T suffix (powers of 1024; "B", "iB"
/// and lower case accepted), e.g. "512M", "8G", "1.5GiB", "1000000". Throws naming the option.
inline double parse_bytes(const std::string& text, const std::string& option) {
  std::size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  std::string unit = text.substr(pos);
  for (auto& ch : unit) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  if (unit.size() >= 2 && unit.compare(unit.size() - 2, 2, "IB") == 0) unit.resize(unit.size() - 2);
  else if (unit.size() >= 2 && unit.back() == 'B') unit.pop_back();
  double mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "K") mult = 1024.0;
  else if (unit == "M") mult = 1024.0 * 1024;
  else if (unit == "G") mult = 1024.0 * 1024 * 1024;
  else if (unit == "T") mult = 1024.0 * 1024 * 1024 * 1024;
  if (pos == 0 || mult == 0 || !(v > 0) || !std::isfinite(v))
    throw std::invalid_argument("--" + option + ": '" + text +
                                "' is not a size (a positive number with an optional K, M, G or T "
                                "suffix, e.g. 8G)");
  return v * mult;
}

/// The large allocations a command is about to make, by name.
struct MemoryNeed {
  std::vector<std::pair<std::string, double>> parts;
  void add(std::string what, double bytes) { parts.emplace_back(std::move(what), bytes); }
  double total() const {
    double s = 0;
    for (const auto& p : parts) s += p.second;
    return s;
  }
  /// "a (x MiB), b (y GiB)", largest first.
  std::string describe() const {
    auto sorted = parts;
    std::sort(sorted.begin(), sorted.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
    std::string s;
    for (const auto& p : sorted) s += (s.empty() ? "" : ", ") + p.first + " " + human_bytes(p.second);
    return s;
  }
};

/// How much more memory this process may take, and which limit says so.
struct MemoryLimit {
  double bytes = std::numeric_limits<double>::infinity();
  std::string source = "no limit found";
  void consider(double b, const std::string& why) {
    if (b >= 0 && b < bytes) bytes = b, source = why;
  }
};

namespace detail_mem {
/// The value of "key: N kB" in a /proc file, in bytes; -1 when absent.
inline double proc_kb(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      std::istringstream s(line.substr(key.size() + 1));
      double kb = -1;
      s >> kb;
      return kb >= 0 ? kb * 1024 : -1;
    }
  return -1;
}
/// A cgroup file holding one number ("max" or absent: -1).
inline double cgroup_number(const std::string& path) {
  std::ifstream in(path);
  std::string w;
  if (!(in >> w) || w == "max") return -1;
  try {
    return std::stod(w);
  } catch (const std::exception&) {
    return -1;
  }
}
/// This process's cgroup v2 directory (from /proc/self/cgroup "0::/path"), or "".
inline std::string cgroup2_dir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, 3, "0::") == 0) return "/sys/fs/cgroup" + (line.size() > 3 && line != "0::/" ? line.substr(3) : "");
  return "";
}
}  // namespace detail_mem

inline MemoryLimit memory_available() {
  using namespace detail_mem;
  MemoryLimit m;
  const double avail = proc_kb("/proc/meminfo", "MemAvailable");
  if (avail >= 0) m.consider(avail, "MemAvailable in /proc/meminfo");
  // cgroup v2: the process's own group, else the namespace root.
  for (const std::string& dir : {cgroup2_dir(), std::string("/sys/fs/cgroup")}) {
    if (dir.empty()) continue;
    const double lim = cgroup_number(dir + "/memory.max"), cur = cgroup_number(dir + "/memory.current");
    if (lim >= 0 && cur >= 0) {
      m.consider(std::max(0.0, lim - cur), "the cgroup limit " + dir + "/memory.max");
      break;
    }
  }
  {  // cgroup v1
    const double lim = cgroup_number("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                 cur = cgroup_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    if (lim >= 0 && cur >= 0 && lim < 1e18) m.consider(std::max(0.0, lim - cur), "the cgroup memory limit");
  }
  struct rlimit r {};
  if (getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
    const double used = proc_kb("/proc/self/status", "VmSize");
    m.consider(std::max(0.0, double(r.rlim_cur) - std::max(0.0, used)), "the address-space limit (ulimit -v)");
  }
  if (getrlimit(RLIMIT_DATA, &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
    const double used = proc_kb("/proc/self/status", "VmData");
    m.consider(std::max(0.0, double(r.rlim_cur) - std::max(0.0, used)), "the data-segment limit (ulimit -d)");
  }
  return m;
}

/// The peak resident memory of this process so far (VmHWM), in bytes; -1 when unknown.
inline double peak_rss_bytes() { return detail_mem::proc_kb("/proc/self/status", "VmHWM"); }

/// Throws std::runtime_error naming the estimate, its largest parts and the limit when `need`
/// exceeds what the process may take; `max_memory` is the --max-memory text (empty: the
/// measured limit). `hint` says what to change ("lower --batch or --seq-len").
inline void require_memory(const MemoryNeed& need, const std::string& max_memory, const std::string& hint) {
  MemoryLimit lim;
  if (!max_memory.empty()) lim.consider(parse_bytes(max_memory, "max-memory"), "--max-memory");
  else lim = memory_available();
  const double total = need.total();
  if (!(total <= lim.bytes))
    throw std::runtime_error("this run needs about " + human_bytes(total) + " (" + need.describe() +
                             "), more than the " + human_bytes(lim.bytes) + " it may take (" +
                             lim.source + "): " + hint +
                             (max_memory.empty() ? ", or pass --max-memory SIZE to override the check" : ""));
}

/// The --max-memory option of train, sample and eval, bound to `text` (a size for parse_bytes).
inline void add_max_memory_option(CLI::App& sub, std::string& text) {
  sub.add_option("--max-memory", text,
                 "refuse a run whose estimated memory exceeds this size (e.g. 8G; default: what the "
                 "machine, the cgroup and ulimit leave this process)");
}

}  // namespace app
}  // namespace discdiff
