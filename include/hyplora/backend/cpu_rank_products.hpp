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
// Float at r = 8 and 16 on AVX-512 with FMA and on AVX2 with FMA (g++ on x86-64,
// core/simd_dispatch.hpp's unit choice; the kernels are in backend/rank_kernels/, one header per
// unit); the callers (backend::Cpu) use a GEMM and a row pass elsewhere. Why: at the small shapes of an
// LLM's layers OpenBLAS's small-matrix kernel for X A^T took 10.5 us at 512 x 64, r = 8 (22 GFMA/s,
// half the core's rate), and the |x|^2 pass the hyperbolic lift needs another 3.5 us over the same
// rows; here both take 6.4 us. dX += Z A: OpenBLAS 6.0 us, here 4.8, and 5.5 with the lift's
// diag(e) X term, which took a 4 us pass of its own (docs/adapters.md, run 12). On AVX2 (run 17):
// X A^T 8.8 us against 15.4, dX += Z A + diag(e) X 14.4 against 11.0 and a pass; r = 16: run 18.
//
// project_rows keeps one accumulator of the unit's width per rank row (r FMAs per 16 or 8 values of
// x), on AVX-512 two rows at a time at r = 8, and reduces the r accumulators together (reduce8: a
// transposing tree of shuffles, 8 sums in 15 instructions on AVX-512, 6 horizontal adds on AVX2).
// Rounding: FMA in float, the lanes summed as a tree (on AVX-512 lanes l and l+8, then +4, +2, +1,
// like vec::dot_lanes16 but fused); the results differ from OpenBLAS's, and between the units, in
// the last bits only. rows_times_add, quadratic_rows' Pa and vjp_combine_rows (the same code,
// rank_rows.inl) round the same on both units; expand_rows_add (one chain over k on AVX2, even and
// odd k apart on AVX-512), the dots and gram_rows (one set of accumulators on AVX2, even and odd rows
// apart on AVX-512) do not.
#include <type_traits>

#include "hyplora/backend/rank_kernels/avx2.hpp"
#include "hyplora/backend/rank_kernels/avx512.hpp"
#include "hyplora/core/config.hpp"
#include "hyplora/core/simd_dispatch.hpp"

namespace hyplora::backend::rank_products {

/// Whether the kernels run here for element type T and rank r: float, with FMA, at r = 8 or 16 where
/// simd::isa() is AVX-512 or AVX2 (HYPLORA_SIMD narrows it).
template <class T>
inline bool available(index_t r) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    static const bool fma = [] {
      __builtin_cpu_init();
      return __builtin_cpu_supports("fma") != 0;
    }();
    if (!fma) return false;
    switch (simd::isa()) {
      case simd::Isa::avx512:
      case simd::Isa::avx2: return r == 8 || r == 16;
      case simd::Isa::baseline: return false;
    }
  }
#endif
  (void)r;
  return false;
}

#if HYPLORA_SIMD_DISPATCH
namespace detail {
/// Whether the kernels of the call are AVX-512's (else AVX2's: available() said one of them runs).
inline bool on_avx512() { return simd::isa() == simd::Isa::avx512; }
}  // namespace detail
#endif

