// `hyplora train`: fine-tune a model with a LoRA-family adapter (see trainer/train/trainer.hpp).
#include <iostream>
#include <stdexcept>

#include "commands/registry.hpp"
#include "hyplora/core/format.hpp"
#include "train/trainer.hpp"
#include "util/json_config.hpp"

namespace {

hyplora::train::TrainSettings g_settings;
bool g_resume = false;
bool g_overwrite = false;
CLI::App* g_command = nullptr;

/// Binds every TrainSettings field to its flag (the same names are the config file's keys).
void add_train_options(CLI::App* c, hyplora::train::TrainSettings& s) {
  c->add_option("--model", s.model, "llama2.c checkpoint or GGUF (default: stories260K, see docs/trainer.md)");
  c->add_option("--tokenizer", s.tokenizer, "tokenizer.bin (default: next to the model)");
  c->add_option("--adapter", s.adapter, "lora | hyplora")->capture_default_str();
  c->add_option("--manifold", s.manifold, "euclidean | lorentz | poincare (hyplora)")->capture_default_str();
  c->add_option("--variant", s.variant, "consistent | paper | naive | scaled (LoRA on x/s, the control)")->capture_default_str();
  c->add_option("--rank", s.rank, "adapter rank r")->capture_default_str();
  c->add_option("--alpha", s.alpha, "branch scale alpha (the branch is multiplied by alpha/r)")->capture_default_str();
  c->add_option("--dropout", s.dropout, "dropout on the branch input")->capture_default_str();
  c->add_option("--targets", s.targets, "modules: q,k,v,o,gate,up,down")->delimiter(',')->capture_default_str();
  c->add_option("--curvature", s.curvature, "K (curvature -1/K; Poincare c = 1/K)")->capture_default_str();
  c->add_flag("--learn-curvature", s.learn_curvature, "train K (K = softplus(k) + K_min per module)");
  c->add_option("--norm-scale", s.norm_scale, "input scale s of lift(x/s): auto | none | fixed | learnable")->capture_default_str();
  c->add_option("--norm-scale-init", s.norm_scale_init, "initial s (0 = sqrt(d_in))")->capture_default_str();
  c->add_option("--lr", s.lr, "AdamW peak learning rate")->capture_default_str();
  c->add_option("--weight-decay", s.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  c->add_option("--beta1", s.beta1, "AdamW beta1")->capture_default_str();
  c->add_option("--beta2", s.beta2, "AdamW beta2")->capture_default_str();
  c->add_option("--adam-eps", s.adam_eps, "AdamW epsilon")->capture_default_str();
  c->add_option("--warmup", s.warmup, "linear warm-up steps")->capture_default_str();
  c->add_option("--decay", s.decay, "cosine | linear | constant")->capture_default_str();
  c->add_option("--min-lr-ratio", s.min_lr_ratio, "final lr / peak lr")->capture_default_str();
  c->add_option("--clip", s.clip, "gradient-norm clip (0 = off)")->capture_default_str();
  c->add_option("--batch", s.batch, "examples per micro-batch")->capture_default_str();
  c->add_option("--grad-accum", s.grad_accum, "micro-batches per optimiser step")->capture_default_str();
  c->add_option("--cutoff", s.cutoff, "maximum tokens per example")->capture_default_str();
  c->add_option("--steps", s.steps, "optimiser steps (0: from --epochs)")->capture_default_str();
  c->add_option("--epochs", s.epochs, "epochs over the training data (when --steps is 0)")->capture_default_str();
  c->add_option("--seed", s.seed, "seed of initialisation, data order, dropout (and of the data, unless --data-seed)")
      ->check(hyplora::cli::non_negative_integer())
      ->capture_default_str();
  c->add_option("--data-seed", s.data_seed,
                "seed of the data: built-in problems and the held-out slice of --data (default: --seed); fix it to "
                "compare seeds on the same training and validation records")
      ->check(hyplora::cli::non_negative_integer());
  c->add_flag("--train-on-inputs", s.train_on_inputs, "loss on prompt tokens too");
  c->add_option("--data", s.data, "training data: registered name (gsm8k-train, mawps-train, ...) or [FORMAT:]PATH");
  c->add_option("--val-data", s.val_data, "validation data (default: built-in validation split or a held-out slice)");
  c->add_flag("--allow-test-data", s.allow_test_data,
              "let --data / --val-data name a registered test set (gsm8k-test, mawps-test, svamp, ...): breaks the "
              "evaluation protocol, the set's test scores are no longer held out");
  c->add_flag("--builtin", s.builtin, "train on the built-in story arithmetic task");
  c->add_option("--depth-min", s.depth_min, "built-in task: fewest operations")->capture_default_str();
  c->add_option("--depth-max", s.depth_max, "built-in task: most operations")->capture_default_str();
  c->add_option("--builtin-train", s.builtin_train, "built-in task: training problems")->capture_default_str();
  c->add_option("--val-examples", s.val_examples,
                 "validation problems (0 = no validation set; with --val-data its first N records)")
      ->capture_default_str();
  c->add_option("--prompt-template", s.prompt_template, "compact | alpaca")->capture_default_str();
  c->add_option("--bad-records", s.bad_records, "reject | skip (bad records are reported with file:line)")->capture_default_str();
  c->add_option("--eval-every", s.eval_every, "validation (and checkpoint) every N steps")->capture_default_str();
  c->add_option("--log-every", s.log_every, "log line every N steps")->capture_default_str();
  c->add_option("--nan-policy", s.nan_policy, "skip | stop: what a NaN/Inf loss or gradient does")->capture_default_str();
  c->add_option("--max-bad-steps", s.max_bad_steps, "consecutive skipped steps before stopping")->capture_default_str();
  c->add_option("--out", s.out, "output folder")->capture_default_str();
  c->add_option("--plot", s.plot, "png | svg | none")->capture_default_str();
  c->add_option("--threads", s.threads, "OpenMP / BLAS threads (0 = default)")->capture_default_str();
  c->add_flag("--quiet", s.quiet, "no progress line");
}

CLI::App* setup(CLI::App& app) {
  auto* c = app.add_subcommand("train", "Fine-tune a model with LoRA / HypLoRA (flags override --config)");
  add_train_options(c, g_settings);
  c->add_flag("--resume", g_resume,
              "continue the run in --out from its checkpoint (settings come from the checkpoint: other flags "
              "must equal them, except --out, --threads and --quiet)");
  c->add_flag("--overwrite", g_overwrite, "replace a run already in --out (its files are removed first)");
  hyplora::util::add_json_config(c);
  g_command = c;
  return c;
}

int run() {
  hyplora::train::RunRequest request;
  request.resume = g_resume;
  request.overwrite = g_overwrite;
  request.threads_given = g_command->count("--threads") > 0;
  // what was given on the command line or through --config: with --resume each must equal the
  // checkpoint's setting (run_training names the ones that differ)
  for (const CLI::Option* opt : g_command->get_options())
    if (opt->count() > 0 && !opt->get_lnames().empty()) request.given_settings.push_back(opt->get_lnames()[0]);
  // curvature / manifold settings of an adapter without them (LoRA recorded K:5, learn_K:true):
  // refused before --out is touched (with --resume the checkpoint's settings apply)
  if (!g_resume) hyplora::train::check_adapter_settings_apply(g_settings);
  const auto r = hyplora::train::run_training(g_settings, request);
  // best_step -1: the initial validation was interrupted, no validation loss exists yet (it printed
  // "best validation loss inf at step -1")
  const std::string best = r.validated && r.best_step < 0 ? "no validation finished yet"
                           : r.validated ? "best validation loss " + hyplora::format_number(r.best_val_loss) + " at step " +
                                             std::to_string(r.best_step)
                                       : "no validation set (best adapter = the last one)";
  if (r.already_complete) {
    std::cout << "hyplora: " << r.out_dir.string() << " already holds a complete run (step " << r.steps << "/"
              << r.total_steps << ", " << best << "); nothing to resume, no file changed\n";
    return 0;
  }
  std::cout << "steps " << r.steps << "/" << r.total_steps << ", " << best << ", " << r.train_seconds << " s, "
            << r.tokens_per_second << " tokens/s\n";
  // only files that exist (the run names none it did not save: adapter_best before the first validation)
  if (!r.adapter_last.empty()) std::cout << "adapter: " << r.adapter_last.string() << "\n";
  std::cout << "best adapter: "
            << (r.adapter_best.empty() ? std::string("none saved yet (the initial validation did not finish; --resume runs it)")
                                       : r.adapter_best.string())
            << "\n";
  if (r.interrupted) {
    std::cerr << "hyplora: " << r.stop_reason << "; state saved. Continue with: hyplora train --resume --out "
              << r.out_dir.string() << "\n";
    return 130;
  }
  if (r.stopped_bad) {
    std::cerr << "hyplora: stopped: " << r.stop_reason << "\n";
    return 3;
  }
  return 0;
}

const hyplora::cli::CommandRegistration registration{
    "train", setup, run,
    "Training memory grows with --batch x --cutoff (examples per micro-batch x tokens per example: every layer's "
    "activations are kept for the backward pass) and with the model size: lower --batch (raise --grad-accum to keep "
    "the effective batch) or --cutoff, or train a smaller --model."};

}  // namespace
