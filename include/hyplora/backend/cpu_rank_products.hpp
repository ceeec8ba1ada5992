#pragma once
// The adapters' thin products with the rank space, hand-vectorised for the CPU, each in one read
// of the n x d rows it touches:
//
//   project_rows:     Z = alpha X A^T          (X n x d, A r x d, Z n x r),  and n2_i = |x_i|^2 where asked
//   expand_rows_add:  Y += (alpha Z) A + diag(e) X   (Y, X n x d; the e term where asked)
//   expand_rows_add_transposed:  Y += alpha Z B^T    (B d x r: the branch's Y += W B^T)
//   quadratic_rows:   Pa = Z G, q2_i = Z_i . Pa_i     (G r x r: the lift's |B z|^2 = z^T (B^T B) z)
//   rank_dots:        out_i = U_i . V_i               (rows of r values)
//   vjp_combine_rows: dZs = diag(h) Q + diag(c) Pa,  M = Za^T diag(c) Za   (the rank rows of the VJP)
//   gram_rows:        G = Z^T Z                       (the lift's G = B^T B)
//   rows_times_add:   P += Z G                        (the lift's dB += B M)
//
// Float at r = 8 and 16 on AVX-512 with FMA (g++ on x86-64, core/simd_dispatch.hpp's unit choice);
// the callers (backend::Cpu) use a GEMM and a row pass elsewhere. Why: at the small shapes of an
// LLM's layers OpenBLAS's small-matrix kernel for X A^T took 10.5 us at 512 x 64, r = 8 (22 GFMA/s,
// half the core's rate), and the |x|^2 pass the hyperbolic lift needs another 3.5 us over the same
// rows; here both take 6.4 us. dX += Z A: OpenBLAS 6.0 us, here 4.8, and 5.5 with the lift's
// diag(e) X term, which took a 4 us pass of its own (docs/adapters.md, run 12).
//
// project_rows keeps one 16-lane accumulator per rank row (r FMAs per 16 values of x), two rows at a
// time at r = 8, and reduces the r accumulators together (reduce8: a transposing tree of shuffles,
// 8 sums in 15 instructions).
// Rounding: FMA in float, the 16 lanes summed as a tree (lanes l and l+8, then +4, +2, +1), like
// vec::dot_lanes16 but fused; the results differ from OpenBLAS's in the last bits only.
#include <type_traits>

#include "hyplora/core/config.hpp"
#include "hyplora/core/simd_dispatch.hpp"

#if HYPLORA_SIMD_DISPATCH
// g++ 12 warns "__Y (may be) used uninitialized" inside its own AVX-512 intrinsics (their
// _mm512_undefined_ps(); GCC bug 105593, fixed in 13): silenced for the intrinsics and the kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#define HYPLORA_TARGET_AVX512_FMA __attribute__((target("avx512f,avx512dq,avx512vl,fma")))
#define HYPLORA_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

namespace hyplora::backend::rank_products {

/// Whether the kernels run here for element type T and rank r (float, r = 8 or 16, a CPU with
/// AVX-512 and FMA, and simd::isa() not narrowed below AVX-512 by HYPLORA_SIMD).
template <class T>
inline bool available(index_t r) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    static const bool fma = [] {
      __builtin_cpu_init();
      return __builtin_cpu_supports("fma") != 0;
    }();
    return (r == 8 || r == 16) && fma && simd::isa() == simd::Isa::avx512;
  }
#endif
  (void)r;
  return false;
}

