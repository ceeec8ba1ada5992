#pragma once
// The shared stories260K model and its tokenizer, loaded for the tests of the trainer that run it
// (test_trainer, test_eval_protocol); skipped with a message where the shared folder lacks them.
#include <memory>
#include <utility>

#include "model/llama.hpp"
#include "model/load_model.hpp"
#include "support.hpp"

namespace hyplora::test {

struct Stories {
  std::unique_ptr<llm::LlamaModel> model;
  llm::Tokenizer tok;
};

inline Stories load_stories() {
  const auto model_path = require_shared("models/stories260K/stories260K.bin");
  const auto tok_path = require_shared("models/stories260K/tok512.bin");
  Stories s;
  auto w = llm::load_model_weights(model_path);
  s.tok = llm::load_tokenizer(tok_path, model_path, w.config.vocab_size);
  s.model = std::make_unique<llm::LlamaModel>(std::move(w));
  return s;
}

}  // namespace hyplora::test
