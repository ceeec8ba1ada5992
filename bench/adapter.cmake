# Adapter forward+backward timings (issue 3): bench_adapter [--quick]
if(HYPLORA_HAVE_CPU_BACKEND)
  hyplora_add_bench(bench_adapter SOURCES bench_adapter.cpp LIBS hyplora_cpu)
endif()
if(HYPLORA_CUDA)
  # GPU figures (docs/adapters.md): Thrust's CUDA system and cuBLAS. CUDA's own Thrust (CCCL under
  # the toolkit), never the distribution's /usr/include/thrust.
  hyplora_add_bench(bench_adapter_cuda SOURCES bench_adapter_cuda.cu LIBS CUDA::cublas)
  target_include_directories(bench_adapter_cuda BEFORE PRIVATE ${CUDAToolkit_INCLUDE_DIRS}/cccl ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(bench_adapter_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
endif()
