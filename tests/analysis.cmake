# Hyperbolicity analysis (issue 6): Gromov delta, (max,min) kernel, power-law fit, norm vs frequency.
hyplora_add_test(test_analysis SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analysis.cpp
                 LIBS $<$<TARGET_EXISTS:OpenMP::OpenMP_CXX>:OpenMP::OpenMP_CXX>
                      $<$<TARGET_EXISTS:xtensor>:xtensor>
                 LABELS analysis)
if(TARGET xtensor)
  target_compile_definitions(test_analysis PRIVATE HYPLORA_TEST_WITH_XTENSOR=1)
endif()

# The `hyplora analyze` command end to end (needs the trainer and the shared stories260K model).
if(TARGET hyplora_cli)
  add_test(NAME analyze_cli
           COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:hyplora_cli> -DOUT=${CMAKE_CURRENT_BINARY_DIR}/analyze_cli_out
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/analyze_cli_check.cmake.in)
  set_tests_properties(analyze_cli PROPERTIES LABELS "analysis;cli" SKIP_REGULAR_EXPRESSION "SKIPPED:"
                       ENVIRONMENT "HYPLORA_SHARED_DIR=${HYPLORA_SHARED_DIR}")
endif()
