// Reliability of real training runs of build/bin/hyplora (stories260K, built-in task, a save every
// step): SIGKILL at random moments leaves the adapters and the checkpoint loadable and the run
// resumable; SIGINT stops after saving, and the resumed run ends with the same adapter, bit for bit,
// as an uninterrupted one (one thread); a diverging run (lr 1e30) stops with a message,
// and the adapter on disk stays loadable and finite.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "formats/llama2c.hpp"
#include "formats/safetensors.hpp"
#include "model/generator.hpp"
#include "model/llama.hpp"
#include "model/sampler.hpp"
#include "tokenizer/tokenizer.hpp"
#include "support.hpp"
#include "train/adapter_file.hpp"
#include "train/checkpoint.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using hyplora::test::slurp;
using hyplora::test::TempDir;

namespace {

fs::path cli() {
#ifdef HYPLORA_CLI_PATH
  return HYPLORA_CLI_PATH;
#else
  return {};
#endif
}

/// `hyplora train` on stories260K with the built-in task: small, one thread, a save every step.
std::vector<std::string> train_args(const fs::path& model, const fs::path& out, long steps, bool resume) {
  std::vector<std::string> a{cli().string(), "train", "--model", model.string(), "--builtin", "--steps", std::to_string(steps),
                             "--eval-every", "1", "--log-every", "1", "--batch", "2", "--val-examples", "2",
                             "--builtin-train", "64", "--rank", "2", "--seed", "7", "--out", out.string(), "--plot", "none",
                             "--threads", "1", "--quiet"};
  if (resume) a.push_back("--resume");
  return a;
}

/// In a forked child: replaces it with argv (argv[0] a path); exit 127 where that fails.
[[noreturn]] void exec_child(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

/// Starts argv with stdout+stderr appended to `log`.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    exec_child(argv);
  }
  return pid;
}

/// Exit status (or 128 + signal).
int wait_for(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool exited(pid_t pid, int* code) {
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r != pid) return false;
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

/// How far the run's train_log.jsonl has got, as a count of its step lines: each step N writes a
/// training line (ordinal 2N-1), then after its validation a validation line (2N), then saves the
/// adapters and the checkpoint. Returns the largest ordinal among the complete (newline-ended) lines;
/// 0 when there is none.
long log_progress(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);  // none yet: 0
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  long best = 0;
  std::size_t begin = 0;
  for (std::size_t end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1) {
    const std::string_view line(text.data() + begin, end - begin);
    const auto at = line.find("\"step\":");
    if (at == std::string_view::npos) continue;
    const long step = std::strtol(std::string(line.substr(at + 7, 12)).c_str(), nullptr, 10);
    const bool training = line.find("\"loss\":") != std::string_view::npos;  // not "val_loss"
    const bool validation = line.find("\"val_loss\":") != std::string_view::npos;
    if (training) best = std::max(best, 2 * step - 1);
    else if (validation) best = std::max(best, 2 * step);
  }
  return best;
}

/// Polls (every 1 ms) until the run's log reaches `ordinal` (see log_progress). Returns "" then,
/// else why not: the process ended (reaped, its exit code in *code, which is left alone otherwise)
/// or 30 s passed (the process still runs).
std::string wait_for_log(pid_t pid, const fs::path& log, long ordinal, int* code) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (log_progress(log) < ordinal) {
    if (exited(pid, code))
      return "the run ended (exit " + std::to_string(*code) + ") before its log reached line " +
             std::to_string(ordinal);
    if (std::chrono::steady_clock::now() > deadline)
      return "the run's log did not reach line " + std::to_string(ordinal) + " in 30 s (it is at " +
             std::to_string(log_progress(log)) + ")";
    std::this_thread::sleep_for(1ms);
  }
  return "";
}

/// Every file the run keeps loads cleanly (the readers reject torn, truncated or non-finite files).
long check_run_folder(const fs::path& out, const hyplora::llm::ModelConfig& model) {
  for (const char* name : {"adapter.safetensors", "adapter_best.safetensors"}) {
    const fs::path p = out / name;
    if (!fs::exists(p)) continue;
    INFO(p);
    REQUIRE_NOTHROW(hyplora::train::load_adapter(p, model));
  }
  long step = -1;
  if (fs::exists(out / "checkpoint.safetensors")) {
    INFO(out / "checkpoint.safetensors");
    hyplora::train::Checkpoint c;
    REQUIRE_NOTHROW(c = hyplora::train::load_checkpoint(out / "checkpoint.safetensors"));
    CHECK(c.params.size() == c.adam_m.size());
    step = c.state.step;
  }
  return step;
}

bool same_tensors(const fs::path& a, const fs::path& b) {
  const auto x = hyplora::formats::read_safetensors(a), y = hyplora::formats::read_safetensors(b);
  if (x.tensors.size() != y.tensors.size()) return false;
  for (std::size_t i = 0; i < x.tensors.size(); ++i) {
    const auto &s = x.tensors[i], &t = y.tensors[i];
    if (s.name != t.name || s.shape != t.shape || s.data.size() != t.data.size()) return false;
    if (std::memcmp(s.data.data(), t.data.data(), 4 * s.data.size()) != 0) return false;  // bit for bit
  }
  return true;
}

/// Runs the CLI to the end; exit code and its stdout+stderr.
struct CliResult {
  int code;
  std::string text;
};
CliResult run_cli(std::vector<std::string> args, const fs::path& log) {
  args.insert(args.begin(), cli().string());
  fs::remove(log);
  const int code = wait_for(spawn(args, log));
  return {code, slurp(log)};
}

