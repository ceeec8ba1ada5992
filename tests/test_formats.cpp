// GGUF, safetensors and atomic writes: the shared stories260K GGUF against the llama2.c
// checkpoint, round trips, F16/BF16/Q8_0 decoding, and bad files that must be rejected clearly.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <unistd.h>

#include "formats/atomic_file.hpp"
#include "formats/byte_cursor.hpp"
#include "formats/gguf.hpp"
#include "formats/llama2c.hpp"
#include "formats/safetensors.hpp"
#include "model/llama.hpp"
#include "model/load_model.hpp"
#include "support.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace hyplora::formats;
using hyplora::llm::ModelWeights;
using hyplora::llm::Tokenizer;
using hyplora::test::require_shared;
using hyplora::test::slurp;
using hyplora::test::TempDir;

namespace {

void require_same_weights(const ModelWeights& a, const ModelWeights& b) {
  const auto& ca = a.config;
  const auto& cb = b.config;
  CHECK(ca.dim == cb.dim);
  CHECK(ca.hidden_dim == cb.hidden_dim);
  CHECK(ca.n_layers == cb.n_layers);
  CHECK(ca.n_heads == cb.n_heads);
  CHECK(ca.n_kv_heads == cb.n_kv_heads);
  CHECK(ca.vocab_size == cb.vocab_size);
  CHECK(ca.seq_len == cb.seq_len);
  CHECK(ca.shared_classifier == cb.shared_classifier);
  CHECK(ca.rope_theta == cb.rope_theta);
  CHECK(ca.norm_eps == cb.norm_eps);
  std::vector<std::pair<std::string, const std::vector<float>*>> ta, tb;
  a.for_each_tensor([&](const char* n, const std::vector<float>& v) { ta.emplace_back(n, &v); });
  b.for_each_tensor([&](const char* n, const std::vector<float>& v) { tb.emplace_back(n, &v); });
  REQUIRE(ta.size() == tb.size());
  for (std::size_t k = 0; k < ta.size(); ++k) {
    INFO("tensor " << ta[k].first);
    REQUIRE(ta[k].second->size() == tb[k].second->size());
    // float-by-float, bit for bit
    CHECK(std::memcmp(ta[k].second->data(), tb[k].second->data(), ta[k].second->size() * 4) == 0);
  }
}

template <class F>
void expect_format_error(F&& f, const std::string& needle, const std::string& file = "") {
  INFO("expecting: " << needle);
  try {
    f();
    FAIL("no exception");
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(needle) != std::string::npos);
    if (!file.empty()) CHECK(msg.find(file) != std::string::npos);
  }
}

}  // namespace

namespace {
/// The value of an IEEE binary16 pattern from its fields, in double (NaN for the NaN patterns):
/// (-1)^s 2^(e-15) (1 + m/1024) for 1 <= e <= 30, (-1)^s 2^-14 m/1024 for e = 0. Independent of the
/// codec under test.
double half_value_from_fields(std::uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const double sign = s ? -1.0 : 1.0;
  if (e == 31) return m ? std::numeric_limits<double>::quiet_NaN() : sign * std::numeric_limits<double>::infinity();
  if (e == 0) return sign * std::ldexp(double(m), -24);
  return sign * std::ldexp(double(1024 + m), e - 25);
}
/// The binary16 value nearest to v, ties to even, in double arithmetic: v / ulp rounded by
/// nearbyint (round-to-nearest-even, the default mode), ulp = 2^(floor(log2 |v|) - 10), at least
/// the subnormal step 2^-24; beyond 65504 (the rounding reaches 65536) infinity.
float nearest_half_value(float v) {
  if (std::isnan(v)) return v;
  const double a = std::abs(double(v));
  if (a == 0.0) return v;
  int k = 0;
  (void)std::frexp(a, &k);  // a = f 2^k, f in [0.5, 1): floor(log2 a) = k - 1
  const double ulp = std::ldexp(1.0, std::max(k - 1, -14) - 10);
  const double r = std::nearbyint(a / ulp) * ulp;
  const double out = r > 65504.0 ? std::numeric_limits<double>::infinity() : r;
  return float(v < 0 ? -out : out);
}
}  // namespace

