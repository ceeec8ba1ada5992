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
// For float on the host the value functions are evaluated in double, without branches or calls
// (namespace host_float below), so that loops over many rows vectorise; the *_with_deriv
// functions (value and derivative from one evaluation) take the same branch-free path.

#include <cmath>
#include <limits>

#include "hyplora/core/config.hpp"
#include "hyplora/core/constants.hpp"
#include "hyplora/core/exp_log.hpp"

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
/// sqrt(max(x, 0)): for quantities that are >= 0 mathematically but may round below 0. A NaN
/// stays NaN (NaN in, NaN out).
template <class T>
HYPLORA_INLINE T safe_sqrt(T x) {
  return x > T(0) ? std::sqrt(x) : (x == x ? T(0) : x);  // +0 for -0 and for x < 0
}
/// True when x is neither NaN nor infinite (usable in device code).
template <class T>
HYPLORA_INLINE bool is_finite(T x) {
  return x == x && x - x == T(0);
}

/// The even power series sum_{k<M} c[k] x^(2k) over the first M coefficients of c, by Horner's rule
/// in x^2 (the host-float path sums shorter series than the generic one).
template <int M, class T, int N>
HYPLORA_INLINE T even_series_head(const double (&c)[N], T x2) {
  static_assert(M >= 1 && M <= N, "even_series_head: 1 <= M <= N");
  T s = T(c[M - 1]);
  for (int k = M - 2; k >= 0; --k) s = s * x2 + T(c[k]);
  return s;
}
/// Its derivative: sum_{1<=k<M} 2k c[k] x^(2k-1).
template <int M, class T, int N>
HYPLORA_INLINE T even_series_deriv_head(const double (&c)[N], T x) {
  static_assert(M >= 2 && M <= N, "even_series_deriv_head: 2 <= M <= N");
  const T x2 = x * x;
  T s = T(2 * (M - 1) * c[M - 1]);
  for (int k = M - 2; k >= 1; --k) s = s * x2 + T(2 * k * c[k]);
  return s * x;
}
/// The whole series sum_k c[k] x^(2k), and its derivative.
template <class T, int N>
HYPLORA_INLINE T even_series(const double (&c)[N], T x2) {
  return even_series_head<N>(c, x2);
}
template <class T, int N>
HYPLORA_INLINE T even_series_deriv(const double (&c)[N], T x) {
  return even_series_deriv_head<N>(c, x);
}

