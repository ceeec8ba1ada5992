// The Thrust backend with the CUDA device system and cuBLAS: Adapter<..., backend::Thrust> runs
// forward and backward on the GPU; Y is compared with a host reference of the radial form in
// double, dX, dA and dB with central differences of that reference along random directions. Without a GPU the test is skipped (exit 77, with a message).
#include <catch2/catch.hpp>

#include <cuda_runtime.h>
#include <thrust/device_vector.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "hyplora/adapter/adapter.hpp"
#include "hyplora/backend/thrust.hpp"

using namespace hyplora;
using namespace hyplora::adapter;

static_assert(backend::Thrust::is_cuda, "this test must be compiled by nvcc with Thrust's CUDA device system");

namespace {

void require_gpu() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    std::fprintf(stderr, "SKIPPED: no CUDA device\n");
    std::exit(77);
  }
}

double det(std::uint64_t seed, std::uint64_t i) { return 2.0 * uniform01(seed, 99, i) - 1.0; }

/// Host reference: Y = scale * lower(B A lift(X/s)) with the variant's radial factors, in double.
template <class V>
std::vector<double> reference(const std::vector<double>& X, const std::vector<double>& A, const std::vector<double>& B,
                              index_t n, index_t di, index_t dO, index_t r, double s, double K, double scale) {
  MapSettings<double> ms;
  // The paper lower map clamps theta - 1 at eps = 1e-6 (sqrt(2 eps) for arcosh near 1, as the
  // published code): float(1e-6) is within 3e-8 of it. (Until 2026-11-27 it clamped theta at
  // float(1 + 1e-6) = 1 + 9.5e-7, and this reference modelled that rounding: 2.4% of arcosh near 1,
  // where every ||y|| < 0.74 lands at K = 1.3.)
  ms.theta_eps = double(float(ms.theta_eps));
  std::vector<double> Y(static_cast<std::size_t>(n * dO), 0.0), u(static_cast<std::size_t>(di)), z(static_cast<std::size_t>(r)), y(static_cast<std::size_t>(dO));
  for (index_t i = 0; i < n; ++i) {
    double n2 = 0;
    for (index_t j = 0; j < di; ++j) { u[j] = X[i * di + j] / s; n2 += u[j] * u[j]; }
    double f = 1.0;
    if constexpr (V::has_lift) f = V::lift(std::sqrt(n2), K, ms).f;
    for (index_t j = 0; j < di; ++j) u[j] *= f;
    for (index_t k = 0; k < r; ++k) { z[k] = 0; for (index_t j = 0; j < di; ++j) z[k] += A[k * di + j] * u[j]; }
    double y2 = 0;
    for (index_t o = 0; o < dO; ++o) { y[o] = 0; for (index_t k = 0; k < r; ++k) y[o] += B[o * r + k] * z[k]; y2 += y[o] * y[o]; }
    double g = 1.0;
    if constexpr (V::has_lower) g = V::lower(std::sqrt(y2), K, ms).f;
    for (index_t o = 0; o < dO; ++o) Y[i * dO + o] = scale * g * y[o];
  }
  return Y;
}

/// sum of Y over all entries (the loss whose gradient dY = 1 the test feeds to backward)
template <class V>
double loss(const std::vector<double>& X, const std::vector<double>& A, const std::vector<double>& B, index_t n, index_t di,
            index_t dO, index_t r, double s, double K, double scale) {
  double L = 0;
  for (double y : reference<V>(X, A, B, n, di, dO, r, s, K, scale)) L += y;
  return L;
}