TEST_CASE("stories260K.gguf equals the llama2.c checkpoint float for float", "[gguf]") {
  const auto gguf_path = require_shared("reference/stories260K.gguf");
  const auto bin = hyplora::llm::read_llama2c(require_shared("models/stories260K/stories260K.bin"));
  const GgufFile g = read_gguf(gguf_path);
  CHECK(g.version == 3);
  CHECK(g.alignment == 32);
  const ModelWeights w = llama_weights_from_gguf(g, gguf_path.string());
  CHECK(w.config.dim == 64);
  CHECK(w.config.n_layers == 5);
  CHECK(w.config.n_kv_heads == 4);
  CHECK(w.config.vocab_size == 512);
  CHECK(w.config.shared_classifier);
  require_same_weights(w, bin);

  // The tokenizer in its metadata is tok512.bin's.
  const Tokenizer from_gguf = tokenizer_from_gguf(g, gguf_path.string());
  const Tokenizer from_bin = Tokenizer::load_llama2c(require_shared("models/stories260K/tok512.bin"));
  CHECK(from_gguf.pieces() == from_bin.pieces());
  CHECK(from_gguf.scores() == from_bin.scores());
  CHECK(from_gguf.types() == from_bin.types());  // llama2.c-inferred types match ggml's
  CHECK(from_gguf.max_token_length() == from_bin.max_token_length());
  CHECK(from_gguf.encode("Tom had 3 apples. He ate 1 apple.", true, false) ==
        from_bin.encode("Tom had 3 apples. He ate 1 apple.", true, false));
}

TEST_CASE("load_model_and_tokenizer: one read of a GGUF gives what the two loaders give", "[gguf]") {
  using hyplora::llm::load_model_and_tokenizer;
  const auto gguf_path = require_shared("reference/stories260K.gguf");
  const auto bin_path = require_shared("models/stories260K/stories260K.bin");
  const auto tok_path = require_shared("models/stories260K/tok512.bin");
  const auto bin = hyplora::llm::read_llama2c(bin_path);
  const Tokenizer tok512 = Tokenizer::load_llama2c(tok_path);
  const auto same_tokenizer = [&](const Tokenizer& t) {
    CHECK(t.pieces() == tok512.pieces());
    CHECK(t.scores() == tok512.scores());
  };
  const auto from_gguf = load_model_and_tokenizer(gguf_path, {});  // the GGUF's own vocabulary
  require_same_weights(from_gguf.weights, bin);
  same_tokenizer(from_gguf.tokenizer);
  const auto gguf_and_bin = load_model_and_tokenizer(gguf_path, tok_path);  // an explicit tokenizer wins
  require_same_weights(gguf_and_bin.weights, bin);
  same_tokenizer(gguf_and_bin.tokenizer);
  const auto from_bin = load_model_and_tokenizer(bin_path, tok_path);
  require_same_weights(from_bin.weights, bin);
  same_tokenizer(from_bin.tokenizer);

  CHECK_THROWS_WITH(load_model_and_tokenizer(bin_path, {}), Catch::Contains("no tokenizer: give --tokenizer"));
  TempDir dir;
  save_gguf_model(dir.path / "bare.gguf", bin, nullptr);  // weights only
  CHECK_THROWS_WITH(load_model_and_tokenizer(dir.path / "bare.gguf", {}),
                    Catch::Contains("the GGUF carries no usable tokenizer: give --tokenizer"));
  require_same_weights(load_model_and_tokenizer(dir.path / "bare.gguf", tok_path).weights, bin);
  CHECK_THROWS_WITH(load_model_and_tokenizer(dir.path / "missing.gguf", tok_path), Catch::Contains("model file not found"));
  // the tokenizer of another model: the message names both files, as load_tokenizer's does
  CHECK_THROWS_WITH(load_model_and_tokenizer(gguf_path, require_shared("models/llama2-tokenizer/tokenizer.bin")),
                    Catch::Contains(gguf_path.string()));
}

TEST_CASE("our GGUF writer reproduces ggml's stories260K.gguf byte for byte", "[gguf]") {
  const auto ref = slurp(require_shared("reference/stories260K.gguf"));
  const auto bin = hyplora::llm::read_llama2c(require_shared("models/stories260K/stories260K.bin"));
  const auto tok = Tokenizer::load_llama2c(require_shared("models/stories260K/tok512.bin"));
  const std::string ours = serialize_gguf(llama_gguf_from_weights(bin, &tok, "stories260K"));
  CHECK(ours.size() == ref.size());
  CHECK(ours == ref);
  // and re-serialising what we read gives the same bytes
  CHECK(serialize_gguf(parse_gguf(ref, "ref")) == ref);
}

