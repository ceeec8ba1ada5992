# Data loaders, prompt templates, built-in task, answer extraction, metrics (test_data) and the
# sweep statistics (test_statistics). The sources are compiled here into a small library of their
# own, so these tests do not depend on the rest of the trainer runtime building.
find_package(nlohmann_json CONFIG QUIET)
if(nlohmann_json_FOUND)
  file(GLOB _hyplora_data_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/trainer/data/*.cpp)
  add_library(hyplora_data_testlib STATIC ${_hyplora_data_sources}
              ${PROJECT_SOURCE_DIR}/trainer/eval/metrics.cpp ${PROJECT_SOURCE_DIR}/trainer/eval/statistics.cpp)
  target_include_directories(hyplora_data_testlib PUBLIC ${PROJECT_SOURCE_DIR}/trainer)
  target_link_libraries(hyplora_data_testlib PUBLIC nlohmann_json::nlohmann_json hyplora_project_options)
  target_compile_definitions(hyplora_data_testlib PRIVATE HYPLORA_SHARED_DIR_DEFAULT="${HYPLORA_SHARED_DIR}")
  hyplora_add_test(test_data SOURCES test_data.cpp LIBS hyplora_data_testlib LABELS data)
  hyplora_add_test(test_statistics SOURCES test_statistics.cpp LIBS hyplora_data_testlib LABELS data statistics)
else()
  message(WARNING "hyplora: nlohmann_json not found: test_data and test_statistics are off")
endif()
