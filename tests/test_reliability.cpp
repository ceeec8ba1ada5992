// Reliability: every reader meets bad input with a clean std::exception that names the file and
// the problem (never a crash), the regression inputs found by fuzzing stay fixed, and atomic
// writes survive SIGKILL at any moment.
//
// Set HYPLORA_RELIABILITY_TABLE=<file> to append one markdown row per bad input with the exact
// message it gets (docs/reliability.md is made from that output).
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "commands/registry.hpp"
#include "data/loaders.hpp"
#include "formats/atomic_file.hpp"
#include "formats/gguf.hpp"
#include "formats/llama2c.hpp"
#include "formats/safetensors.hpp"
#include "formats/weight_check.hpp"
#include "model/llama.hpp"
#include "support.hpp"
#include "tokenizer/tokenizer.hpp"
#include "train/settings.hpp"
#include "util/json_config.hpp"

namespace fs = std::filesystem;
using hyplora::test::require_shared;
using hyplora::test::slurp;
using hyplora::test::spit;
using hyplora::test::TempDir;

namespace {

// ---- files and messages ---------------------------------------------------------------------

fs::path source_dir() { return HYPLORA_SOURCE_DIR; }
fs::path seed(const std::string& reader, const std::string& name) { return source_dir() / "fuzz/seeds" / reader / name; }

template <class T>
void poke(std::string& bytes, std::size_t offset, T value) {
  REQUIRE(offset + sizeof(T) <= bytes.size());
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}
template <class T>
T peek(const std::string& bytes, std::size_t offset) {
  REQUIRE(offset + sizeof(T) <= bytes.size());
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

/// The message of the std::exception f throws; "" when it returns normally. Anything that is not
/// a std::exception propagates and fails the test.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what()[0] ? e.what() : "(empty message)";
  }
  return {};
}

/// Appends a row to $HYPLORA_RELIABILITY_TABLE when set.
void record(const std::string& reader, const std::string& input, const std::string& message) {
  const char* table = std::getenv("HYPLORA_RELIABILITY_TABLE");
  if (!table || !*table) return;
  std::string m = message;
  for (auto& c : m)
    if (c == '|') c = '/';
    else if (c == '\n') c = ' ';
  std::ofstream(table, std::ios::app) << "| " << reader << " | " << input << " | `" << m << "` |\n";
}

/// f must throw a std::exception whose message contains every one of `parts`.
void expect_error(const std::string& reader, const std::string& input, const std::function<void()>& f,
                  const std::vector<std::string>& parts) {
  const std::string message = error_of(f);
  INFO(reader << ": " << input << " -> \"" << message << "\"");
  REQUIRE_FALSE(message.empty());
  for (const auto& p : parts) CHECK(message.find(p) != std::string::npos);
  record(reader, input, message);
}

// ---- the tiny hand-made files of fuzz/seeds (dim 4, hidden 4, 1 layer, 2 heads, 1 kv head, vocab 6, seq 2)

constexpr int kTinyVocab = 6;
constexpr std::size_t kLlama2cHeader = 28;

/// Offset of the byte just after GGUF string `s` (u64 length + bytes) in `bytes`.
std::size_t after_gguf_string(const std::string& bytes, const std::string& s) {
  std::string needle(8, '\0');
  const std::uint64_t n = s.size();
  std::memcpy(needle.data(), &n, 8);
  needle += s;
  const auto at = bytes.find(needle);
  REQUIRE(at != std::string::npos);
  return at + needle.size();
}

// ---- the regression inputs: one folder per reader -------------------------------------------

/// Feeds a file to every stage of its reader, as the fuzz target does. Returns the messages of the
/// std::exceptions met (a stage that loads cleanly adds nothing).
std::vector<std::string> feed(const std::string& reader, const fs::path& file) {
  using namespace hyplora;
  std::vector<std::string> errors;
  auto stage = [&](const std::function<void()>& f) {
    if (auto m = error_of(f); !m.empty()) errors.push_back(m);
  };
  if (reader == "llama2c") {
    stage([&] { (void)llm::read_llama2c(file); });
  } else if (reader == "tokenizer") {
    stage([&] { (void)llm::Tokenizer::load_llama2c(file); });
    stage([&] { (void)llm::Tokenizer::load_llama2c(file, 512); });
  } else if (reader == "gguf") {
    stage([&] { (void)formats::load_gguf_model(file); });
    stage([&] { (void)formats::load_gguf_tokenizer(file); });
  } else if (reader == "safetensors") {
    stage([&] { (void)formats::read_safetensors(file); });
  } else if (reader == "data") {
    for (auto format : {data::DataFormat::gsm8k, data::DataFormat::mawps, data::DataFormat::llm_adapters,
                        data::DataFormat::llm_adapters_choice, data::DataFormat::svamp, data::DataFormat::aqua})
      for (auto policy : {data::BadRecordPolicy::skip, data::BadRecordPolicy::reject})
        stage([&] { (void)data::load_file(file.string(), format, policy); });
  } else if (reader == "config") {
    stage([&] {
      train::TrainSettings s;
      from_json(nlohmann::json::parse(slurp(file)), s);
      s.validate();
    });
  } else {
    FAIL("unknown reader folder " << reader);
  }
  return errors;
}

}  // namespace

