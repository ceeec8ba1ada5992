#pragma once
// Row-major GEMM over float or double through CBLAS (OpenBLAS), and a guard that runs OpenBLAS
// single-threaded inside our own OpenMP regions (many small GEMMs in parallel, one per head).
#include <cblas.h>

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
}

namespace hyplora::llm::blas {

/// C (M x N) = alpha * op(A) op(B) + beta * C, all row-major with leading dimensions lda, ldb, ldc.
inline void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                 float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
              B, ldb, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda, const double* B,
                 int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
              B, ldb, beta, C, ldc);
}

/// While alive, OpenBLAS uses one thread (restored on destruction).
class SingleThreadedScope {
 public:
  SingleThreadedScope() : saved_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
  ~SingleThreadedScope() { openblas_set_num_threads(saved_); }
  SingleThreadedScope(const SingleThreadedScope&) = delete;
  SingleThreadedScope& operator=(const SingleThreadedScope&) = delete;

 private:
  int saved_;
};

}  // namespace hyplora::llm::blas
