// Subword tokenizers in data::Tokenizer (gpt2, spm), their stored descriptions, pre-tokenized
// token files (data/token_file.hpp) and SentencePiece training (data/sentencepiece.hpp; the
// SentencePiece cases skip themselves in a build without it).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include <discdiff/data/data.hpp>
#include <discdiff/data/token_file.hpp>

#ifndef DISCDIFF_SHARED_DATA_DIR
#define DISCDIFF_SHARED_DATA_DIR "../shared/data"
#endif
#ifndef DISCDIFF_TEST_DATA_DIR
#define DISCDIFF_TEST_DATA_DIR "tests/data"
#endif

using namespace discdiff::data;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct TempDir {
  std::filesystem::path dir;
  TempDir() {
    dir = std::filesystem::temp_directory_path() /
          ("dd_tokfile_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand()));
    std::filesystem::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string file(const std::string& n) const { return (dir / n).string(); }
};

Tokenizer gpt2_test() { return Tokenizer::from_spec(std::string("gpt2:") + DISCDIFF_TEST_DATA_DIR + "/gpt2_bpe"); }

std::string corpus_text(const char* name, std::size_t n) {
  const std::string p = std::string(DISCDIFF_SHARED_DATA_DIR) + "/" + name;
  const std::string t = read_text(p);
  return t.substr(0, n);
}

std::string read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& p, const std::string& b) {
  std::ofstream out(p, std::ios::binary);
  out << b;
}

}  // namespace

TEST_CASE("tokenizer: gpt2 kind encodes like ByteLevelBpe and survives serialize/deserialize") {
  const Tokenizer t = gpt2_test();
  CHECK(t.kind() == Tokenizer::Kind::gpt2);
  CHECK(t.num_regular() == 800);
  CHECK(t.mask_id() == 800);
  const std::string s = "First Citizen:\nBefore we proceed any further, hear me speak.<|endoftext|>";
  const auto ids = t.encode(s);
  CHECK(ids == t.bpe()->encode(s));
  CHECK(t.decode(ids) == s);
  // MASK shows as the mask character between decoded runs.
  std::vector<int> masked = ids;
  masked.insert(masked.begin() + 2, t.mask_id());
  const std::string d = t.decode(masked, '_');
  CHECK(d == t.decode(ids.data(), 2) + "_" + t.decode(ids.data() + 2, ids.size() - 2));
  CHECK(contains(error_of([&] { std::vector<int> bad{801}; t.decode(bad); }), "id 801 at offset 0"));
  const Tokenizer u = Tokenizer::deserialize(t.serialize());
  CHECK(u == t);
  CHECK(u.hash() == t.hash());
  CHECK(u.encode(s) == ids);
  CHECK(t != Tokenizer::bytes());
  CHECK(t.hash() != Tokenizer::bytes().hash());
  CHECK(contains(error_of([] { Tokenizer::from_spec("gpt2:/nonexistent-dir"); }),
                 "/nonexistent-dir/vocab.json: cannot open"));
  CHECK(contains(error_of([] { Tokenizer::from_spec("wordpiece"); }), "unknown tokenizer 'wordpiece'"));
}

TEST_CASE("token file: write / map / read round trip, uint16 and uint32 widths") {
  TempDir tmp;
  const Tokenizer t = gpt2_test();
  const std::vector<int> a = t.encode("hello world, again and again"), b = t.encode("valid"), c = t.encode("test!");
  write_token_file(tmp.file("a.tok"), t, a, b, c);
  CHECK(is_token_file(tmp.file("a.tok")));
  const std::string raw = read_bytes(tmp.file("a.tok"));
  CHECK(raw.size() == kTokenFileHeader + 2 * (a.size() + b.size() + c.size()));
  {
    const TokenFile f = TokenFile::open(tmp.file("a.tok"));
    CHECK(f.width() == 2u);
    CHECK(f.num_regular() == 800);
    CHECK(f.tokenizer_hash() == t.hash());
    CHECK(f.split(0) == a);
    CHECK(f.split(1) == b);
    CHECK(f.split(2) == c);
    f.require_tokenizer(t, "the checkpoint's");
    const std::string e = error_of([&] { f.require_tokenizer(Tokenizer::bytes(), "the checkpoint's"); });
    CHECK(contains(e, tmp.file("a.tok") + " was tokenized with another tokenizer (N = 800, hash "));
    CHECK(contains(e, "than the checkpoint's bytes (N = 256"));
  }
  // A vocabulary above 65535 ids is written with 4 bytes per id (a synthetic chars tokenizer
  // cannot be that large, so check the width rule with bytes vs a hand-made header instead).
  write_token_file(tmp.file("b.tok"), Tokenizer::bytes(), {0, 255, 7}, {1}, {2});
  CHECK(TokenFile::open(tmp.file("b.tok")).split(0) == std::vector<int>{0, 255, 7});
  std::string wide = raw.substr(0, kTokenFileHeader);
  wide[12] = 4;  // width 4
  wide[16] = static_cast<char>(0x51), wide[17] = static_cast<char>(0xC4), wide[18] = 0;  // N = 50257
  const std::size_t n = a.size() + b.size() + c.size();
  for (std::size_t i = 0; i < n; ++i) {
    const int id = i < a.size() ? a[i] : i < a.size() + b.size() ? b[i - a.size()] : c[i - a.size() - b.size()];
    for (int k = 0; k < 4; ++k) wide.push_back(static_cast<char>((id >> (8 * k)) & 255));
  }
  write_bytes(tmp.file("w.tok"), wide);
  const TokenFile w = TokenFile::open(tmp.file("w.tok"));
  CHECK(w.width() == 4u);
  CHECK(w.num_regular() == 50257);
  CHECK(w.split(0) == a);
}

