#include "data/registry.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace hyplora::data {

const std::vector<DatasetInfo>& dataset_registry() {
  static const std::vector<DatasetInfo> registry = {
      {"gsm8k-train", DataFormat::gsm8k, "gsm8k/train.jsonl", SplitRole::train, 7473, "GSM8K training problems"},
      {"gsm8k-test", DataFormat::gsm8k, "gsm8k/test.jsonl", SplitRole::test, 1319, "GSM8K test problems"},
      {"mawps-train", DataFormat::mawps, "mawps/trainset.json", SplitRole::train, 1898, "MAWPS training split"},
      {"mawps-valid", DataFormat::mawps, "mawps/validset.json", SplitRole::validation, 237, "MAWPS validation split"},
      {"mawps-test", DataFormat::mawps, "mawps/testset.json", SplitRole::test, 238,
       "MAWPS test split (28 items repeat training items)"},
      {"svamp", DataFormat::svamp, "eval-only/svamp/SVAMP.json", SplitRole::test, 1000, "SVAMP, original form"},
      {"aqua", DataFormat::aqua, "eval-only/aqua/test.json", SplitRole::test, 254, "AQuA-RAT test, original form"},
      {"la-gsm8k", DataFormat::llm_adapters, "llm-adapters/gsm8k/test.json", SplitRole::test, 1319, "LLM-Adapters GSM8K test"},
      {"la-svamp", DataFormat::llm_adapters, "llm-adapters/SVAMP/test.json", SplitRole::test, 1000, "LLM-Adapters SVAMP test"},
      {"la-aqua", DataFormat::llm_adapters_choice, "llm-adapters/AQuA/test.json", SplitRole::test, 254, "LLM-Adapters AQuA test"},
      {"la-mawps", DataFormat::llm_adapters, "llm-adapters/mawps/test.json", SplitRole::test, 238, "LLM-Adapters MAWPS test"},
      {"la-addsub", DataFormat::llm_adapters, "llm-adapters/AddSub/test.json", SplitRole::test, 395,
       "AddSub (overlaps MAWPS train: do not report after training on MAWPS)"},
      {"la-multiarith", DataFormat::llm_adapters, "llm-adapters/MultiArith/test.json", SplitRole::test, 600,
       "MultiArith (overlaps MAWPS train: do not report after training on MAWPS)"},
      {"la-singleeq", DataFormat::llm_adapters, "llm-adapters/SingleEq/test.json", SplitRole::test, 508,
       "SingleEq (overlaps MAWPS train: do not report after training on MAWPS)"},
  };
  return registry;
}

const DatasetInfo& find_dataset(const std::string& name) {
  for (const auto& d : dataset_registry())
    if (d.name == name) return d;
  std::string known;
  for (const auto& d : dataset_registry()) known += (known.empty() ? "" : ", ") + d.name;
  throw std::invalid_argument("unknown data set '" + name + "' (known: " + known + ")");
}

std::string default_data_dir() {
  if (const char* env = std::getenv("HYPLORA_SHARED_DIR"); env && *env) return (std::filesystem::path(env) / "data").string();
#ifdef HYPLORA_SHARED_DIR_DEFAULT
  return (std::filesystem::path(HYPLORA_SHARED_DIR_DEFAULT) / "data").string();
#else
  return "../shared/data";
#endif
}

LoadResult load_dataset(const std::string& name, BadRecordPolicy policy, const std::string& data_dir) {
  const DatasetInfo& info = find_dataset(name);
  const std::filesystem::path path = std::filesystem::path(data_dir.empty() ? default_data_dir() : data_dir) / info.relative_path;
  if (!std::filesystem::exists(path))
    throw DataError(path.string(), 0, "data set '" + name + "' not found (set HYPLORA_SHARED_DIR to the shared folder)");
  LoadResult result = load_file(path.string(), info.format, policy);
  for (auto& r : result.records) r.id = name + "/" + r.id;
  return result;
}

LoadResult load_data_spec(const std::string& spec, BadRecordPolicy policy, const std::string& data_dir) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return load_dataset(spec, policy, data_dir);
  return load_file(spec.substr(colon + 1), format_from_name(spec.substr(0, colon)), policy);
}

std::string data_source_identity(const std::string& spec, const std::string& data_dir) {
  namespace fs = std::filesystem;
  fs::path path = spec;
  bool named = false;
  for (const auto& d : dataset_registry())
    if (d.name == spec) {
      path = fs::path(data_dir.empty() ? default_data_dir() : data_dir) / d.relative_path;
      named = true;
    }
  const auto colon = spec.find(':');
  if (!named && colon != std::string::npos && colon > 0) {
    try {
      format_from_name(spec.substr(0, colon));
      path = spec.substr(colon + 1);
    } catch (const std::invalid_argument&) {
      // not a format prefix (a path holding ':'), as train::load_data_source reads it
    }
  }
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(path, ec);
  if (ec) {
    resolved = fs::absolute(path, ec);
    if (ec) resolved = path;
    resolved = resolved.lexically_normal();
  }
  return resolved.string();
}

const DatasetInfo* registered_test_set(const std::string& spec, const std::string& data_dir) {
  for (const auto& d : dataset_registry())
    if (d.role == SplitRole::test && d.name == spec) return &d;
  const std::string identity = data_source_identity(spec, data_dir);
  for (const auto& d : dataset_registry())
    if (d.role == SplitRole::test && data_source_identity(d.name, data_dir) == identity) return &d;
  return nullptr;
}

std::string test_set_refusal(const std::string& option, const std::string& spec, const DatasetInfo& set,
                             const std::string& override_hint) {
  std::string train, validation;
  for (const auto& d : dataset_registry()) {
    if (d.role == SplitRole::train) train += (train.empty() ? "" : ", ") + d.name;
    if (d.role == SplitRole::validation) validation += (validation.empty() ? "" : ", ") + d.name;
  }
  return option + " '" + spec + "'" + (spec == set.name ? "" : " (the file of " + set.name + ")") +
         " is a registered test set (" + set.note + "): test sets are for `hyplora eval` only; training on one or "
         "choosing checkpoints on it breaks the evaluation protocol. Train on a training split (" + train +
         ") and validate on a validation split (" + validation + ") or a held-out slice of the training data; " +
         override_hint + " uses it anyway";
}

}  // namespace hyplora::data
