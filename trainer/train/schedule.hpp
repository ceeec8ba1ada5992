#pragma once
// Learning-rate schedule: linear warm-up from 0 to the peak rate over `warmup_steps`, then a decay
// to `min_ratio * peak` at `total_steps`:
//   warm-up   lr(t) = peak * (t + 1) / warmup                       for t < warmup
//   cosine    lr(t) = floor + (peak - floor) * (1 + cos(pi * p)) / 2,  p = (t - warmup) / (total - warmup)
//   linear    lr(t) = floor + (peak - floor) * (1 - p)
//   constant  lr(t) = peak
// t counts optimiser steps from 0.
#include <string>

namespace hyplora::train {

enum class DecayKind { cosine, linear, constant };

DecayKind parse_decay(const std::string& name);  // throws std::invalid_argument naming the value
const char* decay_name(DecayKind kind);

struct LrSchedule {
  double peak = 3e-4;
  long warmup_steps = 0;
  long total_steps = 1;
  DecayKind decay = DecayKind::cosine;
  double min_ratio = 0.0;  // floor = min_ratio * peak

  /// Throws std::invalid_argument for non-finite or negative rates, total_steps < 1, min_ratio outside [0, 1].
  void validate() const;
  double at(long step) const;
};

}  // namespace hyplora::train
