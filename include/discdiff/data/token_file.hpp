// discdiff/data/token_file.hpp: pre-tokenized corpora (`discdiff tokenize`), read by memory
// map. Host only (POSIX mmap).
//
// Layout (all integers little-endian), a 56-byte header then the ids:
//   0   8 bytes  magic "DDTOKENS"
//   8   u32      format version (1)
//   12  u32      bytes per id: 2 (uint16, when N <= 65535) or 4 (uint32)
//   16  u32      N, the number of regular tokens (every id is < N; MASK is not stored)
//   20  u32      reserved, 0
//   24  u64      the tokenizer's hash (data::Tokenizer::hash(): FNV-1a 64 of its description)
//   32  u64      number of train ids;  40 u64 valid ids;  48 u64 test ids
//   56  the train, valid and test ids, one after another
// The splits are those of the raw text (data::standard_splits by the source file's name), each
// encoded separately, exactly as training on the raw text does.
//
// TokenFile::open(path) maps the file and checks it: magic, version, width, N, the exact file
// size (a truncated file or trailing bytes are errors) and that every id is < N. Errors:
// std::runtime_error starting with the path, e.g. "c.tok: truncated token file: 1000 bytes, the
// header promises 56 + 4 x 300 = 1256".
//
// Memory: the ids are used in place. TokenFile::view(s) is a data::TokenView (corpus.hpp) of
// split s that reads the mapped uint16/uint32 ids directly and holds a shared_ptr to the
// mapping, so the view stays valid after the TokenFile is gone; random_crops / eval_chunks on
// it convert only the ids they return. The id check of open() reads the file with pread() in
// 1 MiB blocks, not through the mapping, so after open() no page of the ids is resident in the
// process: the resident set grows only by the pages that crops and evaluation windows touch
// (tests/test_token_file_mmap.cpp measures it on a 256 MiB file). split(s) is the old copying
// accessor (a std::vector<int> of the whole split), kept for tests and small files.
//
// encode_in_chunks() encodes a long text in pieces cut where no token can span the cut, calling
// a progress callback after each; the result equals encoding the whole text at once
// (tests/test_token_file.cpp checks this on the corpora). encode_in_chunks_to() hands each
// piece to a sink instead, and TokenFileWriter writes pieces as they come, so `discdiff
// tokenize` never holds the whole id sequence.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.hpp"
#include "tokenizer.hpp"

namespace discdiff {
namespace data {

inline constexpr char kTokenFileMagic[8] = {'D', 'D', 'T', 'O', 'K', 'E', 'N', 'S'};
inline constexpr std::uint32_t kTokenFileVersion = 1;
inline constexpr std::size_t kTokenFileHeader = 56;

/// Whether the file starts with the token-file magic (false if it cannot be read).
inline bool is_token_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char m[8];
  const bool ok = std::fread(m, 1, 8, f) == 8 && std::memcmp(m, kTokenFileMagic, 8) == 0;
  std::fclose(f);
  return ok;
}

namespace token_file_detail {
inline void put_u32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 255));
}
inline void put_u64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 255));
}
inline std::uint64_t get(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::string hex64(std::uint64_t h) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
  return b;
}
}  // namespace token_file_detail

