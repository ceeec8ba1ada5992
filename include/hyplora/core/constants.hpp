#pragma once
// Per-scalar-type numerical constants, derived from std::numeric_limits (as in Sophus'
// Constants<Scalar> and manif's constants.h). Every tolerance and series threshold in the library
// comes from here, so float and double get thresholds fit for their own precision.

#include <cmath>
#include <limits>

#include "hyplora/core/config.hpp"

namespace hyplora {

template <class T>
struct Constants {
  static_assert(std::numeric_limits<T>::is_iec559, "hyplora needs an IEEE floating-point scalar");

  /// Machine epsilon of T.
  HYPLORA_INLINE static constexpr T epsilon() { return std::numeric_limits<T>::epsilon(); }

  /// Largest finite T.
  HYPLORA_INLINE static constexpr T max_value() { return std::numeric_limits<T>::max(); }

  /// Below this |x| the series sinh(x)/x ~ 1 + x^2/6 + x^4/120 is exact to rounding:
  /// the first omitted term x^6/5040 is below eps when x < (5040 eps)^(1/6).
  HYPLORA_INLINE static constexpr T series_threshold() {
    return sizeof(T) == 4 ? T(0.085) : T(0.0095);  // (5040 eps)^(1/6) for float / double, rounded down
  }

  /// Largest argument of exp/cosh/sinh that stays finite with a safety margin:
  /// about log(max) - 8 (88.7 for float, 709.8 for double): leaves a factor e^8 ~ 3000 of room so
  /// that derivatives such as t sinh(t) and products with O(1) factors stay finite too.
  HYPLORA_INLINE static constexpr T max_exp_arg() { return sizeof(T) == 4 ? T(80.0) : T(700.0); }

  /// Distance from 1 kept by artanh arguments and ball points: sqrt(c)||p|| <= 1 - ball_eps.
  /// 4 eps for float (1e-7 scale ... too tight for float, so use a wider margin, matching geoopt's
  /// 4e-3 for float32 and 1e-5 for float64).
  HYPLORA_INLINE static constexpr T ball_eps() { return sizeof(T) == 4 ? T(4e-3) : T(1e-5); }

  /// Smallest norm used as a divisor; below it a radial map uses its series branch.
  HYPLORA_INLINE static constexpr T min_norm() { return sizeof(T) == 4 ? T(1e-15) : T(1e-150); }

  /// sqrt(epsilon): scale for relative checks of quantities computed through cancellation.
  HYPLORA_INLINE static T sqrt_epsilon() { return std::sqrt(epsilon()); }

  /// Default tolerance of check_point / check_vector, relative to the scale of the point.
  HYPLORA_INLINE static constexpr T check_tolerance() { return T(1000) * epsilon(); }
};

}  // namespace hyplora
