#pragma once
// Discrete power-law fit (Clauset, Shalizi and Newman 2009, "Power-law distributions in empirical
// data", SIAM Review 51, sections 3-5), for positive integer data such as token counts:
//
//   p(x) = x^-alpha / zeta(alpha, x_min),  x = x_min, x_min+1, ...
//
// - alpha for a given x_min: the exact discrete maximum-likelihood estimate. The log-likelihood
//   L(alpha) = -n ln zeta(alpha, x_min) - alpha sum ln x_i is concave (ln zeta is a log-sum-exp of
//   functions linear in alpha), and L'(alpha) = n E_alpha[ln X] - sum ln x_i decreases, so its root
//   is found by bisection. zeta(s, q) is the Hurwitz zeta function (Euler-Maclaurin, below). Its
//   standard error is 1 / sqrt(n Var_alpha[ln X]) (the Fisher information, CSN eq. 3.6).
// - x_min: the candidate (a distinct data value with at least min_tail points at or above it) that
//   minimises the Kolmogorov-Smirnov distance between the tail's empirical CDF and the fitted
//   model's CDF P(X <= x) = 1 - zeta(alpha, x+1) / zeta(alpha, x_min). The sup is taken over all
//   integers (at each data value and just before the next), not only at data values.
// - alternatives by Vuong's likelihood-ratio test on the same tail (CSN section 5.1): discrete
//   exponential p(x) = (1 - e^-l) e^{-l (x - x_min)} (closed-form MLE) and a discretised log-normal
//   p(x) = [F(x + 1/2) - F(x - 1/2)] / [1 - F(x_min - 1/2)] with F the log-normal CDF (MLE of mu,
//   sigma by Nelder-Mead). R = sum_i (ln p_pl(x_i) - ln p_alt(x_i)) > 0 favours the power law;
//   p = erfc(|R| / (sigma_l sqrt(2 n))) is the two-sided significance of the sign of R.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "hyplora/core/config.hpp"