/// Writes a token file piece by piece, so that the ids never have to be held at once (what
/// `discdiff tokenize` does): the header is written first with zero split sizes, append(s, ...)
/// adds ids to split s (splits in order 0, 1, 2; a split may get several pieces or none), and
/// finish() writes the sizes into the header, closes the file and renames it to `path`. Until
/// then the ids go to `path`.tmp.<pid> (an existing `path` stays as it is), and a writer
/// destroyed without finish() (an exception) removes that temporary. The width is 2 bytes when N <= 65535, else 4. Errors:
/// std::runtime_error naming the path for I/O, std::invalid_argument for an id outside
/// [0, N) or a split out of order.
class TokenFileWriter {
 public:
  TokenFileWriter(const std::string& path, const Tokenizer& tok)
      : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())), n_(tok.num_regular()),
        width_(n_ <= 65535 ? 2 : 4), hash_(tok.hash()) {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw std::runtime_error(path + ": cannot write the token file (" + tmp_ + ": " + std::strerror(errno) + ")");
    try {
      write_header();
    } catch (...) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
      throw;
    }
  }
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;
  ~TokenFileWriter() {
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }

  std::uint32_t width() const { return width_; }
  /// Ids written so far to split s.
  std::uint64_t count(int s) const { return count_[s]; }

  /// Appends n ids to split s (s >= every split appended to before).
  void append(int s, const int* ids, std::size_t n) {
    if (!f_) throw std::invalid_argument(path_ + ": the token file is already finished");
    if (s < 0 || s > 2 || s < split_)
      throw std::invalid_argument(path_ + ": split " + std::to_string(s) + " appended after split " +
                                  std::to_string(split_) + " (the splits go in order 0, 1, 2)");
    split_ = s;
    buf_.resize(n * width_);
    for (std::size_t i = 0; i < n; ++i) {
      const int id = ids[i];
      if (id < 0 || id >= n_)
        throw std::invalid_argument(path_ + ": id " + std::to_string(id) + " is outside [0, " +
                                    std::to_string(n_) + ")");
      for (std::uint32_t b = 0; b < width_; ++b)
        buf_[i * width_ + b] = static_cast<unsigned char>((static_cast<std::uint32_t>(id) >> (8 * b)) & 255);
    }
    if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size())
      throw std::runtime_error(path_ + ": writing the token file failed (" + std::strerror(errno) + ")");
    count_[s] += n;
  }
  void append(int s, const std::vector<int>& ids) { append(s, ids.data(), ids.size()); }

  /// Writes the split sizes into the header and closes the file.
  void finish() {
    if (!f_) throw std::invalid_argument(path_ + ": the token file is already finished");
    bool ok = std::fseek(f_, 0, SEEK_SET) == 0;
    if (ok) write_header();
    ok = ok && std::fflush(f_) == 0;
    ok = (std::fclose(f_) == 0) && ok;
    f_ = nullptr;
    if (ok && std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int e = errno;
      std::remove(tmp_.c_str());
      throw std::runtime_error(path_ + ": cannot rename " + tmp_ + " to it (" + std::strerror(e) + ")");
    }
    if (!ok) {
      std::remove(tmp_.c_str());
      throw std::runtime_error(path_ + ": writing the token file failed");
    }
  }

 private:
  void write_header() {
    using namespace token_file_detail;
    std::string head(kTokenFileMagic, 8);
    put_u32(head, kTokenFileVersion);
    put_u32(head, width_);
    put_u32(head, static_cast<std::uint32_t>(n_));
    put_u32(head, 0);
    put_u64(head, hash_);
    for (int s = 0; s < 3; ++s) put_u64(head, count_[s]);
    if (std::fwrite(head.data(), 1, head.size(), f_) != head.size())
      throw std::runtime_error(path_ + ": writing the token file header failed (" + std::strerror(errno) + ")");
  }
  std::string path_, tmp_;
  int n_;
  std::uint32_t width_;
  std::uint64_t hash_;
  std::FILE* f_ = nullptr;
  int split_ = 0;
  std::uint64_t count_[3] = {0, 0, 0};
  std::vector<unsigned char> buf_;
};

/// Writes a token file of three whole splits (see the file comment and TokenFileWriter).
inline void write_token_file(const std::string& path, const Tokenizer& tok,
                             const std::vector<int>& train, const std::vector<int>& valid,
                             const std::vector<int>& test) {
  TokenFileWriter w(path, tok);
  w.append(0, train);
  w.append(1, valid);
  w.append(2, test);
  w.finish();
}

namespace token_file_detail {
/// A read-only memory map, unmapped when the last shared_ptr to it goes.
struct Mapping {
  const unsigned char* data = nullptr;
  std::size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (data) ::munmap(const_cast<unsigned char*>(data), size);
  }
};

/// Closes a file descriptor at scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace token_file_detail

