#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "data/prompt_template.hpp"
#include "data/story_task.hpp"
#include "formats/atomic_file.hpp"
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
  if (n <= 0) return;
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
  auto weights = llm::load_model_weights(files.model);
  const int vocab = weights.config.vocab_size;
  in.tokenizer = llm::load_tokenizer(files.tokenizer, files.model, vocab);
  in.model = std::make_unique<llm::LlamaModel>(std::move(weights));

  const auto policy = s.bad_records == "skip" ? data::BadRecordPolicy::skip : data::BadRecordPolicy::reject;
  if (s.builtin)
    in.train = builtin_records(s.seed, s.depth_min, s.depth_max, "train", std::size_t(s.builtin_train));
  for (const auto& spec : s.data) {
    auto loaded = load_data_source(spec, policy);
    in.train.insert(in.train.end(), loaded.records.begin(), loaded.records.end());
  }
  if (!s.val_data.empty()) {
    in.validation = load_data_source(s.val_data, policy).records;
    if (s.val_examples > 0 && long(in.validation.size()) > s.val_examples) in.validation.resize(std::size_t(s.val_examples));
  } else if (s.builtin && s.val_examples > 0) {
    in.validation = builtin_records(s.seed, s.depth_min, s.depth_max, "validation", std::size_t(s.val_examples));
  } else if (s.val_examples > 0) {
    // hold out a seeded slice of the training files
    std::vector<std::size_t> order(in.train.size());
    ExampleOrder perm(in.train.size(), s.seed ^ 0x5EEDULL);
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = perm.at(i);
    const std::size_t n_val = std::min<std::size_t>(std::size_t(s.val_examples), in.train.size() / 5);
    std::vector<data::Record> train, val;
    for (std::size_t i = 0; i < order.size(); ++i) (i < n_val ? val : train).push_back(in.train[order[i]]);
    in.train = std::move(train);
    in.validation = std::move(val);
  }
  if (in.train.empty()) throw std::invalid_argument("no training records");
  return in;
}

// ---------------------------------------------------------------------------------------------

