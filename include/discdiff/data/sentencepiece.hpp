// discdiff/data/sentencepiece.hpp: SentencePiece models (Debian's libsentencepiece-dev) for the
// tokenizer layer (data/tokenizer.hpp). Host only.
//
// The feature is compiled in when DISCDIFF_HAVE_SENTENCEPIECE=1 (the discdiff_sentencepiece
// CMake target, defined when CMake finds the library; link -lsentencepiece
// -lsentencepiece_train by hand otherwise). Without it every entry point throws
// std::runtime_error("... built without SentencePiece ..."), and has_sentencepiece() is false.
//
// SpmModel::train(texts, type, V) trains a model the way discdiff needs it for exact round trips:
//   model_type bpe|unigram, vocab_size V, normalization "identity" (no NFKC), byte_fallback (any
//   byte sequence encodes: unseen characters become <0xXX> byte pieces), no dummy prefix, extra
//   whitespace kept, unk id 0 and no BOS/EOS pieces (the diffusion models have their own MASK).
//   The sentences are the lines of the texts (SentencePiece learns within lines; newlines
//   themselves are byte pieces). decode(encode(s)) == s then holds for valid UTF-8 s that does
//   not contain U+2581 ('▁', SentencePiece's own space marker, which decodes to a space);
//   invalid UTF-8 bytes are replaced by U+FFFD by SentencePiece's normaliser.
// Models trained elsewhere load too (load(path)); their own normalisation rules then apply.
// Errors: std::runtime_error naming the file (or "the stored model") and SentencePiece's status.
#pragma once

#include <cstddef>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#if defined(DISCDIFF_HAVE_SENTENCEPIECE) && DISCDIFF_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#endif

namespace discdiff {
namespace data {

/// Whether this build has SentencePiece.
inline constexpr bool has_sentencepiece() {
#if defined(DISCDIFF_HAVE_SENTENCEPIECE) && DISCDIFF_HAVE_SENTENCEPIECE
  return true;
#else
  return false;
#endif
}

namespace spm_detail {
[[noreturn]] inline void no_spm(const std::string& what) {
  throw std::runtime_error(what + ": this discdiff was built without SentencePiece (install "
                                  "libsentencepiece-dev, scripts/install-deps.sh, and reconfigure)");
}
}  // namespace spm_detail

/// A loaded SentencePiece model (immutable; copies share it).
class SpmModel {
 public:
  /// From a .model file.
  static SpmModel load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open the SentencePiece model");
    std::ostringstream ss;
    ss << in.rdbuf();
    return from_serialized(ss.str(), path);
  }

  /// From the bytes of a .model file (a serialized ModelProto); `name` is used in errors.
  static SpmModel from_serialized(const std::string& bytes, const std::string& name) {
#if defined(DISCDIFF_HAVE_SENTENCEPIECE) && DISCDIFF_HAVE_SENTENCEPIECE
    SpmModel m;
    auto p = std::make_shared<sentencepiece::SentencePieceProcessor>();
    const auto st = p->LoadFromSerializedProto(bytes);
    if (!st.ok())
      throw std::runtime_error(name + ": not a valid SentencePiece model (" + st.ToString() + ")");
    if (p->GetPieceSize() < 2)
      throw std::runtime_error(name + ": the SentencePiece model has fewer than 2 pieces");
    m.proc_ = std::move(p);
    m.bytes_ = std::make_shared<const std::string>(bytes);
    return m;
#else
    (void)bytes;
    spm_detail::no_spm(name);
#endif
  }

