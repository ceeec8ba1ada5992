// Adapter variants on the CPU backend: gradients against central finite differences (double),
// naive == LoRA, B = 0 gives the base layer, the paper-compatible option's stuck output, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "adapter_test_util.hpp"
#include "hyplora/adapter/adapter.hpp"
#include "hyplora/backend/cpu.hpp"

using namespace hyplora;
using namespace hyplora::adapter;
using hyplora::test::random_vec;
using hyplora::test::randomize_B;

namespace {

// ---- row maps: f, df/dn, df/dK against finite differences of f ---------------------------------
template <class V, bool Lower>
void check_factor(double n, double K) {
  MapSettings<double> ms;
  auto F = [&](double nn, double KK) { return Lower ? V::lower(nn, KK, ms) : V::lift(nn, KK, ms); };
  // central differences with steps relative to n and K: truncation ~ (h/scale)^2, rounding ~ eps/h
  const double h = std::cbrt(std::numeric_limits<double>::epsilon());
  const auto r = F(n, K);
  const double hn = h * n, hK = h * K;
  const double fd_n = (F(n + hn, K).f - F(n - hn, K).f) / (2 * hn);
  const double fd_K = (F(n, K + hK).f - F(n, K - hK).f) / (2 * hK);
  const double tol = 100 * std::pow(std::numeric_limits<double>::epsilon(), 2.0 / 3.0);
  INFO(V::name << (Lower ? " lower" : " lift") << " n=" << n << " K=" << K << " f=" << r.f);
  const double df_dn = r.ndf / n;  // the factor gives n f'(n)
  CHECK(std::abs(fd_n - df_dn) <= tol * std::max(std::abs(df_dn), std::abs(r.f) / n));
  CHECK(std::abs(fd_K - r.df_dK) <= tol * std::max(std::abs(r.df_dK), std::abs(r.f) / K));
}

template <class V>
void check_factors() {
  for (double K : {0.3, 1.0, 2.7})
    for (double n : {1e-3, 0.05, 0.3, 0.9, 1.7, 4.0, 11.0}) {
      check_factor<V, false>(n, K);
      // the paper's lower map has a square-root kink where theta = sqrt(n^2/K + 1/K^2) meets 1:
      // finite differences are meaningless next to it
      const double theta = std::sqrt(n * n / K + 1.0 / (K * K));
      if (!V::paper || std::abs(theta - 1.0) > 0.05) check_factor<V, true>(n, K);
    }
}

// ---- the adapter against finite differences -------------------------------------------------------
struct GradCase {
  index_t n = 4, d_in = 6, d_out = 5, rank = 3;
  double x_scale = 2.0, b_scale = 0.6;
  bool training = false;
  bool full_layer = false;  // also check dW and dbias through backward()
};

template <class V>
void check_adapter_gradients(AdapterConfig cfg, const GradCase& gc) {
  using T = double;
  using Ad = Adapter<V, T, backend::Cpu>;
  cfg.d_in = gc.d_in; cfg.d_out = gc.d_out; cfg.rank = gc.rank;
  Ad ad(cfg);
  randomize_B(ad, 7 + cfg.seed, gc.b_scale);
  const index_t n = gc.n, di = gc.d_in, dO = gc.d_out;
  std::vector<T> X = random_vec<T>(std::size_t(n * di), 11, gc.x_scale);
  std::vector<T> G = random_vec<T>(std::size_t(n * dO), 13, 1.0);
  std::vector<T> W = random_vec<T>(std::size_t(dO * di), 17, 0.5);
  std::vector<T> bias = random_vec<T>(std::size_t(dO), 19, 0.5);
  const auto stream0 = ad.dropout_calls();

  auto loss = [&]() {
    ad.set_dropout_calls(stream0);
    std::vector<T> Y(std::size_t(n * dO), T(0));
    if (gc.full_layer) ad.forward(W.data(), bias.data(), X.data(), Y.data(), n, gc.training);
    else ad.forward_branch(X.data(), Y.data(), n, gc.training);
    T L = 0;
    for (std::size_t i = 0; i < Y.size(); ++i) L += G[i] * Y[i];
    return L;
  };
  // analytic
  ad.zero_grad();
  loss();
  std::vector<T> dX(X.size(), T(0)), dW(W.size(), T(0)), db(bias.size(), T(0));
  if (gc.full_layer) ad.backward(W.data(), X.data(), G.data(), dX.data(), n, dW.data(), db.data());
  else ad.backward_branch(X.data(), G.data(), dX.data(), n);
  const std::vector<T> grads = ad.grads_to_host();

  const double eps = std::numeric_limits<double>::epsilon();
  const double tol = 300 * std::pow(eps, 2.0 / 3.0);
  auto fd = [&](T& x) {
    const T h = std::cbrt(eps) * std::max(T(1), std::abs(x));
    const T x0 = x;
    x = x0 + h; const T Lp = loss();
    x = x0 - h; const T Lm = loss();
    x = x0;
    return (Lp - Lm) / (2 * h);
  };
  auto near = [&](double a, double b) { return std::abs(a - b) <= tol * std::max(1.0, std::abs(b)); };

  // parameters
  std::vector<T> p = ad.params_to_host();
  for (const auto& np : ad.named_params()) {
    for (index_t k = 0; k < np.rows * np.cols; ++k) {
      const std::size_t idx = std::size_t(np.offset + k);
      const T h = std::cbrt(eps) * std::max(T(1), std::abs(p[idx]));
      const T p0 = p[idx];
      p[idx] = p0 + h; ad.params_from_host(p); const T Lp = loss();
      p[idx] = p0 - h; ad.params_from_host(p); const T Lm = loss();
      p[idx] = p0; ad.params_from_host(p);
      const T num = (Lp - Lm) / (2 * h);
      INFO(V::name << " d" << np.name << "[" << k << "] analytic " << grads[idx] << " fd " << num);
      CHECK(near(grads[idx], num));
    }
  }
  for (std::size_t i = 0; i < X.size(); ++i) {
    const T num = fd(X[i]);
    INFO(V::name << " dX[" << i << "] analytic " << dX[i] << " fd " << num);
    CHECK(near(dX[i], num));
  }
  if (gc.full_layer) {
    for (std::size_t i = 0; i < W.size(); ++i) {
      const T num = fd(W[i]);
      INFO("dW[" << i << "]");
      CHECK(near(dW[i], num));
    }
    for (std::size_t i = 0; i < bias.size(); ++i) {
      const T num = fd(bias[i]);
      INFO("dbias[" << i << "]");
      CHECK(near(db[i], num));
    }
  }
}

AdapterConfig learnable_config() {
  AdapterConfig c;
  c.alpha = 6.0;
  c.curvature = CurvatureMode::learnable;
  c.K_init = 1.7;
  c.scale = ScaleMode::learnable;
  c.scale_init = 1.9;
  c.seed = 3;
  c.paper_k_grad_clip = 1e300;  // the clamp would hide the true gradient
  return c;
}

}  // namespace

TEST_CASE("radial factors of every variant match finite differences", "[adapter][maps]") {
  check_factors<HypLoraLorentz>();
  check_factors<HypLoraPoincare>();
  check_factors<PaperHypLora>();
}

