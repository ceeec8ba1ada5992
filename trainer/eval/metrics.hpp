#pragma once
// Accuracy per data set (and per depth for the built-in task), the weighted average by test-set
// size, a JSON form (nlohmann-json) and a printed table.
#include <nlohmann/json.hpp>

#include <array>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/record.hpp"

namespace hyplora::eval {

/// One evaluated problem.
struct ItemResult {
  std::string id;
  int depth = 0;                 ///< Record::depth (0 = none)
  bool correct = false;
  std::string generated;         ///< the model's text (cut at the stop text)
  std::optional<double> predicted_number;
  std::optional<char> predicted_choice;
  std::string label;             ///< "5" or "C"
};

struct Tally {
  std::size_t total = 0;
  std::size_t correct = 0;
  double accuracy() const { return total == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(total); }
};

/// The new-token limit one evaluated set got, and how it was decided (train::resolve_limit).
struct GenerationLimitUsed {
  int max_new_tokens = 0;
  std::string rule;            ///< "fixed"; "auto" (longest reference + margin); "auto-fallback" (a record has no reference text)
  int longest_reference = -1;  ///< the longest reference response in tokens (-1: no record has one, or "fixed")
  /// the longest response of the evaluated model's training examples, in tokens, when known and
  /// larger than the set's longest reference ("auto" then takes it; -1: not known or not larger)
  int longest_trained = -1;
  /// "59 (auto: longest reference response 43 + 16)", "40 (fixed)",
  /// "103 (auto: longest training response 87 + 16; longest reference response 23)",
  /// "64 (auto-fallback: a record has no reference response; longest reference response 43)".
  std::string describe() const;
};

struct DatasetAccuracy {
  std::string name;
  Tally overall;
  std::map<int, Tally> by_depth;  ///< only items with depth > 0
  std::vector<ItemResult> items;  ///< kept for the report (may be empty)
  /// Prompts that leave no room to generate within the model's context: scored as wrong (nothing
  /// generated), counted here so a report says how many.
  std::size_t prompts_too_long = 0;
  /// Generations that stopped at the new-token limit without the template's stop text (cut
  /// answers, scored as generated), and those that filled the model's context without it.
  std::size_t generations_at_limit = 0;
  std::size_t generations_at_context = 0;
  /// Generations that the model ended with EOS (or BOS) before the stop text: a model trained on the
  /// template writes the stop text, so these are answers the training did not shape.
  std::size_t generations_at_eos = 0;
  /// Generations from which the rules extract no answer (no number; no letter A-E): scored as wrong;
  /// a model that loops or echoes the question shows here.
  std::size_t no_answer = 0;
  /// The new-token limit this set was evaluated with (max_new_tokens 0: not recorded, as in older reports).
  GenerationLimitUsed limit;
};

/// A count of a DatasetAccuracy beside its tallies, with its key in a report's JSON. The report's
/// writer and reader walk this list, and the sweep's summed counts (sweep::CutCounts) follow it, so
/// that a new count is a member and a line here. A key absent from a report reads as 0 (older reports).
struct DatasetCount {
  const char* key;
  std::size_t DatasetAccuracy::*member;
};
inline constexpr std::array<DatasetCount, 5> dataset_counts{{
    {"prompts_too_long", &DatasetAccuracy::prompts_too_long},
    {"generations_at_limit", &DatasetAccuracy::generations_at_limit},
    {"generations_at_context", &DatasetAccuracy::generations_at_context},
    {"generations_at_eos", &DatasetAccuracy::generations_at_eos},
    {"no_answer", &DatasetAccuracy::no_answer},
}};

struct AccuracyReport {
  std::vector<DatasetAccuracy> datasets;
  /// Sum of correct over sum of totals = the average of the per-set accuracies weighted by set size.
  Tally weighted() const;
};

/// Builds the per-item result of a record and its generated text (answer extraction of SPEC section 5).
ItemResult score_item(const data::Record& record, const std::string& generated);

/// Adds an item to a data set's tallies (overall and by depth); keep_item stores it in items.
void add_item(DatasetAccuracy& dataset, ItemResult item, bool keep_item = true);

/// {"datasets":[{"name","total","correct","accuracy","by_depth":{"1":{..}},"items":[..]}],
///  "weighted":{"total","correct","accuracy"}}; with_items=false leaves the items out.
nlohmann::json to_json(const AccuracyReport& report, bool with_items = true);
AccuracyReport report_from_json(const nlohmann::json& j);  ///< inverse of to_json (items included when present)

/// A fixed-width table: one row per data set (and per depth under it), then the weighted average;
/// under it the new-token limit of each set and, where nonzero, the generations cut by the limit or
/// the context and the prompts too long to generate from.
void print_table(std::ostream& out, const AccuracyReport& report);

}  // namespace hyplora::eval
