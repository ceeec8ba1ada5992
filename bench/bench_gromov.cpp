// Benchmark: exact Gromov delta (one base point) with the blocked (max,min) kernel against the
// straightforward O(n^3) triple loop, in the same run.
//
//   bench_gromov [--quick] [--sizes 1500,5000] [--runs 5] [--naive-max 1500] [--dim 64]
//
// Points: seeded Gaussian points in R^dim, Euclidean distance matrix (float and double). Timed: the
// delta from the distance matrix (Gromov products + (max,min) kernel), median of --runs after one
// warm-up, min and max shown. The naive loop (single thread, the textbook x,y,z loop) runs on the
// full matrix up to --naive-max points; above that it runs on the first --naive-max points and its
// time is extrapolated by (n / n_sub)^3 (marked "extrapolated").
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "bench_stats.hpp"
#include "hyplora/analysis/gromov_delta.hpp"

using namespace hyplora;
using namespace hyplora::analysis;

namespace {

using hyplora::bench::Stats;

template <class F>
Stats time_runs(int runs, F&& f) {
  f();  // warm-up
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    const auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(b - a).count());
  }
  return hyplora::bench::stats(std::move(t));
}

template <class T>
std::vector<T> random_distances(index_t n, index_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<T> x(std::size_t(n * dim));
  for (auto& v : x) v = T(g(rng));
  return euclidean_distance_matrix(x.data(), n, dim);
}

template <class T>
void bench_type(const char* type, const std::vector<index_t>& sizes, int runs, index_t naive_max, index_t dim) {
  for (index_t n : sizes) {
    const auto d = random_distances<T>(n, dim, 1234 + std::uint64_t(n));
    DeltaResult<T> res;
    const Stats blocked = time_runs(runs, [&] { res = gromov_delta(d.data(), n, 0); });
    // naive on the full matrix or on the leading n_sub x n_sub block
    const index_t n_sub = std::min(n, naive_max);
    std::vector<T> sub(std::size_t(n_sub * n_sub));
    for (index_t i = 0; i < n_sub; ++i)
      for (index_t j = 0; j < n_sub; ++j) sub[std::size_t(i * n_sub + j)] = d[std::size_t(i * n + j)];
    DeltaResult<T> naive_res;
    const int naive_runs = n_sub >= 1000 ? 1 : 3;
    Stats naive = time_runs(naive_runs, [&] { naive_res = gromov_delta_naive(sub.data(), n_sub, 0); });
    const double scale = double(n) / double(n_sub);
    const double naive_est = naive.median * scale * scale * scale;
    bool agree = true;
    if (n_sub == n) agree = naive_res.delta == res.delta;
    else {
      const auto sub_blocked = gromov_delta(sub.data(), n_sub, 0);
      agree = sub_blocked.delta == naive_res.delta;
    }
    const double pairs = double(n) * double(n) * double(n);  // (min,max) pairs of the full product
    std::printf("| %s | %ld | %.4f | %.4f | %.4f | %.2f | %.3f%s (%d run%s on %ld pts) | %.0fx | %s | %.5g |\n", type,
                long(n), blocked.median, blocked.min, blocked.max, pairs / blocked.median / 1e9, naive_est,
                n_sub == n ? "" : " extrapolated", naive_runs, naive_runs > 1 ? "s" : "", long(n_sub),
                naive_est / blocked.median, agree ? "yes" : "NO", double(res.relative));
    std::fflush(stdout);
  }
}

std::vector<index_t> parse_sizes(const std::string& s) {
  std::vector<index_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(index_t(hyplora::bench::ArgReader::parse_integer("--sizes", item, 4, 100000)));
  if (v.empty()) throw hyplora::bench::ArgError("--sizes needs at least one size");
  return v;
}

}  // namespace

int run(int argc, char** argv);

int main(int argc, char** argv) {
  return hyplora::bench::guarded_main("bench_gromov", "[--quick] [--sizes N,..] [--runs R] [--naive-max N] [--dim D]",
                                      [&] { return run(argc, argv); });
}

int run(int argc, char** argv) {
  // --quick: 300 and 600 points, 3 runs, naive up to 300; flags given beside it win
  bool quick = false, sizes_given = false, runs_given = false, naive_given = false;
  std::vector<index_t> sizes = {1500, 5000};
  int runs = 5;
  index_t naive_max = 1500, dim = 64;
  std::string text;
  hyplora::bench::ArgReader args(argc, argv);
  while (args.more()) {
    if (args.flag("--quick")) quick = true;
    else if (args.value("--sizes", text)) {
      sizes = parse_sizes(text);
      sizes_given = true;
    } else if (args.integer("--runs", runs, 1, 1000)) runs_given = true;
    else if (args.integer("--naive-max", naive_max, 4, 100000)) naive_given = true;
    else if (args.integer("--dim", dim, 1, 65536)) {}
    else args.unknown();
  }
  if (quick) {
    if (!sizes_given) sizes = {300, 600};
    if (!runs_given) runs = 3;
    if (!naive_given) naive_max = 300;
  }
  using B = detail::MaxMinBlocking<float>;
  std::printf("Gromov delta, one base point; %d OpenMP thread(s); SIMD %d bytes (float: %d lanes, micro-tile %dx%d); "
              "points: Gaussian in R^%ld; median of %d runs after a warm-up\n\n",
              max_min_threads(), detail::kSimdBytes, B::W, B::MR, B::NR, long(dim), runs);
  std::printf("| type | n | blocked median s | min | max | G(min,max)/s of n^3 | naive s (1 thread) | speed-up | "
              "same delta | relative delta |\n|---|---|---|---|---|---|---|---|---|---|\n");
  bench_type<float>("float", sizes, runs, naive_max, dim);
  bench_type<double>("double", sizes, runs, naive_max, dim);
  return 0;
}
