// Data: loaders on the shared files, bad-file errors, prompt templates, the built-in task,
// answer extraction and accuracy reports.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include "data/answer_extraction.hpp"
#include "data/loaders.hpp"
#include "data/prompt_template.hpp"
#include "data/registry.hpp"
#include "data/repeats.hpp"
#include "data/rng.hpp"
#include "data/story_task.hpp"
#include "eval/metrics.hpp"
#include "support.hpp"

using namespace hyplora::data;
namespace fs = std::filesystem;

namespace {

std::string data_dir() { return (hyplora::test::shared_dir() / "data").string(); }

const Record& by_line(const LoadResult& r, std::size_t line) {
  for (const auto& rec : r.records)
    if (rec.line == line) return rec;
  FAIL("no record at line " << line);
  return r.records.front();
}

// A temporary data file, removed at scope exit.
struct TempFile {
  fs::path path;
  TempFile(const std::string& name, const std::string& content) {
    path = fs::temp_directory_path() / ("hyplora_test_data_" + std::to_string(::getpid()) + "_" + name);
    std::ofstream(path, std::ios::binary) << content;
  }
  ~TempFile() { fs::remove(path); }
};

// llama2.c run.c `encode` (dummy prefix, codepoint lookup with byte fallback, greedy best-score
// merges), enough to count tokens of the built-in task; checked against run.c's own output below.
struct MiniTokenizer {
  std::vector<std::string> vocab;
  std::vector<float> scores;
  std::unordered_map<std::string, int> ids;
  explicit MiniTokenizer(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::int32_t max_len = 0;
    in.read(reinterpret_cast<char*>(&max_len), 4);
    for (int i = 0; i < 512; ++i) {
      float score = 0;
      std::int32_t len = 0;
      in.read(reinterpret_cast<char*>(&score), 4);
      in.read(reinterpret_cast<char*>(&len), 4);
      std::string s(static_cast<std::size_t>(len), '\0');
      in.read(s.data(), len);
      REQUIRE(in.good());
      vocab.push_back(s);
      scores.push_back(score);
      ids.emplace(s, i);
    }
  }
  std::vector<int> encode(const std::string& text) const {
    std::vector<int> t{1};  // BOS
    if (text.empty()) return t;
    t.push_back(ids.at(" "));
    for (std::size_t i = 0; i < text.size();) {
      std::size_t n = 1;
      const auto c = static_cast<unsigned char>(text[i]);
      if ((c & 0xE0) == 0xC0) n = 2;
      else if ((c & 0xF0) == 0xE0) n = 3;
      else if ((c & 0xF8) == 0xF0) n = 4;
      const std::string cp = text.substr(i, n);
      if (auto it = ids.find(cp); it != ids.end()) t.push_back(it->second);
      else for (unsigned char b : cp) t.push_back(b + 3);
      i += n;
    }
    while (true) {
      float best = -1e10f;
      int best_id = -1;
      std::size_t best_i = 0;
      for (std::size_t i = 1; i + 1 < t.size(); ++i) {
        auto it = ids.find(vocab[t[i]] + vocab[t[i + 1]]);
        if (it != ids.end() && scores[it->second] > best) { best = scores[it->second]; best_id = it->second; best_i = i; }
      }
      if (best_id < 0) break;
      t[best_i] = best_id;
      t.erase(t.begin() + static_cast<long>(best_i) + 1);
    }
    return t;
  }
};

}  // namespace

TEST_CASE("every registered data set loads with its known count and no bad record", "[data][loaders]") {
  hyplora::test::require_shared("data/gsm8k/train.jsonl");
  for (const auto& info : dataset_registry()) {
    INFO(info.name);
    const LoadResult r = load_dataset(info.name, BadRecordPolicy::reject, data_dir());
    CHECK(r.records.size() == info.expected_count);
    CHECK(r.skipped == 0);
    for (const auto& rec : r.records) {
      REQUIRE(!rec.question.empty());
      REQUIRE(rec.answer_text.find('\n') == std::string::npos);  // one line: generation stops at "\n"
      REQUIRE(rec.line >= 1);
      if (rec.kind == AnswerKind::numeric) REQUIRE(std::isfinite(rec.answer));
      else REQUIRE((rec.choice >= 'A' && rec.choice <= 'E'));
    }
  }
  CHECK(find_dataset("gsm8k-test").expected_count == 1319);
  const std::string mawps_path = data_dir() + "/mawps/testset.json";
  CHECK(load_data_spec("mawps:" + mawps_path).records.size() == 238);
  CHECK(load_data_spec("mawps-test", BadRecordPolicy::reject, data_dir()).records.front().id.rfind("mawps-test/", 0) == 0);
  CHECK_THROWS_AS(load_data_spec("csv:" + mawps_path), std::invalid_argument);
  CHECK_THROWS_AS(find_dataset("gsm9k"), std::invalid_argument);
}

TEST_CASE("GSM8K: label after ####, calculator notes removed, thousands separators", "[data][loaders]") {
  const auto path = hyplora::test::require_shared("data/gsm8k/train.jsonl").string();
  const LoadResult train = load_gsm8k(path);
  REQUIRE(train.records.size() == 7473);
  const Record& first = train.records.front();
  CHECK(first.line == 1);
  CHECK(first.question.rfind("Natalia sold clips to 48 of her friends", 0) == 0);
  CHECK(first.answer == 72);
  CHECK(first.answer_text ==
        "Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in April and May. The answer is 72.");
  for (const auto& r : train.records) REQUIRE(r.answer_text.find("<<") == std::string::npos);

  const LoadResult test = load_gsm8k(hyplora::test::require_shared("data/gsm8k/test.jsonl").string());
  REQUIRE(test.records.size() == 1319);
  CHECK(by_line(test, 1).answer == 18);
  CHECK(by_line(test, 147).answer == 2125);    // "#### 2,125"
  CHECK(by_line(test, 202).answer == 114200);  // "#### 114,200"
  INFO(by_line(test, 202).answer_text);
  CHECK(by_line(test, 202).answer_text.ends_with("So in total he made 109,200+5,000=$114,200. The answer is 114200."));
}

