#pragma once
// Curvature policies: where the hyperbolic scale K comes from.
//
// Convention (SPEC section 1): a hyperbolic manifold has sectional curvature -1/K with K > 0.
// The Lorentz model stores <x,x>_L = -K; the Poincare ball uses c = 1/K. Every VJP of the library
// reports the gradient with respect to K; a policy turns it into the gradient of its own
// parameter (LearnableCurvature: raw k with K = softplus(k) + K_min, so dK/dk = sigmoid(k)).
//
//  FixedCurvature<T, std::ratio<N, D>>  K = N/D fixed at compile time; K <= 0 does not compile.
//  RuntimeCurvature<T>                  K set at run time; K <= 0 or non-finite throws.
//  LearnableCurvature<T>                K = softplus(k) + K_min, k trainable.
//  FlatCurvature<T>                     the Euclidean policy (curvature 0).

#include <cmath>
#include <limits>
#include <ratio>
#include <stdexcept>
#include <string>

#include "hyplora/core/config.hpp"
#include "hyplora/core/format.hpp"
#include "hyplora/core/scalar_math.hpp"

namespace hyplora {

template <class T, class Ratio = std::ratio<1>>
struct FixedCurvature {
  static_assert(Ratio::num > 0 && Ratio::den > 0,
                "FixedCurvature: K must be positive (curvature -1/K of a hyperbolic manifold)");
  using scalar_type = T;
  static constexpr bool is_flat = false;
  static constexpr bool is_learnable = false;
  HYPLORA_INLINE constexpr T K() const { return T(Ratio::num) / T(Ratio::den); }
  /// dK / d(parameter): a fixed curvature has no parameter.
  HYPLORA_INLINE constexpr T dK_dparam() const { return T(0); }
};

namespace detail {
/// K > 0 and finite; and within [m, 1/m] for T's smallest normal m, so that sqrt K, 1/K (the ball's
/// c) and 1/sqrt K are normal numbers of T (K = 1e-40 in float made c infinite and mobius_add NaN).
template <class T>
inline void require_positive_curvature(T K_in, const char* who) {
  const double K = double(K_in);
  if (!(K > 0.0) || !std::isfinite(K))
    throw std::invalid_argument(std::string(who) + ": curvature scale K must be positive and finite, got " +
                                format_number(K));
  const double lo = double(std::numeric_limits<T>::min()), hi = 1.0 / lo;
  if (K < lo || K > hi)
    throw std::invalid_argument(std::string(who) + ": curvature scale K must be in [" + format_number(lo) + ", " +
                                format_number(hi) + "] for this scalar type (1/K and sqrt K stay normal numbers), got " +
                                format_number(K));
}
}  // namespace detail

template <class T>
class RuntimeCurvature {
 public:
  using scalar_type = T;
  static constexpr bool is_flat = false;
  static constexpr bool is_learnable = false;
  /// Throws std::invalid_argument when K <= 0, NaN or Inf.
  explicit RuntimeCurvature(T K = T(1)) : K_(K) {
    detail::require_positive_curvature(K, "RuntimeCurvature");
  }
  HYPLORA_INLINE T K() const { return K_; }
  HYPLORA_INLINE T dK_dparam() const { return T(0); }
  void set_K(T K) {
    detail::require_positive_curvature(K, "RuntimeCurvature::set_K");
    K_ = K;
  }

 private:
  T K_;
};

template <class T>
class LearnableCurvature {
 public:
  using scalar_type = T;
  static constexpr bool is_flat = false;
  static constexpr bool is_learnable = true;

  /// Starts at K = initial_K (> K_min); the raw parameter is softplus^-1(initial_K - K_min).
  explicit LearnableCurvature(T initial_K = T(1), T K_min = T(1e-6)) : K_min_(K_min) {
    detail::require_positive_curvature(K_min, "LearnableCurvature (K_min)");
    if (!(initial_K > K_min) || !std::isfinite(double(initial_K)))
      throw std::invalid_argument("LearnableCurvature: initial K must be finite and > K_min, got " +
                                  format_number(double(initial_K)));
    raw_ = math::softplus_inverse(initial_K - K_min);
  }
  /// Builds from the raw parameter directly (K = softplus(raw) + K_min).
  static LearnableCurvature from_raw(T raw, T K_min = T(1e-6)) {
    detail::require_positive_curvature(K_min, "LearnableCurvature::from_raw (K_min)");
    LearnableCurvature c(FromRaw{}, K_min);  // not through initial_K: 1 + K_min == K_min for K_min >= 2^24 (float)
    c.set_raw(raw);
    return c;
  }
  HYPLORA_INLINE T K() const { return math::softplus(raw_) + K_min_; }
  /// dK/draw = sigmoid(raw): multiply a dL/dK by this to get dL/draw.
  HYPLORA_INLINE T dK_dparam() const { return math::sigmoid(raw_); }
  HYPLORA_INLINE T raw() const { return raw_; }
  HYPLORA_INLINE T K_min() const { return K_min_; }
  /// Pointer to the raw parameter, so that an optimiser can walk it in place.
  T* raw_ptr() { return &raw_; }
  void set_raw(T raw) {
    if (!std::isfinite(double(raw)))
      throw std::invalid_argument("LearnableCurvature::set_raw: raw parameter is not finite");
    raw_ = raw;
  }

 private:
  struct FromRaw {};
  LearnableCurvature(FromRaw, T K_min) : K_min_(K_min) {}
  T raw_ = T(0);
  T K_min_ = T(1e-6);
};

/// The Euclidean policy: curvature 0, no parameter.
template <class T>
struct FlatCurvature {
  using scalar_type = T;
  static constexpr bool is_flat = true;
  static constexpr bool is_learnable = false;
  HYPLORA_INLINE constexpr T dK_dparam() const { return T(0); }
};

}  // namespace hyplora
