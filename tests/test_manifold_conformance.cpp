// Conformance suite of the three manifolds: the properties every Riemannian manifold of the
// library must have, templated over manifold x scalar (float, double) x curvature policy.
//
// Tolerances. Each check is C * eps * S, with eps = numeric_limits<T>::epsilon() and S the
// magnitude of the compared quantity (coordinates of hyperbolic points grow like cosh(d/sqrt K),
// and an error of a few ulp in them is an error of a few ulp times that magnitude). C counts the
// rounding steps involved: a norm or dot product over n = 7 coordinates, one or two transcendental
// functions (a few ulp each), and the map's condition number at the test distances (points within
// ~2 sqrt K of the origin, where it is below ~10). C = 256 covers that with margin; the tests
// still catch any formula error, which shows up at 1e-2 .. 1 relative, far above 256 eps.
#include <algorithm>
#include "test_manifold_support.hpp"

using namespace hyplora;
using namespace hyplora::test;

namespace {
constexpr index_t kDim = 6;
constexpr int kTrials = 20;
}  // namespace

TEMPLATE_TEST_CASE("manifold: points stay on the manifold after random, expmap0, expmap and projx", "[manifold]",
                   HYPLORA_MANIFOLD_CASES(float), HYPLORA_MANIFOLD_CASES(double)) {
  using T = typename TestType::scalar;
  const auto m = TestType::make();
  const index_t n = TestType::n(kDim);
  const T s = TestType::scale();
  Rng rng(42);
  for (int trial = 0; trial < kTrials; ++trial) {
    auto x = random_point(m, rng, n, T(0.4) * s);
    REQUIRE(m.is_point(x.data(), n));
    REQUIRE_NOTHROW(m.check_point(x.data(), n));
    // the same signatures with an explicit tolerance on every manifold (docs/geometry.md's API)
    const T tol = T(4) * std::sqrt(std::numeric_limits<T>::epsilon());
    REQUIRE(m.is_point(x.data(), n, tol));
    REQUIRE_NOTHROW(m.check_point(x.data(), n, "x", tol));
    auto v = random_tangent(m, rng, x, T(1.3) * s);
    REQUIRE(m.is_vector(x.data(), v.data(), n));
    REQUIRE(m.is_vector(x.data(), v.data(), n, tol));
    REQUIRE_NOTHROW(m.check_vector(x.data(), v.data(), n, "v", tol));
    vecT<T> y(n);
    m.expmap(x.data(), v.data(), y.data(), n);
    REQUIRE_NOTHROW(m.check_point(y.data(), n, "expmap(x, v)"));
    // projx of a perturbed point lands on the manifold (and leaves manifold points fixed).
    vecT<T> z = x, pz(n);
    for (auto& zi : z) zi *= T(1.01);
    m.projx(z.data(), pz.data(), n);
    REQUIRE_NOTHROW(m.check_point(pz.data(), n, "projx(z)"));
    vecT<T> px(n);
    m.projx(x.data(), px.data(), n);
    // projx(x) = x for x on the manifold: only the time coordinate (Lorentz) is recomputed, by
    // sqrt(K + |x_s|^2), a few ulp of the largest coordinate.
    CHECK(max_abs_diff(px, x) <= T(16) * eps<T>() * (T(1) + max_abs(x)));
  }
}

