// The sweep harness (trainer/sweep/): grid, aggregation with known answers, a tiny resumable grid.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "support.hpp"
#include "sweep/aggregate.hpp"
#include "sweep/grid.hpp"
#include "sweep/runner.hpp"

namespace fs = std::filesystem;
using namespace hyplora::sweep;
using hyplora::test::eps_tol;

namespace {

/// A synthetic finished cell: `correct` of 100 test problems (split over depths 1..2 as given),
/// validation accuracy val_correct / 100.
CellResult synthetic_cell(const std::string& variant, double lr, std::uint64_t seed, std::size_t test_d1, std::size_t test_d2,
                          std::size_t val_correct, double best_val_loss) {
  CellSpec spec{variant, false, {}, lr, seed};
  CellResult r;
  r.id = spec.id();
  r.arm = spec.arm();
  r.variant = variant;
  r.lr = lr;
  r.seed = seed;
  r.steps = 10;
  r.batch = 4;
  r.best_val_loss = best_val_loss;
  r.final_K = 1;
  r.val_curve = {{0, 2.0}, {10, best_val_loss}};
  r.test.by_depth[1] = {50, test_d1};
  r.test.by_depth[2] = {50, test_d2};
  r.test.overall = {100, test_d1 + test_d2};
  r.validation.overall = {100, val_correct};
  return r;
}

}  // namespace

TEST_CASE("sweep grid: cells, ids, order, curvature restriction and bad input", "[sweep]") {
  SweepGrid g;
  g.variants = {"lora", "hyplora_lorentz", "hyplora_poincare"};
  g.curvatures = {CurvatureSetting{1.0, false, {}}, CurvatureSetting{1.0, true, {"hyplora_lorentz"}}};
  g.lrs = {1e-3, 1e-2};
  g.seeds = {0, 1, 2};
  g.validate();
  const auto cells = expand_cells(g);
  // base + seeds x lrs x (lora + lorentz K1 + lorentz K1-learned + poincare K1)
  REQUIRE(cells.size() == 1 + 3 * 2 * 4);
  CHECK(cells.front().variant == "base");
  std::set<std::string> ids;
  for (const auto& c : cells) ids.insert(c.id());
  CHECK(ids.size() == cells.size());
  CHECK(ids.count("hyplora_lorentz-K1-learned-lr0.01-s2") == 1);
  CHECK(ids.count("hyplora_poincare-K1-learned-lr0.01-s2") == 0);
  // seed-major: every cell of seed 0 comes before any cell of seed 1
  std::size_t last_seed0 = 0, first_seed1 = cells.size();
  for (std::size_t i = 1; i < cells.size(); ++i) {
    if (cells[i].seed == 0) last_seed0 = i;
    if (cells[i].seed == 1) first_seed1 = std::min(first_seed1, i);
  }
  CHECK(last_seed0 < first_seed1);
  // settings of a cell: the variant's flags, the curvature, and the shared budget
  const auto s = cell_settings(g, CellSpec{"hyplora_lorentz", true, {0.5, true, {}}, 1e-2, 2}, "x");
  CHECK(s.adapter == "hyplora");
  CHECK(s.manifold == "lorentz");
  CHECK(s.curvature == 0.5);
  CHECK(s.learn_curvature);
  CHECK(s.lr == 1e-2);
  CHECK(s.seed == 2);
  CHECK(s.steps == g.train.steps);
  CHECK(cell_settings(g, CellSpec{"lora_scaled", false, {}, 1e-3, 0}, "x").variant == "scaled");
  CHECK(cell_settings(g, CellSpec{"paper", false, {}, 1e-3, 0}, "x").variant == "paper");
  CHECK(cell_settings(g, CellSpec{"naive", false, {}, 1e-3, 0}, "x").variant == "naive");

  // JSON round trip and errors that name the problem
  const SweepGrid back = grid_from_json(to_json(g));
  CHECK(expand_cells(back).size() == cells.size());
  CHECK_THROWS_WITH(grid_from_json({{"variant", {"lora"}}}), Catch::Contains("unknown key 'variant'"));
  CHECK_THROWS_WITH(grid_from_json({{"variants", {"lorax"}}}), Catch::Contains("unknown variant 'lorax'"));
  CHECK_THROWS_WITH(grid_from_json({{"lrs", {0.0}}}), Catch::Contains("learning rates"));
  CHECK_THROWS_WITH(grid_from_json({{"train", {{"stepz", 3}}}}), Catch::Contains("stepz"));
  // train keys that every cell sets itself were overridden silently (lr 0.5 trained at the "lrs")
  const std::vector<std::pair<nlohmann::json, std::string>> per_cell{
      {{{"lr", 0.5}}, "train.lr is set for each cell by the \"lrs\" axis"},
      {{{"adapter", "hyplora"}}, "train.adapter is set for each cell by the \"variants\" axis"},
      {{{"out", "runs/x"}}, "train.out is set for each cell by the sweep"},
      {{{"seed", 3}}, "train.seed is set for each cell by the \"seeds\" axis"},
      {{{"curvature", 2.0}}, "train.curvature is set for each cell by the \"curvatures\" axis"},
      {{{"threads", 4}}, "train.threads is set for each cell by sweep --threads"},
      {{{"depth-max", 3}}, "train.depth-max is set for each cell by \"task\": depth_max"}};
  for (const auto& [train_json, message] : per_cell) {
    INFO(train_json.dump());
    CHECK_THROWS_WITH(grid_from_json({{"train", train_json}}), Catch::Contains(message));
  }
  CHECK(grid_from_json({{"train", {{"steps", 7}, {"rank", 2}}}}).train.steps == 7);  // shared settings still apply
  CHECK_THROWS_WITH(grid_from_json({{"seeds", {1, 1}}}), Catch::Contains("seed"));
  CHECK_THROWS_WITH(parse_curvature("-1"), Catch::Contains("positive"));
  CHECK_THROWS_WITH(parse_curvature("2:learnt"), Catch::Contains("2:learnt"));
  // real data as the task, and further test sets
  SweepGrid real = grid_from_json({{"task", {{"train_data", "mawps-train"}, {"validation_data", "mawps-valid"},
                                             {"test_data", "mawps-test"}, {"train", 100}}},
                                   {"eval_data", {"gsm8k-test", "la-svamp"}},
                                   {"eval_limit", 7}});
  CHECK(real.task.real());
  CHECK(real.task.train_data == std::vector<std::string>{"mawps-train"});
  CHECK(real.eval_limit == 7);
  const auto rs = cell_settings(real, CellSpec{"lora", false, {}, 1e-3, 0}, "x");
  CHECK_FALSE(rs.builtin);
  CHECK(rs.data == std::vector<std::string>{"mawps-train"});
  CHECK(rs.val_data == "mawps-valid");
  const SweepGrid real_back = grid_from_json(to_json(real));
  CHECK(real_back.task.test_data == "mawps-test");
  CHECK(real_back.eval_data == real.eval_data);
  // the fingerprint changes with the further test sets (a cell recorded without them cannot report them)
  SweepGrid no_extra = real;
  no_extra.eval_data.clear();
  CHECK(cell_fingerprint(real, CellSpec{"lora", false, {}, 1e-3, 0}) !=
        cell_fingerprint(no_extra, CellSpec{"lora", false, {}, 1e-3, 0}));
  // a built-in grid keeps the form it had before these keys existed
  CHECK_FALSE(to_json(g)["task"].contains("train_data"));
  CHECK_FALSE(to_json(g).contains("eval_data"));
  CHECK_THROWS_WITH(grid_from_json({{"task", {{"train_data", {"mawps-train"}}}}}), Catch::Contains("validation_data"));
  CHECK_THROWS_WITH(grid_from_json({{"task", {{"test_data", "mawps-test"}}}}), Catch::Contains("need task.train_data"));
  CHECK_THROWS_WITH(grid_from_json({{"eval_data", {"la-svamp", "la-svamp"}}}), Catch::Contains("listed twice"));
  // learning rates that print alike in the cell ids (they shared an id, and a cell file)
  CHECK_THROWS_WITH(grid_from_json({{"lrs", {0.001, 0.0010000001}}}), Catch::Contains("6 digits of the cell ids"));
  CHECK_THROWS_WITH(grid_from_json({{"eval_limit", 0}}), Catch::Contains("eval_limit"));
  CHECK_THROWS_WITH(grid_from_json({{"task", {{"train_dat", "x"}}}}), Catch::Contains("unknown task key 'train_dat'"));

  CHECK(parse_curvature("2:learned").learned);
  CHECK(parse_curvature("0.5").K == 0.5);
  CHECK(parse_curvature("learned").label() == "K1-learned");
}