TEST_CASE("convert round trip: weights, tokenizer and logits identical; F16 decodes exactly", "[gguf]") {
  const auto bin = hyplora::llm::read_llama2c(require_shared("models/stories260K/stories260K.bin"));
  const auto tok = Tokenizer::load_llama2c(require_shared("models/stories260K/tok512.bin"));
  TempDir dir;
  const auto out = dir.path / "m.gguf";
  save_gguf_model(out, bin, &tok);
  const ModelWeights back = load_gguf_model(out);
  require_same_weights(back, bin);
  const Tokenizer tok_back = load_gguf_tokenizer(out);
  CHECK(tok_back.pieces() == tok.pieces());
  CHECK(tok_back.scores() == tok.scores());

  // Same logits at every position of a prompt (identical weights: identical floats).
  hyplora::llm::BasicLlamaModel<float> m1(bin), m2(back);
  const auto ids = tok.encode("Once upon a time", true, false);
  for (int pos = 0; pos < int(ids.size()); ++pos) {
    const float* l1 = m1.forward(ids[std::size_t(pos)], pos);
    std::vector<float> a(l1, l1 + bin.config.vocab_size);
    const float* l2 = m2.forward(ids[std::size_t(pos)], pos);
    CHECK(std::memcmp(a.data(), l2, a.size() * 4) == 0);
  }

  // Separate classifier, non-default rope theta and eps survive.
  ModelWeights sep = bin;
  sep.config.shared_classifier = false;
  sep.classifier = bin.token_embedding;
  for (auto& x : sep.classifier) x *= 0.5f;
  sep.config.rope_theta = 500000.0f;
  sep.config.norm_eps = 1e-6f;
  save_gguf_model(out, sep, nullptr);
  require_same_weights(load_gguf_model(out), sep);

  // F16: every value comes back as the nearest half (round to nearest even), exactly. The reference
  // rounds in double arithmetic, independent of the codec's bit manipulation (nearest_half_value).
  save_gguf_model(dir.path / "h.gguf", bin, &tok, GgmlType::F16);
  const ModelWeights half = load_gguf_model(dir.path / "h.gguf");
  std::size_t checked = 0;
  double max_rel = 0;
  bin.for_each_tensor([&](const char*, const std::vector<float>& v) { checked += v.size(); });
  std::vector<const std::vector<float>*> hv;
  half.for_each_tensor([&](const char*, const std::vector<float>& v) { hv.push_back(&v); });
  std::size_t k = 0;
  bool all_exact = true;
  bin.for_each_tensor([&](const char*, const std::vector<float>& v) {
    for (std::size_t e = 0; e < v.size(); ++e) {
      const float expect = nearest_half_value(v[e]);
      all_exact &= (*hv[k])[e] == expect;
      if (std::abs(v[e]) > 1e-4f) max_rel = std::max(max_rel, double(std::abs((*hv[k])[e] - v[e]) / std::abs(v[e])));
    }
    ++k;
  });
  CHECK(all_exact);
  CHECK(max_rel <= std::ldexp(1.0, -11));  // half has an 11-bit significand: relative error <= 2^-11
  CHECK(checked > 0);
}

TEST_CASE("half and bfloat16 conversions are exact", "[gguf]") {
  int non_nan = 0;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(std::uint16_t(h));
    const double ref = half_value_from_fields(std::uint16_t(h));
    if (std::isnan(ref)) CHECK(std::isnan(f));
    else if (double(f) != ref) FAIL_CHECK("half " << h << " decodes to " << f << ", its fields give " << ref);
    if (std::isnan(f)) {
      CHECK(std::isnan(half_to_float(float_to_half(f))));
      continue;
    }
    ++non_nan;
    if (float_to_half(f) != h) FAIL_CHECK("half " << h << " does not round trip");
  }
  CHECK(non_nan == 65536 - 2 * 1023);
  CHECK(half_to_float(0x3C00) == 1.0f);
  CHECK(half_to_float(0xC000) == -2.0f);
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(half_to_float(0x7BFF) == 65504.0f);
  CHECK(float_to_half(65520.0f) == 0x7C00);   // rounds up to infinity
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // halfway: to even
  CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
  // the writer against the double-arithmetic reference: between and at the midpoints of
  // neighbouring halves (ties to even), in the subnormal range, and beyond the largest half
  std::mt19937 rng(31);
  std::uniform_int_distribution<std::uint32_t> any_half(0, 0x7BFE);
  int rounded = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::uint16_t h = std::uint16_t(any_half(rng));
    const double lo = half_value_from_fields(h), hi = half_value_from_fields(std::uint16_t(h + 1));
    for (double t : {0.0, 0.25, 0.5, 0.75}) {
      const float v = float(lo + t * (hi - lo));  // exact: halves' midpoints need 12 significant bits
      for (float sv : {v, -v}) {
        const float expect = nearest_half_value(sv);
        if (half_to_float(float_to_half(sv)) != expect) FAIL_CHECK(sv << " rounds to " << half_to_float(float_to_half(sv)) << ", not " << expect);
        ++rounded;
      }
    }
  }
  CHECK(rounded == 20000 * 8);
  for (float v : {65504.0f, 65519.0f, 65520.0f, 1e6f, std::ldexp(1.0f, -25), std::ldexp(3.0f, -26), std::ldexp(1.0f, -26)})
    CHECK(half_to_float(float_to_half(v)) == nearest_half_value(v));
  CHECK(bf16_to_float(0x3F80) == 1.0f);
  CHECK(bf16_to_float(0xC040) == -3.0f);
}