/// Forward against the double reference; backward (dX, dA, dB from dY = 1) against central
/// differences of the reference's loss along two seeded random directions per input.
/// d_in, d_out >= 513 takes the backend's block-per-row kernels, smaller ones the row programs
/// (adapter/row_programs.hpp; ranks up to 16).
template <class V>
void check_variant(index_t d_in = 64, index_t d_out = 48, index_t rank = 8, index_t n = 37) {
  INFO("variant " << V::name << ", d_in " << d_in << ", d_out " << d_out << ", rank " << rank << ", n " << n);
  AdapterConfig c;
  c.d_in = d_in; c.d_out = d_out; c.rank = rank; c.alpha = 2.0 * double(rank); c.seed = 4; c.K_init = 1.3;
  c.curvature = CurvatureMode::learnable;
  Adapter<V, float, backend::Thrust> ad(c);
  auto p = ad.params_to_host();
  for (index_t k = 0; k < ad.layout().B_size; ++k) p[static_cast<std::size_t>(ad.layout().B + k)] = float(0.3 * det(5, std::uint64_t(k)));
  ad.params_from_host(p);
  std::vector<float> X(static_cast<std::size_t>(n * c.d_in));
  for (std::size_t k = 0; k < X.size(); ++k) X[k] = float(1.5 * det(6, k) * std::sqrt(64.0 / double(d_in)));
  thrust::device_vector<float> dX(X.begin(), X.end()), dY(static_cast<std::size_t>(n * c.d_out), 0.f), dG(static_cast<std::size_t>(n * c.d_out), 1.f),
      dgX(X.size(), 0.f);
  ad.forward_branch(backend::Thrust::data(dX), backend::Thrust::data(dY), n, false);
  ad.backward_branch(backend::Thrust::data(dX), backend::Thrust::data(dG), backend::Thrust::data(dgX), n);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // the adapter may run on a stream of its own (below)
  std::vector<float> Y(dY.size()), gX(dgX.size());
  thrust::copy(dY.begin(), dY.end(), Y.begin());
  thrust::copy(dgX.begin(), dgX.end(), gX.begin());
  std::vector<double> Xd(X.begin(), X.end()), Ad(p.begin(), p.begin() + ad.layout().A_size),
      Bd(p.begin() + ad.layout().B, p.begin() + ad.layout().B + ad.layout().B_size);
  const double s = double(ad.norm_scale()), K = double(ad.K()), scale = double(ad.scaling());
  const auto ref = reference<V>(Xd, Ad, Bd, n, c.d_in, c.d_out, c.rank, s, K, scale);
  double ymax = 0;
  for (double v : ref) ymax = std::max(ymax, std::abs(v));
  // float32 throughout: inputs and params rounded (eps each), sums over d_in terms
  const double eps = std::numeric_limits<float>::epsilon();
  const double tol = 16.0 * double(c.d_in) * eps * ymax;
  for (std::size_t k = 0; k < Y.size(); ++k) CHECK(std::abs(double(Y[k]) - ref[k]) <= tol);
  const auto g = ad.grads_to_host();
  for (float v : g) CHECK(std::isfinite(v));
  // Gradient entries against central differences of the double reference's loss, at 24 seeded
  // coordinates of each input. A float gradient entry is a sum over the d_in, d_out, n and r terms
  // of rounded products, so it is within 16 (d_in + d_out + n) eps of the gradient's scale (its
  // largest entry); the central difference in double with h = 1e-4 times the input's scale is
  // exact to ~h^2 = 1e-8 of it.
  const double rel = 16.0 * double(d_in + d_out + n) * eps;
  auto check_entries = [&](const char* what, std::vector<double>& in, const float* grad, std::uint64_t seed) {
    double amax = 0, gmax = 0;
    for (double v : in) amax = std::max(amax, std::abs(v));
    for (std::size_t k = 0; k < in.size(); ++k) gmax = std::max(gmax, std::abs(double(grad[k])));
    const double h = 1e-4 * amax;
    for (std::uint64_t t = 0; t < 24; ++t) {
      const std::size_t k = std::size_t(uniform01(seed, 7, t) * double(in.size())) % in.size();
      const double keep = in[k];
      in[k] = keep + h;
      const double lp = loss<V>(Xd, Ad, Bd, n, c.d_in, c.d_out, c.rank, s, K, scale);
      in[k] = keep - h;
      const double lm = loss<V>(Xd, Ad, Bd, n, c.d_in, c.d_out, c.rank, s, K, scale);
      in[k] = keep;
      const double fd = (lp - lm) / (2 * h);
      INFO(what << "[" << k << "] = " << grad[k] << ", central difference " << fd << ", largest entry " << gmax);
      CHECK(std::abs(double(grad[k]) - fd) <= rel * gmax + 1e-6 * std::abs(fd));
    }
  };
  check_entries("dX", Xd, gX.data(), 11);
  check_entries("dA", Ad, g.data() + ad.layout().A, 12);
  check_entries("dB", Bd, g.data() + ad.layout().B, 13);
}

}  // namespace

TEST_CASE("Thrust backend on CUDA with cuBLAS matches the host reference", "[backend][cuda]") {
  require_gpu();
  check_variant<Lora>();
  check_variant<LoraScaled>();
  check_variant<HypLoraLorentz>();
  check_variant<HypLoraPoincare>();
  check_variant<PaperHypLora>();
}

TEST_CASE("Thrust backend on CUDA: long rows take the block-per-row kernels", "[backend][cuda]") {
  require_gpu();
  check_variant<Lora>(600, 520);
  check_variant<HypLoraLorentz>(600, 520);
  check_variant<HypLoraPoincare>(600, 520);
  check_variant<PaperHypLora>(600, 520);
}

