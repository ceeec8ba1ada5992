// The Thrust backend (OpenMP device system, compiled by g++) against the CPU backend: same
// forward outputs, input gradients and parameter gradients for every variant, float and double.
#include <catch2/catch.hpp>

#include <thrust/device_vector.h>
#include <thrust/host_vector.h>

#include <vector>

#include "adapter_test_util.hpp"
#include "hyplora/adapter/adapter.hpp"
#include "hyplora/backend/cpu.hpp"
#include "hyplora/backend/thrust.hpp"
#include "row_program_lanes.hpp"

using namespace hyplora;
using namespace hyplora::adapter;
using hyplora::test::random_vec;

namespace {

template <class T>
struct Result {
  std::vector<T> Y, dX, grads;
};

template <class V, class T, class Backend>
Result<T> run(const AdapterConfig& c, const std::vector<T>& X, const std::vector<T>& G, const std::vector<T>& W,
              index_t n, bool want_dx = true, double b_scale = 0.7) {
  Adapter<V, T, Backend> ad(c);
  hyplora::test::randomize_B(ad, 77, b_scale);
  using vec = typename Backend::template vector<T>;
  vec dXv, Yv, dYv, Wv;
  Backend::resize(dXv, index_t(X.size())); Backend::resize(Yv, index_t(G.size()));
  Backend::resize(dYv, index_t(G.size())); Backend::resize(Wv, index_t(W.size()));
  vec Xv; Backend::resize(Xv, index_t(X.size()));
  Backend::copy_from_host(X.data(), index_t(X.size()), Backend::data(Xv));
  Backend::copy_from_host(G.data(), index_t(G.size()), Backend::data(dYv));
  Backend::copy_from_host(W.data(), index_t(W.size()), Backend::data(Wv));
  Backend::fill(Backend::data(dXv), index_t(X.size()), T(0));
  // two steps, so that buffer reuse and the dropout stream are exercised
  for (int step = 0; step < 2; ++step) {
    ad.zero_grad();
    Backend::fill(Backend::data(dXv), index_t(X.size()), T(0));
    ad.forward(Backend::data(Wv), nullptr, Backend::data(Xv), Backend::data(Yv), n, true);
    ad.backward(Backend::data(Wv), Backend::data(Xv), Backend::data(dYv), want_dx ? Backend::data(dXv) : nullptr, n);
  }
  Result<T> r;
  r.Y.resize(G.size()); r.dX.resize(X.size());
  Backend::copy_to_host(Backend::data(Yv), index_t(G.size()), r.Y.data());
  Backend::copy_to_host(Backend::data(dXv), index_t(X.size()), r.dX.data());
  r.grads = ad.grads_to_host();
  return r;
}

template <class T>
void require_close(const std::vector<T>& a, const std::vector<T>& b, T tol_rel, const char* what) {
  REQUIRE(a.size() == b.size());
  T scale = 0;
  for (T x : a) scale = std::max(scale, std::abs(x));
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(what << "[" << i << "] cpu " << a[i] << " thrust " << b[i]);
    CHECK(std::abs(a[i] - b[i]) <= tol_rel * std::max(scale, T(1)));
  }
}

/// The CPU backend with the rank-space forward rows fused into one call per row, as backend::Thrust
/// does under CUDA (RankForwardRows): checks the fused functor where no GPU is.
struct CpuFusedRankRows : backend::Cpu {
  static constexpr bool fuse_rank_rows = true;
  // the fused row passes of backend::Thrust under CUDA, composed of the CPU's passes: the adapter's
  // side of them (which pass goes where, with which arguments) is checked here
  static constexpr index_t row_pass_fuse_max = 512;
  template <class T, class F>
  static void row_dots_then_rows(const T* X, index_t n, index_t d, T* out, const F& f) {
    row_dots(X, X, n, d, out);
    for_rows(n, f);
  }
  template <class T, class F>
  static void rows_then_add_scaled(index_t n, const F& f, const T* X, const T* e, T* Y, index_t d) {
    for_rows(n, f);
    add_scaled_rows(X, e, Y, n, d);
  }
};

/// The CPU backend running the adapters' row programs on the host (kernels::run_row_program_serial),
/// as backend::Thrust runs them under CUDA: checks the programs where no GPU is.
struct CpuRowPrograms : backend::Cpu {
  static constexpr index_t row_program_max = 512;
  template <class P>
  static void run_row_program(index_t rows, index_t, const P& p) {
    kernels::run_row_program_serial(rows, p);
  }
};

