#pragma once
// Settings of one adapter (SPEC section 3): shapes, rank, alpha, dropout, initialisation,
// curvature and input norm scale.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "hyplora/core/config.hpp"
#include "hyplora/core/format.hpp"

namespace hyplora::adapter {

/// Where the curvature scale K comes from (hyperbolic variants only).
enum class CurvatureMode {
  fixed,      ///< K = K_init, no gradient
  learnable,  ///< K = softplus(k) + K_min, raw k stored in the adapter's flat parameter buffer
  shared      ///< K = softplus(k) + K_min with k in a SharedCurvature<T> owned elsewhere (set_shared_curvature)
};

/// How the input norm scale s of u = lift(x / s) is treated.
enum class ScaleMode {
  automatic,  ///< the variant's default: learnable for paper, fixed for the other scaled variants, none for lora/naive
  none,       ///< s = 1, not stored
  fixed,      ///< s = scale_init, not trained
  learnable   ///< s stored in the flat parameter buffer and trained
};

struct AdapterConfig {
  index_t d_in = 0;
  index_t d_out = 0;
  index_t rank = 8;
  double alpha = 16.0;          ///< branch scaling is alpha / rank
  double dropout = 0.0;         ///< probability of zeroing an input element of the branch (training only)
  std::uint64_t seed = 0;       ///< seeds A's Kaiming-uniform init and the dropout masks
  CurvatureMode curvature = CurvatureMode::fixed;
  double K_init = 1.0;          ///< initial K (fixed / learnable); ignored by the paper variant (k_init)
  double K_min = 1e-6;
  ScaleMode scale = ScaleMode::automatic;
  double scale_init = 0.0;      ///< 0 means sqrt(d_in)
  // paper-compatible settings (used by the `paper` variant only; defaults = marlin-codes/HypLoRA)
  double paper_k_init = 1.0;        ///< raw curvature parameter k, K = softplus(k) + K_min
  double paper_k_grad_clip = 0.01;  ///< |dL/dk| clamp per backward call
  double paper_sinh_clamp = 12.0;   ///< sinh argument clamp of the lift
  double paper_theta_eps = 1e-6;    ///< theta - 1 kept >= eps in the lower map's sqrt(2 (theta - 1)) (arcosh near 1)

  double scaling() const { return alpha / double(rank); }
  double resolved_scale_init() const { return scale_init > 0.0 ? scale_init : std::sqrt(double(d_in)); }

  /// Throws std::invalid_argument naming the bad setting.
  void validate() const {
    auto bad = [](const std::string& what) { throw std::invalid_argument("AdapterConfig: " + what); };
    if (d_in <= 0) bad("d_in must be positive, got " + std::to_string(d_in));
    if (d_out <= 0) bad("d_out must be positive, got " + std::to_string(d_out));
    if (rank <= 0) bad("rank must be positive, got " + std::to_string(rank));
    if (!std::isfinite(alpha)) bad("alpha is not finite");
    if (!(dropout >= 0.0 && dropout < 1.0)) bad("dropout must be in [0, 1), got " + format_number(dropout));
    if (!(K_init > 0.0) || !std::isfinite(K_init)) bad("K_init must be positive and finite, got " + format_number(K_init));
    if (!(K_min > 0.0) || !std::isfinite(K_min)) bad("K_min must be positive and finite");
    // (a shared curvature takes K and K_min from its SharedCurvature: both settings are ignored)
    if (curvature == CurvatureMode::learnable && !(K_init > K_min)) bad("learnable K_init must exceed K_min");
    // a scale is divided by: it must be a normal float (1/s finite in the adapter's scalar type too)
    if (!(scale_init == 0.0 || (scale_init >= 1e-30 && scale_init <= 1e30)))
      bad("scale_init must be 0 (= sqrt(d_in)) or in [1e-30, 1e30], got " + format_number(scale_init));
    if (!std::isfinite(paper_k_init)) bad("paper_k_init is not finite");
    if (!(paper_sinh_clamp > 0.0) || !std::isfinite(paper_sinh_clamp)) bad("paper_sinh_clamp must be positive and finite");
    if (!(paper_theta_eps > 0.0) || !std::isfinite(paper_theta_eps)) bad("paper_theta_eps must be positive and finite");
    if (!(paper_k_grad_clip > 0.0)) bad("paper_k_grad_clip must be positive");
  }
};

/// A curvature parameter shared by several adapters: K = softplus(raw) + K_min. Adapters
/// accumulate dL/draw into `grad`; the owner steps `raw` with its optimiser and zeroes `grad`.
template <class T>
struct SharedCurvature {
  T raw = T(0.5413248546129181);  // softplus^-1(1): K = 1 at start
  T grad = T(0);
  T K_min = T(1e-6);
};

}  // namespace hyplora::adapter
