#pragma once
// Riemannian SGD and Riemannian Adam (Becigneul & Ganea 2019; geoopt's RiemannianSGD / RiemannianAdam)
// over a flat buffer of `count` points of `dim` stored coordinates each, on any manifold of
// include/hyplora/manifold/ (Lorentz, PoincareBall, Euclidean): it uses only the manifold's
// egrad2rgrad, expmap, transp, projx, proju and inner, so the geometry is written once.
//
//   r = egrad2rgrad(x, g)
//   SGD:  b = mu b + r (momentum),  y = exp_x(-lr b),  b <- P_{x->y} b
//   Adam: m = b1 m + (1-b1) r,  v = b2 v + (1-b2) <r,r>_x  (one second moment per point; on the
//         hyperboloid <r,r>_x from the Euclidean gradient, Lorentz::rgrad_sqnorm),
//         y = exp_x(-lr m_hat / (sqrt(v_hat) + eps)),  m <- P_{x->y} m
//   then x <- projx(y), and the transported moment is re-projected onto T_x.
// The curvature K is the manifold's (fixed here); a learnable K is trained through its raw
// parameter (K = softplus(k) + K_min > 0 by construction) with AdamW.
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "hyplora/core/config.hpp"
#include "hyplora/core/constants.hpp"
#include "hyplora/manifold/vector_ops.hpp"
#include "hyplora/optim/bias_correction.hpp"
#include "hyplora/optim/state_check.hpp"

namespace hyplora::optim {

struct RiemannianSGDConfig {
  double lr = 1e-2;
  double momentum = 0.0;
};
struct RiemannianAdamConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

namespace detail {
inline void check_shape(index_t count, index_t dim, const char* who) {
  if (count < 0 || dim < 1)
    throw std::invalid_argument(std::string(who) + ": need count >= 0 and dim >= 1, got count " +
                                std::to_string(count) + ", dim " + std::to_string(dim));
}
template <class T>
void check_grads(const T* g, index_t n, const char* who) {
  for (index_t i = 0; i < n; ++i)
    if (!std::isfinite(double(g[i])))
      throw std::invalid_argument(std::string(who) + ": gradient[" + std::to_string(i) + "] is not finite");
}
/// Every point must lie on the manifold before a step (Manifold::check_point: finite, on the upper
/// sheet, inside the ball). On the hyperboloid a relative residual up to 10 eps^(1/3) is drift that
/// the step's projx corrects; beyond it the point is an error that names it (an exp map from a point
/// far off the hyperboloid diverges: (2, 0, 0) at K = 1 went to (2e5, ...) in one step).
template <class Manifold, class T>
void check_points(const Manifold& M, const T* points, index_t count, index_t dim, const char* who) {
  for (index_t i = 0; i < count; ++i) {
    const std::string name = "point " + std::to_string(i);
    try {
      if constexpr (requires { Manifold::default_tolerance(dim); }) {
        // the drift allowance only where the residual is relative (the hyperboloid); the ball's is
        // the absolute excess of c|x|^2 over 1, where 10 eps^(1/3) admitted points outside it
        const T drift = Manifold::extra_coords == 1 ? T(10) * std::cbrt(Constants<T>::epsilon()) : T(0);
        const T tol = Manifold::default_tolerance(dim) > drift ? Manifold::default_tolerance(dim) : drift;
        M.check_point(points + i * dim, dim, name.c_str(), tol);
      } else {
        M.check_point(points + i * dim, dim, name.c_str());
      }
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(who) + ": " + e.what());
    }
  }
}
/// <r,r>_x of r = egrad2rgrad(x, g): the manifold's cancellation-free form from g where it has one
/// (Lorentz: from r, the Minkowski form cancels by x_0^2/K far from the origin), its metric otherwise.
template <class Manifold, class T>
T rgrad_sqnorm(const Manifold& M, const T* x, const T* g, const T* r, index_t dim) {
  if constexpr (requires { M.rgrad_sqnorm(x, g, dim); }) return M.rgrad_sqnorm(x, g, dim);
  else return M.inner(x, r, r, dim);
}
/// After a step in which point `first_bad` (< count) became non-finite: the error that says so.
[[noreturn]] inline void throw_diverged(const char* who, index_t first_bad, double lr) {
  throw std::runtime_error(std::string(who) + ": point " + std::to_string(first_bad) +
                           " is not finite after this step (the step left the manifold's range: lr " +
                           std::to_string(lr) + " too large for these gradients?); the other points were updated");
}
}  // namespace detail

