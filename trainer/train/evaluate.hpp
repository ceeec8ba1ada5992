#pragma once
// Evaluation: greedy generation with a new-token limit that stops at the template's stop text
// (a newline: the TinyStories models never learned EOS, SPEC section 5), answer extraction, and
// accuracy per data set and depth (eval/metrics.hpp).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/prompt_template.hpp"
#include "data/record.hpp"
#include "eval/metrics.hpp"
#include "model/llama.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hyplora::train {

/// The value of GenerationLimits::max_new_tokens that means "auto" (the CLI's and the grid's "auto").
inline constexpr int kAutoMaxNewTokens = 0;
/// "auto": the margin over the longest reference response of the evaluated set.
inline constexpr int kAutoMarginTokens = 16;
/// "auto" for a set with a record that has no reference response text (Record::answer_text empty):
/// at least this many new tokens (the trainer's default --cutoff).
inline constexpr int kAutoFallbackTokens = 256;
/// The largest explicit limit.
inline constexpr int kMaxNewTokensLimit = 1000000;

struct GenerationLimits {
  /// New tokens per answer, or kAutoMaxNewTokens (the default): decided per evaluated set from its
  /// records by resolve_limit (the longest reference response + kAutoMarginTokens).
  int max_new_tokens = kAutoMaxNewTokens;
  /// For "auto": the longest response, in tokens, of the examples the evaluated model was trained on
  /// (-1: not known, as for a base model). "auto" takes the larger of it and the set's longest
  /// reference: LLM-Adapters' MAWPS references are "The answer is N." alone (39 new tokens), and cut
  /// 27 of 238 answers that a model trained on MAWPS's worked equations writes in full.
  int longest_trained_response = -1;
  bool automatic() const { return max_new_tokens == kAutoMaxNewTokens; }
};

/// --max-new-tokens / the grid's "max_new_tokens" as text: "auto" or an integer in [1, 1000000].
/// Throws std::invalid_argument naming `option` and the text.
GenerationLimits parse_max_new_tokens(const std::string& text, const std::string& option);
/// "auto" or the number ("40").
std::string max_new_tokens_text(const GenerationLimits& limits);
/// "auto" or the number, as JSON (reports, grid.json, sweep cell fingerprints).
nlohmann::json max_new_tokens_json(const GenerationLimits& limits);

/// The limit one evaluated set gets (recorded with its accuracy).
using ResolvedLimit = eval::GenerationLimitUsed;

/// The limit of a set: a fixed limit as given; "auto" from the set's records, never per record:
/// the longest reference response (response_token_count: the training target's response tokens,
/// stop text included, with this template and tokenizer), or limits.longest_trained_response where
/// that is longer, + kAutoMarginTokens; at least kAutoFallbackTokens where a record has no reference
/// text. Generation also stops at the context.
ResolvedLimit resolve_limit(const GenerationLimits& limits, const std::vector<data::Record>& records,
                            const data::PromptTemplate& tmpl, const llm::Tokenizer& tok);

/// Why a greedy generation ended.
enum class GenerationEnd {
  stop_text,  ///< the template's stop text (a finished answer)
  eos,        ///< EOS or BOS
  limit,      ///< max_new_tokens new tokens without the stop text (cut)
  context,    ///< the model's context filled up without the stop text (cut)
  no_room,    ///< nothing generated: no prompt tokens, or no room left in the context
};

/// Greedy answer to a record: the continuation of BOS + the template's model_prompt (the context
/// training used; prompt() may end in a space that training merges into the response), stopped at
/// the template's stop text, at max_new_tokens, at EOS, or at the context length. Returns the
/// generated text cut at the stop; *end (when given) says which. limits.max_new_tokens must be
/// resolved (not "auto").
std::string generate_greedy(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                            const data::Record& record, const GenerationLimits& limits, GenerationEnd* end = nullptr);
/// The same from the prompt's tokens (BOS first), for a caller that has encoded the prompt already.
/// Empty when there are no tokens or no room left in the context.
std::string generate_greedy(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                            const std::vector<int>& prompt_ids, const GenerationLimits& limits,
                            GenerationEnd* end = nullptr);

/// Generates an answer for every record and scores it. `label` names the data set in the report;
/// progress goes to stderr unless quiet. The limit is resolved once for the set (resolve_limit) and
/// recorded in the result with the generations it cut (a warning on stderr when any, also if quiet).
/// `evaluate_first` < records.size() evaluates only the first records, while "auto" is still decided
/// from all of them (so that `eval --limit N` generates each record as a whole run does).
eval::DatasetAccuracy evaluate_records(llm::LlamaModel& model, const llm::Tokenizer& tok,
                                       const data::PromptTemplate& tmpl, const std::vector<data::Record>& records,
                                       const std::string& label, const GenerationLimits& limits, bool quiet = false,
                                       std::size_t evaluate_first = std::size_t(-1));

/// A named evaluation set: all its records, of which the first `evaluate_first` are evaluated.
struct EvalSet {
  std::string name;
  std::vector<data::Record> records;
  std::size_t evaluate_first = std::size_t(-1);
};

/// Specs as in load_data_spec, plus "builtin" / "builtin:test" (the built-in task's test split,
/// `builtin_count` problems, depths depth_min..depth_max, seeded by `seed`). limit > 0 evaluates the
/// first `limit` records of each set (EvalSet::evaluate_first; the set's "auto" limit is decided
/// from all its records).
std::vector<EvalSet> load_eval_sets(const std::vector<std::string>& specs, std::size_t builtin_count, std::uint64_t seed,
                                    int depth_min, int depth_max, long limit, data::BadRecordPolicy policy);

/// evaluate_records over every set.
eval::AccuracyReport evaluate_sets(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                                   const std::vector<EvalSet>& sets, const GenerationLimits& limits, bool quiet = false);

}  // namespace hyplora::train
