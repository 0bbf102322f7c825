// discdiff/data/bpe.hpp: GPT-2 byte-level BPE from the standard vocab.json + merges.txt pair
// (GPT-2's and Hugging Face's format). Host only, no dependency beyond the standard library.
//
// Encoding (the GPT-2 / Hugging Face `ByteLevel` algorithm, add_prefix_space = false)
//   1. Special tokens are split out first, matched literally, leftmost then longest: a special
//      token is a vocabulary entry that plain BPE can never produce, i.e. neither one of the 256
//      byte symbols nor the result of a merge (GPT-2's "<|endoftext|>").
//   2. Each remaining piece is pre-tokenised by GPT-2's regex
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      implemented by hand (pretokenize()): at every position the first alternative that
//      matches wins, \p{L} / \p{N} are the Unicode general categories L* / N*, \s is the
//      White_Space property, all from data/unicode_tables.hpp (generated from Python's
//      unicodedata by scripts/gen_unicode_tables.py: Unicode 14.0; no ICU dependency).
//   3. The UTF-8 bytes of each pre-token become byte symbols (GPT-2's byte-to-unicode map:
//      printable Latin-1 bytes stand for themselves, the 68 others for U+0100..U+0143), and
//      adjacent pairs are merged lowest rank first (the rank is the line of merges.txt) until
//      no listed pair is left.
// Decoding concatenates the tokens' bytes (a special token gives its own UTF-8 text).
// decode(encode(s)) == s for every byte string s:
//   * valid UTF-8 is handled as above;
//   * invalid UTF-8: each byte that does not start a valid, shortest-form sequence (stray
//     continuation bytes, truncated sequences, overlong forms, surrogates, > U+10FFFF) is one
//     pseudo code point that is neither letter, number nor space, so it joins the
//     `?[^\s\p{L}\p{N}]+` run around it and is encoded through its byte symbol. Nothing is
//     replaced or dropped; Hugging Face `tokenizers` cannot take such input at all (Python str).
//
// Files (a directory holds vocab.json + merges.txt, Hugging Face's names, or encoder.json +
// vocab.bpe, the names of OpenAI's GPT-2 release: load_dir() takes either spelling)
//   vocab.json  a JSON object {"token": id, ...}; ids must be exactly 0..V-1 (each once); every
//               one of the 256 byte symbols must be present (else bytes could not round-trip).
//   merges.txt  one merge "A B" per line (single space), optional first line "#version: ...",
//               blank lines ignored; A, B and AB must be vocabulary entries.
// Errors: std::runtime_error naming the file and the line (and column for JSON), e.g.
// "merges.txt:17: merge 'Ġ t' gives 'Ġt', which is not in the vocabulary".
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "unicode_tables.hpp"

namespace discdiff {
namespace data {

namespace bpe_detail {

/// Appends the UTF-8 encoding of code point cp (< 0x110000, not a surrogate).
inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Decodes the code point at s[i]: returns its length in bytes (1..4) and sets cp; a byte that
/// does not start a valid shortest-form sequence gives length 1 and cp = kInvalid.
inline constexpr std::uint32_t kInvalid = 0xFFFFFFFFu;
inline std::size_t next_code_point(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  auto cont = [&](std::size_t k) -> int {
    if (i + k >= s.size()) return -1;
    const auto b = static_cast<unsigned char>(s[i + k]);
    return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
  };
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t len;
  std::uint32_t v, min;
  if ((b0 & 0xE0) == 0xC0) len = 2, v = b0 & 0x1F, min = 0x80;
  else if ((b0 & 0xF0) == 0xE0) len = 3, v = b0 & 0x0F, min = 0x800;
  else if ((b0 & 0xF8) == 0xF0) len = 4, v = b0 & 0x07, min = 0x10000;
  else {
    cp = kInvalid;
    return 1;
  }
  for (std::size_t k = 1; k < len; ++k) {
    const int c = cont(k);
    if (c < 0) {
      cp = kInvalid;
      return 1;
    }
    v = (v << 6) | static_cast<std::uint32_t>(c);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
    cp = kInvalid;
    return 1;
  }
  cp = v;
  return len;
}

/// GPT-2's byte-to-unicode map: byte b -> the code point that stands for it in vocab/merges.
inline const std::array<std::uint32_t, 256>& byte_to_code_point() {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[b] = self ? b : next++;
    }
    return t;
  }();
  return table;
}

inline std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": reading the file failed");
  return ss.str();
}

