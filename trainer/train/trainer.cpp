#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "data/prompt_template.hpp"
#include "data/repeats.hpp"
#include "data/story_task.hpp"
#include "formats/atomic_file.hpp"
#include "formats/safetensors.hpp"
#include "formats/weight_check.hpp"
#include "model/blas.hpp"
#include "model/load_model.hpp"
#include "train/adapter_file.hpp"
#include "train/checkpoint.hpp"
#include "train/dataset.hpp"
#include "train/optimizer.hpp"
#include "train/schedule.hpp"
#include "train/signals.hpp"
#include "util/model_locate.hpp"
#include "util/plot.hpp"
#include "util/progress.hpp"

namespace fs = std::filesystem;

namespace hyplora::train {

void set_thread_count(int n) {
  check_thread_count(n);
  if (n == 0) return;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  openblas_set_num_threads(n);
}

std::vector<data::Record> builtin_records(std::uint64_t seed, int depth_min, int depth_max, const std::string& split,
                                          std::size_t count) {
  data::StoryTaskConfig cfg;
  cfg.seed = seed;
  cfg.min_depth = depth_min;
  cfg.max_depth = depth_max;
  data::SplitRole role;
  if (split == "train") role = data::SplitRole::train;
  else if (split == "validation" || split == "val") role = data::SplitRole::validation;
  else if (split == "test") role = data::SplitRole::test;
  else throw std::invalid_argument("built-in task split must be train, validation or test, got '" + split + "'");
  return data::generate_story_problems(cfg, role, count);
}

AdapterSpec adapter_spec_from(const TrainSettings& s) {
  AdapterSpec spec;
  spec.kind = resolve_kind(s.adapter, s.manifold, s.variant);
  spec.rank = s.rank;
  spec.alpha = s.alpha;
  spec.dropout = s.dropout;
  spec.targets.clear();
  for (const auto& t : s.targets) spec.targets.push_back(module_from_name(t));
  spec.K = s.curvature;
  spec.learn_K = s.learn_curvature;
  if (s.norm_scale == "auto") spec.scale = adapter::ScaleMode::automatic;
  else if (s.norm_scale == "none") spec.scale = adapter::ScaleMode::none;
  else if (s.norm_scale == "fixed") spec.scale = adapter::ScaleMode::fixed;
  else spec.scale = adapter::ScaleMode::learnable;
  spec.scale_init = s.norm_scale_init;
  spec.seed = s.seed;
  return spec;
}

TrainingInputs prepare_inputs(const TrainSettings& s) {
  s.validate();
  TrainingInputs in;
  const auto files = util::locate_model(s.model, s.tokenizer);
  in.model_path = files.model.string();
  auto loaded = llm::load_model_and_tokenizer(files.model, files.tokenizer);
  in.tokenizer = std::move(loaded.tokenizer);
  in.model = std::make_unique<llm::LlamaModel>(std::move(loaded.weights));

  const auto policy = s.bad_records == "skip" ? data::BadRecordPolicy::skip : data::BadRecordPolicy::reject;
  if (s.builtin)
    in.train = builtin_records(s.effective_data_seed(), s.depth_min, s.depth_max, "train", std::size_t(s.builtin_train));
  for (const auto& spec : s.data) {
    auto loaded = load_data_source(spec, policy);
    in.train.insert(in.train.end(), loaded.records.begin(), loaded.records.end());
  }
  if (!s.val_data.empty()) {
    in.validation = load_data_source(s.val_data, policy).records;
    if (s.val_examples > 0 && long(in.validation.size()) > s.val_examples) in.validation.resize(std::size_t(s.val_examples));
  } else if (s.builtin && s.val_examples > 0) {
    in.validation = builtin_records(s.effective_data_seed(), s.depth_min, s.depth_max, "validation", std::size_t(s.val_examples));
  } else if (s.val_examples > 0) {
    // hold out a slice of the training files, drawn with the data seed
    std::vector<std::size_t> order(in.train.size());
    ExampleOrder perm(in.train.size(), s.effective_data_seed() ^ 0x5EEDULL);
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = perm.at(i);
    const std::size_t n_val = std::min<std::size_t>(std::size_t(s.val_examples), in.train.size() / 5);
    if (n_val == 0) {
      std::string files;
      for (const auto& d : s.data) files += (files.empty() ? "" : ", ") + d;
      throw std::invalid_argument("--data " + files + ": " + std::to_string(in.train.size()) +
                                  " training record(s) are too few to hold out a validation slice (one in five is "
                                  "held out: at least 5 records are needed); give --val-data FILE or more data");
    }
    std::vector<data::Record> train, val;
    for (std::size_t i = 0; i < order.size(); ++i) (i < n_val ? val : train).push_back(in.train[order[i]]);
    in.train = std::move(train);
    in.validation = std::move(val);
  }
  if (in.train.empty()) throw std::invalid_argument("no training records");
  const auto warning = data::shared_questions_warning(data::count_shared_questions(in.validation, in.train),
                                                      in.validation.size(), "validation records");
  if (!warning.empty()) std::cerr << "hyplora: warning: " << warning << ": they are not held out, and the validation loss is partly a training loss\n";
  return in;
}

// ---------------------------------------------------------------------------------------------

struct TrainingRun::Impl {
  TrainSettings s;
  llm::LlamaModel& model;
  const llm::Tokenizer& tok;
  const data::PromptTemplate& tmpl;
  std::vector<TokenizedExample> train_ex, val_ex;
  int longest_response = 0;  ///< the longest response of train_ex, in tokens (after the cutoff)
  LrSchedule sched;
  long total_steps = 0;
  fs::path out;

