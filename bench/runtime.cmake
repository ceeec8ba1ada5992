# LLM runtime: forward and training-step throughput on a stories15M-shaped model beside the
# machine's sgemm rate (and PyTorch CPU via bench/peers/torch_llama.py).
if(TARGET hyplora_runtime)
  hyplora_add_bench(bench_model SOURCES bench_model.cpp LIBS hyplora_runtime)
endif()