TEST_CASE("regression inputs (crashes found by fuzzing) get a clean error naming the file", "[reliability]") {
  const fs::path root = source_dir() / "tests/regression";
  REQUIRE(fs::is_directory(root));
  int files = 0;
  for (const auto& dir : fs::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    const std::string reader = dir.path().filename().string();
    for (const auto& f : fs::directory_iterator(dir.path())) {
      if (!f.is_regular_file()) continue;
      ++files;
      INFO(reader << " <- " << f.path());
      const auto errors = feed(reader, f.path());
      // every regression input is a bad input: at least one stage rejects it, and the messages of
      // the file readers name the file. The settings are parsed from JSON text, not read as a
      // file: their message names the setting, which the input's name starts with
      // ("rank_wraps_to_8.json": "rank"), so that an unrelated exception does not count.
      REQUIRE_FALSE(errors.empty());
      const std::string name = f.path().filename().string();
      const std::string wanted = reader == "config" ? name.substr(0, name.find('_')) : name;
      for (const auto& e : errors) CHECK(e.find(wanted) != std::string::npos);
    }
  }
  CHECK(files > 0);
}

// ---- llama2.c checkpoints -------------------------------------------------------------------

TEST_CASE("llama2.c checkpoint: truncation at every length, extra bytes, bad headers, NaN/Inf", "[reliability]") {
  using hyplora::llm::read_llama2c;
  TempDir tmp;
  const std::string good = slurp(seed("llama2c", "tiny_shared.bin"));
  const fs::path f = tmp.path / "model.bin";
  spit(f, good);
  REQUIRE(read_llama2c(f).config.vocab_size == kTinyVocab);  // the seed itself is valid

  for (std::size_t n = 0; n < good.size(); ++n) {
    spit(f, good.substr(0, n));
    const std::string m = error_of([&] { (void)read_llama2c(f); });
    INFO("truncated to " << n << " bytes: " << m);
    REQUIRE(m.find(f.string()) != std::string::npos);
    REQUIRE(m.find(n < kLlama2cHeader ? "shorter than the 28-byte" : "implies") != std::string::npos);
  }
  spit(f, good.substr(0, kLlama2cHeader + 40));
  expect_error("llama2.c", "truncated inside token_embedding", [&] { (void)read_llama2c(f); }, {"model.bin", "implies"});
  spit(f, good + "x");
  expect_error("llama2.c", "one byte too many", [&] { (void)read_llama2c(f); }, {"implies", std::to_string(good.size() + 1)});

  auto with_header = [&](int field, std::int32_t value) {
    std::string b = good;
    poke<std::int32_t>(b, 4 * std::size_t(field), value);
    spit(f, b);
  };
  with_header(0, 0x616b3432);
  expect_error("llama2.c", "version-1/2 magic 'ak42'", [&] { (void)read_llama2c(f); }, {"ak42"});
  with_header(0, -4);
  expect_error("llama2.c", "dim = -4", [&] { (void)read_llama2c(f); }, {"offset 0", "dim -4"});
  with_header(2, 0);
  expect_error("llama2.c", "n_layers = 0", [&] { (void)read_llama2c(f); }, {"n_layers 0"});
  with_header(3, 3);
  expect_error("llama2.c", "n_heads = 3 does not divide dim = 4", [&] { (void)read_llama2c(f); }, {"not divisible"});
  {
    std::string b = good;
    poke<std::int32_t>(b, 12, 1);
    poke<std::int32_t>(b, 16, 2);
    spit(f, b);
  }
  expect_error("llama2.c", "n_kv_heads = 2 > n_heads = 1", [&] { (void)read_llama2c(f); }, {"n_kv_heads 2"});
  with_header(5, std::numeric_limits<std::int32_t>::min());
  expect_error("llama2.c", "vocab_size = INT32_MIN", [&] { (void)read_llama2c(f); }, {"vocab_size"});
  with_header(6, -1);
  expect_error("llama2.c", "seq_len = -1", [&] { (void)read_llama2c(f); }, {"seq_len -1"});
  {  // a 7B header on a tiny file: rejected by size, before any allocation
    std::string b = good;
    const std::int32_t h[7] = {4096, 11008, 32, 32, 32, 32000, 4096};
    std::memcpy(b.data(), h, sizeof h);
    spit(f, b);
  }
  expect_error("llama2.c", "header of a 7B model on a 572-byte file", [&] { (void)read_llama2c(f); }, {"implies", "572"});
  {  // dim*dim*layers overflows 32 bits (65536^2 * 1024 floats)
    std::string b = good;
    const std::int32_t h[7] = {65536, 262144, 1024, 256, 256, 2097152, 1048576};
    std::memcpy(b.data(), h, sizeof h);
    spit(f, b);
  }
  expect_error("llama2.c", "dim 65536, 1024 layers (dim*dim*layers overflows int32)", [&] { (void)read_llama2c(f); },
               {"implies"});
  {
    std::string b = good;
    poke<float>(b, kLlama2cHeader + 4 * 5, std::numeric_limits<float>::quiet_NaN());
    spit(f, b);
  }
  expect_error("llama2.c", "NaN in token_embedding[5]", [&] { (void)read_llama2c(f); }, {"token_embedding[5] is NaN", "offset 48"});
  {
    std::string b = good;
    poke<float>(b, b.size() - 16 - 4, std::numeric_limits<float>::infinity());  // last rms_final value
    spit(f, b);
  }
  expect_error("llama2.c", "+Inf in rms_final", [&] { (void)read_llama2c(f); }, {"rms_final[3] is infinite"});
  {
    std::string b = good;  // a flipped exponent bit: finite, but no trained weight is near it
    poke<float>(b, kLlama2cHeader + 4 * 5, -3e38f);
    spit(f, b);
  }
  expect_error("llama2.c", "-3e38 in token_embedding[5]", [&] { (void)read_llama2c(f); },
               {"token_embedding[5] is -3e+38", "beyond the 1e+06"});
  expect_error("llama2.c", "missing file", [&] { (void)read_llama2c(tmp.path / "nope.bin"); }, {"nope.bin"});
}

