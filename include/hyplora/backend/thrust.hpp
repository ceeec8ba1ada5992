#pragma once
// Thrust backend: thrust::device_vector storage, rows by thrust::for_each on the host system and by
// kernels of its own under CUDA, GEMM by cuBLAS when Thrust's device system is CUDA (compiled by
// nvcc) and by OpenBLAS on the host otherwise (the OpenMP device system, compiled by g++: CMake
// target ThrustOMP). Same interface as backend::Cpu.
#include <thrust/device_ptr.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/copy.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "hyplora/core/config.hpp"
#include "hyplora/manifold/vector_ops.hpp"

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "hyplora/core/gpu_rows.hpp"
#define HYPLORA_THRUST_CUDA 1
#else
#include "hyplora/backend/blas.hpp"
#define HYPLORA_THRUST_CUDA 0
#endif

namespace hyplora::backend {

#if HYPLORA_THRUST_CUDA
namespace detail {
inline cublasHandle_t cublas_handle() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    const cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS)
      throw std::runtime_error("hyplora::backend::Thrust: cublasCreate failed (status " + std::to_string(int(st)) + ")");
    return h;
  }();
  return handle;
}
/// The CUDA stream every call of the backend is issued on (Thrust::set_stream); 0 = the legacy
/// default stream.
inline cudaStream_t& current_stream() {
  static cudaStream_t stream = nullptr;
  return stream;
}
inline void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("hyplora::backend::Thrust: ") + what + ": " + cudaGetErrorString(e));
}
inline void cublas_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("hyplora::backend::Thrust: ") + what + " failed (status " +
                             std::to_string(int(st)) + ")");
}

// The passes over n x d rows of the rank-space adapters, a group of lanes of a warp per row, or a
// block per row for d >= gpu_rows::block_row_min (core/gpu_rows.hpp): coalesced reads, and a few
// hundred rows keep the whole GPU busy. (One thread
// per row, as for_rows gives, reads 32 rows at a stride of d and left most of the GPU idle at 512
// tokens: 2.7x LoRA's time at d = 4096 on an H200.)
template <int Lanes, class T>
__global__ void set_rows_kernel(T* Y, const T* v, index_t n, index_t d) {
  const gpu_rows::RowGroup<Lanes> g(n);
  T* y = Y + g.row_or_first() * d;
  g.for_each(d, [&](index_t j) { y[j] = v ? v[j] : T(0); });
}
template <int Lanes, class T>
__global__ void row_dots_kernel(const T* A, const T* B, index_t n, index_t d, T* out) {
  const gpu_rows::RowGroup<Lanes> g(n);
  const index_t r = g.row_or_first();
  const T* a = A + r * d;
  const T* b = B + r * d;
  const T s = g.template sum<T>(d, [&](index_t j) { return a[j] * b[j]; });
  if (g.valid && g.lane == 0) out[r] = s;
}
template <int Lanes, class T>
__global__ void add_scaled_rows_kernel(const T* X, const T* e, T* Y, index_t n, index_t d) {
  const gpu_rows::RowGroup<Lanes> g(n);
  const index_t r = g.row_or_first();
  const T c = e[r];
  if (c == T(0)) return;  // no shuffles here: a group may leave on its own
  const T* x = X + r * d;
  T* y = Y + r * d;
  g.for_each(d, [&](index_t j) { y[j] += c * x[j]; });
}
// Long rows (d >= gpu_rows::block_row_min): one block per row.
template <class T>
__global__ void set_rows_block_kernel(T* Y, const T* v, index_t d) {
  const gpu_rows::BlockStride b;
  T* y = Y + b.row * d;
  b.for_each(d, [&](index_t j) { y[j] = v ? v[j] : T(0); });
}
template <class T>
__global__ void row_dots_block_kernel(const T* A, const T* B, index_t d, T* out) {
  const gpu_rows::BlockStride b;
  const T* a = A + b.row * d;
  const T* bb = B + b.row * d;
  const T s = b.template sum<T>(d, [&](index_t j) { return a[j] * bb[j]; });
  if (threadIdx.x == 0) out[b.row] = s;
}
template <class T>
__global__ void add_scaled_rows_block_kernel(const T* X, const T* e, T* Y, index_t d) {
  const gpu_rows::BlockStride b;
  const T c = e[b.row];
  if (c == T(0)) return;  // the same for the whole block
  const T* x = X + b.row * d;
  T* y = Y + b.row * d;
  b.for_each(d, [&](index_t j) { y[j] += c * x[j]; });
}
/// Row-major C (M x N) = alpha op(A) op(B) + beta C for tiny products, one group of lanes per
/// element of C (a sum over K split over the lanes). cuBLAS runs such shapes (the r x r Gram
/// matrices and r-wide products of the rank-space adapters at small d) as a tile kernel, often
/// followed by a split-K reduction: two kernels of 4-25 us each on an H200 (d = 64, 512 tokens;
/// dY^T W took 23.7 us). beta = 0 does not read C.
template <int Lanes, class T>
__global__ void small_gemm_kernel(bool ta, bool tb, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
                                  const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  const gpu_rows::RowGroup<Lanes> g(M * N);
  const index_t e = g.row_or_first(), i = e / N, j = e % N;
  const T s = g.template sum<T>(K, [&](index_t k) {
    const T a = ta ? A[k * lda + i] : A[i * lda + k];
    const T b = tb ? B[j * ldb + k] : B[k * ldb + j];
    return a * b;
  });
  if (g.valid && g.lane == 0) C[i * ldc + j] = alpha * s + (beta == T(0) ? T(0) : beta * C[i * ldc + j]);
}
/// Whether gemm takes small_gemm_kernel: at most 4096 elements of C and 2^21 multiply-adds.
inline bool small_gemm(index_t M, index_t N, index_t K) { return M * N <= 4096 && M * N * K <= (index_t(1) << 21); }

