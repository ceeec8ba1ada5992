#pragma once
// AdamW (Loshchilov & Hutter) over a flat parameter buffer, as torch.optim.AdamW:
//   p <- p - lr wd p                               (decoupled weight decay)
//   m <- b1 m + (1-b1) g,   v <- b2 v + (1-b2) g^2
//   p <- p - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// State (m, v, t) in flat host buffers; params/grads are host pointers: the CPU backend's and
// Thrust-OMP's buffers, not a CUDA build's device vectors (copy them with params_to_host / params_from_host).
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "hyplora/core/config.hpp"
#include "hyplora/core/format.hpp"
#include "hyplora/optim/bias_correction.hpp"
#include "hyplora/optim/state_check.hpp"

namespace hyplora::optim {

struct AdamWConfig {
  double lr = 3e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;

  void validate() const {
    auto bad = [](const std::string& w) { throw std::invalid_argument("AdamWConfig: " + w); };
    if (!(lr >= 0.0) || !std::isfinite(lr)) bad("lr must be >= 0 and finite");
    if (!(beta1 >= 0.0 && beta1 < 1.0)) bad("beta1 must be in [0, 1)");
    if (!(beta2 >= 0.0 && beta2 < 1.0)) bad("beta2 must be in [0, 1)");
    if (!(eps > 0.0) || !std::isfinite(eps)) bad("eps must be positive and finite");
    if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay)) bad("weight_decay must be >= 0 and finite");
  }
};

/// One AdamW element update (shared by every loop that steps a buffer).
template <class T>
HYPLORA_INLINE void adamw_update(T& p, T g, T& m, T& v, T lr, T b1, T b2, T eps, T wd, T bc1, T bc2) {
  p -= lr * wd * p;
  m = b1 * m + (T(1) - b1) * g;
  v = b2 * v + (T(1) - b2) * g * g;
  p -= lr * (m / bc1) / (std::sqrt(v / bc2) + eps);
}

template <class T>
class AdamW {
 public:
  AdamW(index_t size, AdamWConfig cfg = {}) : cfg_(cfg) {
    if (size < 0) throw std::invalid_argument("AdamW: negative buffer size " + std::to_string(size));
    cfg_.validate();
    detail::check_setting_in_scalar<T>(cfg_.lr, detail::SettingKind::magnitude, "AdamW", "lr");
    detail::check_setting_in_scalar<T>(cfg_.beta1, detail::SettingKind::beta, "AdamW", "beta1");
    detail::check_setting_in_scalar<T>(cfg_.beta2, detail::SettingKind::beta, "AdamW", "beta2");
    detail::check_setting_in_scalar<T>(cfg_.eps, detail::SettingKind::magnitude, "AdamW", "eps");
    detail::check_setting_in_scalar<T>(cfg_.weight_decay, detail::SettingKind::magnitude, "AdamW", "weight_decay");
    m_.assign(std::size_t(size), T(0));
    v_.assign(std::size_t(size), T(0));
  }
  /// One step over params[0..size) with grads[0..size). Throws (before changing anything) when a
  /// gradient is NaN or infinite.
  void step(T* params, const T* grads) {
    const index_t n = size();
    for (index_t i = 0; i < n; ++i)
      if (!std::isfinite(double(grads[i])))
        throw std::invalid_argument("AdamW::step: gradient[" + std::to_string(i) + "] is not finite");
    ++t_;
    const T b1 = T(cfg_.beta1), b2 = T(cfg_.beta2);
    const BiasCorrections<T> bc = bias_corrections(b1, b2, t_);
    const T bc1 = bc.first, bc2 = bc.second;
    const T lr = T(cfg_.lr), eps = T(cfg_.eps), wd = T(cfg_.weight_decay);
    T* m = m_.data();
    T* v = v_.data();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n > 65536)
#endif
    for (index_t i = 0; i < n; ++i) adamw_update(params[i], grads[i], m[i], v[i], lr, b1, b2, eps, wd, bc1, bc2);
  }
  index_t size() const { return index_t(m_.size()); }
  long steps() const { return t_; }
  void set_lr(double lr) {
    if (!(lr >= 0.0) || !std::isfinite(lr)) throw std::invalid_argument("AdamW::set_lr: lr must be >= 0 and finite");
    // (a schedule may take lr towards 0: only an lr that overflows T is refused here)
    if (!std::isfinite(double(T(lr))))
      throw std::invalid_argument("AdamW::set_lr: lr = " + format_number(lr) + " overflows the optimiser's scalar type");
    cfg_.lr = lr;
  }
  const AdamWConfig& config() const { return cfg_; }
  /// Moment buffers (to save a checkpoint): m and v, each size() values. Read only: a checkpoint goes
  /// back by load_state, which checks it (a mutable buffer of another size made step() run past the
  /// caller's parameters).
  const std::vector<T>& first_moment() const { return m_; }
  const std::vector<T>& second_moment() const { return v_; }
  /// Restores a checkpoint's state: m and v of size() values each, finite, v >= 0, and the step
  /// count t >= 0. Throws std::invalid_argument naming the buffer, before changing anything.
  void load_state(const std::vector<T>& m, const std::vector<T>& v, long t) {
    detail::check_state_buffer(m, m_.size(), "AdamW::load_state", "first moment");
    detail::check_state_buffer(v, v_.size(), "AdamW::load_state", "second moment", detail::StateSign::non_negative);
    detail::check_step_count(t, "AdamW::load_state");
    m_ = m;
    v_ = v;
    t_ = t;
  }
  /// The step count (bias correction) of a resumed run: >= 0.
  void set_steps(long t) {
    detail::check_step_count(t, "AdamW::set_steps");
    t_ = t;
  }

 private:
  AdamWConfig cfg_;
  std::vector<T> m_, v_;
  long t_ = 0;
};

}  // namespace hyplora::optim
