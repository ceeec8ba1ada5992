#pragma once
// Answer extraction from generated text (SPEC section 5).
#include <optional>
#include <string_view>

#include "data/record.hpp"

namespace hyplora::data {

/// Tolerance of a numeric match: correct when |pred - label| <= 1e-3 (SPEC section 5).
inline constexpr double answer_tolerance = 1e-3;

/// The last number in text, after removing thousands separators (a comma between two digits):
/// integers, negatives ("-5", not the minus of "7-5"), decimals ("1,234.5", ".5"), fractions
/// ("3/4" -> 0.75; a zero denominator is not a fraction). A trailing full stop is punctuation
/// ("5." -> 5). nullopt when the text holds no number.
std::optional<double> extract_number(std::string_view text);

/// The multiple-choice letter A-E chosen in text: after the last "answer" ("The answer is (C)",
/// "answer: c", "Answer : A"), else the last "(X)", else the last "X)", else a text that is the
/// letter alone. Uppercase, nullopt when none.
std::optional<char> extract_choice(std::string_view text);

/// |pred - label| <= answer_tolerance.
bool numeric_match(double prediction, double label);

/// Extracts the answer of generated text for record's kind and compares it with the label.
struct Judgement {
  bool correct = false;
  std::optional<double> number;  ///< numeric kind
  std::optional<char> choice;    ///< choice kind
};
Judgement judge(const Record& record, std::string_view generated);

}  // namespace hyplora::data
