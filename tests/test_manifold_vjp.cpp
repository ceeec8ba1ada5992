// Every VJP of the geometry core against central finite differences, in double, with respect to
// every input coordinate and to the curvature K.
//
// Tolerance. A central difference with step h has truncation error ~ h^2 |f'''| / 6 and rounding
// error ~ eps |f| / h; with h = eps^(1/3) (times the input's scale) both are ~ eps^(2/3) ~ 4e-11.
// The check allows 2e4 eps^(2/3) ~ 7e-7 relative to the size of the gradient entries (the
// functions have third derivatives up to ~ 1e3 at the test points through cosh / 1/(1-|p|^2)).
// A wrong formula (a missing term, a sign) gives errors of order 1e-2 .. 1, so the check can fail.
#include <functional>

#include "test_manifold_support.hpp"

using namespace hyplora;
using namespace hyplora::test;

namespace {

using Vecs = std::vector<std::vector<double>>;

/// Checks vjp (grads accumulate into gins, returns dL/dK) against central differences of
/// <g, fwd(K, ins)> in each coordinate of each input and in K. `fwd` evaluates the forward map
/// with curvature K (a run-time policy), `vjp` the VJP with the case's own policy.
void check_vjp(const std::string& what, const Vecs& ins, double K, const std::vector<double>& g,
               const std::function<std::vector<double>(double, const Vecs&)>& fwd,
               const std::function<double(const Vecs&, Vecs&)>& vjp, bool check_K = true) {
  INFO(what << " at K = " << K);
  Vecs gins(ins.size());
  for (size_t j = 0; j < ins.size(); ++j) gins[j].assign(ins[j].size(), 0.25);  // accumulation: start non-zero
  const double dK = vjp(ins, gins);
  const double e = std::numeric_limits<double>::epsilon(), h0 = std::cbrt(e);
  const double tol_rel = 2e4 * std::pow(e, 2.0 / 3.0);
  auto L = [&](double KK, const Vecs& in) {
    auto out = fwd(KK, in);
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += g[i] * out[i];
    return s;
  };
  double gscale = std::abs(dK);
  for (auto& gi : gins)
    for (double v : gi) gscale = std::max(gscale, std::abs(v - 0.25));
  gscale = std::max(gscale, 1.0);
  for (size_t j = 0; j < ins.size(); ++j)
    for (size_t i = 0; i < ins[j].size(); ++i) {
      Vecs p = ins, q = ins;
      const double h = h0 * std::max(1.0, std::abs(ins[j][i]));
      p[j][i] += h;
      q[j][i] -= h;
      const double fd = (L(K, p) - L(K, q)) / (2 * h);
      INFO("input " << j << " coordinate " << i);
      CHECK(std::abs((gins[j][i] - 0.25) - fd) <= tol_rel * gscale);
    }
  if (check_K) {
    const double h = h0 * K;
    const double fd = (L(K + h, ins) - L(K - h, ins)) / (2 * h);
    INFO("d/dK");
    CHECK(std::abs(dK - fd) <= tol_rel * gscale);
  }
}

std::vector<double> gauss(Rng& rng, size_t n, double s = 1.0) {
  std::vector<double> v(n);
  for (auto& x : v) x = s * rng.normal<double>();
  return v;
}

}  // namespace

#define HYPLORA_VJP_CASES                                                                                     \
  (Case<Euclidean, double, KFlat>), (Case<Lorentz, double, KFixed<1, 10>>), (Case<Lorentz, double, KFixed<1>>), \
      (Case<Lorentz, double, KRuntime<10>>), (Case<Lorentz, double, KLearnable<5, 2>>),                       \
      (Case<PoincareBall, double, KFixed<1, 10>>), (Case<PoincareBall, double, KFixed<1>>),                   \
      (Case<PoincareBall, double, KRuntime<10>>), (Case<PoincareBall, double, KLearnable<5, 2>>)

