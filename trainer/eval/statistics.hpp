#pragma once
// Statistics for the sweep (issue 9): summaries over seeds with a Student-t confidence interval,
// and paired comparisons of two variants over the same seeds (paired bootstrap, exact sign test).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hyplora::eval {

double mean(const std::vector<double>& values);         ///< throws std::invalid_argument when empty / non-finite
double sample_std(const std::vector<double>& values);   ///< sqrt(sum (x - mean)^2 / (n - 1)); needs n >= 2

/// Regularised incomplete beta I_x(a, b) (continued fraction, modified Lentz); a, b > 0, x in [0, 1].
double incomplete_beta(double a, double b, double x);
/// Student t cumulative distribution P(T <= t) with df > 0 degrees of freedom:
/// for t > 0, 1 - I_{df/(df+t^2)}(df/2, 1/2) / 2.
double student_t_cdf(double t, double df);
/// The p-quantile of Student t (p in (0,1)), by bisection on the upper tail I_x(df/2,1/2)/2 = 1 - p.
double student_t_quantile(double p, double df);

struct Summary {
  std::size_t n = 0;
  double mean = 0;
  double std = 0;      ///< sample standard deviation (NaN when n == 1)
  double ci_low = 0;   ///< mean - t_{(1+level)/2, n-1} * std / sqrt(n) (NaN when n == 1)
  double ci_high = 0;
  double level = 0.95;
};
/// Mean, sample std and the two-sided Student-t confidence interval at `level`.
Summary summarize(const std::vector<double>& values, double level = 0.95);

/// Two-sided paired bootstrap p-value for H0: mean(a - b) = 0. The differences are centred on 0
/// (the null), resampled with replacement `resamples` times with a seeded portable PRNG, and
/// p = (1 + #{|mean*| >= |observed mean|}) / (1 + resamples). Identical inputs give p = 1.
double paired_bootstrap_p_value(const std::vector<double>& a, const std::vector<double>& b,
                                std::size_t resamples = 10000, std::uint64_t seed = 1);

/// Exact two-sided sign test: ties (a == b) dropped, n = non-tied pairs, k = min(#a>b, #a<b),
/// p = min(1, 2 * sum_{i<=k} C(n,i) / 2^n); p = 1 when every pair ties.
double sign_test_p_value(const std::vector<double>& a, const std::vector<double>& b);

struct PairedComparison {
  std::size_t n = 0;
  double mean_difference = 0;  ///< mean(a - b)
  std::size_t wins = 0, losses = 0, ties = 0;  ///< a > b, a < b, a == b
  double bootstrap_p = 1;
  double sign_test_p = 1;
};
/// Both tests on the pairs (a[i], b[i]) (same seeds); a and b must have the same size >= 1.
PairedComparison compare_paired(const std::vector<double>& a, const std::vector<double>& b,
                                std::size_t resamples = 10000, std::uint64_t seed = 1);

}  // namespace hyplora::eval
