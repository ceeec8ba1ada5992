#include "data/loaders.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <vector>

#include "data/json_records.hpp"

namespace hyplora::data {

std::string answer_sentence(const Record& r) {
  if (r.kind == AnswerKind::choice) return std::string("The answer is (") + r.choice + ").";
  return "The answer is " + format_number(r.answer) + ".";
}

namespace {

// "48/2 = <<48/2=24>>24" -> "48/2 = 24"
std::string strip_calculator_notes(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 2, "<<") == 0) {
      const auto end = text.find(">>", i + 2);
      if (end != std::string_view::npos) { i = end + 2; continue; }
    }
    out += text[i++];
  }
  return out;
}

// The text of an equation quoted for a message, cut after 60 characters.
std::string quote_text(std::string_view text) {
  if (text.size() <= 60) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, 60)) + "...\" (" + std::to_string(text.size()) + " characters)";
}

bool is_number_start(std::string_view e, std::size_t i) {
  const auto digit = [&](std::size_t k) { return k < e.size() && std::isdigit(static_cast<unsigned char>(e[k])); };
  return digit(i) || (e[i] == '.' && digit(i + 1));
}
bool is_name_char(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }

// The number of an equation at e[i..*end): digits with at most one '.'. A malformed or out-of-range
// number is a RecordError (std::stod threw std::out_of_range for a 400-digit number, which ended the
// run as "stod", neither naming the record nor skipped by --bad-records skip).
double equation_number(std::string_view e, std::size_t i, std::size_t* end, const char* field) {
  std::size_t j = i;
  while (j < e.size() && (std::isdigit(static_cast<unsigned char>(e[j])) || e[j] == '.')) ++j;
  *end = j;
  const std::string text(e.substr(i, j - i));
  if (std::count(text.begin(), text.end(), '.') > 1)
    throw RecordError(std::string("field '") + field + "': malformed number " + quote_text(text));
  errno = 0;
  const double v = std::strtod(text.c_str(), nullptr);
  if (errno == ERANGE || !std::isfinite(v))
    throw RecordError(std::string("field '") + field + "': number " + quote_text(text) + " is out of range");
  return v;
}

// A MAWPS / SVAMP equation must be an arithmetic expression, or several joined by '=' outside
// parentheses (MAWPS has "X=0.32=0.21"): numbers, names (x, miles), + - * /, unary minus, balanced
// parentheses, at least one number. Anything else ("hello world", "", "X=((3.0+2.0", "( 3.0 + ")
// was rendered into the training target as it was.
void check_equation(std::string_view e, const char* field) {
  const auto bad = [&](const std::string& why) {
    return RecordError(std::string("field '") + field + "' is not an arithmetic expression (" + why + "): " + quote_text(e));
  };
  if (e.find_first_not_of(" \t\r\n") == std::string_view::npos) throw RecordError(std::string("field '") + field + "' is empty");
  bool operand = true;  // an operand (number, name, '(' or unary '-') comes next
  bool numbers = false;
  long depth = 0;
  std::string last;  // the previous operand, for "missing operator between"
  std::size_t i = 0;
  while (i < e.size()) {
    const char c = e[i];
    if (std::isspace(static_cast<unsigned char>(c))) { ++i; continue; }
    if (is_number_start(e, i) || is_name_char(c)) {
      std::size_t j = i;
      if (is_name_char(c)) {
        while (j < e.size() && is_name_char(e[j])) ++j;
      } else {
        (void)equation_number(e, i, &j, field);
        numbers = true;
      }
      const std::string token(e.substr(i, j - i));
      if (!operand) throw bad("no operator between '" + last + "' and '" + token + "'");
      last = token.size() > 20 ? token.substr(0, 20) + "..." : token;
      operand = false;
      i = j;
      continue;
    }
    if (c == '(') {
      if (!operand) throw bad("no operator before '('");
      ++depth;
    } else if (c == ')') {
      if (operand) throw bad("')' where a number was expected");
      if (depth == 0) throw bad("')' without a matching '('");
      --depth;
    } else if (c == '-' && operand) {
      // unary minus ("1.477/-7.0")
    } else if (c == '+' || c == '-' || c == '*' || c == '/') {
      if (operand) throw bad(std::string("'") + c + "' where a number was expected");
      operand = true;
    } else if (c == '=') {
      if (operand) throw bad("'=' where a number was expected");
      if (depth != 0) throw bad("'=' inside parentheses");
      operand = true;
    } else {
      throw bad("unexpected character '" + std::string(1, c) + "'");
    }
    ++i;
  }
  if (operand) throw bad("it ends where a number was expected");
  if (depth != 0) throw bad(std::to_string(depth) + " '(' not closed");
  if (!numbers) throw bad("it holds no number");
}

