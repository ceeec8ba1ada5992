# The sweep harness (issue 9): grid expansion and parsing, aggregation on synthetic cells with known
# answers, and a tiny grid on stories260K that runs end to end and resumes without re-running cells.
if(TARGET hyplora_runtime)
  hyplora_add_test(test_sweep SOURCES test_sweep.cpp LIBS hyplora_runtime LABELS sweep)
endif()
