#pragma once
// The adapter variants of SPEC section 3 as per-row radial maps with their VJPs.
//
// Every lift / lower map of the library is radial: phi(v) = f(|v|) v with f(n) = rho(n)/n.
// Its VJP is   g -> f g + (n f'(n)) (v.g / n^2) v   (= SPEC's (rho'-rho/n)(v.g/n^2) v form), and the
// gradient w.r.t. the curvature scale K is (df/dK) (v.g). A variant therefore only supplies
// f, n f'(n) and df/dK for its lift (input side) and its lower map (output side). n f'(n) rather
// than f'(n): it has the magnitude of f (for asinh(n)/n it is -log(2n)/n, where f'(n) ~ log(n)/n^2
// leaves float's range at n ~ 1e19).
//
//   lora              u = x,            Delta = y                                  (Euclidean)
//   lora_scaled       u = x / s,        Delta = y                                  (control of SPEC 5)
//   naive             u = log0(exp0(x)), Delta = log0(exp0(y))   (computed literally; equals lora)
//   hyplora_lorentz   u = sqrtK sinh(t) v/|v|, Delta = sqrtK asinh(|y|/sqrtK) y/|y|,  v = x/s, t = |v|/sqrtK
//   hyplora_poincare  u = tanh(t) sqrtK v/|v| (expmap0, c = 1/K), y projected into the ball of radius
//                     (1-eps) sqrtK, Delta = sqrtK artanh(|y|/sqrtK) y/|y| (logmap0)
//   paper             marlin-codes/HypLoRA: u = sqrtK sinh(min(t, 12)) v/|v|, time coordinate
//                     y0 = sqrt(|y|^2 + 1/K), theta = y0/sqrtK, Delta = sqrtK a(theta) y/max(|y|, 1e-7)
//                     with a = sqrt(2 max(theta - 1, eps)) below theta = 1.01, arcosh above
//
// The functions are HYPLORA_INLINE so the CPU loop and a Thrust/CUDA functor share them.
#include <cmath>
#include <cstdint>

#include "hyplora/core/config.hpp"
#include "hyplora/core/constants.hpp"
#include "hyplora/core/scalar_math.hpp"

