#pragma once
// Row functors of the adapter: one definition, run by backend::Cpu (OpenMP loop) and by
// backend::Thrust (thrust::for_each on the host system, kernels of its own under CUDA). Each works on row i of
// row-major matrices. Dropout masks are recomputed from (seed, stream, index), never stored.
#include <cstdint>
#include <type_traits>

#include "hyplora/adapter/variants.hpp"
#include "hyplora/core/config.hpp"

namespace hyplora::adapter::kernels {

/// Mask and scale settings of the branch input v = dropout(x) / s.
template <class T>
struct InputMap {
  T inv_s = T(1);
  T p = T(0);              // dropout probability, 0 when inactive
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;
  HYPLORA_INLINE T mult(index_t i, index_t j, index_t d) const {
    return inv_s * dropout_multiplier<T>(seed, stream, std::uint64_t(i) * std::uint64_t(d) + std::uint64_t(j), p);
  }
  HYPLORA_INLINE T mask(index_t i, index_t j, index_t d) const {
    return dropout_multiplier<T>(seed, stream, std::uint64_t(i) * std::uint64_t(d) + std::uint64_t(j), p);
  }
};

/// U = dropout(X) (no scale; the scale is folded into the GEMM alpha for lora-type variants).
template <class T>
struct DropoutRows {
  const T* X; T* U; index_t d; InputMap<T> in;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const T* x = X + i * d; T* u = U + i * d;
    for (index_t j = 0; j < d; ++j) u[j] = x[j] * in.mask(i, j, d);
  }
};

/// dX += inv_s * mask * dU.
template <class T>
struct MaskedAddRows {
  const T* dU; T* dX; index_t d; InputMap<T> in;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const T* g = dU + i * d; T* o = dX + i * d;
    for (index_t j = 0; j < d; ++j) o[j] += in.mult(i, j, d) * g[j];
  }
};

/// out[i] = coeff * <A_i, B_i> (row dot products, for the scale gradient of lora_scaled).
template <class T>
struct RowDotRows {
  const T* A; const T* B; T* out; index_t d; T coeff;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const { out[i] = coeff * dot(A + i * d, B + i * d, d); }
};

/// |a| with a_j = at(j), j < d, for a plain sum of squares n2 that overflowed: M sqrt((a/M).(a/M)) with
/// M = max |a_j|; n2 itself (Inf or NaN) where an entry is infinite, NaN where one is NaN.
template <class T, class At>
HYPLORA_INLINE T rescued_norm(const At& at, index_t d, T n2) {
  T M = T(0);
  for (index_t j = 0; j < d; ++j) M = math::abs(at(j)) > M ? math::abs(at(j)) : M;
  if (!(M <= Constants<T>::max_value())) return n2;  // NaN or Inf entries: not a norm to rescue
  const T inv = T(1) / M;
  T s = T(0);
  for (index_t j = 0; j < d; ++j) s += (at(j) * inv) * (at(j) * inv);
  return M * std::sqrt(s);
}
/// |y| without overflow of the sum of squares (the lower map's input reaches sinh(t) of the lift,
/// up to float's range; the lift's input |x| may exceed sqrt(max) too): sqrt(y.y), or where that
/// overflows, rescued_norm.
template <class T>
HYPLORA_INLINE T row_norm(const T* y, index_t d) {
  const T n2 = dot(y, y, d);
  if (n2 <= Constants<T>::max_value()) return std::sqrt(n2);
  return rescued_norm([&](index_t j) { return y[j]; }, d, n2);
}