namespace hyplora::analysis {

// ---- Hurwitz zeta ---------------------------------------------------------------------------------

namespace detail {
// B_{2j} / (2j)! for j = 1..10
inline constexpr std::array<double, 10> kBernoulliOverFactorial = {
    1.0 / 12.0,                     // B2/2!
    -1.0 / 720.0,                   // B4/4!
    1.0 / 30240.0,                  // B6/6!
    -1.0 / 1209600.0,               // B8/8!
    1.0 / 47900160.0,               // B10/10!
    -691.0 / 1307674368000.0,       // B12/12!
    1.0 / 74724249600.0,            // B14/14!
    -3617.0 / 10670622842880000.0,  // B16/16!
    43867.0 / 5109094217170944000.0,     // B18/18!
    -174611.0 / 802857662698291200000.0  // B20/20!
};
inline constexpr int kZetaDirectTerms = 12;
}  // namespace detail

/// zeta(s, q) = sum_{k>=0} (q + k)^-s and its first two derivatives in s, -sum ln(q+k) (q+k)^-s and
/// sum ln^2(q+k) (q+k)^-s, for s > 1, q > 0, by Euler-Maclaurin after N = 12 direct terms:
///   zeta = sum_{k<N} (q+k)^-s + a^{1-s}/(s-1) + a^-s/2 + sum_j B_2j/(2j)! s(s+1)..(s+2j-2) a^{-s-2j+1},
/// a = q + N; the remainder after 10 correction terms is below 1e-16 relative for s < 20.
struct ZetaValue {
  double value, ds, ds2;  // zeta, d zeta / ds, d^2 zeta / ds^2
};
inline ZetaValue hurwitz_zeta_with_derivative(double s, double q) {
  if (!(s > 1.0) || !std::isfinite(s))
    throw std::invalid_argument("hurwitz_zeta: s = " + std::to_string(s) + " must be a finite number > 1");
  if (!(q > 0.0) || !std::isfinite(q))
    throw std::invalid_argument("hurwitz_zeta: q = " + std::to_string(q) + " must be a finite number > 0");
  double z = 0, dz = 0, dz2 = 0;
  const int N = detail::kZetaDirectTerms;
  for (int k = 0; k < N; ++k) {
    const double t = std::pow(q + k, -s), l = std::log(q + k);
    z += t;
    dz -= l * t;
    dz2 += l * l * t;
  }
  const double a = q + N, la = std::log(a);
  const double a_1ms = std::pow(a, 1.0 - s), u = 1.0 / (s - 1.0);
  // a^{1-s}/(s-1): d/ds = -a^{1-s} (la u + u^2),  d^2/ds^2 = a^{1-s} (la^2 u + 2 la u^2 + 2 u^3)
  z += a_1ms * u;
  dz -= a_1ms * (la * u + u * u);
  dz2 += a_1ms * (la * la * u + 2.0 * la * u * u + 2.0 * u * u * u);
  const double a_ms = a_1ms / a;
  z += 0.5 * a_ms;
  dz -= 0.5 * la * a_ms;
  dz2 += 0.5 * la * la * a_ms;
  // term_j = c_j P_j(s) E_j(s), P_j(s) = s (s+1) ... (s+2j-2), E_j = a^{-s-2j+1} (E' = -la E):
  //   d/ds = c (P' - la P) E,  d^2/ds^2 = c (P'' - 2 la P' + la^2 P) E
  double P = s, dP = 1.0, d2P = 0.0;  // P_1 = s
  double apow = a_ms;                 // a^{-s-1} after the first update below
  for (std::size_t j = 1; j <= detail::kBernoulliOverFactorial.size(); ++j) {
    apow /= a;  // a^{-s-2j+1}
    const double c = detail::kBernoulliOverFactorial[j - 1];
    const double term = c * P * apow;
    z += term;
    dz += c * (dP - P * la) * apow;
    dz2 += c * (d2P - 2.0 * la * dP + la * la * P) * apow;
    if (std::abs(term) < 1e-17 * std::abs(z)) break;
    // P_{j+1} = P_j g with g = (s + 2j - 1)(s + 2j), g' = (s + 2j - 1) + (s + 2j), g'' = 2
    const double f1 = s + 2.0 * double(j) - 1.0, f2 = s + 2.0 * double(j);
    const double g = f1 * f2, dg = f1 + f2;
    d2P = d2P * g + 2.0 * dP * dg + 2.0 * P;
    dP = dP * g + P * dg;
    P *= g;
    apow /= a;
  }
  return {z, dz, dz2};
}

inline double hurwitz_zeta(double s, double q) { return hurwitz_zeta_with_derivative(s, q).value; }

// ---- the power-law fit ----------------------------------------------------------------------------

struct PowerLawFit {
  double alpha = 0;           // exponent
  std::uint64_t x_min = 0;    // lower bound of the power-law tail
  double ks = 0;              // Kolmogorov-Smirnov distance of the tail fit
  index_t n_tail = 0;         // points >= x_min
  index_t n_total = 0;        // all points given
  double log_likelihood = 0;  // of the tail under the fit
  double alpha_stderr = 0;    // 1 / sqrt(n_tail I(alpha)): the discrete law's Fisher information (power_law_alpha_stderr)
  bool alpha_at_bound = false;  // the maximum lies at the search bound (degenerate tail)
};

struct PowerLawOptions {
  index_t min_tail = 20;        // smallest tail accepted for an x_min candidate
  index_t max_candidates = 400; // at most this many x_min candidates (spread over the distinct values)
  double alpha_lo = 1.0 + 1e-6, alpha_hi = 20.0;  // search interval of the MLE
};

namespace detail {

inline std::vector<std::uint64_t> sorted_positive(const std::vector<std::uint64_t>& data, const char* who) {
  std::vector<std::uint64_t> x;
  x.reserve(data.size());
  for (auto v : data)
    if (v > 0) x.push_back(v);
  if (x.empty()) throw std::invalid_argument(std::string(who) + ": no positive values in the data");
  std::sort(x.begin(), x.end());
  return x;
}

/// MLE of alpha for a tail of n points with sum of logs `sum_log` (all >= x_min).
inline double power_law_alpha_mle(double x_min, double n, double sum_log, const PowerLawOptions& o, bool& at_bound) {
  // g(alpha) = L'(alpha)/n = -zeta_s/zeta - mean ln x: positive below the root, negative above.
  const double mean_log = sum_log / n;
  auto g = [&](double a) {
    const auto zv = hurwitz_zeta_with_derivative(a, x_min);
    return -zv.ds / zv.value - mean_log;
  };
  double lo = o.alpha_lo, hi = o.alpha_hi;
  at_bound = false;
  if (g(hi) > 0) {
    at_bound = true;
    return hi;
  }
  if (g(lo) < 0) {
    at_bound = true;
    return lo;
  }
  for (int it = 0; it < 200 && hi - lo > 1e-12 * hi; ++it) {
    const double mid = 0.5 * (lo + hi);
    (g(mid) > 0 ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

/// The asymptotic standard error of the discrete MLE of alpha on n points >= x_min (Clauset, Shalizi and
/// Newman 2009, eq. 3.6): 1 / sqrt(n I(alpha)) with the Fisher information per point
///   I(alpha) = zeta''/zeta - (zeta'/zeta)^2 = Var[ln x]   (zeta = zeta(alpha, x_min), derivatives in alpha),
/// the variance of ln x under the fitted law. The continuous law's (alpha - 1)/sqrt(n) (CSN eq. 3.2) is
/// its limit for large x_min; at x_min = 1 it is 5 % (alpha 1.9) to 20 % (alpha 3) too small.
inline double power_law_alpha_stderr(double alpha, double x_min, double n) {
  const auto zv = hurwitz_zeta_with_derivative(alpha, x_min);
  const double m = zv.ds / zv.value;
  const double information = zv.ds2 / zv.value - m * m;
  return information > 0 ? 1.0 / std::sqrt(n * information) : std::numeric_limits<double>::infinity();
}

/// KS distance between the tail x[begin..end) (sorted) and the discrete power law (alpha, x_min).
inline double power_law_ks(const std::vector<std::uint64_t>& x, std::size_t begin, double alpha, double x_min) {
  const double n = double(x.size() - begin);
  const double z0 = hurwitz_zeta(alpha, x_min);
  // zeta(alpha, x_min) below double's range (x_min ~1e17 at alpha 20: 5e-325) made the model CDF
  // 0/0, and std::max dropped the NaN: such a candidate won with KS = 0 (audit of 2026-11-29)
  if (!(z0 > 0.0) || !std::isfinite(z0)) return std::numeric_limits<double>::infinity();
  double d = 0;
  std::size_t i = begin;
  double prev_emp = 0;  // empirical CDF just before the current value
  while (i < x.size()) {
    const std::uint64_t v = x[i];
    std::size_t j = i;
    while (j < x.size() && x[j] == v) ++j;
    const double emp = double(j - begin) / n;
    // model CDF at v - 1 (the largest integer below v), compared with the empirical CDF there
    if (double(v) > x_min) {
      const double model_before = 1.0 - hurwitz_zeta(alpha, double(v)) / z0;
      d = std::max(d, std::abs(prev_emp - model_before));
    }
    const double model_at = 1.0 - hurwitz_zeta(alpha, double(v) + 1.0) / z0;
    d = std::max(d, std::abs(emp - model_at));
    prev_emp = emp;
    i = j;
  }
  return d;
}

/// The error of a fit whose model CDF is not representable in double (power_law_ks: +inf).
inline std::string unrepresentable_fit(std::uint64_t x_min, double alpha) {
  return "power-law fit: the discrete law at x_min = " + std::to_string(x_min) + " (alpha " + std::to_string(alpha) +
         ") is not representable in double: zeta(alpha, x_min) underflows (values of ~1e16 and above)";
}

}  // namespace detail

/// Power-law fit of the values >= x_min (zeros are ignored: counts of unseen tokens are not data).
inline PowerLawFit fit_discrete_power_law_fixed_xmin(const std::vector<std::uint64_t>& data, std::uint64_t x_min,
                                                     const PowerLawOptions& o = {}) {
  if (x_min < 1) throw std::invalid_argument("power-law fit: x_min must be at least 1");
  const auto x = detail::sorted_positive(data, "power-law fit");
  const auto begin = std::size_t(std::lower_bound(x.begin(), x.end(), x_min) - x.begin());
  const index_t n_tail = index_t(x.size() - begin);
  if (n_tail < 2)
    throw std::invalid_argument("power-law fit: only " + std::to_string(n_tail) + " value(s) >= x_min = " +
                                std::to_string(x_min) + "; need at least 2");
  double sum_log = 0;
  for (std::size_t i = begin; i < x.size(); ++i) sum_log += std::log(double(x[i]));
  PowerLawFit f;
  f.x_min = x_min;
  f.n_tail = n_tail;
  f.n_total = index_t(x.size());
  f.alpha = detail::power_law_alpha_mle(double(x_min), double(n_tail), sum_log, o, f.alpha_at_bound);
  f.ks = detail::power_law_ks(x, begin, f.alpha, double(x_min));
  if (!std::isfinite(f.ks)) throw std::invalid_argument(detail::unrepresentable_fit(x_min, f.alpha));
  f.log_likelihood = -double(n_tail) * std::log(hurwitz_zeta(f.alpha, double(x_min))) - f.alpha * sum_log;
  f.alpha_stderr = detail::power_law_alpha_stderr(f.alpha, double(x_min), double(n_tail));
  return f;
}

/// Full CSN fit: x_min by the smallest KS distance over the candidates.
inline PowerLawFit fit_discrete_power_law(const std::vector<std::uint64_t>& data, const PowerLawOptions& o = {}) {
  const auto x = detail::sorted_positive(data, "power-law fit");
  if (o.min_tail < 2) throw std::invalid_argument("power-law fit: min_tail must be at least 2");
  if (o.max_candidates == 1 || o.max_candidates < 0)  // one candidate spread over the values divided by 0
    throw std::invalid_argument("power-law fit: max_candidates must be 0 (all) or at least 2, got " +
                                std::to_string(o.max_candidates));
  if (index_t(x.size()) < o.min_tail)
    throw std::invalid_argument("power-law fit: " + std::to_string(x.size()) + " positive values, fewer than min_tail = " +
                                std::to_string(o.min_tail));
  // distinct values with at least min_tail points at or above them
  std::vector<std::uint64_t> candidates;
  for (std::size_t i = 0; i < x.size(); ++i)
    if ((i == 0 || x[i] != x[i - 1]) && index_t(x.size() - i) >= o.min_tail) candidates.push_back(x[i]);
  if (o.max_candidates > 0 && index_t(candidates.size()) > o.max_candidates) {
    std::vector<std::uint64_t> thinned;
    const double step = double(candidates.size() - 1) / double(o.max_candidates - 1);
    for (index_t k = 0; k < o.max_candidates; ++k) thinned.push_back(candidates[std::size_t(std::llround(k * step))]);
    thinned.erase(std::unique(thinned.begin(), thinned.end()), thinned.end());
    candidates = std::move(thinned);
  }
  // suffix sums of ln x for O(1) tail sums
  std::vector<double> suffix_log(x.size() + 1, 0.0);
  for (std::size_t i = x.size(); i-- > 0;) suffix_log[i] = suffix_log[i + 1] + std::log(double(x[i]));
  PowerLawFit best;
  best.ks = std::numeric_limits<double>::infinity();
  for (auto xm : candidates) {
    const auto begin = std::size_t(std::lower_bound(x.begin(), x.end(), xm) - x.begin());
    const double n_tail = double(x.size() - begin);
    bool at_bound = false;
    const double alpha = detail::power_law_alpha_mle(double(xm), n_tail, suffix_log[begin], o, at_bound);
    const double ks = detail::power_law_ks(x, begin, alpha, double(xm));
    if (ks < best.ks) {
      best.ks = ks;
      best.alpha = alpha;
      best.x_min = xm;
      best.n_tail = index_t(n_tail);
      best.alpha_at_bound = at_bound;
      best.log_likelihood = -n_tail * std::log(hurwitz_zeta(alpha, double(xm))) - alpha * suffix_log[begin];
    }
  }
  if (!std::isfinite(best.ks)) throw std::invalid_argument(detail::unrepresentable_fit(candidates.front(), best.alpha));
  best.n_total = index_t(x.size());
  best.alpha_stderr = detail::power_law_alpha_stderr(best.alpha, double(best.x_min), double(best.n_tail));
  return best;
}

/// Natural log of the fitted power law's pmf at x (x >= x_min).
inline double power_law_log_pmf(const PowerLawFit& f, std::uint64_t x) {
  return -f.alpha * std::log(double(x)) - std::log(hurwitz_zeta(f.alpha, double(f.x_min)));
}

// ---- alternatives and Vuong's test ----------------------------------------------------------------

namespace detail {

/// ln Q(z), Q(z) = P(N(0,1) > z), accurate far into both tails: erfc keeps its relative accuracy
/// while Q(z) is a normal double (z < 37.5); beyond, the asymptotic expansion, whose first omitted
/// term (945/z^10) is below 2e-13 there. (It took over at z = 5, where that term is 1e-4: the
/// log-normal's interval masses went NaN across z = 5.)
inline double log_normal_sf(double z) {
  if (z < 37.0) return std::log(0.5 * std::erfc(z / std::sqrt(2.0)));
  // Q(z) = phi(z)/z (1 - 1/z^2 + 3/z^4 - 15/z^6 + 105/z^8 - ...)
  const double z2 = z * z;
  const double series = 1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2) + 105.0 / (z2 * z2 * z2 * z2);
  return -0.5 * z2 - std::log(z) - 0.5 * std::log(2.0 * std::numbers::pi) + std::log(series);
}
inline double log_normal_cdf(double z) { return log_normal_sf(-z); }

/// ln(Phi(b) - Phi(a)), a < b, without cancellation.
inline double log_normal_interval(double a, double b) {
  const double h = b - a, m = 0.5 * (a + b);
  if (h * std::max(1.0, std::abs(m)) < 1e-3) {
    // narrow (a log-normal's [x - 1/2, x + 1/2) for large x): Simpson's rule on phi, relative error
    // about (h m)^4 / 2880 < 1e-15, where the difference of two tail values that agree in most of
    // their digits loses them (and gave NaN where rounding made it negative)
    //   ln((h / 6) phi(m) (e^{-(a^2 - m^2)/2} + 4 + e^{-(b^2 - m^2)/2}))
    const double ea = std::exp(-0.5 * (a - m) * (a + m)), eb = std::exp(-0.5 * (b - m) * (b + m));
    return std::log(h / 6.0) - 0.5 * m * m - 0.5 * std::log(2.0 * std::numbers::pi) + std::log(ea + 4.0 + eb);
  }
  auto log_diff = [](double la, double lb) {  // ln(e^la - e^lb), la > lb
    if (lb == -std::numeric_limits<double>::infinity()) return la;
    return la + std::log(-std::expm1(lb - la));  // expm1: accurate where lb - la is near 0
  };
  if (a >= 0) return log_diff(log_normal_sf(a), log_normal_sf(b));
  if (b <= 0) return log_diff(log_normal_cdf(b), log_normal_cdf(a));
  return std::log(1.0 - 0.5 * std::erfc(-a / std::sqrt(2.0)) - 0.5 * std::erfc(b / std::sqrt(2.0)));
}

/// Discretised log-normal log-pmf on x >= x_min.
inline double lognormal_log_pmf(double x, double x_min, double mu, double sigma) {
  const double lo = std::log(x - 0.5), hi = std::log(x + 0.5);
  const double lt = x_min > 0.5 ? std::log(x_min - 0.5) : -std::numeric_limits<double>::infinity();
  const double norm = std::isinf(lt) ? 0.0 : log_normal_sf((lt - mu) / sigma);
  return log_normal_interval((lo - mu) / sigma, (hi - mu) / sigma) - norm;
}

/// Minimises f over R^2 by Nelder-Mead from x0 with initial step `step`.
template <class F>
std::array<double, 2> nelder_mead_2d(F&& f, std::array<double, 2> x0, double step, int max_iter = 2000) {
  std::array<std::array<double, 2>, 3> p = {x0, {x0[0] + step, x0[1]}, {x0[0], x0[1] + step}};
  std::array<double, 3> v = {f(p[0]), f(p[1]), f(p[2])};
  for (int it = 0; it < max_iter; ++it) {
    std::array<int, 3> idx = {0, 1, 2};
    std::sort(idx.begin(), idx.end(), [&](int a, int b) { return v[a] < v[b]; });
    const int b = idx[0], m = idx[1], w = idx[2];
    if (std::abs(v[w] - v[b]) <= 1e-12 * (std::abs(v[b]) + 1e-12) &&
        std::abs(p[w][0] - p[b][0]) + std::abs(p[w][1] - p[b][1]) < 1e-10)
      break;
    const std::array<double, 2> c = {(p[b][0] + p[m][0]) / 2, (p[b][1] + p[m][1]) / 2};
    auto lerp = [&](double t) { return std::array<double, 2>{c[0] + t * (p[w][0] - c[0]), c[1] + t * (p[w][1] - c[1])}; };
    const auto r = lerp(-1.0);
    const double fr = f(r);
    if (fr < v[b]) {
      const auto e = lerp(-2.0);
      const double fe = f(e);
      if (fe < fr) p[w] = e, v[w] = fe;
      else p[w] = r, v[w] = fr;
    } else if (fr < v[m]) {
      p[w] = r, v[w] = fr;
    } else {
      const auto k = fr < v[w] ? lerp(-0.5) : lerp(0.5);
      const double fk = f(k);
      if (fk < std::min(fr, v[w])) {
        p[w] = k, v[w] = fk;
      } else {  // shrink towards the best
        for (int i : {m, w}) {
          p[i] = {p[b][0] + 0.5 * (p[i][0] - p[b][0]), p[b][1] + 0.5 * (p[i][1] - p[b][1])};
          v[i] = f(p[i]);
        }
      }
    }
  }
  int b = 0;
  for (int i = 1; i < 3; ++i)
    if (v[i] < v[b]) b = i;
  return p[b];
}

}  // namespace detail

struct VuongTest {
  std::string alternative;          // "lognormal" or "exponential"
  std::vector<double> parameters;   // lognormal: mu, sigma; exponential: lambda
  double log_likelihood = 0;        // of the alternative on the tail
  double R = 0;                     // sum of per-point log-likelihood ratios (power law - alternative)
  double normalized_R = 0;          // R / (sigma_l sqrt(n))
  double p_value = 1;               // two-sided; small p: the sign of R is significant
  std::string favoured;             // "power_law", the alternative's name, or "neither" (p >= 0.1)
};

/// Vuong's test of the power-law fit against a discrete exponential or discretised log-normal fitted
/// by maximum likelihood to the same tail (values >= fit.x_min).
inline VuongTest compare_power_law(const std::vector<std::uint64_t>& data, const PowerLawFit& fit,
                                   const std::string& alternative) {
  const auto xs = detail::sorted_positive(data, "power-law comparison");
  std::vector<double> x;
  for (auto v : xs)
    if (v >= fit.x_min) x.push_back(double(v));
  if (x.size() < 2) throw std::invalid_argument("power-law comparison: fewer than 2 values in the tail");
  const double n = double(x.size()), xm = double(fit.x_min);
  VuongTest t;
  t.alternative = alternative;
  std::vector<double> alt_ll(x.size());
  if (alternative == "exponential") {
    // p(x) = (1 - e^-l) e^{-l (x - x_min)};  MLE: l = ln(1 + 1/(mean - x_min))
    const double mean = std::accumulate(x.begin(), x.end(), 0.0) / n;
    const double excess = std::max(mean - xm, 1e-300);
    const double lambda = std::log1p(1.0 / excess);
    for (std::size_t i = 0; i < x.size(); ++i) alt_ll[i] = std::log(-std::expm1(-lambda)) - lambda * (x[i] - xm);
    t.parameters = {lambda};
  } else if (alternative == "lognormal") {
    double m = 0, s2 = 0;
    for (double v : x) m += std::log(v);
    m /= n;
    for (double v : x) s2 += (std::log(v) - m) * (std::log(v) - m);
    const double s0 = std::max(std::sqrt(s2 / n), 0.1);
    auto nll = [&](const std::array<double, 2>& p) {
      const double sigma = std::exp(p[1]);
      double s = 0;
      for (double v : x) s -= detail::lognormal_log_pmf(v, xm, p[0], sigma);
      return std::isfinite(s) ? s : std::numeric_limits<double>::max();
    };
    const auto best = detail::nelder_mead_2d(nll, {m, std::log(s0)}, 0.5);
    const double mu = best[0], sigma = std::exp(best[1]);
    for (std::size_t i = 0; i < x.size(); ++i) alt_ll[i] = detail::lognormal_log_pmf(x[i], xm, mu, sigma);
    t.parameters = {mu, sigma};
  } else {
    throw std::invalid_argument("power-law comparison: unknown alternative '" + alternative +
                                "' (expected lognormal or exponential)");
  }
  const double log_z = std::log(hurwitz_zeta(fit.alpha, xm));
  std::vector<double> l(x.size());
  double R = 0, alt_total = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    l[i] = (-fit.alpha * std::log(x[i]) - log_z) - alt_ll[i];
    R += l[i];
    alt_total += alt_ll[i];
  }
  const double mean_l = R / n;
  double var = 0;
  for (double v : l) var += (v - mean_l) * (v - mean_l);
  var /= n;
  t.R = R;
  t.log_likelihood = alt_total;
  if (var > 0) {
    t.normalized_R = R / std::sqrt(n * var);
    t.p_value = std::erfc(std::abs(t.normalized_R) / std::sqrt(2.0));
  } else {
    t.normalized_R = 0;
    t.p_value = 1;
  }
  // a likelihood that could not be evaluated (NaN) decides nothing; it was read as "R <= 0"
  const bool decided = std::isfinite(t.normalized_R) && std::isfinite(t.p_value) && t.p_value < 0.1;
  t.favoured = !decided ? "neither" : (R > 0 ? "power_law" : alternative);
  return t;
}

}  // namespace hyplora::analysis
