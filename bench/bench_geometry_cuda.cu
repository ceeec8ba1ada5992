// Throughput of the GPU geometry, float32, beside a device-to-device cudaMemcpy of the same bytes in
// the same run (the memory-bandwidth bound): hyplora::batched::gpu (warp groups per row; rows of
// 513-4096 values one block per row) and, for
// comparison, the single-point maps in a plain kernel (one thread per row). Shapes of bench_geometry: 1M rows of dimension 64
// and 4096 rows of 4096. Bytes counted as in bench_geometry: rows read + rows written (dist: two
// rows read, one float written). Median of --reps timed launches (CUDA events), after a warm-up.
//
//   bench_geometry_cuda [--reps N]
//
// Without a CUDA device it prints a message and exits 77.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <hyplora/manifold/batched_gpu.hpp>
#include <hyplora/manifold/lorentz.hpp>
#include <hyplora/manifold/poincare.hpp>
#include <hyplora/manifold/sampling.hpp>

#include "bench_cuda.hpp"
#include "bench_stats.hpp"

using namespace hyplora;
using LorentzF = Lorentz<float, RuntimeCurvature<float>>;
using BallF = PoincareBall<float, RuntimeCurvature<float>>;

namespace {

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench_geometry_cuda: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

template <class M>
__global__ void expmap0_rows(M m, const float* V, float* X, long rows, int n) {
  for (long r = blockIdx.x * long(blockDim.x) + threadIdx.x; r < rows; r += long(gridDim.x) * blockDim.x)
    m.expmap0(V + r * n, X + r * n, n);
}
template <class M>
__global__ void logmap0_rows(M m, const float* X, float* V, long rows, int n) {
  for (long r = blockIdx.x * long(blockDim.x) + threadIdx.x; r < rows; r += long(gridDim.x) * blockDim.x)
    m.logmap0(X + r * n, V + r * n, n);
}
template <class M>
__global__ void dist_rows(M m, const float* X, const float* Y, float* D, long rows, int n) {
  for (long r = blockIdx.x * long(blockDim.x) + threadIdx.x; r < rows; r += long(gridDim.x) * blockDim.x)
    D[r] = m.dist(X + r * n, Y + r * n, n);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 9;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::max(3, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--reps N>=3]\n", argv[0]);
      return 2;
    }
  }
  const cudaDeviceProp prop = bench::first_gpu_or_skip("bench_geometry_cuda");
  std::printf("# bench_geometry_cuda: float32, %s (%d SMs); batched::gpu = 8-32 lanes of a warp per row, thread/row = single-point maps\n",
              prop.name, prop.multiProcessorCount);
  std::printf("# median of %d launches; bound = cudaMemcpy device-to-device of the same bytes, same run\n\n", reps);
  std::printf("| op | rows x d | GB/s | memcpy GB/s | fraction of bound |\n|---|---|---|---|---|\n");

  const LorentzF lor(RuntimeCurvature<float>(1.0f));
  const BallF ball(RuntimeCurvature<float>(1.0f));
  cudaEvent_t a, b;
  cuda_check(cudaEventCreate(&a), "cudaEventCreate");
  cuda_check(cudaEventCreate(&b), "cudaEventCreate");
  auto time_ms = [&](const std::function<void()>& f) {
    f();
    cuda_check(cudaDeviceSynchronize(), "warm-up");
    std::vector<double> t;
    for (int k = 0; k < reps; ++k) {
      cuda_check(cudaEventRecord(a), "cudaEventRecord");
      f();
      cuda_check(cudaEventRecord(b), "cudaEventRecord");
      cuda_check(cudaEventSynchronize(b), "kernel");
      float ms = 0;
      cuda_check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
      t.push_back(ms);
    }
    return bench::stats(t).median;
  };

  struct Shape { long rows; int d; };
  for (const Shape s : {Shape{1L << 20, 64}, Shape{4096, 4096}}) {
    const int n = s.d + 1;  // Lorentz rows carry the time coordinate
    const size_t lor_count = size_t(s.rows) * size_t(n), ball_count = size_t(s.rows) * size_t(s.d);
    // Tangent vectors at the origin, |v| ~ 1 (Lorentz: time coordinate 0; ball: a smaller scale).
    std::vector<float> hv(lor_count, 0.0f), hp(ball_count);
    Rng rng(7);
    const float sc = 1.0f / std::sqrt(float(s.d));
    for (long r = 0; r < s.rows; ++r)
      for (int j = 0; j < s.d; ++j) {
        const float x = sc * rng.normal<float>();
        hv[size_t(r) * n + 1 + j] = x;
        hp[size_t(r) * s.d + j] = 0.5f * x;
      }
    float *V, *X, *Y, *W, *P, *Q, *PV, *D, *C;
    cuda_check(cudaMalloc(&V, lor_count * 4), "cudaMalloc");
    cuda_check(cudaMalloc(&X, lor_count * 4), "cudaMalloc");
    cuda_check(cudaMalloc(&Y, lor_count * 4), "cudaMalloc");
    cuda_check(cudaMalloc(&W, lor_count * 4), "cudaMalloc");
    cuda_check(cudaMalloc(&C, lor_count * 4), "cudaMalloc");
    cuda_check(cudaMalloc(&P, ball_count * 4), "cudaMalloc");
    cuda_check(cudaMalloc(&Q, ball_count * 4), "cudaMalloc");
    cuda_check(cudaMalloc(&PV, ball_count * 4), "cudaMalloc");
    cuda_check(cudaMalloc(&D, size_t(s.rows) * 4), "cudaMalloc");
    cuda_check(cudaMemcpy(V, hv.data(), lor_count * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
    cuda_check(cudaMemcpy(PV, hp.data(), ball_count * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
    const int threads = 128;
    const int blocks = int(std::min<long>((s.rows + threads - 1) / threads, 65535));
    expmap0_rows<<<blocks, threads>>>(lor, V, Y, s.rows, n);   // a second point set for dist
    expmap0_rows<<<blocks, threads>>>(ball, PV, Q, s.rows, s.d);
    cuda_check(cudaDeviceSynchronize(), "set-up kernels");

    const std::string shape = std::to_string(s.rows) + " x " + std::to_string(s.d);
    auto report = [&](const char* op, double bytes, const std::function<void()>& f) {
      // memcpy of the same bytes (half read, half written), timed next to the op
      const size_t half = std::min(size_t(bytes / 2), lor_count * 4);
      const double tm = time_ms([&] { cuda_check(cudaMemcpyAsync(C, V, half, cudaMemcpyDeviceToDevice), "memcpy"); });
      const double t = time_ms(f);
      const double gbs = bytes / (t * 1e-3) / 1e9, gbm = 2.0 * double(half) / (tm * 1e-3) / 1e9;
      std::printf("| %s | %s | %.0f | %.0f | %.0f%% |\n", op, shape.c_str(), gbs, gbm, 100.0 * gbs / gbm);
      std::fflush(stdout);
    };
    const double L = double(lor_count) * 4, B = double(ball_count) * 4, R = double(s.rows) * 4;
    namespace bg = hyplora::batched::gpu;
    report("Lorentz expmap0 (d+1), batched::gpu", 2 * L, [&] { bg::expmap0(lor, V, X, s.rows, n); });
    report("Lorentz expmap0 (d+1), thread/row", 2 * L, [&] { expmap0_rows<<<blocks, threads>>>(lor, V, X, s.rows, n); });
    report("Lorentz logmap0 (d+1), batched::gpu", 2 * L, [&] { bg::logmap0(lor, X, W, s.rows, n); });
    report("Lorentz logmap0 (d+1), thread/row", 2 * L, [&] { logmap0_rows<<<blocks, threads>>>(lor, X, W, s.rows, n); });
    report("Lorentz dist (d+1), batched::gpu", 2 * L + R, [&] { bg::dist(lor, X, Y, D, s.rows, n); });
    report("Lorentz dist (d+1), thread/row", 2 * L + R, [&] { dist_rows<<<blocks, threads>>>(lor, X, Y, D, s.rows, n); });
    report("Poincare expmap0, batched::gpu", 2 * B, [&] { bg::expmap0(ball, PV, P, s.rows, s.d); });
    report("Poincare expmap0, thread/row", 2 * B, [&] { expmap0_rows<<<blocks, threads>>>(ball, PV, P, s.rows, s.d); });
    report("Poincare logmap0, batched::gpu", 2 * B, [&] { bg::logmap0(ball, P, PV, s.rows, s.d); });
    report("Poincare logmap0, thread/row", 2 * B, [&] { logmap0_rows<<<blocks, threads>>>(ball, P, PV, s.rows, s.d); });
    report("Poincare dist, batched::gpu", 2 * B + R, [&] { bg::dist(ball, P, Q, D, s.rows, s.d); });
    report("Poincare dist, thread/row", 2 * B + R, [&] { dist_rows<<<blocks, threads>>>(ball, P, Q, D, s.rows, s.d); });
    if (s.d == 64)  // the lanes per row of batched::gpu for short rows (the default is marked above)
      for (int lanes : {8, 16, 32}) {
        const std::string tag = " lanes " + std::to_string(lanes);
        report(("Lorentz expmap0 (d+1), batched::gpu" + tag).c_str(), 2 * L,
               [&] { bg::detail::expmap0(lor, V, X, s.rows, n, nullptr, lanes); });
        report(("Poincare dist, batched::gpu" + tag).c_str(), 2 * B + R,
               [&] { bg::detail::dist(ball, P, Q, D, s.rows, s.d, nullptr, lanes); });
      }
    if (s.d == 4096) {  // long rows: the warp groups (32 lanes, the row read twice by the maps) beside the default block per row
      report("Lorentz expmap0 (d+1), batched::gpu warp/row", 2 * L, [&] { bg::detail::expmap0(lor, V, X, s.rows, n, nullptr, 32); });
      report("Poincare logmap0, batched::gpu warp/row", 2 * B, [&] { bg::detail::logmap0(ball, P, PV, s.rows, s.d, nullptr, 32); });
      report("Poincare dist, batched::gpu warp/row", 2 * B + R, [&] { bg::detail::dist(ball, P, Q, D, s.rows, s.d, nullptr, 32); });
    }
    cuda_check(cudaGetLastError(), "kernels");
    // a check that the kernels computed something sane: every distance finite
    std::vector<float> hd(size_t(s.rows));
    cuda_check(cudaMemcpy(hd.data(), D, hd.size() * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
    long bad = 0;
    for (float x : hd) bad += !std::isfinite(x);
    if (bad) { std::fprintf(stderr, "bench_geometry_cuda: %ld non-finite distances\n", bad); return 1; }
    for (float* p : {V, X, Y, W, C, P, Q, PV, D}) cudaFree(p);
  }
  return 0;
}
