// Statistics for the sweep: t quantiles against table values and closed forms, summaries with
// confidence intervals, the exact paired permutation test, Holm's adjustment and the exact sign test
// on inputs with known answers.
#include <cmath>
#include <limits>
#include <vector>

#include "eval/statistics.hpp"
#include "support.hpp"

using namespace hyplora::eval;
using hyplora::test::eps_tol;

TEST_CASE("incomplete beta: closed forms and symmetry", "[statistics]") {
  // I_x(1,1) = x, I_x(a,1) = x^a, I_x(1,b) = 1 - (1-x)^b, I_x(a,b) = 1 - I_{1-x}(b,a)
  for (double x : {0.01, 0.2, 0.5, 0.77, 0.99}) {
    CHECK(std::abs(incomplete_beta(1, 1, x) - x) <= eps_tol(64.0));
    CHECK(std::abs(incomplete_beta(3.5, 1, x) - std::pow(x, 3.5)) <= eps_tol(64.0));
    CHECK(std::abs(incomplete_beta(1, 2.5, x) - (1 - std::pow(1 - x, 2.5))) <= eps_tol(64.0));
    CHECK(std::abs(incomplete_beta(2.5, 7, x) - (1 - incomplete_beta(7, 2.5, 1 - x))) <= eps_tol(64.0));
  }
  CHECK(incomplete_beta(2, 3, 0) == 0);
  CHECK(incomplete_beta(2, 3, 1) == 1);
  CHECK_THROWS_AS(incomplete_beta(-1, 3, 0.5), std::invalid_argument);
  CHECK_THROWS_AS(incomplete_beta(1, 3, 1.5), std::invalid_argument);
}

TEST_CASE("Student t quantiles match tables and closed forms", "[statistics]") {
  // Printed t tables give 3 decimals: a correct quantile is within half a unit of the last digit.
  const double table_tol = 5e-4;
  CHECK(std::abs(student_t_quantile(0.975, 4) - 2.776) <= table_tol);
  CHECK(std::abs(student_t_quantile(0.975, 1) - 12.706) <= table_tol);
  CHECK(std::abs(student_t_quantile(0.975, 10) - 2.228) <= table_tol);
  CHECK(std::abs(student_t_quantile(0.975, 30) - 2.042) <= table_tol);
  CHECK(std::abs(student_t_quantile(0.995, 5) - 4.032) <= table_tol);
  CHECK(std::abs(student_t_quantile(0.95, 2) - 2.920) <= table_tol);
  CHECK(std::abs(student_t_quantile(0.025, 4) + 2.776) <= table_tol);  // symmetry
  CHECK(student_t_quantile(0.5, 7) == 0);

  // df = 1 (Cauchy): tan(pi (p - 1/2)); df = 2: (2p - 1) / sqrt(2 p (1 - p)).
  // The incomplete beta is accurate to some tens of eps; the quantile error is that divided by the
  // density, so a relative bound of 1e3 eps covers the p used here (density not small).
  const double pi = std::acos(-1.0);
  for (double p : {0.6, 0.75, 0.9, 0.975}) {
    const double q1 = std::tan(pi * (p - 0.5));
    const double q2 = (2 * p - 1) / std::sqrt(2 * p * (1 - p));
    CHECK(std::abs(student_t_quantile(p, 1) - q1) <= eps_tol(1e3) * q1);
    CHECK(std::abs(student_t_quantile(p, 2) - q2) <= eps_tol(1e3) * q2);
  }
  // quantile and cdf are inverse to each other
  for (double df : {1.0, 3.0, 9.0, 40.0})
    for (double p : {0.1, 0.7, 0.99}) CHECK(std::abs(student_t_cdf(student_t_quantile(p, df), df) - p) <= eps_tol(1e3));
  CHECK_THROWS_AS(student_t_quantile(1.0, 4), std::invalid_argument);
  CHECK_THROWS_AS(student_t_quantile(0.9, 0), std::invalid_argument);
}

