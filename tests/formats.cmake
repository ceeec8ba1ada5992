# Tokenizer and file formats (GGUF, safetensors, atomic writes) — trainer/tokenizer, trainer/formats.
if(TARGET hyplora_runtime)
  hyplora_add_test(test_tokenizer SOURCES test_tokenizer.cpp LIBS hyplora_runtime LABELS formats)
  hyplora_add_test(test_formats SOURCES test_formats.cpp LIBS hyplora_runtime LABELS formats)
endif()

# `hyplora convert` on the shared stories260K must reproduce ggml's own GGUF byte for byte.
# Registered always: without the shared reference it reports SKIPPED (exit 77) instead of vanishing.
if(TARGET hyplora_cli)
  add_test(NAME cli_convert_stories260K
           COMMAND sh -c "if [ ! -f \"${HYPLORA_SHARED_DIR}/reference/stories260K.gguf\" ]; then echo \"SKIPPED: ${HYPLORA_SHARED_DIR}/reference/stories260K.gguf not found\"; exit 77; fi; out=\$(mktemp -d) && \"$<TARGET_FILE:hyplora_cli>\" convert --model \"${HYPLORA_SHARED_DIR}/models/stories260K/stories260K.bin\" --tokenizer \"${HYPLORA_SHARED_DIR}/models/stories260K/tok512.bin\" --out \"\$out/stories260K.gguf\" && cmp \"\$out/stories260K.gguf\" \"${HYPLORA_SHARED_DIR}/reference/stories260K.gguf\"; rc=\$?; rm -rf \"\$out\"; exit \$rc")
  set_tests_properties(cli_convert_stories260K PROPERTIES LABELS formats SKIP_RETURN_CODE 77)
endif()
