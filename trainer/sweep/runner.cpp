#include "sweep/runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstring>
#include <optional>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "data/prompt_template.hpp"
#include "data/repeats.hpp"
#include "formats/atomic_file.hpp"
#include "model/load_model.hpp"
#include "train/adapter_file.hpp"
#include "train/dataset.hpp"
#include "train/evaluate.hpp"
#include "train/signals.hpp"
#include "train/trainer.hpp"
#include "util/model_locate.hpp"
#include "util/progress.hpp"

namespace fs = std::filesystem;

namespace hyplora::sweep {

long count_target_tokens(const std::vector<int>& response_tokens_per_example, long steps, long examples_per_step,
                         std::uint64_t seed) {
  if (response_tokens_per_example.empty()) return 0;
  train::ExampleOrder order(response_tokens_per_example.size(), seed);
  long total = 0;
  const std::uint64_t draws = std::uint64_t(steps) * std::uint64_t(examples_per_step);
  for (std::uint64_t k = 0; k < draws; ++k) total += response_tokens_per_example[order.at(k)];
  return total;
}

namespace {

/// cells/<id>.claim while a process runs that cell: created exclusively (O_EXCL) and holding the
/// pid, removed when the cell is done or fails. Two processes on one folder (shards started with
/// different grids or positions, a sweep started twice) never run a cell at once: they raced in
/// runs/<id>, one deleting the other's checkpoint. A claim whose process no longer runs (killed) is
/// taken over.
class CellClaim {
 public:
  /// The claim, or nullopt with *holder = the pid of the live process that holds it.
  static std::optional<CellClaim> take(const fs::path& path, long* holder) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
      if (fd >= 0) {
        const std::string pid = std::to_string(long(::getpid())) + "\n";
        const bool written = ::write(fd, pid.data(), pid.size()) == ssize_t(pid.size());
        ::close(fd);
        if (!written) throw std::runtime_error("cannot write the claim " + path.string());
        return CellClaim(path);
      }
      if (errno != EEXIST) throw std::runtime_error("cannot create the claim " + path.string() + ": " + std::strerror(errno));
      long pid = 0;
      std::ifstream(path) >> pid;
      if (pid > 0 && (::kill(pid_t(pid), 0) == 0 || errno == EPERM)) {
        *holder = pid;
        return std::nullopt;
      }
      std::error_code ec;
      fs::remove(path, ec);  // its process is gone
    }
    *holder = 0;
    return std::nullopt;
  }
  CellClaim(CellClaim&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  CellClaim(const CellClaim&) = delete;
  CellClaim& operator=(const CellClaim&) = delete;
  CellClaim& operator=(CellClaim&&) = delete;
  ~CellClaim() {
    std::error_code ec;
    if (!path_.empty()) fs::remove(path_, ec);
  }

 private:
  explicit CellClaim(fs::path p) : path_(std::move(p)) {}
  fs::path path_;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<std::pair<long, double>> read_val_curve(const fs::path& log) {
  std::vector<std::pair<long, double>> curve;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (j.contains("val_loss") && j["val_loss"].is_number()) curve.emplace_back(j["step"].get<long>(), j["val_loss"].get<double>());
    } catch (const std::exception&) {
    }
  }
  return curve;
}

/// What every cell shares: the model, the tokenizer, the task sets and the further test sets.
struct SweepContext {
  std::unique_ptr<llm::LlamaModel> model;
  llm::Tokenizer tok;
  std::vector<data::Record> train, validation, test;
  std::vector<std::pair<std::string, std::vector<data::Record>>> extra_tests;  ///< eval_data, first eval_limit each
  std::vector<int> response_tokens;  ///< per training example (for the token budget)
  /// the longest response of the training examples: "auto" new-token limits are at least it, for the
  /// base cell too (every row of a table is generated under the same limits)
  int longest_trained_response = -1;
};

/// The first `limit` records of a data set (file order), with a clear error when it has none.
std::vector<data::Record> first_records(const std::string& spec, data::BadRecordPolicy policy, long limit,
                                        bool report = true) {
  auto records = train::load_data_source(spec, policy, report).records;
  if (records.empty()) throw std::invalid_argument("sweep: data set '" + spec + "' holds no usable record");
  if (long(records.size()) > limit) records.resize(std::size_t(limit));
  return records;
}

