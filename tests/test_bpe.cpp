// GPT-2 byte-level BPE (data/bpe.hpp) against golden encodings made once by Hugging Face
// `tokenizers` (tests/data/gpt2_bpe/make_goldens.py) for a ByteLevel BPE trained on the shared
// corpora; byte-exact round trips on the corpora and on arbitrary (also invalid UTF-8) bytes;
// malformed vocab.json / merges.txt errors naming the file and line; the Unicode tables.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <discdiff/data/bpe.hpp>
#include <discdiff/data/data.hpp>

#ifndef DISCDIFF_SHARED_DATA_DIR
#define DISCDIFF_SHARED_DATA_DIR "../shared/data"
#endif
#ifndef DISCDIFF_TEST_DATA_DIR
#define DISCDIFF_TEST_DATA_DIR "tests/data"
#endif

using namespace discdiff::data;

namespace {

const std::string kDir = std::string(DISCDIFF_TEST_DATA_DIR) + "/gpt2_bpe";

const ByteLevelBpe& test_bpe() {
  static const ByteLevelBpe b = ByteLevelBpe::load(kDir + "/vocab.json", kDir + "/merges.txt");
  return b;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("bpe: GPT-2 byte-to-unicode map") {
  const auto& t = bpe_detail::byte_to_code_point();
  std::set<std::uint32_t> distinct(t.begin(), t.end());
  CHECK(distinct.size() == 256u);
  CHECK(t[' '] == 0x120);   // 'Ġ'
  CHECK(t['\n'] == 0x10A);  // 'Ċ'
  CHECK(t['A'] == 'A');
  CHECK(t[0xAD] == 0x143);  // the last remapped byte (soft hyphen)
  CHECK(t[0xFF] == 0xFF);
}

TEST_CASE("bpe: Unicode tables agree with known categories") {
  using namespace unicode;
  CHECK(is_letter('a'));
  CHECK(is_letter(0x00E9));   // é
  CHECK(is_letter(0x65E5));   // 日
  CHECK(is_letter(0x01C5));   // ǅ (Lt)
  CHECK(!is_letter('1'));
  CHECK(is_number('7'));
  CHECK(is_number(0x00B3));   // ³ (No)
  CHECK(is_number(0x0663));   // ٣ (Nd)
  CHECK(is_number(0x2167));   // Ⅷ (Nl)
  CHECK(!is_number('x'));
  CHECK(is_white_space(0x3000));
  CHECK(is_white_space(0x0085));
  CHECK(!is_white_space(0x200B));  // zero-width space is Cf, not White_Space
  CHECK(!is_white_space(0x1C));    // Python's str.isspace() says yes; Unicode does not
}

TEST_CASE("bpe: every golden case encodes exactly as Hugging Face tokenizers") {
  const ByteLevelBpe& b = test_bpe();
  CHECK(b.size() == 800);
  REQUIRE(b.special_ids().size() == 1u);
  CHECK(b.token_string(b.special_ids()[0]) == "<|endoftext|>");
  std::ifstream in(kDir + "/goldens.json");
  REQUIRE(in.good());
  const nlohmann::json g = nlohmann::json::parse(in);
  int n = 0;
  for (const auto& c : g.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    const std::vector<int> want = c.at("ids").get<std::vector<int>>();
    INFO("case " << c.at("name").get<std::string>() << ": " << nlohmann::json(text).dump());
    CHECK(b.encode(text) == want);
    CHECK(b.decode(want) == text);
    ++n;
  }
  CHECK(n >= 60);
}

TEST_CASE("bpe: pre-tokenisation pieces on hand-checked cases") {
  using V = std::vector<std::string_view>;
  CHECK(ByteLevelBpe::pretokenize("a  b") == V{"a", " ", " b"});
  CHECK(ByteLevelBpe::pretokenize("a   b ") == V{"a", "  ", " b", " "});
  CHECK(ByteLevelBpe::pretokenize("don't") == V{"don", "'t"});
  CHECK(ByteLevelBpe::pretokenize("x \n y") == V{"x", " \n", " y"});
  CHECK(ByteLevelBpe::pretokenize("3.14 ab12") == V{"3", ".", "14", " ab", "12"});
  CHECK(ByteLevelBpe::pretokenize("") == V{});
}

TEST_CASE("bpe: arbitrary bytes, invalid UTF-8 included, round-trip exactly") {
  const ByteLevelBpe& b = test_bpe();
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 300; ++trial) {
    std::string s(static_cast<std::size_t>(rng() % 64), '\0');
    for (char& c : s) {
      const unsigned r = rng() % 10;
      // Mix ASCII, spaces, UTF-8 lead/continuation bytes and raw high bytes.
      c = static_cast<char>(r < 4 ? 'a' + rng() % 26 : r < 6 ? ' ' : r < 7 ? 0x80 + rng() % 64
                            : r < 8 ? 0xC0 + rng() % 64 : rng() % 256);
    }
    const auto ids = b.encode(s);
    for (int id : ids) REQUIRE((id >= 0 && id < b.size()));
    CHECK(b.decode(ids) == s);
  }
  // A lone continuation byte, an overlong '/', a surrogate, a truncated sequence.
  for (std::string s : {std::string("a\x80" "b"), std::string("\xC0\xAF"), std::string("x\xED\xA0\x80y"),
                        std::string("caf\xC3"), std::string("\xF4\x90\x80\x80")}) {
    CHECK(b.decode(b.encode(s)) == s);
  }
}

TEST_CASE("bpe: round trip on a prefix of every shared corpus") {
#if defined(DISCDIFF_HAVE_LZMA) && DISCDIFF_HAVE_LZMA
  const ByteLevelBpe& b = test_bpe();
  for (const char* name : {"tinyshakespeare_input.txt.xz", "enwik8_prefix_4154400.xz",
                           "gutenberg_nltk_13texts.tar.xz", "text8_prefix_12549840.xz"}) {
    const std::string path = std::string(DISCDIFF_SHARED_DATA_DIR) + "/" + name;
    if (!std::ifstream(path).good()) FAIL("missing corpus file " << path);
    std::string text = read_text(path);
    // 300 kB from the middle (the Gutenberg texts' invalid UTF-8 bytes sit there too); the
    // whole files with DISCDIFF_BPE_FULL=1 (a minute or so; recorded in docs/usage.md).
    if (!std::getenv("DISCDIFF_BPE_FULL")) text = text.substr(text.size() / 2, 300000);
    const auto ids = b.encode(text);
    INFO(name);
    CHECK(ids.size() < text.size());  // merges do compress
    CHECK(b.decode(ids) == text);
  }
#else
  MESSAGE("built without liblzma: the .xz corpora are not read");
#endif
}

TEST_CASE("bpe: canonical form round-trips") {
  const ByteLevelBpe& b = test_bpe();
  const ByteLevelBpe c = ByteLevelBpe::from_canonical(b.canonical(), "stored");
  CHECK(c.canonical() == b.canonical());
  const std::string s = "Hello<|endoftext|> world 123 \xE6\x97\xA5";
  CHECK(c.encode(s) == b.encode(s));
}

TEST_CASE("bpe: malformed vocab.json / merges.txt name the file and line") {
  std::string vocab = "{";
  for (int byte = 0; byte < 256; ++byte) {
    std::string sym;
    bpe_detail::append_utf8(sym, bpe_detail::byte_to_code_point()[static_cast<std::size_t>(byte)]);
    vocab += (byte ? ",\n" : "\n") + nlohmann::json(sym).dump() + ": " + std::to_string(byte);
  }
  const std::string good = vocab + ",\n\"ab\": 256\n}";
  CHECK(ByteLevelBpe::from_strings(good, "#version: 0.2\na b\n", "v.json", "m.txt").size() == 257);

  // JSON syntax errors: line and column.
  auto e = error_of([&] { ByteLevelBpe::from_strings(vocab + ",\n\"ab\" 256}", "", "v.json", "m.txt"); });
  CHECK(contains(e, "v.json:258:"));
  CHECK(contains(e, "expected ':'"));
  e = error_of([&] { ByteLevelBpe::from_strings(vocab + ",\n\"ab\": -1}", "", "v.json", "m.txt"); });
  CHECK(contains(e, "v.json:258:"));
  // Ids not 0..V-1, duplicates, a missing byte symbol.
  e = error_of([&] { ByteLevelBpe::from_strings(vocab + ",\n\"ab\": 300}", "", "v.json", "m.txt"); });
  CHECK(contains(e, "v.json: token 'ab' has id 300"));
  e = error_of([&] { ByteLevelBpe::from_strings(vocab + ",\n\"ab\": 5}", "", "v.json", "m.txt"); });
  CHECK(contains(e, "id 5 is used twice"));
  e = error_of([&] { ByteLevelBpe::from_strings("{\"a\": 0}", "", "v.json", "m.txt"); });
  CHECK(contains(e, "v.json: 1 entries"));
  // merges.txt problems: line numbers count the #version line.
  e = error_of([&] { ByteLevelBpe::from_strings(good, "#version: 0.2\na b\nab\n", "v.json", "m.txt"); });
  CHECK(contains(e, "m.txt:3: expected two tokens"));
  e = error_of([&] { ByteLevelBpe::from_strings(good, "#version: 0.2\nb c\n", "v.json", "m.txt"); });
  CHECK(contains(e, "m.txt:2: merge 'b c' gives 'bc', which is not in the vocabulary"));
  e = error_of([&] { ByteLevelBpe::from_strings(good, "a zz\n", "v.json", "m.txt"); });
  CHECK(contains(e, "m.txt:1: token 'zz' is not in the vocabulary"));
  e = error_of([&] { ByteLevelBpe::load(kDir + "/no-such-vocab.json", kDir + "/merges.txt"); });
  CHECK(contains(e, "no-such-vocab.json: cannot open"));
}