TEST_CASE("token file: truncated, corrupt and foreign files give errors naming the file") {
  TempDir tmp;
  const Tokenizer t = Tokenizer::bytes();
  write_token_file(tmp.file("ok.tok"), t, {1, 2, 3, 4}, {5}, {6});
  const std::string raw = read_bytes(tmp.file("ok.tok"));
  auto err = [&](const std::string& name, const std::string& bytes) {
    write_bytes(tmp.file(name), bytes);
    return error_of([&] { TokenFile::open(tmp.file(name)); });
  };
  std::string e = err("trunc.tok", raw.substr(0, raw.size() - 1));
  CHECK(contains(e, tmp.file("trunc.tok") + ": truncated token file: 67 bytes, the header promises 56 + 2 x 6 = 68"));
  e = err("head.tok", raw.substr(0, 30));
  CHECK(contains(e, tmp.file("head.tok") + ": truncated token file: 30 bytes, shorter than the 56-byte header"));
  e = err("trail.tok", raw + "x");
  CHECK(contains(e, "trailing bytes"));
  e = err("text.tok", "First Citizen:\n");
  CHECK(contains(e, tmp.file("text.tok") + ": not a discdiff token file"));
  std::string bad = raw;
  bad[kTokenFileHeader + 2] = static_cast<char>(0x00), bad[kTokenFileHeader + 3] = static_cast<char>(0x01);  // id 256
  e = err("id.tok", bad);
  CHECK(contains(e, tmp.file("id.tok") + ": corrupt token file: id 256 at position 1 is not below the vocabulary size 256"));
  bad = raw;
  bad[8] = 9;
  CHECK(contains(err("ver.tok", bad), "token file version 9 is not supported"));
  bad = raw;
  bad[12] = 3;
  CHECK(contains(err("width.tok", bad), "id width 3"));
  CHECK(contains(error_of([&] { TokenFile::open(tmp.file("missing.tok")); }), tmp.file("missing.tok") + ": cannot open"));
}

