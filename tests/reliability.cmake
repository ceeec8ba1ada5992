# Reliability (issue 8): bad input to every reader, regression inputs found by fuzzing
# (tests/regression/<reader>/), atomic writes under SIGKILL; real training runs of the CLI killed,
# interrupted and fed NaN (label slow: the sanitizer stage of CI skips them). Fuzz targets: fuzz/,
# scripts/fuzz.sh.
if(TARGET hyplora_runtime)
  find_package(CLI11 CONFIG REQUIRED)
  hyplora_add_test(test_reliability SOURCES test_reliability.cpp LIBS hyplora_runtime CLI11::CLI11 LABELS reliability)
  if(TARGET hyplora_cli)
    hyplora_add_test(test_reliability_runs SOURCES test_reliability_runs.cpp LIBS hyplora_runtime LABELS slow)
    target_compile_definitions(test_reliability_runs PRIVATE HYPLORA_CLI_PATH="$<TARGET_FILE:hyplora_cli>")
    add_dependencies(test_reliability_runs hyplora_cli)
  endif()
endif()