TEST_CASE("MAWPS, SVAMP, AQuA and LLM-Adapters fields", "[data][loaders]") {
  const LoadResult mawps = load_mawps(hyplora::test::require_shared("data/mawps/trainset.json").string());
  REQUIRE(mawps.records.size() == 1898);
  const Record& m = mawps.records.front();
  CHECK(m.id == "mawps-2351");
  CHECK(m.line == 2);
  CHECK(m.answer == 2);
  CHECK(m.question.rfind("A waiter had 22 customers in his section", 0) == 0);
  CHECK(m.answer_text == "(22 - 14) / 4 = 2. The answer is 2.");
  CHECK(load_mawps(hyplora::test::require_shared("data/mawps/validset.json").string()).records.size() == 237);
  CHECK(load_mawps(hyplora::test::require_shared("data/mawps/testset.json").string()).records.size() == 238);

  const LoadResult svamp = load_svamp(hyplora::test::require_shared("data/eval-only/svamp/SVAMP.json").string());
  REQUIRE(svamp.records.size() == 1000);
  const Record& s = svamp.records.front();
  CHECK(s.id == "chal-1");
  CHECK(s.question ==
        "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack. How much do you have to pay to buy each pack?");
  CHECK(s.answer == 51);
  CHECK(s.answer_text == "76 - 25 = 51. The answer is 51.");

  const LoadResult aqua = load_aqua(hyplora::test::require_shared("data/eval-only/aqua/test.json").string());
  REQUIRE(aqua.records.size() == 254);
  std::map<char, int> letters;
  for (const auto& r : aqua.records) {
    REQUIRE(r.kind == AnswerKind::choice);
    REQUIRE(r.options.size() == 5);
    ++letters[r.choice];
  }
  CHECK(letters == std::map<char, int>{{'A', 63}, {'B', 58}, {'C', 46}, {'D', 53}, {'E', 34}});
  CHECK(aqua.records.front().question.find("Answer Choices: (A) 5(") != std::string::npos);
  CHECK(aqua.records.front().answer_text.ends_with("Answer : A The answer is (A)."));

  const LoadResult la_aqua = load_llm_adapters(hyplora::test::require_shared("data/llm-adapters/AQuA/test.json").string(), true);
  REQUIRE(la_aqua.records.size() == 254);
  CHECK(la_aqua.records.front().choice == 'A');
  CHECK(la_aqua.records.front().line == 2);
  const LoadResult la_gsm = load_llm_adapters(hyplora::test::require_shared("data/llm-adapters/gsm8k/test.json").string(), false);
  REQUIRE(la_gsm.records.size() == 1319);
  CHECK(la_gsm.records.front().answer == 576);
  CHECK(la_gsm.records.front().input.empty());
  CHECK(la_gsm.records.front().question.rfind("Mr Boarden is remodeling his bathroom.", 0) == 0);
}