TEMPLATE_TEST_CASE("vjp: every differentiable manifold operation matches finite differences", "[manifold][vjp]",
                   HYPLORA_VJP_CASES) {
  using M = typename TestType::manifold;
  const M m = TestType::make();
  const index_t d = 5, n = TestType::n(d);
  const double s = TestType::scale();
  const bool hyp = TestType::hyperbolic;
  const double K = hyp ? double(m.K()) : 1.0;
  auto mk = [&](double KK) { return TestType::make_with_K(KK); };
  Rng rng(123);
  for (int trial = 0; trial < 4; ++trial) {
    auto x = random_point(m, rng, n, 0.35 * s);
    auto y = random_point(m, rng, n, 0.35 * s);
    auto v = random_tangent(m, rng, x, 0.8 * s);
    auto u = random_tangent(m, rng, x, 0.8 * s);
    auto v0 = gauss(rng, n, 0.5 * s);
    auto g = gauss(rng, n);
    const double g1 = 1.3;
    // The flat space has no K: its VJPs return 0 and are checked w.r.t. inputs only.
    const bool cK = hyp;
    auto K_of = [&](double KK) { return hyp ? KK : 1.0; };
    (void)K_of;
#define MK(KK) (hyp ? mk(KK) : TestType::make_with_K(1.0))
    check_vjp("dist", {x, y}, K, {g1},
        [&](double KK, const Vecs& in) { return std::vector<double>{MK(KK).dist(in[0].data(), in[1].data(), n)}; },
        [&](const Vecs& in, Vecs& gi) { return m.dist_vjp(in[0].data(), in[1].data(), g1, gi[0].data(), gi[1].data(), n); }, cK);
    if (hyp) {
      // Points at very different depths: x near the origin, y far out. On the hyperboloid (tangent
      // length 3.5 sqrt K) (x_0 - y_0)^2 > 2 x_0 y_0, so dist takes its product branch
      // m^2 = 2(-<x,y>_L - K), which dist_vjp must differentiate as evaluated (K included). On the
      // ball, expmap0 doubles lengths (distance 2|v|): 1.75 sqrt K puts y at |y| = tanh(1.75) sqrt K,
      // where central differences are still accurate (their error grows like (1-|y|^2/K)^-3).
      auto near = random_point(m, rng, n, 0.05 * s);
      std::vector<double> dir = gauss(rng, n), far(n);
      if (n == d + 1) dir[0] = 0;
      double len = 0;
      for (double c : dir) len += c * c;
      const double reach = n == d + 1 ? 3.5 : 1.75;
      for (auto& c : dir) c *= reach * std::sqrt(K) / std::sqrt(len);
      m.expmap0(dir.data(), far.data(), n);
      if constexpr (requires { M::needs_product_form(near[0], far[0]); }) CHECK(M::needs_product_form(near[0], far[0]));
      check_vjp("dist (points at very different depths)", {near, far}, K, {g1},
          [&](double KK, const Vecs& in) { return std::vector<double>{MK(KK).dist(in[0].data(), in[1].data(), n)}; },
          [&](const Vecs& in, Vecs& gi) { return m.dist_vjp(in[0].data(), in[1].data(), g1, gi[0].data(), gi[1].data(), n); }, cK);
    }
    check_vjp("dist0", {x}, K, {g1},
        [&](double KK, const Vecs& in) { return std::vector<double>{MK(KK).dist0(in[0].data(), n)}; },
        [&](const Vecs& in, Vecs& gi) { return m.dist0_vjp(in[0].data(), g1, gi[0].data(), n); }, cK);
    check_vjp("inner", {x, u, v}, K, {g1},
        [&](double KK, const Vecs& in) { return std::vector<double>{MK(KK).inner(in[0].data(), in[1].data(), in[2].data(), n)}; },
        [&](const Vecs& in, Vecs& gi) {
          return m.inner_vjp(in[0].data(), in[1].data(), in[2].data(), g1, gi[0].data(), gi[1].data(), gi[2].data(), n);
        }, cK);
    auto unary = [&](const char* name, const std::vector<double>& in0, auto f, auto fv) {
      check_vjp(name, {in0}, K, g,
          [&](double KK, const Vecs& in) { std::vector<double> o(n); f(MK(KK), in[0].data(), o.data()); return o; },
          [&](const Vecs& in, Vecs& gi) { return fv(in[0].data(), gi[0].data()); }, cK);
    };
    auto binary = [&](const char* name, const std::vector<double>& a, const std::vector<double>& b, auto f, auto fv) {
      check_vjp(name, {a, b}, K, g,
          [&](double KK, const Vecs& in) { std::vector<double> o(n); f(MK(KK), in[0].data(), in[1].data(), o.data()); return o; },
          [&](const Vecs& in, Vecs& gi) { return fv(in[0].data(), in[1].data(), gi[0].data(), gi[1].data()); }, cK);
    };
    unary("expmap0", v0, [&](const auto& mm, const double* a, double* o) { mm.expmap0(a, o, n); },
          [&](const double* a, double* ga) { return m.expmap0_vjp(a, g.data(), ga, n); });
    unary("logmap0", x, [&](const auto& mm, const double* a, double* o) { mm.logmap0(a, o, n); },
          [&](const double* a, double* ga) { return m.logmap0_vjp(a, g.data(), ga, n); });
    auto xo = x;  // a point off the manifold (outside the ball's projx radius / off the hyperboloid)
    for (auto& c : xo) c *= hyp && n == d ? 2.0 * s / std::max(1e-3, std::sqrt(std::inner_product(x.begin(), x.end(), x.begin(), 0.0))) : 1.05;
    unary("projx", xo, [&](const auto& mm, const double* a, double* o) { mm.projx(a, o, n); },
          [&](const double* a, double* ga) { return m.projx_vjp(a, g.data(), ga, n); });
    unary("projx (on manifold)", x, [&](const auto& mm, const double* a, double* o) { mm.projx(a, o, n); },
          [&](const double* a, double* ga) { return m.projx_vjp(a, g.data(), ga, n); });
    binary("expmap", x, v, [&](const auto& mm, const double* a, const double* b, double* o) { mm.expmap(a, b, o, n); },
           [&](const double* a, const double* b, double* ga, double* gb) { return m.expmap_vjp(a, b, g.data(), ga, gb, n); });
    binary("logmap", x, y, [&](const auto& mm, const double* a, const double* b, double* o) { mm.logmap(a, b, o, n); },
           [&](const double* a, const double* b, double* ga, double* gb) { return m.logmap_vjp(a, b, g.data(), ga, gb, n); });
    // Close points: the series branches of the VJPs.
    auto vs = random_tangent(m, rng, x, 1e-3 * s);
    std::vector<double> yc(n);
    m.expmap(x.data(), vs.data(), yc.data(), n);
    binary("logmap (close points)", x, yc, [&](const auto& mm, const double* a, const double* b, double* o) { mm.logmap(a, b, o, n); },
           [&](const double* a, const double* b, double* ga, double* gb) { return m.logmap_vjp(a, b, g.data(), ga, gb, n); });
    unary("expmap0 (small)", vs, [&](const auto& mm, const double* a, double* o) { mm.expmap0(a, o, n); },
          [&](const double* a, double* ga) { return m.expmap0_vjp(a, g.data(), ga, n); });
    if constexpr (std::is_same_v<M, PoincareBall<double, typename M::curvature_type>>) {
      binary("mobius_add", x, y, [&](const auto& mm, const double* a, const double* b, double* o) { mm.mobius_add(a, b, o, n); },
             [&](const double* a, const double* b, double* ga, double* gb) { return m.mobius_add_vjp(a, b, g.data(), ga, gb, n); });
    }
    if constexpr (std::is_same_v<M, Lorentz<double, typename M::curvature_type>>) {
      const index_t ns = n - 1;
      std::vector<double> vs0(v0.begin() + 1, v0.end()), xs(x.begin() + 1, x.end()), gs(g.begin() + 1, g.end());
      check_vjp("expmap0_space", {vs0}, K, gs,
          [&](double KK, const Vecs& in) { std::vector<double> o(ns); mk(KK).expmap0_space(in[0].data(), o.data(), ns); return o; },
          [&](const Vecs& in, Vecs& gi) { return m.expmap0_space_vjp(in[0].data(), gs.data(), gi[0].data(), ns); });
      check_vjp("logmap0_space", {xs}, K, gs,
          [&](double KK, const Vecs& in) { std::vector<double> o(ns); mk(KK).logmap0_space(in[0].data(), o.data(), ns); return o; },
          [&](const Vecs& in, Vecs& gi) { return m.logmap0_space_vjp(in[0].data(), gs.data(), gi[0].data(), ns); });
      check_vjp("time_from_space", {xs}, K, {g1},
          [&](double KK, const Vecs& in) { return std::vector<double>{mk(KK).time_from_space(in[0].data(), ns)}; },
          [&](const Vecs& in, Vecs& gi) { return m.time_from_space_vjp(in[0].data(), g1, gi[0].data(), ns); });
      // Isometries (d = ns).
      std::vector<double> gp(g.begin(), g.begin() + ns);
      check_vjp("lorentz_to_poincare", {x}, K, gp,
          [&](double KK, const Vecs& in) { std::vector<double> o(ns); lorentz_to_poincare(KK, in[0].data(), o.data(), ns); return o; },
          [&](const Vecs& in, Vecs& gi) { return lorentz_to_poincare_vjp(K, in[0].data(), gp.data(), gi[0].data(), ns); });
      std::vector<double> p(ns);
      lorentz_to_poincare(K, x.data(), p.data(), ns);
      check_vjp("poincare_to_lorentz", {p}, K, g,
          [&](double KK, const Vecs& in) { std::vector<double> o(n); poincare_to_lorentz(KK, in[0].data(), o.data(), ns); return o; },
          [&](const Vecs& in, Vecs& gi) { return poincare_to_lorentz_vjp(K, in[0].data(), g.data(), gi[0].data(), ns); });
    }
#undef MK
  }
}