/// Parses a flat JSON object of string keys and non-negative integer values (vocab.json),
/// reporting errors as "<name>:<line>:<column>: ...".
inline std::vector<std::pair<std::string, std::int64_t>> parse_vocab_json(const std::string& text,
                                                                           const std::string& name) {
  std::size_t i = 0, line = 1, line_start = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(name + ":" + std::to_string(line) + ":" +
                             std::to_string(i - line_start + 1) + ": " + why);
  };
  auto skip_ws = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
      if (text[i] == '\n') ++line, line_start = i + 1;
      ++i;
    }
  };
  auto hex4 = [&]() -> std::uint32_t {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k, ++i) {
      if (i >= text.size()) fail("truncated \\u escape");
      const char c = text[i];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) fail("bad hex digit in \\u escape");
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    return v;
  };
  auto parse_string = [&]() -> std::string {
    if (i >= text.size() || text[i] != '"') fail("expected a string");
    ++i;
    std::string out;
    while (true) {
      if (i >= text.size()) fail("unterminated string");
      const char c = text[i];
      if (c == '"') {
        ++i;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out.push_back(c);
        ++i;
        continue;
      }
      ++i;
      if (i >= text.size()) fail("unterminated escape");
      const char e = text[i++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 1 >= text.size() || text[i] != '\\' || text[i + 1] != 'u')
              fail("unpaired surrogate in \\u escape");
            i += 2;
            const std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: --i; fail(std::string("unknown escape '\\") + e + "'");
      }
    }
  };
  std::vector<std::pair<std::string, std::int64_t>> out;
  skip_ws();
  if (i >= text.size() || text[i] != '{') fail("expected '{' (vocab.json is a JSON object)");
  ++i;
  skip_ws();
  if (i < text.size() && text[i] == '}') {
    ++i;
  } else {
    while (true) {
      skip_ws();
      std::string key = parse_string();
      skip_ws();
      if (i >= text.size() || text[i] != ':') fail("expected ':' after a key");
      ++i;
      skip_ws();
      if (i >= text.size() || text[i] < '0' || text[i] > '9')
        fail("the id of token " + key + " is not a non-negative integer");
      std::int64_t v = 0;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        v = v * 10 + (text[i] - '0');
        if (v > std::numeric_limits<std::int32_t>::max()) fail("id too large");
        ++i;
      }
      if (i < text.size() && (text[i] == '.' || text[i] == 'e' || text[i] == 'E'))
        fail("the id of token " + key + " is not an integer");
      out.emplace_back(std::move(key), v);
      skip_ws();
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < text.size() && text[i] == '}') {
        ++i;
        break;
      }
      fail("expected ',' or '}'");
    }
  }
  skip_ws();
  if (i != text.size()) fail("trailing characters after the object");
  return out;
}

}  // namespace bpe_detail

/// GPT-2 byte-level BPE (see the file comment).
class ByteLevelBpe {
 public:
  /// From the two files (errors name the file and line).
  static ByteLevelBpe load(const std::string& vocab_path, const std::string& merges_path) {
    const std::string vocab = bpe_detail::read_whole_file(vocab_path);
    const std::string merges = bpe_detail::read_whole_file(merges_path);
    return from_strings(vocab, merges, vocab_path, merges_path);
  }