TEST_CASE("bad records: reported with file and line, skipped or rejected", "[data][loaders]") {
  SECTION("JSON Lines with a broken line, a missing field, a wrong type, a NaN answer and invalid UTF-8") {
    const TempFile f("bad.jsonl",
                     "{\"question\": \"q1\", \"answer\": \"1 + 1 = 2\\n#### 2\"}\n"
                     "{\"question\": \"q2\", \"answer\": \"#### 3\"\n"                 // line 2: broken JSON
                     "{\"question\": \"q3\"}\n"                                         // line 3: missing answer
                     "\n"
                     "{\"question\": 7, \"answer\": \"#### 4\"}\n"                      // line 5: wrong type
                     "{\"question\": \"q6\", \"answer\": \"#### nan\"}\n"              // line 6: NaN
                     "{\"question\": \"q\xff\", \"answer\": \"#### 5\"}\n"             // line 7: bad UTF-8
                     "{\"question\": \"q8\", \"answer\": \"no mark\"}\n"               // line 8: no ####
                     "{\"question\": \"q9\", \"answer\": \"#### 1,000\"}\n");
    const std::string p = f.path.string();
    try {
      load_gsm8k(p, BadRecordPolicy::reject);
      FAIL("a bad file was accepted");
    } catch (const DataError& e) {
      CHECK(e.line() == 2);
      CHECK(e.file() == p);
      CHECK(std::string(e.what()).find(p + ":2: broken JSON") != std::string::npos);
    }
    const LoadResult r = load_gsm8k(p, BadRecordPolicy::skip);
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[0].answer == 2);
    CHECK(r.records[1].answer == 1000);
    CHECK(r.records[1].line == 9);
    CHECK(r.skipped == 6);
    REQUIRE(r.problems.size() == 6);
    CHECK(r.problems[1] == p + ":3: missing field 'answer'");
    CHECK(r.problems[2] == p + ":5: field 'question' is a number, expected a string");
    CHECK(r.problems[3].find(p + ":6: ") == 0);
    CHECK(r.problems[3].find("not finite") != std::string::npos);
    CHECK(r.problems[4].find(p + ":7: invalid UTF-8") == 0);
    CHECK(r.problems[5] == p + ":8: field 'answer' has no '#### N' final answer");
  }
  SECTION("GSM8K labels: commas only as thousands separators, no hexadecimal") {
    // "#### 0x1F" was read as 31 and "#### 1,2,3" as 123
    const TempFile f("labels.jsonl",
                     "{\"question\": \"q1\", \"answer\": \"#### 0x1F\"}\n"
                     "{\"question\": \"q2\", \"answer\": \"#### 1,2,3\"}\n"
                     "{\"question\": \"q3\", \"answer\": \"#### 1,000,000\"}\n"
                     "{\"question\": \"q4\", \"answer\": \"#### $114,200\"}\n"
                     "{\"question\": \"q5\", \"answer\": \"#### 12,34\"}\n");
    const std::string p = f.path.string();
    CHECK_THROWS_WITH(load_gsm8k(p), p + ":1: the answer after '####' is not a number: \" 0x1F\"");
    const LoadResult r = load_gsm8k(p, BadRecordPolicy::skip);
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[0].answer == 1000000);
    CHECK(r.records[1].answer == 114200);
    REQUIRE(r.problems.size() == 3);
    CHECK(r.problems[1] == p + ":2: the answer after '####' is not a number: \" 1,2,3\"");
    CHECK(r.problems[2].find(p + ":5: ") == 0);
  }
  SECTION("string answers of MAWPS follow the label rules (\"1,2,3\" was read as 123, \"0x1F\" as 31)") {
    const TempFile f("labels.json",
                     "[\n"
                     "  {\"original_text\": \"a\", \"equation\": \"x=1+2\", \"ans\": \"1,2,3\"},\n"
                     "  {\"original_text\": \"b\", \"equation\": \"x=0+31\", \"ans\": \"0x1F\"},\n"
                     "  {\"original_text\": \"c\", \"equation\": \"x=12+22\", \"ans\": \"12,34\"},\n"
                     "  {\"original_text\": \"d\", \"equation\": \"x=999+1\", \"ans\": \"1 000\"},\n"
                     "  {\"original_text\": \"e\", \"equation\": \"x=1000+234\", \"ans\": \" 1,234 \"},\n"
                     "  {\"original_text\": \"f\", \"equation\": \"x=2+3\", \"ans\": \"$5\"}\n"
                     "]\n");
    const std::string p = f.path.string();
    CHECK_THROWS_WITH(load_mawps(p), p + ":2: field 'ans' is not a number: \"1,2,3\"");
    const LoadResult r = load_mawps(p, BadRecordPolicy::skip);
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[0].answer == 1234);
    CHECK(r.records[1].answer == 5);
    CHECK(r.skipped == 4);
  }
  SECTION("a UTF-8 byte-order mark before a JSON array: the array is read (it was taken for JSON Lines)") {
    const std::string body = "[\n  {\"question\": \"q1\", \"answer\": \"#### 1\"},\n  {\"question\": \"q2\", \"answer\": \"#### 2\"}\n]\n";
    const TempFile f("bom.json", "\xEF\xBB\xBF" + body);
    const LoadResult r = load_gsm8k(f.path.string());
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[1].answer == 2);
    const TempFile only("bom_only.json", "\xEF\xBB\xBF\n");
    CHECK_THROWS_WITH(load_gsm8k(only.path.string()), Catch::Contains("empty data file"));
  }
  SECTION("a NUL character (valid JSON \\u0000) in a text field is a bad record (the tokenizer stopped at it)") {
    const TempFile f("nul.jsonl",
                     "{\"question\": \"q1\", \"answer\": \"#### 2\"}\n"
                     "{\"question\": \"Tom has 2\\u0000 apples\", \"answer\": \"#### 2\"}\n"
                     "{\"question\": \"q3\", \"answer\": \"#### 3\"}\n");
    const std::string p = f.path.string();
    CHECK_THROWS_WITH(load_gsm8k(p, BadRecordPolicy::reject), p + ":2: field 'question' contains a NUL character");
    const LoadResult r = load_gsm8k(p, BadRecordPolicy::skip);
    REQUIRE(r.records.size() == 2);
    CHECK(r.skipped == 1);
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0] == p + ":2: field 'question' contains a NUL character");
  }
  SECTION("JSON array: the line of the bad element; structural damage always throws") {
    const TempFile f("bad.json",
                     "[\n  {\"original_text\": \"a\", \"equation\": \"x=1.0+1.0\", \"ans\": 2.0},\n"
                     "  {\"original_text\": \"b\",\n   \"equation\": \"x=2.0\", \"ans\": \"two\"},\n"
                     "  {\"original_text\": \"c\", \"equation\": \"x=3.0\", \"ans\": 3}\n]\n");
    const std::string p = f.path.string();
    CHECK_THROWS_WITH(load_mawps(p), p + ":3: field 'ans' is not a number: \"two\"");
    const LoadResult r = load_mawps(p, BadRecordPolicy::skip);
    CHECK(r.records.size() == 2);
    CHECK(r.records[1].line == 5);
    CHECK(r.records[0].answer_text == "1 + 1 = 2. The answer is 2.");
    CHECK(r.skipped == 1);

    const TempFile g("cut.json", "[\n {\"original_text\": \"a\", \"equation\": \"x=1\", \"ans\": 1},\n {\"original_text\": \"b");
    CHECK_THROWS_AS(load_mawps(g.path.string(), BadRecordPolicy::skip), DataError);
    CHECK_THROWS_WITH(load_mawps(g.path.string(), BadRecordPolicy::skip), g.path.string() + ":3: unterminated string in the record starting here");
    const TempFile k("stray.json", "[\n {\"original_text\": \"a\", \"equation\": \"x=1\", \"ans\": 1}},\n {\"original_text\": \"b\", \"equation\": \"x=2\", \"ans\": 2}\n]");
    const LoadResult stray = load_mawps(k.path.string(), BadRecordPolicy::skip);  // a stray '}' breaks one element only
    CHECK(stray.records.size() == 1);
    CHECK(stray.skipped == 1);
    CHECK(stray.problems.at(0).find(k.path.string() + ":2: broken JSON") == 0);
    const TempFile h("empty.json", "  \n");
    CHECK_THROWS_WITH(load_mawps(h.path.string()), h.path.string() + ":1: empty data file");
  }
  SECTION("MAWPS / SVAMP equations: out-of-range or malformed numbers, empty, unbalanced, not arithmetic") {
    // a 400-digit number ended the run as "stod" (std::out_of_range, not skipped); the others were
    // rendered into the training target as they were ("helloworld = 5. The answer is 5.")
    const std::vector<std::pair<std::string, std::string>> bad{
        {"X=(" + std::string(400, '9') + "+1)", "field 'equation': number \"999"},
        {"X=(0." + std::string(400, '0') + "1+1)", "is out of range"},
        {"X=(1.2.3+1)", "field 'equation': malformed number \"1.2.3\""},
        {"hello world", "field 'equation' is not an arithmetic expression (no operator between 'hello' and 'world'): \"hello world\""},
        {"", "field 'equation' is empty"},
        {"   ", "field 'equation' is empty"},
        {"X=((3.0+2.0", "field 'equation' is not an arithmetic expression (2 '(' not closed): \"X=((3.0+2.0\""},
        {"X=(3.0+2.0))", "')' without a matching '('"},
        {"X=(3.0+)", "')' where a number was expected"},
        {"X=3.0+", "ends where a number was expected"},
        {"X=3.0 # 2", "unexpected character '#'"},
        {"X=(3=2)", "'=' inside parentheses"},
        {"x=y", "holds no number"},
        {"X=3 4", "no operator between '3' and '4'"}};
    std::string text = "[\n";
    for (std::size_t i = 0; i <= bad.size(); ++i) {
      const std::string eq = i == 0 ? "X=(3.0+2.0)" : bad[i - 1].first;  // line 2: good; line i + 2: bad[i - 1]
      text += std::string(i ? ",\n" : "") + R"({"id": 1, "original_text": "Tom had 3 apples. He got 2.", "equation": ")" + eq +
              R"(", "ans": 5.0})";
    }
    const TempFile f("eq.json", text + "\n]\n");
    const std::string p = f.path.string();
    CHECK_THROWS_WITH(load_mawps(p), Catch::Contains(p + ":3: field 'equation': number \"999"));
    const LoadResult r = load_mawps(p, BadRecordPolicy::skip);
    REQUIRE(r.records.size() == 1);
    CHECK(r.records[0].answer_text == "3 + 2 = 5. The answer is 5.");
    REQUIRE(r.problems.size() == bad.size());
    for (std::size_t i = 0; i < bad.size(); ++i) {
      INFO(r.problems[i]);
      CHECK(r.problems[i].find(p + ":" + std::to_string(i + 3) + ": ") == 0);
      CHECK(r.problems[i].find(bad[i].second) != std::string::npos);
    }
    CHECK(r.problems[0].size() < 200);  // the 400-digit number is cut in the message
    // equations of the real data stay accepted: names, unary minus, several '=' (MAWPS "X=0.32=0.21")
    const TempFile g("ok.json", R"([{"original_text": "a", "equation": "number=1.477/-7.0", "ans": 1},
{"original_text": "b", "equation": "(7.0*x)+4.0=(3.0*x)-20.0", "ans": 1},
{"original_text": "c", "equation": "X=0.32=0.21", "ans": 1}])");
    CHECK(load_mawps(g.path.string()).records.size() == 3);
    // SVAMP: the field is 'Equation'
    const TempFile sv("svamp.json", R"([{"ID": "a", "Body": "b", "Question": "q", "Equation": "( 3.0 + ", "Answer": 3.0}])");
    CHECK_THROWS_WITH(load_svamp(sv.path.string()),
                      sv.path.string() + ":1: field 'Equation' is not an arithmetic expression (it ends where a number was expected): \"( 3.0 + \"");
    CHECK(load_svamp(sv.path.string(), BadRecordPolicy::skip).skipped == 1);
  }
  SECTION("a ',' after the last element of a JSON array is an error (it was read as if absent)") {
    const TempFile f("trailing.json", "[\n {\"original_text\": \"a\", \"equation\": \"x=1\", \"ans\": 1},\n]\n");
    CHECK_THROWS_WITH(load_mawps(f.path.string(), BadRecordPolicy::skip),
                      f.path.string() + ":3: a ',' after the last record, before the closing ']' (not valid JSON)");
    const TempFile g("no_trailing.json", "[\n {\"original_text\": \"a\", \"equation\": \"x=1\", \"ans\": 1}\n]\n");
    CHECK(load_mawps(g.path.string()).records.size() == 1);
    const TempFile e("empty_array.json", "[ ]");
    CHECK(load_mawps(e.path.string()).records.empty());
  }
  SECTION("a missing file names the path") {
    CHECK_THROWS_WITH(load_svamp("/nonexistent/svamp.json"), "/nonexistent/svamp.json:0: cannot open data file (no such file)");
    CHECK_THROWS_AS(load_dataset("svamp", BadRecordPolicy::reject, "/nonexistent"), DataError);
  }
  SECTION("AQuA letters outside A-E are rejected") {
    const TempFile f("aqua.jsonl", "{\"question\": \"q\", \"options\": [\"A)1\", \"B)2\"], \"rationale\": \"r\", \"correct\": \"F\"}\n");
    CHECK_THROWS_WITH(load_aqua(f.path.string()), f.path.string() + ":1: field 'correct' is not a letter A-E: \"F\"");
  }
}