  Impl(TrainSettings settings, llm::LlamaModel& m, const llm::Tokenizer& t)
      : s(std::move(settings)), model(m), tok(t), tmpl(data::prompt_template(s.prompt_template)), out(s.out) {}

  fs::path log_path() const { return out / "train_log.jsonl"; }

  void append_log(const nlohmann::json& j) {
    std::ofstream f(log_path(), std::ios::app);
    if (!f) throw std::runtime_error("cannot write " + log_path().string());
    f << j.dump() << "\n";
    f.flush();
  }

  /// Keeps the log lines up to `step` (a resumed run rewrites what came after its checkpoint).
  /// The log is the run's only record of its losses before the checkpoint, so no line of it is
  /// dropped unless it is known to come after the checkpoint:
  ///  - a last line without its newline is the write a killed run did not finish; it was written
  ///    after the run's last checkpoint (every step saves after its log lines), so its step is run
  ///    again: dropped, with a note;
  ///  - any other line that is not a JSON object with a numeric "step" (when it has one) cannot be
  ///    placed before or after the checkpoint: an error naming the file and the line, and the log is
  ///    left as it is (keeping it could leave a line of a step that is run again; dropping it lost
  ///    history silently, as the log was rewritten without it). The user fixes or deletes the line.
  void cut_log(long step) {
    std::ifstream in(log_path(), std::ios::binary);
    if (!in) return;
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string kept;
    long line_no = 0;
    for (std::size_t begin = 0; begin < text.size();) {
      const std::size_t end = text.find('\n', begin);
      const bool complete = end != std::string::npos;
      const std::string line = text.substr(begin, (complete ? end : text.size()) - begin);
      begin = complete ? end + 1 : text.size();
      ++line_no;
      if (line.empty()) continue;
      std::string problem;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
        if (!j.is_object()) problem = std::string("is a JSON ") + j.type_name() + ", not an object";
        else if (j.contains("step") && !j["step"].is_number()) problem = std::string("its \"step\" is a ") + j["step"].type_name() + ", not a number";
      } catch (const nlohmann::json::exception& e) {
        problem = std::string("is not valid JSON (") + e.what() + ")";
      }
      if (!problem.empty() && !complete) {  // a torn last line of a killed run
        if (!s.quiet)
          std::cerr << "hyplora: " << log_path().string() << ":" << line_no
                    << ": dropped the unfinished last line (the run was killed while writing it; its step is run again)\n";
        continue;
      }
      if (!problem.empty())
        throw std::runtime_error(log_path().string() + ":" + std::to_string(line_no) + ": line " + problem +
                                 "; --resume keeps the log's lines up to the checkpoint's step " + std::to_string(step) +
                                 " and cannot tell where this one belongs, so no file was changed: fix or delete that "
                                 "line, then resume again");
      if (j.contains("step") && j["step"].get<double>() > double(step)) continue;
      kept += line + "\n";
    }
    formats::write_file_atomically(log_path(), kept);
  }
};

