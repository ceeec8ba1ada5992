// The manifolds inside a CUDA kernel: expmap0 / logmap0 / dist of Lorentz and PoincareBall on
// the device compared with the same calls on the host, once through the single-point maps (one
// thread per row, below) and once through hyplora::batched::gpu (warp groups per row; long rows:
// one block per row, check_long_rows). Plain main (no Catch2) so that nvcc
// compiles only the geometry headers. Without a CUDA device it prints a message and exits 77
// (ctest: skipped).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include <hyplora/manifold/batched.hpp>
#include <hyplora/manifold/batched_gpu.hpp>
#include <hyplora/manifold/lorentz.hpp>
#include <hyplora/manifold/poincare.hpp>
#include <hyplora/manifold/sampling.hpp>

using namespace hyplora;
using L = Lorentz<float, RuntimeCurvature<float>>;
using B = PoincareBall<float, FixedCurvature<float, std::ratio<1, 2>>>;

// Row r: x = expmap0(v_r), w = logmap0(x), out = dist(x, x_{r+1}); the same for the ball.
__global__ void geometry_kernel(L lor, B ball, const float* V, float* X, float* W, float* D, float* P, float* Q,
                                float* E, int rows, int d) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const int n = d + 1;
  lor.expmap0(V + r * n, X + r * n, n);
  lor.logmap0(X + r * n, W + r * n, n);
  ball.expmap0(V + r * n + 1, P + r * d, d);
  ball.logmap0(P + r * d, Q + r * d, d);
  if (r + 1 < rows) {
    // Recompute the neighbour locally (no grid-wide sync needed).
    float xn[64], pn[64];
    lor.expmap0(V + (r + 1) * n, xn, n);
    ball.expmap0(V + (r + 1) * n + 1, pn, d);
    D[r] = lor.dist(X + r * n, xn, n);
    E[r] = ball.dist(P + r * d, pn, d);
  }
}

