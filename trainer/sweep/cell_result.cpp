#include "sweep/cell_result.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

#include "formats/atomic_file.hpp"
#include "sweep/grid.hpp"
#include "util/read_file.hpp"

namespace fs = std::filesystem;

namespace hyplora::sweep {
namespace {

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
/// A loss or curvature: a number, or null for "none" (a string such as "x" was read as none).
double number_from(const nlohmann::json& j, const std::string& key) {
  if (j.is_null()) return std::nan("");
  if (!j.is_number())
    throw std::invalid_argument("sweep cell record: '" + key + "' = " + j.dump() + " is not a number or null");
  return j.get<double>();
}

nlohmann::json accuracy_json(const eval::DatasetAccuracy& d) {
  return eval::to_json(eval::AccuracyReport{{d}}, false)["datasets"][0];
}
eval::DatasetAccuracy accuracy_from(const nlohmann::json& j, const std::string& field) {
  nlohmann::json wrapped = {{"datasets", nlohmann::json::array({j})}};
  try {
    return eval::report_from_json(wrapped).datasets.at(0);
  } catch (const std::invalid_argument& e) {  // a bad tally: name the field (json errors pass through)
    throw std::invalid_argument("sweep cell record: '" + field + "': " + e.what());
  }
}

}  // namespace

nlohmann::json to_json(const CellResult& r) {
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& [step, loss] : r.val_curve) curve.push_back({step, number_or_null(loss)});
  nlohmann::json extra = nlohmann::json::array();
  for (const auto& d : r.extra_tests) extra.push_back(accuracy_json(d));
  nlohmann::json j = {{"id", r.id},
          {"arm", r.arm},
          {"variant", r.variant},
          {"curvature", r.curvature_label},
          {"lr", r.lr},
          {"seed", r.seed},
          {"steps", r.steps},
          {"batch", r.batch},
          {"grad_accum", r.grad_accum},
          {"target_tokens", r.target_tokens},
          {"params", r.params},
          {"initial_val_loss", number_or_null(r.initial_val_loss)},
          {"best_val_loss", number_or_null(r.best_val_loss)},
          {"best_step", r.best_step},
          {"final_K", number_or_null(r.final_K)},
          {"val_curve", curve},
          {"validation", accuracy_json(r.validation)},
          {"test", accuracy_json(r.test)},
          {"extra_tests", extra},
          {"train_seconds", r.train_seconds},
          {"eval_seconds", r.eval_seconds},
          {"fingerprint", r.fingerprint}};
  j["diverged"] = r.diverged;
  if (r.diverged) {
    j["diverged_reason"] = r.diverged_reason;
    j["diverged_step"] = r.diverged_step;
  }
  return j;
}