TEST_CASE("the weight bound HYPLORA_MAX_WEIGHT: a positive finite number or a clear error", "[reliability]") {
  using hyplora::formats::parse_max_weight;
  CHECK(parse_max_weight("1e8") == 1e8f);
  CHECK(parse_max_weight("2.5") == 2.5f);
  for (const char* bad : {"", "abc", "-1", "0", "inf", "nan", "1e39", "5x"}) {
    INFO("HYPLORA_MAX_WEIGHT='" << bad << "'");
    CHECK_THROWS_WITH(parse_max_weight(bad),
                      Catch::Contains("HYPLORA_MAX_WEIGHT must be a positive finite number") &&
                          Catch::Contains(std::string("'") + bad + "'"));
  }
  // without the variable (as ctest runs this process), the default bound
  if (std::getenv("HYPLORA_MAX_WEIGHT") == nullptr)
    CHECK(hyplora::formats::max_weight_magnitude() == hyplora::formats::kMaxWeightMagnitude);
}

TEST_CASE("llama2.c checkpoint: stories260K truncated at every tensor boundary", "[reliability]") {
  using hyplora::llm::read_llama2c;
  const std::string good = slurp(require_shared("models/stories260K/stories260K.bin"));
  TempDir tmp;
  const fs::path f = tmp.path / "stories260K.bin";
  spit(f, good);
  auto w = read_llama2c(f);
  std::vector<std::size_t> cuts{0, 4, 27, 28};
  std::size_t at = kLlama2cHeader;
  auto sizes = std::vector<std::size_t>{};
  w.for_each_tensor([&](const char*, std::vector<float>& v) { sizes.push_back(v.size()); });
  for (auto s : sizes) {
    at += 4 * s;
    cuts.push_back(at - 1);
    cuts.push_back(at);
  }
  cuts.push_back(good.size() - 1);
  for (auto n : cuts) {
    if (n >= good.size()) continue;
    spit(f, good.substr(0, n));
    const std::string m = error_of([&] { (void)read_llama2c(f); });
    INFO("cut at " << n << ": " << m);
    REQUIRE(m.find("stories260K.bin") != std::string::npos);
  }
}

// ---- tokenizer.bin --------------------------------------------------------------------------

TEST_CASE("tokenizer.bin: truncation, lengths, UTF-8, scores, vocabulary mismatch", "[reliability]") {
  using hyplora::llm::Tokenizer;
  TempDir tmp;
  const std::string good = slurp(seed("tokenizer", "tiny.bin"));
  const fs::path f = tmp.path / "tokenizer.bin";
  spit(f, good);
  const int vocab = Tokenizer::load_llama2c(f).vocab_size();
  REQUIRE(vocab == 12);
  for (std::size_t n = 0; n < good.size(); ++n) {  // with the model's count, every truncation is an error
    spit(f, good.substr(0, n));
    const std::string m = error_of([&] { (void)Tokenizer::load_llama2c(f, vocab); });
    INFO("truncated to " << n << ": " << m);
    REQUIRE(m.find("tokenizer.bin") != std::string::npos);
  }
  spit(f, good.substr(0, 20));
  expect_error("tokenizer.bin", "truncated inside token 1 (model expects 12 tokens)", [&] { (void)Tokenizer::load_llama2c(f, vocab); },
               {"truncated"});
  spit(f, good);
  expect_error("tokenizer.bin", "model vocabulary 13 > the file's 12 tokens", [&] { (void)Tokenizer::load_llama2c(f, 13); },
               {"expected 13 tokens"});
  auto patched = [&](std::size_t offset, auto value) {
    std::string b = good;
    poke(b, offset, value);
    spit(f, b);
  };
  patched(0, std::int32_t(0));
  expect_error("tokenizer.bin", "max_token_length = 0", [&] { (void)Tokenizer::load_llama2c(f); }, {"max_token_length 0"});
  patched(0, std::int32_t(-7));
  expect_error("tokenizer.bin", "max_token_length = -7", [&] { (void)Tokenizer::load_llama2c(f); }, {"max_token_length -7"});
  // token 0: score at 4, length at 8, "<unk>" at 12
  patched(8, std::int32_t(1 << 30));
  expect_error("tokenizer.bin", "token length 2^30", [&] { (void)Tokenizer::load_llama2c(f); }, {"token 0 length 1073741824"});
  patched(8, std::int32_t(-1));
  expect_error("tokenizer.bin", "token length -1", [&] { (void)Tokenizer::load_llama2c(f); }, {"token 0 length -1"});
  patched(4, std::numeric_limits<float>::quiet_NaN());
  expect_error("tokenizer.bin", "NaN score", [&] { (void)Tokenizer::load_llama2c(f); }, {"non-finite score"});
  patched(12, std::uint8_t(0xff));
  expect_error("tokenizer.bin", "invalid UTF-8 byte 0xFF in a piece", [&] { (void)Tokenizer::load_llama2c(f); }, {"not valid UTF-8"});
  patched(12, std::uint8_t(0xc0));  // overlong lead byte
  expect_error("tokenizer.bin", "overlong UTF-8 (0xC0) in a piece", [&] { (void)Tokenizer::load_llama2c(f); }, {"not valid UTF-8"});
}

TEST_CASE("tokenizer.bin: the 512-token vocabulary where the model expects more", "[reliability]") {
  const fs::path tok = require_shared("models/stories260K/tok512.bin");
  expect_error("tokenizer.bin", "tok512.bin for a 32000-token model", [&] { (void)hyplora::llm::Tokenizer::load_llama2c(tok, 32000); },
               {"tok512.bin", "expected 32000 tokens"});
}