namespace {
// A hand-made GGUF with one tensor of the given raw type and bytes (ne = {n}).
std::string gguf_with_raw_tensor(std::uint32_t type, std::uint64_t n, const std::string& raw) {
  std::string out = "GGUF";
  auto put32 = [&](std::uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto put64 = [&](std::uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); };
  put32(3);
  put64(1);
  put64(0);
  put64(1);
  out += "t";
  put32(1);
  put64(n);
  put32(type);
  put64(0);
  out.resize((out.size() + 31) / 32 * 32, '\0');
  return out + raw;
}
}  // namespace

TEST_CASE("BF16 and Q8_0 tensors decode to float", "[gguf]") {
  std::string raw;
  for (std::uint16_t v : {std::uint16_t(0x3F80), std::uint16_t(0xC040)}) raw.append(reinterpret_cast<const char*>(&v), 2);
  auto g = parse_gguf(gguf_with_raw_tensor(30, 2, raw), "bf16");
  REQUIRE(g.tensors.size() == 1);
  CHECK(g.tensors[0].stored_type == GgmlType::BF16);
  CHECK(g.tensors[0].data == std::vector<float>{1.0f, -3.0f});

  std::string q;
  const std::uint16_t d = float_to_half(0.5f);
  q.append(reinterpret_cast<const char*>(&d), 2);
  std::vector<float> expect;
  for (int k = 0; k < 32; ++k) {
    const std::int8_t v = std::int8_t(k * 8 - 128);
    q.push_back(char(v));
    expect.push_back(0.5f * float(v));
  }
  g = parse_gguf(gguf_with_raw_tensor(8, 32, q), "q8");
  CHECK(g.tensors[0].data == expect);
  expect_format_error([&] { parse_gguf(gguf_with_raw_tensor(8, 16, q), "q8"); }, "block size");
  expect_format_error([&] { parse_gguf(gguf_with_raw_tensor(12, 256, q), "q4k"); }, "unsupported ggml type 12 (Q4_K)");
}