template <class T>
HYPLORA_INLINE constexpr T sinh_series_threshold() {
  return sizeof(T) == 4 ? T(1.0) : T(0.5);
}
template <class T>
HYPLORA_INLINE constexpr T geometric_series_threshold() {
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
// cosh(x) = sum x^2k / (2k)!
#define HYPLORA_SERIES_COSH {1.0, 1.0 / 2.0, 1.0 / 24.0, 1.0 / 720.0, 1.0 / 40320.0, 1.0 / 3628800.0, 1.0 / 479001600.0, 1.0 / 87178291200.0}

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

/// sqrt(1 + x^2) without overflow of x^2.
template <class T>
HYPLORA_INLINE T sqrt1p_sq(T x) {
  const T a = abs(x);
  return a > T(1) ? a * std::sqrt(T(1) + (T(1) / a) / a) : std::sqrt(T(1) + a * a);
}

/// f(x) and f'(x) of one function, evaluated together: the pair shares its transcendental call
/// (a VJP needs both; computing them apart costs two or three calls of sinh, asinh, tanh, atanh).
template <class T>
struct ValueDeriv {
  T f;
  T df;
};

// ---- float on the host: in double, without branches -------------------------------------------
// For a float argument on the host, the value functions below (asinh / tanh / atanh of a
// non-negative argument, sinh(x)/x, asinh(x)/x, tanh(x)/x, artanh(x)/x, sinh(x)/x with cosh x) are
// evaluated in double through exp_d / log_d (core/exp_log.hpp) and rounded once: within 1 ulp of
// float (tests/test_manifold_models.cpp).
// Series and closed form are both evaluated and one is selected, so there are no branches and no
// calls, and a loop over the factors of a tile of rows vectorises (batched.hpp; g++ if-converts
// the selects and vectorises sqrt under -fno-trapping-math -fno-math-errno, which hyplora's own
// targets set). The saturation points are float's max_exp_arg and 1 - ball_eps. Double and device
// code use the libm functions (below).
//
// The series thresholds are lower than float's own (1 resp. 0.37) and the series shorter: in double
// the closed forms lose only what their cancellation costs, about eps / a^k relative with k <= 3 for
// the derivatives ((cosh a - sinh(a)/a)/a ~ a/3 from terms ~1; eps = 1.1e-16 for double, exp_d / log_d
// within 1e-14), which is below 1e-11 (float's ulp is 6e-8) from a = 1/8 (sinh family) and a = 1/16
// (asinh, tanh, artanh) on. Below those points the first 4-6 terms of each series are exact to 2e-12:
// the first omitted term, relative to the sum, is a^8/9! = 1.6e-13 for sinh(a)/a, a^8/8! = 1.5e-12
// for cosh and 4.5e-14 for the derivative of sinh(a)/a at 1/8, at most 1.3e-12 for the others and
// their derivatives at 1/16. Worst relative errors before the rounding to float, against quad
// precision: docs/geometry.md, run 4 (bench_factors).
namespace host_float {
// series thresholds of the double evaluation, and float's clamps as doubles
constexpr double sinh_threshold = 0.125;
constexpr double geometric_threshold = 0.0625;
constexpr double max_exp_arg = Constants<float>::max_exp_arg();
constexpr double artanh_max = 1.0 - 4e-3;  // 1 - ball_eps in double (the float 4e-3f is 4e-3 + 1.9e-10)
static_assert(float(4e-3) == Constants<float>::ball_eps(), "host_float::artanh_max follows Constants<float>::ball_eps()");
constexpr double identity_below = 9.5367431640625e-07;  // 2^-20: asinh, tanh, atanh of a float = a

// max / min that keep a NaN first argument (a NaN argument must give NaN factors, not the factors
// at the threshold it was clamped to)
inline double max_d(double a, double b) { return b > a ? b : a; }
inline double min_d(double a, double b) { return b < a ? b : a; }

/// sinh(a)/a, cosh(a) and d/da [sinh(a)/a] for a >= 0.
inline void sinhc_cosh_deriv(double a, double& f, double& ch, double& df) {
  constexpr double cs[8] = HYPLORA_SERIES_SINH_OVER_X;
  constexpr double cc[8] = HYPLORA_SERIES_COSH;
  const double a2 = a * a;
  const double fs = even_series_head<4>(cs, a2), chs = even_series_head<4>(cc, a2), dfs = even_series_deriv_head<5>(cs, a);
  const double ac = max_d(a, sinh_threshold);  // closed form where it is used (no 0/0 at a = 0)
  // one division for 1/e and 1/ac: inv = 1/(e ac)  (e <= exp(80), ac <= float's max: no overflow)
  const double e = exp_d(min_d(ac, max_exp_arg)), inv = 1.0 / (e * ac), ie = ac * inv, inv_ac = e * inv;
  const double fc = 0.5 * (e - ie) * inv_ac, chc = 0.5 * (e + ie);  // beyond max: sinh(max)/a (radial saturation)
  const double dfc_sat = -fc * inv_ac, dfc_free = (chc - fc) * inv_ac;
  const double dfc = a > max_exp_arg ? dfc_sat : dfc_free;
  const bool series = a < sinh_threshold;
  f = series ? fs : fc;
  ch = series ? chs : chc;
  df = series ? dfs : dfc;
}
inline void sinhc_deriv(double a, double& f, double& df) {
  double ch;
  sinhc_cosh_deriv(a, f, ch, df);
}
/// asinh(a)/a and its derivative, a >= 0.
inline void asinhc_deriv(double a, double& f, double& df) {
  constexpr double c[8] = HYPLORA_SERIES_ASINH_OVER_X;
  const double fs = even_series_head<5>(c, a * a), dfs = even_series_deriv_head<6>(c, a);
  // ac^2 < 1e77 for a float, < 1e116 for a quotient of floats (asinh_over_x_of_ratio); one division
  // for 1/ac and 1/r: inv = 1/(ac r)
  const double ac = max_d(a, geometric_threshold), r = std::sqrt(1.0 + ac * ac);
  const double inv = 1.0 / (ac * r), inv_ac = r * inv, inv_r = ac * inv;
  const double fc = log_d(ac + r) * inv_ac, dfc = (inv_r - fc) * inv_ac;  // 1/(ac r) - fc/ac
  const bool series = a < geometric_threshold;
  f = series ? fs : fc;
  df = series ? dfs : dfc;
}
inline double asinhc(double a) {
  double f, df;
  asinhc_deriv(a, f, df);
  return f;
}
/// tanh(a)/a and its derivative, a >= 0 (sech^2 = 4e/(1+e)^2, e = exp(-2a)).
inline void tanhc_deriv(double a, double& f, double& df) {
  constexpr double c[8] = HYPLORA_SERIES_TANH_OVER_X;
  const double fs = even_series_head<5>(c, a * a), dfs = even_series_deriv_head<6>(c, a);
  const double ac = max_d(a, geometric_threshold);
  // one division, not five (d/da [tanh(a)/a] = (sech^2 a - tanh(a)/a) / a): inv = 1/((1 + e) ac)
  const double e = exp_d(-2.0 * ac), inv = 1.0 / ((1.0 + e) * ac), p = ac * inv, inv_ac = (1.0 + e) * inv;
  const double t = (1.0 - e) * p, sech2 = 4.0 * e * p * p;
  const double fc = t * inv_ac, dfc = (sech2 - fc) * inv_ac;
  const bool series = a < geometric_threshold;
  f = series ? fs : fc;
  df = series ? dfs : dfc;
}
/// artanh(a)/a and its derivative, a >= 0, a clamped to artanh_max (derivative 0 beyond).
inline void artanhc_deriv(double a, double& f, double& df) {
  constexpr double c[8] = HYPLORA_SERIES_ARTANH_OVER_X;
  const double am = min_d(a, artanh_max);
  const double fs = even_series_head<5>(c, am * am), dfs = even_series_deriv_head<6>(c, am);
  const double ac = max_d(am, geometric_threshold);
  // one division, not four: q = 1/(ac (1 - ac^2)) gives 1/ac = (1 - ac^2) q and
  // (1 + ac)/(1 - ac) = (1 + ac)^2 ac q (ac <= artanh_max: q is finite)
  const double q = 1.0 / (ac * ((1.0 - ac) * (1.0 + ac))), inv_ac = (1.0 - ac) * (1.0 + ac) * q;
  const double fc = 0.5 * log_d((1.0 + ac) * (1.0 + ac) * ac * q) * inv_ac;
  const double dfc_free = q - fc * inv_ac;
  const double dfc = a > artanh_max ? 0.0 : dfc_free;
  const bool series = am < geometric_threshold;
  f = series ? fs : fc;
  df = series ? dfs : dfc;
}
inline double asinh(double a) {
  const double v = log_d(a + std::sqrt(1.0 + a * a));
  return a < identity_below ? a : v;
}
inline double tanh(double a) {
  const double e = exp_d(-2.0 * a), v = (1.0 - e) / (1.0 + e);
  return a < identity_below ? a : v;
}
/// 0 <= a < 1.
inline double atanh(double a) {
  const double v = 0.5 * log_d((1.0 + a) / (1.0 - a));
  return a < identity_below ? a : v;
}
/// f(|x|) and sign(x) f'(|x|) of an even function given by F, rounded to float.
template <void (*F)(double, double&, double&)>
inline ValueDeriv<float> value_deriv(float x) {
  double f, df;
  F(double(x < 0.0f ? -x : x), f, df);
  return {float(f), float(x < 0.0f ? -df : df)};
}
/// f(|x|) and x f'(x) = |x| f'(|x|) of an even function given by F: the product is formed in
/// double and rounded once, so it stays in float's range where f' alone under- or overflows.
/// The argument is a double so that a quotient of floats can be passed unrounded (beyond float's range).
template <void (*F)(double, double&, double&)>
inline ValueDeriv<float> value_xderiv(double x) {
  double f, df;
  const double a = x < 0.0 ? -x : x;
  F(a, f, df);
  return {float(f), float(a * df)};
}
}  // namespace host_float

// The host-float path of the functions below (preprocessor-guarded: device code never sees it).
#if !HYPLORA_IN_DEVICE_CODE && HYPLORA_HOST_FLOAT_VIA_DOUBLE
#define HYPLORA_HOST_FLOAT_RETURN(T, expr) \
  if constexpr (sizeof(T) == 4) return expr;
#else
#define HYPLORA_HOST_FLOAT_RETURN(T, expr)
#endif

// ---- asinh, tanh, atanh of a non-negative argument -------------------------------------------

/// asinh(a), a >= 0.
template <class T>
HYPLORA_INLINE T asinh_nonneg(T a) {
  HYPLORA_HOST_FLOAT_RETURN(T, T(host_float::asinh(double(a))))
  return std::asinh(a);
}
/// tanh(a), a >= 0.
template <class T>
HYPLORA_INLINE T tanh_nonneg(T a) {
  HYPLORA_HOST_FLOAT_RETURN(T, T(host_float::tanh(double(a))))
  return std::tanh(a);
}
/// atanh(a), 0 <= a < 1.
template <class T>
HYPLORA_INLINE T atanh_nonneg(T a) {
  HYPLORA_HOST_FLOAT_RETURN(T, T(host_float::atanh(double(a))))
  return std::atanh(a);
}

// ---- f(x)/x and derivatives ------------------------------------------------------------------

/// sinh(a) and cosh(a) for a >= 0 from one exp: (e -/+ 1/e)/2, e = exp(min(a, max_exp_arg)).
/// Used beyond the series thresholds (a >= 0.5), where e - 1/e loses at most ~2 ulp to cancellation.
template <class T>
HYPLORA_INLINE void sinh_cosh_of_abs(T a, T& sh, T& ch) {
  const T e = std::exp(a > Constants<T>::max_exp_arg() ? Constants<T>::max_exp_arg() : a);  // NaN stays NaN
  const T ie = T(1) / e;
  sh = T(0.5) * (e - ie);
  ch = T(0.5) * (e + ie);
}

/// sinh(x)/x (1 at 0). Beyond max_exp_arg the map saturates radially: sinh(max)/x, so that
/// sinh_over_x(x) * x stays sinh(min(x, max)) (a point of H_K stays on the hyperboloid with
/// x_0 = cosh(max)).
template <class T>
HYPLORA_INLINE T sinh_over_x(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, host_float::value_deriv<host_float::sinhc_deriv>(x).f)
  constexpr double c[8] = HYPLORA_SERIES_SINH_OVER_X;
  const T a = abs(x);
  if (a < sinh_series_threshold<T>()) return even_series(c, a * a);
  T sh, ch;
  sinh_cosh_of_abs(a, sh, ch);
  return sh / a;
}
/// sinh(x)/x and cosh(x) from one exp (the two factors of the Lorentz expmap0).
template <class T>
HYPLORA_INLINE void sinh_over_x_and_cosh(T x, T& f, T& cosh_x) {
#if !HYPLORA_IN_DEVICE_CODE && HYPLORA_HOST_FLOAT_VIA_DOUBLE
  if constexpr (sizeof(T) == 4) {
    double fd, chd, dfd;
    host_float::sinhc_cosh_deriv(double(abs(x)), fd, chd, dfd);
    f = T(fd);
    cosh_x = T(chd);
    return;
  }
#endif
  constexpr double c[8] = HYPLORA_SERIES_SINH_OVER_X;
  constexpr double cc[8] = HYPLORA_SERIES_COSH;
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
/// asinh(a)/a and 1/sqrt(1 + a^2) for a >= 0 beyond the series (the closed form that double and
/// device code take): r = sqrt(1 + a^2), asinh a = log1p(a + a (a/(1 + r))) (no cancellation), and
/// beyond 2^13 (float) / 2^27 (double) r = a and asinh a = log(2a) = log1p(a - 1) + log 2 (their
/// relative errors 1/(2a^2) and 1/(4a^2 log 2a) are below eps/8 there), so that a^2, which overflows
/// float beyond 1.8e19, is not used.
/// Three divisions, one sqrt, one log1p: asinh beside sqrt1p_sq took five, two and one on a GPU.
template <class T>
HYPLORA_INLINE void asinh_over_x_closed(T a, T& f, T& inv_r) {
  const bool large = a > (sizeof(T) == 4 ? T(8192) : T(134217728));
  const T r = large ? a : std::sqrt(T(1) + a * a);
  inv_r = T(1) / r;
  const T arg = large ? a - T(1) : a + a * (a / (T(1) + r));
  f = (std::log1p(arg) + (large ? T(0.693147180559945309417232) : T(0))) / a;
}
/// asinh(x)/x (1 at 0).
template <class T>
HYPLORA_INLINE T asinh_over_x(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, host_float::value_deriv<host_float::asinhc_deriv>(x).f)
  constexpr double c[8] = HYPLORA_SERIES_ASINH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>()) return even_series(c, a * a);
  T f, inv_r;
  asinh_over_x_closed(a, f, inv_r);
  return f;
}
/// asinh(n/s) where the quotient has overflowed T: log(2t) = log n - log s + log 2 (asinh t - log(2t)
/// ~ 1/(4t^2): far below eps).
template <class T>
HYPLORA_INLINE T asinh_of_overflowed_ratio(T n, T s) {
  return std::log(n) - std::log(s) + T(0.693147180559945309417232);
}
/// asinh(t)/t and asinh(t) at t = n/s (n >= 0, s > 0): the Lorentz maps' t = |x_s|/sqrt K. A float
/// on the host forms the quotient in double, where it cannot overflow (float |x_s| over a float
/// sqrt K: t < 1e58) while the results are floats again (asinh(t)/t ~ log(2t)/t); elsewhere the
/// quotient is formed in T, and where it overflows (device float: |x_s| near float's maximum at
/// K < 1) the logarithms of n and s replace it.
template <class T>
HYPLORA_INLINE T asinh_over_x_of_ratio(T n, T s) {
  HYPLORA_HOST_FLOAT_RETURN(T, T(host_float::asinhc(double(n) / double(s))))
  const T t = n / s;
  if (t > std::numeric_limits<T>::max()) return asinh_of_overflowed_ratio(n, s) * (s / n);
  return asinh_over_x(t);
}
template <class T>
HYPLORA_INLINE T asinh_of_ratio(T n, T s) {
  HYPLORA_HOST_FLOAT_RETURN(T, T(host_float::asinh(double(n) / double(s))))
  const T t = n / s;
  if (t > std::numeric_limits<T>::max()) return asinh_of_overflowed_ratio(n, s);
  return asinh_nonneg(t);
}
/// tanh(a)/a and sech^2 a for a >= 0 beyond the series (the closed form of double and device code):
/// tanh(a)/a = (1 - e)/((1 + e) a), sech^2 a = 4 e p^2 with e = exp(-2a), p = 1/(1 + e): one exp for
/// both (tanh beside exp cost a second exp and a division on a GPU), and sech^2 not as 1 - tanh^2 a,
/// which cancels for large a (its absolute error eps/a was 9 eps of the derivative at a = 15 in
/// double). 1 - e cancels by at most e/(1 - e): 0.9 in float (a >= 0.37), 4 in double (a >= 0.105);
/// tanh(a)/a measured within 1.6 and 2.2 eps (std::tanh: 1.5, 1.6).
template <class T>
HYPLORA_INLINE void tanh_over_x_closed(T a, T& f, T& sech2) {
  const T e = std::exp(T(-2) * a), p = T(1) / (T(1) + e);
  f = (T(1) - e) / ((T(1) + e) * a);
  sech2 = T(4) * e * p * p;
}
/// artanh(a)/a and q = 1/(a (1 - a^2)) for a beyond the series and at most artanh_max_arg:
/// artanh a = log1p(2a/(1 - a))/2 with 2a/(1 - a) = 2 a^2 (1 + a) q, and 1/(1 - a^2) = a q for the
/// derivatives: two divisions, where atanh beside them took three (float: f within 2.0 eps, x f'
/// within 2.9 eps of max(|x f'|, |f|); forming 1/a from q too would save one more and make f's error
/// 2.8 eps).
template <class T>
HYPLORA_INLINE void artanh_over_x_closed(T a, T& f, T& q) {
  q = T(1) / (a * ((T(1) - a) * (T(1) + a)));
  f = T(0.5) * std::log1p(T(2) * a * a * (T(1) + a) * q) / a;
}
/// tanh(x)/x (1 at 0).
template <class T>
HYPLORA_INLINE T tanh_over_x(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, host_float::value_deriv<host_float::tanhc_deriv>(x).f)
  constexpr double c[8] = HYPLORA_SERIES_TANH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>()) return even_series(c, a * a);
  T f, sech2;
  tanh_over_x_closed(a, f, sech2);
  return f;
}
/// artanh(x)/x (1 at 0), argument clamped to |x| <= 1 - ball_eps.
template <class T>
HYPLORA_INLINE T artanh_over_x(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, host_float::value_deriv<host_float::artanhc_deriv>(x).f)
  constexpr double c[8] = HYPLORA_SERIES_ARTANH_OVER_X;
  const T a = clamp(abs(x), T(0), artanh_max_arg<T>());
  if (a < geometric_series_threshold<T>()) return even_series(c, a * a);
  return std::atanh(a) / a;
}
// ---- value and derivative together (one transcendental call each) ------------------------------
// Float on the host takes the branch-free double evaluation above (f and f' rounded once), so the
// adapters' factor passes (Backend::for_rows_simd) vectorise, AVX-512 wide where the CPU has it
// (core/simd_dispatch.hpp: 8 rows per instruction, where the branches of the form below
// evaluated one row at a time). Double and device code keep the branches; their float closed
// forms use the float exp and asinh / tanh / atanh. Their f agrees with the value functions above
// to within 2 ulp (tests).

