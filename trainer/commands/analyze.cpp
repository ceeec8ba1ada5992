// hyplora analyze: token frequency power law, embedding norm against frequency, and Gromov delta of
// prompt embeddings (SPEC section 4; docs/analysis.md).
//   hyplora analyze --model M --tokenizer T --data gsm8k-train mawps/trainset.json builtin:2000 --out DIR
#include <iostream>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "commands/registry.hpp"
#include "formats/atomic_file.hpp"

namespace {

hyplora::analysis_cli::AnalyzeOptions args;
std::string out_dir;
bool no_bos = false, no_plots = false;

int run_analyze_command() {
  // the folder is written only after the model, data and delta work (~a minute): a -o that cannot take
  // files (a file in the way, a read-only folder) failed only then
  hyplora::formats::require_writable_folder(out_dir, "analyze: --out " + out_dir, true);
  args.out_dir = out_dir;
  args.bos = !no_bos;
  args.plots = !no_plots;
  hyplora::analysis_cli::run_analyze(args, std::cerr);
  return 0;
}

const hyplora::cli::CommandRegistration registration{
    "analyze",
    [](CLI::App& app) {
      auto* sub = app.add_subcommand("analyze",
                                     "Token-frequency power law, embedding norm vs frequency and Gromov delta of prompt "
                                     "embeddings; writes report.json, CSV tables and plots");
      sub->add_option("--model,-m", args.model,
                      "llama2.c checkpoint or GGUF (default: $HYPLORA_MODEL, else the shared stories260K)");
      sub->add_option("--tokenizer,-z", args.tokenizer, "llama2.c tokenizer.bin (default: next to the model / in the GGUF)");
      sub->add_option("--data,-d", args.data,
                      "data: registered names (gsm8k-train, mawps-train, ...), JSON/JSONL files (format detected from "
                      "the fields), or builtin[:N] (N built-in task problems, default 2000)")
          ->required();
      sub->add_option("--out,-o", out_dir, "output folder")->required();
      sub->add_option("--text", args.text, "text of a record: full (question + worked answer) or question")
          ->check(CLI::IsMember({"full", "question"}));
      sub->add_option("--max-points", args.max_points,
                      "tokens per prompt for the delta (first token kept), default 1500; memory grows as the "
                      "square and time as the cube of it")
          ->check(CLI::Range(4L, hyplora::analysis_cli::kMaxDeltaPoints));
      sub->add_option("--max-prompts", args.max_prompts, "prompts for the delta (0 = all records)")
          ->check(CLI::NonNegativeNumber);
      sub->add_option("--bins", args.bins, "log-spaced frequency bins for norm vs frequency")->check(CLI::Range(1, 1000));
      sub->add_option("--min-tail", args.min_tail, "power-law fit: smallest tail for an x_min candidate")
          ->check(CLI::Range(2L, 100000000L));
      sub->add_option("--seed", args.seed,
                      "seed of the token sampling in prompts longer than --max-points and of the Gaussian null "
                      "control's embedding table")
          ->check(hyplora::cli::non_negative_integer());
      sub->add_flag("--no-bos", no_bos, "do not start prompts with BOS (the first text token becomes the base point)");
      sub->add_flag("--no-plots", no_plots, "skip the gnuplot plots");
      sub->add_flag("--frequency-only", args.frequency_only,
                    "only token counts and the power-law fit, with any llama2.c --tokenizer (no model needed)");
      return sub;
    },
    run_analyze_command,
    "The Gromov delta keeps --max-points squared distances per thread, the embedding table and the records read "
    "(--data) also take memory: lower --max-points or --max-prompts, read less --data, or use a smaller --model."};

}  // namespace
