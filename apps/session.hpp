// apps/session.hpp: small pieces shared by the train, eval, sample and info subcommands:
// thread setup, JSONL logging, a TTY progress line, signal flags, and loading a checkpoint with
// its data.
#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace discdiff {
namespace app {

inline void set_threads(int threads) {
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
#else
  (void)threads;
#endif
}
inline int current_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Set by SIGINT, SIGTERM, SIGHUP (the terminal went away) or SIGPIPE (stdout or stderr is a
/// closed pipe); the training loop checkpoints and exits at the next step boundary with
/// 128 + the signal number.
inline std::atomic<int>& stop_signal() {
  static std::atomic<int> s{0};
  return s;
}
extern "C" inline void discdiff_on_signal(int sig) {
  if (stop_signal().load() == 0) stop_signal().store(sig);  // the first signal is the reason
}
inline void install_stop_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
    struct sigaction sa {};
    sa.sa_handler = discdiff_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, nullptr);
  }
}

/// Appends one JSON object per line and flushes (an interrupted run keeps every line).
class JsonlLog {
 public:
  JsonlLog(const std::string& path, bool append) : path_(path) {
    f_.open(path, append ? std::ios::app : std::ios::trunc);
    if (!f_) throw std::runtime_error("cannot open the log file '" + path + "' for writing");
  }
  void write(const nlohmann::json& j) {
    f_ << j.dump() << '\n';
    f_.flush();
    if (!f_) throw std::runtime_error("writing the log file '" + path_ + "' failed");
  }

 private:
  std::string path_;
  std::ofstream f_;
};

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// v in fixed notation with `prec` decimals (tables and progress lines).
inline std::string fmt(double v, int prec = 4) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(prec);
  s << v;
  return s.str();
}

inline std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const long t = long(s + 0.5);
  std::ostringstream o;
  if (t >= 3600) o << t / 3600 << "h" << (t % 3600) / 60 << "m";
  else if (t >= 60) o << t / 60 << "m" << t % 60 << "s";
  else o << t << "s";
  return o.str();
}

/// A one-line progress display on a terminal (stderr), redrawn in place; silent otherwise.
class Progress {
 public:
  explicit Progress(bool enabled) : on_(enabled && isatty(2)) {}
  bool active() const { return on_; }
  void show(const std::string& line) {
    if (!on_) return;
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    dirty_ = true;
  }
  /// Ends the progress line before other output.
  void clear() {
    if (on_ && dirty_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
      dirty_ = false;
    }
  }

 private:
  bool on_;
  bool dirty_ = false;
};

}  // namespace app
}  // namespace discdiff
