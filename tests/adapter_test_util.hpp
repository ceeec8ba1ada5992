#pragma once
// Helpers of the adapter tests: deterministic random matrices and a central finite-difference
// gradient check of Adapter<V, T, Backend> on the CPU backend.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "hyplora/adapter/adapter.hpp"
#include "support.hpp"

namespace hyplora::test {

inline double det_uniform(std::uint64_t seed, std::uint64_t i) {  // in [-1, 1)
  return 2.0 * hyplora::adapter::uniform01(seed, 12345, i) - 1.0;
}
template <class T>
std::vector<T> random_vec(std::size_t n, std::uint64_t seed, double scale) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = T(scale * det_uniform(seed, i));
  return v;
}

/// Sets B to random values (B = 0 at init would make dA vanish) and returns the adapter's params.
template <class Ad>
void randomize_B(Ad& ad, std::uint64_t seed, double scale) {
  using T = typename Ad::scalar_type;
  auto p = ad.params_to_host();
  const auto& L = ad.layout();
  for (index_t i = 0; i < L.B_size; ++i) p[std::size_t(L.B + i)] = T(scale * det_uniform(seed, std::uint64_t(i)));
  ad.params_from_host(p);
}

}  // namespace hyplora::test