// ---- GGUF -----------------------------------------------------------------------------------

TEST_CASE("GGUF: truncation at every length, magic, version, counts, strings, offsets, types, NaN", "[reliability]") {
  using namespace hyplora::formats;
  TempDir tmp;
  const std::string good = slurp(seed("gguf", "tiny_llama.gguf"));
  const fs::path f = tmp.path / "model.gguf";
  spit(f, good);
  REQUIRE(load_gguf_model(f).config.vocab_size == kTinyVocab);
  REQUIRE(load_gguf_tokenizer(f).vocab_size() == kTinyVocab);
  for (std::size_t n = 0; n < good.size(); ++n) {
    const std::string m = error_of([&] { (void)parse_gguf(std::string_view(good).substr(0, n), "model.gguf"); });
    INFO("truncated to " << n << ": " << m);
    REQUIRE(m.find("model.gguf") != std::string::npos);
  }
  auto load = [&](const std::string& b) {
    spit(f, b);
    return [&] { (void)load_gguf_model(f); };
  };
  auto patched = [&](std::size_t offset, auto value) {
    std::string b = good;
    poke(b, offset, value);
    return b;
  };
  expect_error("GGUF", "magic \"GGUX\"", load(patched(3, 'X')), {"bad magic \"GGUX\""});
  expect_error("GGUF", "version 1", load(patched(4, std::uint32_t(1))), {"unsupported GGUF version 1"});
  expect_error("GGUF", "tensor count 2^64-1", load(patched(8, ~std::uint64_t(0))), {"tensor count 18446744073709551615 cannot fit"});
  expect_error("GGUF", "metadata count 2^40", load(patched(16, std::uint64_t(1) << 40)), {"metadata count"});
  expect_error("GGUF", "first key's string length 2^40 (beyond the file end)", load(patched(24, std::uint64_t(1) << 40)),
               {"offset 24", "exceeds"});
  const std::size_t arch_value = after_gguf_string(good, "general.architecture") + 4;  // u32 type, then the value
  expect_error("GGUF", "architecture value length beyond the file end", load(patched(arch_value, std::uint64_t(good.size()))),
               {"exceeds"});
  expect_error("GGUF", "metadata value type 13 (unknown)",
               load(patched(after_gguf_string(good, "general.architecture"), std::uint32_t(13))), {"unknown value type 13"});
  {
    std::string b = good;
    const auto at = after_gguf_string(b, "general.architecture") + 4 + 8;
    b.replace(at, 5, "gpt2!");
    expect_error("GGUF", "architecture \"gpt2!\"", load(b), {"architecture \"gpt2!\" is not supported"});
  }
  const std::size_t heads = after_gguf_string(good, "llama.attention.head_count") + 4;
  expect_error("GGUF", "head_count 3 does not divide embedding_length 4", load(patched(heads, std::uint32_t(3))),
               {"not a multiple of head_count 3"});
  expect_error("GGUF", "head_count 0", load(patched(heads, std::uint32_t(0))), {"head_count"});
  expect_error("GGUF", "block_count 2^31 (absurd)",
               load(patched(after_gguf_string(good, "llama.block_count") + 4, std::uint32_t(1u << 31))), {"block_count"});
  // tensor info of output_norm.weight (the last tensor): u32 n_dims, u64 ne[1], u32 type, u64 offset
  const std::size_t info = after_gguf_string(good, "output_norm.weight");
  const std::size_t type_at = info + 4 + 8, offset_at = type_at + 4;
  const auto offset = peek<std::uint64_t>(good, offset_at);
  expect_error("GGUF", "tensor offset beyond the data section", load(patched(offset_at, offset + 4096)),
               {"output_norm.weight", "runs past the end"});
  expect_error("GGUF", "tensor offset misaligned (+4)", load(patched(offset_at, offset + 4)), {"not a multiple of the alignment"});
  expect_error("GGUF", "tensor offset 0 (overlaps token_embd)", load(patched(offset_at, std::uint64_t(0))), {"overlaps"});
  expect_error("GGUF", "tensor type Q4_0 (unsupported)", load(patched(type_at, std::uint32_t(2))), {"unsupported ggml type 2 (Q4_0)"});
  expect_error("GGUF", "tensor n_dims 5", load(patched(info, std::uint32_t(5))), {"5 dimensions"});
  expect_error("GGUF", "tensor dimension 2^62 (elements overflow the file)", load(patched(info + 4, std::uint64_t(1) << 62)),
               {"cannot fit"});
  expect_error("GGUF", "tensor dimension 0", load(patched(info + 4, std::uint64_t(0))), {"is zero or overflows"});
  {
    std::string b = good;  // the data section ends with output_norm.weight (4 floats)
    poke<float>(b, b.size() - 4, std::numeric_limits<float>::quiet_NaN());
    expect_error("GGUF", "NaN in a tensor", load(b), {"output_norm.weight", "NaN"});
    poke<float>(b, b.size() - 4, 2e7f);
    expect_error("GGUF", "2e7 in a tensor", load(b), {"output_norm.weight", "element 3 is 2e+07", "beyond the 1e+06"});
  }
  {
    std::string b = good;  // tokenizer: a piece with invalid UTF-8 ("<unk>" is the first piece)
    b[after_gguf_string(b, "<unk>") - 5] = '\xff';
    spit(f, b);
    expect_error("GGUF", "invalid UTF-8 in a tokenizer piece", [&] { (void)load_gguf_tokenizer(f); }, {"not valid UTF-8"});
  }
}

