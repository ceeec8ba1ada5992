#pragma once
// The Lorentz (hyperboloid) model H^d_K (SPEC sections 1-2):
//   points x in R^{d+1} with <x,x>_L = -K, x_0 > 0, where <x,y>_L = -x_0 y_0 + sum_i x_i y_i;
//   sectional curvature -1/K (K > 0); origin o = (sqrt K, 0, ..., 0).
//
// Dimension convention: every method takes n = number of STORED coordinates = d + 1 (time first),
// except the *_space methods, which take ns = d and work on the space part only (what the
// adapters store: the time coordinate is a function of the space part on the hyperboloid).
// Tangent vectors are stored with n coordinates as well. Outputs may alias inputs of the same
// shape. VJP methods accumulate (+=) into gradient buffers (nullptr = not wanted) and return dL/dK
// for the formula as written (x, y held fixed); the curvature policy maps it to its parameter.
//
// Numerics (docs/geometry.md): radial maps use f(t)/t with series branches (core/scalar_math.hpp);
// logmap0/dist0 use the asinh form (never x_0, so no cancellation near o and no overflow far out);
// dist uses 2 sqrt K asinh(||x-y||_L / (2 sqrt K)), the same as sqrt K arcosh(-<x,y>_L/K) on the
// manifold but exact for close points; cosh/sinh arguments are clamped.

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
class Lorentz {
  static_assert(!Curv::is_flat, "Lorentz needs a hyperbolic curvature policy (K > 0), not FlatCurvature");

 public:
  using scalar_type = T;
  using curvature_type = Curv;
  static constexpr bool is_hyperbolic = true;
  /// Stored coordinates of a point minus the intrinsic dimension (the time coordinate).
  static constexpr index_t extra_coords = 1;

  HYPLORA_HOST_DEVICE explicit Lorentz(Curv c = Curv()) : curv_(c) {}
  HYPLORA_INLINE const Curv& curvature() const { return curv_; }
  HYPLORA_INLINE Curv& curvature() { return curv_; }
  HYPLORA_INLINE T K() const { return curv_.K(); }
  HYPLORA_INLINE T sqrtK() const { return std::sqrt(curv_.K()); }

  // ---- products and distances ---------------------------------------------------------------
  /// Minkowski product <u,v>_L = -u_0 v_0 + sum_{i>=1} u_i v_i.
  HYPLORA_INLINE static T minkowski(const T* u, const T* v, index_t n) {
    return -u[0] * v[0] + vec::dot(u + 1, v + 1, n - 1);
  }
  /// Riemannian metric at x (the Minkowski product restricted to the tangent space).
  HYPLORA_INLINE T inner(const T*, const T* u, const T* v, index_t n) const { return minkowski(u, v, n); }
  HYPLORA_INLINE T norm(const T*, const T* u, index_t n) const { return tangent_norm(u, n); }
  /// <r,r>_L of the Riemannian gradient r = egrad2rgrad(x, g), from the Euclidean gradient g: with
  /// g_s = g_par xhat + g_perp (xhat = x_s/|x_s|), r_s = g_perp + (x_0/K)(x_0 g_par + |x_s| g_0) xhat and
  ///   <r,r>_L = |g_perp|^2 + (x_0 g_par + |x_s| g_0)^2 / K.
  /// From r itself, -r_0^2 + |r_s|^2 cancels by x_0^2/K: in float at 10 sqrt K from the origin it gave
  /// 0 for a gradient whose square norm is 194 (Riemannian Adam's second moment, optim/riemannian.hpp).
  HYPLORA_INLINE T rgrad_sqnorm(const T* x, const T* g, index_t n) const {
    const T nx = vec::norm(x + 1, n - 1);
    if (nx <= Constants<T>::min_norm())  // at the origin r = (0, g_s) (a NaN g_0 or x_0 passes on)
      return vec::sqnorm(g + 1, n - 1) + T(0) * g[0] * x[0];
    const T inv = T(1) / nx;
    T gp = T(0);  // xhat.g_s
    for (index_t i = 1; i < n; ++i) gp += (x[i] * inv) * g[i];
    T perp = T(0);
    for (index_t i = 1; i < n; ++i) {
      const T w = g[i] - gp * (x[i] * inv);
      perp += w * w;
    }
    const T par = (x[0] * gp + nx * g[0]) / sqrtK();
    return perp + par * par;
  }
  /// sqrt(<v,v>_L) of a tangent vector (0 where rounding makes <v,v>_L negative), rescaled by
  /// max |v_i| only where the plain sum overflows (|v| > ~1.8e19 in float32, ~1.3e154 in float64),
  /// so that expmap of a huge finite step saturates on the hyperboloid instead of leaving it, or
  /// underflows (vec::plain_sum_ok).
  HYPLORA_INLINE static T tangent_norm(const T* v, index_t n) {
    const T q = minkowski(v, v, n);
    if (vec::signed_sum_ok(q)) return math::safe_sqrt(q);
    if (!math::is_finite(vec::max_abs(v, n))) return q;  // Inf coordinates: nothing to rescue
    return vec::rescaled_norm([&](index_t i) { return v[i]; }, n, T(-1));
  }

