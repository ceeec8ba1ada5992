#pragma once
// Row programs: a whole adapter branch pass for short rows in one kernel. On a GPU a kernel costs a
// few microseconds however small its work; at d = 64 or 288 and a few hundred tokens the branch's
// GEMMs and row passes are all that small, so their number sets the step's time. A program does,
// for one row, what the separate kernels did for all rows:
//
//   forward   LoraForwardProgram   z = alpha_z A x (-> Z),  y += scaling B z
//             RankForwardProgram   |x|^2, a = A x (-> Za), the rank-space rows (RankForwardRows:
//                                  Pa, q2, factors, W), y += B w;  G = B^T B once per block
//   backward  LoraBackwardProgram  dz = scaling B^T dy (-> dZ),  dx += alpha_x A^T dz
//             RankBackwardProgram  q = scaling B^T dy, the VJP rows (RankVjpRows: Zc, dZs, e, K and
//                                  s terms), dx += e x + A^T dzs;  per block M_b = sum Za_i^T Zc_i
//             RankDbProgram        dB += dY^T W + B M  (M = sum of the blocks' M_b), one element of
//                                  dB per row of the program
//
// so a rank-space HypLoRA step launches as many kernels as a LoRA step (docs/adapters.md).
//
// A program is run by a backend over `rows` rows grouped into blocks (Backend::run_row_program):
//   Shared               the block's shared storage (trivially constructible)
//   block_begin(sh, b)   every thread of the block, before the rows (b: tid, threads, index,
//                        first_row, rows; b.sync() is a block barrier)
//   row(g, sh)           one row per group of lanes g (g.row, g.lane, g.width, g.valid; g.reduce(s)
//                        sums s over the group's lanes, g.sync() orders the group's memory
//                        accesses; both must be reached by every lane, also past the last row)
//   block_end(sh, b)     every thread, after all rows of the block (their writes are visible)
// Under CUDA (backend::Thrust) a group is 8-32 lanes of a warp (gpu_rows::RowGroup) and a block
// 256 threads; run_row_programs_serial below runs the same code on the host, one lane per group and
// one thread per block, so that the programs are checked against the separate passes where no GPU is
// (tests/test_backend_thrust.cpp).
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
/// registers, and one lane does the r x r product Za G, which at r = 32 (1024 FMAs per row) cost
/// more on an H200 than the GEMM and three kernels it replaced (d = 4096, 512 tokens: HypLoRA / LoRA
/// 1.61 fused, 1.28 not; at r = 8 fused was faster).
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
  HYPLORA_HOST_DEVICE void sync() const {}
};
/// One thread per block: the block of a host runner.
struct SerialBlock {
  index_t index, first_row, rows;
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
    const SerialBlock blk{b, b * rows_per_block, std::min(rows_per_block, rows - b * rows_per_block)};
    p.block_begin(sh, blk);
    for (index_t i = blk.first_row; i < blk.first_row + blk.rows; ++i) p.row(SerialGroup{i}, sh);
    p.block_end(sh, blk);
  }
}

