#pragma once
// The Poincare ball B^d_c (SPEC sections 1-2): points p in R^d with c |p|^2 < 1, curvature -c,
// c = 1/K (the same space as Lorentz<K>), origin 0, metric lambda_p^2 <.,.> with
// lambda_p = 2 / (1 - c |p|^2).
//
// Every method takes n = d = number of stored coordinates. Outputs may alias inputs of the same
// shape (mobius_matvec excepted). VJP methods accumulate (+=) into gradient buffers (nullptr = not
// wanted) and return dL/dK (K = 1/c: the library's single curvature parameter).
//
// Numerics (docs/geometry.md). Every artanh of the textbook formulas is evaluated through
//   artanh(t) = asinh(t / sqrt(1 - t^2)),  1 - t^2 kept >= epsilon,
// e.g. dist = 2 sqrt K asinh(sqrt(c) |p - q| / sqrt((1 - c|p|^2)(1 - c|q|^2))), which equals
// 2/sqrt(c) artanh(sqrt(c) |(-p) (+)_c q|), is exact for close points (|p - q| is formed
// directly) and stays finite on the boundary. "Conformal factors" alpha = 1 - c|p|^2 are clamped
// below by epsilon; with expmap0's cap the largest distance from the origin is sqrt K log(1/(2 eps)):
// ~15 sqrt K in float32, ~35 sqrt K in float64 (the most each precision's ball can represent).
// expmap0 keeps sqrt(c)|p| <= 1 - 4 eps; projx keeps the wider geoopt margin
// sqrt(c)|p| <= 1 - Constants<T>::ball_eps().

#include <cmath>
#include <string>

#include "hyplora/core/config.hpp"
#include "hyplora/core/constants.hpp"
#include "hyplora/core/format.hpp"
#include "hyplora/core/scalar_math.hpp"
#include "hyplora/curvature.hpp"
#include "hyplora/manifold/vector_ops.hpp"

namespace hyplora {

template <class T, class Curv = FixedCurvature<T>>
class PoincareBall {
  static_assert(!Curv::is_flat, "PoincareBall needs a hyperbolic curvature policy (K > 0), not FlatCurvature");

 public:
  using scalar_type = T;
  using curvature_type = Curv;
  static constexpr bool is_hyperbolic = true;
  static constexpr index_t extra_coords = 0;

  HYPLORA_HOST_DEVICE explicit PoincareBall(Curv c = Curv()) : curv_(c) {}
  HYPLORA_INLINE const Curv& curvature() const { return curv_; }
  HYPLORA_INLINE Curv& curvature() { return curv_; }
  HYPLORA_INLINE T K() const { return curv_.K(); }
  /// c = 1/K.
  HYPLORA_INLINE T c() const { return T(1) / curv_.K(); }
  HYPLORA_INLINE T sqrtK() const { return std::sqrt(curv_.K()); }

  /// alpha(p) = 1 - c|p|^2 clamped to >= epsilon (the clamp is what keeps everything finite). A
  /// NaN passes through (the clamp is written so that a NaN compares false and is kept).
  HYPLORA_INLINE static T alpha_of(T p2, T k) {
    const T a = T(1) - p2 / k;
    return a < Constants<T>::epsilon() ? Constants<T>::epsilon() : a;
  }
  /// Whether alpha_of clamped (false for NaN: the VJPs then take the unclamped formulas, which carry it).
  HYPLORA_INLINE static bool alpha_clamped(T p2, T k) { return T(1) - p2 / k <= Constants<T>::epsilon(); }
  /// Conformal factor lambda_p = 2 / (1 - c|p|^2).
  HYPLORA_INLINE T lambda(const T* p, index_t n) const { return T(2) / alpha_of(vec::sqnorm(p, n), K()); }

  HYPLORA_INLINE T inner(const T* x, const T* u, const T* v, index_t n) const {
    const T l = lambda(x, n);
    return l * l * vec::dot(u, v, n);
  }
  HYPLORA_INLINE T norm(const T* x, const T* u, index_t n) const { return lambda(x, n) * vec::norm(u, n); }

