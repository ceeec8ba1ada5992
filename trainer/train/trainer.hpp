#pragma once
// The training loop of `hyplora train` (and of the demo):
//   per step: grad_accum micro-batches (forward + backward through the frozen model into the
//   adapters), gradients averaged, NaN/Inf policy, global-norm clip, AdamW at the scheduled rate;
//   every log_every steps a JSONL line and the progress line; every eval_every steps the validation
//   loss, the best adapter kept (adapter_best.safetensors), the last one (adapter.safetensors) and
//   the checkpoint (checkpoint.safetensors) saved atomically; at the end the loss-curve plot.
// Output folder: settings.json, train_log.jsonl, adapter.safetensors, adapter_best.safetensors,
// checkpoint.safetensors, loss.png|svg (+ .gp), summary.json.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/record.hpp"
#include "model/llama.hpp"
#include "tokenizer/tokenizer.hpp"
#include "train/adapter_set.hpp"
#include "train/settings.hpp"

namespace hyplora::train {

struct TrainResult {
  long steps = 0;                 ///< optimiser steps done in total (including a resumed part)
  long total_steps = 0;
  bool interrupted = false;       ///< stopped by SIGINT / request_stop(); state saved
  bool stopped_bad = false;       ///< stopped by the NaN/Inf policy; last good files kept
  std::string stop_reason;
  double initial_val_loss = 0, final_val_loss = 0, best_val_loss = 0;
  long best_step = -1;
  long skipped_steps = 0;
  double train_seconds = 0;       ///< this process
  double tokens_per_second = 0;   ///< target + context tokens through the model per second
  std::filesystem::path out_dir, adapter_last, adapter_best;
};

/// Model, tokenizer and records prepared from TrainSettings (model located, data loaded).
struct TrainingInputs {
  std::unique_ptr<llm::LlamaModel> model;
  llm::Tokenizer tokenizer;
  std::vector<data::Record> train, validation;
  std::string model_path;
};
TrainingInputs prepare_inputs(const TrainSettings& s);
/// The built-in task's records for a split (seeded by `seed`, depths min..max).
std::vector<data::Record> builtin_records(std::uint64_t seed, int depth_min, int depth_max, const std::string& split,
                                          std::size_t count);
/// The AdapterSpec the settings describe.
AdapterSpec adapter_spec_from(const TrainSettings& s);

class TrainingRun {
 public:
  /// The model is borrowed (adapters are attached to it for the run and detached after).
  TrainingRun(TrainSettings settings, llm::LlamaModel& model, const llm::Tokenizer& tok,
              std::vector<data::Record> train, std::vector<data::Record> validation);
  ~TrainingRun();

  /// Trains to the end (or until interrupted / stopped). resume: continue from
  /// <out>/checkpoint.safetensors (the log is cut back to the checkpoint's step).
  TrainResult run(bool resume);

  AdapterSet& adapters() { return *adapters_; }
  /// Mean masked loss over the validation examples (no gradient, no dropout).
  double validation_loss();

  /// Test hooks: called after the gradients of a step are complete (before the NaN check); and a
  /// step count after which this process stops as if interrupted (-1: never).
  std::function<void(long step, AdapterSet&)> after_backward;
  long stop_after_steps = -1;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<AdapterSet> adapters_;
};

/// Convenience: prepare_inputs + TrainingRun::run (+ threads). resume reads <out>/settings.json.
TrainResult run_training(const TrainSettings& s, bool resume);

/// Sets OpenMP and OpenBLAS threads when n > 0.
void set_thread_count(int n);

}  // namespace hyplora::train
