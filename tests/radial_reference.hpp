#pragma once
// The scalar functions of the radial maps (core/scalar_math.hpp) against long double references.
// Shared by tests/test_manifold_models.cpp (the forms each scalar type takes on the host) and
// tests/test_device_math.cpp (float through the forms device code compiles).
//
// References in long double (64-bit mantissa, eps 5e-20): values from the closed forms (no
// cancellation: sinhl(x)/x etc.); derivatives from the closed forms too, where their cancellation
// (a factor ~1/x^2) keeps the long double reference far below the tested type's eps (x >= 0.05 for
// double; every x for float). Tolerances: a value is a few correctly rounded steps (4 eps); a
// derivative's closed form cancels by up to ~1/x^2 just above the series threshold, so it gets
// 8 eps (1 + 1/x^2) relative to max(|f'|, |f|/max(x,1)); x f'(x) (the *_with_xderiv forms) is the
// difference of two terms of at most that size and gets 6 eps of max(|x f'|, |f|).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <hyplora/core/scalar_math.hpp>

namespace hyplora::test {

using LD = long double;
struct RadialRef {
  const char* name;
  LD x_max;
  LD (*f)(LD);
  LD (*df)(LD);
};
inline const RadialRef kRadialRefs[] = {
    {"sinh(x)/x", 60.0L, [](LD x) { return sinhl(x) / x; }, [](LD x) { return (x * coshl(x) - sinhl(x)) / (x * x); }},
    {"asinh(x)/x", 1e6L, [](LD x) { return asinhl(x) / x; },
     [](LD x) { return (x / sqrtl(1 + x * x) - asinhl(x)) / (x * x); }},
    {"tanh(x)/x", 20.0L, [](LD x) { return tanhl(x) / x; },
     [](LD x) { return (x / (coshl(x) * coshl(x)) - tanhl(x)) / (x * x); }},
    {"artanh(x)/x", 0.99L, [](LD x) { return atanhl(x) / x; },
     [](LD x) { return (x / (1 - x * x) - atanhl(x)) / (x * x); }},
};
template <class T>
math::ValueDeriv<T> radial_eval(int which, T x) {
  switch (which) {
    case 0: return math::sinh_over_x_with_deriv(x);
    case 1: return math::asinh_over_x_with_deriv(x);
    case 2: return math::tanh_over_x_with_deriv(x);
    default: return math::artanh_over_x_with_deriv(x);
  }
}
template <class T>
math::ValueDeriv<T> radial_eval_x(int which, T x) {
  switch (which) {
    case 0: return math::sinh_over_x_with_xderiv(x);
    case 1: return math::asinh_over_x_with_xderiv(x);
    case 2: return math::tanh_over_x_with_xderiv(x);
    default: return math::artanh_over_x_with_xderiv(x);
  }
}
template <class T>
T radial_value(int which, T x) {
  switch (which) {
    case 0: return math::sinh_over_x(x);
    case 1: return math::asinh_over_x(x);
    case 2: return math::tanh_over_x(x);
    default: return math::artanh_over_x(x);
  }
}

/// Every function of kRadialRefs in T over [1e-4, x_max) (ratio 1.003): value, derivative, x f'(x),
/// the plain value function, evenness.
template <class T>
void check_radial_factors_against_long_double() {
  const LD eps = std::numeric_limits<T>::epsilon();
  const LD df_from = sizeof(T) == 4 ? 1e-4L : 0.05L;  // where the long double closed-form derivative is exact enough
  for (int which = 0; which < 4; ++which) {
    const RadialRef& ref = kRadialRefs[which];
    int checked = 0;
    for (LD xs = 1e-4L; xs < ref.x_max; xs *= 1.003L) {
      const T x = T(xs);
      const LD xl = LD(x);
      const auto vd = radial_eval<T>(which, x);
      const auto vx = radial_eval_x<T>(which, x);
      const LD f = ref.f(xl);
      INFO(ref.name << " at x = " << double(xl));
      REQUIRE(std::fabs(LD(vd.f) - f) <= 4 * eps * std::fabs(f));
      REQUIRE(vx.f == vd.f);
      const T plain = radial_value<T>(which, x);
      REQUIRE(std::fabs(LD(vd.f) - LD(plain)) <= 2 * eps * std::fabs(LD(plain)));
      const auto neg = radial_eval<T>(which, -x);  // even function, odd derivative
      REQUIRE(neg.f == vd.f);
      REQUIRE(neg.df == -vd.df);
      const auto neg_x = radial_eval_x<T>(which, -x);  // x f'(x) is even
      REQUIRE(neg_x.df == vx.df);
      if (xl >= df_from) {
        const LD df = ref.df(xl), scale = std::max(std::fabs(df), std::fabs(f) / std::max<LD>(xl, 1));
        const LD cancellation = 8 * eps * (1 + 1 / (xl * xl));
        REQUIRE(std::fabs(LD(vd.df) - df) <= cancellation * scale);
        const LD xdf = xl * df;
        // x f' = g(x) - f(x) (e.g. 1/(1 - x^2) - artanh(x)/x): a difference of two terms no larger
        // than max(|x f'|, |f|) + |x f'|, so a few eps of that, without the 1/x^2 of f'
        REQUIRE(std::fabs(LD(vx.df) - xdf) <= 6 * eps * std::max(std::fabs(xdf), std::fabs(f)));
      }
      ++checked;
    }
    CHECK(checked > 1000);
  }
}

}  // namespace hyplora::test