TEST_CASE("adapter gradients match central finite differences (double)", "[adapter][grad]") {
  const AdapterConfig c = learnable_config();
  GradCase gc;
  SECTION("lora") { check_adapter_gradients<Lora>(c, gc); }
  SECTION("lora_scaled") { check_adapter_gradients<LoraScaled>(c, gc); }
  SECTION("naive") { check_adapter_gradients<Naive>(c, gc); }
  SECTION("naive beyond the sinh clamp (|x|/s > 700 sqrtK in double: the norm is clamped)") {
    GradCase far = gc;
    far.x_scale = 1400;  // |x|/s ~ 600-1400 (s = 1.9, K = 1.7: clamp at 913): rows inside and beyond
    check_adapter_gradients<Naive>(c, far);
  }
  SECTION("hyplora_lorentz") { check_adapter_gradients<HypLoraLorentz>(c, gc); }
  SECTION("hyplora_poincare") { check_adapter_gradients<HypLoraPoincare>(c, gc); }
  SECTION("hyplora_poincare, rows projected into the ball") {
    GradCase g2 = gc;
    g2.b_scale = 3.0;
    check_adapter_gradients<HypLoraPoincare>(c, g2);
  }
  SECTION("paper") {
    GradCase g2 = gc;
    g2.b_scale = 1.5;  // rows on both sides of the arcosh clamp
    check_adapter_gradients<PaperHypLora>(c, g2);
  }
  SECTION("with dropout (mask replayed)") {
    AdapterConfig d = c;
    d.dropout = 0.3;
    GradCase g2 = gc;
    g2.training = true;
    check_adapter_gradients<Lora>(d, g2);
    check_adapter_gradients<LoraScaled>(d, g2);
    check_adapter_gradients<HypLoraLorentz>(d, g2);
  }
  SECTION("full layer: dW and dbias") {
    GradCase g2 = gc;
    g2.full_layer = true;
    check_adapter_gradients<Lora>(c, g2);
    check_adapter_gradients<HypLoraLorentz>(c, g2);
  }
  SECTION("fixed curvature, fixed scale") {
    AdapterConfig f = c;
    f.curvature = CurvatureMode::fixed;
    f.scale = ScaleMode::fixed;
    check_adapter_gradients<HypLoraLorentz>(f, gc);
  }
  SECTION("ranks 8, 16 and 32: the rank-space rows with the rank at compile time") {
    // kernels::with_rank instantiates the row functors for these ranks (loops unrolled, `omp simd`);
    // the sections above use rank 3, the run-time-rank instantiation
    for (const index_t rank : {8, 16, 32}) {
      GradCase g2 = gc;
      g2.rank = rank; g2.d_in = 5; g2.d_out = 4; g2.n = 3;
      g2.b_scale = 0.3;
      INFO("rank " << rank);
      check_adapter_gradients<HypLoraLorentz>(c, g2);
      check_adapter_gradients<HypLoraPoincare>(c, g2);
      check_adapter_gradients<PaperHypLora>(c, g2);
    }
  }
}

TEMPLATE_TEST_CASE("the naive sandwich equals LoRA to rounding", "[adapter][naive]", float, double) {
  using T = TestType;
  AdapterConfig c;
  c.d_in = 16; c.d_out = 12; c.rank = 4; c.alpha = 8; c.seed = 5;
  c.K_init = 0.8;
  Adapter<Lora, T, backend::Cpu> lora(c);
  Adapter<Naive, T, backend::Cpu> naive(c);
  randomize_B(lora, 1, 0.5);
  randomize_B(naive, 1, 0.5);
  const index_t n = 9;
  auto X = random_vec<T>(std::size_t(n * c.d_in), 2, 1.5);
  std::vector<T> Y1(std::size_t(n * c.d_out), T(0)), Y2 = Y1;
  lora.forward_branch(X.data(), Y1.data(), n, false);
  naive.forward_branch(X.data(), Y2.data(), n, false);
  T ymax = 0;
  for (T y : Y1) ymax = std::max(ymax, std::abs(y));
  // each map is exact to a few ulps (sinh/asinh round trip), amplified by the GEMM sums of |terms|
  const T tol = hyplora::test::eps_tol<T>(64) * T(c.d_in) * ymax;
  for (std::size_t i = 0; i < Y1.size(); ++i) CHECK(std::abs(Y1[i] - Y2[i]) <= tol);
}

TEMPLATE_TEST_CASE("with B = 0 the adapted layer equals the base layer exactly", "[adapter][init]", float, double) {
  using T = TestType;
  AdapterConfig c;
  c.d_in = 10; c.d_out = 7; c.rank = 3; c.alpha = 16; c.seed = 9;
  const index_t n = 5;
  auto X = random_vec<T>(std::size_t(n * c.d_in), 3, 4.0);
  auto W = random_vec<T>(std::size_t(c.d_out * c.d_in), 4, 1.0);
  auto b = random_vec<T>(std::size_t(c.d_out), 5, 1.0);
  std::vector<T> base(std::size_t(n * c.d_out));
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < c.d_out; ++j) base[std::size_t(i * c.d_out + j)] = b[std::size_t(j)];
  backend::Cpu::gemm(false, true, n, c.d_out, c.d_in, T(1), X.data(), c.d_in, W.data(), c.d_in, T(1), base.data(), c.d_out);
  auto run = [&](auto& ad) {
    std::vector<T> Y(base.size());
    ad.forward(W.data(), b.data(), X.data(), Y.data(), n, true);
    for (std::size_t i = 0; i < Y.size(); ++i) REQUIRE(Y[i] == base[i]);
  };
  Adapter<Lora, T, backend::Cpu> a1(c); run(a1);
  Adapter<LoraScaled, T, backend::Cpu> a2(c); run(a2);
  Adapter<Naive, T, backend::Cpu> a3(c); run(a3);
  Adapter<HypLoraLorentz, T, backend::Cpu> a4(c); run(a4);
  Adapter<HypLoraPoincare, T, backend::Cpu> a5(c); run(a5);
  Adapter<PaperHypLora, T, backend::Cpu> a6(c); run(a6);
  // initialisation: A Kaiming-uniform (|A| <= 1/sqrt(d_in), not all zero), B exactly zero
  const auto p = a4.params_to_host();
  const T bound = T(1) / std::sqrt(T(c.d_in));
  T amax = 0;
  for (index_t i = 0; i < a4.layout().A_size; ++i) amax = std::max(amax, std::abs(p[std::size_t(i)]));
  CHECK(amax <= bound);
  CHECK(amax > bound / 2);
  for (index_t i = 0; i < a4.layout().B_size; ++i) CHECK(p[std::size_t(a4.layout().B + i)] == T(0));
  // s = T(sqrt(d_in)): the double square root rounded once to T
  CHECK(a4.norm_scale() == Approx(std::sqrt(double(c.d_in))).epsilon(double(hyplora::test::eps_tol<T>(1))));
}