// The value of one side of a checked equation, every name taking `unknown`, by recursive descent:
//   side := term (('+' | '-') term)*,  term := factor (('*' | '/') factor)*,
//   factor := '-' factor | number | name | '(' side ')'.
class EquationSide {
 public:
  EquationSide(std::string_view text, double unknown, const char* field) : e_(text), unknown_(unknown), field_(field) {}
  double value() { return sum(); }

 private:
  char peek() {
    while (i_ < e_.size() && std::isspace(static_cast<unsigned char>(e_[i_]))) ++i_;
    return i_ < e_.size() ? e_[i_] : '\0';
  }
  double sum() {
    double v = product();
    for (char c = peek(); c == '+' || c == '-'; c = peek()) {
      ++i_;
      v = c == '+' ? v + product() : v - product();
    }
    return v;
  }
  double product() {
    double v = factor();
    for (char c = peek(); c == '*' || c == '/'; c = peek()) {
      ++i_;
      v = c == '*' ? v * factor() : v / factor();
    }
    return v;
  }
  double factor() {
    const char c = peek();
    if (c == '-' || c == '(') {
      // a record holds up to 16 MiB: nesting is bounded so that the recursion cannot exhaust the stack
      if (++depth_ > kMaxDepth)
        throw RecordError(std::string("field '") + field_ + "' nests parentheses and unary minus more than " +
                          std::to_string(kMaxDepth) + " deep");
      ++i_;
      double v = 0;
      if (c == '-') {
        v = -factor();
      } else {
        v = sum();
        if (peek() == ')') ++i_;
      }
      --depth_;
      return v;
    }
    if (is_name_char(c)) {
      while (i_ < e_.size() && is_name_char(e_[i_])) ++i_;
      return unknown_;
    }
    std::size_t end = i_;
    const double v = equation_number(e_, i_, &end, field_);
    i_ = end;
    return v;
  }

  static constexpr int kMaxDepth = 1000;
  std::string_view e_;
  double unknown_;
  const char* field_;
  std::size_t i_ = 0;
  int depth_ = 0;
};

// The sides of a checked equation: its text split at '=' (never inside parentheses).
std::vector<std::string_view> equation_sides(std::string_view e) {
  std::vector<std::string_view> sides;
  std::size_t start = 0;
  for (std::size_t k = 0; k <= e.size(); ++k)
    if (k == e.size() || e[k] == '=') {
      sides.push_back(e.substr(start, k - start));
      start = k + 1;
    }
  return sides;
}

bool has_name(std::string_view side) { return std::any_of(side.begin(), side.end(), is_name_char); }

// A value rather than an equation in an unknown: "expr" or "name=expr", with no name in expr.
bool defines_value(const std::vector<std::string_view>& sides) {
  if (sides.size() == 1) return !has_name(sides[0]);
  if (sides.size() != 2 || has_name(sides[1])) return false;
  const auto a = sides[0].find_first_not_of(" \t"), b = sides[0].find_last_not_of(" \t");
  return a != std::string_view::npos && std::all_of(sides[0].begin() + a, sides[0].begin() + b + 1, is_name_char);
}

// The decimals a label shows (0 for 72, 2 for 0.25, at most 12).
int shown_decimals(double label) {
  double scale = 1;
  for (int k = 0; k < 12; ++k, scale *= 10) {
    const double s = label * scale;
    if (std::abs(s - std::round(s)) <= 1e-9 * std::max(1.0, std::abs(s))) return k;
  }
  return 12;
}