/// Lift: v = x * mask / s, U = f(|v|) v.
template <class V, class T>
struct LiftRows {
  const T* X; T* U; index_t d; InputMap<T> in; T K; MapSettings<T> ms;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const T* x = X + i * d; T* u = U + i * d;
    T n;
    if (in.p > T(0)) {
      T n2 = T(0);
      for (index_t j = 0; j < d; ++j) { u[j] = x[j] * in.mult(i, j, d); n2 += u[j] * u[j]; }
      n = n2 <= Constants<T>::max_value() ? std::sqrt(n2) : row_norm(u, d);
    } else {  // no dropout: plain loops the compiler vectorises
      const T xx = dot(x, x, d);
      n = xx <= Constants<T>::max_value() ? std::sqrt(xx * in.inv_s * in.inv_s) : row_norm(x, d) * in.inv_s;
    }
    const RadialFactor<T> r = V::lift(n, K, ms);
    if (in.p > T(0)) {
      for (index_t j = 0; j < d; ++j) u[j] *= r.f;
    } else {
      const T a = r.f * in.inv_s;
      for (index_t j = 0; j < d; ++j) u[j] = a * x[j];
    }
  }
};

/// VJP of the lift given dU: dX += mask/s * (f dU + f'(n) (v.dU)/n v); per-row dK and ds.
template <class V, class T>
struct LiftVjpRows {
  const T* X; const T* dU; T* dX; T* row_K; T* row_s; index_t d; InputMap<T> in; T K; MapSettings<T> ms;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const T* x = X + i * d; const T* g = dU + i * d;
    T n2 = T(0), vg = T(0);
    const bool drop = in.p > T(0);
    if (drop) {
      for (index_t j = 0; j < d; ++j) { const T v = x[j] * in.mult(i, j, d); n2 += v * v; vg += v * g[j]; }
    } else {
      T xx = T(0), xg = T(0);
      HYPLORA_SIMD_PRAGMA(omp simd reduction(+ : xx, xg))
      for (index_t j = 0; j < d; ++j) { xx += x[j] * x[j]; xg += x[j] * g[j]; }
      n2 = xx * in.inv_s * in.inv_s;
      vg = xg * in.inv_s;
    }
    // |v|^2 beyond T's range (|x| > ~1e19 in float): the norm rescaled, as the forward's LiftRows
    const bool n2_in_range = n2 <= Constants<T>::max_value();
    const T n = n2_in_range ? std::sqrt(n2)
                : drop      ? rescued_norm([&](index_t j) { return x[j] * in.mult(i, j, d); }, d, n2)
                            : row_norm(x, d) * in.inv_s;
    const RadialFactor<T> r = V::lift(n, K, ms);
    const T c = n > Constants<T>::min_norm() ? (r.ndf / n) * (vg / n) : T(0);
    const T cn2 = n2_in_range ? c * n2 : r.ndf * vg;  // c n^2 = (n f'(n)) (v.g)
    // dv = f g + c v;  dx = mult * dv;  ds = -(1/s) v.dv = -(1/s) (f vg + c n^2)
    if (dX) {
      T* o = dX + i * d;
      if (drop) {
        for (index_t j = 0; j < d; ++j) {
          const T m = in.mult(i, j, d);
          o[j] += m * (r.f * g[j] + c * x[j] * m);
        }
      } else {
        const T a = in.inv_s * r.f, b = c * in.inv_s * in.inv_s;
        for (index_t j = 0; j < d; ++j) o[j] += a * g[j] + b * x[j];
      }
    }
    row_K[i] += r.df_dK * vg;
    row_s[i] = -in.inv_s * (r.f * vg + cn2);
  }
};

/// Lower: Y += scale * f(|yb|) yb.
template <class V, class T>
struct LowerRows {
  const T* Yb; T* Y; index_t d; T scale; T K; MapSettings<T> ms;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const T* y = Yb + i * d; T* o = Y + i * d;
    const T n = row_norm(y, d);
    const T a = scale * V::lower(n, K, ms).f;
    for (index_t j = 0; j < d; ++j) o[j] += a * y[j];
  }
};

