#pragma once
// The rank products' kernels on AVX2 with FMA (float, r = 8 and 16): the products that read or
// write the n x d rows (project_rows, expand_rows_add) in 8-lane blocks, full blocks by plain loads
// and the last, partial one by masked loads and stores, and the rank-row kernels of rank_rows.inl
// with R = 8 (one __m256) and R = 16 (a pair) rows. Only 16 vector registers: project_rows keeps the
// 8 accumulators of one row and 8 rank rows (at R = 16 it passes over the row twice, from L1; AVX-512's
// two rows at a time would take 21); expand_rows_add is a GEMM micro-kernel with a tile of 4 rows x 16
// columns in 8 registers and depth R (AVX-512 keeps a block of A in registers instead, which here was
// bound by its loads). docs/adapters.md, runs 17 and 18.
// Used through backend/cpu_rank_products.hpp, which says what each computes and when it runs.
#include <vector>

#include "hyplora/backend/rank_kernels/unit_common.hpp"

#if HYPLORA_SIMD_DISPATCH
HYPLORA_RANK_KERNELS_BEGIN
#define HYPLORA_TARGET_AVX2_FMA __attribute__((target("avx2,fma")))

namespace hyplora::backend::rank_products::avx2 {

constexpr int kVectorRegisters = 16;

#define HYPLORA_RANK_TARGET HYPLORA_TARGET_AVX2_FMA
#include "hyplora/backend/rank_kernels/rank_rows.inl"
#undef HYPLORA_RANK_TARGET

/// A row of 16 floats in two __m256 (RankLanes<16> on AVX2).
struct Lanes16 {
  __m256 lo, hi;
};
template <>
struct RankLanes<16> {
  using V = Lanes16;
  using H = RankLanes<8>;
  static constexpr int kRegisters = 2;
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE static V zero() { return {H::zero(), H::zero()}; }
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE static V load(const float* p) { return {H::load(p), H::load(p + 8)}; }
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE static void store(float* p, V v) { H::store(p, v.lo), H::store(p + 8, v.hi); }
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE static V splat(const float* p) {
    const __m256 b = H::splat(p);
    return {b, b};
  }
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE static V add(V a, V b) { return {H::add(a.lo, b.lo), H::add(a.hi, b.hi)}; }
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE static V mul(V a, V b) { return {H::mul(a.lo, b.lo), H::mul(a.hi, b.hi)}; }
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE static V fmadd(V a, V b, V c) {
    return {H::fmadd(a.lo, b.lo, c.lo), H::fmadd(a.hi, b.hi, c.hi)};
  }
  /// Lanes l and l + 8 first, then RankLanes<8>'s tree.
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE static float sum(V v) { return H::sum(H::add(v.lo, v.hi)); }
};

/// The 8 sums of 8 lanes each of a[0..7], in lanes 0..7 of the result. hadd(a, b) =
/// [a01 a23 b01 b23 | a45 a67 b45 b67], so two rounds give u0 = [a0 a1 a2 a3 summed over lanes 0-3 |
/// the same over lanes 4-7] and u1 for a4..a7; the two 128-bit halves are then added.
HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE __m256 reduce8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/// A block of 8 values from j on in a row of d: Full, all 8 (plain loads and stores); else the
/// d - j < 8 of the last block (masked: the lanes past d are neither read, they load as 0, nor written).
template <bool Full>
struct Block {
  __m256i mask;
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE Block(index_t j, index_t d)
      : mask(Full ? _mm256_set1_epi32(-1)
                  : _mm256_cmpgt_epi32(_mm256_set1_epi32(int(d - j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))) {}
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE __m256 load(const float* p) const {
    if constexpr (Full) return _mm256_loadu_ps(p);
    else return _mm256_maskload_ps(p, mask);
  }
  HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE void store(float* p, __m256 v) const {
    if constexpr (Full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask, v);
  }
};

/// One block of x against the 8 rows of A: acc[k] += A_k,block * x_block, s += x_block^2.
template <bool Full, bool Norms>
HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE void project_block(const float* x, index_t d, const float* A,
                                                                index_t j, __m256* acc, __m256& s) {
  const Block<Full> b(j, d);
  const __m256 xv = b.load(x + j);
  if constexpr (Norms) s = _mm256_fmadd_ps(xv, xv, s);
  for (int k = 0; k < 8; ++k) acc[k] = _mm256_fmadd_ps(b.load(A + k * d + j), xv, acc[k]);
}

/// 8 rank rows of Z_i = alpha x A^T (A8: the first of them) from one pass over x: 8 accumulators of 8
/// lanes, reduced together; s += |x|^2 where Norms.
template <bool Norms>
HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE void project_eight(const float* x, index_t d, const float* A8,
                                                                __m256 scale, float* z, __m256& s) {
  const index_t full_end = d - d % 8;
  __m256 acc[8];
  for (int k = 0; k < 8; ++k) acc[k] = _mm256_setzero_ps();
  for (index_t j = 0; j < full_end; j += 8) project_block<true, Norms>(x, d, A8, j, acc, s);
  if (full_end < d) project_block<false, Norms>(x, d, A8, full_end, acc, s);
  _mm256_storeu_ps(z, _mm256_mul_ps(scale, reduce8(acc)));
}

/// Z = alpha X A^T (R = 8 or 16) and |x|^2, one row at a time, 8 rank rows per pass over the row (the
/// second pass of R = 16 reads x from L1).
template <int R, bool Norms>
HYPLORA_TARGET_AVX2_FMA void project_rows(const float* X, index_t n, index_t d, const float* A, float alpha, float* Z,
                                          float* n2) {
  static_assert(R == 8 || R == 16, "AVX2 rank products: R = 8 or 16");
  const __m256 scale = _mm256_set1_ps(alpha);
  for (index_t i = 0; i < n; ++i) {
    const float* x = X + i * d;
    __m256 s = _mm256_setzero_ps();
    project_eight<Norms>(x, d, A, scale, Z + i * R, s);
    if constexpr (R == 16) project_eight<false>(x, d, A + 8 * d, scale, Z + i * R + 8, s);
    if constexpr (Norms) n2[i] = RankLanes<8>::sum(s);
  }
}

/// alpha A (A R x d, or given as its transpose, d x R: the branch's B) in panels of 8 columns: the
/// panel of columns 8b..8b+7 holds their R x 8 values, row k at 8 R b + 8 k (the columns past d are 0),
/// so that a tile's loads of A are at fixed offsets from one pointer. In a buffer of this thread's
/// that is kept from call to call.
template <int R>
HYPLORA_TARGET_AVX2_FMA inline const float* scaled_panels(const float* A, index_t d, float alpha, bool transposed) {
  static thread_local std::vector<float> panels;
  const index_t blocks = (d + 7) / 8;
  if (panels.size() < std::size_t(8 * R * blocks)) panels.resize(std::size_t(8 * R * blocks));
  for (index_t b = 0; b < blocks; ++b)
    for (index_t k = 0; k < R; ++k)
      for (index_t c = 0; c < 8; ++c) {
        const index_t j = 8 * b + c;
        panels[std::size_t(8 * R * b + 8 * k + c)] = j < d ? alpha * (transposed ? A[j * R + k] : A[k * d + j]) : 0.f;
      }
  return panels.data();
}

/// The tile of MR rows from i and NV blocks of 8 columns from j (the last block Full or the partial
/// end of the row): C = Y + diag(e) X on the tile, then C += z_k (alpha A)_k for k = 0..R-1, C in
/// registers: per k, NV loads of alpha A's row k and MR broadcasts of z for MR x NV FMAs (a GEMM
/// micro-kernel whose depth is the rank). Each element's sum is one chain, in the order of k.
template <int R, int MR, int NV, bool FullLast, bool WithE>
HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE void expand_tile(const float* Z, const float* panels, index_t d,
                                                              const float* X, const float* e, float* Y, index_t i,
                                                              index_t j) {
  const Block<FullLast> last(j + 8 * (NV - 1), d);
  const float* z = Z + i * R;
  const float* a = panels + R * j;  // the panel of column j: 8 R (j / 8)
  float* y[MR];
  const float* x[MR] = {};  // X is null without the e term: no offset is applied to it then
  for (int m = 0; m < MR; ++m) {
    y[m] = Y + (i + m) * d + j;
    if constexpr (WithE) x[m] = X + (i + m) * d + j;
  }
  __m256 c[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) {
      c[m][v] = v + 1 < NV ? _mm256_loadu_ps(y[m] + 8 * v) : last.load(y[m] + 8 * v);
      if constexpr (WithE)
        c[m][v] = _mm256_fmadd_ps(_mm256_broadcast_ss(e + i + m),
                                  v + 1 < NV ? _mm256_loadu_ps(x[m] + 8 * v) : last.load(x[m] + 8 * v), c[m][v]);
    }
  for (int k = 0; k < R; ++k) {
    __m256 av[NV];
    for (int v = 0; v < NV; ++v) av[v] = _mm256_loadu_ps(a + 8 * R * v + 8 * k);
    for (int m = 0; m < MR; ++m) {
      const __m256 zk = _mm256_broadcast_ss(z + R * m + k);
      for (int v = 0; v < NV; ++v) c[m][v] = _mm256_fmadd_ps(zk, av[v], c[m][v]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) {
      if (v + 1 < NV) _mm256_storeu_ps(y[m] + 8 * v, c[m][v]);
      else last.store(y[m] + 8 * v, c[m][v]);
    }
}

/// MR rows from i, tile by tile along the row: 16 columns, then 8, then the partial end.
template <int R, int MR, bool WithE>
HYPLORA_TARGET_AVX2_FMA HYPLORA_ALWAYS_INLINE void expand_row_group(const float* Z, const float* panels, index_t d,
                                                                   const float* X, const float* e, float* Y,
                                                                   index_t i) {
  index_t j = 0;
  for (; j + 16 <= d; j += 16) expand_tile<R, MR, 2, true, WithE>(Z, panels, d, X, e, Y, i, j);
  if (j + 8 <= d) expand_tile<R, MR, 1, true, WithE>(Z, panels, d, X, e, Y, i, j), j += 8;
  if (j < d) expand_tile<R, MR, 1, false, WithE>(Z, panels, d, X, e, Y, i, j);
}

/// Y += (alpha Z) A + diag(e) X (R = 8 or 16), four rows at a time (8 of the 16 registers hold the
/// tile, two a row of alpha A). Row by row with alpha A in 8 registers instead, the loads (8
/// broadcasts and one row of Y per 8 FMAs) bound it: 56-70 us at 512 x 288 against OpenBLAS's 41-56.
/// TransA: A is given as its transpose (d x R, the branch's B).
template <int R, bool WithE, bool TransA = false>
HYPLORA_TARGET_AVX2_FMA void expand_rows_add(const float* Z, index_t n, float alpha, const float* A, index_t d,
                                             const float* X, const float* e, float* Y) {
  static_assert(R == 8 || R == 16, "AVX2 rank products: R = 8 or 16");
  const float* panels = scaled_panels<R>(A, d, alpha, TransA);
  index_t i = 0;
  for (; i + 4 <= n; i += 4) expand_row_group<R, 4, WithE>(Z, panels, d, X, e, Y, i);
  for (; i < n; ++i) expand_row_group<R, 1, WithE>(Z, panels, d, X, e, Y, i);
}

}  // namespace hyplora::backend::rank_products::avx2

#undef HYPLORA_TARGET_AVX2_FMA
HYPLORA_RANK_KERNELS_END
#endif
