// hyplora: the reference trainer's command line. Subcommands register themselves (commands/).
#include <algorithm>
#include <exception>
#include <iostream>

#include "commands/registry.hpp"

int main(int argc, char** argv) {
  CLI::App app{"hyplora: hyperbolic LoRA fine-tuning of Llama-architecture models"};
  app.require_subcommand(1);
  auto& commands = hyplora::cli::command_registry();
  std::sort(commands.begin(), commands.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, const hyplora::cli::Command*>> subs;
  for (const auto& c : commands) subs.emplace_back(c.setup(app), &c);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, cmd] : subs)
      if (sub->parsed()) return cmd->run();
  } catch (const std::exception& e) {
    std::cerr << "hyplora: error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