TrainingRun::TrainingRun(TrainSettings settings, llm::LlamaModel& model, const llm::Tokenizer& tok,
                         std::vector<data::Record> train, std::vector<data::Record> validation)
    : impl_(std::make_unique<Impl>(std::move(settings), model, tok)) {
  auto& I = *impl_;
  I.s.validate();
  const int cutoff = std::min(I.s.cutoff, model.config().seq_len);
  std::size_t dropped = 0, cut = 0;
  I.train_ex = tokenize_examples(train, I.tmpl, tok, cutoff, &dropped, &cut);
  if (dropped) std::cerr << "hyplora: " << dropped << " training examples have no response within --cutoff " << cutoff << " tokens; dropped\n";
  // kept, but trained without their final answer and stop text (gsm8k-train at 256: 4,520 of the 7,183 kept)
  if (cut)
    std::cerr << "hyplora: warning: " << cut << " of " << I.train_ex.size() << " training examples are cut inside their "
              << "response by --cutoff " << cutoff << " (they never show the final answer and the stop text); raise "
              << "--cutoff (the model's context is " << model.config().seq_len << " tokens)\n";
  if (I.train_ex.empty()) throw std::invalid_argument("no training example fits --cutoff " + std::to_string(cutoff));
  I.longest_response = longest_response(I.train_ex);
  I.val_ex = tokenize_examples(validation, I.tmpl, tok, cutoff, &dropped);
  if (dropped) std::cerr << "hyplora: " << dropped << " validation examples have no response within --cutoff " << cutoff << " tokens; dropped\n";
  if (!validation.empty() && I.val_ex.empty())
    throw std::invalid_argument("no validation example fits --cutoff " + std::to_string(cutoff) + " (all " +
                                std::to_string(validation.size()) + " dropped)");
  const long per_step = long(I.s.batch) * I.s.grad_accum;
  const double epoch_steps = std::ceil(I.s.epochs * double(I.train_ex.size()) / double(per_step));
  if (I.s.steps <= 0 && !(epoch_steps < 1e15))  // long(...) of a larger double overflowed (1e30 ran 1 step)
    throw std::invalid_argument("training setting --epochs " + std::to_string(I.s.epochs) + " gives " +
                                std::to_string(epoch_steps) + " steps over " + std::to_string(I.train_ex.size()) +
                                " examples: too many; give fewer --epochs or --steps N");
  I.total_steps = I.s.steps > 0 ? I.s.steps : std::max(1L, long(epoch_steps));
  I.sched.peak = I.s.lr;
  I.sched.warmup_steps = I.s.warmup;
  I.sched.total_steps = I.total_steps;
  I.sched.decay = parse_decay(I.s.decay);
  I.sched.min_ratio = I.s.min_lr_ratio;
  I.sched.validate();
  adapters_ = std::make_unique<AdapterSet>(model.config(), adapter_spec_from(I.s));
}

int TrainingRun::longest_trained_response() const { return impl_->longest_response; }

TrainingRun::~TrainingRun() = default;

double TrainingRun::validation_loss(bool* interrupted) {
  auto& I = *impl_;
  if (interrupted) *interrupted = false;
  if (I.val_ex.empty()) return std::nan("");
  double weighted = 0;
  long tokens = 0;
  const std::size_t batch = std::size_t(I.s.batch);
  const long batches = long((I.val_ex.size() + batch - 1) / batch);
  util::Progress progress("validation", batches);
  struct EndLine {  // the status line ends however the loop is left
    util::Progress& p;
    ~EndLine() { p.finish(); }
  } end_line{progress};
  for (std::size_t start = 0; start < I.val_ex.size(); start += batch) {
    if (interrupted && stop_requested()) {
      *interrupted = true;
      return std::nan("");
    }
    if (!I.s.quiet && start > 0) progress.update(long(start / batch), "batches");
    std::vector<std::size_t> idx;
    for (std::size_t i = start; i < std::min(I.val_ex.size(), start + std::size_t(I.s.batch)); ++i) idx.push_back(i);
    Batch b = make_batch(I.val_ex, idx, false);
    if (b.target_tokens == 0) continue;
    const double loss = I.model.evaluate_loss(b.tokens.data(), b.targets.data(), b.mask.data(), b.B, b.T);
    weighted += loss * double(b.target_tokens);
    tokens += b.target_tokens;
  }
  return tokens ? weighted / double(tokens) : std::nan("");
}

