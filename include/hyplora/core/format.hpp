#pragma once
// Numbers in error messages: "%.6g", so that 1e-320, 3e38 and 0.5 read as such (std::to_string
// prints fixed notation with six decimals: 0.000000 for any tiny value).
#include <cstdio>
#include <string>

namespace hyplora {

/// v with six significant digits in the shortest of fixed and exponent notation.
inline std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace hyplora
