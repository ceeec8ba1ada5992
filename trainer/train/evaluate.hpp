#pragma once
// Evaluation: greedy generation with a new-token limit that stops at the template's stop text
// (a newline: the TinyStories models never learned EOS, SPEC section 5), answer extraction, and
// accuracy per data set and depth (eval/metrics.hpp).
#include <string>
#include <vector>

#include "data/prompt_template.hpp"
#include "data/record.hpp"
#include "eval/metrics.hpp"
#include "model/llama.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hyplora::train {

struct GenerationLimits {
  int max_new_tokens = 40;
};

/// Greedy continuation of `prompt` (BOS + prompt tokens), stopped at the template's stop text, at
/// max_new_tokens, at EOS, or at the context length. Returns the generated text cut at the stop.
std::string generate_greedy(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                            const std::string& prompt, const GenerationLimits& limits);
/// The same from the prompt's tokens (BOS first), for a caller that has encoded the prompt already.
/// Empty when there are no tokens or no room left in the context.
std::string generate_greedy(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                            const std::vector<int>& prompt_ids, const GenerationLimits& limits);

/// Generates an answer for every record and scores it. `label` names the data set in the report;
/// progress goes to stderr unless quiet.
eval::DatasetAccuracy evaluate_records(llm::LlamaModel& model, const llm::Tokenizer& tok,
                                       const data::PromptTemplate& tmpl, const std::vector<data::Record>& records,
                                       const std::string& label, const GenerationLimits& limits, bool quiet = false);

/// A named evaluation set.
struct EvalSet {
  std::string name;
  std::vector<data::Record> records;
};

/// Specs as in load_data_spec, plus "builtin" / "builtin:test" (the built-in task's test split,
/// `builtin_count` problems, depths depth_min..depth_max, seeded by `seed`). limit > 0 keeps the first
/// `limit` records of each set.
std::vector<EvalSet> load_eval_sets(const std::vector<std::string>& specs, std::size_t builtin_count, std::uint64_t seed,
                                    int depth_min, int depth_max, long limit, data::BadRecordPolicy policy);

/// evaluate_records over every set.
eval::AccuracyReport evaluate_sets(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                                   const std::vector<EvalSet>& sets, const GenerationLimits& limits, bool quiet = false);

}  // namespace hyplora::train