/// Runs the CLI to the end with stdout and stderr in separate files; exit code, stdout, stderr.
struct SplitResult {
  int code;
  std::string out, err;
};
SplitResult run_cli_split(std::vector<std::string> args, const fs::path& dir) {
  args.insert(args.begin(), cli().string());
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  fs::remove(out);
  fs::remove(err);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o >= 0) ::dup2(o, 1);
    if (e >= 0) ::dup2(e, 2);
    exec_child(args);
  }
  const int code = wait_for(pid);
  return {code, slurp(out), slurp(err)};
}

/// Runs the CLI and checks that it failed with an error, not a crash (several bad flags were
/// SIGSEGV), with every one of `parts` in its output, and wrote nothing to `out`.
CliResult expect_cli_error(const std::vector<std::string>& args, const std::vector<std::string>& parts,
                           const fs::path& log, const fs::path& out) {
  const auto r = run_cli(args, log);
  std::string line;
  for (const auto& a : args) line += a + " ";
  INFO(line << "-> exit " << r.code << "\n" << r.text);
  CHECK(r.code != 0);
  CHECK(r.code < 128);
  for (const auto& p : parts) CHECK(r.text.find(p) != std::string::npos);
  CHECK_FALSE(fs::exists(out));  // nothing written
  return r;
}

/// Every file of a folder (name -> bytes).
std::map<std::string, std::string> folder_bytes(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files[e.path().filename().string()] = slurp(e.path());
  return files;
}

fs::path require_cli() {
  if (cli().empty() || !fs::exists(cli())) {
    std::cout << "SKIPPED: the hyplora CLI was not built with this test" << std::endl;
    std::exit(77);
  }
  return cli();
}

}  // namespace

