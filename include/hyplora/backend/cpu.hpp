#pragma once
// CPU backend: xtensor containers, OpenBLAS GEMM, OpenMP over rows.
//
// A backend gives the adapter its memory and its two kinds of work:
//   vector<T>             owning container;  data(v), resize(v, n)
//   for_rows(n, f)        calls f(i) for every row i (f is a functor with HYPLORA_HOST_DEVICE operator())
//   gemm(...)             row-major C = alpha op(A) op(B) + beta C on the backend's memory
//   set_rows, row_dots, add_scaled_rows   the row-wide passes over n x d data of the layer and the
//                         rank-space adapters (one thread per row here; 8-32 lanes of a warp per row
//                         under CUDA, core/gpu_rows.hpp)
//   fuse_rank_rows        optional: true where the rank-space forward rows should be one kernel
//   row_pass_fuse_max     optional, with row_dots_then_rows / rows_then_add_scaled: rows up to this
//                         long take a row pass and a row functor in one kernel (backend::Thrust, CUDA)
//   row_program_max      optional, with run_row_program: rows up to this long take the adapters'
//                         row programs (adapter/row_programs.hpp: a branch pass in one kernel;
//                         backend::Thrust, CUDA)
//   project_rows, expand_rows_add, expand_rows_add_transposed, quadratic_rows, rank_dots,
//   vjp_combine_rows, gram_rows, rows_times_add
//                         optional: the adapters' thin products X A^T (with |x|^2), dX += Z A
//                         (+ diag(e) X) and Y += Z B^T in one pass over the rows, the rank-space
//                         form z^T G z, dots of rank rows, the VJP's rank rows, and the r x r
//                         products G = B^T B and dB += B M (here: cpu_rank_products.hpp); each
//                         returns whether it ran, the adapter composes the product where it did not
//   sum, fill, axpy-free helpers, copy_to_host / copy_from_host, read / write one element.
#include <algorithm>
#include <cstring>
#if defined(_OPENMP)
#include <omp.h>
#endif
#include <xtensor/xtensor.hpp>

#include "hyplora/backend/blas.hpp"
#include "hyplora/backend/cpu_rank_products.hpp"
#include "hyplora/core/config.hpp"
#include "hyplora/core/simd_dispatch.hpp"
#include "hyplora/manifold/vector_ops.hpp"

namespace hyplora::backend {

struct Cpu {
  static constexpr const char* name = "cpu";
  template <class T>
  using vector = xt::xtensor<T, 1>;

  template <class T>
  static T* data(vector<T>& v) { return v.data(); }
  template <class T>
  static const T* data(const vector<T>& v) { return v.data(); }
  template <class T>
  static void resize(vector<T>& v, index_t n) { v.resize({std::size_t(n)}); }

  /// Below this many elements (rows x row length) a row loop runs on the calling thread: waking
  /// the OpenMP team costs more than the work (measured: bench_adapter at d = 64).
  static constexpr index_t parallel_min_work = index_t(1) << 16;

