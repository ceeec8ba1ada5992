// `hyplora demo`: the main job. Fine-tunes stories260K with LoRA and with HypLoRA (Lorentz) on the
// built-in story arithmetic task, evaluates the base model, LoRA and HypLoRA on held-out problems by
// depth, prints the table and writes a plot (accuracy by depth, loss curves) and a JSON report.
#include <chrono>
#include <cstdio>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <map>
#include <iostream>

#include "commands/registry.hpp"
#include "data/prompt_template.hpp"
#include "data/story_task.hpp"
#include "formats/atomic_file.hpp"
#include "model/load_model.hpp"
#include "train/adapter_file.hpp"
#include "train/dataset.hpp"
#include "train/evaluate.hpp"
#include "train/trainer.hpp"
#include "util/model_locate.hpp"
#include "util/plot.hpp"
#include "util/progress.hpp"

namespace fs = std::filesystem;

namespace {

struct DemoOptions {
  std::string out = "runs/demo";
  std::string model, tokenizer;
  long steps = 1000;
  int batch = 16;
  int rank = 8;
  double lr_lora = 1e-2, lr_hyplora = 1e-2;
  double alpha_lora = 16, alpha_hyplora = 16;
  int depth_min = 1, depth_max = 3;
  long builtin_train = 3000;
  long val_examples = 96;
  long test_count = 240;
  std::uint64_t seed = 0;
  int threads = 1;  // one thread: predictable on a shared 2-core machine, bit-exact for a seed
  std::string max_new_tokens = "auto";
  bool quiet = false;
} g;
hyplora::train::GenerationLimits g_limits;  ///< --max-new-tokens, parsed by check_options

CLI::App* setup(CLI::App& app) {
  auto* c = app.add_subcommand(
      "demo", "The main job: fine-tune stories260K with LoRA and HypLoRA (Lorentz) on the built-in task, "
              "evaluate base / LoRA / HypLoRA by depth, print the table, write plot + JSON report");
  c->add_option("--out", g.out, "output folder")->capture_default_str();
  c->add_option("--model", g.model, "model (default: stories260K, downloaded when absent)");
  c->add_option("--tokenizer", g.tokenizer, "tokenizer (default: next to the model)");
  c->add_option("--steps", g.steps, "optimiser steps per adapter")->capture_default_str();
  c->add_option("--batch", g.batch, "batch size")->capture_default_str();
  c->add_option("--rank", g.rank, "adapter rank")->capture_default_str();
  c->add_option("--lr-lora", g.lr_lora, "LoRA learning rate")->capture_default_str();
  c->add_option("--lr-hyplora", g.lr_hyplora, "HypLoRA learning rate")->capture_default_str();
  c->add_option("--alpha-lora", g.alpha_lora, "LoRA alpha")->capture_default_str();
  c->add_option("--alpha-hyplora", g.alpha_hyplora, "HypLoRA alpha")->capture_default_str();
  c->add_option("--depth-min", g.depth_min, "fewest operations")->capture_default_str();
  c->add_option("--depth-max", g.depth_max, "most operations")->capture_default_str();
  c->add_option("--train-problems", g.builtin_train, "built-in training problems")->capture_default_str();
  c->add_option("--test-problems", g.test_count, "held-out test problems (balanced over depths)")->capture_default_str();
  c->add_option("--seed", g.seed, "seed")
      ->check(hyplora::cli::non_negative_integer())
      ->capture_default_str();
  c->add_option("--threads", g.threads, "OpenMP / BLAS threads (0 = all cores)")->capture_default_str();
  c->add_option("--max-new-tokens", g.max_new_tokens,
                "generation limit per answer: N new tokens, or auto (the test problems' longest reference response + " +
                    std::to_string(hyplora::train::kAutoMarginTokens) + " tokens)")
      ->capture_default_str();
  c->add_flag("--quiet", g.quiet, "no progress lines");
  return c;
}

hyplora::train::TrainSettings settings_for(const std::string& adapter, const std::string& manifold, double lr,
                                           double alpha, const fs::path& out, const std::string& model_path) {
  hyplora::train::TrainSettings s;
  s.model = model_path;
  s.tokenizer = g.tokenizer;
  s.adapter = adapter;
  s.manifold = manifold;
  s.variant = "consistent";
  s.rank = g.rank;
  s.alpha = alpha;
  s.lr = lr;
  s.warmup = std::max(1L, g.steps / 10);
  s.batch = g.batch;
  s.steps = g.steps;
  s.seed = g.seed;
  s.builtin = true;
  s.depth_min = g.depth_min;
  s.depth_max = g.depth_max;
  s.builtin_train = g.builtin_train;
  s.val_examples = g.val_examples;
  s.eval_every = std::max(1L, g.steps / 6);
  s.log_every = std::max(1L, g.steps / 30);
  s.out = out.string();
  s.quiet = g.quiet;
  return s;
}

std::vector<double> read_curve(const fs::path& log, const char* key, std::vector<double>& steps) {
  std::vector<double> y;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (j.contains(key) && j[key].is_number()) {
        steps.push_back(j["step"].get<double>());
        y.push_back(j[key].get<double>());
      }
    } catch (const std::exception&) {
    }
  }
  return y;
}

