// discdiff/data/corpus.hpp: reading a text corpus (plain, .xz, tar, .tar.xz),
// its standard train/valid/test split, random training crops and fixed
// evaluation chunks. Host only.
//
// read_text(path)
//   Reads the whole file. Bytes starting with the xz magic FD 37 7A 58 5A 00
//   are decoded with liblzma (concatenated streams allowed), which needs
//   DISCDIFF_HAVE_LZMA=1 at compile time (the discdiff_lzma CMake target, or
//   -DDISCDIFF_HAVE_LZMA=1 -llzma); without it such a file is rejected with a
//   message telling how to decompress it. Bytes (after decoding) with "ustar"
//   at offset 257 are a tar archive: the result is the contents of its regular
//   files, sorted by full name (byte order), skipping files whose base name is
//   README, joined with "\n". Tar parsing handles POSIX ustar and GNU headers,
//   the ustar name prefix, GNU long names ('L') and pax 'path'/'size' records.
//
// standard_splits(path, n)
//   Chosen by the lower-cased base name of path:
//     "shakespeare"               -> nanoGPT 90/10: train [0, a), valid [a, n),
//                                    test = valid, a = floor(9 n / 10)
//     "text8", "enwik8", anything else -> 90/5/5: train [0, a), valid [a, b),
//                                    test [b, n), a = floor(90 n / 100),
//                                    b = floor(95 n / 100)
//   The floors are exact integer arithmetic (no floating point). For the
//   12,549,840-byte text8 prefix this is [0, 11294856) / [11294856, 11922348)
//   / [11922348, 12549840).
//
// TokenView
//   A read-only sequence of token ids, in one of two storages:
//     owned     a std::vector<int> held by a shared_ptr (text encoded at load time, the
//               synthetic source): TokenView(std::move(ids));
//     borrowed  little-endian uint16 or uint32 ids in memory that something else owns, kept
//               alive by a shared_ptr (a memory-mapped token file: TokenFile::view(s) in
//               token_file.hpp); TokenView::of(vector) borrows a vector without keeping it
//               alive (the caller keeps it for as long as the view is used).
//   Copies share the ids (nothing is copied). Reading converts to int only what is read:
//   operator[] (one id), copy(first, count, out) and to_vector() (a whole copy: tests and
//   small splits only). So training and evaluation on a token file touch only the pages of
//   the crops and windows they read, and the file is never copied into a vector.
//
// random_crops / eval_chunks (TokenView, or std::vector<int> through TokenView::of)
//   Crop b of training step `step` starts at
//   CounterRng(seed, kCropStream, step * B + b).uniform_int(n - L + 1).
//   Evaluation uses the n / L fixed non-overlapping chunks [k L, (k + 1) L).
//   The ids are the same, bit for bit, whatever the storage.
//
// Errors: std::runtime_error for I/O and format problems (missing file with
// strerror, corrupt xz with the meaning of the lzma_ret code, malformed or
// truncated tar), always naming the path; std::invalid_argument for bad
// arguments (sizes, counts, ranges).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/random.hpp"

#if defined(DISCDIFF_HAVE_LZMA) && DISCDIFF_HAVE_LZMA
#include <lzma.h>
#endif

