// `hyplora eval`: accuracy of a model, with or without an adapter file, on data sets (greedy
// generation, answer extraction of SPEC section 5, accuracy per set and depth, weighted average).
#include <filesystem>
#include <iostream>
#include <map>

#include "commands/registry.hpp"
#include "data/prompt_template.hpp"
#include "data/registry.hpp"
#include "data/story_task.hpp"
#include "formats/atomic_file.hpp"
#include "formats/format_error.hpp"
#include "model/load_model.hpp"
#include "train/adapter_file.hpp"
#include "train/evaluate.hpp"
#include "train/trainer.hpp"
#include "util/json_config.hpp"
#include "util/model_locate.hpp"

namespace {

struct EvalOptions {
  std::string model, tokenizer, adapter, out, prompt_template = "compact", bad_records = "reject";
  std::vector<std::string> data;
  long builtin_count = 300;
  int depth_min = 1, depth_max = 3;
  std::uint64_t seed = 0;
  std::string max_new_tokens = "auto";
  long limit = 0;
  int threads = 0;
  int show = 0;
  bool quiet = false;
} g;
hyplora::train::GenerationLimits g_limits;  ///< --max-new-tokens, parsed by check_options
CLI::Option* g_template_option = nullptr;

/// Every flag checked before the model is read: throws std::invalid_argument naming the flag.
void check_options() {
  using hyplora::train::kMaxBuiltinProblems;
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("eval: " + what);
  };
  require(g.builtin_count >= 1 && g.builtin_count <= kMaxBuiltinProblems,
          "--builtin-count must be in [1, " + std::to_string(kMaxBuiltinProblems) + "], got " +
              std::to_string(g.builtin_count));
  require(g.depth_min >= 1 && g.depth_max >= g.depth_min && g.depth_max <= hyplora::data::kMaxStoryDepth,
          "--depth-min/--depth-max must satisfy 1 <= min <= max <= " + std::to_string(hyplora::data::kMaxStoryDepth) +
              ", got " + std::to_string(g.depth_min) + " and " +
              std::to_string(g.depth_max));
  g_limits = hyplora::train::parse_max_new_tokens(g.max_new_tokens, "eval: --max-new-tokens");
  require(g.limit >= 0, "--limit must be >= 0 (0 = all), got " + std::to_string(g.limit));
  require(g.show >= 0, "--show must be >= 0, got " + std::to_string(g.show));
  require(g.bad_records == "reject" || g.bad_records == "skip", "--bad-records must be reject or skip, got '" + g.bad_records + "'");
  hyplora::train::check_thread_count(g.threads);
  (void)hyplora::data::prompt_template(g.prompt_template);  // an unknown name is an error naming the known ones
  // the same set twice was evaluated twice and counted twice in the weighted average
  std::map<std::string, std::string> seen;  // resolved source -> spec as given
  for (const auto& d : g.data) {
    const bool builtin = d == "builtin" || d.rfind("builtin:", 0) == 0;
    const std::string key = builtin ? (d == "builtin" ? "builtin:test" : d) : hyplora::data::data_source_identity(d);
    const auto [it, fresh] = seen.emplace(key, d);
    require(fresh, "--data lists the same data set twice: " +
                       (it->second == d ? "'" + d + "'" : "'" + it->second + "' and '" + d + "' (both " + key + ")") +
                       "; it would be evaluated twice and counted twice in the weighted average");
  }
  if (!g.out.empty()) {  // the report is written at the end: a bad path must not cost the whole evaluation
    const std::filesystem::path out = g.out;
    require(!std::filesystem::is_directory(out), "--out " + g.out + " is a folder; give a file name for the JSON report");
    // writable, not only existing: an unwritable folder (read-only, /sys, a file as the folder) failed
    // with "cannot create temporary file" after the whole evaluation, and the report was lost
    hyplora::formats::require_writable_folder(out.parent_path(), "eval: --out " + g.out, false);
  }
}

