// Throughput of the batched geometry kernels (float32) beside a memcpy of the same bytes.
//
// Each kernel streams its rows once: expmap0 / logmap0 read n floats and write n per row, dist
// reads two rows and writes one float. "Bytes moved" = bytes read + bytes written. The bound is a
// parallel memcpy (same threads, same OpenMP row split) moving the same number of bytes (it reads
// and writes half each), measured in the same run. Each timing: warm-up, then the median (min,
// max) of --reps runs (>= 5), kernel and memcpy runs alternating so that both see the same load.
//
// usage: bench_geometry [--quick] [--threads N] [--reps R] [--dump FILE]
//
// --dump FILE also writes a cross-check file (JSON, written atomically): seeded float32 inputs of a
// small shape (512 x 64, |v| spread from 0.01 to 20) and this library's output of every timed
// operation on them; bench/peers/torch_geometry.py recomputes the same operations from the same
// inputs and reports the largest difference (bench/run.sh).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "bench_args.hpp"
#include "bench_stats.hpp"
#include <hyplora/manifold/batched.hpp>
#include <hyplora/manifold/sampling.hpp>

using namespace hyplora;

namespace {

using bench::Stats;

/// Times f and g alternately (f, g, f, g, ...) after two warm-up calls of each, so that both see
/// the same machine load; returns the median, min and max of each.
std::pair<Stats, Stats> time_pair(const std::function<void()>& f, const std::function<void()>& g, int reps) {
  f(), g(), f(), g();
  std::vector<double> tf, tg;
  auto clock = [](const std::function<void()>& h) {
    const auto a = std::chrono::steady_clock::now();
    h();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  };
  for (int r = 0; r < reps; ++r) {
    tf.push_back(clock(f));
    tg.push_back(clock(g));
  }
  return {bench::stats(tf), bench::stats(tg)};
}

/// Parallel memcpy of `bytes` bytes, split like the row loops.
void par_memcpy(char* dst, const char* src, size_t bytes) {
  const int chunks = 256;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < chunks; ++c) {
    const size_t a = bytes * c / chunks, b = bytes * (c + 1) / chunks;
    std::memcpy(dst + a, src + a, b - a);
  }
}

/// Fills with first-touch in parallel (so pages are spread like the kernel's accesses).
std::vector<float> make_buffer(size_t count, float scale, uint64_t seed) {
  std::vector<float> v(count);
#pragma omp parallel
  {
    Rng rng = Rng::stream(seed, uint64_t(omp_get_thread_num()));
#pragma omp for schedule(static)
    for (size_t i = 0; i < count; ++i) v[i] = scale * rng.normal<float>();
  }
  return v;
}

struct Row {
  std::string op, shape;
  double bytes;
  Stats t, tm;
};

void write_array(std::ofstream& o, const char* name, const std::vector<float>& v) {
  o << "\"" << name << "\": [";
  char buf[32];
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", double(v[i]));  // %.9g: float32 round trip
    o << buf;
  }
  o << "]";
}