struct TrainingRun::Impl {
  TrainSettings s;
  llm::LlamaModel& model;
  const llm::Tokenizer& tok;
  const data::PromptTemplate& tmpl;
  std::vector<TokenizedExample> train_ex, val_ex;
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
  void cut_log(long step) {
    std::ifstream in(log_path());
    if (!in) return;
    std::string line, kept;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      try {
        auto j = nlohmann::json::parse(line);
        if (j.value("step", 0L) > step) continue;
      } catch (const std::exception&) {
        continue;  // a torn last line of a killed run
      }
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
  std::size_t dropped = 0;
  I.train_ex = tokenize_examples(train, I.tmpl, tok, cutoff, &dropped);
  if (dropped) std::cerr << "hyplora: " << dropped << " training examples have no response within --cutoff " << cutoff << " tokens; dropped\n";
  if (I.train_ex.empty()) throw std::invalid_argument("no training example fits --cutoff " + std::to_string(cutoff));
  I.val_ex = tokenize_examples(validation, I.tmpl, tok, cutoff, &dropped);
  const long per_step = long(I.s.batch) * I.s.grad_accum;
  I.total_steps = I.s.steps > 0 ? I.s.steps
                                : std::max(1L, long(std::ceil(I.s.epochs * double(I.train_ex.size()) / double(per_step))));
  I.sched.peak = I.s.lr;
  I.sched.warmup_steps = I.s.warmup;
  I.sched.total_steps = I.total_steps;
  I.sched.decay = parse_decay(I.s.decay);
  I.sched.min_ratio = I.s.min_lr_ratio;
  I.sched.validate();
  adapters_ = std::make_unique<AdapterSet>(model.config(), adapter_spec_from(I.s));
}

TrainingRun::~TrainingRun() = default;

double TrainingRun::validation_loss() {
  auto& I = *impl_;
  if (I.val_ex.empty()) return std::nan("");
  double weighted = 0;
  long tokens = 0;
  for (std::size_t start = 0; start < I.val_ex.size(); start += std::size_t(I.s.batch)) {
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

std::map<std::string, std::string> adapter_metadata(const TrainSettings& s, long step, double val_loss) {
  return {{"settings", nlohmann::json(s).dump()},
          {"step", std::to_string(step)},
          {"val_loss", std::isfinite(val_loss) ? std::to_string(val_loss) : "null"}};
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

TrainResult TrainingRun::run(bool resume) {
  auto& I = *impl_;
  auto& A = *adapters_;
  const auto& s = I.s;
  fs::create_directories(I.out);
  // a run killed while writing (SIGKILL, power cut) leaves its temporary file; its target is intact
  for (const auto& p : formats::remove_stale_temp_files(I.out))
    if (!s.quiet) std::cerr << "hyplora: removed " << p.string() << " (left by a killed writer)\n";
  TrainResult result;
  result.out_dir = I.out;
  result.total_steps = I.total_steps;
  result.adapter_last = I.out / "adapter.safetensors";
  result.adapter_best = I.out / "adapter_best.safetensors";
  const fs::path ckpt_path = I.out / "checkpoint.safetensors";

  AdapterOptimizer opt(A, AdamWSettings{s.beta1, s.beta2, s.adam_eps, s.weight_decay});
  RunState st;
  if (resume) {
    Checkpoint c = load_checkpoint(ckpt_path);
    if (long(c.params.size()) != A.num_params())
      throw std::invalid_argument(ckpt_path.string() + ": holds " + std::to_string(c.params.size()) +
                                  " adapter parameters, these settings make " + std::to_string(A.num_params()));
    A.scatter_params(c.params);
    opt.restore(std::move(c.adam_m), std::move(c.adam_v), c.state.adam_t);
    A.advance_training_forwards(c.state.training_forwards);
    st = c.state;
    I.cut_log(st.step);
    if (!s.quiet) std::cerr << "hyplora: resuming " << I.out << " at step " << st.step << "/" << I.total_steps << "\n";
  } else {
    formats::write_file_atomically(I.out / "settings.json", nlohmann::json(s).dump(2) + "\n");
    formats::write_file_atomically(I.log_path(), "");
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  auto save_state = [&](bool with_last_adapter, double val_loss) {
    Checkpoint c;
    c.state = st;
    c.state.elapsed_s = st.elapsed_s + seconds();
    c.state.training_forwards = A.training_forwards();
    c.state.adam_t = opt.updates();
    c.settings = s;
    c.params = A.gather_params();
    c.adam_m = opt.m();
    c.adam_v = opt.v();
    if (with_last_adapter) save_adapter(result.adapter_last, A, adapter_metadata(s, st.step, val_loss));
    save_checkpoint(ckpt_path, c);
  };

  A.attach(I.model);
  struct Detach {
    llm::LlamaModel& m;
    ~Detach() { m.detach_all(); }
  } detach_guard{I.model};
  StopSignalScope signal_scope;

  if (!resume) {
    const double v0 = validation_loss();
    result.initial_val_loss = v0;
    st.best_val_loss = std::isfinite(v0) ? v0 : std::numeric_limits<double>::infinity();
    st.best_step = 0;
    I.append_log({{"step", 0}, {"val_loss", std::isfinite(v0) ? nlohmann::json(v0) : nlohmann::json(nullptr)},
                  {"event", "start"}, {"params", A.num_params()}, {"total_steps", I.total_steps},
                  {"train_examples", I.train_ex.size()}, {"val_examples", I.val_ex.size()}});
    save_adapter(result.adapter_best, A, adapter_metadata(s, 0, v0));
    save_state(true, v0);
  } else {
    result.initial_val_loss = std::nan("");
  }

  ExampleOrder order(I.train_ex.size(), s.seed);
  util::Progress progress("train", I.total_steps, st.step);
  long steps_here = 0;
  long model_tokens_here = 0;
  double loss_window = 0;
  long loss_window_n = 0;
  double last_val = std::nan("");
  double last_grad_norm = 0;
  std::vector<std::size_t> idx;

  while (st.step < I.total_steps) {
    if (stop_requested() || (stop_after_steps >= 0 && steps_here >= stop_after_steps)) {
      result.interrupted = true;
      result.stop_reason = stop_requested() ? "interrupted by signal" : "stopped by request";
      save_state(true, last_val);
      break;
    }
    A.zero_grad();
    double loss_sum = 0;
    long step_targets = 0;
    for (int micro = 0; micro < s.grad_accum; ++micro) {
      idx.clear();
      const std::uint64_t first = (std::uint64_t(st.step) * std::uint64_t(s.grad_accum) + std::uint64_t(micro)) *
                                  std::uint64_t(s.batch);
      for (int b = 0; b < s.batch; ++b) idx.push_back(order.at(first + std::uint64_t(b)));
      Batch b = make_batch(I.train_ex, idx, s.train_on_inputs);
      loss_sum += double(I.model.forward_backward(b.tokens.data(), b.targets.data(), b.mask.data(), b.B, b.T));
      step_targets += b.target_tokens;
      model_tokens_here += long(b.B) * b.T;
    }
    const double loss = loss_sum / s.grad_accum;
    if (s.grad_accum > 1) A.scale_grads(float(1.0 / s.grad_accum));
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
      continue;
    }
    st.consecutive_bad = 0;
    last_grad_norm = A.grad_norm();
    if (s.clip > 0 && last_grad_norm > s.clip) A.scale_grads(float(s.clip / last_grad_norm));
    const double lr = I.sched.at(st.step);
    opt.step(A, lr);
    if (!A.params_finite()) {
      result.stopped_bad = true;
      result.stop_reason = "parameters became non-finite after step " + std::to_string(st.step + 1) +
                           "; the last good adapter and checkpoint are kept";
      break;
    }
    ++st.step;
    ++steps_here;
    st.tokens_seen += step_targets;
    loss_window += loss;
    ++loss_window_n;

    const double el = seconds();
    const double tps = el > 0 ? double(model_tokens_here) / el : 0;
    if (st.step % s.log_every == 0 || st.step == I.total_steps) {
      I.append_log({{"step", st.step}, {"loss", loss_window / double(loss_window_n)}, {"lr", lr},
                    {"grad_norm", last_grad_norm}, {"tokens_per_s", tps}, {"elapsed_s", st.elapsed_s + el},
                    {"K", A.mean_K()}});
      if (!s.quiet) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "loss %.4f lr %.2e gnorm %.3f %.0f tok/s%s", loss_window / double(loss_window_n),
                      lr, last_grad_norm, tps,
                      std::isfinite(last_val) ? (" val " + std::to_string(last_val).substr(0, 6)).c_str() : "");
        progress.update(st.step, buf, true);
      }
      loss_window = 0;
      loss_window_n = 0;
    }
    const bool eval_now = (s.eval_every > 0 && st.step % s.eval_every == 0) || st.step == I.total_steps;
    if (eval_now) {
      last_val = validation_loss();
      const bool better = std::isfinite(last_val) && last_val < st.best_val_loss;
      if (better) {
        st.best_val_loss = last_val;
        st.best_step = st.step;
        save_adapter(result.adapter_best, A, adapter_metadata(s, st.step, last_val));
      }
      I.append_log({{"step", st.step}, {"val_loss", std::isfinite(last_val) ? nlohmann::json(last_val) : nlohmann::json(nullptr)},
                    {"best_val_loss", std::isfinite(st.best_val_loss) ? nlohmann::json(st.best_val_loss) : nlohmann::json(nullptr)},
                    {"best_step", st.best_step}});
      save_state(true, last_val);
    }
  }
  if (!s.quiet) progress.finish();

  result.steps = st.step;
  result.best_val_loss = st.best_val_loss;
  result.best_step = st.best_step;
  result.final_val_loss = last_val;
  result.skipped_steps = st.skipped_steps;
  result.train_seconds = seconds();
  result.tokens_per_second = result.train_seconds > 0 ? double(model_tokens_here) / result.train_seconds : 0;

  nlohmann::json summary = {{"steps", result.steps},
                            {"total_steps", result.total_steps},
                            {"interrupted", result.interrupted},
                            {"stopped_bad", result.stopped_bad},
                            {"stop_reason", result.stop_reason},
                            {"best_step", result.best_step},
                            {"skipped_steps", result.skipped_steps},
                            {"train_seconds", result.train_seconds},
                            {"tokens_per_second", result.tokens_per_second},
                            {"adapter", result.adapter_last.string()},
                            {"adapter_best", result.adapter_best.string()}};
  auto num_or_null = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  summary["initial_val_loss"] = num_or_null(result.initial_val_loss);
  summary["final_val_loss"] = num_or_null(result.final_val_loss);
  summary["best_val_loss"] = num_or_null(result.best_val_loss);
  formats::write_file_atomically(I.out / "summary.json", summary.dump(2) + "\n");
  if (s.plot != "none") write_loss_plot(I.log_path(), I.out / ("loss." + s.plot), std::string(kind_name(A.spec().kind)) + " loss");
  return result;
}

TrainResult run_training(const TrainSettings& given, bool resume) {
  TrainSettings s = given;
  if (resume) {
    const fs::path ckpt = fs::path(given.out) / "checkpoint.safetensors";
    s = load_checkpoint(ckpt).settings;  // the run continues with the settings it started with
    s.out = given.out;
    s.quiet = given.quiet;
    s.threads = given.threads;
  }
  set_thread_count(s.threads);
  auto in = prepare_inputs(s);
  TrainingRun run(s, *in.model, in.tokenizer, std::move(in.train), std::move(in.validation));
  return run.run(resume);
}

}  // namespace hyplora::train