TEST_CASE("sweep grid numbers are range-checked, naming the key; a cell record's tallies are checked, naming the file", "[sweep]") {
  // nlohmann's get<T> cast these without a check: 4294967297 became 1, -1 wrapped, 1.5 and 3.7 were truncated
  const std::vector<std::pair<nlohmann::json, std::string>> bad{
      {{{"max_new_tokens", 4294967297LL}}, "'max_new_tokens' = 4294967297"},
      {{{"max_new_tokens", 3.7}}, "'max_new_tokens' = 3.7"},
      {{{"seeds", {-1}}}, "'seeds' = -1"},
      {{{"seeds", {1.5}}}, "'seeds' = 1.5"},
      {{{"seeds", {"1"}}}, "'seeds' must be an integer"},
      {{{"task", {{"seed", -1}}}}, "'task.seed' = -1"},
      {{{"task", {{"depth_max", 5000}}}}, "depth_max <= 100"},
      {{{"task", {{"train", 1e30}}}}, "'task.train' = 1e+30"},
      {{{"eval_limit", -2.5}}, "'eval_limit' = -2.5"}};
  for (const auto& [j, message] : bad) {
    INFO(j.dump());
    CHECK_THROWS_WITH(grid_from_json(j), Catch::Contains(message));
  }
  CHECK(grid_from_json({{"seeds", {3, 4.0}}, {"max_new_tokens", 12}}).seeds == std::vector<std::uint64_t>{3, 4});
  const hyplora::test::TempDir tmp("hyplora_test_sweep_checks");
  const fs::path grid_file = tmp.path / "grid.json";
  std::ofstream(grid_file) << R"({"max_new_tokens": 4294967297})";
  CHECK_THROWS_WITH(load_grid(grid_file.string()), Catch::Contains("grid.json") && Catch::Contains("max_new_tokens"));
  std::ofstream(grid_file) << R"({"train": {"steps": 3, "lr": 0.5}})";
  CHECK_THROWS_WITH(load_grid(grid_file.string()), Catch::StartsWith(grid_file.string() + ": ") && Catch::Contains("train.lr"));

  // cell records read by --aggregate-only: correct 50 of total 6 was aggregated as 833%
  ResultsStore store(tmp.path);
  const CellResult good = synthetic_cell("lora", 0.01, 0, 40, 30, 60, 0.5);
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = to_json(good);
    edit(j);
    std::ofstream(store.cell_path(good.id)) << j.dump();
  };
  with([](nlohmann::json&) {});
  CHECK(store.load(good.id)->test.overall.correct == 70);
  with([](nlohmann::json& j) {  // null: no loss (a diverged cell's)
    j["best_val_loss"] = nullptr;
    j["diverged"] = true;
  });
  CHECK(std::isnan(store.load(good.id)->best_val_loss));
  with([](nlohmann::json& j) { j["best_val_loss"] = nullptr; });  // ... but not a trained cell's
  CHECK_THROWS_WITH(store.load(good.id), Catch::Contains("'best_val_loss' is null in a cell that trained"));
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> bad_cells{
      {[](nlohmann::json& j) { j["test"]["correct"] = 50; j["test"]["total"] = 6; }, "exceeds 'total'"},
      {[](nlohmann::json& j) { j["test"]["correct"] = -5; }, "'correct' = -5"},
      {[](nlohmann::json& j) { j["validation"]["total"] = -1; }, "'total' = -1"},
      {[](nlohmann::json& j) { j["test"]["by_depth"]["1"]["correct"] = 51; }, "exceeds 'total'"},
      {[](nlohmann::json& j) { j["test"]["correct"] = 1.5; }, "'correct' = 1.5"},
      {[](nlohmann::json& j) { j["train_seconds"] = -3.0; }, "train_seconds"},
      // accepted before: a depth -3 became a table column, "abc" was reported as "stoi", a depth
      // holding 100 of a set's 6 problems, an lr not in the grid aggregated, a loss "x" read as none
      {[](nlohmann::json& j) { j["test"]["by_depth"]["-3"] = {{"total", 1}, {"correct", 0}}; }, "'by_depth' key '-3' is not a depth in [1, 100]"},
      {[](nlohmann::json& j) { j["test"]["by_depth"]["abc"] = {{"total", 1}, {"correct", 0}}; }, "'by_depth' key 'abc'"},
      {[](nlohmann::json& j) { j["test"]["by_depth"]["99999999999"] = {{"total", 1}, {"correct", 0}}; }, "'by_depth' key '99999999999'"},
      {[](nlohmann::json& j) { j["test"]["by_depth"]["1"]["total"] = 100; }, "'by_depth' holds 150 problems"},
      {[](nlohmann::json& j) { j["lr"] = 0.5; }, "'lr' 0.5 and 'seed' 0 do not make the cell id 'lora-lr0.01-s0'"},
      {[](nlohmann::json& j) { j["seed"] = 3; }, "do not make the cell id"},
      {[](nlohmann::json& j) { j["arm"] = "lora_scaled"; }, "do not make the cell id"},
      {[](nlohmann::json& j) { j["best_val_loss"] = "x"; }, "'best_val_loss' = \"x\" is not a number or null"},
      {[](nlohmann::json& j) { j["val_curve"][0][1] = true; }, "'val_curve'"}};
  for (const auto& [edit, message] : bad_cells) {
    with(edit);
    INFO(message);
    CHECK_THROWS_WITH(store.load(good.id), Catch::Contains(store.cell_path(good.id).string()) && Catch::Contains(message));
    CHECK_THROWS_WITH(store.load_all(), Catch::Contains(good.id + ".json"));
  }
}

