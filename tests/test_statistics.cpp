// Statistics for the sweep: t quantiles against table values and closed forms, summaries with
// confidence intervals, paired bootstrap and exact sign test on inputs with known answers.
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
  const Summary one = summarize({0.4});
  CHECK(one.mean == 0.4);
  CHECK(std::isnan(one.std));
  CHECK_THROWS_AS(summarize({}), std::invalid_argument);
  CHECK_THROWS_AS(summarize({1.0, std::numeric_limits<double>::quiet_NaN()}), std::invalid_argument);
}

TEST_CASE("paired bootstrap detects a known difference and identical inputs give p = 1", "[statistics]") {
  // 12 seeds; variant a beats b by 0.1 with small seed-to-seed noise (|noise| <= 0.03)
  const std::vector<double> b{0.30, 0.41, 0.35, 0.28, 0.39, 0.33, 0.37, 0.31, 0.42, 0.36, 0.29, 0.34};
  const std::vector<double> noise{0.01, -0.02, 0.03, 0.0, -0.01, 0.02, -0.03, 0.01, 0.0, -0.02, 0.02, 0.01};
  std::vector<double> a(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) a[i] = b[i] + 0.1 + noise[i];
  const std::size_t B = 4000;
  const double p = paired_bootstrap_p_value(a, b, B, 7);
  // every centred resample mean is within 0.03 of 0, far below the observed 0.1: p = 1/(B+1)
  CHECK(p == 1.0 / (B + 1));
  CHECK(paired_bootstrap_p_value(a, b, B, 7) == p);  // seeded: reproducible
  CHECK(paired_bootstrap_p_value(b, b, B, 7) == 1.0);
  // differences that cancel exactly (mean 0): every resample is at least as extreme as 0
  const std::vector<double> c{0.5, 0.5, 0.5, 0.5}, d{0.4, 0.6, 0.3, 0.7};
  CHECK(paired_bootstrap_p_value(c, d, B, 3) == 1.0);
  // a weak, noisy difference is not significant
  const std::vector<double> e{0.31, 0.40, 0.36, 0.27, 0.40, 0.32};
  const std::vector<double> f{0.30, 0.41, 0.35, 0.28, 0.39, 0.33};
  CHECK(paired_bootstrap_p_value(e, f, B, 3) > 0.5);
  CHECK_THROWS_AS(paired_bootstrap_p_value(a, {1.0, 2.0}, B, 1), std::invalid_argument);
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
