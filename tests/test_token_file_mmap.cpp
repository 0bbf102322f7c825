// Token files are used in place (data::TokenView over the mapping, data/token_file.hpp), not
// copied into a std::vector<int>: a 256 MiB token file written here is loaded through the
// program's corpus loader (apps/corpus_loader.hpp) and trained / evaluated on as `discdiff train`
// does (random crops of the train split, validation windows), and
//   * the peak resident set (VmHWM, reset through /proc/self/clear_refs where the kernel allows)
//     and the anonymous resident set (RssAnon) grow by far less than the file (a copy into ints
//     would add twice the file's size, the ids being uint16);
//   * the crops and windows equal those cut from a naive reference: the file read with fread
//     into a std::vector<int> (after the measurement).
// Its own CTest entry (unit.test_token_file_mmap), so the process's peak is this test's. The
// temporary file is deleted at the end; without 600 MiB free in the temp directory the case
// says so and checks nothing else.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <discdiff/data/data.hpp>
#include <discdiff/data/token_file.hpp>

#include "corpus_loader.hpp"

using namespace discdiff;

namespace {

/// A field of /proc/self/status in kB ("VmHWM", "VmRSS", "RssAnon"); -1 if absent.
long status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size() + 1, key + ":") == 0) return std::stol(line.substr(key.size() + 1));
  return -1;
}

/// Resets VmHWM to the current resident set (Linux >= 4.0); false where not allowed.
bool reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

/// The id at position i of the generated file: a cheap hash below n (any id < n is valid).
std::uint32_t id_at(std::uint64_t i, std::uint32_t n) {
  std::uint64_t x = (i + 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 31;
  return static_cast<std::uint32_t>(x % n);
}

struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) std::remove(path.c_str());
  }
};

/// Writes a token file by hand (header of data/token_file.hpp's comment, little-endian ids),
/// in pieces of 2^19 ids so that writing it costs little memory.
void write_by_hand(const std::string& path, std::uint32_t width, std::uint32_t n, std::uint64_t hash,
                   const std::uint64_t counts[3]) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE_MESSAGE(f != nullptr, "cannot write " << path);
  std::vector<unsigned char> b;
  auto put = [&](std::uint64_t v, int bytes) {
    for (int k = 0; k < bytes; ++k) b.push_back(static_cast<unsigned char>((v >> (8 * k)) & 255));
  };
  for (char c : std::string("DDTOKENS")) b.push_back(static_cast<unsigned char>(c));
  put(1, 4), put(width, 4), put(n, 4), put(0, 4), put(hash, 8);
  for (int s = 0; s < 3; ++s) put(counts[s], 8);
  REQUIRE(std::fwrite(b.data(), 1, b.size(), f) == b.size());
  const std::uint64_t total = counts[0] + counts[1] + counts[2];
  const std::size_t per = std::size_t(1) << 19;  // ids per write
  b.assign(per * width, 0);
  bool ok = true;
  for (std::uint64_t first = 0; first < total; first += per) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(per, total - first));
    for (std::size_t i = 0; i < k; ++i) {
      const std::uint32_t id = id_at(first + i, n);
      for (std::uint32_t j = 0; j < width; ++j) b[i * width + j] = static_cast<unsigned char>((id >> (8 * j)) & 255);
    }
    ok = ok && std::fwrite(b.data(), 1, k * width, f) == k * width;
  }
  ok = (std::fclose(f) == 0) && ok;
  REQUIRE_MESSAGE(ok, "writing " << path << " failed");
}

