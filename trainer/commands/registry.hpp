#pragma once
// Subcommand registry of the `hyplora` CLI. Each commands/<name>.cpp defines a static
// CommandRegistration that adds its CLI11 subcommand; main.cpp parses and dispatches.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace hyplora::cli {

/// setup(app) adds a subcommand to app and returns it; run() is called when it was chosen and
/// returns the process exit code.
struct Command {
  std::string name;
  std::function<CLI::App*(CLI::App&)> setup;
  std::function<int()> run;
};

inline std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

struct CommandRegistration {
  CommandRegistration(std::string name, std::function<CLI::App*(CLI::App&)> setup, std::function<int()> run) {
    command_registry().push_back({std::move(name), std::move(setup), std::move(run)});
  }
};

}  // namespace hyplora::cli
