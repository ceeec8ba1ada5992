#pragma once
// What one finished cell of a sweep recorded (DIR/cells/<cell-id>.json), and the store that holds
// those files. A cell file is written atomically once the cell's training and evaluation are done,
// so its presence means "finished"; a sweep started again skips it (after checking that it was
// recorded with the same settings).
//
// A cell whose training stopped because it diverged (the trainer's "parameters diverged" stop or the
// NaN/Inf policy's stop) is recorded too, with diverged = true, the trainer's reason and the step:
// it is finished (a rerun does not retry it), it is never evaluated (its tallies are empty), and the
// aggregation treats it as the worst possible validation loss. Records written before this field
// existed have no "diverged" key and load as trained cells.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/metrics.hpp"

namespace hyplora::sweep {

struct CellResult {
  std::string id, arm, variant;   ///< variant "base" = the model without adapter (no training)
  std::string curvature_label;    ///< "K1", "K1-learned" or "" (no curvature axis)
  double lr = 0;
  std::uint64_t seed = 0;
  // budget
  long steps = 0, batch = 0, grad_accum = 1;
  long target_tokens = 0;         ///< response tokens the optimiser saw (the same for every variant at a seed)
  long params = 0;                ///< trainable parameters
  // training
  double initial_val_loss = 0, best_val_loss = 0;
  long best_step = -1;
  double final_K = 0;             ///< mean K of the evaluated (best) adapter
  std::vector<std::pair<long, double>> val_curve;  ///< (step, validation loss)
  // evaluation of the best adapter (by validation loss)
  eval::DatasetAccuracy validation, test;
  std::vector<eval::DatasetAccuracy> extra_tests;  ///< the grid's eval_data sets, in its order
  double train_seconds = 0, eval_seconds = 0;
  // divergence (absent from older records: false)
  bool diverged = false;          ///< training stopped: parameters diverged / non-finite steps
  std::string diverged_reason;    ///< the trainer's stop reason
  long diverged_step = -1;        ///< the optimiser step (1-based) at which it stopped
  nlohmann::json fingerprint;     ///< cell_fingerprint() of the grid that produced it
};

nlohmann::json to_json(const CellResult& r);
/// Throws std::invalid_argument naming the missing or bad field.
CellResult cell_from_json(const nlohmann::json& j);

class ResultsStore {
 public:
  /// creates DIR/cells unless `create` is false (sweep --dry-run only reads: a missing folder holds no cell)
  explicit ResultsStore(std::filesystem::path dir, bool create = true);
  std::filesystem::path cell_path(const std::string& id) const;
  /// The recorded cell, or nothing when there is no file. A file that cannot be read as a cell is an
  /// error naming the file (it was written atomically, so it is not a torn write).
  std::optional<CellResult> load(const std::string& id) const;
  void save(const CellResult& r) const;              ///< atomic (temp file + rename)
  std::vector<CellResult> load_all() const;          ///< every cell file, sorted by id
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace hyplora::sweep
