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
  bool already_complete = false;  ///< --resume of a finished run: nothing trained, no file touched
  /// false: the run has no validation set (--val-examples 0), so adapter_best is the last adapter
  bool validated = true;
  std::string stop_reason;
  double initial_val_loss = 0, final_val_loss = 0, best_val_loss = 0;
  long best_step = -1;
  long skipped_steps = 0;
  double train_seconds = 0;       ///< this process
  double total_train_seconds = 0; ///< the whole run, the parts before a --resume included
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
  /// <out>/checkpoint.safetensors (the log is cut back to the checkpoint's step); a checkpoint that
  /// is already at the last step gives already_complete and leaves every file as it is. Without
  /// resume, an --out folder that already holds a run is refused unless `overwrite` is set (then the
  /// old run's files are removed first). A fresh run that fails before its first checkpoint removes
  /// the files it wrote (and the folder, when it made it and it is empty).
  TrainResult run(bool resume);

  AdapterSet& adapters() { return *adapters_; }
  /// The longest response of the training examples in tokens, after the cutoff (longest_response;
  /// stored in the adapters' metadata as kLongestResponseKey).
  int longest_trained_response() const;
  /// Mean masked loss over the validation examples (no gradient, no dropout); NaN without any.
  /// With `interrupted` given, a stop request (SIGINT, request_stop()) ends it between batches:
  /// *interrupted is set and NaN returned. A status line shows progress on a terminal.
  double validation_loss(bool* interrupted = nullptr);

  /// Test hooks: called after the gradients of a step are complete (before the NaN check); and a
  /// step count after which this process stops as if interrupted (-1: never).
  std::function<void(long step, AdapterSet&)> after_backward;
  long stop_after_steps = -1;
  /// Replace a run already in the output folder (hyplora train --overwrite; the demo, which owns its folders).
  bool overwrite = false;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<AdapterSet> adapters_;
};

/// How `hyplora train` starts a run.
struct RunRequest {
  bool resume = false;        ///< continue <out>/checkpoint.safetensors with the settings stored there
  bool overwrite = false;     ///< replace a run already in <out> (not with resume)
  bool threads_given = true;  ///< with resume: s.threads was given; else the checkpoint's value is used
  /// With resume: the setting keys (flag names) given on the command line or in --config. Each must
  /// equal the checkpoint's value (a differing one would be ignored: an error naming it); out,
  /// quiet and threads may differ.
  std::vector<std::string> given_settings;
};

/// Convenience: prepare_inputs + TrainingRun::run (+ threads). With resume the settings come from
/// <out>/checkpoint.safetensors; only out, quiet and (when given) threads are taken from `s`.
TrainResult run_training(const TrainSettings& s, const RunRequest& request);
inline TrainResult run_training(const TrainSettings& s, bool resume) {
  RunRequest request;
  request.resume = resume;
  return run_training(s, request);
}

/// Throws std::invalid_argument, naming the folder, when a run may not start in `out`: without
/// resume and overwrite, a folder that already holds a run (a checkpoint, a summary, or an adapter
/// trained past step 0); resume together with overwrite.
void check_out_folder(const std::filesystem::path& out, bool resume, bool overwrite);

/// Sets OpenMP and OpenBLAS threads when n > 0; throws std::invalid_argument for n outside
/// [0, kMaxThreads] (check_thread_count).
void set_thread_count(int n);

}  // namespace hyplora::train
