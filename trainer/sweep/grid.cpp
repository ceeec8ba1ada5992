#include "sweep/grid.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include "data/prompt_template.hpp"
#include "data/registry.hpp"
#include "data/story_task.hpp"
#include "train/evaluate.hpp"
#include "util/json_integer.hpp"
#include "util/model_locate.hpp"
#include "util/read_file.hpp"
#include "util/sha256.hpp"

namespace hyplora::sweep {

const std::vector<std::string>& known_variants() {
  static const std::vector<std::string> v{"lora", "lora_scaled", "naive", "hyplora_lorentz", "hyplora_poincare", "paper"};
  return v;
}

bool variant_has_curvature_axis(const std::string& variant) {
  return variant == "hyplora_lorentz" || variant == "hyplora_poincare";
}

namespace {

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("sweep grid: " + what);
}

/// The integer `v` holds, when it fits T exactly (util::json_integer_fits); else an error naming the
/// key. An integral float (3.0) is accepted, as the training settings accept it.
template <class T>
T integer_at(const nlohmann::json& v, const std::string& key) {
  require(v.is_number(), "'" + key + "' must be an integer, got " + v.dump());
  require(util::json_integer_fits<T>(v), "'" + key + "' = " + v.dump() + " is not an integer in range [" +
                                             std::to_string(std::numeric_limits<T>::min()) + ", " +
                                             std::to_string(std::numeric_limits<T>::max()) + "]");
  return v.is_number_float() ? static_cast<T>(v.get<double>()) : v.get<T>();
}

}  // namespace

bool CurvatureSetting::applies_to(const std::string& variant) const {
  return only.empty() || std::find(only.begin(), only.end(), variant) != only.end();
}

std::string CurvatureSetting::label() const {
  // appended, not "K" + string&&: g++ 12 warns falsely on the latter (-Wrestrict, GCC bug 105329)
  std::string label = "K";
  label += number_text(K);
  if (learned) label += "-learned";
  return label;
}

CurvatureSetting parse_curvature(const std::string& text) {
  CurvatureSetting c;
  std::string value = text;
  const auto colon = text.find(':');
  if (text == "learned") {
    c.learned = true;
    return c;
  }
  if (colon != std::string::npos) {
    if (text.substr(colon + 1) != "learned")
      throw std::invalid_argument("curvature '" + text + "': expected K, 'learned' or 'K:learned'");
    c.learned = true;
    value = text.substr(0, colon);
  }
  std::size_t used = 0;
  try {
    c.K = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || !std::isfinite(c.K) || c.K <= 0)
    throw std::invalid_argument("curvature '" + text + "': K must be a positive number (curvature -1/K), 'learned' or 'K:learned'");
  return c;
}

SweepGrid::SweepGrid() {
  train.steps = 300;
  train.batch = 16;
  train.rank = 8;
  train.alpha = 16;
  train.warmup = 30;
  train.eval_every = 50;
  train.log_every = 10;
  train.builtin = true;
  train.quiet = true;
  train.plot = "none";
}