  // ---- Mobius operations --------------------------------------------------------------------
  /// x (+)_c y = ((1 + 2c<x,y> + c|y|^2) x + (1 - c|x|^2) y) / (1 + 2c<x,y> + c^2 |x|^2 |y|^2).
  HYPLORA_INLINE void mobius_add(const T* x, const T* y, T* out, index_t n) const {
    const T cc = c(), x2 = vec::sqnorm(x, n), y2 = vec::sqnorm(y, n), xy = vec::dot(x, y, n);
    const T A = T(1) + T(2) * cc * xy + cc * y2, B = T(1) - cc * x2;
    T D = T(1) + T(2) * cc * xy + (cc * x2) * (cc * y2);
    D = D > Constants<T>::min_norm() ? D : Constants<T>::min_norm();
    for (index_t i = 0; i < n; ++i) out[i] = (A * x[i] + B * y[i]) / D;
  }
  /// M (x)_c x = tanh(|Mx|/|x| artanh(sqrt c |x|)) Mx / (sqrt c |Mx|), M row-major rows x n (n = len x);
  /// written as tanhc(theta) artanhc(sqrt c |x|) Mx, theta = sqrt c |Mx| artanhc(sqrt c |x|).
  /// out has `rows` entries and must not alias x.
  HYPLORA_INLINE void mobius_matvec(const T* M, index_t rows, const T* x, T* out, index_t n) const {
    for (index_t r = 0; r < rows; ++r) out[r] = vec::dot(M + r * n, x, n);
    const T sc = T(1) / sqrtK();
    const T fa = artanh_over_x(sc * vec::norm(x, n), vec::sqnorm(x, n) / K());
    const T theta = sc * vec::norm(out, rows) * fa;
    const T s = math::tanh_over_x(theta) * fa;
    for (index_t r = 0; r < rows; ++r) out[r] *= s;
  }
  /// Gyration gyr[u,v]w = (-(u (+) v)) (+) (u (+) (v (+) w)) in closed form (Ungar; geoopt's _gyration).
  HYPLORA_INLINE void gyration(const T* u, const T* v, const T* w, T* out, index_t n) const {
    const T cc = c();
    const T u2 = vec::sqnorm(u, n), v2 = vec::sqnorm(v, n), uv = vec::dot(u, v, n);
    const T uw = vec::dot(u, w, n), vw = vec::dot(v, w, n);
    // each product of c^2 formed with the squared norm or dot product first: c^2 uw overflowed at a
    // small K before the product with v2 = 0 (inf * 0: a NaN transport from the origin)
    const T a = -cc * (cc * v2) * uw + cc * vw + T(2) * cc * (cc * uv) * vw;
    const T b = -cc * (cc * u2) * vw - cc * uw;
    T d = T(1) + T(2) * cc * uv + (cc * u2) * (cc * v2);
    d = d > Constants<T>::min_norm() ? d : Constants<T>::min_norm();
    for (index_t i = 0; i < n; ++i) out[i] = w[i] + T(2) * (a * u[i] + b * v[i]) / d;
  }

  // ---- distances ----------------------------------------------------------------------------
  /// d(x,y) = 2 sqrt K asinh(u), u = |x-y| / (sqrt K sqrt(alpha_x alpha_y)); in two steps, the
  /// argument u and then 2 sqrt K asinh(u) (batched.hpp evaluates the second for a tile of rows).
  HYPLORA_INLINE T dist_argument(const T* x, const T* y, index_t n) const {
    T x2, y2, d2;
    vec::sq3(x, y, n, x2, y2, d2);  // one pass over both rows
    return dist_argument_from(x2, y2, vec::dist_from_sq(x, y, d2, n));
  }
  /// The argument from |x|^2, |y|^2 and |x - y| (the GPU rows compute the sums with a warp).
  HYPLORA_INLINE T dist_argument_from(T x2, T y2, T diff_norm) const {
    const T k = K();
    return diff_norm / (std::sqrt(k) * std::sqrt(alpha_of(x2, k) * alpha_of(y2, k)));
  }
  HYPLORA_INLINE T dist_from_argument(T u) const { return T(2) * sqrtK() * math::asinh_nonneg(u); }
  HYPLORA_INLINE T dist(const T* x, const T* y, index_t n) const { return dist_from_argument(dist_argument(x, y, n)); }
  /// d(0,x) = 2 sqrt K artanh(|x|/sqrt K) = 2 sqrt K asinh(|x| / (sqrt K sqrt(alpha_x))).
  HYPLORA_INLINE T dist0(const T* x, index_t n) const {
    const T k = K(), sK = std::sqrt(k), x2 = vec::sqnorm(x, n);
    return T(2) * sK * math::asinh_nonneg(vec::norm_from_sq(x, x2, n) / (sK * std::sqrt(alpha_of(x2, k))));
  }