TEST_CASE("MAWPS / SVAMP: an equation that does not hold at its label is not trained as a worked answer", "[data][loaders]") {
  // (equation, label, worked answer before ". The answer is N."; "" = the label alone, with a note naming the record)
  const std::vector<std::tuple<std::string, double, std::string>> cases{
      {"x=40/7", 5, ""},                                  // MAWPS train: "40 / 7 = 5" taught false arithmetic
      {"x=34*4", 134, ""},
      {"x=0.7+0.6", 0.1, ""},
      {"x=1/0", 1, ""},                                   // not finite
      {"X=0.32=0.21", 0.53, ""},                          // sides 0.53, 0.32, 0.21
      {"(7.0*x)+4.0=(3.0*x)-20.0", 5, ""},                // 39 against -5
      {"x=2.99/12.0", 0.25, "2.99 / 12 = 0.25"},          // 0.2492 shown with two decimals
      {"x=((78.0-46.0)/78.0)*100.0", 41, "((78 - 46) / 78) * 100 = 41"},
      {"x=(5.0+5.0)/(0.6667-0.25)", 24, "(5 + 5) / (0.6667 - 0.25) = 24"},
      {"(7.0*x)+4.0=(3.0*x)-20.0", -6, "(7 * x) + 4 = (3 * x) - 20, so x = -6"},
      {"(60.0/(x-3.0))+(60.0/(3.0+x))=9.0", 13.978, "(60 / (x - 3)) + (60 / (3 + x)) = 9, so x = 13.978"},
      {"miles=4.0/30.0*48.0", 6.4, "4 / 30 * 48 = 6.4"},   // "miles = 4 / 30 * 48, so x = 6.4" before
      {"X-6=52", 58, "X - 6 = 52, so X = 58"},
      {"7=3+x", 4, "7 = 3 + x, so x = 4"},
      {"x=-60.0/0.833", -72, "-60 / 0.833 = -72"}};
  std::string text = "[\n";
  for (std::size_t i = 0; i < cases.size(); ++i)
    text += std::string(i ? ",\n" : "") + R"({"original_text": "q)" + std::to_string(i) + R"(", "equation": ")" +
            std::get<0>(cases[i]) + R"(", "ans": )" + format_number(std::get<1>(cases[i])) + "}";
  const TempFile f("mismatch.json", text + "\n]\n");
  const std::string p = f.path.string();
  const LoadResult r = load_mawps(p);
  REQUIRE(r.records.size() == cases.size());
  std::size_t notes = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [equation, label, worked] = cases[i];
    INFO(equation << " at " << label);
    const std::string sentence = "The answer is " + format_number(label) + ".";
    if (worked.empty()) {
      CHECK(r.records[i].answer_text == sentence);
      REQUIRE(notes < r.notes.size());
      CHECK(r.notes[notes].rfind(p + ":" + std::to_string(i + 2) + ": the equation \"" + equation + "\"", 0) == 0);
      CHECK(r.notes[notes].ends_with("; its worked answer is the label alone"));
      ++notes;
    } else {
      CHECK(r.records[i].answer_text == worked + ". " + sentence);
    }
  }
  CHECK(r.notes.size() == notes);
  // nesting is bounded (the evaluation recurses): a bad record naming the field, not a stack overflow
  const TempFile deep("deep.json", R"([{"original_text": "q", "equation": "x=)" + std::string(5000, '(') + "1" +
                                       std::string(5000, ')') + R"(", "ans": 1}])");
  CHECK_THROWS_WITH(load_mawps(deep.path.string()), Catch::Contains("field 'equation' nests parentheses and unary minus more than 1000 deep"));
  const TempFile fine("nested.json", R"([{"original_text": "q", "equation": "x=)" + std::string(900, '(') + "1" +
                                       std::string(900, ')') + R"(", "ans": 1}])");
  CHECK(load_mawps(fine.path.string()).notes.empty());
  CHECK(r.notes.at(0).find("gives 5.714285714, not the label 5") != std::string::npos);
  CHECK(r.notes.at(4).find("does not hold at the label 0.53 (its sides are 0.53 and 0.32)") != std::string::npos);
  CHECK(r.problems.empty());

  SECTION("the shared files: 19 in MAWPS train, 1 in validation, 2 in test, 1 in SVAMP") {
    const auto count = [](const std::string& rel, bool svamp) {
      const auto path = hyplora::test::require_shared(rel).string();
      return (svamp ? load_svamp(path) : load_mawps(path)).notes.size();
    };
    CHECK(count("data/mawps/trainset.json", false) == 19);
    CHECK(count("data/mawps/validset.json", false) == 1);
    CHECK(count("data/mawps/testset.json", false) == 2);
    CHECK(count("data/eval-only/svamp/SVAMP.json", true) == 1);
  }
}