TEST_CASE("metadata of every type round trips", "[gguf]") {
  GgufFile g;
  g.set("a.u8", [] { GgufValue v; v.type = GgufType::UInt8; v.u = 200; return v; }());
  g.set("a.i8", [] { GgufValue v; v.type = GgufType::Int8; v.i = -100; return v; }());
  g.set("a.u16", [] { GgufValue v; v.type = GgufType::UInt16; v.u = 60000; return v; }());
  g.set("a.i16", [] { GgufValue v; v.type = GgufType::Int16; v.i = -30000; return v; }());
  g.set("a.u32", GgufValue::u32(4000000000u));
  g.set("a.i32", GgufValue::i32(-2000000000));
  g.set("a.u64", GgufValue::u64(1ull << 63));
  g.set("a.i64", [] { GgufValue v; v.type = GgufType::Int64; v.i = -(1ll << 62); return v; }());
  g.set("a.f32", GgufValue::f32(0.1f));
  g.set("a.f64", [] { GgufValue v; v.type = GgufType::Float64; v.f = 0.1; return v; }());
  g.set("a.bool", GgufValue::boolean(true));
  g.set("a.str", GgufValue::str("héllo"));
  g.set("a.strs", GgufValue::strings({"x", "", "ÿ"}));
  g.set("a.nested", GgufValue::array(GgufType::Array, {GgufValue::i32s({1, 2}), GgufValue::i32s({3})}));
  g.alignment = 64;
  GgufTensor t;
  t.name = "w";
  t.ne = {3, 2};
  t.data = {1, 2, 3, 4, 5, 6};
  g.tensors.push_back(t);
  const auto bytes = serialize_gguf(g);
  const auto r = parse_gguf(bytes, "kv");
  CHECK(r.alignment == 64);
  REQUIRE(r.find("general.alignment"));
  CHECK(r.find("a.u8")->u == 200);
  CHECK(r.find("a.i8")->i == -100);
  CHECK(r.find("a.u16")->u == 60000);
  CHECK(r.find("a.i16")->i == -30000);
  CHECK(r.find("a.u32")->u == 4000000000u);
  CHECK(r.find("a.i32")->i == -2000000000);
  CHECK(r.find("a.u64")->u == (1ull << 63));
  CHECK(r.find("a.i64")->as_int() == -(1ll << 62));
  CHECK(r.find("a.f32")->f == double(0.1f));
  CHECK(r.find("a.f64")->f == 0.1);
  CHECK(r.find("a.bool")->b);
  CHECK(r.find("a.str")->as_string() == "héllo");
  REQUIRE(r.find("a.strs")->arr.size() == 3);
  CHECK(r.find("a.strs")->arr[2].s == "ÿ");
  CHECK(r.find("a.nested")->arr[1].arr[0].i == 3);
  CHECK(r.tensor("w")->data == t.data);
  CHECK(r.tensor("w")->ne == t.ne);
  CHECK(serialize_gguf(r) == bytes);
}

TEST_CASE("bad GGUF files are rejected with the file, offset and problem", "[gguf][bad-input]") {
  const auto good = slurp(require_shared("reference/stories260K.gguf"));
  auto bad = [&](std::string b, const std::string& needle) {
    expect_format_error([&] { (void)parse_gguf(b, "bad.gguf"); }, needle, "bad.gguf");
  };
  bad(good.substr(0, 10), "truncated");
  bad("GGML" + good.substr(4), "bad magic \"GGML\"");
  std::string b = good;
  b[4] = 7;
  bad(b, "unsupported GGUF version 7");
  b = good;
  const std::uint64_t huge = ~0ull;
  std::memcpy(b.data() + 8, &huge, 8);
  bad(b, "offset 8: tensor count 18446744073709551615 cannot fit");
  b = good;
  std::memcpy(b.data() + 16, &huge, 8);
  bad(b, "metadata count");
  b = good;
  std::memcpy(b.data() + 24, &huge, 8);  // first key's length
  bad(b, "offset 24: metadata key length");
  bad(good.substr(0, 5000), "truncated");               // inside the metadata
  bad(good.substr(0, good.size() - 100), "runs past the end");  // data section cut
  // A NaN in the last tensor (output_norm.weight, the file's last 256 bytes).
  b = good;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(b.data() + b.size() - 4, &nan, 4);
  bad(b, "tensor \"output_norm.weight\": element 63 is NaN");
  CHECK_NOTHROW(parse_gguf(b, "nan-ok", GgufReadOptions{false}));
  // A tensor's offset off alignment / out of range: the last tensor info's offset field sits right
  // before the padding; find it by value.
  const std::uint64_t last_offset = 1039872;
  const auto field = good.find(std::string(reinterpret_cast<const char*>(&last_offset), 8));
  REQUIRE(field != std::string::npos);
  b = good;
  const std::uint64_t misaligned = last_offset + 4;
  std::memcpy(b.data() + field, &misaligned, 8);
  bad(b, "not a multiple of the alignment 32");
  b = good;
  const std::uint64_t far = 1ull << 40;
  std::memcpy(b.data() + field, &far, 8);
  bad(b, "runs past the end");
  b = good;
  const std::uint64_t overlap = last_offset - 32;
  std::memcpy(b.data() + field, &overlap, 8);
  bad(b, "overlaps");
}

