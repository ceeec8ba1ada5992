#include "train/checkpoint.hpp"

#include <cmath>

#include "data/prompt_template.hpp"
#include "formats/format_error.hpp"
#include "formats/safetensors.hpp"
#include "formats/weight_check.hpp"

namespace hyplora::train {

namespace {
constexpr const char* kFormat = "hyplora-checkpoint/1";

/// JSON has no infinity: the best loss is stored as null until a validation ran.
nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
}  // namespace

void to_json(nlohmann::json& j, const RunState& s) {
  j = {{"step", s.step},
       {"training_forwards", s.training_forwards},
       {"adam_t", s.adam_t},
       {"best_val_loss", finite_or_null(s.best_val_loss)},
       {"best_step", s.best_step},
       {"skipped_steps", s.skipped_steps},
       {"consecutive_bad", s.consecutive_bad},
       {"tokens_seen", s.tokens_seen},
       {"elapsed_s", s.elapsed_s},
       {"initial_val_loss", finite_or_null(s.initial_val_loss)},
       {"last_val_loss", finite_or_null(s.last_val_loss)},
       {"val_pending", s.val_pending},
       {"loss_window_sum", s.loss_window_sum},
       {"loss_window_steps", s.loss_window_steps},
       {"last_grad_norm", s.last_grad_norm}};
}

void from_json(const nlohmann::json& j, RunState& s) {
  s.step = j.at("step").get<long>();
  s.training_forwards = j.at("training_forwards").get<std::uint64_t>();
  s.adam_t = j.at("adam_t").get<long>();
  s.best_val_loss = j.at("best_val_loss").is_null() ? std::numeric_limits<double>::infinity()
                                                    : j.at("best_val_loss").get<double>();
  s.best_step = j.at("best_step").get<long>();
  s.skipped_steps = j.at("skipped_steps").get<long>();
  s.consecutive_bad = j.at("consecutive_bad").get<int>();
  s.tokens_seen = j.at("tokens_seen").get<long>();
  s.elapsed_s = j.at("elapsed_s").get<double>();
  // optional (added later): a checkpoint of an older build has neither
  const auto optional_loss = [&](const char* key) {
    return j.contains(key) && !j.at(key).is_null() ? j.at(key).get<double>() : std::numeric_limits<double>::quiet_NaN();
  };
  s.initial_val_loss = optional_loss("initial_val_loss");
  s.last_val_loss = optional_loss("last_val_loss");
  s.val_pending = j.contains("val_pending") && j.at("val_pending").get<bool>();
  s.loss_window_sum = j.contains("loss_window_sum") ? j.at("loss_window_sum").get<double>() : 0.0;
  s.loss_window_steps = j.contains("loss_window_steps") ? j.at("loss_window_steps").get<long>() : 0;
  s.last_grad_norm = j.contains("last_grad_norm") ? j.at("last_grad_norm").get<double>() : 0.0;
  if (s.step < 0 || s.adam_t < 0 || s.adam_t > s.step) throw std::invalid_argument("inconsistent step counters");
  // each counter on its own, naming the field (consecutive_bad 1000 at step 2 was accepted)
  const auto inconsistent = [](const std::string& problem) {
    throw std::invalid_argument("inconsistent run state: " + problem);
  };
  if (s.best_step > s.step)
    inconsistent("best_step " + std::to_string(s.best_step) + " is after step " + std::to_string(s.step));
  if (s.skipped_steps < 0 || s.skipped_steps > s.step)
    inconsistent("skipped_steps " + std::to_string(s.skipped_steps) + " is not in [0, step " + std::to_string(s.step) + "]");
  // the latest skipped steps in a row: a part of skipped_steps
  if (s.consecutive_bad < 0 || s.consecutive_bad > s.skipped_steps)
    inconsistent("consecutive_bad " + std::to_string(s.consecutive_bad) + " is not in [0, skipped_steps " +
                 std::to_string(s.skipped_steps) + "] (it counts the latest skipped steps)");
  if (s.loss_window_steps < 0 || s.loss_window_steps > s.step)
    inconsistent("loss_window_steps " + std::to_string(s.loss_window_steps) + " is not in [0, step " +
                 std::to_string(s.step) + "]");
  if (!std::isfinite(s.loss_window_sum) || (s.loss_window_steps == 0 && s.loss_window_sum != 0))
    inconsistent("loss_window_sum " + nlohmann::json(s.loss_window_sum).dump() + " does not fit loss_window_steps " +
                 std::to_string(s.loss_window_steps));
  if (!(s.last_grad_norm >= 0) || !std::isfinite(s.last_grad_norm))
    inconsistent("last_grad_norm " + nlohmann::json(s.last_grad_norm).dump() + " is not a finite norm");
  if (s.tokens_seen < 0) inconsistent("tokens_seen " + std::to_string(s.tokens_seen) + " is negative");
  if (!(s.elapsed_s >= 0)) inconsistent("elapsed_s " + nlohmann::json(s.elapsed_s).dump() + " is not a time >= 0");
}

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& c) {
  if (c.adam_m.size() != c.params.size() || c.adam_v.size() != c.params.size())
    throw std::invalid_argument("save_checkpoint: optimiser state and parameters differ in size");
  for (float x : c.params)
    if (!std::isfinite(x))
      throw std::runtime_error("refusing to save checkpoint " + path.string() + ": non-finite parameter");
  formats::SafetensorsFile st;
  st.metadata["format"] = kFormat;
  st.metadata["state"] = nlohmann::json(c.state).dump();
  st.metadata["settings"] = nlohmann::json(c.settings).dump();
  st.metadata[data::kPromptBoundaryKey] = data::kPromptBoundary;
  const std::int64_t n = std::int64_t(c.params.size());
  st.tensors.push_back({"params", "F32", {n}, c.params});
  st.tensors.push_back({"adam_m", "F32", {n}, c.adam_m});
  st.tensors.push_back({"adam_v", "F32", {n}, c.adam_v});
  formats::write_safetensors(path, st);
}

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  const std::string file = path.string();
  if (!std::filesystem::exists(path)) throw formats::FormatError(file, "checkpoint not found");
  const auto st = formats::read_safetensors(path);
  auto it = st.metadata.find("format");
  if (it == st.metadata.end() || it->second != kFormat)
    throw formats::FormatError(file, std::string("not a hyplora checkpoint (expected metadata format '") + kFormat + "')");
  Checkpoint c;
  for (const char* key : {"state", "settings"})
    if (!st.metadata.count(key)) throw formats::FormatError(file, std::string("checkpoint metadata \"") + key + "\" is missing");
  try {
    c.state = nlohmann::json::parse(st.metadata.at("state")).get<RunState>();
  } catch (const std::exception& e) {
    throw formats::FormatError(file, std::string("bad checkpoint metadata \"state\": ") + e.what());
  }
  try {
    c.settings = nlohmann::json::parse(st.metadata.at("settings")).get<TrainSettings>();
  } catch (const std::exception& e) {
    throw formats::FormatError(file, std::string("bad checkpoint metadata \"settings\": ") + e.what());
  }
  if (const auto b = st.metadata.find(data::kPromptBoundaryKey); b != st.metadata.end()) {
    if (const auto problem = data::prompt_boundary_problem(b->second); !problem.empty()) throw formats::FormatError(file, problem);
    c.prompt_boundary = b->second;
  }
  const auto* p = st.find("params");
  if (!p) throw formats::FormatError(file, "tensor 'params' is missing");
  const std::int64_t n = std::int64_t(p->data.size());
  c.params = st.require("params", {n}, file).data;
  c.adam_m = st.require("adam_m", {n}, file).data;
  c.adam_v = st.require("adam_v", {n}, file).data;
  // the parameters are weights (a flipped exponent bit is caught); the moments may be large
  for (std::size_t i = 0; i < c.params.size(); ++i)
    if (const auto problem = formats::weight_value_problem(c.params[i]); !problem.empty())
      throw formats::FormatError(file, "tensor 'params': element " + std::to_string(i) + " is " + problem);
  for (std::size_t i = 0; i < c.adam_v.size(); ++i)
    if (c.adam_v[i] < 0) throw formats::FormatError(file, "tensor 'adam_v': element " + std::to_string(i) + " is negative");
  return c;
}

}  // namespace hyplora::train
