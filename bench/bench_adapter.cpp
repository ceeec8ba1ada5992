// Forward + backward time of one adapted linear layer (float, CPU backend): the frozen linear
// alone, LoRA, the lora_scaled control, the naive sandwich, HypLoRA on Lorentz and on the Poincare
// ball, at LLM shapes. Methods run interleaved round by round (so machine noise hits all alike);
// median, min and max over the rounds after warm-up; ratios against LoRA in the same run.
//
//   bench_adapter [--quick] [--reps N] [--tokens N] [--shape D,R ...] [--dump DIR]
//
// --quick: only d = 288 and d = 64, 3 rounds unless --reps says otherwise.
// --shape D,R (repeatable): these d x d layers of rank R instead of the default shapes.
// --dump DIR also writes cross-check files DIR/adapter_<variant>_<case>.json (atomically): the
// inputs (W, b, X, dY, the flat parameters) and this library's Y, dX and flat gradients of one
// forward + backward, for every variant at d = 64 and 288 (32 tokens, rank 8), plus the hyperbolic
// variants with learnable K (0.5) and learnable s; bench/peers/torch_hyplora.py recomputes them
// with autograd from the same inputs (bench/run.sh).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hyplora/adapter/adapter.hpp"
#include "hyplora/backend/cpu.hpp"
#include "bench_args.hpp"
#include "bench_stats.hpp"

using namespace hyplora;
using namespace hyplora::adapter;
using T = float;

namespace {

struct Shape {
  index_t d, rank;
};

using bench::Stats;
using bench::stats;
using bench::calls_per_sample;

double det(std::uint64_t seed, std::uint64_t i) { return 2.0 * uniform01(seed, 5, i) - 1.0; }

struct Layer {
  index_t n, d;
  std::vector<T> W, b, X, Y, dY, dX;
  Layer(index_t n_, index_t d_) : n(n_), d(d_) {
    W.resize(std::size_t(d * d)); b.resize(std::size_t(d)); X.resize(std::size_t(n * d));
    Y.resize(std::size_t(n * d)); dY.resize(std::size_t(n * d)); dX.resize(std::size_t(n * d));
    const double ws = 1.0 / std::sqrt(double(d));
    for (std::size_t i = 0; i < W.size(); ++i) W[i] = T(ws * det(1, i));
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = T(0.1 * det(2, i));
    for (std::size_t i = 0; i < X.size(); ++i) X[i] = T(1.7 * det(3, i));  // |x| ~ sqrt(d), like RMSNorm output
    for (std::size_t i = 0; i < dY.size(); ++i) dY[i] = T(det(4, i));
  }
};

template <class V>
std::function<void()> make_adapter_step(Layer& L, index_t rank) {
  AdapterConfig c;
  c.d_in = L.d; c.d_out = L.d; c.rank = rank; c.alpha = 2.0 * double(rank); c.seed = 1;
  auto ad = std::make_shared<Adapter<V, T, backend::Cpu>>(c);
  auto p = ad->params_to_host();  // B = 0 would let nothing flow: use a small random B
  for (index_t k = 0; k < ad->layout().B_size; ++k) p[std::size_t(ad->layout().B + k)] = T(0.01 * det(6, std::uint64_t(k)));
  ad->params_from_host(p);
  return [ad, &L]() {
    ad->zero_grad();
    std::fill(L.dX.begin(), L.dX.end(), T(0));
    ad->forward(L.W.data(), L.b.data(), L.X.data(), L.Y.data(), L.n, true);
    ad->backward(L.W.data(), L.X.data(), L.dY.data(), L.dX.data(), L.n);
  };
}

std::function<void()> make_frozen_step(Layer& L) {
  return [&L]() {
    const index_t n = L.n, d = L.d;
    for (index_t i = 0; i < n; ++i) std::memcpy(L.Y.data() + i * d, L.b.data(), sizeof(T) * std::size_t(d));
    backend::Cpu::gemm(false, true, n, d, d, T(1), L.X.data(), d, L.W.data(), d, T(1), L.Y.data(), d);
    std::fill(L.dX.begin(), L.dX.end(), T(0));
    backend::Cpu::gemm(false, false, n, d, d, T(1), L.dY.data(), d, L.W.data(), d, T(1), L.dX.data(), d);
  };
}

void write_array(std::ofstream& o, const char* name, const T* v, std::size_t count) {
  o << "\"" << name << "\": [";
  char buf[32];
  for (std::size_t i = 0; i < count; ++i) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", double(v[i]));  // %.9g: float32 round trip
    o << buf;
  }
  o << "]";
}