TEST_CASE("paper option: at K = softplus(1) the branch output is stuck for |y| < 0.74", "[adapter][paper]") {
  const double K = math::softplus(1.0) + 1e-6;
  const double eps_theta = 1e-6;
  // theta = sqrt(|y|^2 + 1/K)/sqrtK reaches 1 + eps only at |y|^2 = K (1+eps)^2 - 1/K
  const double y_threshold = std::sqrt(K * (1 + eps_theta) * (1 + eps_theta) - 1.0 / K);
  // the published code's arcosh near 1: sqrt(2 max(theta - 1, eps)) (= acosh(1 + eps) to 1e-7)
  const double stuck = std::sqrt(K) * std::sqrt(2 * eps_theta);
  CHECK(y_threshold == Approx(0.743).margin(0.001));
  CHECK(stuck == Approx(0.0016).epsilon(0.02));
  MapSettings<double> ms;
  // Both sides take sqrt(2 eps_theta) and multiply by sqrtK: a few roundings.
  using hyplora::test::eps_tol;
  const double acosh_tol = eps_tol<double>(8);
  for (double y = 1e-4; y < y_threshold; y += 0.01) {
    const double out = PaperHypLora::lower(y, K, ms).f * y;
    INFO("|y| = " << y);
    CHECK(out == Approx(stuck).epsilon(acosh_tol));
  }
  // above the threshold the output grows, and the consistent map would have given ~|y|
  CHECK(PaperHypLora::lower(1.0, K, ms).f * 1.0 > 10 * stuck);
  CHECK(HypLoraLorentz::lower(0.5, K, ms).f * 0.5 == Approx(std::sqrt(K) * std::asinh(0.5 / std::sqrt(K))).epsilon(eps_tol<double>(16)));

  // through the adapter: default paper settings (k = 1, learnable s = sqrt(d_in)), small B so every |y| < 0.74
  AdapterConfig c;
  c.d_in = 32; c.d_out = 16; c.rank = 4; c.alpha = 8; c.seed = 21;
  Adapter<PaperHypLora, double, backend::Cpu> ad(c);
  CHECK(ad.K() == Approx(K).epsilon(eps_tol<double>(8)));  // softplus(1) + 1e-6, evaluated alike
  CHECK(ad.norm_scale() == Approx(std::sqrt(32.0)).epsilon(eps_tol<double>(1)));
  randomize_B(ad, 2, 0.01);
  const index_t n = 6;
  auto X = random_vec<double>(std::size_t(n * c.d_in), 8, 1.7);
  std::vector<double> Y(std::size_t(n * c.d_out), 0.0);
  ad.forward_branch(X.data(), Y.data(), n, false);
  for (index_t i = 0; i < n; ++i) {
    double s2 = 0;
    for (index_t j = 0; j < c.d_out; ++j) s2 += Y[std::size_t(i * c.d_out + j)] * Y[std::size_t(i * c.d_out + j)];
    CHECK(std::sqrt(s2) == Approx(ad.scaling() * stuck).epsilon(acosh_tol + eps_tol<double>(64)));  // + the row norm over d_out
  }
}

TEST_CASE("paper option clamps the curvature gradient per backward call", "[adapter][paper]") {
  AdapterConfig c;
  c.d_in = 8; c.d_out = 8; c.rank = 2; c.alpha = 4;
  Adapter<PaperHypLora, double, backend::Cpu> ad(c);
  randomize_B(ad, 3, 5.0);
  const index_t n = 4;
  auto X = random_vec<double>(std::size_t(n * c.d_in), 4, 30.0);
  auto G = random_vec<double>(std::size_t(n * c.d_out), 5, 100.0);
  std::vector<double> Y(std::size_t(n * c.d_out), 0.0);
  ad.forward_branch(X.data(), Y.data(), n, false);
  ad.backward_branch(X.data(), G.data(), nullptr, n);
  const double dk = ad.grads_to_host()[std::size_t(ad.layout().curvature)];
  // the same step without the clamp: its gradient is larger than the clamp, so dk is exactly +-0.01
  AdapterConfig u = c;
  u.paper_k_grad_clip = 1e300;
  Adapter<PaperHypLora, double, backend::Cpu> free_k(u);
  randomize_B(free_k, 3, 5.0);
  std::fill(Y.begin(), Y.end(), 0.0);
  free_k.forward_branch(X.data(), Y.data(), n, false);
  free_k.backward_branch(X.data(), G.data(), nullptr, n);
  const double dk_free = free_k.grads_to_host()[std::size_t(free_k.layout().curvature)];
  REQUIRE(std::abs(dk_free) > 0.01);
  CHECK(dk == (dk_free > 0 ? 0.01 : -0.01));
}

TEST_CASE("shared curvature accumulates into the shared gradient", "[adapter][curvature]") {
  AdapterConfig c = learnable_config();
  c.d_in = 6; c.d_out = 5; c.rank = 2;
  c.curvature = CurvatureMode::shared;
  SharedCurvature<double> shared;
  shared.raw = 0.3;
  Adapter<HypLoraLorentz, double, backend::Cpu> a(c), b(c);
  CHECK_THROWS_AS(a.K(), std::logic_error);
  a.set_shared_curvature(&shared);
  b.set_shared_curvature(&shared);
  CHECK(a.layout().curvature == -1);
  CHECK(a.K() == Approx(math::softplus(0.3) + 1e-6).epsilon(hyplora::test::eps_tol<double>(8)));
  randomize_B(a, 1, 0.5); randomize_B(b, 2, 0.5);
  const index_t n = 3;
  auto X = random_vec<double>(std::size_t(n * 6), 1, 2.0);
  auto G = random_vec<double>(std::size_t(n * 5), 2, 1.0);
  std::vector<double> Y(std::size_t(n * 5), 0.0);
  auto total = [&]() {
    std::vector<double> Ya(Y), Yb(Y);
    a.forward_branch(X.data(), Ya.data(), n, false);
    b.forward_branch(X.data(), Yb.data(), n, false);
    double L = 0;
    for (std::size_t i = 0; i < Y.size(); ++i) L += G[i] * (Ya[i] + Yb[i]);
    return L;
  };
  total();
  a.backward_branch(X.data(), G.data(), nullptr, n);
  b.backward_branch(X.data(), G.data(), nullptr, n);
  // central difference: h = eps^(1/3) balances truncation and rounding, both ~ eps^(2/3) (as check_factor)
  const double e = std::numeric_limits<double>::epsilon(), h = std::cbrt(e);
  const double raw0 = shared.raw;
  shared.raw = raw0 + h; const double Lp = total();
  shared.raw = raw0 - h; const double Lm = total();
  shared.raw = raw0;
  const double fd = (Lp - Lm) / (2 * h);
  CHECK(std::abs(shared.grad - fd) <= 100 * std::pow(e, 2.0 / 3.0) * std::max(1.0, std::abs(fd)));
}

TEST_CASE("bad settings and inputs are rejected with clear errors", "[adapter][errors]") {
  AdapterConfig c;
  c.d_in = 4; c.d_out = 4; c.rank = 2;
  AdapterConfig bad = c; bad.rank = 0;
  CHECK_THROWS_WITH((Adapter<Lora, double, backend::Cpu>(bad)), Catch::Contains("rank"));
  bad = c; bad.K_init = -1;
  CHECK_THROWS_WITH((Adapter<HypLoraLorentz, double, backend::Cpu>(bad)), Catch::Contains("K_init"));
  bad = c; bad.dropout = 1.0;
  CHECK_THROWS_WITH((Adapter<Lora, double, backend::Cpu>(bad)), Catch::Contains("dropout"));
  Adapter<HypLoraLorentz, double, backend::Cpu> ad(c);
  CHECK_THROWS_AS(ad.set_shared_curvature(nullptr), std::logic_error);
  {  // a config that says shared: the variants without a curvature accept the call and ignore it
    AdapterConfig sc = c;
    sc.curvature = CurvatureMode::shared;
    SharedCurvature<double> shared;
    Adapter<Lora, double, backend::Cpu> lora(sc);
    CHECK_NOTHROW(lora.set_shared_curvature(&shared));
    CHECK(lora.curvature_mode() == CurvatureMode::fixed);
    Adapter<HypLoraLorentz, double, backend::Cpu> hyp(sc);
    CHECK_NOTHROW(hyp.set_shared_curvature(&shared));
    CHECK(hyp.curvature_mode() == CurvatureMode::shared);
  }
  std::vector<double> p = ad.params_to_host();
  p.pop_back();
  CHECK_THROWS_WITH(ad.params_from_host(p), Catch::Contains("expected"));
  std::vector<double> X(8, 1.0), Y(8, 0.0);
  CHECK_THROWS_AS(ad.forward_branch(nullptr, Y.data(), 2, false), std::invalid_argument);
  ad.forward_branch(X.data(), Y.data(), 2, false);
  CHECK_THROWS_WITH(ad.backward_branch(X.data(), Y.data(), nullptr, 1), Catch::Contains("differs"));
}

