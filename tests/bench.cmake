# The bench suite end to end in --ci mode (items 1-3 of bench/run.sh: geometry, adapter, model at tiny
# sizes, no timing claims): every step runs, the tables exist, and where PyTorch is installed the peer
# cross-check agrees within its float32 tolerance and detects a planted disagreement. Skipped (77)
# when the bench executables are not built. One label only (a list breaks SKIP_RETURN_CODE).
if(HYPLORA_BUILD_BENCH)
  add_test(NAME bench_suite_ci
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bench_ci_check.sh ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/bench_suite_ci)
  set_tests_properties(bench_suite_ci PROPERTIES LABELS bench SKIP_RETURN_CODE 77 TIMEOUT 900
                       ENVIRONMENT "HYPLORA_SHARED_DIR=${HYPLORA_SHARED_DIR}")
  # the factor bench at a small grid: it exits 3 when a float factor is more than 1 ulp off
  add_test(NAME bench_factors_quick COMMAND bench_factors --reps 3 --points 20000)
  set_tests_properties(bench_factors_quick PROPERTIES LABELS bench TIMEOUT 120)
  # a PyTorch peer that fails keeps our own figures (a fake python: runs everywhere)
  add_test(NAME bench_peer_failure
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bench_peer_failure_check.sh ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/bench_peer_failure)
  set_tests_properties(bench_peer_failure PROPERTIES LABELS bench SKIP_RETURN_CODE 77 TIMEOUT 300
                       ENVIRONMENT "HYPLORA_SHARED_DIR=${HYPLORA_SHARED_DIR}")
endif()
