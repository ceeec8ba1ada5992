#pragma once
// Row-major GEMM on host memory through CBLAS (OpenBLAS):
//   C (M x N) = alpha op(A) op(B) + beta C,  op(A) M x K, op(B) K x N.
#include <cblas.h>

#include "hyplora/core/config.hpp"

namespace hyplora::backend {

inline void host_gemm(bool transA, bool transB, index_t M, index_t N, index_t K, float alpha, const float* A,
                      index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, int(M), int(N),
              int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
inline void host_gemm(bool transA, bool transB, index_t M, index_t N, index_t K, double alpha, const double* A,
                      index_t lda, const double* B, index_t ldb, double beta, double* C, index_t ldc) {
  cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, int(M), int(N),
              int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

}  // namespace hyplora::backend