namespace {

/// `longest_response`: the longest response of the training examples in tokens, as trained (after
/// --cutoff): `eval`'s "auto" new-token limit reads it (kLongestResponseKey).
std::map<std::string, std::string> adapter_metadata(const TrainSettings& s, long step, double val_loss,
                                                    int longest_response) {
  return {{"settings", nlohmann::json(s).dump()},
          {data::kPromptBoundaryKey, data::kPromptBoundary},
          {kLongestResponseKey, std::to_string(longest_response)},
          {"step", std::to_string(step)},
          {"val_loss", std::isfinite(val_loss) ? std::to_string(val_loss) : "null"}};
}

/// The files a run writes into its folder (removed before a run with overwrite).
const char* const kRunOutputs[] = {"settings.json",          "train_log.jsonl", "adapter.safetensors",
                                   "adapter_best.safetensors", "checkpoint.safetensors", "summary.json",
                                   "loss.png",               "loss.png.gp",     "loss.svg",
                                   "loss.svg.gp"};

/// The validation loss of the log's start line (step 0): what a checkpoint of an older build lacks.
double initial_val_from_log(const fs::path& log) {
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (j.value("event", "") == "start" && j.contains("val_loss") && j["val_loss"].is_number()) return j["val_loss"].get<double>();
    } catch (const std::exception&) {
    }
  }
  return std::nan("");
}

/// Clears the result's adapter paths whose files do not exist (no best adapter before the initial
/// validation has finished), so that neither summary.json nor the CLI names a missing file.
void forget_missing_adapters(TrainResult& r) {
  std::error_code ec;
  if (!r.adapter_last.empty() && !fs::exists(r.adapter_last, ec)) r.adapter_last.clear();
  if (!r.adapter_best.empty() && !fs::exists(r.adapter_best, ec)) r.adapter_best.clear();
}

/// A resumed run keeps adapter files it does not write again (all of a finished run's; the best
/// adapter of a run whose later validations do not improve on it): each must load for this model, or
/// the run would report (and summary.json name) a file that is truncated, zeroed or edited.
/// `what` says what the file is and what to do; the error names the file and the reader's problem.
void check_kept_adapter(const fs::path& path, const llm::ModelConfig& model, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  try {
    (void)load_adapter(path, model);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + " [" + what + "]");
  }
}

void write_summary(const fs::path& path, const TrainResult& r) {
  auto num_or_null = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json summary = {{"steps", r.steps},
                            {"total_steps", r.total_steps},
                            {"interrupted", r.interrupted},
                            {"stopped_bad", r.stopped_bad},
                            {"stop_reason", r.stop_reason},
                            // -1 (no validation finished yet: one interrupted at step 0) is null
                            {"best_step", r.best_step >= 0 ? nlohmann::json(r.best_step) : nlohmann::json(nullptr)},
                            {"skipped_steps", r.skipped_steps},
                            {"train_seconds", r.total_train_seconds},
                            {"train_seconds_this_process", r.train_seconds},
                            {"tokens_per_second", r.tokens_per_second},
                            // only files that exist (an empty path: none was saved)
                            {"adapter", r.adapter_last.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.adapter_last.string())},
                            {"adapter_best", r.adapter_best.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.adapter_best.string())},
                            {"best_by", r.validated ? "validation loss" : "last step (no validation set)"}};
  summary["initial_val_loss"] = num_or_null(r.initial_val_loss);
  summary["final_val_loss"] = num_or_null(r.final_val_loss);
  summary["best_val_loss"] = num_or_null(r.best_val_loss);
  formats::write_file_atomically(path, summary.dump(2) + "\n");
}

void write_loss_plot(const fs::path& log, const fs::path& image, const std::string& title) {
  util::PlotSeries train{"train loss", {}, {}, {}}, val{"validation loss", {}, {}, {}};
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (j.contains("loss") && j["loss"].is_number()) {
        train.x.push_back(j["step"].get<double>());
        train.y.push_back(j["loss"].get<double>());
      }
      if (j.contains("val_loss") && j["val_loss"].is_number()) {
        val.x.push_back(j["step"].get<double>());
        val.y.push_back(j["val_loss"].get<double>());
      }
    } catch (const std::exception&) {
    }
  }
  util::PlotPanel panel{title, "step", "loss (response tokens)", {train, val}};
  auto r = util::render_plot(image, {panel});
  if (!r.rendered) std::cerr << "hyplora: " << r.message << "\n";
}

}  // namespace

void check_out_folder(const fs::path& out, bool resume, bool overwrite) {
  if (resume && overwrite)
    throw std::invalid_argument("--resume and --overwrite exclude each other (--out " + out.string() + ")");
  if (resume || overwrite) return;
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return;
  std::string held;
  for (const char* name : {"checkpoint.safetensors", "summary.json"})
    if (held.empty() && fs::exists(out / name, ec)) held = name;
  // an adapter without checkpoint: a run killed between its first two saves leaves the untrained
  // (step 0) adapter, which nothing needs; anything else is a trained adapter
  for (const char* name : {"adapter.safetensors", "adapter_best.safetensors"}) {
    if (!held.empty() || !fs::exists(out / name, ec)) continue;
    try {
      const auto meta = formats::read_safetensors(out / name).metadata;
      const auto it = meta.find("step");
      if (it == meta.end() || it->second != "0") held = name;
    } catch (const std::exception&) {
      held = name;
    }
  }
  if (!held.empty())
    throw std::invalid_argument("--out " + out.string() + " already holds a training run (" + held +
                                "); continue it with --resume, train into another --out folder, or add --overwrite "
                                "to replace it");
}

