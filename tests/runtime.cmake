# LLM runtime: the Llama model (KV-cache and batched paths, backward), llama2.c checkpoints,
# sampling and generation — trainer/model, trainer/formats/llama2c.
if(TARGET hyplora_runtime)
  hyplora_add_test(test_model SOURCES test_model.cpp LIBS hyplora_runtime LABELS runtime)
  hyplora_add_test(test_model_grad SOURCES test_model_grad.cpp LIBS hyplora_runtime LABELS runtime)
endif()