/// VJP of the lower map with g = scale * dY: dYb = f g + (n f'(n)) (yb.g)/n^2 yb; row_K = df/dK (yb.g).
template <class V, class T>
struct LowerVjpRows {
  const T* Yb; const T* dY; T* dYb; T* row_K; index_t d; T scale; T K; MapSettings<T> ms;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const T* y = Yb + i * d; const T* g = dY + i * d; T* o = dYb + i * d;
    const T n = row_norm(y, d);
    const T yg = scale * dot(y, g, d);
    const RadialFactor<T> r = V::lower(n, K, ms);
    // (n f'(n)) (y.g)/n^2 y = [n f'(n) (y.g)/n] (y/n): the bracket has the size of f |g|, while
    // f'(n)/n itself (~ log(n)/n^3) leaves float's range for |y| > ~1e13
    const bool radial = n > Constants<T>::min_norm();
    const T c = radial ? r.ndf * (yg / n) : T(0), inv_n = radial ? T(1) / n : T(0);
    const T fs = r.f * scale;
    for (index_t j = 0; j < d; ++j) o[j] = fs * g[j] + c * (y[j] * inv_n);
    row_K[i] = r.df_dK * yg;
  }
};

// ---- rank-space evaluation of the radial variants (no dropout) --------------------------------
// Every lift and lower map is radial, so the d-sized intermediate rows never need to exist:
//   lift:  u = f(n) v, v = x/s, n = |v|        =>  z = A u = (f(n)/s) (A x)       (a = A x from one GEMM)
//   lower: Delta = h(m) y, y = B z, m = |y|    =>  m^2 = z^T G z with G = B^T B (r x r),
//                                                   Delta = (h(m) z) B^T          (one GEMM into Y)
// so HypLoRA costs LoRA's GEMMs plus one pass over X for the norms (and one more in backward).

/// The factors of all rows are stored as three arrays of n at p, p + n, p + 2n: f, the radial
/// coefficient the backward multiplies by (RankFactorRows: f'(n)/n for the lift, m h'(m) for the
/// lower map; 0 where the norm is at or below min_norm and the radial VJP term vanishes) and
/// df/dK. Consecutive rows are contiguous (no strided stores in the factor pass), and the divisions
/// but one (RankVjpRows) are done there, vectorised, not in the backward's row loop.
template <class T>
HYPLORA_INLINE void store_factor(T* p, index_t i, index_t n, const RadialFactor<T>& r, T radial) {
  p[i] = r.f;
  p[n + i] = radial;
  p[2 * n + i] = r.df_dK;
}
/// The stored factor of row i: f, the radial coefficient (store_factor), df/dK.
template <class T>
struct RowFactor {
  T f, radial, df_dK;
};
template <class T>
HYPLORA_INLINE RowFactor<T> load_factor(const T* p, index_t i, index_t n) {
  return {p[i], p[n + i], p[2 * n + i]};
}

// The forward in passes, so that the transcendental part (pass 2) reads no row data, only two
// scalars per row (Backend::for_rows_simd; vectorised where a variant's factors have no branch):
//   1. Backend::row_dots: |x|^2 and q2 = a.(G a)  (a = Za row = A x, Pa row = G a: Za G from one GEMM)
//   2. RankFactorRows:  n = |x|/s, lift factor f(n); z = (f/s) a, so m = |B z| = (f/s) sqrt(q2); lower factor h(m)
//   3. RankScaleRows:   W = scale h(m) z = (scale h f/s) Za   (z itself is not stored)
// (Where a backend sets fuse_rank_rows (CUDA), RankForwardRows does Za G, q2, 2 and 3 per row in one call.)
// Every factor is stored with its derivatives: the backward evaluates no transcendental function.