namespace {
// n = 0 on a fresh adapter (no buffers yet), a backward that must not touch its outputs when it
// throws, and reserve() between forward and backward
template <class V>
void check_call_order() {
  AdapterConfig c;
  c.d_in = 6; c.d_out = 5; c.rank = 3; c.seed = 2;
  Adapter<V, double, backend::Cpu> ad(c);
  randomize_B(ad, 3, 0.5);
  const std::vector<double> W = random_vec<double>(30, 5, 0.5);
  ad.forward(W.data(), nullptr, nullptr, nullptr, 0, true);  // no rows: nothing happens, nothing is read
  ad.backward(W.data(), nullptr, nullptr, nullptr, 0);
  CHECK(ad.grads_to_host() == std::vector<double>(std::size_t(ad.num_params()), 0.0));

  Adapter<V, double, backend::Cpu> fresh(c);
  std::vector<double> X = random_vec<double>(12, 6, 1.5), dY = random_vec<double>(10, 7, 1.0);
  std::vector<double> dX(12, 0.25), dW(30, 0.5), db(5, 0.75);
  CHECK_THROWS_WITH(fresh.backward(W.data(), X.data(), dY.data(), dX.data(), 2, dW.data(), db.data()),
                    Catch::Contains("no forward"));
  CHECK(dX == std::vector<double>(12, 0.25));  // untouched: the check comes before any GEMM
  CHECK(dW == std::vector<double>(30, 0.5));
  CHECK(db == std::vector<double>(5, 0.75));

  std::vector<double> Y(10, 0.0);
  ad.forward(W.data(), nullptr, X.data(), Y.data(), 2, false);
  CHECK_THROWS_WITH(ad.backward(W.data(), X.data(), dY.data(), dX.data(), 1), Catch::Contains("differs"));
  CHECK(dX == std::vector<double>(12, 0.25));
  ad.reserve(64);  // grows the buffers: the forward's activations are gone
  CHECK_THROWS_WITH(ad.backward_branch(X.data(), dY.data(), dX.data(), 2), Catch::Contains("reserve()"));
  ad.forward(W.data(), nullptr, X.data(), Y.data(), 2, false);
  ad.backward(W.data(), X.data(), dY.data(), dX.data(), 2);
  for (double v : ad.grads_to_host()) CHECK(std::isfinite(v));
}
}  // namespace

TEST_CASE("no rows, and backward without its forward", "[adapter][errors]") {
  SECTION("lora") { check_call_order<Lora>(); }
  SECTION("lora_scaled") { check_call_order<LoraScaled>(); }
  SECTION("naive") { check_call_order<Naive>(); }
  SECTION("hyplora_lorentz") { check_call_order<HypLoraLorentz>(); }
  SECTION("hyplora_poincare") { check_call_order<HypLoraPoincare>(); }
  SECTION("paper") { check_call_order<PaperHypLora>(); }
}

namespace {
template <class V>
void check_float_against_double(index_t rank) {
  AdapterConfig c = learnable_config();
  c.d_in = 24; c.d_out = 16; c.rank = rank;
  INFO(V::name << " rank " << rank);
  Adapter<V, double, backend::Cpu> ad(c);
  Adapter<V, float, backend::Cpu> af(c);
  randomize_B(ad, 4, 0.4);
  randomize_B(af, 4, 0.4);
  const index_t n = 8;
  auto Xd = random_vec<double>(std::size_t(n * c.d_in), 6, 2.0);
  auto Gd = random_vec<double>(std::size_t(n * c.d_out), 7, 1.0);
  std::vector<float> Xf(Xd.begin(), Xd.end()), Gf(Gd.begin(), Gd.end());
  std::vector<double> Yd(std::size_t(n * c.d_out), 0.0), dXd(Xd.size(), 0.0);
  std::vector<float> Yf(Yd.size(), 0.f), dXf(Xd.size(), 0.f);
  ad.forward_branch(Xd.data(), Yd.data(), n, false);
  af.forward_branch(Xf.data(), Yf.data(), n, false);
  ad.backward_branch(Xd.data(), Gd.data(), dXd.data(), n);
  af.backward_branch(Xf.data(), Gf.data(), dXf.data(), n);
  // float rounding of inputs/params (eps_f each) amplified by sums over d_in: tolerance 16 d_in eps_f
  const double tol = 16.0 * double(c.d_in) * std::numeric_limits<float>::epsilon();
  auto gd = ad.grads_to_host();
  auto gf = af.grads_to_host();
  double gmax = 0, ymax = 0, xmax = 0;
  for (double g : gd) gmax = std::max(gmax, std::abs(g));
  for (double y : Yd) ymax = std::max(ymax, std::abs(y));
  for (double x : dXd) xmax = std::max(xmax, std::abs(x));
  for (std::size_t i = 0; i < gd.size(); ++i) CHECK(std::abs(gd[i] - gf[i]) <= tol * gmax);
  for (std::size_t i = 0; i < Yd.size(); ++i) CHECK(std::abs(Yd[i] - Yf[i]) <= tol * ymax);
  for (std::size_t i = 0; i < dXd.size(); ++i) CHECK(std::abs(dXd[i] - dXf[i]) <= tol * xmax);
}
}  // namespace

TEST_CASE("float gradients agree with double gradients", "[adapter][float]") {
  // ranks 8 and 16 in float take the CPU's hand-vectorised rank products where the CPU has AVX-512 or
  // AVX2 (backend/cpu_rank_products.hpp; d_in = 24 ends in a partial block of 16), rank 4 the GEMMs
  for (const index_t rank : {4, 8, 16}) {
    check_float_against_double<HypLoraLorentz>(rank);
    check_float_against_double<Lora>(rank);
  }
}

