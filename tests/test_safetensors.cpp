// safetensors reader/writer: round trips, a hand-assembled reference file, one
// test per malformed-file rule, a deterministic fuzz corpus (truncations, byte
// mutations, header-text mutations) and the atomic-write protocol (including a
// writer killed with SIGKILL at random moments).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <discdiff/core/random.hpp>
#include <discdiff/io/safetensors.hpp>

using namespace discdiff;
using namespace discdiff::io;

namespace {

// Little-endian u64, assembled byte by byte (independent of the library).
std::string le_u64(std::uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

std::string bytes_of(std::initializer_list<unsigned> b) {
  std::string s;
  for (unsigned x : b) s.push_back(static_cast<char>(x));
  return s;
}

std::string make_file(const std::string& header, const std::string& buffer) {
  return le_u64(header.size()) + header + buffer;
}

// Parse must throw FormatError whose message starts with the origin and holds `sub`.
void expect_format_error(const std::string& bytes, const std::string& sub) {
  CAPTURE(sub);
  bool thrown = false;
  try {
    SafetensorsFile::parse(bytes, "case.st");
  } catch (const FormatError& e) {
    thrown = true;
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK(msg.rfind("case.st: ", 0) == 0);
    CHECK(msg.find(sub) != std::string::npos);
  }
  CHECK(thrown);
}

template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Every tensor of a parsed file: offsets inside the buffer, exact contiguous
// cover, and every element readable with its own dtype and shape.
void check_parsed(const SafetensorsFile& f) {
  std::size_t cursor = 0;
  for (const auto& name : f.names()) {
    const TensorInfo& t = f.info(name);
    REQUIRE(t.begin <= t.end);
    REQUIRE(t.end <= f.buffer_size());
    REQUIRE(t.begin == cursor);
    cursor = t.end;
    std::uint64_t numel = 1;
    for (auto d : t.shape) numel *= static_cast<std::uint64_t>(d);
    REQUIRE(numel * dtype_size(t.dtype) == t.end - t.begin);
    std::size_t n = 0;
    switch (t.dtype) {
      case Dtype::F64: n = f.read<double>(name, t.shape).size(); break;
      case Dtype::F32: n = f.read<float>(name, t.shape).size(); break;
      case Dtype::I64: n = f.read<std::int64_t>(name, t.shape).size(); break;
      case Dtype::I32: n = f.read<std::int32_t>(name, t.shape).size(); break;
      case Dtype::U8: n = f.read<std::uint8_t>(name, t.shape).size(); break;
    }
    REQUIRE(n == numel);
    unsigned sum = 0;  // touch every byte (ASan would flag an out-of-bounds pointer)
    const unsigned char* p = f.data(name);
    for (std::size_t i = 0; i < t.end - t.begin; ++i) sum += p[i];
    (void)sum;
  }
  REQUIRE(cursor == f.buffer_size());
}

// 1 if parsed (and checked), 0 if FormatError; anything else fails the test.
int try_parse(const std::string& bytes) {
  try {
    const auto f = SafetensorsFile::parse(bytes, "fuzz");
    check_parsed(f);
    return 1;
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    if (msg.rfind("fuzz: ", 0) != 0) FAIL_CHECK("message without origin: " << msg);
    return 0;
  } catch (const std::exception& e) {
    FAIL_CHECK("unexpected exception type: " << e.what());
  } catch (...) {
    FAIL_CHECK("unexpected non-std exception");
  }
  return -1;
}

std::string make_temp_dir() {
  char tmpl[] = "/tmp/st_test_XXXXXX";
  const char* d = mkdtemp(tmpl);
  REQUIRE(d != nullptr);
  return d;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (const dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  return out;
}

void remove_dir(const std::string& dir) {
  for (const auto& n : list_dir(dir)) {
    const std::string p = dir + "/" + n;
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) ::rmdir(p.c_str());
    else std::remove(p.c_str());
  }
  ::rmdir(dir.c_str());
}

void write_raw(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  std::fclose(f);
}

// A writer holding 4 tensors and metadata (the fuzz seed file).
SafetensorsWriter fuzz_seed_writer() {
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.set_metadata("step", "100");
  const std::vector<float> emb = {0.5f, -1.f, 2.f, 3.25f, -0.125f, 8.f};
  const std::vector<double> bias = {1e-3, -7.5};
  const std::vector<std::int32_t> ids = {1, -2, 300000};
  const std::vector<std::uint8_t> mask = {0, 1, 1, 0, 255};
  w.add("emb", {3, 2}, emb.data());
  w.add("bias", {2}, bias.data());
  w.add("ids", {3}, ids.data());
  w.add("mask", {5}, mask.data());
  return w;
}

}  // namespace

TEST_CASE("safetensors: dtype names and sizes") {
  CHECK(std::string(dtype_name(Dtype::F64)) == "F64");
  CHECK(std::string(dtype_name(Dtype::F32)) == "F32");
  CHECK(std::string(dtype_name(Dtype::I64)) == "I64");
  CHECK(std::string(dtype_name(Dtype::I32)) == "I32");
  CHECK(std::string(dtype_name(Dtype::U8)) == "U8");
  CHECK(dtype_size(Dtype::F64) == sizeof(double));
  CHECK(dtype_size(Dtype::F32) == sizeof(float));
  CHECK(dtype_size(Dtype::I64) == 8);
  CHECK(dtype_size(Dtype::I32) == 4);
  CHECK(dtype_size(Dtype::U8) == 1);
  Dtype d = Dtype::U8;
  CHECK(parse_dtype("F32", &d));
  CHECK(d == Dtype::F32);
  CHECK_FALSE(parse_dtype("BF16", &d));
  CHECK_FALSE(parse_dtype("f32", &d));
  CHECK(is_known_unsupported_dtype("BF16"));
  CHECK_FALSE(is_known_unsupported_dtype("F32"));
}

TEST_CASE("safetensors: round trip of every dtype, scalar, empty tensors and metadata") {
  const std::vector<double> f64 = {1.5, -2.25, 1e300, -0.0, 4.9e-324,
                                   std::numeric_limits<double>::infinity(),
                                   std::numeric_limits<double>::quiet_NaN()};
  const std::vector<float> f32 = {1.f, -2.f, 3.5f, 1e-40f, -1e38f, 0.f};
  const std::vector<std::int64_t> i64 = {std::numeric_limits<std::int64_t>::min(), -1, 0,
                                         std::numeric_limits<std::int64_t>::max()};
  const std::vector<std::int32_t> i32 = {-123456789};
  const std::vector<std::uint8_t> u8 = {0, 1, 127, 128, 255};
  const std::vector<std::uint8_t> none;

  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.set_metadata("note", "\xc3\xbcnicode \xe2\x9c\x93");
  w.set_metadata("empty", "");
  w.set_metadata("format", "discdiff");  // replaces
  w.add("f64", {7}, f64.data());
  w.add("f32", {2, 3}, f32.data());
  w.add("i64", {2, 1, 2}, i64.data());
  w.add("i32_scalar", {}, i32.data());
  w.add("u8_empty", {0}, none.data());
  w.add("u8", {5}, u8.data());
  w.add("u8_empty_2d", {3, 0, 2}, none.data());

  const std::string bytes = w.serialize();
  const auto f = SafetensorsFile::parse(bytes);
  CHECK(f.origin() == "<memory>");
  const std::vector<std::string> expect_names = {"f64", "f32", "i64", "i32_scalar",
                                                 "u8_empty", "u8", "u8_empty_2d"};
  CHECK(f.names() == expect_names);
  CHECK(f.metadata().size() == 3);
  CHECK(f.metadata_value("format") == "discdiff");
  CHECK(f.metadata_value("note") == "\xc3\xbcnicode \xe2\x9c\x93");
  CHECK(f.metadata_value("empty") == "");

  CHECK(f.info("f64").dtype == Dtype::F64);
  CHECK(raw(f.read<double>("f64", {7})) == raw(f64));  // bitwise (NaN, -0, denormal)
  CHECK(f.info("f32").shape == std::vector<std::int64_t>{2, 3});
  CHECK(raw(f.read<float>("f32", {2, 3})) == raw(f32));
  CHECK(f.read<std::int64_t>("i64", {2, 1, 2}) == i64);
  CHECK(f.info("i32_scalar").shape.empty());
  CHECK(f.read<std::int32_t>("i32_scalar", {}) == i32);
  CHECK(f.read<std::uint8_t>("u8_empty", {0}).empty());
  CHECK(f.info("u8_empty").begin == f.info("u8_empty").end);
  CHECK(f.read<std::uint8_t>("u8", {5}) == u8);
  CHECK(f.read<std::uint8_t>("u8_empty_2d", {3, 0, 2}).empty());
  CHECK(f.has("u8"));
  CHECK_FALSE(f.has("__metadata__"));
  CHECK_FALSE(f.has("missing"));
  check_parsed(f);

  // Through the file system as well.
  const std::string dir = make_temp_dir();
  const std::string path = dir + "/rt.safetensors";
  w.write_atomic(path);
  const auto g = SafetensorsFile::load(path);
  CHECK(g.origin() == path);
  CHECK(g.names() == expect_names);
  CHECK(g.metadata() == f.metadata());
  CHECK(raw(g.read<double>("f64", {7})) == raw(f64));
  CHECK(g.read<std::int64_t>("i64", {2, 1, 2}) == i64);
  remove_dir(dir);

  // An empty writer gives a valid file with no tensors.
  const auto e = SafetensorsFile::parse(SafetensorsWriter().serialize());
  CHECK(e.names().empty());
  CHECK(e.metadata().empty());
  CHECK(e.buffer_size() == 0);
}

TEST_CASE("safetensors: a hand-assembled file parses to the expected values") {
  // Header text and buffer bytes written out by hand (IEEE-754 / two's complement,
  // little-endian): F32 1.0 = 3f800000, F32 -2.5 = c0200000, I64 -3, U8 7 0 255,
  // F64 0.5 = 3fe0000000000000, then an empty I32 tensor.
  const std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[1,3],\"data_offsets\":[16,19]},"
      "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[19,27]},"
      "\"i\":{\"dtype\":\"I32\",\"shape\":[0],\"data_offsets\":[27,27]}}";
  const std::string buffer =
      bytes_of({0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0,            // w
                0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,            // n
                0x07, 0x00, 0xff,                                          // b
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f});          // d
  REQUIRE(buffer.size() == 27);

  auto check_content = [](const SafetensorsFile& f) {
    CHECK(f.names() == std::vector<std::string>{"w", "n", "b", "d", "i"});
    CHECK(f.metadata().size() == 1);
    CHECK(f.metadata_value("format") == "pt");
    CHECK(f.read<float>("w", {2}) == std::vector<float>{1.0f, -2.5f});
    CHECK(f.read<std::int64_t>("n", {}) == std::vector<std::int64_t>{-3});
    CHECK(f.read<std::uint8_t>("b", {1, 3}) == std::vector<std::uint8_t>{7, 0, 255});
    CHECK(f.read<double>("d", {1}) == std::vector<double>{0.5});
    CHECK(f.read<std::int32_t>("i", {0}).empty());
    CHECK(f.info("d").begin == 19);
    CHECK(f.info("d").end == 27);
    CHECK(f.buffer_size() == 27);
  };

  // Unpadded, padded with spaces, and with newlines/tabs after the JSON.
  check_content(SafetensorsFile::parse(make_file(header, buffer)));
  check_content(SafetensorsFile::parse(make_file(header + "     ", buffer)));
  check_content(SafetensorsFile::parse(make_file(header + "\n\t\r ", buffer)));

  // The writer's file of the same content parses identically ...
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  const float wv[] = {1.0f, -2.5f};
  const std::int64_t nv[] = {-3};
  const std::uint8_t bv[] = {7, 0, 255};
  const double dv[] = {0.5};
  w.add("w", {2}, wv);
  w.add("n", {}, nv);
  w.add("b", {1, 3}, bv);
  w.add("d", {1}, dv);
  w.add("i", Dtype::I32, {0}, nullptr, 0);
  const std::string s = w.serialize();
  check_content(SafetensorsFile::parse(s));

  // ... and follows the documented layout: u64 N, N bytes of JSON padded with
  // spaces so that 8 + N is a multiple of 8, then the buffer in insertion order.
  REQUIRE(s.size() >= 8);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(s[i]);
  REQUIRE(8 + n <= s.size());
  CHECK((8 + n) % 8 == 0);
  const std::string h = s.substr(8, n);
  const auto close = h.find_last_of('}');
  REQUIRE(close != std::string::npos);
  CHECK(h.find_first_not_of(' ', close + 1) == std::string::npos);
  CHECK(h.size() - (close + 1) < 8);
  const auto j = nlohmann::json::parse(h.substr(0, close + 1));
  CHECK(j.size() == 6);
  CHECK(j["__metadata__"] == nlohmann::json{{"format", "pt"}});
  CHECK(j["w"]["dtype"] == "F32");
  CHECK(j["w"]["shape"] == nlohmann::json::array({2}));
  CHECK(j["w"]["data_offsets"] == nlohmann::json::array({0, 8}));
  CHECK(j["n"]["shape"] == nlohmann::json::array());
  CHECK(j["n"]["data_offsets"] == nlohmann::json::array({8, 16}));
  CHECK(j["b"]["dtype"] == "U8");
  CHECK(j["d"]["data_offsets"] == nlohmann::json::array({19, 27}));
  CHECK(j["i"]["data_offsets"] == nlohmann::json::array({27, 27}));
  CHECK(s.substr(8 + n) == buffer);
}

TEST_CASE("safetensors: malformed files are rejected with FormatError") {
  const std::string f32x2 = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
  const std::string buf8(8, '\x01');
  auto one = [&](const std::string& entry, const std::string& buffer) {
    return make_file("{\"a\":" + entry + "}", buffer);
  };
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offs) {
    return "{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offs + "}";
  };
  // The base case is valid.
  CHECK(SafetensorsFile::parse(one(f32x2, buf8)).read<float>("a", {2}).size() == 2);

  SUBCASE("length prefix") {
    expect_format_error("", "0 bytes, fewer than the 8-byte header length prefix");
    expect_format_error(std::string(7, '\0'), "7 bytes, fewer than the 8-byte");
    expect_format_error(le_u64(1000) + "{}", "header length 1000 exceeds the 2 bytes after");
    expect_format_error(le_u64(200000000) + "{}", "exceeds the limit of 100000000 bytes");
    expect_format_error(le_u64(~0ull) + "{}", "exceeds the limit of 100000000 bytes");
    expect_format_error(le_u64(0) + "{}", "header does not start with '{'");
    expect_format_error(make_file(" {}", ""), "header does not start with '{'");
    expect_format_error(make_file("[1,2]", ""), "header does not start with '{'");
  }
  SUBCASE("header text") {
    expect_format_error(make_file("{\"a\":1", ""), "header is not valid JSON");
    expect_format_error(make_file("{} x", ""), "header is not valid JSON");
    expect_format_error(make_file("{}{}", ""), "header is not valid JSON");
    expect_format_error(make_file("{\"\xc3\x28\":1}", ""), "header is not valid UTF-8");
    expect_format_error(make_file("{\"\xc0\x80\":1}", ""), "not valid UTF-8 (byte 2 of");
    expect_format_error(make_file("{\"\xed\xa0\x80\":1}", ""), "not valid UTF-8");
    expect_format_error(make_file("{\"\xf4\x90\x80\x80\":1}", ""), "not valid UTF-8");
    expect_format_error(make_file("{\"ab\xe2\x82", ""), "not valid UTF-8 (byte 4");
    expect_format_error(make_file(std::string("{}\0garbage", 10), ""), "control byte 0x00 at byte 2");
    expect_format_error(make_file("{\"a\x01\":1}", ""), "control byte 0x01");
    expect_format_error(make_file("{\"a\":{\"b\":[[1]]}}", ""), "nests deeper than 3 levels");
    expect_format_error(make_file("{\"a\":{\"b\":{\"c\":{}}}}", ""), "nests deeper than 3 levels");
  }
  SUBCASE("entries") {
    expect_format_error(one("[1]", ""), "entry of tensor 'a' is not an object (got array)");
    expect_format_error(one("\"x\"", ""), "entry of tensor 'a' is not an object (got string)");
    expect_format_error(one("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}", buf8),
                        "tensor 'a' lacks field 'shape'");
    expect_format_error(one("{\"shape\":[2],\"data_offsets\":[0,8]}", buf8),
                        "tensor 'a' lacks field 'dtype'");
    expect_format_error(one("{\"dtype\":\"F32\",\"shape\":[2]}", buf8),
                        "tensor 'a' lacks field 'data_offsets'");
    expect_format_error(
        one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"foo\":1}", buf8),
        "tensor 'a' has unexpected field 'foo'");
  }
  SUBCASE("dtype") {
    expect_format_error(one(entry("3", "[2]", "[0,8]"), buf8),
                        "dtype of tensor 'a' is not a string (got number)");
    expect_format_error(one(entry("null", "[2]", "[0,8]"), buf8), "is not a string (got null)");
    expect_format_error(one(entry("\"BF16\"", "[4]", "[0,8]"), buf8),
                        "unsupported dtype 'BF16' of tensor 'a' (supported: F64, F32, I64, I32, U8)");
    expect_format_error(one(entry("\"BOOL\"", "[8]", "[0,8]"), buf8), "unsupported dtype 'BOOL'");
    expect_format_error(one(entry("\"f32\"", "[2]", "[0,8]"), buf8),
                        "unknown dtype 'f32' of tensor 'a' (supported: F64, F32, I64, I32, U8)");
  }
  SUBCASE("shape") {
    expect_format_error(one(entry("\"F32\"", "2", "[0,8]"), buf8),
                        "shape of tensor 'a' is not an array (got number)");
    expect_format_error(one(entry("\"F32\"", "[-2]", "[0,8]"), buf8),
                        "shape of tensor 'a': dimension 0 = -2 is negative");
    expect_format_error(one(entry("\"F32\"", "[1,2.0]", "[0,8]"), buf8),
                        "dimension 1 is not an integer (got number 2.0)");
    expect_format_error(one(entry("\"F32\"", "[\"2\"]", "[0,8]"), buf8),
                        "dimension 0 is not an integer (got string)");
    expect_format_error(one(entry("\"F32\"", "[1e30]", "[0,8]"), buf8), "is not an integer");
    expect_format_error(one(entry("\"F32\"", "[99999999999999999999]", "[0,8]"), buf8),
                        "is not an integer");  // beyond u64: nlohmann makes it a float
    expect_format_error(one(entry("\"U8\"", "[18446744073709551615]", "[0,8]"), buf8),
                        "dimension 0 = 18446744073709551615 is too large");
    expect_format_error(one(entry("\"F32\"", "[4294967296,4294967296,4]", "[0,8]"), buf8),
                        "byte size of shape [4294967296, 4294967296, 4] overflows 64 bits");
    expect_format_error(one(entry("\"F64\"", "[2305843009213693952]", "[0,8]"), buf8),
                        "overflows 64 bits");  // 2^61 elements * 8 bytes = 2^64
  }
  SUBCASE("data_offsets") {
    expect_format_error(one(entry("\"F32\"", "[2]", "[0]"), buf8),
                        "data_offsets of tensor 'a' is not an array of two integers (got an array of 1)");
    expect_format_error(one(entry("\"F32\"", "[2]", "[0,8,8]"), buf8), "not an array of two integers");
    expect_format_error(one(entry("\"F32\"", "[2]", "\"0,8\""), buf8),
                        "not an array of two integers (got string)");
    expect_format_error(one(entry("\"F32\"", "[2]", "[-1,8]"), buf8),
                        "data_offsets[0] of tensor 'a' = -1 is negative");
    expect_format_error(one(entry("\"F32\"", "[2]", "[0,8.5]"), buf8),
                        "data_offsets[1] of tensor 'a' is not an integer");
    expect_format_error(one(entry("\"F32\"", "[0]", "[8,0]"), buf8),
                        "data_offsets [8, 0] of tensor 'a' have begin > end");
    expect_format_error(one(entry("\"F32\"", "[4]", "[0,16]"), buf8),
                        "data_offsets [0, 16] of tensor 'a' end beyond the byte buffer of 8 bytes");
    expect_format_error(one(entry("\"U8\"", "[1]", "[18446744073709551614,18446744073709551615]"), buf8),
                        "end beyond the byte buffer");
    expect_format_error(one(entry("\"F32\"", "[2]", "[0,4]"), std::string(4, '\0')),
                        "tensor 'a': data_offsets [0, 4] span 4 bytes, but dtype F32 and shape [2] need 8");
    expect_format_error(one(entry("\"F64\"", "[]", "[0,4]"), std::string(4, '\0')),
                        "span 4 bytes, but dtype F64 and shape [] need 8");
  }
  SUBCASE("buffer coverage") {
    const std::string b_over = entry("\"F32\"", "[2]", "[4,12]");
    expect_format_error(make_file("{\"a\":" + f32x2 + ",\"b\":" + b_over + "}", std::string(12, 0)),
                        "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' (data_offsets [0, 8])");
    const std::string same = entry("\"F32\"", "[2]", "[0,8]");
    expect_format_error(make_file("{\"a\":" + f32x2 + ",\"b\":" + same + "}", buf8), "overlaps");
    const std::string inside = entry("\"U8\"", "[0]", "[4,4]");
    expect_format_error(make_file("{\"a\":" + f32x2 + ",\"e\":" + inside + "}", buf8),
                        "tensor 'e' (data_offsets [4, 4]) overlaps tensor 'a'");
    const std::string b_hole = entry("\"F32\"", "[2]", "[12,20]");
    expect_format_error(make_file("{\"a\":" + f32x2 + ",\"b\":" + b_hole + "}", std::string(20, 0)),
                        "hole of 4 bytes in the byte buffer at [8, 12) before tensor 'b'");
    expect_format_error(one(entry("\"F32\"", "[2]", "[4,12]"), std::string(12, 0)),
                        "hole of 4 bytes in the byte buffer at [0, 4) before tensor 'a'");
    expect_format_error(one(f32x2, std::string(12, 0)),
                        "4 trailing bytes in the byte buffer after tensor 'a'");
    expect_format_error(make_file("{}", "abc"), "3 trailing bytes in the byte buffer after the header");
    expect_format_error(make_file("{\"__metadata__\":{}}", "x"), "1 trailing bytes");
    // Zero-size tensors at a boundary are fine, like the reference implementation.
    const std::string z = entry("\"U8\"", "[0]", "[8,8]");
    const auto ok = SafetensorsFile::parse(make_file("{\"a\":" + f32x2 + ",\"z\":" + z + "}", buf8));
    CHECK(ok.names() == std::vector<std::string>{"a", "z"});
  }
  SUBCASE("duplicates and metadata") {
    expect_format_error(make_file("{\"a\":" + f32x2 + ",\"a\":" + f32x2 + "}", buf8),
                        "header repeats the key 'a' in one object");
    expect_format_error(
        one("{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", buf8),
        "repeats the key 'dtype'");
    expect_format_error(make_file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", ""),
                        "repeats the key 'k'");
    expect_format_error(make_file("{\"__metadata__\":{},\"__metadata__\":{}}", ""),
                        "repeats the key '__metadata__'");
    expect_format_error(make_file("{\"__metadata__\":{\"k\":1}}", ""),
                        "metadata value of key 'k' is not a string (got number)");
    expect_format_error(make_file("{\"__metadata__\":{\"k\":null}}", ""), "(got null)");
    expect_format_error(make_file("{\"__metadata__\":[]}", ""),
                        "__metadata__ is not an object (got array)");
    // The same key in different objects is no duplicate.
    const auto ok = SafetensorsFile::parse(
        make_file("{\"__metadata__\":{\"a\":\"x\"},\"a\":" + f32x2 + "}", buf8));
    CHECK(ok.metadata_value("a") == "x");
    CHECK(ok.has("a"));
  }
  SUBCASE("long and odd names are quoted and cut in messages") {
    const std::string longname(5000, 'q');
    try {
      SafetensorsFile::parse(make_file("{\"" + longname + "\":[]}", ""), "case.st");
      FAIL("expected FormatError");
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      CHECK(msg.find("qqq...'") != std::string::npos);
      CHECK(msg.size() < 300);
    }
    expect_format_error(make_file("{\"a\\u0001b\":[]}", ""), "entry of tensor 'a\\x01b'");
  }
}

