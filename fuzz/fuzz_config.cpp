// libFuzzer target: training configuration files.
//  1. `--config FILE` through util::JsonConfig into a CLI11 subcommand whose options are the
//     training settings (one option per key of TrainSettings' JSON form, typed as its default);
//  2. the run's settings.json (train::from_json, as `--resume` reads it), then validate().
#include <CLI/CLI.hpp>

#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "train/settings.hpp"
#include "util/json_config.hpp"

namespace {

struct Fields {
  std::map<std::string, std::string> text;
  std::map<std::string, long> integer;
  std::map<std::string, double> real;
  std::map<std::string, bool> flag;
  std::map<std::string, std::vector<std::string>> list;
};

void parse_with_cli(const std::string& config_path) {
  using hyplora::train::TrainSettings;
  nlohmann::json defaults;
  to_json(defaults, TrainSettings{});
  Fields f;
  CLI::App app("fuzz");
  auto* sub = app.add_subcommand("train");
  for (auto it = defaults.begin(); it != defaults.end(); ++it) {
    const std::string flag = "--" + it.key();
    const auto& v = it.value();
    if (v.is_boolean()) sub->add_flag(flag, f.flag[it.key()]);
    else if (v.is_number_integer()) sub->add_option(flag, f.integer[it.key()]);
    else if (v.is_number()) sub->add_option(flag, f.real[it.key()]);
    else if (v.is_array()) sub->add_option(flag, f.list[it.key()])->delimiter(',');
    else sub->add_option(flag, f.text[it.key()]);
  }
  hyplora::util::add_json_config(sub);
  std::vector<std::string> args{config_path, "--config", "train"};  // CLI11 takes them reversed: train --config FILE
  try {
    app.parse(args);
  } catch (const CLI::ParseError&) {
    return;
  }
  nlohmann::json j = defaults;
  for (auto& [k, v] : f.text) if (sub->count("--" + k)) j[k] = v;
  for (auto& [k, v] : f.integer) if (sub->count("--" + k)) j[k] = v;
  for (auto& [k, v] : f.real) if (sub->count("--" + k)) j[k] = v;
  for (auto& [k, v] : f.flag) if (sub->count("--" + k)) j[k] = v;
  for (auto& [k, v] : f.list) if (sub->count("--" + k)) j[k] = v;
  TrainSettings s;
  from_json(j, s);
  s.validate();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static hyplora::fuzz::ScratchFile file("config", ".json");
  const auto& path = file.write(data, size);
  try {
    parse_with_cli(path.string());
  } catch (const std::exception&) {
  }
  try {
    const auto j = nlohmann::json::parse(data, data + size);
    hyplora::train::TrainSettings s;
    from_json(j, s);
    s.validate();
  } catch (const std::exception&) {
  }
  return 0;
}