/// A row pass and a row functor in one kernel, for short rows (one lane group per row; the functor
/// runs on the group's first lane, the others wait, as they do in a kernel of its own):
/// out[i] = |X_i|^2, then f(i) (the adapters' forward rows read out[i]) ...
template <int Lanes, class T, class F>
__global__ void row_dots_then_rows_kernel(const T* X, index_t n, index_t d, T* out, F f) {
  const gpu_rows::RowGroup<Lanes> g(n);
  const index_t r = g.row_or_first();
  const T* x = X + r * d;
  const T s = g.template sum<T>(d, [&](index_t j) { return x[j] * x[j]; });
  if (g.valid && g.lane == 0) {
    out[r] = s;
    f(r);
  }
}
/// ... and f(i), then Y_i += e_i X_i (the adapters' VJP rows write e[i]).
template <int Lanes, class T, class F>
__global__ void rows_then_add_scaled_kernel(index_t n, F f, const T* X, const T* e, T* Y, index_t d) {
  const gpu_rows::RowGroup<Lanes> g(n);
  const index_t r = g.row_or_first();
  if (g.valid && g.lane == 0) f(r);
  __syncwarp();  // orders the first lane's write of e[r] before the group's reads (every lane gets here)
  const T c = e[r];
  if (c == T(0)) return;
  const T* x = X + r * d;
  T* y = Y + r * d;
  g.for_each(d, [&](index_t j) { y[j] += c * x[j]; });
}

/// A row program (adapter/row_programs.hpp) over `rows` rows, one group of Lanes lanes per row,
/// threads_per_block / Lanes rows per block.
template <int Lanes, class P>
__global__ void row_program_kernel(P p, index_t rows) {
  p.row(gpu_rows::RowGroup<Lanes>(rows));
}

/// f(i), one row per thread, for row functors with per-row work (the adapters' rank-space rows):
/// blocks of 32 threads up to 16384 rows, so that 512 rows spread over 16 SMs (thrust::for_each
/// put them in one block of 256 threads x 2 rows: one SM; the rank-space forward rows took 19.5 us
/// at d = 64, 512 tokens on an H200).
template <class F>
__global__ void rows_kernel(F f, index_t n) {
  const index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) f(i);
}
inline unsigned row_threads(index_t n) { return n <= 16384 ? 32u : 256u; }

