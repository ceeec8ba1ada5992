#pragma once
// Euclidean space E^n: the flat member of the manifold family (SPEC section 1).
//
// Same interface as Lorentz and PoincareBall, so that adapters and tests are written once:
// every method takes raw coordinate pointers and n = the number of stored coordinates of a
// point (here the dimension d). Outputs may alias inputs of the same shape. VJP methods
// accumulate (+=) into the gradient buffers (nullptr = not wanted) and return dL/dK, which
// is always 0 here.

#include "hyplora/core/config.hpp"
#include "hyplora/curvature.hpp"
#include "hyplora/manifold/vector_ops.hpp"

namespace hyplora {

template <class T, class Curv = FlatCurvature<T>>
class Euclidean {
 public:
  using scalar_type = T;
  using curvature_type = Curv;
  static constexpr bool is_hyperbolic = false;
  /// Extra stored coordinates of a point beyond the intrinsic dimension (Lorentz: 1).
  static constexpr index_t extra_coords = 0;

  HYPLORA_HOST_DEVICE explicit Euclidean(Curv c = Curv()) : curv_(c) {}
  HYPLORA_INLINE const Curv& curvature() const { return curv_; }
  /// The flat space is the limit K -> infinity of the hyperbolic ones.
  HYPLORA_INLINE T K() const { return T(INFINITY); }

  HYPLORA_INLINE T inner(const T*, const T* u, const T* v, index_t n) const { return vec::dot(u, v, n); }
  HYPLORA_INLINE T norm(const T*, const T* u, index_t n) const { return vec::norm(u, n); }
  HYPLORA_INLINE T dist(const T* x, const T* y, index_t n) const { return vec::dist(x, y, n); }
  HYPLORA_INLINE T dist0(const T* x, index_t n) const { return vec::norm(x, n); }
  HYPLORA_INLINE void expmap(const T* x, const T* v, T* out, index_t n) const {
    for (index_t i = 0; i < n; ++i) out[i] = x[i] + v[i];
  }
  HYPLORA_INLINE void logmap(const T* x, const T* y, T* out, index_t n) const {
    for (index_t i = 0; i < n; ++i) out[i] = y[i] - x[i];
  }
  HYPLORA_INLINE void expmap0(const T* v, T* out, index_t n) const { vec::copy(v, out, n); }
  HYPLORA_INLINE void logmap0(const T* x, T* out, index_t n) const { vec::copy(x, out, n); }
  HYPLORA_INLINE void projx(const T* x, T* out, index_t n) const { vec::copy(x, out, n); }
  HYPLORA_INLINE void proju(const T*, const T* u, T* out, index_t n) const { vec::copy(u, out, n); }
  HYPLORA_INLINE void transp(const T*, const T*, const T* v, T* out, index_t n) const { vec::copy(v, out, n); }
  HYPLORA_INLINE void egrad2rgrad(const T*, const T* g, T* out, index_t n) const { vec::copy(g, out, n); }

  /// Normal sample N(0, stddev^2 I) (the wrapped normal of a flat space). Rng: see sampling.hpp.
  template <class Rng>
  HYPLORA_INLINE void random(Rng& rng, T* out, index_t n, T stddev = T(1)) const {
    for (index_t i = 0; i < n; ++i) out[i] = stddev * rng.template normal<T>();
  }

  // ---- validation (host) -----------------------------------------------------------------
  T point_residual(const T* x, index_t n) const { return vec::all_finite(x, n) ? T(0) : T(INFINITY); }
  T vector_residual(const T*, const T* v, index_t n) const { return vec::all_finite(v, n) ? T(0) : T(INFINITY); }
  // the tolerance of the curved manifolds' signatures is accepted and unused: every finite point
  // and vector lies on a flat space exactly
  bool is_point(const T* x, index_t n, T /*tol*/ = T(0)) const { return point_residual(x, n) == T(0); }
  bool is_vector(const T* x, const T* v, index_t n, T /*tol*/ = T(0)) const { return vector_residual(x, v, n) == T(0); }
  void check_point(const T* x, index_t n, const char* name = "x", T /*tol*/ = T(0)) const {
    detail::require_dim("Euclidean::check_point", n, 1);
    detail::require_finite("Euclidean::check_point", name, x, n);
  }
  void check_vector(const T*, const T* v, index_t n, const char* name = "v", T /*tol*/ = T(0)) const {
    detail::require_dim("Euclidean::check_vector", n, 1);
    detail::require_finite("Euclidean::check_vector", name, v, n);
  }

  // ---- VJPs: accumulate into g*, return dL/dK (0) -----------------------------------------
  HYPLORA_INLINE T inner_vjp(const T*, const T* u, const T* v, T g, T* /*gx: 0*/, T* gu, T* gv, index_t n) const {
    if (gu) vec::axpy(g, v, gu, n);
    if (gv) vec::axpy(g, u, gv, n);
    return T(0);
  }
  HYPLORA_INLINE T dist_vjp(const T* x, const T* y, T g, T* gx, T* gy, index_t n) const {
    const T d = vec::dist(x, y, n);
    if (d == T(0)) return T(0);  // not differentiable at x = y: subgradient 0 (a NaN d passes on)
    for (index_t i = 0; i < n; ++i) {
      const T gi = g * (x[i] - y[i]) / d;
      if (gx) gx[i] += gi;
      if (gy) gy[i] -= gi;
    }
    return T(0);
  }
  HYPLORA_INLINE T dist0_vjp(const T* x, T g, T* gx, index_t n) const {
    const T d = vec::norm(x, n);
    if (d != T(0) && gx) vec::axpy_over(g, d, x, gx, n);
    return T(0);
  }
  HYPLORA_INLINE T expmap_vjp(const T*, const T*, const T* g, T* gx, T* gv, index_t n) const {
    if (gx) vec::axpy(T(1), g, gx, n);
    if (gv) vec::axpy(T(1), g, gv, n);
    return T(0);
  }
  HYPLORA_INLINE T logmap_vjp(const T*, const T*, const T* g, T* gx, T* gy, index_t n) const {
    if (gx) vec::axpy(T(-1), g, gx, n);
    if (gy) vec::axpy(T(1), g, gy, n);
    return T(0);
  }
  HYPLORA_INLINE T expmap0_vjp(const T*, const T* g, T* gv, index_t n) const {
    if (gv) vec::axpy(T(1), g, gv, n);
    return T(0);
  }
  HYPLORA_INLINE T logmap0_vjp(const T*, const T* g, T* gx, index_t n) const {
    if (gx) vec::axpy(T(1), g, gx, n);
    return T(0);
  }
  HYPLORA_INLINE T projx_vjp(const T*, const T* g, T* gx, index_t n) const {
    if (gx) vec::axpy(T(1), g, gx, n);
    return T(0);
  }

 private:
  Curv curv_;
};

}  // namespace hyplora
