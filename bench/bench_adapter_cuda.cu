// Forward + backward time of one adapted linear layer on a GPU (float, Thrust backend with the CUDA
// device system, GEMMs by cuBLAS): the frozen linear alone, LoRA, HypLoRA on Lorentz and on the
// Poincare ball, at the shapes of bench_adapter. Same protocol as bench_adapter: methods
// interleaved round by round; median, min and max over the rounds; ratios against LoRA in the
// same run. Each sample runs the step `inner` times between two CUDA events (the device is
// synchronised before and after), so a sample is >= ~5 ms of GPU time. Each step is also captured
// into a CUDA graph on a stream of its own (Thrust::set_stream) and replayed: the graph columns show
// the step without the per-kernel launch cost.
//
//   bench_adapter_cuda [--reps N] [--tokens N] [--shape D,R] [--profile]
//
// --shape D,R: that one shape only; --profile: no timing, each method's step run twice after the
// warm-up (for a kernel profiler: bench/profile_gpu.sh).
//
// Without a CUDA device it prints a message and exits 77.
#include <cuda_runtime.h>
#include <thrust/device_vector.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hyplora/adapter/adapter.hpp"
#include "hyplora/backend/thrust.hpp"
#include "bench_cuda.hpp"
#include "bench_stats.hpp"

using namespace hyplora;
using namespace hyplora::adapter;
using T = float;
using Dev = backend::Thrust;

static_assert(Dev::is_cuda, "bench_adapter_cuda must be compiled by nvcc with Thrust's CUDA device system");

