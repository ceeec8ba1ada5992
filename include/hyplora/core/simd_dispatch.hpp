#pragma once
// Loops compiled for the widest x86 vector unit the CPU has -- AVX-512 (8 doubles, 16 floats),
// AVX2 (4, 8) or the build's baseline (SSE2: 2, 4) -- chosen once at run time:
//   simd_loop(m, body)  body(k) for k in [0, m) as an `omp simd` loop;
//   wide(f)             f() with the loops inside it vectorised for that unit.
// Meant for the branch-free per-row factor loops (the transcendental part of a radial map,
// evaluated in double: core/scalar_math.hpp), which are compute-bound at two doubles per
// instruction: a 64-float row cost ~10 ns of factor beside ~10 ns of row passes, ~5 ns on AVX-512
// (docs/geometry.md, run 3), and for the CPU backend's row passes.
//
// The versions are `flatten` (every call in the body is inlined, so its loops vectorise for the
// unit) and use no fused multiply-add (no "fma" target, fp-contract off): each lane does exactly the
// IEEE operations of the scalar code (add, mul, div, sqrt are correctly rounded), so an elementwise
// loop gives bitwise the results of the baseline build on every unit (tests/test_manifold_models.cpp
// checks the batched maps against the single-point ones on each unit the CPU has). A reduction
// rounds the same only where its order is written out (vec::dot_lanes16), not an `omp simd`
// reduction, whose partial sums follow the vector width.
//
// The dispatch exists for g++ on x86-64 host code only; elsewhere (nvcc, clang, other CPUs,
// HYPLORA_NO_SIMD_DISPATCH defined) the loops are the plain loops of the build.
// HYPLORA_SIMD=baseline|avx2 in the environment (or set_isa) picks a narrower unit.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "hyplora/core/config.hpp"

// The `omp simd` hint of the row loops. Not under clang: clang 14 could not vectorise these loops
// as asked and warned "loop not vectorized" (-Wpass-failed) wherever the adapter is used.
#if defined(_OPENMP) && !defined(__clang__)
#define HYPLORA_OMP_SIMD _Pragma("omp simd")
#else
#define HYPLORA_OMP_SIMD
#endif

// g++ only: clang contracts a*b+c into an FMA within one expression by default, also in code
// inlined into a wider function, so there the wide versions could round differently.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__CUDACC__) && \
    !defined(HYPLORA_NO_SIMD_DISPATCH)
#define HYPLORA_SIMD_DISPATCH 1
#define HYPLORA_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl"), optimize("fp-contract=off"), flatten))
#define HYPLORA_TARGET_AVX2 __attribute__((target("avx2"), optimize("fp-contract=off"), flatten))
#else
#define HYPLORA_SIMD_DISPATCH 0
#endif

namespace hyplora {
namespace simd {

/// The vector unit simd_loop runs on.
enum class Isa { baseline, avx2, avx512 };
/// Its name, as HYPLORA_SIMD takes it.
inline const char* isa_name(Isa i) {
  return i == Isa::avx512 ? "avx512" : (i == Isa::avx2 ? "avx2" : "baseline");
}
/// The narrower of two units.
inline Isa narrower(Isa a, Isa b) { return int(a) < int(b) ? a : b; }

#if HYPLORA_SIMD_DISPATCH
namespace detail {
inline Isa detect() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2")) return Isa::avx2;
  return Isa::baseline;
}
// f() with f inlined: its loops are vectorised for the unit of the enclosing function.
template <class F>
HYPLORA_TARGET_AVX512 void run_avx512(F& f) {
  f();
}
template <class F>
HYPLORA_TARGET_AVX2 void run_avx2(F& f) {
  f();
}
/// The widest unit, or a narrower one named by the environment variable HYPLORA_SIMD (baseline,
/// avx2, avx512: for comparisons; a wider one than the CPU has is not taken).
inline Isa initial() {
  const Isa have = detect();
  const char* env = std::getenv("HYPLORA_SIMD");
  if (!env) return have;
  for (const Isa want : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (std::strcmp(env, isa_name(want)) == 0) return narrower(want, have);
  std::fprintf(stderr, "hyplora: HYPLORA_SIMD=%s is not one of baseline, avx2, avx512; ignored\n", env);
  return have;
}
inline std::atomic<int>& chosen() {
  static std::atomic<int> isa{int(initial())};
  return isa;
}
}  // namespace detail
/// The unit simd_loop uses now: the widest this CPU has, unless set_isa chose a narrower one.
inline Isa isa() { return Isa(detail::chosen().load(std::memory_order_relaxed)); }
/// Widest unit this CPU has.
inline Isa widest_isa() { return detail::detect(); }
/// Use `want` where the CPU has it, else the widest it has (tests run every version this way);
/// returns the unit now in use.
inline Isa set_isa(Isa want) {
  const Isa use = narrower(want, widest_isa());
  detail::chosen().store(int(use), std::memory_order_relaxed);
  return use;
}
#else
inline Isa isa() { return Isa::baseline; }
inline Isa widest_isa() { return Isa::baseline; }
inline Isa set_isa(Isa) { return Isa::baseline; }
#endif

/// f() compiled for the unit isa() names: loops in f (inlined code, e.g. `omp simd` loops) are
/// vectorised that wide.
template <class F>
inline void wide(F&& f) {
#if HYPLORA_SIMD_DISPATCH
  switch (isa()) {
    case Isa::avx512: detail::run_avx512(f); return;
    case Isa::avx2: detail::run_avx2(f); return;
    case Isa::baseline: break;
  }
#endif
  f();
}
/// body(k) for k in [0, m) as an `omp simd` loop on the unit isa() names.
template <class Body>
inline void simd_loop(index_t m, Body&& body) {
  wide([&] {
    HYPLORA_OMP_SIMD
    for (index_t k = 0; k < m; ++k) body(k);
  });
}

}  // namespace simd
}  // namespace hyplora
