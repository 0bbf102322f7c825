// apps/corpus_loader.hpp: the token streams of a run: the built-in synthetic Markov source
// (--data synthetic) or a text file split as data/SOURCES.md says (data/corpus.hpp).
//
// Synthetic: data::MarkovSource over the 27 text8 symbols (so samples print as letters); the
// training stream has --synthetic-tokens symbols (stream 0), validation and test 400,000 each
// (streams 1 and 2), all from --markov-seed. Its exact per-token entropy of an L-window,
// block_entropy(L) / L, is the best any model can do on these windows, and the entropy rate is
// the limit as L grows; both are printed and logged.
// Text: data::read_text (xz through liblzma), standard_splits by file name, then the tokenizer:
// the stored one (from a checkpoint: every character must be in its vocabulary), else
// --tokenizer (auto: text8 when the text is only a-z and space, else the file's characters;
// gpt2:DIR and spm:FILE: subword tokenizers, data/tokenizer.hpp).
// Token file (`discdiff tokenize`, data/token_file.hpp, recognised by its magic): the splits
// are views of the memory-mapped file (data::TokenView, borrowed: the uint16/uint32 ids are read
// in place and converted to int only for the crops and evaluation windows, so a file larger
// than the memory trains); its tokenizer hash must match the checkpoint's tokenizer, or for a
// new run the --tokenizer it was made with. Synthetic and text corpora own their ids.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <discdiff/data/data.hpp>
#include <discdiff/data/token_file.hpp>

#include "run_config.hpp"

namespace discdiff {
namespace app {

struct Corpus {
  data::Tokenizer tokenizer = data::Tokenizer::text8();
  data::TokenView train, valid, test;  ///< owned (text, synthetic) or mapped (token file)
  std::string description;
  std::optional<data::MarkovSource> source;  ///< the synthetic source, if used

