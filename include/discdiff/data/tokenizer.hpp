// discdiff/data/tokenizer.hpp: byte-level tokenizers for character language
// modelling (text8, raw bytes, the distinct characters of a corpus). Host only.
//
// Conventions
//   * A tokenizer maps each byte of a text to one regular token id in [0, N);
//     id N (mask_id()) is the absorbing MASK / BOS token of the diffusion
//     models, never produced by encode() and shown as `mask_char` by decode().
//   * Kinds:   text8  'a'..'z' -> 0..25, ' ' -> 26 (N = 27)
//              bytes  id = byte value (N = 256)
//              chars  the sorted distinct bytes of a text, in unsigned byte
//                     order (N = their count, at least 2)
//   * symbols() lists the N symbols in id order; serialize() gives a printable
//     ASCII description ("text8", "bytes", "chars:<lower-case hex of symbols>")
//     and deserialize() is its exact inverse (hex digits of either case are
//     accepted). Two tokenizers are equal iff they have the same kind and the
//     same symbols.
//   * normalize_text8() maps arbitrary text into the text8 alphabet: ASCII
//     letters are lower-cased, every other byte becomes a space, and runs of
//     spaces collapse to one (leading/trailing single spaces are kept).
//
// Errors: std::invalid_argument naming the offending byte, id or string and
// its offset, e.g. "Tokenizer::encode: character 'X' (byte 0x58) at offset 123
// is not in the vocabulary (text8: a-z and space)".
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace discdiff {
namespace data {

namespace detail {

/// "'X' (byte 0x58)" for printable ASCII, "'\n' (byte 0x0a)" etc. otherwise.
inline std::string describe_byte(unsigned char b) {
  static const char* hex = "0123456789abcdef";
  std::string shown;
  switch (b) {
    case '\n': shown = "\\n"; break;
    case '\r': shown = "\\r"; break;
    case '\t': shown = "\\t"; break;
    case '\0': shown = "\\0"; break;
    case '\'': shown = "\\'"; break;
    case '\\': shown = "\\\\"; break;
    default:
      if (b >= 0x20 && b < 0x7f) {
        shown = std::string(1, static_cast<char>(b));
      } else {
        shown = std::string("\\x") + hex[b >> 4] + hex[b & 15];
      }
  }
  return "'" + shown + "' (byte 0x" + hex[b >> 4] + hex[b & 15] + ")";
}

/// A string shown in an error message: quoted, cut after 60 bytes.
inline std::string quote_for_error(const std::string& s) {
  if (s.size() <= 60) return "\"" + s + "\"";
  return "\"" + s.substr(0, 60) + "...\" (" + std::to_string(s.size()) + " bytes)";
}

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace detail

class Tokenizer {
 public:
  enum class Kind { text8, bytes, chars };

  /// 'a'..'z' -> 0..25, ' ' -> 26; N = 27.
  static Tokenizer text8() {
    std::string s;
    for (char c = 'a'; c <= 'z'; ++c) s.push_back(c);
    s.push_back(' ');
    return Tokenizer(Kind::text8, s);
  }

  /// id = byte value; N = 256.
  static Tokenizer bytes() {
    std::string s(256, '\0');
    for (int i = 0; i < 256; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(i);
    return Tokenizer(Kind::bytes, s);
  }

  /// The sorted distinct bytes of `text`; throws std::invalid_argument when the
  /// text has fewer than 2 distinct bytes (empty text included).
  static Tokenizer chars(std::string_view text) {
    std::array<bool, 256> seen{};
    for (char c : text) seen[static_cast<unsigned char>(c)] = true;
    std::string s;
    for (int i = 0; i < 256; ++i)
      if (seen[static_cast<std::size_t>(i)]) s.push_back(static_cast<char>(i));
    if (s.size() < 2)
      throw std::invalid_argument(
          "Tokenizer::chars: the text (" + std::to_string(text.size()) + " bytes) has " +
          std::to_string(s.size()) +
          " distinct bytes; a vocabulary needs at least 2 regular tokens");
    return Tokenizer(Kind::chars, s);
  }

  Kind kind() const { return kind_; }

  /// "text8" | "bytes" | "chars".
  std::string kind_name() const {
    switch (kind_) {
      case Kind::text8: return "text8";
      case Kind::bytes: return "bytes";
      case Kind::chars: return "chars";
    }
    return "chars";
  }

  /// N, the number of regular tokens.
  int num_regular() const { return static_cast<int>(symbols_.size()); }

  /// N: the absorbing MASK / BOS id.
  int mask_id() const { return num_regular(); }

  /// One id in [0, N) per byte; throws on a byte outside the vocabulary.
  std::vector<int> encode(std::string_view text) const {
    std::vector<int> ids(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
      const int id = id_of_[static_cast<unsigned char>(text[i])];
      if (id < 0)
        throw std::invalid_argument("Tokenizer::encode: character " +
                                    detail::describe_byte(static_cast<unsigned char>(text[i])) +
                                    " at offset " + std::to_string(i) +
                                    " is not in the vocabulary (" + vocabulary_summary() + ")");
      ids[i] = id;
    }
    return ids;
  }

  /// The bytes of ids[0..n); MASK (id N) is shown as mask_char; any other id
  /// outside [0, N) throws.
  std::string decode(const int* ids, std::size_t n, char mask_char = '_') const {
    if (n > 0 && ids == nullptr)
      throw std::invalid_argument("Tokenizer::decode: ids is null but n = " + std::to_string(n));
    std::string out(n, '\0');
    const int N = num_regular();
    for (std::size_t i = 0; i < n; ++i) {
      const int id = ids[i];
      if (id == N) {
        out[i] = mask_char;
      } else if (id >= 0 && id < N) {
        out[i] = symbols_[static_cast<std::size_t>(id)];
      } else {
        throw std::invalid_argument("Tokenizer::decode: id " + std::to_string(id) +
                                    " at offset " + std::to_string(i) +
                                    " is outside [0, " + std::to_string(N) + "] (" +
                                    kind_name() + " tokenizer, N = " + std::to_string(N) +
                                    ", MASK = " + std::to_string(N) + ")");
      }
    }
    return out;
  }

  std::string decode(const std::vector<int>& ids, char mask_char = '_') const {
    return decode(ids.data(), ids.size(), mask_char);
  }

  /// The N symbols in id order.
  std::string symbols() const { return symbols_; }

  /// "text8", "bytes" or "chars:<lower-case hex of symbols>".
  std::string serialize() const {
    if (kind_ != Kind::chars) return kind_name();
    static const char* hex = "0123456789abcdef";
    std::string s = "chars:";
    for (char c : symbols_) {
      const auto b = static_cast<unsigned char>(c);
      s.push_back(hex[b >> 4]);
      s.push_back(hex[b & 15]);
    }
    return s;
  }

  /// Inverse of serialize(); malformed input throws std::invalid_argument.
  static Tokenizer deserialize(const std::string& s) {
    if (s == "text8") return text8();
    if (s == "bytes") return bytes();
    const std::string prefix = "chars:";
    auto fail = [&](const std::string& why) -> Tokenizer {
      throw std::invalid_argument("Tokenizer::deserialize: malformed tokenizer description " +
                                  detail::quote_for_error(s) + ": " + why +
                                  " (expected \"text8\", \"bytes\" or \"chars:<hex bytes>\")");
    };
    if (s.compare(0, prefix.size(), prefix) != 0) return fail("unknown kind");
    const std::size_t nhex = s.size() - prefix.size();
    if (nhex % 2 != 0) return fail("odd number of hex digits");
    std::string sym;
    for (std::size_t i = prefix.size(); i < s.size(); i += 2) {
      const int hi = detail::hex_digit(s[i]), lo = detail::hex_digit(s[i + 1]);
      if (hi < 0 || lo < 0)
        return fail("non-hex digit at offset " + std::to_string(hi < 0 ? i : i + 1));
      const auto b = static_cast<unsigned char>(hi * 16 + lo);
      if (!sym.empty() && static_cast<unsigned char>(sym.back()) >= b)
        return fail("symbols must be distinct bytes in increasing order");
      sym.push_back(static_cast<char>(b));
    }
    if (sym.size() < 2) return fail("fewer than 2 symbols");
    return Tokenizer(Kind::chars, sym);
  }

  friend bool operator==(const Tokenizer& a, const Tokenizer& b) {
    return a.kind_ == b.kind_ && a.symbols_ == b.symbols_;
  }
  friend bool operator!=(const Tokenizer& a, const Tokenizer& b) { return !(a == b); }

  /// ASCII letters lower-cased, every other byte -> space, runs of spaces
  /// collapsed to one.
  static std::string normalize_text8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
      char m = ' ';
      if (c >= 'a' && c <= 'z') m = c;
      else if (c >= 'A' && c <= 'Z') m = static_cast<char>(c - 'A' + 'a');
      if (m == ' ' && !out.empty() && out.back() == ' ') continue;
      out.push_back(m);
    }
    return out;
  }

 private:
  Tokenizer(Kind kind, std::string symbols) : kind_(kind), symbols_(std::move(symbols)) {
    id_of_.fill(-1);
    for (std::size_t i = 0; i < symbols_.size(); ++i)
      id_of_[static_cast<unsigned char>(symbols_[i])] = static_cast<int>(i);
  }

  std::string vocabulary_summary() const {
    switch (kind_) {
      case Kind::text8: return "text8: a-z and space";
      case Kind::bytes: return "bytes: all 256 bytes";
      case Kind::chars: break;
    }
    std::string shown;
    for (char c : symbols_) {
      const auto b = static_cast<unsigned char>(c);
      if (b >= 0x20 && b < 0x7f) shown.push_back(c);
    }
    return "chars: " + std::to_string(symbols_.size()) + " symbols, printable ones \"" + shown +
           "\"";
  }

  Kind kind_;
  std::string symbols_;
  std::array<int, 256> id_of_{};
};

}  // namespace data
}  // namespace discdiff
