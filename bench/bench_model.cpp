// Throughput of the Llama runtime on a named shape (default stories15M, random weights, batch
// 8 x 256): forward (loss, no gradient), training step with gradients to every weight (full
// fine-tuning), and training step with frozen weights (gradients to activations only, what an
// adapter run needs). Each is stated in tokens/s, in GFLOP/s from the FLOPs per token, and as
// a fraction of the sgemm rate measured in the same run. With --peer it runs the PyTorch peer
// (bench/peers/torch_llama.py) on the same shape and threads and prints the ratios.
//
//   OMP_NUM_THREADS=2 build/bench/bench_model [--shape stories15M] [--batch 8] [--seq 256] [--reps 5]
//       [--peer "/usr/bin/python3 bench/peers/torch_llama.py"] [--dump FILE]
//
// --dump FILE also writes a cross-check file (JSON, atomically): a stories260K-shaped model with
// random weights (seed 99), 2 x 16 tokens and targets, and this runtime's loss and the gradient of
// every weight; `torch_llama.py --crosscheck FILE` recomputes both from the same weights.
//
// Exit status: 0, 2 for a bad argument, 4 when every figure of ours was printed but the --peer gave
// no usable result, 1 for any other error.
#include <omp.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "bench_stats.hpp"
#include "model/blas.hpp"
#include "model/llama.hpp"
#include "model/random_init.hpp"
#include "train/adapter_set.hpp"

using namespace hyplora::llm;

namespace {

using hyplora::bench::Stats;
using hyplora::bench::stats;

Stats measure(int warmup, int reps, const std::function<void()>& f) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  return stats(std::move(t));
}

/// GEMM FLOPs per token (multiply-add = 2), what this implementation computes: the linear
/// layers, the classifier, and the attention score and value products of the causal blocks
/// (kAttentionBlock query rows t0..t1-1 against keys 0..t1-1: 2 GEMMs of 2 (t1 - t0) t1 hs
/// per head and block, 4 d sum (t1 - t0) t1 / T per token and layer; full T x T was counted before
/// 2026-11-29, 2-3% too many FLOPs for stories15M at T = 256).
struct Flops {
  double linear, attention;
};
Flops forward_flops(const ModelConfig& c, int T) {
  const double d = c.dim, kv = c.kv_dim(), h = c.hidden_dim, L = c.n_layers, V = c.vocab_size;
  double block_products = 0;  // sum over blocks of (t1 - t0) t1
  for (int t0 = 0; t0 < T; t0 += kAttentionBlock) {
    const int t1 = std::min(T, t0 + kAttentionBlock);
    block_products += double(t1 - t0) * double(t1);
  }
  return {2 * (L * (2 * d * d + 2 * d * kv + 3 * d * h) + V * d), L * 2 * 2 * d * block_products / double(T)};
}