  // ---- maps ---------------------------------------------------------------------------------
  /// Largest admissible sqrt(c)|p| of the maps: 1 - 4 eps (strictly inside in every precision).
  HYPLORA_INLINE static T max_map_radius() { return T(1) - T(4) * Constants<T>::epsilon(); }
  /// expmap0(v) = tanh(sqrt c |v|) v / (sqrt c |v|) = tanhc(|v|/sqrt K) v, radius capped at max_map_radius.
  /// (Radial: expmap0_scale, the factor from the norm alone, lets batched.hpp compute a tile's
  /// factors in one loop before writing the rows.)
  HYPLORA_INLINE T expmap0_scale(T norm) const {
    const T t = norm / sqrtK();
    if (!math::is_finite(t)) return max_map_radius() * (sqrtK() / norm);  // t overflowed T: capped
    const T f = math::tanh_over_x(t);
    const T capped = max_map_radius() / (t > T(1) ? t : T(1));  // used only where t f > max (t > 8)
    return t * f > max_map_radius() ? capped : f;
  }
  HYPLORA_INLINE void expmap0(const T* v, T* p, index_t n) const { vec::scale(v, expmap0_scale(vec::norm(v, n)), p, n); }
  /// logmap0(p) = artanh(t)/t p, t = sqrt c |p|, via asinh(t/sqrt(alpha))/(t) with alpha = 1 - t^2 >= eps.
  /// From |p| and |p|^2 (both: |p|^2 / K enters alpha without a rounding of the square root).
  HYPLORA_INLINE T logmap0_scale(T norm, T sqnorm) const {
    const T k = K();
    return artanh_over_x(norm / std::sqrt(k), sqnorm / k);
  }
  HYPLORA_INLINE void logmap0(const T* p, T* v, index_t n) const {
    const T p2 = vec::sqnorm(p, n);
    vec::scale(p, logmap0_scale(vec::norm_from_sq(p, p2, n), p2), v, n);
  }
  /// exp_x(v) = x (+)_c (tanh(t) v / (sqrt c |v|)), t = sqrt c lambda_x |v| / 2 = |v| / (alpha_x sqrt K);
  /// i.e. x (+) (s v) with s = tanhc(t) / alpha_x.
  HYPLORA_INLINE void expmap(const T* x, const T* v, T* out, index_t n) const {
    const T k = K(), cc = T(1) / k;
    const T x2 = vec::sqnorm(x, n), nv = vec::norm(v, n), xv = vec::dot(x, v, n);
    const T ax = alpha_of(x2, k);
    const T s = expmap_step_scale(nv, ax, k);
    // |s v|^2 from |s v| (|v|^2 itself overflows for |v| > ~1.8e19 in float32: 0 * inf was NaN)
    const T sn = s * nv, xy = s * xv, y2 = sn * sn;
    const T A = T(1) + T(2) * cc * xy + cc * y2, B = T(1) - cc * x2;
    T D = T(1) + T(2) * cc * xy + (cc * x2) * (cc * y2);
    D = D > Constants<T>::min_norm() ? D : Constants<T>::min_norm();
    for (index_t i = 0; i < n; ++i) out[i] = (A * x[i] + B * s * v[i]) / D;
    // Where tanh(t) rounds to 1 (t beyond ~9 in float, ~19 in double) the step ends on
    // the boundary and the sum above rounds past it (c|y|^2 = 1 + 4e-6 in float: a point check_point
    // refuses): capped at max_map_radius as expmap0. A zero step returns x as it is (a valid x may lie
    // beyond max_map_radius). expmap_vjp differentiates the uncapped form; the cap moves the point by
    // rounding only. The norm pass over out (a fifth more time at d = 64) is taken only where
    //   |out|^2 D^2 = A^2 |x|^2 + 2 A B <x, s v> + B^2 |s v|^2
    // with a bound of its rounding (the sums over n terms: (n + 8) eps times the sum of the terms'
    // magnitudes) does not place out inside the cap (NaN or overflow: the pass).
    if (sn == T(0)) return;
    const T cap = max_map_radius() * sqrtK();
    const T ax2 = A * A * x2, cross = T(2) * A * B * xy, by2 = B * B * y2, capD = cap * D;
    const T rounding = T(n + 8) * Constants<T>::epsilon() * (ax2 + math::abs(cross) + by2);
    if (ax2 + cross + by2 + rounding <= capD * capD) return;
    const T r = vec::norm(out, n);
    if (r > cap) vec::scale(out, cap / r, out, n);
  }
  /// s of expmap: tanhc(t)/ax, t = |v|/(ax sqrt K); where t overflows (|v| beyond ~1e31 at the
  /// float32 boundary) the limit tanh(t) = 1, i.e. |s v| = sqrt K.
  HYPLORA_INLINE static T expmap_step_scale(T nv, T ax, T k) {
    const T t = nv / (ax * std::sqrt(k));
    return math::is_finite(t) ? math::tanh_over_x(t) / ax : std::sqrt(k) / nv;
  }
  /// log_x(y) = (2/lambda_x) artanh(sqrt c |w|) w / (sqrt c |w|), w = (-x) (+)_c y; in closed form
  /// log_x(y) = asinhc(u) sqrt(alpha_x / (alpha_y D)) (alpha_x (y - x) - c |x-y|^2 x),
  /// u^2 = c |x-y|^2 / (alpha_x alpha_y), D = c |x-y|^2 + alpha_x alpha_y (cancellation-free for close points).
  HYPLORA_INLINE void logmap(const T* x, const T* y, T* v, index_t n) const {
    const T k = K(), cc = T(1) / k;
    const T ax = alpha_of(vec::sqnorm(x, n), k), ay = alpha_of(vec::sqnorm(y, n), k);
    const T d = vec::dist(x, y, n), d2 = d * d;
    const T u = d / (std::sqrt(k) * std::sqrt(ax * ay));
    const T D = cc * d2 + ax * ay;
    const T P = math::asinh_over_x(u) * std::sqrt(ax / (ay * D));
    for (index_t i = 0; i < n; ++i) v[i] = P * (ax * (y[i] - x[i]) - cc * d2 * x[i]);
  }
  /// Clamp into the ball of radius (1 - ball_eps) sqrt K (geoopt's projx margin).
  HYPLORA_INLINE void projx(const T* x, T* out, index_t n) const {
    const T r = vec::norm(x, n), rmax = (T(1) - Constants<T>::ball_eps()) * sqrtK();
    const T s = r > rmax ? rmax / r : T(1);
    for (index_t i = 0; i < n; ++i) out[i] = s * x[i];
  }
  /// Every vector is tangent: identity.
  HYPLORA_INLINE void proju(const T*, const T* u, T* out, index_t n) const { vec::copy(u, out, n); }
  /// P_{x->y}(v) = gyr[y, -x] v * lambda_x / lambda_y.
  HYPLORA_INLINE void transp(const T* x, const T* y, const T* v, T* out, index_t n) const {
    // gyration(y, -x, v) with -x folded into the scalars.
    const T cc = c(), k = K();
    const T u2 = vec::sqnorm(y, n), v2 = vec::sqnorm(x, n), uv = -vec::dot(y, x, n);
    const T uw = vec::dot(y, v, n), vw = -vec::dot(x, v, n);
    // each product of c^2 formed with the squared norm or dot product first: c^2 uw overflowed at a
    // small K before the product with v2 = 0 (inf * 0: a NaN transport from the origin)
    const T a = -cc * (cc * v2) * uw + cc * vw + T(2) * cc * (cc * uv) * vw;
    const T b = -cc * (cc * u2) * vw - cc * uw;
    T d = T(1) + T(2) * cc * uv + (cc * u2) * (cc * v2);
    d = d > Constants<T>::min_norm() ? d : Constants<T>::min_norm();
    const T ratio = alpha_of(u2, k) / alpha_of(v2, k);  // lambda_x / lambda_y
    for (index_t i = 0; i < n; ++i) out[i] = ratio * (v[i] + T(2) * (a * y[i] - b * x[i]) / d);
  }
  /// Riemannian gradient g / lambda_x^2.
  HYPLORA_INLINE void egrad2rgrad(const T* x, const T* g, T* out, index_t n) const {
    const T l = lambda(x, n);
    vec::scale(g, T(1) / (l * l), out, n);
  }
  /// Wrapped normal at the origin: expmap0 of a N(0, stddev^2 I) vector. Rng: sampling.hpp.
  template <class Rng>
  HYPLORA_INLINE void random(Rng& rng, T* out, index_t n, T stddev = T(1)) const {
    for (index_t i = 0; i < n; ++i) out[i] = stddev * rng.template normal<T>();
    expmap0(out, out, n);
  }

