// discdiff/data/tokenizer.hpp: the tokenizers of the program: byte-level ones for character
// language modelling (text8, raw bytes, the distinct characters of a corpus) and subword ones
// (GPT-2 byte-level BPE, data/bpe.hpp; SentencePiece, data/sentencepiece.hpp). Host only.
//
// Conventions
//   * A tokenizer maps a text to regular token ids in [0, N); id N (mask_id()) is the absorbing
//     MASK / BOS token of the diffusion models, never produced by encode() and shown as
//     `mask_char` by decode().
//   * Kinds:   text8  'a'..'z' -> 0..25, ' ' -> 26 (N = 27); one id per byte
//              bytes  id = byte value (N = 256); one id per byte
//              chars  the sorted distinct bytes of a text, in unsigned byte
//                     order (N = their count, at least 2); one id per byte
//              gpt2   GPT-2 byte-level BPE (vocab.json + merges.txt; N = the vocabulary size)
//              spm    a SentencePiece model (N = its piece count)
//   * symbols() lists the N symbols in id order (byte-level kinds only); serialize() gives a
//     self-contained description ("text8", "bytes", "chars:<lower-case hex of symbols>",
//     "gpt2-bpe:<ByteLevelBpe::canonical()>", "spm-model:<base64 of the .model bytes>") and
//     deserialize() is its exact inverse (hex digits of either case are accepted): a checkpoint
//     stores it, so nothing else is needed to use the model. Two tokenizers are equal iff their
//     descriptions are; hash() is the 64-bit FNV-1a of the description (token files,
//     data/token_file.hpp); describe() is a one-line summary for messages.
//   * from_spec() reads the --tokenizer forms "text8", "bytes", "gpt2:DIR" (DIR/vocab.json and
//     DIR/merges.txt, or OpenAI's DIR/encoder.json and DIR/vocab.bpe) and "spm:FILE" (a .model file).
//   * normalize_text8() maps arbitrary text into the text8 alphabet: ASCII
//     letters are lower-cased, every other byte becomes a space, and runs of
//     spaces collapse to one (leading/trailing single spaces are kept).
//
// Errors: std::invalid_argument naming the offending byte, id or string and
// its offset, e.g. "Tokenizer::encode: character 'X' (byte 0x58) at offset 123
// is not in the vocabulary (text8: a-z and space)"; file errors name the file (and line).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bpe.hpp"
#include "sentencepiece.hpp"

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

inline std::string base64_encode(const std::string& in) {
  static const char* tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {tab[v >> 18], tab[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], '='};
  }
  return out;
}

/// Strict base64 (padding required); throws std::invalid_argument on anything else.
inline std::string base64_decode(const std::string& in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) throw std::invalid_argument("base64 length is not a multiple of 4");
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + static_cast<std::size_t>(k)];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0, ++pad;
      } else if (pad || (v[k] = val(c)) < 0) {
        throw std::invalid_argument("bad base64 character at offset " + std::to_string(i + static_cast<std::size_t>(k)));
      }
    }
    const unsigned x = (unsigned(v[0]) << 18) | (unsigned(v[1]) << 12) | (unsigned(v[2]) << 6) | unsigned(v[3]);
    out.push_back(static_cast<char>(x >> 16));
    if (pad < 2) out.push_back(static_cast<char>((x >> 8) & 255));
    if (pad < 1) out.push_back(static_cast<char>(x & 255));
  }
  return out;
}

