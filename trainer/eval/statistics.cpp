#include "eval/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "data/rng.hpp"

namespace hyplora::eval {

namespace {

constexpr double eps = std::numeric_limits<double>::epsilon();

void check_values(const std::vector<double>& v, const char* what) {
  if (v.empty()) throw std::invalid_argument(std::string(what) + ": no values");
  for (double x : v)
    if (!std::isfinite(x)) throw std::invalid_argument(std::string(what) + ": non-finite value");
}

void check_pairs(const std::vector<double>& a, const std::vector<double>& b, const char* what) {
  check_values(a, what);
  check_values(b, what);
  if (a.size() != b.size())
    throw std::invalid_argument(std::string(what) + ": paired samples differ in size (" + std::to_string(a.size()) +
                                " vs " + std::to_string(b.size()) + ")");
}

// Continued fraction of I_x(a,b) (Numerical Recipes betacf, modified Lentz).
double beta_continued_fraction(double a, double b, double x) {
  const double tiny = 1e-300;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::abs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) <= 4 * eps) return h;
  }
  return h;  // not reached for the (a, b) used here; the result is still the best estimate
}

// upper tail P(T > t) for t >= 0
double t_upper_tail(double t, double df) {
  const double x = df / (df + t * t);
  return 0.5 * incomplete_beta(df / 2, 0.5, x);
}

}  // namespace

// Sums of deviations from the first finite value: the mean of equal values is that value exactly (three
// seeds at 0.1 gave 0.10000000000000002 as the plain sum's mean, and a std of 1.7e-17).
double shifted_mean(const std::vector<double>& v) {
  if (v.empty()) return std::nan("");
  double origin = 0;  // an infinite value stays infinite
  for (double x : v)
    if (std::isfinite(x)) {
      origin = x;
      break;
    }
  double s = 0;
  for (double x : v) s += x - origin;
  return origin + s / static_cast<double>(v.size());
}

double mean(const std::vector<double>& v) {
  check_values(v, "mean");
  return shifted_mean(v);
}

// Corrected two-pass form (Chan, Golub and LeVeque): sum d^2 - (sum d)^2 / n with d = x - mean; the
// second term removes the rounding error of the mean, and equal values give 0 exactly.
double sample_std(const std::vector<double>& v) {
  check_values(v, "sample_std");
  if (v.size() < 2) throw std::invalid_argument("sample_std: needs at least 2 values");
  const double m = mean(v);
  double s2 = 0, s1 = 0;
  for (double x : v) {
    s2 += (x - m) * (x - m);
    s1 += x - m;
  }
  const double n = static_cast<double>(v.size());
  return std::sqrt(std::max(0.0, s2 - s1 * s1 / n) / (n - 1));
}

double incomplete_beta(double a, double b, double x) {
  if (!(a > 0) || !(b > 0)) throw std::invalid_argument("incomplete_beta: a and b must be > 0");
  if (!(x >= 0 && x <= 1)) throw std::invalid_argument("incomplete_beta: x must be in [0, 1]");
  if (x == 0) return 0;
  if (x == 1) return 1;
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, 1 - x) / b;
}

double student_t_cdf(double t, double df) {
  if (!(df > 0)) throw std::invalid_argument("student_t_cdf: degrees of freedom must be > 0");
  if (std::isnan(t)) throw std::invalid_argument("student_t_cdf: t is NaN");
  if (std::isinf(t)) return t > 0 ? 1 : 0;
  const double upper = t_upper_tail(std::abs(t), df);
  return t >= 0 ? 1 - upper : upper;
}

