#pragma once
// Shared set-up of the manifold test translation units: the manifold x scalar x curvature cases.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <numeric>
#include <ratio>
#include <vector>

// Only the geometry headers (not the umbrella): these tests must not depend on other areas.
#include <hyplora/curvature.hpp>
#include <hyplora/manifold/batched.hpp>
#include <hyplora/manifold/euclidean.hpp>
#include <hyplora/manifold/isometry.hpp>
#include <hyplora/manifold/lorentz.hpp>
#include <hyplora/manifold/poincare.hpp>
#include <hyplora/manifold/sampling.hpp>

namespace hyplora::test {

// Curvature "tags": how a case builds its policy for scalar T.
template <long N, long D = 1>
struct KFixed {
  template <class T>
  using policy = FixedCurvature<T, std::ratio<N, D>>;
  template <class T>
  static policy<T> make() { return {}; }
  static constexpr double value = double(N) / double(D);
};
template <long N, long D = 1>
struct KRuntime {
  template <class T>
  using policy = RuntimeCurvature<T>;
  template <class T>
  static policy<T> make() { return policy<T>(T(double(N) / double(D))); }
  static constexpr double value = double(N) / double(D);
};
template <long N, long D = 1>
struct KLearnable {
  template <class T>
  using policy = LearnableCurvature<T>;
  template <class T>
  static policy<T> make() { return policy<T>(T(double(N) / double(D))); }
  static constexpr double value = double(N) / double(D);
};
struct KFlat {
  template <class T>
  using policy = FlatCurvature<T>;
  template <class T>
  static policy<T> make() { return {}; }
  static constexpr double value = std::numeric_limits<double>::infinity();
};

/// One test case: manifold template Man over scalar T with curvature tag Tag.
template <template <class, class> class Man, class T, class Tag>
struct Case {
  using scalar = T;
  using manifold = Man<T, typename Tag::template policy<T>>;
  /// The same manifold with a run-time curvature K (finite differences in K).
  using runtime_manifold = Man<T, RuntimeCurvature<T>>;
  static manifold make() { return manifold(Tag::template make<T>()); }
  static runtime_manifold make_with_K(T K) { return runtime_manifold(RuntimeCurvature<T>(K)); }
  static constexpr bool hyperbolic = manifold::is_hyperbolic;
  /// Stored coordinates for intrinsic dimension d.
  static index_t n(index_t d) { return d + manifold::extra_coords; }
  /// Length scale of the space: sqrt K (1 for the flat space).
  static T scale() { return Tag::value == std::numeric_limits<double>::infinity() ? T(1) : T(std::sqrt(Tag::value)); }
};

template <class T>
using vecT = std::vector<T>;

/// Origin: expmap0 of the zero vector.
template <class M, class T = typename M::scalar_type>
vecT<T> origin(const M& m, index_t n) {
  vecT<T> z(n, T(0)), o(n);
  m.expmap0(z.data(), o.data(), n);
  return o;
}
/// Wrapped-normal point with per-coordinate spread `sigma`.
template <class M, class T = typename M::scalar_type>
vecT<T> random_point(const M& m, Rng& rng, index_t n, T sigma) {
  vecT<T> x(n);
  m.random(rng, x.data(), n, sigma);
  return x;
}
/// Tangent vector at x with Riemannian norm `len`.
template <class M, class T = typename M::scalar_type>
vecT<T> random_tangent(const M& m, Rng& rng, const vecT<T>& x, T len) {
  const index_t n = index_t(x.size());
  vecT<T> u(n), v(n);
  for (auto& ui : u) ui = rng.normal<T>();
  m.proju(x.data(), u.data(), v.data(), n);
  const T s = len / m.norm(x.data(), v.data(), n);
  for (auto& vi : v) vi *= s;
  return v;
}
template <class T>
T max_abs_diff(const vecT<T>& a, const vecT<T>& b) {
  T m = T(0);
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}
template <class T>
T max_abs(const vecT<T>& a) {
  T m = T(0);
  for (auto v : a) m = std::max(m, std::abs(v));
  return m;
}
template <class T>
bool all_finite(const vecT<T>& a) {
  for (auto v : a)
    if (!std::isfinite(v)) return false;
  return true;
}
template <class T>
constexpr T eps() {
  return std::numeric_limits<T>::epsilon();
}

}  // namespace hyplora::test

// The conformance cases: 3 manifolds x {float, double} x curvature (fixed 0.1 and 1, run-time 10,
// learnable 2.5); the flat space has its one policy.
#define HYPLORA_MANIFOLD_CASES(T)                                                                         \
  (hyplora::test::Case<hyplora::Euclidean, T, hyplora::test::KFlat>),                                    \
      (hyplora::test::Case<hyplora::Lorentz, T, hyplora::test::KFixed<1, 10>>),                          \
      (hyplora::test::Case<hyplora::Lorentz, T, hyplora::test::KFixed<1>>),                              \
      (hyplora::test::Case<hyplora::Lorentz, T, hyplora::test::KRuntime<10>>),                           \
      (hyplora::test::Case<hyplora::Lorentz, T, hyplora::test::KLearnable<5, 2>>),                       \
      (hyplora::test::Case<hyplora::PoincareBall, T, hyplora::test::KFixed<1, 10>>),                     \
      (hyplora::test::Case<hyplora::PoincareBall, T, hyplora::test::KFixed<1>>),                         \
      (hyplora::test::Case<hyplora::PoincareBall, T, hyplora::test::KRuntime<10>>),                      \
      (hyplora::test::Case<hyplora::PoincareBall, T, hyplora::test::KLearnable<5, 2>>)