TEST_CASE("vjp: poincare_to_lorentz on the clamped boundary branch", "[manifold][vjp]") {
  // |p|^2 >= K (1 - eps): the denominator K - |p|^2 is clamped to K eps, which depends on K, so
  // x_0 = (K+P)/(sK eps) and x_s = 2p/eps; the K-gradient is that map's (it once treated K eps as
  // constant: +1.04e15 where the difference quotient gives -2.10e14).
  const double K = 2.0;
  const std::vector<double> p{1.2, 1.2}, g{0.3, 0.5, -0.7};
  check_vjp("poincare_to_lorentz (clamped)", {p}, K, g,
      [&](double KK, const Vecs& in) { std::vector<double> o(3); poincare_to_lorentz(KK, in[0].data(), o.data(), 2); return o; },
      [&](const Vecs& in, Vecs& gi) { return poincare_to_lorentz_vjp(K, in[0].data(), g.data(), gi[0].data(), 2); });
}

TEST_CASE("vjp: Lorentz logmap between points at very different depths (product form)", "[manifold][vjp]") {
  // (x_0 - y_0)^2 > 2 x_0 y_0: minkowski_diff_norm evaluates q = 2 (x_0 y_0 - x_s.y_s - K), and the
  // VJP must differentiate that form (the chord form's partials differ along the normal: dK 0.824
  // against 0.997 here before).
  const double K = 1.7;
  const Lorentz<double, RuntimeCurvature<double>> m{RuntimeCurvature<double>(K)};
  const std::vector<double> vx{0.0, 0.3, -0.5, 0.4}, vy{0.0, -1.6, 0.2, 2.7}, g{0.2, -0.4, 0.7, 0.3};
  std::vector<double> x(4), y(4);
  m.expmap0(vx.data(), x.data(), 4);
  m.expmap0(vy.data(), y.data(), 4);
  REQUIRE(Lorentz<double, RuntimeCurvature<double>>::needs_product_form(x[0], y[0]));
  auto mk = [](double KK) { return Lorentz<double, RuntimeCurvature<double>>(RuntimeCurvature<double>(KK)); };
  check_vjp("logmap (product form)", {x, y}, K, g,
      [&](double KK, const Vecs& in) { std::vector<double> o(4); mk(KK).logmap(in[0].data(), in[1].data(), o.data(), 4); return o; },
      [&](const Vecs& in, Vecs& gi) { return m.logmap_vjp(in[0].data(), in[1].data(), g.data(), gi[0].data(), gi[1].data(), 4); });
}