TEST_CASE("repeated questions: inside a set and between sets", "[data][repeats]") {
  const auto record = [](const std::string& question, double label, const std::string& input = "") {
    Record r;
    r.question = question;
    r.input = input;
    r.answer = label;
    return r;
  };
  const std::vector<Record> set{record("Tom has 3 apples.", 3), record("Tom  has 3\napples.", 3),  // layout only
                                record("Tom has 3 apples.", 4), record("Tom has 3 apples.", 3, "input"),
                                record("Ann has 2.", 2)};
  const RepeatCounts c = count_repeats(set);
  CHECK(c.same_label == 1);
  CHECK(c.other_label == 1);
  CHECK(count_shared_questions({record("Ann has 2.", 7), record("Bob has 1.", 1)}, set) == 1);
  CHECK(shared_questions_warning(0, 10, "test records").empty());
  CHECK(shared_questions_warning(2, 10, "test records") == "2 of 10 test records ask a question that the training records also ask");

  SECTION("the shared MAWPS splits: train repeats 142 of its questions; 39 validation and 28 test questions are in train") {
    const auto load = [](const std::string& name) { return load_dataset(name, BadRecordPolicy::reject, data_dir()).records; };
    hyplora::test::require_shared("data/mawps/trainset.json");
    const auto train = load("mawps-train");
    const RepeatCounts t = count_repeats(train);
    CHECK(t.same_label == 141);
    CHECK(t.other_label == 1);
    CHECK(count_shared_questions(load("mawps-valid"), train) == 39);
    CHECK(count_shared_questions(load("mawps-test"), train) == 28);
    CHECK(count_shared_questions(load("gsm8k-test"), load("gsm8k-train")) == 0);
  }
}