  // ---- validation (host) ----------------------------------------------------------------------
  /// Default tolerance of is_point / check_point for n coordinates: the rounding of the sum of n
  /// squares (typically ~ sqrt(n) eps; Higham, Accuracy and Stability, section 4.2). Without it the
  /// ball's own expmap0 (capped at c|p|^2 ~ 1 - 8 eps) failed is_point at d = 1024 / 4096 for 7-33% of
  /// saturated samples (residuals up to 28 eps).
  static T default_tolerance(index_t n) {
    return T(2) * Constants<T>::epsilon() * (n > 1 ? std::sqrt(T(n)) : T(1));
  }
  /// max(0, c|p|^2 - 1 + eps) (0 strictly inside); +inf for NaN/Inf.
  T point_residual(const T* x, index_t n) const {
    if (n < 1 || !vec::all_finite(x, n)) return T(INFINITY);
    const T r = vec::sqnorm(x, n) / K() - T(1) + Constants<T>::epsilon();
    return r > T(0) ? r : T(0);
  }
  T vector_residual(const T* x, const T* v, index_t n) const {
    return vec::all_finite(v, n) && vec::all_finite(x, n) ? T(0) : T(INFINITY);
  }
  /// tol < 0: default_tolerance(n).
  bool is_point(const T* x, index_t n, T tol = T(-1)) const {
    return point_residual(x, n) <= (tol < T(0) ? default_tolerance(n) : tol);
  }
  bool is_vector(const T* x, const T* v, index_t n, T tol = T(0)) const { return vector_residual(x, v, n) <= tol; }
  void check_point(const T* x, index_t n, const char* name = "x", T tol = T(-1)) const {
    constexpr const char* who = "PoincareBall::check_point";
    detail::require_dim(who, n, 1);
    detail::require_finite(who, name, x, n);
    if (!(point_residual(x, n) <= (tol < T(0) ? default_tolerance(n) : tol)))
      detail::fail(who,
                   std::string(name) + " is not inside the ball c|x|^2 < 1 (K = 1/c = " +
                       format_number(double(K())) + ", up to the tolerance " +
                       format_number(double(tol < T(0) ? default_tolerance(n) : tol)) +
                       " for the rounding of |x|^2): c|x|^2",
                   double(vec::sqnorm(x, n) / K()));
  }
  void check_vector(const T* x, const T* v, index_t n, const char* name = "v", T = T(0)) const {
    constexpr const char* who = "PoincareBall::check_vector";
    detail::require_dim(who, n, 1);
    detail::require_finite(who, "the base point", x, n);
    detail::require_finite(who, name, v, n);
  }

