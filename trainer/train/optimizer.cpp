#include "train/optimizer.hpp"

#include <cmath>
#include <stdexcept>

namespace hyplora::train {

AdapterOptimizer::AdapterOptimizer(const AdapterSet& set, AdamWSettings settings)
    : s_(settings), m_(std::size_t(set.num_params()), 0.0f), v_(std::size_t(set.num_params()), 0.0f) {}

void AdapterOptimizer::step(AdapterSet& set, double lr) {
  ++t_;
  const double bc1 = 1.0 - std::pow(s_.beta1, double(t_));
  const double bc2 = 1.0 - std::pow(s_.beta2, double(t_));
  const float b1 = float(s_.beta1), b2 = float(s_.beta2);
  const float step_size = float(lr / bc1);
  const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
  const float eps = float(s_.eps), decay = float(lr * s_.weight_decay);
  std::size_t off = 0;
  for (auto& u : set.units()) {
    float* p = u->params();
    const float* g = u->grads();
    float* m = m_.data() + off;
    float* v = v_.data() + off;
    const long n = u->num_params();
    for (long i = 0; i < n; ++i) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      p[i] -= decay * p[i];
      p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
    }
    off += std::size_t(n);
  }
}

void AdapterOptimizer::restore(std::vector<float> m, std::vector<float> v, long updates) {
  if (m.size() != m_.size() || v.size() != v_.size())
    throw std::invalid_argument("optimiser state has " + std::to_string(m.size()) + " values, the adapters " +
                                std::to_string(m_.size()));
  if (updates < 0) throw std::invalid_argument("optimiser update count is negative");
  m_ = std::move(m);
  v_ = std::move(v);
  t_ = updates;
}

}  // namespace hyplora::train
