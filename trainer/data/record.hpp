#pragma once
// One problem of any math data set, in the form every loader produces and the trainer consumes.
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace hyplora::data {

/// Numeric answers (GSM8K, MAWPS, SVAMP, built-in task) or a multiple-choice letter (AQuA).
enum class AnswerKind { numeric, choice };

struct Record {
  std::string id;           ///< stable identifier inside its data set ("gsm8k-train-17", MAWPS "id", SVAMP "ID")
  std::string question;     ///< the instruction (problem text; AQuA: with "Answer Choices: (A) ..")
  std::string input;        ///< optional extra input (LLM-Adapters "input"); usually empty
  std::string answer_text;  ///< worked solution on ONE line, ending "The answer is N." (the response target)
  AnswerKind kind = AnswerKind::numeric;
  double answer = std::numeric_limits<double>::quiet_NaN();  ///< numeric label (kind == numeric)
  char choice = 0;                                           ///< 'A'..'E' (kind == choice)
  std::vector<std::string> options;                          ///< AQuA options as given ("A)21", ..)
  int depth = 0;            ///< number of operations (built-in task); 0 = unknown
  std::string source;       ///< file the record came from ("builtin:<split>" for the generated task)
  std::size_t line = 0;     ///< 1-based line in that file where the record starts
};

/// What a loader does with a bad record (missing field, wrong type, NaN answer, invalid UTF-8,
/// broken JSON line): skip it and keep a message, or throw DataError at the first one.
enum class BadRecordPolicy { skip, reject };

/// A loader's result: the good records plus every problem met (never silently dropped).
struct LoadResult {
  std::vector<Record> records;
  std::size_t skipped = 0;
  std::vector<std::string> problems;  ///< "file:line: message", one per skipped record
  /// "file:line: message", one per kept record that the loader changed (a MAWPS / SVAMP equation
  /// that does not hold at its label: the worked answer is the label alone)
  std::vector<std::string> notes;
};

/// Error in a data file; what() names the file and line.
class DataError : public std::runtime_error {
 public:
  DataError(std::string file, std::size_t line, const std::string& message)
      : std::runtime_error(file + ":" + std::to_string(line) + ": " + message), file_(std::move(file)), line_(line) {}
  const std::string& file() const noexcept { return file_; }
  std::size_t line() const noexcept { return line_; }

 private:
  std::string file_;
  std::size_t line_;
};

/// Formats a numeric answer the way responses write it: integers without ".0" ("72"), other values
/// with up to 10 significant digits and no trailing zeros ("0.25", "-3.5").
std::string format_number(double value);

}  // namespace hyplora::data
