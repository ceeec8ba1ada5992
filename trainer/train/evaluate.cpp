#include "train/evaluate.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <stdexcept>

#include "train/dataset.hpp"
#include "train/trainer.hpp"
#include "util/progress.hpp"

namespace hyplora::train {

GenerationLimits parse_max_new_tokens(const std::string& text, const std::string& option) {
  if (text == "auto") return GenerationLimits{kAutoMaxNewTokens};
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 1 || value > kMaxNewTokensLimit)
    throw std::invalid_argument(option + " must be 'auto' or an integer in [1, " + std::to_string(kMaxNewTokensLimit) +
                                "], got '" + text + "'");
  return GenerationLimits{int(value)};
}

std::string max_new_tokens_text(const GenerationLimits& limits) {
  return limits.automatic() ? std::string("auto") : std::to_string(limits.max_new_tokens);
}

nlohmann::json max_new_tokens_json(const GenerationLimits& limits) {
  return limits.automatic() ? nlohmann::json("auto") : nlohmann::json(limits.max_new_tokens);
}

ResolvedLimit resolve_limit(const GenerationLimits& limits, const std::vector<data::Record>& records,
                            const data::PromptTemplate& tmpl, const llm::Tokenizer& tok) {
  ResolvedLimit r;
  if (!limits.automatic()) {
    if (limits.max_new_tokens < 1) throw std::invalid_argument("max_new_tokens must be 'auto' or >= 1");
    r.max_new_tokens = limits.max_new_tokens;
    r.rule = "fixed";
    return r;
  }
  bool without_reference = records.empty();
  for (const auto& rec : records) {
    if (rec.answer_text.empty()) {
      without_reference = true;
      continue;
    }
    r.longest_reference = std::max(r.longest_reference, response_token_count(rec, tmpl, tok));
  }
  r.rule = without_reference ? "auto-fallback" : "auto";
  int longest = r.longest_reference;
  if (limits.longest_trained_response > longest) {  // the model was trained to write longer answers
    r.longest_trained = limits.longest_trained_response;
    longest = r.longest_trained;
  }
  const long from_data = longest >= 0 ? long(longest) + kAutoMarginTokens : 0;
  r.max_new_tokens = int(std::min<long>(kMaxNewTokensLimit, std::max<long>(from_data, without_reference ? kAutoFallbackTokens : 1)));
  return r;
}

std::string generate_greedy(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                            const data::Record& record, const GenerationLimits& limits, GenerationEnd* end) {
  return generate_greedy(model, tok, tmpl, tok.encode(tmpl.model_prompt(record), true, false), limits, end);
}

std::string generate_greedy(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                            const std::vector<int>& ids, const GenerationLimits& limits, GenerationEnd* end) {
  if (limits.max_new_tokens < 1)
    throw std::invalid_argument("generate_greedy: max_new_tokens must be resolved to >= 1 (\"auto\": resolve_limit)");
  const int seq_len = model.config().seq_len;
  const int vocab = model.config().vocab_size;
  GenerationEnd why = GenerationEnd::no_room;
  if (end) *end = why;
  if (ids.empty()) return {};
  if (int(ids.size()) >= seq_len) return {};  // no room to generate
  const float* logits = nullptr;
  for (int pos = 0; pos < int(ids.size()); ++pos) logits = model.forward(ids[std::size_t(pos)], pos);
  std::string text;
  int prev = ids.back();
  int n = 0, pos = int(ids.size());
  for (; n < limits.max_new_tokens && pos < seq_len; ++n, ++pos) {
    const int next = int(std::max_element(logits, logits + vocab) - logits);
    if (next == tok.eos_id() || next == tok.bos_id()) {
      why = GenerationEnd::eos;
      break;
    }
    text += tok.decode(prev, next);
    if (tmpl.should_stop(text)) {
      why = GenerationEnd::stop_text;
      break;
    }
    prev = next;
    if (n + 1 < limits.max_new_tokens && pos + 1 < seq_len) logits = model.forward(next, pos);
  }
  if (why == GenerationEnd::no_room) why = n >= limits.max_new_tokens ? GenerationEnd::limit : GenerationEnd::context;
  if (end) *end = why;
  return std::string(tmpl.cut_at_stop(text));
}