  // ---- VJPs: accumulate into g*, return dL/dK -----------------------------------------------
  /// inner = lambda^2 u.v: d lambda^2/dx = 2 c lambda^3 x, d lambda^2/dK = -lambda^3 |x|^2 / K^2.
  HYPLORA_INLINE T inner_vjp(const T* x, const T* u, const T* v, T g, T* gx, T* gu, T* gv, index_t n) const {
    const T k = K(), x2 = vec::sqnorm(x, n), l = T(2) / alpha_of(x2, k), uv = vec::dot(u, v, n);
    if (gu) vec::axpy(g * l * l, v, gu, n);
    if (gv) vec::axpy(g * l * l, u, gv, n);
    if (alpha_clamped(x2, k)) return T(0);
    if (gx) vec::axpy(g * uv * T(2) * l * l * l / k, x, gx, n);
    return -g * uv * l * l * l * x2 / (k * k);
  }
  /// d = 2 sK asinh(u), u = |x-y| / (sK sqrt(ax ay)), ax = 1 - |x|^2/K:
  /// du/dx = (x-y)/(|x-y| sK sqrt(ax ay)) + u x/(K ax); du/dK = -u/(2K) - u/2 (|x|^2/(K^2 ax) + |y|^2/(K^2 ay)).
  HYPLORA_INLINE T dist_vjp(const T* x, const T* y, T g, T* gx, T* gy, index_t n) const {
    const T k = K(), sK = std::sqrt(k);
    const T x2 = vec::sqnorm(x, n), y2 = vec::sqnorm(y, n);
    const T ax = alpha_of(x2, k), ay = alpha_of(y2, k);
    const bool cx = alpha_clamped(x2, k), cy = alpha_clamped(y2, k);
    const T d = vec::dist(x, y, n), den = sK * std::sqrt(ax * ay), u = d / den;
    const T gu = g * T(2) * sK / std::sqrt(T(1) + u * u);
    T sdiff = d != T(0) ? gu / (d * den) : T(0);
    // where gu / (d den) overflows (a subnormal d) x - y is divided by d first
    const bool divide_first = !math::is_finite(sdiff) && math::is_finite(gu / den);
    if (divide_first) sdiff = gu / den;
    const T sx = cx ? T(0) : gu * u / (k * ax), sy = cy ? T(0) : gu * u / (k * ay);
    for (index_t i = 0; i < n; ++i) {
      const T diff = divide_first ? (x[i] - y[i]) / d : x[i] - y[i];
      if (gx) gx[i] += sdiff * diff + sx * x[i];
      if (gy) gy[i] += -sdiff * diff + sy * y[i];
    }
    T du_dK = -u / (T(2) * k);
    if (!cx) du_dK -= u / T(2) * x2 / (k * k * ax);
    if (!cy) du_dK -= u / T(2) * y2 / (k * k * ay);
    return g * math::asinh_nonneg(u) / sK + gu * du_dK;
  }
  HYPLORA_INLINE T dist0_vjp(const T* x, T g, T* gx, index_t n) const {
    const T k = K(), sK = std::sqrt(k);
    const T x2 = vec::sqnorm(x, n), ax = alpha_of(x2, k);
    const bool cx = alpha_clamped(x2, k);
    const T d = vec::norm(x, n), den = sK * std::sqrt(ax), u = d / den;
    const T gu = g * T(2) * sK / std::sqrt(T(1) + u * u);
    const T s_alpha = cx ? T(0) : gu * u / (k * ax);
    if (gx) {
      if (d != T(0)) vec::axpy_over(gu / den, d, x, gx, n);  // (gu / (d den)) x, x/d first where d is subnormal
      vec::axpy(s_alpha, x, gx, n);
    }
    T du_dK = -u / (T(2) * k);
    if (!cx) du_dK -= u / T(2) * x2 / (k * k * ax);
    return g * math::asinh_nonneg(u) / sK + gu * du_dK;
  }
  /// p = f(t) v, t = |v|/sK, f = tanhc: gv += f g + f'(t)/(t K) (v.g) v, dL/dK = -(v.g) f'(t) t/(2K).
  /// In the capped region p = R v/|v| (R = max_map_radius sK): gv += R/|v| (g - (vhat.g) vhat), dL/dK = (vhat.g) R/(2K).
  HYPLORA_INLINE T expmap0_vjp(const T* v, const T* g, T* gv, index_t n) const {
    const T k = K(), sK = std::sqrt(k), r = vec::norm(v, n), t = r / sK;
    const T f = math::tanh_over_x(t), vg = vec::dot(v, g, n);
    if (!math::is_finite(t) || t * f > max_map_radius()) {  // (t overflows T: |v| > sqrt K 3.4e38 in float)
      const T R = max_map_radius() * sK;
      if (gv)
        for (index_t i = 0; i < n; ++i) gv[i] += R / r * (g[i] - (vg / r) * (v[i] / r));  // r^2 overflows beyond 1.8e19 in float
      return vg / r * R / (T(2) * k);
    }
    const T fp = math::tanh_over_x_deriv(t);
    const T fp_over_t = t != T(0) ? fp / t : T(-2) / T(3);
    if (gv)
      for (index_t i = 0; i < n; ++i) gv[i] += f * g[i] + fp_over_t / k * vg * v[i];
    return -vg * fp * t / (T(2) * k);
  }
  /// v = F(t) p, t = |p|/sK, F(t) = artanh(t)/t = asinhc(w)/sqrt(a), w = t/sqrt(a), a = 1 - t^2:
  /// F'(t)/t = asinhc'(w)/w / a^(5/2) + asinhc(w) / a^(3/2)   (a clamped: asinhc'(w)/w / a^(3/2)).
  HYPLORA_INLINE T logmap0_vjp(const T* p, const T* g, T* gp, index_t n) const {
    const T k = K(), p2 = vec::sqnorm(p, n), t = vec::norm(p, n) / std::sqrt(k);
    const T a = alpha_of(p2, k), sa = std::sqrt(a), w = t / sa;
    const auto [A, Ap] = math::asinh_over_x_with_deriv(w);
    const T Ap_over_w = w != T(0) ? Ap / w : T(-1) / T(3);
    const T F = A / sa;
    const T Fp_over_t = alpha_clamped(p2, k) ? Ap_over_w / (a * sa) : Ap_over_w / (a * a * sa) + A / (a * sa);
    const T pg = vec::dot(p, g, n);
    if (gp)
      for (index_t i = 0; i < n; ++i) gp[i] += F * g[i] + Fp_over_t / k * pg * p[i];
    return -pg * Fp_over_t * t * t / (T(2) * k);
  }
  HYPLORA_INLINE T mobius_add_vjp(const T* x, const T* y, const T* g, T* gx, T* gy, index_t n) const {
    T dLds;
    return mobius_add_scaled_vjp(x, y, T(1), g, gx, gy, dLds, n);
  }
  /// projx: identity inside; outside p' = R p/|p|, R = (1 - ball_eps) sK.
  HYPLORA_INLINE T projx_vjp(const T* x, const T* g, T* gx, index_t n) const {
    const T r = vec::norm(x, n), R = (T(1) - Constants<T>::ball_eps()) * sqrtK();
    if (r <= R) {  // inside: the identity (a NaN r takes the projected branch, which carries it)
      if (gx) vec::axpy(T(1), g, gx, n);
      return T(0);
    }
    const T xg = vec::dot(x, g, n);
    if (gx)
      for (index_t i = 0; i < n; ++i) gx[i] += R / r * (g[i] - (xg / r) * (x[i] / r));
    return xg / r * R / (T(2) * K());
  }
  /// expmap(x, v) = x (+) (s v), s = tanhc(t)/ax, t = |v|/(ax sK), ax = 1 - |x|^2/K.
  HYPLORA_INLINE T expmap_vjp(const T* x, const T* v, const T* g, T* gx, T* gv, index_t n) const {
    const T k = K(), sK = std::sqrt(k);
    const T x2 = vec::sqnorm(x, n), nv = vec::norm(v, n);  // |v|, not |v|^2 (overflow: expmap)
    const T ax = alpha_of(x2, k);
    const T t_raw = nv / (ax * sK);
    if (!math::is_finite(t_raw)) {  // saturated (expmap_step_scale): s = sK/|v|, no ax in it
      const T s = sK / nv;
      T gs = T(0);
      T dK = mobius_add_scaled_vjp(x, v, s, g, gx, gv, gs, n);
      if (gv) vec::axpy(-(gs * s / nv) / nv, v, gv, n);  // ds/dv = -s v/|v|^2
      return dK + gs * s / (T(2) * k);                     // ds/dK = s/(2K)
    }
    const T t = t_raw;
    const auto [f, fp] = math::tanh_over_x_with_deriv(t);
    const T fp_over_t = t != T(0) ? fp / t : T(-2) / T(3);
    const T s = f / ax;
    T gs = T(0);
    T dK = mobius_add_scaled_vjp(x, v, s, g, gx, gv, gs, n);
    // s = f(t)/ax with t = |v| ax^-1 K^-1/2.
    if (gv) vec::axpy(gs * fp_over_t / (ax * ax * ax * k), v, gv, n);
    const T g_ax = -gs * s / ax - gs * fp * t / (ax * ax);
    dK += -gs * fp * t / (T(2) * k * ax);
    if (!alpha_clamped(x2, k)) {  // ax = 1 - |x|^2/K
      if (gx) vec::axpy(-g_ax * T(2) / k, x, gx, n);
      dK += g_ax * x2 / (k * k);
    }
    return dK;
  }
  /// Reverse mode through the closed form of logmap (see there).
  HYPLORA_INLINE T logmap_vjp(const T* x, const T* y, const T* g, T* gx, T* gy, index_t n) const {
    const T k = K(), cc = T(1) / k;
    const T x2 = vec::sqnorm(x, n), y2 = vec::sqnorm(y, n);
    const T ax = alpha_of(x2, k), ay = alpha_of(y2, k);
    const T d = vec::dist(x, y, n), d2 = d * d;
    const T u2 = cc * d2 / (ax * ay), u = std::sqrt(u2);
    const T D = cc * d2 + ax * ay;
    const auto [A, Ap] = math::asinh_over_x_with_deriv(u);
    const T Ap_over_u = u != T(0) ? Ap / u : T(-1) / T(3);
    const T Q = std::sqrt(ax / (ay * D)), P = A * Q;
    // v = P W, W = ax (y - x) - c d2 x.
    T gP = T(0), gWx = T(0), gWd = T(0);  // g.W, g.x, g.(y-x)
    for (index_t i = 0; i < n; ++i) {
      gWx += g[i] * x[i];
      gWd += g[i] * (y[i] - x[i]);
    }
    gP = ax * gWd - cc * d2 * gWx;
    T g_ax = P * gWd, g_d2 = -P * cc * gWx, g_c = -P * d2 * gWx, g_ay = T(0), g_D = T(0);
    // P = A(u) Q: through u^2 (dA/du^2 = A'(u)/(2u)) and through Q = sqrt(ax/(ay D)).
    const T g_u2 = gP * Q * Ap_over_u / T(2);
    g_ax += gP * P / (T(2) * ax);
    g_ay -= gP * P / (T(2) * ay);
    g_D -= gP * P / (T(2) * D);
    // D = c d2 + ax ay
    g_c += g_D * d2;
    g_d2 += g_D * cc;
    g_ax += g_D * ay;
    g_ay += g_D * ax;
    // u2 = c d2 / (ax ay)
    g_c += g_u2 * d2 / (ax * ay);
    g_d2 += g_u2 * cc / (ax * ay);
    g_ax -= g_u2 * u2 / ax;
    g_ay -= g_u2 * u2 / ay;
    const bool cx = alpha_clamped(x2, k), cy = alpha_clamped(y2, k);
    if (!cx) g_c -= g_ax * x2;  // ax = 1 - c x2
    if (!cy) g_c -= g_ay * y2;
    const T Pax = P * ax, Pcd2 = P * cc * d2;
    for (index_t i = 0; i < n; ++i) {
      const T diff = x[i] - y[i];
      if (gx) gx[i] += -Pax * g[i] - Pcd2 * g[i] + T(2) * g_d2 * diff - (cx ? T(0) : T(2) * cc * g_ax * x[i]);
      if (gy) gy[i] += Pax * g[i] - T(2) * g_d2 * diff - (cy ? T(0) : T(2) * cc * g_ay * y[i]);
    }
    return -g_c / (k * k);
  }