TEST_CASE("training run SIGKILLed at random moments: adapters and checkpoint stay loadable, resume goes on", "[reliability][runs]") {
  require_cli();
  const fs::path model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  const auto cfg = hyplora::llm::read_llama2c(model).config;
  TempDir tmp;
  const fs::path out = tmp.path / "run", log = tmp.path / "log.txt";
  // The kills follow the run's progress, not the clock: each round waits until the (re)started
  // process has written a random 1..10 new lines to train_log.jsonl (two a step: the training line,
  // then after the validation the validation line, after which the step saves), then a random
  // 0-3 ms more, so kills land at random points in the steps, the validations and the saves. A round
  // advances the run by at most 6 steps plus what the 3 ms hold (under one step here: a step takes
  // ~12 ms), so the planned kills all land long before the end (kRounds * 8 < kSteps).
  constexpr int kRounds = 6;
  constexpr long kSteps = 80;
  static_assert(kRounds * 8 < kSteps);
  std::mt19937 rng(2024);
  long last_step = -1;
  for (int round = 0; round < kRounds; ++round) {
    const bool resume = fs::exists(out / "checkpoint.safetensors");
    const pid_t pid = spawn(train_args(model, out, kSteps, resume), log);
    // Lines up to those of step checkpoint+1 may be left from the killed process (written before its
    // checkpoint was committed; the resume cuts them), so count only from the next one: the process
    // writes it after it committed a checkpoint of its own.
    const long from = 2 * (std::max(last_step, 0L) + 1);
    const long lines = std::uniform_int_distribution<long>(1, 10)(rng);
    int code = -1;
    const std::string why = wait_for_log(pid, out / "train_log.jsonl", from + lines, &code);
    const int hold_us = std::uniform_int_distribution<int>(0, 3'000)(rng);
    if (why.empty()) std::this_thread::sleep_for(std::chrono::microseconds(hold_us));
    if (code < 0) {  // still running (also when the wait timed out: never leave the process behind)
      ::kill(pid, SIGKILL);
      code = wait_for(pid);
    }
    INFO("round " << round << " exit " << code << "\n" << slurp(log));
    if (!why.empty()) FAIL(why);
    CHECK(code == 128 + SIGKILL);  // it was still running: the kill, not an error, ended it
    const long step = check_run_folder(out, cfg);
    CHECK(step > last_step);  // the process committed a checkpoint before the kill, and a kill never takes one back
    CHECK(step < kSteps);
    last_step = step;
  }
  // the run, resumed once more, completes
  const int code = wait_for(spawn(train_args(model, out, kSteps, true), log));
  INFO(slurp(log));
  REQUIRE(code == 0);
  CHECK(check_run_folder(out, cfg) == kSteps);
}

TEST_CASE("SIGINT stops a run after saving and the resumed run ends bit-identical to an uninterrupted one", "[reliability][runs]") {
  require_cli();
  const fs::path model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  const auto cfg = hyplora::llm::read_llama2c(model).config;
  TempDir tmp;
  constexpr long kSteps = 40;
  const fs::path whole = tmp.path / "whole", parts = tmp.path / "parts", log = tmp.path / "log.txt";
  REQUIRE(wait_for(spawn(train_args(model, whole, kSteps, false), log)) == 0);

  const pid_t pid = spawn(train_args(model, parts, kSteps, false), log);
  // interrupt once step 1 has been validated (its validation line is in the log, polled every 1 ms):
  // the run is then a step or so in, far from the end of its 40
  int code = -1;
  const std::string why = wait_for_log(pid, parts / "train_log.jsonl", 2, &code);
  if (!why.empty()) {
    if (code < 0) {  // timed out: never leave the process behind
      ::kill(pid, SIGKILL);
      wait_for(pid);
    }
    FAIL(why << "\n" << slurp(log));
  }
  ::kill(pid, SIGINT);
  code = wait_for(pid);
  const std::string text = slurp(log);
  INFO(text);
  CHECK(code == 130);  // interrupted, state saved
  CHECK(text.find("--resume") != std::string::npos);
  const long stopped_at = check_run_folder(parts, cfg);
  CHECK(stopped_at >= 1);
  CHECK(stopped_at < kSteps);
  // the printed command, without --threads: the checkpoint's one thread is restored (the default,
  // all cores, changed the last bits of the sums and broke the bit-exact resume)
  REQUIRE(wait_for(spawn({cli().string(), "train", "--resume", "--out", parts.string(), "--quiet"}, log)) == 0);
  CHECK(check_run_folder(parts, cfg) == kSteps);
  CHECK(same_tensors(whole / "adapter.safetensors", parts / "adapter.safetensors"));
  // summary.json of the resumed run: the whole run's initial validation loss and training time
  const auto summary_whole = nlohmann::json::parse(slurp(whole / "summary.json"));
  const auto summary_parts = nlohmann::json::parse(slurp(parts / "summary.json"));
  CHECK(summary_parts["initial_val_loss"] == summary_whole["initial_val_loss"]);
  CHECK(summary_parts["train_seconds"].get<double>() > summary_parts["train_seconds_this_process"].get<double>());
}

TEST_CASE("a diverging run (lr 1e30) stops with a message, the adapter on disk stays loadable", "[reliability][runs]") {
  require_cli();
  const fs::path model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  const auto cfg = hyplora::llm::read_llama2c(model).config;
  TempDir tmp;
  for (const std::string policy : {"skip", "stop"}) {
    const fs::path out = tmp.path / policy, log = tmp.path / (policy + ".txt");
    auto args = train_args(model, out, 12, false);
    for (const char* a : {"--lr", "1e30", "--nan-policy", policy.c_str(), "--max-bad-steps", "3"}) args.push_back(a);
    const int code = wait_for(spawn(args, log));
    const std::string text = slurp(log);
    INFO(policy << ": exit " << code << "\n" << text);
    CHECK(code != 0);
    CHECK(code < 128);  // an orderly stop, not a crash
    // the first step throws the parameters to ~1e28: finite, but the run has diverged (it went on
    // to NaN losses, and saved adapters that the readers now refuse)
    CHECK(text.find("parameters diverged after step 1") != std::string::npos);
    // the last good state is kept: the adapter and the checkpoint of step 0 (the initial validation),
    // finite, plausible and loadable (as the in-process run in test_trainer.cpp)
    REQUIRE(fs::exists(out / "adapter.safetensors"));
    REQUIRE(fs::exists(out / "checkpoint.safetensors"));
    CHECK(check_run_folder(out, cfg) == 0);
  }
}

TEST_CASE("an output path that cannot take files is refused before any work (eval, analyze, demo)", "[reliability][runs]") {
  // eval ran its whole evaluation, analyze its ~48 s of work and demo its base-model evaluation, then
  // failed to write ("cannot create temporary file", "cannot create directories: Not a directory")
  require_cli();
  const fs::path model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  const std::string m = model.string();
  TempDir tmp;
  const fs::path file = tmp.path / "plain.txt", log = tmp.path / "log.txt";
  hyplora::test::spit(file, "not a folder\n");
  // `late`: text printed only once the expensive work has begun
  auto expect_refused = [&](const std::vector<std::string>& args, const std::vector<std::string>& parts,
                            const std::vector<std::string>& late) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = run_cli(args, log);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string line;
    for (const auto& a : args) line += a + " ";
    INFO(line << "-> exit " << r.code << " after " << s << " s\n" << r.text);
    CHECK(r.code == 1);
    for (const auto& p : parts) CHECK(r.text.find(p) != std::string::npos);
    for (const auto& p : late) CHECK(r.text.find(p) == std::string::npos);
  };
  // a regular file where the folder should be: fails for root too
  const std::string in_file = (file / "r.json").string(), under_file = (file / "sub" / "out").string();
  expect_refused({"eval", "--model", m, "--builtin-count", "300", "--quiet", "--out", in_file},
                 {"--out " + in_file, file.string() + " is a file, not a folder"}, {", prompt template", "report:"});
  expect_refused({"analyze", "--model", m, "--data", "builtin:200", "-o", under_file},
                 {"--out " + under_file, file.string() + " is a file, not a folder"}, {"analyze: model", "analyze: wrote"});
  expect_refused({"analyze", "--model", m, "--data", "builtin:200", "-o", file.string()},
                 {file.string() + " is a file, not a folder"}, {"analyze: model"});
  expect_refused({"demo", "--model", m, "--out", under_file, "--steps", "1", "--train-problems", "20", "--test-problems", "3"},
                 {"--out " + under_file, file.string() + " is a file, not a folder"}, {"hyplora demo: model", "[1/5]"});
  CHECK(hyplora::test::slurp(file) == "not a folder\n");
  // /sys takes no files, for root neither
  if (fs::is_directory("/sys/kernel"))
    expect_refused({"eval", "--model", m, "--quiet", "--out", "/sys/r.json"},
                   {"--out /sys/r.json", "cannot create files in folder /sys"}, {", prompt template"});
  // a read-only folder: refused for a non-root user (root writes through the permission bits)
  const fs::path ro = tmp.path / "ro";
  fs::create_directory(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  if (::geteuid() == 0) {
    WARN("SKIPPED the read-only-folder checks: running as root, whose writes permission bits do not stop");
  } else {
    expect_refused({"eval", "--model", m, "--quiet", "--out", (ro / "r.json").string()},
                   {"--out", "cannot create files in folder " + ro.string() + ": Permission denied"}, {", prompt template"});
    expect_refused({"analyze", "--model", m, "--data", "builtin:200", "-o", (ro / "a").string()},
                   {"--out", "Permission denied"}, {"analyze: model"});
    expect_refused({"demo", "--model", m, "--out", ro.string(), "--steps", "1", "--train-problems", "20", "--test-problems", "3"},
                   {"--out", "Permission denied"}, {"[1/5]"});
  }
  fs::permissions(ro, fs::perms::owner_all);
  CHECK(fs::is_empty(ro));  // no probe file left
}

TEST_CASE("out of memory says so and names the flags that set the memory", "[reliability][runs]") {
  // under `ulimit -v` a --batch 4096 run printed only "hyplora: error: std::bad_alloc"
  require_cli();
  const fs::path model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  TempDir tmp;
  const fs::path out = tmp.path / "out", log = tmp.path / "log.txt";
  std::vector<std::string> args{cli().string(), "train", "--model", model.string(), "--builtin", "--batch", "4096",
                                "--cutoff", "512", "--steps", "2", "--val-examples", "2", "--builtin-train", "64",
                                "--threads", "1", "--plot", "none", "--quiet", "--out", out.string()};
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const rlimit limit{rlim_t(1) << 30, rlim_t(1) << 30};  // 1 GiB of address space
    ::setrlimit(RLIMIT_AS, &limit);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    exec_child(args);
  }
  const int code = wait_for(pid);
  const std::string text = slurp(log);
  INFO("exit " << code << "\n" << text);
  CHECK(code == 1);  // an error, not a crash
  CHECK(text.find("hyplora: error: out of memory") != std::string::npos);
  for (const char* knob : {"--batch", "--cutoff", "--grad-accum", "smaller --model"}) CHECK(text.find(knob) != std::string::npos);
}