  /// The pieces of minkowski_diff_norm, from the time coordinates and one sum over the space parts
  /// each (the GPU rows compute the sums with warp shuffles): needs_product_form chooses the form
  /// (the VJPs differentiate the form it chose); product_form = -<x,y>_L - K (= ||x - y||_L^2 / 2 on
  /// H_K) from x_0, y_0 and sum x_i y_i; chord_form = ||x - y||_L^2 from sum (x_i - y_i)^2.
  /// (x_0 - y_0)^2 > 2 x_0 y_0 is hi/lo > 2 + sqrt 3 for the larger and smaller time coordinate: the
  /// ratio decides where x_0 y_0 overflows (points ~89 sqrt K apart in float, ~710 in double).
  HYPLORA_INLINE static bool needs_product_form(T x0, T y0) {
    const T chord0 = (x0 - y0) * (x0 - y0), product0 = T(2) * x0 * y0;
    if (chord0 > product0) return true;
    if (math::is_finite(product0)) return false;
    const T hi = x0 > y0 ? x0 : y0, lo = x0 > y0 ? y0 : x0;
    return hi > T(3.7320508075688772) * lo;  // (NaN: false, the chord form passes the NaN on)
  }
  HYPLORA_INLINE T product_form(T x0, T y0, T space_dot) const { return x0 * y0 - space_dot - K(); }
  HYPLORA_INLINE static T chord_form(T x0, T y0, T space_chord) { return space_chord - (x0 - y0) * (x0 - y0); }
  /// ||x - y||_L = sqrt(<x-y, x-y>_L), rescaled only where the plain sums leave T's range.
  /// For points on H_K, two forms are equal and the better-conditioned one is used: the chord sum
  /// sum_i (x_i-y_i)^2 - (x_0-y_0)^2 (exact for close points) rounds like eps (x_0-y_0)^2, and
  /// 2 (-<x,y>_L - K) rounds like eps x_0 y_0. Where (x_0-y_0)^2 > 2 x_0 y_0 (points at very
  /// different depths, e.g. one near the origin and one far out) the chord sum cancels to nothing
  /// in float32 (found by bench/run.sh's cross-check: dist 0 instead of 16.8), so the product
  /// form is used there.
  HYPLORA_INLINE T minkowski_diff_norm(const T* x, const T* y, index_t n) const {
    return minkowski_diff_norm_from(
        x[0], y[0], [&] { return vec::dot(x + 1, y + 1, n - 1); },
        [&] {
          T s = T(0);
          HYPLORA_SIMD_SUM_S
          for (index_t i = 1; i < n; ++i) s += (x[i] - y[i]) * (x[i] - y[i]);
          return s;
        },
        [&](bool product) { return minkowski_diff_norm_rescaled(x, y, n, product); });
  }
  /// The choice of minkowski_diff_norm from x_0, y_0 and the sums it needs, each asked for only where
  /// used: space_dot() = sum_{i>=1} x_i y_i, space_chord() = sum_{i>=1} (x_i - y_i)^2, rescaled() =
  /// the overflow-safe form. (The GPU rows pass warp reductions; the choice is the same in every lane.)
  /// rescaled(product) is called where the chosen form overflows.
  template <class Dot, class Chord, class Rescaled>
  HYPLORA_INLINE T minkowski_diff_norm_from(T x0, T y0, const Dot& space_dot, const Chord& space_chord,
                                            const Rescaled& rescaled) const {
    const bool product = needs_product_form(x0, y0);
    if (product) {
      const T p = product_form(x0, y0, space_dot());
      if (math::is_finite(p)) {
        const T p2 = T(2) * p;  // p up to T's maximum: sqrt(2) sqrt(p) where 2p overflows
        return math::is_finite(p2) ? math::safe_sqrt(p2) : T(1.4142135623730951) * math::safe_sqrt(p);
      }
    } else {
      const T s = chord_form(x0, y0, space_chord());
      if (vec::signed_sum_ok(s)) return math::safe_sqrt(s);
    }
    return rescaled(product);
  }
  /// The form `product` of ||x - y||_L where its sums overflow. The chord form with the differences
  /// divided by their largest magnitude; the product form with x / x_0 and y / y_0:
  ///   -<x,y>_L - K = x_0 y_0 p1,  p1 = 1 - sum_i (x_i/x_0)(y_i/y_0) - K/(x_0 y_0),
  ///   ||x - y||_L = sqrt(2 p1) sqrt(x_0) sqrt(y_0)
  /// (not the chord form: for points at very different depths it cancels to 0, see above).
  HYPLORA_INLINE T minkowski_diff_norm_rescaled(const T* x, const T* y, index_t n, bool product) const {
    if (!product) return vec::rescaled_norm([&](index_t i) { return x[i] - y[i]; }, n, T(-1));
    const T ix = T(1) / x[0], iy = T(1) / y[0];
    T s = T(0);
    for (index_t i = 1; i < n; ++i) s += (x[i] * ix) * (y[i] * iy);
    const T p1 = T(1) - s - (K() * ix) * iy;
    return math::safe_sqrt(T(2) * p1) * std::sqrt(x[0]) * std::sqrt(y[0]);
  }
  /// d(x,y) = 2 sqrt K asinh(||x-y||_L / (2 sqrt K))  (= sqrt K arcosh(-<x,y>_L / K) on H_K),
  /// in two steps (batched.hpp evaluates the second for a tile of rows at once): the argument
  /// u = ||x-y||_L / (2 sqrt K), then 2 sqrt K asinh(u).
  HYPLORA_INLINE T dist_argument(const T* x, const T* y, index_t n) const {
    return dist_argument_from_diff_norm(minkowski_diff_norm(x, y, n));
  }
  HYPLORA_INLINE T dist_argument_from_diff_norm(T diff_norm) const { return diff_norm / (T(2) * sqrtK()); }
  HYPLORA_INLINE T dist_from_argument(T u) const { return T(2) * sqrtK() * math::asinh_nonneg(u); }
  HYPLORA_INLINE T dist(const T* x, const T* y, index_t n) const { return dist_from_argument(dist_argument(x, y, n)); }
  /// d(o,x) = sqrt K asinh(||x_s|| / sqrt K): uses the space part only.
  HYPLORA_INLINE T dist0(const T* x, index_t n) const {
    const T sK = sqrtK();
    return sK * math::asinh_of_ratio(vec::norm(x + 1, n - 1), sK);
  }

