// discdiff/io/safetensors.hpp: a reader and writer of the Hugging Face safetensors
// format (checkpoints), with crash-safe atomic writes. Host only, POSIX.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON (the header),
// then the byte buffer. The header is an object; each key is a tensor name mapping
// to {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} with offsets
// relative to the start of the buffer; the optional key "__metadata__" maps to an
// object of string -> string. Tensors are little-endian and row-major (C order).
//
// Supported dtypes: F64, F32, I64, I32, U8 (Dtype). Other names of the format
// (F16, BF16, I8, I16, U16, U32, U64, BOOL, F8_*, ...) are recognised only to be
// rejected with a clear "unsupported dtype" error.
//
// Reading (SafetensorsFile::load / parse) validates everything and throws
// FormatError, whose message starts with the origin (the path, or "<memory>"),
// on any defect: a file shorter than 8 bytes; N beyond the file or beyond 100 MB;
// a header that does not start with '{', is not UTF-8, has control bytes, nests
// deeper than the schema allows (3 levels), is not valid JSON, or repeats a key at
// any level (nlohmann-json would keep the last one silently; we reject); entries
// that are not objects, miss a field or carry an extra one; a dtype that is not a
// string or not supported; a shape that is not an array of non-negative integers;
// data_offsets that are not two non-negative integers with begin <= end <= buffer
// size; end - begin != prod(shape) * dtype size (the product is overflow-checked);
// tensors that overlap, leave holes or leave trailing bytes (the buffer must be
// covered exactly, as in the reference implementation); __metadata__ that is not
// an object of strings. Looking up a missing tensor or metadata key, or reading a
// tensor with the wrong element type or shape, also throws FormatError.
//
// Writing (SafetensorsWriter) validates its inputs with std::invalid_argument and
// lays out tensors in insertion order, the header padded with spaces so that
// 8 + N is a multiple of 8 (as the reference implementation does). write_atomic
// writes `path.tmp.<pid>`, fsyncs it, renames it over `path` and fsyncs the
// directory, so a crash leaves either the old or the new complete file at `path`;
// I/O failures throw std::runtime_error naming the path and strerror(errno).
// Two threads of one process must not write the same path at the same time.
//
// The host must be little-endian (checked at compile time where the compiler
// tells).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "discdiff/io/safetensors.hpp assumes a little-endian host");
#endif