namespace discdiff {
namespace data {

namespace detail {

/// The six-byte xz stream header magic.
inline bool has_xz_magic(const std::string& bytes) {
  static const unsigned char magic[6] = {0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00};
  return bytes.size() >= 6 && std::memcmp(bytes.data(), magic, 6) == 0;
}

/// The whole file as bytes; throws std::runtime_error naming path and errno.
inline std::string read_file_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    throw std::runtime_error("read_text: cannot open " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const std::size_t got = std::fread(buf, 1, sizeof buf, f);
    out.append(buf, got);
    if (got < sizeof buf) {
      const bool err = std::ferror(f) != 0;
      const int e = errno;
      std::fclose(f);
      if (err)
        throw std::runtime_error("read_text: error reading " + path + ": " + std::strerror(e));
      return out;
    }
  }
}

#if defined(DISCDIFF_HAVE_LZMA) && DISCDIFF_HAVE_LZMA
inline const char* lzma_ret_meaning(lzma_ret r) {
  switch (r) {
    case LZMA_OK: return "no error";
    case LZMA_STREAM_END: return "end of stream";
    case LZMA_NO_CHECK: return "input stream has no integrity check";
    case LZMA_UNSUPPORTED_CHECK: return "cannot calculate the integrity check";
    case LZMA_GET_CHECK: return "integrity check type is now available";
    case LZMA_MEM_ERROR: return "cannot allocate memory (LZMA_MEM_ERROR)";
    case LZMA_MEMLIMIT_ERROR: return "memory usage limit was reached (LZMA_MEMLIMIT_ERROR)";
    case LZMA_FORMAT_ERROR: return "file format not recognized (LZMA_FORMAT_ERROR)";
    case LZMA_OPTIONS_ERROR: return "invalid or unsupported options (LZMA_OPTIONS_ERROR)";
    case LZMA_DATA_ERROR: return "data is corrupt (LZMA_DATA_ERROR)";
    case LZMA_BUF_ERROR:
      return "no progress is possible: the compressed data is truncated (LZMA_BUF_ERROR)";
    case LZMA_PROG_ERROR: return "programming error (LZMA_PROG_ERROR)";
    default: return "unknown liblzma error";
  }
}

/// Decode a complete .xz byte string (one or more concatenated streams),
/// producing the output in 1 MiB chunks; no memory usage limit.
inline std::string xz_decode(const std::string& in, const std::string& path) {
  lzma_stream strm = LZMA_STREAM_INIT;
  lzma_ret r = lzma_stream_decoder(&strm, UINT64_MAX, LZMA_CONCATENATED);
  if (r != LZMA_OK)
    throw std::runtime_error("read_text: " + path + ": cannot start the xz decoder: " +
                             lzma_ret_meaning(r));
  struct Guard {
    lzma_stream* s;
    ~Guard() { lzma_end(s); }
  } guard{&strm};

  std::string out;
  const std::size_t kChunk = std::size_t(1) << 20;
  std::vector<std::uint8_t> buf(kChunk);
  strm.next_in = reinterpret_cast<const std::uint8_t*>(in.data());
  strm.avail_in = in.size();
  for (;;) {
    strm.next_out = buf.data();
    strm.avail_out = buf.size();
    // All input is present, so LZMA_FINISH: the decoder then knows that no
    // further concatenated stream follows.
    r = lzma_code(&strm, LZMA_FINISH);
    out.append(reinterpret_cast<const char*>(buf.data()), buf.size() - strm.avail_out);
    if (r == LZMA_STREAM_END) return out;
    if (r != LZMA_OK)
      throw std::runtime_error("read_text: " + path + " is not a valid xz file: " +
                               lzma_ret_meaning(r) + " after " +
                               std::to_string(strm.total_in) + " of " +
                               std::to_string(in.size()) + " compressed bytes");
  }
}
#endif

/// Parse a NUL/space-padded octal tar number field (or GNU base-256).
inline std::uint64_t tar_number(const char* field, std::size_t len, const char* what,
                                const std::string& path, std::uint64_t header_offset) {
  auto bad = [&](const std::string& why) -> std::uint64_t {
    throw std::runtime_error("read_text: " + path + ": malformed tar header at byte " +
                             std::to_string(header_offset) + ": " + what + " field " + why);
  };
  const auto first = static_cast<unsigned char>(field[0]);
  if (first & 0x80) {  // GNU base-256: big-endian, first byte's top bit is the flag
    if (first & 0x40) return bad("is a negative base-256 number");
    std::uint64_t v = first & 0x3f;
    for (std::size_t i = 1; i < len; ++i) {
      if (v >> 56) return bad("overflows 64 bits");
      v = (v << 8) | static_cast<unsigned char>(field[i]);
    }
    return v;
  }
  std::size_t i = 0;
  while (i < len && field[i] == ' ') ++i;
  std::uint64_t v = 0;
  std::size_t digits = 0;
  for (; i < len && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    if (v >> 60) return bad("overflows 64 bits");
    v = v * 8 + static_cast<std::uint64_t>(field[i] - '0');
  }
  for (; i < len; ++i)
    if (field[i] != ' ' && field[i] != '\0')
      return bad("holds a non-octal character " + std::to_string(static_cast<int>(
                                                       static_cast<unsigned char>(field[i]))));
  if (digits == 0) return bad("is empty");
  return v;
}

inline std::string tar_string(const char* field, std::size_t len) {
  std::size_t n = 0;
  while (n < len && field[n] != '\0') ++n;
  return std::string(field, n);
}

inline bool is_tar(const std::string& bytes) {
  return bytes.size() >= 262 && bytes.compare(257, 5, "ustar") == 0;
}

/// The regular files of a tar archive (name, contents), in archive order.
inline std::vector<std::pair<std::string, std::string>> tar_files(const std::string& a,
                                                                   const std::string& path) {
  std::vector<std::pair<std::string, std::string>> files;
  const std::size_t n = a.size();
  std::size_t off = 0;
  std::string long_name;     // from a GNU 'L' entry, for the next header
  std::string pax_path;      // from a pax 'x' entry, for the next header
  bool pax_has_size = false;
  std::uint64_t pax_size = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error("read_text: " + path + ": malformed tar archive: " + why);
  };
  for (;;) {
    if (off == n) fail("no end-of-archive block (the archive is truncated)");
    if (n - off < 512)
      fail("truncated header at byte " + std::to_string(off) + " (" + std::to_string(n - off) +
           " of 512 bytes present)");
    const char* h = a.data() + off;
    bool zero = true;
    for (int i = 0; i < 512 && zero; ++i) zero = h[i] == '\0';
    if (zero) break;  // end-of-archive marker
    // Header checksum: unsigned sum of the block with the checksum field as spaces.
    std::uint64_t sum = 0;
    for (int i = 0; i < 512; ++i)
      sum += (i >= 148 && i < 156) ? 0x20u : static_cast<unsigned char>(h[i]);
    const std::uint64_t stored = tar_number(h + 148, 8, "checksum", path, off);
    if (stored != sum)
      fail("header checksum mismatch at byte " + std::to_string(off) + " (stored " +
           std::to_string(stored) + ", computed " + std::to_string(sum) + ")");
    std::uint64_t size = tar_number(h + 124, 12, "size", path, off);
    const char type = h[156];
    std::string name = tar_string(h, 100);
    if (std::string(h + 257, 5) == "ustar" && h[262] == '\0') {  // POSIX prefix field
      const std::string prefix = tar_string(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (type != 'L' && type != 'x' && type != 'g') {
      if (!long_name.empty()) name = long_name;
      if (!pax_path.empty()) name = pax_path;
      if (pax_has_size) size = pax_size;
    }
    const std::size_t data_begin = off + 512;
    if (size > n - data_begin)
      fail("entry \"" + name + "\" at byte " + std::to_string(off) + " declares " +
           std::to_string(size) + " bytes but only " + std::to_string(n - data_begin) +
           " remain (the archive is truncated)");
    const std::string body = a.substr(data_begin, static_cast<std::size_t>(size));
    if (type == 'L') {
      long_name = tar_string(body.data(), body.size());
    } else if (type == 'x') {
      // pax records "LEN key=value\n"; we honour path and size.
      std::size_t p = 0;
      while (p < body.size()) {
        std::size_t sp = body.find(' ', p);
        if (sp == std::string::npos) fail("bad pax record in entry at byte " + std::to_string(off));
        std::size_t len = 0;
        for (std::size_t i = p; i < sp; ++i) {
          if (body[i] < '0' || body[i] > '9' || len > body.size())
            fail("bad pax record length at byte " + std::to_string(off));
          len = len * 10 + static_cast<std::size_t>(body[i] - '0');
        }
        if (len <= sp - p + 1 || p + len > body.size() || body[p + len - 1] != '\n')
          fail("bad pax record at byte " + std::to_string(off));
        const std::string rec = body.substr(sp + 1, p + len - 1 - (sp + 1));
        const std::size_t eq = rec.find('=');
        if (eq == std::string::npos) fail("pax record without '=' at byte " + std::to_string(off));
        const std::string key = rec.substr(0, eq), value = rec.substr(eq + 1);
        if (key == "path") pax_path = value;
        if (key == "size") {
          std::uint64_t v = 0;
          if (value.empty()) fail("empty pax size at byte " + std::to_string(off));
          for (char c : value) {
            if (c < '0' || c > '9' || v > (std::numeric_limits<std::uint64_t>::max() - 9) / 10)
              fail("bad pax size \"" + value + "\" at byte " + std::to_string(off));
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
          }
          pax_has_size = true;
          pax_size = v;
        }
        p += len;
      }
    } else if (type == 'g') {
      // global pax header: nothing we use
    } else {
      if (type == '0' || type == '\0' || type == '7') files.emplace_back(name, body);
      long_name.clear();
      pax_path.clear();
      pax_has_size = false;
    }
    const std::uint64_t padded = (size + 511) / 512 * 512;
    if (padded > n - data_begin)
      fail("entry \"" + name + "\" at byte " + std::to_string(off) +
           " lacks its padding to 512 bytes (the archive is truncated)");
    off = data_begin + static_cast<std::size_t>(padded);
  }
  return files;
}

inline std::string base_name(const std::string& path) {
  const std::size_t slash = path.find_last_of("/\\");
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// floor(n * a / b) for a <= b without overflow.
inline std::size_t floor_fraction(std::size_t n, std::size_t a, std::size_t b) {
  return (n / b) * a + (n % b) * a / b;
}

}  // namespace detail

/// The text of a plain, .xz, tar or .tar.xz file (see the header comment).
inline std::string read_text(const std::string& path) {
  std::string bytes = detail::read_file_bytes(path);
  if (detail::has_xz_magic(bytes)) {
#if defined(DISCDIFF_HAVE_LZMA) && DISCDIFF_HAVE_LZMA
    bytes = detail::xz_decode(bytes, path);
#else
    throw std::runtime_error(path + " is xz-compressed but this build has no liblzma; "
                             "decompress it first: xz -dk " + path);
#endif
  }
  if (!detail::is_tar(bytes)) return bytes;
  auto files = detail::tar_files(bytes, path);
  std::sort(files.begin(), files.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  std::string out;
  bool first = true;
  for (const auto& f : files) {
    if (detail::base_name(f.first) == "README") continue;
    if (!first) out.push_back('\n');
    out += f.second;
    first = false;
  }
  return out;
}

/// A half-open byte/token range [begin, end).
struct Range {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
};

/// The train/valid/test ranges of a corpus and the rule that produced them.
struct Splits {
  Range train, valid, test;
  std::string rule;  // one human-readable line
};

/// The standard split of a corpus of n bytes named by path (see the header
/// comment). Throws std::invalid_argument if a split would be empty.
inline Splits standard_splits(const std::string& path, std::size_t n) {
  std::string base = detail::base_name(path);
  for (char& c : base)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  auto r = [](std::size_t b, std::size_t e) { return "[" + std::to_string(b) + ", " +
                                                      std::to_string(e) + ")"; };
  Splits s;
  if (base.find("shakespeare") != std::string::npos) {
    if (n < 10)
      throw std::invalid_argument("standard_splits: " + path + ": n = " + std::to_string(n) +
                                  " (the 90/10 split needs at least 10 bytes)");
    const std::size_t a = detail::floor_fraction(n, 9, 10);
    s.train = {0, a};
    s.valid = {a, n};
    s.test = s.valid;
    s.rule = "shakespeare (nanoGPT shakespeare_char 90/10) of n = " + std::to_string(n) +
             ": train " + r(0, a) + ", valid " + r(a, n) +
             ", test = valid (no separate test set); a = floor(0.9 n)";
    return s;
  }
  if (n < 20)
    throw std::invalid_argument("standard_splits: " + path + ": n = " + std::to_string(n) +
                                " (the 90/5/5 split needs at least 20 bytes)");
  const std::size_t a = detail::floor_fraction(n, 90, 100);
  const std::size_t b = detail::floor_fraction(n, 95, 100);
  s.train = {0, a};
  s.valid = {a, b};
  s.test = {b, n};
  std::string what = "generic";
  std::string note;
  if (base.find("text8") != std::string::npos || base.find("enwik8") != std::string::npos) {
    what = base.find("text8") != std::string::npos ? "text8" : "enwik8";
    if (n != 100000000)
      note = "; a development split of a prefix, not the standard split of the full 100M-byte file";
  }
  s.rule = what + " 90/5/5 of n = " + std::to_string(n) + ": train " + r(0, a) + ", valid " +
           r(a, b) + ", test " + r(b, n) + "; boundaries floor(0.90 n), floor(0.95 n)" + note;
  return s;
}

/// A read-only sequence of token ids, owned or borrowed (see the file comment).
class TokenView {
 public:
  /// How the ids are stored: native ints, or little-endian 2- or 4-byte unsigned ids.
  enum class Storage { int32, u16le, u32le };

  /// An empty view.
  TokenView() = default;
  /// Takes `ids` over (owned storage).
  explicit TokenView(std::vector<int> ids) {
    auto v = std::make_shared<const std::vector<int>>(std::move(ids));
    data_ = v->data();
    n_ = v->size();
    storage_ = Storage::int32;
    keep_ = std::move(v);
  }
  /// A view of `ids` that does not keep it alive: `ids` must outlive the view and its copies.
  static TokenView of(const std::vector<int>& ids) {
    TokenView t;
    t.data_ = ids.data();
    t.n_ = ids.size();
    t.storage_ = Storage::int32;
    return t;
  }
  /// `n` little-endian unsigned ids of `width` bytes (2 or 4) at `data`, kept alive by `keep`
  /// (e.g. the shared_ptr of a memory map). Throws std::invalid_argument for another width or
  /// a null `data` with n > 0.
  static TokenView little_endian(std::shared_ptr<const void> keep, const void* data, std::size_t n,
                                 int width) {
    if (width != 2 && width != 4)
      throw std::invalid_argument("TokenView::little_endian: width " + std::to_string(width) +
                                  " (2 or 4 bytes)");
    if (data == nullptr && n > 0)
      throw std::invalid_argument("TokenView::little_endian: data is null but n = " + std::to_string(n));
    TokenView t;
    t.keep_ = std::move(keep);
    t.data_ = data;
    t.n_ = n;
    t.storage_ = width == 2 ? Storage::u16le : Storage::u32le;
    return t;
  }

  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  Storage storage() const { return storage_; }
  /// Whether the ids live in a vector<int> of this view (owned) rather than elsewhere.
  bool owned() const { return storage_ == Storage::int32 && keep_ != nullptr; }

  /// Id i (unchecked, like std::vector::operator[]).
  int operator[](std::size_t i) const {
    const auto* b = static_cast<const unsigned char*>(data_);
    switch (storage_) {
      case Storage::u16le: return static_cast<int>(b[2 * i] | (unsigned(b[2 * i + 1]) << 8));
      case Storage::u32le:
        return static_cast<int>(std::uint32_t(b[4 * i]) | (std::uint32_t(b[4 * i + 1]) << 8) |
                                (std::uint32_t(b[4 * i + 2]) << 16) | (std::uint32_t(b[4 * i + 3]) << 24));
      case Storage::int32: break;
    }
    return static_cast<const int*>(data_)[i];
  }

  /// Ids [first, first + count) as ints into out (count entries). Throws
  /// std::invalid_argument if the range is outside the view or out is null with count > 0.
  void copy(std::size_t first, std::size_t count, int* out) const {
    if (first > n_ || count > n_ - first)
      throw std::invalid_argument("TokenView::copy: ids [" + std::to_string(first) + ", " +
                                  std::to_string(first) + " + " + std::to_string(count) +
                                  ") exceed the " + std::to_string(n_) + " ids");
    if (count == 0) return;
    if (out == nullptr) throw std::invalid_argument("TokenView::copy: out is null");
    const auto* b = static_cast<const unsigned char*>(data_);
    switch (storage_) {
      case Storage::int32: {
        const int* p = static_cast<const int*>(data_) + first;
        std::copy(p, p + count, out);
        return;
      }
      case Storage::u16le: {
        const unsigned char* p = b + 2 * first;
        for (std::size_t i = 0; i < count; ++i)
          out[i] = static_cast<int>(p[2 * i] | (unsigned(p[2 * i + 1]) << 8));
        return;
      }
      case Storage::u32le: {
        const unsigned char* p = b + 4 * first;
        for (std::size_t i = 0; i < count; ++i)
          out[i] = static_cast<int>(std::uint32_t(p[4 * i]) | (std::uint32_t(p[4 * i + 1]) << 8) |
                                    (std::uint32_t(p[4 * i + 2]) << 16) |
                                    (std::uint32_t(p[4 * i + 3]) << 24));
        return;
      }
    }
  }

  /// All ids as a vector (a full copy: for tests and small splits).
  std::vector<int> to_vector() const {
    std::vector<int> v(n_);
    copy(0, n_, v.data());
    return v;
  }

 private:
  std::shared_ptr<const void> keep_;
  const void* data_ = nullptr;
  std::size_t n_ = 0;
  Storage storage_ = Storage::int32;
};

/// Philox stream of the training crops ("CROP").
constexpr std::uint32_t kCropStream = 0x43524F50;

/// B random crops of length L into out (B x L, row-major); crop b of step
/// `step` starts at CounterRng(seed, kCropStream, step * B + b).uniform_int(n - L + 1).
inline void random_crops(const TokenView& tokens, int B, int L, std::uint64_t seed,
                         std::uint64_t step, int* out) {
  const std::size_t n = tokens.size();
  if (B < 1) throw std::invalid_argument("random_crops: B = " + std::to_string(B) + " (must be >= 1)");
  if (L < 1) throw std::invalid_argument("random_crops: L = " + std::to_string(L) + " (must be >= 1)");
  if (n < static_cast<std::size_t>(L))
    throw std::invalid_argument("random_crops: the corpus has n = " + std::to_string(n) +
                                " tokens, fewer than the crop length L = " + std::to_string(L));
  const std::size_t starts = n - static_cast<std::size_t>(L) + 1;
  if (starts > std::numeric_limits<std::uint32_t>::max())
    throw std::invalid_argument("random_crops: n - L + 1 = " + std::to_string(starts) +
                                " start positions exceed 2^32 - 1 (split the corpus)");
  if (out == nullptr) throw std::invalid_argument("random_crops: out is null");
  for (int b = 0; b < B; ++b) {
    CounterRng rng(seed, kCropStream, step * static_cast<std::uint64_t>(B) + static_cast<std::uint64_t>(b));
    const std::size_t s = rng.uniform_int(static_cast<std::uint32_t>(starts));
    tokens.copy(s, static_cast<std::size_t>(L),
                out + static_cast<std::size_t>(b) * static_cast<std::size_t>(L));
  }
}

/// random_crops of a vector (borrowed for the call).
inline void random_crops(const std::vector<int>& tokens, int B, int L, std::uint64_t seed,
                         std::uint64_t step, int* out) {
  random_crops(TokenView::of(tokens), B, L, seed, step, out);
}

/// The number of fixed non-overlapping evaluation chunks: n / L.
inline std::size_t num_eval_chunks(std::size_t n, int L) {
  if (L < 1) throw std::invalid_argument("num_eval_chunks: L = " + std::to_string(L) + " (must be >= 1)");
  return n / static_cast<std::size_t>(L);
}

/// Chunks first .. first + count - 1 (chunk k = tokens [k L, (k + 1) L)) into
/// out (count x L, row-major).
inline void eval_chunks(const TokenView& tokens, int L, std::size_t first,
                        std::size_t count, int* out) {
  const std::size_t total = num_eval_chunks(tokens.size(), L);
  if (first > total || count > total - first)
    throw std::invalid_argument("eval_chunks: chunks [" + std::to_string(first) + ", " +
                                std::to_string(first) + " + " + std::to_string(count) +
                                ") exceed the " + std::to_string(total) + " chunks of length " +
                                std::to_string(L) + " in " + std::to_string(tokens.size()) +
                                " tokens");
  if (count > 0 && out == nullptr) throw std::invalid_argument("eval_chunks: out is null");
  const std::size_t Ls = static_cast<std::size_t>(L);
  tokens.copy(first * Ls, count * Ls, out);
}

/// eval_chunks of a vector (borrowed for the call).
inline void eval_chunks(const std::vector<int>& tokens, int L, std::size_t first,
                        std::size_t count, int* out) {
  eval_chunks(TokenView::of(tokens), L, first, count, out);
}

}  // namespace data
}  // namespace discdiff
