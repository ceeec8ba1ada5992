#pragma once
// The checks of an optimiser state restored from a checkpoint (AdamW, RiemannianSGD, RiemannianAdam):
// each buffer has the optimiser's size and finite values (second moments also >= 0), the step count
// is >= 0. A buffer of another size used to be accepted and make the next step run past the
// caller's parameters.
#include <cmath>
#include <cstddef>
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

inline void check_step_count(long t, const char* who) {
  if (t < 0) throw std::invalid_argument(std::string(who) + ": step count must be >= 0, got " + std::to_string(t));
}

}  // namespace hyplora::optim::detail
