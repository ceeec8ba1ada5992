# The reference trainer (issue 5): schedule, config merge, sha256, adapter files, checkpoints,
# training on stories260K, resume, NaN policy, bad data.
if(TARGET hyplora_runtime)
  find_package(CLI11 CONFIG QUIET)
  hyplora_add_test(test_trainer SOURCES test_trainer.cpp LIBS hyplora_runtime CLI11::CLI11 LABELS trainer)
endif()
# The evaluation protocol: the new-token limit of evaluation (auto per set, cut generations counted)
# and the refusal of registered test sets as training or validation data (train and the sweep grid).
if(TARGET hyplora_runtime)
  hyplora_add_test(test_eval_protocol SOURCES test_eval_protocol.cpp LIBS hyplora_runtime LABELS trainer)
  if(TARGET hyplora_cli)
    target_compile_definitions(test_eval_protocol PRIVATE HYPLORA_CLI_PATH="$<TARGET_FILE:hyplora_cli>")
    add_dependencies(test_eval_protocol hyplora_cli)
  endif()
endif()
