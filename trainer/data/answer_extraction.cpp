#include "data/answer_extraction.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

namespace hyplora::data {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

// Removes commas standing between two digits ("1,234" -> "1234") and writes the minus sign U+2212
// (E2 88 92) as '-', so that it is a sign where '-' is one ("−7" -> -7, "7−5" still gives 5).
std::string normalise_numbers(std::string_view text) {
  constexpr std::string_view unicode_minus = "\xE2\x88\x92";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, unicode_minus.size(), unicode_minus) == 0) {
      out += '-';
      i += unicode_minus.size() - 1;
      continue;
    }
    if (text[i] == ',' && i > 0 && i + 1 < text.size() && is_digit(text[i - 1]) && is_digit(text[i + 1])) continue;
    out += text[i];
  }
  return out;
}

// Where an option list the generation echoes ("(A) 5 (B) 6 (C) 7 (D) 8 (E) 9") ends: after the "(E)"
// of the last run of the five markers in order, or 0 when there is none. The markers of such a list
// are the question's, not a choice.
std::size_t end_of_echoed_options(const std::string& s) {
  std::size_t end = 0, from = 0;
  while (true) {
    std::size_t at = from;
    bool all = true;
    for (char c = 'A'; c <= 'E' && all; ++c) {
      const std::size_t k = s.find(std::string{'(', c, ')'}, at);
      if (k == std::string::npos) all = false;
      else at = k + 3;
    }
    if (!all) return end;
    end = at;
    from = at;
  }
}

// The value of the decimal digits s[start, end) (strtod: no exception; a number beyond double's
// range is +inf, which the caller drops, and one below it rounds towards 0).
double decimal_value(const std::string& s, std::size_t start, std::size_t end) {
  const std::string digits = s.substr(start, end - start);
  return std::strtod(digits.c_str(), nullptr);
}

// Reads an unsigned decimal number at s[i] (digits, optional .digits, or .digits); advances i.
std::optional<double> read_unsigned(const std::string& s, std::size_t& i) {
  const std::size_t start = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i + 1 < s.size() && s[i] == '.' && is_digit(s[i + 1])) {
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  if (i == start) return std::nullopt;
  return decimal_value(s, start, i);
}

}  // namespace

std::optional<double> extract_number(std::string_view text) {
  const std::string s = normalise_numbers(text);
  std::optional<double> last;
  std::size_t i = 0;
  while (i < s.size()) {
    const bool starts_digit = is_digit(s[i]);
    const bool starts_point = s[i] == '.' && i + 1 < s.size() && is_digit(s[i + 1]) && (i == 0 || !is_digit(s[i - 1]));
    if (!starts_digit && !starts_point) { ++i; continue; }
    // a minus right before the number, itself not after a digit or letter ("7-5" is subtraction)
    bool negative = false;
    if (i > 0 && s[i - 1] == '-' && (i < 2 || (!is_digit(s[i - 2]) && !is_alpha(s[i - 2]) && s[i - 2] != ')'))) negative = true;
    std::optional<double> value = read_unsigned(s, i);
    if (!value) { ++i; continue; }
    if (!std::isfinite(*value)) {  // 309+ digits (a generation that loops): no abort, and no answer while it is
      last = std::nullopt;         // the last number (the one before it was scored: "5. 111...1" gave 5)
      continue;
    }
    // fraction a/b of two integers written without spaces
    if (i + 1 < s.size() && s[i] == '/' && is_digit(s[i + 1])) {
      std::size_t j = i + 1;
      const std::size_t den_start = j;
      while (j < s.size() && is_digit(s[j])) ++j;
      const bool integer_parts = value == std::floor(*value) && !(j < s.size() && s[j] == '.' && j + 1 < s.size() && is_digit(s[j + 1]));
      const double den = decimal_value(s, den_start, j);
      if (integer_parts && den != 0 && std::isfinite(den)) {
        value = *value / den;
        i = j;
      }
    }
    last = negative ? -*value : *value;
  }
  return last;
}

