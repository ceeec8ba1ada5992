#pragma once
// Row programs: a whole adapter branch pass for short rows in one kernel. On a GPU a kernel costs a
// few microseconds however small its work; at d = 64 or 288 and a few hundred tokens the branch's
// GEMMs and row passes are all that small, so their number sets the step's time. A program does,
// for one row, what separate GEMMs and passes did for all rows:
//
//   forward   LoraForwardProgram   z = alpha_z A x (-> Z),  y += scaling B z
//             RankForwardProgram   |x|^2 and a = A x in one read of x, the rank-space rows (Pa, q2,
//                                  the factors, w; RankFactorRows), y += B w;  G = B^T B per block
//   backward  LoraBackwardProgram  dz = scaling B^T dy (-> dZ),  dx += alpha_x A^T dz
//             RankBackwardProgram  q = scaling B^T dy, the VJP rows (dZs, e, the K and s terms;
//                                  RankVjpRows), dx += e x + A^T dzs, and the rows of dB_rows with
//                                  dB = dB_rows^T Za
//
// so that a rank-space HypLoRA step launches as many kernels as a LoRA step: the program and two
// GEMMs over n each way (dB, dA), with the same shapes (docs/adapters.md, "Row programs").
//
// A program is run by a backend over `rows` rows (Backend::run_row_program):
//   Shared               the block's shared storage (trivially constructible)
//   block_begin(sh, b)   every thread of a block of rows, before its rows (b.tid, b.threads;
//                        b.sync() is a block barrier)
//   row(g, sh)           one row per group of lanes g (g.row, g.lane, g.width, g.valid;
//                        g.reduce(s) sums s over the group's lanes and must be reached by every
//                        lane, also past the last row)
// Under CUDA (backend::Thrust) a group is 8-32 lanes of a warp (gpu_rows::RowGroup) and a block
// 256 threads; run_row_program_serial below runs the same code on the host, one lane per group and
// one thread per block, so that the programs are checked against the separate passes where no GPU
// is (tests/test_backend_thrust.cpp). Every lane of a group computes the row's rank-space scalars
// (the same instructions, so no lane waits for another and nothing goes through memory); the
// first lane stores them.
#include <algorithm>

#include "hyplora/adapter/row_kernels.hpp"
#include "hyplora/core/config.hpp"

#if defined(__CUDACC__)
#include "hyplora/core/gpu_rows.hpp"
#define HYPLORA_UNROLL _Pragma("unroll")
#else
#define HYPLORA_UNROLL
#endif