TEST_CASE("summary: mean, sample std, 95% t interval", "[statistics]") {
  const std::vector<double> v{1, 2, 3, 4, 5};
  const Summary s = summarize(v);
  CHECK(s.n == 5);
  CHECK(std::abs(s.mean - 3) <= eps_tol(8.0));
  CHECK(std::abs(s.std - std::sqrt(2.5)) <= eps_tol(8.0));
  // half width = t_{0.975,4} sqrt(2.5) / sqrt(5) = 2.7764451 * 0.7071068 = 1.9632
  const double half = student_t_quantile(0.975, 4) * std::sqrt(2.5) / std::sqrt(5.0);
  CHECK(std::abs(s.ci_high - (3 + half)) <= eps_tol(16.0));
  CHECK(std::abs(s.ci_low - (3 - half)) <= eps_tol(16.0));
  CHECK(std::abs(half - 1.9632) <= 1e-4);
  // equal values: the mean is that value and the spread is 0, exactly (0.1 three times gave a mean of
  // 0.10000000000000002 and a std of 1.7e-17, a non-point interval in summary.json)
  const Summary equal = summarize({0.1, 0.1, 0.1});
  CHECK(equal.mean == 0.1);
  CHECK(equal.std == 0.0);
  CHECK((equal.ci_low == 0.1 && equal.ci_high == 0.1));
  CHECK(sample_std({1e8 + 1, 1e8 + 2, 1e8 + 3}) == 1.0);  // the shifted sums keep a large offset exact
  const Summary one = summarize({0.4});
  CHECK(one.mean == 0.4);
  CHECK(std::isnan(one.std));
  CHECK_THROWS_AS(summarize({}), std::invalid_argument);
  CHECK_THROWS_AS(summarize({1.0, std::numeric_limits<double>::quiet_NaN()}), std::invalid_argument);
}

TEST_CASE("shifted mean: the unchecked core of mean, passing NaN and infinities through", "[statistics]") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  CHECK(std::isnan(shifted_mean({})));
  CHECK(shifted_mean({0.1, 0.1, 0.1}) == 0.1);
  CHECK(shifted_mean({1, 2, 3, 4, 5}) == mean({1, 2, 3, 4, 5}));
  CHECK(std::isnan(shifted_mean({0.2, nan, 0.4})));
  CHECK(shifted_mean({inf, 1.0}) == inf);  // the origin is the first finite value, not inf - inf = NaN
  CHECK(shifted_mean({1.0, -inf}) == -inf);
  CHECK(std::isnan(shifted_mean({inf, -inf})));
  CHECK_THROWS_AS(mean({1.0, inf}), std::invalid_argument);
}

