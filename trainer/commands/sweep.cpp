// `hyplora sweep`: the grid of issue 9 (variant x curvature x learning rate x seed on the built-in
// task or a real data set, equal budgets, shared evaluation sets plus further test sets), resumable, then the statistics: per-arm mean / std /
// 95% CI by depth and overall at the learning rate chosen on validation, paired comparisons over
// seeds, plots and a Markdown summary (trainer/sweep/).
#include <iostream>
#include <stdexcept>
#include <string>
#include <tuple>

#include "commands/registry.hpp"
#include "sweep/aggregate.hpp"
#include "sweep/grid.hpp"
#include "sweep/runner.hpp"
#include "train/settings.hpp"
#include "util/progress.hpp"

namespace {

struct SweepOptions {
  std::string grid_file, out = "runs/sweep", model, shard;
  std::vector<std::string> variants, curvatures, eval_data;
  std::vector<double> lrs;
  std::vector<std::uint64_t> seeds;
  long steps = 0, max_cells = -1, test_count = 0, val_count = 0, train_count = 0, eval_limit = 0;
  int batch = 0, threads = 1;
  bool aggregate_only = false, dry_run = false, quiet = false;
} g;
CLI::App* g_command = nullptr;

/// A count flag, when given, must be positive: it is never ignored (a value <= 0 was skipped silently).
template <class T>
bool given_positive(const char* flag, T value) {
  if (g_command->count(flag) == 0) return false;
  if (value <= 0) throw std::invalid_argument(std::string("sweep: ") + flag + " must be positive, got " + std::to_string(value));
  return true;
}

/// "i/n" with 0 <= i < n, checked the same way for a real run and for --dry-run.
std::pair<int, int> parse_shard(const std::string& text) {
  int index = 0, count = 1;
  const auto slash = text.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no '/'");
    std::size_t used = 0;
    index = std::stoi(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("junk");
    const std::string n = text.substr(slash + 1);
    count = std::stoi(n, &used);
    if (used != n.size()) throw std::invalid_argument("junk");
  } catch (const std::exception&) {
    throw std::invalid_argument("sweep: --shard must be i/n (e.g. 0/2), got '" + text + "'");
  }
  if (count < 1 || index < 0 || index >= count)
    throw std::invalid_argument("sweep: --shard must be i/n with 0 <= i < n, got '" + text + "'");
  return {index, count};
}

CLI::App* setup(CLI::App& app) {
  auto* c = app.add_subcommand("sweep",
                               "Run a grid of adapter variants x curvature x lr x seed on the built-in task or a real data "
                               "set (resumable), then aggregate: mean/std/95% CI by depth and per test set, paired tests, "
                               "plots, summary.md");
  c->add_option("--grid", g.grid_file, "grid file (JSON, see trainer/sweep/grid.hpp); flags below override it");
  c->add_option("--out", g.out, "results folder (cells/<cell-id>.json, runs/, summary.md, plots)")->capture_default_str();
  c->add_option("--model", g.model, "model (default: stories260K)");
  c->add_option("--variants", g.variants, "lora,lora_scaled,naive,hyplora_lorentz,hyplora_poincare,paper")->delimiter(',');
  c->add_option("--curvatures", g.curvatures, "K values for the hyperbolic variants: 1,0.5,learned,2:learned")->delimiter(',');
  c->add_option("--lrs", g.lrs, "learning rates (the best per arm is chosen on validation)")->delimiter(',');
  c->add_option("--seeds", g.seeds, "seeds (>= 5 for confidence intervals worth reading)")
      ->delimiter(',')
      ->check(hyplora::cli::non_negative_integer());  // -1 wrapped to 2^64-1
  c->add_option("--steps", g.steps, "optimiser steps per cell (the same for every cell)");
  c->add_option("--batch", g.batch, "examples per step");
  c->add_option("--train-problems", g.train_count, "built-in training problems");
  c->add_option("--val-problems", g.val_count, "built-in validation problems");
  c->add_option("--test-problems", g.test_count, "built-in test problems");
  c->add_option("--eval-data", g.eval_data, "further test sets for every cell (gsm8k-test,mawps-test,la-svamp,...)")->delimiter(',');
  c->add_option("--eval-limit", g.eval_limit, "records of each --eval-data set (the first N)");
  c->add_option("--threads", g.threads, "OpenMP / BLAS threads per process")->capture_default_str();
  c->add_option("--max-cells", g.max_cells, "run at most N new cells, then aggregate what is recorded");
  c->add_option("--shard", g.shard, "i/n: run only every n-th cell starting at i (several processes, one folder)");
  c->add_flag("--aggregate-only", g.aggregate_only, "run no cell; aggregate the recorded ones");
  c->add_flag("--dry-run", g.dry_run, "list the cells and which are recorded; run nothing");
  c->add_flag("--quiet", g.quiet, "no progress lines");
  g_command = c;
  return c;
}

int run() {
  using namespace hyplora::sweep;
  SweepGrid grid = g.grid_file.empty() ? SweepGrid{} : load_grid(g.grid_file);
  if (!g.variants.empty()) grid.variants = g.variants;
  if (!g.curvatures.empty()) {
    grid.curvatures.clear();
    for (const auto& c : g.curvatures) grid.curvatures.push_back(parse_curvature(c));
  }
  if (!g.lrs.empty()) grid.lrs = g.lrs;
  if (!g.seeds.empty()) grid.seeds = g.seeds;
  if (given_positive("--steps", g.steps)) grid.train.steps = g.steps;
  if (given_positive("--batch", g.batch)) grid.train.batch = g.batch;
  if (given_positive("--train-problems", g.train_count)) grid.task.train = g.train_count;
  if (given_positive("--val-problems", g.val_count)) grid.task.validation = g.val_count;
  if (given_positive("--test-problems", g.test_count)) grid.task.test = g.test_count;
  if (!g.eval_data.empty()) grid.eval_data = g.eval_data;
  if (given_positive("--eval-limit", g.eval_limit)) grid.eval_limit = g.eval_limit;
  if (g_command->count("--max-cells") && g.max_cells < 0)
    throw std::invalid_argument("sweep: --max-cells must be >= 0, got " + std::to_string(g.max_cells));
  hyplora::train::check_thread_count(g.threads);
  if (!g.model.empty()) grid.train.model = g.model;
  grid.validate();
  identify_model(grid);  // the model's content is part of every cell's fingerprint

  RunOptions opt;
  opt.out = g.out;
  opt.threads = g.threads;
  opt.max_cells = g.max_cells;
  opt.quiet = g.quiet;
  if (!g.shard.empty()) std::tie(opt.shard_index, opt.shard_count) = parse_shard(g.shard);
  const auto cells = expand_cells(grid);
  if (g.dry_run) {
    // what a run reads before its first cell: a missing eval_data file was found only by the real run
    check_data_sources(grid);
    ResultsStore store(opt.out, false);  // reads only: --dry-run creates nothing (it made --out/cells)
    std::size_t listed = 0;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (long(i) % opt.shard_count != opt.shard_index) continue;  // the cells this shard would run
      const auto rec = store.load(cells[i].id());
      const char* state = !rec ? "to run   "
                          : rec->fingerprint == cell_fingerprint(grid, cells[i])
                              ? (rec->diverged ? "recorded (diverged) " : "recorded ")
                              : "other settings (a run refuses it) ";
      std::cout << state << cells[i].id() << "\n";
      ++listed;
    }
    std::cout << listed << " cells";
    if (opt.shard_count > 1) std::cout << " (shard " << opt.shard_index << "/" << opt.shard_count << " of " << cells.size() << ")";
    std::cout << "\n";
    return 0;
  }
  if (g.aggregate_only) {
    if (recorded_cells(grid, opt.out).empty())
      throw std::invalid_argument("sweep --aggregate-only: no cell of this grid is recorded in " +
                                  (opt.out / "cells").string() +
                                  " (run the sweep without --aggregate-only first, or check --out and the grid settings)");
  } else {
    check_data_sources(grid, false);  // a missing data file, before --out is made (reported when the run reads it)
    RunStats st;
    try {
      st = run_sweep(grid, opt);
    } catch (const SweepInterrupted& e) {  // like `hyplora train`: 130, the recorded cells are kept
      std::cerr << "hyplora: " << e.what() << ". Run the same command again to continue.\n";
      return 130;
    }
    std::cout << "cells: " << st.cells_total << " in grid, " << st.cells_reused << " reused, " << st.cells_run
              << " run now";
    if (st.cells_diverged) std::cout << " (" << st.cells_diverged << " diverged, recorded as such)";
    std::cout << ", " << st.cells_left << " left; " << hyplora::util::format_duration(st.seconds) << "\n";
    if (recorded_cells(grid, opt.out).empty())  // --max-cells 0, or every cell claimed by other processes
      throw std::invalid_argument("sweep: no cell of this grid is recorded in " + (opt.out / "cells").string() +
                                  " yet, so no summary was written" +
                                  (opt.max_cells == 0 ? " (--max-cells 0 runs none)" : ""));
  }
  const auto summary = write_summary(grid, opt.out);
  std::cout << summary.markdown_path.string() << "\n" << summary.markdown;
  return 0;
}

const hyplora::cli::CommandRegistration registration{"sweep", setup, run};

}  // namespace
