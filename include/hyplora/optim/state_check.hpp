#pragma once
// The checks of an optimiser state restored from a checkpoint (AdamW, RiemannianSGD, RiemannianAdam):
// each buffer has the optimiser's size and finite values (second moments also >= 0), the step count
// is >= 0. A buffer of another size used to be accepted and make the next step run past the
// caller's parameters.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace hyplora::optim::detail {

enum class StateSign { any, non_negative };

template <class T>
void check_state_buffer(const std::vector<T>& buf, std::size_t expected, const char* who, const char* name,
                        StateSign sign = StateSign::any) {
  if (buf.size() != expected)
    throw std::invalid_argument(std::string(who) + ": " + name + " has " + std::to_string(buf.size()) +
                                " values, the optimiser " + std::to_string(expected));
  for (std::size_t i = 0; i < buf.size(); ++i)
    if (!std::isfinite(double(buf[i])) || (sign == StateSign::non_negative && buf[i] < T(0)))
      throw std::invalid_argument(std::string(who) + ": " + name + "[" + std::to_string(i) + "] = " +
                                  std::to_string(double(buf[i])) +
                                  (sign == StateSign::non_negative ? " is negative or not finite" : " is not finite"));
}

/// The settings are checked in double, then used in the optimiser's scalar type T: each must keep
/// its meaning there. A float optimiser took eps = 1e-50 as 0 (a NaN parameter at a zero gradient,
/// as dA at B = 0), beta2 = 1 - 1e-9 as 1 (no bias correction: a step of 3e5), lr = 1e39 as inf and
/// lr = 1e-50 as 0 (nothing moved, silently).
enum class SettingKind { magnitude, beta };  // beta: must also stay below 1
template <class T>
void check_setting_in_scalar(double value, SettingKind kind, const char* who, const char* name) {
  const T v = T(value);
  const char* problem = nullptr;
  if (kind == SettingKind::beta && !(v < T(1))) problem = "rounds to 1";
  else if (!std::isfinite(double(v))) problem = "overflows";
  else if (value != 0.0 && v == T(0)) problem = "rounds to 0";
  if (problem) {
    char shown[40];  // a beta with ten digits: 0.999999999 must not read as 1
    std::snprintf(shown, sizeof shown, kind == SettingKind::beta ? "%.10g" : "%.6g", value);
    throw std::invalid_argument(std::string(who) + ": " + name + " = " + shown + " " + problem +
                                " in the optimiser's " + std::to_string(8 * sizeof(T)) + "-bit scalar type");
  }
}

inline void check_step_count(long t, const char* who) {
  if (t < 0) throw std::invalid_argument(std::string(who) + ": step count must be >= 0, got " + std::to_string(t));
}

}  // namespace hyplora::optim::detail
