// Optimisers: AdamW against its closed form, Riemannian SGD / Adam stay on the manifold over
// 10,000 steps and find the Frechet mean of symmetric points.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "hyplora/curvature.hpp"
#include "hyplora/manifold/lorentz.hpp"
#include "hyplora/manifold/poincare.hpp"
#include "hyplora/manifold/sampling.hpp"
#include "hyplora/optim/adamw.hpp"
#include "hyplora/optim/riemannian.hpp"
#include "support.hpp"

using namespace hyplora;
using namespace hyplora::optim;

TEMPLATE_TEST_CASE("AdamW follows its update rule", "[optim][adamw]", float, double) {
  using T = TestType;
  AdamWConfig c;
  c.lr = 0.1; c.beta1 = 0.8; c.beta2 = 0.95; c.eps = 1e-6; c.weight_decay = 0.3;
  std::vector<T> p{T(1.5), T(-2.0), T(0.25)};
  const std::vector<T> g0{T(0.4), T(-3.0), T(0.0)};
  AdamW<T> opt(3, c);
  // reference in long double, written out step by step
  std::vector<long double> rp(p.begin(), p.end()), m(3, 0), v(3, 0);
  for (int t = 1; t <= 5; ++t) {
    std::vector<T> g(3);
    for (int i = 0; i < 3; ++i) g[std::size_t(i)] = g0[std::size_t(i)] * T(t);  // gradients change every step
    opt.step(p.data(), g.data());
    for (int i = 0; i < 3; ++i) {
      const long double gi = g[std::size_t(i)];
      rp[i] *= 1 - c.lr * c.weight_decay;
      m[i] = c.beta1 * m[i] + (1 - c.beta1) * gi;
      v[i] = c.beta2 * v[i] + (1 - c.beta2) * gi * gi;
      const long double mh = m[i] / (1 - std::pow((long double)c.beta1, t));
      const long double vh = v[i] / (1 - std::pow((long double)c.beta2, t));
      rp[i] -= c.lr * mh / (std::sqrt(vh) + c.eps);
    }
  }
  for (int i = 0; i < 3; ++i) CHECK(double(p[std::size_t(i)]) == Approx(double(rp[i])).epsilon(double(test::eps_tol<T>(64))));
  // zero gradient: pure decoupled decay p (1 - lr wd)^t
  CHECK(double(p[2]) == Approx(0.25 * std::pow(1 - 0.1 * 0.3, 5)).epsilon(double(test::eps_tol<T>(64))));
  CHECK(opt.steps() == 5);
  std::vector<T> bad{T(1), std::numeric_limits<T>::quiet_NaN(), T(0)};
  CHECK_THROWS_WITH(opt.step(p.data(), bad.data()), Catch::Contains("gradient[1]"));
  AdamWConfig wrong = c;
  wrong.beta1 = 1.0;
  CHECK_THROWS_AS(AdamW<T>(3, wrong), std::invalid_argument);
}

TEST_CASE("AdamW minimises a quadratic", "[optim][adamw]") {
  AdamWConfig c;
  c.lr = 0.05;
  AdamW<double> opt(2, c);
  std::vector<double> p{5.0, -4.0}, g(2);
  for (int t = 0; t < 3000; ++t) {
    g[0] = 2 * (p[0] - 3.0);
    g[1] = 2 * (p[1] + 1.0);
    opt.step(p.data(), g.data());
  }
  // g = 0 is AdamW's fixed point (no weight decay here), and on a quadratic the step lr m/(sqrt(v) + eps)
  // keeps moving the iterate towards it until rounding: measured 2e-16 after 3000 steps at lr 0.05
  // (the error first drops below 1e-3 at step 174). A few ulps of the minimiser:
  const double tol = test::eps_tol<double>(64);
  CHECK(std::abs(p[0] - 3.0) <= tol * 3.0);
  CHECK(std::abs(p[1] + 1.0) <= tol * 1.0);
}

