#pragma once
// Reading a small text file whole (a --config file, a sweep grid, a sweep cell record) with errors
// that name the file: a folder, a FIFO or a device is refused before it is opened (a FIFO blocked
// the read forever, a folder threw libstdc++'s std::ios_base::failure "basic_filebuf::underflow
// error reading the file: Is a directory" out of the JSON parser).
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace hyplora::util {

/// The file could not be read as a regular file; what() names the path and the problem.
class FileReadError : public std::runtime_error {
 public:
  FileReadError(const std::string& message, bool missing) : std::runtime_error(message), missing_(missing) {}
  /// True when the path does not exist (callers with their own "missing" message use it).
  bool missing() const { return missing_; }

 private:
  bool missing_;
};

/// The whole text of `path`, a regular file. `what` says what the file should be ("--config must be
/// a JSON file"): "<path>: <what>, not a folder". Throws FileReadError, never std::ios_base::failure.
inline std::string read_regular_file(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw FileReadError(path + ": no such file", true);
  if (fs::is_directory(status)) throw FileReadError(path + ": " + what + ", not a folder", false);
  if (!fs::is_regular_file(status)) {
    const char* kind = fs::is_fifo(status)                                         ? "a FIFO (named pipe)"
                       : fs::is_character_file(status) || fs::is_block_file(status) ? "a device"
                       : fs::is_socket(status)                                      ? "a socket"
                                                                                    : "a special file";
    throw FileReadError(path + ": " + what + ", not " + kind, false);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileReadError(path + ": cannot be opened: " + std::strerror(errno), false);
  std::ostringstream text;
  try {
    text << in.rdbuf();  // operator<< catches a read error and sets failbit on `text`
  } catch (const std::exception& e) {
    throw FileReadError(path + ": read error: " + e.what(), false);
  }
  if (in.bad()) throw FileReadError(path + ": read error", false);
  return text.str();
}

}  // namespace hyplora::util