namespace hyplora::adapter::kernels {

/// Largest rank the programs (and the fused rank-space rows) take: a row's r sums are kept in
/// registers, and a lane does the r x r product G a on its own, which at r = 32 (1024 FMAs per
/// row) cost more on an H200 than the GEMM and three kernels it replaced (the fused rows of
/// RankForwardRows, d = 4096, 512 tokens: HypLoRA / LoRA 1.61 fused, 1.28 not; at r = 8 fused was
/// faster).
inline constexpr index_t max_program_rank = 16;
/// Threads of a block of a program (the size of the shared scratch arrays).
inline constexpr int program_block_threads = 256;

#if defined(__CUDACC__)
static_assert(program_block_threads == gpu_rows::threads_per_block, "a program's scratch holds one value per thread");
#endif

/// One lane per row: the group of a host runner.
struct SerialGroup {
  index_t row;
  static constexpr index_t lane = 0;
  static constexpr index_t width = 1;
  static constexpr bool valid = true;
  HYPLORA_HOST_DEVICE index_t row_or_first() const { return row; }
  template <class T>
  HYPLORA_HOST_DEVICE T reduce(T s) const { return s; }
};
/// One thread per block: the block of a host runner.
struct SerialBlock {
  static constexpr index_t tid = 0;
  static constexpr index_t threads = 1;
  HYPLORA_HOST_DEVICE void sync() const {}
};

/// Runs a program on the host: blocks of rows_per_block rows (OpenMP over the blocks), one lane
/// per row. Same order of work within a row as on a GPU, so that it checks the programs' indexing.
template <class P>
void run_row_program_serial(index_t rows, index_t rows_per_block, const P& p) {
  const index_t blocks = (rows + rows_per_block - 1) / rows_per_block;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (index_t b = 0; b < blocks; ++b) {
    typename P::Shared sh;
    p.block_begin(sh, SerialBlock{});
    for (index_t i = b * rows_per_block; i < std::min(rows, (b + 1) * rows_per_block); ++i) p.row(SerialGroup{i}, sh);
  }
}

namespace program_detail {
/// Rank at compile time (R > 0) or at run time (R = 0, r <= max_program_rank): the loops run to RA
/// and skip c >= r, so that they unroll and the per-row sums stay in registers either way.
template <index_t R>
inline constexpr index_t rank_bound = R > 0 ? R : max_program_rank;
template <index_t R>
HYPLORA_INLINE bool in_rank(index_t c, index_t r) { return R > 0 || c < r; }

/// acc[c] = sum_j M[c * d + j] v_j (c < r) over the row v of d values, split over the group's
/// lanes and summed over them: the r dot products a = M v of one row (M: r x d, row-major), with
/// the row's sum of squares in vv when wanted (vv non-null).
template <index_t R, class T, class Group>
HYPLORA_INLINE void rank_dots(const Group& g, const T* v, index_t d, const T* M, index_t r, T (&acc)[rank_bound<R>],
                              T* vv) {
  constexpr index_t RA = rank_bound<R>;
  HYPLORA_UNROLL
  for (index_t c = 0; c < RA; ++c) acc[c] = T(0);
  T s = T(0);
  if (g.valid) {
    for (index_t j = g.lane; j < d; j += g.width) {
      const T x = v[j];
      s += x * x;
      HYPLORA_UNROLL
      for (index_t c = 0; c < RA; ++c)
        if (in_rank<R>(c, r)) acc[c] += M[c * d + j] * x;
    }
  }
  if (vv) *vv = g.reduce(s);
  HYPLORA_UNROLL
  for (index_t c = 0; c < RA; ++c)
    if (in_rank<R>(c, r)) acc[c] = g.reduce(acc[c]);
}
/// acc[c] = sum_o dy_o B[o * r + c] (c < r): the row q = B^T dy, B d_out x r row-major.
template <index_t R, class T, class Group>
HYPLORA_INLINE void transposed_rank_dots(const Group& g, const T* dy, index_t d_out, const T* B, index_t r,
                                         T (&acc)[rank_bound<R>]) {
  constexpr index_t RA = rank_bound<R>;
  HYPLORA_UNROLL
  for (index_t c = 0; c < RA; ++c) acc[c] = T(0);
  if (g.valid) {
    for (index_t o = g.lane; o < d_out; o += g.width) {
      const T v = dy[o];
      const T* b = B + o * r;
      HYPLORA_UNROLL
      for (index_t c = 0; c < RA; ++c)
        if (in_rank<R>(c, r)) acc[c] += v * b[c];
    }
  }
  HYPLORA_UNROLL
  for (index_t c = 0; c < RA; ++c)
    if (in_rank<R>(c, r)) acc[c] = g.reduce(acc[c]);
}
/// Values of a row's lane share that a program reads ahead (prefetch_share).
inline constexpr int prefetch_values = 4;
/// out[m] = v[lane + m width] for the first prefetch_values of this lane's share of a row of n
/// values (0 beyond n, for a group past the last row, or where v is null): loads issued before a
/// program's sums, where the loop that uses them comes after stores the compiler cannot tell apart
/// from v and so could not start them early.
template <class T, class Group>
HYPLORA_INLINE void prefetch_share(const Group& g, const T* v, index_t n, T (&out)[prefetch_values]) {
  HYPLORA_UNROLL
  for (int m = 0; m < prefetch_values; ++m) {
    const index_t j = g.lane + m * g.width;
    out[m] = v && g.valid && j < n ? v[j] : T(0);
  }
}
/// w[c] = src[c] for c < r, 0 beyond (a row of r values read by every lane of the group).
template <index_t R, class T>
HYPLORA_INLINE void load_rank_row(const T* src, index_t r, T (&w)[rank_bound<R>]) {
  HYPLORA_UNROLL
  for (index_t c = 0; c < rank_bound<R>; ++c) w[c] = in_rank<R>(c, r) ? src[c] : T(0);
}
/// dst[c] = alpha w[c] for c < r (the loop unrolls: w stays in registers, also at a run-time rank).
template <index_t R, class T>
HYPLORA_INLINE void store_rank_row(const T (&w)[rank_bound<R>], index_t r, T alpha, T* dst) {
  HYPLORA_UNROLL
  for (index_t c = 0; c < rank_bound<R>; ++c)
    if (in_rank<R>(c, r)) dst[c] = alpha * w[c];
}
/// y_o += alpha (B w)_o for the row y of d_out values (B d_out x r row-major), split over the lanes.
template <index_t R, class T, class Group>
HYPLORA_INLINE void add_rank_product(const Group& g, T* y, index_t d_out, const T* B, index_t r,
                                     const T (&w)[rank_bound<R>], T alpha) {
  for (index_t o = g.lane; o < d_out; o += g.width) {
    const T* b = B + o * r;
    T s = T(0);
    HYPLORA_UNROLL
    for (index_t c = 0; c < rank_bound<R>; ++c)
      if (in_rank<R>(c, r)) s += w[c] * b[c];
    y[o] += alpha * s;
  }
}
}  // namespace program_detail

/// Forward of the LoRA-type variants without dropout, one row: z = alpha_z A x (stored in Z for the
/// backward), y += scaling B z.
template <class T, index_t R = 0>
struct LoraForwardProgram {
  const T* X; const T* A; const T* B; T* Y; T* Z;
  index_t d_in, d_out, r;
  T alpha_z, scaling;
  struct Shared {
    T unused;
  };
  template <class Block>
  HYPLORA_HOST_DEVICE void block_begin(Shared&, const Block&) const {}
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g, Shared&) const {
    namespace pd = program_detail;
    const index_t rr = R > 0 ? R : r;
    const index_t i = g.row_or_first();
    const T* x = X + i * d_in;
    T z[pd::rank_bound<R>];
    pd::rank_dots<R>(g, x, d_in, A, rr, z, static_cast<T*>(nullptr));
    if (!g.valid) return;  // after the sums: every lane takes part in them
    HYPLORA_UNROLL
    for (index_t c = 0; c < pd::rank_bound<R>; ++c) z[c] = pd::in_rank<R>(c, rr) ? alpha_z * z[c] : T(0);
    if (g.lane == 0) pd::store_rank_row<R>(z, rr, T(1), Z + i * rr);
    pd::add_rank_product<R>(g, Y + i * d_out, d_out, B, rr, z, scaling);
  }
};