/// The prompt template an adapter file was trained with ("" when its metadata does not say; corrupt
/// settings are an error naming the file), whether its training context ended before the prompt's
/// trailing space (metadata prompt_boundary), and its training examples' longest response (-1: not stored).
std::string stored_prompt_template(const std::string& adapter_file, bool* model_prompt_boundary = nullptr,
                                   int* longest_response = nullptr) {
  std::map<std::string, std::string> meta;
  hyplora::train::read_adapter_spec(adapter_file, &meta);
  if (longest_response) *longest_response = hyplora::train::stored_longest_response(meta, adapter_file);
  if (model_prompt_boundary) {
    const auto b = meta.find(hyplora::data::kPromptBoundaryKey);
    if (b != meta.end())
      if (const auto problem = hyplora::data::prompt_boundary_problem(b->second); !problem.empty())
        throw hyplora::formats::FormatError(adapter_file, problem);
    *model_prompt_boundary = b != meta.end();
  }
  return hyplora::train::stored_prompt_template(meta, adapter_file);
}

CLI::App* setup(CLI::App& app) {
  auto* c = app.add_subcommand("eval", "Evaluate a model (optionally with an adapter file) on data sets");
  c->add_option("--model", g.model, "llama2.c checkpoint or GGUF (default: stories260K)");
  c->add_option("--tokenizer", g.tokenizer, "tokenizer.bin (default: next to the model)");
  c->add_option("--adapter", g.adapter, "adapter file (.safetensors) written by hyplora train");
  c->add_option("--data", g.data,
                "data sets: builtin[:test|validation], a registered name (gsm8k-test, mawps-test, la-svamp, ...) "
                "or [FORMAT:]PATH; default builtin:test");
  c->add_option("--builtin-count", g.builtin_count, "built-in problems to evaluate")->capture_default_str();
  c->add_option("--depth-min", g.depth_min, "built-in task: fewest operations")->capture_default_str();
  c->add_option("--depth-max", g.depth_max, "built-in task: most operations")->capture_default_str();
  c->add_option("--seed", g.seed, "seed of the built-in problems")
      ->check(hyplora::cli::non_negative_integer())
      ->capture_default_str();
  c->add_option("--max-new-tokens", g.max_new_tokens,
                "generation limit per answer: N new tokens, or auto (per set: its longest reference response + " +
                    std::to_string(hyplora::train::kAutoMarginTokens) + " tokens; " +
                    std::to_string(hyplora::train::kAutoFallbackTokens) + " where a record has none)")
      ->capture_default_str();
  c->add_option("--limit", g.limit, "evaluate only the first N problems of each set (0 = all)")->capture_default_str();
  g_template_option = c->add_option("--prompt-template", g.prompt_template,
                                    "compact | alpaca (default: the one stored in the --adapter file, else compact)");
  c->add_option("--bad-records", g.bad_records, "reject | skip")->capture_default_str();
  c->add_option("--out", g.out, "write the JSON report (with every item) to this file");
  c->add_option("--show", g.show, "print the first N generations of each set")->capture_default_str();
  c->add_option("--threads", g.threads, "OpenMP / BLAS threads (0 = default)")->capture_default_str();
  c->add_flag("--quiet", g.quiet, "no progress line");
  hyplora::util::add_json_config(c);
  return c;
}

