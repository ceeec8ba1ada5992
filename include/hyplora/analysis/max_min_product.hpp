#pragma once
// Blocked (max, min) matrix product: the kernel behind the exact Gromov delta.
//
//   C_ij = max_z min(A_iz, B_zj)
//
// It is organised like a GEMM: the output is cut into TM x TN tiles (OpenMP over tiles), the
// shared dimension z into chunks of KC; per chunk the rows of the tile are packed as
// [z][MR] scalars and the columns as [z][NR] vectors, and a register-blocked micro-kernel keeps an
// MR x NR block of accumulators in SIMD registers while it streams z:
//     acc[r][c] = max(acc[r][c], min(a[z][r], b[z][c])).
// max and min round nothing, so the result equals the naive triple loop bit for bit whatever the
// blocking. The SIMD width follows the compile flags (SSE2: 16 bytes, AVX: 32, AVX-512: 64) through
// GCC/Clang vector extensions; other compilers and scalar types (long double) use a scalar
// "vector" of one lane with the same code.
//
// The kernel works on a "transposed left operand" P (P[z][i] = A_iz, leading dimension ldp) and a
// right operand Q (Q[z][j] = B_zj, leading dimension ldq). For a symmetric A, P = Q = A: the same
// row z provides both the MR scalars and the NR vector, which is what gromov_delta uses.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "hyplora/core/config.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace hyplora::analysis {