void SweepGrid::validate() const {
  require(!variants.empty(), "no variants");
  std::set<std::string> seen;
  for (const auto& v : variants) {
    require(std::find(known_variants().begin(), known_variants().end(), v) != known_variants().end(),
            "unknown variant '" + v + "' (lora, lora_scaled, naive, hyplora_lorentz, hyplora_poincare, paper)");
    require(seen.insert(v).second, "variant '" + v + "' listed twice");
  }
  require(!curvatures.empty(), "no curvatures (give at least one, e.g. [1.0])");
  for (std::size_t i = 0; i < curvatures.size(); ++i) {
    require(std::isfinite(curvatures[i].K) && curvatures[i].K > 0, "curvature K must be positive and finite");
    for (std::size_t j = 0; j < i; ++j)
      for (const auto& v : known_variants())
        require(!(variant_has_curvature_axis(v) && curvatures[i].applies_to(v) && curvatures[j].applies_to(v) &&
                  curvatures[i].K == curvatures[j].K && curvatures[i].learned == curvatures[j].learned),
                "curvature " + curvatures[i].label() + " listed twice for " + v);
  }
  require(!lrs.empty(), "no learning rates");
  for (std::size_t i = 0; i < lrs.size(); ++i) {
    require(std::isfinite(lrs[i]) && lrs[i] > 0, "learning rates must be positive and finite");
    // the cell ids print lr with %g: two values equal to 6 digits would share an id (and a file)
    for (std::size_t j = 0; j < i; ++j)
      require(number_text(lrs[i]) != number_text(lrs[j]),
              "learning rates " + number_text(lrs[j]) + " and " + number_text(lrs[i]) +
                  " are listed twice or differ beyond the 6 digits of the cell ids");
  }
  require(!seeds.empty(), "no seeds");
  require(std::set<std::uint64_t>(seeds.begin(), seeds.end()).size() == seeds.size(), "a seed is listed twice");
  require(train.steps > 0, "train.steps must be positive: every cell gets the same number of optimiser steps");
  require(train.data.empty() && train.val_data.empty(),
          "train.data / train.val-data are not sweep settings (real data goes in task.train_data, "
          "task.validation_data, task.test_data)");
  if (task.real()) {
    require(!task.validation_data.empty(), "task.train_data needs task.validation_data (the lr is chosen on it)");
    require(!task.test_data.empty(), "task.train_data needs task.test_data");
    for (const auto& d : task.train_data) require(!d.empty(), "task.train_data holds an empty name");
  } else {
    require(task.validation_data.empty() && task.test_data.empty(),
            "task.validation_data / task.test_data need task.train_data (else the built-in task is used)");
  }
  for (const auto& d : eval_data) require(!d.empty(), "eval_data holds an empty name");
  require(std::set<std::string>(eval_data.begin(), eval_data.end()).size() == eval_data.size(), "an eval_data set is listed twice");
  require(eval_limit > 0, "eval_limit must be positive");
  require(task.depth_min >= 1 && task.depth_max >= task.depth_min && task.depth_max <= data::kMaxStoryDepth,
          "task depths must satisfy 1 <= depth_min <= depth_max <= " + std::to_string(data::kMaxStoryDepth));
  require(task.train > 0 && task.validation > 0 && task.test > 0, "task.train, task.validation and task.test must be positive");
  require(max_new_tokens == train::kAutoMaxNewTokens || (max_new_tokens >= 1 && max_new_tokens <= train::kMaxNewTokensLimit),
          "max_new_tokens must be \"auto\" or an integer in [1, " + std::to_string(train::kMaxNewTokensLimit) + "], got " +
              std::to_string(max_new_tokens));
  // test sets are for evaluation only: never trained on or used to choose the lr and the checkpoint
  if (!train.allow_test_data) {
    const std::string hint = "\"train\": {\"allow-test-data\": true}";
    for (const auto& d : task.train_data)
      if (const auto* t = data::registered_test_set(d)) require(false, data::test_set_refusal("task.train_data", d, *t, hint));
    if (!task.validation_data.empty())
      if (const auto* t = data::registered_test_set(task.validation_data))
        require(false, data::test_set_refusal("task.validation_data", task.validation_data, *t, hint));
  }
  // the shared settings must be valid for a cell
  train::TrainSettings probe = cell_settings(*this, CellSpec{variants.front(), false, {}, lrs.front(), seeds.front()}, "probe");
  probe.validate();
}

nlohmann::json to_json(const SweepGrid& g) {
  nlohmann::json j;
  j["variants"] = g.variants;
  j["curvatures"] = nlohmann::json::array();
  for (const auto& c : g.curvatures) {
    nlohmann::json jc = {{"K", c.K}, {"learned", c.learned}};
    if (!c.only.empty()) jc["variants"] = c.only;
    j["curvatures"].push_back(jc);
  }
  j["lrs"] = g.lrs;
  j["seeds"] = g.seeds;
  nlohmann::json t = g.train;
  for (const char* k : {"adapter", "manifold", "variant", "lr", "seed", "curvature", "learn-curvature", "out", "quiet",
                        "plot", "threads", "data", "val-data", "builtin", "depth-min", "depth-max", "builtin-train",
                        "val-examples", "model", "tokenizer"})
    t.erase(k);
  j["train"] = t;
  j["task"] = {{"seed", g.task.seed}, {"depth_min", g.task.depth_min}, {"depth_max", g.task.depth_max},
               {"train", g.task.train}, {"validation", g.task.validation}, {"test", g.task.test}};
  if (g.task.real()) {  // only when used, so that built-in grids keep their form (and their cells' fingerprints)
    j["task"]["train_data"] = g.task.train_data;
    j["task"]["validation_data"] = g.task.validation_data;
    j["task"]["test_data"] = g.task.test_data;
  }
  if (!g.eval_data.empty()) {
    j["eval_data"] = g.eval_data;
    j["eval_limit"] = g.eval_limit;
  }
  j["max_new_tokens"] = train::max_new_tokens_json(train::GenerationLimits{g.max_new_tokens});
  j["base"] = g.base;
  return j;
}