/// One cross-check file: inputs, settings and our outputs of one forward + backward (see header).
template <class V>
void dump_case(const std::string& dir, index_t d, index_t rank, index_t n, const std::string& tag, bool learn) {
  Layer L(n, d);
  AdapterConfig c;
  c.d_in = d; c.d_out = d; c.rank = rank; c.alpha = 2.0 * double(rank); c.seed = 1;
  if (learn) { c.curvature = CurvatureMode::learnable; c.K_init = 0.5; c.scale = ScaleMode::learnable; }
  Adapter<V, T, backend::Cpu> ad(c);
  auto p = ad.params_to_host();
  for (index_t k = 0; k < ad.layout().B_size; ++k) p[std::size_t(ad.layout().B + k)] = T(0.05 * det(6, std::uint64_t(k)));
  ad.params_from_host(p);
  ad.zero_grad();
  std::fill(L.dX.begin(), L.dX.end(), T(0));
  ad.forward(L.W.data(), L.b.data(), L.X.data(), L.Y.data(), n, true);
  ad.backward(L.W.data(), L.X.data(), L.dY.data(), L.dX.data(), n);
  const auto g = ad.grads_to_host();
  const ParamLayout& lay = ad.layout();
  const std::string path = dir + "/adapter_" + V::name + "_" + tag + ".json", tmp = path + ".tmp";
  {
    std::ofstream o(tmp);
    if (!o) throw std::runtime_error("bench_adapter --dump: cannot write " + tmp);
    o.precision(17);
    o << "{\"format\": \"hyplora-adapter-crosscheck-1\", \"variant\": \"" << V::name << "\", \"case\": \"" << tag
      << "\", \"n\": " << n << ", \"d_in\": " << d << ", \"d_out\": " << d << ", \"rank\": " << rank
      << ", \"scaling\": " << double(ad.scaling()) << ", \"K\": " << double(ad.K()) << ", \"K_min\": " << c.K_min
      << ", \"s\": " << double(ad.norm_scale()) << ", \"curvature_offset\": " << lay.curvature
      << ", \"scale_offset\": " << lay.scale << ", \"A_offset\": " << lay.A << ", \"B_offset\": " << lay.B
      << ", \"paper_sinh_clamp\": " << c.paper_sinh_clamp << ", \"paper_theta_eps\": " << c.paper_theta_eps
      << ", \"paper_k_grad_clip\": " << c.paper_k_grad_clip << ",\n";
    write_array(o, "W", L.W.data(), L.W.size()); o << ",\n";
    write_array(o, "b", L.b.data(), L.b.size()); o << ",\n";
    write_array(o, "X", L.X.data(), L.X.size()); o << ",\n";
    write_array(o, "dY", L.dY.data(), L.dY.size()); o << ",\n";
    write_array(o, "params", p.data(), p.size()); o << ",\n";
    write_array(o, "out Y", L.Y.data(), L.Y.size()); o << ",\n";
    write_array(o, "out dX", L.dX.data(), L.dX.size()); o << ",\n";
    write_array(o, "out grads", g.data(), g.size()); o << "}\n";
    o.flush();
    if (!o) throw std::runtime_error("bench_adapter --dump: write failed for " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("bench_adapter --dump: cannot rename to " + path);
}

void dump_all(const std::string& dir) {
  for (index_t d : {index_t(64), index_t(288)}) {
    const std::string tag = "d" + std::to_string(d) + "_r8";
    dump_case<Lora>(dir, d, 8, 32, tag, false);
    dump_case<LoraScaled>(dir, d, 8, 32, tag, false);
    dump_case<Naive>(dir, d, 8, 32, tag, false);
    dump_case<HypLoraLorentz>(dir, d, 8, 32, tag, false);
    dump_case<HypLoraPoincare>(dir, d, 8, 32, tag, false);
    dump_case<PaperHypLora>(dir, d, 8, 32, tag, false);
  }
  dump_case<HypLoraLorentz>(dir, 64, 8, 32, "d64_r8_learnK0.5_s", true);
  dump_case<HypLoraPoincare>(dir, 64, 8, 32, "d64_r8_learnK0.5_s", true);
}

}  // namespace

int run(int argc, char** argv);

int main(int argc, char** argv) {
  return hyplora::bench::guarded_main("bench_adapter", "[--quick] [--reps N] [--tokens N] [--shape D,R ...] [--dump DIR]", [&] {
    return run(argc, argv);
  });
}

int run(int argc, char** argv) {
  bool quick = false;
  int reps = 7;
  bool reps_given = false;
  index_t tokens = 512;
  std::string dump, text;
  std::vector<Shape> asked;
  hyplora::bench::ArgReader args(argc, argv);
  while (args.more()) {
    if (args.flag("--quick")) quick = true;
    else if (args.integer("--reps", reps, 1, 100000)) reps_given = true;
    else if (args.integer("--tokens", tokens, 1, 1 << 20)) {}
    else if (args.value("--shape", text)) {
      const auto comma = text.find(',');
      if (comma == std::string::npos) throw hyplora::bench::ArgError("--shape expects D,R (e.g. 64,16), got '" + text + "'");
      const index_t d = index_t(hyplora::bench::ArgReader::parse_integer("--shape D", text.substr(0, comma), 1, 16384));
      const index_t r = index_t(hyplora::bench::ArgReader::parse_integer("--shape R", text.substr(comma + 1), 1, d));
      asked.push_back({d, r});
    } else if (args.value("--dump", dump)) {}
    else args.unknown();
  }
  if (!dump.empty()) dump_all(dump);
  std::vector<Shape> shapes{{4096, 8}, {4096, 32}, {288, 8}, {64, 8}};
  if (quick) {
    shapes = {{288, 8}, {64, 8}};
    if (!reps_given) reps = 3;
  }
  if (!asked.empty()) shapes = asked;

  std::printf("# bench_adapter: forward+backward of one d x d layer, %ld tokens, float, CPU backend\n", long(tokens));
  std::printf("# median / min / max over %d rounds after 1-2 warm-up rounds, methods interleaved\n\n", reps);
  std::printf("| d | r | method | median ms | min ms | max ms | / LoRA | / frozen |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const Shape& s : shapes) {
    const int warmup = s.d >= 2048 ? 1 : 2;  // one warm-up round of the big shapes already takes seconds
    Layer L(tokens, s.d);
    std::vector<std::pair<std::string, std::function<void()>>> methods{
        {"frozen linear", make_frozen_step(L)},
        {"lora", make_adapter_step<Lora>(L, s.rank)},
        {"lora_scaled", make_adapter_step<LoraScaled>(L, s.rank)},
        {"naive", make_adapter_step<Naive>(L, s.rank)},
        {"hyplora_lorentz", make_adapter_step<HypLoraLorentz>(L, s.rank)},
        {"hyplora_poincare", make_adapter_step<HypLoraPoincare>(L, s.rank)},
        {"paper", make_adapter_step<PaperHypLora>(L, s.rank)}};
    // small shapes are fast: repeat the step inside one sample so a sample is >= ~20 ms
    const int inner = calls_per_sample(methods[1].second, 20.0);
    std::vector<std::vector<double>> times(methods.size());
    for (int round = 0; round < warmup + reps; ++round)
      for (std::size_t m = 0; m < methods.size(); ++m) {
        auto t0 = std::chrono::steady_clock::now();
        for (int k = 0; k < inner; ++k) methods[m].second();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / inner;
        if (round >= warmup) times[m].push_back(ms);
      }
    const Stats lora = stats(times[1]), frozen = stats(times[0]);
    for (std::size_t m = 0; m < methods.size(); ++m) {
      const Stats st = stats(times[m]);
      std::printf("| %ld | %ld | %s | %.4f | %.4f | %.4f | %.3f | %.3f |\n", long(s.d), long(s.rank), methods[m].first.c_str(),
                  st.median, st.min, st.max, st.median / lora.median, st.median / frozen.median);
    }
    std::fflush(stdout);
  }
  return 0;
}