TEST_CASE("a sweep grid or cell record that is a folder or a FIFO is refused, naming it (no hang, no libstdc++ jargon)", "[sweep]") {
  const hyplora::test::TempDir tmp("hyplora_test_sweep_files");
  // a folder: "basic_filebuf::underflow error reading the file: Is a directory", the grid not named
  const fs::path folder = tmp.path / "grid_dir";
  fs::create_directory(folder);
  CHECK_THROWS_WITH(load_grid(folder.string()), Catch::Contains(folder.string()) && Catch::Contains("not a folder") &&
                                                    !Catch::Contains("basic_filebuf"));
  // a FIFO blocked the read forever: refused before it is opened
  const fs::path fifo = tmp.path / "grid.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(load_grid(fifo.string()), Catch::Contains(fifo.string()) && Catch::Contains("FIFO"));
  CHECK_THROWS_WITH(load_grid((tmp.path / "none.json").string()), Catch::Contains("none.json") && Catch::Contains("no such file"));
  // a cell record that is a folder (`mkdir cells/<id>.json`)
  ResultsStore store(tmp.path);
  const CellResult good = synthetic_cell("lora", 0.01, 0, 40, 30, 60, 0.5);
  fs::create_directory(store.cell_path(good.id));
  CHECK_THROWS_WITH(store.load(good.id), Catch::Contains(store.cell_path(good.id).string()) && Catch::Contains("not a folder") &&
                                             !Catch::Contains("basic_filebuf"));
}

TEST_CASE("sweep: the token budget counts every drawn example once per epoch", "[sweep]") {
  const std::vector<int> per_example{3, 5, 7, 11};
  // 2 steps x 4 examples = exactly two epochs: every example twice, whatever the order
  CHECK(count_target_tokens(per_example, 2, 4, 0) == 2 * (3 + 5 + 7 + 11));
  CHECK(count_target_tokens(per_example, 2, 4, 99) == 2 * (3 + 5 + 7 + 11));
  CHECK(count_target_tokens(per_example, 0, 4, 0) == 0);
}