/// Cross-check file (see the header): config, weights, tokens, targets, our loss and gradients.
void dump_crosscheck(const std::string& path) {
  const ModelConfig c = named_shape("stories260K");
  const ModelWeights w = random_weights(c, 99);
  const int B = 2, T = 16, N = B * T;
  std::vector<int> tokens(N), targets(N);
  for (int i = 0; i < N; ++i) {
    tokens[i] = int((i * 7919 + 13) % c.vocab_size);
    targets[i] = int((i * 104729 + 7) % c.vocab_size);
  }
  LlamaModel model(w);
  ModelWeights grads;
  grads.allocate(c);
  const float loss = model.forward_backward(tokens.data(), targets.data(), nullptr, B, T, &grads);
  auto arr = [](std::ofstream& o, const std::vector<float>& v) {
    o << "[";
    char buf[32];
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", double(v[i]));
      o << buf;
    }
    o << "]";
  };
  const std::string tmp = path + ".tmp";
  {
    std::ofstream o(tmp);
    if (!o) throw std::runtime_error("bench_model --dump: cannot write " + tmp);
    o << "{\"format\": \"hyplora-model-crosscheck-1\", \"shape\": \"stories260K\", \"B\": " << B << ", \"T\": " << T
      << ", \"norm_eps\": " << c.norm_eps << ", \"rope_theta\": " << c.rope_theta << ",\n\"tokens\": [";
    for (int i = 0; i < N; ++i) o << (i ? "," : "") << tokens[std::size_t(i)];
    o << "],\n\"targets\": [";
    for (int i = 0; i < N; ++i) o << (i ? "," : "") << targets[std::size_t(i)];
    char lb[64];
    std::snprintf(lb, sizeof lb, "%.9g", double(loss));
    o << "],\n\"loss\": " << lb << ",\n\"weights\": {";
    bool first = true;
    w.for_each_tensor([&](const char* name, const std::vector<float>& v) {
      o << (first ? "" : ",\n") << "\"" << name << "\": ";
      arr(o, v);
      first = false;
    });
    o << "},\n\"grads\": {";
    first = true;
    grads.for_each_tensor([&](const char* name, const std::vector<float>& v) {
      o << (first ? "" : ",\n") << "\"" << name << "\": ";
      arr(o, v);
      first = false;
    });
    o << "}}\n";
    o.flush();
    if (!o) throw std::runtime_error("bench_model --dump: write failed for " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("bench_model --dump: cannot rename to " + path);
}

/// Splits "a,b,c".
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t a = 0;
  while (a <= text.size()) {
    const std::size_t b = std::min(text.find(',', a), text.size());
    if (b > a) out.push_back(text.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

/// The frozen-weight training step with each kind's adapters attached, kinds interleaved round by
/// round (one warm-up round), each kind's median step and its ratio to the first kind's.
void compare_adapters(LlamaModel& model, const std::vector<std::string>& kinds, const int* tokens, const int* targets,
                      const float* mask, int B, int T, int reps) {
  namespace tr = hyplora::train;
  if (kinds.empty()) throw std::invalid_argument("--adapters: no adapter kind in the list");
  std::vector<tr::AdapterSet> sets;
  for (const auto& name : kinds) {
    tr::AdapterSpec spec;
    spec.kind = tr::kind_from_name(name);  // throws naming the unknown kind
    sets.emplace_back(model.config(), spec);
    // B = 0 at init would make every branch a multiplication by zeros: small random B (A keeps its init)
    std::vector<float> p = sets.back().gather_params();
    std::uint64_t state = 12345;
    long base = 0;
    for (auto& u : sets.back().units()) {
      const long b0 = base + u->offset_B(), b1 = b0 + u->d_out() * u->rank();
      for (long i = b0; i < b1; ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        p[std::size_t(i)] = 0.01f * (float(double(state >> 40) / double(1ull << 24)) - 0.5f);
      }
      base += u->num_params();
    }
    sets.back().scatter_params(p);
  }
  std::vector<std::vector<double>> times(kinds.size());
  for (int round = 0; round <= reps; ++round) {
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      sets[k].attach(model);
      sets[k].zero_grad();
      const auto a = std::chrono::steady_clock::now();
      model.forward_backward(tokens, targets, mask, B, T);
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
      tr::AdapterSet::detach(model);
      if (round > 0) times[k].push_back(t);  // round 0 warms up (buffers sized, caches filled)
    }
  }
  // each round's ratio to the first kind's step of the same round (the machine's state changes
  // between rounds more than within one), then the median and quartiles of those ratios
  std::vector<std::vector<double>> ratios(kinds.size());
  for (std::size_t k = 0; k < kinds.size(); ++k)
    for (std::size_t r = 0; r < times[k].size(); ++r) ratios[k].push_back(times[k][r] / times[0][r]);
  using hyplora::bench::quantile;
  std::printf("adapters on q,k,v,up,down (rank 8), frozen-weight train step, kinds interleaved, %d rounds;\n"
              "ratio: median (quartiles) over the rounds of the step's time / %s's in the same round\n",
              reps, kinds[0].c_str());
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    const Stats t = stats(times[k]);
    std::printf("  %-18s %10.0f tok/s  (min %.4f s, median %.4f s, max %.4f s per step)  / %s %.3f (%.3f-%.3f)\n",
                kinds[k].c_str(), double(B) * T / t.median, t.min, t.median, t.max, kinds[0].c_str(),
                quantile(ratios[k], 0.5), quantile(ratios[k], 0.25), quantile(ratios[k], 0.75));
  }
}

}  // namespace

int run(int argc, char** argv);

int main(int argc, char** argv) {
  return hyplora::bench::guarded_main("bench_model",
                                      "[--shape stories15M|stories260K|...] [--batch B] [--seq T] [--reps R] "
                                      "[--peer COMMAND] [--dump FILE] [--adapters LIST]",
                                      [&] { return run(argc, argv); });
}