namespace {

struct Shape {
  index_t d, rank;
};
using bench::Stats;
using bench::stats;
double det(std::uint64_t seed, std::uint64_t i) { return 2.0 * uniform01(seed, 5, i) - 1.0; }

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench_adapter_cuda: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

thrust::device_vector<T> device_array(std::size_t count, std::uint64_t seed, double amplitude) {
  std::vector<T> h(count);
  for (std::size_t i = 0; i < count; ++i) h[i] = T(amplitude * det(seed, i));
  return thrust::device_vector<T>(h.begin(), h.end());
}

// The same inputs as bench_adapter's Layer, on the device.
struct Layer {
  index_t n, d;
  thrust::device_vector<T> W, b, X, Y, dY, dX;
  Layer(index_t n_, index_t d_)
      : n(n_), d(d_), W(device_array(std::size_t(d * d), 1, 1.0 / std::sqrt(double(d_)))),
        b(device_array(std::size_t(d), 2, 0.1)), X(device_array(std::size_t(n * d), 3, 1.7)),
        Y(std::size_t(n * d)), dY(device_array(std::size_t(n * d), 4, 1.0)), dX(std::size_t(n * d)) {}
};

template <class V>
std::function<void()> make_adapter_step(Layer& L, index_t rank) {
  AdapterConfig c;
  c.d_in = L.d; c.d_out = L.d; c.rank = rank; c.alpha = 2.0 * double(rank); c.seed = 1;
  auto ad = std::make_shared<Adapter<V, T, Dev>>(c);
  auto p = ad->params_to_host();
  for (index_t k = 0; k < ad->layout().B_size; ++k) p[std::size_t(ad->layout().B + k)] = T(0.01 * det(6, std::uint64_t(k)));
  ad->params_from_host(p);
  return [ad, &L]() {
    ad->zero_grad();
    Dev::fill(Dev::data(L.dX), L.n * L.d, T(0));
    ad->forward(Dev::data(L.W), Dev::data(L.b), Dev::data(L.X), Dev::data(L.Y), L.n, true);
    ad->backward(Dev::data(L.W), Dev::data(L.X), Dev::data(L.dY), Dev::data(L.dX), L.n);
  };
}

std::function<void()> make_frozen_step(Layer& L) {
  return [&L]() {
    const index_t n = L.n, d = L.d;
    Dev::set_rows(Dev::data(L.Y), Dev::data(L.b), n, d);
    Dev::gemm(false, true, n, d, d, T(1), Dev::data(L.X), d, Dev::data(L.W), d, T(1), Dev::data(L.Y), d);
    Dev::fill(Dev::data(L.dX), n * d, T(0));
    Dev::gemm(false, false, n, d, d, T(1), Dev::data(L.dY), d, Dev::data(L.W), d, T(1), Dev::data(L.dX), d);
  };
}

/// The step captured into a CUDA graph on `stream` (kernels, cuBLAS calls and fills replayed by one
/// launch). A step with a host round trip (learnable K or s: reads and sums) cannot be captured:
/// `error` says why.
struct CapturedStep {
  cudaGraphExec_t exec = nullptr;
  std::string error;
};
CapturedStep capture(const std::function<void()>& step, cudaStream_t stream) {
  CapturedStep c;
  Dev::set_stream(stream);
  step();  // buffers sized, cuBLAS handle bound to the stream, before capturing
  cuda_check(cudaStreamSynchronize(stream), "step before capture");
  cudaGraph_t graph = nullptr;
  cuda_check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  try {
    step();
  } catch (const std::exception& e) {
    c.error = e.what();
  }
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  if (c.error.empty() && end != cudaSuccess) c.error = cudaGetErrorString(end);
  (void)cudaGetLastError();  // a failed capture leaves its error behind
  if (c.error.empty()) {
    const cudaError_t inst = cudaGraphInstantiate(&c.exec, graph, 0);
    if (inst != cudaSuccess) c.error = cudaGetErrorString(inst), c.exec = nullptr;
  }
  if (graph) cudaGraphDestroy(graph);
  Dev::set_stream(nullptr);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 9;
  index_t tokens = 512, only_d = 0, only_r = 0;
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = std::atol(argv[++i]);
    else if (!std::strcmp(argv[i], "--shape") && i + 1 < argc &&
             std::sscanf(argv[++i], "%ld,%ld", &only_d, &only_r) == 2) {
    } else if (!std::strcmp(argv[i], "--profile")) {
      profile = true;
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--tokens N] [--shape D,R] [--profile]\n", argv[0]);
      return 2;
    }
  }
  if (reps < 1 || tokens < 1) { std::fprintf(stderr, "--reps and --tokens must be >= 1\n"); return 2; }
  const Shape shapes[] = {Shape{4096, 8}, Shape{4096, 32}, Shape{288, 8}, Shape{64, 8}};
  if (only_d) {  // a --shape outside the list measured nothing and exited 0 (an empty profile)
    bool known = false;
    for (const Shape s : shapes) known = known || (s.d == only_d && s.rank == only_r);
    if (!known) {
      std::fprintf(stderr, "--shape %ld,%ld is not one of 4096,8 4096,32 288,8 64,8\n", long(only_d), long(only_r));
      return 2;
    }
  }
  const cudaDeviceProp prop = bench::first_gpu_or_skip("bench_adapter_cuda");
  std::printf("# bench_adapter_cuda: forward+backward of one d x d layer, %ld tokens, float, Thrust/CUDA + cuBLAS\n",
              long(tokens));
  std::printf("# device: %s (%d SMs)\n", prop.name, prop.multiProcessorCount);
  std::printf("# median / min / max over %d rounds after 2 warm-up rounds, methods interleaved\n\n", reps);
  std::printf("# graph: the same step captured once into a CUDA graph and replayed (median ms; / LoRA's graph)\n\n");
  std::printf("| d | r | method | median ms | min ms | max ms | / LoRA | / frozen | graph ms | graph / LoRA |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  cudaEvent_t start, stop;
  cuda_check(cudaEventCreate(&start), "cudaEventCreate");
  cuda_check(cudaEventCreate(&stop), "cudaEventCreate");
  cudaStream_t graph_stream = nullptr;
  cuda_check(cudaStreamCreateWithFlags(&graph_stream, cudaStreamNonBlocking), "cudaStreamCreate");
  try {
    for (const Shape s : shapes) {
      if (only_d && (s.d != only_d || s.rank != only_r)) continue;  // --shape: one shape (profiling)
      Layer L(tokens, s.d);
      std::vector<std::pair<std::string, std::function<void()>>> methods{
          {"frozen linear", make_frozen_step(L)},
          {"lora", make_adapter_step<Lora>(L, s.rank)},
          {"hyplora_lorentz", make_adapter_step<HypLoraLorentz>(L, s.rank)},
          {"hyplora_poincare", make_adapter_step<HypLoraPoincare>(L, s.rank)},
          {"paper", make_adapter_step<PaperHypLora>(L, s.rank)}};
      auto time_ms = [&](const std::function<void()>& step, int inner) {
        cuda_check(cudaDeviceSynchronize(), "step");
        cuda_check(cudaEventRecord(start), "cudaEventRecord");
        for (int k = 0; k < inner; ++k) step();
        cuda_check(cudaEventRecord(stop), "cudaEventRecord");
        cuda_check(cudaEventSynchronize(stop), "step");
        float ms = 0;
        cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        return double(ms) / inner;
      };
      time_ms(methods[1].second, 3);  // first call: cuBLAS handle, buffers
      if (profile) {  // --profile: two steps of each method in order, nothing timed (for ncu)
        for (auto& m : methods) std::printf("# profile: %s\n", m.first.c_str()), time_ms(m.second, 2);
        continue;
      }
      const int inner = std::max(1, int(5.0 / std::max(time_ms(methods[1].second, 3), 1e-4)));
      std::vector<std::vector<double>> times(methods.size());
      for (int round = 0; round < 2 + reps; ++round)
        for (std::size_t m = 0; m < methods.size(); ++m) {
          const double ms = time_ms(methods[m].second, inner);
          if (round >= 2) times[m].push_back(ms);
        }
      // The same steps replayed as CUDA graphs (no launch overhead per kernel), interleaved likewise.
      std::vector<CapturedStep> graphs;
      for (auto& m : methods) graphs.push_back(capture(m.second, graph_stream));
      std::vector<std::vector<double>> gtimes(methods.size());
      auto time_graph = [&](cudaGraphExec_t exec, int n_launch) {
        cuda_check(cudaStreamSynchronize(graph_stream), "graph");
        cuda_check(cudaEventRecord(start, graph_stream), "cudaEventRecord");
        for (int k = 0; k < n_launch; ++k) cuda_check(cudaGraphLaunch(exec, graph_stream), "cudaGraphLaunch");
        cuda_check(cudaEventRecord(stop, graph_stream), "cudaEventRecord");
        cuda_check(cudaEventSynchronize(stop), "graph");
        float ms = 0;
        cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        return double(ms) / n_launch;
      };
      for (int round = 0; round < 2 + reps; ++round)
        for (std::size_t m = 0; m < methods.size(); ++m)
          if (graphs[m].exec) {
            const double ms = time_graph(graphs[m].exec, inner);
            if (round >= 2) gtimes[m].push_back(ms);
          }
      const Stats lora = stats(times[1]), frozen = stats(times[0]);
      const bool lora_graph = !gtimes[1].empty();
      const double lora_g = lora_graph ? stats(gtimes[1]).median : 0.0;
      for (std::size_t m = 0; m < methods.size(); ++m) {
        const Stats st = stats(times[m]);
        std::printf("| %ld | %ld | %s | %.4f | %.4f | %.4f | %.3f | %.3f |", long(s.d), long(s.rank),
                    methods[m].first.c_str(), st.median, st.min, st.max, st.median / lora.median,
                    st.median / frozen.median);
        if (!gtimes[m].empty()) {
          const Stats g = stats(gtimes[m]);
          if (lora_graph) std::printf(" %.4f | %.3f |\n", g.median, g.median / lora_g);
          else std::printf(" %.4f | - |\n", g.median);
        } else {
          std::printf(" not capturable | - |\n");
          std::fprintf(stderr, "# %s at d = %ld: not captured (%s)\n", methods[m].first.c_str(), long(s.d),
                       graphs[m].error.c_str());
        }
      }
      for (auto& g : graphs)
        if (g.exec) cudaGraphExecDestroy(g.exec);
      std::fflush(stdout);
    }
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "bench_adapter_cuda: %s\n", ex.what());
    return 1;
  }
  return 0;
}