/// The naive reference: the ids of split s read with fread into ints.
std::vector<int> fread_split(const std::string& path, std::uint32_t width, const std::uint64_t counts[3], int s) {
  std::uint64_t first = 0;
  for (int k = 0; k < s; ++k) first += counts[k];
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fseek(f, static_cast<long>(56 + first * width), SEEK_SET) == 0);
  std::vector<unsigned char> raw(static_cast<std::size_t>(counts[s] * width));
  REQUIRE(std::fread(raw.data(), 1, raw.size(), f) == raw.size());
  std::fclose(f);
  std::vector<int> ids(static_cast<std::size_t>(counts[s]));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::uint32_t v = 0;
    for (std::uint32_t k = 0; k < width; ++k) v |= std::uint32_t(raw[i * width + k]) << (8 * k);
    ids[i] = static_cast<int>(v);
  }
  return ids;
}

}  // namespace

TEST_CASE("token file: a 256 MiB file trains and evaluates in place, without a copy") {
  const std::uint64_t total = std::uint64_t(128) << 20;  // uint16 ids: 256 MiB + 56 bytes
  const std::uint64_t counts[3] = {total - (total / 10), total / 20, total / 10 - total / 20};
  const std::string dir = std::filesystem::temp_directory_path().string();
  std::error_code ec;
  const auto space = std::filesystem::space(dir, ec);
  if (ec || space.available < (std::uintmax_t(600) << 20)) {
    MESSAGE("skipped: " << dir << " has less than 600 MiB free for the 256 MiB token file");
    return;
  }
  const data::Tokenizer tok = data::Tokenizer::bytes();  // N = 256, 2-byte ids
  TempFile tmp{dir + "/dd_mmap_" + std::to_string(::getpid()) + ".tok"};
  write_by_hand(tmp.path, 2, static_cast<std::uint32_t>(tok.num_regular()), tok.hash(), counts);
  const double file_mib = double(std::filesystem::file_size(tmp.path)) / double(1 << 20);

  // As `discdiff train` does: load, check the validation windows, draw crops for some steps.
  app::RunConfig cfg;
  cfg.data = tmp.path;
  const int B = 16, L = 1024, steps = 2;
  const std::uint64_t seed = 7;
  std::int64_t nval = 64;
  const bool reset = reset_peak();
  const long hwm0 = status_kb("VmHWM"), anon0 = status_kb("RssAnon");
  REQUIRE(hwm0 > 0);
  std::vector<int> crops(static_cast<std::size_t>(steps) * B * L), val;
  long hwm1 = 0, anon1 = 0;
  {
    const app::Corpus corpus = app::load_corpus(cfg, &tok);
    CHECK(corpus.train.size() == counts[0]);
    CHECK(corpus.valid.size() == counts[1]);
    CHECK(corpus.test.size() == counts[2]);
    CHECK(corpus.train.storage() == data::TokenView::Storage::u16le);
    CHECK_FALSE(corpus.train.owned());
    val = app::eval_sequences(corpus.valid, L, nval, "validation");
    for (int step = 1; step <= steps; ++step)
      data::random_crops(corpus.train, B, L, seed, std::uint64_t(step),
                         crops.data() + static_cast<std::size_t>(step - 1) * B * L);
    hwm1 = status_kb("VmHWM");
    anon1 = status_kb("RssAnon");
  }
  const double peak_mib = double(hwm1 - hwm0) / 1024.0, anon_mib = double(anon1 - anon0) / 1024.0;
  MESSAGE("file " << file_mib << " MiB; growth while loading and cropping: peak resident "
                  << peak_mib << " MiB (" << std::string(reset ? "VmHWM reset" : "VmHWM not resettable")
                  << "), anonymous " << anon_mib << " MiB");
  // A copy into ints would add 2 x 256 MiB of anonymous memory (and the old id check through
  // the map made all 256 MiB resident). Reading in place adds the pages of 2 x 16 crops and 64
  // windows (2 KiB each) and what the kernel maps around each fault: a whole page-cache folio
  // (measured here, Linux 6.18 / ext4: about 300 KiB a crop), so the bound on the resident peak
  // is loose, and the anonymous memory (the copy's) is checked tightly.
  CHECK(peak_mib < file_mib / 4);
  REQUIRE(anon0 >= 0);
  REQUIRE(anon1 >= 0);
  CHECK(anon_mib < 16.0);

  // The naive reference: the file read with fread into ints, cropped by the documented rule.
  const std::vector<int> train_ref = fread_split(tmp.path, 2, counts, 0);
  std::vector<int> want(crops.size());
  for (int step = 1; step <= steps; ++step)
    data::random_crops(train_ref, B, L, seed, std::uint64_t(step),
                       want.data() + static_cast<std::size_t>(step - 1) * B * L);
  CHECK(crops == want);
  const std::vector<int> valid_ref = fread_split(tmp.path, 2, counts, 1);
  REQUIRE(val.size() == static_cast<std::size_t>(nval) * L);
  CHECK(std::equal(val.begin(), val.end(), valid_ref.begin()));
  // Not a constant stream: the crops hold many ids.
  std::vector<int> seen(256, 0);
  for (int v : crops) seen[static_cast<std::size_t>(v)] = 1;
  CHECK(std::count(seen.begin(), seen.end(), 1) == 256);
}

