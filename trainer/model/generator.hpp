#pragma once
// Text generation exactly as llama2.c run.c's generate(): encode the prompt with BOS, feed it one
// position at a time through the KV-cache forward, sample after the prompt, stop after `steps`
// positions (BOS and prompt included, as run.c -n) or when the BOS token (1) is produced, and emit
// each piece through run.c's decode + safe_printf filter.
#include <functional>
#include <string>
#include <vector>

#include "model/llama.hpp"
#include "model/sampler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hyplora::llm {

struct Generation {
  std::string text;         // everything run.c prints before its final newline
  std::vector<int> tokens;  // BOS, prompt tokens, generated tokens (the ones fed or emitted)
  int prompt_tokens = 0;    // including BOS
  int positions = 0;        // forward passes run
};

/// run.c's step normalisation: steps <= 0 or > seq_len means seq_len.
int normalize_steps(int steps, int seq_len);

/// on_piece (optional) receives each printed piece as it is produced (for streaming to stdout).
Generation generate(LlamaModel& model, const Tokenizer& tokenizer, const std::string& prompt, int steps,
                    Sampler& sampler, const std::function<void(const std::string&)>& on_piece = {});

}  // namespace hyplora::llm
