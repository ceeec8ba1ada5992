#pragma once
// What the rank products' kernels for each vector unit share (backend/rank_kernels/avx512.hpp,
// avx2.hpp): the intrinsics, a forced-inline marker, and the diagnostics their bodies silence.
#include "hyplora/core/config.hpp"
#include "hyplora/core/simd_dispatch.hpp"

#if HYPLORA_SIMD_DISPATCH
#include <immintrin.h>
// Inlined by force: a call would pass a kernel's accumulators through memory (g++ 12 did not inline
// the row groups and reductions by itself; the two-row project_rows then took 15.7 us instead of 7.2
// at 512 x 64, r = 8).
#define HYPLORA_ALWAYS_INLINE inline __attribute__((always_inline))
// g++ 12 warns "__Y (may be) used uninitialized" inside its own AVX-512 intrinsics (their
// _mm512_undefined_ps(); GCC bug 105593, fixed in 13): silenced for the intrinsics and the kernels.
#define HYPLORA_RANK_KERNELS_BEGIN                             \
  _Pragma("GCC diagnostic push")                               \
  _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") \
  _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define HYPLORA_RANK_KERNELS_END _Pragma("GCC diagnostic pop")
#endif