namespace discdiff {
namespace io {

/// The element types this library reads and writes.
enum class Dtype { F64, F32, I64, I32, U8 };

/// The format's name of a dtype ("F64", "F32", "I64", "I32", "U8").
inline const char* dtype_name(Dtype d) {
  switch (d) {
    case Dtype::F64: return "F64";
    case Dtype::F32: return "F32";
    case Dtype::I64: return "I64";
    case Dtype::I32: return "I32";
    case Dtype::U8: return "U8";
  }
  throw std::invalid_argument("dtype_name: invalid Dtype value " +
                              std::to_string(static_cast<int>(d)));
}

/// Bytes per element of a dtype.
inline std::size_t dtype_size(Dtype d) {
  switch (d) {
    case Dtype::F64: return 8;
    case Dtype::F32: return 4;
    case Dtype::I64: return 8;
    case Dtype::I32: return 4;
    case Dtype::U8: return 1;
  }
  throw std::invalid_argument("dtype_size: invalid Dtype value " +
                              std::to_string(static_cast<int>(d)));
}

/// Parse a supported dtype name; false (out untouched) for any other string.
inline bool parse_dtype(const std::string& s, Dtype* out) {
  static const Dtype all[] = {Dtype::F64, Dtype::F32, Dtype::I64, Dtype::I32, Dtype::U8};
  for (Dtype d : all)
    if (s == dtype_name(d)) {
      *out = d;
      return true;
    }
  return false;
}

/// True for dtype names of the safetensors format that this library rejects.
inline bool is_known_unsupported_dtype(const std::string& s) {
  static const char* const names[] = {"F16",     "BF16",    "I8",      "I16",     "U16",
                                      "U32",     "U64",     "BOOL",    "F8_E4M3", "F8_E5M2",
                                      "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",      "C64"};
  for (const char* n : names)
    if (s == n) return true;
  return false;
}

/// The Dtype of a C++ element type (float, double, int64_t, int32_t, uint8_t).
template <class T>
struct DtypeOf {
  static_assert(sizeof(T) == 0,
                "safetensors: element type must be float, double, std::int64_t, "
                "std::int32_t or std::uint8_t");
};
template <> struct DtypeOf<double> { static constexpr Dtype value = Dtype::F64; };
template <> struct DtypeOf<float> { static constexpr Dtype value = Dtype::F32; };
template <> struct DtypeOf<std::int64_t> { static constexpr Dtype value = Dtype::I64; };
template <> struct DtypeOf<std::int32_t> { static constexpr Dtype value = Dtype::I32; };
template <> struct DtypeOf<std::uint8_t> { static constexpr Dtype value = Dtype::U8; };

/// Every error found while reading a safetensors file.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One tensor of a file: begin/end are byte offsets into the buffer.
struct TensorInfo {
  std::string name;
  Dtype dtype;
  std::vector<std::int64_t> shape;
  std::size_t begin, end;
};

namespace detail {

/// Largest header accepted on read (the reference implementation's limit).
constexpr std::uint64_t kSafetensorsMaxHeader = 100000000ull;
/// Deepest nesting of a valid header: object > entry > shape array.
constexpr int kSafetensorsMaxDepth = 3;

inline std::string st_le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
  return s;
}

inline std::uint64_t st_read_le64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// A name for error messages: quoted, control bytes escaped, long names cut.
inline std::string st_quote(const std::string& s) {
  static const char hex[] = "0123456789abcdef";
  constexpr std::size_t kMax = 80;
  std::size_t n = s.size();
  bool cut = false;
  if (n > kMax) {
    n = kMax;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0u) == 0x80u) --n;  // char boundary
    cut = true;
  }
  std::string out = "'";
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (cut) out += "...";
  return out + "'";
}

inline std::string st_shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// Offset of the first invalid UTF-8 byte of [p, p+n), or n when all is valid
/// (rejects overlong forms, surrogates and code points above U+10FFFF).
inline std::size_t st_utf8_error(const unsigned char* p, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c == 0xe0) len = 3, lo = 0xa0;
    else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) len = 3;
    else if (c == 0xed) len = 3, hi = 0x9f;
    else if (c == 0xf0) len = 4, lo = 0x90;
    else if (c >= 0xf1 && c <= 0xf3) len = 4;
    else if (c == 0xf4) len = 4, hi = 0x8f;
    else return i;
    if (n - i < len) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xc0u) != 0x80u) return i;
    i += len;
  }
  return n;
}

inline bool st_valid_utf8(const std::string& s) {
  return st_utf8_error(reinterpret_cast<const unsigned char*>(s.data()), s.size()) == s.size();
}

/// a * b, or false on u64 overflow.
inline bool st_mul(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

/// Element count of a shape, or false on overflow / negative dimension.
inline bool st_numel(const std::vector<std::int64_t>& shape, std::uint64_t* out) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) return false;
    if (!st_mul(n, static_cast<std::uint64_t>(d), &n)) return false;
  }
  *out = n;
  return true;
}

[[noreturn]] inline void st_io_fail(const std::string& path, const std::string& step, int err) {
  throw std::runtime_error("safetensors: cannot write '" + path + "': " + step + ": " +
                           std::strerror(err != 0 ? err : EIO));
}

}  // namespace detail

/// Builds a safetensors file in memory and writes it (atomically) to disk.
class SafetensorsWriter {
 public:
  /// Set (or replace) one metadata entry; key and value must be valid UTF-8.
  void set_metadata(const std::string& key, const std::string& value) {
    if (!detail::st_valid_utf8(key))
      throw std::invalid_argument("SafetensorsWriter::set_metadata: key " +
                                  detail::st_quote(key) + " is not valid UTF-8");
    if (!detail::st_valid_utf8(value))
      throw std::invalid_argument("SafetensorsWriter::set_metadata: value of key " +
                                  detail::st_quote(key) + " is not valid UTF-8");
    metadata_[key] = value;
  }

