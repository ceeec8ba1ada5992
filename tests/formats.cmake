# Tokenizer and file formats (GGUF, safetensors, atomic writes) — trainer/tokenizer, trainer/formats.
if(TARGET hyplora_runtime)
  hyplora_add_test(test_tokenizer SOURCES test_tokenizer.cpp LIBS hyplora_runtime LABELS formats)
  hyplora_add_test(test_formats SOURCES test_formats.cpp LIBS hyplora_runtime LABELS formats)
endif()