#if HYPLORA_SIMD_DISPATCH
namespace detail {

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

/// One row of R floats in one register, R = 8 (__m256) or 16 (__m512), with the operations the
/// rank-row kernels below use, so that each kernel is written once for both ranks. (A specialisation
/// per rank rather than a template over the register type: g++ drops the vector attributes of
/// __m256 / __m512 passed as template arguments, and warns.)
template <int R>
struct RankLanes;
template <>
struct RankLanes<8> {
  using V = __m256;
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V zero() { return _mm256_setzero_ps(); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V load(const float* p) { return _mm256_loadu_ps(p); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V splat(const float* p) { return _mm256_broadcast_ss(p); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V add(V a, V b) { return _mm256_add_ps(a, b); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  /// The sum of the 8 lanes: halves, then pairs, then the last two.
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static float sum(V v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
};
template <>
struct RankLanes<16> {
  using V = __m512;
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V zero() { return _mm512_setzero_ps(); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V load(const float* p) { return _mm512_loadu_ps(p); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V splat(const float* p) { return _mm512_set1_ps(*p); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V add(V a, V b) { return _mm512_add_ps(a, b); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE static float sum(V v) { return _mm512_reduce_add_ps(v); }
};

/// p = z G for one row z of R values, G's rows in registers: R broadcasts and R FMAs in two chains
/// (even and odd k), starting from `init` (zero, or the row of an accumulated output).
template <int R>
HYPLORA_TARGET_AVX512_FMA HYPLORA_ALWAYS_INLINE typename RankLanes<R>::V row_times(
    const float* z, const typename RankLanes<R>::V* g, typename RankLanes<R>::V init) {
  using L = RankLanes<R>;
  typename L::V p0 = L::fmadd(L::splat(z), g[0], init), p1 = L::mul(L::splat(z + 1), g[1]);
  for (int k = 2; k < R; k += 2) {
    p0 = L::fmadd(L::splat(z + k), g[k], p0);
    p1 = L::fmadd(L::splat(z + k + 1), g[k + 1], p1);
  }
  return L::add(p0, p1);
}

/// Pa_i = z_i G and q2_i = z_i . Pa_i, row by row with G's rows in registers (the rows are
/// independent, so their chains overlap).
template <int R>
HYPLORA_TARGET_AVX512_FMA void quadratic_rows(const float* Z, index_t n, const float* G, float* Pa, float* q2) {
  using L = RankLanes<R>;
  typename L::V g[R];
  for (int k = 0; k < R; ++k) g[k] = L::load(G + k * R);
  for (index_t i = 0; i < n; ++i) {
    const float* z = Z + i * R;
    const typename L::V p = row_times<R>(z, g, L::zero());
    L::store(Pa + i * R, p);
    q2[i] = L::sum(L::mul(L::load(z), p));
  }
}

/// P_i += z_i G row by row, G's rows in registers (as quadratic_rows, without q2).
template <int R>
HYPLORA_TARGET_AVX512_FMA void rows_times_add(const float* Z, index_t n, const float* G, float* P) {
  using L = RankLanes<R>;
  typename L::V g[R];
  for (int k = 0; k < R; ++k) g[k] = L::load(G + k * R);
  for (index_t i = 0; i < n; ++i) L::store(P + i * R, row_times<R>(Z + i * R, g, L::load(P + i * R)));
}

/// out_i = U_i . V_i for rows of R values.
template <int R>
HYPLORA_TARGET_AVX512_FMA void rank_dots(const float* U, const float* V, index_t n, float* out) {
  using L = RankLanes<R>;
  for (index_t i = 0; i < n; ++i) out[i] = L::sum(L::mul(L::load(U + i * R), L::load(V + i * R)));
}

/// dZs_i = h_i Q_i + c_i Pa_i and M = sum_i c_i Za_i^T Za_i (R x R), with M's rows in R accumulators
/// across the rows (one FMA each per row).
template <int R>
HYPLORA_TARGET_AVX512_FMA void vjp_combine_rows(const float* Q, const float* Za, const float* Pa, const float* c,
                                                const float* h, index_t n, float* dZs, float* M) {
  using L = RankLanes<R>;
  typename L::V m[R];
  for (int k = 0; k < R; ++k) m[k] = L::zero();
  for (index_t i = 0; i < n; ++i) {
    const float* za = Za + i * R;
    const typename L::V cv = L::splat(c + i);
    const typename L::V zc = L::mul(cv, L::load(za));
    L::store(dZs + i * R, L::fmadd(L::splat(h + i), L::load(Q + i * R), L::mul(cv, L::load(Pa + i * R))));
    for (int k = 0; k < R; ++k) m[k] = L::fmadd(L::splat(za + k), zc, m[k]);
  }
  for (int k = 0; k < R; ++k) L::store(M + k * R, m[k]);
}

/// G = Z^T Z (R x R) over n rows of R values, G's rows in R accumulators (one FMA each per row).
/// Two sets of accumulators, for even and odd rows, halve the chains of dependent FMAs.
template <int R>
HYPLORA_TARGET_AVX512_FMA void gram_rows(const float* Z, index_t n, float* G) {
  using L = RankLanes<R>;
  typename L::V g0[R], g1[R];
  for (int k = 0; k < R; ++k) g0[k] = g1[k] = L::zero();
  index_t i = 0;
  for (; i + 1 < n; i += 2) {
    const float *z0 = Z + i * R, *z1 = z0 + R;
    const typename L::V v0 = L::load(z0), v1 = L::load(z1);
    for (int k = 0; k < R; ++k) {
      g0[k] = L::fmadd(L::splat(z0 + k), v0, g0[k]);
      g1[k] = L::fmadd(L::splat(z1 + k), v1, g1[k]);
    }
  }
  if (i < n) {  // the last row of an odd count
    const float* z0 = Z + i * R;
    const typename L::V v0 = L::load(z0);
    for (int k = 0; k < R; ++k) g0[k] = L::fmadd(L::splat(z0 + k), v0, g0[k]);
  }
  for (int k = 0; k < R; ++k) L::store(G + k * R, L::add(g0[k], g1[k]));
}

}  // namespace detail
#pragma GCC diagnostic pop
#endif

/// Z = alpha X A^T (n x r, row-major) and, where n2 is not null, n2[i] = |x_i|^2, on rows [0, n).
/// Requires available<T>(r) (as every function below; where the kernels are compiled out they do nothing).
/// (Each dispatches on r with a plain conditional: through a generic lambda g++ 12 compiled gram_rows
/// with its accumulators in memory, 1.3 us instead of 0.7 for 512 rows.)
template <class T>
void project_rows(const T* X, index_t n, index_t d, const T* A, index_t r, T alpha, T* Z, T* n2) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    using detail::project_rows;
    if (r == 8) n2 ? project_rows<8, true>(X, n, d, A, alpha, Z, n2) : project_rows<8, false>(X, n, d, A, alpha, Z, n2);
    else n2 ? project_rows<16, true>(X, n, d, A, alpha, Z, n2) : project_rows<16, false>(X, n, d, A, alpha, Z, n2);
    return;
  }
#endif
  (void)X, (void)n, (void)d, (void)A, (void)r, (void)alpha, (void)Z, (void)n2;
}

/// Y += (alpha Z) A, plus e_i x_i per row where e is not null, on rows [0, n).
template <class T>
void expand_rows_add(const T* Z, index_t n, index_t r, T alpha, const T* A, index_t d, const T* X, const T* e, T* Y) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    using detail::expand_rows_add;
    if (r == 8) e ? expand_rows_add<8, true>(Z, n, alpha, A, d, X, e, Y) : expand_rows_add<8, false>(Z, n, alpha, A, d, X, e, Y);
    else e ? expand_rows_add<16, true>(Z, n, alpha, A, d, X, e, Y) : expand_rows_add<16, false>(Z, n, alpha, A, d, X, e, Y);
    return;
  }
#endif
  (void)Z, (void)n, (void)r, (void)alpha, (void)A, (void)d, (void)X, (void)e, (void)Y;
}

/// Y += alpha Z B^T (Z n x r, B d x r, Y n x d) on rows [0, n): the branch's output product
/// (LoRA's Y += scaling Z B^T, the rank-space Y += W B^T) by expand_rows_add's kernel with B's
/// columns gathered as the rows of A.
template <class T>
void expand_rows_add_transposed(const T* Z, index_t n, index_t r, T alpha, const T* B, index_t d, T* Y) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    using detail::expand_rows_add;
    if (r == 8) expand_rows_add<8, false, true>(Z, n, alpha, B, d, nullptr, nullptr, Y);
    else expand_rows_add<16, false, true>(Z, n, alpha, B, d, nullptr, nullptr, Y);
    return;
  }
#endif
  (void)Z, (void)n, (void)r, (void)alpha, (void)B, (void)d, (void)Y;
}

/// Pa = Z G (n x r; G r x r) and q2[i] = Z_i . Pa_i: the rank-space quadratic form |B z|^2 with
/// G = B^T B.
template <class T>
void quadratic_rows(const T* Z, index_t n, index_t r, const T* G, T* Pa, T* q2) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    r == 8 ? detail::quadratic_rows<8>(Z, n, G, Pa, q2) : detail::quadratic_rows<16>(Z, n, G, Pa, q2);
    return;
  }
#endif
  (void)Z, (void)n, (void)r, (void)G, (void)Pa, (void)q2;
}

/// out[i] = U_i . V_i for n rows of r values (U, V n x r).
template <class T>
void rank_dots(const T* U, const T* V, index_t n, index_t r, T* out) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    r == 8 ? detail::rank_dots<8>(U, V, n, out) : detail::rank_dots<16>(U, V, n, out);
    return;
  }