/// Z = alpha X A^T (n x r, row-major) and, where n2 is not null, n2[i] = |x_i|^2, on rows [0, n).
/// Requires available<T>(r) (as every function below; where the kernels are compiled out they do nothing).
/// (Each dispatches on r with a plain conditional: through a generic lambda g++ 12 compiled gram_rows
/// with its accumulators in memory, 1.3 us instead of 0.7 for 512 rows.)
template <class T>
void project_rows(const T* X, index_t n, index_t d, const T* A, index_t r, T alpha, T* Z, T* n2) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    if (!detail::on_avx512()) {
      using avx2::project_rows;
      if (r == 8) n2 ? project_rows<8, true>(X, n, d, A, alpha, Z, n2) : project_rows<8, false>(X, n, d, A, alpha, Z, n2);
      else n2 ? project_rows<16, true>(X, n, d, A, alpha, Z, n2) : project_rows<16, false>(X, n, d, A, alpha, Z, n2);
      return;
    }
    using avx512::project_rows;
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
    if (!detail::on_avx512()) {
      using avx2::expand_rows_add;
      if (r == 8) e ? expand_rows_add<8, true>(Z, n, alpha, A, d, X, e, Y) : expand_rows_add<8, false>(Z, n, alpha, A, d, X, e, Y);
      else e ? expand_rows_add<16, true>(Z, n, alpha, A, d, X, e, Y) : expand_rows_add<16, false>(Z, n, alpha, A, d, X, e, Y);
      return;
    }
    using avx512::expand_rows_add;
    if (r == 8) e ? expand_rows_add<8, true>(Z, n, alpha, A, d, X, e, Y) : expand_rows_add<8, false>(Z, n, alpha, A, d, X, e, Y);
    else e ? expand_rows_add<16, true>(Z, n, alpha, A, d, X, e, Y) : expand_rows_add<16, false>(Z, n, alpha, A, d, X, e, Y);
    return;
  }
#endif
  (void)Z, (void)n, (void)r, (void)alpha, (void)A, (void)d, (void)X, (void)e, (void)Y;
}

/// Y += alpha Z B^T (Z n x r, B d x r, Y n x d) on rows [0, n): the branch's output product
/// (LoRA's Y += scaling Z B^T, the rank-space Y += W B^T) by expand_rows_add's kernel with B's
/// columns as the rows of A (gathered on AVX-512, transposed into panels on AVX2).
template <class T>
void expand_rows_add_transposed(const T* Z, index_t n, index_t r, T alpha, const T* B, index_t d, T* Y) {
#if HYPLORA_SIMD_DISPATCH
  if constexpr (std::is_same_v<T, float>) {
    if (!detail::on_avx512()) {
      if (r == 8) avx2::expand_rows_add<8, false, true>(Z, n, alpha, B, d, nullptr, nullptr, Y);
      else avx2::expand_rows_add<16, false, true>(Z, n, alpha, B, d, nullptr, nullptr, Y);
      return;
    }
    using avx512::expand_rows_add;
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
    if (!detail::on_avx512()) r == 8 ? avx2::quadratic_rows<8>(Z, n, G, Pa, q2) : avx2::quadratic_rows<16>(Z, n, G, Pa, q2);
    else r == 8 ? avx512::quadratic_rows<8>(Z, n, G, Pa, q2) : avx512::quadratic_rows<16>(Z, n, G, Pa, q2);
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
    if (!detail::on_avx512()) r == 8 ? avx2::rank_dots<8>(U, V, n, out) : avx2::rank_dots<16>(U, V, n, out);
    else r == 8 ? avx512::rank_dots<8>(U, V, n, out) : avx512::rank_dots<16>(U, V, n, out);
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
    if (!detail::on_avx512()) {
      if (r == 8) avx2::vjp_combine_rows<8>(Q, Za, Pa, c, h, n, dZs, M);
      else avx2::vjp_combine_rows<16>(Q, Za, Pa, c, h, n, dZs, M);
    }
    else if (r == 8) avx512::vjp_combine_rows<8>(Q, Za, Pa, c, h, n, dZs, M);
    else avx512::vjp_combine_rows<16>(Q, Za, Pa, c, h, n, dZs, M);
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
    if (!detail::on_avx512()) r == 8 ? avx2::gram_rows<8>(Z, n, G) : avx2::gram_rows<16>(Z, n, G);
    else r == 8 ? avx512::gram_rows<8>(Z, n, G) : avx512::gram_rows<16>(Z, n, G);
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
    if (!detail::on_avx512()) r == 8 ? avx2::rows_times_add<8>(Z, n, G, P) : avx2::rows_times_add<16>(Z, n, G, P);
    else r == 8 ? avx512::rows_times_add<8>(Z, n, G, P) : avx512::rows_times_add<16>(Z, n, G, P);
    return;
  }
#endif
  (void)Z, (void)n, (void)r, (void)G, (void)P;
}

}  // namespace hyplora::backend::rank_products