/// A mapped, checked token file. Copies share the mapping.
class TokenFile {
 public:
  static TokenFile open(const std::string& path) {
    using namespace token_file_detail;
    TokenFile t;
    t.path_ = path;
    Fd fd{::open(path.c_str(), O_RDONLY)};
    if (fd.fd < 0) throw std::runtime_error(path + ": cannot open the token file (" + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(fd.fd, &st) != 0) throw std::runtime_error(path + ": cannot stat the token file");
    auto map = std::make_shared<Mapping>();
    map->size = static_cast<std::size_t>(st.st_size);
    if (map->size > 0) {
      void* p = ::mmap(nullptr, map->size, PROT_READ, MAP_PRIVATE, fd.fd, 0);
      if (p == MAP_FAILED)
        throw std::runtime_error(path + ": cannot map the token file (" + std::strerror(errno) + ")");
      map->data = static_cast<const unsigned char*>(p);
      // Training reads short crops at random places: no read-ahead around each fault (a cold
      // file would otherwise be read in pieces of 128 KiB or more for each crop of a few KiB).
      // A hint only; a failure is harmless.
      (void)::madvise(p, map->size, MADV_RANDOM);
    }
    t.map_ = map;
    const std::size_t size = map->size;
    auto fail = [&](const std::string& why) { throw std::runtime_error(path + ": " + why); };
    if (size < 8 || std::memcmp(map->data, kTokenFileMagic, 8) != 0)
      fail("not a discdiff token file (no DDTOKENS magic)");
    if (size < kTokenFileHeader)
      fail("truncated token file: " + std::to_string(size) + " bytes, shorter than the " +
           std::to_string(kTokenFileHeader) + "-byte header");
    const unsigned char* h = map->data;
    const auto version = get(h + 8, 4);
    if (version != kTokenFileVersion)
      fail("token file version " + std::to_string(version) + " is not supported (this build reads " +
           std::to_string(kTokenFileVersion) + ")");
    t.width_ = static_cast<std::uint32_t>(get(h + 12, 4));
    if (t.width_ != 2 && t.width_ != 4)
      fail("corrupt token file header: id width " + std::to_string(t.width_) + " (2 or 4 bytes)");
    t.n_ = static_cast<int>(get(h + 16, 4));
    if (t.n_ < 2 || get(h + 16, 4) > 0x7fffffffu || (t.width_ == 2 && t.n_ > 65535))
      fail("corrupt token file header: vocabulary size " + std::to_string(get(h + 16, 4)));
    t.hash_ = get(h + 24, 8);
    std::uint64_t total = 0;
    for (int s = 0; s < 3; ++s) {
      t.count_[s] = get(h + 32 + 8 * s, 8);
      if (t.count_[s] > (std::uint64_t(1) << 48)) fail("corrupt token file header: split size " + std::to_string(t.count_[s]));
      total += t.count_[s];
    }
    const std::uint64_t want = kTokenFileHeader + total * t.width_;
    if (size != want)
      fail(std::string(size < want ? "truncated token file: " : "token file has trailing bytes: ") +
           std::to_string(size) + " bytes, the header promises " + std::to_string(kTokenFileHeader) +
           " + " + std::to_string(t.width_) + " x " + std::to_string(total) + " = " + std::to_string(want));
    // Every id < N, read with pread in blocks (the mapping's pages stay untouched).
    const std::size_t w = t.width_;
    const std::size_t block = (std::size_t(1) << 20) / w * w;
    std::vector<unsigned char> buf(block);
    std::uint64_t done = 0;  // ids checked
    while (done < total) {
      const std::size_t want_bytes =
          static_cast<std::size_t>(std::min<std::uint64_t>(block, (total - done) * w));
      std::size_t got = 0;
      while (got < want_bytes) {
        const ::ssize_t r = ::pread(fd.fd, buf.data() + got, want_bytes - got,
                                    static_cast<::off_t>(kTokenFileHeader + done * w + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
          fail(std::string("error reading the token file (") +
               (r < 0 ? std::strerror(errno) : "it shrank while being read") + ")");
        got += static_cast<std::size_t>(r);
      }
      const std::size_t k = want_bytes / w;
      std::uint32_t max_id = 0;
      if (w == 2) {
        for (std::size_t i = 0; i < k; ++i)
          max_id = std::max<std::uint32_t>(max_id, buf[2 * i] | (std::uint32_t(buf[2 * i + 1]) << 8));
      } else {
        for (std::size_t i = 0; i < k; ++i)
          max_id = std::max<std::uint32_t>(
              max_id, std::uint32_t(buf[4 * i]) | (std::uint32_t(buf[4 * i + 1]) << 8) |
                          (std::uint32_t(buf[4 * i + 2]) << 16) | (std::uint32_t(buf[4 * i + 3]) << 24));
      }
      if (max_id >= static_cast<std::uint32_t>(t.n_))
        for (std::size_t i = 0; i < k; ++i) {
          const auto id = get(buf.data() + i * w, static_cast<int>(w));
          if (id >= static_cast<std::uint64_t>(t.n_))
            fail("corrupt token file: id " + std::to_string(id) + " at position " +
                 std::to_string(done + i) + " is not below the vocabulary size " + std::to_string(t.n_));
        }
      done += k;
    }
    return t;
  }

  int num_regular() const { return n_; }
  std::uint64_t tokenizer_hash() const { return hash_; }
  std::uint32_t width() const { return width_; }
  const std::string& path() const { return path_; }
  /// Ids in split s (0 train, 1 valid, 2 test).
  std::uint64_t count(int s) const { return count_[check_split(s)]; }

  /// Split s (0 train, 1 valid, 2 test) read in place: a TokenView of the mapped ids that
  /// keeps the mapping alive (no copy; see the file comment).
  TokenView view(int s) const {
    check_split(s);
    return TokenView::little_endian(map_, first_id(s), static_cast<std::size_t>(count_[s]),
                                    static_cast<int>(width_));
  }

  /// The ids of split s as ints: a full copy (tests and small files; training and evaluation
  /// use view()).
  std::vector<int> split(int s) const { return view(s).to_vector(); }

  /// Throws unless `tok` is the tokenizer the file was made with (`whose`: "the checkpoint's",
  /// "--tokenizer's").
  void require_tokenizer(const Tokenizer& tok, const std::string& whose) const {
    if (tok.hash() != hash_ || tok.num_regular() != n_)
      throw std::invalid_argument(path_ + " was tokenized with another tokenizer (N = " +
                                  std::to_string(n_) + ", hash " + token_file_detail::hex64(hash_) +
                                  ") than " + whose + " " + tok.describe());
  }

 private:
  TokenFile() = default;
  static int check_split(int s) {
    if (s < 0 || s > 2)
      throw std::invalid_argument("TokenFile: split " + std::to_string(s) + " (0 train, 1 valid, 2 test)");
    return s;
  }
  const unsigned char* first_id(int s) const {
    std::uint64_t first = 0;
    for (int k = 0; k < s; ++k) first += count_[k];
    return map_->data + kTokenFileHeader + first * width_;
  }
  std::string path_;
  std::shared_ptr<const token_file_detail::Mapping> map_;
  std::uint32_t width_ = 0;
  int n_ = 0;
  std::uint64_t hash_ = 0;
  std::uint64_t count_[3] = {0, 0, 0};
};

/// Encodes `text` in chunks of about `chunk` bytes, handing each chunk's ids to
/// sink(ids) and then calling progress(bytes done); the concatenated pieces equal
/// tok.encode(text). Byte-level kinds cut anywhere; GPT-2 BPE cuts at a
/// '\n' between two printable ASCII bytes or before a ' ' that follows a printable ASCII byte
/// and precedes an ASCII letter (its pre-tokeniser starts a new piece there, and no special
/// token of the vocabulary may contain white space for this, else it is encoded whole);
/// SentencePiece models are encoded whole (a model's dummy prefix or whitespace rules could
/// differ at a cut), so their progress jumps from 0 to the end.
inline void encode_in_chunks_to(const Tokenizer& tok, std::string_view text,
                                const std::function<void(const std::vector<int>&)>& sink,
                                const std::function<void(std::size_t)>& progress = {},
                                std::size_t chunk = std::size_t(1) << 20) {
  auto plain = [](char c) { return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f; };
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  bool cuttable = tok.kind() != Tokenizer::Kind::spm;
  if (const ByteLevelBpe* b = tok.bpe())
    for (int id : b->special_ids())
      for (char c : b->token_string(id))
        if (!plain(c)) cuttable = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.size();
    if (cuttable && text.size() - pos > chunk) {
      if (!tok.is_subword()) {
        end = pos + chunk;
      } else {
        for (std::size_t k = pos + chunk; k + 1 < text.size(); ++k)
          if (plain(text[k - 1]) && ((text[k] == '\n' && plain(text[k + 1])) ||
                                     (text[k] == ' ' && letter(text[k + 1])))) {
            end = text[k] == '\n' ? k + 1 : k;
            break;
          }
      }
    }
    sink(tok.encode(text.substr(pos, end - pos)));
    pos = end;
    if (progress) progress(pos);
  }
}

/// encode_in_chunks_to collecting the pieces: the result equals tok.encode(text).
inline std::vector<int> encode_in_chunks(const Tokenizer& tok, std::string_view text,
                                         const std::function<void(std::size_t)>& progress = {},
                                         std::size_t chunk = std::size_t(1) << 20) {
  std::vector<int> out;
  encode_in_chunks_to(
      tok, text, [&](const std::vector<int>& ids) { out.insert(out.end(), ids.begin(), ids.end()); },
      progress, chunk);
  return out;
}

}  // namespace data
}  // namespace discdiff
