#pragma once
// Median, quantiles, min and max of a benchmark's samples: one definition for every bench driver
// (each had its own median, some the upper middle sample, and two quartile rules disagreed).
#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <vector>

namespace hyplora::bench {

/// The q-quantile (0 <= q <= 1) of sorted samples by linear interpolation between order statistics
/// at position (n - 1) q: Hyndman and Fan's type 7, the default of numpy and R. q = 0.5 is the median
/// (the mean of the middle two for an even count, as Python's statistics.median, which the peers use).
inline double sorted_quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) throw std::invalid_argument("bench quantile of no samples");
  const double h = double(sorted.size() - 1) * q;
  const std::size_t lo = std::size_t(h);
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - double(lo)) * (sorted[hi] - sorted[lo]);
}
inline double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return sorted_quantile(v, q);
}

struct Stats {
  double median, min, max;
};
/// The median, min and max of v (not empty).
inline Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {sorted_quantile(v, 0.5), v.front(), v.back()};
}

}  // namespace hyplora::bench