TEST_CASE("vjp: LearnableCurvature maps dL/dK to dL/draw by the chain rule", "[manifold][vjp]") {
  // dist along K = softplus(raw) + K_min: dL/draw = dL/dK * sigmoid(raw), checked by differences in raw.
  const double raw = 0.7;
  auto make = [](double r) { return Lorentz<double, LearnableCurvature<double>>(LearnableCurvature<double>::from_raw(r)); };
  const auto m = make(raw);
  Rng rng(9);
  auto x = random_point(m, rng, 4, 0.5), y = random_point(m, rng, 4, 0.5);
  std::vector<double> gx(4, 0.0), gy(4, 0.0);
  const double dK = m.dist_vjp(x.data(), y.data(), 1.0, gx.data(), gy.data(), 4);
  const double draw = dK * m.curvature().dK_dparam();
  const double e = std::numeric_limits<double>::epsilon(), h = std::cbrt(e);
  const double fd = (make(raw + h).dist(x.data(), y.data(), 4) - make(raw - h).dist(x.data(), y.data(), 4)) / (2 * h);
  CHECK(std::abs(draw - fd) <= 2e4 * std::pow(e, 2.0 / 3.0) * std::max(1.0, std::abs(fd)));
  CHECK(draw != 0.0);
}

TEST_CASE("vjp: Lorentz logmap0 in float far from the origin agrees with double", "[manifold][vjp][float]") {
  // Space parts of norm 1e10 .. 1e30 (distance 23 .. 70): f'(t) of asinh(t)/t is 4.6e-39 at t = 1e20,
  // below float's normal range; the VJP works with t f'(t) and must keep the radial term.
  for (double K : {0.5, 1.0, 3.0}) {
    const Lorentz<float, RuntimeCurvature<float>> mf{RuntimeCurvature<float>(float(K))};
    const Lorentz<double, RuntimeCurvature<double>> md{RuntimeCurvature<double>(K)};
    for (double norm : {1e10, 1e20, 1e30}) {
      const std::vector<double> dir{0.6, -0.8, 0.0}, g{0.3, 0.5, -0.7};
      std::vector<float> xf(3), gf(g.begin(), g.end()), gxf(3, 0.f);
      std::vector<double> xd(3), gxd(3, 0.0);
      for (int i = 0; i < 3; ++i) { xf[std::size_t(i)] = float(norm * dir[std::size_t(i)]); xd[std::size_t(i)] = double(xf[std::size_t(i)]); }
      const double dKf = mf.logmap0_space_vjp(xf.data(), gf.data(), gxf.data(), 3);
      const double dKd = md.logmap0_space_vjp(xd.data(), g.data(), gxd.data(), 3);
      // radial part of the gradient: x_s.g_x differs from f x_s.g by t f'(t) (x_s.g)/|x_s| = O(log t / t)
      double scale = 0;
      for (double v : gxd) scale = std::max(scale, std::abs(v));
      INFO("K = " << K << ", |x_s| = " << norm);
      for (int i = 0; i < 3; ++i)
        CHECK(std::abs(double(gxf[std::size_t(i)]) - gxd[std::size_t(i)]) <= 64 * std::numeric_limits<float>::epsilon() * scale);
      CHECK(std::abs(dKf - dKd) <= 64 * std::numeric_limits<float>::epsilon() * std::abs(dKd));
    }
  }
}