TEMPLATE_TEST_CASE("manifold: exp/log round trips", "[manifold]", HYPLORA_MANIFOLD_CASES(float),
                   HYPLORA_MANIFOLD_CASES(double)) {
  using T = typename TestType::scalar;
  const auto m = TestType::make();
  const index_t n = TestType::n(kDim);
  const T s = TestType::scale();
  const auto o = origin(m, n);
  Rng rng(7);
  for (int trial = 0; trial < kTrials; ++trial) {
    // At the origin.
    auto v0 = random_tangent(m, rng, o, T(1.5) * s);
    vecT<T> x(n), w(n);
    m.expmap0(v0.data(), x.data(), n);
    m.logmap0(x.data(), w.data(), n);
    CHECK(max_abs_diff(w, v0) <= T(256) * eps<T>() * (T(1) + max_abs(v0)));
    // At a general point, both directions.
    auto p = random_point(m, rng, n, T(0.4) * s);
    auto v = random_tangent(m, rng, p, T(1.2) * s);
    vecT<T> y(n), u(n), y2(n);
    m.expmap(p.data(), v.data(), y.data(), n);
    m.logmap(p.data(), y.data(), u.data(), n);
    const T mag = T(1) + (max_abs(p) + max_abs(y)) / s;  // coordinates in units of the length scale
    CHECK(max_abs_diff(u, v) <= T(256) * eps<T>() * mag * (s + max_abs(v)));
    m.expmap(p.data(), u.data(), y2.data(), n);
    CHECK(max_abs_diff(y2, y) <= T(256) * eps<T>() * mag * mag * s);
    // Close points: log_x(y) for y within 1e-3 sqrt K keeps its relative precision (the formulas
    // avoid the cancellation of arcosh / artanh differences).
    auto vs = random_tangent(m, rng, p, T(1e-3) * s);
    m.expmap(p.data(), vs.data(), y.data(), n);
    m.logmap(p.data(), y.data(), u.data(), n);
    CHECK(max_abs_diff(u, vs) <= T(256) * eps<T>() * mag * max_abs(vs) + T(4) * eps<T>() * mag * max_abs(p));
  }
}

TEMPLATE_TEST_CASE("manifold: distance axioms and dist(x, exp_x v) = |v|_x", "[manifold]", HYPLORA_MANIFOLD_CASES(float),
                   HYPLORA_MANIFOLD_CASES(double)) {
  using T = typename TestType::scalar;
  const auto m = TestType::make();
  const index_t n = TestType::n(kDim);
  const T s = TestType::scale();
  const auto o = origin(m, n);
  Rng rng(11);
  for (int trial = 0; trial < kTrials; ++trial) {
    auto x = random_point(m, rng, n, T(0.4) * s);
    auto y = random_point(m, rng, n, T(0.4) * s);
    auto z = random_point(m, rng, n, T(0.4) * s);
    const T dxy = m.dist(x.data(), y.data(), n), dyx = m.dist(y.data(), x.data(), n);
    const T dyz = m.dist(y.data(), z.data(), n), dxz = m.dist(x.data(), z.data(), n);
    const T mag = T(1) + (max_abs(x) + max_abs(y) + max_abs(z)) / s;  // in units of the length scale
    const T tol = T(256) * eps<T>() * mag * mag * s;  // d is sqrt K times a function of coordinates ~ mag^2
    CHECK(m.dist(x.data(), x.data(), n) == T(0));
    CHECK(dxy > T(0));
    CHECK(std::abs(dxy - dyx) <= tol);
    CHECK(dxz <= dxy + dyz + tol);
    CHECK(std::abs(m.dist0(x.data(), n) - m.dist(o.data(), x.data(), n)) <= tol);
    // |logmap0(x)|_o = dist0(x)
    vecT<T> l(n);
    m.logmap0(x.data(), l.data(), n);
    CHECK(std::abs(m.norm(o.data(), l.data(), n) - m.dist0(x.data(), n)) <= tol);
    // dist(x, exp_x(v)) = |v|_x
    auto v = random_tangent(m, rng, x, T(1.1) * s);
    vecT<T> ev(n);
    m.expmap(x.data(), v.data(), ev.data(), n);
    CHECK(std::abs(m.dist(x.data(), ev.data(), n) - m.norm(x.data(), v.data(), n)) <= tol);
  }
}