TEST_CASE("sweep aggregation on synthetic cells with known answers", "[sweep]") {
  std::vector<CellResult> cells;
  // arm "lora": at lr 0.01 validation is better (60 vs 40) but test is worse: the choice must use validation.
  // Test accuracy at lr 0.01 over seeds 0..4: 0.5, 0.6, 0.7, 0.8, 0.9 (depth 1 = 40 of 50 each seed).
  const std::size_t d2[5] = {10, 20, 30, 40, 50};
  for (std::uint64_t s = 0; s < 5; ++s) {
    cells.push_back(synthetic_cell("lora", 0.01, s, 40, d2[s], 60, 0.5));
    cells.push_back(synthetic_cell("lora", 0.001, s, 50, 50, 40, 0.4));  // test 100%: never to be chosen
    // "lora_scaled" is 10 points below lora at every seed (depth 2 lower by 10)
    cells.push_back(synthetic_cell("lora_scaled", 0.01, s, 40, d2[s] - 10, 60, 0.6));
    // "naive" equals lora exactly
    cells.push_back(synthetic_cell("naive", 0.01, s, 40, d2[s], 60, 0.5));
  }
  // "paper" has only seeds 0..2
  for (std::uint64_t s = 0; s < 3; ++s) cells.push_back(synthetic_cell("paper", 0.01, s, 40, d2[s], 60, 0.5));
  CellResult base = synthetic_cell("lora", 0, 0, 1, 2, 3, 0);
  base.id = base.arm = base.variant = "base";
  cells.push_back(base);

  const auto s = aggregate(cells, {"lora", "lora_scaled", "naive", "paper"}, 2000, 7);
  REQUIRE(s.arms.size() == 4);
  REQUIRE(s.base);
  CHECK(s.depths == std::vector<int>{1, 2});
  const auto& lora = s.arms[0];
  CHECK(lora.arm == "lora");
  CHECK(lora.lr == 0.01);  // chosen on validation, although lr 0.001 has the better test accuracy
  for (const auto& r : s.lr_table)
    if (r.arm == "lora") CHECK(r.chosen == (r.lr == 0.01));
  REQUIRE(lora.test.n == 5);
  const double eps = std::numeric_limits<double>::epsilon();
  CHECK(std::abs(lora.test.mean - 0.7) <= 8 * eps);
  CHECK(std::abs(lora.test.std - std::sqrt(0.025)) <= 8 * eps);  // sum of squares 0.1 over n-1 = 4
  // 95% CI: t_{0.975, 4} = 2.7764451051977987 (tables) times std / sqrt 5; the quantile comes from a
  // bisection, so the tolerance is the bisection's, not epsilon
  const double half = 2.7764451051977987 * std::sqrt(0.025) / std::sqrt(5.0);
  CHECK(std::abs(lora.test.ci_low - (0.7 - half)) <= 1e-9);
  CHECK(std::abs(lora.test.ci_high - (0.7 + half)) <= 1e-9);
  // by depth: depth 1 is 0.8 at every seed (std 0), depth 2 is 0.2..1.0
  CHECK(std::abs(lora.test_by_depth.at(1).mean - 0.8) <= 8 * eps);
  CHECK(lora.test_by_depth.at(1).std == 0.0);
  CHECK(std::abs(lora.test_by_depth.at(2).mean - 0.6) <= 8 * eps);
  CHECK(std::abs(lora.validation.mean - 0.6) <= 8 * eps);
  REQUIRE(lora.val_curve.size() == 2);
  CHECK(lora.val_curve[1].second == 0.5);

  std::map<std::pair<std::string, std::string>, PairRow> pairs;
  for (const auto& p : s.pairs) pairs[{p.a, p.b}] = p;
  REQUIRE(pairs.size() == 6);
  // a known difference: +10 points at every seed -> wins 5/5, sign test and permutation test 2/32
  const auto& ls = pairs.at({"lora", "lora_scaled"}).cmp;
  CHECK(ls.n == 5);
  CHECK(ls.wins == 5);
  CHECK(ls.losses == 0);
  CHECK(std::abs(ls.mean_difference - 0.1) <= 8 * eps);
  CHECK(std::abs(ls.sign_test_p - 2.0 / 32.0) <= 8 * eps);
  CHECK(std::abs(ls.permutation_p - 2.0 / 32.0) <= 8 * eps);
  // identical arms: all ties, p = 1 for both tests
  const auto& ln = pairs.at({"lora", "naive"}).cmp;
  CHECK(ln.ties == 5);
  CHECK(ln.mean_difference == 0.0);
  CHECK(ln.sign_test_p == 1.0);
  CHECK(ln.permutation_p == 1.0);
  // Holm over the table's 6 pairs: never below the raw p, and the smallest raw p times 6 (capped)
  double smallest = 1;
  for (const auto& p : s.pairs) {
    CHECK(p.holm_p >= p.cmp.permutation_p);
    smallest = std::min(smallest, p.cmp.permutation_p);
  }
  double smallest_holm = 1;
  for (const auto& p : s.pairs) smallest_holm = std::min(smallest_holm, p.holm_p);
  CHECK(std::abs(smallest_holm - std::min(1.0, 6 * smallest)) <= 8 * eps);
  // only the common seeds are paired
  CHECK(pairs.at({"lora", "paper"}).cmp.n == 3);
  // the validation-loss comparison: lora_scaled 0.1 higher at every seed
  CHECK(std::abs(pairs.at({"lora", "lora_scaled"}).loss_cmp.mean_difference + 0.1) <= 8 * eps);

  const std::string md = to_markdown(s);
  CHECK(md.find("| lora | 0.01 | 5 | 60.0 | 70.0 |") != std::string::npos);
  CHECK(md.find("| base (no adapter) |") != std::string::npos);

  // further test sets: per-set mean over seeds and the pooled accuracy (correct / total over the sets)
  {
    std::vector<CellResult> extra;
    for (std::uint64_t seed = 0; seed < 3; ++seed) {
      auto c = synthetic_cell("lora", 1e-3, seed, 20, 20, 50, 0.5);
      hyplora::eval::DatasetAccuracy a, b;
      a.name = "set-a";
      a.overall = {10, std::size_t(2 + seed)};  // 0.2, 0.3, 0.4
      b.name = "set-b";
      b.overall = {30, 3};                      // 0.1
      c.extra_tests = {a, b};
      extra.push_back(c);
    }
    const auto es = aggregate(extra);
    REQUIRE(es.extra_sets == std::vector<std::string>{"set-a", "set-b"});
    REQUIRE(es.arms.size() == 1);
    const double tol = eps_tol<double>(8);  // means and stds of three values of order 0.1: a few roundings
    CHECK(std::abs(es.arms[0].extra_test.at("set-a").mean - 0.3) < tol);
    CHECK(std::abs(es.arms[0].extra_test.at("set-a").std - 0.1) < tol);
    CHECK(std::abs(es.arms[0].extra_test.at("set-b").mean - 0.1) < tol);
    // pooled per seed: (2+s+3)/40 -> mean (5+6+7)/3/40 = 0.15
    CHECK(std::abs(es.arms[0].extra_weighted.mean - 0.15) < tol);
    CHECK(to_markdown(es).find("| set-a | set-b | pooled |") != std::string::npos);
    CHECK(es.set_limits.empty());  // records without a limit (older builds): no limit line
    // cut answers: summed over the seeds at the chosen lr, test set and further sets apart
    for (std::size_t k = 0; k < extra.size(); ++k) {
      extra[k].test.name = "test";
      extra[k].test.limit = {59, "auto", 43};
      extra[k].test.generations_at_limit = k + 1;  // 1 + 2 + 3
      extra[k].extra_tests[1].limit = {40, "fixed", -1};
      extra[k].extra_tests[1].generations_at_context = 2;
      extra[k].extra_tests[1].prompts_too_long = 1;
      extra[k].test.no_answer = k;  // 0 + 1 + 2
      extra[k].extra_tests[1].generations_at_eos = 4;
    }
    auto other_lr = synthetic_cell("lora", 1e-2, 0, 0, 0, 0, 0.9);  // validation 0 %: not chosen, not counted
    other_lr.test.generations_at_limit = 100;
    extra.push_back(other_lr);
    const auto cs = aggregate(extra);
    REQUIRE(cs.arms.size() == 1);
    const auto& tc = cs.arms[0].test_cuts;
    CHECK((tc.answers == 300 && tc.at_limit == 6 && tc.at_context == 0 && tc.prompts_too_long == 0));
    CHECK((tc.at_eos == 0 && tc.no_answer == 3));
    const auto& xc = cs.arms[0].extra_cuts;
    CHECK((xc.answers == 120 && xc.at_limit == 0 && xc.at_context == 6 && xc.prompts_too_long == 3));
    CHECK((xc.at_eos == 12 && xc.no_answer == 0));
    REQUIRE(cs.set_limits.size() == 2);
    CHECK(cs.set_limits[0] == std::pair<std::string, std::string>{"test", "59 (auto: longest reference response 43 + 16)"});
    CHECK(cs.set_limits[1] == std::pair<std::string, std::string>{"set-b", "40 (fixed)"});
    const std::string cmd = to_markdown(cs);
    CHECK(cmd.find("new-token limit: test 59 (auto: longest reference response 43 + 16); set-b 40 (fixed).") != std::string::npos);
    CHECK(cmd.find("| arm | sets | answers | cut at the limit | cut at the context | prompts too long | ended by EOS | "
                   "no answer |\n|---|---|---|---|---|---|---|---|\n") != std::string::npos);
    CHECK(cmd.find("| lora | test | 300 | 6 | 0 | 0 | 0 | 3 |") != std::string::npos);
    CHECK(cmd.find("| lora | further | 120 | 0 | 6 | 3 | 12 | 0 |") != std::string::npos);
    CHECK(to_json(cs)["arms"][0]["test_cuts"]["at_limit"] == 6);
    CHECK(to_json(cs)["arms"][0]["extra_cuts"]["at_eos"] == 12);
    CHECK(to_json(cs)["arms"][0]["test_cuts"]["no_answer"] == 3);
    CHECK(cmd.find("| base (no adapter) |") == std::string::npos);  // no base cell: no base row
    // the base row is counted as an arm's seeds are
    auto base = extra[0];
    base.id = base.arm = base.variant = "base";
    base.test.generations_at_limit = 7;
    extra.push_back(base);
    const auto bs = aggregate(extra);
    CHECK((bs.base_test_cuts.answers == 100 && bs.base_test_cuts.at_limit == 7));
    CHECK((bs.base_extra_cuts.answers == 40 && bs.base_extra_cuts.at_context == 2 && bs.base_extra_cuts.prompts_too_long == 1));
    const std::string bmd = to_markdown(bs);
    CHECK(bmd.find("| base (no adapter) | test | 100 | 7 | 0 | 0 | 0 | 0 |") != std::string::npos);
    CHECK(bmd.find("| base (no adapter) | further | 40 | 0 | 2 | 1 | 4 | 0 |") != std::string::npos);
    CHECK(to_json(bs)["base_extra_cuts"]["prompts_too_long"] == 1);
    CHECK(bs.arms.at(0).test_cuts.at_limit == 6);  // the base cell is not an arm's
    // a record round trip keeps the further sets
    const auto back = cell_from_json(to_json(extra[1]));
    REQUIRE(back.extra_tests.size() == 2);
    CHECK(back.extra_tests[0].name == "set-a");
    CHECK(back.extra_tests[0].overall.correct == 3);
  }

  // a duplicated cell is an error, not a silent double count
  cells.push_back(cells.front());
  CHECK_THROWS_WITH(aggregate(cells), Catch::Contains("appears twice"));
}

