// Cross-check of the adapters against the manifolds of include/hyplora/manifold/:
//  - hyplora_lorentz: the radial form (Adapter) == the method through Lorentz coordinates
//    (expmap0 -> space part -> B A -> time_from_space -> logmap0) == the method through the
//    Poincare isometry (ball expmap0 -> to Lorentz -> B A -> to ball -> ball logmap0);
//  - hyplora_poincare: Adapter == PoincareBall expmap0 / projx / logmap0.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "adapter_test_util.hpp"
#include "hyplora/adapter/adapter.hpp"
#include "hyplora/backend/cpu.hpp"
#include "hyplora/manifold/isometry.hpp"
#include "hyplora/manifold/lorentz.hpp"
#include "hyplora/manifold/poincare.hpp"

using namespace hyplora;
using namespace hyplora::adapter;
using hyplora::test::random_vec;

namespace {

template <class T>
std::vector<T> matvec(const T* M, index_t rows, index_t cols, const std::vector<T>& x) {
  std::vector<T> y(static_cast<std::size_t>(rows), T(0));
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) y[static_cast<std::size_t>(i)] += M[i * cols + j] * x[static_cast<std::size_t>(j)];
  return y;
}

template <class T>
T max_abs(const std::vector<T>& v) {
  T m = 0;
  for (T x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEMPLATE_TEST_CASE("Lorentz method: radial form, Lorentz coordinates and Poincare isometry agree", "[adapter][geometry]",
                   float, double) {
  using T = TestType;
  AdapterConfig c;
  c.d_in = 12; c.d_out = 9; c.rank = 4; c.alpha = 4; c.seed = 31;  // scaling 1
  c.scale = ScaleMode::fixed; c.scale_init = 2.0;
  for (double K : {0.5, 1.0, 2.3}) {
    c.K_init = K;
    Adapter<HypLoraLorentz, T, backend::Cpu> ad(c);
    hyplora::test::randomize_B(ad, 3, 0.8);
    const index_t n = 5, di = c.d_in, dO = c.d_out;
    auto X = random_vec<T>(static_cast<std::size_t>(n * di), 41, 1.2);
    std::vector<T> Y(static_cast<std::size_t>(n * dO), T(0));
    ad.forward_branch(X.data(), Y.data(), n, false);
    const T* A = ad.A();
    const T* B = ad.B();
    Lorentz<T, RuntimeCurvature<T>> L{RuntimeCurvature<T>(T(K))};
    PoincareBall<T, RuntimeCurvature<T>> P{RuntimeCurvature<T>(T(K))};
    for (index_t i = 0; i < n; ++i) {
      std::vector<T> radial(Y.begin() + i * dO, Y.begin() + (i + 1) * dO);
      // (1) Lorentz coordinates: tangent vector (0, x/s) at the origin
      std::vector<T> v(static_cast<std::size_t>(di + 1), T(0)), xl(static_cast<std::size_t>(di + 1));
      for (index_t j = 0; j < di; ++j) v[static_cast<std::size_t>(j + 1)] = X[static_cast<std::size_t>(i * di + j)] / T(2.0);
      L.expmap0(v.data(), xl.data(), di + 1);
      REQUIRE(L.is_point(xl.data(), di + 1));
      std::vector<T> us(xl.begin() + 1, xl.end());
      auto ys = matvec(B, dO, c.rank, matvec(A, c.rank, di, us));
      std::vector<T> yl(static_cast<std::size_t>(dO + 1)), dl(static_cast<std::size_t>(dO + 1));
      yl[0] = L.time_from_space(ys.data(), dO);
      for (index_t o = 0; o < dO; ++o) yl[static_cast<std::size_t>(o + 1)] = ys[static_cast<std::size_t>(o)];
      REQUIRE(L.is_point(yl.data(), dO + 1));
      L.logmap0(yl.data(), dl.data(), dO + 1);
      std::vector<T> lorentz(dl.begin() + 1, dl.end());
      // (2) Poincare isometry: ball expmap0 of v/2 (the ball metric at 0 is 2x Euclidean) is the
      //     image of the Lorentz expmap0(v); back to Lorentz for the space part, B A, then to the
      //     ball and 2 logmap0.
      std::vector<T> vb(static_cast<std::size_t>(di)), pb(static_cast<std::size_t>(di)), xb(static_cast<std::size_t>(di + 1));
      for (index_t j = 0; j < di; ++j) vb[static_cast<std::size_t>(j)] = v[static_cast<std::size_t>(j + 1)] / T(2);
      P.expmap0(vb.data(), pb.data(), di);
      poincare_to_lorentz(T(K), pb.data(), xb.data(), di);
      std::vector<T> ub(xb.begin() + 1, xb.end());
      auto yb = matvec(B, dO, c.rank, matvec(A, c.rank, di, ub));
      std::vector<T> ylb(static_cast<std::size_t>(dO + 1)), q(static_cast<std::size_t>(dO)), db(static_cast<std::size_t>(dO));
      ylb[0] = L.time_from_space(yb.data(), dO);
      for (index_t o = 0; o < dO; ++o) ylb[static_cast<std::size_t>(o + 1)] = yb[static_cast<std::size_t>(o)];
      lorentz_to_poincare(T(K), ylb.data(), q.data(), dO);
      P.logmap0(q.data(), db.data(), dO);
      for (auto& x : db) x *= T(2);

      const T scale = std::max(T(1), max_abs(radial));
      INFO("K = " << K << " row " << i);
      // same formulas as the radial form, different evaluation order: a few eps per operation,
      // summed over the d_in + r terms of the matrix products
      const T tol_l = hyplora::test::eps_tol<T>(T(8 * (di + c.rank))) * scale;
      // the ball route goes through (K - |p|^2) and artanh near the boundary: condition number
      // grows like cosh^2 of the distance (|x/s| <= 2 here, factor <= ~15)
      const T tol_p = hyplora::test::eps_tol<T>(T(128 * (di + c.rank))) * scale;
      for (index_t o = 0; o < dO; ++o) {
        CHECK(std::abs(radial[static_cast<std::size_t>(o)] - lorentz[static_cast<std::size_t>(o)]) <= tol_l);
        CHECK(std::abs(radial[static_cast<std::size_t>(o)] - db[static_cast<std::size_t>(o)]) <= tol_p);
      }
      for (index_t j = 0; j < di; ++j) CHECK(std::abs(us[static_cast<std::size_t>(j)] - ub[static_cast<std::size_t>(j)]) <= tol_p * max_abs(us));
    }
  }
}

TEMPLATE_TEST_CASE("Poincare method equals PoincareBall expmap0 / projx / logmap0", "[adapter][geometry]", float, double) {
  using T = TestType;
  AdapterConfig c;
  c.d_in = 10; c.d_out = 8; c.rank = 3; c.alpha = 3; c.seed = 8;
  c.scale = ScaleMode::fixed; c.scale_init = 1.5;
  c.K_init = 0.7;
  Adapter<HypLoraPoincare, T, backend::Cpu> ad(c);
  hyplora::test::randomize_B(ad, 6, 0.5);
  const index_t n = 4, di = c.d_in, dO = c.d_out;
  auto X = random_vec<T>(static_cast<std::size_t>(n * di), 12, 1.0);
  std::vector<T> Y(static_cast<std::size_t>(n * dO), T(0));
  ad.forward_branch(X.data(), Y.data(), n, false);
  PoincareBall<T, RuntimeCurvature<T>> P(RuntimeCurvature<T>(T(0.7)));
  for (index_t i = 0; i < n; ++i) {
    std::vector<T> v(static_cast<std::size_t>(di)), p(static_cast<std::size_t>(di));
    for (index_t j = 0; j < di; ++j) v[static_cast<std::size_t>(j)] = X[static_cast<std::size_t>(i * di + j)] / T(1.5);
    P.expmap0(v.data(), p.data(), di);
    auto y = matvec(ad.B(), dO, c.rank, matvec(ad.A(), c.rank, di, p));
    std::vector<T> yp(static_cast<std::size_t>(dO)), d(static_cast<std::size_t>(dO));
    P.projx(y.data(), yp.data(), dO);
    P.logmap0(yp.data(), d.data(), dO);
    const T scale = std::max(T(1), max_abs(d));
    for (index_t o = 0; o < dO; ++o)
      CHECK(std::abs(Y[static_cast<std::size_t>(i * dO + o)] - d[static_cast<std::size_t>(o)]) <= hyplora::test::eps_tol<T>(T(16 * (di + c.rank))) * scale);
  }
}