  /// Add a tensor (bytes copied): name non-empty, UTF-8, unique, not "__metadata__";
  /// dimensions >= 0; nbytes == prod(shape) * dtype_size(dtype).
  void add(const std::string& name, Dtype dtype, std::vector<std::int64_t> shape,
           const void* data, std::size_t nbytes) {
    add_entry(name, dtype, std::move(shape), data, nbytes, /*borrow=*/false);
  }

  /// Add a tensor by reference (no copy): the same checks as add(); `data` must stay valid and
  /// unchanged until the last serialize() / write_atomic() of this writer. A checkpoint of a
  /// large network then needs no second copy of its tensors in memory.
  void add_borrowed(const std::string& name, Dtype dtype, std::vector<std::int64_t> shape,
                    const void* data, std::size_t nbytes) {
    add_entry(name, dtype, std::move(shape), data, nbytes, /*borrow=*/true);
  }

 private:
  void add_entry(const std::string& name, Dtype dtype, std::vector<std::int64_t> shape,
                 const void* data, std::size_t nbytes, bool borrow) {
    const char* where = borrow ? "SafetensorsWriter::add_borrowed" : "SafetensorsWriter::add";
    if (name.empty()) throw std::invalid_argument(std::string(where) + ": empty tensor name");
    if (name == "__metadata__")
      throw std::invalid_argument(std::string(where) +
                                  ": tensor name '__metadata__' is reserved for metadata");
    if (!detail::st_valid_utf8(name))
      throw std::invalid_argument(std::string(where) + ": tensor name " +
                                  detail::st_quote(name) + " is not valid UTF-8");
    if (names_.count(name))
      throw std::invalid_argument(std::string(where) + ": duplicate tensor name " +
                                  detail::st_quote(name));
    const std::size_t esize = dtype_size(dtype);  // throws on an invalid enum value
    for (std::size_t i = 0; i < shape.size(); ++i)
      if (shape[i] < 0)
        throw std::invalid_argument(std::string(where) + ": tensor " + detail::st_quote(name) +
                                    ": shape " + detail::st_shape_str(shape) + " has dimension " +
                                    std::to_string(i) + " = " + std::to_string(shape[i]) +
                                    " (must be >= 0)");
    std::uint64_t numel = 0, need = 0;
    if (!detail::st_numel(shape, &numel) || !detail::st_mul(numel, esize, &need))
      throw std::invalid_argument(std::string(where) + ": tensor " + detail::st_quote(name) +
                                  ": byte size of shape " + detail::st_shape_str(shape) +
                                  " overflows 64 bits");
    if (need != static_cast<std::uint64_t>(nbytes))
      throw std::invalid_argument(std::string(where) + ": tensor " + detail::st_quote(name) +
                                  ": nbytes = " + std::to_string(nbytes) + " but shape " +
                                  detail::st_shape_str(shape) + " of dtype " + dtype_name(dtype) +
                                  " needs " + std::to_string(need));
    if (nbytes > 0 && data == nullptr)
      throw std::invalid_argument(std::string(where) + ": tensor " + detail::st_quote(name) +
                                  ": data is null but nbytes = " + std::to_string(nbytes));
    Entry e;
    e.name = name;
    e.dtype = dtype;
    e.shape = std::move(shape);
    if (borrow) {
      e.view = static_cast<const char*>(data);
      e.view_size = nbytes;
    } else if (nbytes > 0) {
      e.bytes.assign(static_cast<const char*>(data), nbytes);
    }
    names_.insert(name);
    entries_.push_back(std::move(e));
  }

 public:

  /// Typed add: T is float, double, std::int64_t, std::int32_t or std::uint8_t;
  /// data holds prod(shape) elements.
  template <class T>
  void add(const std::string& name, std::vector<std::int64_t> shape, const T* data) {
    const Dtype d = DtypeOf<T>::value;
    std::uint64_t numel = 0, nbytes = 0;
    if (!detail::st_numel(shape, &numel) || !detail::st_mul(numel, sizeof(T), &nbytes) ||
        nbytes > std::numeric_limits<std::size_t>::max())
      throw std::invalid_argument("SafetensorsWriter::add: tensor " + detail::st_quote(name) +
                                  ": shape " + detail::st_shape_str(shape) +
                                  " has a negative dimension or its byte size overflows");
    add(name, d, std::move(shape), static_cast<const void*>(data),
        static_cast<std::size_t>(nbytes));
  }

