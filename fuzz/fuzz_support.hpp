#pragma once
// Shared helpers of the libFuzzer targets: readers that take a path get the input through a
// per-process scratch file (in /dev/shm when it exists, so the disk is not hammered).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace hyplora::fuzz {

/// A scratch file "<tmp>/hyplora-fuzz-<pid>-<tag><suffix>", rewritten for every input.
class ScratchFile {
 public:
  ScratchFile(const std::string& tag, const std::string& suffix) {
    std::filesystem::path dir = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    path_ = dir / ("hyplora-fuzz-" + std::to_string(::getpid()) + "-" + tag + suffix);
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  const std::filesystem::path& write(const std::uint8_t* data, std::size_t size) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) std::abort();  // the harness itself failed: not a finding about the reader
    return path_;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace hyplora::fuzz