TEST_CASE("CPU rank products agree with a double reference on every vector unit", "[adapter][float][simd]") {
  // project_rows (Z = alpha X A^T, |x|^2), expand_rows_add (Y += alpha Z A + diag(e) X) and
  // expand_rows_add_transposed (Y += alpha Z B^T, B = A^T stored d x r),
  // quadratic_rows (Pa = Z G, q2 = z.Pa), rank_dots, vjp_combine_rows, gram_rows and rows_times_add:
  // on backend::Cpu: the AVX-512 and the AVX2 kernels (r = 8, 16) where the CPU has them, the GEMM
  // and row passes elsewhere (the baseline unit). d = 1, 5, 77 end in a partial block of both widths,
  // 24 in one of 16 only; at r = 16 AVX2 accumulates M and G = Z^T Z in four passes of 4 rows.
  const simd::Isa widest = simd::widest_isa();
  for (const simd::Isa want : {simd::Isa::avx512, simd::Isa::avx2, simd::Isa::baseline}) {
    const simd::Isa used = simd::set_isa(want);
    if (used != want) continue;  // this CPU lacks the unit
    for (const index_t r : {8, 16})
      for (const index_t d : {1, 5, 16, 24, 64, 77, 288}) {
        const index_t n = 37;
        INFO("unit " << simd::isa_name(used) << ", kernels " << backend::rank_products::available<float>(r) << ", r "
                     << r << ", d " << d);
        const auto X = random_vec<float>(std::size_t(n * d), 31, 1.5);
        const auto A = random_vec<float>(std::size_t(r * d), 32, 0.8);
        const auto Z = random_vec<float>(std::size_t(n * r), 33, 1.2);
        const auto e = random_vec<float>(std::size_t(n), 34, 0.5);
        const auto Y0 = random_vec<float>(std::size_t(n * d), 35, 1.0);
        const float alpha = 0.7f;
        std::vector<float> Zp(static_cast<std::size_t>(n * r)), n2(static_cast<std::size_t>(n)), Y = Y0, Y2 = Y0;
        adapter::project_rows<backend::Cpu>(X.data(), n, d, A.data(), r, alpha, Zp.data(), n2.data());
        adapter::expand_rows_add<backend::Cpu>(Z.data(), n, r, alpha, A.data(), d, X.data(), e.data(), Y.data());
        adapter::expand_rows_add<backend::Cpu>(Z.data(), n, r, alpha, A.data(), d, X.data(), static_cast<const float*>(nullptr), Y2.data());
        std::vector<float> Bt(std::size_t(d * r)), Y3 = Y0;  // A^T, d x r (an adapter's B)
        for (index_t k = 0; k < r; ++k)
          for (index_t j = 0; j < d; ++j) Bt[std::size_t(j * r + k)] = A[std::size_t(k * d + j)];
        adapter::expand_rows_add_transposed<backend::Cpu>(Z.data(), n, r, alpha, Bt.data(), d, Y3.data());
        // a sum of m float products in any order is within ~m eps of the sum of |terms| (Higham 3.1)
        for (index_t i = 0; i < n; ++i) {
          double xx = 0;
          for (index_t j = 0; j < d; ++j) xx += double(X[std::size_t(i * d + j)]) * X[std::size_t(i * d + j)];
          CHECK(std::abs(double(n2[std::size_t(i)]) - xx) <= double(hyplora::test::eps_tol<float>(float(d + 2))) * xx);
          for (index_t k = 0; k < r; ++k) {
            double ref = 0, mag = 0;
            for (index_t j = 0; j < d; ++j) {
              const double t = double(alpha) * X[std::size_t(i * d + j)] * A[std::size_t(k * d + j)];
              ref += t;
              mag += std::abs(t);
            }
            CHECK(std::abs(double(Zp[std::size_t(i * r + k)]) - ref) <= double(hyplora::test::eps_tol<float>(float(d + 4))) * mag);
          }
          for (index_t j = 0; j < d; ++j) {
            const std::size_t ij = std::size_t(i * d + j);
            double ref = Y0[ij], mag = std::abs(Y0[ij]);
            for (index_t k = 0; k < r; ++k) {
              const double t = double(alpha) * Z[std::size_t(i * r + k)] * A[std::size_t(k * d + j)];
              ref += t;
              mag += std::abs(t);
            }
            const double tol = double(hyplora::test::eps_tol<float>(float(r + 4)));
            CHECK(std::abs(double(Y2[ij]) - ref) <= tol * mag);
            CHECK(std::abs(double(Y3[ij]) - ref) <= tol * mag);
            const double ex = double(e[std::size_t(i)]) * X[ij];
            CHECK(std::abs(double(Y[ij]) - (ref + ex)) <= tol * (mag + std::abs(ex)));
          }
        }
      }
    for (const index_t r : {8, 16}) {  // quadratic_rows: Pa = Z G, q2 = Z_i . Pa_i (G symmetric)
      const index_t n = 37;
      INFO("quadratic_rows, unit " << simd::isa_name(used) << ", r " << r);
      const auto Z = random_vec<float>(std::size_t(n * r), 36, 1.3);
      auto G = random_vec<float>(std::size_t(r * r), 37, 0.9);
      for (index_t a = 0; a < r; ++a)
        for (index_t b = 0; b < a; ++b) G[std::size_t(b * r + a)] = G[std::size_t(a * r + b)];
      // double references: a sum with the sum of its terms' magnitudes (the error bound's scale)
      struct Sum {
        double ref = 0, mag = 0;
        void add(double t) { ref += t, mag += std::abs(t); }
      };
      const auto z_times_g = [&](index_t i, index_t k) {  // (Z G)_ik
        Sum s;
        for (index_t m = 0; m < r; ++m) s.add(double(Z[std::size_t(i * r + m)]) * G[std::size_t(m * r + k)]);
        return s;
      };
      const auto weighted_gram = [&](index_t a, index_t b, const float* w) {  // (Z^T diag(w) Z)_ab, w null: 1
        Sum s;
        for (index_t i = 0; i < n; ++i)
          s.add(double(Z[std::size_t(i * r + a)]) * (w ? double(w[i]) : 1.0) * Z[std::size_t(i * r + b)]);
        return s;
      };
      std::vector<float> Pa(std::size_t(n * r)), q2(static_cast<std::size_t>(n));
      adapter::quadratic_rows<backend::Cpu>(Z.data(), n, r, G.data(), Pa.data(), q2.data());
      for (index_t i = 0; i < n; ++i) {
        double qref = 0, qmag = 0;
        for (index_t k = 0; k < r; ++k) {
          const Sum p = z_times_g(i, k);
          CHECK(std::abs(double(Pa[std::size_t(i * r + k)]) - p.ref) <= double(hyplora::test::eps_tol<float>(float(r + 2))) * p.mag);
          qref += p.ref * Z[std::size_t(i * r + k)];
          qmag += p.mag * std::abs(Z[std::size_t(i * r + k)]);
        }
        CHECK(std::abs(double(q2[std::size_t(i)]) - qref) <= double(hyplora::test::eps_tol<float>(float(2 * r + 4))) * qmag);
      }
      // rank_dots (zq = Za_i . q_i) and the VJP's rank rows (dZs = h q + c Pa, M = Za^T diag(c) Za);
      // backend::Cpu::vjp_combine_rows runs only with the kernels (false: the adapter composes them)
      const auto Qm = random_vec<float>(std::size_t(n * r), 38, 1.1);
      const auto c = random_vec<float>(std::size_t(n), 39, 0.6);
      const auto h = random_vec<float>(std::size_t(n), 40, 0.9);
      std::vector<float> zq(static_cast<std::size_t>(n)), dZs(std::size_t(n * r)), M(std::size_t(r * r));
      adapter::rank_dots<backend::Cpu>(Z.data(), Qm.data(), n, r, zq.data());
      const bool combined = backend::Cpu::vjp_combine_rows(Qm.data(), Z.data(), Pa.data(), c.data(), h.data(), n, r, dZs.data(), M.data());
      CHECK(combined == backend::rank_products::available<float>(r));
      for (index_t i = 0; i < n; ++i) {
        double ref = 0, mag = 0;
        for (index_t k = 0; k < r; ++k) {
          ref += double(Z[std::size_t(i * r + k)]) * Qm[std::size_t(i * r + k)];
          mag += std::abs(double(Z[std::size_t(i * r + k)]) * Qm[std::size_t(i * r + k)]);
        }
        CHECK(std::abs(double(zq[std::size_t(i)]) - ref) <= double(hyplora::test::eps_tol<float>(float(r + 2))) * mag);
        for (index_t k = 0; k < r && combined; ++k) {
          const std::size_t ik = std::size_t(i * r + k);
          const double a = double(h[std::size_t(i)]) * Qm[ik], b = double(c[std::size_t(i)]) * Pa[ik];
          CHECK(std::abs(double(dZs[ik]) - (a + b)) <= double(hyplora::test::eps_tol<float>(4.f)) * (std::abs(a) + std::abs(b)));
        }
      }
      for (index_t a = 0; a < r && combined; ++a)
        for (index_t b = 0; b < r; ++b) {
          const Sum m = weighted_gram(a, b, c.data());
          CHECK(std::abs(double(M[std::size_t(a * r + b)]) - m.ref) <= double(hyplora::test::eps_tol<float>(float(n + 4))) * m.mag);
        }
      // gram_rows (G = Z^T Z, the lift's B^T B) and rows_times_add (P += Z G, the lift's dB += B M),
      // over an odd number of rows (the kernel pairs them)
      std::vector<float> Gz(std::size_t(r * r)), P = Qm;
      adapter::gram_rows<backend::Cpu>(Z.data(), n, r, Gz.data());
      adapter::rows_times_add<backend::Cpu>(Z.data(), n, r, G.data(), P.data());
      for (index_t a = 0; a < r; ++a)
        for (index_t b = 0; b < r; ++b) {
          const Sum g = weighted_gram(a, b, nullptr);
          CHECK(std::abs(double(Gz[std::size_t(a * r + b)]) - g.ref) <= double(hyplora::test::eps_tol<float>(float(n + 4))) * g.mag);
        }
      for (index_t i = 0; i < n; ++i)
        for (index_t k = 0; k < r; ++k) {
          const std::size_t ik = std::size_t(i * r + k);
          Sum p = z_times_g(i, k);
          p.add(Qm[ik]);
          CHECK(std::abs(double(P[ik]) - p.ref) <= double(hyplora::test::eps_tol<float>(float(r + 4))) * p.mag);
        }
    }
  }
  simd::set_isa(widest);
}

