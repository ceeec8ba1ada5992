#pragma once
// The resumable state of a training run, in one safetensors file written atomically:
//   tensors  params, adam_m, adam_v       (flat, in AdapterSet unit order)
//   metadata "format" = "hyplora-checkpoint/1", "state" (RunState as JSON), "settings" (TrainSettings)
//   (the state keys initial_val_loss and last_val_loss are optional: older checkpoints lack them)
// The example order and the learning rate are functions of the step, and dropout masks of the
// count of training forwards, so these values are everything a bit-exact continuation needs.
#include <cstdint>
#include <filesystem>
#include <limits>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/settings.hpp"

namespace hyplora::train {

struct RunState {
  long step = 0;                       ///< optimiser steps done (including skipped ones)
  std::uint64_t training_forwards = 0; ///< micro-batch forwards done (dropout streams drawn)
  long adam_t = 0;                     ///< AdamW updates applied (bias correction)
  double best_val_loss = std::numeric_limits<double>::infinity();
  long best_step = -1;
  long skipped_steps = 0;              ///< steps dropped by the NaN/Inf policy
  int consecutive_bad = 0;
  long tokens_seen = 0;                ///< target tokens trained on
  double elapsed_s = 0;                ///< training time before this process
  /// Validation loss of the untrained adapter (step 0) and at the last validation; NaN = none
  /// (checkpoints written before these keys existed load with NaN).
  double initial_val_loss = std::numeric_limits<double>::quiet_NaN();
  double last_val_loss = std::numeric_limits<double>::quiet_NaN();
  /// A signal stopped the validation due at `step` (the initial one at step 0): a resume runs it
  /// before the next step.
  bool val_pending = false;
  /// The training losses since the last log line (their sum and count): a resume continues the
  /// window, so its next log line is the uninterrupted run's (checkpoints of older builds: 0, 0).
  double loss_window_sum = 0;
  long loss_window_steps = 0;
  double last_grad_norm = 0;           ///< of the last applied step (what the next log line names)
};
void to_json(nlohmann::json& j, const RunState& s);
void from_json(const nlohmann::json& j, RunState& s);

struct Checkpoint {
  RunState state;
  TrainSettings settings;
  std::vector<float> params, adam_m, adam_v;
  /// data::kPromptBoundary for checkpoints of this build; empty when an older build wrote it (read only)
  std::string prompt_boundary;
};

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& c);
/// Throws FormatError naming the file for a missing/corrupt checkpoint or mismatched sizes.
Checkpoint load_checkpoint(const std::filesystem::path& path);

}  // namespace hyplora::train