TEST_CASE("bad flags fail before any work with a message naming the flag, and leave no output", "[reliability][runs]") {
  require_cli();
  const fs::path model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  TempDir tmp;
  const fs::path out = tmp.path / "out", log = tmp.path / "log.txt";
  const std::string m = model.string(), o = out.string();
  auto expect_error = [&](const std::vector<std::string>& args, const std::vector<std::string>& parts) {
    return expect_cli_error(args, parts, log, out);
  };
  // demo: every count checked before the base-model evaluation
  expect_error({"demo", "--model", m, "--out", o, "--steps", "1", "--batch", "2", "--train-problems", "10", "--test-problems", "0"},
               {"--test-problems"});
  const auto batch0 = expect_error({"demo", "--model", m, "--out", o, "--batch", "0"}, {"--batch"});
  CHECK(batch0.text.find("[1/5]") == std::string::npos);
  expect_error({"demo", "--model", m, "--out", o, "--train-problems", "-4"}, {"--train-problems"});
  expect_error({"demo", "--model", m, "--out", o, "--threads", "100000"}, {"--threads", "1024"});
  // threads: libgomp crashed at 100000
  expect_error({"train", "--model", m, "--builtin", "--steps", "1", "--threads", "100000", "--out", o}, {"--threads", "100000"});
  expect_error({"eval", "--model", m, "--threads", "100000"}, {"--threads"});
  expect_error({"eval", "--model", m, "--threads", "-4"}, {"--threads", "-4"});
  // eval counts and names
  expect_error({"eval", "--model", m, "--builtin-count", "-1"}, {"--builtin-count"});
  expect_error({"eval", "--model", m, "--builtin-count", "0"}, {"--builtin-count"});
  expect_error({"eval", "--model", m, "--bad-records", "maybe"}, {"--bad-records", "maybe"});
  expect_error({"eval", "--model", m, "--limit", "-1"}, {"--limit"});
  expect_error({"eval", "--model", m, "--show", "-1"}, {"--show"});
  // the same set twice was evaluated and counted twice
  expect_error({"eval", "--model", m, "--data", "builtin", "--data", "builtin:test"}, {"--data", "twice"});
  expect_error({"eval", "--model", m, "--max-new-tokens", "0"}, {"--max-new-tokens"});
  // train values
  expect_error({"train", "--model", m, "--builtin", "--seed", "-1", "--out", o}, {"--seed"});
  // --config a folder aborted train and eval (an uncaught std::ios_base::failure, exit 134); a FIFO
  // blocked forever; --grid a folder printed libstdc++'s "basic_filebuf::underflow error"
  const std::string folder = tmp.path.string();
  expect_error({"train", "--model", m, "--builtin", "--config", folder, "--out", o}, {folder, "--config", "not a folder"});
  expect_error({"eval", "--model", m, "--config", folder}, {folder, "--config", "not a folder"});
  const fs::path fifo = tmp.path / "fifo.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  expect_error({"train", "--model", m, "--builtin", "--config", fifo.string(), "--out", o}, {fifo.string(), "FIFO"});
  expect_error({"sweep", "--model", m, "--grid", folder, "--out", o, "--dry-run"}, {folder, "--grid", "not a folder"});
  expect_error({"sweep", "--model", m, "--grid", fifo.string(), "--out", o, "--dry-run"}, {fifo.string(), "FIFO"});
  // 2^64 and beyond were saturated to 2^64-1 and stored as the seed
  expect_error({"train", "--model", m, "--builtin", "--seed", "99999999999999999999999", "--out", o}, {"--seed", "< 2^64"});
  expect_error({"sweep", "--model", m, "--out", o, "--dry-run", "--seeds", "0,18446744073709551616"}, {"--seeds", "< 2^64"});
  expect_error({"train", "--model", m, "--builtin", "--builtin-train", "99999999999", "--out", o}, {"--builtin-train"});
  expect_error({"train", "--model", m, "--builtin", "--targets", "q,q", "--out", o}, {"--targets", "twice"});
  expect_error({"train", "--model", m, "--data", "gsm8k-tets", "--out", o}, {"gsm8k-tets", "gsm8k-test"});
  // built-in depths without an upper bound hung for minutes; 1e30 epochs overflowed the step count and ran 1 step
  expect_error({"train", "--model", m, "--builtin", "--depth-max", "5000", "--out", o}, {"--depth-max", "<= 100", "5000"});
  expect_error({"eval", "--model", m, "--depth-min", "1000000", "--depth-max", "1000000"}, {"--depth-max", "<= 100"});
  expect_error({"train", "--model", m, "--builtin", "--epochs", "1e30", "--out", o}, {"--epochs", "1e+30"});
  // sweep seeds: -1 wrapped to 2^64-1 (as --seed did)
  expect_error({"sweep", "--model", m, "--out", o, "--dry-run", "--seeds", "0,-1"}, {"--seeds", "-1"});
  // sweep: a count given is never ignored; --dry-run checks --shard as a run does
  expect_error({"sweep", "--model", m, "--out", o, "--dry-run", "--shard", "3/2"}, {"--shard"});
  expect_error({"sweep", "--model", m, "--out", o, "--dry-run", "--steps", "-3"}, {"--steps"});
  expect_error({"sweep", "--model", m, "--out", o, "--dry-run", "--batch", "0"}, {"--batch"});
  expect_error({"sweep", "--model", m, "--out", o, "--dry-run", "--train-problems", "-5"}, {"--train-problems"});
  // --aggregate-only with nothing recorded (exited 0 with an empty summary)
  expect_error({"sweep", "--model", m, "--out", o, "--aggregate-only"}, {"--aggregate-only", "no cell of this grid is recorded"});
  // --max-cells 0 with nothing recorded (wrote grid.json and an empty summary, exit 0)
  expect_error({"sweep", "--model", m, "--out", o, "--max-cells", "0", "--variants", "lora", "--seeds", "0"},
               {"--max-cells 0", "no cell of this grid is recorded"});
  // convert onto its own input; a .gguf name that is not GGUF
  const fs::path copy = tmp.path / "model.bin";
  fs::copy_file(model, copy);
  expect_error({"convert", "--model", copy.string(), "--out", (tmp.path / "." / "model.bin").string()}, {"--model"});
  CHECK(slurp(copy) == slurp(model));
  // eval's report onto its own model (it replaced the model file with a JSON report)
  expect_error({"eval", "--model", copy.string(), "--builtin-count", "1", "--out", copy.string()}, {"--out", "--model"});
  CHECK(slurp(copy) == slurp(model));
  const fs::path data = tmp.path / "one.jsonl";
  const std::string record = R"({"question": "Tom has 2 apples and buys 3. How many?", "answer": "2 + 3 = 5\n#### 5"})" "\n";
  hyplora::test::spit(data, record);
  expect_error({"eval", "--model", m, "--data", "gsm8k:" + data.string(), "--out", data.string()}, {"--out", "--data"});
  CHECK(slurp(data) == record);
  expect_error({"convert", "--model", m, "--out", (tmp.path / "model.txt").string()}, {".gguf"});
  // an --out folder that takes no files: the message named the temporary file (/proc/.x.gguf.tmp.PID.0),
  // after the model was read; now --out, before the model is read (a junk model is not reached)
  if (fs::is_directory("/proc/self")) {
    const fs::path junk = tmp.path / "junk.bin";
    hyplora::test::spit(junk, "not a model");
    for (const std::string& model_file : {m, junk.string()}) {
      const auto r = expect_error({"convert", "--model", model_file, "--out", "/proc/x.gguf"},
                                  {"convert: --out /proc/x.gguf: cannot create files in folder /proc"});
      CHECK(r.text.find(".tmp") == std::string::npos);
      CHECK(r.text.find("junk.bin") == std::string::npos);
    }
  }
  expect_error({"convert", "--model", m, "--out", (tmp.path / "nope" / "x.gguf").string()},
               {"--out " + (tmp.path / "nope" / "x.gguf").string(), "does not exist"});
  // sweep --dry-run: a missing eval_data file was found only by the real run; the dry run made --out/cells
  const std::string missing = (tmp.path / "missing.jsonl").string();
  expect_error({"sweep", "--model", m, "--out", o, "--dry-run", "--variants", "lora", "--seeds", "0", "--eval-data",
                "gsm8k:" + missing},
               {"eval_data", "gsm8k:" + missing, "not found"});
  // ... and the real run wrote --out/cells and grid.json before it found it
  expect_error({"sweep", "--model", m, "--out", o, "--variants", "lora", "--seeds", "0", "--steps", "2", "--eval-data",
                "gsm8k:" + missing},
               {"eval_data", "gsm8k:" + missing, "not found"});
  const fs::path grid_missing = tmp.path / "grid_missing.json";
  hyplora::test::spit(grid_missing, R"({"task": {"train_data": "gsm8k:)" + missing + R"(", "validation_data": "mawps-valid", "test_data": "la-svamp"}})");
  expect_error({"sweep", "--model", m, "--grid", grid_missing.string(), "--out", o, "--dry-run"},
               {"task.train_data", missing, "not found"});
  {
    const auto r = run_cli({"sweep", "--model", m, "--out", o, "--dry-run", "--variants", "lora", "--seeds", "0"}, log);
    INFO(r.text);
    CHECK(r.code == 0);
    CHECK(r.text.find("to run   lora-lr0.003-s0") != std::string::npos);
    CHECK_FALSE(fs::exists(out));  // nothing created
  }
  // a --name that is not UTF-8 made a GGUF that hyplora's own reader refused ("string value is not valid UTF-8")
  expect_error({"convert", "--model", m, "--out", (tmp.path / "z.gguf").string(), "--name", "a\xff" "b"}, {"--name", "not valid UTF-8"});
  CHECK_FALSE(fs::exists(tmp.path / "z.gguf"));
  expect_error({"generate", "--model", m, "--seed", "-3"}, {"--seed"});
  // demo: problems too deep for the cutoff are refused before the base-model evaluation
  const auto deep = expect_error({"demo", "--model", m, "--out", o, "--depth-min", "30", "--depth-max", "30",
                                  "--train-problems", "20", "--test-problems", "3"},
                                 {"cutoff"});
  CHECK(deep.text.find("[1/5]") == std::string::npos);
  hyplora::test::spit(tmp.path / "bad.gguf", "FGUF" + std::string(64, '\0'));
  expect_error({"eval", "--model", (tmp.path / "bad.gguf").string()}, {"bad.gguf", "not a GGUF file: bad magic"});
  // the weight bound from HYPLORA_MAX_WEIGHT (inherited by the child): a bound below the model's
  // largest weight (4.4) refuses the model naming a tensor; a bad value names the variable
  ::setenv("HYPLORA_MAX_WEIGHT", "1", 1);
  expect_error({"generate", "--model", m, "--steps", "3", "--quiet"},
               {"stories260K.bin", "beyond the 1 that a trained weight could reach", "HYPLORA_MAX_WEIGHT"});
  ::setenv("HYPLORA_MAX_WEIGHT", "-5", 1);
  expect_error({"generate", "--model", m, "--steps", "3", "--quiet"}, {"HYPLORA_MAX_WEIGHT", "'-5'"});
  ::setenv("HYPLORA_MAX_WEIGHT", "100", 1);
  const auto fine = run_cli({"generate", "--model", m, "--steps", "3", "--quiet"}, tmp.path / "fine.txt");
  CHECK(fine.code == 0);
  ::setenv("HYPLORA_MAX_WEIGHT", "", 1);  // set but empty: unset (the default bound)
  const auto empty = run_cli({"generate", "--model", m, "--steps", "3", "--quiet"}, tmp.path / "empty.txt");
  CHECK(empty.code == 0);
  ::unsetenv("HYPLORA_MAX_WEIGHT");
}