namespace detail {

#if (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)  // nvcc: the scalar path
#if defined(__AVX512F__)
inline constexpr int kSimdBytes = 64;
#elif defined(__AVX__)
inline constexpr int kSimdBytes = 32;
#else
inline constexpr int kSimdBytes = 16;
#endif
template <class T, bool Vectorise = (std::is_same_v<T, float> || std::is_same_v<T, double>)>
struct SimdOf {
  typedef T type __attribute__((vector_size(kSimdBytes)));
  static constexpr int lanes = kSimdBytes / int(sizeof(T));
};
template <class T>
struct SimdOf<T, false> {
  using type = T;
  static constexpr int lanes = 1;
};
#else
template <class T>
struct SimdOf {
  using type = T;
  static constexpr int lanes = 1;
};
#endif

template <class V, class T>
inline V broadcast(T a) {
  if constexpr (std::is_same_v<V, T>) {
    return a;
  } else {
    return a - V{};  // scalar - vector: every lane holds a
  }
}
template <class V>
inline V vmin(V a, V b) {
  return b < a ? b : a;  // std::min's order: the same result for NaN and signed zeros
}
template <class V>
inline V vmax(V a, V b) {
  return a < b ? b : a;
}
template <class T, class V>
inline T lane(const V& v, int k) {
  if constexpr (std::is_same_v<V, T>) {
    return v;
  } else {
    return v[k];
  }
}

/// Tile geometry for scalar type T.
template <class T>
struct MaxMinBlocking {
  using Vec = typename SimdOf<T>::type;
  static constexpr int W = SimdOf<T>::lanes;  // lanes per vector
  static constexpr int MR = 4;                // rows per micro-tile
  static constexpr int NV = 2;                // vectors per micro-tile row
  static constexpr int NR = NV * W;           // columns per micro-tile
  static constexpr index_t TM = 64;           // rows per tile (multiple of MR)
  static constexpr index_t TN = 64;           // columns per tile (multiple of NR: NR <= 32)
  static constexpr index_t KC = 256;          // z per packed chunk
  static constexpr index_t TNV = TN / W;      // vectors per accumulator row
  static_assert(TM % MR == 0 && TN % NR == 0, "tile sizes must be multiples of the micro-tile");
};

/// Per-thread buffers: packed rows, packed columns, the accumulator tile.
template <class T>
struct MaxMinWorkspace {
  using B = MaxMinBlocking<T>;
  using Vec = typename B::Vec;
  std::vector<T> packed_rows;    // [TM/MR][KC][MR]
  std::vector<Vec> packed_cols;  // [TN/NR][KC][NV]
  std::vector<Vec> acc;          // [TM][TNV]
  MaxMinWorkspace()
      : packed_rows(std::size_t(B::TM * B::KC)),
        packed_cols(std::size_t(B::TN / B::NR * B::KC * B::NV)),
        acc(std::size_t(B::TM * B::TNV)) {}
};

/// acc[r][c] = max(acc[r][c], max_{z < kc} min(rows[z][r], cols[z][c])) for one MR x NR micro-tile.
template <class T>
inline void max_min_micro_kernel(const T* __restrict rows, const typename MaxMinBlocking<T>::Vec* __restrict cols,
                                 index_t kc, typename MaxMinBlocking<T>::Vec* __restrict acc, index_t acc_ld) {
  using B = MaxMinBlocking<T>;
  using Vec = typename B::Vec;
  constexpr int MR = B::MR, NV = B::NV;
  Vec c[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = acc[r * acc_ld + v];
  for (index_t z = 0; z < kc; ++z) {
    Vec b[NV];
    for (int v = 0; v < NV; ++v) b[v] = cols[z * NV + v];
    for (int r = 0; r < MR; ++r) {
      const Vec a = broadcast<Vec>(rows[z * MR + r]);
      for (int v = 0; v < NV; ++v) c[r][v] = vmax(c[r][v], vmin(a, b[v]));
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r * acc_ld + v] = c[r][v];
}

/// Computes the tile acc[r][c] = max_{z < kdim} min(P[z][i0 + r], Q[z][j0 + c]) for r < ni, c < nj
/// (entries outside are -inf-padded and meaningless). acc is ws.acc, TM x TN scalars as vectors.
template <class T>
inline void max_min_tile(const T* P, index_t ldp, const T* Q, index_t ldq, index_t kdim, index_t i0, index_t ni,
                         index_t j0, index_t nj, MaxMinWorkspace<T>& ws) {
  using B = MaxMinBlocking<T>;
  using Vec = typename B::Vec;
  constexpr int MR = B::MR, NV = B::NV, NR = B::NR;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const Vec vneg_inf = broadcast<Vec>(neg_inf);
  std::fill(ws.acc.begin(), ws.acc.end(), vneg_inf);
  const index_t row_blocks = (ni + MR - 1) / MR;
  const index_t col_blocks = (nj + NR - 1) / NR;
  for (index_t z0 = 0; z0 < kdim; z0 += B::KC) {
    const index_t kc = std::min<index_t>(B::KC, kdim - z0);
    // pack rows: packed_rows[rb][z][r] = P[z0+z][i0 + rb*MR + r]
    for (index_t rb = 0; rb < row_blocks; ++rb) {
      T* dst = ws.packed_rows.data() + rb * B::KC * MR;
      for (index_t z = 0; z < kc; ++z) {
        const T* src = P + (z0 + z) * ldp + i0 + rb * MR;
        for (int r = 0; r < MR; ++r) dst[z * MR + r] = (rb * MR + r < ni) ? src[r] : neg_inf;
      }
    }
    // pack columns: packed_cols[cb][z][v] = Q[z0+z][j0 + cb*NR + v*W .. +W]
    for (index_t cb = 0; cb < col_blocks; ++cb) {
      Vec* dst = ws.packed_cols.data() + cb * B::KC * NV;
      const bool full = (cb + 1) * NR <= nj;
      for (index_t z = 0; z < kc; ++z) {
        const T* src = Q + (z0 + z) * ldq + j0 + cb * NR;
        if (full) {
          std::memcpy(static_cast<void*>(dst + z * NV), src, sizeof(T) * NR);
        } else {
          T tmp[NR];
          for (int c = 0; c < NR; ++c) tmp[c] = (cb * NR + c < nj) ? src[c] : neg_inf;
          std::memcpy(static_cast<void*>(dst + z * NV), tmp, sizeof(T) * NR);
        }
      }
    }
    for (index_t rb = 0; rb < row_blocks; ++rb)
      for (index_t cb = 0; cb < col_blocks; ++cb)
        max_min_micro_kernel<T>(ws.packed_rows.data() + rb * B::KC * MR, ws.packed_cols.data() + cb * B::KC * NV, kc,
                                ws.acc.data() + rb * MR * B::TNV + cb * NV, B::TNV);
  }
}

/// Scalar (r, c) of the accumulator tile.
template <class T>
inline T tile_at(const MaxMinWorkspace<T>& ws, index_t r, index_t c) {
  using B = MaxMinBlocking<T>;
  return lane<T>(ws.acc[std::size_t(r * B::TNV + c / B::W)], int(c % B::W));
}

inline void check_dims(index_t n, index_t k, index_t m, const char* who) {
  if (n < 0 || k < 0 || m < 0)
    throw std::invalid_argument(std::string(who) + ": negative matrix dimension");
}

}  // namespace detail

/// Number of OpenMP threads the kernels use (1 without OpenMP).
inline int max_min_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// C (n x m, row-major) = A (n x k, row-major) (max,min) B (k x m, row-major):
/// C_ij = max_z min(A_iz, B_zj); with k == 0 every entry is -inf (the identity of max).
template <class T>
void max_min_product(const T* A, const T* B, T* C, index_t n, index_t k, index_t m) {
  static_assert(std::is_floating_point_v<T>, "max_min_product needs a floating-point type");
  detail::check_dims(n, k, m, "max_min_product");
  using Bk = detail::MaxMinBlocking<T>;
  // P = A^T (k x n) so that a tile's rows come from contiguous memory.
  std::vector<T> P(std::size_t(k) * std::size_t(n));
  for (index_t i = 0; i < n; ++i)
    for (index_t z = 0; z < k; ++z) P[std::size_t(z * n + i)] = A[i * k + z];
  const index_t tiles_i = (n + Bk::TM - 1) / Bk::TM, tiles_j = (m + Bk::TN - 1) / Bk::TN;
  const index_t tiles = tiles_i * tiles_j;
#if defined(_OPENMP)
#pragma omp parallel
#endif
  {
    detail::MaxMinWorkspace<T> ws;
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 1)
#endif
    for (index_t t = 0; t < tiles; ++t) {
      const index_t i0 = (t / tiles_j) * Bk::TM, j0 = (t % tiles_j) * Bk::TN;
      const index_t ni = std::min<index_t>(Bk::TM, n - i0), nj = std::min<index_t>(Bk::TN, m - j0);
      detail::max_min_tile<T>(P.data(), n, B, m, k, i0, ni, j0, nj, ws);
      for (index_t r = 0; r < ni; ++r)
        for (index_t c = 0; c < nj; ++c) C[(i0 + r) * m + j0 + c] = detail::tile_at(ws, r, c);
    }
  }
}

/// The straightforward triple loop, for tests and benchmarks.
template <class T>
void max_min_product_naive(const T* A, const T* B, T* C, index_t n, index_t k, index_t m) {
  detail::check_dims(n, k, m, "max_min_product_naive");
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < m; ++j) {
      T best = -std::numeric_limits<T>::infinity();
      for (index_t z = 0; z < k; ++z) best = std::max(best, std::min(A[i * k + z], B[z * m + j]));
      C[i * m + j] = best;
    }
}

