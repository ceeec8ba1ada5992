#include "train/optimizer.hpp"

#include <cmath>
#include <stdexcept>

#include "hyplora/optim/adamw.hpp"

namespace hyplora::train {

AdapterOptimizer::AdapterOptimizer(const AdapterSet& set, AdamWSettings settings)
    : s_(settings), m_(std::size_t(set.num_params()), 0.0f), v_(std::size_t(set.num_params()), 0.0f) {}

void AdapterOptimizer::step(AdapterSet& set, double lr) {
  ++t_;
  // the bias corrections and the element update are the library's (hyplora/optim/adamw.hpp)
  const float b1 = float(s_.beta1), b2 = float(s_.beta2), eps = float(s_.eps), wd = float(s_.weight_decay);
  const optim::BiasCorrections<float> bc = optim::bias_corrections(b1, b2, t_);
  const float bc1 = bc.first, bc2 = bc.second;
  const float rate = float(lr);
  std::size_t off = 0;
  for (auto& u : set.units()) {
    float* p = u->params();
    const float* g = u->grads();
    float* m = m_.data() + off;
    float* v = v_.data() + off;
    const long n = u->num_params();
    // Weight decay on the factor matrices A and B only: the raw curvature and the norm scale are
    // scalars of the geometry (decay would pull K to softplus(0) + K_min and s to 0), excluded as
    // norm scales and biases are in the usual AdamW setup.
    const long n_decayed = u->offset_B() + long(u->rank()) * u->d_out();
    for (long i = 0; i < n; ++i)
      optim::adamw_update(p[i], g[i], m[i], v[i], rate, b1, b2, eps, i < n_decayed ? wd : 0.0f, bc1, bc2);
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
