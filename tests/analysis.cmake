# Hyperbolicity analysis (issue 6): Gromov delta, (max,min) kernel, power-law fit, norm vs frequency.
hyplora_add_test(test_analysis SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analysis.cpp
                 LIBS $<$<TARGET_EXISTS:OpenMP::OpenMP_CXX>:OpenMP::OpenMP_CXX>
                      $<$<TARGET_EXISTS:xtensor>:xtensor>
                 LABELS analysis)
if(TARGET xtensor)
  target_compile_definitions(test_analysis PRIVATE HYPLORA_TEST_WITH_XTENSOR=1)
endif()
