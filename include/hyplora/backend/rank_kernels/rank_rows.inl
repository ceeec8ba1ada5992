// The rank-row kernels (rows of R floats: the adapters' rank space), written once and compiled for
// each vector unit: backend/rank_kernels/avx512.hpp and avx2.hpp include this file inside their own
// namespace, with
//   HYPLORA_RANK_TARGET     the unit's target attribute (always_inline included where wanted),
//   kVectorRegisters        the unit's vector registers (32 on AVX-512, 16 on AVX2),
// and RankLanes<R> specialised for the register types the unit has (RankLanes<8>, one __m256 row,
// is here: it needs AVX and FMA only; AVX-512 adds RankLanes<16>, one __m512 row, AVX2 a pair of
// __m256). Where the R x R operands do not fit in the registers (AVX2 at R = 16: 32 of its 16),
// G is read from L1 as used and M, G = Z^T Z are accumulated a block of rows per pass.
// No include guard: included once per unit, inside that unit's namespace.

/// One row of R floats in one register, with the operations the rank-row kernels below use, so that
/// each kernel is written once for every rank. (A specialisation per rank rather than a template
/// over the register type: g++ drops the vector attributes of __m256 / __m512 passed as template
/// arguments, and warns.)
template <int R>
struct RankLanes;
template <>
struct RankLanes<8> {
  using V = __m256;
  static constexpr int kRegisters = 1;  // vector registers per row
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE static V zero() { return _mm256_setzero_ps(); }
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE static V load(const float* p) { return _mm256_loadu_ps(p); }
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE static V splat(const float* p) { return _mm256_broadcast_ss(p); }
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE static V add(V a, V b) { return _mm256_add_ps(a, b); }
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  /// The sum of the 8 lanes: halves, then pairs, then the last two.
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE static float sum(V v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
};

/// The rows of an R x R matrix G (row-major) as a kernel reads them: held in registers where they fit
/// beside the kernel's own (R kRegisters + 6 <= kVectorRegisters), else loaded from G (L1) at each use.
template <int R>
struct MatrixRows {
  using L = RankLanes<R>;
  static constexpr bool kHeld = R * L::kRegisters + 6 <= kVectorRegisters;
  typename L::V held[kHeld ? R : 1];
  const float* G;
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE explicit MatrixRows(const float* g) : G(g) {
    if constexpr (kHeld)
      for (int k = 0; k < R; ++k) held[k] = L::load(G + k * R);
  }
  HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE typename L::V operator[](int k) const {
    if constexpr (kHeld) return held[k];
    else return L::load(G + k * R);
  }
};

/// How many rows of an R x R accumulator (M, G = Z^T Z) a kernel keeps in registers in one pass over
/// its input rows: all R where they fit beside 4 working registers, else the largest power-of-two
/// part that does (AVX2 at R = 16: 4 rows of 2 registers, 4 passes).
template <int R>
constexpr int accumulator_rows() {
  int p = R;
  while (p > 1 && p * RankLanes<R>::kRegisters + 4 > kVectorRegisters) p /= 2;
  return p;
}

/// p = z G for one row z of R values: R broadcasts and R FMAs in two chains (even and odd k),
/// starting from `init` (zero, or the row of an accumulated output).
template <int R>
HYPLORA_RANK_TARGET HYPLORA_ALWAYS_INLINE typename RankLanes<R>::V row_times(const float* z, const MatrixRows<R>& g,
                                                                             typename RankLanes<R>::V init) {
  using L = RankLanes<R>;
  typename L::V p0 = L::fmadd(L::splat(z), g[0], init), p1 = L::mul(L::splat(z + 1), g[1]);
  for (int k = 2; k < R; k += 2) {
    p0 = L::fmadd(L::splat(z + k), g[k], p0);
    p1 = L::fmadd(L::splat(z + k + 1), g[k + 1], p1);
  }
  return L::add(p0, p1);
}

/// Pa_i = z_i G and q2_i = z_i . Pa_i, row by row (the rows are independent, so their chains overlap).
template <int R>
HYPLORA_RANK_TARGET void quadratic_rows(const float* Z, index_t n, const float* G, float* Pa, float* q2) {
  using L = RankLanes<R>;
  const MatrixRows<R> g(G);
  for (index_t i = 0; i < n; ++i) {
    const float* z = Z + i * R;
    const typename L::V p = row_times<R>(z, g, L::zero());
    L::store(Pa + i * R, p);
    q2[i] = L::sum(L::mul(L::load(z), p));
  }
}

/// P_i += z_i G row by row (as quadratic_rows, without q2).
template <int R>
HYPLORA_RANK_TARGET void rows_times_add(const float* Z, index_t n, const float* G, float* P) {
  using L = RankLanes<R>;
  const MatrixRows<R> g(G);
  for (index_t i = 0; i < n; ++i) L::store(P + i * R, row_times<R>(Z + i * R, g, L::load(P + i * R)));
}

/// out_i = U_i . V_i for rows of R values.
template <int R>
HYPLORA_RANK_TARGET void rank_dots(const float* U, const float* V, index_t n, float* out) {
  using L = RankLanes<R>;
  for (index_t i = 0; i < n; ++i) out[i] = L::sum(L::mul(L::load(U + i * R), L::load(V + i * R)));
}

/// dZs_i = h_i Q_i + c_i Pa_i and M = sum_i c_i Za_i^T Za_i (R x R), with M's rows in accumulators
/// across the rows (one FMA each per row): all R in one pass where they fit, else
/// accumulator_rows<R>() of them per pass (dZs in the first).
template <int R>
HYPLORA_RANK_TARGET void vjp_combine_rows(const float* Q, const float* Za, const float* Pa, const float* c,
                                          const float* h, index_t n, float* dZs, float* M) {
  using L = RankLanes<R>;
  constexpr int P = accumulator_rows<R>();
  for (int k0 = 0; k0 < R; k0 += P) {
    typename L::V m[P];
    for (int k = 0; k < P; ++k) m[k] = L::zero();
    for (index_t i = 0; i < n; ++i) {
      const float* za = Za + i * R;
      const typename L::V cv = L::splat(c + i);
      const typename L::V zc = L::mul(cv, L::load(za));
      if (k0 == 0)
        L::store(dZs + i * R, L::fmadd(L::splat(h + i), L::load(Q + i * R), L::mul(cv, L::load(Pa + i * R))));
      for (int k = 0; k < P; ++k) m[k] = L::fmadd(L::splat(za + k0 + k), zc, m[k]);
    }
    for (int k = 0; k < P; ++k) L::store(M + (k0 + k) * R, m[k]);
  }
}

/// G = Z^T Z (R x R) over n rows of R values, G's rows in accumulators (one FMA each per row), P =
/// accumulator_rows<R>() of them per pass over Z. Where the unit has the registers (2 P kRegisters + 4:
/// 20 of AVX-512's 32 at R = 8), two sets of accumulators, for even and odd rows, halve the chains of
/// dependent FMAs; with 16 (AVX2) the second set would spill.
template <int R>
HYPLORA_RANK_TARGET void gram_rows(const float* Z, index_t n, float* G) {
  using L = RankLanes<R>;
  constexpr int P = accumulator_rows<R>();
  constexpr bool two_sets = 2 * P * L::kRegisters + 4 <= kVectorRegisters;
  for (int k0 = 0; k0 < R; k0 += P) {
    typename L::V g0[P], g1[P];
    for (int k = 0; k < P; ++k) g0[k] = g1[k] = L::zero();
    index_t i = 0;
    if constexpr (two_sets)
      for (; i + 1 < n; i += 2) {
        const float *z0 = Z + i * R, *z1 = z0 + R;
        const typename L::V v0 = L::load(z0), v1 = L::load(z1);
        for (int k = 0; k < P; ++k) {
          g0[k] = L::fmadd(L::splat(z0 + k0 + k), v0, g0[k]);
          g1[k] = L::fmadd(L::splat(z1 + k0 + k), v1, g1[k]);
        }
      }
    for (; i < n; ++i) {  // every row with one set; else the last row of an odd count
      const float* z0 = Z + i * R;
      const typename L::V v0 = L::load(z0);
      for (int k = 0; k < P; ++k) g0[k] = L::fmadd(L::splat(z0 + k0 + k), v0, g0[k]);
    }
    for (int k = 0; k < P; ++k) L::store(G + (k0 + k) * R, two_sets ? L::add(g0[k], g1[k]) : g0[k]);
  }
}