/// Pass 2 for row i: n = |x|/s (row_n holds |x|^2 on entry and n on return), factors (3 per map,
/// SoA over nrows rows) and the row scale of W = scale h(m) z = row_w Za (row_w = scale h f/s).
/// The radial coefficients stored for the backward (RankVjpRows):
///   lift   f'(n)/n = (n f'(n)) / n^2
///   lower  m h'(m)                              (a = f/s, m = a sqrt(q2))
/// The backward needs m h'(m) zq and c a^2 = (m h'(m) / q2) a zq (RankVjpRows), each of its own size.
/// h'(m)/m alone (~ log(m)/m^3) leaves float's range once m > ~1e13 (|x|/(s sqrtK) > ~35),
/// and so did (m h'(m))/q2 once m > ~1e13 through B (|B A u| ~1e14 in float): multiplied back by q2
/// it gave m h'(m) zq 2-40 times too large (dX, dA, dB wrong; audit of 2026-11-29).
template <class V, class T>
struct RankFactorRows {
  T* row_n; const T* row_q2; T* lift_factor; T* lower_factor; T* row_w;
  index_t nrows; T inv_s; T scale; T K; MapSettings<T> ms;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const { row(i, row_n[i], row_q2[i], true); }
  /// Row i from its |x|^2 and q2; returns the row scale of W. store: write n, the factors and the
  /// row scale (a row program computes a row on every lane of its group and stores from one).
  HYPLORA_HOST_DEVICE T row(index_t i, T x2, T q2_raw, bool store) const {
    const T n = std::sqrt(x2) * inv_s;
    const RadialFactor<T> li = V::lift(n, K, ms);
    const T a = li.f * inv_s;
    const T q2 = q2_raw > T(0) ? q2_raw : T(0);  // rounding can make a.(G a) slightly negative near 0
    const T m = a * std::sqrt(q2);
    const RadialFactor<T> lo = V::lower(m, K, ms);
    const T tiny = Constants<T>::min_norm();
    const T w = scale * lo.f * a;
    if (store) {
      row_n[i] = n;
      store_factor(lift_factor, i, nrows, li, n > tiny ? (li.ndf / n) / n : T(0));
      store_factor(lower_factor, i, nrows, lo, m > tiny ? lo.ndf : T(0));
      row_w[i] = w;
    }
    return w;
  }
};
/// Pass 3 for row i: W = row_w Za (= scale h(m) z; z = (f/s) Za itself is never stored: the
/// backward works on Za). R > 0: the rank as a compile-time constant (R == r; the loop over it
/// unrolls), R = 0: the run-time r (kernels::with_rank chooses).
template <class T, index_t R = 0>
struct RankScaleRows {
  const T* Za; const T* row_w; T* W; index_t r;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const index_t rr = R > 0 ? R : r;
    const T w = row_w[i];
    const T* za = Za + i * rr;
    T* wi = W + i * rr;
    HYPLORA_SIMD_PRAGMA(omp simd)  // W does not alias Za (g++ cannot tell)
    for (index_t j = 0; j < rr; ++j) wi[j] = w * za[j];
  }
};

/// The rank row of the VJP from its two coefficients: zc = ca2 za (Zc_i, for M = Za^T Zc) and
/// dz = ha q + ca2 pa (dZs_i), rr values (RankVjpRows and the CPU's three-pass RankVjpCombineRows).
template <class T>
HYPLORA_INLINE void combine_rank_row(const T* q, const T* za, const T* pa, T ca2, T ha, T* zc, T* dz, index_t rr) {
  HYPLORA_SIMD_PRAGMA(omp simd)  // the outputs do not alias the inputs (g++ cannot tell)
  for (index_t j = 0; j < rr; ++j) {
    zc[j] = ca2 * za[j];
    dz[j] = ha * q[j] + ca2 * pa[j];
  }
}