int run() {
  using namespace hyplora;
  check_options();
  train::set_thread_count(g.threads);
  const auto files = util::locate_model(g.model, g.tokenizer);
  if (!g.out.empty()) {  // the report must not land on what it is computed from (it replaced the model)
    std::vector<std::pair<std::filesystem::path, std::string>> inputs{
        {files.model, "--model"}, {files.tokenizer, "--tokenizer"}, {g.adapter, "--adapter"}};
    for (const auto& d : g.data) {  // a path, or FORMAT:PATH (registered names are not files)
      std::error_code ec;
      if (std::filesystem::is_regular_file(d, ec)) inputs.push_back({d, "--data"});
      const auto colon = d.find(':');
      if (colon != std::string::npos && std::filesystem::is_regular_file(d.substr(colon + 1), ec))
        inputs.push_back({d.substr(colon + 1), "--data"});
    }
    formats::require_not_an_input(g.out, "--out", inputs);
  }
  auto loaded = llm::load_model_and_tokenizer(files.model, files.tokenizer);
  auto tok = std::move(loaded.tokenizer);
  llm::LlamaModel model(std::move(loaded.weights));
  std::string template_name = g.prompt_template;
  std::unique_ptr<train::AdapterSet> adapters;
  bool same_boundary_of_adapter = true;  // the adapter's training context is this build's (below)
  auto limits = g_limits;
  if (!g.adapter.empty()) {
    adapters = std::make_unique<train::AdapterSet>(train::load_adapter(g.adapter, model.config()));
    adapters->attach(model);
    // score with the template the adapter was trained with, unless --prompt-template says otherwise
    // "auto" is at least the longest answer the adapter was trained to write (a set whose references
    // are shorter, LLM-Adapters' MAWPS, cut them)
    const std::string stored = stored_prompt_template(g.adapter, &same_boundary_of_adapter, &limits.longest_trained_response);
    const bool given = g_template_option->count() > 0;
    if (!stored.empty() && !given) {
      template_name = stored;
      if (!g.quiet) std::cerr << "hyplora: prompt template " << stored << " (stored in " << g.adapter << ")\n";
    } else if (stored.empty() && !given) {
      std::cerr << "hyplora: warning: " << g.adapter << " does not say which prompt template it was trained with"
                << " (no metadata \"settings\" with a 'prompt-template'); scoring with " << g.prompt_template
                << " (give --prompt-template to choose)\n";
    } else if (!stored.empty() && stored != g.prompt_template) {
      std::cerr << "hyplora: warning: --prompt-template " << g.prompt_template << " differs from the template the adapter "
                << g.adapter << " was trained with (" << stored << ")\n";
    }
  }
  if (g.data.empty()) g.data = {"builtin:test"};
  const auto policy = g.bad_records == "skip" ? data::BadRecordPolicy::skip : data::BadRecordPolicy::reject;
  const auto sets = train::load_eval_sets(g.data, std::size_t(g.builtin_count), g.seed, g.depth_min, g.depth_max, g.limit, policy);
  const auto& tmpl = data::prompt_template(template_name);
  if (adapters && !same_boundary_of_adapter && tmpl.prompt_ends_in_space())
    std::cerr << "hyplora: warning: " << g.adapter << " was trained by an older build, whose context ended with the"
              << " prompt's trailing space; this evaluation ends it before the space (the model generates it:"
              << " data::PromptTemplate::model_prompt), so the adapter is scored on a boundary it was not trained on\n";
  const auto report = train::evaluate_sets(model, tok, tmpl, sets, limits, g.quiet);
  std::cout << "model " << files.model.string() << (g.adapter.empty() ? "" : " + adapter " + g.adapter)
            << ", prompt template " << template_name << "\n";
  eval::print_table(std::cout, report);
  for (const auto& d : report.datasets)
    for (int i = 0; i < g.show && i < int(d.items.size()); ++i)
      std::cout << d.name << " " << d.items[std::size_t(i)].id << " [" << (d.items[std::size_t(i)].correct ? "ok" : "x")
                << "] label " << d.items[std::size_t(i)].label << " | " << d.items[std::size_t(i)].generated << "\n";
  if (!g.out.empty()) {
    nlohmann::json j = eval::to_json(report, true);
    j["model"] = files.model.string();
    j["adapter"] = g.adapter;
    j["prompt_template"] = template_name;
    j["max_new_tokens"] = train::max_new_tokens_json(limits);  // as asked; each set's resolved limit is in "datasets"
    // generated texts can end inside a multi-byte character (a byte token cut by the limit): written
    // with U+FFFD there, where a strict dump threw after the whole evaluation and lost the report
    formats::write_file_atomically(g.out, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    std::cout << "report: " << g.out << "\n";
  }
  return 0;
}

const hyplora::cli::CommandRegistration registration{
    "eval", setup, run,
    "Evaluation memory grows with the model size and the sequence length (the prompt plus --max-new-tokens): use a "
    "smaller --model or a lower --max-new-tokens."};

}  // namespace
