// apps/tokenize.cpp: `discdiff tokenize` (a corpus -> a pre-tokenized token file,
// data/token_file.hpp) and `discdiff tokenizer train` (a SentencePiece model from corpora,
// data/sentencepiece.hpp).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <discdiff/data/data.hpp>
#include <discdiff/data/token_file.hpp>

#include "checkpoint.hpp"
#include "command.hpp"

namespace discdiff {
namespace app {
namespace {

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class ProgressBar {
 public:
  ProgressBar(std::string what, std::size_t total)
      : what_(std::move(what)), total_(total), tty_(::isatty(STDERR_FILENO) == 1),
        t0_(std::chrono::steady_clock::now()) {}
  void update(std::size_t done) {
    if (!tty_ || total_ == 0) return;
    const double f = double(done) / double(total_);
    const int w = 30, fill = static_cast<int>(f * w);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    std::fprintf(stderr, "\r%s [%s%s] %5.1f%%  %.1f / %.1f MB  %.1f MB/s ", what_.c_str(),
                 std::string(static_cast<std::size_t>(fill), '#').c_str(),
                 std::string(static_cast<std::size_t>(w - fill), '.').c_str(), 100 * f, done / 1e6,
                 total_ / 1e6, s > 0 ? done / 1e6 / s : 0.0);
    std::fflush(stderr);
  }
  void finish() {
    if (tty_ && total_ > 0) std::fprintf(stderr, "\n");
  }

 private:
  std::string what_;
  std::size_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point t0_;
};

struct TokenizeArgs {
  std::string corpus, out, tokenizer, checkpoint;
};

int run_tokenize(const TokenizeArgs& a) {
  if (a.tokenizer.empty() == a.checkpoint.empty())
    throw std::invalid_argument("give exactly one of --tokenizer and --checkpoint");
  if (data::is_token_file(a.corpus))
    throw std::invalid_argument("'" + a.corpus + "' is already a token file");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string text = data::read_text(a.corpus);
  if (text.empty()) throw std::invalid_argument("the data file '" + a.corpus + "' is empty");
  data::Tokenizer tok = data::Tokenizer::text8();
  if (!a.checkpoint.empty()) tok = load_checkpoint(a.checkpoint).tokenizer;
  else if (a.tokenizer == "chars") tok = data::Tokenizer::chars(text);
  else tok = data::Tokenizer::from_spec(a.tokenizer);
  const data::Splits sp = data::standard_splits(a.corpus, text.size());
  ProgressBar bar("tokenize", text.size());
  const data::Range* ranges[3] = {&sp.train, &sp.valid, &sp.test};
  const char* names[3] = {"train", "valid", "test"};
  // The ids go to the file chunk by chunk (data::TokenFileWriter): only the text and one
  // chunk's ids are in memory; a failure removes the partial file.
  data::TokenFileWriter out(a.out, tok);
  std::size_t base = 0;
  for (int s = 0; s < 3; ++s) {
    const data::Range& r = *ranges[s];
    try {
      data::encode_in_chunks_to(tok, std::string_view(text).substr(r.begin, r.size()),
                                [&](const std::vector<int>& ids) { out.append(s, ids); },
                                [&](std::size_t done) { bar.update(base + done); });
    } catch (const std::invalid_argument& e) {
      bar.finish();
      throw std::invalid_argument(std::string("the ") + names[s] + " split of '" + a.corpus +
                                  "' does not fit the tokenizer " + tok.describe() + ": " + e.what());
    } catch (...) {
      bar.finish();
      throw;
    }
    base += r.size();
  }
  bar.finish();
  out.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "wrote " << a.out << ": tokenizer " << tok.describe() << "; " << sp.rule << "\n";
  for (int s = 0; s < 3; ++s) {
    const std::uint64_t n = out.count(s);
    const double bpt = n == 0 ? 0.0 : double(ranges[s]->size()) / double(n);
    std::printf("  %-5s %10zu bytes -> %10llu tokens (%.3f bytes/token)\n", names[s], ranges[s]->size(),
                static_cast<unsigned long long>(n), bpt);
  }
  std::printf("  %.2f s; train and eval read it with --data %s (and, for a new run, --tokenizer %s)\n",
              secs, a.out.c_str(), a.checkpoint.empty() ? a.tokenizer.c_str() : "<the same>");
  return 0;
}

struct TrainTokArgs {
  std::string type = "bpe", out;
  int vocab_size = 8000;
  std::vector<std::string> corpora;
};

int run_tokenizer_train(const TrainTokArgs& a) {
  if (!data::has_sentencepiece())
    throw std::runtime_error("tokenizer train: this discdiff was built without SentencePiece "
                             "(install libsentencepiece-dev, scripts/install-deps.sh, and reconfigure)");
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> texts;
  std::size_t bytes = 0;
  for (const auto& c : a.corpora) {
    // Train on the training split only, so that the validation/test text stays unseen.
    const std::string t = data::read_text(c);
    const data::Splits sp = data::standard_splits(c, t.size());
    texts.push_back(t.substr(sp.train.begin, sp.train.size()));
    bytes += texts.back().size();
  }
  const data::SpmModel m = data::SpmModel::train(texts, a.type, a.vocab_size);
  m.save(a.out);
  const data::Tokenizer tok = data::Tokenizer::spm(m);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: SentencePiece %s, %d pieces, trained on %zu bytes (the train splits) in "
              "%.1f s; use it with --tokenizer spm:%s\n",
              a.out.c_str(), a.type.c_str(), tok.num_regular(), bytes, secs, a.out.c_str());
  return 0;
}

const RegisterCommand reg_tokenize{
    {"tokenize",
     "Pre-tokenize a corpus into a token file (train/eval read it with --data)",
     [](CLI::App& sub) -> Action {
       auto a = std::make_shared<TokenizeArgs>();
       sub.add_option("corpus", a->corpus, "text corpus (plain, .xz, .tar.xz)")->required()->check(CLI::ExistingFile);
       sub.add_option("-o,--out", a->out, "token file to write")->required();
       sub.add_option("--tokenizer", a->tokenizer,
                      "text8, bytes, chars, gpt2:DIR (DIR/vocab.json + merges.txt, or encoder.json + vocab.bpe) "
                      "or spm:FILE");
       sub.add_option("--checkpoint", a->checkpoint,
                      "use the tokenizer stored in this checkpoint instead of --tokenizer")
           ->check(CLI::ExistingFile);
       return [a] { return run_tokenize(*a); };
     }}};

const RegisterCommand reg_tokenizer{
    {"tokenizer", "Tokenizer tools: `tokenizer train` trains a SentencePiece model",
     [](CLI::App& sub) -> Action {
       sub.require_subcommand(1);
       CLI::App* tr = sub.add_subcommand(
           "train", "Train a SentencePiece model (bpe or unigram) on the train splits of corpora; "
                    "byte fallback and identity normalisation make decode(encode(text)) == text");
       auto a = std::make_shared<TrainTokArgs>();
       tr->add_option("corpora", a->corpora, "text corpora (plain, .xz, .tar.xz)")->required()->check(CLI::ExistingFile);
       tr->add_option("--type", a->type, "model type: bpe or unigram")
           ->check(CLI::IsMember({"bpe", "unigram"}))->capture_default_str();
       tr->add_option("--vocab-size", a->vocab_size, "number of pieces (>= 260: unk + 256 bytes + more)")
           ->check(CLI::Range(260, 1 << 20))->capture_default_str();
       tr->add_option("-o,--out", a->out, "the .model file to write")->required();
       return [a] { return run_tokenizer_train(*a); };
     }}};

}  // namespace
}  // namespace app
}  // namespace discdiff