namespace {
// Rows far out on the manifold: |x|/(s sqrtK) = t up to just below float's sinh clamp (80; beyond it
// the float map saturates, the double one not yet), where
// the lift reaches sinh(t) ~ 1e34 and the lower map's input as much. The float adapter (rounded
// once from the double one's parameters and inputs) against the double adapter, row by row: a lost
// or overflowed term shows as an O(1) error. Float error: the inputs' rounding times the lift's
// condition number t (d log sinh t / d log t ~ t) summed over d_in terms.
template <class V>
void check_float_far_out(double dropout) {
  AdapterConfig c;
  c.d_in = 24; c.d_out = 16; c.rank = 4; c.seed = 5; c.alpha = 8;
  c.dropout = dropout;
  if (V::uses_curvature && !V::paper) c.curvature = CurvatureMode::learnable;
  Adapter<V, double, backend::Cpu> ad(c);
  Adapter<V, float, backend::Cpu> af(c);
  randomize_B(ad, 9, 0.4);
  const auto pd = ad.params_to_host();
  af.params_from_host(std::vector<float>(pd.begin(), pd.end()));
  // with dropout the kept entries are scaled by 1/(1-p): |v| up to t/(1-p), kept below the clamp too
  const std::vector<double> ts = dropout > 0 ? std::vector<double>{0.5, 5, 20, 35, 45, 55, 62}
                                             : std::vector<double>{0.5, 5, 20, 35, 50, 65, 78};
  const index_t n = index_t(ts.size()), di = c.d_in, dO = c.d_out;
  const double s = V::scaled ? std::sqrt(double(di)) : 1.0;
  std::vector<double> Xd = random_vec<double>(std::size_t(n * di), 21, 1.0);
  for (index_t i = 0; i < n; ++i) {  // row i scaled to |x| = t s sqrtK (K = 1 here)
    double nn = 0;
    for (index_t j = 0; j < di; ++j) nn += Xd[std::size_t(i * di + j)] * Xd[std::size_t(i * di + j)];
    for (index_t j = 0; j < di; ++j) Xd[std::size_t(i * di + j)] *= ts[std::size_t(i)] * s / std::sqrt(nn);
  }
  std::vector<float> Xf(Xd.begin(), Xd.end());
  Xd.assign(Xf.begin(), Xf.end());  // both adapters see the same (float) inputs
  const std::vector<double> Gd = random_vec<double>(std::size_t(n * dO), 22, 1.0);
  const std::vector<float> Gf(Gd.begin(), Gd.end());
  std::vector<double> Yd(std::size_t(n * dO), 0.0), dXd(Xd.size(), 0.0);
  std::vector<float> Yf(Yd.size(), 0.f), dXf(Xd.size(), 0.f);
  ad.forward_branch(Xd.data(), Yd.data(), n, true);
  af.forward_branch(Xf.data(), Yf.data(), n, true);
  ad.backward_branch(Xd.data(), Gd.data(), dXd.data(), n);
  af.backward_branch(Xf.data(), Gf.data(), dXf.data(), n);
  // Float rounding of a d_in-term sum is ~d_in eps relative; the lift's map at distance t amplifies
  // it ~t-fold (cosh / sinh factors evaluated at a rounded t). Rows get their own t (at least 1);
  // the parameter gradients sum over all rows and take the largest.
  const double eps = std::numeric_limits<float>::epsilon();
  auto tol_at = [&](double t) { return 16.0 * double(di) * eps * std::max(t, 1.0); };
  const double tol = tol_at(ts.back());
  auto rows_agree = [&](const std::vector<double>& ref, const auto& got, index_t width, const char* what) {
    for (index_t i = 0; i < n; ++i) {
      const double row_tol = tol_at(ts[std::size_t(i)]);
      double scale = 0, err = 0;
      for (index_t j = 0; j < width; ++j) {
        const std::size_t k = std::size_t(i * width + j);
        scale = std::max(scale, std::abs(ref[k]));
        err = std::max(err, std::abs(ref[k] - double(got[k])));
      }
      INFO(V::name << " " << what << " row " << i << " (t = " << ts[std::size_t(i)] << "): max error " << err
                   << " of max " << scale << " (" << err / (scale * eps) << " eps)");
      CHECK(std::isfinite(err));
      CHECK(err <= row_tol * scale);
    }
  };
  rows_agree(Yd, Yf, dO, "Y");
  rows_agree(dXd, dXf, di, "dX");
  const auto gd = ad.grads_to_host();
  const auto gf = af.grads_to_host();
  for (const auto& np : ad.named_params()) {
    double scale = 0, err = 0;
    for (index_t k = 0; k < np.rows * np.cols; ++k) {
      const std::size_t idx = std::size_t(np.offset + k);
      scale = std::max(scale, std::abs(gd[idx]));
      err = std::max(err, std::abs(gd[idx] - double(gf[idx])));
    }
    INFO(V::name << " d" << np.name << ": max error " << err << " of max " << scale);
    CHECK(err <= tol * scale);
  }
}
}  // namespace

