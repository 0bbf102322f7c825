// Training checkpoints (apps/checkpoint.hpp): bit-identical save/load/resume for md4, genmd4,
// ar, sedd (uniform) and cedd (roulette) on a tiny network, and the load-time checks: truncated
// files, corrupted header bytes (targeted edits and a deterministic sweep), wrong tensor shapes,
// unsupported or mismatched dtypes, wrong metadata, another vocabulary, non-finite parameters,
// stale temporary files of interrupted writes. Every rejection must be an io::FormatError whose
// message names the file and the problem. Files are read back independently (the 8-byte prefix
// and the JSON header parsed here with nlohmann-json) and edited at the byte or header level.
// Each case writes into its own mkdtemp directory, removed at the end.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <discdiff/core/random.hpp>
#include <discdiff/data/data.hpp>
#include <discdiff/io/safetensors.hpp>
#include <discdiff/nn/layout.hpp>

#include "checkpoint.hpp"
#include "corpus_loader.hpp"
#include "diffusion.hpp"
#include "run_config.hpp"

namespace {

using namespace discdiff;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- files

/// A fresh directory (mkdtemp under the system temporary directory), removed on destruction.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "discdiff-ckpt-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const char* p = ::mkdtemp(buf.data());
    REQUIRE_MESSAGE(p != nullptr, "mkdtemp failed for " << tmpl);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path + "/" + name; }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  REQUIRE_MESSAGE(out.good(), "cannot create " << path);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

/// Little-endian u64 read and written byte by byte (independent of the library).
std::uint64_t le_u64(const std::string& s, std::size_t at = 0) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + std::size_t(i)]);
  return v;
}
std::string le_u64_bytes(std::uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
  return s;
}

/// Offset one past the JSON header (8 + N).
std::size_t header_end(const std::string& bytes) {
  REQUIRE(bytes.size() >= 8);
  const std::uint64_t n = le_u64(bytes);
  REQUIRE(n <= bytes.size() - 8);
  return 8 + static_cast<std::size_t>(n);
}

/// The header of a file, parsed here (not by io::SafetensorsFile).
nlohmann::json raw_header(const std::string& bytes) {
  const std::size_t e = header_end(bytes);
  return nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + std::ptrdiff_t(e));
}

/// A float32 tensor of a file, read through the hand-parsed header.
std::vector<float> raw_floats(const std::string& bytes, const std::string& name) {
  const nlohmann::json h = raw_header(bytes);
  REQUIRE(h.contains(name));
  const auto& t = h.at(name);
  REQUIRE(t.at("dtype").get<std::string>() == "F32");
  const std::size_t b = t.at("data_offsets").at(0).get<std::size_t>();
  const std::size_t e = t.at("data_offsets").at(1).get<std::size_t>();
  REQUIRE(b <= e);
  REQUIRE(header_end(bytes) + e <= bytes.size());
  REQUIRE((e - b) % 4 == 0);
  std::vector<float> out((e - b) / 4);
  if (!out.empty()) std::memcpy(out.data(), bytes.data() + header_end(bytes) + b, e - b);
  return out;
}

/// Replaces the first occurrence of `from` inside the JSON header by `to` (same length, so
/// the prefix stays valid); fails the test when `from` is not in the header.
std::string patch_header(std::string bytes, const std::string& from, const std::string& to) {
  REQUIRE(from.size() == to.size());
  const std::size_t e = header_end(bytes);
  const std::size_t at = bytes.find(from, 8);
  REQUIRE_MESSAGE((at != std::string::npos && at + from.size() <= e), "'" << from << "' not in header");
  bytes.replace(at, from.size(), to);
  return bytes;
}

/// Rewrites the header through a JSON edit (the length prefix follows; the buffer is kept).
void edit_header(const std::string& path, const std::function<void(nlohmann::ordered_json&)>& edit) {
  const std::string bytes = read_bytes(path);
  const std::size_t e = header_end(bytes);
  nlohmann::ordered_json h =
      nlohmann::ordered_json::parse(bytes.begin() + 8, bytes.begin() + std::ptrdiff_t(e));
  edit(h);
  const std::string text = h.dump();
  write_bytes(path, le_u64_bytes(text.size()) + text + bytes.substr(e));
}

/// Everything in a checkpoint (metadata and float32 tensors), to rewrite it with edits through
/// io::SafetensorsWriter.
struct Contents {
  struct Tensor {
    std::string name;
    std::vector<std::int64_t> shape;
    std::vector<float> data;
  };
  std::map<std::string, std::string> meta;
  std::vector<Tensor> tensors;

  Tensor& tensor(const std::string& name) {
    for (auto& t : tensors)
      if (t.name == name) return t;
    FAIL("no tensor " << name);
    throw std::logic_error("unreachable");
  }
  void erase(const std::string& name) {
    for (auto it = tensors.begin(); it != tensors.end(); ++it)
      if (it->name == name) {
        tensors.erase(it);
        return;
      }
    FAIL("no tensor " << name);
  }
};

Contents read_contents(const std::string& path) {
  const io::SafetensorsFile f = io::SafetensorsFile::load(path);
  Contents c;
  c.meta = f.metadata();
  for (const auto& n : f.names()) {
    const auto& info = f.info(n);
    c.tensors.push_back({n, info.shape, f.read<float>(n, info.shape)});
  }
  return c;
}

/// Writes `c` to path; `as` overrides the dtype of one tensor by name (values converted).
void write_contents(const Contents& c, const std::string& path,
                    const std::map<std::string, io::Dtype>& as = {}) {
  io::SafetensorsWriter w;
  for (const auto& kv : c.meta) w.set_metadata(kv.first, kv.second);
  for (const auto& t : c.tensors) {
    const auto it = as.find(t.name);
    const io::Dtype d = it == as.end() ? io::Dtype::F32 : it->second;
    if (d == io::Dtype::F32) {
      w.add<float>(t.name, t.shape, t.data.data());
    } else if (d == io::Dtype::F64) {
      const std::vector<double> v(t.data.begin(), t.data.end());
      w.add<double>(t.name, t.shape, v.data());
    } else if (d == io::Dtype::U8) {
      // The float bytes themselves, as 4 u8 per element along one more axis.
      auto shape = t.shape;
      shape.push_back(4);
      w.add(t.name, io::Dtype::U8, shape, t.data.data(), t.data.size() * sizeof(float));
    } else {
      FAIL("write_contents: dtype not handled");
    }
  }
  w.write_atomic(path);
}

