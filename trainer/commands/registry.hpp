#pragma once
// Subcommand registry of the `hyplora` CLI. Each commands/<name>.cpp defines a static
// CommandRegistration that adds its CLI11 subcommand; main.cpp parses and dispatches.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
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
  /// What makes this command's memory grow (flags, model size): main.cpp names it when the command
  /// runs out of memory (std::bad_alloc). Empty: a generic hint.
  std::string memory_hint = {};
};

inline std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

/// CLI11 validator for an unsigned 64-bit option: refuses a negative number (CLI11 would wrap "-1"
/// to 2^64-1) and one of 2^64 or more (CLI11's strtoull saturates it to 2^64-1 without a word).
/// Shared by every subcommand with a --seed.
inline CLI::Validator non_negative_integer() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        const auto first = v.find_first_not_of(" \t");
        if (first != std::string::npos && v[first] == '-') return "must be >= 0, got " + v;
        errno = 0;
        char* end = nullptr;
        (void)std::strtoull(v.c_str(), &end, 0);  // base 0, as CLI11 converts it
        if (errno == ERANGE) return "must be < 2^64, got " + v;
        return {};
      },
      "INT>=0");
}

struct CommandRegistration {
  CommandRegistration(std::string name, std::function<CLI::App*(CLI::App&)> setup, std::function<int()> run,
                      std::string memory_hint = {}) {
    command_registry().push_back({std::move(name), std::move(setup), std::move(run), std::move(memory_hint)});
  }
};

}  // namespace hyplora::cli