  // ---- maps at the origin ---------------------------------------------------------------------
  // Each is radial: a factor computed from the row's norm, then the row scaled. The *_scale methods
  // give the factor from the norm alone, so that batched.hpp can compute the factors of a tile of
  // rows in one loop before writing them.

  /// Space part of expmap0: x_s = sqrt K sinh(|v|/sqrt K) v/|v| = sinhc(|v|/sqrt K) v  (ns = d).
  HYPLORA_INLINE T expmap0_space_scale(T norm) const {
    const T t = norm / sqrtK();
    return math::is_finite(t) ? math::sinh_over_x(t) : saturated_sinhc(norm);
  }
  /// sinhc(t) = sinh(max_exp_arg)/t, the radially saturated factor, at t = |v|/sqrt K where that
  /// quotient overflows T (a float |v| above 3.4e35 at K = 1e-6: the factor was inf * 0 = NaN).
  HYPLORA_INLINE T saturated_sinhc(T norm) const {
    return std::sinh(Constants<T>::max_exp_arg()) / norm * sqrtK();
  }
  HYPLORA_INLINE void expmap0_space(const T* v, T* xs, index_t ns) const {
    vec::scale(v, expmap0_space_scale(vec::norm(v, ns)), xs, ns);
  }
  /// logmap0 from the space part: v = sqrt K asinh(|x_s|/sqrt K) x_s/|x_s|  (ns = d).
  HYPLORA_INLINE T logmap0_space_scale(T norm) const { return math::asinh_over_x_of_ratio(norm, sqrtK()); }
  HYPLORA_INLINE void logmap0_space(const T* xs, T* v, index_t ns) const {
    vec::scale(xs, logmap0_space_scale(vec::norm(xs, ns)), v, ns);
  }
  /// Time coordinate of the point with space part x_s: sqrt(K + |x_s|^2) (overflow-safe).
  HYPLORA_INLINE T time_from_space(const T* xs, index_t ns) const {
    const T r = vec::norm(xs, ns), k = K();
    return r * r > k ? r * std::sqrt(T(1) + (k / r) / r) : std::sqrt(k + r * r);
  }
  /// The two numbers of expmap0: the space part's scale sinhc(t) and the time coordinate sqrt K cosh(t).
  struct ScaleAndTime {
    T scale;
    T time;
  };
  /// From |v_s|, the norm of the space part.
  HYPLORA_INLINE ScaleAndTime expmap0_scale_time(T norm) const {
    const T sK = sqrtK();
    ScaleAndTime st;
    T ch;
    const T t = norm / sK;
    if (math::is_finite(t) || !math::is_finite(norm)) {  // (a NaN or Inf |v| passes on)
      math::sinh_over_x_and_cosh(t, st.scale, ch);
    } else {  // t overflowed T: saturated
      st.scale = saturated_sinhc(norm);
      ch = std::cosh(Constants<T>::max_exp_arg());
    }
    st.time = sK * ch;
    return st;
  }
  /// expmap0(v) = (sqrt K cosh(|v_s|/sqrt K), sinhc(|v_s|/sqrt K) v_s); v_0 is ignored (n = d+1).
  HYPLORA_INLINE void expmap0(const T* v, T* x, index_t n) const {
    const ScaleAndTime st = expmap0_scale_time(vec::norm(v + 1, n - 1));
    vec::scale(v + 1, st.scale, x + 1, n - 1);
    x[0] = st.time;
  }
  /// logmap0(x) = (0, asinhc(|x_s|/sqrt K) x_s); x_0 is not read (n = d+1).
  HYPLORA_INLINE void logmap0(const T* x, T* v, index_t n) const {
    logmap0_space(x + 1, v + 1, n - 1);
    v[0] = T(0);
  }