/// Backward of the LoRA-type variants without dropout, one row: dz = scaling B^T dy (stored in dZ
/// for dA), dx += alpha_x A^T dz (dX null: not wanted).
template <class T, index_t R = 0>
struct LoraBackwardProgram {
  const T* dY; const T* A; const T* B; T* dZ; T* dX;
  index_t d_in, d_out, r;
  T scaling, alpha_x;
  struct Shared {
    T unused;
  };
  template <class Block>
  HYPLORA_HOST_DEVICE void block_begin(Shared&, const Block&) const {}
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g, Shared&) const {
    namespace pd = program_detail;
    const index_t rr = R > 0 ? R : r;
    const index_t i = g.row_or_first();
    T dz[pd::rank_bound<R>];
    pd::transposed_rank_dots<R>(g, dY + i * d_out, d_out, B, rr, dz);
    if (!g.valid) return;
    HYPLORA_UNROLL
    for (index_t c = 0; c < pd::rank_bound<R>; ++c) dz[c] = pd::in_rank<R>(c, rr) ? scaling * dz[c] : T(0);
    if (g.lane == 0) pd::store_rank_row<R>(dz, rr, T(1), dZ + i * rr);
    if (!dX) return;
    T* dx = dX + i * d_in;
    for (index_t j = g.lane; j < d_in; j += g.width) {
      T s = T(0);
      HYPLORA_UNROLL
      for (index_t c = 0; c < pd::rank_bound<R>; ++c)
        if (pd::in_rank<R>(c, rr)) s += dz[c] * A[c * d_in + j];
      dx[j] += alpha_x * s;
    }
  }
};