template <class Manifold>
class RiemannianSGD {
 public:
  using T = typename Manifold::scalar_type;
  RiemannianSGD(Manifold M, index_t count, index_t dim, RiemannianSGDConfig cfg = {})
      : M_(M), count_(count), dim_(dim), cfg_(cfg) {
    detail::check_shape(count, dim, "RiemannianSGD");
    if (!(cfg.lr >= 0.0) || !std::isfinite(cfg.lr) || !(cfg.momentum >= 0.0 && cfg.momentum < 1.0))
      throw std::invalid_argument("RiemannianSGD: lr must be >= 0 and finite, momentum in [0, 1)");
    detail::check_setting_in_scalar<T>(cfg.lr, detail::SettingKind::magnitude, "RiemannianSGD", "lr");
    detail::check_setting_in_scalar<T>(cfg.momentum, detail::SettingKind::beta, "RiemannianSGD", "momentum");
    if (cfg.momentum > 0.0) buf_.assign(std::size_t(count * dim), T(0));
  }
  /// points: count x dim (updated in place), egrads: Euclidean gradients of the same shape.
  /// Throws before changing anything when a gradient is not finite or a point is off the manifold;
  /// throws std::runtime_error after the step when it made a point non-finite (naming the first).
  void step(T* points, const T* egrads) {
    detail::check_grads(egrads, count_ * dim_, "RiemannianSGD::step");
    detail::check_points(M_, points, count_, dim_, "RiemannianSGD::step");
    const T lr = T(cfg_.lr), mu = T(cfg_.momentum);
    index_t first_bad = count_;
#if defined(_OPENMP)
#pragma omp parallel if (count_ > 256)
#endif
    {
    // scratch per thread, allocated once per step (not once per point)
    std::vector<T> r(static_cast<std::size_t>(dim_)), y(r.size()), step(r.size());
#if defined(_OPENMP)
#pragma omp for schedule(static) reduction(min : first_bad)
#endif
    for (index_t i = 0; i < count_; ++i) {
      T* x = points + i * dim_;
      M_.egrad2rgrad(x, egrads + i * dim_, r.data(), dim_);
      T* dir = r.data();
      if (mu > T(0)) {
        T* b = buf_.data() + i * dim_;
        for (index_t j = 0; j < dim_; ++j) b[j] = mu * b[j] + r[std::size_t(j)];
        dir = b;
      }
      for (index_t j = 0; j < dim_; ++j) step[std::size_t(j)] = -lr * dir[j];
      M_.expmap(x, step.data(), y.data(), dim_);
      if (mu > T(0)) {
        T* b = buf_.data() + i * dim_;
        M_.transp(x, y.data(), b, b, dim_);
        M_.projx(y.data(), x, dim_);
        M_.proju(x, b, b, dim_);
      } else {
        M_.projx(y.data(), x, dim_);
      }
      if (!vec::all_finite(x, dim_) && i < first_bad) first_bad = i;  // a diverging lr overflows expmap
    }
    }  // omp parallel
    ++t_;
    if (first_bad < count_) detail::throw_diverged("RiemannianSGD::step", first_bad, cfg_.lr);
  }
  const Manifold& manifold() const { return M_; }
  long steps() const { return t_; }
  /// The momentum buffer (count x dim tangent vectors at the current points; empty without momentum),
  /// to save a checkpoint with the points.
  const std::vector<T>& momentum_buffer() const { return buf_; }
  /// Restores a checkpoint's state, saved with the points it is tangent at: the buffer's size and
  /// values and t >= 0 are checked (std::invalid_argument naming it, before changing anything).
  void load_state(const std::vector<T>& momentum, long t) {
    detail::check_state_buffer(momentum, buf_.size(), "RiemannianSGD::load_state", "momentum buffer");
    detail::check_step_count(t, "RiemannianSGD::load_state");
    buf_ = momentum;
    t_ = t;
  }

 private:
  Manifold M_;
  index_t count_, dim_;
  RiemannianSGDConfig cfg_;
  std::vector<T> buf_;
  long t_ = 0;
};