namespace program_detail {
/// Rank at compile time (R > 0) or at run time (R = 0, r <= max_program_rank): the loops run to RA
/// and skip c >= r, so that they unroll and the per-row sums stay in registers either way.
template <index_t R>
inline constexpr index_t rank_bound = R > 0 ? R : max_program_rank;
template <index_t R>
HYPLORA_INLINE bool in_rank(index_t c, index_t r) { return R > 0 || c < r; }

/// acc[c] = sum_j M[c * ldm + j] v_j (c < r) over the row v of d values, split over the group's
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
/// Sums `parts` arrays of `count` values (consecutive in src) into dst[count], all threads of a
/// block: each of count x chunks threads sums every chunks-th array into scratch (at least
/// count x chunks values), then count threads add the chunks. Two barriers.
template <class T, class Block>
HYPLORA_INLINE void block_sum_arrays(const Block& b, const T* src, index_t parts, index_t count, T* scratch, T* dst) {
  const index_t chunks = b.threads >= count ? b.threads / count : 1;
  for (index_t t = b.tid; t < count * chunks; t += b.threads) {
    const index_t e = t % count, ch = t / count;
    T s = T(0);
    for (index_t k = ch; k < parts; k += chunks) s += src[k * count + e];
    scratch[t] = s;
  }
  b.sync();
  for (index_t e = b.tid; e < count; e += b.threads) {
    T s = T(0);
    for (index_t ch = 0; ch < chunks; ++ch) s += scratch[ch * count + e];
    dst[e] = s;
  }
  b.sync();
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
  template <class Block>
  HYPLORA_HOST_DEVICE void block_end(Shared&, const Block&) const {}
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
  template <class Block>
  HYPLORA_HOST_DEVICE void block_end(Shared&, const Block&) const {}
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

/// Rank-space forward of the radial variants, one row (see RankForwardRows for the formulas):
/// |x|^2 (-> row_n) and a = A x (-> Za) in one read of x; the rank-space rows on the group's first
/// lane with G = B^T B from the block's shared memory; then y += B w (w: the row of W).
template <class V, class T, index_t R = 0>
struct RankForwardProgram {
  const T* X; const T* A; const T* B; T* Y; T* Za;
  index_t d_in, d_out;
  RankForwardRows<V, T, R> rows;  // rows.Za == Za; rows.factor.row_n, rows.scale.W: the outputs above
  struct Shared {
    T scratch[program_block_threads];
    T G[max_program_rank * max_program_rank];
  };
  // G = B^T B (r x r): G_bc = sum_o B_ob B_oc, the d_out terms of each entry split over the
  // block's threads (block_sum_arrays over the row-chunks of B)
  template <class Block>
  HYPLORA_HOST_DEVICE void block_begin(Shared& sh, const Block& b) const {
    const index_t rr = R > 0 ? R : rows.r, count = rr * rr;
    const index_t chunks = b.threads >= count ? b.threads / count : 1;
    for (index_t t = b.tid; t < count * chunks; t += b.threads) {
      const index_t e = t % count, ch = t / count, bi = e / rr, ci = e % rr;
      T s = T(0);
      for (index_t o = ch; o < d_out; o += chunks) s += B[o * rr + bi] * B[o * rr + ci];
      sh.scratch[t] = s;
    }
    b.sync();
    for (index_t e = b.tid; e < count; e += b.threads) {
      T s = T(0);
      for (index_t ch = 0; ch < chunks; ++ch) s += sh.scratch[ch * count + e];
      sh.G[e] = s;
    }
  }
  template <class Block>
  HYPLORA_HOST_DEVICE void block_end(Shared&, const Block&) const {}
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g, Shared& sh) const {
    namespace pd = program_detail;
    const index_t rr = R > 0 ? R : rows.r;
    const index_t i = g.row_or_first();
    const T* x = X + i * d_in;
    T a[pd::rank_bound<R>];
    T xx = T(0);
    pd::rank_dots<R>(g, x, d_in, A, rr, a, &xx);
    if (g.valid && g.lane == 0) {
      rows.factor.row_n[i] = xx;
      pd::store_rank_row<R>(a, rr, T(1), Za + i * rr);
      RankForwardRows<V, T, R> f = rows;
      f.G = sh.G;
      f(i);
    }
    g.sync();  // the first lane's W row, read by every lane
    if (!g.valid) return;
    T w[pd::rank_bound<R>];
    pd::load_rank_row<R>(rows.scale.W + i * rr, rr, w);
    pd::add_rank_product<R>(g, Y + i * d_out, d_out, B, rr, w, T(1));
  }
};

/// Rank-space backward of the radial variants, one row (see RankVjpRows for the formulas):
/// q = scaling B^T dy (-> Q), the VJP rows on the first lane, dx += e x + A^T dzs (dX null: not
/// wanted); after the block's rows, M_b = sum over its rows of Za_i^T Zc_i (r x r, in
/// M_parts[b.index], for RankDbProgram).
template <class V, class T, index_t R = 0>
struct RankBackwardProgram {
  const T* X; const T* dY; T* dX; const T* A; const T* B; T* Q; T* M_parts;
  index_t d_in, d_out;
  T scaling;
  RankVjpRows<V, T, R> rows;  // rows.Q == Q; rows.Za, Zc, dZs, row_e: read below
  struct Shared {
    T unused;
  };
  template <class Block>
  HYPLORA_HOST_DEVICE void block_begin(Shared&, const Block&) const {}
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g, Shared&) const {
    namespace pd = program_detail;
    const index_t rr = R > 0 ? R : rows.r;
    const index_t i = g.row_or_first();
    T q[pd::rank_bound<R>];
    pd::transposed_rank_dots<R>(g, dY + i * d_out, d_out, B, rr, q);
    if (g.valid && g.lane == 0) {
      pd::store_rank_row<R>(q, rr, scaling, Q + i * rr);
      rows(i);
    }
    if (!dX) return;  // the same for every lane of the kernel
    g.sync();  // the first lane's dZs row and e, read by every lane
    if (!g.valid) return;
    T dz[pd::rank_bound<R>];
    pd::load_rank_row<R>(rows.dZs + i * rr, rr, dz);
    const T e = rows.row_e[i];
    const T* x = X + i * d_in;
    T* dx = dX + i * d_in;
    for (index_t j = g.lane; j < d_in; j += g.width) {
      T s = e * x[j];
      HYPLORA_UNROLL
      for (index_t c = 0; c < pd::rank_bound<R>; ++c)
        if (pd::in_rank<R>(c, rr)) s += dz[c] * A[c * d_in + j];
      dx[j] += s;
    }
  }
  template <class Block>
  HYPLORA_HOST_DEVICE void block_end(Shared&, const Block& b) const {
    const index_t rr = R > 0 ? R : rows.r, count = rr * rr;
    for (index_t e = b.tid; e < count; e += b.threads) {
      const index_t k = e / rr, j = e % rr;
      T s = T(0);
      for (index_t i = b.first_row; i < b.first_row + b.rows; ++i) s += rows.Za[i * rr + k] * rows.Zc[i * rr + j];
      M_parts[b.index * count + e] = s;
    }
  }
};