TEST_CASE("token file: the streaming writer gives the documented bytes, piece by piece") {
  TempDir tmp;
  const Tokenizer t = Tokenizer::bytes();  // N = 256: 2-byte ids
  // The expected file, byte by byte from the layout in token_file.hpp's comment.
  auto le = [](std::uint64_t v, int n) {
    std::string b;
    for (int k = 0; k < n; ++k) b.push_back(static_cast<char>((v >> (8 * k)) & 255));
    return b;
  };
  const std::vector<int> train{1, 2, 255, 0, 7}, test{9};
  std::string want = std::string("DDTOKENS") + le(1, 4) + le(2, 4) + le(256, 4) + le(0, 4) +
                     le(t.hash(), 8) + le(train.size(), 8) + le(0, 8) + le(test.size(), 8);
  for (int id : train) want += le(static_cast<std::uint64_t>(id), 2);
  for (int id : test) want += le(static_cast<std::uint64_t>(id), 2);
  const std::string path = tmp.file("w.tok");
  write_bytes(path, "an older file");
  {
    TokenFileWriter w(path, t);
    w.append(0, train.data(), 2);  // train in three pieces, one empty
    w.append(0, train.data() + 2, 0);
    w.append(0, train.data() + 2, 3);
    CHECK(read_bytes(path) == "an older file");  // untouched until finish()
    w.append(2, test);                          // no valid ids at all
    CHECK(w.count(0) == 5u);
    CHECK(w.count(1) == 0u);
    w.finish();
  }
  CHECK(read_bytes(path) == want);
  write_token_file(tmp.file("whole.tok"), t, train, {}, test);
  CHECK(read_bytes(tmp.file("whole.tok")) == want);
  // Errors: an id outside [0, N), a split out of order; a writer given up leaves no file.
  {
    TokenFileWriter w(tmp.file("bad.tok"), t);
    CHECK(contains(error_of([&] { w.append(0, std::vector<int>{3, 256}); }), "id 256 is outside [0, 256)"));
    w.append(1, std::vector<int>{1});
    CHECK(contains(error_of([&] { w.append(0, std::vector<int>{1}); }), "split 0 appended after split 1"));
  }
  CHECK_FALSE(std::filesystem::exists(tmp.file("bad.tok")));
  std::size_t left = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.dir)) left += e.path().filename() != "w.tok" &&
                                                                            e.path().filename() != "whole.tok";
  CHECK(left == 0);  // no temporary left behind
}

TEST_CASE("token file: chunked encoding equals whole-text encoding on the corpora") {
#if defined(DISCDIFF_HAVE_LZMA) && DISCDIFF_HAVE_LZMA
  const Tokenizer g = gpt2_test();
  for (const char* name : {"tinyshakespeare_input.txt.xz", "enwik8_prefix_4154400.xz", "text8_prefix_12549840.xz"}) {
    const std::string text = corpus_text(name, 200000);
    std::size_t calls = 0, last = 0;
    const auto chunked = encode_in_chunks(g, text, [&](std::size_t done) { ++calls, last = done; }, 4096);
    INFO(name);
    CHECK(calls > 10);  // really cut into pieces
    CHECK(last == text.size());
    CHECK(chunked == g.encode(text));
  }
  const std::string text = corpus_text("tinyshakespeare_input.txt.xz", 50000);
  CHECK(encode_in_chunks(Tokenizer::chars(text), text, {}, 1000) == Tokenizer::chars(text).encode(text));
#else
  MESSAGE("built without liblzma: the .xz corpora are not read");
#endif
}

TEST_CASE("sentencepiece: train bpe and unigram, encode/decode round trip, stored in the description") {
  if (!has_sentencepiece()) {
    CHECK(contains(error_of([] { SpmModel::train({"abc"}, "bpe", 300); }), "built without SentencePiece"));
    CHECK(contains(error_of([] { Tokenizer::deserialize("spm-model:AAAA"); }), "built without SentencePiece"));
    return;
  }
#if defined(DISCDIFF_HAVE_LZMA) && DISCDIFF_HAVE_LZMA
  const std::string train = corpus_text("tinyshakespeare_input.txt.xz", 150000);
  const std::string other = corpus_text("enwik8_prefix_4154400.xz", 30000);  // unseen characters
  for (const char* type : {"bpe", "unigram"}) {
    INFO(type);
    const Tokenizer t = Tokenizer::spm(SpmModel::train({train}, type, 400));
    CHECK(t.num_regular() == 400);
    for (const std::string& s : {train.substr(0, 20000), other, std::string("  two  spaces\n\nand\ttabs \xE6\x97\xA5 ")}) {
      const auto ids = t.encode(s);
      for (int id : ids) REQUIRE((id >= 0 && id < 400));
      CHECK(t.decode(ids) == s);
      if (s.size() > 10000) CHECK(ids.size() < s.size());
    }
    const Tokenizer u = Tokenizer::deserialize(t.serialize());
    CHECK(u == t);
    CHECK(u.encode(other) == t.encode(other));
    TempDir tmp;
    t.spm_model()->save(tmp.file("m.model"));
    CHECK(Tokenizer::from_spec("spm:" + tmp.file("m.model")) == t);
  }
  TempDir tmp;
  write_bytes(tmp.file("bad.model"), "this is not a protobuf");
  CHECK(contains(error_of([&] { Tokenizer::from_spec("spm:" + tmp.file("bad.model")); }),
                 tmp.file("bad.model") + ": not a valid SentencePiece model"));
  CHECK(contains(error_of([] { SpmModel::train({"abc"}, "bpe", 100); }), "too small"));
#endif
}
