#pragma once
// exp and log in double precision without calls, tables or branches, so that a loop evaluating
// them over a tile of rows vectorises (g++ -O3 under `omp simd`; the libm functions are calls and
// never do). Host only: they reinterpret bits with std::bit_cast.
//
// Used for the float radial factors of scalar_math.hpp: evaluated in double and rounded once, a
// float result is within 1 ulp (tests/test_manifold_models.cpp), while glibc's asinhf / tanhf /
// atanhf / sinhf dominated the per-row cost of the batched maps.
//
// Accuracy: relative error below 1e-14 on the stated domains (tested against long double), far
// below float's 6e-8; not meant as a double-precision libm.
#include <bit>
#include <cstdint>
#include <limits>

namespace hyplora::math {

/// c[0] + c[1] x + ... + c[N-1] x^(N-1) by Horner's rule (a fixed-length loop: unrolled, vectorisable).
template <int N>
inline double horner(const double (&c)[N], double x) {
  double p = c[N - 1];
  for (int k = N - 2; k >= 0; --k) p = p * x + c[k];
  return p;
}

/// exp(x) for x in [-708, 708] (clamped there): 2^n exp(r), n = round(x / ln2), r = x - n ln2
/// with ln2 in two parts (fdlibm's; n ln2_hi is exact), |r| <= ln2/2; exp(r) by its Taylor
/// polynomial to r^12 (truncation r^13/13! < 1e-16 for |r| <= 0.347). NaN gives NaN (the clamps
/// alone would turn it into 708).
inline double exp_d(double x) {
  const double x_in = x;
  x = x < 708.0 ? x : 708.0;
  x = x > -708.0 ? x : -708.0;
  // 1.5 * 2^52: adding it rounds to an integer, kept in the low mantissa bits of t
  constexpr double shifter = 6755399441055744.0;
  const double t = x * 1.4426950408889634074 + shifter;
  const double n = t - shifter;
  const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
  constexpr double taylor[13] = {1.0,          1.0,           0.5,            1.0 / 6.0,       1.0 / 24.0,
                                 1.0 / 120.0,  1.0 / 720.0,   1.0 / 5040.0,   1.0 / 40320.0,   1.0 / 362880.0,
                                 1.0 / 3628800.0, 1.0 / 39916800.0, 1.0 / 479001600.0};  // 1/k!
  const double p = horner(taylor, r);
  // 2^n from its exponent bits (n in [-1022, 1022])
  const std::int64_t ni = std::bit_cast<std::int64_t>(t) - std::bit_cast<std::int64_t>(shifter);
  const double v = p * std::bit_cast<double>((ni + 1023) << 52);
  return x_in == x_in ? v : x_in;
}

/// log(x) for normal x > 0 (+inf, 0, x < 0 and NaN give +inf, -inf, NaN, NaN; subnormal x is not
/// handled): x = 2^e m with m in [sqrt(1/2), sqrt 2), log m = 2 atanh(s),
/// s = (m - 1)/(m + 1), |s| <= 0.172, by its series to s^19 (truncation s^21/21 < 2e-17).
inline double log_d(double x) {
  const std::uint64_t bits = std::bit_cast<std::uint64_t>(x);
  // the biased exponent as a double, through the mantissa of 2^52 (no int64 -> double conversion,
  // which SSE2 cannot vectorise)
  const double e_biased = std::bit_cast<double>(0x4330000000000000ULL | (bits >> 52)) - 4503599627370496.0;
  const double m1 = std::bit_cast<double>((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);  // [1, 2)
  // (both candidates computed first: g++ if-converts a select of values, not a conditional
  // expression that could raise a floating-point exception)
  const bool big = m1 > 1.4142135623730950488;
  const double m_half = 0.5 * m1, e_hi = e_biased - 1022.0, e_lo = e_biased - 1023.0;
  const double m = big ? m_half : m1;
  const double e = big ? e_hi : e_lo;
  const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
  constexpr double odd[10] = {1.0,        1.0 / 3.0,  1.0 / 5.0,  1.0 / 7.0,  1.0 / 9.0,
                              1.0 / 11.0, 1.0 / 13.0, 1.0 / 15.0, 1.0 / 17.0, 1.0 / 19.0};  // 1/(2k+1)
  const double p = horner(odd, s2);
  const double v = e * 6.93147180369123816490e-01 + (2.0 * s * p + e * 1.90821492927058770002e-10);
  // the bits of +inf, 0 and negative x would read as finite numbers too: log(+inf) = +inf,
  // log(0) = -inf, log(x < 0) = NaN, and a NaN stays NaN (selects, no branch)
  constexpr double inf = std::numeric_limits<double>::infinity();
  const double pos = x < inf ? v : x;
  const double nonpos = x == 0.0 ? -inf : std::numeric_limits<double>::quiet_NaN();
  const double r = x > 0.0 ? pos : nonpos;
  return x == x ? r : x;
}

}  // namespace hyplora::math