/// The same with the GPU's lane groups emulated (row_program_lanes.hpp): W lanes per row, each its
/// share of the row, sums by the xor butterfly, groups past the last row.
template <int W>
struct CpuLaneRowPrograms : backend::Cpu {
  static constexpr index_t row_program_max = 512;
  template <class P>
  static void run_row_program(index_t rows, index_t, const P& p) {
    hyplora::test::EmulatedLanes<W>::run(rows, p);
  }
};

/// dropout > 0 takes the d-wide path of the radial variants, dropout = 0 the rank-space one.
/// want_dx false: the backward is asked for no dX (only the parameter gradients are compared).
template <class V, class T, class Other = backend::Thrust>
void compare_backends(double dropout = 0.2, index_t rank = 4, ScaleMode scale = ScaleMode::learnable,
                      bool want_dx = true, index_t d_in = 40, index_t d_out = 24) {
  // B's entries shrink as 1/sqrt(d_out) beyond the default shape, so that |B z| stays where it is
  // there: at d_out = 300 with B's default scale the ball's maps saturate at their largest radius,
  // which float and double place apart (1 - 4 eps), and float runs on either backend are 20-30 %
  // from the double run: no test of the backends' agreement
  AdapterConfig c;
  c.d_in = d_in; c.d_out = d_out; c.rank = rank; c.alpha = 2.0 * double(rank); c.seed = 17; c.dropout = dropout;
  c.curvature = CurvatureMode::learnable; c.K_init = 1.4; c.scale = scale;
  c.scale_init = 3.0;
  const index_t n = 33;
  auto X = random_vec<T>(std::size_t(n * c.d_in), 1, 1.5);
  auto G = random_vec<T>(std::size_t(n * c.d_out), 2, 1.0);
  auto W = random_vec<T>(std::size_t(c.d_out * c.d_in), 3, 0.3);
  const double b_scale = 0.7 * std::sqrt(std::min(1.0, 24.0 / double(d_out)));
  const auto a = run<V, T, backend::Cpu>(c, X, G, W, n, want_dx, b_scale);
  const auto b = run<V, T, Other>(c, X, G, W, n, want_dx, b_scale);
  // Same GEMM library and the same row functions on both sides: rows agree bitwise in practice;
  // the scalar gradients (dk, ds) are reductions over n rows in a different order, which may
  // differ by n eps relative.
  const T tol = hyplora::test::eps_tol<T>(T(4 * n));
  INFO("variant " << V::name << ", dropout " << dropout << ", rank " << rank << ", d_in " << d_in << ", d_out " << d_out);
  require_close(a.Y, b.Y, tol, "Y");
  require_close(a.dX, b.dX, tol, "dX");
  require_close(a.grads, b.grads, tol, "grads");
}

}  // namespace

TEMPLATE_TEST_CASE("Thrust (OpenMP system) and CPU backends agree", "[backend][thrust]", float, double) {
  STATIC_REQUIRE(!backend::Thrust::is_cuda);
  compare_backends<Lora, TestType>();
  compare_backends<LoraScaled, TestType>();
  compare_backends<Naive, TestType>();
  compare_backends<HypLoraLorentz, TestType>();
  compare_backends<HypLoraPoincare, TestType>();
  compare_backends<PaperHypLora, TestType>();
  compare_backends<HypLoraLorentz, TestType>(0.0);  // the rank-space path
  compare_backends<HypLoraPoincare, TestType>(0.0);
  compare_backends<PaperHypLora, TestType>(0.0);
}

TEMPLATE_TEST_CASE("Fused rank-space forward rows (the CUDA path) agree with the separate passes", "[backend][thrust]",
                   float, double) {
  STATIC_REQUIRE(fuses_rank_rows<CpuFusedRankRows>);
  STATIC_REQUIRE(!fuses_rank_rows<backend::Cpu>);
  STATIC_REQUIRE(fuses_row_passes<CpuFusedRankRows>);
  STATIC_REQUIRE(!fuses_row_passes<backend::Cpu>);
  compare_backends<HypLoraLorentz, TestType, CpuFusedRankRows>(0.0);
  compare_backends<HypLoraPoincare, TestType, CpuFusedRankRows>(0.0);
  compare_backends<Naive, TestType, CpuFusedRankRows>(0.0);
  compare_backends<PaperHypLora, TestType, CpuFusedRankRows>(0.0);
  for (const index_t rank : {8, 16}) {  // the fused rows with the rank at compile time (up to fused_rank_max)
    compare_backends<HypLoraLorentz, TestType, CpuFusedRankRows>(0.0, rank);
    compare_backends<HypLoraPoincare, TestType, CpuFusedRankRows>(0.0, rank);
  }
}

