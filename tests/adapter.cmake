# Adapters, backends and optimisers (issue 3).
if(HYPLORA_HAVE_CPU_BACKEND)
  hyplora_add_test(test_adapter SOURCES test_adapter.cpp LIBS hyplora_cpu LABELS adapter)
  # The cases whose float results depend on the radial factors, again over the float forms that CUDA
  # device code compiles (HYPLORA_HOST_FLOAT_VIA_DOUBLE=0, core/config.hpp): the row functors of the
  # CUDA path are these, so a CPU checks their float math against double (docs/adapters.md run 14).
  hyplora_add_test(test_adapter_device_forms SOURCES test_adapter.cpp LIBS hyplora_cpu LABELS adapter
                   DEFINITIONS HYPLORA_HOST_FLOAT_VIA_DOUBLE=0
                   TEST_SPEC "[maps],[naive],[float]~[simd]" TEST_PREFIX "device_forms.")
  hyplora_add_test(test_optim SOURCES test_optim.cpp LIBS hyplora_cpu LABELS optim)
  if(HYPLORA_HAVE_THRUST_OMP)
    hyplora_add_test(test_backend_thrust SOURCES test_backend_thrust.cpp LIBS hyplora_cpu ThrustOMP LABELS backend)
    if(HYPLORA_SANITIZE)
      # Thrust's own thrust::reference::assign_from (CCCL thrust/detail/reference.h) binds a reference to
      # a null system pointer by design (tag dispatch only, never read); UBSan's 'null' check flags it.
      # The rest of UBSan and all of ASan stay on for this test. A source property, so that the flag
      # comes after the target's -fsanitize=undefined on the command line.
      set_property(SOURCE test_backend_thrust.cpp APPEND PROPERTY COMPILE_OPTIONS -fno-sanitize=null)
    endif()
  endif()
endif()
if(HYPLORA_CUDA)
  hyplora_add_test(test_backend_cuda SOURCES test_backend_cuda.cu LIBS CUDA::cublas LABELS cuda)
  # CUDA's own Thrust (CCCL under the toolkit), never the distribution's /usr/include/thrust.
  target_include_directories(test_backend_cuda BEFORE PRIVATE ${CUDAToolkit_INCLUDE_DIRS}/cccl ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(test_backend_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
endif()
if(HYPLORA_HAVE_CPU_BACKEND)
  hyplora_add_test(test_adapter_geometry SOURCES test_adapter_geometry.cpp LIBS hyplora_cpu LABELS adapter)
endif()