/// Runs f and requires an io::FormatError whose message contains `path` and every substring.
template <class F>
void expect_format_error(F&& f, const std::string& path, std::initializer_list<std::string> subs) {
  bool thrown = false;
  try {
    f();
  } catch (const io::FormatError& e) {
    thrown = true;
    const std::string m = e.what();
    CHECK_MESSAGE(m.find(path) != std::string::npos, "path '" << path << "' not in: " << m);
    for (const auto& s : subs)
      CHECK_MESSAGE(m.find(s) != std::string::npos, "'" << s << "' not in: " << m);
  } catch (const std::exception& e) {
    thrown = true;
    FAIL_CHECK("expected io::FormatError, got another exception: " << e.what());
  }
  CHECK_MESSAGE(thrown, "no exception (expected io::FormatError with " << path << ")");
}

void expect_load_error(const std::string& path, std::initializer_list<std::string> subs) {
  expect_format_error([&] { (void)app::load_checkpoint(path); }, path, subs);
}

// ---------------------------------------------------------------- training

/// The tiny network of every case: 1 block, d_model 16, 2 heads, cond_dim 8, L = 8, B = 2.
app::RunConfig tiny_config(const std::string& objective, const std::string& generator = "auto",
                           double dropout = 0.0, double ema = 0.999) {
  app::RunConfig c;
  c.objective = objective;
  c.generator = generator;
  c.n_layer = 1;
  c.d_model = 16;
  c.n_head = 2;
  c.cond_dim = 8;
  c.seq_len = 8;
  c.batch = 2;
  c.steps = 20;
  c.warmup = 2;
  c.dropout = dropout;
  c.ema = ema;
  c.weight_decay = 0.01;
  c.seed = 0x5eed0001u;
  c.val_sequences = 4;
  c.val_batch = 2;
  c.resolve_auto();
  c.validate();
  return c;
}

/// A short text8 token stream (a pangram repeated).
std::vector<int> short_tokens() {
  std::string text;
  for (int i = 0; i < 8; ++i) text += "the quick brown fox jumps over the lazy dog ";
  return data::Tokenizer::text8().encode(text);
}

/// Training step `step` (1-based) on random crops of `tokens`, as the train command does.
app::StepResult do_step(const app::Problem& p, app::TrainState& s, const std::vector<int>& tokens,
                        std::int64_t step) {
  const app::RunConfig& c = p.config();
  std::vector<int> x0(static_cast<std::size_t>(c.batch) * static_cast<std::size_t>(c.seq_len));
  data::random_crops(tokens, c.batch, c.seq_len, c.seed, static_cast<std::uint64_t>(step), x0.data());
  app::StepScratch sc;
  return app::train_step(p, s, sc, x0, c.batch, c.seq_len, step);
}