SweepContext make_context(const SweepGrid& g) {
  SweepContext ctx;
  const auto files = util::locate_model(g.train.model, g.train.tokenizer);
  auto loaded = llm::load_model_and_tokenizer(files.model, files.tokenizer);
  ctx.tok = std::move(loaded.tokenizer);
  ctx.model = std::make_unique<llm::LlamaModel>(std::move(loaded.weights));
  const auto& t = g.task;
  const auto policy = g.train.bad_records == "skip" ? data::BadRecordPolicy::skip : data::BadRecordPolicy::reject;
  if (t.real()) {
    for (const auto& spec : t.train_data) {
      auto part = first_records(spec, policy, t.train - long(ctx.train.size()));
      ctx.train.insert(ctx.train.end(), part.begin(), part.end());
      if (long(ctx.train.size()) >= t.train) break;
    }
    ctx.validation = first_records(t.validation_data, policy, t.validation);
    ctx.test = first_records(t.test_data, policy, t.test);
  } else {
    ctx.train = train::builtin_records(t.seed, t.depth_min, t.depth_max, "train", std::size_t(t.train));
    ctx.validation = train::builtin_records(t.seed, t.depth_min, t.depth_max, "validation", std::size_t(t.validation));
    ctx.test = train::builtin_records(t.seed, t.depth_min, t.depth_max, "test", std::size_t(t.test));
  }
  for (const auto& spec : g.eval_data) ctx.extra_tests.emplace_back(spec, first_records(spec, policy, g.eval_limit));
  // A held-out set that repeats training questions scores partly what was trained on (MAWPS test
  // repeats 28 questions of MAWPS train).
  const data::QuestionSet trained(ctx.train);
  const auto warn_shared = [&](const std::vector<data::Record>& set, const std::string& what) {
    const auto w = data::shared_questions_warning(trained.count_shared(set), set.size(), what);
    if (!w.empty()) std::cerr << "hyplora: warning: sweep: " << w << ": they are not held out\n";
  };
  warn_shared(ctx.validation, "validation records");
  warn_shared(ctx.test, "test records");
  for (const auto& [spec, set] : ctx.extra_tests) warn_shared(set, "records of '" + spec + "'");
  const auto& tmpl = data::prompt_template(g.train.prompt_template);
  const int cutoff = std::min(g.train.cutoff, ctx.model->config().seq_len);
  const auto examples = train::tokenize_examples(ctx.train, tmpl, ctx.tok, cutoff);
  for (std::size_t i = 0; i < examples.size(); ++i)
    ctx.response_tokens.push_back(int(train::make_batch(examples, {i}, g.train.train_on_inputs).target_tokens));
  ctx.longest_trained_response = train::longest_response(examples);  // as `train` stores it in an adapter
  return ctx;
}

}  // namespace

void check_data_sources(const SweepGrid& g, bool report) {
  const auto policy = g.train.bad_records == "skip" ? data::BadRecordPolicy::skip : data::BadRecordPolicy::reject;
  const auto check = [&](const std::string& key, const std::string& spec, long limit) {
    try {
      (void)first_records(spec, policy, limit, report);
    } catch (const std::exception& e) {
      throw std::invalid_argument("sweep: " + key + " '" + spec + "': " + e.what());
    }
  };
  const auto& t = g.task;
  if (t.real()) {
    for (const auto& spec : t.train_data) check("task.train_data", spec, t.train);
    check("task.validation_data", t.validation_data, t.validation);
    check("task.test_data", t.test_data, t.test);
  }
  for (const auto& spec : g.eval_data) check("eval_data (--eval-data)", spec, g.eval_limit);
}

