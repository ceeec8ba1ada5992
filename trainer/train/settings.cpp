#include "train/settings.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <type_traits>

#include "data/registry.hpp"
#include "data/story_task.hpp"
#include "train/schedule.hpp"
#include "util/json_integer.hpp"

namespace hyplora::train {
namespace {

/// Visits every setting as (key, field&); the keys are the CLI flag names.
template <class S, class F>
void for_each_setting(S& s, F&& f) {
  f("model", s.model);
  f("tokenizer", s.tokenizer);
  f("adapter", s.adapter);
  f("manifold", s.manifold);
  f("variant", s.variant);
  f("rank", s.rank);
  f("alpha", s.alpha);
  f("dropout", s.dropout);
  f("targets", s.targets);
  f("curvature", s.curvature);
  f("learn-curvature", s.learn_curvature);
  f("norm-scale", s.norm_scale);
  f("norm-scale-init", s.norm_scale_init);
  f("lr", s.lr);
  f("weight-decay", s.weight_decay);
  f("beta1", s.beta1);
  f("beta2", s.beta2);
  f("adam-eps", s.adam_eps);
  f("warmup", s.warmup);
  f("decay", s.decay);
  f("min-lr-ratio", s.min_lr_ratio);
  f("clip", s.clip);
  f("batch", s.batch);
  f("grad-accum", s.grad_accum);
  f("cutoff", s.cutoff);
  f("steps", s.steps);
  f("epochs", s.epochs);
  f("seed", s.seed);
  f("train-on-inputs", s.train_on_inputs);
  f("data", s.data);
  f("val-data", s.val_data);
  f("builtin", s.builtin);
  f("depth-min", s.depth_min);
  f("depth-max", s.depth_max);
  f("builtin-train", s.builtin_train);
  f("val-examples", s.val_examples);
  f("prompt-template", s.prompt_template);
  f("bad-records", s.bad_records);
  f("allow-test-data", s.allow_test_data);
  f("eval-every", s.eval_every);
  f("log-every", s.log_every);
  f("nan-policy", s.nan_policy);
  f("max-bad-steps", s.max_bad_steps);
  f("out", s.out);
  f("plot", s.plot);
  f("threads", s.threads);
  f("quiet", s.quiet);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("training setting " + what);
}

bool one_of(const std::string& v, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (v == n) return true;
  return false;
}

/// A JSON number fits the integer setting F exactly (util::json_integer_fits; found by fuzzing).
template <class F>
void require_integer_fits(const nlohmann::json& v, const char* key) {
  if (!util::json_integer_fits<F>(v))
    throw std::invalid_argument(std::string("training setting '") + key + "' = " + v.dump() + " is not an integer in range");
}

/// A double as "%g" prints it ("1e+30", "16").
std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

void TrainSettings::validate() const {
  require(one_of(adapter, {"lora", "hyplora"}), "--adapter must be lora or hyplora, got '" + adapter + "'");
  require(one_of(manifold, {"euclidean", "lorentz", "poincare"}),
          "--manifold must be euclidean, lorentz or poincare, got '" + manifold + "'");
  require(one_of(variant, {"consistent", "paper", "naive", "scaled"}),
          "--variant must be consistent, paper, naive or scaled, got '" + variant + "'");
  require(rank > 0 && rank <= 4096, "--rank must be in [1, 4096], got " + std::to_string(rank));
  require(std::isfinite(alpha) && alpha > 0 && alpha <= kMaxAlpha,
          "--alpha must be positive and finite (at most " + number_text(kMaxAlpha) + "), got " + number_text(alpha));
  require(dropout >= 0 && dropout < 1, "--dropout must be in [0, 1)");
  require(!targets.empty(), "--targets must name at least one module");
  std::set<std::string> seen_targets;
  for (const auto& t : targets) {
    require(one_of(t, {"q", "k", "v", "o", "gate", "up", "down"}),
            "--targets: unknown module '" + t + "' (q, k, v, o, gate, up, down)");
    require(seen_targets.insert(t).second, "--targets names module '" + t + "' twice");
  }
  require(std::isfinite(curvature) && curvature > 0, "--curvature K must be positive and finite (curvature is -1/K)");
  // the adapters hold K in float: 1e-300 became 0 ("RuntimeCurvature: ... got 0", naming no flag)
  // and 1e300 inf; the library's curvature policies take K and 1/K (the Poincare c) as normal floats:
  // [m, 1/m] for the smallest normal float m
  const double k_lo = double(std::numeric_limits<float>::min()), k_hi = 1.0 / k_lo;
  require(curvature >= k_lo && curvature <= k_hi,
          "--curvature K must be a float whose reciprocal is a normal float too, in [" + number_text(k_lo) + ", " +
              number_text(k_hi) + "], got " + number_text(curvature));
  require(one_of(norm_scale, {"auto", "none", "fixed", "learnable"}), "--norm-scale must be auto, none, fixed or learnable");
  require(std::isfinite(norm_scale_init) && norm_scale_init >= 0, "--norm-scale-init must be >= 0 (0 = sqrt(d_in))");
  require(std::isfinite(lr) && lr > 0, "--lr must be positive and finite");
  require(std::isfinite(weight_decay) && weight_decay >= 0, "--weight-decay must be >= 0");
  require(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "--beta1/--beta2 must be in [0, 1)");
  require(adam_eps > 0, "--adam-eps must be positive");
  require(warmup >= 0, "--warmup must be >= 0");
  parse_decay(decay);
  require(min_lr_ratio >= 0 && min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1]");
  require(std::isfinite(clip) && clip >= 0, "--clip must be >= 0 (0 = off)");
  require(batch > 0 && batch <= 4096, "--batch must be in [1, 4096]");
  require(grad_accum > 0 && grad_accum <= 4096, "--grad-accum must be in [1, 4096]");
  require(cutoff >= 8, "--cutoff must be at least 8 tokens");
  require(steps >= 0, "--steps must be >= 0");
  require(steps > 0 || (std::isfinite(epochs) && epochs > 0), "either --steps or --epochs must be positive");
  require(std::isfinite(epochs) && epochs <= kMaxEpochs,
          "--epochs must be at most " + number_text(kMaxEpochs) + ", got " + number_text(epochs));
  require(builtin || !data.empty(), "no training data: give --data FILE... and/or --builtin");
  // the same source twice duplicated its records (and the held-out validation slice overlapped training)
  std::map<std::string, std::string> seen_data;  // resolved path -> spec as given
  for (const auto& d : data) {
    const auto [it, fresh] = seen_data.emplace(data::data_source_identity(d), d);
    require(fresh, "--data lists the same data source twice: " +
                       (it->second == d ? "'" + d + "'" : "'" + it->second + "' and '" + d + "' (both " + it->first + ")") +
                       "; its records would be trained on twice and the held-out validation slice would overlap "
                       "training");
  }
  require(depth_min >= 1 && depth_max >= depth_min && depth_max <= data::kMaxStoryDepth,
          "--depth-min/--depth-max must satisfy 1 <= min <= max <= " + std::to_string(data::kMaxStoryDepth) + ", got " +
              std::to_string(depth_min) + " and " + std::to_string(depth_max));
  require(builtin_train > 0 && builtin_train <= kMaxBuiltinProblems,
          "--builtin-train must be in [1, " + std::to_string(kMaxBuiltinProblems) + "], got " + std::to_string(builtin_train));
  require(val_examples >= 0 && val_examples <= kMaxBuiltinProblems,
          "--val-examples must be in [0, " + std::to_string(kMaxBuiltinProblems) + "], got " + std::to_string(val_examples));
  // docs: --val-examples 0 = no validation set; with --val-data it validated on all of that file
  require(val_examples > 0 || val_data.empty(),
          "--val-examples 0 means no validation set, but --val-data '" + val_data +
              "' was given: drop --val-data, or give --val-examples N (the first N of its records are used)");
  // --val-data naming a training source: "best" would be chosen on records the run trains on
  if (!val_data.empty())
    require(!seen_data.count(data::data_source_identity(val_data)),
            "--val-data '" + val_data + "' is also a --data source: the validation loss would be measured on "
            "training records; give a held-out file, or drop --val-data (a slice of --data is then held out)");
  // test sets are for evaluation only (docs/trainer.md, SPEC section 6): refused unless asked for
  if (!allow_test_data) {
    for (const auto& d : data)
      if (const auto* t = data::registered_test_set(d)) require(false, data::test_set_refusal("--data", d, *t, "--allow-test-data"));
    if (!val_data.empty())
      if (const auto* t = data::registered_test_set(val_data))
        require(false, data::test_set_refusal("--val-data", val_data, *t, "--allow-test-data"));
  }
  require(one_of(bad_records, {"reject", "skip"}), "--bad-records must be reject or skip");
  require(eval_every >= 0 && log_every >= 1, "--eval-every must be >= 0 and --log-every >= 1");
  require(one_of(nan_policy, {"skip", "stop"}), "--nan-policy must be skip or stop");
  require(max_bad_steps >= 1, "--max-bad-steps must be >= 1");
  require(!out.empty(), "--out must name a folder");
  require(one_of(plot, {"png", "svg", "none"}), "--plot must be png, svg or none");
  try {
    check_thread_count(threads);
  } catch (const std::invalid_argument& e) {
    require(false, e.what());
  }
}

void check_adapter_settings_apply(const TrainSettings& s) {
  const bool euclidean = s.variant == "scaled" || (s.adapter == "lora" && s.variant == "consistent");
  if (euclidean) {
    const std::string kind = s.variant == "scaled" ? "--variant scaled (LoRA on x/s)" : "--adapter lora";
    const std::string why = kind + ", which has no curvature (Euclidean); curvature and manifold settings are for "
                                   "--adapter hyplora";
    require(s.curvature == 1.0, "--curvature " + number_text(s.curvature) + " does not apply to " + why);
    require(!s.learn_curvature, "--learn-curvature does not apply to " + why);
    require(s.manifold != "poincare", "--manifold poincare does not apply to " + why);
  } else if (s.variant == "naive") {
    require(s.manifold != "poincare", "--manifold poincare does not apply to --variant naive, which is computed on the "
                                      "Lorentz model only");
  }
}

void check_thread_count(int n, const char* flag) {
  if (n < 0 || n > kMaxThreads)
    throw std::invalid_argument(std::string(flag) + " must be in [0, " + std::to_string(kMaxThreads) +
                                "] (0 = the OpenMP / BLAS default), got " + std::to_string(n));
}

void to_json(nlohmann::json& j, const TrainSettings& s) {
  j = nlohmann::json::object();
  for_each_setting(s, [&](const char* key, const auto& field) { j[key] = field; });
  if (!s.allow_test_data) j.erase("allow-test-data");  // older settings and sweep fingerprints lack it
  if (s.data_seed) j["data-seed"] = *s.data_seed;       // unset: --seed (older settings lack the key)
}

void from_json(const nlohmann::json& j, TrainSettings& s) {
  if (!j.is_object()) throw std::invalid_argument("training settings must be a JSON object");
  std::set<std::string> known;
  for_each_setting(s, [&](const char* key, auto& field) {
    known.insert(key);
    if (!j.contains(key)) return;
    using F = std::decay_t<decltype(field)>;
    if constexpr (std::is_integral_v<F> && !std::is_same_v<F, bool>) require_integer_fits<F>(j.at(key), key);
    try {
      j.at(key).get_to(field);
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument(std::string("training setting '") + key + "' has the wrong type: " + e.what());
    }
  });
  known.insert("data-seed");
  s.data_seed.reset();
  if (j.contains("data-seed")) {
    require_integer_fits<std::uint64_t>(j.at("data-seed"), "data-seed");
    s.data_seed = j.at("data-seed").get<std::uint64_t>();
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) throw std::invalid_argument("unknown training setting '" + it.key() + "'");
}

}  // namespace hyplora::train
