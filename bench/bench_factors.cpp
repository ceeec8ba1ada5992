// The per-row factors of the radial adapters (core/scalar_math.hpp, host float through double):
//   1. accuracy: f(a) and a f'(a) of sinh(a)/a, cosh a, asinh(a)/a, tanh(a)/a, artanh(a)/a in double
//      before the rounding to float, against quad precision (__float128, GCC's libquadmath), over a
//      log grid of float arguments; and how many float results lie more than 1 ulp from the exact value
//      (exit status 3 when any does: the library promises 1 ulp, tests/test_manifold_models.cpp);
//   2. speed: the adapters' factor pass (kernels::RankFactorRows through Cpu::for_rows_simd, as the
//      CPU backend's forward runs it) over 512 rows, on the vector unit simd::isa() picks
//      (HYPLORA_SIMD narrows it) and the OpenMP threads of the run (OMP_NUM_THREADS).
// docs/geometry.md, run 4.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "bench_stats.hpp"
#include "hyplora/adapter/row_kernels.hpp"
#include "hyplora/backend/cpu.hpp"
#include "hyplora/core/scalar_math.hpp"
#include "hyplora/core/simd_dispatch.hpp"

#if HYPLORA_HAVE_QUADMATH
#include <quadmath.h>
#endif

using namespace hyplora;

namespace {

#if HYPLORA_HAVE_QUADMATH
using Q = __float128;
/// f(a) and a f'(a), exact to quad precision (~1e-34; the cancellation of a f' costs at most
/// 1/a^2 = 1e12 of it on the grid).
struct Exact {
  Q f, xdf;
};
using EvalFn = void (*)(double, double&, double&);
struct Function {
  const char* name;
  double a_max;
  EvalFn eval;       // host_float's: f and f'
  Exact (*exact)(Q);
};
void cosh_eval(double a, double& f, double& df) {  // cosh a and sinh a (its derivative)
  double s, ds;
  math::host_float::sinhc_cosh_deriv(a, s, f, ds);
  df = s * a;
}
const Function kFunctions[] = {
    {"sinh(a)/a", 60, math::host_float::sinhc_deriv, [](Q a) { const Q f = sinhq(a) / a; return Exact{f, coshq(a) - f}; }},
    {"cosh(a)", 60, cosh_eval, [](Q a) { return Exact{coshq(a), a * sinhq(a)}; }},
    {"asinh(a)/a", 1e6, math::host_float::asinhc_deriv,
     [](Q a) { const Q f = asinhq(a) / a; return Exact{f, 1 / sqrtq(1 + a * a) - f}; }},
    {"tanh(a)/a", 15, math::host_float::tanhc_deriv,
     [](Q a) { const Q t = tanhq(a), f = t / a; return Exact{f, (1 - t * t) - f}; }},
    {"artanh(a)/a", 0.99, math::host_float::artanhc_deriv,
     [](Q a) { const Q f = atanhq(a) / a; return Exact{f, 1 / (1 - a * a) - f}; }},
};
/// |float(got) - exact| in units of the last place of float at the exact value.
double float_ulps(double got, Q exact) {
  const float e = float(double(exact));
  const double ulp = double(std::nextafter(std::fabs(e), INFINITY)) - double(std::fabs(e));
  return double(fabsq(Q(float(got)) - exact)) / ulp;
}
/// Prints the table; returns the number of float results more than 1 ulp off.
int accuracy(int points) {
  std::printf("## Accuracy of the host-float factors before the rounding to float, against quad precision\n\n"
              "%d float arguments per function, log-spaced from 1e-6 to the upper end\n\n"
              "| function | up to | max rel. error of f | at a | max rel. error of a f' | at a | float f > 1 ulp | "
              "float a f' > 1 ulp |\n|---|---|---|---|---|---|---|---|\n",
              points);
  int off_by_more = 0;
  for (const Function& fn : kFunctions) {
    double worst_f = 0, worst_d = 0, at_f = 0, at_d = 0;
    int ulp_f = 0, ulp_d = 0;
    for (int i = 0; i <= points; ++i) {
      const double a = double(float(1e-6 * std::pow(fn.a_max / 1e-6, double(i) / points)));
      double f, df;
      fn.eval(a, f, df);
      const Exact ex = fn.exact(Q(a));
      const double ef = double(fabsq((Q(f) - ex.f) / ex.f)), ed = double(fabsq((Q(a * df) - ex.xdf) / ex.xdf));
      if (ef > worst_f) worst_f = ef, at_f = a;
      if (ed > worst_d) worst_d = ed, at_d = a;
      ulp_f += float_ulps(f, ex.f) > 1;
      ulp_d += float_ulps(a * df, ex.xdf) > 1;
    }
    std::printf("| %s | %g | %.2e | %.4g | %.2e | %.4g | %d | %d |\n", fn.name, fn.a_max, worst_f, at_f, worst_d, at_d,
                ulp_f, ulp_d);
    off_by_more += ulp_f + ulp_d;
  }
  std::printf("\n");
  return off_by_more;
}
#endif

template <class V>
void time_factor_pass(int reps) {
  const index_t n = 512;
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> x2(0.5f, 80.f), q2(5e-4f, 0.08f);  // |x|^2 of d = 64 rows, |A x|_G^2
  std::vector<float> row_x2(n), row_n(n), row_q2(n), lift(3 * n), lower(3 * n), row_w(n);
  for (index_t i = 0; i < n; ++i) row_x2[i] = x2(gen), row_q2[i] = q2(gen);
  const adapter::kernels::RankFactorRows<V, float> pass{row_n.data(), row_q2.data(), lift.data(), lower.data(),
                                                        row_w.data(), n, 0.125f, 2.f, 1.f, {}};
  auto step = [&] {
    std::copy(row_x2.begin(), row_x2.end(), row_n.begin());  // the pass turns |x|^2 into n in place
    backend::Cpu::for_rows_simd(n, pass);
  };
  const int calls = bench::calls_per_sample(step, 20.0);
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int c = 0; c < calls; ++c) step();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / calls);
  }
  const bench::Stats s = bench::stats(us);
  double check = 0;
  for (index_t i = 0; i < n; ++i) check += double(row_w[i]);
  if (!std::isfinite(check)) throw std::runtime_error(std::string(V::name) + ": non-finite factors in the bench");
  std::printf("| %s | %.3f | %.3f | %.3f | %.1f |\n", V::name, s.median, s.min, s.max, 1000 * s.median / n);
}

