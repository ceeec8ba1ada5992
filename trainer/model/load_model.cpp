#include "model/load_model.hpp"

#include <cstring>
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

ModelWeights load_model_weights(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(path.string() + ": model file not found");
  if (is_gguf_file(path)) return formats::load_gguf_model(path);
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
  if (!model_path.empty() && is_gguf_file(model_path)) return formats::load_gguf_tokenizer(model_path);
  throw std::invalid_argument("no tokenizer: give --tokenizer (a llama2.c tokenizer.bin) for " + model_path.string());
}

}  // namespace hyplora::llm