namespace hyplora::adapter {

/// f(n) = rho(n)/n of a radial map and its derivatives: ndf = n f'(n), df_dK = df/dK.
template <class T>
struct RadialFactor {
  T f = T(1);
  T ndf = T(0);
  T df_dK = T(0);
};

/// Constants a row map may need besides K.
template <class T>
struct MapSettings {
  T sinh_clamp = T(12);     // paper lift
  T theta_eps = T(1e-6);    // paper lower
};

namespace detail {
/// Factor of a map f(t) with t = n / sqrtK, given F = f(t) and tdF = t f'(t):
/// n d/dn f = t f'(t), and d/dK f = f'(t) dt/dK = -t f'(t) / (2K). The factor 1/(2K) is a
/// constant that a loop over rows computes once.
template <class T>
HYPLORA_INLINE RadialFactor<T> factor_of_t(T F, T tdF, T K) {
  RadialFactor<T> r;
  r.f = F;
  r.ndf = tdF;
  r.df_dK = -tdF * (T(0.5) / K);
  return r;
}
template <class T>
HYPLORA_INLINE RadialFactor<T> factor_of_t(math::ValueDeriv<T> F, T K) {
  return factor_of_t(F.f, F.df, K);
}
}  // namespace detail

// ---- variant tags --------------------------------------------------------------------------
// has_lift / has_lower: whether the map is not the identity (lora-type maps are folded into GEMMs).
// uses_curvature: whether K enters the maps. scaled: default input scale s = sqrt(d_in).

struct Lora {
  static constexpr const char* name = "lora";
  static constexpr bool has_lift = false, has_lower = false, uses_curvature = false, scaled = false, paper = false;
};
struct LoraScaled {
  static constexpr const char* name = "lora_scaled";
  static constexpr bool has_lift = false, has_lower = false, uses_curvature = false, scaled = true, paper = false;
};

/// The naive sandwich log0(exp0(.)) on both sides, computed literally on the Lorentz model. Below
/// the overflow clamp of sinh (t = n/sqrtK <= max_exp_arg: 80 in float, 700 in double) it is the
/// identity up to rounding, so its exact VJP there is the identity and its K-gradient 0. Beyond,
/// exp0 saturates at sinh(max_exp_arg) and the composition clamps the norm: f = max_exp_arg / t,
/// whose VJP (t f' = -f, df/dK = f/(2K)) is what the backward gives there.
struct Naive {
  static constexpr const char* name = "naive";
  static constexpr bool has_lift = true, has_lower = true, uses_curvature = true, scaled = false, paper = false;
  template <class T>
  HYPLORA_INLINE static RadialFactor<T> sandwich(T n, T K) {
    const T sqrtK = std::sqrt(K);
    const T t = n / sqrtK;
    const T sx = math::sinh_over_x(t);                   // exp0: x_s = sqrtK sinh(t) x/n = sx x
    const T back = math::asinh_over_x(sx * t);           // log0: sqrtK asinh(|x_s|/sqrtK) x_s/|x_s|
    const T f = back * sx;
    return detail::factor_of_t(f, t > Constants<T>::max_exp_arg() ? -f : T(0), K);
  }
  template <class T>
  HYPLORA_INLINE static RadialFactor<T> lift(T n, T K, const MapSettings<T>&) { return sandwich(n, K); }
  template <class T>
  HYPLORA_INLINE static RadialFactor<T> lower(T n, T K, const MapSettings<T>&) { return sandwich(n, K); }
};

struct HypLoraLorentz {
  static constexpr const char* name = "hyplora_lorentz";
  static constexpr bool has_lift = true, has_lower = true, uses_curvature = true, scaled = true, paper = false;
  /// space part of expmap0: sqrtK sinh(t) v/n = sinh(t)/t v.
  template <class T>
  HYPLORA_INLINE static RadialFactor<T> lift(T n, T K, const MapSettings<T>&) {
    const T t = n * (T(1) / std::sqrt(K));
    return detail::factor_of_t(math::sinh_over_x_with_xderiv(t), K);
  }
  /// logmap0 of (sqrt(|y|^2+K), y): sqrtK asinh(n/sqrtK) y/n = asinh(t)/t y.
  template <class T>
  HYPLORA_INLINE static RadialFactor<T> lower(T n, T K, const MapSettings<T>&) {
    const T t = n * (T(1) / std::sqrt(K));
    return detail::factor_of_t(math::asinh_over_x_with_xderiv(t), K);
  }
};

struct HypLoraPoincare {
  static constexpr const char* name = "hyplora_poincare";
  static constexpr bool has_lift = true, has_lower = true, uses_curvature = true, scaled = true, paper = false;
  /// expmap0 on the ball with c = 1/K: tanh(sqrt(c) n) v/(sqrt(c) n) = tanh(t)/t v.
  template <class T>
  HYPLORA_INLINE static RadialFactor<T> lift(T n, T K, const MapSettings<T>&) {
    const T t = n * (T(1) / std::sqrt(K));
    return detail::factor_of_t(math::tanh_over_x_with_xderiv(t), K);
  }
  /// Project y into the ball (sqrt(c)|y| <= 1 - ball_eps), then logmap0: artanh(t)/t y.
  template <class T>
  HYPLORA_INLINE static RadialFactor<T> lower(T n, T K, const MapSettings<T>&) {
    const T t = n * (T(1) / std::sqrt(K));
    // projected where t > m: Delta = sqrtK artanh(m) y/|y|, f = artanh(m)/t = (artanh(m)/m) (m/t),
    // t f' = -f. Beyond m the inside form is clamped to m, so inside.f is artanh(m)/m there: no
    // artanh of the constant per row. (Both forms evaluated and one selected: no branch, so a loop
    // over rows vectorises.)
    const T m = math::artanh_max_arg<T>();
    const math::ValueDeriv<T> inside = math::artanh_over_x_with_xderiv(t);
    const T f_projected = inside.f * (m / (t > m ? t : m));
    return detail::factor_of_t(t > m ? math::ValueDeriv<T>{f_projected, -f_projected} : inside, K);
  }
};

/// The behaviour of the published code (marlin-codes/HypLoRA, peft/tuners/lora/layer.py), for
/// reproduction only: it is inconsistent at K != 1 (see SPEC section 3 and docs/adapters.md).
struct PaperHypLora {
  static constexpr const char* name = "paper";
  static constexpr bool has_lift = true, has_lower = true, uses_curvature = true, scaled = true, paper = true;
  /// sqrtK sinh(min(t, clamp)) v/n.
  template <class T>
  HYPLORA_INLINE static RadialFactor<T> lift(T n, T K, const MapSettings<T>& s) {
    const T t = n / std::sqrt(K);
    if (t > s.sinh_clamp) {
      const T sc = std::sinh(s.sinh_clamp);
      return detail::factor_of_t(sc / t, -sc / t, K);  // f = sinh(clamp)/t, t f' = -f
    }
    return detail::factor_of_t(math::sinh_over_x_with_xderiv(t), K);
  }
  /// The published code's norm clamp of the lower map, max(|y|, 1e-7), in every precision (it
  /// computes the branch in float32 whatever the model's type).
  static constexpr double norm_clamp = 1e-7;
  /// Below this theta the published code takes sqrt(2 (theta - 1)) (the first term of arcosh's
  /// series at 1) for arcosh(theta).
  static constexpr double series_below = 1.01;
  /// theta = sqrt(n^2 + 1/K)/sqrtK; rho = sqrtK a(theta) with the published code's arcosh
  ///   a(theta) = sqrt(2 max(theta - 1, eps))  for theta < 1.01,   arcosh(theta) above;
  /// Delta = rho y / max(n, 1e-7).
  template <class T>
  HYPLORA_INLINE static RadialFactor<T> lower(T n, T K, const MapSettings<T>& s) {
    const T sqrtK = std::sqrt(K);
    // theta^2 overflows T beyond |y| ~1.8e19 sqrt(min(K, 1)) in float (the branch was inf, dX NaN):
    // theta = n/sqrt K there (1/(K n^2) is below T's rounding), and theta^2 - 1 = theta^2
    const T theta2 = (n * n + T(1) / K) / K;
    const T theta = math::is_finite(theta2) || !math::is_finite(n) ? std::sqrt(theta2) : n / sqrtK;
    T ach, dach;  // a(theta) and da/dtheta
    if (theta < T(series_below)) {
      const T e = theta - T(1);
      const bool clamped = !(e > s.theta_eps);
      ach = std::sqrt(T(2) * (clamped ? s.theta_eps : e));
      dach = clamped ? T(0) : T(1) / ach;
    } else {
      const T t2m1 = (theta - T(1)) * (theta + T(1));
      const bool far = !math::is_finite(t2m1);  // arcosh(theta) = log(2 theta) to T's precision
      const T root = far ? theta : std::sqrt(t2m1);
      ach = far ? std::log(theta) + T(0.693147180559945309417232) : std::log(theta + root);
      dach = T(1) / root;
    }
    const T rho = sqrtK * ach;
    const T drho_dn = (sqrtK / K) * (n / theta) * dach;  // dtheta/dn = n / (K theta); K theta may overflow
    // dtheta/dK = -(n^2/K^2 + 2/K^3) / (2 theta) = -(theta + 1/(K^2 theta)) / (2K), so
    // drho/dK = ach/(2 sqrtK) + sqrtK dach dtheta/dK = (ach - dach (theta + 1/(K^2 theta))) / (2 sqrtK):
    // dach theta (theta/root above 1.01) stays in range where dtheta/dK alone overflows (float
    // theta > ~1e32 at K = 1e-6, where the K-gradient was -inf).
    const T drho_dK = (ach - (dach * theta + dach / (K * K * theta))) / (T(2) * sqrtK);
    const T c = T(norm_clamp);
    const bool above = n > c;
    const T nn = above ? n : c;
    RadialFactor<T> r;
    r.f = rho / nn;
    r.ndf = above ? drho_dn - r.f : n * drho_dn / c;  // n f'(n): f = rho/n above the clamp, rho/c below
    r.df_dK = drho_dK / nn;
    return r;
  }
};

// ---- shared row kernels -----------------------------------------------------------------------

/// Counter-based hash (splitmix64 finaliser): the same stream on every backend and thread.
HYPLORA_INLINE std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
/// Uniform in [0, 1) from (seed, stream, index).
HYPLORA_INLINE double uniform01(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  const std::uint64_t h = mix64(mix64(seed ^ mix64(stream)) ^ index);
  return double(h >> 11) * (1.0 / 9007199254740992.0);
}
/// Dropout multiplier of element `index` for forward call `stream`: 0 or 1/(1-p).
template <class T>
HYPLORA_INLINE T dropout_multiplier(std::uint64_t seed, std::uint64_t stream, std::uint64_t index, T p) {
  if (p <= T(0)) return T(1);
  return uniform01(seed, stream, index) < double(p) ? T(0) : T(1) / (T(1) - p);
}

/// `#pragma omp simd` on host row loops (lets g++ vectorise the reductions); nothing under nvcc, nor
/// under clang (see HYPLORA_OMP_SIMD in core/simd_dispatch.hpp).
#if defined(_OPENMP) && !defined(__CUDACC__) && !defined(__clang__)
#define HYPLORA_SIMD_PRAGMA(x) _Pragma(#x)
#else
#define HYPLORA_SIMD_PRAGMA(x)
#endif

template <class T>
HYPLORA_INLINE T dot(const T* a, const T* b, index_t d) {
  T s = T(0);
  HYPLORA_SIMD_PRAGMA(omp simd reduction(+ : s))
  for (index_t j = 0; j < d; ++j) s += a[j] * b[j];
  return s;
}

}  // namespace hyplora::adapter
