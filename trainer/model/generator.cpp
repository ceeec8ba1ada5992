#include "model/generator.hpp"

#include <stdexcept>
#include <vector>

namespace hyplora::llm {

int normalize_steps(int steps, int seq_len) { return (steps <= 0 || steps > seq_len) ? seq_len : steps; }

Generation generate(LlamaModel& model, const Tokenizer& tokenizer, const std::string& prompt, int steps,
                    Sampler& sampler, const std::function<void(const std::string&)>& on_piece) {
  const int V = model.config().vocab_size;
  if (tokenizer.vocab_size() != V)
    throw std::invalid_argument("generate: tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                                " tokens but the model's vocabulary is " + std::to_string(V));
  steps = normalize_steps(steps, model.config().seq_len);
  const std::vector<int> prompt_tokens = tokenizer.encode(prompt, true, false);
  if (prompt_tokens.empty()) throw std::invalid_argument("generate: the prompt encodes to no tokens");
  Generation out;
  out.prompt_tokens = static_cast<int>(prompt_tokens.size());
  std::vector<float> logits(V);
  int token = prompt_tokens[0];
  out.tokens.push_back(token);
  int pos = 0;
  while (pos < steps) {
    const float* l = model.forward(token, pos);
    int next;
    if (pos < out.prompt_tokens - 1) {
      next = prompt_tokens[pos + 1];
    } else {
      std::copy(l, l + V, logits.begin());
      next = sampler.sample(logits.data());
    }
    ++pos;
    if (next == 1) break;  // run.c: BOS delimits sequences
    const std::string piece = Tokenizer::printable(tokenizer.decode(token, next));
    out.text += piece;
    if (on_piece && !piece.empty()) on_piece(piece);
    out.tokens.push_back(next);
    token = next;
  }
  out.positions = pos;
  return out;
}

}  // namespace hyplora::llm
