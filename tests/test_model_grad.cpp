// Backward of the Llama model against central finite differences, in double, on tiny random
// models: gradients w.r.t. attached adapter hooks' parameters, the embedded inputs and every
// weight (tied and separate classifier, grouped-query attention, a non-binary loss mask).
// The float instantiation is then checked against the double one.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "model/llama.hpp"
#include "model/random_init.hpp"
#include "support.hpp"

using namespace hyplora::llm;

namespace {

/// Nonlinear test adapter: Y += tanh(X A^T) Bm^T, A (r x d_in), Bm (d_out x r).
template <class T>
struct TanhHook : BasicLinearAdapterHook<T> {
  int d_in, d_out, r;
  std::vector<T> A, Bm, gA, gB;
  int forward_calls = 0, backward_calls = 0;
  TanhHook(int in, int out, int rank, unsigned seed) : d_in(in), d_out(out), r(rank) {
    A.resize(std::size_t(r) * in);
    Bm.resize(std::size_t(out) * r);
    for (std::size_t i = 0; i < A.size(); ++i) A[i] = T(0.4) * std::sin(T(i * 3 + seed));
    for (std::size_t i = 0; i < Bm.size(); ++i) Bm[i] = T(0.4) * std::cos(T(i * 5 + seed));
    gA.assign(A.size(), T(0));
    gB.assign(Bm.size(), T(0));
  }
  T z(const T* X, long row, int k) const {
    T s = 0;
    for (int i = 0; i < d_in; ++i) s += A[std::size_t(k) * d_in + i] * X[row * d_in + i];
    return s;
  }
  void forward(const T* X, T* Y, long n, bool) override {
    ++forward_calls;
    for (long row = 0; row < n; ++row)
      for (int k = 0; k < r; ++k) {
        const T h = std::tanh(z(X, row, k));
        for (int o = 0; o < d_out; ++o) Y[row * d_out + o] += Bm[std::size_t(o) * r + k] * h;
      }
  }
  void backward(const T* X, const T* dY, T* dX, long n) override {
    ++backward_calls;
    for (long row = 0; row < n; ++row)
      for (int k = 0; k < r; ++k) {
        const T h = std::tanh(z(X, row, k));
        T dh = 0;
        for (int o = 0; o < d_out; ++o) {
          dh += dY[row * d_out + o] * Bm[std::size_t(o) * r + k];
          gB[std::size_t(o) * r + k] += dY[row * d_out + o] * h;
        }
        const T dz = dh * (T(1) - h * h);
        for (int i = 0; i < d_in; ++i) {
          gA[std::size_t(k) * d_in + i] += dz * X[row * d_in + i];
          dX[row * d_in + i] += dz * A[std::size_t(k) * d_in + i];
        }
      }
  }
};

ModelConfig tiny_config(bool shared) {
  ModelConfig c;
  c.dim = 8; c.hidden_dim = 12; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2;
  c.vocab_size = 16; c.seq_len = 8; c.shared_classifier = shared;
  return c;
}

/// Random weights with non-trivial norm gains (not all ones) and a larger scale, so every
/// nonlinearity is exercised.
BasicModelWeights<double> tiny_weights(bool shared, unsigned seed) {
  auto w = random_weights(tiny_config(shared), seed, 0.35f).cast<double>();
  std::uint64_t s = seed * 2654435761u + 1;
  auto jitter = [&](std::vector<double>& v) {
    for (auto& x : v) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      x = 1.0 + 0.5 * (double(s >> 11) / 9007199254740992.0 - 0.5);
    }
  };
  jitter(w.rms_att); jitter(w.rms_ffn); jitter(w.rms_final);
  return w;
}

/// Central difference step h = eps^(1/3) balances truncation (h^2 f'''/6) and rounding (eps f / h):
/// the error is O(eps^(2/3)) relative to the scale of f and its derivatives. Tolerance: a
/// factor 100 above that, relative to max(1, |g|).
const double kStep = std::cbrt(std::numeric_limits<double>::epsilon());
const double kTol = 100 * std::pow(std::numeric_limits<double>::epsilon(), 2.0 / 3.0);