double student_t_quantile(double p, double df) {
  if (!(df > 0)) throw std::invalid_argument("student_t_quantile: degrees of freedom must be > 0");
  if (!(p > 0 && p < 1)) throw std::invalid_argument("student_t_quantile: p must be in (0, 1)");
  if (p == 0.5) return 0;
  if (p < 0.5) return -student_t_quantile(1 - p, df);
  const double tail = 1 - p;  // find t >= 0 with P(T > t) = tail; P(T > t) decreases in t
  double lo = 0, hi = 1;
  while (t_upper_tail(hi, df) > tail) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return std::numeric_limits<double>::infinity();
  }
  for (int i = 0; i < 2000 && hi - lo > 2 * eps * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (t_upper_tail(mid, df) > tail) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

Summary summarize(const std::vector<double>& v, double level) {
  if (!(level > 0 && level < 1)) throw std::invalid_argument("summarize: confidence level must be in (0, 1)");
  Summary s;
  s.n = v.size();
  s.mean = mean(v);
  s.level = level;
  if (s.n < 2) {
    s.std = s.ci_low = s.ci_high = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  s.std = sample_std(v);
  const double t = student_t_quantile(0.5 + level / 2, static_cast<double>(s.n - 1));
  const double half = t * s.std / std::sqrt(static_cast<double>(s.n));
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

double paired_permutation_p_value(const std::vector<double>& a, const std::vector<double>& b, std::size_t resamples,
                                  std::uint64_t seed) {
  check_pairs(a, b, "paired_permutation_p_value");
  if (resamples == 0) throw std::invalid_argument("paired_permutation_p_value: needs at least one resample");
  const std::size_t n = a.size();
  std::vector<double> m(n);  // |d_i|
  double observed = 0, total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = a[i] - b[i];
    observed += d;
    m[i] = std::abs(d);
    total += m[i];
  }
  if (total == 0) return 1;  // every pair ties
  observed = std::abs(observed);
  // sums that differ from the observed one by rounding alone count as "as extreme"
  const double tol = 8 * std::numeric_limits<double>::epsilon() * total * static_cast<double>(n);
  const auto extreme = [&](double s) { return std::abs(s) >= observed - tol; };
  if (n <= kExactPermutationMax) {
    // every sign vector once: bit i of `signs` set = d_i negated
    const std::uint64_t count = std::uint64_t(1) << n;
    std::uint64_t hits = 0;
    for (std::uint64_t signs = 0; signs < count; ++signs) {
      double s = 0;
      for (std::size_t i = 0; i < n; ++i) s += (signs >> i & 1) ? -m[i] : m[i];
      hits += extreme(s) ? 1 : 0;
    }
    return static_cast<double>(hits) / static_cast<double>(count);
  }
  data::Rng rng(seed);
  std::size_t hits = 0;
  for (std::size_t r = 0; r < resamples; ++r) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += rng.index(2) ? -m[i] : m[i];
    hits += extreme(s) ? 1 : 0;
  }
  return static_cast<double>(hits + 1) / static_cast<double>(resamples + 1);
}

std::vector<double> holm_adjust(const std::vector<double>& p) {
  for (double x : p)
    if (!(x >= 0 && x <= 1)) throw std::invalid_argument("holm_adjust: p-values must lie in [0, 1]");
  const std::size_t m = p.size();
  std::vector<std::size_t> order(m);
  for (std::size_t i = 0; i < m; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return p[x] < p[y]; });
  std::vector<double> adjusted(m);
  double running = 0;  // the adjusted values may not decrease along the sorted order
  for (std::size_t k = 0; k < m; ++k) {
    running = std::max(running, std::min(1.0, static_cast<double>(m - k) * p[order[k]]));
    adjusted[order[k]] = running;
  }
  return adjusted;
}

double sign_test_p_value(const std::vector<double>& a, const std::vector<double>& b) {
  check_pairs(a, b, "sign_test_p_value");
  std::size_t plus = 0, minus = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] > b[i]) ++plus;
    else if (a[i] < b[i]) ++minus;
  }
  const std::size_t n = plus + minus;
  if (n == 0) return 1;
  const std::size_t k = std::min(plus, minus);
  // sum_{i<=k} C(n,i) 2^-n in log space (exact up to rounding for any n)
  const double log_half_n = static_cast<double>(n) * std::log(0.5);
  const double lg_n1 = std::lgamma(static_cast<double>(n) + 1);
  double tail = 0;
  for (std::size_t i = 0; i <= k; ++i)
    tail += std::exp(lg_n1 - std::lgamma(static_cast<double>(i) + 1) - std::lgamma(static_cast<double>(n - i) + 1) + log_half_n);
  return std::min(1.0, 2 * tail);
}

PairedComparison compare_paired(const std::vector<double>& a, const std::vector<double>& b, std::size_t resamples,
                                std::uint64_t seed) {
  check_pairs(a, b, "compare_paired");
  PairedComparison c;
  c.n = a.size();
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    s += a[i] - b[i];
    if (a[i] > b[i]) ++c.wins;
    else if (a[i] < b[i]) ++c.losses;
    else ++c.ties;
  }
  c.mean_difference = s / static_cast<double>(c.n);
  c.permutation_p = paired_permutation_p_value(a, b, resamples, seed);
  c.sign_test_p = sign_test_p_value(a, b);
  return c;
}

}  // namespace hyplora::eval
