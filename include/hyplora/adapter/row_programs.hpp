#pragma once
// Row programs: a whole adapter branch pass for short rows in one kernel. On a GPU a kernel costs a
// few microseconds however small its work; at d = 64 or 288 and a few hundred tokens the branch's
// GEMMs and row passes are all that small, so their number sets the step's time. A program does,
// for one row, what separate GEMMs and passes did for all rows:
//
//   forward   LoraForwardProgram   z = alpha_z A x (-> Z),  y += scaling B z
//             RankForwardProgram   |x|^2 and a = A x in one read of x; u = B a, q2 = |u|^2 and
//                                  Pa = B^T u in one read of B; the factors (RankFactorRows);
//                                  y += row_w u
//   backward  LoraBackwardProgram  dz = scaling B^T dy (-> dZ),  dx += alpha_x A^T dz
//             RankBackwardProgram  q = scaling B^T dy (the forward's per-row values read before its
//                                  sums), the VJP rows (dZs, e, the K and s terms; RankVjpRows),
//                                  dx += e x + A^T dzs, and the rows of dB_rows with
//                                  dB = dB_rows^T Za
//
// so that a rank-space HypLoRA step launches as many kernels as a LoRA step: the program and two
// GEMMs over n each way (dB, dA), with the same shapes (docs/adapters.md, "Row programs").
//
// A program is run by a backend over `rows` rows (Backend::run_row_program): its
//   row(g)   one row per group of lanes g (g.row, g.lane, g.width, g.valid; g.reduce(s) sums s
//            over the group's lanes and must be reached by every lane, also past the last row)
// Under CUDA (backend::Thrust) a group is 8-32 lanes of a warp (gpu_rows::RowGroup);
// run_row_program_serial below runs the same code on the host, one lane per group, so that the
// programs are checked against the separate passes where no GPU is (tests/test_backend_thrust.cpp).
// Every lane of a group computes the row's rank-space scalars (the same instructions, so no lane
// waits for another and nothing goes through memory); the first lane stores them.
//
// At a few hundred rows a program's kernel is bound by latency, not by bandwidth: what it costs is
// its chain of dependent steps (a load, the sums' shuffles, the scalars, the stores). So a program
// issues every load it can before its sums (the forward's per-row values, the first values of the
// lane's share of a row: prefetch_share), computes per-value terms in the pass that reads B and
// keeps them for after the sums (for_share), and has no block-wide step.
#include "hyplora/adapter/row_kernels.hpp"
#include "hyplora/core/config.hpp"

#if defined(__CUDACC__)
#define HYPLORA_UNROLL _Pragma("unroll")
#else
#define HYPLORA_UNROLL
#endif

namespace hyplora::adapter::kernels {

/// Largest rank the programs (and the fused rank-space rows) take: a row's r sums are kept in
/// registers (at r = 32 the fused rank-space rows of RankForwardRows, a lane doing the r x r
/// product G a on its own, cost more on an H200 than the GEMM and three kernels they replaced:
/// d = 4096, 512 tokens, HypLoRA / LoRA 1.61 fused, 1.28 not; at r = 8 fused was faster).
inline constexpr index_t max_program_rank = 16;

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
/// Runs a program on the host, one lane per row (OpenMP over the rows). Same order of work within
/// a row as on a GPU, so that it checks the programs' indexing; with one lane a row's share is the
/// whole row, so that for_share's kept values and its rest both run.
template <class P>
void run_row_program_serial(index_t rows, const P& p) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (index_t i = 0; i < rows; ++i) p.row(SerialGroup{i});
}