namespace {

void evaluate_extra_tests(llm::LlamaModel& model, SweepContext& ctx, const data::PromptTemplate& tmpl,
                         const train::GenerationLimits& limits, CellResult& r) {
  for (const auto& [name, records] : ctx.extra_tests)
    r.extra_tests.push_back(train::evaluate_records(model, ctx.tok, tmpl, records, name, limits, true));
}

CellResult run_cell(const SweepGrid& g, const CellSpec& c, SweepContext& ctx, const fs::path& out) {
  CellResult r;
  r.id = c.id();
  r.arm = c.arm();
  r.variant = c.variant;
  r.curvature_label = c.has_curvature ? c.curvature.label() : "";
  r.lr = c.lr;
  r.seed = c.seed;
  r.fingerprint = cell_fingerprint(g, c);
  const auto& tmpl = data::prompt_template(g.train.prompt_template);
  const train::GenerationLimits limits{g.max_new_tokens, ctx.longest_trained_response};
  auto& model = *ctx.model;
  model.detach_all();

  if (c.variant != "base") {
    const fs::path run_dir = out / "runs" / r.id;
    fs::remove_all(run_dir);  // a cell that did not finish starts again from scratch
    const auto s = cell_settings(g, c, run_dir.string());
    train::TrainingRun run(s, model, ctx.tok, ctx.train, ctx.validation);
    const auto tr = run.run(false);
    if (tr.interrupted) throw SweepInterrupted("sweep interrupted during cell " + r.id + " (not recorded)");
    r.steps = tr.steps;
    r.batch = s.batch;
    r.grad_accum = s.grad_accum;
    r.target_tokens = count_target_tokens(ctx.response_tokens, tr.steps, long(s.batch) * s.grad_accum, s.seed);
    r.params = run.adapters().num_params();
    r.initial_val_loss = tr.initial_val_loss;
    r.best_val_loss = tr.best_val_loss;
    r.best_step = tr.best_step;
    r.train_seconds = tr.train_seconds;
    r.val_curve = read_val_curve(run_dir / "train_log.jsonl");
    if (tr.stopped_bad || !std::isfinite(tr.best_val_loss)) {
      // diverged (parameters implausible, or non-finite steps by the NaN/Inf policy): a finished cell
      // with no result worth evaluating; its run folder keeps the log. The steps done are recorded;
      // the step that failed is the next one. A run with no finite validation loss has diverged too
      // (its record could not take part in the lr choice or the loss tests).
      r.diverged = true;
      r.diverged_reason = tr.stopped_bad ? tr.stop_reason : "no finite validation loss in " + std::to_string(tr.steps) + " steps";
      r.diverged_step = tr.stopped_bad ? tr.steps + 1 : tr.steps;
      r.best_val_loss = std::nan("");  // no adapter of this cell is chosen or evaluated
      r.best_step = -1;
      r.final_K = std::nan("");
      r.validation.name = "validation";
      r.test.name = "test";
      return r;  // the run folder keeps its log, last good adapter and checkpoint, as the reason says
    }
    fs::remove(run_dir / "checkpoint.safetensors");  // the cell is complete: no resume state needed
    auto best = train::load_adapter(tr.adapter_best, model.config());
    r.final_K = best.mean_K();
    best.attach(model);
    const auto t0 = Clock::now();
    r.validation = train::evaluate_records(model, ctx.tok, tmpl, ctx.validation, "validation", limits, true);
    r.test = train::evaluate_records(model, ctx.tok, tmpl, ctx.test, "test", limits, true);
    evaluate_extra_tests(model, ctx, tmpl, limits, r);
    r.eval_seconds = seconds_since(t0);
    model.detach_all();
  } else {
    const auto t0 = Clock::now();
    r.validation = train::evaluate_records(model, ctx.tok, tmpl, ctx.validation, "validation", limits, true);
    r.test = train::evaluate_records(model, ctx.tok, tmpl, ctx.test, "test", limits, true);
    evaluate_extra_tests(model, ctx, tmpl, limits, r);
    r.eval_seconds = seconds_since(t0);
  }
  r.validation.items.clear();
  r.test.items.clear();
  for (auto& d : r.extra_tests) d.items.clear();
  return r;
}

}  // namespace

