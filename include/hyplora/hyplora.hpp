#pragma once
// Umbrella header of hyplora: #include <hyplora/hyplora.hpp>.

// ---- core and geometry (docs/geometry.md) ---------------------------------------------------
#include "hyplora/core/config.hpp"
#include "hyplora/core/constants.hpp"
#include "hyplora/core/scalar_math.hpp"
#include "hyplora/curvature.hpp"
#include "hyplora/manifold/vector_ops.hpp"
#include "hyplora/manifold/sampling.hpp"
#include "hyplora/manifold/euclidean.hpp"
#include "hyplora/manifold/lorentz.hpp"
#include "hyplora/manifold/poincare.hpp"
#include "hyplora/manifold/isometry.hpp"
#include "hyplora/manifold/batched.hpp"

// ---- adapters, backends, optimisers, analysis ------------------------------------------------
// Other areas append their public headers below this line (one #include per header).
#include "hyplora/analysis/analysis.hpp"
// adapters and optimisers (docs/adapters.md)
#include "hyplora/adapter/config.hpp"
#include "hyplora/adapter/variants.hpp"
#include "hyplora/adapter/row_kernels.hpp"
#include "hyplora/adapter/adapter.hpp"
#include "hyplora/adapter/dispatch.hpp"
#include "hyplora/optim/adamw.hpp"
#include "hyplora/optim/riemannian.hpp"
// the CPU backend needs xtensor and CBLAS (target hyplora::cpu); the Thrust backend is included on its own
#if __has_include(<xtensor/xtensor.hpp>) && __has_include(<cblas.h>)
#include "hyplora/backend/cpu.hpp"
#endif
