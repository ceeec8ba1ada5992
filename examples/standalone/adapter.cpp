// An outside project's use of the adapters (target hyplora::cpu): a frozen 32 x 32 linear layer gets a
// HypLoRA adapter on the Lorentz model (rank 4, learnable curvature), and AdamW fits it to a teacher
// layer W + a rank-2 change, on the CPU backend. Prints the loss before and after, and the learned K.
#include <cmath>
#include <cstdio>
#include <vector>
#include <hyplora/hyplora.hpp>

int main() {
  using namespace hyplora;
  using T = float;
  constexpr index_t d = 32, n = 64;

  adapter::AdapterConfig cfg;
  cfg.d_in = d; cfg.d_out = d; cfg.rank = 4; cfg.alpha = 8; cfg.seed = 1;
  cfg.curvature = adapter::CurvatureMode::learnable;
  adapter::Adapter<adapter::HypLoraLorentz, T, backend::Cpu> layer(cfg);
  optim::AdamW<T> opt(layer.num_params(), {1e-2, 0.9, 0.999, 1e-8, 0.0});

  // frozen W, a teacher W + u v^T + p q^T, inputs X
  Rng rng(7);
  std::vector<T> W(d * d), teacher(d * d), X(n * d), target(n * d, T(0));
  std::vector<T> u(d), v(d), p(d), q(d);
  for (auto& w : W) w = rng.normal<T>() / std::sqrt(T(d));
  for (index_t i = 0; i < d; ++i) { u[i] = rng.normal<T>(); v[i] = rng.normal<T>() / d; p[i] = rng.normal<T>(); q[i] = rng.normal<T>() / d; }
  for (index_t o = 0; o < d; ++o)
    for (index_t i = 0; i < d; ++i) teacher[o * d + i] = W[o * d + i] + u[o] * v[i] + p[o] * q[i];
  for (auto& x : X) x = rng.normal<T>();
  for (index_t r = 0; r < n; ++r)
    for (index_t o = 0; o < d; ++o)
      for (index_t i = 0; i < d; ++i) target[r * d + o] += teacher[o * d + i] * X[r * d + i];

  // loss = mean over rows of |Y - target|^2 / 2;  dY = (Y - target) / n
  std::vector<T> Y(n * d), dY(n * d);
  auto step = [&](bool update) {
    layer.forward(W.data(), nullptr, X.data(), Y.data(), n, /*training=*/update);
    double loss = 0;
    for (index_t k = 0; k < n * d; ++k) {
      const T e = Y[k] - target[k];
      loss += 0.5 * double(e) * double(e) / n;
      dY[k] = e / T(n);
    }
    if (update) {
      layer.backward(W.data(), X.data(), dY.data(), /*dX=*/nullptr, n);
      opt.step(layer.params(), layer.grads());
      layer.zero_grad();
    }
    return loss;
  };
  const double before = step(false);
  for (int s = 0; s < 300; ++s) step(true);
  const double after = step(false);
  std::printf("HypLoRA (Lorentz, rank 4) on a 32 x 32 layer: loss %.5f -> %.5f after 300 AdamW steps, K = %.4f\n",
              before, after, double(layer.K()));
  const bool ok = std::isfinite(after) && after < 0.1 * before;
  std::printf("%s\n", ok ? "ok" : "the loss did not fall by 10x");
  return ok ? 0 : 1;
}