TEST_CASE("a tiny sweep on stories260K runs end to end and resumes without re-running cells", "[sweep][slow]") {
  const auto model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  const hyplora::test::TempDir tmp("hyplora_test_sweep");
  const fs::path dir = tmp.path;
  SweepGrid g;
  g.variants = {"lora", "hyplora_lorentz"};
  g.seeds = {0, 1};
  g.lrs = {3e-3};
  g.train.model = model.string();
  g.train.steps = 3;
  g.train.batch = 4;
  g.train.warmup = 1;
  g.train.eval_every = 3;
  g.task.train = 64;
  g.task.validation = 6;
  g.task.test = 6;
  g.max_new_tokens = 12;
  g.base = true;
  identify_model(g);
  RunOptions opt;
  opt.out = dir;
  opt.threads = 1;
  opt.quiet = true;

  // first a partial run (max_cells), then the rest: 5 cells = base + 2 variants x 2 seeds
  opt.max_cells = 2;
  auto st = run_sweep(g, opt);
  CHECK(st.cells_total == 5);
  CHECK(st.cells_run == 2);
  CHECK(st.cells_left == 3);
  opt.max_cells = -1;
  st = run_sweep(g, opt);
  CHECK(st.cells_reused == 2);
  CHECK(st.cells_run == 3);

  std::map<std::string, fs::file_time_type> stamps;
  for (const auto& c : expand_cells(g)) {
    const fs::path p = dir / "cells" / (c.id() + ".json");
    REQUIRE(fs::exists(p));
    stamps[c.id()] = fs::last_write_time(p);
  }
  // the second invocation runs nothing and touches no cell file
  st = run_sweep(g, opt);
  CHECK(st.cells_run == 0);
  CHECK(st.cells_reused == 5);
  for (const auto& [id, t] : stamps) CHECK(fs::last_write_time(dir / "cells" / (id + ".json")) == t);

  // equal budgets: the same steps and response tokens for both variants at a seed
  ResultsStore store(dir);
  const auto a = *store.load("lora-lr0.003-s1");
  const auto b = *store.load("hyplora_lorentz-K1-lr0.003-s1");
  CHECK(a.steps == 3);
  CHECK(b.steps == 3);
  CHECK(a.target_tokens > 0);
  CHECK(a.target_tokens == b.target_tokens);
  CHECK(a.test.overall.total == 6);
  CHECK(std::isfinite(a.best_val_loss));

  const auto w = write_summary(g, dir);
  CHECK(fs::exists(dir / "summary.md"));
  CHECK(fs::exists(dir / "summary.json"));
  REQUIRE(w.summary.arms.size() == 2);
  CHECK(w.summary.arms[0].test.n == 2);
  CHECK(w.summary.pairs.size() == 1);
  CHECK(w.markdown.find("hyplora_lorentz-K1") != std::string::npos);
  // the built-in task has depths: the by-depth plot is drawn (its script is kept beside it) and named
  CHECK(fs::exists(dir / "accuracy_by_depth.png.gp"));
  CHECK(w.markdown.find("`accuracy_by_depth.png`") != std::string::npos);

  // a grid with another budget must not silently reuse these cells
  SweepGrid changed = g;
  changed.train.steps = 4;
  CHECK_THROWS_WITH(run_sweep(changed, opt), Catch::Contains("recorded with other settings"));
  // nor a grid over another model with the same settings (the fingerprint held no model): a copy
  // of the model with one weight changed, under another path
  std::string bytes = hyplora::test::slurp(model);
  bytes[7 * 4 + 100] ^= 0x01;  // a low mantissa bit of a token-embedding weight
  const fs::path other = tmp.path / "other_model.bin";
  hyplora::test::spit(other, bytes);
  fs::copy_file(fs::path(model).parent_path() / "tok512.bin", tmp.path / "tok512.bin");
  SweepGrid other_model = g;
  other_model.train.model = other.string();
  identify_model(other_model);
  CHECK(other_model.model_sha256 != g.model_sha256);
  CHECK_THROWS_WITH(run_sweep(other_model, opt), Catch::Contains("recorded with other settings"));
  // claims: a cell claimed by a live process (here: this one) is left to it; a claim of a process
  // that is gone is taken over, and removed once the cell is recorded
  {
    SweepGrid one = g;
    one.variants = {"lora"};
    one.seeds = {0};
    one.base = false;
    RunOptions o2 = opt;
    o2.out = tmp.path / "claims";
    const std::string id = expand_cells(one).front().id();
    fs::create_directories(o2.out / "cells");
    const fs::path claim = o2.out / "cells" / (id + ".json.claim");
    hyplora::test::spit(claim, std::to_string(long(::getpid())) + "\n");
    auto st2 = run_sweep(one, o2);
    CHECK(st2.cells_run == 0);
    CHECK(st2.cells_left == 1);
    hyplora::test::spit(claim, "999999999\n");  // beyond any pid_max: no such process
    st2 = run_sweep(one, o2);
    CHECK(st2.cells_run == 1);
    CHECK(st2.cells_left == 0);
    CHECK_FALSE(fs::exists(claim));
  }
  // the base cell is refused under another prompt template
  SweepGrid other_template = g;
  other_template.train.prompt_template = "alpaca";
  CHECK(cell_fingerprint(other_template, expand_cells(g).front()) != cell_fingerprint(g, expand_cells(g).front()));
}