/// sinh(x)/x and its derivative (x cosh x - sinh x)/x^2.
template <class T>
HYPLORA_INLINE ValueDeriv<T> sinh_over_x_with_deriv(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, (host_float::value_deriv<host_float::sinhc_deriv>(x)))
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
  HYPLORA_HOST_FLOAT_RETURN(T, (host_float::value_deriv<host_float::asinhc_deriv>(x)))
  constexpr double c[8] = HYPLORA_SERIES_ASINH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>()) return {even_series(c, a * a), sign(x) * even_series_deriv(c, a)};
  T f, inv_r;
  asinh_over_x_closed(a, f, inv_r);
  return {f, sign(x) * (inv_r - f) / a};
}
/// tanh(x)/x and its derivative (x sech^2 x - tanh x)/x^2.
template <class T>
HYPLORA_INLINE ValueDeriv<T> tanh_over_x_with_deriv(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, (host_float::value_deriv<host_float::tanhc_deriv>(x)))
  constexpr double c[8] = HYPLORA_SERIES_TANH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>()) return {even_series(c, a * a), sign(x) * even_series_deriv(c, a)};
  T f, sech2;
  tanh_over_x_closed(a, f, sech2);
  return {f, sign(x) * (sech2 - f) / a};
}
/// artanh(x)/x and its derivative (x/(1-x^2) - artanh x)/x^2; derivative 0 in the clamped region.
template <class T>
HYPLORA_INLINE ValueDeriv<T> artanh_over_x_with_deriv(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, (host_float::value_deriv<host_float::artanhc_deriv>(x)))
  constexpr double c[8] = HYPLORA_SERIES_ARTANH_OVER_X;
  const T a = abs(x);
  const T ac = clamp(a, T(0), artanh_max_arg<T>());
  if (ac < geometric_series_threshold<T>()) return {even_series(c, ac * ac), sign(x) * even_series_deriv(c, ac)};
  T f, q;
  artanh_over_x_closed(ac, f, q);
  if (a > artanh_max_arg<T>()) return {f, T(0)};
  return {f, sign(x) * (ac * q - f) / ac};  // f' = (1/(1 - ac^2) - f)/ac
}