  /// Calls chunk(a, b) on [0, n) split evenly over the OpenMP team, or once on the calling thread
  /// when n x row_length is below parallel_min_work.
  template <class F>
  static void for_row_chunks(index_t n, index_t row_length, const F& chunk) {
    if (n <= 1 || n * row_length < parallel_min_work) {
      chunk(index_t(0), n);
      return;
    }
#if defined(_OPENMP)
#pragma omp parallel
#endif
    {
#if defined(_OPENMP)
      const index_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
      const index_t t = 0, nt = 1;
#endif
      chunk(n * t / nt, n * (t + 1) / nt);
    }
  }
  /// f(i) for every row (an OpenMP team only above parallel_min_work: entering even a one-thread
  /// parallel region costs ~1.2 us, as much as a small pass).
  template <class F>
  static void for_rows(index_t n, const F& f, index_t row_length = parallel_min_work) {
    for_row_chunks(n, row_length, [&](index_t a, index_t b) {
      for (index_t i = a; i < b; ++i) f(i);
    });
  }
  /// Rows whose functor works on per-row scalars only (no row data): an `omp simd` loop on the
  /// widest vector unit of the CPU (core/simd_dispatch.hpp), vectorised where the inlined functor
  /// has no branch and no call (the adapters' factor passes).
  template <class F>
  static void for_rows_simd(index_t n, const F& f) {
    for_row_chunks(n, 1, [&](index_t a, index_t b) {
      const F g = f;  // a local copy: its members are not reloaded after each store through a row pointer
      simd::simd_loop(b - a, [&](index_t k) { g(a + k); });
    });
  }
  /// Every row of Y (n x d) = v (v null: zeros).
  template <class T>
  static void set_rows(T* Y, const T* v, index_t n, index_t d) {
    for_row_chunks(n, d, [&](index_t a, index_t b) {
      for (index_t i = a; i < b; ++i) {
        if (v) std::memcpy(Y + i * d, v, sizeof(T) * std::size_t(d));
        else std::fill(Y + i * d, Y + (i + 1) * d, T(0));
      }
    });
  }
  /// out[i] = <A_i, B_i> for the n rows of length d of two row-major arrays, on the widest vector
  /// unit; the sums in 16 fixed lanes (vec::dot_lanes16) round the same on every unit.
  template <class T>
  static void row_dots(const T* A, const T* B, index_t n, index_t d, T* out) {
    for_row_chunks(n, d, [&](index_t a, index_t b) {
      simd::wide([&] {
        for (index_t i = a; i < b; ++i) out[i] = vec::dot_lanes16(A + i * d, B + i * d, d);
      });
    });
  }
  /// Y_i += e_i X_i for the n rows of length d (rows with e_i = 0 are not touched).
  template <class T>
  static void add_scaled_rows(const T* X, const T* e, T* Y, index_t n, index_t d) {
    for_row_chunks(n, d, [&](index_t a, index_t b) {
      simd::wide([&] {
        for (index_t i = a; i < b; ++i) {
          const T c = e[i];
          if (c == T(0)) continue;
          const T* x = X + i * d;
          T* y = Y + i * d;
          HYPLORA_OMP_SIMD
          for (index_t j = 0; j < d; ++j) y[j] += c * x[j];
        }
      });
    });
  }
  /// Rows up to this many elements (n x d) take the hand-vectorised rank products, on the calling
  /// thread; above it OpenBLAS's GEMM on its threads is faster (docs/adapters.md, run 12).
  static constexpr index_t rank_products_max_work = index_t(1) << 18;
  template <class T>
  static bool uses_rank_products(index_t n, index_t d, index_t r) {
    return n * d <= rank_products_max_work && rank_products::available<T>(r);
  }
  // The rank products below run the kernels where they apply and return true; otherwise they return
  // false and touch nothing, and the caller composes the product of GEMMs and row passes
  // (adapter::project_rows and its siblings in adapter.hpp: the one place for those compositions).
  /// Z = alpha X A^T (n x r; A r x d) and, where n2 is not null, n2[i] = |x_i|^2, in one read of X.
  template <class T>
  static bool project_rows(const T* X, index_t n, index_t d, const T* A, index_t r, T alpha, T* Z, T* n2) {
    if (!uses_rank_products<T>(n, d, r)) return false;
    rank_products::project_rows(X, n, d, A, r, alpha, Z, n2);
    return true;
  }
  /// Y += (alpha Z) A (Z n x r, A r x d) plus, where e is not null, e_i X_i per row, in one pass over Y.
  template <class T>
  static bool expand_rows_add(const T* Z, index_t n, index_t r, T alpha, const T* A, index_t d, const T* X, const T* e,
                              T* Y) {
    if (!uses_rank_products<T>(n, d, r)) return false;
    rank_products::expand_rows_add(Z, n, r, alpha, A, d, X, e, Y);
    return true;
  }
  /// Y += alpha Z B^T (Z n x r, B d x r), in one pass over Y.
  template <class T>
  static bool expand_rows_add_transposed(const T* Z, index_t n, index_t r, T alpha, const T* B, index_t d, T* Y) {
    if (!uses_rank_products<T>(n, d, r)) return false;
    rank_products::expand_rows_add_transposed(Z, n, r, alpha, B, d, Y);
    return true;
  }
  /// Pa = Z G (n x r; G r x r) and q2[i] = Z_i . Pa_i (any n: the work is n r^2).
  template <class T>
  static bool quadratic_rows(const T* Z, index_t n, index_t r, const T* G, T* Pa, T* q2) {
    if (!rank_products::available<T>(r)) return false;
    rank_products::quadratic_rows(Z, n, r, G, Pa, q2);
    return true;
  }
  /// out[i] = U_i . V_i for n rows of r values.
  template <class T>
  static bool rank_dots(const T* U, const T* V, index_t n, index_t r, T* out) {
    if (!rank_products::available<T>(r)) return false;
    rank_products::rank_dots(U, V, n, r, out);
    return true;
  }
  /// dZs = diag(h) Q + diag(c) Pa and M = Za^T diag(c) Za in one pass over the rank rows.
  template <class T>
  static bool vjp_combine_rows(const T* Q, const T* Za, const T* Pa, const T* c, const T* h, index_t n, index_t r,
                               T* dZs, T* M) {
    if (!rank_products::available<T>(r)) return false;
    rank_products::vjp_combine_rows(Q, Za, Pa, c, h, n, r, dZs, M);
    return true;
  }
  /// G = Z^T Z (r x r; Z n x r).
  template <class T>
  static bool gram_rows(const T* Z, index_t n, index_t r, T* G) {
    if (!rank_products::available<T>(r)) return false;
    rank_products::gram_rows(Z, n, r, G);
    return true;
  }
  /// P += Z G (Z, P n x r; G r x r).
  template <class T>
  static bool rows_times_add(const T* Z, index_t n, index_t r, const T* G, T* P) {
    if (!rank_products::available<T>(r)) return false;
    rank_products::rows_times_add(Z, n, r, G, P);
    return true;
  }
  template <class T>
  static T sum(const T* p, index_t n) {
    T s = T(0);
    for (index_t i = 0; i < n; ++i) s += p[i];
    return s;
  }
  template <class T>
  static void fill(T* p, index_t n, T value) { std::fill(p, p + n, value); }
  template <class T>
  static void copy_from_host(const T* src, index_t n, T* dst) { if (n > 0) std::memcpy(dst, src, sizeof(T) * n); }
  template <class T>
  static void copy_to_host(const T* src, index_t n, T* dst) { if (n > 0) std::memcpy(dst, src, sizeof(T) * n); }
  template <class T>
  static T read(const T* p) { return *p; }
  template <class T>
  static void write(T* p, T value) { *p = value; }

  template <class T>
  static void gemm(bool transA, bool transB, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
                   const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    host_gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
};

}  // namespace hyplora::backend
