#pragma once
// Reading JSON / JSON Lines data files record by record, with the line of each record, so a
// bad record can be reported (file:line) and skipped without losing the rest of the file.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "data/record.hpp"

namespace hyplora::data {

/// A record-level problem (missing field, wrong type, ...): the loader turns it into a skip or a
/// DataError according to its BadRecordPolicy.
class RecordError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Largest data file and largest single record read (a record beyond it is a bad record).
inline constexpr std::size_t kMaxDataFileBytes = std::size_t(4) << 30;
inline constexpr std::size_t kMaxRecordBytes = std::size_t(16) << 20;

/// Reads the whole file; throws DataError (line 0) when it cannot be opened, is not a regular file
/// (a device such as /dev/zero, a directory, a pipe) or exceeds kMaxDataFileBytes.
std::string read_text_file(const std::string& path);

/// JSON Lines or one JSON array: a `.jsonl` / `.ndjson` file is JSON Lines whatever its first line
/// holds; any other file is an array when its first non-blank character is '['.
bool is_json_lines(const std::string& path, std::string_view text);

/// True when text is well-formed UTF-8; *bad_offset receives the first bad byte otherwise.
bool is_valid_utf8(std::string_view text, std::size_t* bad_offset = nullptr);

/// Calls visit(json, line) for every top-level element of a JSON array file, or for every non-empty
/// line of a JSON Lines file (chosen by is_json_lines). Each element is
/// checked for UTF-8 and parsed on its own; a broken element, or a RecordError thrown by visit, goes
/// to result.problems (skip) or becomes a DataError (reject). Structural damage that makes the
/// elements impossible to delimit (unterminated string, missing ']') always throws DataError.
void for_each_json_record(const std::string& path, BadRecordPolicy policy, LoadResult& result,
                          const std::function<void(const nlohmann::json&, std::size_t line)>& visit);

/// Field access with clear RecordError messages ("missing field 'x'", "field 'x' is a number, expected string").
const std::string& json_string(const nlohmann::json& obj, const char* key);
/// A finite number, given as a JSON number or as a numeric string (parse_number_text); NaN/inf rejected.
double json_number(const nlohmann::json& obj, const char* key);
/// A decimal number as text, for answers and labels: "576.0", "-3", "1,234", "$5", " 7 ". A comma
/// only as a thousands separator (a digit before, three after), no hexadecimal, no space inside:
/// "1,2,3", "0x1F", "12,34" and "1 000" are RecordErrors naming `what` ("1,2,3" was read as 123).
double parse_number_text(std::string_view text, const std::string& what);

/// Collapses all whitespace runs (newlines included) into single spaces and trims the ends.
std::string one_line(std::string_view text);

}  // namespace hyplora::data
