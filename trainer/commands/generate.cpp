// hyplora generate: text generation as llama2.c run.c (same arguments, same output).
//   hyplora generate --model M --tokenizer T --prompt P --steps N --temperature 0 [--topp 0.9 --seed S]
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "commands/registry.hpp"
#include "hyplora/core/format.hpp"
#include "model/generator.hpp"
#include "model/llama.hpp"
#include "model/load_model.hpp"
#include "model/sampler.hpp"
#include "train/adapter_file.hpp"
#include "util/model_locate.hpp"

namespace {

struct GenerateArgs {
  std::string model, tokenizer, prompt;
  std::string adapter;       // adapter file written by `hyplora train` (optional)
  int steps = 256;           // run.c -n
  float temperature = 1.0f;  // run.c -t
  float topp = 0.9f;         // run.c -p
  std::uint64_t seed = 0;    // run.c -s (0: time); negative values refused (run.c wraps them)
  bool quiet = false;
};
GenerateArgs args;

int run_generate() {
  using namespace hyplora;
  // run.c turns -t < 0 into greedy, -p outside [0, 1] into 0.9 and -n < 0 into seq_len without a
  // word; here they are refused before the model is read (as -s < 0 is). -n 0 and -n > seq_len mean
  // seq_len, and -p 0 or 1 plain sampling, as in run.c (docs/runtime.md).
  if (!std::isfinite(args.temperature) || args.temperature < 0)
    throw std::invalid_argument("--temperature (-t) must be finite and >= 0 (0 = greedy), got " +
                                format_number(double(args.temperature)));
  if (!(args.topp >= 0 && args.topp <= 1))
    throw std::invalid_argument("--topp (-p) must be in [0, 1] (0 or 1: no top-p cut), got " +
                                format_number(double(args.topp)));
  if (args.steps < 0)
    throw std::invalid_argument("--steps (-n) must be >= 0 (0 = seq_len), got " + std::to_string(args.steps));
  // run.c's parameter normalisation
  if (args.seed == 0) args.seed = static_cast<std::uint64_t>(static_cast<unsigned int>(std::time(nullptr)));

  const auto files = util::locate_model(args.model, args.tokenizer);
  auto loaded = llm::load_model_and_tokenizer(files.model, files.tokenizer);
  llm::LlamaModel model(std::move(loaded.weights));
  const llm::Tokenizer tokenizer = std::move(loaded.tokenizer);
  // --adapter FILE: the trained adapters attach to their linear layers before generation.
  std::unique_ptr<train::AdapterSet> adapters;
  if (!args.adapter.empty()) {
    adapters = std::make_unique<train::AdapterSet>(train::load_adapter(args.adapter, model.config()));
    adapters->attach(model);
  }
  llm::Sampler sampler(model.config().vocab_size, args.temperature, args.topp,
                       args.seed);
  const auto t0 = std::chrono::steady_clock::now();
  const auto g = llm::generate(model, tokenizer, args.prompt, args.steps, sampler, [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  std::printf("\n");
  std::fflush(stdout);
  // run.c cuts a prompt longer than the positions run without a word (stdout stays as run.c's): say
  // how much of it was dropped. The tokens after BOS printed are the first `positions` of the prompt.
  if (const int steps = llm::normalize_steps(args.steps, model.config().seq_len), dropped = g.prompt_tokens - 1 - steps;
      dropped > 0)
    std::fprintf(stderr,
                 "hyplora: warning: the prompt is %d tokens (BOS included), more than the %d positions %s: its last %d "
                 "token%s were dropped and nothing was generated (run.c cuts it the same way)\n",
                 g.prompt_tokens, steps,
                 steps == model.config().seq_len ? "of the model's context (seq_len)" : "that --steps (-n) allows",
                 dropped, dropped == 1 ? "" : "s");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (g.positions > 1 && !args.quiet)
    std::fprintf(stderr, "achieved tok/s: %f\n", (g.positions - 1) / (s > 0 ? s : 1e-9));
  return 0;
}

const hyplora::cli::CommandRegistration registration{
    "generate",
    [](CLI::App& app) {
      auto* sub = app.add_subcommand("generate", "Generate text from a prompt, exactly as llama2.c run.c");
      sub->add_option("--model,-m", args.model,
                      "llama2.c checkpoint or GGUF (default: $HYPLORA_MODEL, else the shared stories260K)");
      sub->add_option("--tokenizer,-z", args.tokenizer, "llama2.c tokenizer.bin (default: next to the model / in the GGUF)");
      sub->add_option("--prompt,-i", args.prompt, "prompt text (default empty)");
      sub->add_option("--adapter", args.adapter, "adapter file (.safetensors) written by hyplora train");
      sub->add_option("--steps,-n", args.steps, "positions to run, BOS and prompt included (>= 0; 0 or more than seq_len = seq_len)");
      sub->add_option("--temperature,-t", args.temperature, "sampling temperature >= 0 (0 = greedy)");
      sub->add_option("--topp,-p", args.topp, "top-p (nucleus) sampling mass in (0, 1); 0 or 1 = no top-p cut");
      sub->add_option("--seed,-s", args.seed, "RNG seed in [0, 2^64) (0: current time)")
          ->check(hyplora::cli::non_negative_integer());
      sub->add_flag("--quiet,-q", args.quiet, "do not print tok/s on stderr");
      return sub;
    },
    run_generate};

}  // namespace
