#pragma once
// The grid of a sweep (issue 9): adapter variant x curvature x learning rate x seed on the built-in
// story task, every cell with the same training budget (optimiser steps, batch, training problems)
// and the same evaluation sets.
//
//   arm  = variant (+ curvature for the consistent hyperbolic variants): what is being compared;
//   cell = arm x learning rate x seed: one training run and its evaluation.
// The learning rate is chosen per arm on the VALIDATION split (aggregate.hpp); test accuracy is only
// reported, never used for a choice.
//
// Grid file (JSON; every key optional, unknown keys are an error):
//   { "variants":   ["lora", "lora_scaled", "naive", "hyplora_lorentz", "hyplora_poincare", "paper"],
//     "curvatures": [1.0, 0.5, "learned", {"K": 2.0, "learned": true, "variants": ["hyplora_lorentz"]}],
//                   // consistent hyperbolic variants only; "variants" restricts a setting to some of them
//     "lrs": [0.003], "seeds": [0, 1, 2, 3, 4],
//     "train": { "steps": 300, "batch": 16, "rank": 8, "alpha": 16, ... },   // keys of `hyplora train`
//     "task":  { "seed": 0, "depth_min": 1, "depth_max": 3, "train": 3000, "validation": 96, "test": 240 },
//     "eval_data": ["mawps-test", "gsm8k-test", "la-svamp"], "eval_limit": 100,
//     "max_new_tokens": "auto", "base": true }   // or an integer; auto: per set, its longest reference + 16
// A real data set as the task (instead of the built-in one):
//     "task":  { "train_data": ["mawps-train"], "validation_data": "mawps-valid", "test_data": "mawps-test",
//                "train": 3000, "validation": 96, "test": 240 }   // counts = first N records of each
// "eval_data" are further test sets (registered names or "format:path") evaluated for every cell on
// their first "eval_limit" records; they are reported per set and never used for a choice.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/settings.hpp"

namespace hyplora::sweep {

/// The adapter variants a sweep can compare (the controls of SPEC section 5 included).
const std::vector<std::string>& known_variants();
/// True for the variants whose curvature K is a grid axis (hyplora_lorentz, hyplora_poincare).
bool variant_has_curvature_axis(const std::string& variant);

/// A curvature setting: K (curvature -1/K) fixed, or learned starting from K.
struct CurvatureSetting {
  double K = 1.0;
  bool learned = false;
  std::vector<std::string> only;  ///< variants this setting applies to (empty: every curvature variant)
  bool applies_to(const std::string& variant) const;
  std::string label() const;  ///< "K1", "K0.5", "K1-learned"
  bool operator==(const CurvatureSetting& o) const { return K == o.K && learned == o.learned && only == o.only; }
};
/// "1", "0.5", "learned" (= 1 learned), "2:learned"; throws std::invalid_argument naming the text.
CurvatureSetting parse_curvature(const std::string& text);

/// The shared task: one training set, one validation set and one test set for every cell. The
/// built-in story task by default; a real data set when train_data is given.
struct TaskSpec {
  std::uint64_t seed = 0;  ///< seed of the built-in problems (the cell seed varies init, order, dropout only)
  int depth_min = 1, depth_max = 3;
  long train = 3000;       ///< training problems (real data: the first N records of train_data)
  long validation = 96;    ///< validation problems (validation loss during training and validation accuracy)
  long test = 240;         ///< test problems (built-in: balanced over depths; real data: the first N)
  std::vector<std::string> train_data;  ///< real data sets to train on (registered names or "format:path")
  std::string validation_data;          ///< real data: the validation set (required with train_data)
  std::string test_data;                ///< real data: the test set (required with train_data)
  bool real() const { return !train_data.empty(); }
};

struct SweepGrid {
  std::vector<std::string> variants{"lora", "lora_scaled", "naive", "hyplora_lorentz", "hyplora_poincare", "paper"};
  std::vector<CurvatureSetting> curvatures{CurvatureSetting{}};
  std::vector<double> lrs{3e-3};
  std::vector<std::uint64_t> seeds{0, 1, 2, 3, 4};
  train::TrainSettings train;  ///< shared budget and adapter settings (adapter/manifold/variant/lr/seed set per cell)
  TaskSpec task;
  std::vector<std::string> eval_data;  ///< further test sets evaluated for every cell (reported per set)
  long eval_limit = 100;               ///< records of each eval_data set (the first N)
  int max_new_tokens = 0;      ///< 0 = "auto" (train::kAutoMaxNewTokens): per evaluated set, from its records
  bool base = true;            ///< also evaluate the base model (no adapter) once
  /// sha256 of the model and tokenizer files the cells run on (identify_model); part of every cell's
  /// fingerprint. Not in the grid's JSON; empty: not identified (synthetic cells in tests).
  std::string model_sha256, tokenizer_sha256;

  SweepGrid();                 ///< defaults: 300 steps, batch 16, rank 8, alpha 16, warm-up 30, eval every 50
  /// Throws std::invalid_argument naming the first bad field.
  void validate() const;
};

nlohmann::json to_json(const SweepGrid& g);
/// Missing keys keep the defaults; unknown keys are an error naming the key.
SweepGrid grid_from_json(const nlohmann::json& j);
SweepGrid load_grid(const std::string& path);  ///< errors name the file

/// One cell of the grid.
struct CellSpec {
  std::string variant;          ///< a known variant, or "base" (no adapter)
  bool has_curvature = false;   ///< the curvature axis applies
  CurvatureSetting curvature;
  double lr = 0;
  std::uint64_t seed = 0;

  std::string arm() const;      ///< "lora", "hyplora_lorentz-K1", "base"
  std::string id() const;       ///< "hyplora_lorentz-K1-lr0.003-s2": file-name safe, unique in a grid
};

/// Every cell, ordered seed-major (base first, then for each seed, for each lr, every arm), so a sweep
/// stopped early holds complete seeds for every arm.
std::vector<CellSpec> expand_cells(const SweepGrid& g);

/// The training settings of a cell (out = `run_dir`, quiet, no plot).
train::TrainSettings cell_settings(const SweepGrid& g, const CellSpec& c, const std::string& run_dir);

/// What must match for a recorded cell to be reused: the cell's settings without out/quiet/threads/plot,
/// the task and the generation limit.
nlohmann::json cell_fingerprint(const SweepGrid& g, const CellSpec& c);

/// Finds the model (and tokenizer) as a run would (util::locate_model) and sets the grid's
/// model_sha256 / tokenizer_sha256 from their content.
void identify_model(SweepGrid& g);

}  // namespace hyplora::sweep