  /// The whole file: 8-byte N, header padded with spaces to N % 8 == 0, buffer.
  std::string serialize() const {
    std::string out = header_block();
    std::size_t total = out.size();
    for (const auto& e : entries_) total += e.size();
    out.reserve(total);
    for (const auto& e : entries_) out.append(e.data(), e.size());
    return out;
  }

  /// Write to path + ".tmp." + pid, fsync, rename over path, fsync the directory.
  /// On failure the temporary file is removed and std::runtime_error is thrown.
  void write_atomic(const std::string& path) const {
    const std::string head = header_block();
    const std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
    // A stale temporary of an earlier process with our pid is ours to replace;
    // O_EXCL then guarantees we never write through a link planted there.
    if (::unlink(tmp.c_str()) != 0 && errno != ENOENT)
      detail::st_io_fail(path, "cannot remove stale temporary file '" + tmp + "'", errno);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) detail::st_io_fail(path, "cannot create temporary file '" + tmp + "'", errno);
    std::FILE* f = ::fdopen(fd, "wb");
    if (f == nullptr) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      detail::st_io_fail(path, "fdopen of '" + tmp + "' failed", err);
    }
    auto fail = [&](const std::string& step) {
      const int err = errno;
      if (f != nullptr) std::fclose(f);
      ::unlink(tmp.c_str());
      detail::st_io_fail(path, step, err);
    };
    auto put = [&](const char* d, std::size_t n) {
      if (n == 0) return;
      errno = 0;
      if (std::fwrite(d, 1, n, f) != n) fail("writing '" + tmp + "' failed");
    };
    put(head.data(), head.size());
    for (const auto& e : entries_) put(e.data(), e.size());
    errno = 0;
    if (std::fflush(f) != 0) fail("flushing '" + tmp + "' failed");
    if (::fsync(::fileno(f)) != 0) fail("fsync of '" + tmp + "' failed");
    std::FILE* g = f;
    f = nullptr;
    if (std::fclose(g) != 0) fail("closing '" + tmp + "' failed");
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      fail("renaming '" + tmp + "' over it failed");
    // The new file is in place; make the rename itself durable.
    const std::string dir = dirname(path);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) detail::st_io_fail(path, "cannot open directory '" + dir + "' to fsync", errno);
    if (::fsync(dfd) != 0 && errno != EINVAL) {  // EINVAL: no directory fsync on this fs
      const int err = errno;
      ::close(dfd);
      detail::st_io_fail(path, "fsync of directory '" + dir + "' failed", err);
    }
    ::close(dfd);
  }

 private:
  struct Entry {
    std::string name;
    Dtype dtype;
    std::vector<std::int64_t> shape;
    std::string bytes;             ///< the copied bytes (add)
    const char* view = nullptr;    ///< or the caller's bytes (add_borrowed)
    std::size_t view_size = 0;
    const char* data() const { return view ? view : bytes.data(); }
    std::size_t size() const { return view ? view_size : bytes.size(); }
  };

  static std::string dirname(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
  }

  /// The 8-byte length followed by the padded JSON header.
  std::string header_block() const {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!metadata_.empty()) {
      nlohmann::ordered_json m = nlohmann::ordered_json::object();
      for (const auto& kv : metadata_) m[kv.first] = kv.second;
      h["__metadata__"] = std::move(m);
    }
    std::uint64_t offset = 0;
    for (const auto& e : entries_) {
      nlohmann::ordered_json t = nlohmann::ordered_json::object();
      t["dtype"] = dtype_name(e.dtype);
      t["shape"] = e.shape;
      const std::uint64_t end = offset + e.size();
      t["data_offsets"] = nlohmann::ordered_json::array({offset, end});
      h[e.name] = std::move(t);
      offset = end;
    }
    std::string json = h.dump();
    json.append((8 - json.size() % 8) % 8, ' ');
    return detail::st_le64(json.size()) + json;
  }

  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
  std::set<std::string> names_;
};