TEST_CASE("safetensors: lookups and typed reads check names, dtype and shape") {
  SafetensorsWriter w;
  const float v[] = {1, 2, 3, 4, 5, 6};
  w.add("x", {2, 3}, v);
  w.set_metadata("k", "v");
  const auto f = SafetensorsFile::parse(w.serialize(), "model.st");
  auto expect = [](auto&& fn, const std::string& sub) {
    CAPTURE(sub);
    try {
      fn();
      FAIL("expected FormatError");
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      CAPTURE(msg);
      CHECK(msg.rfind("model.st: ", 0) == 0);
      CHECK(msg.find(sub) != std::string::npos);
    }
  };
  expect([&] { f.info("y"); }, "no tensor named 'y'");
  expect([&] { f.data("y"); }, "no tensor named 'y'");
  expect([&] { f.metadata_value("nope"); }, "no metadata key 'nope'");
  expect([&] { f.read<double>("x", {2, 3}); }, "tensor 'x' has dtype F32, but F64 was requested");
  expect([&] { f.read<float>("x", {3, 2}); }, "tensor 'x' has shape [2, 3], but [3, 2] was expected");
  expect([&] { f.read<float>("x", {6}); }, "has shape [2, 3], but [6] was expected");
  CHECK(f.read<float>("x", {2, 3}) == std::vector<float>(v, v + 6));

  const std::string missing = "/nonexistent_dir_st/x.safetensors";
  try {
    SafetensorsFile::load(missing);
    FAIL("expected FormatError");
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    CHECK(msg.rfind(missing + ": cannot open: ", 0) == 0);
    CHECK(msg.find(std::strerror(ENOENT)) != std::string::npos);
  }
  // A directory is opened by fopen but cannot be read.
  CHECK_THROWS_AS(SafetensorsFile::load("/tmp"), FormatError);
}