  // ---- general maps ---------------------------------------------------------------------------
  /// exp_x(v) = cosh(t) x + sinhc(t) v with t = ||v||_L / sqrt K; beyond max_exp_arg saturated,
  /// sinhc(t) = sinh(max)/t (also where t itself overflows T, as expmap0).
  HYPLORA_INLINE void expmap(const T* x, const T* v, T* y, index_t n) const {
    const T nv = tangent_norm(v, n);
    const T c = math::safe_cosh(nv / sqrtK()), s = expmap0_space_scale(nv);
    for (index_t i = 0; i < n; ++i) y[i] = c * x[i] + s * v[i];
  }
  /// log_x(y) = coef(a) ((y - x) - q/(2K) x), q = <y-x,y-x>_L, a = sqrt(q/(4K)),
  /// coef(a) = asinh(a) / (a sqrt(1+a^2)). (Equals arcosh(z)/sqrt(z^2-1) (y - z x), z = -<x,y>_L/K,
  /// written without the cancellation of y - z x for close points.)
  HYPLORA_INLINE void logmap(const T* x, const T* y, T* v, index_t n) const {
    // Written with a only (coef * q/(2K) = 2 a asinh(a) / sqrt(1+a^2)), so nothing overflows far out.
    const T a = minkowski_diff_norm(x, y, n) / (T(2) * sqrtK());
    const T r = math::sqrt1p_sq(a);
    const T coef = math::asinh_over_x(a) / r, ch = T(2) * a * math::asinh_nonneg(a) / r;
    for (index_t i = 0; i < n; ++i) v[i] = coef * (y[i] - x[i]) - ch * x[i];
  }
  /// Nearest point with the same space part: (sqrt(K + |x_s|^2), x_s).
  HYPLORA_INLINE void projx(const T* x, T* out, index_t n) const {
    const T t = time_from_space(x + 1, n - 1);
    for (index_t i = 1; i < n; ++i) out[i] = x[i];
    out[0] = t;
  }
  /// Projection onto T_x H: u + <x,u>_L / K x.
  HYPLORA_INLINE void proju(const T* x, const T* u, T* out, index_t n) const {
    const T s = minkowski(x, u, n) / K();
    for (index_t i = 0; i < n; ++i) out[i] = u[i] + s * x[i];
  }
  /// Parallel transport along the geodesic x -> y: v + <y,v>_L / (K - <x,y>_L) (x + y). Where
  /// x_0 y_0 or y_0 v_0 leaves T's range (points ~89 sqrt K apart in float), numerator and
  /// denominator are formed divided by w = max(x_0, y_0): s = (<y,v>_L / w) / ((K - <x,y>_L) / w).
  /// out may be v.
  HYPLORA_INLINE void transp(const T* x, const T* y, const T* v, T* out, index_t n) const {
    T yv = minkowski(y, v, n), den = K() - minkowski(x, y, n);
    if (!math::is_finite(yv) || !math::is_finite(den)) {
      const T iw = T(1) / (x[0] > y[0] ? x[0] : y[0]);
      yv = -(y[0] * iw) * v[0];
      den = K() * iw + x[0] * (y[0] * iw);
      for (index_t i = 1; i < n; ++i) {
        const T yi = y[i] * iw;
        yv += yi * v[i];
        den -= x[i] * yi;
      }
    }
    const T s = yv / den;
    for (index_t i = 0; i < n; ++i) out[i] = v[i] + s * (x[i] + y[i]);
  }
  /// Riemannian gradient from the Euclidean one: proju(x, J g), J = diag(-1, 1, ..., 1).
  /// Where (x.g)/K leaves T's range while r does not (a float gradient of 3.4e33 at K = 1e6, x_0 =
  /// 1e5; a gradient of 1e37 at K = 1e-6 near the origin), r = J g + s' (x w/K) with
  /// s' = sum (x_i/w) g_i, w = max |x_i|.
  HYPLORA_INLINE void egrad2rgrad(const T* x, const T* g, T* out, index_t n) const {
    T s = vec::dot(x, g, n) / K();  // <x, J g>_L = x . g
    T wk = T(1);
    if (!math::is_finite(s)) {
      const T w = vec::max_abs(x, n), iw = T(1) / w;
      s = T(0);
      for (index_t i = 0; i < n; ++i) s += (x[i] * iw) * g[i];
      wk = w / K();  // (NaN or Inf inputs: stay non-finite)
    }
    const T g0 = g[0];
    for (index_t i = 1; i < n; ++i) out[i] = g[i] + s * (x[i] * wk);
    out[0] = -g0 + s * (x[0] * wk);
  }
  /// Wrapped normal at the origin: expmap0 of a N(0, stddev^2 I) space vector. Rng: sampling.hpp.
  template <class Rng>
  HYPLORA_INLINE void random(Rng& rng, T* out, index_t n, T stddev = T(1)) const {
    for (index_t i = 1; i < n; ++i) out[i] = stddev * rng.template normal<T>();
    expmap0(out, out, n);
  }