/// Cross-check file: inputs and our outputs of every timed op at 512 x 64 (see the header).
template <class LM, class BM>
void dump_crosscheck(const std::string& path, const LM& L, const BM& B) {
  const index_t R = 512, d = 64, n = d + 1;
  // rows of N(0, 1/d) scaled so |v| spans 0.01 .. 20 (near-origin series branch to large arguments)
  auto Vs = make_buffer(size_t(R) * d, 1.0f / std::sqrt(float(d)), 11);
  auto Ws = make_buffer(size_t(R) * d, 1.0f / std::sqrt(float(d)), 12);
  for (index_t r = 0; r < R; ++r) {
    const float sv = 0.01f * std::pow(2000.0f, float(r) / float(R - 1)), sw = 0.01f * std::pow(2000.0f, float((r * 7) % R) / float(R - 1));
    for (index_t j = 0; j < d; ++j) Vs[size_t(r * d + j)] *= sv, Ws[size_t(r * d + j)] *= sw;
  }
  // Poincare inputs: |v| up to 20 puts points within float32 rounding of the boundary; keep them below 3 (artanh of the logmap stays well conditioned)
  std::vector<float> Vp(Vs), Wp(Ws);
  for (auto* a : {&Vp, &Wp})
    for (float& x : *a) x *= 0.15f;
  std::vector<float> V(size_t(R) * n, 0.0f), Wv(V.size(), 0.0f);
  for (index_t r = 0; r < R; ++r)
    for (index_t j = 0; j < d; ++j) V[size_t(r * n + 1 + j)] = Vs[size_t(r * d + j)], Wv[size_t(r * n + 1 + j)] = Ws[size_t(r * d + j)];
  std::vector<float> Xs(size_t(R) * d), LVs(Xs.size()), X(V.size()), Y(V.size()), LD(static_cast<size_t>(R));
  std::vector<float> P(size_t(R) * d), Q(P.size()), PV(P.size()), PD(static_cast<size_t>(R));
  batched::expmap0_space(L, Vs.data(), Xs.data(), R, d);
  batched::logmap0_space(L, Xs.data(), LVs.data(), R, d);
  batched::expmap0(L, V.data(), X.data(), R, n);
  batched::expmap0(L, Wv.data(), Y.data(), R, n);
  batched::dist(L, X.data(), Y.data(), LD.data(), R, n);
  batched::expmap0(B, Vp.data(), P.data(), R, d);
  batched::expmap0(B, Wp.data(), Q.data(), R, d);
  batched::logmap0(B, P.data(), PV.data(), R, d);
  batched::dist(B, P.data(), Q.data(), PD.data(), R, d);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream o(tmp);
    if (!o) throw std::runtime_error("bench_geometry --dump: cannot write " + tmp);
    o << "{\"format\": \"hyplora-geometry-crosscheck-1\", \"K\": " << L.K() << ", \"c\": " << 1.0 / double(L.K())
      << ", \"rows\": " << R << ", \"d\": " << d << ",\n";
    write_array(o, "lorentz_v_space", Vs); o << ",\n";
    write_array(o, "lorentz_w_space", Ws); o << ",\n";
    write_array(o, "poincare_v", Vp); o << ",\n";
    write_array(o, "poincare_w", Wp); o << ",\n";
    write_array(o, "out Lorentz expmap0_space", Xs); o << ",\n";
    write_array(o, "out Lorentz logmap0_space", LVs); o << ",\n";
    write_array(o, "out Lorentz expmap0 (d+1)", X); o << ",\n";
    write_array(o, "out Lorentz expmap0 (d+1) of w", Y); o << ",\n";
    write_array(o, "out Lorentz dist (d+1)", LD); o << ",\n";
    write_array(o, "out Poincare expmap0", P); o << ",\n";
    write_array(o, "out Poincare expmap0 of w", Q); o << ",\n";
    write_array(o, "out Poincare logmap0", PV); o << ",\n";
    write_array(o, "out Poincare dist", PD); o << "}\n";
    o.flush();
    if (!o) throw std::runtime_error("bench_geometry --dump: write failed for " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("bench_geometry --dump: cannot rename to " + path);
}

}  // namespace

int run(int argc, char** argv);

int main(int argc, char** argv) {
  return hyplora::bench::guarded_main("bench_geometry", "[--quick] [--threads N] [--reps R>=5] [--dump FILE]",
                                      [&] { return run(argc, argv); });
}