TEST_CASE("safetensors: writer rejects bad input with std::invalid_argument") {
  SafetensorsWriter w;
  const float v[4] = {1, 2, 3, 4};
  w.add("a", {4}, v);
  CHECK_THROWS_AS(w.add("a", {4}, v), std::invalid_argument);                // duplicate
  CHECK_THROWS_AS(w.add("", {4}, v), std::invalid_argument);                 // empty name
  CHECK_THROWS_AS(w.add("__metadata__", {4}, v), std::invalid_argument);     // reserved
  CHECK_THROWS_AS(w.add("b", {-1}, v), std::invalid_argument);               // negative dim
  CHECK_THROWS_AS(w.add("b", Dtype::F32, {2}, v, 12), std::invalid_argument);  // nbytes mismatch
  CHECK_THROWS_AS(w.add("b", Dtype::F32, {2}, nullptr, 8), std::invalid_argument);
  CHECK_THROWS_AS(w.add("b", Dtype::F32, {1ll << 40, 1ll << 40}, v, 16), std::invalid_argument);
  CHECK_THROWS_AS(w.add("b", {1ll << 40, 1ll << 40}, v), std::invalid_argument);
  CHECK_THROWS_AS(w.add("b\xff", {4}, v), std::invalid_argument);            // not UTF-8
  CHECK_THROWS_AS(w.set_metadata("k\xc3", "v"), std::invalid_argument);
  CHECK_THROWS_AS(w.set_metadata("k", "\xed\xa0\x80"), std::invalid_argument);
  try {
    w.add("b", Dtype::F32, {2}, v, 12);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("nbytes = 12 but shape [2] of dtype F32 needs 8") !=
          std::string::npos);
  }
  // Rejected adds leave the writer unchanged.
  const auto f = SafetensorsFile::parse(w.serialize());
  CHECK(f.names() == std::vector<std::string>{"a"});
}

