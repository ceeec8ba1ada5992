#pragma once
// Gromov delta-hyperbolicity by the four-point condition (SPEC section 4).
//
//   Gromov product at base point w:  (x|y)_w = (d(x,w) + d(y,w) - d(x,y)) / 2
//   delta_w = max_{x,y} ( max_z min((x|z)_w, (z|y)_w) - (x|y)_w )
//           = max_{x,y} ( (A (max,min) A)_xy - A_xy ),   A_xy = (x|y)_w,
//   relative delta = 2 delta / diam  (0 for a tree metric; the paper reports 0.06-0.12 for LLMs).
//
// In terms of the three pair sums of a quadruple, P1 = d(x,y)+d(z,w), P2 = d(x,z)+d(y,w),
// P3 = d(x,w)+d(y,z): min((x|z)_w,(z|y)_w) - (x|y)_w = (P1 - max(P2,P3)) / 2, so delta_w is the
// largest "(biggest sum - middle sum)/2" over quadruples containing w, and its maximum over all
// base points is the classical four-point delta (which never exceeds diam/2).
//
// The exact delta_w uses the blocked (max,min) kernel of max_min_product.hpp on the symmetric A
// (n^3/2 min/max pairs); the maximum over base points repeats it per base point (n times the cost;
// a subset of base points can be given). The sampled estimator follows the paper: at most 1500
// points per prompt (the first token always kept, as base point), mean and standard deviation over
// prompts.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "hyplora/analysis/distance_matrix.hpp"
#include "hyplora/analysis/max_min_product.hpp"
#include "hyplora/core/config.hpp"

namespace hyplora::analysis {

template <class T>
struct DeltaResult {
  T delta = 0;         // delta_w (or max over the base points tried)
  T diameter = 0;      // max_ij d(i,j)
  T relative = 0;      // 2 delta / diameter (0 when the diameter is 0)
  index_t base_point = 0;  // the base point that attained delta
  index_t n = 0;       // number of points
};

struct DeltaOptions {
  /// Largest |d_ij - d_ji| (and |d_ii|) accepted, absolute. Negative: 64 eps(T) * diameter, i.e.
  /// the rounding a distance formula evaluated in either order may make. Distances through arcosh
  /// of nearly equal points carry errors near sqrt(eps) * scale: pass a larger tolerance for them.
  double symmetry_tolerance = -1;
};

namespace detail {

template <class T>
std::string fmt(T v) {
  std::ostringstream s;
  s.precision(std::numeric_limits<T>::max_digits10);
  s << v;
  return s.str();
}

}  // namespace detail

/// Checks a rows x cols distance matrix (row-major) and returns its diameter. Throws
/// std::invalid_argument naming `what` and the problem: not square, fewer than 4 points, NaN or
/// Inf, negative entries, a distance beyond half of T's maximum, non-zero diagonal or asymmetry
/// beyond the tolerance.
template <class T>
T validate_distance_matrix(const T* d, index_t rows, index_t cols, const DeltaOptions& opt = {},
                           const std::string& what = "distance matrix") {
  static_assert(std::is_floating_point_v<T>, "distance matrices hold a floating-point type");
  if (rows != cols)
    throw std::invalid_argument(what + " is " + std::to_string(rows) + " x " + std::to_string(cols) +
                                ", not square");
  const index_t n = rows;
  if (n < 4)
    throw std::invalid_argument(what + " has " + std::to_string(n) +
                                " points; the four-point condition needs at least 4");
  if (d == nullptr) throw std::invalid_argument(what + " is a null pointer");
  T diam = 0;
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < n; ++j) {
      const T v = d[i * n + j];
      if (!std::isfinite(v))
        throw std::invalid_argument(what + " entry (" + std::to_string(i) + ", " + std::to_string(j) + ") is " +
                                    (std::isnan(v) ? "NaN" : "infinite"));
      if (v < 0)
        throw std::invalid_argument(what + " entry (" + std::to_string(i) + ", " + std::to_string(j) +
                                    ") = " + detail::fmt(v) + " is negative");
      diam = std::max(diam, v);
    }
  // A Gromov product adds two distances: beyond max/2 the sum overflows T and delta came out as inf
  // from a finite matrix (audit of 2026-11-29)
  if (diam > std::numeric_limits<T>::max() / T(2))
    throw std::invalid_argument(what + " has a distance of " + detail::fmt(diam) +
                                ", beyond half the scalar type's maximum: the Gromov products would overflow "
                                "(rescale the distances)");
  const T tol = opt.symmetry_tolerance >= 0 ? T(opt.symmetry_tolerance)
                                            : T(64) * std::numeric_limits<T>::epsilon() * diam;
  for (index_t i = 0; i < n; ++i) {
    if (d[i * n + i] > tol)
      throw std::invalid_argument(what + " diagonal entry (" + std::to_string(i) + ", " + std::to_string(i) +
                                  ") = " + detail::fmt(d[i * n + i]) + " is not zero");
    for (index_t j = i + 1; j < n; ++j)
      if (std::abs(d[i * n + j] - d[j * n + i]) > tol)
        throw std::invalid_argument(what + " is not symmetric: d(" + std::to_string(i) + ", " + std::to_string(j) +
                                    ") = " + detail::fmt(d[i * n + j]) + " but d(" + std::to_string(j) + ", " +
                                    std::to_string(i) + ") = " + detail::fmt(d[j * n + i]) +
                                    " (tolerance " + detail::fmt(tol) + ")");
  }
  return diam;
}

