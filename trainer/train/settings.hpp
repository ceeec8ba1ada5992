#pragma once
// Every setting of a training run, in one struct: the CLI binds its flags to the fields, a JSON
// config file can hold them (keys = flag names), and the run writes the resolved settings to
// <out>/settings.json so that --resume and `hyplora eval` know exactly what was trained.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hyplora::train {

/// Upper bound of every --threads flag (libgomp crashes when asked for ~100000 threads).
inline constexpr int kMaxThreads = 1024;
/// Upper bound of the built-in task's problem counts (--builtin-train, --val-examples, eval's
/// --builtin-count, demo's --train-problems / --test-problems): beyond it the records alone take
/// gigabytes, and the splits of the task cannot hold that many distinct problems anyway.
inline constexpr long kMaxBuiltinProblems = 1000000;

/// Upper bound of --epochs: beyond it the step count (epochs x examples / batch) overflowed a long
/// (1e30 ran 1 step) and no run could finish anyway.
inline constexpr double kMaxEpochs = 1e6;
/// Upper bound of --alpha and of an adapter file's stored alpha: the scale alpha/rank multiplies
/// every adapter output (1e30 turned any adapter into garbage).
inline constexpr double kMaxAlpha = 1e6;

/// Throws std::invalid_argument "<flag> must be in [0, 1024] (0 = default), got N" when n is out of range.
void check_thread_count(int n, const char* flag = "--threads");

struct TrainSettings {
  // model
  std::string model;      ///< llama2.c checkpoint; empty = default stories260K (see util/model_locate.hpp)
  std::string tokenizer;  ///< empty = next to the model
  // adapter
  std::string adapter = "hyplora";    ///< lora | hyplora
  std::string manifold = "lorentz";   ///< euclidean | lorentz | poincare
  std::string variant = "consistent"; ///< consistent | paper | naive | scaled
  int rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  std::vector<std::string> targets{"q", "k", "v", "up", "down"};
  double curvature = 1.0;           ///< K (curvature -1/K)
  bool learn_curvature = false;
  std::string norm_scale = "auto";  ///< auto | none | fixed | learnable (input scale s of x/s)
  double norm_scale_init = 0.0;     ///< 0 = sqrt(d_in)
  // optimiser
  double lr = 3e-3;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  long warmup = 20;
  std::string decay = "cosine";     ///< cosine | linear | constant
  double min_lr_ratio = 0.1;
  double clip = 1.0;                ///< global gradient-norm clip; 0 = off
  int batch = 16;
  int grad_accum = 1;
  int cutoff = 256;                 ///< maximum tokens per example (prompt + response)
  long steps = 0;                   ///< optimiser steps; 0 = from epochs
  double epochs = 1.0;
  std::uint64_t seed = 0;
  /// Seed of the data: the built-in task's problems and the held-out validation slice of --data
  /// files. Unset, it is --seed (as before the option existed); set, runs of several --seed values
  /// train and validate on the same records. Written to JSON only when set, so settings and sweep
  /// cells without it keep their form.
  std::optional<std::uint64_t> data_seed;
  std::uint64_t effective_data_seed() const { return data_seed.value_or(seed); }
  bool train_on_inputs = false;
  // data
  std::vector<std::string> data;    ///< files "[format:]path" or registered names (gsm8k-train, ...)
  std::string val_data;             ///< optional validation file/name (else a held-out slice / built-in split)
  bool builtin = false;             ///< use the built-in story arithmetic task
  int depth_min = 1, depth_max = 3;
  long builtin_train = 4000;        ///< built-in training problems
  long val_examples = 128;          ///< validation problems (built-in split or held-out slice)
  std::string prompt_template = "compact";
  std::string bad_records = "reject";  ///< reject | skip
  /// Let --data / --val-data name a registered test set (refused by default: it breaks the
  /// evaluation protocol). Written to JSON only when true, so settings and sweep cells without it
  /// keep their form.
  bool allow_test_data = false;
  // run
  long eval_every = 50;             ///< validation every N steps (0 = only at the end)
  long log_every = 10;
  std::string nan_policy = "skip";  ///< skip | stop
  int max_bad_steps = 10;           ///< consecutive skipped steps before the run stops anyway
  std::string out = "runs/train";
  std::string plot = "png";         ///< png | svg | none
  int threads = 0;                  ///< 0 = leave OpenMP / BLAS defaults
  bool quiet = false;

  /// Throws std::invalid_argument naming the first bad setting.
  void validate() const;
};

/// `hyplora train`: throws std::invalid_argument when a curvature / manifold setting is set for an
/// adapter that has none: --adapter lora and --variant scaled (Euclidean, no curvature) with
/// --curvature other than the default 1, --learn-curvature or --manifold poincare; --variant naive
/// (Lorentz only) with --manifold poincare. (By value, not by presence: a config holding the
/// defaults, such as a LoRA run's settings.json, stays valid. Not part of validate(): a sweep's
/// shared settings may carry a curvature that only its hyperbolic cells use.)
void check_adapter_settings_apply(const TrainSettings& s);

void to_json(nlohmann::json& j, const TrainSettings& s);
/// Missing keys keep their defaults; unknown keys are an error naming the key.
void from_json(const nlohmann::json& j, TrainSettings& s);

}  // namespace hyplora::train
