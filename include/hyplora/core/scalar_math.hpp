#pragma once
// Safe scalar functions of the hyperbolic maps and their derivatives.
//
// Every radial map of the library is phi(v) = rho(|v|) v/|v|, so it needs rho(n)/n and its
// derivative. Computed directly, f(x)/x divides by zero at 0 and its derivative
// (x f'(x) - f(x)) / x^2 cancels catastrophically near 0. Each function below therefore has a
// series branch below a threshold chosen per scalar type:
//  - sinh-family series have factorial coefficients: 8 terms are exact to rounding up to
//    |x| = 1 (float) / 0.5 (double), where the direct formula's cancellation error
//    eps/x^2 is already small.
//  - asinh / tanh / artanh series decay geometrically (~x^2 per term): 8 terms are exact to
//    rounding while x^16 < eps, i.e. |x| < 0.37 (float) / 0.105 (double).
// All functions are even (f(-x) = f(x)), derivatives odd. No function returns NaN or Inf for a
// finite argument: sinh/cosh arguments are clamped to Constants<T>::max_exp_arg(), artanh
// arguments to 1 - Constants<T>::ball_eps().

#include <cmath>

#include "hyplora/core/config.hpp"
#include "hyplora/core/constants.hpp"

namespace hyplora {
namespace math {

// ---- small helpers -------------------------------------------------------------------------

template <class T>
HYPLORA_INLINE T clamp(T x, T lo, T hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}
template <class T>
HYPLORA_INLINE T abs(T x) {
  return x < T(0) ? -x : x;
}
template <class T>
HYPLORA_INLINE T sign(T x) {
  return x < T(0) ? T(-1) : T(1);
}
/// sqrt(max(x, 0)): for quantities that are >= 0 mathematically but may round below 0.
template <class T>
HYPLORA_INLINE T safe_sqrt(T x) {
  return x > T(0) ? std::sqrt(x) : T(0);
}
/// True when x is neither NaN nor infinite (usable in device code).
template <class T>
HYPLORA_INLINE bool is_finite(T x) {
  return x == x && x - x == T(0);
}

/// Even power series sum_k c[k] x^(2k) by Horner's rule in x^2.
template <class T, int N>
HYPLORA_INLINE T even_series(const double (&c)[N], T x2) {
  T s = T(c[N - 1]);
  for (int k = N - 2; k >= 0; --k) s = s * x2 + T(c[k]);
  return s;
}
/// Derivative of the even series above: sum_k 2k c[k] x^(2k-1).
template <class T, int N>
HYPLORA_INLINE T even_series_deriv(const double (&c)[N], T x) {
  const T x2 = x * x;
  T s = T(2 * (N - 1) * c[N - 1]);
  for (int k = N - 2; k >= 1; --k) s = s * x2 + T(2 * k * c[k]);
  return s * x;
}

template <class T>
HYPLORA_INLINE T sinh_series_threshold() {
  return sizeof(T) == 4 ? T(1.0) : T(0.5);
}
template <class T>
HYPLORA_INLINE T geometric_series_threshold() {
  return sizeof(T) == 4 ? T(0.37) : T(0.105);
}

// Series coefficients (of x^(2k)), as local constants so that device code can use them too.
// sinh(x)/x = sum x^2k / (2k+1)!
#define HYPLORA_SERIES_SINH_OVER_X {1.0, 1.0 / 6.0, 1.0 / 120.0, 1.0 / 5040.0, 1.0 / 362880.0, 1.0 / 39916800.0, 1.0 / 6227020800.0, 1.0 / 1307674368000.0}
// asinh(x)/x = sum (-1)^k (2k)! / (4^k (k!)^2 (2k+1)) x^2k
#define HYPLORA_SERIES_ASINH_OVER_X {1.0, -1.0 / 6.0, 3.0 / 40.0, -5.0 / 112.0, 35.0 / 1152.0, -63.0 / 2816.0, 231.0 / 13312.0, -143.0 / 10240.0}
// tanh(x)/x (Bernoulli-number series)
#define HYPLORA_SERIES_TANH_OVER_X {1.0, -1.0 / 3.0, 2.0 / 15.0, -17.0 / 315.0, 62.0 / 2835.0, -1382.0 / 155925.0, 21844.0 / 6081075.0, -929569.0 / 638512875.0}
// artanh(x)/x = sum x^2k / (2k+1)
#define HYPLORA_SERIES_ARTANH_OVER_X {1.0, 1.0 / 3.0, 1.0 / 5.0, 1.0 / 7.0, 1.0 / 9.0, 1.0 / 11.0, 1.0 / 13.0, 1.0 / 15.0}

// ---- clamped elementary functions ----------------------------------------------------------

template <class T>
HYPLORA_INLINE T clamp_exp_arg(T x) {
  return clamp(x, -Constants<T>::max_exp_arg(), Constants<T>::max_exp_arg());
}
template <class T>
HYPLORA_INLINE T safe_sinh(T x) {
  return std::sinh(clamp_exp_arg(x));
}
template <class T>
HYPLORA_INLINE T safe_cosh(T x) {
  return std::cosh(clamp_exp_arg(x));
}
/// Largest admissible artanh argument: 1 - ball_eps.
template <class T>
HYPLORA_INLINE T artanh_max_arg() {
  return T(1) - Constants<T>::ball_eps();
}
template <class T>
HYPLORA_INLINE T safe_artanh(T x) {
  const T m = artanh_max_arg<T>();
  return std::atanh(clamp(x, -m, m));
}
/// arcosh(z) for z >= 1 (values below 1 from rounding are taken as 1).
template <class T>
HYPLORA_INLINE T safe_arcosh(T z) {
  return z > T(1) ? std::acosh(z) : T(0);
}

/// softplus(x) = log(1 + exp(x)), stable for large |x|.
template <class T>
HYPLORA_INLINE T softplus(T x) {
  return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
/// sigmoid(x) = d softplus / dx.
template <class T>
HYPLORA_INLINE T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}
/// Inverse of softplus: log(exp(y) - 1) = y + log(1 - exp(-y)), for y > 0.
template <class T>
HYPLORA_INLINE T softplus_inverse(T y) {
  return y + std::log(-std::expm1(-y));
}

// ---- asinh, tanh, atanh of a non-negative argument -------------------------------------------
// For float on the host these are evaluated in double through exp / log: within 0.5 ulp of float
// (tests/test_manifold_models.cpp checks them) and 2-3x faster than glibc's asinhf / tanhf /
// atanhf, which dominated the per-row cost of the radial maps. The double forms lose about
// 1e-16 / a relative to cancellation next to 1, far below float's 6e-8 for a >= 2^-20; below
// that f(a) = a in float. Double and device code use the library functions.

/// Below this (2^-20) asinh, tanh and atanh of a float equal a to rounding (a^2/3 < 2^-41).
template <class T>
HYPLORA_INLINE constexpr T identity_below() {
  return T(9.5367431640625e-07);
}
/// asinh(a) = log(a + sqrt(1 + a^2)), a >= 0 (a^2 cannot overflow in double for a float a).
template <class T>
HYPLORA_INLINE T asinh_nonneg(T a) {
#if !HYPLORA_IN_DEVICE_CODE
  if constexpr (sizeof(T) == 4) {
    if (a < identity_below<T>()) return a;
    const double d = double(a);
    return T(std::log(d + std::sqrt(1.0 + d * d)));
  }
#endif
  return std::asinh(a);
}
/// tanh(a) = (1 - e) / (1 + e), e = exp(-2a), a >= 0.
template <class T>
HYPLORA_INLINE T tanh_nonneg(T a) {
#if !HYPLORA_IN_DEVICE_CODE
  if constexpr (sizeof(T) == 4) {
    if (a < identity_below<T>()) return a;
    const double e = std::exp(-2.0 * double(a));
    return T((1.0 - e) / (1.0 + e));
  }
#endif
  return std::tanh(a);
}
/// atanh(a) = log((1 + a) / (1 - a)) / 2, 0 <= a < 1.
template <class T>
HYPLORA_INLINE T atanh_nonneg(T a) {
#if !HYPLORA_IN_DEVICE_CODE
  if constexpr (sizeof(T) == 4) {
    if (a < identity_below<T>()) return a;
    const double d = double(a);
    return T(0.5 * std::log((1.0 + d) / (1.0 - d)));
  }
#endif
  return std::atanh(a);
}

/// sqrt(1 + x^2) without overflow of x^2.
template <class T>
HYPLORA_INLINE T sqrt1p_sq(T x) {
  const T a = abs(x);
  return a > T(1) ? a * std::sqrt(T(1) + (T(1) / a) / a) : std::sqrt(T(1) + a * a);
}

// ---- f(x)/x and derivatives ------------------------------------------------------------------

/// f(x) and f'(x) of one function, evaluated together: the pair shares its transcendental call
/// (a VJP needs both; computing them apart costs two or three calls of sinh, asinh, tanh, atanh).
template <class T>
struct ValueDeriv {
  T f;
  T df;
};

/// sinh(a) and cosh(a) for a >= 0 from one exp: (e -/+ 1/e)/2, e = exp(min(a, max_exp_arg)).
/// Used beyond the series thresholds (a >= 0.5), where e - 1/e loses at most ~2 ulp to cancellation;
/// one exp costs about a third of std::sinh (glibc, float).
template <class T>
HYPLORA_INLINE void sinh_cosh_of_abs(T a, T& sh, T& ch) {
  const T e = std::exp(a < Constants<T>::max_exp_arg() ? a : Constants<T>::max_exp_arg());
  const T ie = T(1) / e;
  sh = T(0.5) * (e - ie);
  ch = T(0.5) * (e + ie);
}

/// sinh(x)/x (1 at 0).
template <class T>
HYPLORA_INLINE T sinh_over_x(T x) {
  constexpr double c[8] = HYPLORA_SERIES_SINH_OVER_X;
  const T a = abs(x);
  if (a < sinh_series_threshold<T>()) return even_series(c, a * a);
  // Beyond max_exp_arg the map saturates radially: sinh(max)/x, so that sinh_over_x(x) * x stays
  // sinh(min(x, max)) (a point of H_K stays on the hyperboloid with x_0 = cosh(max)).
  T sh, ch;
  sinh_cosh_of_abs(a, sh, ch);
  return sh / a;
}
/// sinh(x)/x and cosh(x) from one exp (the two factors of the Lorentz expmap0).
template <class T>
HYPLORA_INLINE void sinh_over_x_and_cosh(T x, T& f, T& cosh_x) {
  constexpr double c[8] = HYPLORA_SERIES_SINH_OVER_X;
  constexpr double cc[8] = {1.0, 1.0 / 2.0, 1.0 / 24.0, 1.0 / 720.0, 1.0 / 40320.0, 1.0 / 3628800.0,
                            1.0 / 479001600.0, 1.0 / 87178291200.0};  // cosh x = sum x^2k / (2k)!
  const T a = abs(x);
  if (a < sinh_series_threshold<T>()) {
    f = even_series(c, a * a);
    cosh_x = even_series(cc, a * a);
    return;
  }
  T sh;
  sinh_cosh_of_abs(a, sh, cosh_x);
  f = sh / a;
}
/// asinh(x)/x (1 at 0).
template <class T>
HYPLORA_INLINE T asinh_over_x(T x) {
  constexpr double c[8] = HYPLORA_SERIES_ASINH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>())
    return even_series(c, a * a);
  return asinh_nonneg(a) / a;
}
/// tanh(x)/x (1 at 0).
template <class T>
HYPLORA_INLINE T tanh_over_x(T x) {
  constexpr double c[8] = HYPLORA_SERIES_TANH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>())
    return even_series(c, a * a);
  return tanh_nonneg(a) / a;
}
/// artanh(x)/x (1 at 0), argument clamped to |x| <= 1 - ball_eps.
template <class T>
HYPLORA_INLINE T artanh_over_x(T x) {
  constexpr double c[8] = HYPLORA_SERIES_ARTANH_OVER_X;
  const T a = clamp(abs(x), T(0), artanh_max_arg<T>());
  if (a < geometric_series_threshold<T>())
    return even_series(c, a * a);
  return atanh_nonneg(a) / a;
}
// ---- value and derivative together (one transcendental call each) ------------------------------