TrainResult TrainingRun::run(bool resume) {
  auto& I = *impl_;
  auto& A = *adapters_;
  const auto& s = I.s;
  check_out_folder(I.out, resume, overwrite);
  const bool made_folder = !fs::exists(I.out);
  fs::create_directories(I.out);
  // A fresh run that fails before its first checkpoint removes what it wrote: no half-written folder.
  struct StartGuard {
    const fs::path& out;
    bool made_folder, armed;
    ~StartGuard() {
      if (!armed) return;
      std::error_code ec;
      for (const char* name : kRunOutputs) fs::remove(out / name, ec);
      if (made_folder) fs::remove(out, ec);  // only when empty
    }
  } start_guard{I.out, made_folder, !resume};
  if (!resume && overwrite) {  // nothing of the old run stays next to the new one (e.g. a loss.png beside a loss.svg)
    std::error_code ec;
    int removed = 0;
    for (const char* name : kRunOutputs) removed += fs::remove(I.out / name, ec) ? 1 : 0;
    if (removed && !s.quiet) std::cerr << "hyplora: replacing the run in " << I.out.string() << " (--overwrite)\n";
  }
  // a run killed while writing (SIGKILL, power cut) leaves its temporary file; its target is intact
  for (const auto& p : formats::remove_stale_temp_files(I.out))
    if (!s.quiet) std::cerr << "hyplora: removed " << p.string() << " (left by a killed writer)\n";
  TrainResult result;
  const bool has_val = !I.val_ex.empty();
  result.validated = has_val;
  result.out_dir = I.out;
  result.total_steps = I.total_steps;
  result.adapter_last = I.out / "adapter.safetensors";
  result.adapter_best = I.out / "adapter_best.safetensors";
  const fs::path ckpt_path = I.out / "checkpoint.safetensors";

  AdapterOptimizer opt(A, AdamWSettings{s.beta1, s.beta2, s.adam_eps, s.weight_decay});
  RunState st;
  if (resume) {
    Checkpoint c = load_checkpoint(ckpt_path);
    if (c.state.step > I.total_steps)
      throw std::invalid_argument(ckpt_path.string() + ": step " + std::to_string(c.state.step) +
                                  " is beyond the run's last step " + std::to_string(I.total_steps) +
                                  " (a corrupt or foreign checkpoint)");
    if (c.state.step == I.total_steps && !c.state.val_pending) {
      // a finished run: report it from the checkpoint and leave every file as it is; its adapters
      // must load (a truncated or zeroed adapter was reported as "a complete run", exit 0)
      for (const auto& p : {result.adapter_last, result.adapter_best})
        check_kept_adapter(p, I.model.config(),
                           "the run in " + I.out.string() + " is complete (step " + std::to_string(c.state.step) +
                               "/" + std::to_string(I.total_steps) + ") but this saved adapter does not load; "
                               "--resume changed no file: restore the file, or train the run again with --overwrite");
      result.already_complete = true;
      result.steps = c.state.step;
      result.best_val_loss = c.state.best_val_loss;
      result.best_step = c.state.best_step;
      result.initial_val_loss =
          std::isfinite(c.state.initial_val_loss) ? c.state.initial_val_loss : initial_val_from_log(I.log_path());
      result.final_val_loss = c.state.last_val_loss;
      result.skipped_steps = c.state.skipped_steps;
      result.total_train_seconds = c.state.elapsed_s;
      result.stop_reason = "already complete";
      result.validated = !I.val_ex.empty();
      forget_missing_adapters(result);
      // a run killed between its last checkpoint and its summary: write the missing summary
      if (!fs::exists(I.out / "summary.json")) write_summary(I.out / "summary.json", result);
      return result;
    }
    if (long(c.params.size()) != A.num_params())
      throw std::invalid_argument(ckpt_path.string() + ": holds " + std::to_string(c.params.size()) +
                                  " adapter parameters, these settings make " + std::to_string(A.num_params()));
    A.scatter_params(c.params);
    opt.restore(std::move(c.adam_m), std::move(c.adam_v), c.state.adam_t);
    A.advance_training_forwards(c.state.training_forwards);
    st = c.state;
    if (!std::isfinite(st.initial_val_loss)) st.initial_val_loss = initial_val_from_log(I.log_path());  // older checkpoint
    if (c.prompt_boundary.empty() && I.tmpl.prompt_ends_in_space())
      std::cerr << "hyplora: warning: " << ckpt_path.string()
                << " was written by a build whose training context ended with the prompt's trailing space; the resumed"
                   " steps end it before the space (data::PromptTemplate::model_prompt), so the run mixes the two\n";
    // the best adapter stays as it is unless a later validation improves on it (without validation
    // it is rewritten with the last one at every save)
    if (has_val)
      check_kept_adapter(result.adapter_best, I.model.config(),
                         "the best adapter of the run in " + I.out.string() + " does not load, and --resume would "
                         "keep it as the run's best; no file was changed: restore it, delete it (the run then has no "
                         "best adapter until a validation improves on the checkpoint's best loss), or train the run "
                         "again with --overwrite");
    I.cut_log(st.step);
    if (!s.quiet) std::cerr << "hyplora: resuming " << I.out << " at step " << st.step << "/" << I.total_steps << "\n";
  } else {
    formats::write_file_atomically(I.out / "settings.json", nlohmann::json(s).dump(2) + "\n");
    formats::write_file_atomically(I.log_path(), "");
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  // Without a validation set the best adapter is the last one (no loss to choose by).
  auto save_state = [&](bool with_last_adapter, double val_loss) {
    if (with_last_adapter && !has_val) st.best_step = st.step;
    Checkpoint c;
    c.state = st;
    c.state.elapsed_s = st.elapsed_s + seconds();
    c.state.training_forwards = A.training_forwards();
    c.state.adam_t = opt.updates();
    c.state.last_val_loss = val_loss;
    c.settings = s;
    c.params = A.gather_params();
    c.adam_m = opt.m();
    c.adam_v = opt.v();
    if (with_last_adapter) save_adapter(result.adapter_last, A, adapter_metadata(s, st.step, val_loss, I.longest_response));
    if (with_last_adapter && !has_val) save_adapter(result.adapter_best, A, adapter_metadata(s, st.step, val_loss, I.longest_response));
    save_checkpoint(ckpt_path, c);
  };
  double last_val = resume ? st.last_val_loss : std::nan("");
  // One validation point: the initial one (step 0) or one after a step. Returns false when a signal
  // stopped it; the caller then saves the state with the validation pending, and a resume runs it.
  auto validate = [&](bool initial) -> bool {
    bool cut = false;
    const double v = validation_loss(&cut);
    if (cut) return false;
    last_val = v;
    if (initial) {
      st.initial_val_loss = v;
      st.best_val_loss = std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
      st.best_step = 0;
      I.append_log({{"step", 0}, {"val_loss", std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr)},
                    {"event", "start"}, {"params", A.num_params()}, {"total_steps", I.total_steps},
                    {"train_examples", I.train_ex.size()}, {"val_examples", I.val_ex.size()}});
      if (has_val) save_adapter(result.adapter_best, A, adapter_metadata(s, 0, v, I.longest_response));
    } else if (has_val) {
      if (std::isfinite(v) && v < st.best_val_loss) {
        st.best_val_loss = v;
        st.best_step = st.step;
        save_adapter(result.adapter_best, A, adapter_metadata(s, st.step, v, I.longest_response));
      }
      I.append_log({{"step", st.step}, {"val_loss", std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr)},
                    {"best_val_loss", std::isfinite(st.best_val_loss) ? nlohmann::json(st.best_val_loss) : nlohmann::json(nullptr)},
                    {"best_step", st.best_step}});
    }
    st.val_pending = false;
    save_state(true, v);
    return true;
  };
  auto stop_in_validation = [&] {
    st.val_pending = true;
    result.interrupted = true;
    result.stop_reason = "interrupted by signal during the validation at step " + std::to_string(st.step) +
                         " (it runs first on --resume)";
    save_state(true, last_val);
  };

  A.attach(I.model);
  struct Detach {
    llm::LlamaModel& m;
    ~Detach() { m.detach_all(); }
  } detach_guard{I.model};
  StopSignalScope signal_scope;

  bool stopped_in_validation = false;
  if (!resume || st.val_pending) {
    if (!validate(st.step == 0)) {
      stop_in_validation();
      stopped_in_validation = true;
    }
  }
  start_guard.armed = false;  // the folder holds a resumable run from here on
  result.initial_val_loss = st.initial_val_loss;

  ExampleOrder order(I.train_ex.size(), s.seed);
  util::Progress progress("train", I.total_steps, st.step);
  long steps_here = 0;
  long model_tokens_here = 0;
  std::vector<std::size_t> idx;
  std::vector<Batch> micro_batches;
  // The log line of the steps since the last one (mean training loss), at every --log-every step and
  // the last; a window of only skipped steps has no line.
  const auto log_window = [&](double lr) {
    if (st.loss_window_steps == 0 || (st.step % s.log_every != 0 && st.step != I.total_steps)) return;
    const double el = seconds();
    const double tps = el > 0 ? double(model_tokens_here) / el : 0;
    const double window_loss = st.loss_window_sum / double(st.loss_window_steps);
    I.append_log({{"step", st.step}, {"loss", window_loss}, {"lr", lr}, {"grad_norm", st.last_grad_norm},
                  {"tokens_per_s", tps}, {"elapsed_s", st.elapsed_s + el}, {"K", A.mean_K()}});
    if (!s.quiet) {
      char val[40] = "";  // rounded as the summary's figures (it was cut: 0.158453 showed as 0.1584)
      if (std::isfinite(last_val)) std::snprintf(val, sizeof val, " val %.4f", last_val);
      char buf[200];
      std::snprintf(buf, sizeof buf, "loss %.4f lr %.2e gnorm %.3f %.0f tok/s%s", window_loss, lr, st.last_grad_norm,
                    tps, val);
      progress.update(st.step, buf, true);
    }
    st.loss_window_sum = 0;
    st.loss_window_steps = 0;
  };
  const auto step_validates = [&](long step) {
    return (s.eval_every > 0 && step % s.eval_every == 0) || step == I.total_steps;
  };

  while (!stopped_in_validation && st.step < I.total_steps) {
    if (stop_requested() || (stop_after_steps >= 0 && steps_here >= stop_after_steps)) {
      result.interrupted = true;
      result.stop_reason = stop_requested() ? "interrupted by signal" : "stopped by request";
      save_state(true, last_val);
      break;
    }
    A.zero_grad();
    // The step's loss is the masked mean over the target tokens of all its micro-batches, as one batch
    // of batch * grad_accum examples would give: each micro-batch's sum is divided by the step's
    // token count, not by its own (the mean of per-micro-batch means weighs short answers more).
    micro_batches.clear();
    long step_targets = 0;
    for (int micro = 0; micro < s.grad_accum; ++micro) {
      idx.clear();
      const std::uint64_t first = (std::uint64_t(st.step) * std::uint64_t(s.grad_accum) + std::uint64_t(micro)) *
                                  std::uint64_t(s.batch);
      for (int b = 0; b < s.batch; ++b) idx.push_back(order.at(first + std::uint64_t(b)));
      micro_batches.push_back(make_batch(I.train_ex, idx, s.train_on_inputs));
      step_targets += micro_batches.back().target_tokens;
    }
    double loss = 0;
    for (const Batch& b : micro_batches) {
      loss += double(I.model.forward_backward(b.tokens.data(), b.targets.data(), b.mask.data(), b.B, b.T, nullptr,
                                              double(step_targets)));
      model_tokens_here += long(b.B) * b.T;
    }
    if (after_backward) after_backward(st.step, A);

    if (!std::isfinite(loss) || !A.grads_finite()) {
      ++st.skipped_steps;
      ++st.consecutive_bad;
      A.zero_grad();
      I.append_log({{"step", st.step + 1}, {"event", "nonfinite"},
                    {"loss", std::isfinite(loss) ? nlohmann::json(loss) : nlohmann::json(nullptr)},
                    {"policy", s.nan_policy}});
      std::cerr << "\nhyplora: step " << st.step + 1 << ": " << (std::isfinite(loss) ? "gradient" : "loss")
                << " is NaN or infinite; policy " << s.nan_policy << "\n";
      if (s.nan_policy == "stop" || st.consecutive_bad >= s.max_bad_steps) {
        result.stopped_bad = true;
        result.stop_reason = s.nan_policy == "stop"
                                 ? "non-finite loss or gradient at step " + std::to_string(st.step + 1) +
                                       " (--nan-policy stop); the last good adapter and checkpoint are kept"
                                 : std::to_string(st.consecutive_bad) +
                                       " consecutive non-finite steps (--max-bad-steps); the last good adapter is kept";
        break;
      }
      ++st.step;  // the data of a skipped step is consumed: the run stays a function of the step
      log_window(I.sched.at(st.step - 1));
      // a skipped step is a step: its validation and, at the last step, the final save still run
      if (step_validates(st.step) && !validate(false)) {
        stop_in_validation();
        break;
      }
      continue;
    }
    st.consecutive_bad = 0;
    st.last_grad_norm = A.grad_norm();
    if (s.clip > 0 && st.last_grad_norm > s.clip) A.scale_grads(float(s.clip / st.last_grad_norm));
    const double lr = I.sched.at(st.step);
    opt.step(A, lr);
    if (double largest = 0; !A.params_plausible(&largest)) {
      result.stopped_bad = true;
      result.stop_reason = std::string("parameters diverged after step ") + std::to_string(st.step + 1) + " (" +
                           (std::isfinite(largest) ? "largest |p| " + formats::weight_value_problem(float(largest))
                                                   : std::string("NaN or infinite")) +
                           "); the last good adapter and checkpoint are kept";
      break;
    }
    ++st.step;
    ++steps_here;
    st.tokens_seen += step_targets;
    st.loss_window_sum += loss;
    ++st.loss_window_steps;

    log_window(lr);
    if (step_validates(st.step) && !validate(false)) {
      stop_in_validation();
      break;
    }
  }
  if (!s.quiet) progress.finish();

  result.steps = st.step;
  result.best_val_loss = st.best_val_loss;
  result.best_step = st.best_step;
  result.final_val_loss = last_val;
  result.skipped_steps = st.skipped_steps;
  result.train_seconds = seconds();
  result.total_train_seconds = st.elapsed_s + result.train_seconds;
  result.tokens_per_second = result.train_seconds > 0 ? double(model_tokens_here) / result.train_seconds : 0;
  // a stop during the initial validation saves no best adapter: name only the files that exist (the
  // summary and the printed lines named adapter_best.safetensors, which was not there)
  forget_missing_adapters(result);
  write_summary(I.out / "summary.json", result);
  if (s.plot != "none") write_loss_plot(I.log_path(), I.out / ("loss." + s.plot), std::string(kind_name(A.spec().kind)) + " loss");
  return result;
}

