#include "eval/metrics.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <stdexcept>
#include <string>

#include "data/answer_extraction.hpp"
#include "data/json_records.hpp"
#include "data/story_task.hpp"

namespace hyplora::eval {

std::string GenerationLimitUsed::describe() const {
  std::string s = std::to_string(max_new_tokens) + " (" + rule;
  const std::string longest = "longest reference response " + std::to_string(longest_reference);
  if (rule == "auto" && longest_trained >= 0)
    s += ": longest training response " + std::to_string(longest_trained) + " + " +
         std::to_string(max_new_tokens - longest_trained) + (longest_reference >= 0 ? "; " + longest : std::string());
  else if (rule == "auto" && longest_reference >= 0)
    s += ": " + longest + " + " + std::to_string(max_new_tokens - longest_reference);
  else if (rule == "auto-fallback")
    s += ": a record has no reference response" + (longest_reference >= 0 ? "; " + longest : std::string());
  return s + ")";
}

Tally AccuracyReport::weighted() const {
  Tally t;
  for (const auto& d : datasets) {
    t.total += d.overall.total;
    t.correct += d.overall.correct;
  }
  return t;
}

ItemResult score_item(const data::Record& record, const std::string& generated) {
  const auto j = data::judge(record, generated);
  ItemResult r;
  r.id = record.id;
  r.depth = record.depth;
  r.correct = j.correct;
  r.generated = generated;
  r.predicted_number = j.number;
  r.predicted_choice = j.choice;
  r.label = record.kind == data::AnswerKind::choice ? std::string(1, record.choice) : data::format_number(record.answer);
  return r;
}

void add_item(DatasetAccuracy& d, ItemResult item, bool keep_item) {
  d.overall.total += 1;
  d.overall.correct += item.correct ? 1 : 0;
  d.no_answer += !item.predicted_number && !item.predicted_choice;
  if (item.depth > 0) {
    auto& t = d.by_depth[item.depth];
    t.total += 1;
    t.correct += item.correct ? 1 : 0;
  }
  if (keep_item) d.items.push_back(std::move(item));
}

namespace {
nlohmann::json tally_json(const Tally& t) {
  return {{"total", t.total}, {"correct", t.correct}, {"accuracy", t.accuracy()}};
}
/// A count of a stored report: a whole number >= 0 (get<std::size_t> wrapped -5 and truncated 1.5).
std::size_t count_from(const nlohmann::json& j, const char* key) {
  const auto& v = j.at(key);
  const bool ok = v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0) ||
                  (v.is_number_float() && v.get<double>() >= 0 && v.get<double>() <= 9e15 &&
                   v.get<double>() == std::floor(v.get<double>()));
  if (!ok) throw std::invalid_argument(std::string("'") + key + "' = " + v.dump() + " is not a count (an integer >= 0)");
  return v.is_number_float() ? std::size_t(v.get<double>()) : v.get<std::size_t>();
}
Tally tally_from(const nlohmann::json& j) {
  Tally t;
  t.total = count_from(j, "total");
  t.correct = count_from(j, "correct");
  if (t.correct > t.total)
    throw std::invalid_argument("'correct' = " + std::to_string(t.correct) + " exceeds 'total' = " + std::to_string(t.total));
  return t;
}
// A generation is the model's bytes: a byte token cut by the limit leaves a partial character, which
// JSON cannot hold (dump threw after a whole evaluation). Invalid sequences become U+FFFD.
std::string utf8_or_replacement(std::string_view text) {
  if (data::is_valid_utf8(text)) return std::string(text);
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n > 0 && i + n <= text.size() && data::is_valid_utf8(text.substr(i, n))) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const AccuracyReport& report, bool with_items) {
  nlohmann::json sets = nlohmann::json::array();
  for (const auto& d : report.datasets) {
    nlohmann::json j = tally_json(d.overall);
    j["name"] = d.name;
    nlohmann::json depths = nlohmann::json::object();
    for (const auto& [depth, t] : d.by_depth) depths[std::to_string(depth)] = tally_json(t);
    j["by_depth"] = depths;
    for (const auto& c : dataset_counts) j[c.key] = d.*c.member;
    if (d.limit.max_new_tokens > 0) {
      j["max_new_tokens"] = d.limit.max_new_tokens;
      j["max_new_tokens_rule"] = d.limit.rule;
      if (d.limit.longest_reference >= 0) j["longest_reference_tokens"] = d.limit.longest_reference;
      if (d.limit.longest_trained >= 0) j["longest_training_response_tokens"] = d.limit.longest_trained;
    }
    if (with_items) {
      nlohmann::json items = nlohmann::json::array();
      for (const auto& it : d.items) {
        nlohmann::json ji = {{"id", it.id}, {"depth", it.depth}, {"correct", it.correct},
                             {"generated", utf8_or_replacement(it.generated)}, {"label", it.label}};
        ji["predicted"] = it.predicted_number ? nlohmann::json(*it.predicted_number)
                                              : it.predicted_choice ? nlohmann::json(std::string(1, *it.predicted_choice))
                                                                    : nlohmann::json(nullptr);
        items.push_back(std::move(ji));
      }
      j["items"] = std::move(items);
    }
    sets.push_back(std::move(j));
  }
  return {{"datasets", sets}, {"weighted", tally_json(report.weighted())}};
}

