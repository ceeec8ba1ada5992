# Geometry core: manifolds, isometries, VJPs (docs/geometry.md).
hyplora_add_test(test_manifold_conformance SOURCES test_manifold_conformance.cpp LABELS geometry)
hyplora_add_test(test_manifold_vjp SOURCES test_manifold_vjp.cpp LABELS geometry)
if(OpenMP_CXX_FOUND)
  set(_hyplora_geometry_omp OpenMP::OpenMP_CXX)  # the batched tests then run the OpenMP row loops
endif()
hyplora_add_test(test_manifold_models SOURCES test_manifold_models.cpp LIBS ${_hyplora_geometry_omp} LABELS geometry)
if(HYPLORA_CUDA)
  # Compiled by nvcc; at run time without a GPU it reports "skipped" (exit 77).
  add_executable(test_manifold_cuda test_manifold_cuda.cu)
  target_link_libraries(test_manifold_cuda PRIVATE hyplora)
  target_compile_options(test_manifold_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
  add_test(NAME test_manifold_cuda COMMAND test_manifold_cuda)
  set_tests_properties(test_manifold_cuda PROPERTIES SKIP_RETURN_CODE 77 LABELS "geometry;cuda")
endif()
# The device's float forms of the radial factors, on the CPU (tests/test_device_math.cpp).
hyplora_add_test(test_device_math SOURCES test_device_math.cpp LABELS geometry)
target_compile_definitions(test_device_math PRIVATE HYPLORA_HOST_FLOAT_VIA_DOUBLE=0)
