// The real GPT-2 tokenizer files (tests/data/gpt2_real: OpenAI's encoder.json + vocab.bpe of
// the GPT-2 release, byte for byte; see the README there) through data/bpe.hpp:
//   * ByteLevelBpe::load_dir takes OpenAI's file names (encoder.json + vocab.bpe) as well as
//     Hugging Face's (vocab.json + merges.txt), and refuses a directory with neither;
//   * the vocabulary has GPT-2's shape: 50257 ids, 50000 merges, <|endoftext|> = 50256 the one
//     special token, id 256 + r made by merge r;
//   * encodings that are public facts: the assertions of OpenAI tiktoken's own tests for the
//     "gpt2" encoding (tests/test_encoding.py: test_simple, test_simple_repeated,
//     test_encode_empty, test_basic_encode) and tiktoken's round-trip strings;
//   * byte-exact round trips on slices of every shared corpus.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <discdiff/data/bpe.hpp>
#include <discdiff/data/data.hpp>
#include <discdiff/data/tokenizer.hpp>

#ifndef DISCDIFF_SHARED_DATA_DIR
#define DISCDIFF_SHARED_DATA_DIR "../shared/data"
#endif
#ifndef DISCDIFF_TEST_DATA_DIR
#define DISCDIFF_TEST_DATA_DIR "tests/data"
#endif

using namespace discdiff::data;