TEST_CASE("prompt templates", "[data][prompt]") {
  Record r;
  r.question = "Lily had 3 apples. She found 2 more. How many apples does Lily have now?";
  r.answer_text = "3 + 2 = 5. The answer is 5.";
  const PromptTemplate& alpaca = prompt_template("alpaca");
  CHECK(alpaca.prompt(r) ==
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nLily had 3 apples. She found 2 more. How many apples does Lily have now?\n\n### Response:\n");
  CHECK(alpaca.response(r) == "3 + 2 = 5. The answer is 5.\n");
  Record with_input = r;
  with_input.input = "Lily is 4.";
  CHECK(alpaca.prompt(with_input).find("### Input:\nLily is 4.\n\n### Response:\n") != std::string::npos);
  CHECK(alpaca.prompt(with_input).find("paired with an input") != std::string::npos);

  const PromptTemplate& compact = prompt_template("compact");
  CHECK(compact.prompt(r) == "Q: Lily had 3 apples. She found 2 more. How many apples does Lily have now?\nA: ");
  CHECK(compact.response(r) == "3 + 2 = 5. The answer is 5.\n");
  CHECK(compact.cut_at_stop("3 + 2 = 5. The answer is 5.\nQ: more") == "3 + 2 = 5. The answer is 5.");
  CHECK(compact.cut_at_stop("\n\n7 apples\n") == "\n\n7 apples");
  CHECK(compact.should_stop("The answer is 5.\n"));
  CHECK(!compact.should_stop("The answer is 5."));
  CHECK_THROWS_AS(prompt_template("chatml"), std::invalid_argument);
  CHECK(prompt_template_names() == std::vector<std::string>{"alpaca", "compact"});
}

TEST_CASE("answer extraction: numbers", "[data][answer]") {
  auto num = [](const char* s) { return extract_number(s); };
  CHECK(num("The answer is 5.") == 5.0);
  CHECK(num("5.") == 5.0);
  CHECK(num("It costs $1,234.5 in total") == 1234.5);
  CHECK(num("1,234,567 people") == 1234567.0);
  CHECK(num("a list: 1, 2, 3") == 3.0);  // a comma followed by a space is not a separator
  CHECK(num("The answer is -7.") == -7.0);
  CHECK(num("The answer is \xE2\x88\x92" "7.") == -7.0);  // U+2212 MINUS SIGN is a sign as '-' is
  CHECK(num("7\xE2\x88\x92" "5") == 5.0);                  // and subtraction as '-' is
  CHECK(num("\xE2\x88\x92" "0.5 and \xE2\x88\x92") == -0.5);  // a lone one is no number
  CHECK(num("10 - 3 = 7") == 7.0);
  CHECK(num("7-5") == 5.0);  // subtraction, not -5
  CHECK(num("He ate 3/4 of the pie") == 0.75);
  CHECK(num("1/0 of it") == 0.0);  // not a fraction: the last number is 0
  CHECK(num("3 + 2 = 5. 5 x 2 = 10. The answer is 10.") == 10.0);
  CHECK(num("0.5 and .25") == 0.25);
  CHECK(num("3.14159") == 3.14159);
  CHECK(num("50% of them") == 50.0);
  CHECK(!num("no number here").has_value());
  CHECK(!num("").has_value());
  // beyond double's range: dropped, not an exception that ended the evaluation (std::stod threw)
  const std::string huge(400, '9'), tiny = "0." + std::string(400, '0') + "1";
  CHECK(!extract_number(huge).has_value());
  // the last number is the unreadable one: no answer (the number before it was scored, as LLM-Adapters'
  // float() of the last match gives inf and scores it wrong)
  CHECK(!extract_number("The answer is 5. " + huge).has_value());
  CHECK(extract_number(huge + " then 7") == 7.0);
  CHECK(extract_number(tiny) == 0.0);
  CHECK(!extract_number("3/" + huge).has_value());
  CHECK(numeric_match(5.0004, 5.0));
  CHECK(!numeric_match(5.002, 5.0));
  CHECK(!numeric_match(std::nan(""), 5.0));
}

TEST_CASE("answer extraction: AQuA letters", "[data][answer]") {
  CHECK(extract_choice("so the result is 12. The answer is (C).") == 'C');
  CHECK(extract_choice("Answer : A") == 'A');
  CHECK(extract_choice("answer: c") == 'C');
  CHECK(extract_choice("The answer is E") == 'E');
  CHECK(extract_choice("Between (A) and (B), we pick (D)") == 'D');
  CHECK(extract_choice("D) 14") == 'D');
  CHECK(extract_choice("b") == 'B');
  CHECK(!extract_choice("The answer is 14.").has_value());
  CHECK(!extract_choice("Because all is done").has_value());
  CHECK(extract_choice("The answer is option B.") == 'B');
  // a lower-case article or abbreviation after "answer is" is a word, not a choice
  CHECK(extract_choice("The answer is a total of 12 apples, so (C)") == 'C');
  CHECK(extract_choice("The answer is e.g. (B)") == 'B');
  CHECK(extract_choice("The answer is: a 21-cm rod, option D") == 'D');
  CHECK(extract_choice("the answer is d.") == 'D');
  CHECK(extract_choice("the answer is (e)") == 'E');
  CHECK(!extract_choice("The answer is a lot").has_value());
  // an echoed option list is the question's, not a choice (its last "(E)" was scored)
  CHECK(!extract_choice("(A) 5 (B) 6 (C) 7 (D) 8 (E) 9").has_value());
  CHECK(!extract_choice("Answer Choices: (A)5 (B)6 (C)7 (D)8 (E)9\n(A)5 (B)6 (C)7 (D)8 (E)9").has_value());
  CHECK(extract_choice("(A) 5 (B) 6 (C) 7 (D) 8 (E) 9. So (B)") == 'B');
  CHECK(extract_choice("(A) 5 (B) 6 (C) 7 (D) 8 (E) 9, then C) 7") == 'C');
  CHECK(extract_choice("(A) 5 (B) 6 (C) 7 (D) 8 (E) 9. The answer is (D).") == 'D');
  CHECK(!extract_choice("(A) 5 (B) 6 (C) 7 (D) 8 (E) 9 c").has_value());  // a lower-case word is no choice
  CHECK(extract_choice("Not (A) or (B): (E) and then (C)") == 'C');  // markers out of order are no list

  Record choice;
  choice.kind = AnswerKind::choice;
  choice.choice = 'B';
  CHECK(judge(choice, "The answer is (B).").correct);
  CHECK(!judge(choice, "The answer is (C).").correct);
  Record numeric;
  numeric.answer = 114200;
  CHECK(judge(numeric, "He made 114,200 dollars.").correct);
  CHECK(!judge(numeric, "no idea").correct);
}

TEST_CASE("portable PRNG: unbiased bounded draws", "[data][builtin]") {
  Rng rng(123);
  std::vector<int> counts(10, 0);
  const int draws = 100000;
  for (int i = 0; i < draws; ++i) {
    const auto v = rng.uniform_int(0, 9);
    REQUIRE((v >= 0 && v <= 9));
    ++counts[static_cast<std::size_t>(v)];
  }
  // each bucket ~ Binomial(1e5, 0.1): mean 1e4, sd 94.9; 6 sd bounds fail with probability ~1e-8
  for (int c : counts) CHECK(std::abs(c - draws / 10) < 6 * 95);
  Rng a(5), b(5), c(6);
  CHECK(a.next() == b.next());
  CHECK(a.next() != c.next());
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.uniform01();
    REQUIRE((u >= 0 && u < 1));
  }
}

