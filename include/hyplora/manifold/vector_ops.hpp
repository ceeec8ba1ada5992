#pragma once
// Small loops over raw coordinate arrays shared by the manifolds (host + device).
// Kept as plain counted loops so that g++ -O2/-O3 vectorises them inside batched row loops.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "hyplora/core/config.hpp"
#include "hyplora/core/constants.hpp"
#include "hyplora/core/format.hpp"
#include "hyplora/core/scalar_math.hpp"

// Sum reductions vectorise only when the compiler may reorder them: `omp simd reduction` says so
// (host code compiled with OpenMP); elsewhere the loops stay plain.
#if defined(_OPENMP) && !defined(__CUDACC__)
#define HYPLORA_SIMD_SUM_S _Pragma("omp simd reduction(+ : s)")
#define HYPLORA_SIMD_SUM_ABC _Pragma("omp simd reduction(+ : a2, b2, d2)")
#else
#define HYPLORA_SIMD_SUM_S
#define HYPLORA_SIMD_SUM_ABC
#endif

namespace hyplora {
namespace vec {

template <class T>
HYPLORA_INLINE T dot(const T* a, const T* b, index_t n) {
  T s = T(0);
  HYPLORA_SIMD_SUM_S
  for (index_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
template <class T>
HYPLORA_INLINE T sqnorm(const T* a, index_t n) {
  return dot(a, a, n);
}
/// Largest |a_i| (0 for n = 0).
template <class T>
HYPLORA_INLINE T max_abs(const T* a, index_t n) {
  T m = T(0);
  for (index_t i = 0; i < n; ++i) m = math::abs(a[i]) > m ? math::abs(a[i]) : m;
  return m;
}
/// Whether a plain sum of squares s gives its norm as sqrt(s) to rounding: finite, and not so small
/// that its terms lost digits to underflow (s >= min_normal / eps: |x| >= ~3e-16 in float32,
/// ~1e-146 in float64; each term's underflow error, at most 2^-150 in float, is then below eps^2 s).
/// Elsewhere the norm is the rescaled form below (also 0, and NaN, where they are the answer).
template <class T>
HYPLORA_INLINE constexpr T min_plain_sum() {
  return std::numeric_limits<T>::min() / std::numeric_limits<T>::epsilon();
}
template <class T>
HYPLORA_INLINE bool plain_sum_ok(T s) {
  return s >= min_plain_sum<T>() && s <= Constants<T>::max_value();
}
/// The same for a Minkowski sum (terms of either sign): finite and not an underflowed positive sum;
/// a negative one is rounding (safe_sqrt reads it as 0). Written so, not as plain_sum_ok(s) || s < 0,
/// which made the batched Lorentz dist 1.4x slower under g++ 12.
template <class T>
HYPLORA_INLINE bool signed_sum_ok(T s) {
  return math::is_finite(s) && !(s >= T(0) && s < min_plain_sum<T>());
}
/// The rescaled norm m sqrt(r) from the largest magnitude m and the sum r of squared quotients
/// (r < 0: rounding of a Minkowski sum, read as 0). m = 0: the terms were zeros (r = 0) or held a
/// NaN (r NaN, when the quotients were taken by 1).
template <class T>
HYPLORA_INLINE T rescaled_norm_from(T m, T r) {
  if (m == T(0)) return r == r ? T(0) : r;
  return m * (r < T(0) ? T(0) : std::sqrt(r));
}
/// The overflow- and underflow-safe form of a norm whose plain sum of squares left T's range: m sqrt(r)
/// with m = max_i |a_i|, r = s (a_0/m)^2 + sum_{i>=1} (a_i/m)^2, a_i = at(i); s = +1 gives the
/// Euclidean norm, s = -1 the Minkowski one (a negative rounded r reads as 0). NaN coordinates give
/// NaN (they never win the max, but they reach r), and so do infinite ones (Inf / Inf); all zeros 0.
template <class T, class At>
HYPLORA_COLD HYPLORA_INLINE T rescaled_norm(const At& at, index_t n, T first_sign) {
  // all zeros (coincident points, the usual way here; a NaN is not zero), found by a pass that
  // vectorises (an int, not a bool, for g++ 12): the two below do not, and made the dist of
  // coincident rows 3.5-4x slower than that of distinct ones on the CPU
  int nonzero = 0;
  for (index_t i = 0; i < n; ++i) nonzero |= at(i) != T(0) ? 1 : 0;
  if (!nonzero) return T(0);
  T m = T(0);
  for (index_t i = 0; i < n; ++i) m = math::abs(at(i)) > m ? math::abs(at(i)) : m;
  const T d = m == T(0) ? T(1) : m;  // zeros, or NaN beside zeros: r is 0 or NaN (0/0 would make NaN of the zeros)
  T r = T(0);
  for (index_t i = 0; i < n; ++i) {
    const T a = at(i) / d;
    r += (i == 0 ? first_sign : T(1)) * a * a;
  }
  return rescaled_norm_from(m, r);
}
/// Euclidean norm without overflow or underflow: the plain sum of squares, and a rescaled sum only
/// where the plain one left T's range (coordinates above ~1e19 or below ~1e-16 in float32).
template <class T>
HYPLORA_INLINE T norm(const T* a, index_t n) {
  const T s = sqnorm(a, n);
  if (plain_sum_ok(s)) return std::sqrt(s);
  return rescaled_norm([&](index_t i) { return a[i]; }, n, T(1));
}
/// |a - b| from its plain sum of squares s = sum_i (a_i - b_i)^2, recomputed with rescaling only
/// where s left T's range (or is 0: coincident points, or differences whose squares underflowed).
template <class T>
HYPLORA_INLINE T dist_from_sq(const T* a, const T* b, T s, index_t n) {
  return plain_sum_ok(s) ? std::sqrt(s) : rescaled_norm([&](index_t i) { return a[i] - b[i]; }, n, T(1));
}
/// |a - b| without overflow or underflow.
template <class T>
HYPLORA_INLINE T dist(const T* a, const T* b, index_t n) {
  T s = T(0);
  HYPLORA_SIMD_SUM_S
  for (index_t i = 0; i < n; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return dist_from_sq(a, b, s, n);
}
/// |a|^2, |b|^2 and |a - b|^2 in one pass (plain sums: callers check finiteness).
template <class T>
HYPLORA_INLINE void sq3(const T* a, const T* b, index_t n, T& a2_out, T& b2_out, T& d2_out) {
  T a2 = T(0), b2 = T(0), d2 = T(0);
  HYPLORA_SIMD_SUM_ABC
  for (index_t i = 0; i < n; ++i) {
    a2 += a[i] * a[i];
    b2 += b[i] * b[i];
    d2 += (a[i] - b[i]) * (a[i] - b[i]);
  }
  a2_out = a2, b2_out = b2, d2_out = d2;
}
/// |a| from a precomputed |a|^2, recomputed with rescaling only where that sum left T's range.
template <class T>
HYPLORA_INLINE T norm_from_sq(const T* a, T a2, index_t n) {
  return plain_sum_ok(a2) ? std::sqrt(a2) : rescaled_norm([&](index_t i) { return a[i]; }, n, T(1));
}
template <class T>
HYPLORA_INLINE void scale(const T* a, T s, T* out, index_t n) {
  for (index_t i = 0; i < n; ++i) out[i] = s * a[i];
}
/// out += s * a
template <class T>
HYPLORA_INLINE void axpy(T s, const T* a, T* out, index_t n) {
  for (index_t i = 0; i < n; ++i) out[i] += s * a[i];
}
/// out += (s / d) a for d > 0 of the size of |a| (a norm): where s/d overflows (a subnormal d, a point
/// at |x| ~ 1e-40 in float) or underflows to a subnormal (a float point ~50-80 sqrt K from the origin,
/// where dist0's gradient is ~1e-26), a_i / d is formed first (the VJPs of dist gave inf for 1 or 2,
/// dist0's gave 0 for 1e-26).
template <class T>
HYPLORA_INLINE void axpy_over(T s, T d, const T* a, T* out, index_t n) {
  const T q = s / d;
  if (math::is_finite(q) && (math::abs(q) >= std::numeric_limits<T>::min() || s == T(0))) {
    axpy(q, a, out, n);
    return;
  }
  for (index_t i = 0; i < n; ++i) out[i] += s * (a[i] / d);
}
template <class T>
HYPLORA_INLINE void copy(const T* a, T* out, index_t n) {
  for (index_t i = 0; i < n; ++i) out[i] = a[i];
}
/// <a, b> summed in 16 fixed lanes (lane l takes the terms i = l mod 16), the lanes added as a
/// tree, then the tail: one association for every vector width, so a loop compiled for SSE, AVX2
/// or AVX-512 (core/simd_dispatch.hpp) rounds the same, and the final sum is 4 dependent adds,
/// not the 16 of an in-order `omp simd` reduction over a 16-wide register.
template <class T>
HYPLORA_INLINE T dot_lanes16(const T* a, const T* b, index_t n) {
  constexpr index_t L = 16;
  T s = T(0);
  const index_t full = n - n % L;  // the rows' part in whole blocks of L
  if (full > 0) {
    T acc[L] = {};
    for (index_t i = 0; i < full; i += L)
      for (index_t l = 0; l < L; ++l) acc[l] += a[i + l] * b[i + l];
    // the tree 16 -> 8 -> 4 -> 2 -> 1 written out: as a loop over w g++ kept acc in memory and
    // reloaded halves of a 64-byte store (stalled store forwarding, ~9 ns per 64-float row)
    for (index_t l = 0; l < 8; ++l) acc[l] += acc[l + 8];
    for (index_t l = 0; l < 4; ++l) acc[l] += acc[l + 4];
    for (index_t l = 0; l < 2; ++l) acc[l] += acc[l + 2];
    s = acc[0] + acc[1];
  }
  for (index_t i = full; i < n; ++i) s += a[i] * b[i];
  return s;
}
/// No Inf or NaN among a[0..n). On the host an OR of exponent tests over the bits (all exponent bits
/// set = Inf or NaN), which g++ vectorises; a loop that returns at the first non-finite value does not
/// (0.7 us for a 512-row array, 1 % of LoRA's step at d = 64, where the adapter checks its row norms).
template <class T>
HYPLORA_INLINE bool all_finite(const T* a, index_t n) {
#ifndef __CUDA_ARCH__
  if constexpr (sizeof(T) == 4 || sizeof(T) == 8) {
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
    Bits bad = 0;
    for (index_t i = 0; i < n; ++i) {
      Bits b;
      std::memcpy(&b, a + i, sizeof b);
      bad |= Bits((b & exponent) == exponent);
    }
    return bad == 0;
  }
#endif
  for (index_t i = 0; i < n; ++i)
    if (!math::is_finite(a[i])) return false;
  return true;
}

}  // namespace vec

namespace detail {
/// Host-only: throws std::invalid_argument "<who>: <what> (value <v>)".
inline void fail(const char* who, const std::string& what, double value) {
  throw std::invalid_argument(std::string(who) + ": " + what + " (value " + format_number(value) + ")");
}
/// Host-only: throws when any coordinate is NaN/Inf, naming the first bad index.
template <class T>
inline void require_finite(const char* who, const char* name, const T* a, index_t n) {
  if (!a && n > 0) throw std::invalid_argument(std::string(who) + ": " + name + " is a null pointer");
  for (index_t i = 0; i < n; ++i)
    if (!std::isfinite(double(a[i])))
      fail(who, std::string(name) + "[" + std::to_string(i) + "] is not finite", double(a[i]));
}
inline void require_dim(const char* who, index_t n, index_t min_n) {
  if (n < min_n)
    fail(who, "dimension n must be at least " + std::to_string(min_n), double(n));
}
}  // namespace detail
}  // namespace hyplora
