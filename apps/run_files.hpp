// apps/run_files.hpp: the program's output files, safely: atomic writes of text files
// (temporary file + fsync + rename, as checkpoints), the exclusive lock of a run directory,
// removal of the temporaries that killed writers left, and a check that an output path can be
// written before any work is done.
//
// Temporary files are named `<target>.tmp.<pid>` (the convention of io::SafetensorsWriter::
// write_atomic), so a directory's stale temporaries are those whose pid no longer runs.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace discdiff {
namespace app {

namespace detail_files {
inline std::string errno_text(int err) { return std::strerror(err); }
inline std::string parent_dir(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string d = p.parent_path().string();
  return d.empty() ? "." : d;
}
inline void fsync_dir(const std::string& dir) {
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;  // the rename is done; durability of the directory entry is best effort
  (void)::fsync(dfd);
  ::close(dfd);
}
}  // namespace detail_files

/// The temporary file that an atomic write of `path` by this process uses.
inline std::string temp_path_for(const std::string& path) {
  return path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
}

/// A file written atomically: lines go to `<path>.tmp.<pid>` (created at construction, so an
/// unwritable destination fails before any work), commit() fsyncs it and renames it over
/// `path`. Destroyed without commit() (an error, an exception), the temporary is removed and
/// `path` is untouched.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path) : path_(path), tmp_(temp_path_for(path)) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec))
      throw std::runtime_error("cannot write '" + path + "': it is a directory");
    if (::unlink(tmp_.c_str()) != 0 && errno != ENOENT)
      throw std::runtime_error("cannot remove the stale temporary file '" + tmp_ +
                               "': " + detail_files::errno_text(errno));
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0)
      throw std::runtime_error("cannot write '" + path + "': creating '" + tmp_ +
                               "' failed: " + detail_files::errno_text(errno));
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(tmp_.c_str());
    }
  }
  const std::string& path() const { return path_; }

  void write(const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = ::write(fd_, s.data() + done, s.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("writing '" + tmp_ + "' failed");
      done += static_cast<std::size_t>(n);
    }
  }

  /// fsync, rename over the destination, fsync the directory.
  void commit() {
    if (::fsync(fd_) != 0 && errno != EINVAL) fail("fsync of '" + tmp_ + "' failed");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
      const int err = errno;
      ::unlink(tmp_.c_str());
      throw std::runtime_error("closing '" + tmp_ + "' failed: " + detail_files::errno_text(err));
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp_.c_str());
      throw std::runtime_error("renaming '" + tmp_ + "' over '" + path_ +
                               "' failed: " + detail_files::errno_text(err));
    }
    detail_files::fsync_dir(detail_files::parent_dir(path_));
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
    throw std::runtime_error(what + ": " + detail_files::errno_text(err));
  }
  std::string path_, tmp_;
  int fd_ = -1;
};

/// Writes `content` to `path` atomically (AtomicFile).
inline void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

/// True when process `pid` exists (or exists under another user).
inline bool process_alive(long pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

/// Removes the files `<name>.tmp.<pid>` in `dir` whose pid is not a running process (left by a
/// writer killed before its rename); with `name` given, only that file's. Returns the names
/// removed.
inline std::vector<std::string> remove_stale_temps(const std::string& dir, const std::string& name_only = "") {
  namespace fs = std::filesystem;
  std::vector<std::string> removed;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto k = name.rfind(".tmp.");
    if (k == std::string::npos || k == 0 || k + 5 >= name.size()) continue;
    if (!name_only.empty() && name.substr(0, k) != name_only) continue;
    const std::string digits = name.substr(k + 5);
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(digits);
    if (pid == static_cast<long>(::getpid()) || process_alive(pid)) continue;
    std::error_code rec;
    if (it->is_regular_file(rec) && fs::remove(it->path(), rec)) removed.push_back(name);
  }
  return removed;
}

/// Throws unless a file at `path` can be created or replaced: not a directory, and the
/// directory that holds it accepts a new file (probed with this process's temporary name).
inline void require_writable(const std::string& path) {
  AtomicFile probe(path);  // creates and, going out of scope, removes <path>.tmp.<pid>
}

/// An exclusive lock of a run directory: flock() on `<dir>/train.lock`, which records the
/// holder's pid and start time. The kernel releases it when the process ends, however it ends
/// (kill -9 included), so a lock is never stale.
class DirLock {
 public:
  /// Takes the lock or throws std::runtime_error naming the holder.
  explicit DirLock(const std::string& dir, const std::string& what) {
    path_ = (std::filesystem::path(dir) / "train.lock").string();
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ < 0)
      throw std::runtime_error("cannot create the lock file '" + path_ +
                               "': " + detail_files::errno_text(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      std::string holder;
      char buf[256];
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      if (n > 0) holder.assign(buf, static_cast<std::size_t>(n));
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\r')) holder.pop_back();
      ::close(fd_);
      fd_ = -1;
      if (err != EWOULDBLOCK)
        throw std::runtime_error("cannot lock '" + path_ + "': " + detail_files::errno_text(err));
      throw std::runtime_error("the run directory '" + dir + "' is in use by another process (" +
                               (holder.empty() ? std::string("holder unknown") : holder) +
                               "); wait for it to end or choose another --out");
    }
    char when[64] = "?";
    const std::time_t now = std::time(nullptr);
    std::tm tmv{};
    if (::localtime_r(&now, &tmv) != nullptr) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tmv);
    const std::string info = what + " pid " + std::to_string(static_cast<long>(::getpid())) +
                             ", since " + when + "\n";
    if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, info.data(), info.size(), 0);
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (removing it would race)
  }

 private:
  std::string path_;
  int fd_ = -1;
};

/// True when `s` is valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
inline bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned c = p[i];
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

/// Lower-case hexadecimal of the bytes of `s`.
inline std::string hex_bytes(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out(2 * s.size(), '0');
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned c = static_cast<unsigned char>(s[i]);
    out[2 * i] = d[c >> 4];
    out[2 * i + 1] = d[c & 15];
  }
  return out;
}

/// The bytes of a hexadecimal string (hex_bytes' inverse); throws on anything else.
inline std::string unhex_bytes(const std::string& h) {
  auto v = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("'" + std::string(1, c) + "' is not a hexadecimal digit");
  };
  if (h.size() % 2 != 0) throw std::invalid_argument("odd number of hexadecimal digits");
  std::string out(h.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = char(v(h[2 * i]) * 16 + v(h[2 * i + 1]));
  return out;
}

}  // namespace app
}  // namespace discdiff

