#pragma once
// Batched manifold operations over the rows of row-major matrices (host, OpenMP over rows).
//
// Row r of a matrix with row length n starts at ptr + r * n. Each function applies the
// single-point method of the manifold to every row (the radial maps and dist through their
// *_scale / dist_from_argument methods, a tile of rows at a time); the same methods are what a CUDA kernel calls per
// row (see tests/test_manifold_cuda.cu), so CPU and GPU share one definition. Without OpenMP the
// pragmas are ignored and the loops run serially.

#include "hyplora/core/config.hpp"
#include "hyplora/core/simd_dispatch.hpp"
#include "hyplora/manifold/isometry.hpp"

// OpenMP pragmas only where OpenMP is on (no -Wunknown-pragmas noise elsewhere).
#if defined(_OPENMP)
#define HYPLORA_OMP(directive) _Pragma(#directive)
#else
#define HYPLORA_OMP(directive)
#endif

namespace hyplora {
namespace batched {

/// f(r) for r in [0, rows), rows split statically across OpenMP threads.
template <class F>
inline void for_each_row(index_t rows, F&& f) {
HYPLORA_OMP(omp parallel for schedule(static))
  for (index_t r = 0; r < rows; ++r) f(r);
}

/// Rows in tiles of up to 16 rows and ~16 KiB (long rows: fewer per tile, so that pass 3 still
/// finds them in L1), in three passes per tile:
///   1. stats(r, a, b): per-row sums (a norm, a squared norm, a distance argument), in row order;
///   2. f_k = scale(a_k, b_k) for the 16 rows at once: the transcendental part, branch-free for
///      float (core/scalar_math.hpp), so this loop vectorises; elsewhere the 16 independent
///      latency chains still overlap, where the row-by-row loop waited for each;
///   3. apply(r, f_k): the rows are written while they are still in L1.
/// Measured against the row-by-row loop in docs/geometry.md.
template <class T, class Stats, class Scale, class Apply>
inline void for_each_row_tiled(index_t rows, index_t row_length, Stats&& stats, Scale&& scale, Apply&& apply) {
  constexpr index_t tile_max = 16;
  using F = decltype(scale(T(0), T(0)));
  const index_t per_tile = index_t(16384 / sizeof(T)) / (row_length > 0 ? row_length : 1);
  const index_t tile = per_tile < 1 ? 1 : (per_tile > tile_max ? tile_max : per_tile);
  const index_t tiles = (rows + tile - 1) / tile;
HYPLORA_OMP(omp parallel for schedule(static))
  for (index_t t = 0; t < tiles; ++t) {
    const index_t r0 = t * tile, m = r0 + tile < rows ? tile : rows - r0;
    T a[tile_max], b[tile_max];
    F f[tile_max];
    for (index_t k = 0; k < m; ++k) stats(r0 + k, a[k], b[k]);
    simd::simd_loop(m, [&](index_t k) { f[k] = scale(a[k], b[k]); });
    for (index_t k = 0; k < m; ++k) apply(r0 + k, f[k]);
  }
}
/// Pass 1 of a radial map: |row| and |row|^2 (vec::norm's overflow-safe value).
template <class T>
inline void row_norms(const T* row, index_t n, T& norm, T& sqnorm) {
  sqnorm = vec::sqnorm(row, n);
  norm = vec::norm_from_sq(row, sqnorm, n);
}

/// X[r] = expmap0(V[r]); n = stored coordinates per row (Lorentz: d+1).
template <class M, class T>
void expmap0(const M& m, const T* V, T* X, index_t rows, index_t n) {
  if constexpr (requires { m.expmap0_scale(T(0)); })  // radial: X = f(|V|) V
    for_each_row_tiled<T>(
        rows, n, [&](index_t r, T& a, T& b) { row_norms(V + r * n, n, a, b); },
        [&](T a, T) { return m.expmap0_scale(a); },
        [&](index_t r, T f) { vec::scale(V + r * n, f, X + r * n, n); });
  else if constexpr (requires { m.expmap0_scale_time(T(0)); })  // Lorentz: space part scaled, time set
    for_each_row_tiled<T>(
        rows, n, [&](index_t r, T& a, T& b) { row_norms(V + r * n + 1, n - 1, a, b); },
        [&](T a, T) { return m.expmap0_scale_time(a); },
        [&](index_t r, const auto& st) {
          vec::scale(V + r * n + 1, st.scale, X + r * n + 1, n - 1);
          X[r * n] = st.time;
        });
  else
    for_each_row(rows, [&](index_t r) { m.expmap0(V + r * n, X + r * n, n); });
}
template <class M, class T>
void logmap0(const M& m, const T* X, T* V, index_t rows, index_t n) {
  if constexpr (requires { m.logmap0_scale(T(0), T(0)); })  // radial: V = f(|X|) X
    for_each_row_tiled<T>(
        rows, n, [&](index_t r, T& a, T& b) { row_norms(X + r * n, n, a, b); },
        [&](T a, T b) { return m.logmap0_scale(a, b); },
        [&](index_t r, T f) { vec::scale(X + r * n, f, V + r * n, n); });
  else if constexpr (requires { m.logmap0_space_scale(T(0)); })  // Lorentz: v_0 = 0, space part scaled
    for_each_row_tiled<T>(
        rows, n, [&](index_t r, T& a, T& b) { row_norms(X + r * n + 1, n - 1, a, b); },
        [&](T a, T) { return m.logmap0_space_scale(a); },
        [&](index_t r, T f) {
          vec::scale(X + r * n + 1, f, V + r * n + 1, n - 1);
          V[r * n] = T(0);
        });
  else
    for_each_row(rows, [&](index_t r) { m.logmap0(X + r * n, V + r * n, n); });
}
/// Lorentz only: space parts (ns = d coordinates per row).
template <class M, class T>
void expmap0_space(const M& m, const T* V, T* Xs, index_t rows, index_t ns) {
  for_each_row_tiled<T>(
      rows, ns, [&](index_t r, T& a, T& b) { row_norms(V + r * ns, ns, a, b); },
      [&](T a, T) { return m.expmap0_space_scale(a); },
      [&](index_t r, T f) { vec::scale(V + r * ns, f, Xs + r * ns, ns); });
}
template <class M, class T>
void logmap0_space(const M& m, const T* Xs, T* V, index_t rows, index_t ns) {
  for_each_row_tiled<T>(
      rows, ns, [&](index_t r, T& a, T& b) { row_norms(Xs + r * ns, ns, a, b); },
      [&](T a, T) { return m.logmap0_space_scale(a); },
      [&](index_t r, T f) { vec::scale(Xs + r * ns, f, V + r * ns, ns); });
}
/// out[r] = dist(X[r], Y[r]).
template <class M, class T>
void dist(const M& m, const T* X, const T* Y, T* out, index_t rows, index_t n) {
  if constexpr (requires { m.dist_from_argument(T(0)); })  // argument per row, then asinh for a tile
    for_each_row_tiled<T>(
        rows, 2 * n, [&](index_t r, T& a, T&) { a = m.dist_argument(X + r * n, Y + r * n, n); },
        [&](T a, T) { return m.dist_from_argument(a); }, [&](index_t r, T d) { out[r] = d; });
  else
    for_each_row(rows, [&](index_t r) { out[r] = m.dist(X + r * n, Y + r * n, n); });
}
template <class M, class T>
void dist0(const M& m, const T* X, T* out, index_t rows, index_t n) {
  for_each_row(rows, [&](index_t r) { out[r] = m.dist0(X + r * n, n); });
}
template <class M, class T>
void projx(const M& m, const T* X, T* out, index_t rows, index_t n) {
  for_each_row(rows, [&](index_t r) { m.projx(X + r * n, out + r * n, n); });
}
/// VJPs over rows: gradients accumulated per row; returns the summed dL/dK.
template <class M, class T>
T expmap0_vjp(const M& m, const T* V, const T* G, T* GV, index_t rows, index_t n) {
  T dK = T(0);
HYPLORA_OMP(omp parallel for schedule(static) reduction(+ : dK))
  for (index_t r = 0; r < rows; ++r) dK += m.expmap0_vjp(V + r * n, G + r * n, GV ? GV + r * n : nullptr, n);
  return dK;
}
template <class M, class T>
T logmap0_vjp(const M& m, const T* X, const T* G, T* GX, index_t rows, index_t n) {
  T dK = T(0);
HYPLORA_OMP(omp parallel for schedule(static) reduction(+ : dK))
  for (index_t r = 0; r < rows; ++r) dK += m.logmap0_vjp(X + r * n, G + r * n, GX ? GX + r * n : nullptr, n);
  return dK;
}
template <class M, class T>
T dist_vjp(const M& m, const T* X, const T* Y, const T* g, T* GX, T* GY, index_t rows, index_t n) {
  T dK = T(0);
HYPLORA_OMP(omp parallel for schedule(static) reduction(+ : dK))
  for (index_t r = 0; r < rows; ++r)
    dK += m.dist_vjp(X + r * n, Y + r * n, g[r], GX ? GX + r * n : nullptr, GY ? GY + r * n : nullptr, n);
  return dK;
}
/// Isometries over rows: X has d+1 columns, P has d.
template <class T>
void lorentz_to_poincare(T K, const T* X, T* P, index_t rows, index_t d) {
  for_each_row(rows, [&](index_t r) { hyplora::lorentz_to_poincare(K, X + r * (d + 1), P + r * d, d); });
}
template <class T>
void poincare_to_lorentz(T K, const T* P, T* X, index_t rows, index_t d) {
  for_each_row(rows, [&](index_t r) { hyplora::poincare_to_lorentz(K, P + r * d, X + r * (d + 1), d); });
}

}  // namespace batched
}  // namespace hyplora