TEST_CASE("built-in task: deterministic, balanced, correct, disjoint splits", "[data][builtin]") {
  StoryTaskConfig cfg;
  cfg.seed = 42;
  const auto train = generate_story_problems(cfg, SplitRole::train, 3000);
  const auto valid = generate_story_problems(cfg, SplitRole::validation, 300);
  const auto test = generate_story_problems(cfg, SplitRole::test, 600);
  REQUIRE(train.size() == 3000);
  REQUIRE(test.size() == 600);

  SECTION("depths beyond kMaxStoryDepth are refused (depth 5000 took minutes to tokenize)") {
    StoryTaskConfig deep = cfg;
    deep.min_depth = deep.max_depth = kMaxStoryDepth + 1;
    CHECK_THROWS_AS(generate_story_problems(deep, SplitRole::test, 1), std::invalid_argument);
    deep.max_depth = 5000;
    CHECK_THROWS_WITH(generate_story_problems(deep, SplitRole::test, 1), Catch::Contains("max_depth <= 100"));
    deep.min_depth = deep.max_depth = kMaxStoryDepth;
    CHECK(generate_story_problems(deep, SplitRole::test, 2).size() == 2);
  }
  SECTION("same config, same problems; another seed, other problems") {
    const auto again = generate_story_problems(cfg, SplitRole::test, 600);
    for (std::size_t i = 0; i < test.size(); ++i) REQUIRE(again[i].question == test[i].question);
    StoryTaskConfig other = cfg;
    other.seed = 43;
    const auto moved = generate_story_problems(other, SplitRole::test, 600);
    std::size_t same = 0;
    for (std::size_t i = 0; i < test.size(); ++i) same += moved[i].question == test[i].question;
    CHECK(same < 10);
  }
  SECTION("splits share no question and no arithmetic chain, whatever the seed") {
    StoryTaskConfig other = cfg;
    other.seed = 7;
    const auto train2 = generate_story_problems(other, SplitRole::train, 3000);
    std::set<std::string> train_q, train_chain;
    for (const auto* set : {&train, &train2})
      for (const auto& r : *set) {
        train_q.insert(r.question);
        train_chain.insert(r.answer_text);
        REQUIRE(story_split_of(r.answer_text, cfg) == SplitRole::train);
      }
    std::set<std::string> test_q;
    for (const auto& r : test) {
      REQUIRE(train_chain.count(r.answer_text) == 0);
      REQUIRE(train_q.count(r.question) == 0);
      test_q.insert(r.question);
    }
    CHECK(test_q.size() == test.size());  // distinct within the split
    for (const auto& r : valid) {
      REQUIRE(train_chain.count(r.answer_text) == 0);
      REQUIRE(test_q.count(r.question) == 0);
    }
  }
  SECTION("depths balanced 1..6; the worked chain recomputes the answer; values stay in 0..99") {
    std::map<int, int> per_depth;
    for (const auto& r : test) ++per_depth[r.depth];
    CHECK(per_depth == std::map<int, int>{{1, 100}, {2, 100}, {3, 100}, {4, 100}, {5, 100}, {6, 100}});
    for (const auto* set : {&train, &test})
      for (const auto& r : *set) {
        INFO(r.question << " => " << r.answer_text);
        // "3+2 is 5. 5-1 is 4. The answer is 4."
        const std::string final_sentence = "The answer is " + format_number(r.answer) + ".";
        REQUIRE(r.answer_text.ends_with(final_sentence));
        std::istringstream in(r.answer_text.substr(0, r.answer_text.size() - final_sentence.size()));
        std::string step;
        long steps = 0, previous = -1;
        while (std::getline(in, step, '.')) {
          if (step.find_first_not_of(' ') == std::string::npos) continue;
          long a = 0, b = 0, c = 0;
          char op = 0;
          REQUIRE(std::sscanf(step.c_str(), " %ld%c%ld is %ld", &a, &op, &b, &c) == 4);
          if (previous >= 0) REQUIRE(a == previous);
          REQUIRE(c == (op == '+' ? a + b : op == '-' ? a - b : op == 'x' ? a * b : -1000));
          REQUIRE((c >= 0 && c <= 99));
          previous = c;
          ++steps;
        }
        REQUIRE(steps == r.depth);
        REQUIRE(r.answer == static_cast<double>(previous));
        REQUIRE(extract_number(r.answer_text) == r.answer);
      }
  }
  SECTION("short enough for stories260K: most problems under 120 tokens with the compact template") {
    const auto tok_path = hyplora::test::require_shared("models/stories260K/tok512.bin");
    const MiniTokenizer tok(tok_path);
    // the encoder agrees with run.c on reference texts
    std::ifstream ref(hyplora::test::require_shared("reference/tok512_encode.jsonl"));
    std::string line;
    int checked = 0;
    while (std::getline(ref, line) && checked < 40) {
      const auto j = nlohmann::json::parse(line);
      REQUIRE(tok.encode(j.at("text").get<std::string>()) == j.at("ids").get<std::vector<int>>());
      ++checked;
    }
    REQUIRE(checked == 40);  // the reference file held enough texts (an empty one checks nothing)
    const PromptTemplate& compact = prompt_template("compact");
    std::map<int, std::vector<std::size_t>> lengths;
    std::size_t under = 0, longest = 0;
    for (const auto& r : test) {
      const std::size_t n = tok.encode(compact.prompt(r) + compact.response(r)).size();
      lengths[r.depth].push_back(n);
      under += n < 120;
      longest = std::max(longest, n);
    }
    for (auto& [depth, v] : lengths) {
      std::sort(v.begin(), v.end());
      std::cout << "built-in task, depth " << depth << ": median " << v[v.size() / 2] << " tokens, max " << v.back() << "\n";
    }
    std::cout << "under 120 tokens: " << under << " of " << test.size() << ", longest " << longest << "\n";
    // most problems of the depth-balanced 1..6 set fit in 120 tokens (depths 1..3 all of them,
    // depth 4 about half); the longest stays far inside the 512-token context
    CHECK(under * 2 > test.size());
    for (const auto& [depth, v] : lengths)
      if (depth <= 3) CHECK(v.back() < 120);
    CHECK(longest < 200);
  }
  SECTION("bad configs") {
    StoryTaskConfig bad = cfg;
    bad.min_depth = 0;
    CHECK_THROWS_AS(generate_story_problems(bad, SplitRole::test, 1), std::invalid_argument);
    bad = cfg;
    bad.test_fraction = 0.95;
    CHECK_THROWS_AS(generate_story_problems(bad, SplitRole::test, 1), std::invalid_argument);
  }
}

