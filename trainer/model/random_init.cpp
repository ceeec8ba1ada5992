#include "model/random_init.hpp"

#include <cmath>
#include <stdexcept>

#include "model/llama.hpp"

namespace hyplora::llm {

namespace {

ModelConfig shape(int dim, int hidden, int layers, int heads, int kv_heads, int vocab, int seq) {
  ModelConfig c;
  c.dim = dim; c.hidden_dim = hidden; c.n_layers = layers; c.n_heads = heads; c.n_kv_heads = kv_heads;
  c.vocab_size = vocab; c.seq_len = seq; c.shared_classifier = true;
  return c;
}

/// splitmix64: a small portable generator.
struct SplitMix64 {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform_open() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  /// Box-Muller standard normal
  double normal() {
    const double u1 = uniform_open(), u2 = uniform_open();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

}  // namespace

ModelConfig named_shape(const std::string& name) {
  if (name == "stories260K") return shape(64, 172, 5, 8, 4, 512, 512);
  if (name == "stories15M") return shape(288, 768, 6, 6, 6, 32000, 256);
  if (name == "stories42M") return shape(512, 1376, 8, 8, 8, 32000, 1024);
  if (name == "stories110M") return shape(768, 2048, 12, 12, 12, 32000, 1024);
  throw std::invalid_argument("named_shape: unknown model shape '" + name +
                              "' (known: stories260K, stories15M, stories42M, stories110M)");
}

std::vector<std::string> named_shapes() { return {"stories260K", "stories15M", "stories42M", "stories110M"}; }

ModelWeights random_weights(const ModelConfig& config, std::uint64_t seed, float stddev) {
  validate_config(config, "random_weights");
  if (!(stddev > 0) || !std::isfinite(stddev)) throw std::invalid_argument("random_weights: stddev must be positive");
  ModelWeights w;
  w.allocate(config);
  SplitMix64 rng{seed};
  const double residual_std = stddev / std::sqrt(2.0 * config.n_layers);
  w.for_each_tensor([&](const char* name, std::vector<float>& v) {
    const std::string n = name;
    if (n.rfind("rms_", 0) == 0) {
      std::fill(v.begin(), v.end(), 1.0f);
      return;
    }
    const double sd = (n == "wo" || n == "w3") ? residual_std : stddev;
    for (auto& x : v) x = static_cast<float>(sd * rng.normal());
  });
  return w;
}

}  // namespace hyplora::llm
