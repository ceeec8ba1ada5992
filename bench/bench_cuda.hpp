#pragma once
// What the CUDA bench drivers share: the first GPU's properties, or a SKIPPED message and exit
// code 77 (ctest's skip code, as the CUDA tests use) where there is none.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

namespace hyplora::bench {

inline cudaDeviceProp first_gpu_or_skip(const char* program) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    std::exit(77);
  }
  cudaDeviceProp prop{};
  const cudaError_t p = cudaGetDeviceProperties(&prop, 0);
  if (p != cudaSuccess) {
    std::fprintf(stderr, "%s: cudaGetDeviceProperties: %s\n", program, cudaGetErrorString(p));
    std::exit(1);
  }
  return prop;
}

}  // namespace hyplora::bench