/// Every count and setting of the demo, checked before any work (the base-model evaluation takes
/// minutes): throws std::invalid_argument naming the flag.
void check_options() {
  using hyplora::train::kMaxBuiltinProblems;
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("demo: " + what);
  };
  const std::string range = ", " + std::to_string(kMaxBuiltinProblems) + "]";
  require(g.steps >= 1, "--steps must be >= 1, got " + std::to_string(g.steps));
  require(g.builtin_train >= 1 && g.builtin_train <= kMaxBuiltinProblems,
          "--train-problems must be in [1" + range + ", got " + std::to_string(g.builtin_train));
  require(g.test_count >= 1 && g.test_count <= kMaxBuiltinProblems,
          "--test-problems must be in [1" + range + ", got " + std::to_string(g.test_count));
  require(g.depth_min >= 1 && g.depth_max >= g.depth_min && g.depth_max <= hyplora::data::kMaxStoryDepth,
          "--depth-min/--depth-max must satisfy 1 <= min <= max <= " + std::to_string(hyplora::data::kMaxStoryDepth) +
              ", got " + std::to_string(g.depth_min) + " and " +
              std::to_string(g.depth_max));
  g_limits = hyplora::train::parse_max_new_tokens(g.max_new_tokens, "demo: --max-new-tokens");
  require(!g.out.empty(), "--out must name a folder");
  // writable before the base-model evaluation (a read-only folder failed only when the first run started)
  hyplora::formats::require_writable_folder(g.out, "demo: --out " + g.out, true);
  hyplora::train::check_thread_count(g.threads);
  // the training settings of both adapters (batch, rank, learning rates, alphas, ...)
  auto check_job = [](const char* name, const char* adapter, const char* manifold, double lr, double alpha) {
    try {
      settings_for(adapter, manifold, lr, alpha, fs::path(g.out) / name, "").validate();
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("demo, ") + name + " run: " + e.what() +
                                  " (--lr and --alpha are the demo's --lr-" + adapter + " and --alpha-" + adapter + ")");
    }
  };
  check_job("lora", "lora", "euclidean", g.lr_lora, g.alpha_lora);
  check_job("hyplora-lorentz", "hyplora", "lorentz", g.lr_hyplora, g.alpha_hyplora);
}