std::optional<char> extract_choice(std::string_view text) {
  const std::string s(text);
  std::string lower(s);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // a choice letter at s[k]: A-E standing alone; in lower case only where it ends the text or is
  // closed by ")" or by a full stop that ends a sentence ("the answer is a total of 12" and "is e.g."
  // are words, not choices)
  auto letter_at = [&](std::size_t k, bool any_case) -> std::optional<char> {
    if (k >= s.size()) return std::nullopt;
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(s[k])));
    if (c < 'A' || c > 'E') return std::nullopt;
    if (k + 1 < s.size() && is_alpha(s[k + 1])) return std::nullopt;  // a word, not a letter
    if (s[k] == c || any_case) return c;
    if (k + 1 >= s.size() || s[k + 1] == ')') return c;
    if (s[k + 1] == '.' && (k + 2 >= s.size() || std::isspace(static_cast<unsigned char>(s[k + 2])))) return c;
    return std::nullopt;
  };
  // 1. after the last "answer": skip " is", ":", spaces, "(" and "option"
  for (std::size_t pos = lower.rfind("answer"); pos != std::string::npos; pos = pos == 0 ? std::string::npos : lower.rfind("answer", pos - 1)) {
    std::size_t k = pos + 6;
    auto skip = [&] {
      while (k < s.size() && (s[k] == ' ' || s[k] == ':' || s[k] == '(' || s[k] == '\t')) ++k;
    };
    skip();
    if (lower.compare(k, 2, "is") == 0 && (k + 2 >= s.size() || !is_alpha(s[k + 2]))) { k += 2; skip(); }
    bool after_option = false;
    if (lower.compare(k, 6, "option") == 0) { k += 6; skip(); after_option = true; }
    if (auto c = letter_at(k, after_option)) return c;
  }
  // 1b. after the last "option" anywhere ("..., option D")
  for (std::size_t pos = lower.rfind("option"); pos != std::string::npos; pos = pos == 0 ? std::string::npos : lower.rfind("option", pos - 1)) {
    std::size_t k = pos + 6;
    while (k < s.size() && (s[k] == ' ' || s[k] == ':' || s[k] == '(')) ++k;
    if (auto c = letter_at(k, true)) return c;
  }
  // 2. the last "(X)"  3. the last "X)" with X uppercase standing alone; both after an echoed option list
  const std::size_t first = end_of_echoed_options(s);
  for (std::size_t k = s.size(); k-- > first;)
    if (s[k] == '(' && k + 2 < s.size() && s[k + 2] == ')' && s[k + 1] >= 'A' && s[k + 1] <= 'E') return s[k + 1];
  for (std::size_t k = s.size(); k-- > first;)
    if (s[k] >= 'A' && s[k] <= 'E' && k + 1 < s.size() && s[k + 1] == ')' && (k == 0 || !is_alpha(s[k - 1]))) return s[k];
  // 4. the letter alone (optionally with a full stop)
  std::string t;
  for (char c : s) if (!std::isspace(static_cast<unsigned char>(c))) t += c;
  if (!t.empty() && t.back() == '.') t.pop_back();
  if (t.size() == 1) {
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
    if (c >= 'A' && c <= 'E') return c;
  }
  return std::nullopt;
}

bool numeric_match(double prediction, double label) {
  return std::isfinite(prediction) && std::abs(prediction - label) <= answer_tolerance;
}

Judgement judge(const Record& record, std::string_view generated) {
  Judgement j;
  if (record.kind == AnswerKind::choice) {
    j.choice = extract_choice(generated);
    j.correct = j.choice && *j.choice == record.choice;
  } else {
    j.number = extract_number(generated);
    j.correct = j.number && numeric_match(*j.number, record.answer);
  }
  return j;
}

}  // namespace hyplora::data
