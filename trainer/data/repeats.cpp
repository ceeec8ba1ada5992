#include "data/repeats.hpp"

#include <unordered_map>
#include <unordered_set>

#include "data/json_records.hpp"

namespace hyplora::data {

std::string question_key(const Record& record) { return one_line(record.question) + "\n" + one_line(record.input); }

namespace {
bool same_label(const Record& a, const Record& b) {
  if (a.kind != b.kind) return false;
  return a.kind == AnswerKind::choice ? a.choice == b.choice : a.answer == b.answer;
}
}  // namespace

RepeatCounts count_repeats(const std::vector<Record>& records) {
  RepeatCounts counts;
  std::unordered_map<std::string, std::size_t> first;  // question -> index of its first record
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto [it, inserted] = first.emplace(question_key(records[i]), i);
    if (inserted) continue;
    if (same_label(records[it->second], records[i])) ++counts.same_label;
    else ++counts.other_label;
  }
  return counts;
}

QuestionSet::QuestionSet(const std::vector<Record>& records) {
  for (const auto& r : records) keys_.insert(question_key(r));
}

std::size_t QuestionSet::count_shared(const std::vector<Record>& records) const {
  std::size_t shared = 0;
  for (const auto& r : records) shared += keys_.count(question_key(r));
  return shared;
}

std::size_t count_shared_questions(const std::vector<Record>& records, const std::vector<Record>& reference) {
  return QuestionSet(reference).count_shared(records);
}

std::string shared_questions_warning(std::size_t shared, std::size_t total, const std::string& what) {
  if (shared == 0) return "";
  return std::to_string(shared) + " of " + std::to_string(total) + " " + what +
         " ask a question that the training records also ask";
}

}  // namespace hyplora::data
