#pragma once
// The rank products' kernels on AVX-512 with FMA (float, r = 8 and 16): the products that read or
// write the n x d rows (project_rows, expand_rows_add) in 16-lane blocks with masked tails, and the
// rank-row kernels of rank_rows.inl with R = 8 (__m256) and 16 (__m512) rows.
// Used through backend/cpu_rank_products.hpp, which says what each computes and when it runs.
#include "hyplora/backend/rank_kernels/unit_common.hpp"

#if HYPLORA_SIMD_DISPATCH
HYPLORA_RANK_KERNELS_BEGIN
#define HYPLORA_TARGET_AVX512_FMA __attribute__((target("avx512f,avx512dq,avx512vl,fma")))

namespace hyplora::backend::rank_products::avx512 {

constexpr int kVectorRegisters = 32;

/// The 8 sums of 16 lanes each of a[0..7], in lanes 0..7 of the result.
HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE __m256 reduce8(const __m512* a) {
  // 16 -> 8 lanes: t_p = [a_2p (lanes l + l+8) | a_2p+1 (same)]
  __m512 t[4];
  for (int p = 0; p < 4; ++p)
    t[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], 0x44),
                         _mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], 0xEE));
  // 8 -> 4 lanes: u0 = [a0 | a1 | a2 | a3] (4 lanes each), u1 = [a4 | ... | a7]
  const __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(t[0], t[1], 0x88), _mm512_shuffle_f32x4(t[0], t[1], 0xDD));
  const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(t[2], t[3], 0x88), _mm512_shuffle_f32x4(t[2], t[3], 0xDD));
  // 4 -> 2 -> 1: 128-bit block b holds [a_b, a_b, a_b+4, a_b+4]
  __m512 w = _mm512_add_ps(_mm512_shuffle_ps(u0, u1, 0x44), _mm512_shuffle_ps(u0, u1, 0xEE));
  w = _mm512_add_ps(w, _mm512_shuffle_ps(w, w, 0xB1));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castps512_ps256(_mm512_permutexvar_ps(order, w));
}

/// The mask of the 16 values of x from j on: all 16, or the d % 16 of the last, partial block.
HYPLORA_TARGET_AVX512_FMA inline __mmask16 block_mask(index_t j, index_t d) {
  return j + 16 <= d ? __mmask16(0xFFFF) : __mmask16((1u << (d - j)) - 1u);
}

/// Q consecutive rows of project_rows (Q R accumulators): each load of a block of A serves Q rows.
/// Inlined by force, reduce8 too: a call would pass the accumulators through memory (g++ did not
/// inline either by itself, and the two-row form then took 15.7 us instead of 7.2 at 512 x 64, r = 8).
template <int R, int Q, bool Norms>
HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE void project_row_group(const float* X, index_t d, const float* A,
                                                                      __m256 scale, float* Z, float* n2) {
  __m512 acc[Q][R];
  __m512 s[Q];
  for (int q = 0; q < Q; ++q) {
    s[q] = _mm512_setzero_ps();
    for (int k = 0; k < R; ++k) acc[q][k] = _mm512_setzero_ps();
  }
  for (index_t j = 0; j < d; j += 16) {
    const __mmask16 m = block_mask(j, d);  // masked-off lanes load as 0
    __m512 xv[Q];
    for (int q = 0; q < Q; ++q) {
      xv[q] = _mm512_maskz_loadu_ps(m, X + q * d + j);
      if constexpr (Norms) s[q] = _mm512_fmadd_ps(xv[q], xv[q], s[q]);
    }
    for (int k = 0; k < R; ++k) {
      const __m512 a = _mm512_maskz_loadu_ps(m, A + k * d + j);
      for (int q = 0; q < Q; ++q) acc[q][k] = _mm512_fmadd_ps(a, xv[q], acc[q][k]);
    }
  }
  for (int q = 0; q < Q; ++q) {
    for (int g = 0; g < R; g += 8) _mm256_storeu_ps(Z + q * R + g, _mm256_mul_ps(scale, reduce8(acc[q] + g)));
    if constexpr (Norms) n2[q] = _mm512_reduce_add_ps(s[q]);
  }
}

