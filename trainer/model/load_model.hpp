#pragma once
// Load a model file of any supported format into ModelWeights, by its content: a GGUF file
// (magic "GGUF") through formats/gguf, otherwise a llama2.c checkpoint; and the tokenizer that
// goes with it (an explicit llama2.c tokenizer.bin, else the GGUF's own vocabulary).
#include <filesystem>

#include "model/weights.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hyplora::llm {

bool is_gguf_file(const std::filesystem::path& path);
ModelWeights load_model_weights(const std::filesystem::path& path);
/// tokenizer_path empty: the model must be a GGUF carrying its vocabulary. vocab_size > 0 is
/// the model's vocabulary, which a llama2.c tokenizer must have (run.c reads that many tokens).
Tokenizer load_tokenizer(const std::filesystem::path& tokenizer_path, const std::filesystem::path& model_path,
                         int vocab_size);

/// A model's weights and its tokenizer.
struct ModelAndTokenizer {
  ModelWeights weights;
  Tokenizer tokenizer;
};
/// load_model_weights(model_path) and load_tokenizer(tokenizer_path, model_path, its vocabulary), with
/// a GGUF model read and validated once for both (its tensors were decoded twice).
ModelAndTokenizer load_model_and_tokenizer(const std::filesystem::path& model_path,
                                           const std::filesystem::path& tokenizer_path);

}  // namespace hyplora::llm