SweepGrid grid_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("sweep grid must be a JSON object");
  SweepGrid g;
  static const std::set<std::string> keys{"variants", "curvatures", "lrs",       "seeds",          "train",
                                          "task",     "eval_data",  "eval_limit", "max_new_tokens", "base"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!keys.count(it.key())) throw std::invalid_argument("sweep grid: unknown key '" + it.key() + "'");
  try {
    if (j.contains("variants")) g.variants = j.at("variants").get<std::vector<std::string>>();
    if (j.contains("curvatures")) {
      g.curvatures.clear();
      for (const auto& c : j.at("curvatures")) {
        if (c.is_number()) g.curvatures.push_back(CurvatureSetting{c.get<double>(), false, {}});
        else if (c.is_string()) g.curvatures.push_back(parse_curvature(c.get<std::string>()));
        else if (c.is_object()) {
          for (auto it = c.begin(); it != c.end(); ++it)
            if (it.key() != "K" && it.key() != "learned" && it.key() != "variants")
              throw std::invalid_argument("sweep grid: unknown curvature key '" + it.key() + "' (K, learned, variants)");
          CurvatureSetting cs{c.value("K", 1.0), c.value("learned", false), {}};
          if (c.contains("variants")) cs.only = c.at("variants").get<std::vector<std::string>>();
          for (const auto& v : cs.only)
            if (!variant_has_curvature_axis(v))
              throw std::invalid_argument("sweep grid: curvature 'variants' may name hyplora_lorentz or hyplora_poincare, got '" + v + "'");
          g.curvatures.push_back(cs);
        }
        else throw std::invalid_argument("sweep grid: a curvature must be a number, a string or {\"K\":..,\"learned\":..}");
      }
    }
    if (j.contains("lrs")) g.lrs = j.at("lrs").get<std::vector<double>>();
    if (j.contains("seeds")) {
      require(j.at("seeds").is_array(), "'seeds' must be a list of integers >= 0, got " + j.at("seeds").dump());
      g.seeds.clear();
      for (const auto& v : j.at("seeds")) g.seeds.push_back(integer_at<std::uint64_t>(v, "seeds"));
    }
    if (j.contains("train")) {
      // keys every cell sets itself (its grid axes, its folder, the task): a value here was silently
      // overridden ("train": {"lr": 0.5} trained at the "lrs" values)
      static const std::map<std::string, std::string> per_cell{
          {"adapter", "the \"variants\" axis"},     {"manifold", "the \"variants\" axis"},
          {"variant", "the \"variants\" axis"},     {"lr", "the \"lrs\" axis"},
          {"seed", "the \"seeds\" axis"},           {"curvature", "the \"curvatures\" axis"},
          {"learn-curvature", "the \"curvatures\" axis (\"learned\")"},
          {"out", "the sweep (each cell trains in <--out>/runs/<cell id>)"},
          {"quiet", "the sweep (cells train quietly; sweep --quiet quiets the sweep)"},
          {"plot", "the sweep (cells draw no plot)"},
          {"threads", "sweep --threads"},
          {"builtin", "\"task\" (the built-in task unless task.train_data is given)"},
          {"depth-min", "\"task\": depth_min"},   {"depth-max", "\"task\": depth_max"},
          {"builtin-train", "\"task\": train"},   {"val-examples", "\"task\": validation"}};
      if (j.at("train").is_object())
        for (auto it = j.at("train").begin(); it != j.at("train").end(); ++it)
          if (const auto p = per_cell.find(it.key()); p != per_cell.end())
            throw std::invalid_argument("sweep grid: train." + it.key() + " is set for each cell by " + p->second +
                                        "; remove it from \"train\"");
      nlohmann::json merged = g.train;
      for (auto it = j.at("train").begin(); it != j.at("train").end(); ++it) merged[it.key()] = it.value();
      train::from_json(merged, g.train);
    }
    if (j.contains("task")) {
      const auto& t = j.at("task");
      static const std::set<std::string> task_keys{"seed",  "depth_min",  "depth_max",       "train",    "validation",
                                                   "test",  "train_data", "validation_data", "test_data"};
      for (auto it = t.begin(); it != t.end(); ++it)
        if (!task_keys.count(it.key())) throw std::invalid_argument("sweep grid: unknown task key '" + it.key() + "'");
      if (t.contains("seed")) g.task.seed = integer_at<std::uint64_t>(t.at("seed"), "task.seed");
      if (t.contains("depth_min")) g.task.depth_min = integer_at<int>(t.at("depth_min"), "task.depth_min");
      if (t.contains("depth_max")) g.task.depth_max = integer_at<int>(t.at("depth_max"), "task.depth_max");
      if (t.contains("train")) g.task.train = integer_at<long>(t.at("train"), "task.train");
      if (t.contains("validation")) g.task.validation = integer_at<long>(t.at("validation"), "task.validation");
      if (t.contains("test")) g.task.test = integer_at<long>(t.at("test"), "task.test");
      if (t.contains("train_data")) {
        const auto& td = t.at("train_data");
        g.task.train_data = td.is_string() ? std::vector<std::string>{td.get<std::string>()} : td.get<std::vector<std::string>>();
      }
      g.task.validation_data = t.value("validation_data", g.task.validation_data);
      g.task.test_data = t.value("test_data", g.task.test_data);
    }
    if (j.contains("eval_data")) g.eval_data = j.at("eval_data").get<std::vector<std::string>>();
    if (j.contains("eval_limit")) g.eval_limit = integer_at<long>(j.at("eval_limit"), "eval_limit");
    if (j.contains("max_new_tokens")) {  // "auto" or a positive integer (grids of older builds hold integers)
      const auto& v = j.at("max_new_tokens");
      if (v.is_string()) {
        g.max_new_tokens = train::parse_max_new_tokens(v.get<std::string>(), "sweep grid: 'max_new_tokens'").max_new_tokens;
      } else {
        g.max_new_tokens = integer_at<int>(v, "max_new_tokens");
        require(g.max_new_tokens >= 1, "'max_new_tokens' must be \"auto\" or an integer in [1, " +
                                           std::to_string(train::kMaxNewTokensLimit) + "], got " + v.dump());
      }
    }
    if (j.contains("base")) g.base = j.at("base").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("sweep grid: a value has the wrong type: ") + e.what());
  }
  g.validate();
  return g;
}

