#pragma once
// Hyperbolicity and frequency analyses (SPEC section 4): Gromov delta, discrete power-law fit,
// embedding norm against token frequency.
#include "hyplora/analysis/distance_matrix.hpp"
#include "hyplora/analysis/gromov_delta.hpp"
#include "hyplora/analysis/max_min_product.hpp"
#include "hyplora/analysis/norm_frequency.hpp"
#include "hyplora/analysis/power_law.hpp"