eval::DatasetAccuracy evaluate_records(llm::LlamaModel& model, const llm::Tokenizer& tok,
                                       const data::PromptTemplate& tmpl, const std::vector<data::Record>& records,
                                       const std::string& label, const GenerationLimits& limits, bool quiet,
                                       std::size_t evaluate_first) {
  eval::DatasetAccuracy acc;
  acc.name = label;
  // one limit for the whole set, from all its records (never from the record being generated)
  const ResolvedLimit limit = resolve_limit(limits, records, tmpl, tok);
  acc.limit = limit;
  const GenerationLimits resolved{limit.max_new_tokens};
  const std::size_t count = std::min(evaluate_first, records.size());
  util::Progress progress("eval " + label, long(count));
  for (std::size_t i = 0; i < count; ++i) {
    // the context training used, encoded once for the length check and the generation
    const std::vector<int> ids = tok.encode(tmpl.model_prompt(records[i]), true, false);
    if (ids.size() >= std::size_t(model.config().seq_len)) ++acc.prompts_too_long;
    GenerationEnd end = GenerationEnd::no_room;
    const std::string generated = generate_greedy(model, tok, tmpl, ids, resolved, &end);
    if (end == GenerationEnd::limit) ++acc.generations_at_limit;
    if (end == GenerationEnd::context) ++acc.generations_at_context;
    if (end == GenerationEnd::eos) ++acc.generations_at_eos;
    eval::add_item(acc, eval::score_item(records[i], generated));
    if (!quiet) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "acc %.3f", acc.overall.accuracy());
      progress.update(long(i + 1), buf, i + 1 == count);
    }
  }
  if (!quiet) progress.finish();
  if (acc.prompts_too_long > 0)  // train drops such examples with a count; an evaluation scores them wrong and says so
    std::cerr << "hyplora: warning: " << acc.prompts_too_long << " of " << count << " prompts of " << label
              << " leave no room to generate within the model's context of " << model.config().seq_len
              << " tokens: scored as wrong\n";
  if (acc.generations_at_limit > 0)  // scored as they are: a cut answer is most likely wrong
    std::cerr << "hyplora: warning: " << acc.generations_at_limit << " of " << count << " generations of "
              << label << " stopped at the new-token limit, " << limit.describe()
              << ", without the stop text (cut answers, scored as generated); "
              << (limits.automatic() ? "the limit is already past the longest answer of the set's references and of the "
                                       "model's training examples (where known): these generations most likely did not "
                                       "end their answer"
                                     : "raise --max-new-tokens (or give auto)")
              << "\n";
  if (acc.generations_at_context > 0)
    std::cerr << "hyplora: warning: " << acc.generations_at_context << " of " << count << " generations of "
              << label << " ran into the model's context of " << model.config().seq_len
              << " tokens without the stop text (cut answers, scored as generated)\n";
  return acc;
}

std::vector<EvalSet> load_eval_sets(const std::vector<std::string>& specs, std::size_t builtin_count, std::uint64_t seed,
                                    int depth_min, int depth_max, long limit, data::BadRecordPolicy policy) {
  std::vector<EvalSet> sets;
  for (const auto& spec : specs) {
    EvalSet set;
    set.name = spec;
    if (spec == "builtin" || spec.rfind("builtin:", 0) == 0) {
      const std::string split = spec == "builtin" ? "test" : spec.substr(8);
      set.name = "builtin-" + split;
      set.records = builtin_records(seed, depth_min, depth_max, split, builtin_count);
    } else {
      set.records = load_data_source(spec, policy).records;
    }
    if (limit > 0) set.evaluate_first = std::size_t(limit);  // the "auto" limit still sees every record
    sets.push_back(std::move(set));
  }
  return sets;
}

eval::AccuracyReport evaluate_sets(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                                   const std::vector<EvalSet>& sets, const GenerationLimits& limits, bool quiet) {
  eval::AccuracyReport report;
  for (const auto& set : sets)
    report.datasets.push_back(evaluate_records(model, tok, tmpl, set.records, set.name, limits, quiet, set.evaluate_first));
  return report;
}

}  // namespace hyplora::train
