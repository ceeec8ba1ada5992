#pragma once
// Test support shared by every test translation unit.
#include <catch2/catch.hpp>
#include <stdlib.h>  // mkdtemp

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <string>
#include <system_error>

namespace hyplora::test {

/// The shared folder (models, data, reference outputs): $HYPLORA_SHARED_DIR, else the CMake
/// cache value baked in at configure time.
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("HYPLORA_SHARED_DIR"); env && *env) return env;
#ifdef HYPLORA_SHARED_DIR_DEFAULT
  return HYPLORA_SHARED_DIR_DEFAULT;
#else
  return "../shared";
#endif
}

/// Path of a file under the shared folder; when it is missing the current test is SKIPPED
/// (exit code 77, which ctest reports as "Skipped") with a visible message, never passed.
inline std::filesystem::path require_shared(const std::string& relative) {
  auto p = shared_dir() / relative;
  if (!std::filesystem::exists(p)) {
    std::cout << "SKIPPED: shared file " << p << " not found (set HYPLORA_SHARED_DIR)" << std::endl;
    std::cerr << "SKIPPED: shared file " << p << " not found (set HYPLORA_SHARED_DIR)" << std::endl;
    std::exit(77);
  }
  return p;
}

/// Tolerance as a multiple of the scalar type's machine epsilon.
template <class T>
constexpr T eps_tol(T multiple) {
  return multiple * std::numeric_limits<T>::epsilon();
}

/// Every byte of a file; the current test fails (naming the file) when it cannot be opened.
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  INFO("reading " << p);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Writes `bytes` to a file (replacing it); the current test fails when that does not work.
inline void spit(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  INFO("writing " << p);
  REQUIRE(out.good());
}

/// A fresh private folder under the system's temporary directory (mkdtemp), removed with its
/// contents when the object goes out of scope.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "hyplora-test") {
    std::string templ = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path = templ;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace hyplora::test