  /// From a directory holding either Hugging Face's spelling of the pair (vocab.json +
  /// merges.txt, tried first) or OpenAI's original GPT-2 release names (encoder.json +
  /// vocab.bpe; same formats). A directory with neither pair is the error "DIR/vocab.json:
  /// cannot open the file (...)" naming both spellings; a directory with one file of a pair
  /// names the missing one. Mixing the spellings (vocab.json + vocab.bpe) is not accepted,
  /// since the two halves would come from different releases.
  static ByteLevelBpe load_dir(std::string dir) {
    if (dir.empty()) throw std::runtime_error("GPT-2 BPE: empty directory name");
    if (dir.back() != '/') dir += '/';
    auto exists = [](const std::string& path) { return std::ifstream(path).good(); };
    if (exists(dir + "vocab.json") || exists(dir + "merges.txt"))
      return load(dir + "vocab.json", dir + "merges.txt");
    if (exists(dir + "encoder.json") || exists(dir + "vocab.bpe"))
      return load(dir + "encoder.json", dir + "vocab.bpe");
    throw std::runtime_error(dir + "vocab.json: cannot open the file (a GPT-2 BPE directory holds " +
                             "vocab.json + merges.txt, or OpenAI's encoder.json + vocab.bpe)");
  }

  /// From the contents of vocab.json and merges.txt; the names are used in error messages.
  static ByteLevelBpe from_strings(const std::string& vocab_json, const std::string& merges_txt,
                                   const std::string& vocab_name = "vocab.json",
                                   const std::string& merges_name = "merges.txt") {
    ByteLevelBpe b;
    const auto entries = bpe_detail::parse_vocab_json(vocab_json, vocab_name);
    const std::size_t V = entries.size();
    if (V < 256)
      throw std::runtime_error(vocab_name + ": " + std::to_string(V) +
                               " entries; a byte-level vocabulary has at least the 256 byte symbols");
    b.tokens_.assign(V, std::string());
    std::vector<bool> seen(V, false);
    for (const auto& e : entries) {
      if (e.second < 0 || static_cast<std::size_t>(e.second) >= V)
        throw std::runtime_error(vocab_name + ": token " + quote(e.first) + " has id " +
                                 std::to_string(e.second) + ", outside [0, " + std::to_string(V) +
                                 ") (ids must be 0..V-1 for V = " + std::to_string(V) + " entries)");
      const auto id = static_cast<std::size_t>(e.second);
      if (seen[id])
        throw std::runtime_error(vocab_name + ": id " + std::to_string(id) + " is used twice (" +
                                 quote(b.tokens_[id]) + " and " + quote(e.first) + ")");
      if (e.first.find('\n') != std::string::npos)
        throw std::runtime_error(vocab_name + ": token " + quote(e.first) +
                                 " contains a newline, which no byte-level token can");
      if (!b.id_of_.emplace(e.first, static_cast<int>(id)).second)
        throw std::runtime_error(vocab_name + ": token " + quote(e.first) + " appears twice");
      seen[id] = true;
      b.tokens_[id] = e.first;
    }
    const auto& b2u = bpe_detail::byte_to_code_point();
    for (int byte = 0; byte < 256; ++byte) {
      std::string sym;
      bpe_detail::append_utf8(sym, b2u[static_cast<std::size_t>(byte)]);
      const auto it = b.id_of_.find(sym);
      if (it == b.id_of_.end())
        throw std::runtime_error(vocab_name + ": the byte symbol " + quote(sym) + " (byte 0x" +
                                 hex2(byte) + ") is missing; a byte-level BPE vocabulary needs all 256");
      b.byte_id_[static_cast<std::size_t>(byte)] = it->second;
    }
    // merges.txt
    std::vector<bool> produced(V, false);
    for (int id : b.byte_id_) produced[static_cast<std::size_t>(id)] = true;
    std::size_t pos = 0, line_no = 0;
    int rank = 0;
    while (pos < merges_txt.size()) {
      std::size_t end = merges_txt.find('\n', pos);
      if (end == std::string::npos) end = merges_txt.size();
      std::string line = merges_txt.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto fail = [&](const std::string& why) {
        throw std::runtime_error(merges_name + ":" + std::to_string(line_no) + ": " + why);
      };
      if (line_no == 1 && line.rfind("#version", 0) == 0) continue;
      if (line.empty()) continue;
      const std::size_t sp = line.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() ||
          line.find(' ', sp + 1) != std::string::npos)
        fail("expected two tokens separated by one space, got " + quote(line));
      const std::string a = line.substr(0, sp), c = line.substr(sp + 1);
      const auto ia = b.id_of_.find(a), ic = b.id_of_.find(c), im = b.id_of_.find(a + c);
      if (ia == b.id_of_.end()) fail("token " + quote(a) + " is not in the vocabulary");
      if (ic == b.id_of_.end()) fail("token " + quote(c) + " is not in the vocabulary");
      if (im == b.id_of_.end())
        fail("merge " + quote(line) + " gives " + quote(a + c) + ", which is not in the vocabulary");
      const std::uint64_t key = pair_key(ia->second, ic->second);
      if (b.merges_.count(key)) fail("merge " + quote(line) + " is listed twice");
      b.merges_.emplace(key, Merge{rank++, im->second});
      produced[static_cast<std::size_t>(im->second)] = true;
    }
    for (std::size_t id = 0; id < V; ++id) {
      if (produced[id]) continue;
      if (b.tokens_[id].empty())
        throw std::runtime_error(vocab_name + ": id " + std::to_string(id) +
                                 " is the empty string, which cannot be a special token");
      b.special_.push_back(static_cast<int>(id));
    }
    // Longest special tokens first, so that at one position the longest match wins.
    std::sort(b.special_.begin(), b.special_.end(), [&](int x, int y) {
      const auto& sx = b.tokens_[static_cast<std::size_t>(x)];
      const auto& sy = b.tokens_[static_cast<std::size_t>(y)];
      return sx.size() != sy.size() ? sx.size() > sy.size() : x < y;
    });
    b.build_token_bytes();
    return b;
  }

  /// V, the vocabulary size (ids 0..V-1).
  int size() const { return static_cast<int>(tokens_.size()); }
  int num_merges() const { return static_cast<int>(merges_.size()); }
  /// The ids of the special tokens (longest first).
  const std::vector<int>& special_ids() const { return special_; }
  /// The token's string as written in vocab.json (byte symbols for regular tokens).
  const std::string& token_string(int id) const { return tokens_.at(static_cast<std::size_t>(id)); }
  /// The bytes a token decodes to.
  const std::string& token_bytes(int id) const { return bytes_.at(static_cast<std::size_t>(id)); }
  /// The id of a vocabulary string, or -1.
  int id_of(const std::string& token) const {
    const auto it = id_of_.find(token);
    return it == id_of_.end() ? -1 : it->second;
  }

  /// GPT-2's pre-tokenisation of `text` (no special-token handling): consecutive pieces that
  /// cover the text exactly.
  static std::vector<std::string_view> pretokenize(std::string_view text) {
    using namespace unicode;
    std::vector<std::uint32_t> cps;
    std::vector<std::size_t> off;  // byte offset of each code point; off.back() == text.size()
    cps.reserve(text.size());
    off.reserve(text.size() + 1);
    for (std::size_t i = 0; i < text.size();) {
      std::uint32_t cp;
      const std::size_t n = bpe_detail::next_code_point(text, i, cp);
      cps.push_back(cp);
      off.push_back(i);
      i += n;
    }
    off.push_back(text.size());
    const std::size_t n = cps.size();
    auto valid = [](std::uint32_t cp) { return cp != bpe_detail::kInvalid; };
    auto L = [&](std::size_t k) { return k < n && valid(cps[k]) && is_letter(cps[k]); };
    auto N = [&](std::size_t k) { return k < n && valid(cps[k]) && is_number(cps[k]); };
    auto S = [&](std::size_t k) { return k < n && valid(cps[k]) && is_white_space(cps[k]); };
    auto O = [&](std::size_t k) { return k < n && !L(k) && !N(k) && !S(k); };
    std::vector<std::string_view> out;
    std::size_t k = 0;
    while (k < n) {
      std::size_t e = k;
      // 's|'t|'re|'ve|'m|'ll|'d
      if (cps[k] == '\'' && k + 1 < n) {
        const std::uint32_t c1 = cps[k + 1], c2 = k + 2 < n ? cps[k + 2] : 0;
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') e = k + 2;
        else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
          e = k + 3;
      }
      if (e == k) {
        const std::size_t s = cps[k] == ' ' ? k + 1 : k;  // the optional ' '
        if (L(s)) {
          e = s;
          while (L(e)) ++e;
        } else if (N(s)) {
          e = s;
          while (N(e)) ++e;
        } else if (O(s)) {
          e = s;
          while (O(e)) ++e;
        }
      }
      if (e == k) {
        // \s+(?!\S) then \s+: the whitespace run, less its last character when a
        // non-space follows and the run is longer than one.
        std::size_t r = k;
        while (S(r)) ++r;
        if (r < n && r - k >= 2) e = r - 1;
        else e = r;
      }
      out.push_back(text.substr(off[k], off[e] - off[k]));
      k = e;
    }
    return out;
  }

  /// The ids of `text` (any bytes; see the file comment).
  std::vector<int> encode(std::string_view text) const {
    std::vector<int> ids;
    ids.reserve(text.size() / 3 + 1);
    // next[k]: the next occurrence of special token k at or after `start` (npos: none left);
    // each is searched again only once passed, so the scan is linear in the text.
    std::vector<std::size_t> next(special_.size(), 0);
    for (std::size_t k = 0; k < special_.size(); ++k)
      next[k] = text.find(tokens_[static_cast<std::size_t>(special_[k])], 0);
    std::size_t start = 0;
    while (start <= text.size()) {
      // The next special token at or after `start` (leftmost, then longest: special_ is sorted
      // longest first and ties keep the first).
      std::size_t best = std::string_view::npos;
      int best_id = -1;
      for (std::size_t k = 0; k < special_.size(); ++k) {
        const std::string& s = tokens_[static_cast<std::size_t>(special_[k])];
        if (next[k] != std::string_view::npos && next[k] < start) next[k] = text.find(s, start);
        if (next[k] != std::string_view::npos && next[k] < best) best = next[k], best_id = special_[k];
      }
      const std::size_t stop = best == std::string_view::npos ? text.size() : best;
      for (std::string_view piece : pretokenize(text.substr(start, stop - start)))
        encode_word(piece, ids);
      if (best == std::string_view::npos) break;
      ids.push_back(best_id);
      start = best + tokens_[static_cast<std::size_t>(best_id)].size();
    }
    return ids;
  }

  /// The bytes of ids[0..n); an id outside [0, V) throws.
  std::string decode(const int* ids, std::size_t n) const {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
      if (ids[i] < 0 || ids[i] >= size())
        throw std::invalid_argument("ByteLevelBpe::decode: id " + std::to_string(ids[i]) +
                                    " at offset " + std::to_string(i) + " is outside [0, " +
                                    std::to_string(size()) + ")");
      out += bytes_[static_cast<std::size_t>(ids[i])];
    }
    return out;
  }
  std::string decode(const std::vector<int>& ids) const { return decode(ids.data(), ids.size()); }

  /// A canonical text form of the whole tokenizer: the V token strings in id order, one a line,
  /// an empty line, then the merges by rank, one a line ("A B"). from_canonical() inverts it.
  std::string canonical() const {
    std::string s;
    for (const auto& t : tokens_) s += t + "\n";
    s += "\n";
    std::vector<std::pair<int, std::uint64_t>> by_rank;
    for (const auto& kv : merges_) by_rank.emplace_back(kv.second.rank, kv.first);
    std::sort(by_rank.begin(), by_rank.end());
    for (const auto& r : by_rank)
      s += tokens_[r.second >> 32] + " " + tokens_[r.second & 0xffffffffu] + "\n";
    return s;
  }

  /// Inverse of canonical(); `name` is used in error messages.
  static ByteLevelBpe from_canonical(const std::string& s, const std::string& name) {
    const std::size_t sep = s.find("\n\n");
    if (sep == std::string::npos)
      throw std::runtime_error(name + ": malformed GPT-2 tokenizer description (no merges section)");
    std::string json = "{";
    std::size_t pos = 0;
    int id = 0;
    while (pos <= sep) {
      const std::size_t end = s.find('\n', pos);
      std::string tok = s.substr(pos, end - pos);
      std::string esc;
      for (char c : tok) {
        if (c == '"' || c == '\\') esc.push_back('\\');
        if (static_cast<unsigned char>(c) < 0x20) {
          static const char* hex = "0123456789abcdef";
          esc += std::string("\\u00") + hex[(c >> 4) & 15] + hex[c & 15];
          continue;
        }
        esc.push_back(c);
      }
      json += (id ? ",\"" : "\"") + esc + "\":" + std::to_string(id);
      ++id;
      pos = end + 1;
    }
    json += "}";
    return from_strings(json, s.substr(sep + 2), name + " (vocabulary)", name + " (merges)");
  }

  friend bool operator==(const ByteLevelBpe& a, const ByteLevelBpe& b) {
    return a.tokens_ == b.tokens_ && a.canonical() == b.canonical();
  }

 private:
  struct Merge {
    int rank;
    int result;
  };
  static std::uint64_t pair_key(int a, int b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
           static_cast<std::uint32_t>(b);
  }
  static std::string quote(const std::string& s) {
    return "'" + (s.size() <= 60 ? s : s.substr(0, 60) + "...") + "'";
  }
  static std::string hex2(int b) {
    static const char* hex = "0123456789abcdef";
    return std::string(1, hex[(b >> 4) & 15]) + hex[b & 15];
  }

  void build_token_bytes() {
    std::unordered_map<std::uint32_t, int> u2b;
    const auto& b2u = bpe_detail::byte_to_code_point();
    for (int byte = 0; byte < 256; ++byte) u2b[b2u[static_cast<std::size_t>(byte)]] = byte;
    std::vector<bool> is_special(tokens_.size(), false);
    for (int id : special_) is_special[static_cast<std::size_t>(id)] = true;
    bytes_.assign(tokens_.size(), std::string());
    for (std::size_t id = 0; id < tokens_.size(); ++id) {
      const std::string& t = tokens_[id];
      if (is_special[id]) {
        bytes_[id] = t;
        continue;
      }
      // Produced by merges of byte symbols: every code point is a byte symbol.
      std::string out;
      for (std::size_t i = 0; i < t.size();) {
        std::uint32_t cp;
        i += bpe_detail::next_code_point(t, i, cp);
        out.push_back(static_cast<char>(u2b.at(cp)));
      }
      bytes_[id] = out;
    }
  }

  /// Merges by rank within one pre-token, appending the ids.
  void encode_word(std::string_view word, std::vector<int>& ids) const {
    if (word.empty()) return;
    auto cached = cache_->find(std::string(word));
    if (cached != cache_->end()) {
      ids.insert(ids.end(), cached->second.begin(), cached->second.end());
      return;
    }
    std::vector<int> sym(word.size());
    for (std::size_t i = 0; i < word.size(); ++i)
      sym[i] = byte_id_[static_cast<unsigned char>(word[i])];
    while (sym.size() > 1) {
      int best_rank = std::numeric_limits<int>::max(), best_result = -1;
      std::uint64_t best_key = 0;
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
        const auto it = merges_.find(pair_key(sym[i], sym[i + 1]));
        if (it != merges_.end() && it->second.rank < best_rank)
          best_rank = it->second.rank, best_result = it->second.result,
          best_key = pair_key(sym[i], sym[i + 1]);
      }
      if (best_result < 0) break;
      // Merge every occurrence of the pair, left to right.
      std::vector<int> next;
      next.reserve(sym.size());
      for (std::size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && pair_key(sym[i], sym[i + 1]) == best_key) {
          next.push_back(best_result);
          i += 2;
        } else {
          next.push_back(sym[i++]);
        }
      }
      sym.swap(next);
    }
    ids.insert(ids.end(), sym.begin(), sym.end());
    if (cache_->size() < 200000) cache_->emplace(std::string(word), std::move(sym));
  }

  std::vector<std::string> tokens_;  ///< vocab.json strings by id
  std::vector<std::string> bytes_;   ///< decoded bytes by id
  std::unordered_map<std::string, int> id_of_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::array<int, 256> byte_id_{};
  std::vector<int> special_;
  /// Pre-token -> ids (a pure function of the word, so sharing it between copies is safe
  /// except across threads: encode() is not thread-safe).
  std::shared_ptr<std::unordered_map<std::string, std::vector<int>>> cache_ =
      std::make_shared<std::unordered_map<std::string, std::vector<int>>>();
};

}  // namespace data
}  // namespace discdiff