/// A_xy = (x|y)_w = (d(x,w) + d(y,w) - d(x,y)) / 2 from a validated matrix, symmetrised
/// ((d_ij + d_ji)/2) so that A is exactly symmetric. out: n x n.
template <class T>
void gromov_products(const T* d, index_t n, index_t w, T* out) {
  if (w < 0 || w >= n)
    throw std::invalid_argument("gromov_products: base point " + std::to_string(w) + " is outside [0, " +
                                std::to_string(n) + ")");
  auto sym = [&](index_t i, index_t j) { return i == j ? T(0) : T(0.5) * (d[i * n + j] + d[j * n + i]); };
  for (index_t i = 0; i < n; ++i) {
    const T diw = sym(i, w);
    for (index_t j = i; j < n; ++j) {
      const T v = T(0.5) * ((diw + sym(j, w)) - sym(i, j));
      out[i * n + j] = v;
      out[j * n + i] = v;
    }
  }
}

/// Exact delta_w (blocked kernel). d: n x n row-major distance matrix.
template <class T>
DeltaResult<T> gromov_delta(const T* d, index_t n, index_t base_point = 0, const DeltaOptions& opt = {}) {
  const T diam = validate_distance_matrix(d, n, n, opt);
  std::vector<T> A(std::size_t(n) * std::size_t(n));
  gromov_products(d, n, base_point, A.data());
  DeltaResult<T> r;
  r.delta = std::max(T(0), max_min_excess_symmetric(A.data(), n, n));
  r.diameter = diam;
  r.relative = diam > 0 ? T(2) * r.delta / diam : T(0);
  r.base_point = base_point;
  r.n = n;
  return r;
}

/// std::vector input: size must be n*n.
template <class T>
DeltaResult<T> gromov_delta(const std::vector<T>& d, index_t n, index_t base_point = 0, const DeltaOptions& opt = {}) {
  if (index_t(d.size()) != n * n)
    throw std::invalid_argument("distance matrix has " + std::to_string(d.size()) + " entries, expected n*n = " +
                                std::to_string(n * n));
  return gromov_delta(d.data(), n, base_point, opt);
}

/// Any 2-D matrix type with shape() and operator()(i, j) (xt::xtensor, xt::xarray, ...): copied to a
/// contiguous row-major buffer (O(n^2), against the O(n^3) delta).
template <class Matrix>
  requires requires(const Matrix& m) {
    m.shape();
    m(0, 0);
  }
auto gromov_delta(const Matrix& m, index_t base_point = 0, const DeltaOptions& opt = {}) {
  using T = std::decay_t<decltype(m(0, 0))>;
  const auto& shape = m.shape();
  if (shape.size() != 2)
    throw std::invalid_argument("distance matrix has " + std::to_string(shape.size()) + " dimensions, expected 2");
  const index_t rows = index_t(shape[0]), cols = index_t(shape[1]);
  if (rows != cols) validate_distance_matrix<T>(nullptr, rows, cols, opt);  // throws "not square"
  std::vector<T> d(std::size_t(rows) * std::size_t(cols));
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) d[std::size_t(i * cols + j)] = m(std::size_t(i), std::size_t(j));
  return gromov_delta(d.data(), rows, base_point, opt);
}

/// max over base points of delta_w: the four-point delta when base_points is empty (all n points;
/// n times the cost of one delta_w), else the maximum over the listed base points.
template <class T>
DeltaResult<T> gromov_delta_max_over_base_points(const T* d, index_t n, const std::vector<index_t>& base_points = {},
                                                 const DeltaOptions& opt = {}) {
  const T diam = validate_distance_matrix(d, n, n, opt);
  std::vector<index_t> ws = base_points;
  if (ws.empty())
    for (index_t w = 0; w < n; ++w) ws.push_back(w);
  std::vector<T> A(std::size_t(n) * std::size_t(n));
  DeltaResult<T> r;
  r.delta = -1;
  for (index_t w : ws) {
    gromov_products(d, n, w, A.data());
    const T dw = std::max(T(0), max_min_excess_symmetric(A.data(), n, n));
    if (dw > r.delta) {
      r.delta = dw;
      r.base_point = w;
    }
  }
  r.diameter = diam;
  r.relative = diam > 0 ? T(2) * r.delta / diam : T(0);
  r.n = n;
  return r;
}