/// Bitwise equality of two host arrays (std::vector or host Buffer).
template <class A, class B, class = decltype(std::declval<const A&>().data())>
bool same_bits(const A& a, const B& b) {
  using T = std::remove_cv_t<std::remove_pointer_t<decltype(a.data())>>;
  return a.size() == b.size() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Bitwise equality of two training states (parameters, moments, EMA, genmd4 w, counters).
void require_same_state(const app::TrainState& a, const app::TrainState& b) {
  CHECK(same_bits(a.net->params(), b.net->params()));
  CHECK(same_bits(a.opt->first_moment(), b.opt->first_moment()));
  CHECK(same_bits(a.opt->second_moment(), b.opt->second_moment()));
  CHECK(a.opt->steps() == b.opt->steps());
  REQUIRE((a.ema == nullptr) == (b.ema == nullptr));
  if (a.ema) {
    CHECK(same_bits(a.ema->shadow(), b.ema->shadow()));
    CHECK(a.ema->updates() == b.ema->updates());
  }
  CHECK(same_bits(a.w_raw, b.w_raw));
  REQUIRE((a.w_opt == nullptr) == (b.w_opt == nullptr));
  if (a.w_opt) {
    CHECK(same_bits(a.w_opt->first_moment(), b.w_opt->first_moment()));
    CHECK(same_bits(a.w_opt->second_moment(), b.w_opt->second_moment()));
    CHECK(a.w_opt->steps() == b.w_opt->steps());
  }
  CHECK(a.step == b.step);
  CHECK(a.tokens == b.tokens);
  CHECK(same_bits(a.elapsed_s, b.elapsed_s));
}

/// A checkpoint of `cfg` after 2 training steps, saved at dir/checkpoint.safetensors.
struct Saved {
  app::RunConfig cfg;
  data::Tokenizer tok = data::Tokenizer::text8();
  std::vector<int> tokens = short_tokens();
  std::unique_ptr<app::Problem> p;
  app::TrainState s;
  std::string path;
  std::string bytes;

  /// flat: the file is rewritten in the layout before named tensors (one flat 1-D tensor each:
  /// params, adam.m, adam.v, ema), which must still load.
  Saved(const TempDir& dir, const app::RunConfig& c, bool flat = false) : cfg(c) {
    p = std::make_unique<app::Problem>(cfg, tok.num_regular());
    s = app::TrainState::fresh(*p);
    for (std::int64_t k = 1; k <= 2; ++k) do_step(*p, s, tokens, k);
    s.elapsed_s = 0.1 + 0.2;  // 17 significant digits needed
    path = dir.file("checkpoint.safetensors");
    app::save_checkpoint(path, cfg, tok, s, {{"data.description", "checkpoint unit test"}});
    if (flat) to_flat_layout(path, p->model_config());
    bytes = read_bytes(path);
  }
  /// Rewrites a named-layout checkpoint in the flat layout: for each prefix ("", "adam.m.",
  /// "adam.v.", "ema."), the tensors in slab order joined into one 1-D tensor.
  static void to_flat_layout(const std::string& file, const nn::ModelConfig& mc) {
    Contents c = read_contents(file), out;
    out.meta = c.meta;
    const nn::ParamLayout lay(mc);
    const std::pair<const char*, const char*> groups[] = {
        {"", "params"}, {"adam.m.", "adam.m"}, {"adam.v.", "adam.v"}, {"ema.", "ema"}};
    for (const auto& g : groups) {
      std::vector<float> flat;
      bool any = false;
      for (const auto& t : lay.tensors)
        for (const auto& ct : c.tensors)
          if (ct.name == g.first + t.torch_name) {
            flat.insert(flat.end(), ct.data.begin(), ct.data.end());
            any = true;
          }
      if (!any) continue;
      REQUIRE(flat.size() == lay.total);
      out.tensors.push_back({g.second, {std::int64_t(flat.size())}, flat});
    }
    for (const auto& ct : c.tensors)
      if (ct.name.rfind("w_", 0) == 0) out.tensors.push_back(ct);
    write_contents(out, file);
  }
  std::int64_t P() const { return static_cast<std::int64_t>(s.net->num_params()); }
  /// The saved file rewritten with `edit` applied to its contents, at `out`.
  std::string rewrite(const std::string& out, const std::function<void(Contents&)>& edit,
                      const std::map<std::string, io::Dtype>& as = {}) const {
    Contents c = read_contents(path);
    edit(c);
    write_contents(c, out, as);
    return out;
  }
};

// ---------------------------------------------------------------- 1. round trip

/// The slab stored as named tensors `prefix` + torch name, joined in slab order (read through
/// the hand-parsed header).
std::vector<float> raw_named_slab(const std::string& bytes, const nn::ModelConfig& mc,
                                  const std::string& prefix) {
  std::vector<float> out;
  for (const auto& t : nn::ParamLayout(mc).tensors) {
    const auto v = raw_floats(bytes, prefix + t.torch_name);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

void round_trip_case(const app::RunConfig& cfg, bool flat = false) {
  TempDir dir;
  Saved sv(dir, cfg, flat);
  app::TrainState& s = sv.s;
  const nn::ModelConfig mc = sv.p->model_config();
  auto stored = [&](const std::string& prefix, const std::string& flat_name) {
    return flat ? raw_floats(sv.bytes, flat_name) : raw_named_slab(sv.bytes, mc, prefix);
  };

  // The file as written, read here: format, counters, and the parameter bytes.
  const nlohmann::json h = raw_header(sv.bytes);
  const auto& m = h.at("__metadata__");
  CHECK(m.at("format").get<std::string>() == "discdiff-checkpoint");
  CHECK(m.at("format_version").get<std::string>() == "1");
  CHECK(m.at("step").get<std::string>() == "2");
  CHECK(m.at("tokens").get<std::string>() == std::to_string(2 * cfg.batch * cfg.seq_len));
  CHECK(m.at("tokenizer").get<std::string>() == "text8");
  CHECK(m.at("cfg.objective").get<std::string>() == cfg.objective);
  CHECK(m.at("data.description").get<std::string>() == "checkpoint unit test");
  CHECK(same_bits(stored("", "params"), s.net->params()));
  CHECK(same_bits(stored("adam.m.", "adam.m"), s.opt->first_moment()));
  CHECK(same_bits(stored("adam.v.", "adam.v"), s.opt->second_moment()));
  CHECK(h.contains(flat ? "ema" : "ema.vocab_embed.embedding") == (cfg.ema > 0));
  CHECK(h.contains("w_raw") == (cfg.objective == "genmd4"));
  if (s.ema) CHECK(same_bits(stored("ema.", "ema"), s.ema->shadow()));
  if (!flat) {
    // The upstream DDiT names and shapes, written out here (tiny_config: 1 block, d 16,
    // cond_dim 8, d_ff 64; text8: N = 27, V_in = 28).
    CHECK_FALSE(h.contains("params"));
    const std::int64_t vin = 28, vout = mc.vocab_out;
    std::map<std::string, std::vector<std::int64_t>> want = {
        {"vocab_embed.embedding", {vin, 16}},
        {"blocks.0.norm1.weight", {16}},
        {"blocks.0.attn_qkv.weight", {48, 16}},
        {"blocks.0.attn_out.weight", {16, 16}},
        {"blocks.0.norm2.weight", {16}},
        {"blocks.0.mlp.0.weight", {64, 16}},
        {"blocks.0.mlp.0.bias", {64}},
        {"blocks.0.mlp.2.weight", {16, 64}},
        {"blocks.0.mlp.2.bias", {16}},
        {"output_layer.norm_final.weight", {16}},
        {"output_layer.linear.weight", {vout, 16}},
        {"output_layer.linear.bias", {vout}}};
    if (mc.time_cond) {
      want["sigma_map.mlp.0.weight"] = {8, 16};
      want["sigma_map.mlp.0.bias"] = {8};
      want["sigma_map.mlp.2.weight"] = {8, 8};
      want["sigma_map.mlp.2.bias"] = {8};
      want["blocks.0.adaLN_modulation.weight"] = {96, 8};
      want["blocks.0.adaLN_modulation.bias"] = {96};
      want["output_layer.adaLN_modulation.weight"] = {32, 8};
      want["output_layer.adaLN_modulation.bias"] = {32};
    }
    std::size_t network = 0;
    for (const auto& kv : h.items()) {
      const std::string& k = kv.key();
      if (k == "__metadata__" || k.rfind("adam.", 0) == 0 || k.rfind("ema.", 0) == 0 ||
          k.rfind("w_", 0) == 0)
        continue;
      ++network;
      CAPTURE(k);
      REQUIRE(want.count(k) == 1);
      CHECK(kv.value().at("shape").get<std::vector<std::int64_t>>() == want.at(k));
    }
    CHECK(network == want.size());
  }
  if (!s.w_raw.empty()) CHECK(same_bits(raw_floats(sv.bytes, "w_raw"), s.w_raw));
  // An atomic write leaves no temporary file behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    ++entries;
    CHECK(e.path().filename() == "checkpoint.safetensors");
  }
  CHECK(entries == 1);

  // Two steps changed the state (so the comparisons below are not about a fresh network).
  const app::TrainState fresh = app::TrainState::fresh(*sv.p);
  CHECK_FALSE(same_bits(fresh.net->params(), s.net->params()));
  CHECK(s.opt->steps() == 2);
  CHECK(s.step == 2);

  app::Checkpoint ck = app::load_checkpoint(sv.path);
  CHECK(ck.cfg.to_map() == cfg.to_map());
  CHECK(ck.tokenizer == sv.tok);
  CHECK(ck.meta.at("data.description") == "checkpoint unit test");
  CHECK(ck.meta.at("rng.seed") == std::to_string(cfg.seed));
  require_same_state(s, ck.state);

  // Resume: steps 3 and 4 on the loaded state equal steps 3 and 4 of the uninterrupted run.
  const app::Problem p2(ck.cfg, ck.tokenizer.num_regular());
  for (std::int64_t k = 3; k <= 4; ++k) {
    const app::StepResult a = do_step(*sv.p, s, sv.tokens, k);
    const app::StepResult b = do_step(p2, ck.state, sv.tokens, k);
    CHECK(same_bits(a.loss_per_token, b.loss_per_token));
    CHECK(same_bits(a.grad_norm, b.grad_norm));
    CHECK(same_bits(a.lr, b.lr));
    CHECK(std::isfinite(a.loss_per_token));
  }
  require_same_state(s, ck.state);

  // Save again over the old file (the resumed run's next checkpoint): loads as the new state.
  app::save_checkpoint(sv.path, ck.cfg, ck.tokenizer, ck.state, {});
  const app::Checkpoint again = app::load_checkpoint(sv.path);
  CHECK(again.state.step == 4);
  require_same_state(s, again.state);
}

// A 2-step state of the md4 tiny network, shared by the error cases.
app::RunConfig md4_cfg() { return tiny_config("md4"); }

}  // namespace

TEST_CASE("checkpoint: round trip and bit-identical resume") {
  SUBCASE("md4") { round_trip_case(tiny_config("md4")); }
  SUBCASE("genmd4") { round_trip_case(tiny_config("genmd4")); }
  SUBCASE("ar, no EMA, dropout") { round_trip_case(tiny_config("ar", "auto", 0.1, 0.0)); }
  SUBCASE("sedd uniform, dropout") { round_trip_case(tiny_config("sedd", "uniform", 0.1)); }
  SUBCASE("cedd roulette") { round_trip_case(tiny_config("cedd", "roulette")); }
  SUBCASE("flat layout (old checkpoints): md4") { round_trip_case(tiny_config("md4"), true); }
  SUBCASE("flat layout (old checkpoints): genmd4") { round_trip_case(tiny_config("genmd4"), true); }
  SUBCASE("flat layout (old checkpoints): ar, no EMA") {
    round_trip_case(tiny_config("ar", "auto", 0.1, 0.0), true);
  }
}

TEST_CASE("checkpoint: missing file and directory are FormatErrors naming the path") {
  TempDir dir;
  expect_load_error(dir.file("nope.safetensors"), {"cannot open"});
  expect_load_error(dir.path, {"read error"});
}

// ---------------------------------------------------------------- 2. truncation

TEST_CASE("checkpoint: truncated files are rejected") {
  TempDir dir;
  Saved sv(dir, md4_cfg());
  const std::size_t size = sv.bytes.size(), he = header_end(sv.bytes);
  REQUIRE(he > 100);
  REQUIRE(size > he + 8);
  const std::string cut = dir.file("cut.safetensors");
  struct Len {
    std::size_t n;
    const char* why;
  };
  const Len named[] = {{0, "fewer than the 8-byte"},
                       {7, "fewer than the 8-byte"},
                       {8, "exceeds the 0 bytes after the 8-byte prefix"},
                       {100, "exceeds the 92 bytes"},
                       {he - 1, "exceeds the"},
                       {he, "beyond the byte buffer"},
                       {he + (size - he) / 2, "beyond the byte buffer"},
                       {size / 2, ""},
                       {size - 1, "beyond the byte buffer"}};
  for (const Len& l : named) {
    CAPTURE(l.n);
    write_bytes(cut, sv.bytes.substr(0, l.n));
    expect_load_error(cut, {std::string(l.why)});
  }
  // The last truncation names the buffer size that is left.
  write_bytes(cut, sv.bytes.substr(0, size - 1));
  expect_load_error(cut, {"of " + std::to_string(size - he - 1) + " bytes"});
  // A sweep over lengths: every proper prefix is rejected, none crashes.
  const std::size_t stride = size / 150 + 1;
  for (std::size_t n = 0; n < size; n += stride) {
    CAPTURE(n);
    write_bytes(cut, sv.bytes.substr(0, n));
    expect_load_error(cut, {});
  }
  // Sanity: the full file still loads.
  write_bytes(cut, sv.bytes);
  CHECK(app::load_checkpoint(cut).state.step == 2);
}

// ---------------------------------------------------------------- 3. corrupted header

TEST_CASE("checkpoint: corrupted header bytes are rejected") {
  TempDir dir;
  Saved sv(dir, md4_cfg(), true);  // the flat layout (old checkpoints)
  const std::string bad = dir.file("bad.safetensors");
  const std::int64_t P = sv.P();
  const std::string params_entry = "\"params\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(P) +
                                   "],\"data_offsets\":[";
  REQUIRE(sv.bytes.find(params_entry) < header_end(sv.bytes));

  SUBCASE("a digit of a data offset") {
    // The end offset of "params" ([b, e]): change its last digit, keeping the length.
    const std::size_t at = sv.bytes.find(params_entry) + params_entry.size();
    const std::size_t comma = sv.bytes.find(',', at), close = sv.bytes.find(']', at);
    REQUIRE(comma < close);
    const std::string end_digits = sv.bytes.substr(comma + 1, close - comma - 1);
    std::string bytes = sv.bytes;
    char& d = bytes[close - 1];
    d = d == '9' ? '8' : char(d + 1);
    write_bytes(bad, bytes);
    expect_load_error(bad, {"'params'", "data_offsets", "span"});
    // The first digit of the begin offset of the next tensor ("adam.m" starts at 4 P).
    const std::string adam = "\"adam.m\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(P) +
                             "],\"data_offsets\":[" + end_digits + ",";
    REQUIRE(sv.bytes.find(adam) < header_end(sv.bytes));
    bytes = sv.bytes;
    char& b0 = bytes[sv.bytes.find(adam) + adam.size() - 1 - end_digits.size()];
    b0 = b0 == '1' ? '2' : '1';
    write_bytes(bad, bytes);
    expect_load_error(bad, {"'adam.m'"});
  }
  SUBCASE("the dtype string") {
    write_bytes(bad, patch_header(sv.bytes, "\"dtype\":\"F32\"", "\"dtype\":\"F31\""));
    expect_load_error(bad, {"unknown dtype 'F31'", "'params'"});
    // Same element size, valid file, wrong type for a checkpoint.
    write_bytes(bad, patch_header(sv.bytes, "\"dtype\":\"F32\"", "\"dtype\":\"I32\""));
    expect_load_error(bad, {"'params'", "has dtype I32", "F32 was requested"});
    // An unterminated string: the quote after the dtype replaced.
    write_bytes(bad, patch_header(sv.bytes, "\"F32\",", "\"F32 ,"));
    expect_load_error(bad, {"not valid JSON"});
  }
  SUBCASE("braces") {
    std::string bytes = sv.bytes;
    bytes[8] = '[';
    write_bytes(bad, bytes);
    expect_load_error(bad, {"does not start with '{'"});
    // The closing brace of the header (last non-space byte before the buffer).
    bytes = sv.bytes;
    std::size_t last = header_end(bytes) - 1;
    while (bytes[last] == ' ') --last;
    REQUIRE(bytes[last] == '}');
    bytes[last] = ' ';
    write_bytes(bad, bytes);
    expect_load_error(bad, {"not valid JSON"});
    // The brace that opens the params entry.
    write_bytes(bad, patch_header(sv.bytes, "\"params\":{", "\"params\":["));
    expect_load_error(bad, {"not valid JSON"});
  }
  SUBCASE("the length prefix") {
    std::string bytes = sv.bytes;
    bytes[7] = '\x01';  // N + 2^56: beyond the file and the 100 MB limit
    write_bytes(bad, bytes);
    expect_load_error(bad, {"header length"});
    // N - 1: the last header byte becomes the first buffer byte.
    bytes = le_u64_bytes(le_u64(sv.bytes) - 1) + sv.bytes.substr(8);
    write_bytes(bad, bytes);
    expect_load_error(bad, {});
    // N + 1: the first buffer byte joins the header.
    bytes = le_u64_bytes(le_u64(sv.bytes) + 1) + sv.bytes.substr(8);
    write_bytes(bad, bytes);
    expect_load_error(bad, {});
  }
  SUBCASE("a sweep of single-byte edits never crashes") {
    // Every header byte in turn (with a stride) replaced by a byte drawn from a counter RNG;
    // the result is either a loadable checkpoint or a FormatError naming the file.
    const std::size_t he = header_end(sv.bytes);
    const std::size_t stride = he / 400 + 1;
    int rejected = 0, loaded = 0;
    for (std::size_t i = 8; i < he; i += stride) {
      CounterRng rng(0xC0FFEEu, 7u, i);
      static const char pool[] = {'0', '9', '}', '{', '"', ' ', ',', ':', 'x', '\\', '\x01', '\xff'};
      std::string bytes = sv.bytes;
      char c = pool[rng.uniform_int(sizeof pool)];
      if (c == bytes[i]) c = 'x' == c ? 'y' : 'x';
      bytes[i] = c;
      CAPTURE(i);
      CAPTURE(int(static_cast<unsigned char>(c)));
      write_bytes(bad, bytes);
      try {
        const app::Checkpoint ck = app::load_checkpoint(bad);
        ++loaded;
        CHECK(ck.state.net->num_params() == sv.s.net->num_params());
      } catch (const io::FormatError& e) {
        ++rejected;
        CHECK(std::string(e.what()).find(bad) != std::string::npos);
      } catch (const std::exception& e) {
        FAIL_CHECK("not a FormatError: " << e.what());
      }
    }
    CHECK(rejected > loaded);
  }
}

// ---------------------------------------------------------------- 4. shapes

TEST_CASE("checkpoint: wrong tensor shapes and missing tensors are rejected") {
  TempDir dir;
  Saved sv(dir, md4_cfg(), true);  // the flat layout (old checkpoints)
  const std::int64_t P = sv.P();
  const std::string bad = dir.file("bad.safetensors");
  const std::string sP = std::to_string(P), sP1 = std::to_string(P - 1);

  // Control: a rewrite without edits loads to the same state.
  sv.rewrite(bad, [](Contents&) {});
  require_same_state(sv.s, app::load_checkpoint(bad).state);

  sv.rewrite(bad, [&](Contents& c) {
    auto& t = c.tensor("params");
    t.data.pop_back();
    t.shape = {P - 1};
  });
  expect_load_error(bad, {"'params'", "shape [" + sP1 + "]", "[" + sP + "] was expected"});

  sv.rewrite(bad, [&](Contents& c) { c.tensor("adam.m").shape = {P, 1}; });
  expect_load_error(bad, {"'adam.m'", "shape [" + sP + ", 1]", "[" + sP + "] was expected"});

  sv.rewrite(bad, [&](Contents& c) {
    auto& t = c.tensor("adam.v");
    t.data.push_back(0.0f);
    t.shape = {P + 1};
  });
  expect_load_error(bad, {"'adam.v'", "shape [" + std::to_string(P + 1) + "]"});

  sv.rewrite(bad, [&](Contents& c) { c.tensor("ema").shape = {1, P}; });
  expect_load_error(bad, {"'ema'", "shape [1, " + sP + "]"});

  sv.rewrite(bad, [&](Contents& c) { c.erase("adam.v"); });
  expect_load_error(bad, {"no tensor named 'adam.v'"});

  sv.rewrite(bad, [&](Contents& c) { c.erase("ema"); });
  expect_load_error(bad, {"tensor 'ema' is missing", "--ema"});

  SUBCASE("genmd4: w_raw and its moments") {
    TempDir d2;
    Saved g(d2, tiny_config("genmd4"));
    const std::string gb = d2.file("bad.safetensors");
    const std::string N = std::to_string(g.tok.num_regular());
    g.rewrite(gb, [&](Contents& c) {
      auto& t = c.tensor("w_raw");
      t.data.pop_back();
      t.shape = {std::int64_t(t.data.size())};
    });
    expect_load_error(gb, {"'w_raw'", "[" + N + "] was expected"});
    g.rewrite(gb, [&](Contents& c) { c.erase("w_adam.v"); });
    expect_load_error(gb, {"no tensor named 'w_adam.v'"});
  }
}

// ---------------------------------------------------------------- 5. dtypes

TEST_CASE("checkpoint: unsupported and mismatched dtypes are rejected") {
  TempDir dir;
  Saved sv(dir, md4_cfg(), true);  // the flat layout (old checkpoints)
  const std::int64_t P = sv.P();
  const std::string bad = dir.file("bad.safetensors");

  // BF16: a dtype of the format that the library does not read. The header is edited as JSON
  // (dtype BF16, shape [2 P]: the same 4 P bytes), the buffer kept.
  write_bytes(bad, sv.bytes);
  edit_header(bad, [&](nlohmann::ordered_json& h) {
    h["params"]["dtype"] = "BF16";
    h["params"]["shape"] = nlohmann::ordered_json::array({2 * P});
  });
  CHECK(raw_header(read_bytes(bad)).at("params").at("dtype") == "BF16");
  expect_load_error(bad, {"unsupported dtype 'BF16'", "'params'"});

  // F16 on an optimiser moment.
  write_bytes(bad, sv.bytes);
  edit_header(bad, [&](nlohmann::ordered_json& h) {
    h["adam.v"]["dtype"] = "F16";
    h["adam.v"]["shape"] = nlohmann::ordered_json::array({2 * P});
  });
  expect_load_error(bad, {"unsupported dtype 'F16'", "'adam.v'"});

  // Supported dtypes in the wrong place: the float bytes as U8 [P, 4], the values as F64 [P].
  sv.rewrite(bad, [](Contents&) {}, {{"params", io::Dtype::U8}});
  expect_load_error(bad, {"'params'", "has dtype U8", "F32 was requested"});
  sv.rewrite(bad, [](Contents&) {}, {{"adam.m", io::Dtype::F64}});
  expect_load_error(bad, {"'adam.m'", "has dtype F64", "F32 was requested"});
}

// ---------------------------------------------------------------- 6. metadata

TEST_CASE("checkpoint: wrong metadata is rejected") {
  TempDir dir;
  Saved sv(dir, md4_cfg());
  const std::string bad = dir.file("bad.safetensors");
  auto with = [&](const std::string& key, const std::string& value) {
    sv.rewrite(bad, [&](Contents& c) {
      REQUIRE(c.meta.count(key) == 1);
      c.meta[key] = value;
    });
  };
  auto without = [&](const std::string& key) {
    sv.rewrite(bad, [&](Contents& c) { REQUIRE(c.meta.erase(key) == 1); });
  };

  SUBCASE("format") {
    without("format");
    expect_load_error(bad, {"not a discdiff checkpoint", "'format' is missing"});
    with("format", "other");
    expect_load_error(bad, {"not a discdiff checkpoint", "'other'"});
    // A plain safetensors file without metadata.
    io::SafetensorsWriter w;
    const float x[2] = {1.0f, 2.0f};
    w.add<float>("params", {2}, x);
    w.write_atomic(bad);
    expect_load_error(bad, {"not a discdiff checkpoint", "missing"});
  }
  SUBCASE("format_version") {
    with("format_version", "2");
    expect_load_error(bad, {"format version '2' is not supported", "reads 1"});
    without("format_version");
    expect_load_error(bad, {"no metadata key 'format_version'"});
  }
  SUBCASE("model shape differs from the config") {
    with("model.d_model", "32");
    expect_load_error(bad, {"does not match", "d_model", "32"});
    with("model.vocab_out", "28");
    expect_load_error(bad, {"does not match", "vocab_out"});
    with("model.n_layer", "x");
    expect_load_error(bad, {"metadata 'model.n_layer' = 'x' is not a non-negative integer"});
    without("model.seq_len");
    expect_load_error(bad, {"no metadata key 'model.seq_len'"});
    // The config changed instead of the stored network: the rebuilt network differs.
    with("cfg.d_model", "32");
    expect_load_error(bad, {"does not match", "d_model"});
    with("cfg.n_layer", "2");
    expect_load_error(bad, {"does not match", "n_layer"});
  }
  SUBCASE("block type, norm_eps, rope_base (issue 13)") {
    const Contents c = read_contents(sv.path);
    CHECK(c.meta.at("model.norm_eps") == "1e-05");
    CHECK(c.meta.at("model.rope_base") == "10000");
    CHECK(c.meta.at("model.temb_dim") == std::to_string(2 * sv.cfg.cond_dim));
    CHECK(c.meta.at("model.time_cond") == "1");
    CHECK(c.meta.at("model.zero_time") == "0");
    CHECK(c.meta.at("cfg.block") == "adaln");
    with("model.norm_eps", "1e-06");
    expect_load_error(bad, {"'model.norm_eps' = 1e-06", "network has 1e-05"});
    with("model.rope_base", "12345.5");
    expect_load_error(bad, {"'model.rope_base' = 12345.5", "network has 10000"});
    with("model.rope_base", "abc");
    expect_load_error(bad, {"'model.rope_base' = 'abc' is not a finite number"});
    with("model.zero_time", "1");
    expect_load_error(bad, {"does not match", "zero_time"});
    with("cfg.block", "plain");
    expect_load_error(bad, {"invalid stored configuration", "use it with --time-cond 0"});
    // files written before these keys existed: the values of the program that wrote them
    for (const char* key : {"model.norm_eps", "model.rope_base", "model.zero_time", "cfg.block"}) {
      CAPTURE(key);
      without(key);
      CHECK_NOTHROW((void)app::load_checkpoint(bad));
    }
  }
  SUBCASE("without cfg.block, --time-cond 0 means plain blocks (files before --block)") {
    app::RunConfig nt = md4_cfg();
    nt.time_cond = 0;
    TempDir d2;
    Saved z(d2, nt);  // adaLN-zero on sbar = 0
    const app::Checkpoint ck = app::load_checkpoint(z.path);
    CHECK(ck.state.net->config().time_cond);
    CHECK(ck.state.net->config().zero_time);
    const std::string old = d2.file("old.safetensors");
    z.rewrite(old, [&](Contents& c) { REQUIRE(c.meta.erase("cfg.block") == 1); });
    expect_load_error(old, {"does not match", "time_cond"});
    nt.block = "plain";
    TempDir d3;
    Saved pl(d3, nt);
    const std::string old2 = d3.file("old.safetensors");
    pl.rewrite(old2, [&](Contents& c) {
      for (const char* k : {"cfg.block", "model.zero_time", "model.norm_eps", "model.rope_base"})
        REQUIRE(c.meta.erase(k) == 1);
    });
    const app::Checkpoint ck2 = app::load_checkpoint(old2);
    CHECK_FALSE(ck2.state.net->config().time_cond);
    CHECK(ck2.cfg.block == "plain");
    CHECK(ck2.state.net->params_host() == pl.s.net->params_host());
  }
  SUBCASE("invalid stored options") {
    with("cfg.objective", "foo");
    expect_load_error(bad, {"invalid stored configuration", "--objective = foo"});
    with("cfg.lr", "abc");
    expect_load_error(bad, {"invalid stored configuration", "'cfg.lr'", "--lr = abc"});
    with("cfg.lr", "-1");
    expect_load_error(bad, {"invalid stored configuration", "--lr = -1"});
    with("cfg.generator", "uniform");
    expect_load_error(bad, {"invalid stored configuration", "md4 needs the absorbing generator"});
    with("cfg.n_layer", "1.5");
    expect_load_error(bad, {"invalid stored configuration", "'cfg.n_layer'", "--n-layer = 1.5"});
  }
  SUBCASE("tokenizer") {
    with("tokenizer", "chars:zz");
    expect_load_error(bad, {"invalid stored configuration", "chars:zz", "non-hex"});
    with("tokenizer", "chars:616");
    expect_load_error(bad, {"invalid stored configuration", "odd number of hex digits"});
    with("tokenizer", "words");
    expect_load_error(bad, {"invalid stored configuration", "unknown kind"});
    without("tokenizer");
    expect_load_error(bad, {"no metadata key 'tokenizer'"});
  }
  SUBCASE("counters") {
    for (const char* v : {"-3", "abc", "", "3x", "99999999999999999999999"}) {
      CAPTURE(v);
      with("step", v);
      expect_load_error(bad, {"metadata 'step' = '" + std::string(v) + "'", "non-negative integer"});
    }
    with("adam_steps", "-1");
    expect_load_error(bad, {"'adam_steps' = '-1'", "non-negative integer"});
    with("ema_updates", "1e3");
    expect_load_error(bad, {"'ema_updates' = '1e3'"});
    with("tokens", "-32");
    expect_load_error(bad, {"'tokens' = '-32'"});
    without("adam_steps");
    expect_load_error(bad, {"no metadata key 'adam_steps'"});
    with("elapsed_s", "abc");
    expect_load_error(bad, {"metadata 'elapsed_s' = 'abc' is not a finite non-negative number"});
  }
}

// ---------------------------------------------------------------- 7. vocabulary

TEST_CASE("checkpoint: another vocabulary") {
  TempDir dir;
  Saved sv(dir, md4_cfg());
  const app::Checkpoint ck = app::load_checkpoint(sv.path);
  REQUIRE(ck.tokenizer == data::Tokenizer::text8());

  // Text outside a-z and space does not fit the stored text8 vocabulary.
  std::string text;
  while (text.size() < 2000) text += "Hello, World ";
  const std::string hello = dir.file("hello.txt");
  write_bytes(hello, text);
  bool thrown = false;
  try {
    (void)app::load_corpus(ck.cfg, &ck.tokenizer, hello);
  } catch (const std::invalid_argument& e) {
    thrown = true;
    const std::string m = e.what();
    CHECK_MESSAGE(m.find("train split") != std::string::npos, m);
    CHECK_MESSAGE(m.find(hello) != std::string::npos, m);
    CHECK_MESSAGE(m.find("'H'") != std::string::npos, m);
    CHECK_MESSAGE(m.find("text8") != std::string::npos, m);
  }
  CHECK(thrown);

  // Control: lower-case text fits and encodes as a -> 0 .. z -> 25, space -> 26.
  std::string lower;
  while (lower.size() < 2000) lower += "hello world ";
  const std::string lp = dir.file("lower.txt");
  write_bytes(lp, lower);
  const app::Corpus corpus = app::load_corpus(ck.cfg, &ck.tokenizer, lp);
  CHECK(corpus.tokenizer == ck.tokenizer);
  const std::size_t a = lower.size() * 90 / 100;
  REQUIRE(corpus.train.size() == a);
  for (std::size_t i = 0; i < a; ++i) {
    const int want = lower[i] == ' ' ? 26 : lower[i] - 'a';
    if (corpus.train[i] != want) {
      FAIL_CHECK("token " << i << " is " << corpus.train[i] << ", want " << want);
      break;
    }
  }

  // The synthetic source only has the text8 vocabulary.
  const data::Tokenizer bytes_tok = data::Tokenizer::bytes();
  CHECK_THROWS_WITH_AS(app::load_corpus(ck.cfg, &bytes_tok, "synthetic"),
                       doctest::Contains("synthetic source has the text8 vocabulary"),
                       std::invalid_argument);

  // A tokenizer of another size in the metadata: the stored network no longer matches.
  const std::string bad = dir.file("bad.safetensors");
  for (const std::string t : {"bytes", "chars:6162"}) {
    CAPTURE(t);
    sv.rewrite(bad, [&](Contents& c) { c.meta["tokenizer"] = t; });
    expect_load_error(bad, {"does not match", "vocab_in"});
  }
}

// ---------------------------------------------------------------- 8. non-finite values

TEST_CASE("checkpoint: non-finite parameters are rejected") {
  TempDir dir;
  Saved sv(dir, md4_cfg(), true);  // the flat layout (old checkpoints)
  const std::string bad = dir.file("bad.safetensors");
  const float values[] = {std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()};
  for (float v : values) {
    CAPTURE(v);
    for (std::size_t at : {std::size_t(0), std::size_t(sv.P() / 2), std::size_t(sv.P() - 1)}) {
      CAPTURE(at);
      sv.rewrite(bad, [&](Contents& c) { c.tensor("params").data[at] = v; });
      expect_load_error(bad, {"tensor 'params' holds a non-finite value"});
    }
  }
  SUBCASE("genmd4 w_raw") {
    TempDir d2;
    Saved g(d2, tiny_config("genmd4"));
    const std::string gb = d2.file("bad.safetensors");
    g.rewrite(gb, [&](Contents& c) { c.tensor("w_raw").data[1] = values[0]; });
    expect_load_error(gb, {"tensor 'w_raw' holds a non-finite value"});
  }
}

// Not yet enforced by load_checkpoint (see the report of this file's author): a NaN or an
// infinity in the AdamW moments, the EMA shadow or the genmd4 w moments, or a negative second
// moment, would make the first resumed AdamW step write NaN into the parameters (sqrt of a
// negative v), or every evaluation of the EMA network NaN; load_checkpoint rejects them.
TEST_CASE("checkpoint: non-finite optimiser moments and EMA are rejected") {
  TempDir dir;
  Saved sv(dir, md4_cfg(), true);  // the flat layout (old checkpoints)
  const std::string bad = dir.file("bad.safetensors");
  for (const std::string name : {"adam.m", "adam.v", "ema"}) {
    CAPTURE(name);
    sv.rewrite(bad, [&](Contents& c) {
      c.tensor(name).data[3] = std::numeric_limits<float>::quiet_NaN();
    });
    expect_load_error(bad, {"'" + name + "'", "non-finite"});
  }
  sv.rewrite(bad, [&](Contents& c) { c.tensor("adam.v").data[3] = -1.0f; });
  expect_load_error(bad, {"'adam.v'", "negative"});
}

// Partly numeric values ("1abc"), NaN, unsigned options given as negative numbers (which
// operator>> would wrap to 2^64 - 3), and optimiser / EMA counters inconsistent with the step
// (a resumed run would use other bias corrections than the uninterrupted one) are rejected.
TEST_CASE("checkpoint: partly numeric, wrapped and inconsistent metadata are rejected") {
  TempDir dir;
  Saved sv(dir, md4_cfg());
  const std::string bad = dir.file("bad.safetensors");
  const std::pair<const char*, const char*> cases[] = {
      {"elapsed_s", "1abc"}, {"elapsed_s", "nan"},   {"elapsed_s", "-5"},
      {"cfg.seed", "-3"},    {"cfg.markov_seed", "-1"}, {"adam_steps", "7"},
      {"ema_updates", "0"},  {"rng.seed", "42"}};
  for (const auto& kv : cases) {
    CAPTURE(std::string(kv.first));
    CAPTURE(std::string(kv.second));
    sv.rewrite(bad, [&](Contents& c) { c.meta[kv.first] = kv.second; });
    expect_load_error(bad, {kv.first});
  }
}

// ---------------------------------------------------------------- 9. stale temporary files

TEST_CASE("checkpoint: stale temporary files do not affect load or save") {
  TempDir dir;
  Saved sv(dir, md4_cfg());
  // A leftover of a writer killed before its rename (another pid): garbage, and a truncated
  // copy of the real file.
  const std::string stale = sv.path + ".tmp.999";
  write_bytes(stale, "garbage that is not a checkpoint");
  require_same_state(sv.s, app::load_checkpoint(sv.path).state);
  write_bytes(stale, sv.bytes.substr(0, sv.bytes.size() / 2));
  require_same_state(sv.s, app::load_checkpoint(sv.path).state);
  expect_load_error(stale, {});

  // A stale temporary with this process's pid is replaced by the next save, which then loads.
  const std::string mine = sv.path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  write_bytes(mine, "an earlier process with our pid died here");
  do_step(*sv.p, sv.s, sv.tokens, 3);
  app::save_checkpoint(sv.path, sv.cfg, sv.tok, sv.s, {});
  CHECK_FALSE(fs::exists(mine));
  const app::Checkpoint ck = app::load_checkpoint(sv.path);
  CHECK(ck.state.step == 3);
  require_same_state(sv.s, ck.state);
  CHECK(fs::exists(stale));  // not this process's file: left alone
}

// ---------------------------------------------------------------- 10. the named layout

TEST_CASE("checkpoint: named tensors: shapes, missing, unexpected and non-finite entries") {
  TempDir dir;
  Saved sv(dir, md4_cfg());
  const std::string bad = dir.file("bad.safetensors");
  // Control: a rewrite without edits loads to the same state.
  sv.rewrite(bad, [](Contents&) {});
  require_same_state(sv.s, app::load_checkpoint(bad).state);

  sv.rewrite(bad, [&](Contents& c) { c.tensor("blocks.0.attn_qkv.weight").shape = {16, 48}; });
  expect_load_error(bad, {"'blocks.0.attn_qkv.weight'", "shape [16, 48]", "[48, 16] was expected"});
  sv.rewrite(bad, [&](Contents& c) { c.tensor("adam.v.output_layer.linear.bias").shape = {1, 27}; });
  expect_load_error(bad, {"'adam.v.output_layer.linear.bias'", "[27] was expected"});
  sv.rewrite(bad, [&](Contents& c) { c.erase("adam.m.blocks.0.mlp.2.bias"); });
  expect_load_error(bad, {"'adam.m.blocks.0.mlp.2.bias' is missing"});
  sv.rewrite(bad, [&](Contents& c) { c.erase("ema.vocab_embed.embedding"); });
  expect_load_error(bad, {"'ema.vocab_embed.embedding' is missing", "--ema"});
  sv.rewrite(bad, [&](Contents& c) { c.erase("ema.output_layer.linear.bias"); });
  expect_load_error(bad, {"'ema.output_layer.linear.bias' is missing"});
  sv.rewrite(bad, [&](Contents& c) { c.tensors.push_back({"rotary_emb.inv_freq", {4}, {1, 2, 3, 4}}); });
  expect_load_error(bad, {"unexpected tensor 'rotary_emb.inv_freq'"});
  sv.rewrite(bad, [&](Contents& c) {
    c.tensor("sigma_map.mlp.2.weight").data[5] = std::numeric_limits<float>::infinity();
  });
  expect_load_error(bad, {"tensor 'sigma_map.mlp.2.weight' holds a non-finite value at index 5"});
  sv.rewrite(bad, [&](Contents& c) { c.tensor("adam.v.blocks.0.norm1.weight").data[2] = -1.0f; });
  expect_load_error(bad, {"'adam.v.blocks.0.norm1.weight'", "negative value at index 2"});
}
