// `hyplora eval`: accuracy of a model, with or without an adapter file, on data sets (greedy
// generation, answer extraction of SPEC section 5, accuracy per set and depth, weighted average).
#include <iostream>

#include "commands/registry.hpp"
#include "data/prompt_template.hpp"
#include "formats/atomic_file.hpp"
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
  std::size_t builtin_count = 300;
  int depth_min = 1, depth_max = 3;
  std::uint64_t seed = 0;
  int max_new_tokens = 40;
  long limit = 0;
  int threads = 0;
  int show = 0;
  bool quiet = false;
} g;

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
  c->add_option("--seed", g.seed, "seed of the built-in problems")->capture_default_str();
  c->add_option("--max-new-tokens", g.max_new_tokens, "generation limit per answer")->capture_default_str();
  c->add_option("--limit", g.limit, "evaluate only the first N problems of each set (0 = all)")->capture_default_str();
  c->add_option("--prompt-template", g.prompt_template, "compact | alpaca (use what the adapter was trained with)");
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
  train::set_thread_count(g.threads);
  const auto files = util::locate_model(g.model, g.tokenizer);
  auto weights = llm::load_model_weights(files.model);
  auto tok = llm::load_tokenizer(files.tokenizer, files.model, weights.config.vocab_size);
  llm::LlamaModel model(std::move(weights));
  std::string template_name = g.prompt_template;
  std::unique_ptr<train::AdapterSet> adapters;
  if (!g.adapter.empty()) {
    adapters = std::make_unique<train::AdapterSet>(train::load_adapter(g.adapter, model.config()));
    adapters->attach(model);
  }
  if (g.data.empty()) g.data = {"builtin:test"};
  const auto policy = g.bad_records == "skip" ? data::BadRecordPolicy::skip : data::BadRecordPolicy::reject;
  const auto sets = train::load_eval_sets(g.data, g.builtin_count, g.seed, g.depth_min, g.depth_max, g.limit, policy);
  const auto& tmpl = data::prompt_template(template_name);
  const auto report = train::evaluate_sets(model, tok, tmpl, sets, train::GenerationLimits{g.max_new_tokens}, g.quiet);
  std::cout << "model " << files.model.string() << (g.adapter.empty() ? "" : " + adapter " + g.adapter) << "\n";
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
    j["max_new_tokens"] = g.max_new_tokens;
    formats::write_file_atomically(g.out, j.dump(2) + "\n");
    std::cout << "report: " << g.out << "\n";
  }
  return 0;
}

const hyplora::cli::CommandRegistration registration{"eval", setup, run};

}  // namespace