TEST_CASE("float stays right up to the lift's saturation", "[adapter][float]") {
  for (double dropout : {0.0, 0.2}) {  // rank space; and the explicit rows that dropout needs
    INFO("dropout " << dropout);
    check_float_far_out<HypLoraLorentz>(dropout);
    check_float_far_out<HypLoraPoincare>(dropout);
  }
}

namespace {
// A row whose |x|^2 overflows T (entries up to 1e25 in float, 1e200 in double): the lift is saturated
// there, so the branch equals that of the same direction at a moderate saturated radius, |x| = 1e4 s
// (the lift saturates at |x|/(s sqrtK) = 80 in float, 700 in double); dA and dB depend only on the
// lifted point and agree too; dX is finite. The rank-space call returned a branch of 0 for such a
// row (and a NaN dX in float); naive was NaN.
template <class V, class T, class Backend>
void check_overflowing_row(double dropout) {
  AdapterConfig c;
  c.d_in = 6; c.d_out = 5; c.rank = 3; c.seed = 4; c.dropout = dropout;
  Adapter<V, T, Backend> far_ad(c), near_ad(c);
  randomize_B(far_ad, 8, 0.5);
  randomize_B(near_ad, 8, 0.5);
  const index_t n = 3, di = c.d_in, dO = c.d_out;
  const double huge = std::is_same_v<T, float> ? 1e25 : 1e200;
  const double s = V::scaled ? std::sqrt(double(di)) : 1.0;
  const std::vector<double> dir = random_vec<double>(std::size_t(n * di), 9, 1.0);
  std::vector<T> Xfar(dir.size()), Xnear(dir.size());
  for (index_t i = 0; i < n; ++i) {
    double mx = 0, nn = 0;
    for (index_t j = 0; j < di; ++j) {
      mx = std::max(mx, std::abs(dir[std::size_t(i * di + j)]));
      nn += dir[std::size_t(i * di + j)] * dir[std::size_t(i * di + j)];
    }
    // row 1 stays moderate in both calls: only the far rows differ
    const double far_scale = i == 1 ? 1e4 * s / std::sqrt(nn) : huge / mx;
    for (index_t j = 0; j < di; ++j) {
      const std::size_t k = std::size_t(i * di + j);
      Xfar[k] = T(dir[k] * far_scale);
      Xnear[k] = T(dir[k] * 1e4 * s / std::sqrt(nn));
    }
  }
  const std::vector<T> dY = random_vec<T>(std::size_t(n * dO), 10, 1.0);
  std::vector<T> Yfar(std::size_t(n * dO), T(0)), Ynear = Yfar, dXfar(Xfar.size(), T(0)), dXnear = dXfar;
  const bool training = dropout > 0;  // the same masks: both adapters draw call 0
  far_ad.forward_branch(Xfar.data(), Yfar.data(), n, training);
  near_ad.forward_branch(Xnear.data(), Ynear.data(), n, training);
  far_ad.backward_branch(Xfar.data(), dY.data(), dXfar.data(), n);
  near_ad.backward_branch(Xnear.data(), dY.data(), dXnear.data(), n);
  // the direction of a far row is rounded once more (x / max |x|): tens of eps of the result
  const double tol = 64.0 * double(std::numeric_limits<T>::epsilon());
  auto agree = [&](const std::vector<T>& a, const std::vector<T>& b, const char* what) {
    double scale = 0, err = 0;
    for (std::size_t k = 0; k < a.size(); ++k) {
      scale = std::max(scale, std::abs(double(b[k])));
      err = std::max(err, std::abs(double(a[k]) - double(b[k])));
    }
    INFO(V::name << " " << what << ": max error " << err << " of max " << scale);
    CHECK(scale > 0);
    CHECK(err <= tol * scale);
  };
  agree(Yfar, Ynear, "Y");
  const auto gfar = far_ad.grads_to_host(), gnear = near_ad.grads_to_host();
  const auto& L = far_ad.layout();
  agree(std::vector<T>(gfar.begin() + L.A, gfar.begin() + L.B + L.B_size),
        std::vector<T>(gnear.begin() + L.A, gnear.begin() + L.B + L.B_size), "dA, dB");
  for (T v : dXfar) CHECK(std::isfinite(double(v)));
  for (T v : gfar) CHECK(std::isfinite(double(v)));
}
template <class T>
void check_overflowing_rows_all(double dropout) {
  check_overflowing_row<HypLoraLorentz, T, backend::Cpu>(dropout);
  check_overflowing_row<HypLoraPoincare, T, backend::Cpu>(dropout);
  check_overflowing_row<Naive, T, backend::Cpu>(dropout);
}
}  // namespace

TEMPLATE_TEST_CASE("a row whose squared norm overflows gets the saturated branch", "[adapter][range]", float, double) {
  for (double dropout : {0.0, 0.3}) {  // the rank-space form (it falls back to the explicit lift) and the explicit rows
    INFO("dropout " << dropout);
    check_overflowing_rows_all<TestType>(dropout);
  }
}

TEST_CASE("alpha and K_init must fit the scalar type; a NaN curvature throws before backward touches dX", "[adapter][errors]") {
  AdapterConfig c;
  c.d_in = 4; c.d_out = 3; c.rank = 2;
  AdapterConfig bad = c; bad.alpha = 1e39;  // alpha / r = 5e38: inf in float
  CHECK_THROWS_WITH((Adapter<Lora, float, backend::Cpu>(bad)), Catch::Contains("alpha / rank") && Catch::Contains("5e+38"));
  CHECK_NOTHROW(Adapter<Lora, double, backend::Cpu>(bad));
  bad.alpha = 1e-50;  // 0 in float: the branch would be off without a word
  CHECK_THROWS_WITH((Adapter<HypLoraLorentz, float, backend::Cpu>(bad)), Catch::Contains("alpha / rank"));
  bad.alpha = 0;  // an explicit 0 is the user's choice
  CHECK_NOTHROW(Adapter<Lora, float, backend::Cpu>(bad));
  bad = c; bad.K_init = 1e300;
  CHECK_THROWS_WITH((Adapter<HypLoraLorentz, float, backend::Cpu>(bad)), Catch::Contains("K_init") && Catch::Contains("1e+300"));
  CHECK_NOTHROW(Adapter<Lora, float, backend::Cpu>(bad));  // LoRA has no curvature to fit
  bad = c; bad.curvature = CurvatureMode::shared; bad.K_init = bad.K_min / 2;  // both ignored when shared
  CHECK_NOTHROW(Adapter<HypLoraLorentz, double, backend::Cpu>(bad));

  c.curvature = CurvatureMode::learnable;
  Adapter<HypLoraLorentz, double, backend::Cpu> ad(c);
  randomize_B(ad, 3, 0.5);
  const std::vector<double> W = random_vec<double>(12, 5, 0.5), X = random_vec<double>(8, 6, 1.0),
                            dY = random_vec<double>(6, 7, 1.0);
  std::vector<double> Y(6, 0.0), dX(8, 0.25), dW(12, 0.5);
  ad.forward(W.data(), nullptr, X.data(), Y.data(), 2, false);
  ad.params()[ad.layout().curvature] = std::numeric_limits<double>::quiet_NaN();  // e.g. a bad optimiser step
  CHECK_THROWS_WITH(ad.backward(W.data(), X.data(), dY.data(), dX.data(), 2, dW.data()),
                    Catch::Contains("curvature_raw"));
  CHECK(dX == std::vector<double>(8, 0.25));
  CHECK(dW == std::vector<double>(12, 0.5));
}