SweepGrid load_grid(const std::string& path) {
  std::string text;
  try {
    text = util::read_regular_file(path, "--grid must be a JSON file");  // a folder or a FIFO: refused, named
  } catch (const util::FileReadError& e) {
    if (e.missing()) throw std::invalid_argument("sweep grid file '" + path + "' cannot be opened (no such file)");
    throw std::invalid_argument(e.what());
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument("sweep grid file '" + path + "' is not valid JSON: " + e.what());
  }
  try {
    return grid_from_json(j);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
}

std::string CellSpec::arm() const {
  if (variant == "base") return "base";
  return has_curvature ? variant + "-" + curvature.label() : variant;
}

std::string CellSpec::id() const {
  if (variant == "base") return "base";
  return arm() + "-lr" + number_text(lr) + "-s" + std::to_string(seed);
}

std::vector<CellSpec> expand_cells(const SweepGrid& g) {
  std::vector<CellSpec> cells;
  if (g.base) cells.push_back(CellSpec{"base", false, {}, 0, 0});
  for (auto seed : g.seeds)
    for (double lr : g.lrs)
      for (const auto& v : g.variants) {
        if (variant_has_curvature_axis(v)) {
          for (const auto& c : g.curvatures)
            if (c.applies_to(v)) cells.push_back(CellSpec{v, true, c, lr, seed});
        } else {
          cells.push_back(CellSpec{v, false, {}, lr, seed});
        }
      }
  return cells;
}

train::TrainSettings cell_settings(const SweepGrid& g, const CellSpec& c, const std::string& run_dir) {
  train::TrainSettings s = g.train;
  const std::string& v = c.variant;
  if (v == "lora" || v == "base") {
    s.adapter = "lora"; s.manifold = "euclidean"; s.variant = "consistent";
  } else if (v == "lora_scaled") {
    s.adapter = "lora"; s.manifold = "euclidean"; s.variant = "scaled";
  } else if (v == "naive") {
    s.adapter = "hyplora"; s.manifold = "lorentz"; s.variant = "naive";
  } else if (v == "hyplora_lorentz") {
    s.adapter = "hyplora"; s.manifold = "lorentz"; s.variant = "consistent";
  } else if (v == "hyplora_poincare") {
    s.adapter = "hyplora"; s.manifold = "poincare"; s.variant = "consistent";
  } else if (v == "paper") {
    s.adapter = "hyplora"; s.manifold = "lorentz"; s.variant = "paper";
  } else {
    throw std::invalid_argument("sweep: unknown variant '" + v + "'");
  }
  if (c.has_curvature) {
    s.curvature = c.curvature.K;
    s.learn_curvature = c.curvature.learned;
  }
  if (c.lr > 0) s.lr = c.lr;
  s.seed = c.seed;
  s.builtin = !g.task.real();
  s.data = g.task.train_data;
  s.val_data = g.task.validation_data;
  s.depth_min = g.task.depth_min;
  s.depth_max = g.task.depth_max;
  s.builtin_train = g.task.train;
  s.val_examples = g.task.validation;
  s.out = run_dir;
  s.quiet = true;
  s.plot = "none";
  return s;
}

nlohmann::json cell_fingerprint(const SweepGrid& g, const CellSpec& c) {
  const nlohmann::json grid = to_json(g);
  nlohmann::json f;
  if (c.variant == "base") {  // no training: the evaluation sets, their template and reading, the generation limit
    f = {{"task", grid["task"]}, {"max_new_tokens", grid["max_new_tokens"]}, {"variant", c.variant},
         {"prompt_template", g.train.prompt_template}, {"bad_records", g.train.bad_records}};
  } else {
    nlohmann::json s = cell_settings(g, c, "-");
    for (const char* k : {"out", "quiet", "threads", "plot", "model", "tokenizer"}) s.erase(k);
    f = {{"settings", s}, {"task", grid["task"]}, {"max_new_tokens", grid["max_new_tokens"]}, {"variant", c.variant}};
  }
  // the model's context ends before the prompt's trailing spaces (data::PromptTemplate::model_prompt,
  // since 2026-11-27): cells recorded with the older boundary are not reused
  f[data::kPromptBoundaryKey] = data::kPromptBoundary;
  // since 2026-11-29 "auto" is at least the training examples' longest response (it was the evaluated
  // set's longest reference alone), and MAWPS / SVAMP records whose equation does not hold at their
  // label train on the label alone: older cells of such grids are not reused
  if (grid["max_new_tokens"] == "auto") f["auto_limit"] = "max(reference, training response) + 16";
  if (g.task.real()) f["data_loaders"] = "equation-checked";
  // since 2026-11-29 a U+2212 minus is a sign and an echoed AQuA option list is no choice, and a
  // cell's sets count answers with no number or letter and generations ended by EOS: older cells
  // (scored by the old rules, without the counts) are not reused
  f["answer_rules"] = "unicode-minus, echoed-options; counts no_answer, generations_at_eos";
  // the paper variant's lower map follows the published code exactly since 2026-11-27 (arcosh near 1
  // as sqrt(2 (theta - 1)), norm clamp 1e-7): its older cells are not reused
  if (c.variant == "paper") f["paper_lower_map"] = "published-66df99a";
  if (!g.model_sha256.empty()) {  // the files' content, not their path: another model must not reuse a cell
    f["model_sha256"] = g.model_sha256;
    f["tokenizer_sha256"] = g.tokenizer_sha256;
  }
  if (!g.eval_data.empty()) {  // a cell recorded without these sets cannot report them
    f["eval_data"] = g.eval_data;
    f["eval_limit"] = g.eval_limit;
  }
  return f;
}

void identify_model(SweepGrid& g) {
  const auto files = util::locate_model(g.train.model, g.train.tokenizer);
  g.model_sha256 = util::sha256_file(files.model);
  g.tokenizer_sha256 = files.tokenizer.empty() || files.tokenizer == files.model ? std::string("in the model file")
                                                                                  : util::sha256_file(files.tokenizer);
}

}  // namespace hyplora::sweep
