#pragma once
// Rows of a row-major matrix in GPU memory (nvcc only): one group of 8, 16 or 32 lanes of a warp
// per row (RowGroup), or for long rows one block per row with the row in registers (BlockRow).
// The lanes of a group read consecutive values (coalesced loads) and sum them with warp
// shuffles; short rows share a warp. Used by hyplora::batched::gpu (the geometry) and by
// backend::Thrust's passes over n x d rows (the adapters).
#if !defined(__CUDACC__)
#error "hyplora/core/gpu_rows.hpp is compiled by nvcc only"
#endif

#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "hyplora/core/config.hpp"

namespace hyplora::gpu_rows {

constexpr int threads_per_block = 256;

/// The combinations of the row reductions: sums, and maxima of values >= 0 (a NaN never wins).
struct Plus {
  template <class T>
  HYPLORA_HOST_DEVICE T operator()(T a, T b) const { return a + b; }
};
struct Larger {
  template <class T>
  HYPLORA_HOST_DEVICE T operator()(T a, T b) const { return b > a ? b : a; }
};

/// One row per group of Lanes lanes (32 / Lanes rows per warp). Every lane of a warp takes part in
/// the shuffles, also past the last row (`valid` false): a kernel must not return before its sums.
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
  /// The row, or row 0 past the last row (so that pointers stay in bounds; nothing is written).
  __device__ index_t row_or_first() const { return valid ? row : 0; }
  /// op over j < n of term(j) (from 0), split over the group; every lane of the group gets the result.
  template <class T, class Term, class Op>
  __device__ T fold(index_t n, const Term& term, Op op) const {
    T s = T(0);
    if (valid) {
#pragma unroll 4
      for (index_t j = lane; j < n; j += Lanes) s = op(s, term(j));  // unrolled: several loads in flight per lane
    }
    return reduce_with(s, op);
  }
  /// Sum over j < n of term(j), split over the group; every lane of the group gets the sum.
  template <class T, class Term>
  __device__ T sum(index_t n, const Term& term) const {
    return fold<T>(n, term, Plus{});
  }
  /// The largest term(j) over j < n (terms >= 0: 0 for none; a NaN term never wins), as sum.
  template <class T, class Term>
  __device__ T max_of(index_t n, const Term& term) const {
    return fold<T>(n, term, Larger{});
  }
  static constexpr index_t width = Lanes;
  /// op of s over the group's lanes, to every lane (every lane of the warp must call it).
  template <class T, class Op>
  HYPLORA_HOST_DEVICE T reduce_with(T s, Op op) const {
#if defined(__CUDA_ARCH__)
    for (int offset = Lanes / 2; offset > 0; offset /= 2) s = op(s, __shfl_xor_sync(0xffffffffu, s, offset));
#endif
    return s;
  }
  /// The sum of s over the group's lanes, to every lane (every lane of the warp must call it).
  template <class T>
  HYPLORA_HOST_DEVICE T reduce(T s) const {
    return reduce_with(s, Plus{});
  }
  /// Whether p holds for any lane of the warp (every lane of the warp must call it): a branch
  /// that holds shuffles is taken by the whole warp where any of its groups needs it.
  __device__ static bool warp_any(bool p) { return __any_sync(0xffffffffu, p); }
  /// f(j) for j < n, split over the group (valid rows only).
  template <class F>
  __device__ void for_each(index_t n, const F& f) const {
    if (!valid) return;
#pragma unroll 4
    for (index_t j = lane; j < n; j += Lanes) f(j);
  }
};

