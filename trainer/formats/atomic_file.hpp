#pragma once
// Atomic file writing: the bytes go to a temporary file in the destination's folder, are flushed
// and fsync'ed, and the temporary file is renamed over the destination (then the folder is
// fsync'ed). A reader therefore sees either the old file or the complete new one, never a torn
// one, even if the process is killed at any moment.
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hyplora::formats {

/// Streams bytes into "<dir>/.<name>.tmp.<pid>.<n>"; commit() publishes them as `path`. Destroyed
/// without commit() (an exception, an early return), it removes the temporary file and leaves
/// `path` untouched. Errors throw std::runtime_error naming the file and the system error.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, std::size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  /// Bytes written so far.
  std::size_t size() const { return written_; }
  /// fsync, close, rename over the destination, fsync the folder.
  void commit();

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  std::filesystem::path path_, temp_;
  int fd_ = -1;
  std::size_t written_ = 0;
  bool committed_ = false;
};

/// Whole contents at once.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

/// Same file (after following links and ".."): existing files by identity, others by path.
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b);

/// Throws std::invalid_argument "<flag> <out> is the <input flag> file itself ..." when `out` is one
/// of `inputs` (pairs of an input's path and the flag that named it; empty paths are skipped): an
/// output written over the model or the data it was computed from destroys that input.
void require_not_an_input(const std::filesystem::path& out, const char* out_flag,
                          const std::vector<std::pair<std::filesystem::path, std::string>>& inputs);

/// Checked before expensive work, so that a bad output path does not cost the run: `dir` (the
/// folder an output will be written into) can take new files. A path component that exists but is
/// not a folder (a regular file used as a folder) is an error; a missing `dir` is an error unless
/// `created_later` (the command makes it: then its nearest existing ancestor must take new files).
/// Writability is probed, not guessed from permission bits: a file ".write-check.tmp.<pid>.<n>"
/// (the temporary-file pattern, so remove_stale_temp_files knows it) is created and removed in the
/// folder, so read-only mounts, ACLs, /sys and root's exemptions all count as for the real write.
/// Throws std::invalid_argument "<what>: <problem>" (what names the flag and its value).
void require_writable_folder(const std::filesystem::path& dir, const std::string& what, bool created_later);

/// Removes the temporary files ".<name>.tmp.<pid>.<n>" in `dir` (not recursive) whose writing
/// process no longer runs: what a writer killed by SIGKILL or a power cut leaves behind (its
/// destination was never touched). Temporary files of live processes are kept. Returns the paths
/// removed; a folder that does not exist gives none.
std::vector<std::filesystem::path> remove_stale_temp_files(const std::filesystem::path& dir);

}  // namespace hyplora::formats