namespace program_detail {
/// Rank at compile time (R > 0) or at run time (R = 0, r <= max_program_rank): the loops run to RA
/// and skip c >= r, so that they unroll and the per-row sums stay in registers either way.
template <index_t R>
inline constexpr index_t rank_bound = R > 0 ? R : max_program_rank;
template <index_t R>
HYPLORA_INLINE bool in_rank(index_t c, index_t r) { return R > 0 || c < r; }

/// acc[c] = g.reduce(acc[c]) for c < r: a row's r sums over the group's lanes.
template <index_t R, class T, class Group>
HYPLORA_INLINE void reduce_rank_sums(const Group& g, index_t r, T (&acc)[rank_bound<R>]) {
  HYPLORA_UNROLL
  for (index_t c = 0; c < rank_bound<R>; ++c)
    if (in_rank<R>(c, r)) acc[c] = g.reduce(acc[c]);
}
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
  reduce_rank_sums<R>(g, r, acc);
}
/// acc[c] = sum_o dy_o B[o * r + c] (c < r) over this lane's share of the row: its part of the row
/// q = B^T dy (B d_out x r row-major), before reduce_rank_sums.
template <index_t R, class T, class Group>
HYPLORA_INLINE void transposed_rank_partials(const Group& g, const T* dy, index_t d_out, const T* B, index_t r,
                                             T (&acc)[rank_bound<R>]) {
  constexpr index_t RA = rank_bound<R>;
  HYPLORA_UNROLL
  for (index_t c = 0; c < RA; ++c) acc[c] = T(0);
  if (!g.valid) return;
  for (index_t o = g.lane; o < d_out; o += g.width) {
    const T v = dy[o];
    const T* b = B + o * r;
    HYPLORA_UNROLL
    for (index_t c = 0; c < RA; ++c)
      if (in_rank<R>(c, r)) acc[c] += v * b[c];
  }
}
/// acc[c] = sum_o dy_o B[o * r + c] (c < r): the row q = B^T dy, summed over the group.
template <index_t R, class T, class Group>
HYPLORA_INLINE void transposed_rank_dots(const Group& g, const T* dy, index_t d_out, const T* B, index_t r,
                                         T (&acc)[rank_bound<R>]) {
  transposed_rank_partials<R>(g, dy, d_out, B, r, acc);
  reduce_rank_sums<R>(g, r, acc);
}
/// Values of each lane's share of a row that a program holds in registers: read ahead
/// (prefetch_share), or computed in one pass and used after the sums (for_share).
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
/// f(j, m) for the lane's share of a row of n values, j = lane + m width (valid groups only): for
/// m < prefetch_values unrolled, m a constant in each call, so that f can keep a per-value term in
/// a register array indexed by m; then m = prefetch_values for the rest of the share (kept nowhere).
template <class Group, class F>
HYPLORA_INLINE void for_share(const Group& g, index_t n, F&& f) {
  if (!g.valid) return;
  HYPLORA_UNROLL
  for (int m = 0; m < prefetch_values; ++m) {
    const index_t j = g.lane + m * g.width;
    if (j < n) f(j, m);
  }
  for (index_t j = g.lane + prefetch_values * g.width; j < n; j += g.width) f(j, prefetch_values);
}
/// b.w over c < r: b a row of r values (of B, d_out x r row-major), w in registers.
template <index_t R, class T>
HYPLORA_INLINE T rank_row_dot(const T* b, index_t r, const T (&w)[rank_bound<R>]) {
  T s = T(0);
  HYPLORA_UNROLL
  for (index_t c = 0; c < rank_bound<R>; ++c)
    if (in_rank<R>(c, r)) s += b[c] * w[c];
  return s;
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
  for (index_t o = g.lane; o < d_out; o += g.width) y[o] += alpha * rank_row_dot<R>(B + o * r, r, w);
}
}  // namespace program_detail

/// Forward of the LoRA-type variants without dropout, one row: z = alpha_z A x (stored in Z for the
/// backward), y += scaling B z.
template <class T, index_t R = 0>
struct LoraForwardProgram {
  const T* X; const T* A; const T* B; T* Y; T* Z;
  index_t d_in, d_out, r;
  T alpha_z, scaling;
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g) const {
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
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g) const {
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

/// Rank-space forward of the radial variants, one row (the formulas of RankForwardRows, with
/// q2 = a.(G a) = |B a|^2 and G a = B^T (B a)): |x|^2 and a = A x in one read of x; then the lane's
/// values u_o = (B a)_o, q2 = |u|^2 and Pa = B^T u in one read of B (u kept for the first values of
/// the share); on every lane of the group the factors (RankFactorRows::row, the same instructions
/// on every lane); the first lane stores what the backward reads (Za, Pa, q2, n, the factors, W =
/// row_w Za); y += row_w u (= B W).
template <class V, class T, index_t R = 0>
struct RankForwardProgram {
  const T* X; const T* A; const T* B; T* Y; T* Za; T* Pa; T* row_q2; T* W;
  index_t d_in, d_out, r;
  RankFactorRows<V, T> factor;
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g) const {
    namespace pd = program_detail;
    constexpr index_t RA = pd::rank_bound<R>;
    constexpr int P = pd::prefetch_values;
    const index_t rr = R > 0 ? R : r;
    const index_t i = g.row_or_first();
    T* y = Y + i * d_out;
    T ys[P];
    pd::prefetch_share(g, y, d_out, ys);  // the y loop comes after the stores of Za, Pa, W
    T a[RA];
    T xx = T(0);
    pd::rank_dots<R>(g, X + i * d_in, d_in, A, rr, a, &xx);
    T u[P], pa[RA];
    T q2 = T(0);
    HYPLORA_UNROLL
    for (index_t c = 0; c < RA; ++c) pa[c] = T(0);
    pd::for_share(g, d_out, [&](index_t o, int m) {
      const T* b = B + o * rr;
      const T uo = pd::rank_row_dot<R>(b, rr, a);
      q2 += uo * uo;
      HYPLORA_UNROLL
      for (index_t c = 0; c < RA; ++c)
        if (pd::in_rank<R>(c, rr)) pa[c] += b[c] * uo;
      if (m < P) u[m] = uo;
    });
    q2 = g.reduce(q2);
    pd::reduce_rank_sums<R>(g, rr, pa);
    if (!g.valid) return;  // after the sums: every lane takes part in them
    const bool store = g.lane == 0;
    const T row_w = factor.row(i, xx, q2, store);
    if (store) {
      pd::store_rank_row<R>(a, rr, T(1), Za + i * rr);
      pd::store_rank_row<R>(pa, rr, T(1), Pa + i * rr);
      pd::store_rank_row<R>(a, rr, row_w, W + i * rr);
      row_q2[i] = q2;
    }
    pd::for_share(g, d_out, [&](index_t o, int m) {
      if (m < P)
        y[o] = ys[m] + row_w * u[m];
      else
        y[o] += row_w * pd::rank_row_dot<R>(B + o * rr, rr, a);
    });
  }
};