  // ---- validation (host) ----------------------------------------------------------------------
  /// Default tolerance of is_point / check_point for n stored coordinates.
  static T default_tolerance(index_t n) {
    return Constants<T>::check_tolerance() * (n > 1 ? std::sqrt(T(n)) : T(1));
  }
  /// |<x,x>_L + K| / max(|x|_inf, sqrt K)^2 (rescaled, no overflow); +inf for x_0 <= 0 or NaN/Inf.
  T point_residual(const T* x, index_t n) const {
    if (n < 2 || !vec::all_finite(x, n) || !(x[0] > T(0))) return T(INFINITY);
    const T sK = sqrtK();
    T s = vec::max_abs(x, n);
    s = s > sK ? s : sK;
    T r = -(x[0] / s) * (x[0] / s) + (sK / s) * (sK / s);
    for (index_t i = 1; i < n; ++i) r += (x[i] / s) * (x[i] / s);
    return math::abs(r);
  }
  /// |<x,v>_L| / (|x| |v|): 0 for a tangent vector at x.
  T vector_residual(const T* x, const T* v, index_t n) const {
    if (n < 2 || !vec::all_finite(v, n) || !vec::all_finite(x, n)) return T(INFINITY);
    const T nx = vec::norm(x, n), nv = vec::norm(v, n);
    if (nv == T(0)) return T(0);
    T r = -(x[0] / nx) * (v[0] / nv);
    for (index_t i = 1; i < n; ++i) r += (x[i] / nx) * (v[i] / nv);
    return math::abs(r);
  }
  bool is_point(const T* x, index_t n, T tol = T(-1)) const {
    return point_residual(x, n) <= (tol < T(0) ? default_tolerance(n) : tol);
  }
  bool is_vector(const T* x, const T* v, index_t n, T tol = T(-1)) const {
    return vector_residual(x, v, n) <= (tol < T(0) ? default_tolerance(n) : tol);
  }
  /// Throws std::invalid_argument naming the problem and the offending value.
  void check_point(const T* x, index_t n, const char* name = "x", T tol = T(-1)) const {
    constexpr const char* who = "Lorentz::check_point";
    detail::require_dim(who, n, 2);
    detail::require_finite(who, name, x, n);
    if (!(x[0] > T(0)))
      detail::fail(who, std::string(name) + " has time coordinate " + name + "[0] <= 0 (lower sheet)", double(x[0]));
    const T r = point_residual(x, n), t = tol < T(0) ? default_tolerance(n) : tol;
    if (!(r <= t))
      detail::fail(who,
                   std::string(name) + " is off the hyperboloid <x,x>_L = -K (K = " + format_number(double(K())) +
                       ", <x,x>_L = " + format_number(double(minkowski(x, x, n))) + "): relative residual above " +
                       format_number(double(t)),
                   double(r));
  }
  void check_vector(const T* x, const T* v, index_t n, const char* name = "v", T tol = T(-1)) const {
    constexpr const char* who = "Lorentz::check_vector";
    detail::require_dim(who, n, 2);
    detail::require_finite(who, "the base point", x, n);
    detail::require_finite(who, name, v, n);
    const T r = vector_residual(x, v, n), t = tol < T(0) ? default_tolerance(n) : tol;
    if (!(r <= t))
      detail::fail(who,
                   std::string(name) + " is not tangent at the point: relative |<x,v>_L| above " +
                       format_number(double(t)),
                   double(r));
  }

