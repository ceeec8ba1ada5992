#pragma once
// Batched maps over the rows of a matrix in GPU memory (nvcc only): a group of 8, 16 or 32 lanes
// of a warp per row (32 for long rows; short rows share a warp). The lanes of a group read
// consecutive coordinates (coalesced), sum them with warp shuffles, and every lane then takes the
// row's factor from the same manifold methods the CPU tiles use (expmap0_scale, logmap0_scale,
// expmap0_scale_time, logmap0_space_scale, the dist arguments): no second copy of the math. (One thread per row, as a plain kernel over the single-point maps gives, reads 32 rows 4 d
// bytes apart per load and reached 2-7% of the copy bound on an H200: docs/geometry.md.)
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
#include "hyplora/manifold/vector_ops.hpp"

namespace hyplora::batched::gpu {
namespace detail {

constexpr int threads_per_block = 256;

/// One row per group of Lanes lanes (Lanes = 8, 16 or 32; 32 / Lanes rows per warp). Every lane of
/// a warp takes part in the shuffles, also past the last row (`valid` false): none returns early.
template <int Lanes>
struct RowGroup {
  static_assert(Lanes == 8 || Lanes == 16 || Lanes == 32, "lanes per row: 8, 16 or 32");
  index_t row;
  index_t lane;
  bool valid;
  __device__ explicit RowGroup(index_t rows) {
    const index_t t = index_t(blockIdx.x) * threads_per_block + index_t(threadIdx.x);
    row = t / Lanes;
    lane = t % Lanes;
    valid = row < rows;
  }
  /// Sum over j < n of term(j), split over the group; every lane of the group gets the sum.
  template <class T, class Term>
  __device__ T sum(index_t n, const Term& term) const {
    T s = T(0);
    if (valid) {
#pragma unroll 4
      for (index_t j = lane; j < n; j += Lanes) s += term(j);  // unrolled: several loads in flight per lane
    }
    for (int offset = Lanes / 2; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
    return s;
  }
  template <class T>
  __device__ void scale(const T* a, T f, T* out, index_t n) const {
#pragma unroll 4
    for (index_t j = lane; j < n; j += Lanes) out[j] = f * a[j];
  }
};

template <int Lanes, class M, class T>
__global__ void expmap0_rows(M m, const T* V, T* X, index_t rows, index_t n) {
  const RowGroup<Lanes> g(rows);
  const index_t r = g.valid ? g.row : 0;
  if constexpr (requires { m.expmap0_scale(T(0)); }) {  // radial: X = f(|V|) V
    const T* v = V + r * n;
    const T s = g.template sum<T>(n, [&](index_t j) { return v[j] * v[j]; });
    if (!g.valid) return;
    g.scale(v, m.expmap0_scale(vec::norm_from_sq(v, s, n)), X + r * n, n);
  } else {  // Lorentz: space part scaled, time coordinate set
    const T* v = V + r * n + 1;
    const index_t ns = n - 1;
    const T s = g.template sum<T>(ns, [&](index_t j) { return v[j] * v[j]; });
    if (!g.valid) return;
    const auto st = m.expmap0_scale_time(vec::norm_from_sq(v, s, ns));
    g.scale(v, st.scale, X + r * n + 1, ns);
    if (g.lane == 0) X[r * n] = st.time;
  }
}

template <int Lanes, class M, class T>
__global__ void logmap0_rows(M m, const T* X, T* V, index_t rows, index_t n) {
  const RowGroup<Lanes> g(rows);
  const index_t r = g.valid ? g.row : 0;
  if constexpr (requires { m.logmap0_scale(T(0), T(0)); }) {  // radial: V = f(|X|) X
    const T* x = X + r * n;
    const T s = g.template sum<T>(n, [&](index_t j) { return x[j] * x[j]; });
    if (!g.valid) return;
    g.scale(x, m.logmap0_scale(vec::norm_from_sq(x, s, n), s), V + r * n, n);
  } else {  // Lorentz: v_0 = 0, space part scaled
    const T* x = X + r * n + 1;
    const index_t ns = n - 1;
    const T s = g.template sum<T>(ns, [&](index_t j) { return x[j] * x[j]; });
    if (!g.valid) return;
    g.scale(x, m.logmap0_space_scale(vec::norm_from_sq(x, s, ns)), V + r * n + 1, ns);
    if (g.lane == 0) V[r * n] = T(0);
  }
}

template <int Lanes, class M, class T>
__global__ void dist_rows(M m, const T* X, const T* Y, T* out, index_t rows, index_t n) {
  const RowGroup<Lanes> g(rows);
  const index_t r = g.valid ? g.row : 0;
  const T* x = X + r * n;
  const T* y = Y + r * n;
  T u;
  if constexpr (requires { m.dist_argument_from(T(0), T(0), T(0)); }) {  // ball: |x|^2, |y|^2, |x - y|
    const T x2 = g.template sum<T>(n, [&](index_t j) { return x[j] * x[j]; });
    const T y2 = g.template sum<T>(n, [&](index_t j) { return y[j] * y[j]; });
    const T d2 = g.template sum<T>(n, [&](index_t j) { return (x[j] - y[j]) * (x[j] - y[j]); });
    if (!g.valid) return;
    u = m.dist_argument_from(x2, y2, math::is_finite(d2) ? std::sqrt(d2) : vec::dist(x, y, n));
  } else {  // Lorentz: both space sums first (the groups of a warp may choose different forms)
    const index_t ns = n - 1;
    const T dot = g.template sum<T>(ns, [&](index_t j) { return x[j + 1] * y[j + 1]; });
    const T chord = g.template sum<T>(ns, [&](index_t j) { return (x[j + 1] - y[j + 1]) * (x[j + 1] - y[j + 1]); });
    if (!g.valid) return;
    const T dn = m.minkowski_diff_norm_from(
        x[0], y[0], [&] { return dot; }, [&] { return chord; }, [&] { return M::minkowski_diff_norm_rescaled(x, y, n); });
    u = m.dist_argument_from_diff_norm(dn);
  }
  if (g.lane == 0) out[r] = m.dist_from_argument(u);
}

/// Lanes per row for rows of n values, at least 8 and at most 32. The maps (one sum): about four
/// values per lane; dist (two or three sums, two rows): about eight, fewer shuffles per row. Measured
/// on an H200 at 1M rows of 64 (docs/geometry.md): Lorentz expmap0 54% / 79% / 43% of the copy bound
/// with 8 / 16 / 32 lanes, Poincare dist 80% / 57% / 27%.
inline int lanes_for(index_t n) { return n > 96 ? 32 : (n > 24 ? 16 : 8); }
inline int lanes_for_dist(index_t n) { return n > 256 ? 32 : (n > 128 ? 16 : 8); }
inline unsigned blocks_for(index_t rows, int lanes) {
  const index_t rows_per_block = threads_per_block / lanes;
  return unsigned((rows + rows_per_block - 1) / rows_per_block);
}
inline void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string("hyplora::batched::gpu::") + what + ": " + cudaGetErrorString(e));
}
/// Launches kernel<Lanes> for the lanes chosen (`lanes` = 0: lanes_for(n)).
#define HYPLORA_BATCHED_GPU_LAUNCH(kernel, lanes, rows, stream, ...)                                              \
  switch (lanes) {                                                                                                 \
    case 8: kernel<8><<<blocks_for(rows, 8), threads_per_block, 0, stream>>>(__VA_ARGS__); break;                  \
    case 16: kernel<16><<<blocks_for(rows, 16), threads_per_block, 0, stream>>>(__VA_ARGS__); break;               \
    case 32: kernel<32><<<blocks_for(rows, 32), threads_per_block, 0, stream>>>(__VA_ARGS__); break;               \
    default: throw std::invalid_argument("hyplora::batched::gpu: lanes per row must be 8, 16 or 32");             \
  }

template <class M, class T>
void expmap0(const M& m, const T* V, T* X, index_t rows, index_t n, cudaStream_t stream, int lanes) {
  HYPLORA_BATCHED_GPU_LAUNCH(expmap0_rows, lanes, rows, stream, m, V, X, rows, n)
  check_launch("expmap0");
}
template <class M, class T>
void logmap0(const M& m, const T* X, T* V, index_t rows, index_t n, cudaStream_t stream, int lanes) {
  HYPLORA_BATCHED_GPU_LAUNCH(logmap0_rows, lanes, rows, stream, m, X, V, rows, n)
  check_launch("logmap0");
}
template <class M, class T>
void dist(const M& m, const T* X, const T* Y, T* out, index_t rows, index_t n, cudaStream_t stream, int lanes) {
  HYPLORA_BATCHED_GPU_LAUNCH(dist_rows, lanes, rows, stream, m, X, Y, out, rows, n)
  check_launch("dist");
}
#undef HYPLORA_BATCHED_GPU_LAUNCH

}  // namespace detail

/// X[r] = expmap0(V[r]) for rows x n values in GPU memory (Lorentz: n = d + 1).
template <class M, class T>
void expmap0(const M& m, const T* V, T* X, index_t rows, index_t n, cudaStream_t stream = nullptr) {
  if (rows > 0) detail::expmap0(m, V, X, rows, n, stream, detail::lanes_for(n));
}
/// V[r] = logmap0(X[r]).
template <class M, class T>
void logmap0(const M& m, const T* X, T* V, index_t rows, index_t n, cudaStream_t stream = nullptr) {
  if (rows > 0) detail::logmap0(m, X, V, rows, n, stream, detail::lanes_for(n));
}
/// out[r] = dist(X[r], Y[r]).
template <class M, class T>
void dist(const M& m, const T* X, const T* Y, T* out, index_t rows, index_t n, cudaStream_t stream = nullptr) {
  if (rows > 0) detail::dist(m, X, Y, out, rows, n, stream, detail::lanes_for_dist(n));
}

}  // namespace hyplora::batched::gpu