TEST_CASE("a tiny sweep trains on a real data set and reports further test sets", "[sweep][slow]") {
  const auto model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  hyplora::test::require_shared("data/mawps/trainset.json");
  const hyplora::test::TempDir tmp("hyplora_test_sweep_real");
  const fs::path dir = tmp.path;
  SweepGrid g;
  g.variants = {"lora", "hyplora_lorentz"};
  g.seeds = {0};
  g.lrs = {3e-3};
  g.train.model = model.string();
  g.train.steps = 2;
  g.train.batch = 2;
  g.train.warmup = 1;
  g.train.eval_every = 2;
  g.task.train_data = {"mawps-train"};
  g.task.validation_data = "mawps-valid";
  g.task.test_data = "mawps-test";
  g.task.train = 40;
  g.task.validation = 3;
  g.task.test = 4;
  g.eval_data = {"la-svamp"};
  g.eval_limit = 3;
  g.max_new_tokens = 8;
  g.base = true;
  RunOptions opt;
  opt.out = dir;
  opt.threads = 1;
  opt.quiet = true;
  const auto st = run_sweep(g, opt);
  CHECK(st.cells_run == 3);
  ResultsStore store(dir);
  for (const char* id : {"base", "lora-lr0.003-s0", "hyplora_lorentz-K1-lr0.003-s0"}) {
    const auto r = store.load(id);
    REQUIRE(r);
    CHECK(r->test.overall.total == 4);        // the first 4 MAWPS test problems
    CHECK(r->validation.overall.total == 3);
    CHECK(r->test.by_depth.empty());          // real problems carry no depth
    REQUIRE(r->extra_tests.size() == 1);
    CHECK(r->extra_tests[0].name == "la-svamp");
    CHECK(r->extra_tests[0].overall.total == 3);
  }
  const auto trained = *store.load("lora-lr0.003-s0");
  CHECK(trained.steps == 2);
  CHECK(trained.target_tokens > 0);
  CHECK(std::isfinite(trained.best_val_loss));
  const auto w = write_summary(g, dir);
  CHECK(w.summary.extra_sets == std::vector<std::string>{"la-svamp"});
  CHECK(w.markdown.find("la-svamp") != std::string::npos);
  CHECK(fs::exists(dir / "accuracy_by_set.png.gp"));
  // no depths in real data: no by-depth plot (gnuplot refused its empty x range) and none named
  CHECK_FALSE(fs::exists(dir / "accuracy_by_depth.png.gp"));
  CHECK(w.markdown.find("accuracy_by_depth") == std::string::npos);
  CHECK(w.markdown.find("`val_loss.png`, `accuracy_by_set.png`") != std::string::npos);
}