TEST_CASE("flags that do not apply or are out of range are refused naming the flag (train, generate, analyze)", "[reliability][runs]") {
  require_cli();
  const fs::path model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  TempDir tmp;
  const fs::path out = tmp.path / "out", log = tmp.path / "log.txt";
  const std::string m = model.string(), o = out.string();
  auto expect_error = [&](const std::vector<std::string>& args, const std::vector<std::string>& parts) {
    return expect_cli_error(args, parts, log, out);
  };
  const fs::path data = tmp.path / "g.jsonl";
  std::string records;
  for (int i = 1; i <= 10; ++i)
    records += R"({"question": "Tom has )" + std::to_string(i) + R"( apples and buys 3. How many?", "answer": "#### )" +
               std::to_string(i + 3) + "\"}\n";
  hyplora::test::spit(data, records);
  const std::string d = "gsm8k:" + data.string();
  const std::vector<std::string> base{"train", "--model", m, "--steps", "1", "--batch", "2", "--rank", "2",
                                      "--plot", "none", "--quiet", "--out", o};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  // LoRA has no curvature: this exited 0 and the adapter metadata recorded K:5, learn_K:true
  expect_error(with({"--builtin", "--adapter", "lora", "--curvature", "5", "--learn-curvature", "--manifold", "poincare"}),
               {"--curvature 5", "--adapter lora"});
  expect_error(with({"--builtin", "--adapter", "lora", "--learn-curvature"}), {"--learn-curvature", "--adapter lora"});
  expect_error(with({"--builtin", "--adapter", "lora", "--manifold", "poincare"}), {"--manifold poincare", "--adapter lora"});
  // float underflow: "RuntimeCurvature: curvature scale K must be positive and finite, got 0"
  expect_error(with({"--builtin", "--curvature", "1e-300"}), {"--curvature", "1e-300"});
  // the same data twice duplicated its records
  expect_error(with({"--data", d, "--data", d}), {"--data", "twice"});
  // --val-examples 0 (no validation set) with --val-data validated on all of it
  expect_error(with({"--data", d, "--val-data", d, "--val-examples", "0"}), {"--val-examples 0", "--val-data"});
  // generate: run.c's silent normalisation (-p 1.5 -> 0.9, -t -1 -> greedy, -n -5 -> seq_len) refused
  expect_error({"generate", "--model", m, "-p", "1.5"}, {"--topp", "1.5"});
  expect_error({"generate", "--model", m, "-p", "-1"}, {"--topp", "-1"});
  expect_error({"generate", "--model", m, "-p", "nan"}, {"--topp"});
  expect_error({"generate", "--model", m, "-t", "-1"}, {"--temperature", "-1"});
  expect_error({"generate", "--model", m, "-t", "nan"}, {"--temperature"});
  expect_error({"generate", "--model", m, "-n", "-5"}, {"--steps", "-5"});
  // a prompt longer than the context is cut as run.c cuts it (stdout unchanged), with a warning on
  // stderr saying how many of its tokens were dropped (it was silent)
  {
    std::string prompt;
    for (int i = 0; i < 300; ++i) prompt += "Once upon a time ";
    hyplora::llm::LlamaModel lm(hyplora::llm::read_llama2c(model));
    const auto tok = hyplora::llm::Tokenizer::load_llama2c(hyplora::test::require_shared("models/stories260K/tok512.bin"),
                                                           lm.config().vocab_size);
    const int seq_len = lm.config().seq_len;
    const int prompt_tokens = int(tok.encode(prompt, true, false).size());
    REQUIRE(prompt_tokens > seq_len + 1);
    hyplora::llm::Sampler sampler(lm.config().vocab_size, 0.0f, 0.9f, 1);
    const auto expected = hyplora::llm::generate(lm, tok, prompt, 0, sampler);
    const auto r = run_cli_split({"generate", "--model", m, "-i", prompt, "-n", "0", "-t", "0", "-s", "1", "--quiet"}, tmp.path);
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(r.out == expected.text + "\n");  // what run.c prints
    CHECK(r.err.find("warning: the prompt is " + std::to_string(prompt_tokens) + " tokens") != std::string::npos);
    CHECK(r.err.find("its last " + std::to_string(prompt_tokens - 1 - seq_len) + " tokens were dropped") != std::string::npos);
    CHECK(r.err.find("seq_len") != std::string::npos);
    // -n shorter than the prompt cuts it too; a prompt that fits gets no warning
    const auto cut = run_cli_split({"generate", "--model", m, "-i", "Once upon a time there was", "-n", "3", "-t", "0", "--quiet"}, tmp.path);
    CHECK(cut.code == 0);
    CHECK(cut.err.find("tokens were dropped") != std::string::npos);
    CHECK(cut.err.find("--steps (-n)") != std::string::npos);
    const auto fits = run_cli_split({"generate", "--model", m, "-i", "Once upon a time", "-n", "20", "-t", "0", "--quiet"}, tmp.path);
    CHECK(fits.code == 0);
    CHECK(fits.err.empty());
  }
  for (const char* p : {"0", "1"}) {  // run.c: no top-p cut
    const auto r = run_cli({"generate", "--model", m, "-n", "3", "-p", p, "-s", "1", "--quiet"}, log);
    INFO(r.text);
    CHECK(r.code == 0);
  }
  // analyze: a missing file said "unknown data set '/nonexistent.jsonl' (known: ...)"
  const auto r = run_cli({"analyze", "--model", m, "-d", (tmp.path / "nonexistent.jsonl").string(), "-o", o}, log);
  INFO(r.text);
  CHECK(r.code != 0);
  CHECK(r.text.find("file not found") != std::string::npos);
  CHECK(r.text.find("unknown data set") == std::string::npos);
  const auto r2 = run_cli({"analyze", "--model", m, "-d", "gsm8k-trian", "-o", o}, log);  // a name: the known names
  CHECK(r2.text.find("unknown data set 'gsm8k-trian'") != std::string::npos);
  // FORMAT:PATH, as train and eval take it, said "file not found"; a skipped record was only counted
  const fs::path tok = hyplora::test::require_shared("models/stories260K/tok512.bin");
  const fs::path abc = tmp.path / "g_abc.jsonl";
  hyplora::test::spit(abc, records + R"({"question": "Tom had 3 apples.", "answer": "#### abc"})" "\n");
  const auto r3 = run_cli({"analyze", "--frequency-only", "-z", tok.string(), "-d", "gsm8k:" + abc.string(), "-o", o, "--no-plots"}, log);
  INFO(r3.text);
  CHECK(r3.code == 0);
  CHECK(r3.text.find("(gsm8k): 10 records, 1 skipped") != std::string::npos);
  CHECK(r3.text.find("skipped bad record: " + abc.string() + ":11: the answer after '####' is not a number") != std::string::npos);
  fs::remove_all(out);
  const auto r4 = run_cli({"analyze", "--frequency-only", "-z", tok.string(), "-d", "foo:" + abc.string(), "-o", o, "--no-plots"}, log);
  CHECK(r4.code != 0);
  CHECK(r4.text.find("unknown data format 'foo'") != std::string::npos);
  // a tokenizer cut at a token boundary loads without a model (its size is unknown); encoding then
  // failed with "Tokenizer::encode: token id -1 outside the vocabulary", naming no file
  {
    const std::string bytes = slurp(tok);
    std::size_t at = 4;
    for (int i = 0; i < 100; ++i) {
      std::int32_t len = 0;
      std::memcpy(&len, bytes.data() + at + 4, 4);
      at += 8 + std::size_t(len);
    }
    const fs::path cut = tmp.path / "tok100.bin";
    hyplora::test::spit(cut, bytes.substr(0, at));
    fs::remove_all(out);
    const auto r5 = run_cli({"analyze", "--frequency-only", "-z", cut.string(), "-d", "gsm8k:" + data.string(), "-o", o, "--no-plots"}, log);
    INFO(r5.text);
    CHECK(r5.code == 1);
    CHECK(r5.text.find("hyplora: error: " + cut.string() + ": cannot encode text") != std::string::npos);
    CHECK(r5.text.find("outside the vocabulary of 100 tokens") != std::string::npos);
  }
}

TEST_CASE("an existing run is not overwritten, --resume checks its flags and leaves a finished run alone, eval uses the adapter's template", "[reliability][runs]") {
  require_cli();
  const fs::path model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  TempDir tmp;
  const fs::path out = tmp.path / "run", log = tmp.path / "log.txt";
  auto args = train_args(model, out, 3, false);
  for (const char* a : {"--prompt-template", "alpaca"}) args.push_back(a);
  args.erase(args.begin());  // run_cli adds the binary
  auto r = run_cli(args, log);
  INFO(r.text);
  REQUIRE(r.code == 0);
  const auto before = folder_bytes(out);
  REQUIRE(before.count("checkpoint.safetensors"));
  {  // the run's settings.json is a valid --config (its "data": [] was refused: "At least 1 required")
    const fs::path again = tmp.path / "again";
    const auto rc = run_cli({"train", "--config", (out / "settings.json").string(), "--out", again.string(), "--quiet"}, log);
    INFO(rc.text);
    REQUIRE(rc.code == 0);
    auto settings = [](const fs::path& dir) {
      auto j = nlohmann::json::parse(slurp(dir / "settings.json"));
      j.erase("out");
      return j;
    };
    CHECK(settings(again) == settings(out));
  }
  // the same command again: refused (it overwrote the trained adapter and checkpoint silently)
  r = run_cli(args, log);
  CHECK(r.code == 1);
  CHECK(r.text.find(out.string()) != std::string::npos);
  CHECK(r.text.find("--resume") != std::string::npos);
  CHECK(r.text.find("--overwrite") != std::string::npos);
  CHECK(folder_bytes(out) == before);
  // --resume with a flag that contradicts the stored settings: an error naming it
  r = run_cli({"train", "--resume", "--out", out.string(), "--steps", "400", "--lr", "0.1"}, log);
  CHECK(r.code == 1);
  CHECK(r.text.find("--steps 400") != std::string::npos);
  CHECK(r.text.find("--lr") != std::string::npos);
  CHECK(folder_bytes(out) == before);
  // the run's data followed its --seed (no --data-seed given): another --data-seed contradicts it
  const auto run_seed = nlohmann::json::parse(slurp(out / "settings.json")).at("seed").get<std::uint64_t>();
  r = run_cli({"train", "--resume", "--out", out.string(), "--data-seed", std::to_string(run_seed + 1)}, log);
  CHECK(r.code == 1);
  CHECK(r.text.find("--data-seed") != std::string::npos);
  CHECK(folder_bytes(out) == before);
  // --resume of the finished run (the original command line plus --resume): nothing changes
  auto resume_args = args;
  resume_args.push_back("--resume");
  r = run_cli(resume_args, log);
  CHECK(r.code == 0);
  CHECK(r.text.find("complete") != std::string::npos);
  CHECK(folder_bytes(out) == before);  // summary.json was rewritten with empty figures
  // eval scores with the template stored in the adapter unless --prompt-template is given
  const fs::path report = tmp.path / "report.json";
  const std::vector<std::string> eval = {"eval", "--model", model.string(), "--adapter", (out / "adapter.safetensors").string(),
                                         "--builtin-count", "2", "--quiet", "--threads", "1", "--out", report.string()};
  r = run_cli(eval, log);
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(slurp(report))["prompt_template"] == "alpaca");
  auto eval_compact = eval;
  for (const char* a : {"--prompt-template", "compact"}) eval_compact.push_back(a);
  r = run_cli(eval_compact, log);
  REQUIRE(r.code == 0);
  CHECK(r.text.find("warning") != std::string::npos);
  CHECK(r.text.find("trained by an older build") == std::string::npos);  // this build's boundary
  CHECK(nlohmann::json::parse(slurp(report))["prompt_template"] == "compact");
  // an adapter of a build before the prompt boundary moved (no "prompt_boundary" metadata) gets a
  // warning where the template's prompt ends in a space (compact), not where it does not (alpaca)
  auto old_file = hyplora::formats::read_safetensors(out / "adapter.safetensors");
  REQUIRE(old_file.metadata.erase("prompt_boundary") == 1);
  const fs::path old_adapter = tmp.path / "old_adapter.safetensors";
  hyplora::formats::write_safetensors(old_adapter, old_file);
  auto eval_old = eval_compact;
  eval_old[4] = old_adapter.string();
  r = run_cli(eval_old, log);
  REQUIRE(r.code == 0);
  CHECK(r.text.find("trained by an older build") != std::string::npos);
  auto eval_old_alpaca = eval;
  eval_old_alpaca[4] = old_adapter.string();
  r = run_cli(eval_old_alpaca, log);
  REQUIRE(r.code == 0);
  CHECK(r.text.find("trained by an older build") == std::string::npos);
  // corrupt "settings" metadata: the stored template was dropped silently (scored with compact, exit 0)
  auto edited_adapter = [&](const std::string& name, const std::function<void(hyplora::formats::SafetensorsFile&)>& edit) {
    auto st = hyplora::formats::read_safetensors(out / "adapter.safetensors");
    edit(st);
    hyplora::formats::write_safetensors(tmp.path / name, st);
    auto a = eval;
    a[4] = (tmp.path / name).string();
    return a;
  };
  r = run_cli(edited_adapter("bad_settings.safetensors", [](auto& st) { st.metadata["settings"] = "{{"; }), log);
  CHECK(r.code == 1);
  CHECK(r.text.find("bad_settings.safetensors: metadata \"settings\" is not valid JSON") != std::string::npos);
  r = run_cli(edited_adapter("jinja.safetensors", [](auto& st) { st.metadata["settings"] = R"({"prompt-template": "jinja"})"; }), log);
  CHECK(r.code == 1);
  CHECK(r.text.find("jinja.safetensors: metadata \"settings\": 'prompt-template' is 'jinja'") != std::string::npos);
  // an unknown prompt boundary (a newer build's, or damaged) was read as an older build's missing one
  r = run_cli(edited_adapter("boundary.safetensors", [](auto& st) { st.metadata["prompt_boundary"] = "zzz"; }), log);
  CHECK(r.code == 1);
  CHECK(r.text.find("boundary.safetensors: metadata \"prompt_boundary\" is \"zzz\"") != std::string::npos);
  // the adapter stores its training examples' longest response; eval's "auto" is at least it
  {
    const auto st = hyplora::formats::read_safetensors(out / "adapter.safetensors");
    const int stored = hyplora::train::stored_longest_response(st.metadata, "adapter");
    REQUIRE(stored > 0);
    r = run_cli(edited_adapter("long.safetensors", [](auto& f) { f.metadata["longest_response_tokens"] = "150"; }), log);
    REQUIRE(r.code == 0);
    const auto set = nlohmann::json::parse(slurp(report))["datasets"][0];
    CHECK(set["max_new_tokens"] == 166);
    CHECK(set["longest_training_response_tokens"] == 150);
    r = run_cli(edited_adapter("bad_long.safetensors", [](auto& f) { f.metadata["longest_response_tokens"] = "-3"; }), log);
    CHECK(r.code == 1);
    CHECK(r.text.find("bad_long.safetensors: metadata \"longest_response_tokens\" is '-3', not an integer") != std::string::npos);
  }
  // no settings at all: scored with the default, with a warning that the template is unknown
  r = run_cli(edited_adapter("no_settings.safetensors", [](auto& st) { st.metadata.erase("settings"); }), log);
  CHECK(r.code == 0);
  CHECK(r.text.find("does not say which prompt template it was trained with") != std::string::npos);
  // --overwrite replaces the run
  auto overwrite = args;
  overwrite.push_back("--overwrite");
  r = run_cli(overwrite, log);
  CHECK(r.code == 0);
  CHECK(fs::exists(out / "checkpoint.safetensors"));
}