TEST_CASE("GGUF resource limits: metadata values are bounded, duplicates found in linear time", "[gguf][bad-input]") {
  // a u8 array of n elements: n bytes on disk, a GgufValue (about 100 bytes) each in memory; a
  // 20 MB array took 1.9 GB before the error
  auto with_array = [](std::uint64_t n) {  // "GGUF" v3, no tensor, one key "big": u8 array of n zeros
    std::string b = "GGUF";
    auto put = [&](auto v) { b.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(std::uint32_t(3));
    put(std::uint64_t(0));
    put(std::uint64_t(1));
    put(std::uint64_t(3));
    b += "big";
    put(std::uint32_t(GgufType::Array));
    put(std::uint32_t(GgufType::UInt8));
    put(n);
    b.append(std::size_t(n), '\0');
    return b;
  };
  const auto ok = parse_gguf(with_array(100000), "ok.gguf");
  REQUIRE(ok.find("big"));
  CHECK(ok.find("big")->arr.size() == 100000);
  expect_format_error([&] { (void)parse_gguf(with_array((std::uint64_t(1) << 22) + 1), "big.gguf"); }, "4194304 values",
                      "big.gguf");
  // 100,000 keys, then 100,000 tensor names, the last one a duplicate: each scan was quadratic (8 s)
  GgufFile keys;
  for (int k = 0; k < 100000; ++k)  // "k" appended: "k" + string&& warns falsely in g++ 12 (-Wrestrict, bug 105329)
    keys.metadata.emplace_back(std::string("k").append(std::to_string(k)), GgufValue::u32(1));
  keys.metadata.emplace_back("k99999", GgufValue::u32(2));
  const auto start = std::chrono::steady_clock::now();
  expect_format_error([&] { (void)parse_gguf(serialize_gguf(keys), "keys.gguf"); }, "duplicate metadata key \"k99999\"",
                      "keys.gguf");
  INFO("seconds " << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

TEST_CASE("a GGUF tokenizer written by llama.cpp (U+2581 for the space) encodes as llama2.c's", "[gguf]") {
  const auto gguf = read_gguf(require_shared("reference/stories260K.gguf"));
  const Tokenizer ours = tokenizer_from_gguf(gguf, "stories260K.gguf");
  GgufFile marked = gguf;  // the spaces of every piece as llama.cpp's converters write them
  for (auto& [key, value] : marked.metadata)
    if (key == "tokenizer.ggml.tokens")
      for (auto& t : value.arr)
        for (std::size_t at = t.s.find(' '); at != std::string::npos; at = t.s.find(' ', at))
          t.s.replace(at, 1, "\xE2\x96\x81");
  const Tokenizer theirs = tokenizer_from_gguf(marked, "marked.gguf");
  for (const char* text : {"Once upon a time, there was a little girl.", "  two  spaces", "3 + 4 = 7", "caf\xC3\xA9 \xE4\xB8\xAD"}) {
    INFO(text);
    CHECK(theirs.encode(text, true, false) == ours.encode(text, true, false));
  }
  for (int id = 0; id < ours.vocab_size(); ++id) CHECK(theirs.piece(id) == ours.piece(id));
}

TEST_CASE("GGUF Llama mapping rejects inconsistent models", "[gguf][bad-input]") {
  const auto ref_path = require_shared("reference/stories260K.gguf");
  const GgufFile good = read_gguf(ref_path);
  GgufFile g = good;
  g.set("general.architecture", GgufValue::str("gpt2"));
  expect_format_error([&] { llama_weights_from_gguf(g, "x.gguf"); }, "architecture \"gpt2\" is not supported", "x.gguf");
  g = good;
  g.set("llama.attention.head_count", GgufValue::u32(7));
  expect_format_error([&] { llama_weights_from_gguf(g, "x.gguf"); }, "not a multiple of head_count");
  g = good;
  g.set("llama.feed_forward_length", GgufValue::u32(100));
  expect_format_error([&] { llama_weights_from_gguf(g, "x.gguf"); }, "tensor \"blk.0.ffn_gate.weight\" has shape [64, 172], the configuration needs [64, 100]");
  g = good;
  g.metadata.erase(g.metadata.begin() + 2);  // llama.block_count
  expect_format_error([&] { llama_weights_from_gguf(g, "x.gguf"); }, "missing metadata key \"llama.block_count\"");
  g = good;
  g.set("llama.block_count", GgufValue::u32(6));
  expect_format_error([&] { llama_weights_from_gguf(g, "x.gguf"); }, "missing tensor \"blk.5.attn_norm.weight\"");
  g = good;
  g.set("llama.embedding_length", GgufValue::str("64"));
  expect_format_error([&] { llama_weights_from_gguf(g, "x.gguf"); }, "expected an integer, found string");
  g = good;
  g.set("llama.block_count", GgufValue::u32(4000000000u));
  expect_format_error([&] { llama_weights_from_gguf(g, "x.gguf"); }, "outside 1..4096");
  g = good;
  g.set("tokenizer.ggml.bos_token_id", GgufValue::u32(512));
  expect_format_error([&] { tokenizer_from_gguf(g, "x.gguf"); }, "tokenizer.ggml.bos_token_id\" = 512 outside 0..511");
}

TEST_CASE("truncations and byte flips of a GGUF never crash", "[gguf][bad-input]") {
  const auto good = slurp(require_shared("reference/stories260K.gguf"));
  std::uint32_t state = 777;
  int truncations_rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string b = good;
    state = state * 1664525u + 1013904223u;
    if (trial % 2 == 0) {
      b.resize(state % b.size());
    } else {  // flips in the header / metadata / tensor infos (the first 13831 bytes)
      for (int f = 0; f < 3; ++f) {
        state = state * 1664525u + 1013904223u;
        b[(state >> 8) % 13831] = char(state);
      }
    }
    try {
      const auto g = parse_gguf(b, "fuzz");
      (void)llama_weights_from_gguf(g, "fuzz");
      (void)tokenizer_from_gguf(g, "fuzz");
    } catch (const FormatError&) {
      if (trial % 2 == 0) ++truncations_rejected;
    }
  }
  CHECK(truncations_rejected == 200);  // every truncation is rejected (flips may or may not be)
}

TEST_CASE("safetensors round trip with metadata (PEFT adapter names)", "[safetensors]") {
  SafetensorsFile st;
  st.metadata = {{"format", "pt"}, {"hyplora.rank", "4"}};
  SafeTensor a{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "F32", {4, 8}, {}};
  SafeTensor bt{"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", "F32", {8, 4}, {}};
  SafeTensor k{"curvature", "F32", {}, {1.5f}};
  for (int i = 0; i < 32; ++i) {
    a.data.push_back(float(i) * 0.25f - 3.0f);
    bt.data.push_back(std::ldexp(1.0f, -i));
  }
  st.tensors = {a, bt, k};
  TempDir dir;
  write_safetensors(dir.path / "adapter.safetensors", st);
  const auto bytes = slurp(dir.path / "adapter.safetensors");
  std::uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  const auto r = read_safetensors(dir.path / "adapter.safetensors");
  CHECK(r.metadata == st.metadata);
  REQUIRE(r.tensors.size() == 3);
  CHECK(r.require(a.name, {4, 8}, "f").data == a.data);
  CHECK(r.require(bt.name, {8, 4}, "f").data == bt.data);
  CHECK(r.require("curvature", {}, "f").data == std::vector<float>{1.5f});
  expect_format_error([&] { r.require(a.name, {8, 4}, "adapter.safetensors"); }, "has shape [4, 8], expected [8, 4]", "adapter.safetensors");
  expect_format_error([&] { r.require("nope", {1}, "adapter.safetensors"); }, "missing tensor \"nope\"");
}

namespace {
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out;
  const std::uint64_t n = header.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}
std::string raw16(std::initializer_list<std::uint16_t> v) {
  std::string s;
  for (auto x : v) s.append(reinterpret_cast<const char*>(&x), 2);
  return s;
}
std::string raw32(std::initializer_list<float> v) {
  std::string s;
  for (auto x : v) s.append(reinterpret_cast<const char*>(&x), 4);
  return s;
}
}  // namespace

TEST_CASE("safetensors F16 and BF16 read; bad files rejected", "[safetensors][bad-input]") {
  auto r = parse_safetensors(
      safetensors_bytes(R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[4,6]}})",
                        raw16({0x3C00, 0xC000, 0x3F80})),
      "x");
  REQUIRE(r.tensors.size() == 2);
  CHECK(r.find("h")->data == std::vector<float>{1.0f, -2.0f});
  CHECK(r.find("b")->data == std::vector<float>{1.0f});

  auto bad = [](const std::string& bytes, const std::string& needle) {
    expect_format_error([&] { (void)parse_safetensors(bytes, "bad.safetensors"); }, needle, "bad.safetensors");
  };
  const std::string data = raw32({1, 2, 3, 4});
  bad(std::string(5, '\0'), "truncated");
  bad(safetensors_bytes("{}", "").substr(0, 8) + "{", "header length 2 exceeds");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", data), "not valid JSON");
  bad(safetensors_bytes(R"([1,2])", data), "not a JSON object");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}})", data), "outside the 16-byte data section");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data), "3 x 4 bytes, but data_offsets span 16");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data), "overlaps");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data), "gap of 8 unused bytes");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data), "8 trailing bytes");
  bad(safetensors_bytes(R"({"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data), "unsupported dtype \"I64\"");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data), "not a non-negative integer");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4]}})", data), "data_offsets");
  bad(safetensors_bytes(R"({"__metadata__":{"k":1}})", ""), "is not a string");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", raw32({1, std::nanf(""), 3, 4})), "element 1 is NaN");
  bad(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", raw32({1, INFINITY, 3, 4})), "element 1 is infinite");
  std::string huge(8, '\xFF');
  bad(huge, "header length 18446744073709551615");
  CHECK_THROWS_AS(read_safetensors("/nonexistent/a.safetensors"), FormatError);
}