TEST_CASE("sweep aggregation: diverged cells are the worst validation loss, listed, and an all-diverged arm is reported",
          "[sweep]") {
  auto diverged_cell = [](const std::string& variant, double lr, std::uint64_t seed) {
    CellResult c = synthetic_cell(variant, lr, seed, 0, 0, 0, std::nan(""));
    c.test = {};
    c.validation = {};
    c.val_curve.clear();
    c.diverged = true;
    c.diverged_step = 1;
    c.diverged_reason = "parameters diverged after step 1 (NaN or infinite); the last good adapter and checkpoint are kept";
    return c;
  };
  std::vector<CellResult> cells;
  for (std::uint64_t s = 0; s < 3; ++s) {
    // lora: lr 0.1 would win on validation accuracy, but one of its seeds diverged; lr 0.01 trained everywhere
    if (s == 2) cells.push_back(diverged_cell("lora", 0.1, s));
    else cells.push_back(synthetic_cell("lora", 0.1, s, 50, 50, 90, 0.1));
    cells.push_back(synthetic_cell("lora", 0.01, s, 40, 30, 60, 0.5));
    // naive: every lr diverged at every seed
    cells.push_back(diverged_cell("naive", 0.1, s));
    cells.push_back(diverged_cell("naive", 0.01, s));
  }
  const auto s = aggregate(cells, {"lora", "naive"}, 200, 1);
  REQUIRE(s.arms.size() == 2);
  CHECK(s.arms[0].arm == "lora");
  CHECK_FALSE(s.arms[0].diverged);
  CHECK(s.arms[0].lr == 0.01);
  CHECK(s.arms[0].test.n == 3);
  CHECK(s.arms[0].diverged_seeds == 0);
  CHECK(s.arms[1].arm == "naive");
  CHECK(s.arms[1].diverged);
  CHECK(s.arms[1].diverged_seeds == 6);
  CHECK(s.arms[1].seeds.empty());
  CHECK(s.pairs.empty());  // nothing to pair with an arm that never trained
  CHECK(s.diverged.size() == 7);
  for (const auto& r : s.lr_table) {
    if (r.arm == "lora" && r.lr == 0.1) {
      CHECK(r.diverged == 1);
      CHECK(r.seeds == 2);
      CHECK_FALSE(r.chosen);
    }
    if (r.arm == "naive") CHECK_FALSE(r.chosen);
  }
  const std::string md = to_markdown(s);
  CHECK(md.find("| naive | diverged at every lr |") != std::string::npos);
  CHECK(md.find("### Diverged cells (7") != std::string::npos);
  CHECK(md.find("| lora | 0.1 | 2 (+1 diverged) |") != std::string::npos);
  const auto j = to_json(s);
  CHECK(j["diverged_cells"].size() == 7);
  CHECK(j["arms"][1]["diverged"] == true);

  // when every lr of an arm has a diverged cell, the one with the fewest is chosen (never one that
  // only diverged), and the statistics use its trained seeds
  std::vector<CellResult> partial{diverged_cell("lora", 0.1, 0), diverged_cell("lora", 0.1, 1),
                                  synthetic_cell("lora", 0.1, 2, 50, 50, 99, 0.1),
                                  diverged_cell("lora", 0.01, 0), synthetic_cell("lora", 0.01, 1, 10, 10, 10, 0.9),
                                  synthetic_cell("lora", 0.01, 2, 10, 10, 10, 0.9), diverged_cell("lora", 0.001, 0)};
  const auto ps = aggregate(partial);
  REQUIRE(ps.arms.size() == 1);
  CHECK(ps.arms[0].lr == 0.01);
  CHECK(ps.arms[0].test.n == 2);
  CHECK(ps.arms[0].diverged_seeds == 1);

  // the record round trip keeps the divergence; a record written before the field existed loads as trained
  const CellResult d = diverged_cell("lora", 0.1, 4);
  const CellResult back = cell_from_json(to_json(d));
  CHECK(back.diverged);
  CHECK(back.diverged_step == 1);
  CHECK(back.diverged_reason == d.diverged_reason);
  nlohmann::json old = to_json(synthetic_cell("lora", 0.1, 4, 1, 1, 1, 0.3));
  old.erase("diverged");
  REQUIRE_FALSE(old.contains("diverged_reason"));
  const CellResult old_back = cell_from_json(old);
  CHECK_FALSE(old_back.diverged);
  CHECK(old_back.diverged_step == -1);
  // a trained cell without a best validation loss is refused when read (the aggregation threw
  // "compare_paired: non-finite value" for it, naming no cell); a diverged or base cell may lack one
  nlohmann::json no_loss = to_json(synthetic_cell("lora", 0.1, 5, 1, 1, 1, 0.3));
  no_loss["best_val_loss"] = nullptr;
  CHECK_THROWS_WITH(cell_from_json(no_loss), Catch::Contains("'best_val_loss' is null in a cell that trained and is not recorded as diverged"));
  no_loss["diverged"] = true;
  CHECK(cell_from_json(no_loss).diverged);
}

