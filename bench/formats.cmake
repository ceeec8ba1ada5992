# Tokenizer encode throughput beside run.c's own algorithm (sorted vocabulary + bsearch).
if(TARGET hyplora_runtime)
  hyplora_add_bench(bench_tokenizer SOURCES bench_tokenizer.cpp LIBS hyplora_runtime)
endif()