// Kernels that hand nothing back to the host are queued without a synchronisation after each
// (thrust::device blocks until the kernel ends: at 512 tokens and d = 64 that host round trip costs
// more than the kernel). Errors surface at the next synchronising call (sum, read, copy_to_host).
inline auto async_policy() { return thrust::cuda::par_nosync.on(current_stream()); }
}  // namespace detail
#else
namespace detail {
inline auto async_policy() { return thrust::device; }
template <class T>
struct SetRow {
  T* Y; const T* v; index_t d;
  void operator()(index_t i) const {
    for (index_t j = 0; j < d; ++j) Y[i * d + j] = v ? v[j] : T(0);
  }
};
template <class T>
struct RowDot {
  const T* A; const T* B; T* out; index_t d;
  void operator()(index_t i) const { out[i] = vec::dot(A + i * d, B + i * d, d); }
};
template <class T>
struct AddScaledRow {
  const T* X; const T* e; T* Y; index_t d;
  void operator()(index_t i) const {
    const T c = e[i];
    if (c == T(0)) return;
    for (index_t j = 0; j < d; ++j) Y[i * d + j] += c * X[i * d + j];
  }
};
}  // namespace detail
#endif

struct Thrust {
  static constexpr const char* name = HYPLORA_THRUST_CUDA ? "thrust-cuda" : "thrust-host";
  static constexpr bool is_cuda = HYPLORA_THRUST_CUDA;
  /// The adapters' rank-space forward rows in one kernel instead of four (on a GPU each kernel
  /// costs a few microseconds however small; on the host the passes stay apart).
  static constexpr bool fuse_rank_rows = HYPLORA_THRUST_CUDA;
  template <class T>
  using vector = thrust::device_vector<T>;

  template <class T>
  static T* data(vector<T>& v) { return thrust::raw_pointer_cast(v.data()); }
  template <class T>
  static const T* data(const vector<T>& v) { return thrust::raw_pointer_cast(v.data()); }
  template <class T>
  static void resize(vector<T>& v, index_t n) { v.resize(std::size_t(n)); }

#if HYPLORA_THRUST_CUDA
  /// Issue every later call (kernels, cuBLAS, copies, reductions) on `stream` (0: the legacy
  /// default stream, the initial setting). With a stream of its own an adapter step can be
  /// captured into a CUDA graph, as long as the step has no host round trip (a learnable curvature
  /// or norm scale reads them and sums their gradient terms on the host).
  static void set_stream(cudaStream_t stream) { detail::current_stream() = stream; }
  static cudaStream_t stream() { return detail::current_stream(); }
#endif

