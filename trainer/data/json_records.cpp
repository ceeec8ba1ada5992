#include "data/json_records.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hyplora::data {

std::string format_number(double value) {
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
  if (std::abs(value) < 1e15 && value == std::round(value)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", value);
    return std::string(buf) == "-0" ? "0" : buf;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", value);
  return buf;
}

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw DataError(path, 0, "cannot open data file (no such file)");
  if (!std::filesystem::is_regular_file(status))
    throw DataError(path, 0, "not a regular file (a data file must be a JSON or JSON Lines file on disk)");
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxDataFileBytes)
    throw DataError(path, 0, "data file of " + std::to_string(size) + " bytes is larger than the " +
                                 std::to_string(kMaxDataFileBytes >> 30) + " GiB limit");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, 0, "cannot open data file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw DataError(path, 0, "read error");
  return ss.str();
}

bool is_valid_utf8(std::string_view s, std::size_t* bad_offset) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else { if (bad_offset) *bad_offset = i; return false; }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) { if (bad_offset) *bad_offset = i; return false; }
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) { if (bad_offset) *bad_offset = i; return false; }
      cp = (cp << 6) | (cc & 0x3F);
    }
    const bool overlong = (n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) { if (bad_offset) *bad_offset = i; return false; }
    i += n + 1;
  }
  return true;
}

bool is_json_lines(const std::string& path, std::string_view text) {
  const auto ext = std::filesystem::path(path).extension().string();
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".JSONL") return true;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte-order mark
  const auto first = text.find_first_not_of(" \t\r\n");
  return first == std::string_view::npos || text[first] != '[';
}

namespace {

std::size_t line_of(std::string_view text, std::size_t offset, std::size_t& cache_offset, std::size_t& cache_line) {
  // lines counted incrementally: offsets are visited in increasing order
  for (; cache_offset < offset && cache_offset < text.size(); ++cache_offset)
    if (text[cache_offset] == '\n') ++cache_line;
  return cache_line;
}

void handle_element(const std::string& path, std::string_view element, std::size_t line, BadRecordPolicy policy,
                    LoadResult& result, const std::function<void(const nlohmann::json&, std::size_t)>& visit) {
  std::string message;
  std::size_t bad = 0;
  if (element.size() > kMaxRecordBytes) {
    message = "record of " + std::to_string(element.size()) + " bytes is longer than the " +
              std::to_string(kMaxRecordBytes >> 20) + " MiB limit";
  } else if (!is_valid_utf8(element, &bad)) {
    message = "invalid UTF-8 (byte " + std::to_string(bad) + " of the record)";
  } else {
    try {
      const auto j = nlohmann::json::parse(element.begin(), element.end());
      visit(j, line);
      return;
    } catch (const nlohmann::json::parse_error& e) {
      message = std::string("broken JSON: ") + e.what();
    } catch (const nlohmann::json::exception& e) {
      message = std::string("bad record: ") + e.what();
    } catch (const RecordError& e) {
      message = e.what();
    }
  }
  if (policy == BadRecordPolicy::reject) throw DataError(path, line, message);
  ++result.skipped;
  result.problems.push_back(path + ":" + std::to_string(line) + ": " + message);
}

}  // namespace