/// The straightforward O(n^3) loop (single thread), for tests and the benchmark's comparison.
template <class T>
DeltaResult<T> gromov_delta_naive(const T* d, index_t n, index_t base_point = 0, const DeltaOptions& opt = {}) {
  const T diam = validate_distance_matrix(d, n, n, opt);
  std::vector<T> A(std::size_t(n) * std::size_t(n));
  gromov_products(d, n, base_point, A.data());
  T best = 0;
  for (index_t x = 0; x < n; ++x)
    for (index_t y = 0; y < n; ++y) {
      T m = -std::numeric_limits<T>::infinity();
      for (index_t z = 0; z < n; ++z) m = std::max(m, std::min(A[x * n + z], A[z * n + y]));
      best = std::max(best, m - A[x * n + y]);
    }
  DeltaResult<T> r;
  r.delta = best;
  r.diameter = diam;
  r.relative = diam > 0 ? T(2) * best / diam : T(0);
  r.base_point = base_point;
  r.n = n;
  return r;
}

/// The four-point delta by enumerating quadruples, O(n^4): max over {x,y,z,w} of
/// (largest pair sum - middle pair sum) / 2. For tests on small metrics.
template <class T>
T four_point_delta_bruteforce(const T* d, index_t n) {
  T best = 0;
  for (index_t x = 0; x < n; ++x)
    for (index_t y = x + 1; y < n; ++y)
      for (index_t z = y + 1; z < n; ++z)
        for (index_t w = z + 1; w < n; ++w) {
          T s[3] = {d[x * n + y] + d[z * n + w], d[x * n + z] + d[y * n + w], d[x * n + w] + d[y * n + z]};
          std::sort(s, s + 3);
          best = std::max(best, (s[2] - s[1]) / T(2));
        }
  return best;
}

// ---- the paper's sampled estimator -----------------------------------------------------------------

struct SampledDeltaOptions {
  index_t max_points = 1500;  // points per prompt kept (the first one always: it is the base point)
  std::uint64_t seed = 0;     // sampling of the other points when a prompt is longer
};

/// Rows used for one prompt of n points: 0 first, then (if n > max_points) max_points-1 of
/// 1..n-1 drawn uniformly without replacement, in increasing order.
inline std::vector<index_t> sample_prompt_rows(index_t n, index_t max_points, std::mt19937_64& rng) {
  if (max_points < 4) throw std::invalid_argument("sampled delta: max_points must be at least 4");
  std::vector<index_t> rows(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) rows[std::size_t(i)] = i;
  if (n <= max_points) return rows;
  for (index_t k = 1; k < max_points; ++k) {  // partial Fisher-Yates over rows[1..n)
    std::uniform_int_distribution<index_t> pick(k, n - 1);
    std::swap(rows[std::size_t(k)], rows[std::size_t(pick(rng))]);
  }
  rows.resize(std::size_t(max_points));
  std::sort(rows.begin() + 1, rows.end());
  return rows;
}

/// delta of one prompt's Euclidean embeddings (n rows of dim scalars, row-major), first token as
/// base point, at most opt.max_points of them.
template <class T>
DeltaResult<T> prompt_delta(const T* embeddings, index_t n, index_t dim, const SampledDeltaOptions& opt,
                            std::mt19937_64& rng) {
  if (n < 4)
    throw std::invalid_argument("prompt_delta: a prompt of " + std::to_string(n) +
                                " tokens is too short; the four-point condition needs at least 4");
  const auto rows = sample_prompt_rows(n, opt.max_points, rng);
  const auto d = euclidean_distance_matrix(embeddings, index_t(rows.size()), dim, rows.data());
  return gromov_delta(d.data(), index_t(rows.size()), 0);
}

template <class T>
struct DeltaSummary {
  index_t count = 0;
  T mean_delta = 0, std_delta = 0;        // sample standard deviation (n-1); 0 for one prompt
  T mean_relative = 0, std_relative = 0;
  T min_relative = 0, max_relative = 0;
};

template <class T>
DeltaSummary<T> summarize_deltas(const std::vector<DeltaResult<T>>& results) {
  DeltaSummary<T> s;
  s.count = index_t(results.size());
  if (results.empty()) return s;
  double md = 0, mr = 0;
  for (const auto& r : results) {
    md += double(r.delta);
    mr += double(r.relative);
  }
  md /= double(results.size());
  mr /= double(results.size());
  double vd = 0, vr = 0;
  s.min_relative = results.front().relative;
  s.max_relative = results.front().relative;
  for (const auto& r : results) {
    vd += (double(r.delta) - md) * (double(r.delta) - md);
    vr += (double(r.relative) - mr) * (double(r.relative) - mr);
    s.min_relative = std::min(s.min_relative, r.relative);
    s.max_relative = std::max(s.max_relative, r.relative);
  }
  const double denom = results.size() > 1 ? double(results.size() - 1) : 1.0;
  s.mean_delta = T(md);
  s.mean_relative = T(mr);
  s.std_delta = T(std::sqrt(vd / denom));
  s.std_relative = T(std::sqrt(vr / denom));
  return s;
}

}  // namespace hyplora::analysis