TEST_CASE("accuracy report: per data set, per depth, weighted, JSON round trip, table", "[data][metrics]") {
  using namespace hyplora::eval;
  StoryTaskConfig cfg;
  const auto test = generate_story_problems(cfg, SplitRole::test, 12);
  AccuracyReport report;
  DatasetAccuracy builtin;
  builtin.name = "builtin";
  for (std::size_t i = 0; i < test.size(); ++i) {
    // right on even items, a wrong number on odd ones
    const std::string generated = i % 2 == 0 ? test[i].answer_text : "The answer is " + format_number(test[i].answer + 1) + ".";
    add_item(builtin, score_item(test[i], generated));
  }
  report.datasets.push_back(builtin);
  DatasetAccuracy aqua;
  aqua.name = "aqua";
  Record q;
  q.id = "q";
  q.kind = AnswerKind::choice;
  q.choice = 'C';
  for (int i = 0; i < 4; ++i) add_item(aqua, score_item(q, i == 0 ? "The answer is (C)." : "(A)"));
  report.datasets.push_back(aqua);
  CHECK(aqua.no_answer == 0);
  CHECK(builtin.no_answer == 0);
  {  // generations with no extractable answer are counted, written and read back
    DatasetAccuracy loose = builtin;
    add_item(loose, score_item(test[0], "Tom went home."));
    add_item(loose, score_item(q, "no letter here"));
    CHECK(loose.no_answer == 2);
    loose.generations_at_eos = 3;
    const auto lj = to_json(AccuracyReport{{loose}});
    CHECK(lj["datasets"][0]["no_answer"] == 2);
    CHECK(lj["datasets"][0]["generations_at_eos"] == 3);
    CHECK(report_from_json(lj).datasets.at(0).no_answer == 2);
    CHECK(report_from_json(lj).datasets.at(0).generations_at_eos == 3);
    std::ostringstream t;
    print_table(t, AccuracyReport{{loose}});
    CHECK(t.str().find(", ended by EOS 3, no answer 2") != std::string::npos);
  }

  CHECK(builtin.overall.correct == 6);
  CHECK(builtin.overall.total == 12);
  for (const auto& [depth, t] : builtin.by_depth) CHECK(t.total == 2);
  // depth d holds items d-1 and d+5 (depths cycle 1..6): both even (correct) for odd d, both odd for even d
  CHECK(builtin.by_depth.at(1).correct == 2);
  CHECK(builtin.by_depth.at(2).correct == 0);
  const Tally w = report.weighted();
  CHECK(w.total == 16);
  CHECK(w.correct == 7);
  CHECK(w.accuracy() == 7.0 / 16);  // (12 * 0.5 + 4 * 0.25) / 16

  const auto j = to_json(report);
  CHECK(j.at("weighted").at("correct") == 7);
  CHECK(j.at("datasets")[0].at("by_depth").at("1").at("total") == 2);
  const AccuracyReport back = report_from_json(nlohmann::json::parse(j.dump()));
  CHECK(to_json(back) == j);
  CHECK(back.datasets[1].items[0].predicted_choice == 'C');

  std::ostringstream table;
  print_table(table, report);
  CHECK(table.str().find("weighted average") != std::string::npos);
  CHECK(table.str().find("  depth 6") != std::string::npos);
  CHECK(table.str().find("43.75%") != std::string::npos);

  // a generation cut inside a multi-byte character ("√" is E2 88 9A, byte tokens in tok512) is written
  // with U+FFFD: a strict dump threw after the whole evaluation, and the report was lost
  DatasetAccuracy cut;
  cut.name = "cut";
  add_item(cut, score_item(q, std::string("The answer is \xE2\x88") + " x \xE2\x88\x9A" "2"));
  const auto cj = to_json(AccuracyReport{{cut}});
  std::string text;
  REQUIRE_NOTHROW(text = cj.dump());
  CHECK(cj["datasets"][0]["items"][0]["generated"] == "The answer is \xEF\xBF\xBD\xEF\xBF\xBD x \xE2\x88\x9A" "2");
  // the counts read back as counts: a negative prompts_too_long wrapped to 2^64 - 5
  auto bad = to_json(report);
  bad["datasets"][0]["prompts_too_long"] = -5;
  CHECK_THROWS_WITH(report_from_json(bad), Catch::Contains("prompts_too_long"));
}