// Why a checked equation does not hold at its label, or "" when it does. Two forms:
//  - a value, "x=expr" (any one name) or "expr", with no name in expr: the label must be that value
//    rounded to the decimals the label shows, |value - label| <= 0.5 * 10^-decimals (MAWPS writes
//    41 for 41.03 and 0.25 for 0.2492), up to 64 rounding errors;
//  - an equation in the unknown, "(7*x)+4=(3*x)-20": with every name set to the label, the sides
//    must agree within 1e-3 of the larger of 1 and their magnitudes (labels like 13.978 are rounded).
// MAWPS train has 18 of the first kind that fail ("x=40/7" labelled 5, "x=34*4" labelled 134).
std::string equation_mismatch(std::string_view equation, double label, const char* field) {
  const auto sides = equation_sides(equation);
  std::vector<double> values;
  for (const auto side : sides) values.push_back(EquationSide(side, label, field).value());
  const auto quoted = quote_text(equation);
  for (double v : values)
    if (!std::isfinite(v)) return "the equation " + quoted + " is not finite at the label " + format_number(label);
  if (defines_value(sides)) {
    const double v = values.back();
    const double half_unit = 0.5 * std::pow(10.0, -shown_decimals(label));
    const double rounding = 64 * std::numeric_limits<double>::epsilon() * std::max(std::abs(v), std::abs(label));
    if (std::abs(v - label) <= half_unit + rounding) return "";
    return "the equation " + quoted + " gives " + format_number(v) + ", not the label " + format_number(label);
  }
  for (std::size_t k = 1; k < values.size(); ++k) {
    const double scale = std::max({1.0, std::abs(values[0]), std::abs(values[k])});
    if (std::abs(values[k] - values[0]) > 1e-3 * scale)
      return "the equation " + quoted + " does not hold at the label " + format_number(label) + " (its sides are " +
             format_number(values[0]) + " and " + format_number(values[k]) + ")";
  }
  return "";
}

// "X=((22.0-14.0)/4.0)" -> "(22 - 14) / 4"; numbers without ".0", binary operators spaced.
// The equation has passed check_equation.
std::string render_expression(std::string_view e, const char* field) {
  std::string out;
  std::size_t i = 0;
  while (i < e.size()) {
    const char c = e[i];
    if (std::isspace(static_cast<unsigned char>(c))) { ++i; continue; }
    if (is_number_start(e, i)) {
      std::size_t j = i;
      out += format_number(equation_number(e, i, &j, field));
      i = j;
      continue;
    }
    if (c == '+' || c == '-' || c == '*' || c == '/' || c == '=') {
      const bool unary = c == '-' && (out.empty() || out.back() == '(' || out.back() == ' ');
      if (unary) out += c;
      else { out += ' '; out += c; out += ' '; }
      ++i;
      continue;
    }
    out += c;
    ++i;
  }
  // drop one pair of parentheses around the whole expression
  if (out.size() >= 2 && out.front() == '(' && out.back() == ')') {
    int depth = 0;
    bool wraps = true;
    for (std::size_t k = 0; k < out.size(); ++k) {
      if (out[k] == '(') ++depth;
      else if (out[k] == ')' && --depth == 0 && k + 1 != out.size()) { wraps = false; break; }
    }
    if (wraps) out = out.substr(1, out.size() - 2);
  }
  return out;
}