#include "hyplora/adapter/dispatch.hpp"

TEST_CASE("variant names round-trip through dispatch_variant", "[adapter][dispatch]") {
  for (const char* name : {"lora", "lora_scaled", "naive", "hyplora_lorentz", "hyplora_poincare", "paper"}) {
    const auto kind = variant_from_name(name);
    CHECK(std::string(variant_name(kind)) == name);
    const std::string via = dispatch_variant(kind, [](auto tag) { return std::string(decltype(tag)::name); });
    CHECK(via == name);
  }
  CHECK_THROWS_WITH(variant_from_name("hyperbolic"), Catch::Contains("unknown adapter variant"));
}

TEST_CASE("settings that would divide by a subnormal or carry infinities are rejected", "[adapter][errors]") {
  AdapterConfig c;
  c.d_in = 4; c.d_out = 4; c.rank = 2;
  AdapterConfig bad = c; bad.scale_init = 1e-320;
  CHECK_THROWS_WITH((Adapter<HypLoraLorentz, double, backend::Cpu>(bad)), Catch::Contains("scale_init") && Catch::Contains("e-321"));
  bad = c; bad.paper_k_init = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH((Adapter<PaperHypLora, double, backend::Cpu>(bad)), Catch::Contains("paper_k_init"));
  bad = c; bad.paper_theta_eps = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH((Adapter<PaperHypLora, double, backend::Cpu>(bad)), Catch::Contains("paper_theta_eps"));
  c.scale = ScaleMode::learnable;
  Adapter<LoraScaled, float, backend::Cpu> af(c);
  std::vector<float> p = af.params_to_host();
  p[std::size_t(af.layout().scale)] = 1e-40f;  // subnormal (printed 9.99995e-41): 1/s overflows
  CHECK_THROWS_WITH(af.params_from_host(p), Catch::Contains("norm scale") && Catch::Contains("e-41"));
}

TEST_CASE("paper option: the lower map stays finite where |y|^2 overflows (audit of 2026-11-29)", "[adapter][paper]") {
  // theta = sqrt((n^2 + 1/K)/K) was inf beyond n ~1.8e19 in float (1.3e154 in double): an infinite
  // branch output and a NaN dX. Compared with long double on the same input.
  const double K = std::log1p(std::exp(1.0)) + 1e-6;
  const MapSettings<float> sf;
  const MapSettings<long double> sl;
  for (double n : {1e10, 1e18, 1e19, 1e20, 1e30, 1e37}) {
    const auto f = PaperHypLora::lower(float(n), float(K), sf);
    const auto l = PaperHypLora::lower((long double)(float(n)), (long double)(float(K)), sl);
    INFO("|y| = " << n);
    const double tol = 16 * std::numeric_limits<float>::epsilon();
    CHECK(std::abs(double(f.f) - double(l.f)) <= tol * std::abs(double(l.f)));
    CHECK(std::abs(double(f.ndf) - double(l.ndf)) <= tol * std::abs(double(l.ndf)));
    CHECK(std::abs(double(f.df_dK) - double(l.df_dK)) <= tol * std::abs(double(l.df_dK)));
  }
  const auto d = PaperHypLora::lower(1e200, K, MapSettings<double>{});
  CHECK((std::isfinite(d.f) && std::isfinite(d.ndf) && std::isfinite(d.df_dK) && d.f > 0.0));
  // At K < 1, (n^2 + 1/K)/K overflows before n^2 does (K = 0.5, n = 1.5e19: an infinite branch; a
  // review of the audit's fix): theta = n/sqrt K is taken wherever theta^2 leaves the range.
  // and at K = 1e-6, n = 1e30: the K-gradient's dtheta/dK overflowed (-inf; a second review)
  for (double k : {1e-6, 0.1, 0.5})
    for (double n : {1.5e19, 1.8e19, 1e30}) {
      const auto f = PaperHypLora::lower(float(n), float(k), sf);
      const auto l = PaperHypLora::lower((long double)(float(n)), (long double)(float(k)), sl);
      INFO("K = " << k << ", |y| = " << n);
      const double tol = 16 * std::numeric_limits<float>::epsilon();
      CHECK(std::abs(double(f.f) - double(l.f)) <= tol * std::abs(double(l.f)));
      CHECK(std::abs(double(f.ndf) - double(l.ndf)) <= tol * std::abs(double(l.ndf)));
      CHECK(std::abs(double(f.df_dK) - double(l.df_dK)) <= tol * std::abs(double(l.df_dK)));
    }
}

TEST_CASE("float rank-space backward agrees with double where |B A u| is huge (audit of 2026-11-29)", "[adapter][range]") {
  // The lower map's stored m h'(m)/q2 underflowed float once |B A u| > ~1e13 and, multiplied back by
  // q2, gave dX, dA and dB 2-40 times too large (|y| 1e14-1e18; beyond ~1e19 q2 overflows and the
  // explicit path takes over). Now m h'(m) is stored. Every gradient against double on the same input.
  auto run = [](auto variant, auto zero, double b, std::vector<double>& grads) {
    using V = decltype(variant);
    using T = decltype(zero);
    AdapterConfig c;
    c.d_in = 4; c.d_out = 3; c.rank = 2; c.alpha = 2; c.seed = 1;
    c.scale = ScaleMode::fixed; c.scale_init = 1.0;
    Adapter<V, T, backend::Cpu> ad(c);
    auto p = ad.params_to_host();
    for (index_t i = 0; i < ad.layout().A_size; ++i) p[std::size_t(ad.layout().A + i)] = T(1);
    for (index_t i = 0; i < ad.layout().B_size; ++i) p[std::size_t(ad.layout().B + i)] = T(b);
    ad.params_from_host(p);
    std::vector<T> X{T(1), T(0.5), T(-0.25), T(1)}, Y(3, T(0)), G{T(1), T(-0.5), T(0.75)}, dX(4, T(0));
    ad.forward_branch(X.data(), Y.data(), 1, false);
    ad.backward_branch(X.data(), G.data(), dX.data(), 1);
    const auto g = ad.grads_to_host();
    grads.assign(dX.begin(), dX.end());
    grads.insert(grads.end(), g.begin(), g.end());
  };
  auto check = [&](auto variant) {
    for (double b : {1.0, 1e12, 1e14, 1e16, 1e18}) {
      std::vector<double> gf, gd;
      run(variant, 0.f, b, gf);
      run(variant, 0.0, b, gd);
      INFO(decltype(variant)::name << ", B = " << b);
      REQUIRE(gf.size() == gd.size());
      for (std::size_t i = 0; i < gd.size(); ++i) {
        INFO("gradient entry " << i << ": float " << gf[i] << ", double " << gd[i]);
        // B's entries are within 1e-6 relative of each other's gradients (rank 2, 3 outputs): a few
        // hundred float ulp of the largest entry cover the roundings of m ~ 1e18
        double scale = 0;
        for (double v : gd) scale = std::max(scale, std::abs(v));
        CHECK(std::abs(gf[i] - gd[i]) <= 1e-4 * std::max(std::abs(gd[i]), 1e-3 * scale));
      }
    }
  };
  // (HypLoRA on the ball is not compared: beyond the ball its lower map saturates at artanh of the
  // type's max_map_radius, 1 - 4 eps, which is 7.6 in float and 17.9 in double)
  check(HypLoraLorentz{});
  check(PaperHypLora{});
}
