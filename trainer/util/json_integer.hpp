#pragma once
// Whether a JSON number holds an integer that fits T exactly. nlohmann's get<T> / get_to cast
// without a check: 1e20 into an int is undefined behaviour, 4294967297 became 1 in an int, -1
// wrapped to 2^64 - 1 in a uint64, 1.5 was truncated to 1. An integral float (3.0) fits.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace hyplora::util {

/// True for a number that is an integer in T's range; false for other numbers; true for
/// non-numbers (their type error is the reader's to report).
template <class T>
bool json_integer_fits(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<T>::max());
  if (v.is_number_integer()) {
    const std::int64_t i = v.get<std::int64_t>();
    return i >= 0 ? std::uint64_t(i) <= std::uint64_t(std::numeric_limits<T>::max())
                  : std::is_signed_v<T> && i >= std::int64_t(std::numeric_limits<T>::min());
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    return d == std::floor(d) && d >= double(std::numeric_limits<T>::min()) &&
           d < double(std::numeric_limits<T>::max()) + 1.0;
  }
  return true;
}

}  // namespace hyplora::util
