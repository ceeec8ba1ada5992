#pragma once
// The optimiser of a training run over the AdapterSet's parameters: AdamW with decoupled weight
// decay (the library's element update, hyplora/optim/adamw.hpp), its moments in one flat buffer
// over all adapters (unit order, as AdapterSet::gather_params()) so a checkpoint holds them whole.
//   m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,
//   p -= lr * ( m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd p )
// (wd on A and B only; the raw curvature and the norm scale are not decayed)
#include <vector>

#include "train/adapter_set.hpp"

namespace hyplora::train {

struct AdamWSettings {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdapterOptimizer {
 public:
  AdapterOptimizer(const AdapterSet& set, AdamWSettings settings);
  /// One update with learning rate lr from the units' gradients (t = updates done before + 1).
  void step(AdapterSet& set, double lr);
  long updates() const { return t_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }
  /// Restores the state of a checkpoint (sizes checked).
  void restore(std::vector<float> m, std::vector<float> v, long updates);

 private:
  AdamWSettings s_;
  std::vector<float> m_, v_;
  long t_ = 0;
};

}  // namespace hyplora::train
