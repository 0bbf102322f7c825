// The data module: tokenizers, read_text (plain, xz, tar, the real corpora in
// shared/data), standard splits, random crops / evaluation chunks, and the
// Markov source against closed forms, exact enumeration and simulation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <discdiff/data/data.hpp>

#if defined(DISCDIFF_HAVE_LZMA) && DISCDIFF_HAVE_LZMA
#include <lzma.h>
#define DD_TEST_LZMA 1
#else
#define DD_TEST_LZMA 0
#endif

#ifndef DISCDIFF_SHARED_DATA_DIR
#define DISCDIFF_SHARED_DATA_DIR "../shared/data"
#endif

using namespace discdiff;
using namespace discdiff::data;

namespace {

// ---------------------------------------------------------------- helpers

/// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    const auto base = std::filesystem::temp_directory_path();
    for (;;) {
      path = base / ("discdiff_test_data_" + std::to_string(::getpid()) + "_" +
                     std::to_string(counter++));
      if (std::filesystem::create_directory(path)) break;
    }
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

#if DD_TEST_LZMA
std::string xz_encode(const std::string& in, std::uint32_t preset = 1) {
  std::vector<std::uint8_t> out(lzma_stream_buffer_bound(in.size()));
  std::size_t pos = 0;
  const lzma_ret r = lzma_easy_buffer_encode(
      preset, LZMA_CHECK_CRC64, nullptr, reinterpret_cast<const std::uint8_t*>(in.data()),
      in.size(), out.data(), &pos, out.size());
  REQUIRE(r == LZMA_OK);
  return std::string(reinterpret_cast<const char*>(out.data()), pos);
}
#endif

/// One 512-byte tar header built by hand (octal fields, checksum).
std::string tar_header(const std::string& name, std::size_t size, char type,
                       const std::string& prefix = "", bool gnu_magic = false) {
  std::string h(512, '\0');
  auto put = [&](std::size_t off, const std::string& s) { h.replace(off, s.size(), s); };
  auto octal = [](std::uint64_t v, int width) {  // width-1 digits + NUL
    char buf[32];
    std::snprintf(buf, sizeof buf, "%0*llo", width - 1, static_cast<unsigned long long>(v));
    return std::string(buf);
  };
  REQUIRE(name.size() <= 100);
  put(0, name);
  put(100, octal(0644, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(size, 12));
  put(136, octal(1234567, 12));
  h[156] = type;
  if (gnu_magic) {
    put(257, "ustar  ");  // "ustar" two spaces NUL
  } else {
    put(257, "ustar");
    put(263, "00");
    put(345, prefix);
  }
  put(148, "        ");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06o", sum);
  put(148, std::string(buf) + std::string(1, '\0') + " ");
  return h;
}

std::string tar_entry(const std::string& name, const std::string& body, char type = '0',
                      const std::string& prefix = "", bool gnu = false) {
  std::string e = tar_header(name, body.size(), type, prefix, gnu) + body;
  e.append((512 - body.size() % 512) % 512, '\0');
  return e;
}

/// A pax extended-header entry with one "path" record.
std::string pax_path_entry(const std::string& path) {
  std::string rec = " path=" + path + "\n";
  std::size_t len = rec.size() + 1;
  while (std::to_string(len).size() + rec.size() != len) len = std::to_string(len).size() + rec.size();
  return tar_entry("PaxHeader", std::to_string(len) + rec, 'x');
}

std::string end_of_archive() { return std::string(1024, '\0'); }

/// Reference stationary distribution: solve pi (P - I) = 0, sum pi = 1 by
/// Gaussian elimination with partial pivoting on the dense matrix from prob().
std::vector<double> reference_stationary(const MarkovSource& m) {
  const int C = m.num_contexts(), A = m.options().alphabet;
  const int suffix = C / A;
  // Rows = equations; M x = rhs with x = pi.
  std::vector<std::vector<double>> M(C, std::vector<double>(C + 1, 0.0));
  for (int c = 0; c < C; ++c)
    for (int x = 0; x < A; ++x) {
      const int c2 = (c % suffix) * A + x;
      M[c2][c] += m.prob(c, x);  // (P^T)[c2][c]
    }
  for (int c = 0; c < C; ++c) M[c][c] -= 1.0;
  for (int c = 0; c <= C; ++c) M[0][c] = 1.0;  // replace one equation by sum = 1
  for (int col = 0; col < C; ++col) {
    int piv = col;
    for (int r = col + 1; r < C; ++r)
      if (std::fabs(M[r][col]) > std::fabs(M[piv][col])) piv = r;
    std::swap(M[col], M[piv]);
    REQUIRE(std::fabs(M[col][col]) > 1e-300);
    for (int r = 0; r < C; ++r) {
      if (r == col || M[r][col] == 0.0) continue;
      const double f = M[r][col] / M[col][col];
      for (int k = col; k <= C; ++k) M[r][k] -= f * M[col][k];
    }
  }
  std::vector<double> pi(C);
  for (int c = 0; c < C; ++c) pi[c] = M[c][C] / M[c][c];
  return pi;
}

/// H(X_1..X_L) by enumerating all A^L sequences with a reference pi.
double enumerated_block_entropy(const MarkovSource& m, const std::vector<double>& pi, int L) {
  const int A = m.options().alphabet, k = m.options().order, C = m.num_contexts();
  if (L == 0) return 0.0;
  long long total = 1;
  for (int i = 0; i < L; ++i) total *= A;
  double H = 0.0, mass = 0.0;
  std::vector<int> x(L);
  for (long long code = 0; code < total; ++code) {
    long long t = code;
    for (int i = L - 1; i >= 0; --i) {
      x[i] = static_cast<int>(t % A);
      t /= A;
    }
    double p = 0.0;
    if (L >= k) {
      int ctx = 0;
      for (int i = 0; i < k; ++i) ctx = ctx * A + x[i];
      p = pi[ctx];
      for (int i = k; i < L && p > 0.0; ++i) {
        p *= m.prob(ctx, x[i]);
        ctx = (ctx % (C / A)) * A + x[i];
      }
    } else {  // marginal of the first L symbols of a context
      for (int ctx = 0; ctx < C; ++ctx) {
        int c = ctx;
        std::vector<int> sym(k);
        for (int i = k - 1; i >= 0; --i) {
          sym[i] = c % A;
          c /= A;
        }
        if (std::equal(x.begin(), x.end(), sym.begin())) p += pi[ctx];
      }
    }
    mass += p;
    if (p > 0.0) H -= p * std::log(p);
  }
  CHECK(mass == doctest::Approx(1.0).epsilon(1e-12));
  return H;
}

double binary_entropy(double a) {
  double h = 0.0;
  if (a > 0.0) h -= a * std::log(a);
  if (a < 1.0) h -= (1.0 - a) * std::log(1.0 - a);
  return h;
}

}  // namespace

// ---------------------------------------------------------------- tokenizers

TEST_CASE("data: text8 tokenizer maps a-z and space, round-trips and reports bad bytes") {
  const auto t = Tokenizer::text8();
  CHECK(t.kind() == Tokenizer::Kind::text8);
  CHECK(t.kind_name() == "text8");
  CHECK(t.num_regular() == 27);
  CHECK(t.mask_id() == 27);
  CHECK(t.symbols() == "abcdefghijklmnopqrstuvwxyz ");
  const auto ids = t.encode("az by");
  CHECK(ids == std::vector<int>{0, 25, 26, 1, 24});
  CHECK(t.decode(ids.data(), ids.size()) == "az by");
  std::string all = t.symbols();
  CHECK(t.decode(t.encode(all)) == all);
  // MASK shows as the mask character.
  const std::vector<int> masked = {7, 27, 4, 27};
  CHECK(t.decode(masked) == "h_e_");
  CHECK(t.decode(masked.data(), masked.size(), '#') == "h#e#");
  CHECK(t.decode(nullptr, 0).empty());
  // Bad ids.
  const std::vector<int> bad_hi = {0, 28}, bad_lo = {-1};
  CHECK_THROWS_AS(t.decode(bad_hi), std::invalid_argument);
  CHECK(contains(message_of([&] { t.decode(bad_hi); }), "id 28 at offset 1"));
  CHECK_THROWS_AS(t.decode(bad_lo), std::invalid_argument);
  CHECK_THROWS_AS(t.decode(nullptr, 3), std::invalid_argument);
  // Bad characters: the exact wording of the brief.
  CHECK_THROWS_AS(t.encode("abc X"), std::invalid_argument);
  const std::string msg = message_of([&] { t.encode(std::string(123, 'a') + "X"); });
  CHECK(contains(msg, "character 'X' (byte 0x58) at offset 123 is not in the vocabulary "
                      "(text8: a-z and space)"));
  CHECK(contains(message_of([&] { t.encode("ab\ncd"); }), "byte 0x0a) at offset 2"));
  CHECK(contains(message_of([&] { t.encode(std::string("a\xe9", 2)); }), "byte 0xe9"));
}

TEST_CASE("data: bytes tokenizer is the identity on all 256 bytes") {
  const auto t = Tokenizer::bytes();
  CHECK(t.kind_name() == "bytes");
  CHECK(t.num_regular() == 256);
  CHECK(t.mask_id() == 256);
  std::string all(256, '\0');
  for (int i = 0; i < 256; ++i) all[i] = static_cast<char>(i);
  CHECK(t.symbols() == all);
  const auto ids = t.encode(all);
  for (int i = 0; i < 256; ++i) CHECK(ids[i] == i);
  CHECK(t.decode(ids) == all);
  const std::vector<int> m = {256, 65};
  CHECK(t.decode(m, '?') == "?A");
  const std::vector<int> bad = {257};
  CHECK_THROWS_AS(t.decode(bad), std::invalid_argument);
}

TEST_CASE("data: chars tokenizer uses the sorted distinct bytes") {
  const auto t = Tokenizer::chars("hello world");
  CHECK(t.kind_name() == "chars");
  CHECK(t.symbols() == " dehlorw");
  CHECK(t.num_regular() == 8);
  CHECK(t.mask_id() == 8);
  CHECK(t.encode("hello") == std::vector<int>{3, 2, 4, 4, 5});
  CHECK(t.decode(t.encode("world hello")) == "world hello");
  const std::string msg = message_of([&] { t.encode("hex"); });
  CHECK(contains(msg, "character 'x' (byte 0x78) at offset 2 is not in the vocabulary (chars: 8"));
  // Unsigned byte order, NUL and 0xff included.
  const auto u = Tokenizer::chars(std::string("\xff\x00" "a\xff", 4));
  CHECK(u.symbols() == std::string("\x00" "a\xff", 3));
  CHECK(u.encode(std::string("\xff\x00", 2)) == std::vector<int>{2, 0});
  CHECK_THROWS_AS(Tokenizer::chars(""), std::invalid_argument);
  CHECK_THROWS_AS(Tokenizer::chars("aaaa"), std::invalid_argument);
}

TEST_CASE("data: tokenizer serialize/deserialize round trip and malformed strings") {
  const std::vector<Tokenizer> toks = {
      Tokenizer::text8(), Tokenizer::bytes(), Tokenizer::chars("First Citizen:\nBefore"),
      Tokenizer::chars(std::string("\x00\x01\x7f\x80\xfe\xff", 6))};
  for (const auto& t : toks) {
    const std::string s = t.serialize();
    for (char c : s) CHECK((c >= 0x21 && c < 0x7f));  // printable, no spaces
    const auto back = Tokenizer::deserialize(s);
    CHECK(back == t);
    CHECK_FALSE(back != t);
    CHECK(back.symbols() == t.symbols());
    CHECK(back.kind() == t.kind());
  }
  CHECK(Tokenizer::text8().serialize() == "text8");
  CHECK(Tokenizer::bytes().serialize() == "bytes");
  CHECK(Tokenizer::chars("ba").serialize() == "chars:6162");
  CHECK(Tokenizer::deserialize("chars:6162") == Tokenizer::chars("ab"));
  CHECK(Tokenizer::deserialize("chars:4A4b") == Tokenizer::chars("JK"));  // either case
  CHECK(Tokenizer::text8() != Tokenizer::bytes());
  // A chars tokenizer with the text8 symbols is still a different kind.
  CHECK(Tokenizer::chars(Tokenizer::text8().symbols()) != Tokenizer::text8());
  for (const char* bad : {"", "text", "Text8", "bytes ", " text8", "chars", "chars:", "chars:6",
                          "chars:616", "chars:zz61", "chars:6161", "chars:6261", "chars:61",
                          "chars:61g2", "words:6162"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(Tokenizer::deserialize(bad), std::invalid_argument);
  }
  CHECK(contains(message_of([] { Tokenizer::deserialize("chars:6261"); }), "increasing"));
}

TEST_CASE("data: normalize_text8") {
  CHECK(Tokenizer::normalize_text8("Hello,  World!\n123abc") == "hello world abc");
  CHECK(Tokenizer::normalize_text8("  A") == " a");
  CHECK(Tokenizer::normalize_text8("ab  ") == "ab ");
  CHECK(Tokenizer::normalize_text8("").empty());
  CHECK(Tokenizer::normalize_text8("ZzY") == "zzy");
  // Every byte value: the output is in the text8 alphabet with no double space,
  // and normalisation is idempotent.
  std::string all;
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  const std::string n = Tokenizer::normalize_text8(all);
  CHECK_NOTHROW(Tokenizer::text8().encode(n));
  CHECK(n.find("  ") == std::string::npos);
  CHECK(Tokenizer::normalize_text8(n) == n);
  // Letter count is preserved: 52 letters per round.
  CHECK(std::count_if(n.begin(), n.end(), [](char c) { return c != ' '; }) == 3 * 52);
}

// ---------------------------------------------------------------- read_text

TEST_CASE("data: read_text reads plain files and names missing ones") {
  TempDir dir;
  std::string bytes;
  for (int i = 0; i < 70000; ++i) bytes.push_back(static_cast<char>((i * 131 + 7) % 256));
  write_bytes(dir.file("plain.bin"), bytes);
  CHECK(read_text(dir.file("plain.bin")) == bytes);
  write_bytes(dir.file("empty.txt"), "");
  CHECK(read_text(dir.file("empty.txt")).empty());
  const std::string missing = dir.file("no_such_file.txt");
  CHECK_THROWS_AS(read_text(missing), std::runtime_error);
  const std::string msg = message_of([&] { read_text(missing); });
  CHECK(contains(msg, missing));
  CHECK(contains(msg, std::strerror(ENOENT)));
}

TEST_CASE("data: read_text decodes xz (single, concatenated, large, corrupt, truncated)") {
  TempDir dir;
  // A 3 MiB pseudo-random text over a small alphabet (several decoder output chunks).
  std::string text;
  CounterRng rng(99, 1, 0);
  for (int i = 0; i < 3 * 1024 * 1024; ++i) text.push_back("abcdefgh \n"[rng.uniform_int(10)]);
#if DD_TEST_LZMA
  const std::string xz = xz_encode(text);
  REQUIRE(xz.size() < text.size());
  write_bytes(dir.file("big.xz"), xz);
  CHECK(read_text(dir.file("big.xz")) == text);
  // Concatenated streams decode to the concatenation.
  write_bytes(dir.file("two.xz"), xz_encode("first part|") + xz_encode("second part"));
  CHECK(read_text(dir.file("two.xz")) == "first part|second part");
  // Empty content.
  write_bytes(dir.file("empty.xz"), xz_encode(""));
  CHECK(read_text(dir.file("empty.xz")).empty());
  // Corruption in the middle of the compressed data.
  std::string bad = xz;
  bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x5a);
  write_bytes(dir.file("corrupt.xz"), bad);
  CHECK_THROWS_AS(read_text(dir.file("corrupt.xz")), std::runtime_error);
  const std::string msg = message_of([&] { read_text(dir.file("corrupt.xz")); });
  CHECK(contains(msg, dir.file("corrupt.xz")));
  CHECK(contains(msg, "corrupt"));
  // Truncation.
  write_bytes(dir.file("trunc.xz"), xz.substr(0, xz.size() - 100));
  CHECK_THROWS_AS(read_text(dir.file("trunc.xz")), std::runtime_error);
  CHECK(contains(message_of([&] { read_text(dir.file("trunc.xz")); }), "trunc.xz"));
  // The magic followed by garbage.
  write_bytes(dir.file("magic_only.xz"), std::string("\xFD" "7zXZ\x00garbage-garbage", 21));
  CHECK_THROWS_AS(read_text(dir.file("magic_only.xz")), std::runtime_error);
#else
  write_bytes(dir.file("big.xz"), std::string("\xFD" "7zXZ\x00", 6) + "x");
  const std::string msg = message_of([&] { read_text(dir.file("big.xz")); });
  CHECK(contains(msg, "is xz-compressed but this build has no liblzma"));
  CHECK(contains(msg, "xz -dk " + dir.file("big.xz")));
#endif
}

TEST_CASE("data: read_text reads a hand-built tar (and tar.xz)") {
  TempDir dir;
  const std::string a512(512, 'A');  // exactly one data block, no padding
  std::string tar;
  tar += tar_entry("d/", "", '5');
  tar += tar_entry("d/b.txt", "bee\n");
  tar += tar_entry("README", "not part of the text");
  tar += tar_entry("a.txt", a512);
  tar += tar_entry("d/README", "also skipped");
  tar += tar_entry("x.txt", "in p", '0', "p");              // ustar prefix "p" -> "p/x.txt"
  tar += tar_entry("empty.txt", "", '0', "", /*gnu=*/true);  // GNU magic
  tar += tar_entry("link", "", '2');                          // symlink: skipped
  tar += pax_path_entry("zz/a_long_pax_name.txt");
  tar += tar_entry("short", "pax body");                      // named by the pax record
  tar += tar_entry("c.txt", "", '\0');                        // old-style regular file
  tar += end_of_archive();
  // Sorted: a.txt, c.txt, d/b.txt, empty.txt, p/x.txt, zz/a_long_pax_name.txt
  const std::string expected = a512 + "\n" + "" + "\n" + "bee\n" + "\n" + "" + "\n" + "in p" +
                               "\n" + "pax body";
  write_bytes(dir.file("t.tar"), tar);
  CHECK(read_text(dir.file("t.tar")) == expected);
#if DD_TEST_LZMA
  write_bytes(dir.file("t.tar.xz"), xz_encode(tar));
  CHECK(read_text(dir.file("t.tar.xz")) == expected);
#endif

  // Malformed archives.
  std::string bad_sum = tar;
  bad_sum[0] = 'e';  // "d/" -> "e/" without fixing the checksum
  write_bytes(dir.file("bad_sum.tar"), bad_sum);
  CHECK(contains(message_of([&] { read_text(dir.file("bad_sum.tar")); }), "checksum"));

  const std::string one = tar_entry("f.txt", "hello world");
  write_bytes(dir.file("trunc_data.tar"), one.substr(0, 512 + 5));
  const std::string m1 = message_of([&] { read_text(dir.file("trunc_data.tar")); });
  CHECK(contains(m1, "truncated"));
  CHECK(contains(m1, "trunc_data.tar"));

  write_bytes(dir.file("no_end.tar"), one);
  CHECK(contains(message_of([&] { read_text(dir.file("no_end.tar")); }), "truncated"));

  write_bytes(dir.file("half_header.tar"), one + tar_header("g.txt", 3, '0').substr(0, 300));
  CHECK(contains(message_of([&] { read_text(dir.file("half_header.tar")); }), "truncated"));

  std::string bad_size = tar_header("f.txt", 11, '0');
  bad_size[124] = '9';  // non-octal digit; recompute the checksum so only the size is wrong
  {
    std::string h = bad_size;
    h.replace(148, 8, "        ");
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06o", sum);
    bad_size.replace(148, 8, std::string(buf) + std::string(1, '\0') + " ");
  }
  write_bytes(dir.file("bad_size.tar"), bad_size + std::string(512, 'x') + end_of_archive());
  CHECK(contains(message_of([&] { read_text(dir.file("bad_size.tar")); }), "size field"));
}

TEST_CASE("data: read_text on the real corpora in shared/data") {
  const std::string root = DISCDIFF_SHARED_DATA_DIR;
  auto path_of = [&](const char* name) {
    const std::string p = root + "/" + name;
    if (!std::ifstream(p).good())
      FAIL("missing corpus file " << p << " (set DISCDIFF_SHARED_DATA_DIR)");
    return p;
  };
#if DD_TEST_LZMA
  {
    const std::string p = path_of("tinyshakespeare_input.txt.xz");
    const std::string s = read_text(p);
    CHECK(s.size() == 1115394u);
    CHECK(s.rfind("First Citizen:", 0) == 0);
    const auto tok = Tokenizer::chars(s);
    CHECK(tok.num_regular() == 65);
    CHECK(tok.decode(tok.encode(s)) == s);
    const auto sp = standard_splits(p, s.size());
    CHECK(sp.train.end == 1003854u);
    CHECK(sp.valid.size() == 111540u);
  }
  {
    const std::string p = path_of("text8_prefix_12549840.xz");
    const std::string s = read_text(p);
    CHECK(s.size() == 12549840u);
    CHECK(s.rfind(" anarchism originated", 0) == 0);
    CHECK(std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || (c >= 'a' && c <= 'z'); }));
    const auto ids = Tokenizer::text8().encode(s);
    CHECK(ids.size() == s.size());
    CHECK(Tokenizer::normalize_text8(s) == s);
    const auto sp = standard_splits(p, s.size());
    CHECK(sp.train.begin == 0u);
    CHECK(sp.train.end == 11294856u);
    CHECK(sp.valid.begin == 11294856u);
    CHECK(sp.valid.end == 11922348u);
    CHECK(sp.test.begin == 11922348u);
    CHECK(sp.test.end == 12549840u);
  }
  {
    const std::string s = read_text(path_of("enwik8_prefix_4154400.xz"));
    CHECK(s.size() == 4154400u);
    CHECK(s.rfind("<mediawiki xmlns=", 0) == 0);
  }
  {
    // 13 books (6,047,109 bytes) joined by 12 newlines, README excluded, sorted by name.
    const std::string s = read_text(path_of("gutenberg_nltk_13texts.tar.xz"));
    CHECK(s.size() == 6047109u + 12u);
    CHECK(s.rfind("[Emma by Jane Austen 1816]", 0) == 0);
  }