TEST_CASE("atomic writes: commit publishes, an abandoned writer leaves the old file", "[atomic]") {
  TempDir dir;
  const auto p = dir.path / "f.bin";
  write_file_atomically(p, "first");
  CHECK(slurp(p) == "first");
  {
    AtomicFileWriter w(p);
    w.write("second, never committed");
    CHECK(std::filesystem::exists(w.temp_path()));
    CHECK(slurp(p) == "first");  // not visible before commit
  }
  CHECK(slurp(p) == "first");
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path)) entries += e.is_regular_file();
  CHECK(entries == 1);  // the temporary file was removed
  {
    AtomicFileWriter w(p);
    w.write("third");
    w.commit();
    CHECK_THROWS(w.write("x"));
  }
  CHECK(slurp(p) == "third");
  CHECK_THROWS_AS(AtomicFileWriter(dir.path / "missing-dir" / "x"), std::runtime_error);
}

TEST_CASE("an output folder is checked for writability before any work", "[atomic][bad-input]") {
  using hyplora::formats::require_writable_folder;
  namespace fs = std::filesystem;
  TempDir dir;
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  auto entries = [&] {
    int n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(dir.path)) ++n;
    return n;
  };
  // a writable folder (existing, or to be made under a writable one) passes and keeps no probe file
  CHECK_NOTHROW(require_writable_folder(dir.path, "--out x", false));
  CHECK_NOTHROW(require_writable_folder(dir.path / "new" / "deeper", "--out x", true));
  CHECK(entries() == 0);
  CHECK_FALSE(fs::exists(dir.path / "new"));  // checked, not made
  // a missing folder the command does not make
  const auto missing = message([&] { require_writable_folder(dir.path / "nope", "eval: --out nope/r.json", false); });
  CHECK(missing.find("eval: --out nope/r.json") == 0);
  CHECK(missing.find("does not exist") != std::string::npos);
  // a regular file where a folder should be: refused for root too (permission bits do not matter)
  const fs::path file = dir.path / "plain.txt";
  write_file_atomically(file, "x");
  for (const fs::path& d : {file, file / "sub", file / "sub" / "deeper"}) {
    for (const bool later : {false, true}) {
      INFO(d << " created_later " << later);
      const auto m = message([&] { require_writable_folder(d, "--out " + d.string(), later); });
      CHECK(m.find("--out " + d.string()) == 0);
      CHECK(m.find(file.string() + " is a file, not a folder") != std::string::npos);
    }
  }
  // /sys takes no new files (for root neither)
  if (fs::is_directory("/sys/kernel")) {
    const auto m = message([] { require_writable_folder("/sys", "eval: --out /sys/r.json", false); });
    CHECK(m.find("cannot create files in folder /sys") != std::string::npos);
  }
  // a read-only folder: permission bits stop only a non-root user
  const fs::path ro = dir.path / "ro";
  fs::create_directory(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  if (::geteuid() == 0) {
    WARN("SKIPPED part: running as root, a read-only folder's permission bits do not stop writes");
  } else {
    const auto m = message([&] { require_writable_folder(ro, "--out ro", false); });
    CHECK(m.find("cannot create files in folder " + ro.string() + ": Permission denied") != std::string::npos);
    const auto under = message([&] { require_writable_folder(ro / "a" / "b", "--out ro/a/b", true); });
    CHECK(under.find("cannot create files in folder " + ro.string()) != std::string::npos);
  }
  fs::permissions(ro, fs::perms::owner_all);
  CHECK(entries() == 2);  // plain.txt and ro: no probe left behind
}