/// A validated safetensors file held in memory.
class SafetensorsFile {
 public:
  /// Read the whole file at path and parse it (errors name the path).
  static SafetensorsFile load(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr)
      throw FormatError(path + ": cannot open: " + std::strerror(errno));
    std::string bytes;
    char buf[1 << 16];
    for (;;) {
      const std::size_t got = std::fread(buf, 1, sizeof buf, f);
      bytes.append(buf, got);
      if (got < sizeof buf) break;
    }
    if (std::ferror(f)) {
      const int err = errno;
      std::fclose(f);
      throw FormatError(path + ": read error: " + std::strerror(err != 0 ? err : EIO));
    }
    std::fclose(f);
    return parse(std::move(bytes), path);
  }

  /// Parse and validate the bytes of a file; errors start with origin.
  static SafetensorsFile parse(std::string bytes, const std::string& origin = "<memory>") {
    SafetensorsFile f;
    f.origin_ = origin;
    f.bytes_ = std::move(bytes);
    f.validate();
    return f;
  }

  /// Where the bytes came from (the path, or "<memory>").
  const std::string& origin() const { return origin_; }

  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The value of one metadata key (FormatError naming the key when absent).
  std::string metadata_value(const std::string& key) const {
    const auto it = metadata_.find(key);
    if (it == metadata_.end()) fail("no metadata key " + detail::st_quote(key));
    return it->second;
  }

  /// Tensor names in the order of their data offsets (ties by end, then name).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& t : tensors_) out.push_back(t.name);
    return out;
  }

  bool has(const std::string& name) const { return index_.count(name) != 0; }

  /// Metadata of one tensor (FormatError naming it when absent).
  const TensorInfo& info(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) fail("no tensor named " + detail::st_quote(name));
    return tensors_[it->second];
  }

  /// The raw little-endian bytes of one tensor (end - begin of them; not aligned).
  const unsigned char* data(const std::string& name) const {
    const TensorInfo& t = info(name);
    return reinterpret_cast<const unsigned char*>(bytes_.data()) + buffer_offset_ + t.begin;
  }

  /// Size in bytes of the byte buffer after the header.
  std::size_t buffer_size() const { return bytes_.size() - buffer_offset_; }

  /// The elements of one tensor; T must match its dtype and expected_shape its shape.
  template <class T>
  std::vector<T> read(const std::string& name, const std::vector<std::int64_t>& expected_shape) const {
    const Dtype want = DtypeOf<T>::value;
    const TensorInfo& t = info(name);
    if (t.dtype != want)
      fail("tensor " + detail::st_quote(name) + " has dtype " + dtype_name(t.dtype) + ", but " +
           dtype_name(want) + " was requested");
    if (t.shape != expected_shape)
      fail("tensor " + detail::st_quote(name) + " has shape " + detail::st_shape_str(t.shape) +
           ", but " + detail::st_shape_str(expected_shape) + " was expected");
    const std::size_t nbytes = t.end - t.begin;
    std::vector<T> out(nbytes / sizeof(T));
    if (nbytes > 0) std::memcpy(out.data(), data(name), nbytes);
    return out;
  }

 private:
  SafetensorsFile() = default;

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(origin_ + ": " + what);
  }

  /// Cheap checks of the raw header text before JSON parsing: UTF-8, no control
  /// bytes (never legal in JSON text), nesting no deeper than the schema allows
  /// (which also bounds the parser's memory on hostile input).
  void prescan_header(const char* p, std::size_t n) const {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    const std::size_t bad = detail::st_utf8_error(u, n);
    if (bad != n) fail("header is not valid UTF-8 (byte " + std::to_string(bad) + " of the header)");
    int depth = 0;
    bool in_string = false, escaped = false;
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned char c = u[i];
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        static const char hex[] = "0123456789abcdef";
        fail(std::string("header contains control byte 0x") + hex[c >> 4] + hex[c & 15] +
             " at byte " + std::to_string(i) + " of the header");
      }
      if (in_string) {
        if (escaped) escaped = false;
        else if (c == '\\') escaped = true;
        else if (c == '"') in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        if (++depth > detail::kSafetensorsMaxDepth)
          fail("header nests deeper than " + std::to_string(detail::kSafetensorsMaxDepth) +
               " levels (byte " + std::to_string(i) + " of the header)");
      } else if (c == '}' || c == ']') {
        --depth;
      }
    }
  }

  /// Parse JSON, rejecting a key repeated within one object at any level.
  nlohmann::json parse_json(const char* p, std::size_t n) const {
    std::vector<std::set<std::string>> keys;
    bool dup = false;
    std::string dup_key;
    nlohmann::json::parser_callback_t cb = [&](int, nlohmann::json::parse_event_t ev,
                                               nlohmann::json& parsed) {
      using E = nlohmann::json::parse_event_t;
      if (ev == E::object_start) {
        keys.emplace_back();
      } else if (ev == E::object_end) {
        if (!keys.empty()) keys.pop_back();
      } else if (ev == E::key && !keys.empty() && parsed.is_string()) {
        const auto& k = parsed.get_ref<const std::string&>();
        if (!keys.back().insert(k).second && !dup) {
          dup = true;
          dup_key = k;
        }
      }
      return true;
    };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(p, p + n, cb);
    } catch (const nlohmann::json::exception& e) {
      fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (dup) fail("header repeats the key " + detail::st_quote(dup_key) + " in one object");
    return j;
  }

  /// A non-negative JSON integer, or fail with `what` as the subject.
  std::uint64_t json_uint(const nlohmann::json& v, const std::string& what) const {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer()) {
      const std::int64_t x = v.get<std::int64_t>();
      if (x < 0) fail(what + " = " + std::to_string(x) + " is negative");
      return static_cast<std::uint64_t>(x);
    }
    fail(what + " is not an integer (got " + v.type_name() + (v.is_number() ? " " + v.dump() : "") +
         ")");
  }

  TensorInfo parse_entry(const std::string& name, const nlohmann::json& v,
                         std::uint64_t buffer_size) const {
    const std::string tn = "tensor " + detail::st_quote(name);
    if (!v.is_object()) fail("entry of " + tn + " is not an object (got " + v.type_name() + ")");
    for (auto it = v.begin(); it != v.end(); ++it)
      if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
        fail(tn + " has unexpected field " + detail::st_quote(it.key()) +
             " (allowed: dtype, shape, data_offsets)");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!v.contains(field)) fail(tn + " lacks field '" + field + "'");

    TensorInfo t;
    t.name = name;
    const auto& jd = v.at("dtype");
    if (!jd.is_string())
      fail("dtype of " + tn + " is not a string (got " + jd.type_name() + ")");
    const auto& ds = jd.get_ref<const std::string&>();
    if (!parse_dtype(ds, &t.dtype))
      fail(std::string(is_known_unsupported_dtype(ds) ? "unsupported" : "unknown") + " dtype " +
           detail::st_quote(ds) + " of " + tn + " (supported: F64, F32, I64, I32, U8)");

    const auto& js = v.at("shape");
    if (!js.is_array()) fail("shape of " + tn + " is not an array (got " + js.type_name() + ")");
    for (std::size_t i = 0; i < js.size(); ++i) {
      const std::uint64_t d = json_uint(js[i], "shape of " + tn + ": dimension " + std::to_string(i));
      if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail("shape of " + tn + ": dimension " + std::to_string(i) + " = " + std::to_string(d) +
             " is too large");
      t.shape.push_back(static_cast<std::int64_t>(d));
    }

    const auto& jo = v.at("data_offsets");
    if (!jo.is_array() || jo.size() != 2)
      fail("data_offsets of " + tn + " is not an array of two integers (got " +
           (jo.is_array() ? "an array of " + std::to_string(jo.size()) : std::string(jo.type_name())) +
           ")");
    const std::uint64_t b = json_uint(jo[0], "data_offsets[0] of " + tn);
    const std::uint64_t e = json_uint(jo[1], "data_offsets[1] of " + tn);
    const std::string offs = "[" + std::to_string(b) + ", " + std::to_string(e) + "]";
    if (b > e) fail("data_offsets " + offs + " of " + tn + " have begin > end");
    if (e > buffer_size)
      fail("data_offsets " + offs + " of " + tn + " end beyond the byte buffer of " +
           std::to_string(buffer_size) + " bytes");
    std::uint64_t numel = 0, need = 0;
    if (!detail::st_numel(t.shape, &numel) || !detail::st_mul(numel, dtype_size(t.dtype), &need))
      fail(tn + ": byte size of shape " + detail::st_shape_str(t.shape) + " overflows 64 bits");
    if (e - b != need)
      fail(tn + ": data_offsets " + offs + " span " + std::to_string(e - b) + " bytes, but dtype " +
           dtype_name(t.dtype) + " and shape " + detail::st_shape_str(t.shape) + " need " +
           std::to_string(need));
    t.begin = static_cast<std::size_t>(b);
    t.end = static_cast<std::size_t>(e);
    return t;
  }

  void validate() {
    const std::size_t size = bytes_.size();
    if (size < 8)
      fail("file has " + std::to_string(size) +
           " bytes, fewer than the 8-byte header length prefix");
    const std::uint64_t n = detail::st_read_le64(bytes_.data());
    if (n > detail::kSafetensorsMaxHeader)
      fail("header length " + std::to_string(n) + " exceeds the limit of " +
           std::to_string(detail::kSafetensorsMaxHeader) + " bytes");
    if (n > size - 8)
      fail("header length " + std::to_string(n) + " exceeds the " + std::to_string(size - 8) +
           " bytes after the 8-byte prefix");
    const char* h = bytes_.data() + 8;
    if (n == 0 || h[0] != '{') fail("header does not start with '{'");
    prescan_header(h, static_cast<std::size_t>(n));
    const nlohmann::json j = parse_json(h, static_cast<std::size_t>(n));
    if (!j.is_object()) fail("header is not a JSON object (got " + std::string(j.type_name()) + ")");

    buffer_offset_ = 8 + static_cast<std::size_t>(n);
    const std::uint64_t buffer_size = size - buffer_offset_;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "__metadata__") {
        const auto& m = it.value();
        if (!m.is_object())
          fail("__metadata__ is not an object (got " + std::string(m.type_name()) + ")");
        for (auto mt = m.begin(); mt != m.end(); ++mt) {
          if (!mt.value().is_string())
            fail("metadata value of key " + detail::st_quote(mt.key()) + " is not a string (got " +
                 mt.value().type_name() + ")");
          metadata_[mt.key()] = mt.value().get<std::string>();
        }
      } else {
        tensors_.push_back(parse_entry(it.key(), it.value(), buffer_size));
      }
    }

    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
      if (a.begin != b.begin) return a.begin < b.begin;
      if (a.end != b.end) return a.end < b.end;
      return a.name < b.name;
    });
    std::size_t cursor = 0;
    const TensorInfo* last = nullptr;  // the tensor whose end is the cursor
    for (const auto& t : tensors_) {
      const std::string offs = "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
      if (t.begin < cursor)
        fail("tensor " + detail::st_quote(t.name) + " (data_offsets " + offs +
             ") overlaps tensor " + detail::st_quote(last->name) + " (data_offsets [" +
             std::to_string(last->begin) + ", " + std::to_string(last->end) + "])");
      if (t.begin > cursor)
        fail("hole of " + std::to_string(t.begin - cursor) + " bytes in the byte buffer at [" +
             std::to_string(cursor) + ", " + std::to_string(t.begin) + ") before tensor " +
             detail::st_quote(t.name));
      cursor = t.end;
      last = &t;
    }
    if (cursor != buffer_size)
      fail(std::to_string(buffer_size - cursor) + " trailing bytes in the byte buffer after " +
           (last ? "tensor " + detail::st_quote(last->name) : std::string("the header")) +
           " (buffer of " + std::to_string(buffer_size) + " bytes, tensors cover " +
           std::to_string(cursor) + ")");
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
  }

  std::string origin_;
  std::string bytes_;
  std::size_t buffer_offset_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;
};

}  // namespace io
}  // namespace discdiff