/// Long rows: one block of threads_per_block threads per row, each thread holding up to PerThread
/// of the row's values in registers, so that a map reads its row once (a group above reads it
/// twice: for the sum, then to scale it) and a 4096-value row keeps 8 warps busy, not one.
/// Rows of up to `capacity` values.
template <int PerThread>
struct BlockRow {
  static_assert(PerThread == 4 || PerThread == 8 || PerThread == 16, "values per thread: 4, 8 or 16");
  static constexpr index_t capacity = index_t(threads_per_block) * PerThread;
  index_t row;
  __device__ BlockRow() : row(index_t(blockIdx.x)) {}
  /// v[k] = at(j) for the j = threadIdx.x + k threads_per_block below n (0 beyond).
  template <class T, class At>
  __device__ void load(index_t n, T (&v)[PerThread], const At& at) const {
#pragma unroll
    for (int k = 0; k < PerThread; ++k) {
      const index_t j = index_t(threadIdx.x) + index_t(k) * threads_per_block;
      v[k] = j < n ? at(j) : T(0);
    }
  }
  /// f(k, j) for this thread's values (k: register index, j: column), j < n.
  template <class F>
  __device__ void for_each(index_t n, const F& f) const {
#pragma unroll
    for (int k = 0; k < PerThread; ++k) {
      const index_t j = index_t(threadIdx.x) + index_t(k) * threads_per_block;
      if (j < n) f(k, j);
    }
  }
  /// The sum of s over the block's threads, returned to every thread (all threads must call it).
  template <class T>
  __device__ T sum(T s) const;
  /// The largest s over the block's threads (s >= 0; a NaN never wins), to every thread.
  template <class T>
  __device__ T max(T s) const;
};

/// op of s over a block of threads_per_block threads (from 0), returned to every thread (all
/// threads of the block must call it).
template <class T, class Op>
__device__ T block_reduce(T s, Op op) {
  __shared__ T part[threads_per_block / 32];
  for (int offset = 16; offset > 0; offset /= 2) s = op(s, __shfl_xor_sync(0xffffffffu, s, offset));
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = s;
  __syncthreads();
  T t = T(0);
#pragma unroll
  for (int w = 0; w < threads_per_block / 32; ++w) t = op(t, part[w]);
  __syncthreads();  // part is written again by the next reduction
  return t;
}
/// The sum of s over a block's threads, to every thread.
template <class T>
__device__ T block_sum(T s) {
  return block_reduce(s, Plus{});
}
/// The largest s over a block's threads (s >= 0; a NaN never wins), to every thread.
template <class T>
__device__ T block_max(T s) {
  return block_reduce(s, Larger{});
}
template <int PerThread>
template <class T>
__device__ T BlockRow<PerThread>::sum(T s) const {
  return block_sum(s);
}
template <int PerThread>
template <class T>
__device__ T BlockRow<PerThread>::max(T s) const {
  return block_max(s);
}

/// Row `blockIdx.x` of a row-major matrix with rows of d values, threads_per_block threads
/// striding over it (rows too long to hold in registers, or passes that read a row once anyway).
struct BlockStride {
  index_t row = index_t(blockIdx.x);
  /// f(j) for j < d, this thread's share.
  template <class F>
  __device__ void for_each(index_t d, const F& f) const {
#pragma unroll 4
    for (index_t j = index_t(threadIdx.x); j < d; j += threads_per_block) f(j);
  }
  /// Sum over j < d of term(j), returned to every thread.
  template <class T, class Term>
  __device__ T sum(index_t d, const Term& term) const {
    T s = T(0);
#pragma unroll 4
    for (index_t j = index_t(threadIdx.x); j < d; j += threads_per_block) s += term(j);
    return block_sum(s);
  }
};
/// Rows longer than this take a block each in the backend's row passes (BlockStride); shorter
/// rows a group of lanes (RowGroup). At 512 rows of 4096 a warp per row left most of an H200 idle:
/// the bias rows (set_rows) ran at 180 GB/s.
constexpr index_t block_row_min = 513;
/// Values per thread of the block form for rows holding n values: 0 (use the groups) for rows up
/// to 512 values (many rows, and the second read of a short row hits the cache) and beyond 4096.
inline int per_thread_for(index_t n) { return n <= 512 ? 0 : (n <= 1024 ? 4 : (n <= 2048 ? 8 : (n <= 4096 ? 16 : 0))); }

