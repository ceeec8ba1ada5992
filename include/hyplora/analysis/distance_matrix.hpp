#pragma once
// Distance matrices for the hyperbolicity analysis: from any distance callable dist(i, j) (a
// manifold's dist on stored points, a graph metric, ...) and a Euclidean fast path on row-major
// points. Output: n x n row-major std::vector<T>, zero diagonal, mirrored (exactly symmetric).
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "hyplora/core/config.hpp"

namespace hyplora::analysis {

/// D_ij = dist(i, j) for i < j, mirrored; D_ii = 0. `dist` is called once per unordered pair and
/// must return something convertible to T. With parallel = true the pairs are spread over OpenMP
/// threads (dist must then be thread-safe).
template <class T, class Dist>
std::vector<T> distance_matrix(index_t n, Dist&& dist, bool parallel = false) {
  static_assert(std::is_floating_point_v<T>, "distance_matrix needs a floating-point type");
  if (n < 0) throw std::invalid_argument("distance_matrix: negative point count");
  std::vector<T> d(std::size_t(n) * std::size_t(n), T(0));
  auto row = [&](index_t i) {
    for (index_t j = i + 1; j < n; ++j) {
      const T v = static_cast<T>(dist(i, j));
      d[std::size_t(i * n + j)] = v;
      d[std::size_t(j * n + i)] = v;
    }
  };
  if (parallel) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 8)
#endif
    for (index_t i = 0; i < n; ++i) row(i);
  } else {
    for (index_t i = 0; i < n; ++i) row(i);
  }
  return d;
}

/// Distances between the points of a manifold stored as rows of `points` (n rows of `stride`
/// scalars): D_ij = manifold.dist(x_i, x_j, dim), the signature every hyplora manifold provides
/// (dim is the stored dimension: d for Euclidean/ball, d+1 for Lorentz).
template <class T, class Manifold>
std::vector<T> manifold_distance_matrix(const Manifold& manifold, const T* points, index_t n, index_t dim,
                                        index_t stride = -1) {
  if (stride < 0) stride = dim;
  return distance_matrix<T>(
      n, [&](index_t i, index_t j) { return manifold.dist(points + i * stride, points + j * stride, dim); }, true);
}

/// Euclidean distances between rows: computed from differences (not |x|^2 + |y|^2 - 2 x.y, which
/// loses all relative accuracy for close points). Rows may be a subset: rows[k] is the row of
/// point k (nullptr: rows 0..n-1).
template <class T>
std::vector<T> euclidean_distance_matrix(const T* points, index_t n, index_t dim, const index_t* rows = nullptr) {
  static_assert(std::is_floating_point_v<T>, "euclidean_distance_matrix needs a floating-point type");
  if (n < 0 || dim < 0) throw std::invalid_argument("euclidean_distance_matrix: negative size");
  std::vector<T> d(std::size_t(n) * std::size_t(n), T(0));
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 8)
#endif
  for (index_t i = 0; i < n; ++i) {
    const T* xi = points + (rows ? rows[i] : i) * dim;
    for (index_t j = i + 1; j < n; ++j) {
      const T* xj = points + (rows ? rows[j] : j) * dim;
      T s = 0;
      for (index_t k = 0; k < dim; ++k) {
        const T diff = xi[k] - xj[k];
        s += diff * diff;
      }
      const T v = std::sqrt(s);
      d[std::size_t(i * n + j)] = v;
      d[std::size_t(j * n + i)] = v;
    }
  }
  return d;
}

}  // namespace hyplora::analysis
