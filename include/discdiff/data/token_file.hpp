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
// encode_in_chunks() encodes a long text in pieces cut where no token can span the cut, calling
// a progress callback after each; the result equals encoding the whole text at once
// (tests/test_token_file.cpp checks this on the corpora).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/// Writes a token file (see the file comment); the width is 2 bytes when N <= 65535.
inline void write_token_file(const std::string& path, const Tokenizer& tok,
                             const std::vector<int>& train, const std::vector<int>& valid,
                             const std::vector<int>& test) {
  using namespace token_file_detail;
  const int N = tok.num_regular();
  const std::uint32_t width = N <= 65535 ? 2 : 4;
  std::string head(kTokenFileMagic, 8);
  put_u32(head, kTokenFileVersion);
  put_u32(head, width);
  put_u32(head, static_cast<std::uint32_t>(N));
  put_u32(head, 0);
  put_u64(head, tok.hash());
  put_u64(head, train.size());
  put_u64(head, valid.size());
  put_u64(head, test.size());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error(path + ": cannot write the token file (" + std::strerror(errno) + ")");
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
  std::vector<unsigned char> buf;
  for (const auto* v : {&train, &valid, &test}) {
    buf.assign(v->size() * width, 0);
    for (std::size_t i = 0; i < v->size(); ++i) {
      const int id = (*v)[i];
      if (id < 0 || id >= N) {
        std::fclose(f);
        throw std::invalid_argument(path + ": id " + std::to_string(id) + " is outside [0, " +
                                    std::to_string(N) + ")");
      }
      for (std::uint32_t b = 0; b < width; ++b)
        buf[i * width + b] = static_cast<unsigned char>((static_cast<std::uint32_t>(id) >> (8 * b)) & 255);
    }
    ok = ok && std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw std::runtime_error(path + ": writing the token file failed");
}

/// A mapped, checked token file.
class TokenFile {
 public:
  static TokenFile open(const std::string& path) {
    using namespace token_file_detail;
    TokenFile t;
    t.path_ = path;
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error(path + ": cannot open the token file (" + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      throw std::runtime_error(path + ": cannot stat the token file");
    }
    t.size_ = static_cast<std::size_t>(st.st_size);
    if (t.size_ > 0) {
      void* p = ::mmap(nullptr, t.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        throw std::runtime_error(path + ": cannot map the token file (" + std::strerror(errno) + ")");
      }
      t.map_ = static_cast<const unsigned char*>(p);
    }
    ::close(fd);
    auto fail = [&](const std::string& why) { throw std::runtime_error(path + ": " + why); };
    if (t.size_ < 8 || std::memcmp(t.map_, kTokenFileMagic, 8) != 0)
      fail("not a discdiff token file (no DDTOKENS magic)");
    if (t.size_ < kTokenFileHeader)
      fail("truncated token file: " + std::to_string(t.size_) + " bytes, shorter than the " +
           std::to_string(kTokenFileHeader) + "-byte header");
    const unsigned char* h = t.map_;
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
    if (t.size_ != want)
      fail(std::string(t.size_ < want ? "truncated token file: " : "token file has trailing bytes: ") +
           std::to_string(t.size_) + " bytes, the header promises " + std::to_string(kTokenFileHeader) +
           " + " + std::to_string(t.width_) + " x " + std::to_string(total) + " = " + std::to_string(want));
    // Every id < N.
    for (std::uint64_t i = 0; i < total; ++i) {
      const auto id = get(h + kTokenFileHeader + i * t.width_, static_cast<int>(t.width_));
      if (id >= static_cast<std::uint64_t>(t.n_))
        fail("corrupt token file: id " + std::to_string(id) + " at position " + std::to_string(i) +
             " is not below the vocabulary size " + std::to_string(t.n_));
    }
    return t;
  }

  TokenFile(TokenFile&& o) noexcept { *this = std::move(o); }
  TokenFile& operator=(TokenFile&& o) noexcept {
    if (this != &o) {
      release();
      path_ = std::move(o.path_);
      map_ = o.map_, size_ = o.size_, width_ = o.width_, n_ = o.n_, hash_ = o.hash_;
      for (int s = 0; s < 3; ++s) count_[s] = o.count_[s];
      o.map_ = nullptr, o.size_ = 0;
    }
    return *this;
  }
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  ~TokenFile() { release(); }

  int num_regular() const { return n_; }
  std::uint64_t tokenizer_hash() const { return hash_; }
  std::uint32_t width() const { return width_; }
  /// Ids in split s (0 train, 1 valid, 2 test).
  std::uint64_t count(int s) const { return count_[s]; }

  /// The ids of split s as ints.
  std::vector<int> split(int s) const {
    std::uint64_t first = 0;
    for (int k = 0; k < s; ++k) first += count_[k];
    std::vector<int> out(static_cast<std::size_t>(count_[s]));
    const unsigned char* p = map_ + kTokenFileHeader + first * width_;
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<int>(token_file_detail::get(p + i * width_, static_cast<int>(width_)));
    return out;
  }

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
  void release() {
    if (map_) ::munmap(const_cast<unsigned char*>(map_), size_);
    map_ = nullptr;
  }
  std::string path_;
  const unsigned char* map_ = nullptr;
  std::size_t size_ = 0;
  std::uint32_t width_ = 0;
  int n_ = 0;
  std::uint64_t hash_ = 0;
  std::uint64_t count_[3] = {0, 0, 0};
};

/// Encodes `text` in chunks of about `chunk` bytes, calling progress(bytes done) after each;
/// the result equals tok.encode(text). Byte-level kinds cut anywhere; GPT-2 BPE cuts at a
/// '\n' between two printable ASCII bytes or before a ' ' that follows a printable ASCII byte
/// and precedes an ASCII letter (its pre-tokeniser starts a new piece there, and no special
/// token of the vocabulary may contain white space for this, else it is encoded whole);
/// SentencePiece models are encoded whole (a model's dummy prefix or whitespace rules could
/// differ at a cut), so their progress jumps from 0 to the end.
inline std::vector<int> encode_in_chunks(const Tokenizer& tok, std::string_view text,
                                         const std::function<void(std::size_t)>& progress = {},
                                         std::size_t chunk = std::size_t(1) << 20) {
  auto plain = [](char c) { return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f; };
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  bool cuttable = tok.kind() != Tokenizer::Kind::spm;
  if (const ByteLevelBpe* b = tok.bpe())
    for (int id : b->special_ids())
      for (char c : b->token_string(id))
        if (!plain(c)) cuttable = false;
  std::vector<int> out;
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
    const auto ids = tok.encode(text.substr(pos, end - pos));
    out.insert(out.end(), ids.begin(), ids.end());
    pos = end;
    if (progress) progress(pos);
  }
  return out;
}

}  // namespace data
}  // namespace discdiff
