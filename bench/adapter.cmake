# Adapter forward+backward timings (issue 3): bench_adapter [--quick]
if(HYPLORA_HAVE_CPU_BACKEND)
  hyplora_add_bench(bench_adapter SOURCES bench_adapter.cpp LIBS hyplora_cpu)
endif()
