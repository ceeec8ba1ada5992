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
# The geometry tests again with host float on the float forms that CUDA device code compiles, so that
# a CPU checks them (without a GPU they were checked nowhere); [host_float] cases test the double
# evaluation itself and are left out.
hyplora_add_test(test_manifold_conformance_device_forms SOURCES test_manifold_conformance.cpp LABELS geometry
                 DEFINITIONS HYPLORA_HOST_FLOAT_VIA_DOUBLE=0 TEST_PREFIX "device_forms.")
hyplora_add_test(test_manifold_vjp_device_forms SOURCES test_manifold_vjp.cpp LABELS geometry
                 DEFINITIONS HYPLORA_HOST_FLOAT_VIA_DOUBLE=0 TEST_PREFIX "device_forms.")
hyplora_add_test(test_manifold_models_device_forms SOURCES test_manifold_models.cpp LIBS ${_hyplora_geometry_omp}
                 LABELS geometry DEFINITIONS HYPLORA_HOST_FLOAT_VIA_DOUBLE=0
                 TEST_SPEC "~[host_float]" TEST_PREFIX "device_forms.")
