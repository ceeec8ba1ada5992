// The float forms of core/scalar_math.hpp that device code compiles (libm calls and branches),
// run on the CPU: this target is built with HYPLORA_HOST_FLOAT_VIA_DOUBLE=0 (tests/geometry.cmake),
// so host float takes them instead of the double evaluation. Without it they would be checked only
// where a GPU is lent (tests/test_manifold_cuda.cu, and there only against the host within 64 eps).
// glibc's float functions and CUDA's differ by an ulp or two; the tolerances below are several ulp.
#include "radial_reference.hpp"

static_assert(HYPLORA_HOST_FLOAT_VIA_DOUBLE == 0, "tests/geometry.cmake builds this target with the device forms");

TEST_CASE("device math: float radial factors and their derivatives against long double", "[manifold][numerics]") {
  hyplora::test::check_radial_factors_against_long_double<float>();
}
