#pragma once
// `hyplora analyze`: the paper's motivating measurements on any model and corpus (SPEC section 4,
// docs/analysis.md): token counts, a discrete power-law fit of the counts (with Vuong tests against
// log-normal and exponential), input-embedding norm against frequency, and the Gromov delta of each
// prompt's token embeddings (first token as base point, at most max_points tokens per prompt).
// Writes report.json, CSV tables and gnuplot plots into out_dir (every file atomically).
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hyplora::analysis_cli {

/// Largest --max-points: the delta of n points (in float) holds two n x n float matrices per thread,
/// the distances and the Gromov products (8192: 512 MiB), and takes O(n^3) time.
inline constexpr long kMaxDeltaPoints = 8192;
/// Largest N of --data builtin:N (as train's --builtin-train).
inline constexpr std::size_t kMaxBuiltinCount = 1'000'000;

struct AnalyzeOptions {
  std::string model, tokenizer;     // empty: the default model lookup (util::locate_model)
  std::vector<std::string> data;    // registered data set names, file paths, or "builtin[:N]"
  std::filesystem::path out_dir;
  std::string text = "full";        // "full": question + input + worked answer; "question": question + input
  bool bos = true;                  // prompts start with BOS (the model's input); BOS is not counted
  long max_points = 1500;           // tokens per prompt for the delta (the first always kept)
  long max_prompts = 0;             // 0: every record
  long min_prompt_tokens = 4;       // shorter prompts are skipped for the delta (counted)
  int bins = 12;                    // log-spaced frequency bins
  long min_tail = 20;               // power-law fit: smallest tail for an x_min candidate
  std::uint64_t seed = 1;
  bool plots = true;
  bool frequency_only = false;      // only counts and the power law, with any llama2.c tokenizer (no model)
};

/// Runs the analysis; progress lines go to `log`. Returns the report (also written as report.json).
nlohmann::json run_analyze(const AnalyzeOptions& options, std::ostream& log);

}  // namespace hyplora::analysis_cli