  /// Trains a model (see the file comment) on the lines of `texts`; returns it.
  static SpmModel train(const std::vector<std::string>& texts, const std::string& type,
                        int vocab_size) {
    if (type != "bpe" && type != "unigram")
      throw std::invalid_argument("SentencePiece model type '" + type + "' (bpe or unigram)");
    if (vocab_size < 260)
      throw std::invalid_argument("SentencePiece vocab size " + std::to_string(vocab_size) +
                                  " is too small: it holds unk and the 256 byte pieces (use >= 260)");
#if defined(DISCDIFF_HAVE_SENTENCEPIECE) && DISCDIFF_HAVE_SENTENCEPIECE
    struct Lines : sentencepiece::SentenceIterator {
      const std::vector<std::string>& t;
      std::size_t doc = 0, pos = 0;
      std::string cur;
      bool end = false;
      explicit Lines(const std::vector<std::string>& x) : t(x) { Next(); }
      bool done() const override { return end; }
      void Next() override {
        while (doc < t.size()) {
          const std::string& s = t[doc];
          if (pos >= s.size()) {
            ++doc, pos = 0;
            continue;
          }
          std::size_t e = s.find('\n', pos);
          if (e == std::string::npos) e = s.size();
          cur = s.substr(pos, e - pos);
          pos = e + 1;
          if (!cur.empty()) return;
        }
        end = true;
      }
      const std::string& value() const override { return cur; }
      sentencepiece::util::Status status() const override { return {}; }
    } lines(texts);
    const std::string args = "--minloglevel=2 --model_type=" + type + " --vocab_size=" + std::to_string(vocab_size) +
                             " --normalization_rule_name=identity --byte_fallback=true"
                             " --add_dummy_prefix=false --remove_extra_whitespaces=false"
                             " --allow_whitespace_only_pieces=true --split_digits=false"
                             " --unk_id=0 --bos_id=-1 --eos_id=-1 --pad_id=-1"
                             " --character_coverage=0.9995 --num_threads=2";
    std::string proto;
    const auto st = sentencepiece::SentencePieceTrainer::Train(args, &lines, &proto);
    if (!st.ok()) throw std::runtime_error("SentencePiece training failed: " + st.ToString());
    return from_serialized(proto, "the trained model");
#else
    (void)texts;
    spm_detail::no_spm("SentencePiece training");
#endif
  }

  int size() const {
#if defined(DISCDIFF_HAVE_SENTENCEPIECE) && DISCDIFF_HAVE_SENTENCEPIECE
    return proc_->GetPieceSize();
#else
    return 0;
#endif
  }

  std::vector<int> encode(std::string_view text) const {
#if defined(DISCDIFF_HAVE_SENTENCEPIECE) && DISCDIFF_HAVE_SENTENCEPIECE
    std::vector<int> ids;
    const auto st = proc_->Encode(text, &ids);
    if (!st.ok()) throw std::runtime_error("SentencePiece encode failed: " + st.ToString());
    return ids;
#else
    (void)text;
    spm_detail::no_spm("SentencePiece encode");
#endif
  }

  /// The text of ids[0..n) (each in [0, size())).
  std::string decode(const int* ids, std::size_t n) const {
#if defined(DISCDIFF_HAVE_SENTENCEPIECE) && DISCDIFF_HAVE_SENTENCEPIECE
    std::vector<int> v(ids, ids + n);
    for (std::size_t i = 0; i < n; ++i)
      if (v[i] < 0 || v[i] >= size())
        throw std::invalid_argument("SpmModel::decode: id " + std::to_string(v[i]) + " at offset " +
                                    std::to_string(i) + " is outside [0, " + std::to_string(size()) + ")");
    std::string out;
    const auto st = proc_->Decode(v, &out);
    if (!st.ok()) throw std::runtime_error("SentencePiece decode failed: " + st.ToString());
    return out;
#else
    (void)ids, (void)n;
    spm_detail::no_spm("SentencePiece decode");
#endif
  }

  /// The .model bytes (what save() writes and checkpoints store).
  const std::string& serialized() const { return *bytes_; }

  void save(const std::string& path) const {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes_->data(), static_cast<std::streamsize>(bytes_->size()));
    if (!out) throw std::runtime_error(path + ": cannot write the SentencePiece model");
  }

 private:
#if defined(DISCDIFF_HAVE_SENTENCEPIECE) && DISCDIFF_HAVE_SENTENCEPIECE
  std::shared_ptr<sentencepiece::SentencePieceProcessor> proc_;
#endif
  std::shared_ptr<const std::string> bytes_ = std::make_shared<const std::string>();
};

}  // namespace data
}  // namespace discdiff