#else
  const std::string p = path_of("tinyshakespeare_input.txt.xz");
  CHECK(contains(message_of([&] { read_text(p); }), "xz -dk"));
#endif
}

// ---------------------------------------------------------------- splits, crops

TEST_CASE("data: standard splits") {
  // text8 prefix numbers of SOURCES.md.
  const auto t = standard_splits("/some/dir/text8_prefix_12549840.xz", 12549840);
  CHECK(t.train.begin == 0u);
  CHECK(t.train.end == 11294856u);
  CHECK(t.valid.begin == 11294856u);
  CHECK(t.valid.end == 11922348u);
  CHECK(t.test.begin == 11922348u);
  CHECK(t.test.end == 12549840u);
  CHECK(t.train.size() + t.valid.size() + t.test.size() == 12549840u);
  CHECK(contains(t.rule, "text8"));
  CHECK(t.rule.find('\n') == std::string::npos);
  // The full text8: the standard 90M/5M/5M split.
  const auto full = standard_splits("text8", 100000000);
  CHECK(full.train.end == 90000000u);
  CHECK(full.valid.end == 95000000u);
  CHECK(full.test.end == 100000000u);
  // Shakespeare: nanoGPT 90/10, test = valid.
  const auto s = standard_splits("data/TinyShakespeare_input.txt.xz", 1115394);
  CHECK(s.train.begin == 0u);
  CHECK(s.train.end == 1003854u);
  CHECK(s.valid.begin == 1003854u);
  CHECK(s.valid.end == 1115394u);
  CHECK(s.test.begin == s.valid.begin);
  CHECK(s.test.end == s.valid.end);
  CHECK(contains(s.rule, "test = valid"));
  // Only the base name counts.
  const auto g = standard_splits("/data/shakespeare/other.txt", 101);
  CHECK(g.train.end == 90u);  // floor(90.9)
  CHECK(g.valid.end == 95u);  // floor(95.95)
  CHECK(g.test.end == 101u);
  const auto e = standard_splits("enwik8_prefix_4154400.xz", 4154400);
  CHECK(e.train.end == 3738960u);
  CHECK(e.valid.end == 3946680u);
  // Exact floors for every n up to 1000 and near the top of size_t (128-bit reference).
  for (std::size_t n = 20; n <= 1000; ++n) {
    const auto r = standard_splits("x.txt", n);
    CHECK(r.train.end == n * 90 / 100);
    CHECK(r.valid.end == n * 95 / 100);
    const auto q = standard_splits("shakespeare.txt", n);
    CHECK(q.train.end == n * 9 / 10);
  }
#ifdef __SIZEOF_INT128__
  __extension__ typedef unsigned __int128 u128;
  const std::size_t big = ~std::size_t(0) - 3;
  const auto b = standard_splits("x.txt", big);
  CHECK(b.train.end == static_cast<std::size_t>((static_cast<u128>(big) * 90) / 100));
  CHECK(b.valid.end == static_cast<std::size_t>((static_cast<u128>(big) * 95) / 100));
  CHECK(b.test.end == big);
#endif
  // Too small to split.
  CHECK_THROWS_AS(standard_splits("x.txt", 19), std::invalid_argument);
  CHECK_THROWS_AS(standard_splits("shakespeare", 9), std::invalid_argument);
  CHECK_NOTHROW(standard_splits("shakespeare", 10));
}

