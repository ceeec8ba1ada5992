#pragma once
// FormatError: the exception every file reader throws for bad input. Its message names the file,
// the byte offset (when one applies) and the problem, e.g.
//   "model.gguf: offset 24: tensor count 18446744073709551615 cannot fit in a 1053984-byte file".
#include <cstdint>
#include <stdexcept>
#include <string>

namespace hyplora::formats {

class FormatError : public std::runtime_error {
 public:
  FormatError(const std::string& file, const std::string& problem) : std::runtime_error(file + ": " + problem) {}
  FormatError(const std::string& file, std::uint64_t offset, const std::string& problem)
      : std::runtime_error(file + ": offset " + std::to_string(offset) + ": " + problem) {}
};

}  // namespace hyplora::formats