template <class Manifold>
class RiemannianAdam {
 public:
  using T = typename Manifold::scalar_type;
  RiemannianAdam(Manifold M, index_t count, index_t dim, RiemannianAdamConfig cfg = {})
      : M_(M), count_(count), dim_(dim), cfg_(cfg) {
    detail::check_shape(count, dim, "RiemannianAdam");
    if (!(cfg.lr >= 0.0) || !std::isfinite(cfg.lr) || !(cfg.beta1 >= 0.0 && cfg.beta1 < 1.0) ||
        !(cfg.beta2 >= 0.0 && cfg.beta2 < 1.0) || !(cfg.eps > 0.0) || !std::isfinite(cfg.eps))
      throw std::invalid_argument("RiemannianAdam: need a finite lr >= 0, betas in [0, 1), a finite eps > 0");
    detail::check_setting_in_scalar<T>(cfg.lr, detail::SettingKind::magnitude, "RiemannianAdam", "lr");
    detail::check_setting_in_scalar<T>(cfg.beta1, detail::SettingKind::beta, "RiemannianAdam", "beta1");
    detail::check_setting_in_scalar<T>(cfg.beta2, detail::SettingKind::beta, "RiemannianAdam", "beta2");
    detail::check_setting_in_scalar<T>(cfg.eps, detail::SettingKind::magnitude, "RiemannianAdam", "eps");
    m_.assign(std::size_t(count * dim), T(0));
    v_.assign(std::size_t(count), T(0));
  }
  /// Throws before changing anything when a gradient is not finite or a point is off the manifold;
  /// throws std::runtime_error after the step when it made a point non-finite (naming the first).
  void step(T* points, const T* egrads) {
    detail::check_grads(egrads, count_ * dim_, "RiemannianAdam::step");
    detail::check_points(M_, points, count_, dim_, "RiemannianAdam::step");
    ++t_;
    const T lr = T(cfg_.lr), b1 = T(cfg_.beta1), b2 = T(cfg_.beta2), eps = T(cfg_.eps);
    const BiasCorrections<T> bc = bias_corrections(b1, b2, t_);
    const T bc1 = bc.first, bc2 = bc.second;
    index_t first_bad = count_;
#if defined(_OPENMP)
#pragma omp parallel if (count_ > 256)
#endif
    {
    std::vector<T> r(static_cast<std::size_t>(dim_)), y(r.size()), step(r.size());  // per thread, once per step
#if defined(_OPENMP)
#pragma omp for schedule(static) reduction(min : first_bad)
#endif
    for (index_t i = 0; i < count_; ++i) {
      T* x = points + i * dim_;
      T* m = m_.data() + i * dim_;
      M_.egrad2rgrad(x, egrads + i * dim_, r.data(), dim_);
      for (index_t j = 0; j < dim_; ++j) m[j] = b1 * m[j] + (T(1) - b1) * r[std::size_t(j)];
      T rr = detail::rgrad_sqnorm(M_, x, egrads + i * dim_, r.data(), dim_);
      rr = rr > T(0) ? rr : T(0);
      v_[std::size_t(i)] = b2 * v_[std::size_t(i)] + (T(1) - b2) * rr;
      const T denom = std::sqrt(v_[std::size_t(i)] / bc2) + eps;
      for (index_t j = 0; j < dim_; ++j) step[std::size_t(j)] = -lr * (m[j] / bc1) / denom;
      M_.expmap(x, step.data(), y.data(), dim_);
      M_.transp(x, y.data(), m, m, dim_);
      M_.projx(y.data(), x, dim_);
      M_.proju(x, m, m, dim_);
      if (!vec::all_finite(x, dim_) && i < first_bad) first_bad = i;  // a diverging lr overflows expmap
    }
    }  // omp parallel
    if (first_bad < count_) detail::throw_diverged("RiemannianAdam::step", first_bad, cfg_.lr);
  }
  const Manifold& manifold() const { return M_; }
  long steps() const { return t_; }
  /// The state, to save a checkpoint with the points: m (count x dim, tangent at the points) and v
  /// (one value per point).
  const std::vector<T>& first_moment() const { return m_; }
  const std::vector<T>& second_moment() const { return v_; }
  /// Restores a checkpoint's state (sizes, finite values, v >= 0, t >= 0 checked: std::invalid_argument
  /// naming the buffer, before changing anything).
  void load_state(const std::vector<T>& m, const std::vector<T>& v, long t) {
    detail::check_state_buffer(m, m_.size(), "RiemannianAdam::load_state", "first moment");
    detail::check_state_buffer(v, v_.size(), "RiemannianAdam::load_state", "second moment",
                               detail::StateSign::non_negative);
    detail::check_step_count(t, "RiemannianAdam::load_state");
    m_ = m;
    v_ = v;
    t_ = t;
  }

 private:
  Manifold M_;
  index_t count_, dim_;
  RiemannianAdamConfig cfg_;
  std::vector<T> m_, v_;
  long t_ = 0;
};

}  // namespace hyplora::optim