TEST_CASE("Thrust backend on CUDA: row programs at other ranks, over many blocks, dB by cuBLAS", "[backend][cuda]") {
  require_gpu();
  for (const index_t rank : {4, 16}) {  // run-time rank (4) and rank 16 at compile time
    check_variant<Lora>(64, 48, rank);
    check_variant<HypLoraLorentz>(64, 48, rank);
    check_variant<HypLoraPoincare>(64, 48, rank);
  }
  // 600 rows: 75 blocks of the programs; d_out r = 4800 elements of dB = dB_rows^T Za, beyond the
  // small-GEMM kernel: by cuBLAS
  check_variant<HypLoraLorentz>(96, 300, 16, 600);
  check_variant<PaperHypLora>(96, 300, 16, 600);
  check_variant<Lora>(96, 300, 16, 600);
  // rank 32: beyond the programs (the separate passes)
  check_variant<HypLoraLorentz>(64, 48, 32);
}

// Thrust::gemm takes a kernel of ours for tiny products (at most 4096 elements of C) and cuBLAS
// for the others: both against a triple loop in double, every transpose combination, beta 0 (C
// starts as NaN: it must not be read) and beta 0.5.
TEST_CASE("Thrust backend on CUDA: gemm, small kernel and cuBLAS, against a triple loop", "[backend][cuda]") {
  require_gpu();
  struct Shape { index_t M, N, K; };
  for (const Shape sh : {Shape{5, 7, 3}, Shape{8, 8, 512}, Shape{64, 8, 64}, Shape{100, 50, 64}, Shape{300, 40, 9}}) {
    const index_t M = sh.M, N = sh.N, K = sh.K;
    for (int t = 0; t < 4; ++t)
      for (const float beta : {0.0f, 0.5f}) {
        const bool ta = t & 1, tb = t & 2;
        INFO("M " << M << " N " << N << " K " << K << " transA " << ta << " transB " << tb << " beta " << beta);
        std::vector<float> A(std::size_t(M * K)), B(std::size_t(K * N)), C(std::size_t(M * N));
        for (std::size_t k = 0; k < A.size(); ++k) A[k] = float(det(21, k));
        for (std::size_t k = 0; k < B.size(); ++k) B[k] = float(det(22, k));
        for (std::size_t k = 0; k < C.size(); ++k) C[k] = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : float(det(23, k));
        const index_t lda = ta ? M : K, ldb = tb ? K : N;  // A stored K x M when transposed, B stored N x K
        thrust::device_vector<float> dA(A.begin(), A.end()), dB(B.begin(), B.end()), dC(C.begin(), C.end());
        backend::Thrust::gemm(ta, tb, M, N, K, 2.0f, backend::Thrust::data(dA), lda, backend::Thrust::data(dB), ldb, beta,
                              backend::Thrust::data(dC), N);
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
        std::vector<float> out(C.size());
        thrust::copy(dC.begin(), dC.end(), out.begin());
        const double eps = std::numeric_limits<float>::epsilon();
        int bad = 0;
        for (index_t i = 0; i < M; ++i)
          for (index_t j = 0; j < N; ++j) {
            double s = 0, sabs = 0;
            for (index_t k = 0; k < K; ++k) {
              const double p = double(ta ? A[std::size_t(k * lda + i)] : A[std::size_t(i * lda + k)]) *
                               double(tb ? B[std::size_t(j * ldb + k)] : B[std::size_t(k * ldb + j)]);
              s += p, sabs += std::abs(p);
            }
            const double bc = beta == 0.0f ? 0.0 : double(beta) * double(C[std::size_t(i * N + j)]);
            const double want = 2.0 * s + bc;
            // a float sum of K products: within (K + 2) eps of sum |a b|; alpha 2; beta C rounded once
            const double tol = 2.0 * double(K + 2) * eps * sabs + 2.0 * eps * std::abs(bc);
            bad += !(std::abs(double(out[std::size_t(i * N + j)]) - want) <= tol);
          }
        CHECK(bad == 0);
      }
  }
}

TEST_CASE("Thrust backend on CUDA on a non-blocking stream of the caller", "[backend][cuda]") {
  require_gpu();
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  backend::Thrust::set_stream(stream);
  CHECK(backend::Thrust::stream() == stream);
  check_variant<Lora>();
  check_variant<HypLoraLorentz>();
  check_variant<HypLoraPoincare>();
  check_variant<PaperHypLora>();  // learnable K and s: reads and sums on the stream
  backend::Thrust::set_stream(nullptr);
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}
