#pragma once
// Median, min and max of a benchmark's samples (shared by the bench drivers that report them).
#include <algorithm>
#include <cstddef>
#include <vector>

namespace hyplora::bench {

struct Stats {
  double median, min, max;
};
/// The median (mean of the middle two for an even count), min and max of v (not empty).
inline Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t k = v.size();
  return {k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]), v.front(), v.back()};
}

}  // namespace hyplora::bench
