# The reference trainer (issue 5): schedule, config merge, sha256, adapter files, checkpoints,
# training on stories260K, resume, NaN policy, bad data.
if(TARGET hyplora_runtime)
  find_package(CLI11 CONFIG QUIET)
  hyplora_add_test(test_trainer SOURCES test_trainer.cpp LIBS hyplora_runtime CLI11::CLI11 LABELS trainer)
endif()