/// For a symmetric n x n matrix A (row-major, leading dimension lda):
///   max_{i,j} ( (A (max,min) A)_ij - A_ij ),
/// without storing the product. Only tiles with I <= J are computed ((A (max,min) A) is symmetric
/// when A is), so this costs n^3/2 (min, max) pairs.
template <class T>
T max_min_excess_symmetric(const T* A, index_t n, index_t lda) {
  static_assert(std::is_floating_point_v<T>, "max_min_excess_symmetric needs a floating-point type");
  using Bk = detail::MaxMinBlocking<T>;
  static_assert(Bk::TM == Bk::TN, "square tiles: a tile pair (I, J) covers rows I*TM.. and columns J*TM..");
  const index_t tiles = (n + Bk::TM - 1) / Bk::TM;
  // Tile pairs (I, J) with I <= J.
  std::vector<std::pair<index_t, index_t>> pairs;
  pairs.reserve(std::size_t(tiles * (tiles + 1) / 2));
  for (index_t I = 0; I < tiles; ++I)
    for (index_t J = I; J < tiles; ++J) pairs.emplace_back(I, J);
  T best = -std::numeric_limits<T>::infinity();
  const index_t npairs = index_t(pairs.size());
#if defined(_OPENMP)
#pragma omp parallel reduction(max : best)
#endif
  {
    detail::MaxMinWorkspace<T> ws;
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 1)
#endif
    for (index_t p = 0; p < npairs; ++p) {
      const index_t i0 = pairs[std::size_t(p)].first * Bk::TM, j0 = pairs[std::size_t(p)].second * Bk::TM;
      const index_t ni = std::min<index_t>(Bk::TM, n - i0), nj = std::min<index_t>(Bk::TM, n - j0);
      detail::max_min_tile<T>(A, lda, A, lda, n, i0, ni, j0, nj, ws);
      T local = -std::numeric_limits<T>::infinity();
      for (index_t r = 0; r < ni; ++r) {
        const T* a_row = A + (i0 + r) * lda + j0;
        for (index_t c = 0; c < nj; ++c) local = std::max(local, detail::tile_at(ws, r, c) - a_row[c]);
      }
      best = std::max(best, local);
    }
  }
  return best;
}

}  // namespace hyplora::analysis