struct Fixture {
  static constexpr int B = 2, T = 6;
  std::vector<int> tokens, targets;
  std::vector<double> mask;
  Fixture() {
    // B*T = 12 distinct tokens of 16, so each embedding row is one input position
    for (int i = 0; i < B * T; ++i) tokens.push_back((i * 5 + 3) % 16);
    for (int i = 0; i < B * T; ++i) targets.push_back((i * 7 + 1) % 16);
    mask = {0, 0, 1, 1, 0.5, 1, 1, 2, 0, 1, 1, 1};
  }
};

double check_gradient(const std::string& what, std::vector<double>& params, const std::vector<double>& analytic,
                      const std::function<double()>& loss) {
  REQUIRE(params.size() == analytic.size());
  double worst = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const double keep = params[i];
    params[i] = keep + kStep;
    const double up = loss();
    params[i] = keep - kStep;
    const double down = loss();
    params[i] = keep;
    const double fd = (up - down) / (2 * kStep);
    const double err = std::abs(fd - analytic[i]) / std::max(1.0, std::abs(fd));
    worst = std::max(worst, err);
    if (err > kTol) {
      FAIL_CHECK(what << "[" << i << "]: backward " << analytic[i] << " vs finite difference " << fd);
      return worst;
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("backward matches finite differences for every weight, the inputs and adapter hooks (double)",
          "[model][gradient]") {
  for (bool shared : {false, true}) {
    DYNAMIC_SECTION((shared ? "tied classifier" : "separate classifier")) {
      Fixture f;
      BasicLlamaModel<double> model(tiny_weights(shared, shared ? 17 : 29));
      const auto& c = model.config();
      const int d = c.dim, kv = c.kv_dim(), hid = c.hidden_dim;
      TanhHook<double> hq(d, d, 2, 1), hk(d, kv, 2, 2), hv(d, kv, 3, 3), ho(d, d, 2, 4), hg(d, hid, 2, 5),
          hu(d, hid, 2, 6), hd(hid, d, 2, 7), hq1(d, d, 1, 8);
      model.attach(0, Module::q, &hq); model.attach(0, Module::k, &hk); model.attach(0, Module::v, &hv);
      model.attach(0, Module::o, &ho); model.attach(1, Module::gate, &hg); model.attach(1, Module::up, &hu);
      model.attach(0, Module::down, &hd); model.attach(1, Module::q, &hq1);
      std::vector<TanhHook<double>*> hooks = {&hq, &hk, &hv, &ho, &hg, &hu, &hd, &hq1};

      BasicModelWeights<double> grads;
      grads.allocate(c);
      const double loss0 =
          model.forward_backward(f.tokens.data(), f.targets.data(), f.mask.data(), f.B, f.T, &grads);
      REQUIRE(std::isfinite(loss0));
      for (auto* h : hooks) {
        CHECK(h->forward_calls == 1);
        CHECK(h->backward_calls == 1);
      }
      const std::vector<double> dx0 = model.input_gradient();
      auto loss = [&] { return model.evaluate_loss(f.tokens.data(), f.targets.data(), f.mask.data(), f.B, f.T); };
      CHECK(std::abs(loss() - loss0) <= 10 * std::numeric_limits<double>::epsilon() * std::abs(loss0));

      double worst = 0;
      // every weight tensor, every entry
      auto& W = model.mutable_weights();
      std::vector<std::pair<std::string, std::vector<double>*>> tensors;
      W.for_each_tensor([&](const char* name, std::vector<double>& v) { tensors.emplace_back(name, &v); });
      std::vector<const std::vector<double>*> gtensors;
      grads.for_each_tensor([&](const char*, std::vector<double>& v) { gtensors.push_back(&v); });
      REQUIRE(tensors.size() == gtensors.size());
      for (std::size_t t = 0; t < tensors.size(); ++t)
        worst = std::max(worst, check_gradient(tensors[t].first, *tensors[t].second, *gtensors[t], loss));
      // adapter parameters
      for (std::size_t i = 0; i < hooks.size(); ++i) {
        worst = std::max(worst, check_gradient("hook " + std::to_string(i) + " A", hooks[i]->A, hooks[i]->gA, loss));
        worst = std::max(worst, check_gradient("hook " + std::to_string(i) + " B", hooks[i]->Bm, hooks[i]->gB, loss));
      }
      // inputs: with a separate classifier, embedding row tokens[i] is exactly input position i
      if (!shared) {
        std::vector<double> emb_rows, analytic;
        for (int i = 0; i < f.B * f.T; ++i)
          for (int j = 0; j < d; ++j) analytic.push_back(dx0[std::size_t(i) * d + j]);
        std::vector<double*> slots;
        double worst_in = 0;
        for (int i = 0; i < f.B * f.T; ++i) {
          std::vector<double> row(W.token_embedding.begin() + std::size_t(f.tokens[i]) * d,
                                  W.token_embedding.begin() + std::size_t(f.tokens[i] + 1) * d);
          std::vector<double> g(analytic.begin() + std::size_t(i) * d, analytic.begin() + std::size_t(i + 1) * d);
          auto through_row = [&] {
            std::copy(row.begin(), row.end(), W.token_embedding.begin() + std::size_t(f.tokens[i]) * d);
            return loss();
          };
          worst_in = std::max(worst_in, check_gradient("input " + std::to_string(i), row, g, through_row));
          std::copy(row.begin(), row.end(), W.token_embedding.begin() + std::size_t(f.tokens[i]) * d);
        }
        worst = std::max(worst, worst_in);
      }
      INFO("worst relative error " << worst << " tolerance " << kTol);
      CHECK(worst <= kTol);
      std::printf("gradient check (%s): worst relative error %.3g, tolerance %.3g\n",
                  shared ? "tied" : "separate", worst, kTol);
    }
  }
}

namespace {
/// The gradient tensors of a weights object, in for_each_tensor's order.
std::vector<const std::vector<double>*> tensors_of(const BasicModelWeights<double>& w) {
  std::vector<const std::vector<double>*> out;
  w.for_each_tensor([&](const char*, const std::vector<double>& t) { out.push_back(&t); });
  return out;
}
}  // namespace

TEST_CASE("gradients accumulate, and a zero mask gives zero loss and no gradient", "[model][gradient]") {
  Fixture f;
  BasicLlamaModel<double> model(tiny_weights(false, 3));
  BasicModelWeights<double> g1, g2;
  g1.allocate(model.config());
  g2.allocate(model.config());
  model.forward_backward(f.tokens.data(), f.targets.data(), f.mask.data(), f.B, f.T, &g1);
  model.forward_backward(f.tokens.data(), f.targets.data(), f.mask.data(), f.B, f.T, &g2);
  model.forward_backward(f.tokens.data(), f.targets.data(), f.mask.data(), f.B, f.T, &g2);
  // g2 = g1 + g1 (the same forward twice): exact up to the rounding of the accumulation
  const auto t1 = tensors_of(g1), t2 = tensors_of(g2);
  REQUIRE(t1.size() == t2.size());
  for (std::size_t k = 0; k < t1.size(); ++k)
    for (std::size_t i = 0; i < t1[k]->size(); ++i)
      CHECK(std::abs((*t2[k])[i] - 2 * (*t1[k])[i]) <= 4 * std::numeric_limits<double>::epsilon() * std::abs((*t1[k])[i]));
  std::vector<double> zero(f.mask.size(), 0.0);
  BasicModelWeights<double> g3;
  g3.allocate(model.config());
  CHECK(model.forward_backward(f.tokens.data(), f.targets.data(), zero.data(), f.B, f.T, &g3) == 0.0);
  g3.for_each_tensor([](const char* name, const std::vector<double>& t) {
    INFO("tensor " << name);
    for (double x : t) REQUIRE(x == 0.0);
  });
}

TEST_CASE("gradient accumulation over micro-batches with the step's mask sum equals one batch", "[model][gradient]") {
  // Rows of a batch are independent sequences: the batch of B rows split into B micro-batches of one
  // row, each divided by the whole batch's mask sum, accumulates the batch's gradient and loss.
  Fixture f;
  BasicLlamaModel<double> model(tiny_weights(false, 5));
  BasicModelWeights<double> whole, parts;
  whole.allocate(model.config());
  parts.allocate(model.config());
  const double loss_whole = model.forward_backward(f.tokens.data(), f.targets.data(), f.mask.data(), f.B, f.T, &whole);
  double mask_sum = 0, per_row_means = 0;
  for (double m : f.mask) mask_sum += m;
  double loss_parts = 0;
  for (int b = 0; b < f.B; ++b) {
    const std::size_t o = std::size_t(b) * f.T;
    loss_parts += model.forward_backward(f.tokens.data() + o, f.targets.data() + o, f.mask.data() + o, 1, f.T, &parts,
                                         mask_sum);
    per_row_means += model.evaluate_loss(f.tokens.data() + o, f.targets.data() + o, f.mask.data() + o, 1, f.T);
  }
  const double eps = std::numeric_limits<double>::epsilon();
  CHECK(std::abs(loss_parts - loss_whole) <= 16 * eps * loss_whole);
  // the rows' masks differ (3.5 and 6), so the mean of the per-row means is another number
  CHECK(std::abs(per_row_means / f.B - loss_whole) > 1e-3 * loss_whole);
  const auto tw = tensors_of(whole), tp = tensors_of(parts);
  REQUIRE(tw.size() == tp.size());
  for (std::size_t k = 0; k < tw.size(); ++k) {
    double scale = 0;
    for (double x : *tw[k]) scale = std::max(scale, std::abs(x));
    for (std::size_t i = 0; i < tw[k]->size(); ++i) {
      INFO("tensor " << k << " [" << i << "]");
      CHECK(std::abs((*tp[k])[i] - (*tw[k])[i]) <= 64 * eps * scale);
    }
  }
  CHECK_THROWS_WITH(model.forward_backward(f.tokens.data(), f.targets.data(), f.mask.data(), f.B, f.T, &parts, -1.0),
                    Catch::Contains("loss_denominator") && Catch::Contains("negative"));
}

TEST_CASE("float instantiation agrees with double", "[model][gradient]") {
  Fixture f;
  const auto wd = tiny_weights(true, 5);
  BasicLlamaModel<double> md(wd);
  BasicLlamaModel<float> mf(wd.cast<float>());
  BasicModelWeights<double> gd;
  BasicModelWeights<float> gf;
  gd.allocate(md.config());
  gf.allocate(mf.config());
  std::vector<float> maskf(f.mask.begin(), f.mask.end());
  const double ld = md.forward_backward(f.tokens.data(), f.targets.data(), f.mask.data(), f.B, f.T, &gd);
  const float lf = mf.forward_backward(f.tokens.data(), f.targets.data(), maskf.data(), f.B, f.T, &gf);
  // float32 rounding through a handful of layers of width <= 16: a few hundred eps, relative
  const double tol = 1000 * std::numeric_limits<float>::epsilon();
  CHECK(std::abs(lf - ld) <= tol * std::abs(ld));
  double scale = 0, err = 0;
  for (std::size_t i = 0; i < gd.wq.size(); ++i) {
    scale = std::max(scale, std::abs(gd.wq[i]));
    err = std::max(err, std::abs(double(gf.wq[i]) - gd.wq[i]));
  }
  CHECK(err <= tol * scale);
}
