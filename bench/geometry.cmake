# Throughput of the batched geometry kernels against memcpy (docs/geometry.md).
if(OpenMP_CXX_FOUND)
  hyplora_add_bench(bench_geometry SOURCES bench_geometry.cpp LIBS OpenMP::OpenMP_CXX)
else()
  hyplora_add_bench(bench_geometry SOURCES bench_geometry.cpp)
endif()
if(HYPLORA_CUDA)
  # The single-point maps inside a CUDA kernel against cudaMemcpy (docs/geometry.md, GPU figures).
  hyplora_add_bench(bench_geometry_cuda SOURCES bench_geometry_cuda.cu)
  target_compile_options(bench_geometry_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
endif()