// Long rows take the block-per-row kernels of batched::gpu (the row in registers): Lorentz and
// ball rows of d = 700, 1500, 4096 (4, 8, 16 values per thread) against the host's batched maps.
// |v| is kept between 0.01 and 3 (factor condition numbers below 3). The host sums |v|^2 in order
// over 4 lanes (n/4 adds), the device in 16 steps and an 8-level tree: the sum's relative error is
// at most (n/4 + 24) eps/2, so the maps and the Lorentz dist may differ by 64 eps + 4 (n/4 + 24) eps
// relative. The ball's dist is checked against double below (its condition grows at the boundary).
int check_long_rows(int d) {
  const int rows = 24, n = d + 1;
  const L lor(RuntimeCurvature<float>(0.7f));
  const B ball;
  Rng rng(7 + d);
  std::vector<float> V(size_t(rows) * n), Vb(size_t(rows) * d);
  for (int r = 0; r < rows; ++r) {
    const float radius = r == 0 ? 0.01f : (r == 1 ? 3.0f : 0.5f + 2.0f * float(r) / rows);
    for (int i = 0; i < n; ++i) V[size_t(r) * n + i] = rng.normal<float>() * radius / std::sqrt(float(d));
    for (int i = 0; i < d; ++i) Vb[size_t(r) * d + i] = V[size_t(r) * n + 1 + i];
  }
  std::vector<float> X(V.size()), W(V.size()), D(rows), P(Vb.size()), Q(Vb.size());
  batched::expmap0(lor, V.data(), X.data(), rows, n);
  batched::logmap0(lor, X.data(), W.data(), rows, n);
  batched::dist(lor, X.data(), X.data() + n, D.data(), rows - 1, n);
  batched::expmap0(ball, Vb.data(), P.data(), rows, d);
  batched::logmap0(ball, P.data(), Q.data(), rows, d);
  float *dV, *dX, *dW, *dD, *dVb, *dP, *dQ, *dE;
  cudaMalloc(&dV, V.size() * 4), cudaMalloc(&dX, V.size() * 4), cudaMalloc(&dW, V.size() * 4), cudaMalloc(&dD, rows * 4);
  cudaMalloc(&dVb, Vb.size() * 4), cudaMalloc(&dP, Vb.size() * 4), cudaMalloc(&dQ, Vb.size() * 4), cudaMalloc(&dE, rows * 4);
  cudaMemcpy(dV, V.data(), V.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dVb, Vb.data(), Vb.size() * 4, cudaMemcpyHostToDevice);
  batched::gpu::expmap0(lor, dV, dX, rows, n);
  batched::gpu::logmap0(lor, dX, dW, rows, n);
  batched::gpu::dist(lor, dX, dX + n, dD, rows - 1, n);
  batched::gpu::expmap0(ball, dVb, dP, rows, d);
  batched::gpu::logmap0(ball, dP, dQ, rows, d);
  // the ball's dist on the host's points (below: against a double evaluation of the same points)
  float* dPh;
  cudaMalloc(&dPh, P.size() * 4);
  cudaMemcpy(dPh, P.data(), P.size() * 4, cudaMemcpyHostToDevice);
  batched::gpu::dist(ball, dPh, dPh + d, dE, rows - 1, d);
  if (cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("FAILED: long rows (d = %d): %s\n", d, cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  std::vector<float> GX(V.size()), GW(V.size()), GD(rows), GP(Vb.size()), GQ(Vb.size()), GE(rows);
  cudaMemcpy(GX.data(), dX, V.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(GW.data(), dW, V.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(GD.data(), dD, rows * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(GP.data(), dP, Vb.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(GQ.data(), dQ, Vb.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(GE.data(), dE, rows * 4, cudaMemcpyDeviceToHost);
  cudaFree(dV), cudaFree(dX), cudaFree(dW), cudaFree(dD), cudaFree(dVb), cudaFree(dP), cudaFree(dQ), cudaFree(dE);
  cudaFree(dPh);
  const double eps = std::numeric_limits<float>::epsilon();
  const double rel = 64 * eps + 4 * (n / 4.0 + 24) * eps;
  int bad = 0;
  auto cmp = [&](const char* what, float dev, float host, size_t i) {
    if (!std::isfinite(dev) || !(std::fabs(double(dev) - double(host)) <= rel * (1 + std::fabs(host)))) {
      if (bad++ < 10) std::printf("mismatch long rows d = %d, %s at %zu: device %.9g host %.9g\n", d, what, i, dev, host);
    }
  };
  for (size_t i = 0; i < V.size(); ++i) cmp("lorentz expmap0", GX[i], X[i], i), cmp("lorentz logmap0", GW[i], W[i], i);
  for (size_t i = 0; i < Vb.size(); ++i) cmp("ball expmap0", GP[i], P[i], i), cmp("ball logmap0", GQ[i], Q[i], i);
  for (int r = 0; r + 1 < rows; ++r) cmp("lorentz dist", GD[r], D[r], size_t(r));
  // Ball dist = 2 sqrt K asinh(w), w = |x - y| / (sqrt K sqrt(a_x a_y)), a = 1 - |x|^2/K. A relative
  // error s in each of the sums |x|^2, |y|^2, |x - y|^2 moves it by up to
  //   sqrt K (w / sqrt(1 + w^2)) (1 + k_x + k_y) s,   k = (|x|^2/K) / a  (the boundary's condition),
  // which for a point 1 - |x|^2/K = 8e-4 from the boundary is ~1000 s: comparing against the host's
  // float sums (in another order) would need that slack twice, and the device's points differ
  // from the host's by the maps' rounding, amplified the same way. So the device's dist of the
  // host's points is checked against the double evaluation of the same float points, with s the
  // device's sum order: PerThread values a thread, a 5-level warp tree, 8 warp parts.
  const double K = 1.0 / 2.0, per_thread = std::ceil(d / 256.0), s_sum = (per_thread + 5 + 8) * eps;
  for (int r = 0; r + 1 < rows; ++r) {
    const float* x = P.data() + size_t(r) * d;
    const float* y = x + d;
    double x2 = 0, y2 = 0, d2 = 0;
    for (int i = 0; i < d; ++i) {
      x2 += double(x[i]) * x[i], y2 += double(y[i]) * y[i];
      d2 += (double(x[i]) - double(y[i])) * (double(x[i]) - double(y[i]));
    }
    const double ax = 1 - x2 / K, ay = 1 - y2 / K, w = std::sqrt(d2 / (K * ax * ay));
    const double ref = 2 * std::sqrt(K) * std::asinh(w);
    const double tol = 64 * eps * (1 + ref) + std::sqrt(K) * (w / std::sqrt(1 + w * w)) *
                                                  (1 + (x2 / K) / ax + (y2 / K) / ay) * s_sum;
    if (!std::isfinite(GE[r]) || !(std::fabs(double(GE[r]) - ref) <= tol)) {
      if (bad++ < 10)
        std::printf("mismatch long rows d = %d, ball dist at %d: device %.9g, double %.9g, tolerance %.3g\n", d, r,
                    GE[r], ref, tol);
    }
  }
  return bad;
}

// Rows whose plain sums leave float's range take the rescaled form, computed by the row's lanes
// (or block) together: coincident points (|x - y|^2 = 0; dist 0) and tiny points (1e-22 scale:
// the squares underflow) through batched::gpu::dist with 8, 16 and 32 lanes and the block rows,
// against the host's single-point dist (its serial rescaled form, checked against long double in
// test_manifold_models) within (64 + n/4) eps relative. The odd rows are coincident, the even ones tiny.
int check_rescaled_rows(int d) {
  const int rows = 40, n = d + 1;
  const L lor(RuntimeCurvature<float>(0.7f));
  const B ball;
  Rng rng(11 + d);
  std::vector<float> Vx(size_t(rows) * n), Vy(Vx.size());
  for (int r = 0; r < rows; ++r)
    for (int i = 1; i < n; ++i) {
      const float scale = r % 2 ? 1.0f / std::sqrt(float(d)) : 1e-22f;
      Vx[size_t(r) * n + i] = scale * rng.normal<float>();
      Vy[size_t(r) * n + i] = r % 2 ? Vx[size_t(r) * n + i] : scale * rng.normal<float>();
    }
  std::vector<float> X(Vx.size()), Y(Vx.size()), P(size_t(rows) * d), Q(P.size()), D(rows), E(rows);
  for (int r = 0; r < rows; ++r) {
    lor.expmap0(Vx.data() + size_t(r) * n, X.data() + size_t(r) * n, n);
    lor.expmap0(Vy.data() + size_t(r) * n, Y.data() + size_t(r) * n, n);
    for (int i = 0; i < d; ++i) P[size_t(r) * d + i] = 0.5f * Vx[size_t(r) * n + 1 + i], Q[size_t(r) * d + i] = 0.5f * Vy[size_t(r) * n + 1 + i];
    D[r] = lor.dist(X.data() + size_t(r) * n, Y.data() + size_t(r) * n, n);
    E[r] = ball.dist(P.data() + size_t(r) * d, Q.data() + size_t(r) * d, d);
  }
  float *dX, *dY, *dP, *dQ, *dD;
  cudaMalloc(&dX, X.size() * 4), cudaMalloc(&dY, Y.size() * 4), cudaMalloc(&dP, P.size() * 4), cudaMalloc(&dQ, Q.size() * 4);
  cudaMalloc(&dD, rows * 4);
  cudaMemcpy(dX, X.data(), X.size() * 4, cudaMemcpyHostToDevice), cudaMemcpy(dY, Y.data(), Y.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dP, P.data(), P.size() * 4, cudaMemcpyHostToDevice), cudaMemcpy(dQ, Q.data(), Q.size() * 4, cudaMemcpyHostToDevice);
  // both sum r = sum (a_i/m)^2 of up to n terms in their own order: (n/2) eps on r, n/4 on its root
  const double tol = (64 + n / 4.0) * double(std::numeric_limits<float>::epsilon());
  int bad = 0;
  auto check = [&](const char* what, const std::vector<float>& host) {
    std::vector<float> G(rows);
    if (cudaDeviceSynchronize() != cudaSuccess) {
      std::printf("FAILED: rescaled rows (d = %d, %s): %s\n", d, what, cudaGetErrorString(cudaGetLastError()));
      ++bad;
      return;
    }
    cudaMemcpy(G.data(), dD, rows * 4, cudaMemcpyDeviceToHost);
    for (int r = 0; r < rows; ++r) {
      const bool ok = r % 2 ? G[r] == 0.0f && host[r] == 0.0f
                            : host[r] > 0.0f && std::fabs(double(G[r]) - double(host[r])) <= tol * double(host[r]);
      if (!ok && bad++ < 10) std::printf("mismatch rescaled rows d = %d, %s row %d: device %.9g host %.9g\n", d, what, r, G[r], host[r]);
    }
  };
  if (d <= 512) {  // the lane groups (longer rows take the block rows)
    for (int lanes : {8, 16, 32}) {
      batched::gpu::detail::dist(lor, dX, dY, dD, rows, n, nullptr, lanes);
      check("lorentz dist, lane groups", D);
      batched::gpu::detail::dist(ball, dP, dQ, dD, rows, d, nullptr, lanes);
      check("ball dist, lane groups", E);
    }
  } else {
    batched::gpu::dist(lor, dX, dY, dD, rows, n);
    check("lorentz dist, block rows", D);
    batched::gpu::dist(ball, dP, dQ, dD, rows, d);
    check("ball dist, block rows", E);
  }
  cudaFree(dX), cudaFree(dY), cudaFree(dP), cudaFree(dQ), cudaFree(dD);
  return bad;
}

int main() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n", err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    return 77;
  }
  const int rows = 1000, d = 16, n = d + 1;
  const L lor(RuntimeCurvature<float>(0.7f));
  const B ball;
  std::vector<float> V(rows * n);
  Rng rng(2024);
  for (auto& a : V) a = 1.5f * rng.normal<float>();
  // the last row carries a NaN (a space coordinate; the ball's first): every map of it, and the
  // distance of the row before to it, must give NaN on the device as on the host
  V[size_t(rows - 1) * n + 1] = std::numeric_limits<float>::quiet_NaN();
  float *dV, *dX, *dW, *dD, *dP, *dQ, *dE;
  cudaMalloc(&dV, V.size() * 4), cudaMalloc(&dX, V.size() * 4), cudaMalloc(&dW, V.size() * 4);
  cudaMalloc(&dD, rows * 4), cudaMalloc(&dE, rows * 4), cudaMalloc(&dP, rows * d * 4), cudaMalloc(&dQ, rows * d * 4);
  cudaMemcpy(dV, V.data(), V.size() * 4, cudaMemcpyHostToDevice);
  geometry_kernel<<<(rows + 127) / 128, 128>>>(lor, ball, dV, dX, dW, dD, dP, dQ, dE, rows, d);
  if (cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("FAILED: kernel error %s\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  // hyplora::batched::gpu on the same inputs, with 8, 16 and 32 lanes per row (ball rows made
  // contiguous: d values per row); index 0 is the default choice (8 lanes for these 16- and
  // 17-value rows)
  std::vector<float> Vb(rows * d);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < d; ++i) Vb[r * d + i] = V[r * n + 1 + i];
  constexpr int lane_choices[3] = {8, 16, 32};
  std::vector<float> GX[3], GW[3], GD[3], GE[3], GP[3], GQ[3];
  float *dVb, *gX, *gW, *gD, *gP, *gQ, *gE;
  cudaMalloc(&dVb, Vb.size() * 4), cudaMalloc(&gX, V.size() * 4), cudaMalloc(&gW, V.size() * 4);
  cudaMalloc(&gD, rows * 4), cudaMalloc(&gE, rows * 4), cudaMalloc(&gP, rows * d * 4), cudaMalloc(&gQ, rows * d * 4);
  cudaMemcpy(dVb, Vb.data(), Vb.size() * 4, cudaMemcpyHostToDevice);
  for (int c = 0; c < 3; ++c) {
    const int lanes = lane_choices[c];
    if (c == 0) {
      batched::gpu::expmap0(lor, dV, gX, rows, n);
      batched::gpu::logmap0(lor, gX, gW, rows, n);
      batched::gpu::dist(lor, gX, gX + n, gD, rows - 1, n);  // row r against row r + 1
      batched::gpu::expmap0(ball, dVb, gP, rows, d);
      batched::gpu::logmap0(ball, gP, gQ, rows, d);
      batched::gpu::dist(ball, gP, gP + d, gE, rows - 1, d);
    } else {
      batched::gpu::detail::expmap0(lor, dV, gX, rows, n, nullptr, lanes);
      batched::gpu::detail::logmap0(lor, gX, gW, rows, n, nullptr, lanes);
      batched::gpu::detail::dist(lor, gX, gX + n, gD, rows - 1, n, nullptr, lanes);
      batched::gpu::detail::expmap0(ball, dVb, gP, rows, d, nullptr, lanes);
      batched::gpu::detail::logmap0(ball, gP, gQ, rows, d, nullptr, lanes);
      batched::gpu::detail::dist(ball, gP, gP + d, gE, rows - 1, d, nullptr, lanes);
    }
    if (cudaDeviceSynchronize() != cudaSuccess) {
      std::printf("FAILED: batched::gpu (%d lanes) error %s\n", lanes, cudaGetErrorString(cudaGetLastError()));
      return 1;
    }
    GX[c].resize(V.size()), GW[c].resize(V.size()), GD[c].resize(rows), GE[c].resize(rows);
    GP[c].resize(rows * d), GQ[c].resize(rows * d);
    cudaMemcpy(GX[c].data(), gX, V.size() * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(GW[c].data(), gW, V.size() * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(GD[c].data(), gD, (rows - 1) * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(GE[c].data(), gE, (rows - 1) * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(GP[c].data(), gP, rows * d * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(GQ[c].data(), gQ, rows * d * 4, cudaMemcpyDeviceToHost);
  }
  std::vector<float> X(V.size()), W(V.size()), D(rows), E(rows), P(rows * d), Q(rows * d);
  cudaMemcpy(X.data(), dX, X.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(W.data(), dW, W.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(D.data(), dD, rows * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(E.data(), dE, rows * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(P.data(), dP, P.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(Q.data(), dQ, Q.size() * 4, cudaMemcpyDeviceToHost);
  // Device math functions differ from glibc's by a few ulp: relative tolerance 64 eps of the
  // magnitude (coordinates up to cosh(|v|/sqrt K) ~ 1e3 here). Rows with sqrt(c)|v| ~ 8 sit at the
  // ball's boundary (|p| = (1 - a few ulp)/sqrt(c)), where the ball's logmap0 and dist evaluate
  // artanh(y) with y within ulps of 1: a difference of 4 ulp in y (the device's tanh, its norm sums)
  // moves rho = artanh(y)/sqrt(c) by 4 eps / ((1 - y^2) sqrt(c)) = 4 eps cosh^2(sqrt(c) rho) / sqrt(c),
  // so those comparisons add that conditioning term, taken from the host's rho.
  const float tol = 64 * std::numeric_limits<float>::epsilon();
  const double sqrt_c = std::sqrt(double(ball.c()));
  auto artanh_conditioning = [&](double rho) {  // 4 eps cosh^2(sqrt(c) rho) / sqrt(c)
    const double ch = std::cosh(sqrt_c * rho);
    return 4.0 * std::numeric_limits<float>::epsilon() * ch * ch / sqrt_c;
  };
  int bad = 0, nan_checked = 0;
  auto cmp = [&](const char* what, float dev, float host, int r, double extra = 0.0) {
    if (std::isnan(host)) {  // NaN in, NaN out
      ++nan_checked;
      if (!std::isnan(dev) && bad++ < 10) std::printf("mismatch %s row %d: device %.9g where the host gives NaN\n", what, r, dev);
      return;
    }
    if (!std::isfinite(dev) || !(std::fabs(double(dev) - double(host)) <= tol * (1 + std::fabs(host)) + extra)) {
      if (bad++ < 10) std::printf("mismatch %s row %d: device %.9g host %.9g (allowed %.3g)\n", what, r, dev, host,
                                  tol * (1 + std::fabs(host)) + extra);
    }
  };
  std::vector<float> x(n), w(n), xn(n), p(d), q(d), pn(d);
  for (int r = 0; r < rows; ++r) {
    lor.expmap0(V.data() + r * n, x.data(), n);
    lor.logmap0(x.data(), w.data(), n);
    ball.expmap0(V.data() + r * n + 1, p.data(), d);
    ball.logmap0(p.data(), q.data(), d);
    for (int i = 0; i < n; ++i) cmp("lorentz expmap0", X[r * n + i], x[i], r), cmp("lorentz logmap0", W[r * n + i], w[i], r);
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < n; ++i)
        cmp("batched lorentz expmap0", GX[c][r * n + i], x[i], r), cmp("batched lorentz logmap0", GW[c][r * n + i], w[i], r);
    double rho = 0;  // |logmap0(p)| on the host
    for (int i = 0; i < d; ++i) rho += double(q[i]) * double(q[i]);
    const double log_extra = artanh_conditioning(std::sqrt(rho));
    for (int i = 0; i < d; ++i) cmp("ball expmap0", P[r * d + i], p[i], r), cmp("ball logmap0", Q[r * d + i], q[i], r, log_extra);
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < d; ++i)
        cmp("batched ball expmap0", GP[c][r * d + i], p[i], r), cmp("batched ball logmap0", GQ[c][r * d + i], q[i], r, log_extra);
    if (r + 1 < rows) {
      lor.expmap0(V.data() + (r + 1) * n, xn.data(), n);
      ball.expmap0(V.data() + (r + 1) * n + 1, pn.data(), d);
      const float host_ldist = lor.dist(x.data(), xn.data(), n);
      cmp("lorentz dist", D[r], host_ldist, r);
      for (int c = 0; c < 3; ++c) cmp("batched lorentz dist", GD[c][r], host_ldist, r);
      const float host_dist = ball.dist(p.data(), pn.data(), d);  // = 2 artanh(y)/sqrt(c)
      cmp("ball dist", E[r], host_dist, r, 2.0 * artanh_conditioning(0.5 * double(host_dist)));
      for (int c = 0; c < 3; ++c) cmp("batched ball dist", GE[c][r], host_dist, r, 2.0 * artanh_conditioning(0.5 * double(host_dist)));
    }
  }
  cudaFree(dV), cudaFree(dX), cudaFree(dW), cudaFree(dD), cudaFree(dE), cudaFree(dP), cudaFree(dQ);
  cudaFree(dVb), cudaFree(gX), cudaFree(gW), cudaFree(gD), cudaFree(gE), cudaFree(gP), cudaFree(gQ);
  if (nan_checked == 0 && bad++ < 10) std::printf("mismatch: the NaN row gave no NaN on the host\n");
  for (int dl : {700, 1500, 4096}) bad += check_long_rows(dl);
  for (int dr : {16, 64, 1500}) bad += check_rescaled_rows(dr);
  std::printf("%s: %d mismatches in %d rows and the long rows\n", bad ? "FAILED" : "passed", bad, rows);
  return bad ? 1 : 0;
}