TEMPLATE_TEST_CASE("manifold: parallel transport preserves inner products", "[manifold]",
                   HYPLORA_MANIFOLD_CASES(float), HYPLORA_MANIFOLD_CASES(double)) {
  using T = typename TestType::scalar;
  const auto m = TestType::make();
  const index_t n = TestType::n(kDim);
  const T s = TestType::scale();
  Rng rng(5);
  for (int trial = 0; trial < kTrials; ++trial) {
    auto x = random_point(m, rng, n, T(0.4) * s);
    auto y = random_point(m, rng, n, T(0.4) * s);
    auto u = random_tangent(m, rng, x, T(1));
    auto v = random_tangent(m, rng, x, T(1));
    vecT<T> tu(n), tv(n);
    m.transp(x.data(), y.data(), u.data(), tu.data(), n);
    m.transp(x.data(), y.data(), v.data(), tv.data(), n);
    // unit vectors: the products are dimensionless; the coordinates in units of the length scale s
    // (raw coordinates grow like sqrt K, and mag^4 of them allowed errors of 1.4 in float at K = 10)
    const T mag = T(1) + (max_abs(x) + max_abs(y)) / s;
    const T tol = T(256) * eps<T>() * mag * mag;
    CHECK(m.is_vector(y.data(), tu.data(), n));
    CHECK(std::abs(m.inner(y.data(), tu.data(), tv.data(), n) - m.inner(x.data(), u.data(), v.data(), n)) <= tol);
    CHECK(std::abs(m.norm(y.data(), tu.data(), n) - T(1)) <= tol);
    // egrad2rgrad gives a tangent vector.
    vecT<T> g(n), rg(n);
    for (auto& gi : g) gi = rng.normal<T>();
    m.egrad2rgrad(x.data(), g.data(), rg.data(), n);
    CHECK(m.is_vector(x.data(), rg.data(), n));
  }
}

TEMPLATE_TEST_CASE("manifold: far points and the ball boundary stay finite", "[manifold][numerics]",
                   HYPLORA_MANIFOLD_CASES(float), HYPLORA_MANIFOLD_CASES(double)) {
  using T = typename TestType::scalar;
  const auto m = TestType::make();
  const index_t n = TestType::n(kDim);
  const auto o = origin(m, n);
  Rng rng(3);
  for (int trial = 0; trial < kTrials; ++trial) {
    // Tangent vectors at the origin of length 50 (and 500): points at distance 50 from o.
    for (T len : {T(50), T(500)}) {
      auto v = random_tangent(m, rng, o, len);
      auto v2 = random_tangent(m, rng, o, len);
      vecT<T> x(n), y(n), l(n), g(n, T(1)), gx(n, T(0)), gy(n, T(0));
      m.expmap0(v.data(), x.data(), n);
      m.expmap0(v2.data(), y.data(), n);
      REQUIRE(all_finite(x));
      // Still a point of the manifold (cosh/sinh saturate together; the ball caps the radius).
      CHECK(m.is_point(x.data(), n));
      m.logmap0(x.data(), l.data(), n);
      REQUIRE(all_finite(l));
      const T d0 = m.dist0(x.data(), n), d = m.dist(x.data(), y.data(), n);
      REQUIRE(std::isfinite(d0));
      REQUIRE(std::isfinite(d));
      // The ball stores 1 - c|p|^2 = alpha with absolute error ~ n eps, i.e. the distance with
      // error ~ sqrt K n eps / alpha near the boundary (a property of the coordinates, not of the formulas).
      T slack = T(0);
      if constexpr (TestType::hyperbolic && TestType::manifold::extra_coords == 0)
        slack = T(16) * eps<T>() * m.sqrtK() * T(n) / TestType::manifold::alpha_of(vec::sqnorm(x.data(), n), m.K());
      REQUIRE(d0 <= len * (T(1) + T(64) * eps<T>()) + slack);
      m.logmap(x.data(), y.data(), l.data(), n);
      CHECK(all_finite(l));
      // Gradients too.
      const T dK1 = m.dist_vjp(x.data(), y.data(), T(1), gx.data(), gy.data(), n);
      const T dK2 = m.logmap0_vjp(x.data(), g.data(), gx.data(), n);
      const T dK3 = m.expmap0_vjp(v.data(), g.data(), gy.data(), n);
      CHECK(std::isfinite(dK1));
      CHECK(std::isfinite(dK2));
      CHECK(std::isfinite(dK3));
      CHECK(all_finite(gx));
      CHECK(all_finite(gy));
      // Where the coordinates can represent it, the distance is recovered exactly: Lorentz
      // x_s = sqrt K sinh(50/sqrt K) is representable while 50/sqrt K < max_exp_arg; the ball
      // can only represent sqrt(c)|p| <= 1 - 4 eps (distance ~ sqrt K log(1/eps)).
      if constexpr (std::is_same_v<typename TestType::manifold, Lorentz<T, typename TestType::manifold::curvature_type>>) {
        if (len / m.sqrtK() < Constants<T>::max_exp_arg()) CHECK(std::abs(d0 - len) <= T(64) * eps<T>() * len);
      }
    }
    // Ball boundary: points on, and just outside, the boundary, and at 1 - eps.
    if constexpr (TestType::hyperbolic && TestType::manifold::extra_coords == 0) {
      for (T r : {T(1) - eps<T>(), T(1), T(1) + T(8) * eps<T>(), T(1.5)}) {
        auto u = random_tangent(m, rng, o, T(1));
        const T s = r * m.sqrtK() / std::sqrt(std::inner_product(u.begin(), u.end(), u.begin(), T(0)));
        for (auto& ui : u) ui *= s;
        auto q = random_point(m, rng, n, T(0.3) * m.sqrtK());
        vecT<T> l(n), g(n, T(1)), gx(n, T(0));
        m.logmap0(u.data(), l.data(), n);
        CHECK(all_finite(l));
        CHECK(std::isfinite(m.dist0(u.data(), n)));
        CHECK(std::isfinite(m.dist(u.data(), q.data(), n)));
        m.logmap(q.data(), u.data(), l.data(), n);
        CHECK(all_finite(l));
        m.expmap(u.data(), q.data(), l.data(), n);
        CHECK(all_finite(l));
        CHECK(std::isfinite(m.dist_vjp(u.data(), q.data(), T(1), gx.data(), gx.data(), n)));
        CHECK(std::isfinite(m.logmap0_vjp(u.data(), g.data(), gx.data(), n)));
        CHECK(all_finite(gx));
        m.projx(u.data(), l.data(), n);
        CHECK(m.is_point(l.data(), n));
      }
    }
  }
}