TEST_CASE("safetensors: borrowed tensors are written from the caller's memory, same bytes as copies") {
  std::vector<float> big(1000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = 0.5f * float(i) - 3.0f;
  const std::int32_t ids[3] = {7, -1, 42};
  SafetensorsWriter copied, borrowed;
  for (SafetensorsWriter* w : {&copied, &borrowed}) w->set_metadata("k", "v");
  copied.add("w", {10, 100}, big.data());
  copied.add("i", {3}, ids);
  borrowed.add_borrowed("w", Dtype::F32, {10, 100}, big.data(), big.size() * sizeof(float));
  borrowed.add("i", {3}, ids);  // copies and borrowed entries mix
  CHECK(borrowed.serialize() == copied.serialize());
  // A borrowed tensor is read at write time, a copied one at add time.
  big[5] = 1e6f;
  const auto fb = SafetensorsFile::parse(borrowed.serialize());
  const auto fc = SafetensorsFile::parse(copied.serialize());
  CHECK(fb.read<float>("w", {10, 100})[5] == 1e6f);
  CHECK(fc.read<float>("w", {10, 100})[5] == 0.5f * 5 - 3.0f);
  // write_atomic writes the same bytes as serialize().
  const std::string dir = make_temp_dir();
  borrowed.write_atomic(dir + "/b.safetensors");
  std::string on_disk;
  {
    std::FILE* in = std::fopen((dir + "/b.safetensors").c_str(), "rb");
    REQUIRE(in != nullptr);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, in)) > 0;) on_disk.append(buf, n);
    std::fclose(in);
  }
  CHECK(on_disk == borrowed.serialize());
  remove_dir(dir);
  // The same checks as add().
  CHECK_THROWS_AS(borrowed.add_borrowed("w", Dtype::F32, {1}, big.data(), 4), std::invalid_argument);
  CHECK_THROWS_AS(borrowed.add_borrowed("x", Dtype::F32, {2}, big.data(), 12), std::invalid_argument);
  CHECK_THROWS_AS(borrowed.add_borrowed("x", Dtype::F32, {2}, nullptr, 8), std::invalid_argument);
}