/// sinh(x)/x and its derivative (x cosh x - sinh x)/x^2.
template <class T>
HYPLORA_INLINE ValueDeriv<T> sinh_over_x_with_deriv(T x) {
  constexpr double c[8] = HYPLORA_SERIES_SINH_OVER_X;
  const T a = abs(x);
  if (a < sinh_series_threshold<T>()) return {even_series(c, a * a), sign(x) * even_series_deriv(c, a)};
  T sh, ch;
  sinh_cosh_of_abs(a, sh, ch);
  const T f = sh / a;
  if (a > Constants<T>::max_exp_arg()) return {f, -sign(x) * f / a};  // saturated branch sinh(max)/x
  return {f, sign(x) * (ch - f) / a};  // (cosh a - sinh(a)/a)/a: no overflow of a cosh(a)
}
/// asinh(x)/x and its derivative (x/sqrt(1+x^2) - asinh x)/x^2.
template <class T>
HYPLORA_INLINE ValueDeriv<T> asinh_over_x_with_deriv(T x) {
  constexpr double c[8] = HYPLORA_SERIES_ASINH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>()) return {even_series(c, a * a), sign(x) * even_series_deriv(c, a)};
  const T f = asinh_nonneg(a) / a;
  return {f, sign(x) * (T(1) / (a * sqrt1p_sq(a)) - f / a)};
}
/// tanh(x)/x and its derivative (x sech^2 x - tanh x)/x^2.
template <class T>
HYPLORA_INLINE ValueDeriv<T> tanh_over_x_with_deriv(T x) {
  constexpr double c[8] = HYPLORA_SERIES_TANH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>()) return {even_series(c, a * a), sign(x) * even_series_deriv(c, a)};
  // sech^2 a = 4e/(1+e)^2 with e = exp(-2a), not 1 - tanh^2 a: that difference cancels for large a
  // (its absolute error eps/a was 9 eps of the whole derivative at a = 15 in double).
  const T t = tanh_nonneg(a), e = std::exp(T(-2) * a), sech2 = T(4) * e / ((T(1) + e) * (T(1) + e));
  return {t / a, sign(x) * (sech2 / a - t / (a * a))};
}
/// artanh(x)/x and its derivative (x/(1-x^2) - artanh x)/x^2; derivative 0 in the clamped region.
template <class T>
HYPLORA_INLINE ValueDeriv<T> artanh_over_x_with_deriv(T x) {
  constexpr double c[8] = HYPLORA_SERIES_ARTANH_OVER_X;
  const T a = abs(x);
  const T ac = clamp(a, T(0), artanh_max_arg<T>());
  if (ac < geometric_series_threshold<T>()) return {even_series(c, ac * ac), sign(x) * even_series_deriv(c, ac)};
  const T f = atanh_nonneg(ac) / ac;
  if (a > artanh_max_arg<T>()) return {f, T(0)};
  return {f, sign(x) * (T(1) / (a * (T(1) - a * a)) - f / a)};
}

/// The derivatives alone (d/dx of the functions above).
template <class T>
HYPLORA_INLINE T sinh_over_x_deriv(T x) { return sinh_over_x_with_deriv(x).df; }
template <class T>
HYPLORA_INLINE T asinh_over_x_deriv(T x) { return asinh_over_x_with_deriv(x).df; }
template <class T>
HYPLORA_INLINE T tanh_over_x_deriv(T x) { return tanh_over_x_with_deriv(x).df; }
template <class T>
HYPLORA_INLINE T artanh_over_x_deriv(T x) { return artanh_over_x_with_deriv(x).df; }

}  // namespace math
}  // namespace hyplora

#undef HYPLORA_SERIES_SINH_OVER_X
#undef HYPLORA_SERIES_ASINH_OVER_X
#undef HYPLORA_SERIES_TANH_OVER_X
#undef HYPLORA_SERIES_ARTANH_OVER_X
