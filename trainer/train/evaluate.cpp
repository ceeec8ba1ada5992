#include "train/evaluate.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "train/dataset.hpp"
#include "train/trainer.hpp"
#include "util/progress.hpp"

namespace hyplora::train {

std::string generate_greedy(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                            const std::string& prompt, const GenerationLimits& limits) {
  return generate_greedy(model, tok, tmpl, tok.encode(prompt, true, false), limits);
}

std::string generate_greedy(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                            const std::vector<int>& ids, const GenerationLimits& limits) {
  const int seq_len = model.config().seq_len;
  const int vocab = model.config().vocab_size;
  if (ids.empty()) return {};
  if (int(ids.size()) >= seq_len) return {};  // no room to generate
  const float* logits = nullptr;
  for (int pos = 0; pos < int(ids.size()); ++pos) logits = model.forward(ids[std::size_t(pos)], pos);
  std::string text;
  int prev = ids.back();
  for (int n = 0, pos = int(ids.size()); n < limits.max_new_tokens && pos < seq_len; ++n, ++pos) {
    const int next = int(std::max_element(logits, logits + vocab) - logits);
    if (next == tok.eos_id() || next == tok.bos_id()) break;
    text += tok.decode(prev, next);
    if (tmpl.should_stop(text)) break;
    prev = next;
    if (n + 1 < limits.max_new_tokens && pos + 1 < seq_len) logits = model.forward(next, pos);
  }
  return std::string(tmpl.cut_at_stop(text));
}

eval::DatasetAccuracy evaluate_records(llm::LlamaModel& model, const llm::Tokenizer& tok,
                                       const data::PromptTemplate& tmpl, const std::vector<data::Record>& records,
                                       const std::string& label, const GenerationLimits& limits, bool quiet) {
  eval::DatasetAccuracy acc;
  acc.name = label;
  util::Progress progress("eval " + label, long(records.size()));
  for (std::size_t i = 0; i < records.size(); ++i) {
    // the context training used, encoded once for the length check and the generation
    const std::vector<int> ids = tok.encode(tmpl.model_prompt(records[i]), true, false);
    if (ids.size() >= std::size_t(model.config().seq_len)) ++acc.prompts_too_long;
    const std::string generated = generate_greedy(model, tok, tmpl, ids, limits);
    eval::add_item(acc, eval::score_item(records[i], generated));
    if (!quiet) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "acc %.3f", acc.overall.accuracy());
      progress.update(long(i + 1), buf, i + 1 == records.size());
    }
  }
  if (!quiet) progress.finish();
  if (acc.prompts_too_long > 0)  // train drops such examples with a count; an evaluation scores them wrong and says so
    std::cerr << "hyplora: " << acc.prompts_too_long << " of " << records.size() << " prompts of " << label
              << " leave no room to generate within the model's context of " << model.config().seq_len
              << " tokens: scored as wrong\n";
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
    if (limit > 0 && long(set.records.size()) > limit) set.records.resize(std::size_t(limit));
    sets.push_back(std::move(set));
  }
  return sets;
}

eval::AccuracyReport evaluate_sets(llm::LlamaModel& model, const llm::Tokenizer& tok, const data::PromptTemplate& tmpl,
                                   const std::vector<EvalSet>& sets, const GenerationLimits& limits, bool quiet) {
  eval::AccuracyReport report;
  for (const auto& set : sets) report.datasets.push_back(evaluate_records(model, tok, tmpl, set.records, set.name, limits, quiet));
  return report;
}

}  // namespace hyplora::train