namespace {

const std::string kRealDir = std::string(DISCDIFF_TEST_DATA_DIR) + "/gpt2_real";

const ByteLevelBpe& gpt2() {
  static const ByteLevelBpe b = ByteLevelBpe::load_dir(kRealDir);
  return b;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("gpt2 real: OpenAI's files load under their own names, with GPT-2's shape") {
  const ByteLevelBpe& b = gpt2();
  CHECK(b.size() == 50257);
  CHECK(b.num_merges() == 50000);
  REQUIRE(b.special_ids().size() == 1);
  CHECK(b.special_ids()[0] == 50256);
  CHECK(b.token_string(50256) == "<|endoftext|>");
  // GPT-2's layout: id 256 + r is the token of merge r (spot checks at both ends).
  CHECK(b.token_string(256) == "\xC4\xA0t");  // "Ġt", merge 0 "Ġ t"
  CHECK(b.token_string(262) == "\xC4\xA0the");
  CHECK(b.token_string(50255) == "\xC4\xA0gazed");  // the last merge "Ġg azed"
  CHECK(b.id_of("!") == 0);
  // The tokenizer spec takes the directory too.
  const Tokenizer t = Tokenizer::from_spec("gpt2:" + kRealDir);
  CHECK(t.num_regular() == 50257);
}

TEST_CASE("gpt2 real: the encodings asserted by tiktoken's tests for the gpt2 encoding") {
  const ByteLevelBpe& b = gpt2();
  const std::vector<std::pair<std::string, std::vector<int>>> cases = {
      {"hello world", {31373, 995}},
      {"hello <|endoftext|>", {31373, 220, 50256}},
      {"", {}},
      {"0", {15}},
      {"00", {405}},
      {"000", {830}},
      {"0000", {2388}},
      {"00000", {20483}},
      {"000000", {10535}},
      {"0000000", {24598}},
      {"00000000", {8269}},
      {"000000000", {10535, 830}},
      {"0000000000", {8269, 405}},
      {"00000000000", {8269, 830}},
      {"000000000000", {8269, 2388}},
      {"0000000000000", {8269, 20483}},
      {"00000000000000", {8269, 10535}},
      {"000000000000000", {8269, 24598}},
      {"0000000000000000", {25645}},
      {"00000000000000000", {8269, 10535, 830}},
  };
  for (const auto& [text, ids] : cases) {
    INFO("text '" << text << "'");
    CHECK(b.encode(text) == ids);
    CHECK(b.decode(ids) == text);
  }
}

TEST_CASE("gpt2 real: tiktoken's round-trip strings and arbitrary bytes") {
  const ByteLevelBpe& b = gpt2();
  for (const std::string& s : std::vector<std::string>{
           "hello", "hello ", "hello  ", " hello", " hello ", " hello  ", "hello world",
        "\xE8\xAF\xB7\xE8\x80\x83\xE8\xAF\x95\xE6\x88\x91\xE7\x9A\x84\xE8\xBD\xAF\xE4\xBB\xB6\xEF\xBC\x81"
        "12345",  // "请考试我的软件！12345"
        " \x85" "0", std::string(10000, '^'), " " + std::string(10000, '0') + "\n"}) {
    INFO("text '" << s.substr(0, 40) << "'");
    CHECK(b.decode(b.encode(s)) == s);
  }
  // Every token that is one whole pre-token (one piece of GPT-2's regex) encodes back to
  // itself, and every token's bytes round-trip (tiktoken's test_single_token_roundtrip asks
  // the first of every id through its rank table; here through the BPE merges themselves).
  int one_piece = 0, mismatches = 0;
  for (int id = 0; id < 50256; ++id) {
    const std::string& bytes = b.token_bytes(id);
    const auto ids = b.encode(bytes);
    CHECK(b.decode(ids) == bytes);
    if (ByteLevelBpe::pretokenize(bytes).size() != 1) continue;
    ++one_piece;
    if (ids.size() != 1 || ids[0] != id) ++mismatches;
  }
  MESSAGE(one_piece << " of 50256 tokens are one pre-token; " << mismatches << " of those do not encode to themselves");
  CHECK(one_piece > 45000);
  CHECK(mismatches == 0);
}

TEST_CASE("gpt2 real: byte-exact round trip on a slice of every shared corpus") {
#if defined(DISCDIFF_HAVE_LZMA) && DISCDIFF_HAVE_LZMA
  const ByteLevelBpe& b = gpt2();
  for (const char* name : {"tinyshakespeare_input.txt.xz", "enwik8_prefix_4154400.xz",
                           "gutenberg_nltk_13texts.tar.xz", "text8_prefix_12549840.xz"}) {
    const std::string path = std::string(DISCDIFF_SHARED_DATA_DIR) + "/" + name;
    if (!std::ifstream(path).good()) FAIL("missing corpus file " << path);
    std::string text = read_text(path);
    if (!std::getenv("DISCDIFF_BPE_FULL")) text = text.substr(text.size() / 2, 200000);
    const auto ids = b.encode(text);
    INFO(name);
    CHECK(ids.size() * 2 < text.size());  // GPT-2's vocabulary compresses English > 2 bytes/token
    CHECK(b.decode(ids) == text);
  }
#else
  MESSAGE("built without liblzma: the .xz corpora are not read");
#endif
}

TEST_CASE("gpt2 real: directory spellings") {
  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() / ("dd_gpt2_dir_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "hf");
  fs::create_directories(tmp / "empty");
  // Hugging Face's names for the same files give the same tokenizer.
  fs::copy_file(kRealDir + "/encoder.json", tmp / "hf" / "vocab.json");
  fs::copy_file(kRealDir + "/vocab.bpe", tmp / "hf" / "merges.txt");
  const ByteLevelBpe hf = ByteLevelBpe::load_dir((tmp / "hf").string());
  CHECK(hf.canonical() == gpt2().canonical());
  // Neither pair: one clear error naming the directory and the expected names.
  const std::string err = error_of([&] { ByteLevelBpe::load_dir((tmp / "empty").string()); });
  CHECK(err.find("empty/vocab.json: cannot open the file") != std::string::npos);
  CHECK(err.find("encoder.json + vocab.bpe") != std::string::npos);
  // Half of HF's pair: the error names the missing file (the HF spelling is tried first).
  fs::remove(tmp / "hf" / "merges.txt");
  const std::string err2 = error_of([&] { ByteLevelBpe::load_dir((tmp / "hf").string()); });
  CHECK(err2.find("merges.txt: cannot open the file") != std::string::npos);
  fs::remove_all(tmp);
}