TEST_CASE("vjp: float VJPs far out and in the saturated regions agree with double (audit of 2026-11-29)",
          "[manifold][vjp][float]") {
  // Each case failed before: a product such as den^2, r^2 or f'(t)/t left float's range although the
  // gradient itself is of ordinary size (NaN dK, a dropped radial term, a gradient of 2.8e7 for 0).
  const double tol = 64 * std::numeric_limits<float>::epsilon();
  auto close = [&](const std::vector<float>& a, const std::vector<double>& b) {
    double scale = 0;
    for (double v : b) scale = std::max(scale, std::abs(v));
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!(std::abs(double(a[i]) - b[i]) <= tol * scale)) return false;
    return true;
  };
  auto close1 = [&](double a, double b) { return std::abs(a - b) <= tol * std::abs(b); };
  SECTION("lorentz_to_poincare_vjp 45-60 sqrt K from the origin") {
    for (double K : {0.5, 1.0, 4.0})
      for (double xs : {1e18, 2e19, 1e25}) {
        std::vector<float> xf{0.f, float(xs), float(-0.5 * xs)}, gf{0.7f, -0.3f}, gxf(3, 0.f);
        Lorentz<float, RuntimeCurvature<float>>(RuntimeCurvature<float>(float(K))).projx(xf.data(), xf.data(), 3);
        std::vector<double> xd(xf.begin(), xf.end()), gd{0.7, -0.3}, gxd(3, 0.0);
        const float dKf = lorentz_to_poincare_vjp(float(K), xf.data(), gf.data(), gxf.data(), 2);
        const double dKd = lorentz_to_poincare_vjp(K, xd.data(), gd.data(), gxd.data(), 2);
        INFO("K = " << K << ", |x_s| = " << xs);
        CHECK(std::isfinite(dKf));
        CHECK(close1(dKf, dKd));
        CHECK(close(gxf, gxd));
      }
    // double at 1e200 (distance 461): den^2 overflowed double; long double is the reference
    std::vector<double> xd{0.0, 1e200, 0.0}, gd{1.0, 0.0}, gxd(3, 0.0);
    Lorentz<double>().projx(xd.data(), xd.data(), 3);
    std::vector<long double> xl(xd.begin(), xd.end()), gl{1.0L, 0.0L}, gxl(3, 0.0L);
    const double dKd = lorentz_to_poincare_vjp(1.0, xd.data(), gd.data(), gxd.data(), 2);
    const long double dKl = lorentz_to_poincare_vjp(1.0L, xl.data(), gl.data(), gxl.data(), 2);
    CHECK(std::abs(dKd - double(dKl)) <= 8 * std::numeric_limits<double>::epsilon() * std::abs(double(dKl)));
    CHECK(std::abs(gxd[0] - double(gxl[0])) <= 8 * std::numeric_limits<double>::epsilon() * std::abs(double(gxl[0])));
  }
  SECTION("Lorentz expmap0_vjp where the map is saturated, also where |v|/sqrt K overflows float") {
    // float saturates at t = 80: x = sqrt K (cosh 80, sinh(80) vhat), so (in double, analytically)
    // gv = sinh(80) sqrt K / |v| (g_s - (vhat.g_s) vhat), dL/dK = (sinh(80) vhat.g_s + cosh(80) g_0) / (2 sqrt K)
    const double sh = std::sinh(80.0), ch = std::cosh(80.0);
    for (double K : {1e-6, 1.0})
      for (double nv : {1e20, 1e27, 1e30, 4e35}) {
        const Lorentz<float, RuntimeCurvature<float>> mf{RuntimeCurvature<float>(float(K))};
        std::vector<float> vf{0.f, float(0.6 * nv), float(-0.8 * nv)}, gf{0.4f, 1.f, 0.5f}, gvf(3, 0.f), xf(3);
        const float dKf = mf.expmap0_vjp(vf.data(), gf.data(), gvf.data(), 3);
        mf.expmap0(vf.data(), xf.data(), 3);
        const double sK = std::sqrt(double(float(K))), vn = std::hypot(double(vf[1]), double(vf[2]));
        const double u1 = double(vf[1]) / vn, u2 = double(vf[2]) / vn, ug = u1 * 1.0 + u2 * 0.5;
        const std::vector<double> gvd{0.0, sh * sK / vn * (1.0 - ug * u1), sh * sK / vn * (0.5 - ug * u2)};
        const double dKd = (sh * ug + ch * 0.4) / (2 * sK);
        INFO("K = " << K << ", |v| = " << nv);
        CHECK(vec::all_finite(xf.data(), 3));
        CHECK(std::abs(double(xf[1]) - sh * sK * u1) <= tol * sh * sK);
        CHECK(close1(dKf, dKd));
        CHECK(close(gvf, gvd));
        CHECK(gvf[0] == 0.f);  // v_0 is not used
      }
  }
  SECTION("dist and dist0 VJPs at subnormal points") {
    // g / |x| overflowed for |x| ~ 1e-40 (inf where the gradient is 1 or 2)
    for (float s : {1e-38f, 5e-39f, 1e-40f}) {
      INFO("|x| = " << s);
      float x[2] = {s, 0.f}, z[2] = {0.f, 0.f}, gb[2] = {0.f, 0.f}, ge[2] = {0.f, 0.f}, gz[2] = {0.f, 0.f}, gq[2] = {0.f, 0.f};
      PoincareBall<float>().dist0_vjp(x, 1.f, gb, 2);
      Euclidean<float>().dist0_vjp(x, 1.f, ge, 2);
      PoincareBall<float>().dist_vjp(z, x, 1.f, gz, gq, 2);
      CHECK(std::abs(gb[0] - 2.f) <= 4 * std::numeric_limits<float>::epsilon());  // d = 2 artanh|x| ~ 2|x|
      CHECK(std::abs(ge[0] - 1.f) <= 4 * std::numeric_limits<float>::epsilon());
      CHECK(std::abs(gq[0] - 2.f) <= 4 * std::numeric_limits<float>::epsilon());
      CHECK(std::abs(gz[0] + 2.f) <= 4 * std::numeric_limits<float>::epsilon());
      float xl[3] = {1.f, s, 0.f}, o[3] = {1.f, 0.f, 0.f}, gl[3] = {0.f, 0.f, 0.f}, g1[3] = {0.f, 0.f, 0.f}, g2[3] = {0.f, 0.f, 0.f};
      Lorentz<float>().dist0_vjp(xl, 1.f, gl, 3);
      Lorentz<float>().dist_vjp(o, xl, 1.f, g1, g2, 3);
      CHECK(std::abs(gl[1] - 1.f) <= 4 * std::numeric_limits<float>::epsilon());
      CHECK((g2[0] == 0.f && std::abs(g2[1] - 1.f) <= 4 * std::numeric_limits<float>::epsilon()));
      CHECK(std::abs(g1[1] + 1.f) <= 4 * std::numeric_limits<float>::epsilon());
    }
  }
  SECTION("Poincare expmap0_vjp (capped) and projx_vjp beyond |v| = 1.8e19") {
    const PoincareBall<float> bf;
    const PoincareBall<double> bd;
    for (double nv : {1e19, 2.8e19, 1e30}) {
      std::vector<float> vf{float(nv / std::sqrt(2.0)), float(nv / std::sqrt(2.0))}, gf{1.f, 0.f}, gvf(2, 0.f), gxf(2, 0.f);
      std::vector<double> vd(vf.begin(), vf.end()), gd{1.0, 0.0}, gvd(2, 0.0), gxd(2, 0.0);
      const float dKf = bf.expmap0_vjp(vf.data(), gf.data(), gvf.data(), 2);
      const double dKd = bd.expmap0_vjp(vd.data(), gd.data(), gvd.data(), 2);
      const float pKf = bf.projx_vjp(vf.data(), gf.data(), gxf.data(), 2);
      // projx's radius (1 - ball_eps) sqrt K differs between the types: the float map, in double
      const double R = 1.0 - double(Constants<float>::ball_eps()), vn = std::hypot(vd[0], vd[1]);
      const double ug = vd[0] / vn;  // vhat.g with g = e1
      gxd = {R / vn * (1.0 - ug * vd[0] / vn), R / vn * (0.0 - ug * vd[1] / vn)};
      const double pKd = ug * R / 2.0;
      INFO("|v| = " << nv);
      CHECK(close1(dKf, dKd));
      CHECK(close(gvf, gvd));
      CHECK(close1(pKf, pKd));
      CHECK(close(gxf, gxd));
      CHECK(gvf[1] < 0.f);  // the radial term: g - (vhat.g) vhat = (1/2, -1/2)
    }
  }
}