/// Rank-space backward of the radial variants, one row (the formulas of RankVjpRows): q = scaling
/// B^T dy, with the forward's per-row values (Za_i, Pa_i, row_w_i, RankVjpRows::inputs) read
/// before q's sums; on every lane zq = Za_i.q, the coefficients (RankVjpRows::coefficients) and
/// dzs = ha q + ca2 Pa_i; the first lane stores dZs and the row terms; dx += e x + A^T dzs (dX
/// null: not wanted).
/// dB = dY^T W + B (Za^T Zc) with W_i = row_w_i Za_i and Zc_i = ca2_i Za_i is
/// sum_i (row_w_i dy_i + ca2_i B Za_i) Za_i^T: the program writes that row of d_out values
/// (dB_rows) and one GEMM of LoRA's shape, dB += dB_rows^T Za, does the rest (no r x r product).
template <class V, class T, index_t R = 0>
struct RankBackwardProgram {
  const T* X; const T* dY; T* dX; const T* A; const T* B; const T* row_w; T* dB_rows;
  index_t d_in, d_out;
  T scaling;
  RankVjpRows<V, T, R> rows;  // rows.Za, Pa, dZs and the per-row arrays (rows.Q and rows.Zc are not used)
  template <class Group>
  HYPLORA_HOST_DEVICE void row(const Group& g) const {
    namespace pd = program_detail;
    constexpr index_t RA = pd::rank_bound<R>;
    constexpr int P = pd::prefetch_values;
    const index_t rr = R > 0 ? R : rows.r;
    const index_t i = g.row_or_first();
    const T* dy = dY + i * d_out;
    T q[RA];
    pd::transposed_rank_partials<R>(g, dy, d_out, B, rr, q);
    // What the row reads after its sums, read before them (row_or_first keeps a group past the
    // last row in bounds; not before the pass over B, where they would hold registers through
    // it): the forward's values, and x and dx, whose loop comes after the dZs and dB_rows stores
    // (docs/adapters.md, runs 15 and 16)
    T za[RA], pa[RA];
    pd::load_rank_row<R>(rows.Za + i * rr, rr, za);
    pd::load_rank_row<R>(rows.Pa + i * rr, rr, pa);
    const auto in = rows.inputs(i);
    const T w = row_w[i];
    T xs[P], dxs[P];
    pd::prefetch_share(g, dX ? X + i * d_in : nullptr, d_in, xs);
    pd::prefetch_share(g, dX ? dX + i * d_in : nullptr, d_in, dxs);
    pd::reduce_rank_sums<R>(g, rr, q);
    if (!g.valid) return;
    T zq = T(0);
    HYPLORA_UNROLL
    for (index_t c = 0; c < RA; ++c) {
      q[c] = pd::in_rank<R>(c, rr) ? scaling * q[c] : T(0);
      zq += za[c] * q[c];
    }
    const bool store = g.lane == 0;
    const auto k = rows.coefficients(i, in, zq, store);
    T dz[RA];
    HYPLORA_UNROLL
    for (index_t c = 0; c < RA; ++c) dz[c] = k.ha * q[c] + k.ca2 * pa[c];
    if (store) pd::store_rank_row<R>(dz, rr, T(1), rows.dZs + i * rr);
    // dB_rows_i = row_w_i dy + ca2 B za
    T* out = dB_rows + i * d_out;
    for (index_t o = g.lane; o < d_out; o += g.width) out[o] = w * dy[o] + k.ca2 * pd::rank_row_dot<R>(B + o * rr, rr, za);
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
    pd::for_share(g, d_in, [&](index_t j, int m) {
      if (m < P)
        dx[j] = dxs[m] + dx_term(j, xs[m]);
      else
        dx[j] += dx_term(j, x[j]);
    });
  }
};

}  // namespace hyplora::adapter::kernels