int run() {
  using namespace hyplora;
  const auto t_start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(); };
  check_options();
  train::set_thread_count(g.threads);
  const fs::path out = g.out;

  const auto files = util::locate_model(g.model, g.tokenizer);
  std::cout << "hyplora demo: model " << files.model.string() << " (" << files.source << ")\n";
  auto loaded = llm::load_model_and_tokenizer(files.model, files.tokenizer);
  auto tok = std::move(loaded.tokenizer);
  llm::LlamaModel model(std::move(loaded.weights));
  const auto& tmpl = data::prompt_template("compact");

  const auto test = train::builtin_records(g.seed, g.depth_min, g.depth_max, "test", std::size_t(g.test_count));
  const auto train_records = train::builtin_records(g.seed, g.depth_min, g.depth_max, "train", std::size_t(g.builtin_train));
  const auto val_records = train::builtin_records(g.seed, g.depth_min, g.depth_max, "validation", std::size_t(g.val_examples));
  std::cout << "built-in task: " << train_records.size() << " train, " << val_records.size() << " validation, "
            << test.size() << " test problems, depth " << g.depth_min << "-" << g.depth_max << "\n"
            << "example: " << tmpl.prompt(test.front()) << tmpl.response(test.front());
  train::GenerationLimits limits = g_limits;
  {  // the training data must fit the cutoff before the base evaluation is spent (deep problems did not)
    const auto s = settings_for("lora", "euclidean", g.lr_lora, g.alpha_lora, out / "lora", files.model.string());
    train::TrainingRun probe(s, model, tok, train_records, val_records);  // throws when no example fits
    // "auto" is at least the longest answer the adapters are trained to write, for every row alike
    limits.longest_trained_response = std::max(limits.longest_trained_response, probe.longest_trained_response());
  }
  fs::create_directories(out);
  std::map<int, std::size_t> per_depth;  // test problems of each depth (depths with none are not shown)
  for (const auto& r : test) ++per_depth[r.depth];

  struct Row {
    std::string name;
    eval::DatasetAccuracy acc;
    train::TrainResult train;
    bool trained = false;
    double eval_seconds = 0;
  };
  std::vector<Row> rows;
  auto evaluate = [&](const std::string& name) {
    const double t0 = seconds();
    Row r;
    r.name = name;
    r.acc = train::evaluate_records(model, tok, tmpl, test, name, limits, g.quiet);
    r.eval_seconds = seconds() - t0;
    return r;
  };

  std::cout << "\n[1/5] base model on the test problems\n";
  rows.push_back(evaluate("base"));

  struct Job {
    std::string name, adapter, manifold;
    double lr, alpha;
  };
  const std::vector<Job> jobs = {{"lora", "lora", "euclidean", g.lr_lora, g.alpha_lora},
                                 {"hyplora-lorentz", "hyplora", "lorentz", g.lr_hyplora, g.alpha_hyplora}};
  int stage = 2;
  for (const auto& job : jobs) {
    std::cout << "\n[" << stage++ << "/5] train " << job.name << " (" << g.steps << " steps)\n";
    auto s = settings_for(job.adapter, job.manifold, job.lr, job.alpha, out / job.name, files.model.string());
    train::TrainingRun run(s, model, tok, train_records, val_records);
    run.overwrite = true;  // the demo owns its folders: a second demo replaces the first one's runs
    auto result = run.run(false);
    if (result.interrupted || result.stopped_bad) {
      std::cerr << "hyplora demo: training " << job.name << " stopped: " << result.stop_reason << "\n";
      return result.interrupted ? 130 : 3;
    }
    char line[200];
    std::snprintf(line, sizeof line, "  best validation loss %.4f at step %ld (start %.4f), %.1f s, %.0f tokens/s\n",
                  result.best_val_loss, result.best_step, result.initial_val_loss, result.train_seconds,
                  result.tokens_per_second);
    std::cout << line;
    std::cout << "\n[" << stage++ << "/5] " << job.name << " (best adapter) on the test problems\n";
    auto best = train::load_adapter(result.adapter_best, model.config());
    best.attach(model);
    Row r = evaluate(job.name);
    model.detach_all();
    r.train = result;
    r.trained = true;
    rows.push_back(std::move(r));
  }

  // ---- table -----------------------------------------------------------------------------
  std::cout << "\nAccuracy on " << test.size() << " held-out built-in problems (greedy, answer = last number)\n";
  std::cout << std::left << std::setw(18) << "model";
  for (const auto& [d, n] : per_depth) std::cout << std::right << std::setw(9) << ("depth " + std::to_string(d));
  std::cout << std::setw(10) << "overall" << "\n";
  for (const auto& r : rows) {
    std::cout << std::left << std::setw(18) << r.name << std::right << std::fixed << std::setprecision(1);
    for (const auto& [d, n] : per_depth) {
      auto it = r.acc.by_depth.find(d);
      std::cout << std::setw(9) << (it == r.acc.by_depth.end() ? 0.0 : 100.0 * it->second.accuracy());
    }
    std::cout << std::setw(9) << 100.0 * r.acc.overall.accuracy() << "%\n" << std::defaultfloat;
  }
  std::cout << "(problems per depth:";
  for (const auto& [d, n] : per_depth) std::cout << " " << d << ": " << n;
  std::cout << ")\n";
  if (!rows.empty()) {  // every row has the same limit: it comes from the test problems only
    const auto& a = rows.front().acc;
    std::cout << "(new-token limit " << a.limit.describe() << "; answers cut at the limit:";
    for (const auto& r : rows) std::cout << " " << r.name << " " << r.acc.generations_at_limit;
    std::cout << "; with no number:";
    for (const auto& r : rows) std::cout << " " << r.name << " " << r.acc.no_answer;
    std::cout << ")\n";
  }

  // ---- plot ------------------------------------------------------------------------------
  util::PlotPanel acc_panel{"accuracy by depth (held-out built-in problems)", "depth (operations)", "accuracy (%)", {}};
  acc_panel.y_min = 0;
  acc_panel.y_max = 100;
  acc_panel.x_tics = 1;
  for (const auto& r : rows) {
    util::PlotSeries ser{r.name, {}, {}, {}};
    for (const auto& [d, n] : per_depth) {
      auto it = r.acc.by_depth.find(d);
      ser.x.push_back(d);
      ser.y.push_back(it == r.acc.by_depth.end() ? 0.0 : 100.0 * it->second.accuracy());
    }
    acc_panel.series.push_back(std::move(ser));
  }
  util::PlotPanel loss_panel{"loss curves", "step", "loss (response tokens)", {}};
  for (const auto& r : rows) {
    if (!r.trained) continue;
    const fs::path log = r.train.out_dir / "train_log.jsonl";
    util::PlotSeries tr{r.name + " train", {}, {}, {}}, va{r.name + " validation", {}, {}, {}};
    tr.y = read_curve(log, "loss", tr.x);
    va.y = read_curve(log, "val_loss", va.x);
    loss_panel.series.push_back(std::move(tr));
    loss_panel.series.push_back(std::move(va));
  }
  const auto plot = util::render_plot(out / "demo.png", {acc_panel, loss_panel});
  if (plot.rendered) std::cout << "plot: " << plot.image.string() << "\n";
  else std::cout << "plot not rendered: " << plot.message << "\n";

  // ---- report ----------------------------------------------------------------------------
  nlohmann::json report;
  report["model"] = files.model.string();
  report["task"] = {{"name", "builtin story arithmetic"}, {"depth_min", g.depth_min}, {"depth_max", g.depth_max},
                    {"train", train_records.size()}, {"validation", val_records.size()}, {"test", test.size()},
                    {"seed", g.seed}, {"prompt_template", "compact"}, {"max_new_tokens", train::max_new_tokens_json(limits)}};
  for (const auto& r : rows) {
    nlohmann::json j = eval::to_json(eval::AccuracyReport{{r.acc}}, false)["datasets"][0];
    j["eval_seconds"] = r.eval_seconds;
    if (r.trained) {
      j["train"] = {{"steps", r.train.steps},
                    {"best_step", r.train.best_step},
                    {"initial_val_loss", r.train.initial_val_loss},
                    {"best_val_loss", r.train.best_val_loss},
                    {"train_seconds", r.train.train_seconds},
                    {"tokens_per_second", r.train.tokens_per_second},
                    {"adapter", r.train.adapter_best.string()},
                    {"settings_file", (r.train.out_dir / "settings.json").string()}};
    }
    report["results"][r.name] = j;
  }
  report["seconds"] = seconds();
  report["plot"] = plot.rendered ? plot.image.string() : "";
  formats::write_file_atomically(out / "report.json", report.dump(2) + "\n");
  std::cout << "report: " << (out / "report.json").string() << "\ntotal " << util::format_duration(seconds()) << "\n";
  return 0;
}

const hyplora::cli::CommandRegistration registration{
    "demo", setup, run,
    "The demo's training memory grows with --batch x the sequence length (deeper problems are longer: --depth-max) "
    "and with the model size: lower --batch or --depth-max, or use a smaller --model."};

}  // namespace