/// Backward for row i, given q = B^T (scale dY_i) (row of Q). With z = a Za_i (a = f/s), y = B z and
/// G z = a Pa_i (Pa = Za G and q2 = Za_i.Pa_i from the forward):
///   lower VJP:  yg = y.g = z.q = a (Za_i.q),  c = (h'(m)/m) yg,  dy = h g + c y
///               => dz = B^T dy = h q + c G z = h q + c a Pa_i;
///                  dB += dy z^T = h g z^T + c B z z^T (the first term from the forward's
///                  W = scale h z, the second as B (Za^T Zc) with Zc_i = c a^2 Za_i)
///   lift VJP:   v.du = (A v).dz = (a/s) Za_i.dz = (1/s) (h Za_i.q + c a q2)   (no second dot)
///               c2 = (f'(n)/n) (v.du)
///               => dZs = (f/s) dz (dA += dZs^T X, dX += dZs A),  dX += (c2/s^2) x  (row_e = c2/s^2)
///   row_K = h_K yg + f_K (v.du);   row_s = -(1/s) (f v.du + c2 n^2)   (d/ds of v = x/s)
/// c enters only as c a q2 = m h'(m) (Za_i.q) and c a^2 = (m h'(m) / q2) a (Za_i.q), with m h'(m) as
/// stored by the forward (RankFactorRows: in range where h'(m)/m is not). One dot of length r per
/// row; the rest are per-row scalars (one division, by q2) and one loop without a reduction.
/// R: the rank at compile time, or 0 (as RankScaleRows).
template <class V, class T, index_t R = 0>
struct RankVjpRows {
  const T* Q; const T* Za; const T* Pa; const T* row_q2; const T* row_n; const T* lift_factor; const T* lower_factor;
  T* Zc; T* dZs; T* row_e; T* row_K; T* row_s; index_t r; index_t nrows; T inv_s;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const index_t rr = R > 0 ? R : r;
    const T* q = Q + i * rr; const T* za = Za + i * rr; const T* pa = Pa + i * rr;
    const Coefficients k = coefficients(i, dot(za, q, rr), true);
    combine_rank_row(q, za, pa, k.ca2, k.ha, Zc + i * rr, dZs + i * rr, rr);
  }
  /// Zc_i = ca2 Za_i,  dZs_i = ha q + ca2 Pa_i;  e: row_e[i]
  struct Coefficients {
    T ca2, ha, e;
  };
  /// What coefficients reads of row i: the forward's per-row values (a row program loads them
  /// before its sums, so that their latency overlaps the sums').
  struct Inputs {
    T n, q2;
    RowFactor<T> lo, li;  // lo.radial = m h'(m),  li.radial = f'(n)/n
  };
  HYPLORA_HOST_DEVICE Inputs inputs(index_t i) const {
    return {row_n[i], row_q2[i], load_factor(lower_factor, i, nrows), load_factor(lift_factor, i, nrows)};
  }
  /// The per-row scalars of row i from zq = Za_i.q; store: write row_e, row_K and row_s (a row
  /// program computes a row on every lane of its group and stores from one).
  HYPLORA_HOST_DEVICE Coefficients coefficients(index_t i, T zq, bool store) const {
    return coefficients(i, inputs(i), zq, store);
  }
  HYPLORA_HOST_DEVICE Coefficients coefficients(index_t i, const Inputs& in, T zq, bool store) const {
    const RowFactor<T>& lo = in.lo;
    const RowFactor<T>& li = in.li;
    const T a = li.f * inv_s;
    const T yg = a * zq;
    // lo.radial = m h'(m): (h + m h') zq and c a^2 = (m h'(m) / q2) a zq (0 where m <= min_norm)
    const T vdu = inv_s * zq * (lo.f + lo.radial);
    // (zq / q2 first: m h'(m) / q2 alone is below float's normal range once m > ~1e13, while
    // zq / q2 ~ 1/|B| and the product are not)
    const T ca2 = in.q2 > T(0) ? lo.radial * (zq / in.q2) * a : T(0);
    const T c2 = li.radial * vdu;
    const T e = c2 * inv_s * inv_s;
    if (store) {
      row_e[i] = e;
      row_K[i] = lo.df_dK * yg + li.df_dK * vdu;
      row_s[i] = -inv_s * (li.f * vdu + c2 * in.n * in.n);
    }
    return {ca2, lo.f * a, e};
  }
};