/// dB += dY^T W + B M, one element (o, c) of dB (d_out x r) per row of the program, with
/// M = sum of the `parts` r x r matrices M_parts (RankBackwardProgram) summed once per block.
/// with_dy_w false: the dY^T W term is left out (the caller ran it as a GEMM: long sums over n).
template <class T>
struct RankDbProgram {
  const T* dY; const T* W; const T* B; const T* M_parts; T* dB;
  index_t n, d_out, r, parts;
  bool with_dy_w;
  struct Shared {
    T scratch[program_block_threads];
    T M[max_program_rank * max_program_rank];
  };
  template <class Block>
  HYPLORA_HOST_DEVICE void block_begin(Shared& sh, const Block& b) const {
    program_detail::block_sum_arrays(b, M_parts, parts, r * r, sh.scratch, sh.M);
  }
  template <class Block>
  HYPLORA_HOST_DEVICE void block_end(Shared&, const Block&) const {}
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g, Shared& sh) const {
    const index_t e = g.row_or_first(), o = e / r, c = e % r;
    T s = T(0);
    if (with_dy_w && g.valid)
      for (index_t i = g.lane; i < n; i += g.width) s += dY[i * d_out + o] * W[i * r + c];
    s = g.reduce(s);
    if (!g.valid || g.lane != 0) return;
    const T* bo = B + o * r;
    for (index_t k = 0; k < r; ++k) s += bo[k] * sh.M[k * r + c];
    dB[e] += s;
  }
};

}  // namespace hyplora::adapter::kernels