  /// artanh(t)/t evaluated as asinhc(t/sqrt(a)) / sqrt(a), a = max(1 - t^2, eps), t^2 given as t2.
  HYPLORA_INLINE static T artanh_over_x(T t, T t2) {
    const T a = alpha_of(t2, T(1)), sa = std::sqrt(a);
    return math::asinh_over_x(t / sa) / sa;
  }

 private:
  /// VJP of out = x (+) (s y) with respect to x, y (gy gets s * dL/d(sy)), reporting dL/ds in dLds;
  /// returns dL/dK. A = 1 + 2c xy + c y2, B = 1 - c x2, D = 1 + 2c xy + c^2 x2 y2 (of x and sy).
  HYPLORA_INLINE T mobius_add_scaled_vjp(const T* x, const T* y0, T s, const T* g, T* gx, T* gy, T& dLds,
                                         index_t n) const {
    const T k = K(), cc = T(1) / k;
    const T sy = s * vec::norm(y0, n);  // |s y0|, then its square (|y0|^2 may overflow: expmap)
    const T x2 = vec::sqnorm(x, n), y2 = sy * sy, xy = s * vec::dot(x, y0, n);
    const T A = T(1) + T(2) * cc * xy + cc * y2, B = T(1) - cc * x2;
    T D = T(1) + T(2) * cc * xy + (cc * x2) * (cc * y2);
    const bool Dclamped = !(D > Constants<T>::min_norm());
    if (Dclamped) D = Constants<T>::min_norm();
    T gx_dot = T(0), gy_dot = T(0);
    for (index_t i = 0; i < n; ++i) {
      gx_dot += g[i] * x[i];
      gy_dot += g[i] * s * y0[i];
    }
    const T gA = gx_dot / D, gB = gy_dot / D;
    const T gD = Dclamped ? T(0) : -(A * gx_dot + B * gy_dot) / (D * D);
    // Scalars: dA = 2c dxy + c dy2, dB = -c dx2, dD = 2c dxy + c^2 (x2 dy2 + y2 dx2).
    const T g_xy = T(2) * cc * (gA + gD);
    const T g_x2 = -cc * gB + cc * cc * y2 * gD;
    const T g_y2 = cc * gA + cc * cc * x2 * gD;
    const T g_c = gA * (T(2) * xy + y2) - gB * x2 + gD * (T(2) * xy + T(2) * cc * x2 * y2);
    T g_sy_dot_y0 = T(0);  // accumulates d L / d(s y) . y0 for dL/ds
    for (index_t i = 0; i < n; ++i) {
      const T yi = s * y0[i];
      const T gxi = A * g[i] / D + g_xy * yi + T(2) * g_x2 * x[i];
      const T gyi = B * g[i] / D + g_xy * x[i] + T(2) * g_y2 * yi;  // w.r.t. s y
      if (gx) gx[i] += gxi;
      if (gy) gy[i] += s * gyi;
      g_sy_dot_y0 += gyi * y0[i];
    }
    dLds = g_sy_dot_y0;
    return -g_c / (k * k);
  }

  Curv curv_;
};

}  // namespace hyplora