CellResult cell_from_json(const nlohmann::json& j) {
  CellResult r;
  try {
    r.id = j.at("id").get<std::string>();
    r.arm = j.at("arm").get<std::string>();
    r.variant = j.at("variant").get<std::string>();
    r.curvature_label = j.at("curvature").get<std::string>();
    r.lr = j.at("lr").get<double>();
    r.seed = j.at("seed").get<std::uint64_t>();
    r.steps = j.at("steps").get<long>();
    r.batch = j.at("batch").get<long>();
    r.grad_accum = j.at("grad_accum").get<long>();
    r.target_tokens = j.at("target_tokens").get<long>();
    r.params = j.at("params").get<long>();
    r.initial_val_loss = number_from(j.at("initial_val_loss"), "initial_val_loss");
    r.best_val_loss = number_from(j.at("best_val_loss"), "best_val_loss");
    r.best_step = j.at("best_step").get<long>();
    r.final_K = number_from(j.at("final_K"), "final_K");
    for (const auto& p : j.at("val_curve")) r.val_curve.emplace_back(p.at(0).get<long>(), number_from(p.at(1), "val_curve"));
    r.validation = accuracy_from(j.at("validation"), "validation");
    r.test = accuracy_from(j.at("test"), "test");
    if (j.contains("extra_tests"))  // absent in records of grids without eval_data
      for (const auto& d : j.at("extra_tests")) r.extra_tests.push_back(accuracy_from(d, "extra_tests"));
    r.train_seconds = j.at("train_seconds").get<double>();
    r.eval_seconds = j.at("eval_seconds").get<double>();
    r.fingerprint = j.at("fingerprint");
    if (j.contains("diverged")) {  // absent in records written before divergence was recorded
      r.diverged = j.at("diverged").get<bool>();
      if (r.diverged) {
        r.diverged_reason = j.value("diverged_reason", std::string());
        r.diverged_step = j.value("diverged_step", -1L);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("sweep cell record: missing or bad field: ") + e.what());
  }
  // values the aggregation trusts (correct 50 of total 6 was aggregated as 833%); the tallies of
  // validation, test and extra_tests are checked by eval::report_from_json (0 <= correct <= total)
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("sweep cell record: " + what);
  };
  require(std::isfinite(r.lr), "'lr' must be finite");
  // the id names the arm, the lr and the seed: a record whose fields say otherwise ("lr": 0.5 in the
  // file of cell ...-lr0.01-s0) was aggregated at the edited lr
  if (r.variant != "base") {
    const std::string tail = CellSpec{r.variant, false, {}, r.lr, r.seed}.id().substr(r.variant.size());  // "-lr..-s.."
    require(r.arm.rfind(r.variant, 0) == 0 && r.id == r.arm + tail,
            "'variant' " + r.variant + ", 'arm' " + r.arm + ", 'lr' " + nlohmann::json(r.lr).dump() + " and 'seed' " +
                std::to_string(r.seed) + " do not make the cell id '" + r.id + "'");
  }
  require(std::isfinite(r.train_seconds) && r.train_seconds >= 0 && std::isfinite(r.eval_seconds) && r.eval_seconds >= 0,
          "'train_seconds' and 'eval_seconds' must be finite and >= 0");
  // the lr choice and the paired loss tests use it (a null here made the aggregation throw
  // "compare_paired: non-finite value", naming no cell, and write no summary)
  require(r.variant == "base" || r.diverged || std::isfinite(r.best_val_loss),
          "'best_val_loss' is null in a cell that trained and is not recorded as diverged");
  return r;
}

ResultsStore::ResultsStore(fs::path dir, bool create) : dir_(std::move(dir)) {
  if (create) fs::create_directories(dir_ / "cells");
}

fs::path ResultsStore::cell_path(const std::string& id) const { return dir_ / "cells" / (id + ".json"); }

std::optional<CellResult> ResultsStore::load(const std::string& id) const {
  const fs::path p = cell_path(id);
  if (!fs::exists(p)) return std::nullopt;
  std::string text;
  try {
    text = util::read_regular_file(p.string(), "a sweep cell record must be a JSON file");
  } catch (const util::FileReadError& e) {
    throw std::runtime_error(std::string(e.what()) + "; delete it to run that cell again");
  }
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    CellResult r = cell_from_json(j);
    if (r.id != id) throw std::invalid_argument("records cell '" + r.id + "', expected '" + id + "'");
    return r;
  } catch (const std::exception& e) {
    throw std::runtime_error(p.string() + ": not a sweep cell record (" + e.what() +
                             "); delete the file to run that cell again");
  }
}

void ResultsStore::save(const CellResult& r) const {
  formats::write_file_atomically(cell_path(r.id), to_json(r).dump(1) + "\n");
}

std::vector<CellResult> ResultsStore::load_all() const {
  std::vector<std::string> ids;
  for (const auto& e : fs::directory_iterator(dir_ / "cells")) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && e.path().extension() == ".json" && name.find(".tmp") == std::string::npos)
      ids.push_back(e.path().stem().string());
  }
  std::sort(ids.begin(), ids.end());
  std::vector<CellResult> out;
  for (const auto& id : ids) out.push_back(*load(id));
  return out;
}

}  // namespace hyplora::sweep