TEST_CASE("data: random crops are in range, deterministic and vary with the step") {
  const std::size_t n = 1000;
  std::vector<int> tokens(n);
  std::iota(tokens.begin(), tokens.end(), 0);  // token value = position
  const int B = 16, L = 50;
  std::vector<int> a(B * L), b(B * L), c(B * L);
  random_crops(tokens, B, L, 123, 7, a.data());
  random_crops(tokens, B, L, 123, 7, b.data());
  random_crops(tokens, B, L, 123, 8, c.data());
  CHECK(a == b);
  CHECK(a != c);
  for (int i = 0; i < B; ++i) {
    const int start = a[i * L];
    CHECK(start >= 0);
    CHECK(start <= static_cast<int>(n) - L);
    for (int j = 0; j < L; ++j) CHECK(a[i * L + j] == start + j);  // a contiguous window
    // The documented start rule.
    CounterRng rng(123, kCropStream, 7ull * B + i);
    CHECK(static_cast<std::uint32_t>(start) == rng.uniform_int(static_cast<std::uint32_t>(n - L + 1)));
  }
  // L = n: the only crop is the whole corpus.
  std::vector<int> whole(2 * n);
  random_crops(tokens, 2, static_cast<int>(n), 5, 0, whole.data());
  for (std::size_t i = 0; i < n; ++i) CHECK(whole[n + i] == static_cast<int>(i));
  // Start positions are roughly uniform over n - L + 1 = 10 values (chi-square, 9 dof).
  std::vector<int> small(12);
  std::iota(small.begin(), small.end(), 0);
  std::vector<int> counts(10, 0), out(3 * 200);
  for (int step = 0; step < 1000; ++step) {
    random_crops(small, 200, 3, 9, step, out.data());
    for (int i = 0; i < 200; ++i) ++counts[out[i * 3]];
  }
  double chi2 = 0.0;
  for (int v : counts) chi2 += (v - 20000.0) * (v - 20000.0) / 20000.0;
  CHECK(chi2 < 40.0);  // P(chi2_9 > 40) < 1e-5
  // Errors.
  int dummy[4];
  CHECK_THROWS_AS(random_crops(tokens, 0, 5, 1, 0, dummy), std::invalid_argument);
  CHECK_THROWS_AS(random_crops(tokens, 1, 0, 1, 0, dummy), std::invalid_argument);
  CHECK_THROWS_AS(random_crops(tokens, 1, static_cast<int>(n) + 1, 1, 0, dummy), std::invalid_argument);
  CHECK_THROWS_AS(random_crops(tokens, 1, 5, 1, 0, nullptr), std::invalid_argument);
}