/// RankVjpRows in three passes, for the CPU (Backend::for_rows_simd vectorises the middle one across
/// rows; the per-row functor above ran scalar, 3.3 us for 512 rows at r = 8):
///   1. zq_i = Za_i . q_i                        (Backend::row_dots or the CPU's rank kernel)
///   2. RankVjpScalars: the coefficients of row i from zq_i (row_e, row_K, row_s; ca2 and ha kept)
///   3. RankVjpCombineRows: Zc_i = ca2 Za_i,  dZs_i = ha q_i + ca2 Pa_i
template <class V, class T, index_t R = 0>
struct RankVjpScalars {
  RankVjpRows<V, T, R> rows;
  const T* zq; T* ca2; T* ha;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const auto k = rows.coefficients(i, zq[i], true);
    ca2[i] = k.ca2;
    ha[i] = k.ha;
  }
};
template <class T, index_t R = 0>
struct RankVjpCombineRows {
  const T* Q; const T* Za; const T* Pa; const T* ca2; const T* ha; T* Zc; T* dZs; index_t r;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const index_t rr = R > 0 ? R : r;
    combine_rank_row(Q + i * rr, Za + i * rr, Pa + i * rr, ca2[i], ha[i], Zc + i * rr, dZs + i * rr, rr);
  }
};

/// f(std::integral_constant<index_t, R>{}) with R = r for the common LoRA ranks 8, 16 and 32 (the
/// row functors' loops over the rank unroll), R = 0 (run-time rank) for the others. With the other
/// changes of docs/adapters.md run 5 the CPU's VJP rows at d = 64, 512 tokens went from 13.7 to 6.9 us.
template <class F>
void with_rank(index_t r, F&& f) {
  switch (r) {
    case 8: f(std::integral_constant<index_t, 8>{}); return;
    case 16: f(std::integral_constant<index_t, 16>{}); return;
    case 32: f(std::integral_constant<index_t, 32>{}); return;
    default: f(std::integral_constant<index_t, 0>{}); return;
  }
}

/// The rank-space forward after |x|^2 in one call per row, for backends where a kernel costs more
/// than its arithmetic (Backend::fuse_rank_rows: CUDA; the CPU keeps the passes apart so that the
/// factor pass vectorises): Pa row = (Za G)_i, q2 = Za_i . Pa_i, then RankFactorRows and
/// RankScaleRows of row i. Four kernels (the Za G GEMM, q2, factors, scale) become one.
template <class V, class T, index_t R = 0>
struct RankForwardRows {
  const T* Za; const T* G; T* Pa; T* row_q2; index_t r;
  RankFactorRows<V, T> factor;
  RankScaleRows<T, R> scale;
  HYPLORA_HOST_DEVICE void operator()(index_t i) const {
    const index_t rr = R > 0 ? R : r;
    const T* za = Za + i * rr;
    T* pa = Pa + i * rr;
    T q2 = T(0);
    for (index_t c = 0; c < rr; ++c) {
      T s = T(0);
      for (index_t b = 0; b < rr; ++b) s += za[b] * G[b * rr + c];
      pa[c] = s;
      q2 += za[c] * s;
    }
    row_q2[i] = q2;
    factor(i);
    scale(i);
  }
};

/// db[j] += sum_i dY[i, j] (one "row" per output column).
template <class T>
struct ColumnSum {
  const T* dY; T* db; index_t n; index_t d;
  HYPLORA_HOST_DEVICE void operator()(index_t j) const {
    T s = T(0);
    for (index_t i = 0; i < n; ++i) s += dY[i * d + j];
    db[j] += s;
  }
};

}  // namespace hyplora::adapter::kernels