  template <class F>
  static void for_rows(index_t n, const F& f, index_t /*row_length*/ = 0) {
    if (n <= 0) return;
#if HYPLORA_THRUST_CUDA
    const unsigned threads = detail::row_threads(n);
    detail::rows_kernel<<<unsigned((n + threads - 1) / threads), threads, 0, detail::current_stream()>>>(f, n);
    gpu_rows::check_launch("hyplora::backend::Thrust::", "for_rows");
#else
    thrust::for_each(detail::async_policy(), thrust::counting_iterator<index_t>(0), thrust::counting_iterator<index_t>(n), f);
#endif
  }
#if HYPLORA_THRUST_CUDA
  /// Rows up to this many values take a row pass and a row functor in one kernel
  /// (row_dots_then_rows, rows_then_add_scaled; longer rows: a block per row for the pass).
  static constexpr index_t row_pass_fuse_max = gpu_rows::block_row_min - 1;
  /// Row programs (adapter/row_programs.hpp) for rows of up to this many values: a whole branch
  /// pass in one kernel, a group of gpu_rows::lanes_for_rows(rows, d) lanes per row.
  static constexpr index_t row_program_max = gpu_rows::block_row_min - 1;
  /// Runs program p over `rows` rows of about d values each (d and rows choose the lanes per row).
  template <class P>
  static void run_row_program(index_t rows, index_t d, const P& p) {
    if (rows <= 0) return;
    HYPLORA_GPU_ROWS_LAUNCH(detail::row_program_kernel, gpu_rows::lanes_for_rows(rows, d), rows, detail::current_stream(), p, rows)
    gpu_rows::check_launch("hyplora::backend::Thrust::", "run_row_program");
  }
  /// out[i] = <X_i, X_i>, then f(i), in one kernel (rows of d <= row_pass_fuse_max values).
  template <class T, class F>
  static void row_dots_then_rows(const T* X, index_t n, index_t d, T* out, const F& f) {
    if (n <= 0) return;
    HYPLORA_GPU_ROWS_LAUNCH(detail::row_dots_then_rows_kernel, gpu_rows::lanes_for(d), n, detail::current_stream(), X, n, d, out, f)
    gpu_rows::check_launch("hyplora::backend::Thrust::", "row_dots_then_rows");
  }
  /// f(i) (which writes e[i]), then Y_i += e_i X_i, in one kernel (rows of d <= row_pass_fuse_max values).
  template <class T, class F>
  static void rows_then_add_scaled(index_t n, const F& f, const T* X, const T* e, T* Y, index_t d) {
    if (n <= 0) return;
    HYPLORA_GPU_ROWS_LAUNCH(detail::rows_then_add_scaled_kernel, gpu_rows::lanes_for(d), n, detail::current_stream(), n, f, X, e, Y, d)
    gpu_rows::check_launch("hyplora::backend::Thrust::", "rows_then_add_scaled");
  }
#endif
  /// Rows whose functor reads no row data (scalars per row): the same as for_rows here.
  template <class F>
  static void for_rows_simd(index_t n, const F& f) {
    for_rows(n, f);
  }
  /// Every row of Y (n x d) = v (v null: zeros).
  template <class T>
  static void set_rows(T* Y, const T* v, index_t n, index_t d) {
    if (n <= 0) return;
#if HYPLORA_THRUST_CUDA
    if (d >= gpu_rows::block_row_min)
      detail::set_rows_block_kernel<<<unsigned(n), gpu_rows::threads_per_block, 0, detail::current_stream()>>>(Y, v, d);
    else
      HYPLORA_GPU_ROWS_LAUNCH(detail::set_rows_kernel, gpu_rows::lanes_for(d), n, detail::current_stream(), Y, v, n, d)
    gpu_rows::check_launch("hyplora::backend::Thrust::", "set_rows");
#else
    for_rows(n, detail::SetRow<T>{Y, v, d});
#endif
  }
  /// out[i] = <A_i, B_i> for the n rows of length d of two row-major arrays.
  template <class T>
  static void row_dots(const T* A, const T* B, index_t n, index_t d, T* out) {
    if (n <= 0) return;
#if HYPLORA_THRUST_CUDA
    if (d >= gpu_rows::block_row_min)
      detail::row_dots_block_kernel<<<unsigned(n), gpu_rows::threads_per_block, 0, detail::current_stream()>>>(A, B, d, out);
    else
      HYPLORA_GPU_ROWS_LAUNCH(detail::row_dots_kernel, gpu_rows::lanes_for(d), n, detail::current_stream(), A, B, n, d, out)
    gpu_rows::check_launch("hyplora::backend::Thrust::", "row_dots");
#else
    for_rows(n, detail::RowDot<T>{A, B, out, d});
#endif
  }
  /// Y_i += e_i X_i for the n rows of length d.
  template <class T>
  static void add_scaled_rows(const T* X, const T* e, T* Y, index_t n, index_t d) {
    if (n <= 0) return;
#if HYPLORA_THRUST_CUDA
    if (d >= gpu_rows::block_row_min)
      detail::add_scaled_rows_block_kernel<<<unsigned(n), gpu_rows::threads_per_block, 0, detail::current_stream()>>>(X, e, Y, d);
    else
      HYPLORA_GPU_ROWS_LAUNCH(detail::add_scaled_rows_kernel, gpu_rows::lanes_for(d), n, detail::current_stream(), X, e, Y, n, d)
    gpu_rows::check_launch("hyplora::backend::Thrust::", "add_scaled_rows");
#else
    for_rows(n, detail::AddScaledRow<T>{X, e, Y, d});
#endif
  }
  template <class T>
  static T sum(const T* p, index_t n) {
    auto b = thrust::device_pointer_cast(p);
#if HYPLORA_THRUST_CUDA
    return thrust::reduce(thrust::cuda::par.on(detail::current_stream()), b, b + n, T(0));
#else
    return thrust::reduce(thrust::device, b, b + n, T(0));
#endif
  }
  template <class T>
  static void fill(T* p, index_t n, T value) {
    auto b = thrust::device_pointer_cast(p);
    thrust::fill(detail::async_policy(), b, b + n, value);
  }
  template <class T>
  static void copy_from_host(const T* src, index_t n, T* dst) {
    if (n <= 0) return;
#if HYPLORA_THRUST_CUDA
    const cudaStream_t s = detail::current_stream();
    detail::cuda_check(cudaMemcpyAsync(dst, src, sizeof(T) * std::size_t(n), cudaMemcpyHostToDevice, s), "copy_from_host");
    detail::cuda_check(cudaStreamSynchronize(s), "copy_from_host");
#else
    thrust::copy(src, src + n, thrust::device_pointer_cast(dst));
#endif
  }
  template <class T>
  static void copy_to_host(const T* src, index_t n, T* dst) {
    if (n <= 0) return;
#if HYPLORA_THRUST_CUDA
    const cudaStream_t s = detail::current_stream();
    detail::cuda_check(cudaMemcpyAsync(dst, src, sizeof(T) * std::size_t(n), cudaMemcpyDeviceToHost, s), "copy_to_host");
    detail::cuda_check(cudaStreamSynchronize(s), "copy_to_host");
#else
    auto b = thrust::device_pointer_cast(src);
    thrust::copy(b, b + n, dst);
#endif
  }
  template <class T>
  static T read(const T* p) { T v; copy_to_host(p, 1, &v); return v; }
  template <class T>
  static void write(T* p, T value) { copy_from_host(&value, 1, p); }