  // ---- VJPs: accumulate into g*, return dL/dK ------------------------------------------------
  HYPLORA_INLINE T inner_vjp(const T*, const T* u, const T* v, T g, T* /*gx: 0*/, T* gu, T* gv, index_t n) const {
    if (gu) {
      gu[0] -= g * v[0];
      vec::axpy(g, v + 1, gu + 1, n - 1);
    }
    if (gv) {
      gv[0] -= g * u[0];
      vec::axpy(g, u + 1, gv + 1, n - 1);
    }
    return T(0);
  }
  /// d = 2 sK asinh(m / (2 sK)), m = ||x-y||_L:  dd/dx = J(x-y) / (m sqrt(1+a^2)), a = m/(2 sK);
  /// dd/dK = (asinh a - a / sqrt(1+a^2)) / sK.  At x = y the subgradient 0 is used.
  /// Far apart (m r beyond T's range, m ~ sqrt(x_0 y_0)) the factor g / (m r) is applied in two
  /// steps, (g/m) then 1/r, so that it neither overflows nor underflows.
  HYPLORA_INLINE T dist_vjp(const T* x, const T* y, T g, T* gx, T* gy, index_t n) const {
    const T sK = sqrtK();
    const T m = minkowski_diff_norm(x, y, n);
    const T a = m / (T(2) * sK), r = math::sqrt1p_sq(a), mr = m * r;
    const bool split = !math::is_finite(mr);
    const T s = split ? g / m : g / mr, s2 = split ? T(1) / r : T(1);  // g / (m r) = s s2
    if (needs_product_form(x[0], y[0]) && m > T(0)) {
      // Differentiate the form that was evaluated: m^2 = 2 (x_0 y_0 - x_s.y_s - K), so
      // dm/dx = (y_0, -y_s) / m, dm/dy = (x_0, -x_s) / m, dm/dK = -1/m.
      for (index_t i = 0; i < n; ++i) {
        if (gx) gx[i] += ((i == 0 ? s : -s) * y[i]) * s2;
        if (gy) gy[i] += ((i == 0 ? s : -s) * x[i]) * s2;
      }
      return g * (math::asinh_nonneg(a) - a / r) / sK - s * s2;
    }
    if (m != T(0)) {  // (a NaN m passes on)
      // a subnormal m (points ~1e-40 apart in float): g / (m r) overflows; (x - y)/m first
      const bool over = !math::is_finite(s) && math::is_finite(g / r);
      const T sc = over ? g / r : s;
      for (index_t i = 0; i < n; ++i) {
        const T diff = over ? (x[i] - y[i]) / m : x[i] - y[i];
        const T gi = ((i == 0 ? -sc : sc) * diff) * s2;
        if (gx) gx[i] += gi;
        if (gy) gy[i] -= gi;
      }
    }
    return g * (math::asinh_nonneg(a) - a / r) / sK;
  }
  /// d0 = sK asinh(b), b = |x_s|/sK: dd0/dx_s = x_s / (|x_s| sqrt(1+b^2)); dd0/dK = (asinh b - b/sqrt(1+b^2)) / (2 sK).
  /// b is not formed where it leaves T's range (a float |x_s| near float's maximum at a small K):
  /// asinh b and b/sqrt(1+b^2) from the quotient (dist0), the x_s term from 1/(|x_s| sqrt(1+b^2)),
  /// which then underflows to 0 as it should.
  HYPLORA_INLINE T dist0_vjp(const T* x, T g, T* gx, index_t n) const {
    const T sK = sqrtK();
    const T rn = vec::norm(x + 1, n - 1), r = math::sqrt1p_sq(rn / sK);
    if (gx && rn != T(0)) vec::axpy_over(g / r, rn, x + 1, gx + 1, n - 1);
    return g * (math::asinh_of_ratio(rn, sK) - math::x_over_sqrt1p_sq_of_ratio(rn, sK)) / (T(2) * sK);
  }
  /// Radial map x_s = f(t) v, t = |v|/sK, f = sinhc (series near 0), written with t f'(t) as
  /// logmap0_space_vjp (f'(t)/t = -sinh(80)/t^3 underflowed in float for t > ~3e26 in the saturated
  /// region, which dropped the radial term: a gradient of 2.8e7 where the map is constant along v).
  /// Beyond T's range of t the map is saturated: f = sinh(max)/t and t f'(t) = -f.
  HYPLORA_INLINE T expmap0_space_vjp(const T* v, const T* g, T* gv, index_t ns) const {
    const T k = K(), nv = vec::norm(v, ns), t = nv / std::sqrt(k);
    if (!math::is_finite(t)) {
      const T f = saturated_sinhc(nv);
      return radial_vjp(v, nv, f, -f, T(1), k, g, gv, ns);
    }
    const auto [f, tfp] = math::sinh_over_x_with_xderiv(t);
    return radial_vjp(v, nv, f, tfp, T(1), k, g, gv, ns);  // f'(t)/(t K) -> 1/(3K) at 0
  }
  /// As expmap0_space_vjp with f = asinhc, written with t f'(t) (~ -log(2t)/t, in range where f'(t)
  /// ~ log(t)/t^2 is not: float points beyond distance ~44 have t > 1e19). t is taken as a quotient
  /// (asinh_over_x_with_xderiv_of_ratio), so that it does not leave T's range for a float |x_s| near
  /// float's maximum.
  HYPLORA_INLINE T logmap0_space_vjp(const T* xs, const T* g, T* gx, index_t ns) const {
    const T k = K(), nx = vec::norm(xs, ns);
    const auto [f, tfp] = math::asinh_over_x_with_xderiv_of_ratio(nx, std::sqrt(k));
    return radial_vjp(xs, nx, f, tfp, T(-1), k, g, gx, ns);  // f'(t)/(t K) -> -1/(3K) at 0
  }
  /// time_from_space: x_0 = sqrt(K + |x_s|^2): dx_0/dx_s = x_s / x_0, dx_0/dK = 1 / (2 x_0).
  HYPLORA_INLINE T time_from_space_vjp(const T* xs, T g0, T* gxs, index_t ns) const {
    const T x0 = time_from_space(xs, ns);
    if (gxs) vec::axpy(g0 / x0, xs, gxs, ns);
    return g0 / (T(2) * x0);
  }
  /// Full expmap0 (n = d+1): space part as expmap0_space; x_0 = sK cosh t gives
  /// dx_0/dv_s = sinhc(t)/sK v_s, dx_0/dK = (cosh t - t sinh t) / (2 sK). gv[0] is untouched (v_0 unused).
  HYPLORA_INLINE T expmap0_vjp(const T* v, const T* g, T* gv, index_t n) const {
    T dK = expmap0_space_vjp(v + 1, g + 1, gv ? gv + 1 : nullptr, n - 1);
    const T sK = sqrtK(), t = vec::norm(v + 1, n - 1) / sK;
    if (t > Constants<T>::max_exp_arg())  // saturated: x_0 = sK cosh(max) depends on K only
      return dK + g[0] * std::cosh(Constants<T>::max_exp_arg()) / (T(2) * sK);
    if (gv) vec::axpy(g[0] * math::sinh_over_x(t) / sK, v + 1, gv + 1, n - 1);
    return dK + g[0] * (std::cosh(t) - t * std::sinh(t)) / (T(2) * sK);
  }
  /// Full logmap0 (n = d+1): v_0 = 0 and x_0 unused, so only the space part gets gradient.
  HYPLORA_INLINE T logmap0_vjp(const T* x, const T* g, T* gx, index_t n) const {
    return logmap0_space_vjp(x + 1, g + 1, gx ? gx + 1 : nullptr, n - 1);
  }
  /// projx: out_0 = sqrt(K + |x_s|^2), out_s = x_s.
  HYPLORA_INLINE T projx_vjp(const T* x, const T* g, T* gx, index_t n) const {
    if (gx) vec::axpy(T(1), g + 1, gx + 1, n - 1);
    return time_from_space_vjp(x + 1, g[0], gx ? gx + 1 : nullptr, n - 1);
  }
  /// y = C(t) x + S(t) v, t = sqrt(<v,v>_L)/sK, C = cosh, S = sinhc.
  /// dL/dt / t = (g.x) S(t) + (g.v) S'(t)/t;  gv += S g + (dL/dt / t)/K J v;  gx += C g;
  /// dL/dK = -(dL/dt / t) t^2 / (2K). Beyond max_exp_arg the VJP of the saturated map (C constant,
  /// S = sinh(max)/t), written with u = v/|v|_L so that nothing overflows where t does.
  HYPLORA_INLINE T expmap_vjp(const T* x, const T* v, const T* g, T* gx, T* gv, index_t n) const {
    const T k = K(), nv = tangent_norm(v, n), t = nv / std::sqrt(k);
    const T c = math::safe_cosh(t);
    if (t > Constants<T>::max_exp_arg() && math::is_finite(nv)) {
      // saturated: y = cosh(max) x + s v, s = sinh(max)/t; with u = v/|v|_L and ug = g.u, ds/dt = -s/t,
      // dt/dv = J v/(t K), dt/dK = -t/(2K):  gv += s g - s ug J u,  dL/dK = s ug |v|_L / (2K).
      const T s = saturated_sinhc(nv), inv = T(1) / nv;
      T ug = T(0);
      for (index_t i = 0; i < n; ++i) ug += g[i] * (v[i] * inv);
      if (gx) vec::axpy(c, g, gx, n);
      if (gv) {
        const T w = s * ug;
        gv[0] += s * g[0] + w * (v[0] * inv);
        for (index_t i = 1; i < n; ++i) gv[i] += s * g[i] - w * (v[i] * inv);
      }
      return (s * nv) / (T(2) * k) * ug;  // s |v| / (2K) = sinh(max) / (2 sqrt K): |v|/K overflows where t does
    }
    const auto [s, sp] = math::sinh_over_x_with_deriv(t);
    const T sp_over_t = t != T(0) ? sp / t : T(1) / T(3);
    const T dLdt_over_t = vec::dot(g, x, n) * s + vec::dot(g, v, n) * sp_over_t;
    if (gx) vec::axpy(c, g, gx, n);
    if (gv) {
      const T w = dLdt_over_t / k;
      gv[0] += s * g[0] - w * v[0];
      for (index_t i = 1; i < n; ++i) gv[i] += s * g[i] + w * v[i];
    }
    // as ((dL/dt)/K) (t/2): each product at most the result for t >= 2 (t^2, or dL/dt, first overflowed
    // double at K = 1e6, t ~ 700, where dL/dK ~ 1e305)
    return -((dLdt_over_t / k) * t) * (t / T(2));
  }
  /// v = coef(a) (y - x) - ch(a) x (see logmap), a = m/(2 sqrt K), m = ||y-x||_L, r = sqrt(1+a^2):
  ///   coef = asinh(a)/(a r),  ch = 2 a asinh(a)/r,  g.v = coef S1 - ch Gx  (S1 = g.(y-x), Gx = g.x)
  ///   direct:    gy += coef g,  gx -= (coef + ch) g
  ///   through a: dL/da = coef'(a) S1 - ch'(a) Gx, with c = (dL/dm)/m = (dL/da)/(2 sqrt K m):
  ///              chord form m^2 = <y-x,y-x>_L:    gy += c J(y-x),  gx -= c J(y-x)
  ///              product form m^2 = 2(x_0 y_0 - x_s.y_s - K):  gx += c (y_0, -y_s),  gy += c (x_0, -x_s)
  ///   dL/dK = -(dL/da) a/(2K) (a at fixed m) - c (product form: dm/dK = -1/m)
  /// Written in a, not q = m^2 or q/(2K) x (which overflow for pairs ~45 sqrt K apart in float):
  /// below a = 1 c comes from (dL/da)/a (finite at a = 0), above from (dL/da)/(2 sqrt K)/m.
  HYPLORA_INLINE T logmap_vjp(const T* x, const T* y, const T* g, T* gx, T* gy, index_t n) const {
    const T k = K(), sK = std::sqrt(k);
    const T m = minkowski_diff_norm(x, y, n);
    const T a = m / (T(2) * sK), r = math::sqrt1p_sq(a), a_r = a / r;
    const auto [A, Ap] = math::asinh_over_x_with_deriv(a);  // A = asinh(a)/a
    const T coef = A / r, ch = T(2) * (A * a) * a_r;
    T S1 = T(0), Gx = T(0);
    for (index_t i = 0; i < n; ++i) {
      S1 += g[i] * (y[i] - x[i]);
      Gx += g[i] * x[i];
    }
    T c, dK;
    if (a < T(1)) {
      // (1/a) coef'(a) = (A'/a - A/r^2)/r,  (1/a) ch'(a) = (2/r)(1/r + A/r^2);  c = ((dL/da)/a)/(4K)
      const T Ap_over_a = a != T(0) ? Ap / a : T(-1) / T(3), r2 = r * r;
      const T dLda_over_a = (Ap_over_a - A / r2) / r * S1 - T(2) / r * (T(1) / r + A / r2) * Gx;
      c = dLda_over_a / (T(4) * k);
      dK = -T(2) * c * a * a;
    } else {
      // coef'(a) = (A' - A a/r^2)/r,  ch'(a) = (2/r)(a/r + asinh(a)/r^2)
      const T dLda = (Ap - A * a_r / r) / r * S1 - T(2) / r * (a_r + A * a_r / r) * Gx;
      c = dLda / (T(2) * sK) / m;
      dK = -dLda * (a / (T(2) * k));
    }
    const bool product = needs_product_form(x[0], y[0]) && m > T(0);
    for (index_t i = 0; i < n; ++i) {
      const T sg = i == 0 ? T(-1) : T(1);  // J
      if (product) {
        if (gx) gx[i] += -(coef + ch) * g[i] - sg * c * y[i];
        if (gy) gy[i] += coef * g[i] - sg * c * x[i];
      } else {
        const T t = sg * c * (y[i] - x[i]);
        if (gx) gx[i] += -(coef + ch) * g[i] - t;
        if (gy) gy[i] += coef * g[i] + t;
      }
    }
    return dK - (product ? c : T(0));
  }