int run(int argc, char** argv) {
  std::string shape = "stories15M", peer, dump, adapters;
  int B = 8, T = 256, reps = 5;
  hyplora::bench::ArgReader args(argc, argv);
  while (args.more()) {
    if (args.value("--shape", shape)) {}
    else if (args.integer("--batch", B, 1, 4096)) {}
    else if (args.integer("--seq", T, 1, 1 << 20)) {}
    else if (args.integer("--reps", reps, 1, 10000)) {}
    else if (args.value("--peer", peer)) {}
    else if (args.value("--dump", dump)) {}
    else if (args.value("--adapters", adapters)) {}
    else args.unknown();
  }
  // bad arguments are usage errors (exit 2), found before the sgemm timing
  try {
    const ModelConfig named = named_shape(shape);
    if (T > named.seq_len)
      throw std::invalid_argument("--seq " + std::to_string(T) + " is longer than the context of " + shape + " (" +
                                  std::to_string(named.seq_len) + ")");
  } catch (const std::invalid_argument& e) {
    throw hyplora::bench::ArgError(e.what());
  }
  const std::vector<std::string> adapter_kinds = split_list(adapters);
  if (!adapters.empty() && adapter_kinds.empty()) throw hyplora::bench::ArgError("--adapters: no adapter kind in the list");
  for (const auto& k : adapter_kinds) {
    try {
      hyplora::train::kind_from_name(k);
    } catch (const std::invalid_argument& e) {
      throw hyplora::bench::ArgError(std::string("--adapters: ") + e.what());
    }
  }
  if (!dump.empty()) dump_crosscheck(dump);
  const int threads = omp_get_max_threads();

  // sgemm rate: a large square product, median of reps
  const int n = 2048;
  std::vector<float> A(std::size_t(n) * n, 0.5f), Bm(A.size(), 0.25f), C(A.size());
  const auto g = measure(1, reps, [&] { blas::gemm(false, false, n, n, n, 1.0f, A.data(), n, Bm.data(), n, 0.0f, C.data(), n); });
  const double sgemm_flops = 2.0 * n * n * n / g.median;

  const ModelConfig c = named_shape(shape);
  LlamaModel model(random_weights(c, 1234));
  const long N = long(B) * T;
  std::vector<int> tokens(N), targets(N);
  for (long i = 0; i < N; ++i) {
    tokens[i] = int((i * 7919 + 13) % c.vocab_size);
    targets[i] = int((i * 104729 + 7) % c.vocab_size);
  }
  std::vector<float> mask(N, 1.0f);
  ModelWeights grads;
  grads.allocate(c);
  model.reserve(B, T);

  const Flops f = forward_flops(c, T);
  const double fwd_fpt = f.linear + f.attention;
  const double full_fpt = 3 * f.linear + 3 * f.attention;       // + dX and dW of every GEMM
  const double frozen_fpt = 2 * f.linear + 3 * f.attention;     // + dX only (attention: all four products)

  const auto fw = measure(1, reps, [&] { model.evaluate_loss(tokens.data(), targets.data(), mask.data(), B, T); });
  const auto full = measure(1, reps, [&] {
    model.forward_backward(tokens.data(), targets.data(), mask.data(), B, T, &grads);
  });
  const auto frozen = measure(1, reps, [&] { model.forward_backward(tokens.data(), targets.data(), mask.data(), B, T); });

  auto report = [&](const char* name, const Stats& s, double fpt) {
    const double tps = N / s.median;
    std::printf("%-28s %10.0f tok/s  (min %.3f s, median %.3f s, max %.3f s per step)  %6.1f GFLOP/s  = %4.1f%% of sgemm\n",
                name, tps, s.min, s.median, s.max, tps * fpt / 1e9, 100.0 * tps * fpt / sgemm_flops);
    return tps;
  };
  std::printf("shape %s (dim %d, layers %d, heads %d/%d, hidden %d, vocab %d), batch %d x %d, %d threads, %d reps\n",
              shape.c_str(), c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.hidden_dim, c.vocab_size, B, T, threads,
              reps);
  std::printf("FLOPs/token: forward %.1f M (linear %.1f M + attention %.1f M), train full %.1f M, train frozen %.1f M\n",
              fwd_fpt / 1e6, f.linear / 1e6, f.attention / 1e6, full_fpt / 1e6, frozen_fpt / 1e6);
  std::printf("sgemm %dx%dx%d: %.1f GFLOP/s (min %.3f s, max %.3f s)\n", n, n, n, sgemm_flops / 1e9, g.min, g.max);
  const double tf = report("forward (loss, no grad)", fw, fwd_fpt);
  const double tt = report("train step (all weights)", full, full_fpt);
  const double tz = report("train step (frozen weights)", frozen, frozen_fpt);
  if (!adapter_kinds.empty())
    compare_adapters(model, adapter_kinds, tokens.data(), targets.data(), mask.data(), B, T, reps);

  if (!peer.empty()) {
    const std::string cmd = peer + " --shape " + shape + " --batch " + std::to_string(B) + " --seq " +
                            std::to_string(T) + " --reps " + std::to_string(reps) + " --threads " +
                            std::to_string(threads);
    std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
    std::string out;
    char buf[4096];
    while (p && std::fgets(buf, sizeof buf, p.get())) out += buf;
    try {
      const auto j = nlohmann::json::parse(out.substr(out.find('{')));
      const double pf = j["forward_tokens_per_s"], pt = j["train_tokens_per_s"], pz = j["train_frozen_tokens_per_s"];
      std::printf("PyTorch %s (%d threads): forward %.0f tok/s, train (all weights) %.0f tok/s, train (frozen) %.0f tok/s\n",
                  j.value("torch", std::string("?")).c_str(), int(j["threads"]), pf, pt, pz);
      std::printf("ratio hyplora / PyTorch: forward %.2fx, train (all weights) %.2fx, train (frozen) %.2fx\n", tf / pf,
                  tt / pt, tz / pz);
      std::printf("peer_json %s\n", j.dump().c_str());  // the peer's full record (min / max per step) for bench/run.sh
    } catch (const std::exception& e) {
      // our figures above are complete: exit 4 says "only the peer failed" (bench/run.sh keeps them)
      std::fprintf(stderr, "peer '%s' gave no usable JSON (%s): %s\n", cmd.c_str(), e.what(), out.c_str());
      return 4;
    }
  }
  return 0;
}