#endif
  (void)U, (void)V, (void)n, (void)r, (void)out;
}

/// dZs = diag(h) Q + diag(c) Pa and M = Za^T diag(c) Za (r x r) for n rows of r values (the rank
/// rows of the lift's and lower map's VJP: Zc = diag(c) Za is not formed).
template <class T>
void vjp_combine_rows(const T* Q, const T* Za, const T* Pa, const T* c, const T* h, index_t n, index_t r, T* dZs, T* M) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    if (r == 8) detail::vjp_combine_rows<8>(Q, Za, Pa, c, h, n, dZs, M);
    else detail::vjp_combine_rows<16>(Q, Za, Pa, c, h, n, dZs, M);
    return;
  }
#endif
  (void)Q, (void)Za, (void)Pa, (void)c, (void)h, (void)n, (void)r, (void)dZs, (void)M;
}

/// G = Z^T Z (r x r) over n rows of r values (Z n x r).
template <class T>
void gram_rows(const T* Z, index_t n, index_t r, T* G) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    r == 8 ? detail::gram_rows<8>(Z, n, G) : detail::gram_rows<16>(Z, n, G);
    return;
  }
#endif
  (void)Z, (void)n, (void)r, (void)G;
}

/// P += Z G (Z, P n x r; G r x r).
template <class T>
void rows_times_add(const T* Z, index_t n, index_t r, const T* G, T* P) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    r == 8 ? detail::rows_times_add<8>(Z, n, G, P) : detail::rows_times_add<16>(Z, n, G, P);
    return;
  }
#endif
  (void)Z, (void)n, (void)r, (void)G, (void)P;
}

}  // namespace hyplora::backend::rank_products