// MAWPS / SVAMP worked answer from the equation (field `field` of the record) and the label. An
// equation that does not hold at the label (equation_mismatch) would teach false arithmetic
// ("40 / 7 = 5"): such a record's worked answer is the label's sentence alone, and a note says so.
std::string equation_solution(std::string_view equation, double answer, const char* field, const Record& r,
                              LoadResult& result) {
  check_equation(equation, field);
  const std::string mismatch = equation_mismatch(equation, answer, field);
  if (!mismatch.empty()) {
    result.notes.push_back(r.source + ":" + std::to_string(r.line) + ": " + mismatch +
                           "; its worked answer is the label alone");
    return answer_sentence(r);
  }
  const std::string n = format_number(answer);
  const auto sides = equation_sides(equation);
  // "x=expr", "miles=expr", "expr": "<expr> = N"; an equation in an unknown: "<equation>, so <unknown> = N"
  if (defines_value(sides)) return render_expression(sides.back(), field) + " = " + n + ". The answer is " + n + ".";
  const auto name = std::find_if(equation.begin(), equation.end(), is_name_char);
  std::string unknown(name, std::find_if_not(name, equation.end(), is_name_char));
  if (unknown.empty()) unknown = "x";  // "1+2=3": no name to solve for
  return render_expression(equation, field) + ", so " + unknown + " = " + n + ". The answer is " + n + ".";
}

Record base_record(const std::string& path, std::size_t line) {
  Record r;
  r.source = path;
  r.line = line;
  return r;
}

std::string id_field(const nlohmann::json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  throw RecordError(std::string("field '") + key + "' is a " + it->type_name() + ", expected a string or integer");
}

char parse_letter(std::string_view text, const char* what) {
  const std::string s = one_line(text);
  if (s.size() == 1) {
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    if (c >= 'A' && c <= 'E') return c;
  }
  throw RecordError(std::string(what) + " is not a letter A-E: \"" + std::string(text) + "\"");
}

}  // namespace

LoadResult load_gsm8k(const std::string& path, BadRecordPolicy policy) {
  LoadResult result;
  for_each_json_record(path, policy, result, [&](const nlohmann::json& j, std::size_t line) {
    Record r = base_record(path, line);
    r.question = one_line(json_string(j, "question"));
    const std::string& answer = json_string(j, "answer");
    const auto mark = answer.rfind("####");
    if (mark == std::string::npos) throw RecordError("field 'answer' has no '#### N' final answer");
    r.answer = parse_number_text(std::string_view(answer).substr(mark + 4), "the answer after '####'");
    r.id = "gsm8k-" + std::to_string(line);
    std::string worked = one_line(strip_calculator_notes(std::string_view(answer).substr(0, mark)));
    if (!worked.empty() && worked.back() != '.' && worked.back() != '!' && worked.back() != '?') worked += '.';
    r.answer_text = (worked.empty() ? "" : worked + " ") + answer_sentence(r);
    if (r.question.empty()) throw RecordError("field 'question' is empty");
    result.records.push_back(std::move(r));
  });
  return result;
}

LoadResult load_mawps(const std::string& path, BadRecordPolicy policy) {
  LoadResult result;
  for_each_json_record(path, policy, result, [&](const nlohmann::json& j, std::size_t line) {
    Record r = base_record(path, line);
    r.question = one_line(json_string(j, "original_text"));
    r.answer = json_number(j, "ans");
    r.id = "mawps-" + id_field(j, "id", std::to_string(line));
    r.answer_text = equation_solution(json_string(j, "equation"), r.answer, "equation", r, result);
    result.records.push_back(std::move(r));
  });
  return result;
}

LoadResult load_llm_adapters(const std::string& path, bool choice_answers, BadRecordPolicy policy) {
  LoadResult result;
  std::size_t index = 0;
  for_each_json_record(path, policy, result, [&](const nlohmann::json& j, std::size_t line) {
    Record r = base_record(path, line);
    r.question = one_line(json_string(j, "instruction"));
    if (j.contains("input")) r.input = one_line(json_string(j, "input"));
    const std::string output = one_line(json_string(j, "output"));
    if (choice_answers) {
      r.kind = AnswerKind::choice;
      r.choice = parse_letter(json_string(j, "answer"), "field 'answer'");
    } else {
      r.answer = json_number(j, "answer");
    }
    r.id = "item-" + std::to_string(index++);
    // The outputs are model-written rationales (they can disagree with the label); kept as given.
    r.answer_text = output.find("answer is") == std::string::npos ? (output.empty() ? "" : output + " ") + answer_sentence(r) : output;
    result.records.push_back(std::move(r));
  });
  return result;
}

