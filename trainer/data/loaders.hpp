#pragma once
// Loaders for the real math data sets (see docs/data.md for each format). Every loader returns the
// common Record form; bad records are skipped with a message or rejected (DataError naming file:line).
#include <string>

#include "data/record.hpp"

namespace hyplora::data {

/// GSM8K jsonl {question, answer}: the label follows "####" (thousands separators removed); the worked
/// solution drops the calculator notes <<48/2=24>> and the "#### N" line and ends "The answer is N.".
LoadResult load_gsm8k(const std::string& path, BadRecordPolicy policy = BadRecordPolicy::reject);
/// MAWPS json {id, original_text, equation, ans}: worked answer "<expr> = N. The answer is N.".
LoadResult load_mawps(const std::string& path, BadRecordPolicy policy = BadRecordPolicy::reject);
/// LLM-Adapters json {instruction, input, output, answer}; numeric answers, or letters A-E when
/// `choice_answers` (AQuA). The worked answer is "output" on one line; when it does not already end
/// with "The answer is <label>." that sentence is appended.
LoadResult load_llm_adapters(const std::string& path, bool choice_answers,
                             BadRecordPolicy policy = BadRecordPolicy::reject);
/// SVAMP json {ID, Body, Question, Equation, Answer}: question = Body + " " + Question.
LoadResult load_svamp(const std::string& path, BadRecordPolicy policy = BadRecordPolicy::reject);
/// AQuA-RAT json or jsonl {question, options, rationale, correct}: question gets
/// " Answer Choices: (A) .. (E) ..", the answer is the letter, worked answer = rationale + "The answer is (X).".
LoadResult load_aqua(const std::string& path, BadRecordPolicy policy = BadRecordPolicy::reject);

/// The formats above, by name: "gsm8k", "mawps", "llm-adapters", "llm-adapters-choice", "svamp", "aqua".
enum class DataFormat { gsm8k, mawps, llm_adapters, llm_adapters_choice, svamp, aqua };
DataFormat format_from_name(const std::string& name);  ///< throws std::invalid_argument listing the names
const char* format_name(DataFormat format);
LoadResult load_file(const std::string& path, DataFormat format, BadRecordPolicy policy = BadRecordPolicy::reject);

/// "The answer is N." for a numeric label, "The answer is (X)." for a letter.
std::string answer_sentence(const Record& record);

}  // namespace hyplora::data