TEST_CASE("token file: views of uint16 and uint32 files equal the fread reference, whole and cut") {
  const std::string dir = std::filesystem::temp_directory_path().string();
  for (std::uint32_t width : {2u, 4u}) {
    CAPTURE(width);
    const std::uint32_t n = width == 2 ? 65535 : 50257 * 3;  // ids up to 0xFFFE / above 65535
    const std::uint64_t counts[3] = {5000, 777, 1001};
    TempFile tmp{dir + "/dd_view_" + std::to_string(::getpid()) + "_" + std::to_string(width) + ".tok"};
    write_by_hand(tmp.path, width, n, 0x1234, counts);
    const data::TokenFile f = data::TokenFile::open(tmp.path);
    CHECK(f.width() == width);
    for (int s = 0; s < 3; ++s) {
      CAPTURE(s);
      const std::vector<int> ref = fread_split(tmp.path, width, counts, s);
      const data::TokenView v = f.view(s);
      CHECK(v.storage() == (width == 2 ? data::TokenView::Storage::u16le : data::TokenView::Storage::u32le));
      REQUIRE(v.size() == ref.size());
      CHECK(v.to_vector() == ref);
      CHECK(f.split(s) == ref);
      bool same = true;
      for (std::size_t i = 0; i < ref.size(); ++i) same = same && v[i] == ref[i];
      CHECK(same);
      // A cut in the middle, and crops / chunks as from the vector.
      std::vector<int> part(100);
      v.copy(333, 100, part.data());
      CHECK(std::equal(part.begin(), part.end(), ref.begin() + 333));
      std::vector<int> a(8 * 50), b(8 * 50);
      data::random_crops(v, 8, 50, 3, 11, a.data());
      data::random_crops(ref, 8, 50, 3, 11, b.data());
      CHECK(a == b);
      data::eval_chunks(v, 50, 2, 8, a.data());
      data::eval_chunks(ref, 50, 2, 8, b.data());
      CHECK(a == b);
      CHECK_THROWS_AS(v.copy(ref.size() - 10, 11, part.data()), std::invalid_argument);
    }
    // The largest id is there (the width's upper range is read right).
    std::uint32_t mx = 0;
    for (int s = 0; s < 3; ++s)
      for (int x : f.split(s)) mx = std::max<std::uint32_t>(mx, static_cast<std::uint32_t>(x));
    CHECK(mx > (width == 2 ? 65000u : 65535u));
    // The view outlives the TokenFile object (it holds the mapping).
    data::TokenView kept;
    { kept = data::TokenFile::open(tmp.path).view(1); }
    CHECK(kept.to_vector() == fread_split(tmp.path, width, counts, 1));
  }
  CHECK_THROWS_AS(data::TokenView::little_endian(nullptr, nullptr, 3, 2), std::invalid_argument);
  CHECK_THROWS_AS(data::TokenView::little_endian(nullptr, "ab", 1, 3), std::invalid_argument);
}