AccuracyReport report_from_json(const nlohmann::json& j) {
  AccuracyReport report;
  for (const auto& jd : j.at("datasets")) {
    DatasetAccuracy d;
    d.name = jd.at("name").get<std::string>();
    d.overall = tally_from(jd);
    Tally depths;  // over every depth: at most the set's own tally
    for (const auto& [key, jt] : jd.at("by_depth").items()) {
      // a depth is a built-in problem's operation count ("-3" became a table column; "abc" and
      // "99999999999" were reported as "stoi")
      int depth = 0;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), depth);
      if (ec != std::errc() || end != key.data() + key.size() || depth < 1 || depth > data::kMaxStoryDepth)
        throw std::invalid_argument("'by_depth' key '" + key + "' is not a depth in [1, " +
                                    std::to_string(data::kMaxStoryDepth) + "]");
      const Tally t = tally_from(jt);
      depths.total += t.total;
      depths.correct += t.correct;
      d.by_depth[depth] = t;
    }
    if (depths.total > d.overall.total || depths.correct > d.overall.correct)
      throw std::invalid_argument("'by_depth' holds " + std::to_string(depths.total) + " problems (" +
                                  std::to_string(depths.correct) + " correct), more than the set's 'total' = " +
                                  std::to_string(d.overall.total) + " ('correct' = " + std::to_string(d.overall.correct) + ")");
    // each absent in older reports (prompts_too_long before 2026-11-26, the limit's counts before
    // 2026-11-28, generations_at_eos and no_answer before 2026-11-29); a count is checked as
    // such (get<std::size_t> wrapped -5 to 2^64 - 5)
    for (const auto& c : dataset_counts) d.*c.member = jd.contains(c.key) ? count_from(jd, c.key) : 0;
    d.limit.max_new_tokens = jd.value("max_new_tokens", 0);
    d.limit.rule = jd.value("max_new_tokens_rule", std::string());
    d.limit.longest_reference = jd.value("longest_reference_tokens", -1);
    d.limit.longest_trained = jd.value("longest_training_response_tokens", -1);
    if (jd.contains("items")) {
      for (const auto& ji : jd.at("items")) {
        ItemResult it;
        it.id = ji.at("id").get<std::string>();
        it.depth = ji.at("depth").get<int>();
        it.correct = ji.at("correct").get<bool>();
        it.generated = ji.at("generated").get<std::string>();
        it.label = ji.at("label").get<std::string>();
        const auto& p = ji.at("predicted");
        if (p.is_number()) it.predicted_number = p.get<double>();
        else if (p.is_string() && p.get<std::string>().size() == 1) it.predicted_choice = p.get<std::string>()[0];
        d.items.push_back(std::move(it));
      }
    }
    report.datasets.push_back(std::move(d));
  }
  return report;
}

void print_table(std::ostream& out, const AccuracyReport& report) {
  char line[160];
  std::snprintf(line, sizeof line, "%-28s %8s %8s %9s\n", "data set", "correct", "total", "accuracy");
  out << line;
  auto row = [&](const std::string& name, const Tally& t) {
    std::snprintf(line, sizeof line, "%-28s %8zu %8zu %8.2f%%\n", name.c_str(), t.correct, t.total, 100.0 * t.accuracy());
    out << line;
  };
  for (const auto& d : report.datasets) {
    row(d.name, d.overall);
    for (const auto& [depth, t] : d.by_depth) row("  depth " + std::to_string(depth), t);
  }
  row("weighted average", report.weighted());
  // how each set was generated: its limit and what the limit (or the context) cut
  for (const auto& d : report.datasets) {
    if (d.limit.max_new_tokens <= 0 && d.generations_at_limit == 0 && d.generations_at_context == 0 && d.prompts_too_long == 0 &&
        d.generations_at_eos == 0 && d.no_answer == 0)
      continue;  // an older report: nothing recorded
    std::string note = d.name + ": ";
    if (d.limit.max_new_tokens > 0) note += "max_new_tokens " + d.limit.describe() + ", ";
    note += "cut at the limit " + std::to_string(d.generations_at_limit) + " of " + std::to_string(d.overall.total);
    if (d.generations_at_context > 0) note += ", cut at the context " + std::to_string(d.generations_at_context);
    if (d.prompts_too_long > 0) note += ", prompts too long " + std::to_string(d.prompts_too_long);
    if (d.generations_at_eos > 0) note += ", ended by EOS " + std::to_string(d.generations_at_eos);
    if (d.no_answer > 0) note += ", no answer " + std::to_string(d.no_answer);
    out << note << "\n";
  }
}

}  // namespace hyplora::eval
