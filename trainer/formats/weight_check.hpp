#pragma once
// What a weight read from a model, adapter or checkpoint file may be: finite, and of a magnitude no
// trained network has. A flipped exponent bit turns a weight into ~1e38, which is finite: without
// this check such a file trains and evaluates to garbage with no NaN anywhere and exit 0. The
// readers report the tensor and the element.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

namespace hyplora::formats {

/// Default largest |weight| accepted. Trained LLM weights stay far below it (the shared stories260K:
/// 4.4; norm gains and embeddings of large models: tens to hundreds).
inline constexpr float kMaxWeightMagnitude = 1e6f;

/// The bound from the text of HYPLORA_MAX_WEIGHT: a positive finite number within float's range.
/// Throws std::invalid_argument naming the variable and the text otherwise.
inline float parse_max_weight(const char* text) {
  const std::string t = text ? text : "";
  char* end = nullptr;
  const double v = t.empty() ? 0.0 : std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !(v > 0.0) || !(v <= double(std::numeric_limits<float>::max())))
    throw std::invalid_argument("HYPLORA_MAX_WEIGHT must be a positive finite number (a bound on |weight|), got '" +
                                t + "'");
  return float(v);
}

/// The bound in use: kMaxWeightMagnitude, or HYPLORA_MAX_WEIGHT when set and not empty (for a
/// model whose trained weights do reach beyond 1e6; `HYPLORA_MAX_WEIGHT=` reads as unset, as an
/// empty variable does for most tools). Read once per process.
inline float max_weight_magnitude() {
  static const float bound = [] {
    const char* env = std::getenv("HYPLORA_MAX_WEIGHT");
    return env && *env ? parse_max_weight(env) : kMaxWeightMagnitude;
  }();
  return bound;
}

/// Empty when `v` is a usable weight, otherwise what is wrong, to follow "element 5 is ":
/// "NaN", "infinite", "-3.40282e+38 (beyond the 1e+06 that a trained weight could reach; ...)".
inline std::string weight_value_problem(float v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return "infinite";
  const float bound = max_weight_magnitude();
  if (std::fabs(v) <= bound) return {};
  char buf[192];
  std::snprintf(buf, sizeof buf,
                "%.6g (beyond the %g that a trained weight could reach; HYPLORA_MAX_WEIGHT sets another bound)",
                double(v), double(bound));
  return buf;
}

}  // namespace hyplora::formats