TEST_CASE("safetensors: fuzz corpus of truncated and mutated files") {
  const std::string base = fuzz_seed_writer().serialize();
  REQUIRE(try_parse(base) == 1);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(base[i]);
  const std::string header = base.substr(8, n);
  const std::string buffer = base.substr(8 + n);

  // (a) Every proper prefix is rejected (the buffer must be covered exactly).
  int parsed = 0;
  for (std::size_t len = 0; len < base.size(); ++len) parsed += try_parse(base.substr(0, len));
  CHECK(parsed == 0);

  // (b) Random byte overwrites and bit flips anywhere in the file (deterministic).
  int ok_b = 0;
  const int kMutants = 3000;
  for (int m = 0; m < kMutants; ++m) {
    CounterRng rng(20240601, 1, static_cast<std::uint64_t>(m));
    std::string s = base;
    const int edits = 1 + static_cast<int>(rng.uniform_int(3));
    for (int e = 0; e < edits; ++e) {
      // Half the edits land in the first 16 bytes + header, where parsing lives.
      const std::uint32_t span = (rng.next_u32() & 1u) ? static_cast<std::uint32_t>(s.size())
                                                       : static_cast<std::uint32_t>(8 + n);
      const std::uint32_t pos = rng.uniform_int(span);
      if (rng.next_u32() & 1u)
        s[pos] = static_cast<char>(rng.next_u32() & 0xffu);
      else
        s[pos] = static_cast<char>(static_cast<unsigned char>(s[pos]) ^ (1u << rng.uniform_int(8)));
    }
    const int r = try_parse(s);
    REQUIRE(r >= 0);
    ok_b += r;
  }
  CHECK(ok_b > 0);          // edits inside the data buffer keep the file valid
  CHECK(ok_b < kMutants);   // and most header edits break it

  // (c) Header-text mutations, each tried with N recomputed and with the old N.
  std::vector<std::string> headers;
  for (std::size_t i = 0; i < header.size(); ++i) {
    headers.push_back(header.substr(0, i) + header.substr(i + 1));  // delete one char
    const char c = header[i];
    if (c >= '0' && c <= '9') {
      for (char d : {'0', '1', '2', '5', '9'})
        if (d != c) headers.push_back(header.substr(0, i) + d + header.substr(i + 1));
      headers.push_back(header.substr(0, i) + "9" + header.substr(i));        // extra digit
      headers.push_back(header.substr(0, i) + "-" + header.substr(i));        // negative
      headers.push_back(header.substr(0, i) + c + ".5" + header.substr(i + 1));  // float
    }
  }
  const char* dtypes[] = {"F64", "F32", "I64", "I32", "U8", "BF16", "F16", "BOOL", "", "X"};
  for (const char* from : {"\"F32\"", "\"F64\"", "\"I32\"", "\"U8\""}) {
    const auto at = header.find(from);
    REQUIRE(at != std::string::npos);
    for (const char* to : dtypes)
      headers.push_back(header.substr(0, at) + "\"" + to + "\"" +
                        header.substr(at + std::strlen(from)));
  }
  for (const char* key : {"\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\""}) {
    const auto at = header.find(key);
    REQUIRE(at != std::string::npos);
    headers.push_back(header.substr(0, at) + "\"zzz\"" + header.substr(at + std::strlen(key)));
  }
  int ok_c = 0;
  for (const auto& h : headers) {
    const int r1 = try_parse(make_file(h, buffer));
    const int r2 = try_parse(le_u64(n) + h + buffer);
    REQUIRE(r1 >= 0);
    REQUIRE(r2 >= 0);
    ok_c += r1 + r2;
  }
  CHECK(ok_c > 0);  // e.g. F32 <-> I32 swaps and deleted padding spaces stay valid
  MESSAGE("fuzz: " << base.size() << " truncations, " << kMutants << " byte mutants (" << ok_b
                   << " valid), " << 2 * headers.size() << " header mutants (" << ok_c
                   << " valid)");
}