TEMPLATE_TEST_CASE("manifold: a NaN coordinate gives NaN, never a finite value", "[manifold][numerics]",
                   HYPLORA_MANIFOLD_CASES(float), HYPLORA_MANIFOLD_CASES(double)) {
  // A NaN must reach the output, so that the caller's finiteness checks (the trainer's NaN policy)
  // see it. Clamps written as `a < c ? a : c`, guards `t > 0 ? f/t : limit` and float's bit-level
  // exp / log used to turn it into the value at a threshold (float sinh(NaN)/NaN gave sinh(1)).
  // The flat space's transport and its exp/log VJPs do not depend on the point and are left out;
  // Lorentz's maps at the origin and projx read the space part only (x_0 follows from x_s, and a
  // tangent vector at the origin has v_0 = 0), so a NaN in coordinate 0 is not theirs to see.
  using T = typename TestType::scalar;
  const auto m = TestType::make();
  const index_t n = TestType::n(kDim);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  Rng rng(11);
  auto any_nan = [](const vecT<T>& a) { return std::any_of(a.begin(), a.end(), [](T v) { return std::isnan(v); }); };
  for (index_t at = 0; at < n; ++at) {  // the NaN in each coordinate in turn
    INFO("NaN in coordinate " << at);
    const auto x = random_point(m, rng, n, T(0.5) * TestType::scale());
    const auto y = random_point(m, rng, n, T(0.5) * TestType::scale());
    const auto v = random_tangent(m, rng, x, T(0.7) * TestType::scale());
    const auto v0 = random_tangent(m, rng, origin(m, n), T(0.7) * TestType::scale());
    auto xn = x, yn = y, vn = v, v0n = v0;
    xn[std::size_t(at)] = yn[std::size_t(at)] = vn[std::size_t(at)] = v0n[std::size_t(at)] = nan;
    vecT<T> out(n), g(n, T(1));
    auto fresh = [&] { return vecT<T>(n, T(0)); };
    const bool space_part = at >= TestType::manifold::extra_coords;
    if (space_part) {
      m.expmap0(v0n.data(), out.data(), n);
      CHECK(any_nan(out));
      m.logmap0(xn.data(), out.data(), n);
      CHECK(any_nan(out));
      m.projx(xn.data(), out.data(), n);
      CHECK(any_nan(out));
      CHECK(std::isnan(m.dist0(xn.data(), n)));
    }
    m.expmap(x.data(), vn.data(), out.data(), n);
    CHECK(any_nan(out));
    m.expmap(xn.data(), v.data(), out.data(), n);
    CHECK(any_nan(out));
    m.logmap(x.data(), yn.data(), out.data(), n);
    CHECK(any_nan(out));
    m.logmap(xn.data(), y.data(), out.data(), n);
    CHECK(any_nan(out));
    m.transp(x.data(), y.data(), vn.data(), out.data(), n);
    CHECK(any_nan(out));
    CHECK(std::isnan(m.dist(x.data(), yn.data(), n)));
    auto gx = fresh(), gy = fresh();
    m.dist_vjp(x.data(), yn.data(), T(1), gx.data(), gy.data(), n);
    CHECK((any_nan(gx) && any_nan(gy)));
    gx = fresh();
    m.dist0_vjp(xn.data(), T(1), gx.data(), n);
    if (space_part) CHECK(any_nan(gx));
    if constexpr (TestType::hyperbolic) {
      m.transp(xn.data(), y.data(), v.data(), out.data(), n);
      CHECK(any_nan(out));
      if (space_part) {
        gy = fresh();
        m.expmap0_vjp(v0n.data(), g.data(), gy.data(), n);
        CHECK(any_nan(gy));
        gx = fresh();
        m.logmap0_vjp(xn.data(), g.data(), gx.data(), n);
        CHECK(any_nan(gx));
      }
      gx = fresh(), gy = fresh();
      m.expmap_vjp(x.data(), vn.data(), g.data(), gx.data(), gy.data(), n);
      CHECK((any_nan(gx) || any_nan(gy)));
      gx = fresh(), gy = fresh();
      m.logmap_vjp(x.data(), yn.data(), g.data(), gx.data(), gy.data(), n);
      CHECK((any_nan(gx) || any_nan(gy)));
      m.egrad2rgrad(xn.data(), g.data(), out.data(), n);
      CHECK(any_nan(out));
      if (space_part) {
        gx = fresh();
        m.projx_vjp(xn.data(), g.data(), gx.data(), n);
        CHECK(any_nan(gx));
      }
    }
    if constexpr (requires { m.lambda(x.data(), n); }) {  // the ball: the metric depends on the point
      CHECK(std::isnan(m.lambda(xn.data(), n)));
      CHECK(std::isnan(m.inner(xn.data(), v.data(), v.data(), n)));
      CHECK(std::isnan(m.norm(xn.data(), v.data(), n)));
      gx = fresh(), gy = fresh();
      auto gw = fresh();
      m.inner_vjp(xn.data(), v.data(), v.data(), T(1), gx.data(), gy.data(), gw.data(), n);
      CHECK(any_nan(gx));
    }
  }
}

TEMPLATE_TEST_CASE("manifold: default construction gives K = 1 with every curvature policy", "[manifold]", float, double) {
  // explicit Manifold(Curv c = Curv()): a braced default `= {}` copy-initialises and clang refuses
  // it for the policies whose constructors are explicit (RuntimeCurvature, LearnableCurvature)
  using T = TestType;
  const Lorentz<T, RuntimeCurvature<T>> lr;
  const Lorentz<T, LearnableCurvature<T>> ll;
  const PoincareBall<T, RuntimeCurvature<T>> pr;
  const PoincareBall<T, LearnableCurvature<T>> pl;
  const Euclidean<T, RuntimeCurvature<T>> er;
  const T tol = T(8) * std::numeric_limits<T>::epsilon();  // softplus and its inverse round
  CHECK(lr.K() == T(1));
  CHECK(std::abs(ll.K() - T(1)) <= tol);
  CHECK(pr.K() == T(1));
  CHECK(std::abs(pl.K() - T(1)) <= tol);
  CHECK(er.curvature().K() == T(1));  // the flat space itself reports K = infinity
  CHECK(std::isinf(er.K()));
}