TEST_CASE("paired permutation test: exact sign-flip p-values by hand, its floor at few seeds, Holm", "[statistics]") {
  // 5 seeds all in one direction: only the identity and the all-negated signs are as extreme: 2/32
  // (the paired bootstrap it replaces gave 1/(R+1) here)
  const std::vector<double> b5{0.30, 0.41, 0.35, 0.28, 0.39};
  std::vector<double> a5(b5.size());
  for (std::size_t i = 0; i < b5.size(); ++i) a5[i] = b5[i] + 0.1 + 0.01 * double(i);
  CHECK(std::abs(paired_permutation_p_value(a5, b5) - 2.0 / 32) <= eps_tol(8.0));
  // differences {10, 3, 1, 4, 2} (a row of docs/science.md): |sum| = 20 is reached only by the
  // observed signs and their negation: p = 2/32, not the bootstrap's 0.007
  const std::vector<double> d{10, 3, 1, 4, 2}, zero(5, 0.0);
  CHECK(std::abs(paired_permutation_p_value(d, zero) - 2.0 / 32) <= eps_tol(8.0));
  // {5, -1, 2}: |sum| = 6; sums of +-{5,1,2}: 8, 6 (flip 1), 4 (flip 2), 2 (flip 1,2) and negations:
  // |sum| >= 6 for 4 of 8
  CHECK(std::abs(paired_permutation_p_value({5, -1, 2}, {0, 0, 0}) - 0.5) <= eps_tol(8.0));
  // ties and identical inputs: p = 1; cancelling differences: p = 1
  CHECK(paired_permutation_p_value(b5, b5) == 1.0);
  CHECK(paired_permutation_p_value({0.5, 0.5, 0.5, 0.5}, {0.4, 0.6, 0.3, 0.7}) == 1.0);
  // 24 pairs (sampled, seeded): a clear difference gives the Monte Carlo floor, and reproducibly
  std::vector<double> a24(24), b24(24);
  for (std::size_t i = 0; i < 24; ++i) {
    b24[i] = 0.3 + 0.01 * double(i % 7);
    a24[i] = b24[i] + 0.1;
  }
  const double p24 = paired_permutation_p_value(a24, b24, 5000, 7);
  CHECK(p24 == 1.0 / 5001);
  CHECK(paired_permutation_p_value(a24, b24, 5000, 7) == p24);
  // past 20 pairs the p-value is a Monte Carlo estimate: mixed signs at 25 pairs against the exact
  // value 7,770,630 / 2^25 (sign flips counted by a dynamic program over the integer sums:
  // differences d_i = +-((i mod 5) + 1) / 64, negative where i mod 3 == 0), within 5 standard errors
  std::vector<double> a25(25), b25(25, 0.5);
  for (std::size_t i = 0; i < 25; ++i) a25[i] = 0.5 + (i % 3 ? 1.0 : -1.0) * double(i % 5 + 1) / 64;
  const double exact25 = 7770630.0 / 33554432.0;
  const std::size_t resamples = 200000;
  const double se = std::sqrt(exact25 * (1 - exact25) / double(resamples));
  CHECK(std::abs(paired_permutation_p_value(a25, b25, resamples, 11) - exact25) <= 5 * se);
  CHECK_THROWS_AS(paired_permutation_p_value(a5, {1.0, 2.0}), std::invalid_argument);

  // Holm: sorted p (0.01, 0.02, 0.04) of m = 3 -> 0.03, 0.04, 0.04 (monotone), in the input order
  const auto h = holm_adjust({0.04, 0.01, 0.02});
  REQUIRE(h.size() == 3);
  CHECK(std::abs(h[1] - 0.03) <= eps_tol(8.0));
  CHECK(std::abs(h[2] - 0.04) <= eps_tol(8.0));
  CHECK(std::abs(h[0] - 0.04) <= eps_tol(8.0));
  CHECK(holm_adjust({0.6, 0.5})[1] == 1.0);  // capped at 1
  CHECK(holm_adjust({}).empty());
  CHECK_THROWS_AS(holm_adjust({1.5}), std::invalid_argument);
}

TEST_CASE("exact sign test", "[statistics]") {
  std::vector<double> a(10, 1.0), b(10, 0.0);
  CHECK(std::abs(sign_test_p_value(a, b) - 2.0 / 1024) <= eps_tol(64.0));  // 10 wins: 2 * 2^-10
  b[3] = b[7] = 2.0;                                                         // 8 wins, 2 losses
  CHECK(std::abs(sign_test_p_value(a, b) - 2.0 * (1 + 10 + 45) / 1024) <= eps_tol(64.0));
  std::vector<double> c(7, 1.0), d(7, 0.0);
  d[0] = d[1] = 1.0;  // 2 ties dropped, 5 wins: p = 2/32
  CHECK(std::abs(sign_test_p_value(c, d) - 0.0625) <= eps_tol(64.0));
  CHECK(sign_test_p_value(a, a) == 1.0);
  std::vector<double> e{1, 0, 1, 0}, f{0, 1, 0, 1};  // balanced: p capped at 1
  CHECK(sign_test_p_value(e, f) == 1.0);

  const PairedComparison cmp = compare_paired(a, b, 2000, 5);
  CHECK(cmp.wins == 8);
  CHECK(cmp.losses == 2);
  CHECK(cmp.ties == 0);
  CHECK(std::abs(cmp.mean_difference - (8.0 - 2.0) / 10) <= eps_tol(8.0));
}