/// Rank-space forward of the radial variants, one row (the formulas of RankForwardRows):
/// |x|^2 and a = A x in one read of x; then on every lane of the group (the same instructions,
/// so no lane waits for another and nothing goes through memory) Pa = G a with G = B^T B from the
/// block's shared memory, q2 = a.Pa, the factors (RankFactorRows::row) and w = row_w a; the first
/// lane stores what the backward reads (Za, Pa, q2, n, the factors, W); y += B w.
template <class V, class T, index_t R = 0>
struct RankForwardProgram {
  const T* X; const T* A; const T* B; T* Y; T* Za; T* Pa; T* row_q2; T* W;
  index_t d_in, d_out, r;
  RankFactorRows<V, T> factor;
  struct Shared {
    T scratch[program_block_threads];
    T G[max_program_rank * max_program_rank];
  };
  // G = B^T B (r x r, symmetric): G_bc = sum_o B_ob B_oc for b <= c, the d_out terms of each
  // entry split over the block's threads (chunks of rows of B, four loads in flight per thread),
  // then the chunks added
  template <class Block>
  HYPLORA_HOST_DEVICE void block_begin(Shared& sh, const Block& b) const {
    const index_t rr = R > 0 ? R : r, count = rr * (rr + 1) / 2;
    const index_t chunks = b.threads >= count ? b.threads / count : 1;
    for (index_t t = b.tid; t < count * chunks; t += b.threads) {
      const index_t ch = t / count;
      index_t e = t % count, bi = 0;
      while (e >= rr - bi) e -= rr - bi++;  // e-th entry of the upper triangle: row bi, column bi + e
      const T* p = B + bi;
      const T* q = B + bi + e;
      T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
      index_t o = ch;
      for (; o + 3 * chunks < d_out; o += 4 * chunks) {
        s0 += p[o * rr] * q[o * rr];
        s1 += p[(o + chunks) * rr] * q[(o + chunks) * rr];
        s2 += p[(o + 2 * chunks) * rr] * q[(o + 2 * chunks) * rr];
        s3 += p[(o + 3 * chunks) * rr] * q[(o + 3 * chunks) * rr];
      }
      for (; o < d_out; o += chunks) s0 += p[o * rr] * q[o * rr];
      sh.scratch[t] = (s0 + s1) + (s2 + s3);
    }
    b.sync();
    for (index_t t = b.tid; t < count; t += b.threads) {
      index_t e = t, bi = 0;
      while (e >= rr - bi) e -= rr - bi++;
      T s = T(0);
      for (index_t ch = 0; ch < chunks; ++ch) s += sh.scratch[ch * count + t];
      sh.G[bi * rr + bi + e] = s;
      sh.G[(bi + e) * rr + bi] = s;
    }
  }
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g, Shared& sh) const {
    namespace pd = program_detail;
    constexpr index_t RA = pd::rank_bound<R>;
    const index_t rr = R > 0 ? R : r;
    const index_t i = g.row_or_first();
    T a[RA];
    T xx = T(0);
    pd::rank_dots<R>(g, X + i * d_in, d_in, A, rr, a, &xx);
    if (!g.valid) return;  // after the sums: every lane takes part in them
    T pa[RA];
    T q2 = T(0);
    HYPLORA_UNROLL
    for (index_t c = 0; c < RA; ++c) {
      T t = T(0);
      HYPLORA_UNROLL
      for (index_t b = 0; b < RA; ++b)
        if (pd::in_rank<R>(b, rr) && pd::in_rank<R>(c, rr)) t += a[b] * sh.G[b * rr + c];
      pa[c] = t;
      q2 += a[c] * t;
    }
    const bool store = g.lane == 0;
    const T row_w = factor.row(i, xx, q2, store);
    T w[RA];
    HYPLORA_UNROLL
    for (index_t c = 0; c < RA; ++c) w[c] = row_w * a[c];
    if (store) {
      pd::store_rank_row<R>(a, rr, T(1), Za + i * rr);
      pd::store_rank_row<R>(pa, rr, T(1), Pa + i * rr);
      pd::store_rank_row<R>(w, rr, T(1), W + i * rr);
      row_q2[i] = q2;
    }
    pd::add_rank_product<R>(g, Y + i * d_out, d_out, B, rr, w, T(1));
  }
};

