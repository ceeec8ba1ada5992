#pragma once
// From data-set names / files to tokenized training examples and padded batches.
//
// A data spec is a registered name ("gsm8k-train", see data/registry.hpp), "FORMAT:PATH" with FORMAT
// one of gsm8k, mawps, llm-adapters, llm-adapters-choice, svamp, aqua, or a PATH whose format is
// recognised from its name (gsm8k*.jsonl, *mawps*, *svamp*, *aqua*, llm-adapters test.json);
// "builtin:<split>" is the built-in story task.
#include <cstdint>
#include <string>
#include <vector>

#include "data/prompt_template.hpp"
#include "data/record.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hyplora::train {

/// Loads a data spec. Bad records are rejected (DataError naming file:line) or skipped with one
/// warning line per record on stderr, as `policy` says; with `report`, the skipped records, the
/// loader's notes and the repeated questions go to stderr (a caller that loads the same spec again
/// for the real work passes false the first time).
data::LoadResult load_data_source(const std::string& spec, data::BadRecordPolicy policy, bool report = true);

/// One example: BOS + prompt + response tokens; loss on positions >= prompt_tokens (response).
struct TokenizedExample {
  std::vector<int> tokens;
  int prompt_tokens = 0;
  int depth = 0;
};

/// Tokenizes records with the template; examples longer than `cutoff` are cut to it, and an example
/// with no response token left is dropped (counted in *dropped); one kept with part of its response
/// cut off is counted in *cut (it never shows its final answer and stop text).
std::vector<TokenizedExample> tokenize_examples(const std::vector<data::Record>& records,
                                                const data::PromptTemplate& tmpl, const llm::Tokenizer& tok,
                                                int cutoff, std::size_t* dropped = nullptr, std::size_t* cut = nullptr);

/// The response tokens of a record as training tokenizes its target (tokenize_examples without the
/// cutoff): the tokens of prompt + response after the model's context. What a model has to generate
/// to reproduce the record's training target, the stop text (the response suffix) included.
int response_token_count(const data::Record& record, const data::PromptTemplate& tmpl, const llm::Tokenizer& tok);

/// The longest response of tokenized examples, in tokens, as trained (after the cutoff): what
/// `train` stores in an adapter (kLongestResponseKey) and what "auto" generation must allow. 0 for none.
int longest_response(const std::vector<TokenizedExample>& examples);

/// A padded micro-batch, rows b*T + t: targets[t] = tokens[t+1]; mask 1 where the target is a
/// response token (or any non-padding token when train_on_inputs).
struct Batch {
  int B = 0, T = 0;
  std::vector<int> tokens, targets;
  std::vector<float> mask;
  long target_tokens = 0;  ///< sum of mask
};
Batch make_batch(const std::vector<TokenizedExample>& examples, const std::vector<std::size_t>& indices,
                 bool train_on_inputs);

/// The example order of training: epoch e is a seeded permutation of 0..n-1; the k-th example
/// drawn overall is order(k / n)[k % n]. A function of (seed, k) only, so a resumed run draws
/// exactly what an uninterrupted one does.
class ExampleOrder {
 public:
  ExampleOrder(std::size_t n, std::uint64_t seed) : n_(n), seed_(seed) {}
  std::size_t at(std::uint64_t k);

 private:
  std::size_t n_;
  std::uint64_t seed_;
  std::uint64_t epoch_ = ~std::uint64_t(0);
  std::vector<std::size_t> perm_;
};

}  // namespace hyplora::train