TEST_CASE("safetensors: write_atomic writes, overwrites and cleans up") {
  const std::string dir = make_temp_dir();
  const std::string path = dir + "/model.safetensors";

  SafetensorsWriter a;
  const double av[] = {1, 2, 3};
  a.add("x", {3}, av);
  a.set_metadata("version", "a");
  a.write_atomic(path);
  CHECK(list_dir(dir) == std::vector<std::string>{"model.safetensors"});
  CHECK(SafetensorsFile::load(path).metadata_value("version") == "a");

  SafetensorsWriter b = fuzz_seed_writer();
  b.set_metadata("version", "b");
  b.write_atomic(path);  // overwrite
  CHECK(list_dir(dir) == std::vector<std::string>{"model.safetensors"});
  const auto fb = SafetensorsFile::load(path);
  CHECK(fb.metadata_value("version") == "b");
  check_parsed(fb);

  // A writer that crashed mid-write left a half temporary file: the old complete
  // file is still what load() sees, and a later write succeeds beside it.
  const std::string stale = path + ".tmp.123";
  const std::string c_bytes = a.serialize();
  write_raw(stale, c_bytes.substr(0, c_bytes.size() / 2));
  CHECK(SafetensorsFile::load(path).metadata_value("version") == "b");
  CHECK_THROWS_AS(SafetensorsFile::load(stale), FormatError);
  a.write_atomic(path);
  CHECK(SafetensorsFile::load(path).metadata_value("version") == "a");
  std::remove(stale.c_str());
  CHECK(list_dir(dir) == std::vector<std::string>{"model.safetensors"});

  // A relative path (directory ".") works too.
  {
    char cwd[4096];
    REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
    REQUIRE(::chdir(dir.c_str()) == 0);
    b.write_atomic("rel.safetensors");
    CHECK(SafetensorsFile::load("rel.safetensors").metadata_value("version") == "b");
    REQUIRE(::chdir(cwd) == 0);
    std::remove((dir + "/rel.safetensors").c_str());
  }

  // A missing directory: std::runtime_error naming the path and strerror.
  const std::string bad = dir + "/no/such/dir/model.safetensors";
  try {
    a.write_atomic(bad);
    FAIL("expected std::runtime_error");
  } catch (const FormatError&) {
    FAIL("write errors are not FormatError");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK(msg.find("'" + bad + "'") != std::string::npos);
    CHECK(msg.find(std::strerror(ENOENT)) != std::string::npos);
  }

  // rename() over a directory fails: the temporary file is removed.
  REQUIRE(::mkdir((dir + "/sub").c_str(), 0755) == 0);
  CHECK_THROWS_AS(a.write_atomic(dir + "/sub"), std::runtime_error);
  auto names = list_dir(dir);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"model.safetensors", "sub"});
  remove_dir(dir);
}