TEST_CASE("data: TokenView reads owned ints and borrowed little-endian uint16 / uint32 ids alike") {
  // Ids with every byte position used: 0, 1, 255, 256, 65535 (and 65536, 2^31 - 1 for uint32).
  const std::vector<int> ids16{0, 1, 255, 256, 4660, 65535, 7, 65534};
  const std::vector<int> ids32{0, 1, 255, 256, 65535, 65536, 16777216, 2147483647};
  // Little-endian bytes written by hand, with a leading pad byte so the ids are unaligned.
  auto bytes_of = [](const std::vector<int>& v, int w) {
    auto b = std::make_shared<std::vector<unsigned char>>(1, 0xAB);
    for (int x : v)
      for (int k = 0; k < w; ++k) b->push_back(static_cast<unsigned char>((std::uint32_t(x) >> (8 * k)) & 255));
    return b;
  };
  for (int w : {2, 4}) {
    CAPTURE(w);
    const std::vector<int>& ref = w == 2 ? ids16 : ids32;
    std::weak_ptr<std::vector<unsigned char>> watch;
    TokenView v;
    {
      auto buf = bytes_of(ref, w);
      watch = buf;
      v = TokenView::little_endian(buf, buf->data() + 1, ref.size(), w);
    }
    CHECK_FALSE(watch.expired());  // the view keeps its memory alive
    CHECK(v.size() == ref.size());
    CHECK_FALSE(v.owned());
    CHECK(v.storage() == (w == 2 ? TokenView::Storage::u16le : TokenView::Storage::u32le));
    for (std::size_t i = 0; i < ref.size(); ++i) CHECK(v[i] == ref[i]);
    CHECK(v.to_vector() == ref);
    std::vector<int> part(3, -1);
    v.copy(2, 3, part.data());
    CHECK(part == std::vector<int>(ref.begin() + 2, ref.begin() + 5));
    v.copy(ref.size(), 0, nullptr);  // an empty range at the end is fine
    CHECK_THROWS_AS(v.copy(6, 3, part.data()), std::invalid_argument);
    CHECK_THROWS_AS(v.copy(1, 1, nullptr), std::invalid_argument);
    // Crops and chunks equal those of the int vector, bit for bit.
    std::vector<int> a(4 * 3), b(4 * 3);
    random_crops(v, 4, 3, 99, 5, a.data());
    random_crops(ref, 4, 3, 99, 5, b.data());
    CHECK(a == b);
    eval_chunks(v, 2, 1, 3, a.data());
    eval_chunks(ref, 2, 1, 3, b.data());
    CHECK(std::equal(a.begin(), a.begin() + 6, b.begin()));
    const TokenView copy = v;  // copies share the memory
    v = TokenView();
    CHECK_FALSE(watch.expired());
    CHECK(copy.to_vector() == ref);
  }
  // Owned: takes the vector over; copies share it.
  std::vector<int> src(ids32);
  const TokenView o(std::move(src));
  CHECK(o.owned());
  CHECK(o.storage() == TokenView::Storage::int32);
  CHECK(o.to_vector() == ids32);
  const TokenView o2 = o;
  CHECK(o2.owned());
  CHECK(o2.to_vector() == ids32);
  // Borrowed vector (no ownership).
  const TokenView b = TokenView::of(ids16);
  CHECK_FALSE(b.owned());
  CHECK(b.to_vector() == ids16);
  CHECK(TokenView().empty());
  CHECK_THROWS_AS(TokenView::little_endian(nullptr, nullptr, 1, 2), std::invalid_argument);
  CHECK_THROWS_AS(TokenView::little_endian(nullptr, ids16.data(), 1, 8), std::invalid_argument);
}