TEST_CASE("sweep lr choice: equal validation accuracy is a tie whatever the summation order", "[sweep]") {
  // 96 validation problems, 3 seeds: (0, 0, 5) and (0, 1, 4) correct are both 5/288, but their means
  // differ in the last bit; the tie goes to the lower validation loss (was: the first lr)
  const auto cell = [](double lr, std::uint64_t seed, std::size_t val_correct, double loss) {
    auto c = synthetic_cell("lora", lr, seed, 10, 10, 0, loss);
    c.validation.overall = {96, val_correct};
    return c;
  };
  const std::vector<std::size_t> first{0, 0, 5}, second{0, 1, 4};
  std::vector<CellResult> cells;
  for (std::uint64_t s = 0; s < 3; ++s) {
    cells.push_back(cell(0.001, s, first[s], 2.0));
    cells.push_back(cell(0.003, s, second[s], 1.0));
  }
  const double a = (0.0 + 0.0 + 5.0 / 96) / 3, b = (0.0 + 1.0 / 96 + 4.0 / 96) / 3;
  REQUIRE(a != b);  // the case the rule must survive
  auto lr_of = [](const SweepSummary& s) { return s.arms.at(0).lr; };
  CHECK(lr_of(aggregate(cells)) == 0.003);
  // equal accuracy and equal loss: the smaller lr
  for (auto& c : cells) c.best_val_loss = 1.0;
  CHECK(lr_of(aggregate(cells)) == 0.001);
  // a higher accuracy by one problem wins over any loss
  cells[0].validation.overall = {96, 1};  // lr 0.001: 6/288
  for (auto& c : cells) c.best_val_loss = c.lr == 0.001 ? 3.0 : 1.0;
  CHECK(lr_of(aggregate(cells)) == 0.001);
  // the lr with the most seeds first, whatever its accuracy
  cells.push_back(cell(0.01, 0, 90, 0.1));
  cells.push_back(cell(0.01, 1, 90, 0.1));
  CHECK(lr_of(aggregate(cells)) == 0.001);
}

TEST_CASE("a sweep cell that diverges is recorded as diverged, not retried, and the sweep goes on", "[sweep][slow]") {
  const auto model = hyplora::test::require_shared("models/stories260K/stories260K.bin");
  const hyplora::test::TempDir tmp("hyplora_test_sweep_diverged");
  const fs::path dir = tmp.path;
  SweepGrid g;
  g.variants = {"lora"};
  g.seeds = {1};
  g.lrs = {1e30, 0.01};  // 1e30: the parameters diverge at the first step
  g.train.model = model.string();
  g.train.steps = 2;
  g.train.batch = 2;
  g.task.train = 20;
  g.task.validation = 8;
  g.task.test = 6;
  g.max_new_tokens = 8;
  g.base = false;
  identify_model(g);
  RunOptions opt;
  opt.out = dir;
  opt.threads = 1;
  opt.quiet = true;

  RunStats st;
  REQUIRE_NOTHROW(st = run_sweep(g, opt));  // the old code threw "cell lora-lr1e+30-s1 stopped: ..."
  CHECK(st.cells_total == 2);
  CHECK(st.cells_run == 2);
  CHECK(st.cells_diverged == 1);
  CHECK(st.cells_left == 0);
  ResultsStore store(dir);
  const auto bad = store.load("lora-lr1e+30-s1");
  REQUIRE(bad);
  CHECK(bad->diverged);
  CHECK(bad->diverged_reason.find("diverged") != std::string::npos);
  CHECK(bad->diverged_step >= 1);
  CHECK(bad->test.overall.total == 0);  // not evaluated
  const auto good = store.load("lora-lr0.01-s1");
  REQUIRE(good);
  CHECK_FALSE(good->diverged);
  CHECK(good->steps == 2);
  CHECK(good->test.overall.total == 6);
  CHECK(std::isfinite(good->best_val_loss));

  // a rerun does not retry the diverged cell
  const auto stamp = fs::last_write_time(store.cell_path(bad->id));
  st = run_sweep(g, opt);
  CHECK(st.cells_run == 0);
  CHECK(st.cells_reused == 2);
  CHECK(fs::last_write_time(store.cell_path(bad->id)) == stamp);

  // the lr that trained is chosen; the summary shows the diverged cell
  const auto w = write_summary(g, dir);
  REQUIRE(w.summary.arms.size() == 1);
  CHECK(w.summary.arms[0].lr == 0.01);
  CHECK_FALSE(w.summary.arms[0].diverged);
  REQUIRE(w.summary.diverged.size() == 1);
  CHECK(w.summary.diverged[0].id == "lora-lr1e+30-s1");
  CHECK(w.markdown.find("1 of them diverged") != std::string::npos);
  CHECK(w.markdown.find("### Diverged cells") != std::string::npos);
  CHECK(w.markdown.find("| lora-lr1e+30-s1 |") != std::string::npos);
  CHECK(fs::exists(dir / "val_loss.png.gp"));
}
