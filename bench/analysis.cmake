# Hyperbolicity analysis benchmarks (include/hyplora/analysis/).
hyplora_add_bench(bench_gromov SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench_gromov.cpp
                  LIBS $<$<TARGET_EXISTS:OpenMP::OpenMP_CXX>:OpenMP::OpenMP_CXX>)