int run(int argc, char** argv) {
  bool quick = false;
  int threads = 0, reps = 7;
  std::string dump;
  hyplora::bench::ArgReader args(argc, argv);
  while (args.more()) {
    if (args.flag("--quick")) quick = true;
    else if (args.integer("--threads", threads, 1, 1024)) {}
    else if (args.integer("--reps", reps, 5, 100000)) {}  // the median of at least 5 timings
    else if (args.value("--dump", dump)) {}
    else args.unknown();
  }
  if (threads > 0) omp_set_num_threads(threads);
  struct Shape {
    index_t rows, d;
  };
  const std::vector<Shape> shapes = quick ? std::vector<Shape>{{4096, 64}, {64, 1024}}
                                          : std::vector<Shape>{{1 << 20, 64}, {4096, 4096}};
  const Lorentz<float, RuntimeCurvature<float>> L(RuntimeCurvature<float>(1.0f));
  const PoincareBall<float, RuntimeCurvature<float>> B(RuntimeCurvature<float>(1.0f));
  if (!dump.empty()) {
    try {
      dump_crosscheck(dump, L, B);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
  }
  std::vector<Row> rows;
  volatile float sink = 0;
  for (const auto& s : shapes) {
    const index_t R = s.rows, d = s.d, n = d + 1;
    const std::string shape = std::to_string(R) + " x " + std::to_string(d);
    // Inputs scaled so that |v| ~ 1 (typical, non-saturated arguments).
    auto V = make_buffer(size_t(R) * n, 1.0f / std::sqrt(float(d)), 1);
    auto W = make_buffer(size_t(R) * n, 1.0f / std::sqrt(float(d)), 2);
    std::vector<float> X(size_t(R) * n), Y(size_t(R) * n), D(R);
    // the memcpy of the bound moves bytes / 2 each way: 1.5 rows of d + 1 floats for expmap(x, v)
    std::vector<char> msrc(size_t(R) * n * 6 + size_t(R) * 4), mdst(msrc.size());
    auto add = [&](const std::string& op, double bytes, const std::function<void()>& f) {
      const auto [t, tm] = time_pair(f, [&] { par_memcpy(mdst.data(), msrc.data(), size_t(bytes / 2)); }, reps);
      rows.push_back({op, shape, bytes, t, tm});
      sink = sink + X[0] + D[0];
    };
    const double rw = 2.0 * R * d * 4;          // read + write d floats per row
    const double rw_l = 2.0 * R * n * 4;        // Lorentz ambient rows (d + 1)
    add("Lorentz expmap0_space", rw, [&] { batched::expmap0_space(L, V.data(), X.data(), R, d); });
    batched::expmap0_space(L, V.data(), X.data(), R, d);
    add("Lorentz logmap0_space", rw, [&] { batched::logmap0_space(L, X.data(), Y.data(), R, d); });
    add("Lorentz expmap0 (d+1)", rw_l, [&] { batched::expmap0(L, V.data(), X.data(), R, n); });
    batched::expmap0(L, W.data(), Y.data(), R, n);
    add("Lorentz dist (d+1)", 2.0 * R * n * 4 + R * 4.0, [&] { batched::dist(L, X.data(), Y.data(), D.data(), R, n); });
    // coincident rows (X with itself): |x - y|^2 = 0 takes the rescaled form's all-zero test
    add("Lorentz dist (d+1), coincident rows", 2.0 * R * n * 4 + R * 4.0, [&] { batched::dist(L, X.data(), X.data(), D.data(), R, n); });
    add("Poincare expmap0", rw, [&] { batched::expmap0(B, V.data(), X.data(), R, d); });
    batched::expmap0(B, V.data(), X.data(), R, d);
    batched::expmap0(B, W.data(), Y.data(), R, d);
    add("Poincare logmap0", rw, [&] { batched::logmap0(B, X.data(), V.data(), R, d); });
    add("Poincare dist", 2.0 * R * d * 4 + R * 4.0, [&] { batched::dist(B, X.data(), Y.data(), D.data(), R, d); });
    add("Poincare dist, coincident rows", 2.0 * R * d * 4 + R * 4.0, [&] { batched::dist(B, X.data(), X.data(), D.data(), R, d); });
    // The general expmap(x, v) a Riemannian optimiser takes per point, row by row: short steps (an
    // optimiser's, |v| ~ 0.01) and long ones (|v| ~ 1) from the points X (read x and v, write out)
    std::vector<float> Sv(size_t(R) * d);
    for (size_t i = 0; i < Sv.size(); ++i) Sv[i] = 0.01f * W[i];
    auto expmap_rows = [&](const std::vector<float>& steps) {
#pragma omp parallel for schedule(static)
      for (index_t r = 0; r < R; ++r) B.expmap(X.data() + r * d, steps.data() + r * d, V.data() + r * d, d);
    };
    add("Poincare expmap(x, v), short steps", 3.0 * R * d * 4, [&] { expmap_rows(Sv); });
    add("Poincare expmap(x, v), long steps", 3.0 * R * d * 4, [&] { expmap_rows(W); });
  }
  std::printf("threads: %d, reps: %d (median of reps after 2 warm-up runs, kernel and memcpy alternating)\n\n", omp_get_max_threads(), reps);
  std::printf("| op | rows x d | MB moved | time median (min-max) ms | GB/s | memcpy GB/s | fraction of bound |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|\n");
  for (const auto& r : rows) {
    const double gbs = r.bytes / r.t.median / 1e9, mgbs = r.bytes / r.tm.median / 1e9;
    std::printf("| %s | %s | %.3f | %.4f (%.4f-%.4f) | %.2f | %.2f | %.0f%% |\n", r.op.c_str(), r.shape.c_str(),
                r.bytes / 1e6, r.t.median * 1e3, r.t.min * 1e3, r.t.max * 1e3, gbs, mgbs, 100 * gbs / mgbs);
  }
  return sink == 12345.0f ? 1 : 0;
}
