#pragma once
// Aggregation of recorded sweep cells (issue 9):
//  1. per arm, the learning rate is chosen on the VALIDATION split: highest mean validation accuracy
//     over seeds (among the lrs with the most seeds recorded), ties by lower mean best validation
//     loss, then by the smaller lr. Test accuracy plays no part in the choice.
//  2. at that lr: mean, sample std and Student-t 95% CI over seeds of the test accuracy, overall and
//     per depth; mean validation-loss curve.
//  3. paired comparisons of every two arms over their common seeds (test accuracy at each arm's
//     chosen lr): mean difference, wins/losses/ties, the exact paired permutation p (with Holm's
//     adjustment over all the pairs of the table) and the exact sign-test p.
//  4. the further test sets (eval_data) at the same lr: mean and 95% CI per set and pooled.
//  Diverged cells (cell_result.hpp: training stopped because it diverged) count as the worst possible
//  validation loss: an lr with fewer diverged cells is always preferred, so a diverged lr is never
//  chosen while some lr of the arm trained with none; among the lrs with the fewest diverged cells
//  the rule above applies to their trained cells. An arm whose every recorded cell diverged is
//  reported as diverged (no lr chosen, no statistics, no pairs). The summary lists the diverged cells
//  and marks them in its tables.
// Outputs (write_summary): summary.md, summary.json, accuracy_by_depth.png, val_loss.png (+ .gp scripts).
#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/statistics.hpp"
#include "sweep/cell_result.hpp"
#include "sweep/grid.hpp"

namespace hyplora::sweep {

struct LrStat {
  std::string arm;
  double lr = 0;
  std::size_t seeds = 0;                                      ///< cells that trained (not diverged)
  double val_accuracy = 0, val_loss = 0, test_accuracy = 0;  ///< means over those seeds (NaN: none)
  bool chosen = false;
  std::size_t diverged = 0;                                   ///< cells of this lr recorded as diverged
};

/// How evaluated answers ended, summed over sets and seeds (eval::DatasetAccuracy's counts): answers
/// that stopped at the new-token limit (cut, scored as generated) or filled the model's context, and
/// prompts that left no room to answer.
struct CutCounts {
  std::size_t answers = 0, at_limit = 0, at_context = 0, prompts_too_long = 0;
  std::size_t at_eos = 0, no_answer = 0;  ///< ended by EOS before the stop text; no answer extracted
  void add(const eval::DatasetAccuracy& d);

  /// Each count after `answers`: its key in summary.json, its column in summary.md, and the
  /// eval::DatasetAccuracy count it sums. add(), the JSON and the table walk this list.
  struct Field {
    const char* key;
    const char* column;
    std::size_t CutCounts::*member;
    std::size_t eval::DatasetAccuracy::*source;
  };
  static constexpr std::array<Field, 5> fields{{
      {"at_limit", "cut at the limit", &CutCounts::at_limit, &eval::DatasetAccuracy::generations_at_limit},
      {"at_context", "cut at the context", &CutCounts::at_context, &eval::DatasetAccuracy::generations_at_context},
      {"prompts_too_long", "prompts too long", &CutCounts::prompts_too_long, &eval::DatasetAccuracy::prompts_too_long},
      {"at_eos", "ended by EOS", &CutCounts::at_eos, &eval::DatasetAccuracy::generations_at_eos},
      {"no_answer", "no answer", &CutCounts::no_answer, &eval::DatasetAccuracy::no_answer},
  }};
};
static_assert(CutCounts::fields.size() == eval::dataset_counts.size(),
              "every count of eval::DatasetAccuracy is summed by sweep::CutCounts");

struct ArmSummary {
  std::string arm, variant, curvature_label;
  double lr = 0;                          ///< chosen on validation
  std::vector<std::uint64_t> seeds;
  std::vector<double> test_accuracy;      ///< per seed (same order as seeds)
  std::vector<double> best_val_losses;    ///< per seed
  eval::Summary test, validation;         ///< overall accuracy over seeds
  std::map<int, eval::Summary> test_by_depth;
  std::map<std::string, eval::Summary> extra_test;  ///< per eval_data set, over seeds
  eval::Summary extra_weighted;                     ///< all eval_data sets pooled (correct / total) per seed
  double best_val_loss = 0;               ///< mean over seeds
  double final_K = 0;                     ///< mean over seeds
  double target_tokens = 0;               ///< mean response tokens trained on
  long steps = 0, batch = 0;
  std::vector<std::pair<long, double>> val_curve;  ///< mean validation loss by step over seeds
  bool diverged = false;                  ///< every recorded cell of the arm diverged: no lr chosen (lr NaN)
  std::size_t diverged_seeds = 0;         ///< diverged cells at the chosen lr (all of them when `diverged`)
  CutCounts test_cuts, extra_cuts;        ///< the test set's and the further sets' answers, seeds at the chosen lr
};

struct DivergedCell {
  std::string id, arm;
  double lr = 0;
  std::uint64_t seed = 0;
  long step = -1;
  std::string reason;
};

struct PairRow {
  std::string a, b;
  eval::PairedComparison cmp;             ///< test accuracy, a - b
  eval::PairedComparison loss_cmp;        ///< best validation loss, a - b (a secondary, continuous measure)
  double holm_p = 1, loss_holm_p = 1;     ///< permutation p adjusted by Holm over all pairs of its table
};

struct SweepSummary {
  std::vector<LrStat> lr_table;
  std::vector<ArmSummary> arms;
  std::vector<PairRow> pairs;
  std::optional<CellResult> base;         ///< the model without adapter
  CutCounts base_test_cuts, base_extra_cuts;  ///< its answers, counted as an arm's (zero without a base)
  std::vector<int> depths;
  std::vector<std::string> extra_sets;    ///< names of the further test sets (eval_data), first-seen order
  std::vector<DivergedCell> diverged;     ///< cells recorded as diverged, in input order
  /// Each evaluated set's new-token limit (GenerationLimitUsed::describe), first-seen order; sets of
  /// records written before the limit was recorded are left out.
  std::vector<std::pair<std::string, std::string>> set_limits;
};

/// Aggregates cells (any order). arm_order lists the arms in display order (arms not listed follow,
/// sorted). Throws std::invalid_argument when two cells share an id.
SweepSummary aggregate(const std::vector<CellResult>& cells, const std::vector<std::string>& arm_order = {},
                       std::size_t resamples = 100000, std::uint64_t permutation_seed = 1);

std::string to_markdown(const SweepSummary& s);
nlohmann::json to_json(const SweepSummary& s);

struct WrittenSummary {
  std::filesystem::path markdown_path;
  std::string markdown;
  SweepSummary summary;
};
/// The recorded cells of `grid` in DIR/cells, in grid order (a cell of another grid, or one recorded
/// under other settings, is left out); none when DIR/cells does not exist (it is not created).
std::vector<CellResult> recorded_cells(const SweepGrid& grid, const std::filesystem::path& dir);
/// Loads the recorded cells of `grid` from DIR/cells (cells of other grids are ignored), aggregates,
/// writes DIR/summary.md, DIR/summary.json and the plots.
WrittenSummary write_summary(const SweepGrid& grid, const std::filesystem::path& dir);

}  // namespace hyplora::sweep