TEST_CASE("data: eval chunks are fixed, non-overlapping and cover n / L * L tokens") {
  std::vector<int> tokens(103);
  std::iota(tokens.begin(), tokens.end(), 0);
  const int L = 10;
  CHECK(num_eval_chunks(103, L) == 10u);
  CHECK(num_eval_chunks(9, L) == 0u);
  CHECK(num_eval_chunks(100, L) == 10u);
  std::vector<int> all(100);
  eval_chunks(tokens, L, 0, 10, all.data());
  CHECK(std::equal(all.begin(), all.end(), tokens.begin()));  // each token once, in order
  std::vector<int> part(3 * L);
  eval_chunks(tokens, L, 4, 3, part.data());
  for (int i = 0; i < 3 * L; ++i) CHECK(part[i] == 40 + i);
  eval_chunks(tokens, L, 10, 0, nullptr);  // empty range is fine
  CHECK_THROWS_AS(eval_chunks(tokens, L, 8, 3, part.data()), std::invalid_argument);
  CHECK_THROWS_AS(eval_chunks(tokens, L, 11, 0, part.data()), std::invalid_argument);
  CHECK_THROWS_AS(eval_chunks(tokens, L, 0, ~std::size_t(0), part.data()), std::invalid_argument);
  CHECK_THROWS_AS(num_eval_chunks(10, 0), std::invalid_argument);
  CHECK_THROWS_AS(eval_chunks(tokens, L, 0, 1, nullptr), std::invalid_argument);
}

