// hyplora: the reference trainer's command line. Subcommands register themselves (commands/).
#include <algorithm>
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include "commands/registry.hpp"
#include "model/llama.hpp"

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
  const hyplora::cli::Command* running = nullptr;
  try {
    for (auto& [sub, cmd] : subs)
      if (sub->parsed()) {
        running = cmd;
        return cmd->run();
      }
  } catch (const std::bad_alloc& e) {
    // it printed "hyplora: error: std::bad_alloc", which says nothing of what to change
    const std::string name = running ? running->name : std::string("hyplora");
    if (const auto* estimate = dynamic_cast<const hyplora::llm::ActivationMemoryError*>(&e))
      std::cerr << "hyplora: error: out of memory: " << name << ": " << estimate->what() << ". ";  // refused before allocating
    else
      std::cerr << "hyplora: error: out of memory (std::bad_alloc): " << name
                << " needs more memory than this process may use (free memory, or a limit such as ulimit -v). ";
    std::cerr << (running && !running->memory_hint.empty()
                      ? running->memory_hint
                      : std::string("Use a smaller model, fewer examples per batch or shorter sequences"))
              << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "hyplora: error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
