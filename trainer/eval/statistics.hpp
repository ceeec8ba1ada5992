#pragma once
// Statistics for the sweep (issue 9): summaries over seeds with a Student-t confidence interval,
// and paired comparisons of two variants over the same seeds (exact paired permutation test, exact
// sign test, Holm's adjustment for a family of comparisons).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hyplora::eval {

double mean(const std::vector<double>& values);         ///< throws std::invalid_argument when empty / non-finite
/// The mean as a sum of deviations from the first finite value (equal values give that value exactly),
/// without checks: NaN for none, NaN and infinite values pass through. mean() is it after the checks.
double shifted_mean(const std::vector<double>& values);
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

/// Largest number of pairs whose sign flips paired_permutation_p_value enumerates (2^20 of them).
inline constexpr std::size_t kExactPermutationMax = 20;

/// Two-sided paired permutation (sign-flip) p-value for H0: each difference d_i = a_i - b_i is as
/// likely positive as negative (the two arms exchangeable within a seed). Under H0 every sign vector
/// s of the |d_i| is equally likely, so p = #{s : |sum s_i |d_i|| >= |sum d_i|} / 2^n, enumerated
/// exactly for n <= kExactPermutationMax, else over `resamples` seeded random sign vectors
/// (p = (1 + hits) / (1 + resamples)). The smallest attainable p is 2 / 2^n: 0.0625 with 5 seeds,
/// 0.25 with 3, so few seeds cannot show a difference however large. p = 1 when every pair ties.
/// (It replaces a bootstrap of the centred differences, whose p fell to its floor 1/(R+1) whenever
/// all differences had one sign: far too small at 3-5 seeds.)
double paired_permutation_p_value(const std::vector<double>& a, const std::vector<double>& b,
                                  std::size_t resamples = 100000, std::uint64_t seed = 1);

/// Holm's step-down adjustment of a family of p-values (any dependence): with p sorted ascending,
/// adjusted_(k) = max over j <= k of min(1, (m - j) p_(j)), j from 0; returned in the input order.
std::vector<double> holm_adjust(const std::vector<double>& p);

/// Exact two-sided sign test: ties (a == b) dropped, n = non-tied pairs, k = min(#a>b, #a<b),
/// p = min(1, 2 * sum_{i<=k} C(n,i) / 2^n); p = 1 when every pair ties.
double sign_test_p_value(const std::vector<double>& a, const std::vector<double>& b);

struct PairedComparison {
  std::size_t n = 0;
  double mean_difference = 0;  ///< mean(a - b)
  std::size_t wins = 0, losses = 0, ties = 0;  ///< a > b, a < b, a == b
  double permutation_p = 1;  ///< paired_permutation_p_value
  double sign_test_p = 1;
};
/// Both tests on the pairs (a[i], b[i]) (same seeds); a and b must have the same size >= 1.
PairedComparison compare_paired(const std::vector<double>& a, const std::vector<double>& b,
                                std::size_t resamples = 100000, std::uint64_t seed = 1);

}  // namespace hyplora::eval