 private:
  /// VJP of a radial map y = f(t) v, t = |v|/sqrt K (nv = |v|), from f and t f'(t) at t:
  ///   gv += f g + [t f'(t) (u.g)] u,  u = v/|v|;   returns dL/dK = -(u.g) |v| t f'(t) / (2K).
  /// Written with u (not f'(t)/(t K) (v.g) v), so that neither v.g nor f'(t)/t leaves T's range.
  /// At |v| <= min_norm u is not formed: the radial term is its limit there, at0 (v.g) v / (3K)
  /// (at0 = +1 for sinhc, -1 for asinhc), and dL/dK = -(v.g) t f'(t) / (2K).
  HYPLORA_INLINE static T radial_vjp(const T* v, T nv, T f, T tfp, T at0, T k, const T* g, T* gv,
                                     index_t ns) {
    if (!(nv > Constants<T>::min_norm())) {
      const T vg = vec::dot(v, g, ns);
      if (gv) {
        const T c = at0 * (vg / (T(3) * k));
        for (index_t i = 0; i < ns; ++i) gv[i] += f * g[i] + c * v[i];
      }
      return -vg * tfp / (T(2) * k);
    }
    const T inv = T(1) / nv;
    T ug = T(0);  // u.g
    for (index_t i = 0; i < ns; ++i) ug += (v[i] * inv) * g[i];
    if (gv) {
      const T c = tfp * ug;
      for (index_t i = 0; i < ns; ++i) gv[i] += f * g[i] + c * (v[i] * inv);
    }
    return -(nv * tfp) / (T(2) * k) * ug;  // (|v| t f' (u.g) first overflowed float at K = 1e6, t = 100)
  }

  Curv curv_;
};

}  // namespace hyplora