LoadResult load_svamp(const std::string& path, BadRecordPolicy policy) {
  LoadResult result;
  for_each_json_record(path, policy, result, [&](const nlohmann::json& j, std::size_t line) {
    Record r = base_record(path, line);
    std::string body = one_line(json_string(j, "Body"));
    const std::string question = one_line(json_string(j, "Question"));
    if (!body.empty() && body.back() != '.' && body.back() != '?' && body.back() != '!') body += '.';
    r.question = body.empty() ? question : body + " " + question;
    r.answer = json_number(j, "Answer");
    r.id = id_field(j, "ID", "svamp-" + std::to_string(line));
    r.answer_text = equation_solution(json_string(j, "Equation"), r.answer, "Equation", r, result);
    result.records.push_back(std::move(r));
  });
  return result;
}

LoadResult load_aqua(const std::string& path, BadRecordPolicy policy) {
  LoadResult result;
  for_each_json_record(path, policy, result, [&](const nlohmann::json& j, std::size_t line) {
    Record r = base_record(path, line);
    r.kind = AnswerKind::choice;
    const std::string question = one_line(json_string(j, "question"));
    auto it = j.find("options");
    if (it == j.end()) throw RecordError("missing field 'options'");
    if (!it->is_array() || it->empty()) throw RecordError("field 'options' is not a non-empty array");
    std::string choices;
    for (const auto& o : *it) {
      if (!o.is_string()) throw RecordError("an entry of 'options' is not a string");
      if (o.get_ref<const std::string&>().find('\0') != std::string::npos)
        throw RecordError("an entry of 'options' contains a NUL character");
      std::string opt = one_line(o.get<std::string>());
      r.options.push_back(opt);
      // "A)21" -> "(A) 21"
      choices += " ";
      if (opt.size() >= 2 && opt[1] == ')') {
        choices.append(1, '(').append(1, opt[0]).append(") ").append(opt, 2, std::string::npos);
      } else {
        choices += opt;
      }
    }
    r.question = question + " Answer Choices:" + choices;
    r.choice = parse_letter(json_string(j, "correct"), "field 'correct'");
    r.id = "aqua-" + std::to_string(line);
    const std::string rationale = one_line(json_string(j, "rationale"));
    r.answer_text = (rationale.empty() ? "" : rationale + " ") + answer_sentence(r);
    result.records.push_back(std::move(r));
  });
  return result;
}

DataFormat format_from_name(const std::string& name) {
  if (name == "gsm8k") return DataFormat::gsm8k;
  if (name == "mawps") return DataFormat::mawps;
  if (name == "llm-adapters") return DataFormat::llm_adapters;
  if (name == "llm-adapters-choice") return DataFormat::llm_adapters_choice;
  if (name == "svamp") return DataFormat::svamp;
  if (name == "aqua") return DataFormat::aqua;
  throw std::invalid_argument("unknown data format '" + name +
                              "' (known: gsm8k, mawps, llm-adapters, llm-adapters-choice, svamp, aqua)");
}

const char* format_name(DataFormat f) {
  switch (f) {
    case DataFormat::gsm8k: return "gsm8k";
    case DataFormat::mawps: return "mawps";
    case DataFormat::llm_adapters: return "llm-adapters";
    case DataFormat::llm_adapters_choice: return "llm-adapters-choice";
    case DataFormat::svamp: return "svamp";
    case DataFormat::aqua: return "aqua";
  }
  return "?";
}

LoadResult load_file(const std::string& path, DataFormat f, BadRecordPolicy policy) {
  switch (f) {
    case DataFormat::gsm8k: return load_gsm8k(path, policy);
    case DataFormat::mawps: return load_mawps(path, policy);
    case DataFormat::llm_adapters: return load_llm_adapters(path, false, policy);
    case DataFormat::llm_adapters_choice: return load_llm_adapters(path, true, policy);
    case DataFormat::svamp: return load_svamp(path, policy);
    case DataFormat::aqua: return load_aqua(path, policy);
  }
  throw std::invalid_argument("bad DataFormat");
}

}  // namespace hyplora::data
