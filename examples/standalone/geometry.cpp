// A small program an outside project could have written: curvature policies from <hyplora/...>.
#include <cstdio>
#include <hyplora/curvature.hpp>

int main() {
  hyplora::FixedCurvature<double, std::ratio<1>> fixed;
  hyplora::LearnableCurvature<double> learned(2.0);
  std::printf("fixed K = %g, learnable K = %g (dK/draw = %g)\n", fixed.K(), learned.K(), learned.dK_dparam());
  return 0;
}
