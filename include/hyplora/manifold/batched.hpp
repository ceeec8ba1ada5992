#pragma once
// Batched manifold operations over the rows of row-major matrices (host, OpenMP over rows).
//
// Row r of a matrix with row length n starts at ptr + r * n. Each function applies the
// single-point method of the manifold to every row; the same method is what a CUDA kernel calls
// per row (see tests/test_manifold_cuda.cu), so CPU and GPU share one definition. Without OpenMP
// the pragmas are ignored and the loops run serially.

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

/// X[r] = expmap0(V[r]); n = stored coordinates per row (Lorentz: d+1).
template <class M, class T>
void expmap0(const M& m, const T* V, T* X, index_t rows, index_t n) {
  for_each_row(rows, [&](index_t r) { m.expmap0(V + r * n, X + r * n, n); });
}
template <class M, class T>
void logmap0(const M& m, const T* X, T* V, index_t rows, index_t n) {
  for_each_row(rows, [&](index_t r) { m.logmap0(X + r * n, V + r * n, n); });
}
/// Lorentz only: space parts (ns = d coordinates per row).
template <class M, class T>
void expmap0_space(const M& m, const T* V, T* Xs, index_t rows, index_t ns) {
  for_each_row(rows, [&](index_t r) { m.expmap0_space(V + r * ns, Xs + r * ns, ns); });
}
template <class M, class T>
void logmap0_space(const M& m, const T* Xs, T* V, index_t rows, index_t ns) {
  for_each_row(rows, [&](index_t r) { m.logmap0_space(Xs + r * ns, V + r * ns, ns); });
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
