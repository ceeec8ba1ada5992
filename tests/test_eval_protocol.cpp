// The evaluation protocol: the new-token limit of evaluation ("auto" per evaluated set = its longest
// reference response + a margin, or a fixed number; generations cut by it counted and reported), and
// the guard that keeps registered test sets out of training and validation (train, the sweep grid).
#include <algorithm>
#include <sstream>
#include <unistd.h>

#include "data/answer_extraction.hpp"
#include "data/prompt_template.hpp"
#include "data/registry.hpp"
#include "eval/metrics.hpp"
#include "formats/safetensors.hpp"
#include "model/load_model.hpp"
#include "stories_fixture.hpp"
#include "support.hpp"
#include "sweep/grid.hpp"
#include "train/dataset.hpp"
#include "train/evaluate.hpp"
#include "train/settings.hpp"
#include "train/trainer.hpp"
#include "util/subprocess.hpp"

namespace fs = std::filesystem;
using namespace hyplora;

namespace {

using test::load_stories;

/// What a model must generate to reproduce a record's training target, computed here the way the
/// audit's perfect-model simulation does: the tokens of prompt + response after the model prompt's.
int reference_tokens(const data::Record& r, const data::PromptTemplate& tmpl, const llm::Tokenizer& tok) {
  const auto context = tok.encode(tmpl.model_prompt(r), true, false);
  const auto full = tok.encode(tmpl.prompt(r) + tmpl.response(r), true, false);
  return int(full.size()) - int(context.size());
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("hyplora_test_eval_protocol_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

}  // namespace

TEST_CASE("trainer: eval limit auto is the evaluated set's longest reference response + 16, decided per set", "[trainer][eval]") {
  const auto tok = llm::Tokenizer::load_llama2c(test::require_shared("models/stories260K/tok512.bin"), 512);
  auto recs = train::builtin_records(0, 1, 2, "test", 4);
  // the longest answer in the middle of the set: neither the first nor the last record decides
  recs[1].answer_text = recs[1].answer_text + " Then Tom counted them all again, one by one, and he was very happy.";
  for (const char* name : {"compact", "alpaca"}) {
    INFO(name);
    const auto& tmpl = data::prompt_template(name);
    int longest = 0;
    for (const auto& r : recs) longest = std::max(longest, reference_tokens(r, tmpl, tok));
    REQUIRE(longest == reference_tokens(recs[1], tmpl, tok));
    REQUIRE(longest > reference_tokens(recs[0], tmpl, tok) + 5);
    const auto limit = train::resolve_limit(train::GenerationLimits{}, recs, tmpl, tok);
    CHECK(limit.rule == "auto");
    CHECK(limit.longest_reference == longest);
    CHECK(limit.max_new_tokens == longest + train::kAutoMarginTokens);
    CHECK(train::kAutoMarginTokens == 16);
    CHECK(train::response_token_count(recs[1], tmpl, tok) == longest);
    // the same rule for every record of a set: another set (without the long answer) gets its own limit
    const std::vector<data::Record> others{recs[0], recs[2], recs[3]};
    int longest_others = 0;
    for (const auto& r : others) longest_others = std::max(longest_others, reference_tokens(r, tmpl, tok));
    CHECK(train::resolve_limit(train::GenerationLimits{}, others, tmpl, tok).max_new_tokens ==
          longest_others + train::kAutoMarginTokens);
  }
  const auto& compact = data::prompt_template("compact");
  // an explicit value is used as it is
  const auto fixed = train::resolve_limit(train::GenerationLimits{7}, recs, compact, tok);
  CHECK(fixed.max_new_tokens == 7);
  CHECK(fixed.rule == "fixed");
  // a record without reference text: the documented fallback, said so
  auto without = recs;
  without[2].answer_text.clear();
  const auto fb = train::resolve_limit(train::GenerationLimits{}, without, compact, tok);
  CHECK(fb.rule == "auto-fallback");
  CHECK(fb.max_new_tokens == std::max(train::kAutoFallbackTokens, fb.longest_reference + train::kAutoMarginTokens));
  CHECK(fb.describe().find("no reference") != std::string::npos);
  for (auto& r : without) r.answer_text.clear();
  const auto none = train::resolve_limit(train::GenerationLimits{}, without, compact, tok);
  CHECK(none.max_new_tokens == train::kAutoFallbackTokens);
  CHECK(none.longest_reference == -1);

  // the longest training response, where longer than the set's references, decides: LLM-Adapters'
  // MAWPS references are "The answer is N." alone and got 39 tokens, cutting answers trained in full
  const int longest_recs = train::resolve_limit(train::GenerationLimits{}, recs, compact, tok).longest_reference;
  const auto trained = train::resolve_limit(train::GenerationLimits{train::kAutoMaxNewTokens, longest_recs + 30}, recs, compact, tok);
  CHECK(trained.rule == "auto");
  CHECK(trained.longest_trained == longest_recs + 30);
  CHECK(trained.longest_reference == longest_recs);
  CHECK(trained.max_new_tokens == longest_recs + 30 + train::kAutoMarginTokens);
  CHECK(trained.describe() == std::to_string(longest_recs + 46) + " (auto: longest training response " +
                                  std::to_string(longest_recs + 30) + " + 16; longest reference response " +
                                  std::to_string(longest_recs) + ")");
  const auto shorter = train::resolve_limit(train::GenerationLimits{train::kAutoMaxNewTokens, longest_recs - 5}, recs, compact, tok);
  CHECK(shorter.max_new_tokens == longest_recs + 16);  // a shorter training response changes nothing
  CHECK(shorter.longest_trained == -1);
  CHECK(train::resolve_limit(train::GenerationLimits{7, longest_recs + 30}, recs, compact, tok).max_new_tokens == 7);
  eval::DatasetAccuracy with_trained;
  with_trained.name = "s";
  with_trained.limit = trained;
  const auto trained_back = eval::report_from_json(eval::to_json(eval::AccuracyReport{{with_trained}}, false));
  CHECK(trained_back.datasets.at(0).limit.describe() == trained.describe());

  // the built-in task's deep problems fit (the fixed 40 cut depth 3 answers: "The answer is 2" for 22)
  const auto deep = train::builtin_records(0, 1, 6, "test", 240);
  int longest_deep = 0;
  for (const auto& r : deep) longest_deep = std::max(longest_deep, reference_tokens(r, compact, tok));
  CHECK(longest_deep > 40);
  CHECK(train::resolve_limit(train::GenerationLimits{}, deep, compact, tok).max_new_tokens == longest_deep + 16);
}

TEST_CASE("trainer: evaluation counts and reports the generations cut by the new-token limit", "[trainer][eval]") {
  auto st = load_stories();
  train::set_thread_count(1);
  const auto recs = train::builtin_records(0, 1, 2, "test", 4);
  const auto& tmpl = data::prompt_template("compact");
  for (int n : {1, 3}) {
    INFO("max_new_tokens " << n);
    const train::GenerationLimits limits{n};
    // each record's end, generated one by one
    std::size_t cut = 0, at_eos = 0, no_answer = 0;
    for (const auto& r : recs) {
      train::GenerationEnd end = train::GenerationEnd::no_room;
      const std::string text =
          train::generate_greedy(*st.model, st.tok, tmpl, st.tok.encode(tmpl.model_prompt(r), true, false), limits, &end);
      cut += end == train::GenerationEnd::limit;
      at_eos += end == train::GenerationEnd::eos;
      const auto judged = data::judge(r, text);
      no_answer += !judged.number && !judged.choice;
      // the record overload generates from model_prompt (compact's prompt() ends in a space it drops)
      REQUIRE(tmpl.prompt(r) != tmpl.model_prompt(r));
      train::GenerationEnd record_end = train::GenerationEnd::no_room;
      CHECK(train::generate_greedy(*st.model, st.tok, tmpl, r, limits, &record_end) == text);
      CHECK(record_end == end);
    }
    // the base model does not answer in n tokens: some generations end at the limit
    REQUIRE(cut > 0);
    const auto acc = train::evaluate_records(*st.model, st.tok, tmpl, recs, "t", limits, true);
    CHECK(acc.generations_at_limit == cut);
    CHECK(acc.generations_at_eos == at_eos);
    CHECK(acc.no_answer == no_answer);
    CHECK(acc.limit.max_new_tokens == n);  // an explicit value is honoured
    CHECK(acc.limit.rule == "fixed");
    eval::AccuracyReport report;
    report.datasets.push_back(acc);
    const auto back = eval::report_from_json(eval::to_json(report, false)).datasets.at(0);
    CHECK(back.generations_at_limit == cut);
    CHECK(back.limit.max_new_tokens == n);
    std::ostringstream table;
    eval::print_table(table, report);
    CHECK(table.str().find("cut at the limit " + std::to_string(cut) + " of 4") != std::string::npos);
  }
  // auto: the resolved limit is recorded; a limit of the reference length does not cut the reference itself
  const auto acc = train::evaluate_records(*st.model, st.tok, tmpl, recs, "t", train::GenerationLimits{}, true);
  CHECK(acc.limit.rule == "auto");
  CHECK(acc.limit.max_new_tokens == train::resolve_limit(train::GenerationLimits{}, recs, tmpl, st.tok).max_new_tokens);
  CHECK(acc.generations_at_limit + acc.generations_at_context <= recs.size());
  const int longest = acc.limit.longest_reference;
  REQUIRE(longest > 0);
  CHECK(acc.limit.describe() == std::to_string(longest + train::kAutoMarginTokens) + " (auto: longest reference response " +
                                    std::to_string(longest) + " + " + std::to_string(train::kAutoMarginTokens) + ")");
  // --limit: the first records are evaluated, the limit is still the whole set's
  const auto first = train::evaluate_records(*st.model, st.tok, tmpl, recs, "t", train::GenerationLimits{}, true, 2);
  CHECK(first.overall.total == 2);
  CHECK(first.limit.max_new_tokens == acc.limit.max_new_tokens);
  CHECK(first.items.at(1).generated == acc.items.at(1).generated);
  const auto reread = eval::report_from_json(eval::to_json(eval::AccuracyReport{{acc}}, false)).datasets.at(0).limit;
  CHECK(reread.describe() == acc.limit.describe());
  // a report of an older build (no limit recorded) still reads
  nlohmann::json old = eval::to_json(eval::AccuracyReport{{acc}}, false);
  for (const char* k : {"generations_at_limit", "generations_at_context", "max_new_tokens", "max_new_tokens_rule",
                        "longest_reference_tokens"})
    old["datasets"][0].erase(k);
  const auto back = eval::report_from_json(old).datasets.at(0);
  CHECK(back.limit.max_new_tokens == 0);
  CHECK(back.generations_at_limit == 0);
}

TEST_CASE("trainer: --max-new-tokens and the grid's max_new_tokens take auto or a positive integer", "[trainer][eval]") {
  CHECK(train::parse_max_new_tokens("auto", "--max-new-tokens").automatic());
  CHECK(train::parse_max_new_tokens("40", "--max-new-tokens").max_new_tokens == 40);
  CHECK(train::max_new_tokens_text(train::GenerationLimits{}) == "auto");
  CHECK(train::max_new_tokens_json(train::GenerationLimits{12}) == 12);
  for (const char* bad : {"0", "-3", "autox", "", "1e3", "12 ", "1000001", "Auto"})
    CHECK_THROWS_WITH(train::parse_max_new_tokens(bad, "--max-new-tokens"),
                      Catch::Contains("--max-new-tokens") && Catch::Contains(std::string("'") + bad + "'") &&
                          Catch::Contains("auto"));
  // the grid: auto by default and by name, integers as before (older grids), bad values named
  CHECK(sweep::SweepGrid{}.max_new_tokens == train::kAutoMaxNewTokens);
  CHECK(sweep::grid_from_json(nlohmann::json::object()).max_new_tokens == train::kAutoMaxNewTokens);
  CHECK(sweep::grid_from_json({{"max_new_tokens", "auto"}}).max_new_tokens == train::kAutoMaxNewTokens);
  CHECK(sweep::grid_from_json({{"max_new_tokens", 40}}).max_new_tokens == 40);
  CHECK(sweep::to_json(sweep::grid_from_json({{"max_new_tokens", "auto"}}))["max_new_tokens"] == "auto");
  CHECK(sweep::to_json(sweep::grid_from_json({{"max_new_tokens", 40}}))["max_new_tokens"] == 40);
  const auto g40 = sweep::grid_from_json({{"max_new_tokens", 40}});
  CHECK(sweep::cell_fingerprint(g40, sweep::expand_cells(g40).at(1))["max_new_tokens"] == 40);  // older cells still match
  for (const nlohmann::json& bad : {nlohmann::json(0), nlohmann::json(-1), nlohmann::json("autox"), nlohmann::json("0")})
    CHECK_THROWS_WITH(sweep::grid_from_json({{"max_new_tokens", bad}}), Catch::Contains("max_new_tokens"));
}

TEST_CASE("trainer: registered test sets are refused as training or validation data unless --allow-test-data", "[trainer][data]") {
  const auto shared = test::shared_dir();
  train::TrainSettings s;
  s.data = {"gsm8k-test"};
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--data 'gsm8k-test'") && Catch::Contains("test set") &&
                                      Catch::Contains("gsm8k-train") && Catch::Contains("mawps-valid") &&
                                      Catch::Contains("--allow-test-data"));
  // the same file given by path, with or without its format
  s.data = {"gsm8k:" + (shared / "data/gsm8k/test.jsonl").string()};
  CHECK_THROWS_WITH(s.validate(), Catch::Contains("--data") && Catch::Contains("gsm8k-test"));
  s.data = {"mawps-train"};
  CHECK_NOTHROW(s.validate());
  for (const char* val : {"mawps-test", "svamp", "la-gsm8k"}) {
    s.val_data = val;
    CHECK_THROWS_WITH(s.validate(), Catch::Contains(std::string("--val-data '") + val + "'") && Catch::Contains("--allow-test-data"));
  }
  s.val_data = "mawps-valid";
  CHECK_NOTHROW(s.validate());
  // the override: accepted, and written to settings.json only when given (older settings keep their form)
  CHECK(nlohmann::json(s).contains("allow-test-data") == false);
  s.val_data = "mawps-test";
  s.allow_test_data = true;
  CHECK_NOTHROW(s.validate());
  const nlohmann::json j = s;
  CHECK(j.at("allow-test-data") == true);
  train::TrainSettings back;
  train::from_json(j, back);
  CHECK(back.allow_test_data);

  // the sweep grid: task.train_data / task.validation_data, override by train.allow-test-data
  nlohmann::json grid = {{"task", {{"train_data", {"gsm8k-test"}}, {"validation_data", "mawps-valid"}, {"test_data", "mawps-test"}}}};
  CHECK_THROWS_WITH(sweep::grid_from_json(grid), Catch::Contains("task.train_data 'gsm8k-test'") && Catch::Contains("allow-test-data"));
  grid["task"]["train_data"] = {"mawps-train"};
  CHECK_NOTHROW(sweep::grid_from_json(grid));  // a test set as the task's test set: what it is for
  grid["task"]["validation_data"] = "mawps-test";
  CHECK_THROWS_WITH(sweep::grid_from_json(grid), Catch::Contains("task.validation_data 'mawps-test'"));
  grid["train"] = {{"allow-test-data", true}};
  CHECK(sweep::grid_from_json(grid).train.allow_test_data);
}

TEST_CASE("trainer: --allow-test-data loads the test set for training; without it prepare_inputs refuses", "[trainer][data]") {
  (void)test::require_shared("data/mawps/testset.json");
  (void)test::require_shared("models/stories260K/stories260K.bin");
  train::TrainSettings s;
  s.data = {"mawps-test"};
  s.val_examples = 4;
  s.out = temp_dir("allow").string();
  CHECK_THROWS_WITH(train::prepare_inputs(s), Catch::Contains("--data 'mawps-test'"));
  s.allow_test_data = true;
  const auto in = train::prepare_inputs(s);
  CHECK(in.train.size() + in.validation.size() == 238);
  CHECK(in.validation.size() == 4);
  fs::remove_all(s.out);
}

TEST_CASE("trainer: --resume of a run that trained on a test set before the guard takes --allow-test-data", "[trainer][data]") {
  (void)test::require_shared("data/mawps/testset.json");
  (void)test::require_shared("models/stories260K/stories260K.bin");
  train::TrainSettings s;
  s.adapter = "lora";
  s.manifold = "euclidean";
  s.data = {"mawps-test"};
  s.allow_test_data = true;
  s.steps = 2;
  s.batch = 2;
  s.val_examples = 4;
  s.threads = 1;
  s.plot = "none";
  s.quiet = true;
  const auto dir = temp_dir("resume_test_set");
  s.out = (dir / "run").string();
  REQUIRE(train::run_training(s, train::RunRequest{}).steps == 2);
  // the checkpoint as an older build wrote it: no allow-test-data among its settings
  const auto ckpt = dir / "run" / "checkpoint.safetensors";
  auto st = formats::read_safetensors(ckpt);
  auto settings = nlohmann::json::parse(st.metadata.at("settings"));
  REQUIRE(settings.contains("allow-test-data"));
  settings.erase("allow-test-data");
  st.metadata["settings"] = settings.dump();
  formats::write_safetensors(ckpt, st);
  train::TrainSettings given;
  given.out = s.out;
  given.quiet = true;
  train::RunRequest resume;
  resume.resume = true;
  resume.threads_given = false;
  CHECK_THROWS_WITH(train::run_training(given, resume),
                    Catch::Contains("--data 'mawps-test'") && Catch::Contains("settings read from"));
  given.allow_test_data = true;
  resume.given_settings = {"allow-test-data"};
  CHECK(train::run_training(given, resume).already_complete);
  fs::remove_all(dir);
}

#ifdef HYPLORA_CLI_PATH
TEST_CASE("trainer: the CLI names the option of a bad limit and of a test set", "[trainer][cli]") {
  const std::string cli = HYPLORA_CLI_PATH;
  const auto dir = temp_dir("cli");
  auto expect_error = [&](std::vector<std::string> args, const std::vector<std::string>& parts) {
    args.insert(args.begin(), cli);
    const auto r = util::run_process(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    INFO(line << "-> " << r.status << "\n" << r.output);
    REQUIRE(r.started);
    CHECK(r.status != 0);
    CHECK(r.status < 128);
    for (const auto& p : parts) CHECK(r.output.find(p) != std::string::npos);
  };
  expect_error({"eval", "--max-new-tokens", "autox"}, {"--max-new-tokens", "'autox'"});
  expect_error({"eval", "--max-new-tokens", "-5"}, {"--max-new-tokens", "'-5'"});
  expect_error({"demo", "--out", (dir / "demo").string(), "--max-new-tokens", "0"}, {"--max-new-tokens", "'0'"});
  expect_error({"train", "--adapter", "lora", "--manifold", "euclidean", "--data", "gsm8k-test", "--steps", "1", "--out",
                (dir / "t1").string()},
               {"--data 'gsm8k-test'", "gsm8k-train", "--allow-test-data"});
  expect_error({"train", "--adapter", "lora", "--manifold", "euclidean", "--data", "mawps-train", "--val-data",
                "gsm8k-test", "--steps", "1", "--out", (dir / "t2").string()},
               {"--val-data 'gsm8k-test'", "mawps-valid", "--allow-test-data"});
  CHECK_FALSE(fs::exists(dir / "t1" / "settings.json"));
  CHECK_FALSE(fs::exists(dir / "t2" / "settings.json"));
  fs::remove_all(dir);
}
#endif