// ---------------------------------------------------------------- Markov source

TEST_CASE("data: Markov source validates its options") {
  using O = MarkovSource::Options;
  auto make = [](O o) { return MarkovSource(o); };
  O o;
  o.order = 0;
  CHECK_THROWS_AS(make(o), std::invalid_argument);
  o.order = 4;
  CHECK_THROWS_AS(make(o), std::invalid_argument);
  o = O{};
  o.alphabet = 1;
  CHECK_THROWS_AS(make(o), std::invalid_argument);
  o.alphabet = 257;
  CHECK_THROWS_AS(make(o), std::invalid_argument);
  o = O{};
  o.order = 3;
  o.alphabet = 102;  // 102^3 > 2^20
  CHECK(contains(message_of([&] { make(o); }), "2^20"));
  o = O{};
  o.branching = 0;
  CHECK_THROWS_AS(make(o), std::invalid_argument);
  o.branching = 28;
  CHECK_THROWS_AS(make(o), std::invalid_argument);
  o = O{};
  for (double bad : {0.0, -1.0, std::nan("")}) {
    o.concentration = bad;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
  }
  o = O{};
  for (double bad : {-0.1, 1.0, std::nan("")}) {
    o.smoothing = bad;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
  }
  const MarkovSource m(O{});
  CHECK_THROWS_AS(m.prob(729, 0), std::invalid_argument);
  CHECK_THROWS_AS(m.prob(0, 27), std::invalid_argument);
  CHECK_THROWS_AS(m.block_entropy(-1), std::invalid_argument);
}

