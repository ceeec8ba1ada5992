#pragma once
// ByteCursor: bounds-checked little-endian reads over a byte buffer. Every read that would run
// past the end throws FormatError naming the file, the offset and what was being read.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "formats/format_error.hpp"

namespace hyplora::formats {

/// Whole file into memory; FormatError when it cannot be opened or read.
std::string read_whole_file(const std::filesystem::path& path);

class ByteCursor {
 public:
  ByteCursor(std::string_view bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}

  std::uint64_t offset() const { return pos_; }
  std::uint64_t size() const { return bytes_.size(); }
  std::uint64_t remaining() const { return bytes_.size() - pos_; }
  const std::string& file() const { return file_; }
  bool at_end() const { return pos_ == bytes_.size(); }

  [[noreturn]] void fail(const std::string& problem) const { throw FormatError(file_, pos_, problem); }
  [[noreturn]] void fail_at(std::uint64_t offset, const std::string& problem) const {
    throw FormatError(file_, offset, problem);
  }

  /// n raw bytes (a view into the buffer).
  std::string_view bytes(std::uint64_t n, const char* what) {
    if (n > remaining())
      fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes, only " +
           std::to_string(remaining()) + " left");
    std::string_view v = bytes_.substr(pos_, n);
    pos_ += n;
    return v;
  }

  template <class T>
  T read(const char* what) {
    static_assert(std::is_trivially_copyable_v<T>);
    std::string_view v = bytes(sizeof(T), what);
    T out;
    std::memcpy(&out, v.data(), sizeof(T));  // the project targets little-endian hosts
    return out;
  }

  void seek(std::uint64_t offset) {
    if (offset > bytes_.size()) fail("seek to " + std::to_string(offset) + " past the end of the file");
    pos_ = offset;
  }

 private:
  std::string_view bytes_;
  std::string file_;
  std::uint64_t pos_ = 0;
};

/// True when s is well-formed UTF-8 (no overlong forms, no surrogates, no code point > U+10FFFF).
bool is_valid_utf8(std::string_view s);

/// IEEE half and bfloat16 to float (exact; subnormals, Inf and NaN kept).
float half_to_float(std::uint16_t h);
float bf16_to_float(std::uint16_t b);
/// float to IEEE half, round to nearest even (overflow to Inf).
std::uint16_t float_to_half(float f);

}  // namespace hyplora::formats
