# OpenMP where CMake found it (the row loops run on one thread without)
set(_hyplora_bench_openmp "")
if(OpenMP_CXX_FOUND)
  set(_hyplora_bench_openmp OpenMP::OpenMP_CXX)
endif()
# Throughput of the batched geometry kernels against memcpy (docs/geometry.md).
hyplora_add_bench(bench_geometry SOURCES bench_geometry.cpp LIBS ${_hyplora_bench_openmp})
# The adapters' per-row factors: accuracy against quad precision (GCC's __float128 / libquadmath, where
# the compiler has them) and the time of the factor pass (docs/geometry.md, run 4).
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_LIBRARIES quadmath)
check_cxx_source_compiles("#include <quadmath.h>
int main() { __float128 x = 2; return int(sqrtq(x)); }" HYPLORA_HAVE_QUADMATH)
unset(CMAKE_REQUIRED_LIBRARIES)
hyplora_add_bench(bench_factors SOURCES bench_factors.cpp LIBS ${_hyplora_bench_openmp})
if(HYPLORA_HAVE_QUADMATH)
  target_compile_definitions(bench_factors PRIVATE HYPLORA_HAVE_QUADMATH=1)
  target_link_libraries(bench_factors PRIVATE quadmath)
endif()
if(HYPLORA_CUDA)
  # The single-point maps inside a CUDA kernel against cudaMemcpy (docs/geometry.md, GPU figures).
  hyplora_add_bench(bench_geometry_cuda SOURCES bench_geometry_cuda.cu)
  target_compile_options(bench_geometry_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
endif()