TEMPLATE_TEST_CASE("Row programs (the CUDA path for short rows) agree with the separate passes", "[backend][thrust]",
                   float, double) {
  STATIC_REQUIRE(runs_row_programs<CpuRowPrograms>);
  STATIC_REQUIRE(!runs_row_programs<backend::Cpu>);
  // ranks 8 and 16 at compile time, 4 and 5 at run time (kernels::with_rank)
  for (const index_t rank : {4, 5, 8, 16}) {
    compare_backends<HypLoraLorentz, TestType, CpuRowPrograms>(0.0, rank);
    compare_backends<HypLoraPoincare, TestType, CpuRowPrograms>(0.0, rank);
    compare_backends<PaperHypLora, TestType, CpuRowPrograms>(0.0, rank);
    compare_backends<Naive, TestType, CpuRowPrograms>(0.0, rank);
    compare_backends<Lora, TestType, CpuRowPrograms>(0.0, rank);
    compare_backends<LoraScaled, TestType, CpuRowPrograms>(0.0, rank, ScaleMode::fixed);
  }
  // no dX wanted: the programs skip it, the parameter gradients stay
  compare_backends<HypLoraLorentz, TestType, CpuRowPrograms>(0.0, 8, ScaleMode::learnable, false);
  compare_backends<Lora, TestType, CpuRowPrograms>(0.0, 8, ScaleMode::learnable, false);
  // where the programs do not apply (dropout; a learnable LoRA scale; rank 32) the passes run
  compare_backends<HypLoraLorentz, TestType, CpuRowPrograms>(0.2, 8);
  compare_backends<LoraScaled, TestType, CpuRowPrograms>(0.0, 8);
  compare_backends<HypLoraLorentz, TestType, CpuRowPrograms>(0.0, 32);
}

TEMPLATE_TEST_CASE("Row programs in emulated GPU lane groups agree with the separate passes", "[backend][thrust]", float,
                   double) {
  // 8 and 32 lanes; rows of 40 and 24 (d_in, d_out) and 72 and 300: every lane's share within the
  // values it keeps in registers (program_detail::prefetch_values), and shares beyond them
  for (const auto& [d_in, d_out] : {std::pair<index_t, index_t>{40, 24}, {72, 300}}) {
    for (const index_t rank : {5, 8}) {
      compare_backends<HypLoraLorentz, TestType, CpuLaneRowPrograms<8>>(0.0, rank, ScaleMode::learnable, true, d_in, d_out);
      compare_backends<HypLoraPoincare, TestType, CpuLaneRowPrograms<32>>(0.0, rank, ScaleMode::learnable, true, d_in, d_out);
      compare_backends<PaperHypLora, TestType, CpuLaneRowPrograms<8>>(0.0, rank, ScaleMode::learnable, true, d_in, d_out);
      compare_backends<Lora, TestType, CpuLaneRowPrograms<32>>(0.0, rank, ScaleMode::learnable, true, d_in, d_out);
    }
    compare_backends<HypLoraLorentz, TestType, CpuLaneRowPrograms<16>>(0.0, 16, ScaleMode::learnable, false, d_in, d_out);
    compare_backends<Naive, TestType, CpuLaneRowPrograms<16>>(0.0, 8, ScaleMode::learnable, true, d_in, d_out);
  }
}

TEST_CASE("Thrust backend GEMM matches a reference triple loop", "[backend][thrust]") {
  const index_t M = 5, N = 7, K = 3;
  auto A = random_vec<double>(std::size_t(K * M), 4, 1.0);  // stored K x M: op(A) = A^T
  auto B = random_vec<double>(std::size_t(K * N), 5, 1.0);  // K x N
  std::vector<double> C(std::size_t(M * N), 1.0);
  thrust::device_vector<double> dA(A.begin(), A.end()), dB(B.begin(), B.end()), dC(C.begin(), C.end());
  backend::Thrust::gemm(true, false, M, N, K, 2.0, backend::Thrust::data(dA), M, backend::Thrust::data(dB), N, 0.5,
                        backend::Thrust::data(dC), N);
  thrust::host_vector<double> h = dC;
  for (index_t i = 0; i < M; ++i)
    for (index_t j = 0; j < N; ++j) {
      double s = 0, sabs = 0;
      for (index_t k = 0; k < K; ++k) {
        s += A[std::size_t(k * M + i)] * B[std::size_t(k * N + j)];
        sabs += std::abs(A[std::size_t(k * M + i)] * B[std::size_t(k * N + j)]);
      }
      // a dot of K terms in either order rounds within ~K eps of sum |a b| (Higham 3.1), plus the axpby
      CHECK(std::abs(h[std::size_t(i * N + j)] - (2.0 * s + 0.5)) <= hyplora::test::eps_tol<double>(2.0 * K + 4) * (2 * sabs + 0.5));
    }
}