TEST_CASE("vjp: Lorentz dist0 far out in float, expmap saturated (a review of the audit's fixes, 2026-11-29)",
          "[manifold][vjp][float]") {
  SECTION("dist0_vjp 50-79 sqrt K from the origin: (g/r)/|x_s| underflows to a subnormal or 0") {
    // dd0/dx_s = x_s / (|x_s| sqrt(1 + |x_s|^2/K)) ~ sqrt K / |x_s| ~ 1e-26 at distance 60: it was 0
    // (the gradient through expmap0 then 0 where it is 1)
    for (double K : {0.25, 1.0})
      for (double dist : {50.0, 60.0, 69.0, 79.0}) {
        const Lorentz<float, RuntimeCurvature<float>> mf{RuntimeCurvature<float>(float(K))};
        std::vector<float> v{0.f, float(0.6 * dist * std::sqrt(K)), float(-0.8 * dist * std::sqrt(K))}, x(3), gx(3, 0.f);
        mf.expmap0(v.data(), x.data(), 3);
        const float dKf = mf.dist0_vjp(x.data(), 1.f, gx.data(), 3);
        const Lorentz<double, RuntimeCurvature<double>> md{RuntimeCurvature<double>(double(float(K)))};
        std::vector<double> xd(x.begin(), x.end()), gxd(3, 0.0);
        const double dKd = md.dist0_vjp(xd.data(), 1.0, gxd.data(), 3);
        INFO("K = " << K << ", distance " << dist << " sqrt K: gx_s " << gx[1] << ", " << gx[2] << " (double "
                    << gxd[1] << ", " << gxd[2] << ")");
        for (int i = 1; i < 3; ++i)
          CHECK(std::abs(double(gx[std::size_t(i)]) - gxd[std::size_t(i)]) <=
                16 * std::numeric_limits<float>::epsilon() * std::abs(gxd[std::size_t(i)]));
        CHECK(std::abs(double(dKf) - dKd) <= 16 * std::numeric_limits<float>::epsilon() * std::abs(dKd));
      }
  }
  SECTION("expmap_vjp beyond max_exp_arg is the VJP of the saturated map (double, central differences)") {
    // y = cosh(700) x + sinh(700) sqrt K v/|v|_L at t = |v|_L/sqrt K > 700: the VJP took the map as
    // constant in v and K there (a documented approximation until 2026-11-29)
    for (double K : {0.5, 2.0}) {
      const double sK = std::sqrt(K);
      auto manifold = [](double k) { return Lorentz<double, RuntimeCurvature<double>>{RuntimeCurvature<double>(k)}; };
      std::vector<double> x{sK, 0.0, 0.0}, v{0.0, 600.0 * sK, -450.0 * sK}, g{0.3, -0.5, 0.8}, gx(3, 0.0), gv(3, 0.0);
      const double dK = manifold(K).expmap_vjp(x.data(), v.data(), g.data(), gx.data(), gv.data(), 3);
      auto loss = [&](const std::vector<double>& vv, double k) {
        std::vector<double> y(3);
        manifold(k).expmap(x.data(), vv.data(), y.data(), 3);
        return g[0] * y[0] + g[1] * y[1] + g[2] * y[2];
      };
      const double scale = std::abs(loss(v, K));  // ~cosh(700) sqrt K: the differences' rounding
      for (int i = 0; i < 3; ++i) {
        const double h = 1e-3 * sK;
        std::vector<double> vp = v, vm = v;
        vp[std::size_t(i)] += h;
        vm[std::size_t(i)] -= h;
        const double fd = (loss(vp, K) - loss(vm, K)) / (2 * h);
        INFO("K = " << K << ", dv_" << i << ": " << gv[std::size_t(i)] << " (central differences " << fd << ")");
        CHECK(std::abs(gv[std::size_t(i)] - fd) <= 1e-6 * std::abs(fd) + 64 * std::numeric_limits<double>::epsilon() * scale / h);
      }
      const double hK = 1e-6 * K, fdK = (loss(v, K + hK) - loss(v, K - hK)) / (2 * hK);
      INFO("K = " << K << ", dK " << dK << " (central differences " << fdK << ")");
      CHECK(std::abs(dK - fdK) <= 1e-6 * std::abs(fdK) + 64 * std::numeric_limits<double>::epsilon() * scale / hK);
    }
  }
  SECTION("float expmap and expmap_vjp where t = |v|_L / sqrt K overflows (K = 1e-6, |v| = 4e35)") {
    const Lorentz<float, RuntimeCurvature<float>> mf{RuntimeCurvature<float>(1e-6f)};
    const float sK = std::sqrt(1e-6f);
    std::vector<float> x{sK, 0.f, 0.f}, v{0.f, 2.4e35f, -3.2e35f}, y(3), g{0.3f, -0.5f, 0.8f}, gx(3, 0.f), gv(3, 0.f);
    mf.expmap(x.data(), v.data(), y.data(), 3);
    REQUIRE(vec::all_finite(y.data(), 3));
    const double sh = std::sinh(80.0), ch = std::cosh(80.0), u1 = 0.6, u2 = -0.8;
    CHECK(std::abs(double(y[0]) - ch * sK) <= 16 * std::numeric_limits<float>::epsilon() * ch * sK);
    CHECK(std::abs(double(y[1]) - sh * sK * u1) <= 16 * std::numeric_limits<float>::epsilon() * sh * sK);
    CHECK(mf.is_point(y.data(), 3));
    const float dK = mf.expmap_vjp(x.data(), v.data(), g.data(), gx.data(), gv.data(), 3);
    // gv = s (g - (g.u) J u), s = sinh(80) sqrt K / |v|; dL/dK = s (g.u) |v| / (2K) = sinh(80) (g.u) / (2 sqrt K)
    const double ug = -0.5 * u1 + 0.8 * u2, s = sh * double(sK) / 4e35;
    CHECK(std::abs(double(dK) - sh * ug / (2 * double(sK))) <= 16 * std::numeric_limits<float>::epsilon() * std::abs(sh * ug / (2 * double(sK))));
    CHECK(std::abs(double(gv[1]) - s * (-0.5 - ug * u1)) <= 16 * std::numeric_limits<float>::epsilon() * s);
    CHECK(std::abs(double(gv[2]) - s * (0.8 - ug * u2)) <= 16 * std::numeric_limits<float>::epsilon() * s);
    CHECK(std::abs(double(gx[0]) - ch * 0.3) <= 16 * std::numeric_limits<float>::epsilon() * ch);
  }
  SECTION("dL/dK where |v| t f'(t) (g.u) overflows before the division by 2K (K = 1e6)") {
    // A second review: sinh(max) sqrt K (g.u) overflowed (inf) where dL/dK = sinh(max) (g.u) / (2 sqrt K)
    // is in range; the same in expmap0's radial VJP, and t^2 in the unsaturated expmap_vjp (double).
    const double sh = std::sinh(80.0);
    const Lorentz<float, RuntimeCurvature<float>> mf{RuntimeCurvature<float>(1e6f)};
    std::vector<float> x{1e3f, 0.f, 0.f}, v{0.f, 6e4f, 8e4f}, g{0.f, 18.f, 24.f}, gx(3, 0.f), gv(3, 0.f);  // t = 100, g.u = 30
    const double want = sh * 30.0 / (2 * 1e3);
    const float dK = mf.expmap_vjp(x.data(), v.data(), g.data(), gx.data(), gv.data(), 3);
    CHECK(std::abs(double(dK) - want) <= 16 * std::numeric_limits<float>::epsilon() * want);
    // expmap0 from the origin is the same map: its space part's dL/dK is the same number
    const float dK0 = mf.expmap0_vjp(v.data(), std::vector<float>{0.f, 18.f, 24.f}.data(), gv.data(), 3);
    CHECK(std::abs(double(dK0) - want) <= 16 * std::numeric_limits<float>::epsilon() * want);
    const Lorentz<double, RuntimeCurvature<double>> md{RuntimeCurvature<double>(1e6)};
    const Lorentz<long double, RuntimeCurvature<long double>> ml{RuntimeCurvature<long double>(1e6L)};
    for (double t : {699.99, 750.0}) {
      std::vector<double> xd{1e3, 0.0, 0.0}, vd{0.0, 600.0 * t, 800.0 * t}, gd{0.0, 60.0, 80.0}, gxd(3, 0.0), gvd(3, 0.0);
      std::vector<long double> xl(xd.begin(), xd.end()), vl(vd.begin(), vd.end()), gl(gd.begin(), gd.end()), gxl(3, 0.0L),
          gvl(3, 0.0L);
      const double dKd = md.expmap_vjp(xd.data(), vd.data(), gd.data(), gxd.data(), gvd.data(), 3);
      // long double saturates at t = 700 as double does, with 4932 decimal exponents of range
      const long double dKl = ml.expmap_vjp(xl.data(), vl.data(), gl.data(), gxl.data(), gvl.data(), 3);
      INFO("double, t = " << t << ": dK " << dKd << " (reference " << double(dKl) << ")");
      CHECK(std::isfinite(dKd));
      CHECK(std::abs(dKd - double(dKl)) <= 64 * std::numeric_limits<double>::epsilon() * std::abs(double(dKl)));
    }
  }
}