void for_each_json_record(const std::string& path, BadRecordPolicy policy, LoadResult& result,
                          const std::function<void(const nlohmann::json&, std::size_t line)>& visit) {
  const std::string text = read_text_file(path);
  // a UTF-8 byte-order mark (editors on Windows write one): the array was taken for JSON Lines
  std::size_t pos = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  if (pos == text.size()) throw DataError(path, 1, "empty data file");
  std::size_t cache_offset = 0, cache_line = 1;

  if (is_json_lines(path, text)) {
    std::size_t start = 0, line = 1;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view row(text.data() + start, end - start);
      bool blank = true;
      for (char c : row) if (!std::isspace(static_cast<unsigned char>(c))) { blank = false; break; }
      if (!blank) handle_element(path, row, line, policy, result, visit);
      start = end + 1;
      ++line;
    }
    return;
  }

  // JSON array: delimit the top-level elements by scanning strings and bracket depth.
  ++pos;
  bool after_comma = false;
  while (true) {
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
    if (pos >= text.size()) throw DataError(path, line_of(text, pos, cache_offset, cache_line), "missing ']' at end of file");
    if (text[pos] == ']') {
      // "[{..},]" is not JSON (nlohmann, Python's json and jq refuse it); it was read as if the ',' were not there
      if (after_comma)
        throw DataError(path, line_of(text, pos, cache_offset, cache_line),
                        "a ',' after the last record, before the closing ']' (not valid JSON)");
      break;
    }
    const std::size_t start = pos;
    int depth = 0;
    bool in_string = false;
    for (; pos < text.size(); ++pos) {
      const char c = text[pos];
      if (in_string) {
        if (c == '\\') ++pos;
        else if (c == '"') in_string = false;
        continue;
      }
      if (c == '"') in_string = true;
      else if (c == '{' || c == '[') ++depth;
      else if (c == '}' || c == ']') {
        if (depth == 0) {
          if (c == ']') break;  // the closing ']' of the top-level array
          continue;             // a stray '}': part of this (broken) element
        }
        --depth;
      } else if (c == ',' && depth == 0) break;
    }
    const std::size_t line = line_of(text, start, cache_offset, cache_line);
    if (pos >= text.size())
      throw DataError(path, line, in_string ? "unterminated string in the record starting here" : "record starting here is not closed");
    std::size_t end = pos;
    while (end > start && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
    handle_element(path, std::string_view(text.data() + start, end - start), line, policy, result, visit);
    after_comma = text[pos] == ',';
    if (after_comma) ++pos;
  }
  ++pos;
  while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  if (pos != text.size()) throw DataError(path, line_of(text, pos, cache_offset, cache_line), "unexpected text after the closing ']'");
}

static const char* type_word(const nlohmann::json& v) { return v.type_name(); }

const std::string& json_string(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) throw RecordError(std::string("record is a JSON ") + type_word(obj) + ", expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) throw RecordError(std::string("missing field '") + key + "'");
  if (!it->is_string())
    throw RecordError(std::string("field '") + key + "' is a " + type_word(*it) + ", expected a string");
  const auto& s = it->get_ref<const std::string&>();
  // "\u0000" is valid JSON, but the tokenizer stops at a NUL: the text after it was lost silently
  if (s.find('\0') != std::string::npos) throw RecordError(std::string("field '") + key + "' contains a NUL character");
  return s;
}

double json_number(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) throw RecordError(std::string("record is a JSON ") + type_word(obj) + ", expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) throw RecordError(std::string("missing field '") + key + "'");
  double v = 0;
  if (it->is_number()) {
    v = it->get<double>();
  } else if (it->is_string()) {
    v = parse_number_text(it->get_ref<const std::string&>(), std::string("field '") + key + "'");
  } else {
    throw RecordError(std::string("field '") + key + "' is a " + type_word(*it) + ", expected a number");
  }
  if (!std::isfinite(v)) throw RecordError(std::string("field '") + key + "' is not finite (" + format_number(v) + ")");
  return v;
}

double parse_number_text(std::string_view text, const std::string& what) {
  const auto bad = [&]() { return RecordError(what + " is not a number: \"" + std::string(text) + "\""); };
  const auto first = text.find_first_not_of(" \t\r\n"), last = text.find_last_not_of(" \t\r\n");
  if (first == std::string_view::npos) throw bad();
  const std::string_view t = text.substr(first, last - first + 1);
  const auto digit = [&](std::size_t k) { return k < t.size() && std::isdigit(static_cast<unsigned char>(t[k])); };
  std::string s;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == ',') {  // a thousands separator only
      if (!(i > 0 && digit(i - 1) && digit(i + 1) && digit(i + 2) && digit(i + 3) && !digit(i + 4))) throw bad();
      continue;
    }
    if (c == 'x' || c == 'X' || std::isspace(static_cast<unsigned char>(c))) throw bad();
    if (c == '$' && (i == 0 || (i == 1 && (t[0] == '-' || t[0] == '+')))) continue;  // "$5", "-$5"
    s += c;
  }
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size()) throw bad();
  if (!std::isfinite(v)) throw RecordError(what + " is not finite");
  return v;
}

std::string one_line(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) { space = !out.empty(); continue; }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace hyplora::data