TEST_CASE("data: Markov source rows: branching successors including the ramp") {
  for (double smoothing : {0.0, 0.25}) {
    MarkovSource::Options o;
    o.order = 2;
    o.alphabet = 7;
    o.branching = 3;
    o.smoothing = smoothing;
    o.seed = 11;
    const MarkovSource m(o);
    CHECK(m.num_contexts() == 49);
    for (int c = 0; c < 49; ++c) {
      double sum = 0.0;
      int above_floor = 0;
      for (int x = 0; x < 7; ++x) {
        const double p = m.prob(c, x);
        sum += p;
        CHECK(p >= smoothing / 7 * (1 - 1e-12));
        if (p > smoothing / 7 * (1 + 1e-9)) ++above_floor;
      }
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-13));
      CHECK(above_floor == 3);
      CHECK(m.prob(c, (c % 7 + 1) % 7) > smoothing / 7 * (1 + 1e-9));  // the ramp
    }
    double total = 0.0;
    for (double v : m.stationary()) total += v;
    CHECK(total == doctest::Approx(1.0).epsilon(1e-13));
    const std::string d = m.describe();
    CHECK(contains(d, "order 2"));
    CHECK(contains(d, "alphabet 7"));
    CHECK(contains(d, "bits"));
    CHECK(d.find('\n') == std::string::npos);
  }
}

TEST_CASE("data: Markov order 1 on 2 symbols against the closed form") {
  struct Case {
    int branching;
    double smoothing, concentration;
    std::uint64_t seed;
  };
  for (const Case& k : {Case{2, 0.0, 1.0, 1}, Case{2, 0.0, 0.3, 5}, Case{2, 0.2, 2.0, 9},
                        Case{1, 0.3, 1.0, 2}, Case{1, 0.0, 1.0, 3}}) {
    CAPTURE(k.branching);
    CAPTURE(k.smoothing);
    MarkovSource::Options o;
    o.order = 1;
    o.alphabet = 2;
    o.branching = k.branching;
    o.smoothing = k.smoothing;
    o.concentration = k.concentration;
    o.seed = k.seed;
    const MarkovSource m(o);
    const double a = m.prob(0, 1), b = m.prob(1, 0);
    const double pi0 = b / (a + b), pi1 = a / (a + b);
    REQUIRE(m.stationary().size() == 2u);
    CHECK(m.stationary()[0] == doctest::Approx(pi0).epsilon(1e-12));
    CHECK(m.stationary()[1] == doctest::Approx(pi1).epsilon(1e-12));
    const double h = pi0 * binary_entropy(a) + pi1 * binary_entropy(b);
    CHECK(std::fabs(m.entropy_rate() - h) < 1e-12);
    const std::vector<double> pi_ref = {pi0, pi1};
    for (int L = 0; L <= 10; ++L) {
      CAPTURE(L);
      CHECK(std::fabs(m.block_entropy(L) - enumerated_block_entropy(m, pi_ref, L)) < 1e-11);
    }
  }
}

TEST_CASE("data: Markov block entropy against exact enumeration (order 2, 3 symbols; order 3, 2 symbols)") {
  struct Case {
    int order, alphabet, branching, maxL;
    double smoothing;
  };
  for (const Case& k : {Case{2, 3, 2, 7, 0.0}, Case{2, 3, 2, 7, 0.1}, Case{2, 3, 3, 7, 0.0},
                        Case{2, 3, 1, 7, 0.05}, Case{3, 2, 2, 9, 0.0}}) {
    CAPTURE(k.order);
    CAPTURE(k.branching);
    CAPTURE(k.smoothing);
    MarkovSource::Options o;
    o.order = k.order;
    o.alphabet = k.alphabet;
    o.branching = k.branching;
    o.smoothing = k.smoothing;
    o.seed = 42;
    const MarkovSource m(o);
    const auto pi_ref = reference_stationary(m);
    double l1 = 0.0;
    for (int c = 0; c < m.num_contexts(); ++c) l1 += std::fabs(pi_ref[c] - m.stationary()[c]);
    CHECK(l1 < 1e-11);
    for (int L = 0; L <= k.maxL; ++L) {
      CAPTURE(L);
      CHECK(std::fabs(m.block_entropy(L) - enumerated_block_entropy(m, pi_ref, L)) < 1e-11);
    }
    // h = H(L + 1) - H(L) for L >= order, from the enumeration.
    const double d = enumerated_block_entropy(m, pi_ref, k.order + 2) -
                     enumerated_block_entropy(m, pi_ref, k.order + 1);
    CHECK(std::fabs(m.entropy_rate() - d) < 1e-11);
  }
}

