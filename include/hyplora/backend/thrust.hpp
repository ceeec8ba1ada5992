#pragma once
// Thrust backend: thrust::device_vector storage, thrust::for_each over rows, GEMM by cuBLAS when
// Thrust's device system is CUDA (compiled by nvcc) and by OpenBLAS on the host otherwise (the
// OpenMP device system, compiled by g++: CMake target ThrustOMP). Same interface as backend::Cpu.
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

#include "hyplora/core/config.hpp"

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#include <cublas_v2.h>
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
inline void cublas_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("hyplora::backend::Thrust: ") + what + " failed (status " +
                             std::to_string(int(st)) + ")");
}
}  // namespace detail
#endif

struct Thrust {
  static constexpr const char* name = HYPLORA_THRUST_CUDA ? "thrust-cuda" : "thrust-host";
  static constexpr bool is_cuda = HYPLORA_THRUST_CUDA;
  template <class T>
  using vector = thrust::device_vector<T>;

  template <class T>
  static T* data(vector<T>& v) { return thrust::raw_pointer_cast(v.data()); }
  template <class T>
  static const T* data(const vector<T>& v) { return thrust::raw_pointer_cast(v.data()); }
  template <class T>
  static void resize(vector<T>& v, index_t n) { v.resize(std::size_t(n)); }

  template <class F>
  static void for_rows(index_t n, const F& f, index_t /*row_length*/ = 0) {
    if (n <= 0) return;
    thrust::for_each(thrust::device, thrust::counting_iterator<index_t>(0), thrust::counting_iterator<index_t>(n), f);
  }
  /// Rows whose functor reads no row data (scalars per row): the same as for_rows here.
  template <class F>
  static void for_rows_simd(index_t n, const F& f) {
    for_rows(n, f);
  }
  template <class T>
  static T sum(const T* p, index_t n) {
    auto b = thrust::device_pointer_cast(p);
    return thrust::reduce(thrust::device, b, b + n, T(0));
  }
  template <class T>
  static void fill(T* p, index_t n, T value) {
    auto b = thrust::device_pointer_cast(p);
    thrust::fill(thrust::device, b, b + n, value);
  }
  template <class T>
  static void copy_from_host(const T* src, index_t n, T* dst) {
    thrust::copy(src, src + n, thrust::device_pointer_cast(dst));
  }
  template <class T>
  static void copy_to_host(const T* src, index_t n, T* dst) {
    auto b = thrust::device_pointer_cast(src);
    thrust::copy(b, b + n, dst);
  }
  template <class T>
  static T read(const T* p) { T v; copy_to_host(p, 1, &v); return v; }
  template <class T>
  static void write(T* p, T value) { copy_from_host(&value, 1, p); }

  /// Row-major C (M x N) = alpha op(A) op(B) + beta C. cuBLAS is column-major, so it computes
  /// C^T = op(B)^T op(A)^T with the operands swapped.
  static void gemm(bool transA, bool transB, index_t M, index_t N, index_t K, float alpha, const float* A,
                   index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc) {
#if HYPLORA_THRUST_CUDA
    detail::cublas_check(cublasSgemm(detail::cublas_handle(), transB ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     transA ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M), int(K), &alpha, B, int(ldb),
                                     A, int(lda), &beta, C, int(ldc)),
                         "cublasSgemm");
#else
    host_gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
  }
  static void gemm(bool transA, bool transB, index_t M, index_t N, index_t K, double alpha, const double* A,
                   index_t lda, const double* B, index_t ldb, double beta, double* C, index_t ldc) {
#if HYPLORA_THRUST_CUDA
    detail::cublas_check(cublasDgemm(detail::cublas_handle(), transB ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     transA ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M), int(K), &alpha, B, int(ldb),
                                     A, int(lda), &beta, C, int(ldc)),
                         "cublasDgemm");
#else
    host_gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
  }
};

}  // namespace hyplora::backend
