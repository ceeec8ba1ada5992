# Adapters, backends and optimisers (issue 3).
if(HYPLORA_HAVE_CPU_BACKEND)
  hyplora_add_test(test_adapter SOURCES test_adapter.cpp LIBS hyplora_cpu LABELS adapter)

  if(HYPLORA_HAVE_THRUST_OMP)
  endif()
endif()
if(HYPLORA_CUDA)
  hyplora_add_test(test_backend_cuda SOURCES test_backend_cuda.cu LIBS CUDA::cublas LABELS "backend;cuda")
  set_target_properties(test_backend_cuda PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
endif()
