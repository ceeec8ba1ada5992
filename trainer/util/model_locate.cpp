#include "util/model_locate.hpp"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <system_error>
#include <unistd.h>

#include "util/sha256.hpp"
#include "util/subprocess.hpp"

namespace fs = std::filesystem;

namespace hyplora::util {

const KnownFile& stories260k_model_file() {
  static const KnownFile f{"stories260K.bin",
                           "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/stories260K.bin",
                           1056540, "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696"};
  return f;
}
const KnownFile& stories260k_tokenizer_file() {
  static const KnownFile f{"tok512.bin", "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/tok512.bin",
                           6227, "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312"};
  return f;
}

fs::path shared_dir() {
  if (const char* env = std::getenv("HYPLORA_SHARED_DIR"); env && *env) return env;
#ifdef HYPLORA_SHARED_DIR_DEFAULT
  return HYPLORA_SHARED_DIR_DEFAULT;
#else
  return "../shared";
#endif
}

fs::path tokenizer_next_to(const fs::path& model) {
  const fs::path dir = model.parent_path().empty() ? fs::path(".") : model.parent_path();
  // llama2.c header: dim, hidden, layers, heads, kv_heads, vocab (negative = separate classifier), seq_len
  std::ifstream in(model, std::ios::binary);
  std::int32_t header[7] = {};
  if (in.read(reinterpret_cast<char*>(header), sizeof header)) {
    const int vocab = std::abs(header[5]);
    if (vocab > 0 && vocab < (1 << 24)) {
      fs::path candidate = dir / ("tok" + std::to_string(vocab) + ".bin");
      if (fs::exists(candidate)) return candidate;
    }
  }
  if (fs::exists(dir / "tokenizer.bin")) return dir / "tokenizer.bin";
  return {};
}

namespace {

void verify_llama2c_header(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::int32_t h[7] = {};
  if (!in.read(reinterpret_cast<char*>(h), sizeof h))
    throw std::runtime_error(path.string() + ": too short for a llama2.c header (28 bytes)");
  // stories260K: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512, seq 512
  const std::int32_t want[7] = {64, 172, 5, 8, 4, 512, 512};
  for (int i = 0; i < 7; ++i)
    if (h[i] != want[i])
      throw std::runtime_error(path.string() + ": llama2.c header field " + std::to_string(i) + " is " +
                               std::to_string(h[i]) + ", stories260K has " + std::to_string(want[i]));
}

fs::path cache_dir() {
  if (const char* env = std::getenv("HYPLORA_CACHE_DIR"); env && *env) return fs::path(env) / "stories260K";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache/hyplora/stories260K";
  return fs::temp_directory_path() / "hyplora-cache/stories260K";
}

bool have_curl() { return program_in_path("curl"); }

std::string offline_help(const std::string& problem) {
  const auto& m = stories260k_model_file();
  const auto& t = stories260k_tokenizer_file();
  return problem +
         "\nThe default model stories260K could not be found or downloaded. Either\n"
         "  * pass --model PATH (and --tokenizer PATH) to a llama2.c checkpoint, or set HYPLORA_MODEL, or\n"
         "  * set HYPLORA_SHARED_DIR to a folder holding models/stories260K/{stories260K.bin,tok512.bin}, or\n"
         "  * on a machine with network access download\n      " + std::string(m.url) + "\n      " + t.url +
         "\n    into " + cache_dir().string() + "/ (sizes " + std::to_string(m.size) + " and " +
         std::to_string(t.size) + " bytes).";
}

/// Downloads one file with curl into the cache, verified before it takes its final name.
fs::path download_known(const KnownFile& f) {
  const fs::path dir = cache_dir();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(offline_help("cannot create cache folder " + dir.string() + ": " + ec.message()));
  const fs::path final_path = dir / f.name;
  const fs::path temp = dir / (std::string(".") + f.name + ".part." + std::to_string(::getpid()));
  std::cerr << "hyplora: downloading " << f.url << "\n";
  // no shell: the cache path (from $HOME or HYPLORA_CACHE_DIR) is an argument, whatever it holds
  const auto r = run_process({"curl", "-fsSL", "--retry", "2", "--connect-timeout", "20", "-o", temp.string(), f.url});
  if (!r.started || r.status != 0) {
    fs::remove(temp, ec);
    throw std::runtime_error(offline_help(std::string("download of ") + f.url + " failed (offline?)" +
                                          (r.output.empty() ? std::string() : ": " + r.output)));
  }
  try {
    verify_known_file(temp, f);
  } catch (...) {
    fs::remove(temp, ec);
    throw;
  }
  fs::rename(temp, final_path);
  return final_path;
}

bool verified(const fs::path& p, const KnownFile& f) {
  try {
    verify_known_file(p, f);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

void verify_known_file(const fs::path& path, const KnownFile& expected) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) throw std::runtime_error(path.string() + ": cannot read size: " + ec.message());
  if (size != expected.size)
    throw std::runtime_error(path.string() + ": size " + std::to_string(size) + " bytes, expected " +
                             std::to_string(expected.size) + " for " + expected.name);
  const std::string digest = sha256_file(path);
  if (digest != expected.sha256)
    throw std::runtime_error(path.string() + ": sha256 " + digest + ", expected " + expected.sha256 + " for " +
                             expected.name);
  if (std::string(expected.name) == stories260k_model_file().name) verify_llama2c_header(path);
}

ModelFiles locate_model(const std::string& explicit_model, const std::string& explicit_tokenizer,
                        bool allow_download) {
  ModelFiles out;
  auto finish = [&](fs::path model, std::string source) {
    if (!fs::exists(model)) throw std::runtime_error("model file not found: " + model.string() + " (from " + source + ")");
    out.model = std::move(model);
    out.source = std::move(source);
    if (!explicit_tokenizer.empty()) {
      out.tokenizer = explicit_tokenizer;
      if (!fs::exists(out.tokenizer)) throw std::runtime_error("tokenizer file not found: " + explicit_tokenizer);
    } else {
      out.tokenizer = tokenizer_next_to(out.model);
    }
    return out;
  };
  if (!explicit_model.empty()) return finish(explicit_model, "--model");
  if (const char* env = std::getenv("HYPLORA_MODEL"); env && *env) return finish(env, "$HYPLORA_MODEL");
  const fs::path shared = shared_dir() / "models/stories260K" / stories260k_model_file().name;
  if (fs::exists(shared)) return finish(shared, "shared");

  const auto& m = stories260k_model_file();
  const auto& t = stories260k_tokenizer_file();
  const fs::path cached_model = cache_dir() / m.name, cached_tok = cache_dir() / t.name;
  if (fs::exists(cached_model) && fs::exists(cached_tok) && verified(cached_model, m) && verified(cached_tok, t))
    return finish(cached_model, "cache");
  if (!allow_download)
    throw std::runtime_error(offline_help("no model given and none at " + shared.string() + " or in the cache"));
  if (!have_curl()) throw std::runtime_error(offline_help("curl is not installed, so the model cannot be downloaded"));
  fs::path model_path = download_known(m);
  download_known(t);
  return finish(model_path, "download");
}

}  // namespace hyplora::util
