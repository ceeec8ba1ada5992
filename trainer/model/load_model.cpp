#include "model/load_model.hpp"

#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>
#include <fstream>
#include <stdexcept>

#include "formats/format_error.hpp"
#include "formats/gguf.hpp"
#include "formats/llama2c.hpp"

namespace hyplora::llm {

bool is_gguf_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in && std::memcmp(magic, "GGUF", 4) == 0;
}

namespace {

bool has_gguf_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".gguf";
}

/// The first bytes of a file, printable (for the "bad magic" message).
std::string magic_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  std::string text;
  for (std::streamsize i = 0; i < in.gcount(); ++i) {
    const unsigned char c = static_cast<unsigned char>(magic[i]);
    if (c >= 32 && c < 127) {
      text += char(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      text += hex;
    }
  }
  return text;
}

// The vocabulary a GGUF model carries, or an error that says to give --tokenizer.
Tokenizer tokenizer_of_gguf(const formats::GgufFile& gguf, const std::filesystem::path& model_path) {
  try {
    return formats::tokenizer_from_gguf(gguf, model_path.string());
  } catch (const formats::FormatError& e) {
    throw std::runtime_error(std::string(e.what()) + " (the GGUF carries no usable tokenizer: give --tokenizer, a llama2.c tokenizer.bin)");
  }
}

}  // namespace

ModelWeights load_model_weights(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(path.string() + ": model file not found");
  if (is_gguf_file(path)) return formats::load_gguf_model(path);
  // a .gguf name whose content is not GGUF: say so rather than report it as a bad llama2.c header
  if (has_gguf_extension(path)) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && size < 4)
      throw formats::FormatError(path.string(), 0, "not a GGUF file: " + std::to_string(size) +
                                                       " bytes, shorter than the 4-byte magic 'GGUF'");
    throw formats::FormatError(path.string(), 0, "not a GGUF file: bad magic '" + magic_text(path) + "' (expected 'GGUF')");
  }
  return read_llama2c(path);
}

Tokenizer load_tokenizer(const std::filesystem::path& tokenizer_path, const std::filesystem::path& model_path,
                         int vocab_size) {
  if (!tokenizer_path.empty()) {
    try {
      return Tokenizer::load_llama2c(tokenizer_path, vocab_size);
    } catch (const formats::FormatError& e) {
      // The tokenizer file is read against the model's vocabulary size: a tokenizer of another
      // model fails here, so the message names both files.
      if (vocab_size <= 0) throw;
      std::string problem = e.what();
      const std::string prefix = tokenizer_path.string() + ": ";
      if (problem.rfind(prefix, 0) == 0) problem.erase(0, prefix.size());
      throw formats::FormatError(tokenizer_path.string(),
                                 problem + " [read as the tokenizer of model " + model_path.string() +
                                     ", whose vocabulary has " + std::to_string(vocab_size) +
                                     " tokens: is it that model's tokenizer?]");
    }
  }
  if (!model_path.empty() && is_gguf_file(model_path)) return tokenizer_of_gguf(formats::read_gguf(model_path), model_path);
  throw std::invalid_argument("no tokenizer: give --tokenizer (a llama2.c tokenizer.bin) for " + model_path.string());
}

ModelAndTokenizer load_model_and_tokenizer(const std::filesystem::path& model_path,
                                           const std::filesystem::path& tokenizer_path) {
  if (std::filesystem::exists(model_path) && is_gguf_file(model_path)) {
    const formats::GgufFile gguf = formats::read_gguf(model_path);
    ModelWeights weights = formats::llama_weights_from_gguf(gguf, model_path.string());
    const int vocab = weights.config.vocab_size;
    if (!tokenizer_path.empty()) return {std::move(weights), load_tokenizer(tokenizer_path, model_path, vocab)};
    return {std::move(weights), tokenizer_of_gguf(gguf, model_path)};
  }
  ModelWeights weights = load_model_weights(model_path);
  const int vocab = weights.config.vocab_size;
  return {std::move(weights), load_tokenizer(tokenizer_path, model_path, vocab)};
}

}  // namespace hyplora::llm
