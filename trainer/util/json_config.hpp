#pragma once
// A JSON config file for CLI11 subcommands: `--config FILE` holds the same settings as the flags,
// keyed by the long flag name without dashes ("lr", "grad-accum"; "_" is accepted for "-").
// Values on the command line override the file (CLI11 applies config items only to options that
// were not given). Unknown keys are an error naming the key. Nested objects are not accepted.
//   { "adapter": "hyplora", "manifold": "lorentz", "rank": 8, "lr": 0.003, "targets": ["q","v"] }
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <istream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "util/read_file.hpp"

namespace hyplora::util {

class JsonConfig : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also, bool, std::string) const override {
    nlohmann::ordered_json j;
    for (const CLI::Option* opt : app->get_options({})) {
      if (opt->get_lnames().empty() || !opt->get_configurable()) continue;
      const std::string name = opt->get_lnames()[0];
      if (opt->count() > 0) {
        auto results = opt->results();
        if (opt->get_expected_max() > 1 || results.size() > 1) j[name] = results;
        else if (opt->get_type_size() == 0) j[name] = opt->as<bool>();
        else j[name] = results.empty() ? std::string() : results[0];
      } else if (default_also && !opt->get_default_str().empty()) {
        j[name] = opt->get_default_str();
      }
    }
    return j.dump(2) + "\n";
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    nlohmann::json j;
    try {
      input >> j;
    } catch (const nlohmann::json::exception& e) {
      throw CLI::ConversionError(std::string("config file is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw CLI::ConversionError("config file must hold a JSON object of settings");
    std::vector<CLI::ConfigItem> items;
    for (auto it = j.begin(); it != j.end(); ++it) {
      CLI::ConfigItem item;
      item.name = it.key();
      for (auto& ch : item.name)
        if (ch == '_') ch = '-';
      const auto& v = it.value();
      if (v.is_array()) {
        for (const auto& e : v) item.inputs.push_back(scalar_text(e, it.key()));
      } else {
        item.inputs.push_back(scalar_text(v, it.key()));
      }
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  static std::string scalar_text(const nlohmann::json& v, const std::string& key) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number()) return v.dump();  // round-trip precision for doubles, exact for integers
    throw CLI::ConversionError("config key '" + key + "': value must be a string, number, boolean or a list of them");
  }
};

/// Adds `--config FILE` to `sub`, read as JSON (flags given on the command line win).
/// CLI11 2.1 reads a config file only for the top-level app (App::_process_config_file runs there
/// alone), so on a subcommand such as `hyplora train` set_config() was silently ignored, an invalid
/// file included (found by the reliability tests). The file is therefore applied by the option's own
/// callback, which CLI11 runs after the whole command line is parsed: each key fills the option of
/// that name unless the command line gave it; an unknown key or a nested value is an error.
inline CLI::Option* add_json_config(CLI::App* sub) {
  sub->config_formatter(std::make_shared<JsonConfig>());
  auto* opt = sub->add_option_function<std::string>(
      "--config",
      [sub](const std::string& file) {
        // a folder or a FIFO is refused before it is opened (a folder aborted the process with an
        // uncaught std::ios_base::failure, a FIFO blocked forever)
        std::string text;
        try {
          text = read_regular_file(file, "--config must be a JSON file");
        } catch (const FileReadError& e) {
          if (e.missing()) throw CLI::FileError::Missing(file);
          throw CLI::FileError(e.what());
        }
        std::istringstream in(text);
        std::vector<CLI::ConfigItem> items;
        try {
          items = JsonConfig().from_config(in);
        } catch (const CLI::ConversionError& e) {
          throw CLI::ConversionError(file + ": " + e.what());
        }
        for (const auto& item : items) {
          CLI::Option* target = sub->get_option_no_throw("--" + item.name);
          if (!target || !target->get_configurable())
            throw CLI::ConversionError(file + ": unknown setting '" + item.name + "'");
          if (target->count() > 0) continue;  // the command line wins
          if (item.inputs.empty()) {  // an empty list: a run's settings.json holds "data": [] (no data files)
            const std::string d = target->get_default_str();
            if (d.empty() || d == "[]") continue;  // the setting is empty by default: it stays so
            throw CLI::ConversionError(file + ": setting '" + item.name + "': an empty list is not a value of " +
                                       "this setting (default " + d + ")");
          }
          // a value the option rejects is reported with the file and the key it came from
          try {
            target->add_result(item.inputs);
            target->run_callback();
          } catch (const CLI::ValidationError& e) {
            throw CLI::ValidationError(file + ": setting '" + item.name + "': " + e.what());
          } catch (const CLI::ConversionError& e) {
            throw CLI::ConversionError(file + ": setting '" + item.name + "': " + e.what());
          } catch (const CLI::ParseError& e) {
            throw CLI::ConversionError(file + ": setting '" + item.name + "': " + e.what());
          }
        }
      },
      "JSON file with settings keyed by flag name; command-line flags override it");
  opt->configurable(false);
  return opt;
}

}  // namespace hyplora::util