inline std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
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
  enum class Kind { text8, bytes, chars, gpt2, spm };

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

  /// GPT-2 byte-level BPE.
  static Tokenizer gpt2(ByteLevelBpe bpe) {
    Tokenizer t(Kind::gpt2, std::string());
    auto p = std::make_shared<const ByteLevelBpe>(std::move(bpe));
    t.desc_ = std::make_shared<const std::string>("gpt2-bpe:" + p->canonical());
    t.bpe_ = std::move(p);
    return t;
  }

  /// A SentencePiece model.
  static Tokenizer spm(SpmModel model) {
    Tokenizer t(Kind::spm, std::string());
    auto p = std::make_shared<const SpmModel>(std::move(model));
    t.desc_ = std::make_shared<const std::string>("spm-model:" + detail::base64_encode(p->serialized()));
    t.spm_ = std::move(p);
    return t;
  }

  /// The --tokenizer forms that need no text: "text8", "bytes", "gpt2:DIR", "spm:FILE".
  static Tokenizer from_spec(const std::string& spec) {
    if (spec == "text8") return text8();
    if (spec == "bytes") return bytes();
    if (spec.rfind("gpt2:", 0) == 0) {
      const std::string dir = spec.substr(5);
      if (dir.empty()) throw std::invalid_argument("--tokenizer gpt2:DIR needs a directory");
      return gpt2(ByteLevelBpe::load_dir(dir));  // vocab.json + merges.txt or encoder.json + vocab.bpe
    }
    if (spec.rfind("spm:", 0) == 0) {
      if (spec.size() == 4) throw std::invalid_argument("--tokenizer spm:FILE needs a .model file");
      return spm(SpmModel::load(spec.substr(4)));
    }
    throw std::invalid_argument("unknown tokenizer '" + spec +
                                "' (text8, bytes, chars, gpt2:DIR or spm:FILE)");
  }

  Kind kind() const { return kind_; }

  /// "text8" | "bytes" | "chars" | "gpt2" | "spm".
  std::string kind_name() const {
    switch (kind_) {
      case Kind::text8: return "text8";
      case Kind::bytes: return "bytes";
      case Kind::chars: return "chars";
      case Kind::gpt2: return "gpt2";
      case Kind::spm: return "spm";
    }
    return "chars";
  }

  /// True for the subword kinds (gpt2, spm): a token is not one byte.
  bool is_subword() const { return kind_ == Kind::gpt2 || kind_ == Kind::spm; }

  /// N, the number of regular tokens.
  int num_regular() const {
    if (bpe_) return bpe_->size();
    if (spm_) return spm_->size();
    return static_cast<int>(symbols_.size());
  }

  /// 64-bit FNV-1a of serialize().
  std::uint64_t hash() const { return detail::fnv1a64(serialize()); }

  /// One line for messages: "gpt2 (N = 800, hash 0123456789abcdef)".
  std::string describe() const {
    char hex[17];
    const std::uint64_t h = hash();
    for (int i = 0; i < 16; ++i) hex[i] = "0123456789abcdef"[(h >> (60 - 4 * i)) & 15];
    hex[16] = 0;
    return kind_name() + " (N = " + std::to_string(num_regular()) + ", hash " + hex + ")";
  }

  /// N: the absorbing MASK / BOS id.
  int mask_id() const { return num_regular(); }

  /// One id in [0, N) per byte; throws on a byte outside the vocabulary.
  std::vector<int> encode(std::string_view text) const {
    if (bpe_) return bpe_->encode(text);
    if (spm_) return spm_->encode(text);
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
    const int N = num_regular();
    if (is_subword()) {
      // Runs of regular ids decode together; MASK shows as mask_char.
      std::string out;
      std::size_t i = 0;
      while (i < n) {
        if (ids[i] == N) {
          out.push_back(mask_char);
          ++i;
          continue;
        }
        std::size_t j = i;
        while (j < n && ids[j] != N) {
          if (ids[j] < 0 || ids[j] > N) break;
          ++j;
        }
        if (j < n && (ids[j] < 0 || ids[j] > N))
          throw std::invalid_argument("Tokenizer::decode: id " + std::to_string(ids[j]) +
                                      " at offset " + std::to_string(j) + " is outside [0, " +
                                      std::to_string(N) + "] (" + kind_name() + " tokenizer, N = " +
                                      std::to_string(N) + ", MASK = " + std::to_string(N) + ")");
        out += bpe_ ? bpe_->decode(ids + i, j - i) : spm_->decode(ids + i, j - i);
        i = j;
      }
      return out;
    }
    std::string out(n, '\0');
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

  /// The N symbols in id order (byte-level kinds; empty for the subword kinds).
  std::string symbols() const { return symbols_; }

  /// The GPT-2 BPE / SentencePiece model (null for other kinds).
  const ByteLevelBpe* bpe() const { return bpe_.get(); }
  const SpmModel* spm_model() const { return spm_.get(); }

  /// "text8", "bytes", "chars:<hex>", "gpt2-bpe:<canonical>" or "spm-model:<base64>".
  std::string serialize() const {
    if (desc_) return *desc_;
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
    if (s.rfind("gpt2-bpe:", 0) == 0)
      return gpt2(ByteLevelBpe::from_canonical(s.substr(9), "the stored GPT-2 tokenizer"));
    if (s.rfind("spm-model:", 0) == 0) {
      std::string bytes;
      try {
        bytes = detail::base64_decode(s.substr(10));
      } catch (const std::exception& e) {
        throw std::invalid_argument(std::string("Tokenizer::deserialize: the stored SentencePiece "
                                                "model is not valid base64: ") + e.what());
      }
      return spm(SpmModel::from_serialized(bytes, "the stored SentencePiece model"));
    }
    const std::string prefix = "chars:";
    auto fail = [&](const std::string& why) -> Tokenizer {
      throw std::invalid_argument("Tokenizer::deserialize: malformed tokenizer description " +
                                  detail::quote_for_error(s) + ": " + why +
                                  " (expected \"text8\", \"bytes\", \"chars:<hex bytes>\", \"gpt2-bpe:...\" or "
                                  "\"spm-model:...\")");
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
    if (a.kind_ != b.kind_) return false;
    if (a.desc_ || b.desc_) return a.serialize() == b.serialize();
    return a.symbols_ == b.symbols_;
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
      case Kind::gpt2:
      case Kind::spm: return describe();
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
  std::shared_ptr<const ByteLevelBpe> bpe_;
  std::shared_ptr<const SpmModel> spm_;
  std::shared_ptr<const std::string> desc_;  ///< serialize() of the subword kinds
};

}  // namespace data
}  // namespace discdiff
