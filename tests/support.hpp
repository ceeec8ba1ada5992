#pragma once
// Test support shared by every test translation unit.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <string>

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

}  // namespace hyplora::test