/// Rank-space backward of the radial variants, one row (the formulas of RankVjpRows): q = scaling
/// B^T dy; on every lane zq = Za_i.q, the coefficients (RankVjpRows::coefficients) and dzs = ha q +
/// ca2 Pa_i; the first lane stores dZs and the row terms; dx += e x + A^T dzs (dX null: not
/// wanted). dB = dY^T W + B (Za^T Zc) with W_i = row_w_i Za_i and Zc_i = ca2_i Za_i is
/// sum_i (row_w_i dy_i + ca2_i B Za_i) Za_i^T: the program writes that row of d_out values
/// (dB_rows) and one GEMM of LoRA's shape, dB += dB_rows^T Za, does the rest (no r x r product).
template <class V, class T, index_t R = 0>
struct RankBackwardProgram {
  const T* X; const T* dY; T* dX; const T* A; const T* B; const T* row_w; T* dB_rows;
  index_t d_in, d_out;
  T scaling;
  RankVjpRows<V, T, R> rows;  // rows.Za, Pa, dZs and the per-row arrays (rows.Q and rows.Zc are not used)
  struct Shared {
    T unused;
  };
  template <class Block>
  HYPLORA_HOST_DEVICE void block_begin(Shared&, const Block&) const {}
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g, Shared&) const {
    namespace pd = program_detail;
    constexpr index_t RA = pd::rank_bound<R>;
    const index_t rr = R > 0 ? R : rows.r;
    const index_t i = g.row_or_first();
    const T* dy = dY + i * d_out;
    // x and dx ahead: their loop comes after the dZs and dB_rows stores (docs/adapters.md, run 15)
    T xs[pd::prefetch_values], dxs[pd::prefetch_values];
    pd::prefetch_share(g, dX ? X + i * d_in : nullptr, d_in, xs);
    pd::prefetch_share(g, dX ? dX + i * d_in : nullptr, d_in, dxs);
    T q[RA];
    pd::transposed_rank_dots<R>(g, dy, d_out, B, rr, q);
    if (!g.valid) return;
    T za[RA], pa[RA];
    pd::load_rank_row<R>(rows.Za + i * rr, rr, za);
    pd::load_rank_row<R>(rows.Pa + i * rr, rr, pa);
    T zq = T(0);
    HYPLORA_UNROLL
    for (index_t c = 0; c < RA; ++c) {
      q[c] = pd::in_rank<R>(c, rr) ? scaling * q[c] : T(0);
      zq += za[c] * q[c];
    }
    const bool store = g.lane == 0;
    const auto k = rows.coefficients(i, zq, store);
    T dz[RA];
    HYPLORA_UNROLL
    for (index_t c = 0; c < RA; ++c) dz[c] = k.ha * q[c] + k.ca2 * pa[c];
    if (store) pd::store_rank_row<R>(dz, rr, T(1), rows.dZs + i * rr);
    // dB_rows_i = row_w_i dy + ca2 B za
    const T w = row_w[i];
    T* out = dB_rows + i * d_out;
    for (index_t o = g.lane; o < d_out; o += g.width) {
      const T* b = B + o * rr;
      T s = T(0);
      HYPLORA_UNROLL
      for (index_t c = 0; c < RA; ++c)
        if (pd::in_rank<R>(c, rr)) s += b[c] * za[c];
      out[o] = w * dy[o] + k.ca2 * s;
    }
    if (!dX) return;
    const T* x = X + i * d_in;
    T* dx = dX + i * d_in;
    const auto dx_term = [&](index_t j, T xj) {  // e x_j + (A^T dzs)_j
      T s = k.e * xj;
      HYPLORA_UNROLL
      for (index_t c = 0; c < RA; ++c)
        if (pd::in_rank<R>(c, rr)) s += dz[c] * A[c * d_in + j];
      return s;
    };
    HYPLORA_UNROLL
    for (int m = 0; m < pd::prefetch_values; ++m) {
      const index_t j = g.lane + m * g.width;
      if (j < d_in) dx[j] = dxs[m] + dx_term(j, xs[m]);
    }
    for (index_t j = g.lane + pd::prefetch_values * g.width; j < d_in; j += g.width) dx[j] += dx_term(j, x[j]);
  }
};

}  // namespace hyplora::adapter::kernels