TEST_CASE("data: default Markov source: simulation agrees with stationary() and entropy_rate()") {
  const MarkovSource m(MarkovSource::Options{});
  const int A = 27, C = m.num_contexts(), k = 2;
  REQUIRE(C == 729);
  // The stationary vector against a dense linear solve, and the residual.
  const auto pi_ref = reference_stationary(m);
  double l1 = 0.0, resid = 0.0;
  std::vector<double> piP(C, 0.0);
  for (int c = 0; c < C; ++c) {
    l1 += std::fabs(pi_ref[c] - m.stationary()[c]);
    for (int x = 0; x < A; ++x) piP[(c % (C / A)) * A + x] += m.stationary()[c] * m.prob(c, x);
  }
  for (int c = 0; c < C; ++c) resid += std::fabs(piP[c] - m.stationary()[c]);
  CHECK(l1 < 1e-11);
  CHECK(resid < 1e-12);
  CHECK(m.entropy_rate() > 0.0);
  CHECK(m.entropy_rate() < std::log(4.0));  // at most 4 successors per context

  const std::size_t n = 2000000;
  const auto xs = m.generate(n, 7, 0);
  REQUIRE(xs.size() == n);
  CHECK(std::all_of(xs.begin(), xs.end(), [&](int x) { return x >= 0 && x < A; }));
  // Context frequencies vs pi (total variation).
  std::vector<double> freq(C, 0.0);
  std::vector<double> joint(static_cast<std::size_t>(C) * A, 0.0);
  double sum_nll = 0.0;
  std::size_t impossible = 0;
  const int nb = 100;
  std::vector<double> batch(nb, 0.0);
  const std::size_t T = n - k;
  for (std::size_t t = k; t < n; ++t) {
    const int ctx = xs[t - 2] * A + xs[t - 1];
    freq[ctx] += 1.0;
    joint[static_cast<std::size_t>(ctx) * A + xs[t]] += 1.0;
    const double p = m.prob(ctx, xs[t]);
    if (!(p > 0.0)) ++impossible;
    sum_nll -= std::log(p);
    batch[std::min<std::size_t>((t - k) * nb / T, nb - 1)] -= std::log(p);
  }
  CHECK(impossible == 0u);  // never a transition of probability 0
  double tv = 0.0;
  for (int c = 0; c < C; ++c) tv += 0.5 * std::fabs(freq[c] / T - m.stationary()[c]);
  CHECK(tv < 0.02);
  // Mean log-loss vs h with a batch-means standard error.
  const double mean = sum_nll / T;
  double var = 0.0;
  for (double v : batch) {
    const double bm = v / (static_cast<double>(T) / nb);
    var += (bm - mean) * (bm - mean);
  }
  const double se = std::sqrt(var / (nb - 1) / nb);
  CAPTURE(mean);
  CAPTURE(se);
  CHECK(std::fabs(mean - m.entropy_rate()) < 5 * se + 1e-9);
  // Plug-in conditional entropy from counts (bias ~ (#transitions) / (2 T)).
  double hplug = 0.0;
  for (int c = 0; c < C; ++c)
    for (int x = 0; x < A; ++x) {
      const double nj = joint[static_cast<std::size_t>(c) * A + x];
      if (nj > 0) hplug -= nj / T * std::log(nj / freq[c]);
    }
  CHECK(std::fabs(hplug - m.entropy_rate()) < 0.01);
  // generate() is a pure function of (options, seed, stream); prefixes agree.
  CHECK(m.generate(1000, 7, 0) == std::vector<int>(xs.begin(), xs.begin() + 1000));
  CHECK(m.generate(1000, 7, 1) != m.generate(1000, 7, 0));
  CHECK(m.generate(1000, 8, 0) != m.generate(1000, 7, 0));
  CHECK(MarkovSource(MarkovSource::Options{}).generate(500, 3, 4) == m.generate(500, 3, 4));
  CHECK(m.generate(0, 1, 1).empty());
  CHECK(m.generate(1, 1, 1).size() == 1u);
}

TEST_CASE("data: Markov generate with smoothing matches prob() empirically") {
  MarkovSource::Options o;
  o.order = 1;
  o.alphabet = 5;
  o.branching = 2;
  o.smoothing = 0.3;
  o.concentration = 0.7;
  o.seed = 3;
  const MarkovSource m(o);
  const std::size_t n = 400000;
  const auto xs = m.generate(n, 1, 2);
  std::vector<double> cnt(25, 0.0), row(5, 0.0);
  for (std::size_t t = 1; t < n; ++t) {
    cnt[xs[t - 1] * 5 + xs[t]] += 1;
    row[xs[t - 1]] += 1;
  }
  for (int c = 0; c < 5; ++c) {
    CHECK(row[c] / (n - 1) == doctest::Approx(m.stationary()[c]).epsilon(0.03));
    for (int x = 0; x < 5; ++x) {
      const double p = m.prob(c, x), phat = cnt[c * 5 + x] / row[c];
      CHECK(std::fabs(phat - p) < 5 * std::sqrt(p * (1 - p) / row[c]) + 1e-12);
    }
  }
}