namespace {

// Noisy training-like gradients: pull towards a target that jumps every 500 steps (Euclidean
// gradient of d(x, target)^2 / 2 through dist_vjp) plus noise w d(x, z) with a fresh random point z
// and weight w ~ N(0, noise^2) (noise along geodesics: isotropic ambient noise is not a gradient
// a loss on the manifold produces, and its Riemannian version grows like |x|^2 on the hyperboloid).
// The points travel far (targets up to distance ~4 from the origin) and must stay on the manifold.
template <class M, class Opt>
void stays_on_manifold(const M& man, Opt& opt, index_t count, index_t dim, double noise) {
  using T = typename M::scalar_type;
  Rng rng(42);
  std::vector<T> pts(std::size_t(count * dim)), g(pts.size()), targets(pts.size()), z(static_cast<std::size_t>(dim));
  for (index_t i = 0; i < count; ++i) man.random(rng, pts.data() + i * dim, dim, T(0.5));
  for (int step = 1; step <= 10000; ++step) {
    if (step % 500 == 1)
      for (index_t i = 0; i < count; ++i) man.random(rng, targets.data() + i * dim, dim, T(1.5));
    std::fill(g.begin(), g.end(), T(0));
    for (index_t i = 0; i < count; ++i) {
      const T* x = pts.data() + i * dim;
      const T* y = targets.data() + i * dim;
      man.dist_vjp(x, y, man.dist(x, y, dim), g.data() + i * dim, nullptr, dim);
      man.random(rng, z.data(), dim, T(1));
      man.dist_vjp(x, z.data(), T(noise) * rng.normal<T>(), g.data() + i * dim, nullptr, dim);
    }
    opt.step(pts.data(), g.data());
    if (step % 1000 == 0)
      for (index_t i = 0; i < count; ++i) {
        INFO("step " << step << " point " << i);
        REQUIRE(man.is_point(pts.data() + i * dim, dim));
      }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("Riemannian optimisers keep points on the manifold over 10,000 steps", "[optim][riemannian]", float,
                   double) {
  using T = TestType;
  const index_t count = 6, d = 5;
  SECTION("Lorentz, Riemannian SGD with momentum") {
    Lorentz<T, RuntimeCurvature<T>> L(RuntimeCurvature<T>(T(1.7)));
    RiemannianSGD<decltype(L)> opt(L, count, d + 1, {0.01, 0.9});
    stays_on_manifold(L, opt, count, d + 1, 0.5);
  }
  SECTION("Lorentz, Riemannian Adam") {
    Lorentz<T, RuntimeCurvature<T>> L(RuntimeCurvature<T>(T(0.6)));
    RiemannianAdam<decltype(L)> opt(L, count, d + 1, {0.05, 0.9, 0.999, 1e-8});
    stays_on_manifold(L, opt, count, d + 1, 0.5);
  }
  SECTION("Poincare ball, Riemannian Adam") {
    PoincareBall<T, RuntimeCurvature<T>> B(RuntimeCurvature<T>(T(2.0)));
    RiemannianAdam<decltype(B)> opt(B, count, d, {0.05, 0.9, 0.999, 1e-8});
    stays_on_manifold(B, opt, count, d, 0.5);
  }
}

TEST_CASE("Riemannian SGD finds the Frechet mean of symmetric points", "[optim][riemannian]") {
  // Points exp_c(+-v1), exp_c(+-v2): the geodesic symmetry at c maps the set onto itself, and the
  // Frechet mean on a Hadamard manifold is unique, so it is c.
  using T = double;
  const index_t d = 3, n = d + 1;
  Lorentz<T, RuntimeCurvature<T>> L(RuntimeCurvature<T>(1.5));
  std::vector<T> w{0, 0.7, -0.4, 0.9}, c(n);
  L.expmap0(w.data(), c.data(), n);
  std::vector<std::vector<T>> pts;
  for (std::vector<T> amb : {std::vector<T>{0.3, 0.8, 0.1, -0.5}, std::vector<T>{-0.2, 0.1, 1.1, 0.4}}) {
    std::vector<T> v(n), p(n), q(n);
    L.proju(c.data(), amb.data(), v.data(), n);
    L.expmap(c.data(), v.data(), p.data(), n);
    for (auto& x : v) x = -x;
    L.expmap(c.data(), v.data(), q.data(), n);
    pts.push_back(p);
    pts.push_back(q);
  }
  // start at the origin; f(x) = 1/(2N) sum d(x, p_i)^2, Euclidean gradient through dist_vjp
  std::vector<T> x{std::sqrt(1.5), 0, 0, 0}, g(n);
  RiemannianSGD<decltype(L)> opt(L, 1, n, {0.5, 0.0});
  for (int it = 0; it < 300; ++it) {
    std::fill(g.begin(), g.end(), 0.0);
    for (const auto& p : pts) L.dist_vjp(x.data(), p.data(), L.dist(x.data(), p.data(), n) / T(pts.size()), g.data(), nullptr, n);
    opt.step(x.data(), g.data());
  }
  const T err = L.dist(x.data(), c.data(), n);
  INFO("distance to the known mean " << err);
  CHECK(err <= 1000 * std::numeric_limits<T>::epsilon());
  CHECK(L.is_point(x.data(), n));

  // The same on the Poincare ball with Riemannian SGD: points via the Lorentz -> ball isometry.
  PoincareBall<T, RuntimeCurvature<T>> B(RuntimeCurvature<T>(1.5));
  auto to_ball = [&](const std::vector<T>& X) {
    std::vector<T> p(d);
    for (index_t i = 0; i < d; ++i) p[std::size_t(i)] = std::sqrt(1.5) * X[std::size_t(i + 1)] / (std::sqrt(1.5) + X[0]);
    return p;
  };
  std::vector<std::vector<T>> bpts;
  for (const auto& p : pts) bpts.push_back(to_ball(p));
  const std::vector<T> bc = to_ball(c);
  std::vector<T> y(d, 0.0), gy(d);
  RiemannianSGD<decltype(B)> bopt(B, 1, d, {0.5, 0.0});
  for (int it = 0; it < 300; ++it) {
    std::fill(gy.begin(), gy.end(), 0.0);
    for (const auto& p : bpts) B.dist_vjp(y.data(), p.data(), B.dist(y.data(), p.data(), d) / T(bpts.size()), gy.data(), nullptr, d);
    bopt.step(y.data(), gy.data());
  }
  const T berr = B.dist(y.data(), bc.data(), d);
  INFO("ball: distance to the known mean " << berr);
  CHECK(berr <= 1000 * std::numeric_limits<T>::epsilon());
}

TEST_CASE("optimisers refuse bad points and settings before changing anything", "[optim][errors]") {
  using T = double;
  Lorentz<T, RuntimeCurvature<T>> L(RuntimeCurvature<T>(1.0));
  const std::vector<T> g{0.0, 0.1, -0.2};
  SECTION("Lorentz points: off the hyperboloid, lower sheet, NaN") {
    RiemannianAdam<decltype(L)> adam(L, 1, 3, {0.01});
    RiemannianSGD<decltype(L)> sgd(L, 1, 3, {0.01});
    for (const std::vector<T>& bad : {std::vector<T>{2.0, 0.0, 0.0}, std::vector<T>{-1.0, 0.0, 0.0},
                                       std::vector<T>{std::nan(""), 0.0, 0.0}}) {
      std::vector<T> x = bad;
      CHECK_THROWS_WITH(adam.step(x.data(), g.data()), Catch::Contains("RiemannianAdam::step") && Catch::Contains("point 0"));
      CHECK_THROWS_WITH(sgd.step(x.data(), g.data()), Catch::Contains("RiemannianSGD::step") && Catch::Contains("point 0"));
      CHECK(((x[0] == bad[0] || std::isnan(x[0])) && x[1] == bad[1] && x[2] == bad[2]));
    }
    CHECK(adam.steps() == 0);
  }
  SECTION("drift well below 10 eps^(1/3) is left to the step's projection") {
    RiemannianAdam<decltype(L)> adam(L, 1, 3, {0.01});
    std::vector<T> x{std::cosh(0.5), std::sinh(0.5), 0.0};
    x[1] *= 1 + 1e-6;  // relative residual ~1e-6
    adam.step(x.data(), g.data());
    CHECK(L.is_point(x.data(), 3));
  }
  SECTION("Poincare ball: a point outside") {
    PoincareBall<T, RuntimeCurvature<T>> B(RuntimeCurvature<T>(1.0));
    RiemannianSGD<decltype(B)> sgd(B, 2, 2, {0.01});
    std::vector<T> x{0.1, 0.2, 0.9, 0.9}, gb{0.0, 0.0, 0.0, 0.0};
    CHECK_THROWS_WITH(sgd.step(x.data(), gb.data()), Catch::Contains("point 1") && Catch::Contains("ball"));
  }
  SECTION("Poincare ball: a point just outside gets no hyperboloid drift allowance") {
    // c|x|^2 = 1.0368: the hyperboloid's 10 eps^(1/3) drift allowance once let this through in
    // float, and Adam then moved it by projx instead of by the gradient.
    PoincareBall<float> B;
    RiemannianAdam<decltype(B)> adam(B, 1, 2, {0.01f});
    RiemannianSGD<decltype(B)> sgd(B, 1, 2, {0.01f});
    std::vector<float> x{0.72f, 0.72f}, gb{0.1f, -0.1f};
    CHECK_THROWS_WITH(adam.step(x.data(), gb.data()), Catch::Contains("point 0") && Catch::Contains("ball"));
    CHECK_THROWS_WITH(sgd.step(x.data(), gb.data()), Catch::Contains("point 0") && Catch::Contains("ball"));
    CHECK((x[0] == 0.72f && x[1] == 0.72f));
  }
  SECTION("a step that makes a point non-finite says so at once") {
    // SGD, lr 1 and a constant gradient on the hyperboloid: x_0 1.5, 6.4, 3822, 3.9e307, then NaN;
    // the step that produced the NaN returned normally and only the next one threw. Adam's steps
    // have length lr: one of 1e4 from a point 12 sqrt K out overflows (cosh(700) x_0). (Adam's
    // second moment had cancelled to 0 far out, which made its lr 100 steps diverge too.)
    for (int which = 0; which < 2; ++which) {
      RiemannianSGD<decltype(L)> sgd(L, 2, 3, {1.0});
      RiemannianAdam<decltype(L)> adam(L, 2, 3, {1e4});
      std::vector<T> x{1.0, 0.0, 0.0, 1.0, 0.0, 0.0}, gc{0.0, 0.0, 0.0, 0.0, 1.0, 0.0};
      if (which == 1) x = {1.0, 0.0, 0.0, std::cosh(12.0), std::sinh(12.0), 0.0};
      bool threw = false;
      for (int k = 0; k < 20 && !threw; ++k) {
        try {
          if (which == 0) sgd.step(x.data(), gc.data());
          else adam.step(x.data(), gc.data());
          CHECK(std::isfinite(x[3]));  // a step that returns leaves finite points
        } catch (const std::runtime_error& e) {
          threw = true;
          CHECK_THAT(e.what(), Catch::Contains(which == 0 ? "RiemannianSGD::step" : "RiemannianAdam::step") &&
                                   Catch::Contains("point 1") && Catch::Contains("not finite after this step"));
        }
      }
      CHECK(threw);
    }
  }
  SECTION("settings") {
    const double inf = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(AdamW<T>(-1), Catch::Contains("negative buffer size"));
    CHECK_THROWS_WITH(AdamW<T>(3, {1e-3, 0.9, 0.999, inf, 0.0}), Catch::Contains("eps"));
    AdamW<T> ok(3);
    CHECK_THROWS_WITH(ok.set_steps(-1), Catch::Contains("step count"));
    CHECK_THROWS_WITH((RiemannianSGD<decltype(L)>(L, 1, 3, {inf, 0.0})), Catch::Contains("lr"));
    CHECK_THROWS_WITH((RiemannianAdam<decltype(L)>(L, 1, 3, {inf})), Catch::Contains("lr"));
    CHECK_THROWS_WITH((RiemannianAdam<decltype(L)>(L, -1, 3, {0.01})), Catch::Contains("count"));
  }
}

TEST_CASE("optimiser state saved and loaded continues the run exactly; a mismatched state is refused", "[optim][state]") {
  using T = double;
  const index_t count = 3, d = 4;
  Lorentz<T, RuntimeCurvature<T>> L(RuntimeCurvature<T>(1.3));
  std::vector<T> start(std::size_t(count * (d + 1)));
  for (index_t i = 0; i < count; ++i) {
    const std::vector<T> v{0.0, 0.3 * T(i + 1), -0.2, 0.1, 0.05 * T(i)};
    L.expmap0(v.data(), start.data() + i * (d + 1), d + 1);
  }
  auto grad = [&](int k) {
    std::vector<T> g(start.size());
    for (std::size_t j = 0; j < g.size(); ++j) g[j] = 0.1 * std::sin(0.7 * double(j) + 0.3 * k);
    return g;
  };
  // 6 steps in one go against 3 steps, a save, a fresh optimiser loaded from it, 3 more steps
  auto run_split = [&](auto make) {
    std::vector<T> whole = start, split = start;
    auto one = make();
    for (int k = 0; k < 6; ++k) one.step(whole.data(), grad(k).data());
    auto first = make();
    for (int k = 0; k < 3; ++k) first.step(split.data(), grad(k).data());
    auto second = make();
    if constexpr (requires { first.momentum_buffer(); }) {
      second.load_state(first.momentum_buffer(), first.steps());
    } else {
      second.load_state(first.first_moment(), first.second_moment(), first.steps());
    }
    for (int k = 3; k < 6; ++k) second.step(split.data(), grad(k).data());
    CHECK(second.steps() == 6);
    CHECK(split == whole);  // the same operations on the same values: to the bit
  };
  SECTION("Riemannian SGD with momentum") {
    run_split([&] { return RiemannianSGD<decltype(L)>(L, count, d + 1, {0.05, 0.9}); });
  }
  SECTION("Riemannian Adam") {
    run_split([&] { return RiemannianAdam<decltype(L)>(L, count, d + 1, {0.05, 0.9, 0.999, 1e-8}); });
  }
  SECTION("AdamW") {
    std::vector<T> whole(8, 0.5), split = whole, g(8);
    AdamW<T> one(8, {0.01, 0.9, 0.999, 1e-8, 0.1}), first(8, one.config()), second(8, one.config());
    for (int k = 0; k < 6; ++k) {
      for (std::size_t j = 0; j < g.size(); ++j) g[j] = std::cos(double(j) + k);
      one.step(whole.data(), g.data());
      (k < 3 ? first : second).step(split.data(), g.data());
      if (k == 2) second.load_state(first.first_moment(), first.second_moment(), first.steps());
    }
    CHECK(split == whole);
  }
  SECTION("bad states name the buffer and change nothing") {
    // a first moment of another size was accepted (mutable buffers) and the next step ran past the
    // caller's 4 parameters
    AdamW<T> adam(4);
    CHECK_THROWS_WITH(adam.load_state(std::vector<T>(16, 0.0), std::vector<T>(4, 0.0), 1),
                      Catch::Contains("first moment has 16 values, the optimiser 4"));
    CHECK_THROWS_WITH(adam.load_state(std::vector<T>(4, 0.0), std::vector<T>{0.0, -1.0, 0.0, 0.0}, 1),
                      Catch::Contains("second moment[1]") && Catch::Contains("negative"));
    CHECK_THROWS_WITH(adam.load_state(std::vector<T>(4, std::nan("")), std::vector<T>(4, 0.0), 1),
                      Catch::Contains("first moment[0]") && Catch::Contains("not finite"));
    CHECK_THROWS_WITH(adam.load_state(std::vector<T>(4, 0.0), std::vector<T>(4, 0.0), -2),
                      Catch::Contains("step count must be >= 0"));
    CHECK(adam.size() == 4);
    CHECK(adam.steps() == 0);
    RiemannianSGD<decltype(L)> sgd(L, count, d + 1, {0.05, 0.9});
    CHECK_THROWS_WITH(sgd.load_state(std::vector<T>(3, 0.0), 0), Catch::Contains("RiemannianSGD::load_state") &&
                                                                      Catch::Contains("momentum buffer has 3 values"));
    RiemannianAdam<decltype(L)> radam(L, count, d + 1);
    CHECK_THROWS_WITH(radam.load_state(radam.first_moment(), std::vector<T>(count + 1, 0.0), 0),
                      Catch::Contains("second moment has 4 values, the optimiser 3"));
  }
}

TEST_CASE("optimiser settings must keep their meaning in the scalar type (audit of 2026-11-29)", "[optim][errors]") {
  // checked in double and used in float: eps 1e-50 became 0 (a NaN parameter at a zero gradient),
  // beta2 = 1 - 1e-9 became 1, lr 1e39 inf and 1e-50 0
  auto adamw = [](AdamWConfig c) { AdamW<float> opt(4, c); };
  AdamWConfig c;
  c.eps = 1e-50;
  CHECK_THROWS_WITH(adamw(c), Catch::Contains("AdamW: eps = 1e-50 rounds to 0"));
  c = {};
  c.beta2 = 1 - 1e-9;
  CHECK_THROWS_WITH(adamw(c), Catch::Contains("beta2 = 0.999999999 rounds to 1"));
  c = {};
  c.lr = 1e39;
  CHECK_THROWS_WITH(adamw(c), Catch::Contains("lr = 1e+39 overflows"));
  c = {};
  c.lr = 1e-50;
  CHECK_THROWS_WITH(adamw(c), Catch::Contains("lr = 1e-50 rounds to 0"));
  c = {};
  c.lr = 0.0;  // lr 0 is a setting, not a rounding
  CHECK_NOTHROW(adamw(c));
  CHECK_NOTHROW(AdamW<double>(4, AdamWConfig{1e-3, 0.9, 1 - 1e-9, 1e-50, 0.0}));  // all fine in double
  AdamW<float> ok(4);
  CHECK_THROWS_WITH(ok.set_lr(1e39), Catch::Contains("overflows"));
  CHECK_NOTHROW(ok.set_lr(1e-50));  // a schedule may go towards 0
  using L = Lorentz<float, RuntimeCurvature<float>>;
  const L M{RuntimeCurvature<float>(1.f)};
  CHECK_THROWS_WITH((RiemannianAdam<L>(M, 1, 3, {1e-3, 0.9, 0.999, 1e-50})),
                    Catch::Contains("RiemannianAdam: eps = 1e-50 rounds to 0"));
  CHECK_THROWS_WITH((RiemannianSGD<L>(M, 1, 3, {1e-3, 1 - 1e-9})), Catch::Contains("RiemannianSGD: momentum"));
}

TEST_CASE("Riemannian Adam on the hyperboloid in float: the second moment far from the origin", "[optim][riemannian]") {
  // <r,r>_L = -r_0^2 + |r_s|^2 cancels by x_0^2/K: at 10 sqrt K out float gave v = 0 where the
  // value is 194, so the first step was 4e4 times too long (audit of 2026-11-29). The first Adam
  // step has Riemannian length lr (m_hat = r, v_hat = <r,r>).
  for (double K : {0.01, 1.0}) {
    for (double t : {2.0, 8.0, 10.0}) {
      auto first_step = [&](auto zero) {
        using T = decltype(zero);
        using M = Lorentz<T, RuntimeCurvature<T>>;
        const M L{RuntimeCurvature<T>(T(K))};
        std::vector<T> v{T(0), T(0.6 * t * std::sqrt(K)), T(0.8 * t * std::sqrt(K)), T(0)}, x(4);
        L.expmap0(v.data(), x.data(), 4);
        const std::vector<T> g{T(0.3), T(-0.7), T(0.2), T(0.9)};
        RiemannianAdam<M> opt(L, 1, 4, {1e-3 * std::sqrt(K), 0.9, 0.999, 1e-8});
        std::vector<T> y = x;
        opt.step(y.data(), g.data());
        std::vector<double> xd(x.begin(), x.end()), yd(y.begin(), y.end());
        const Lorentz<double, RuntimeCurvature<double>> Ld{RuntimeCurvature<double>(K)};
        Ld.projx(xd.data(), xd.data(), 4);
        Ld.projx(yd.data(), yd.data(), 4);
        return std::pair<double, double>{double(opt.second_moment()[0]), Ld.dist(xd.data(), yd.data(), 4)};
      };
      const auto [vf, stepf] = first_step(0.f);
      const auto [vd, stepd] = first_step(0.0);
      INFO("K = " << K << ", distance " << t << " sqrt K");
      CHECK(std::abs(vf - vd) <= 1e-3 * vd);
      CHECK(std::abs(stepd - 1e-3 * std::sqrt(K)) <= 1e-6 * std::sqrt(K));
      CHECK(std::abs(stepf - 1e-3 * std::sqrt(K)) <= 0.02e-3 * std::sqrt(K));  // float's expmap at x_0 ~ 1e4
    }
  }
}

TEST_CASE("Adam's first step is lr where 1 - beta is near the scalar type's rounding", "[optim]") {
  // The moments use T(beta) and the bias corrections used the double beta: in float beta2 = 1 - 1e-7
  // is 1 - 1.19e-7, and the first AdamW step was 0.916 lr (beta1 the same: 1.19 lr). Both now come
  // from T(beta), so m_hat = g and v_hat = g^2 at the first step, whatever the betas.
  for (auto [b1, b2] : {std::pair<double, double>{0.9, 1 - 1e-7}, {1 - 1e-7, 0.999}, {1 - 3e-7, 1 - 1e-7}}) {
    INFO("beta1 = " << b1 << ", beta2 = " << b2);
    AdamW<float> adam(2, {1.0, b1, b2, 1e-30, 0.0});
    std::vector<float> p{0.f, 0.f}, g{1.f, -4.f};
    adam.step(p.data(), g.data());
    CHECK(std::abs(p[0] + 1.f) <= 4 * std::numeric_limits<float>::epsilon());
    CHECK(std::abs(p[1] - 1.f) <= 4 * std::numeric_limits<float>::epsilon());
    // Riemannian Adam on the hyperboloid from the origin: a first step of Riemannian length lr
    using M = Lorentz<float>;
    RiemannianAdam<M> radam(M{}, 1, 3, {1e-2, b1, b2, 1e-30});
    std::vector<float> x{1.f, 0.f, 0.f}, eg{0.f, 3.f, -4.f};
    radam.step(x.data(), eg.data());
    std::vector<double> xd(x.begin(), x.end()), o{1.0, 0.0, 0.0};
    Lorentz<double>().projx(xd.data(), xd.data(), 3);
    CHECK(std::abs(Lorentz<double>().dist(o.data(), xd.data(), 3) - 1e-2) <= 1e-2 * 8 * std::numeric_limits<float>::epsilon());
  }
}
