#pragma once
// Build configuration shared by every hyplora header.
//
// HYPLORA_HOST_DEVICE marks a function callable from host code and, under nvcc, from a CUDA
// kernel too (the same idea as CCCL's _CCCL_HOST_DEVICE). Under g++/clang it expands to nothing,
// so the geometry headers serve a CPU loop and a GPU kernel from one definition.

#if defined(__CUDACC__) || defined(__HIPCC__)
#define HYPLORA_HOST_DEVICE __host__ __device__
#define HYPLORA_DEVICE_COMPILE 1
#else
#define HYPLORA_HOST_DEVICE
#define HYPLORA_DEVICE_COMPILE 0
#endif

#if defined(__CUDA_ARCH__)
#define HYPLORA_IN_DEVICE_CODE 1
#else
#define HYPLORA_IN_DEVICE_CODE 0
#endif

#define HYPLORA_INLINE HYPLORA_HOST_DEVICE inline

// HYPLORA_COLD marks the rare path of a hot function (the rescaled norms, taken where a plain sum
// of squares leaves T's range or is 0): out of line on the host, so that it neither grows the hot
// code nor changes how the compiler inlines and vectorises it. Device code is left to nvcc.
#if defined(__GNUC__) && !defined(__CUDA_ARCH__)
#define HYPLORA_COLD __attribute__((noinline))
#else
#define HYPLORA_COLD
#endif

// HYPLORA_HOST_FLOAT_VIA_DOUBLE (default 1): float on the host evaluates the radial factors of
// core/scalar_math.hpp in double, branch-free, rounded once. 0: host float takes the float forms
// that device code compiles (libm calls and branches), so that a CPU can test them
// (test_manifold_models_device_forms). Every translation unit of one program must use the same value.
#ifndef HYPLORA_HOST_FLOAT_VIA_DOUBLE
#define HYPLORA_HOST_FLOAT_VIA_DOUBLE 1
#endif

namespace hyplora {
/// Index type used for dimensions and counts in pointer-based APIs.
using index_t = long;
}  // namespace hyplora