/// Lanes per row for rows of n values, at least 8 and at most 32: about four values per lane for
/// one sum (a map), about eight where a row takes two or three sums (dist: fewer shuffles per
/// row). Measured on an H200 at 1M rows of 64 (docs/geometry.md): Lorentz expmap0 58% / 81% / 43% of
/// the copy bound with 8 / 16 / 32 lanes, Poincare dist 75% / 62% / 27%.
inline int lanes_for(index_t n) { return n > 96 ? 32 : (n > 24 ? 16 : 8); }
inline int lanes_for_multi_sum(index_t n) { return n > 256 ? 32 : (n > 128 ? 16 : 8); }
inline unsigned blocks_for(index_t rows, int lanes) {
  const index_t rows_per_block = threads_per_block / lanes;
  return unsigned((rows + rows_per_block - 1) / rows_per_block);
}
/// Streaming multiprocessors of the current device, read once per device (0 where it cannot be read).
inline index_t sm_count() {
  constexpr int max_devices = 64;
  static std::atomic<int> cached[max_devices] = {};  // 0: not read yet
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= max_devices) return 0;
  int v = cached[dev].load(std::memory_order_relaxed);
  if (v == 0 && cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess)
    cached[dev].store(v, std::memory_order_relaxed);
  return index_t(v);
}
/// Lanes per row of a row program (backend::Thrust::run_row_program) over `rows` rows of n values:
/// lanes_for(n), doubled up to 32 while the blocks would not cover the device's SMs. A program's
/// rows are latency-bound, so spreading them over more SMs shortens the kernel: at 512 rows of 64
/// (16 lanes: 32 blocks for an H200's 132 SMs) 32 lanes made the LoRA step 6 % and the HypLoRA
/// steps 4 % faster as CUDA graphs; at 4096 rows (256 blocks) the lanes stay as they are.
inline int lanes_for_rows(index_t rows, index_t n) {
  int lanes = lanes_for(n);
  const index_t sms = sm_count();
  while (lanes < 32 && index_t(blocks_for(rows, lanes)) < sms) lanes *= 2;
  return lanes;
}
inline void check_launch(const char* who, const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(who) + what + ": " + cudaGetErrorString(e));
}

}  // namespace hyplora::gpu_rows

/// Launches kernel<PerThread><<<rows, threads_per_block, 0, stream>>>(args...), one block per row.
#define HYPLORA_GPU_BLOCK_ROWS_LAUNCH(kernel, per_thread, rows, stream, ...)                                         \
  switch (per_thread) {                                                                                             \
    case 4: kernel<4><<<unsigned(rows), ::hyplora::gpu_rows::threads_per_block, 0, stream>>>(__VA_ARGS__); break;   \
    case 8: kernel<8><<<unsigned(rows), ::hyplora::gpu_rows::threads_per_block, 0, stream>>>(__VA_ARGS__); break;   \
    case 16: kernel<16><<<unsigned(rows), ::hyplora::gpu_rows::threads_per_block, 0, stream>>>(__VA_ARGS__); break; \
    default: throw std::invalid_argument("hyplora: values per thread must be 4, 8 or 16");                         \
  }

/// Launches kernel<Lanes><<<...>>>(args...) for lanes = 8, 16 or 32 rows-groups over `rows` rows.
#define HYPLORA_GPU_ROWS_LAUNCH(kernel, lanes, rows, stream, ...)                                                   \
  switch (lanes) {                                                                                                  \
    case 8: kernel<8><<<::hyplora::gpu_rows::blocks_for(rows, 8), ::hyplora::gpu_rows::threads_per_block, 0, stream>>>(__VA_ARGS__); break;   \
    case 16: kernel<16><<<::hyplora::gpu_rows::blocks_for(rows, 16), ::hyplora::gpu_rows::threads_per_block, 0, stream>>>(__VA_ARGS__); break; \
    case 32: kernel<32><<<::hyplora::gpu_rows::blocks_for(rows, 32), ::hyplora::gpu_rows::threads_per_block, 0, stream>>>(__VA_ARGS__); break; \
    default: throw std::invalid_argument("hyplora: lanes per row must be 8, 16 or 32");                             \
  }
