#pragma once
// Batched maps over the rows of a matrix in GPU memory (nvcc only): a group of 8, 16 or 32 lanes
// of a warp per row (short rows share a warp), and for rows of 513 to 4096 values one block per
// row holding the row in registers, so that a map reads it once. The lanes of a group read
// consecutive coordinates (coalesced), sum them with warp shuffles, and every lane then takes the
// row's factor from the same manifold methods the CPU tiles use (expmap0_scale, logmap0_scale,
// expmap0_scale_time, logmap0_space_scale, the dist arguments): no second copy of the math. (One
// thread per row, as a plain kernel over the single-point maps gives, reads 32 rows 4 d bytes apart
// per load and reached 2-7% of the copy bound on an H200: docs/geometry.md.) Rows: core/gpu_rows.hpp.
//
//   hyplora::batched::gpu::expmap0(m, V, X, rows, n, stream);   // n = stored coordinates per row
//   hyplora::batched::gpu::logmap0(m, X, V, rows, n, stream);
//   hyplora::batched::gpu::dist(m, X, Y, out, rows, n, stream);
//
// Lorentz and PoincareBall (any scalar type, any curvature policy). Asynchronous on `stream`;
// a launch error is thrown as std::runtime_error.
#if !defined(__CUDACC__)
#error "hyplora/manifold/batched_gpu.hpp is compiled by nvcc only (use hyplora/manifold/batched.hpp on the CPU)"
#endif

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "hyplora/core/config.hpp"
#include "hyplora/core/gpu_rows.hpp"
#include "hyplora/manifold/vector_ops.hpp"