  /// Row-major C (M x N) = alpha op(A) op(B) + beta C (float or double). Under CUDA tiny products
  /// (detail::small_gemm) run in a kernel of ours, the others in cuBLAS; cuBLAS is column-major, so
  /// it computes C^T = op(B)^T op(A)^T with the operands swapped.
  template <class T>
  static void gemm(bool transA, bool transB, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
                   const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Thrust::gemm: float or double");
#if HYPLORA_THRUST_CUDA
    if (M <= 0 || N <= 0) return;
    if (detail::small_gemm(M, N, K)) {
      HYPLORA_GPU_ROWS_LAUNCH(detail::small_gemm_kernel, gpu_rows::lanes_for(K), M * N, detail::current_stream(), transA,
                              transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
      gpu_rows::check_launch("hyplora::backend::Thrust::", "gemm");
      return;
    }
    const cublasHandle_t h = detail::cublas_handle();
    detail::cublas_check(cublasSetStream(h, detail::current_stream()), "cublasSetStream");
    const cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N, opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    if constexpr (std::is_same_v<T, float>)
      detail::cublas_check(cublasSgemm(h, opB, opA, int(N), int(M), int(K), &alpha, B, int(ldb), A, int(lda), &beta, C, int(ldc)),
                           "cublasSgemm");
    else
      detail::cublas_check(cublasDgemm(h, opB, opA, int(N), int(M), int(K), &alpha, B, int(ldb), A, int(lda), &beta, C, int(ldc)),
                           "cublasDgemm");
#else
    host_gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
  }
};

}  // namespace hyplora::backend