  /// Exact entropy of the source per token of an L-window, in bits (NaN for text).
  double window_entropy_bits(int L) const {
    return source ? source->block_entropy(L) / double(L) / std::log(2.0) : std::nan("");
  }
  double entropy_rate_bits() const {
    return source ? source->entropy_rate() / std::log(2.0) : std::nan("");
  }
  const data::TokenView& split(const std::string& name) const {
    if (name == "train") return train;
    if (name == "valid" || name == "val" || name == "validation") return valid;
    if (name == "test") return test;
    throw std::invalid_argument("unknown split '" + name + "' (train, valid, test)");
  }
};

inline data::MarkovSource::Options markov_options(const RunConfig& c) {
  data::MarkovSource::Options o;
  o.order = c.markov_order;
  o.alphabet = 27;
  o.branching = c.markov_branching;
  o.concentration = c.markov_concentration;
  o.smoothing = c.markov_smoothing;
  o.seed = c.markov_seed;
  return o;
}

/// Loads the corpus of `cfg.data`. `fixed`: the vocabulary of a checkpoint (text must fit it).
/// `only_split` ("train", "valid" or "test"; empty: all): with a fixed vocabulary, only that
/// split of a text file is encoded (and must fit), the others stay empty (eval).
inline Corpus load_corpus(const RunConfig& cfg, const data::Tokenizer* fixed = nullptr,
                          const std::string& data_override = "", const std::string& only_split = "") {
  const std::string path = data_override.empty() ? cfg.data : data_override;
  Corpus c;
  if (path == "synthetic") {
    c.source.emplace(markov_options(cfg));
    c.tokenizer = data::Tokenizer::text8();
    if (fixed && *fixed != c.tokenizer)
      throw std::invalid_argument("the synthetic source has the text8 vocabulary, but the "
                                  "checkpoint's tokenizer is " + fixed->describe());
    c.train = data::TokenView(
        c.source->generate(static_cast<std::size_t>(cfg.synthetic_tokens), cfg.markov_seed, 0));
    c.valid = data::TokenView(c.source->generate(400000, cfg.markov_seed, 1));
    c.test = data::TokenView(c.source->generate(400000, cfg.markov_seed, 2));
    c.description = "synthetic: " + c.source->describe();
    return c;
  }
  if (data::is_token_file(path)) {
    const data::TokenFile tf = data::TokenFile::open(path);
    if (fixed) {
      tf.require_tokenizer(*fixed, "the checkpoint's tokenizer");
      c.tokenizer = *fixed;
    } else {
      if (cfg.tokenizer == "auto" || cfg.tokenizer == "chars")
        throw std::invalid_argument(
            "'" + path + "' is a token file: pass the --tokenizer it was made with (text8, bytes, "
            "gpt2:DIR or spm:FILE; `discdiff tokenize` printed it)");
      c.tokenizer = data::Tokenizer::from_spec(cfg.tokenizer);
      tf.require_tokenizer(c.tokenizer, "--tokenizer");
    }
    c.train = tf.view(0);  // in place: the views keep the mapping alive
    c.valid = tf.view(1);
    c.test = tf.view(2);
    c.description = path + " (token file: " + std::to_string(c.train.size()) + "/" +
                    std::to_string(c.valid.size()) + "/" + std::to_string(c.test.size()) +
                    " train/valid/test tokens; tokenizer " + c.tokenizer.describe() + ")";
    return c;
  }
  const std::string text = data::read_text(path);
  if (text.empty()) throw std::invalid_argument("the data file '" + path + "' is empty");
  const data::Splits sp = data::standard_splits(path, text.size());
  if (fixed) {
    c.tokenizer = *fixed;
  } else {
    std::string kind = cfg.tokenizer;
    if (kind == "auto") {
      bool t8 = true;
      for (unsigned char ch : text)
        if (!((ch >= 'a' && ch <= 'z') || ch == ' ')) {
          t8 = false;
          break;
        }
      kind = t8 ? "text8" : "chars";
    }
    c.tokenizer = kind == "chars" ? data::Tokenizer::chars(text) : data::Tokenizer::from_spec(kind);
  }
  auto enc = [&](const data::Range& r, const char* name) {
    try {
      return data::TokenView(c.tokenizer.encode(std::string_view(text).substr(r.begin, r.size())));
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("the ") + name + " split of '" + path +
                                  "' does not fit the vocabulary (" + c.tokenizer.describe() +
                                  "): " + e.what());
    }
  };
  const std::string only = only_split == "val" || only_split == "validation" ? "valid" : only_split;
  if (!only.empty() && only != "train" && only != "valid" && only != "test")
    throw std::invalid_argument("unknown split '" + only_split + "' (train, valid, test)");
  if (only.empty() || only == "train") c.train = enc(sp.train, "train");
  if (only.empty() || only == "valid") c.valid = enc(sp.valid, "valid");
  if (only.empty() || only == "test") c.test = enc(sp.test, "test");
  c.description = path + " (" + std::to_string(text.size()) + " bytes; " + sp.rule + "; tokenizer " +
                  (c.tokenizer.is_subword() ? c.tokenizer.describe()
                                            : c.tokenizer.kind_name() + ", " +
                                                  std::to_string(c.tokenizer.num_regular()) + " symbols") +
                  ")";
  return c;
}

/// What identifies a data file's content: its size and the 64-bit FNV-1a digest of its bytes
/// (as stored on disk, before any decompression), stored in checkpoints as data.bytes and
/// data.fnv1a64 so that a resumed run can tell that its data changed.
struct DataFingerprint {
  std::uintmax_t bytes = 0;
  std::string fnv1a64;
};

inline DataFingerprint data_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("cannot read the data file '" + path + "'");
  std::uint64_t h = 0xcbf29ce484222325ull;
  DataFingerprint fp;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i)
      h = (h ^ static_cast<unsigned char>(buf[static_cast<std::size_t>(i)])) * 0x100000001b3ull;
    fp.bytes += static_cast<std::uintmax_t>(n);
  }
  if (in.bad()) throw std::runtime_error("reading the data file '" + path + "' failed");
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  fp.fnv1a64 = hex;
  return fp;
}

/// The first `count` non-overlapping L-chunks of `tokens` (fewer if the split is shorter;
/// throws if there is not even one), as ints: only these count x L ids are read.
inline std::vector<int> eval_sequences(const data::TokenView& tokens, int L, std::int64_t& count,
                                       const char* split_name) {
  const std::int64_t have = static_cast<std::int64_t>(data::num_eval_chunks(tokens.size(), L));
  if (have < 1)
    throw std::invalid_argument(std::string("the ") + split_name + " split has " +
                                std::to_string(tokens.size()) + " tokens, fewer than L = " +
                                std::to_string(L));
  if (count > have) count = have;
  std::vector<int> out(static_cast<std::size_t>(count * L));
  data::eval_chunks(tokens, L, 0, static_cast<std::size_t>(count), out.data());
  return out;
}

}  // namespace app
}  // namespace discdiff