namespace hyplora::batched::gpu {
namespace detail {

using gpu_rows::RowGroup;

template <int Lanes, class M, class T>
__global__ void expmap0_rows(M m, const T* V, T* X, index_t rows, index_t n) {
  const RowGroup<Lanes> g(rows);
  const index_t r = g.row_or_first();
  if constexpr (requires { m.expmap0_scale(T(0)); }) {  // radial: X = f(|V|) V
    const T* v = V + r * n;
    const T s = g.template sum<T>(n, [&](index_t j) { return v[j] * v[j]; });
    const T f = m.expmap0_scale(vec::norm_from_sq(v, s, n));
    g.for_each(n, [&](index_t j) { X[r * n + j] = f * v[j]; });
  } else {  // Lorentz: space part scaled, time coordinate set
    const T* v = V + r * n + 1;
    const index_t ns = n - 1;
    const T s = g.template sum<T>(ns, [&](index_t j) { return v[j] * v[j]; });
    const auto st = m.expmap0_scale_time(vec::norm_from_sq(v, s, ns));
    g.for_each(ns, [&](index_t j) { X[r * n + 1 + j] = st.scale * v[j]; });
    if (g.valid && g.lane == 0) X[r * n] = st.time;
  }
}

template <int Lanes, class M, class T>
__global__ void logmap0_rows(M m, const T* X, T* V, index_t rows, index_t n) {
  const RowGroup<Lanes> g(rows);
  const index_t r = g.row_or_first();
  if constexpr (requires { m.logmap0_scale(T(0), T(0)); }) {  // radial: V = f(|X|) X
    const T* x = X + r * n;
    const T s = g.template sum<T>(n, [&](index_t j) { return x[j] * x[j]; });
    const T f = m.logmap0_scale(vec::norm_from_sq(x, s, n), s);
    g.for_each(n, [&](index_t j) { V[r * n + j] = f * x[j]; });
  } else {  // Lorentz: v_0 = 0, space part scaled
    const T* x = X + r * n + 1;
    const index_t ns = n - 1;
    const T s = g.template sum<T>(ns, [&](index_t j) { return x[j] * x[j]; });
    const T f = m.logmap0_space_scale(vec::norm_from_sq(x, s, ns));
    g.for_each(ns, [&](index_t j) { V[r * n + 1 + j] = f * x[j]; });
    if (g.valid && g.lane == 0) V[r * n] = T(0);
  }
}

/// vec::rescaled_norm of the row term(0..n-1) split over a group's lanes (the first term with
/// first_sign), to every lane of the group: the lanes' largest |term|, then the sum of the squared
/// quotients. Every lane of the warp must call it (shuffles). The plain sums leave T's range for
/// coincident points (a zero |x - y|^2): each lane walking the whole row made the batched dist of
/// such rows 10x (64 values) to 180x (4096) slower than the copy bound.
template <class T, class G, class Term>
__device__ T group_rescaled_norm(const G& g, index_t n, const Term& term, T first_sign) {
  const T mx = g.template max_of<T>(n, [&](index_t j) { return math::abs(term(j)); });
  const T m = mx == T(0) ? T(1) : mx;  // as vec::rescaled_norm
  const T r = g.template sum<T>(n, [&](index_t j) {
    const T a = term(j) / m;
    return (j == 0 ? first_sign : T(1)) * a * a;
  });
  return vec::rescaled_norm_from(mx, r);
}
/// The same for a block row held in registers: the differences xv - yv, beside a leading term
/// `first` (its sign first_sign; 0 for none). Every thread of the block must call it.
template <int PerThread, class T>
__device__ T block_rescaled_diff_norm(const gpu_rows::BlockRow<PerThread>& b, const T (&xv)[PerThread],
                                      const T (&yv)[PerThread], T first, T first_sign) {
  T local = T(0);
#pragma unroll
  for (int k = 0; k < PerThread; ++k) {
    const T a = math::abs(xv[k] - yv[k]);
    local = a > local ? a : local;
  }
  T mx = b.max(local);
  mx = math::abs(first) > mx ? math::abs(first) : mx;
  const T m = mx == T(0) ? T(1) : mx;
  T s = T(0);
#pragma unroll
  for (int k = 0; k < PerThread; ++k) {
    const T a = (xv[k] - yv[k]) / m;
    s += a * a;
  }
  const T f = first / m;
  return vec::rescaled_norm_from(mx, first_sign * f * f + b.sum(s));
}

template <int Lanes, class M, class T>
__global__ void dist_rows(M m, const T* X, const T* Y, T* out, index_t rows, index_t n) {
  const RowGroup<Lanes> g(rows);
  const index_t r = g.row_or_first();
  const T* x = X + r * n;
  const T* y = Y + r * n;
  T u;
  if constexpr (requires { m.dist_argument_from(T(0), T(0), T(0)); }) {  // ball: |x|^2, |y|^2, |x - y|
    const T x2 = g.template sum<T>(n, [&](index_t j) { return x[j] * x[j]; });
    const T y2 = g.template sum<T>(n, [&](index_t j) { return y[j] * y[j]; });
    const T d2 = g.template sum<T>(n, [&](index_t j) { return (x[j] - y[j]) * (x[j] - y[j]); });
    const bool rescale = !vec::plain_sum_ok(d2);  // e.g. coincident points: |x - y|^2 = 0
    T diff_norm = std::sqrt(d2);
    if (g.warp_any(g.valid && rescale)) {
      const T rescaled = group_rescaled_norm(g, n, [&](index_t j) { return x[j] - y[j]; }, T(1));
      if (rescale) diff_norm = rescaled;
    }
    if (!g.valid) return;
    u = m.dist_argument_from(x2, y2, diff_norm);
  } else {  // Lorentz: both space sums first (the groups of a warp may choose different forms)
    const index_t ns = n - 1;
    const T dot = g.template sum<T>(ns, [&](index_t j) { return x[j + 1] * y[j + 1]; });
    const T chord = g.template sum<T>(ns, [&](index_t j) { return (x[j + 1] - y[j + 1]) * (x[j + 1] - y[j + 1]); });
    // the chord form's rescaled sum (coincident points: 0) by the group, where minkowski_diff_norm_from takes it
    T chord_rescaled = T(0);
    const bool rescale_chord = !m.needs_product_form(x[0], y[0]) && !vec::signed_sum_ok(m.chord_form(x[0], y[0], chord));
    if (g.warp_any(g.valid && rescale_chord))
      chord_rescaled = group_rescaled_norm(g, n, [&](index_t j) { return x[j] - y[j]; }, T(-1));
    if (!g.valid) return;
    const T dn = m.minkowski_diff_norm_from(x[0], y[0], [&] { return dot; }, [&] { return chord; }, [&](bool product) {
      return product ? m.minkowski_diff_norm_rescaled(x, y, n, true) : chord_rescaled;
    });
    u = m.dist_argument_from_diff_norm(dn);
  }
  if (g.lane == 0) out[r] = m.dist_from_argument(u);
}

// ---- long rows: one block per row, the row held in registers (read once) --------------------------
template <int PerThread, class M, class T>
__global__ void expmap0_block_rows(M m, const T* V, T* X, index_t n) {
  const gpu_rows::BlockRow<PerThread> b;
  const index_t r = b.row;
  T v[PerThread];
  if constexpr (requires { m.expmap0_scale(T(0)); }) {
    const T* vr = V + r * n;
    b.load(n, v, [&](index_t j) { return vr[j]; });
    T s = T(0);
#pragma unroll
    for (int k = 0; k < PerThread; ++k) s += v[k] * v[k];
    s = b.sum(s);
    const T f = m.expmap0_scale(vec::norm_from_sq(vr, s, n));
    b.for_each(n, [&](int k, index_t j) { X[r * n + j] = f * v[k]; });
  } else {
    const T* vr = V + r * n + 1;
    const index_t ns = n - 1;
    b.load(ns, v, [&](index_t j) { return vr[j]; });
    T s = T(0);
#pragma unroll
    for (int k = 0; k < PerThread; ++k) s += v[k] * v[k];
    s = b.sum(s);
    const auto st = m.expmap0_scale_time(vec::norm_from_sq(vr, s, ns));
    b.for_each(ns, [&](int k, index_t j) { X[r * n + 1 + j] = st.scale * v[k]; });
    if (threadIdx.x == 0) X[r * n] = st.time;
  }
}

template <int PerThread, class M, class T>
__global__ void logmap0_block_rows(M m, const T* X, T* V, index_t n) {
  const gpu_rows::BlockRow<PerThread> b;
  const index_t r = b.row;
  T x[PerThread];
  const bool radial = requires { m.logmap0_scale(T(0), T(0)); };
  const index_t off = radial ? 0 : 1, ns = n - off;
  const T* xr = X + r * n + off;
  b.load(ns, x, [&](index_t j) { return xr[j]; });
  T s = T(0);
#pragma unroll
  for (int k = 0; k < PerThread; ++k) s += x[k] * x[k];
  s = b.sum(s);
  T f;
  if constexpr (requires { m.logmap0_scale(T(0), T(0)); }) f = m.logmap0_scale(vec::norm_from_sq(xr, s, ns), s);
  else f = m.logmap0_space_scale(vec::norm_from_sq(xr, s, ns));
  b.for_each(ns, [&](int k, index_t j) { V[r * n + off + j] = f * x[k]; });
  if (!radial && threadIdx.x == 0) V[r * n] = T(0);
}

template <int PerThread, class M, class T>
__global__ void dist_block_rows(M m, const T* X, const T* Y, T* out, index_t n) {
  const gpu_rows::BlockRow<PerThread> b;
  const index_t r = b.row;
  const T* x = X + r * n;
  const T* y = Y + r * n;
  T xv[PerThread], yv[PerThread];
  T u;
  if constexpr (requires { m.dist_argument_from(T(0), T(0), T(0)); }) {  // ball: |x|^2, |y|^2, |x - y|
    b.load(n, xv, [&](index_t j) { return x[j]; });
    b.load(n, yv, [&](index_t j) { return y[j]; });
    T x2 = T(0), y2 = T(0), d2 = T(0);
#pragma unroll
    for (int k = 0; k < PerThread; ++k) {
      x2 += xv[k] * xv[k];
      y2 += yv[k] * yv[k];
      d2 += (xv[k] - yv[k]) * (xv[k] - yv[k]);
    }
    x2 = b.sum(x2), y2 = b.sum(y2), d2 = b.sum(d2);
    // (d2 is the same in every thread: the branch is the block's)
    u = m.dist_argument_from(x2, y2, vec::plain_sum_ok(d2) ? std::sqrt(d2) : block_rescaled_diff_norm(b, xv, yv, T(0), T(1)));
  } else {  // Lorentz: the space parts' dot product and chord
    const index_t ns = n - 1;
    b.load(ns, xv, [&](index_t j) { return x[j + 1]; });
    b.load(ns, yv, [&](index_t j) { return y[j + 1]; });
    T dot = T(0), chord = T(0);
#pragma unroll
    for (int k = 0; k < PerThread; ++k) {
      dot += xv[k] * yv[k];
      chord += (xv[k] - yv[k]) * (xv[k] - yv[k]);
    }
    dot = b.sum(dot), chord = b.sum(chord);
    const T x0 = x[0], y0 = y[0];
    const bool rescale_chord = !m.needs_product_form(x0, y0) && !vec::signed_sum_ok(m.chord_form(x0, y0, chord));
    const T chord_rescaled = rescale_chord ? block_rescaled_diff_norm(b, xv, yv, x0 - y0, T(-1)) : T(0);
    const T dn = m.minkowski_diff_norm_from(x0, y0, [&] { return dot; }, [&] { return chord; }, [&](bool product) {
      return product ? m.minkowski_diff_norm_rescaled(x, y, n, true) : chord_rescaled;
    });
    u = m.dist_argument_from_diff_norm(dn);
  }
  if (threadIdx.x == 0) out[r] = m.dist_from_argument(u);
}

/// The values a row holds beside its time coordinate: n for the ball, n - 1 for Lorentz.
template <class M, class T>
index_t held_values(const M& m, index_t n) {
  if constexpr (requires { m.expmap0_scale(T(0)); }) return n;
  else return n - 1;
}
template <class M, class T>
void expmap0_block(const M& m, const T* V, T* X, index_t rows, index_t n, cudaStream_t stream, int per_thread) {
  HYPLORA_GPU_BLOCK_ROWS_LAUNCH(expmap0_block_rows, per_thread, rows, stream, m, V, X, n)
  gpu_rows::check_launch("hyplora::batched::gpu::", "expmap0");
}
template <class M, class T>
void logmap0_block(const M& m, const T* X, T* V, index_t rows, index_t n, cudaStream_t stream, int per_thread) {
  HYPLORA_GPU_BLOCK_ROWS_LAUNCH(logmap0_block_rows, per_thread, rows, stream, m, X, V, n)
  gpu_rows::check_launch("hyplora::batched::gpu::", "logmap0");
}
template <class M, class T>
void dist_block(const M& m, const T* X, const T* Y, T* out, index_t rows, index_t n, cudaStream_t stream, int per_thread) {
  HYPLORA_GPU_BLOCK_ROWS_LAUNCH(dist_block_rows, per_thread, rows, stream, m, X, Y, out, n)
  gpu_rows::check_launch("hyplora::batched::gpu::", "dist");
}

// With `lanes` rows per group (8, 16 or 32); the public functions below choose it from n.
template <class M, class T>
void expmap0(const M& m, const T* V, T* X, index_t rows, index_t n, cudaStream_t stream, int lanes) {
  HYPLORA_GPU_ROWS_LAUNCH(expmap0_rows, lanes, rows, stream, m, V, X, rows, n)
  gpu_rows::check_launch("hyplora::batched::gpu::", "expmap0");
}
template <class M, class T>
void logmap0(const M& m, const T* X, T* V, index_t rows, index_t n, cudaStream_t stream, int lanes) {
  HYPLORA_GPU_ROWS_LAUNCH(logmap0_rows, lanes, rows, stream, m, X, V, rows, n)
  gpu_rows::check_launch("hyplora::batched::gpu::", "logmap0");
}
template <class M, class T>
void dist(const M& m, const T* X, const T* Y, T* out, index_t rows, index_t n, cudaStream_t stream, int lanes) {
  HYPLORA_GPU_ROWS_LAUNCH(dist_rows, lanes, rows, stream, m, X, Y, out, rows, n)
  gpu_rows::check_launch("hyplora::batched::gpu::", "dist");
}

}  // namespace detail

/// X[r] = expmap0(V[r]) for rows x n values in GPU memory (Lorentz: n = d + 1). Rows of 513 to
/// 4096 values (beside the time coordinate): one block per row; shorter or longer: warp groups.
template <class M, class T>
void expmap0(const M& m, const T* V, T* X, index_t rows, index_t n, cudaStream_t stream = nullptr) {
  if (rows <= 0) return;
  if (const int pt = gpu_rows::per_thread_for(detail::held_values<M, T>(m, n))) detail::expmap0_block(m, V, X, rows, n, stream, pt);
  else detail::expmap0(m, V, X, rows, n, stream, gpu_rows::lanes_for(n));
}
/// V[r] = logmap0(X[r]).
template <class M, class T>
void logmap0(const M& m, const T* X, T* V, index_t rows, index_t n, cudaStream_t stream = nullptr) {
  if (rows <= 0) return;
  if (const int pt = gpu_rows::per_thread_for(detail::held_values<M, T>(m, n))) detail::logmap0_block(m, X, V, rows, n, stream, pt);
  else detail::logmap0(m, X, V, rows, n, stream, gpu_rows::lanes_for(n));
}
/// out[r] = dist(X[r], Y[r]) (two or three sums per row: fewer lanes per row than the maps).
template <class M, class T>
void dist(const M& m, const T* X, const T* Y, T* out, index_t rows, index_t n, cudaStream_t stream = nullptr) {
  if (rows <= 0) return;
  if (const int pt = gpu_rows::per_thread_for(detail::held_values<M, T>(m, n))) detail::dist_block(m, X, Y, out, rows, n, stream, pt);
  else detail::dist(m, X, Y, out, rows, n, stream, gpu_rows::lanes_for_multi_sum(n));
}

}  // namespace hyplora::batched::gpu
