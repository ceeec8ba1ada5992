# Throughput of the batched geometry kernels against memcpy (docs/geometry.md).
if(OpenMP_CXX_FOUND)
  hyplora_add_bench(bench_geometry SOURCES bench_geometry.cpp LIBS OpenMP::OpenMP_CXX)
else()
  hyplora_add_bench(bench_geometry SOURCES bench_geometry.cpp)
endif()
