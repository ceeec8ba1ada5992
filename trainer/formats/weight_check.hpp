#pragma once
// What a weight read from a model, adapter or checkpoint file may be: finite, and of a magnitude no
// trained network has. A flipped exponent bit turns a weight into ~1e38, which is finite: without
// this check such a file trains and evaluates to garbage with no NaN anywhere and exit 0. The
// readers report the tensor and the element.
#include <cmath>
#include <cstdio>
#include <string>

namespace hyplora::formats {

/// Largest |weight| accepted. Trained LLM weights stay far below it (the shared stories260K: 4.4;
/// norm gains and embeddings of large models: tens to hundreds).
inline constexpr float kMaxWeightMagnitude = 1e6f;

/// Empty when `v` is a usable weight, otherwise what is wrong, to follow "element 5 is ":
/// "NaN", "infinite", "-3.40282e+38 (beyond the 1e+06 that a trained weight could reach)".
inline std::string weight_value_problem(float v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return "infinite";
  if (std::fabs(v) <= kMaxWeightMagnitude) return {};
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.6g (beyond the %g that a trained weight could reach)", double(v),
                double(kMaxWeightMagnitude));
  return buf;
}

}  // namespace hyplora::formats
