#pragma once
// Repeated questions: inside one data set (MAWPS train asks 141 of its questions twice), and between
// the sets of a run (28 of MAWPS test's 238 questions are in MAWPS train), where a repeat means that
// a "held-out" score or loss was partly measured on training problems.
#include <cstddef>
#include <string>
#include <unordered_set>
#include <vector>

#include "data/record.hpp"

namespace hyplora::data {

/// What a record asks, as repeats are compared: question and input on one line each (runs of
/// white space as one space), so that layout differences do not hide a repeat.
std::string question_key(const Record& record);

/// Records that ask the question of an earlier record of the same set, by whether their label
/// equals that earlier record's label.
struct RepeatCounts {
  std::size_t same_label = 0;
  std::size_t other_label = 0;
  std::size_t total() const { return same_label + other_label; }
};
RepeatCounts count_repeats(const std::vector<Record>& records);

/// The questions of a set of records (question_key), built once and asked of several sets.
class QuestionSet {
 public:
  explicit QuestionSet(const std::vector<Record>& records);
  /// How many of `records` ask a question of this set.
  std::size_t count_shared(const std::vector<Record>& records) const;

 private:
  std::unordered_set<std::string> keys_;
};

/// How many of `records` ask a question that some record of `reference` asks.
std::size_t count_shared_questions(const std::vector<Record>& records, const std::vector<Record>& reference);

/// "<shared> of <total> <what> ask a question that the training records also ask" (what:
/// "validation records"), or "" when shared is 0.
std::string shared_questions_warning(std::size_t shared, std::size_t total, const std::string& what);

}  // namespace hyplora::data