RunStats run_sweep(const SweepGrid& grid, const RunOptions& opt) {
  grid.validate();
  if (opt.shard_count < 1 || opt.shard_index < 0 || opt.shard_index >= opt.shard_count)
    throw std::invalid_argument("sweep: --shard must be i/n with 0 <= i < n");
  const auto t_start = Clock::now();
  ResultsStore store(opt.out, false);  // reads only, until the model and the data are read
  // --out/cells and grid.json, once nothing that is read can fail any more
  const auto prepare_out = [&] {
    fs::create_directories(opt.out / "cells");
    for (const auto& d : {opt.out, opt.out / "cells"})  // left by a killed writer; live shards' files are kept
      for (const auto& p : formats::remove_stale_temp_files(d))
        if (!opt.quiet) std::cerr << "hyplora sweep: removed " << p.string() << " (left by a killed writer)\n";
    formats::write_file_atomically(opt.out / "grid.json", to_json(grid).dump(2) + "\n");
  };

  const auto all = expand_cells(grid);
  std::vector<CellSpec> todo;
  RunStats stats;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (long(i) % opt.shard_count != opt.shard_index) continue;
    ++stats.cells_total;
    const auto& c = all[i];
    if (auto rec = store.load(c.id())) {
      if (rec->fingerprint != cell_fingerprint(grid, c))
        throw std::runtime_error(store.cell_path(c.id()).string() +
                                 " was recorded with other settings than this grid's (model, budget, task or adapter); "
                                 "use a new --out folder or delete that file");
      ++stats.cells_reused;
    } else {
      todo.push_back(c);
    }
  }
  if (!opt.quiet)
    std::cerr << "hyplora sweep: " << stats.cells_total << " cells, " << stats.cells_reused << " already recorded, "
              << todo.size() << " to run\n";
  if (opt.max_cells == 0 && !todo.empty()) {  // runs none: reads and writes nothing
    stats.cells_left = long(todo.size());
    stats.seconds = seconds_since(t_start);
    return stats;
  }
  if (todo.empty()) {
    prepare_out();
    stats.seconds = seconds_since(t_start);
    return stats;
  }
  train::set_thread_count(opt.threads);
  SweepContext ctx = make_context(grid);  // the model and every data set: a bad one fails here, nothing written
  prepare_out();
  const long limit = opt.max_cells >= 0 ? std::min<long>(opt.max_cells, long(todo.size())) : long(todo.size());
  util::Progress progress("sweep", limit);
  // a stop signal between cells (during an evaluation) ends the sweep after that cell; during
  // training the trainer stops after the current step (its own scope, nested in this one); a second
  // signal exits at once (130)
  train::clear_stop_request();
  const train::StopSignalScope signal_scope("hyplora sweep: interrupt received, stopping after this training step or cell...");
  for (long i = 0; i < limit; ++i) {
    if (train::stop_requested())
      throw SweepInterrupted("sweep interrupted before cell " + todo[std::size_t(i)].id() + " (the cells before it are recorded)");
    const auto& c = todo[std::size_t(i)];
    long holder = 0;
    auto claim = CellClaim::take(fs::path(store.cell_path(c.id()).string() + ".claim"), &holder);
    if (!claim) {
      if (!opt.quiet)
        std::cerr << "hyplora sweep: cell " << c.id() << " is being run by process " << holder << "; left to it\n";
      continue;
    }
    if (store.load(c.id())) {  // recorded by another process since the list was made
      ++stats.cells_reused;
      continue;
    }
    if (!opt.quiet) std::cerr << "hyplora sweep: cell " << (i + 1) << "/" << limit << " " << c.id() << "\n";
    const auto t0 = Clock::now();
    CellResult r = run_cell(grid, c, ctx, opt.out);
    store.save(r);
    ++stats.cells_run;
    if (r.diverged) {
      ++stats.cells_diverged;
      // always said (also with --quiet): the sweep goes on, but this lr did not train
      std::cerr << "hyplora sweep: cell " << r.id << " diverged at step " << r.diverged_step << " (" << r.diverged_reason
                << "); recorded as diverged, going on\n";
      if (!opt.quiet) {
        progress.update(i + 1, r.id + ": diverged", true);
        std::cerr << "\n";
      }
    } else if (!opt.quiet) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s: val acc %.3f, test acc %.3f, best val loss %.4f, %.0f s", r.id.c_str(),
                    r.validation.overall.accuracy(), r.test.overall.accuracy(), r.best_val_loss, seconds_since(t0));
      progress.update(i + 1, buf, true);
      std::cerr << "\n";
    }
  }
  stats.cells_left = 0;
  for (const auto& c : todo) stats.cells_left += store.load(c.id()) ? 0 : 1;
  stats.seconds = seconds_since(t_start);
  return stats;
}

}  // namespace hyplora::sweep