int run(int argc, char** argv) {
  int reps = 21, points = 400000;
  bench::ArgReader args(argc, argv);
  while (args.more()) {
    if (args.integer("--reps", reps, 1, 100000)) {}
    else if (args.integer("--points", points, 10, 100000000)) {}
    else args.unknown();
  }
  int off_by_more = 0;
#if HYPLORA_HAVE_QUADMATH
  off_by_more = accuracy(points);
#else
  std::printf("(accuracy part left out: this build has no __float128 / libquadmath)\n\n");
#endif
  std::printf("## The factor pass of the rank-space forward, 512 rows, float\n\n"
              "vector unit %s; median / min / max over %d samples\n\n"
              "| variant | median us | min us | max us | ns per row |\n|---|---|---|---|---|\n",
              simd::isa_name(simd::isa()), reps);
  time_factor_pass<adapter::Naive>(reps);
  time_factor_pass<adapter::HypLoraLorentz>(reps);
  time_factor_pass<adapter::HypLoraPoincare>(reps);
  time_factor_pass<adapter::PaperHypLora>(reps);
  if (off_by_more > 0) {
    std::fprintf(stderr, "bench_factors: %d float results more than 1 ulp from the exact value\n", off_by_more);
    return 3;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::guarded_main("bench_factors", "[--reps N] [--points N]", [&] { return run(argc, argv); });
}