/// Z = alpha X A^T and |x|^2, two rows at a time at R = 8 (16 accumulators, the loads of A halved:
/// 9.0 -> 7.2 us at 512 x 64, 9.4 -> 8.0 with the norms), one at R = 16 (its 16 accumulators alone
/// take half the registers). Each row's sums are formed as in the one-row form: the same results.
template <int R, bool Norms>
HYPLORA_TARGET_AVX512_FMA void project_rows(const float* X, index_t n, index_t d, const float* A, float alpha, float* Z,
                                            float* n2) {
  static_assert(R == 8 || R == 16);
  constexpr int P = R == 8 ? 2 : 1;
  const __m256 scale = _mm256_set1_ps(alpha);
  index_t i = 0;
  for (; i + P <= n; i += P)
    project_row_group<R, P, Norms>(X + i * d, d, A, scale, Z + i * R, Norms ? n2 + i : nullptr);
  for (; i < n; ++i) project_row_group<R, 1, Norms>(X + i * d, d, A, scale, Z + i * R, Norms ? n2 + i : nullptr);
}

/// Y += (alpha Z) A + diag(e) X, 16 x CH columns at a time: that block of alpha A stays in registers
/// (R x CH of them) while the rows stream past, so a row costs R broadcasts of z and its own loads and
/// stores, not R loads of A per 16 values (the loads had bound the row-by-row form: 8.3 us against
/// 5.5 here at 512 x 64, r = 8, with e). TransA: A is given as its transpose (d x R, row-major, the
/// branch's B), and each block of A is gathered once (stride R), before the rows stream past.
template <int R, bool WithE, bool TransA = false>
HYPLORA_TARGET_AVX512_FMA void expand_rows_add(const float* Z, index_t n, float alpha, const float* A, index_t d,
                                               const float* X, const float* e, float* Y) {
  constexpr int CH = R == 8 ? 2 : 1;  // 16 registers of A either way
  const __m512 scale = _mm512_set1_ps(alpha);
  const __m512i stride = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(R));
  for (index_t j0 = 0; j0 < d; j0 += 16 * CH) {
    __mmask16 m[CH];
    __m512 a[CH][R];
    for (int c = 0; c < CH; ++c) {
      const index_t j = j0 + 16 * c;
      m[c] = j < d ? block_mask(j, d) : __mmask16(0);
      for (int k = 0; k < R; ++k) {
        const __m512 ak = TransA ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m[c], stride, A + j * R + k, 4)
                                 : _mm512_maskz_loadu_ps(m[c], A + k * d + j);
        a[c][k] = _mm512_mul_ps(scale, ak);
      }
    }
    for (index_t i = 0; i < n; ++i) {
      const float* z = Z + i * R;
      float* y = Y + i * d + j0;
      // two accumulators per block halve the chain of dependent FMAs
      __m512 p[CH], q[CH];
      for (int c = 0; c < CH; ++c) {
        p[c] = _mm512_maskz_loadu_ps(m[c], y + 16 * c);
        q[c] = _mm512_setzero_ps();
      }
      if constexpr (WithE) {
        const __m512 ev = _mm512_set1_ps(e[i]);
        for (int c = 0; c < CH; ++c) p[c] = _mm512_fmadd_ps(ev, _mm512_maskz_loadu_ps(m[c], X + i * d + j0 + 16 * c), p[c]);
      }
      for (int k = 0; k < R; k += 2) {
        const __m512 zk = _mm512_set1_ps(z[k]), zk1 = _mm512_set1_ps(z[k + 1]);
        for (int c = 0; c < CH; ++c) {
          p[c] = _mm512_fmadd_ps(zk, a[c][k], p[c]);
          q[c] = _mm512_fmadd_ps(zk1, a[c][k + 1], q[c]);
        }
      }
      for (int c = 0; c < CH; ++c) _mm512_mask_storeu_ps(y + 16 * c, m[c], _mm512_add_ps(p[c], q[c]));
    }
  }
}

#define HYPLORA_RANK_TARGET HYPLORA_TARGET_AVX512_FMA
#include "hyplora/backend/rank_kernels/rank_rows.inl"
#undef HYPLORA_RANK_TARGET

/// One row of 16 floats in one __m512 (RankLanes<8> is in rank_rows.inl).
template <>
struct RankLanes<16> {
  using V = __m512;
  static constexpr int kRegisters = 1;
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V zero() { return _mm512_setzero_ps(); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V load(const float* p) { return _mm512_loadu_ps(p); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V splat(const float* p) { return _mm512_set1_ps(*p); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V add(V a, V b) { return _mm512_add_ps(a, b); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static float sum(V v) { return _mm512_reduce_add_ps(v); }
};

}  // namespace hyplora::backend::rank_products::avx512

#undef HYPLORA_TARGET_AVX512_FMA
HYPLORA_RANK_KERNELS_END
#endif
