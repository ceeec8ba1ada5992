#include "train/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace hyplora::train {

DecayKind parse_decay(const std::string& name) {
  if (name == "cosine") return DecayKind::cosine;
  if (name == "linear") return DecayKind::linear;
  if (name == "constant" || name == "none") return DecayKind::constant;
  throw std::invalid_argument("learning-rate decay must be cosine, linear or constant, got '" + name + "'");
}

const char* decay_name(DecayKind kind) {
  switch (kind) {
    case DecayKind::cosine: return "cosine";
    case DecayKind::linear: return "linear";
    case DecayKind::constant: return "constant";
  }
  return "?";
}

void LrSchedule::validate() const {
  if (!(peak >= 0.0) || !std::isfinite(peak)) throw std::invalid_argument("learning rate must be finite and >= 0");
  if (warmup_steps < 0) throw std::invalid_argument("warm-up steps must be >= 0");
  if (total_steps < 1) throw std::invalid_argument("total steps must be >= 1");
  if (!(min_ratio >= 0.0 && min_ratio <= 1.0)) throw std::invalid_argument("min lr ratio must be in [0, 1]");
}

double LrSchedule::at(long step) const {
  if (step < warmup_steps) return peak * double(step + 1) / double(warmup_steps);
  if (decay == DecayKind::constant) return peak;
  const double floor = min_ratio * peak;
  const long span = std::max<long>(1, total_steps - warmup_steps);
  const double p = std::clamp(double(step - warmup_steps) / double(span), 0.0, 1.0);
  if (decay == DecayKind::linear) return floor + (peak - floor) * (1.0 - p);
  return floor + (peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
}

}  // namespace hyplora::train