// ---- safetensors ----------------------------------------------------------------------------

namespace {
std::string safetensors_with_header(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t n = header_json.size();
  std::memcpy(out.data(), &n, 8);
  return out + header_json + data;
}
}  // namespace

TEST_CASE("safetensors: truncation, header length, JSON, offsets, dtype, shape, NaN", "[reliability]") {
  using namespace hyplora::formats;
  const std::string good = slurp(seed("safetensors", "adapter.safetensors"));
  REQUIRE(parse_safetensors(good, "adapter.safetensors").tensors.size() == 4);
  for (std::size_t n = 0; n < good.size(); ++n) {
    const std::string m = error_of([&] { (void)parse_safetensors(std::string_view(good).substr(0, n), "adapter.safetensors"); });
    INFO("truncated to " << n << ": " << m);
    REQUIRE(m.find("adapter.safetensors") != std::string::npos);
  }
  auto parse = [](const std::string& b) { return [b] { (void)parse_safetensors(b, "adapter.safetensors"); }; };
  std::string huge = good;
  poke<std::uint64_t>(huge, 0, std::uint64_t(1) << 62);
  expect_error("safetensors", "header length 2^62", parse(huge), {"header length 4611686018427387904 exceeds"});
  expect_error("safetensors", "header length 1", parse(safetensors_with_header("{", "")), {"too short"});
  expect_error("safetensors", "header is not JSON", parse(safetensors_with_header("{\"a\": ", "")), {"not valid JSON"});
  expect_error("safetensors", "header is a JSON array", parse(safetensors_with_header("[1, 2]  ", "")), {"not a JSON object"});
  const std::string data(16, '\0');
  expect_error("safetensors", "overlapping data_offsets",
               parse(safetensors_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                             data.substr(0, 12))),
               {"overlaps"});
  expect_error("safetensors", "data_offsets beyond the data section",
               parse(safetensors_with_header(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data.substr(0, 8))),
               {"outside the 8-byte data section"});
  expect_error("safetensors", "begin > end", parse(safetensors_with_header(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data)),
               {"data_offsets [8, 0]"});
  expect_error("safetensors", "dtype I8 (unsupported)",
               parse(safetensors_with_header(R"({"a":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})", data.substr(0, 4))),
               {"unsupported dtype \"I8\""});
  expect_error("safetensors", "shape [3] but 16 bytes of F32",
               parse(safetensors_with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data)),
               {"data_offsets span 16"});
  expect_error("safetensors", "negative shape entry",
               parse(safetensors_with_header(R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data)),
               {"not a non-negative integer"});
  expect_error("safetensors", "shape product overflows 64 bits",
               parse(safetensors_with_header(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", data)),
               {"shape overflows"});
  expect_error("safetensors", "missing data_offsets", parse(safetensors_with_header(R"({"a":{"dtype":"F32","shape":[4]}})", data)),
               {"data_offsets"});
  expect_error("safetensors", "unused gap between tensors",
               parse(safetensors_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data)), {"gap of 8"});
  std::string nan_data(16, '\0');
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(nan_data.data() + 8, &nan, 4);
  expect_error("safetensors", "NaN value",
               parse(safetensors_with_header(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", nan_data)),
               {"element 2 is NaN"});
  const auto st = parse_safetensors(good, "adapter.safetensors");
  expect_error("safetensors", "adapter tensor with another shape than the model's",
               [&] { (void)st.require("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {8, 4}, "adapter.safetensors"); },
               {"has shape [2, 4], expected [8, 4]"});
}

// ---- data sets ------------------------------------------------------------------------------

TEST_CASE("data sets: broken lines, missing fields, wrong types, UTF-8, NaN, structure", "[reliability]") {
  using namespace hyplora::data;
  TempDir tmp;
  const fs::path f = tmp.path / "train.jsonl";
  const std::string ok = R"({"question": "Tom has 2 apples and buys 3. How many?", "answer": "2 + 3 = 5\n#### 5"})";
  auto gsm = [&](const std::string& text) {
    spit(f, text);
    return [&] { (void)load_file(f.string(), DataFormat::gsm8k, BadRecordPolicy::reject); };
  };
  expect_error("data (GSM8K jsonl)", "line 2 broken JSON", gsm(ok + "\n{\"question\": \"x\", \n" + ok + "\n"), {"train.jsonl:2:", "broken JSON"});
  expect_error("data (GSM8K jsonl)", "missing field 'answer'", gsm(ok + "\n" + ok + "\n{\"question\": \"q\"}\n"),
               {"train.jsonl:3:", "missing field 'answer'"});
  expect_error("data (GSM8K jsonl)", "'question' is a number", gsm("{\"question\": 7, \"answer\": \"#### 7\"}\n"),
               {"train.jsonl:1:", "field 'question' is a number, expected a string"});
  expect_error("data (GSM8K jsonl)", "no '####' answer", gsm("{\"question\": \"q\", \"answer\": \"just words\"}\n"), {"train.jsonl:1:"});
  expect_error("data (GSM8K jsonl)", "invalid UTF-8 (0xFF) on line 2", gsm(ok + "\n{\"question\": \"caf\xff\", \"answer\": \"#### 1\"}\n"),
               {"train.jsonl:2:", "invalid UTF-8"});
  expect_error("data (GSM8K jsonl)", "record is an array", gsm("[1, 2]\n"), {"train.jsonl:1:"});
  // a .jsonl file is read as JSON Lines even when its first line is an array (it was read as one
  // JSON array, and the error spoke of text after the closing ']')
  expect_error("data (GSM8K jsonl)", "first line [1, 2], then records", gsm("[1, 2]\n" + ok + "\n"),
               {"train.jsonl:1:", "record is a JSON array, expected an object"});
  spit(f, "[1, 2]\n" + ok + "\n");
  CHECK(load_file(f.string(), DataFormat::gsm8k, BadRecordPolicy::skip).records.size() == 1);
  expect_error("data (GSM8K jsonl)", "a 17 MiB record on line 2", gsm(ok + "\n{\"question\": \"" + std::string(17u << 20, 'a') + "\"}\n"),
               {"train.jsonl:2:", "longer than the 16 MiB limit"});
  expect_error("data", "/dev/zero (never ends)", [&] { (void)load_file("/dev/zero", DataFormat::gsm8k); },
               {"/dev/zero", "not a regular file"});
  expect_error("data", "a directory", [&] { (void)load_file(tmp.path.string(), DataFormat::gsm8k); }, {"not a regular file"});
  expect_error("data (GSM8K jsonl)", "empty file", gsm(""), {"train.jsonl:1:", "empty data file"});
  expect_error("data (GSM8K jsonl)", "missing file", [&] { (void)load_file((tmp.path / "none.jsonl").string(), DataFormat::gsm8k); },
               {"none.jsonl", "cannot open"});

  // skip policy: the good records stay, every bad one is reported with its line
  spit(f, ok + "\n{broken\n" + ok + "\n{\"question\": \"q\"}\n");
  const auto r = load_file(f.string(), DataFormat::gsm8k, BadRecordPolicy::skip);
  CHECK(r.records.size() == 2);
  REQUIRE(r.problems.size() == 2);
  CHECK(r.problems[0].find("train.jsonl:2:") != std::string::npos);
  CHECK(r.problems[1].find("train.jsonl:4:") != std::string::npos);

  const fs::path m = tmp.path / "mawps.json";
  auto mawps = [&](const std::string& text) {
    spit(m, text);
    return [&] { (void)load_file(m.string(), DataFormat::mawps, BadRecordPolicy::reject); };
  };
  const std::string rec = R"J({"id": 1, "original_text": "Tom had 5 apples and got 3 more .", "equation": "X=(5.0+3.0)", "ans": 8.0})J";
  expect_error("data (MAWPS json)", "'ans' is NaN (\"nan\")",
               mawps("[\n" + rec + ",\n{\"id\": 2, \"original_text\": \"t\", \"equation\": \"X=1\", \"ans\": \"nan\"}\n]"),
               {"mawps.json:3:", "'ans'"});
  expect_error("data (MAWPS json)", "'ans' is a boolean", mawps("[{\"id\": 2, \"original_text\": \"t\", \"equation\": \"X=1\", \"ans\": true}]"),
               {"mawps.json:1:", "'ans' is a boolean"});
  expect_error("data (MAWPS json)", "missing ']'", mawps("[\n" + rec + ",\n"), {"mawps.json:", "missing ']'"});
  expect_error("data (MAWPS json)", "last record not closed", mawps("[\n" + rec + ",\n" + rec.substr(0, 9)), {"mawps.json:3:", "not closed"});
  expect_error("data (MAWPS json)", "unterminated string", mawps("[\n" + rec + ",\n{\"id\": \"abc"), {"mawps.json:3:", "unterminated string"});
  expect_error("data (MAWPS json)", "text after the closing ']'", mawps("[" + rec + "] trailing"), {"unexpected text after the closing ']'"});
  expect_error("data (MAWPS json)", "stray '}' between records (fuzzing: looped forever under skip)",
               mawps("[\n" + rec + "\n} ,\n" + rec + "\n]"), {"mawps.json:"});
  spit(m, "[\n" + rec + "\n} ,\n" + rec + "\n]");
  const auto skipped = load_file(m.string(), DataFormat::mawps, BadRecordPolicy::skip);
  CHECK(skipped.skipped >= 1);
  // equations: std::stod's out_of_range ended the run as "stod"; text that is no expression was trained on
  const auto with_equation = [&](const std::string& eq) {
    return "[\n" + rec + ",\n{\"id\": 2, \"original_text\": \"t\", \"equation\": \"" + eq + "\", \"ans\": 5.0}\n]";
  };
  expect_error("data (MAWPS json)", "a 400-digit number in 'equation'", mawps(with_equation("X=(" + std::string(400, '9') + "+1)")),
               {"mawps.json:3:", "field 'equation': number", "is out of range"});
  expect_error("data (MAWPS json)", "'equation' is \"hello world\"", mawps(with_equation("hello world")),
               {"mawps.json:3:", "field 'equation' is not an arithmetic expression"});
  expect_error("data (MAWPS json)", "'equation' is \"X=((3.0+2.0\"", mawps(with_equation("X=((3.0+2.0")),
               {"mawps.json:3:", "'(' not closed"});
  spit(m, with_equation("hello world"));
  CHECK(load_file(m.string(), DataFormat::mawps, BadRecordPolicy::skip).skipped == 1);
}

// ---- configuration --------------------------------------------------------------------------

namespace {
/// `--config FILE` through util::JsonConfig into a CLI11 app with typed options, as `hyplora train` does.
void parse_config(const fs::path& file, int& rank, double& lr, std::vector<std::string>& targets,
                  std::vector<std::string> more_args = {}) {
  CLI::App app("t");
  auto* sub = app.add_subcommand("train");
  sub->add_option("--rank", rank);
  sub->add_option("--lr", lr);
  sub->add_option("--targets", targets)->delimiter(',');
  hyplora::util::add_json_config(sub);
  std::vector<std::string> args{"train", "--config", file.string()};
  args.insert(args.end(), more_args.begin(), more_args.end());
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  app.parse(args);
}
}  // namespace

TEST_CASE("config files and settings: unknown keys, wrong types, values out of range", "[reliability]") {
  using hyplora::train::TrainSettings;
  auto settings = [](const std::string& text) {
    return [text] {
      TrainSettings s;
      from_json(nlohmann::json::parse(text), s);
      s.validate();
    };
  };
  expect_error("settings.json", "unknown key", settings(R"({"builtin": true, "rnak": 8})"), {"unknown training setting 'rnak'"});
  expect_error("settings.json", "rank is a string", settings(R"({"builtin": true, "rank": "eight"})"), {"'rank' has the wrong type"});
  expect_error("settings.json", "not an object", settings("[1]"), {"must be a JSON object"});
  expect_error("settings.json", "rank 0", settings(R"({"builtin": true, "rank": 0})"), {"--rank must be in [1, 4096], got 0"});
  expect_error("settings.json", "lr -0.1", settings(R"({"builtin": true, "lr": -0.1})"), {"--lr must be positive"});
  expect_error("settings.json", "curvature 0", settings(R"({"builtin": true, "curvature": 0})"), {"--curvature K must be positive"});
  expect_error("settings.json", "curvature -1", settings(R"({"builtin": true, "curvature": -1})"), {"--curvature K must be positive"});
  expect_error("settings.json", "dropout 1", settings(R"({"builtin": true, "dropout": 1})"), {"--dropout"});
  expect_error("settings.json", "unknown target module", settings(R"({"builtin": true, "targets": ["q", "qq"]})"), {"unknown module 'qq'"});
  expect_error("settings.json", "rank 1e20 (beyond int)", settings(R"({"builtin": true, "rank": 1e20})"), {"rank"});
  expect_error("settings.json", "no data", settings(R"({})"), {"no training data"});
  // registered test sets are for evaluation only (override: "allow-test-data": true)
  expect_error("settings.json", "data \"gsm8k-test\" (a registered test set)", settings(R"({"data": ["gsm8k-test"]})"),
               {"--data 'gsm8k-test'", "gsm8k-train", "--allow-test-data"});
  expect_error("settings.json", "val-data \"mawps-test\"", settings(R"({"builtin": true, "val-data": "mawps-test"})"),
               {"--val-data 'mawps-test'", "mawps-valid", "--allow-test-data"});

  TempDir tmp;
  const fs::path f = tmp.path / "config.json";
  int rank = 0;
  double lr = 0;
  std::vector<std::string> targets;
  spit(f, R"({"rank": 4, "lr": 0.01, "targets": ["q", "v"]})");
  parse_config(f, rank, lr, targets);
  CHECK(rank == 4);  // a subcommand's --config is read (CLI11 2.1 alone reads only the top-level app's)
  CHECK(lr == 0.01);
  CHECK(targets == std::vector<std::string>{"q", "v"});
  rank = 0;
  targets.clear();
  parse_config(f, rank, lr, targets, {"--rank", "16"});
  CHECK(rank == 16);  // the command line wins over the file
  CHECK(targets == std::vector<std::string>{"q", "v"});
  auto config = [&](const std::string& text) {
    spit(f, text);
    return [&] { parse_config(f, rank, lr, targets); };
  };
  expect_error("--config FILE", "not JSON", config("{rank: 4"), {"not valid JSON"});
  expect_error("--config FILE", "a JSON array", config("[1, 2]"), {"JSON object"});
  expect_error("--config FILE", "nested object", config(R"({"rank": {"a": 1}})"), {"'rank'"});
  expect_error("--config FILE", "unknown key", config(R"({"rnak": 4})"), {"config.json", "unknown setting 'rnak'"});
  expect_error("--config FILE", "missing file", [&] { parse_config(tmp.path / "none.json", rank, lr, targets); }, {"none.json"});
  // a folder aborted `hyplora train` (std::ios_base::failure thrown out of the option callback); a
  // FIFO blocked forever: both are refused before they are opened, naming the path
  const fs::path folder = tmp.path / "conf_dir";
  fs::create_directory(folder);
  expect_error("--config FILE", "a folder", [&] { parse_config(folder, rank, lr, targets); },
               {folder.string(), "--config must be a JSON file, not a folder"});
  CHECK_THROWS_AS(parse_config(folder, rank, lr, targets), CLI::ParseError);  // reported by the CLI, not a crash
  const fs::path fifo = tmp.path / "fifo.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  expect_error("--config FILE", "a FIFO (named pipe)", [&] { parse_config(fifo, rank, lr, targets); },
               {fifo.string(), "not a FIFO"});
  // a value the option cannot take names the file and the key (CLI11 alone says only "--rank")
  expect_error("--config FILE", "rank is \"eight\"", config(R"({"rank": "eight"})"), {"config.json", "setting 'rank'", "eight"});
  expect_error("--config FILE", "rank 1e20 (out of int range)", config(R"({"rank": 1e20})"), {"config.json", "setting 'rank'"});
}

TEST_CASE("seed options: a negative value or one of 2^64 or more is refused, naming the flag", "[reliability]") {
  // CLI11 wrapped -1 to 2^64-1 and saturated 99999999999999999999999 to 2^64-1 (stored as the seed)
  auto parse_seed = [](const std::string& value) {
    CLI::App app("t");
    std::uint64_t seed = 7;
    app.add_option("--seed", seed)->check(hyplora::cli::non_negative_integer());
    app.parse(std::vector<std::string>{value, "--seed"});  // CLI11 parses a reversed vector
    return seed;
  };
  CHECK(parse_seed("0") == 0);
  CHECK(parse_seed("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
  CHECK(parse_seed("0x10") == 16);  // CLI11 reads base prefixes
  expect_error("any --seed", "-1", [&] { parse_seed("-1"); }, {"--seed", "must be >= 0, got -1"});
  expect_error("any --seed", "18446744073709551616 (2^64)", [&] { parse_seed("18446744073709551616"); },
               {"--seed", "must be < 2^64, got 18446744073709551616"});
  expect_error("any --seed", "99999999999999999999999", [&] { parse_seed("99999999999999999999999"); },
               {"--seed", "must be < 2^64, got 99999999999999999999999"});
  CHECK_THROWS_AS(parse_seed("99999999999999999999999"), CLI::ValidationError);  // exit 105, as -1
}

// ---- atomic writes under SIGKILL ------------------------------------------------------------

namespace {
/// Version n of the test file: "v<n>:" then n-dependent filler of a length that varies with n, then
/// a trailer with the length, so a torn or mixed file is detected.
std::string version_content(unsigned n) {
  std::string s = "v" + std::to_string(n) + ":";
  const std::size_t len = 50'000 + (n * 7919u) % 200'000;
  s.reserve(len + 32);
  for (std::size_t i = 0; s.size() < len; ++i) s += char('a' + (n + i) % 26);
  return s + "|len=" + std::to_string(s.size()) + "|end";
}
bool is_complete_version(const std::string& s) {
  const auto colon = s.find(':');
  if (s.empty() || s[0] != 'v' || colon == std::string::npos) return false;
  const unsigned n = unsigned(std::stoul(s.substr(1, colon - 1)));
  return s == version_content(n);
}
}  // namespace

TEST_CASE("atomic writes: a writer SIGKILLed at random moments leaves the old or the new file, whole", "[reliability]") {
  TempDir tmp;
  const fs::path target = tmp.path / "adapter.safetensors";
  hyplora::formats::write_file_atomically(target, version_content(0));
  std::mt19937 rng(12345);
  unsigned last_version = 0;
  for (int round = 0; round < 25; ++round) {
    // The kill moments follow the writer's progress, not the clock: the writer reports each committed
    // version with one byte on a pipe; after a random 1..3 of them, a random 0-2 ms more lands the
    // kill at a random point inside a later write (its temporary file, the fsyncs or the rename).
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    const unsigned first_version = 1000u * unsigned(round + 1);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // the writer: new versions as fast as it can until killed
      ::close(pipe_fds[0]);
      for (unsigned n = first_version;; ++n) {
        try {
          hyplora::formats::write_file_atomically(target, version_content(n));
        } catch (...) {
          ::_exit(3);
        }
        const char committed = 'c';
        if (::write(pipe_fds[1], &committed, 1) != 1) ::_exit(4);
      }
    }
    ::close(pipe_fds[1]);
    const int wanted = std::uniform_int_distribution<int>(1, 3)(rng);
    int committed = 0;
    std::string failure;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (committed < wanted && failure.empty()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        failure = "the writer committed " + std::to_string(committed) + " of " + std::to_string(wanted) +
                  " versions in 30 s";
        break;
      }
      pollfd pfd{pipe_fds[0], POLLIN, 0};
      const int ready = ::poll(&pfd, 1, int(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) {
        failure = std::string("poll failed: ") + std::strerror(errno);
        break;
      }
      if (ready == 0) continue;  // the deadline check above reports it
      char buf[64];
      const ssize_t got = ::read(pipe_fds[0], buf, sizeof buf);
      if (got > 0) committed += int(got);
      else if (got == 0) failure = "the writer exited before it was killed (a write failed)";
      else if (errno != EINTR) failure = std::string("read failed: ") + std::strerror(errno);
    }
    if (failure.empty())
      std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 2'000)(rng)));
    REQUIRE(::kill(child, SIGKILL) == 0);  // a dead, unreaped child can still be signalled
    ::close(pipe_fds[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("round " << round);
    if (!failure.empty()) FAIL(failure);
    REQUIRE(WIFSIGNALED(status));  // killed, not failed
    const std::string now = slurp(target);
    INFO(now.size() << " bytes, starts " << now.substr(0, 12));
    REQUIRE(is_complete_version(now));
    const unsigned version = unsigned(std::stoul(now.substr(1, now.find(':') - 1)));
    // the target holds a version this writer committed (it reported one before the kill), and a kill
    // never takes it back to an older one
    CHECK(version >= first_version);
    CHECK(version > last_version);
    last_version = version;
  }
  // the temporary files a kill leaves behind never replace the target and are named for cleanup
  for (const auto& e : fs::directory_iterator(tmp.path)) {
    const std::string name = e.path().filename().string();
    if (name != "adapter.safetensors") CHECK(name.rfind(".adapter.safetensors.tmp.", 0) == 0);
  }
  // ... and the cleanup removes exactly those (their writers are dead), keeping a live writer's file,
  // the target and files that only look similar
  const std::string live = ".settings.json.tmp." + std::to_string(::getpid()) + ".0";
  spit(tmp.path / live, "in progress");
  spit(tmp.path / ".notes.tmp.x.1", "not ours");
  spit(tmp.path / "plain.tmp.2147483000.0", "no leading dot");
  hyplora::formats::remove_stale_temp_files(tmp.path);
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.path)) left.insert(e.path().filename().string());
  CHECK(left == std::set<std::string>{"adapter.safetensors", live, ".notes.tmp.x.1", "plain.tmp.2147483000.0"});
  CHECK(hyplora::formats::remove_stale_temp_files(tmp.path / "no-such-folder").empty());
}
