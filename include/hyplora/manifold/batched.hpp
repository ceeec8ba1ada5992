#pragma once
// Batched manifold operations over the rows of row-major matrices (host, OpenMP over rows).
//
// Row r of a matrix with row length n starts at ptr + r * n. Each function applies the
// single-point method of the manifold to every row (the radial maps at the origin through their
// *_factor methods, a tile of rows at a time); the same methods are what a CUDA kernel calls per
// row (see tests/test_manifold_cuda.cu), so CPU and GPU share one definition. Without OpenMP the
// pragmas are ignored and the loops run serially.

#include "hyplora/core/config.hpp"
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

/// Rows of a radial map in tiles of 16: first the factors of the tile's rows (each a chain of
/// norm -> sqrt -> transcendental whose latency, not the memory traffic, bounded the row-by-row
/// loop; the chains of 16 rows are independent and overlap), then the rows are written while they
/// are still in L1. Measured 1.1-1.5x over the row-by-row loop at 1M x 64 (docs/geometry.md).
template <class Factor, class Apply>
inline void for_each_row_tiled(index_t rows, Factor&& factor, Apply&& apply) {
  constexpr index_t tile = 16;
  using F = decltype(factor(index_t(0)));
  const index_t tiles = (rows + tile - 1) / tile;
HYPLORA_OMP(omp parallel for schedule(static))
  for (index_t t = 0; t < tiles; ++t) {
    const index_t r0 = t * tile, r1 = r0 + tile < rows ? r0 + tile : rows;
    F f[tile];
    for (index_t r = r0; r < r1; ++r) f[r - r0] = factor(r);
    for (index_t r = r0; r < r1; ++r) apply(r, f[r - r0]);
  }
}

/// X[r] = expmap0(V[r]); n = stored coordinates per row (Lorentz: d+1).
template <class M, class T>
void expmap0(const M& m, const T* V, T* X, index_t rows, index_t n) {
  if constexpr (requires { m.expmap0_factor(V, n); })  // radial: X = f V
    for_each_row_tiled(rows, [&](index_t r) { return m.expmap0_factor(V + r * n, n); },
                       [&](index_t r, T f) { vec::scale(V + r * n, f, X + r * n, n); });
  else if constexpr (requires { m.expmap0_factors(V, n); })  // Lorentz: space part scaled, time set
    for_each_row_tiled(rows, [&](index_t r) { return m.expmap0_factors(V + r * n, n); },
                       [&](index_t r, const auto& st) {
                         vec::scale(V + r * n + 1, st.scale, X + r * n + 1, n - 1);
                         X[r * n] = st.time;
                       });
  else
    for_each_row(rows, [&](index_t r) { m.expmap0(V + r * n, X + r * n, n); });
}
template <class M, class T>
void logmap0(const M& m, const T* X, T* V, index_t rows, index_t n) {
  if constexpr (requires { m.logmap0_factor(X, n); })  // radial: V = f X
    for_each_row_tiled(rows, [&](index_t r) { return m.logmap0_factor(X + r * n, n); },
                       [&](index_t r, T f) { vec::scale(X + r * n, f, V + r * n, n); });
  else if constexpr (requires { m.logmap0_space_factor(X, n); })  // Lorentz: v_0 = 0, space part scaled
    for_each_row_tiled(rows, [&](index_t r) { return m.logmap0_space_factor(X + r * n + 1, n - 1); },
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
  for_each_row_tiled(rows, [&](index_t r) { return m.expmap0_space_factor(V + r * ns, ns); },
                     [&](index_t r, T f) { vec::scale(V + r * ns, f, Xs + r * ns, ns); });
}
template <class M, class T>
void logmap0_space(const M& m, const T* Xs, T* V, index_t rows, index_t ns) {
  for_each_row_tiled(rows, [&](index_t r) { return m.logmap0_space_factor(Xs + r * ns, ns); },
                     [&](index_t r, T f) { vec::scale(Xs + r * ns, f, V + r * ns, ns); });
}
/// out[r] = dist(X[r], Y[r]).
template <class M, class T>
void dist(const M& m, const T* X, const T* Y, T* out, index_t rows, index_t n) {
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