TrainResult run_training(const TrainSettings& given, const RunRequest& request) {
  const bool resume = request.resume;
  check_out_folder(given.out, resume, request.overwrite);
  TrainSettings s = given;
  if (!resume) {
    s.validate();  // before the model and the data are read
    set_thread_count(s.threads);
    auto in = prepare_inputs(s);
    TrainingRun run(s, *in.model, in.tokenizer, std::move(in.train), std::move(in.validation));
    run.overwrite = request.overwrite;
    return run.run(false);
  }
  const fs::path ckpt = fs::path(given.out) / "checkpoint.safetensors";
  s = load_checkpoint(ckpt).settings;  // the run continues with the settings it started with
  {
    nlohmann::json stored = s;
    const nlohmann::json asked = given;
    if (!stored.contains("data-seed")) stored["data-seed"] = s.seed;  // unset: the run's data followed --seed
    std::string differ;
    for (const auto& key : request.given_settings) {
      if (key == "out" || key == "quiet" || key == "threads" || !stored.contains(key)) continue;
      if (stored.at(key) == asked.at(key)) continue;
      differ += (differ.empty() ? "--" : "; --") + key + " " + asked.at(key).dump() + " (the run has " +
                stored.at(key).dump() + ")";
    }
    if (!differ.empty())
      throw std::invalid_argument("--resume continues with the settings stored in " + ckpt.string() +
                                  ", which these flags contradict: " + differ +
                                  ". Drop them (only --out, --threads and --quiet may change), or start a new run "
                                  "in another --out folder");
  }
  s.out = given.out;
  s.quiet = given.quiet;
  if (request.threads_given) s.threads = given.threads;  // else the checkpoint's (bit-exact resume)
  // a run of an older build that trained on a test set: its stored settings lack the override, which
  // may be given with --resume (it changes no computation)
  s.allow_test_data = s.allow_test_data || given.allow_test_data;
  // errors from here on come from the stored settings: name the checkpoint they were read from
  TrainingInputs in;
  std::unique_ptr<TrainingRun> run;
  try {
    s.validate();
    set_thread_count(s.threads);
    in = prepare_inputs(s);
    run = std::make_unique<TrainingRun>(s, *in.model, in.tokenizer, std::move(in.train), std::move(in.validation));
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + " [settings read from " + ckpt.string() + "]");
  }
  return run->run(true);
}

}  // namespace hyplora::train
