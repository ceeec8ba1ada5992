#pragma once
// Median, quantiles, min and max of a benchmark's samples: one definition for every bench driver
// (each had its own median, some the upper middle sample, and two quartile rules disagreed).
#include <algorithm>
#include <chrono>
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

/// How many calls of `step` make one sample of about `target_ms`. One cold call first, untimed (its
/// allocations, page faults and cold caches made it several times a warm call, so samples of the
/// small shapes were sized too short); then warm calls, timed until they add up to a tenth of the
/// target (at least one), give the time per call.
template <class Step>
int calls_per_sample(Step&& step, double target_ms) {
  using clock = std::chrono::steady_clock;
  step();
  const auto t0 = clock::now();
  double elapsed_ms = 0;
  int calls = 0;
  do {
    step();
    ++calls;
    elapsed_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  } while (elapsed_ms < target_ms / 10);
  return std::max(1, int(target_ms / std::max(elapsed_ms / calls, 1e-6)));
}

}  // namespace hyplora::bench
