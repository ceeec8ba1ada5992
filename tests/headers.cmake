# Every public header compiles on its own, as a user's first `#include <hyplora/...>` would: one header
# per translation unit, syntax only, with the project's C++ compiler and the usage requirements of
# hyplora::cpu (and of ThrustOMP, for the Thrust backend). Headers for nvcc only (an #error outside
# __CUDACC__) are left out. Nothing is added to the build: the compiler runs when the test runs.
if(HYPLORA_HAVE_CPU_BACKEND)
  set(_targets hyplora_cpu)
  if(HYPLORA_HAVE_THRUST_OMP)
    list(APPEND _targets ThrustOMP)
  endif()
  set(_flags "-std=c++20")
  foreach(t ${_targets})
    string(APPEND _flags "\n$<JOIN:$<TARGET_PROPERTY:${t},INTERFACE_COMPILE_OPTIONS>,\n>"
                         "\n-I$<JOIN:$<TARGET_PROPERTY:${t},INTERFACE_INCLUDE_DIRECTORIES>,\n-I>"
                         "\n-D$<JOIN:$<TARGET_PROPERTY:${t},INTERFACE_COMPILE_DEFINITIONS>,\n-D>")
  endforeach()
  # the compiler's own include directories are not given again with -I (that would reorder them
  # against libstdc++'s #include_next), as CMake leaves them out of a target's command line
  foreach(d ${CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES})
    string(APPEND _flags "\n#implicit -I${d}")
  endforeach()
  # (one file per enabled language: OpenMP's options depend on it; the test reads the CXX one)
  file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/header_check_flags_$<COMPILE_LANGUAGE>.txt CONTENT "${_flags}\n")
  add_test(NAME headers_compile_alone
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/check_headers.sh ${CMAKE_CXX_COMPILER}
                   ${CMAKE_CURRENT_BINARY_DIR}/header_check_flags_CXX.txt ${PROJECT_SOURCE_DIR}/include)
  set_tests_properties(headers_compile_alone PROPERTIES LABELS headers TIMEOUT 600)
endif()