// ---- value and x f'(x) ---------------------------------------------------------------------------
// The radial maps' VJPs need f'(n) only as n f'(n) / n^2 or n f'(n) / |B a|^2 (adapter/variants.hpp):
// x f'(x) has the magnitude of f itself (asinh(x)/x: x f' -> -log(2x)/x; sinh(x)/x: x f' -> cosh x),
// while f'(x) alone leaves float's range long before f does (asinh(x)/x at x = 1e20: f' = 4.7e-39).
// ValueDeriv{f, x f'(x)}; for float on the host from the double evaluation, rounded once.

/// sinh(x)/x and x d/dx = cosh x - sinh(x)/x (saturated beyond max_exp_arg: -sinh(max)/x).
template <class T>
HYPLORA_INLINE ValueDeriv<T> sinh_over_x_with_xderiv(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, (host_float::value_xderiv<host_float::sinhc_deriv>(x)))
  constexpr double c[8] = HYPLORA_SERIES_SINH_OVER_X;
  const T a = abs(x);
  if (a < sinh_series_threshold<T>()) return {even_series(c, a * a), a * even_series_deriv(c, a)};
  T sh, ch;
  sinh_cosh_of_abs(a, sh, ch);
  const T f = sh / a;
  if (a > Constants<T>::max_exp_arg()) return {f, -f};
  return {f, ch - f};
}
/// asinh(x)/x and x d/dx = 1/sqrt(1+x^2) - asinh(x)/x.
template <class T>
HYPLORA_INLINE ValueDeriv<T> asinh_over_x_with_xderiv(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, (host_float::value_xderiv<host_float::asinhc_deriv>(x)))
  constexpr double c[8] = HYPLORA_SERIES_ASINH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>()) return {even_series(c, a * a), a * even_series_deriv(c, a)};
  T f, inv_r;
  asinh_over_x_closed(a, f, inv_r);
  return {f, inv_r - f};
}
/// asinh_over_x_with_xderiv at t = n/s (n >= 0, s > 0), the quotient formed in double for a float
/// on the host (as asinh_over_x_of_ratio): the VJPs of the Lorentz maps at t = |x_s|/sqrt K.
template <class T>
HYPLORA_INLINE ValueDeriv<T> asinh_over_x_with_xderiv_of_ratio(T n, T s) {
  HYPLORA_HOST_FLOAT_RETURN(T, (host_float::value_xderiv<host_float::asinhc_deriv>(double(n) / double(s))))
  const T t = n / s;
  if (t > std::numeric_limits<T>::max()) {  // x f' = 1/sqrt(1 + t^2) - f = 1/t - f there
    const T inv_t = s / n, f = asinh_of_overflowed_ratio(n, s) * inv_t;
    return {f, inv_t - f};
  }
  return asinh_over_x_with_xderiv(t);
}
/// t / sqrt(1 + t^2) at t = n/s, finite (-> 1) where the quotient overflows.
template <class T>
HYPLORA_INLINE T x_over_sqrt1p_sq_of_ratio(T n, T s) {
  const T t = n / s;
  return t > T(1) ? T(1) / sqrt1p_sq(s / n) : t / sqrt1p_sq(t);
}
/// tanh(x)/x and x d/dx = sech^2 x - tanh(x)/x.
template <class T>
HYPLORA_INLINE ValueDeriv<T> tanh_over_x_with_xderiv(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, (host_float::value_xderiv<host_float::tanhc_deriv>(x)))
  constexpr double c[8] = HYPLORA_SERIES_TANH_OVER_X;
  const T a = abs(x);
  if (a < geometric_series_threshold<T>()) return {even_series(c, a * a), a * even_series_deriv(c, a)};
  T f, sech2;
  tanh_over_x_closed(a, f, sech2);
  return {f, sech2 - f};
}
/// artanh(x)/x and x d/dx = 1/(1-x^2) - artanh(x)/x; 0 in the clamped region.
template <class T>
HYPLORA_INLINE ValueDeriv<T> artanh_over_x_with_xderiv(T x) {
  HYPLORA_HOST_FLOAT_RETURN(T, (host_float::value_xderiv<host_float::artanhc_deriv>(x)))
  constexpr double c[8] = HYPLORA_SERIES_ARTANH_OVER_X;
  const T a = abs(x);
  const T ac = clamp(a, T(0), artanh_max_arg<T>());
  if (ac < geometric_series_threshold<T>()) return {even_series(c, ac * ac), ac * even_series_deriv(c, ac)};
  T f, q;
  artanh_over_x_closed(ac, f, q);
  if (a > artanh_max_arg<T>()) return {f, T(0)};
  return {f, ac * q - f};  // 1/(1 - ac^2) - f
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
#undef HYPLORA_SERIES_COSH
#undef HYPLORA_HOST_FLOAT_RETURN