TEST_CASE("safetensors: a writer killed at random moments leaves a complete file") {
  const std::string dir = make_temp_dir();
  const std::string path = dir + "/ckpt.safetensors";
  // Two versions large enough (2 MB) that a kill often lands mid-write.
  std::vector<float> big(1 << 19);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i);
  SafetensorsWriter va, vb;
  va.set_metadata("version", "a");
  vb.set_metadata("version", "b");
  va.add("w", {static_cast<std::int64_t>(big.size())}, big.data());
  for (auto& x : big) x = -x;
  vb.add("w", {static_cast<std::int64_t>(big.size())}, big.data());
  va.write_atomic(path);

  std::set<std::string> seen;
  for (int trial = 0; trial < 6; ++trial) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (int k = 0;; ++k) {
        try {
          (k % 2 ? va : vb).write_atomic(path);
        } catch (...) {
          ::_exit(3);
        }
      }
    }
    ::usleep(static_cast<useconds_t>(2000 + 7000 * trial));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    const auto f = SafetensorsFile::load(path);  // never torn
    const std::string v = f.metadata_value("version");
    CHECK((v == "a" || v == "b"));
    const auto w = f.read<float>("w", {static_cast<std::int64_t>(big.size())});
    CHECK(w[12345] == (v == "a" ? 12345.f : -12345.f));
    seen.insert(v);
  }
  std::size_t torn = 0;  // temporaries of killed writers: kills that landed mid-write
  for (const auto& name : list_dir(dir)) torn += name.find(".tmp.") != std::string::npos;
  MESSAGE("versions seen after kills: " << seen.size() << ", half-written temporaries left: " << torn);
  remove_dir(dir);  // also removes the killed writers' temporary files
}
