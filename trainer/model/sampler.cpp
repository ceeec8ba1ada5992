#include "model/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hyplora::llm {

Sampler::Sampler(int vocab_size, float temperature, float topp, std::uint64_t seed)
    : vocab_size_(vocab_size), temperature_(temperature), topp_(topp), rng_state_(seed), probindex_(vocab_size) {
  if (vocab_size <= 0) throw std::invalid_argument("Sampler: vocab_size must be positive");
  if (!(temperature >= 0) || !std::isfinite(temperature))
    throw std::invalid_argument("Sampler: temperature " + std::to_string(temperature) + " must be finite and >= 0");
  if (!std::isfinite(topp)) throw std::invalid_argument("Sampler: topp must be finite");
}

std::uint32_t Sampler::random_u32() {
  rng_state_ ^= rng_state_ >> 12;
  rng_state_ ^= rng_state_ << 25;
  rng_state_ ^= rng_state_ >> 27;
  return static_cast<std::uint32_t>((rng_state_ * 0x2545F4914F6CDD1Dull) >> 32);
}

float Sampler::random_f32() { return static_cast<float>(random_u32() >> 8) / 16777216.0f; }

int Sampler::argmax(const float* p, int n) {
  int max_i = 0;
  float max_p = p[0];
  for (int i = 1; i < n; ++i)
    if (p[i] > max_p) {
      max_i = i;
      max_p = p[i];
    }
  return max_i;
}

int Sampler::sample_mult(const float* p, int n, float coin) {
  float cdf = 0.0f;
  for (int i = 0; i < n; ++i) {
    cdf += p[i];
    if (coin < cdf) return i;
  }
  return n - 1;  // in case of rounding errors
}

int Sampler::sample_topp(const float* p, float coin) {
  const int n = vocab_size_;
  int n0 = 0;
  const float cutoff = (1.0f - topp_) / (n - 1);
  for (int i = 0; i < n; ++i)
    if (p[i] >= cutoff) probindex_[n0++] = {p[i], i};
  // run.c uses qsort (glibc: a stable merge sort) with a descending comparator
  std::stable_sort(probindex_.begin(), probindex_.begin() + n0,
                   [](const ProbIndex& a, const ProbIndex& b) { return a.prob > b.prob; });
  if (n0 == 0) return argmax(p, n);  // no probability at the cutoff (NaN in p): never index -1
  float cumulative = 0.0f;
  int last_idx = n0 - 1;
  for (int i = 0; i < n0; ++i) {
    cumulative += probindex_[i].prob;
    if (cumulative > topp_) {
      last_idx = i;
      break;
    }
  }
  const float r = coin * cumulative;
  float cdf = 0.0f;
  for (int i = 0; i <= last_idx; ++i) {
    cdf += probindex_[i].prob;
    if (r < cdf) return probindex_[i].index;
  }
  return probindex_[last_idx].index;
}

int Sampler::sample(float* logits) {
  const int greedy = argmax(logits, vocab_size_);
  if (temperature_ == 0.0f) return greedy;
  for (int q = 0; q < vocab_size_; ++q) logits[q] /= temperature_;
  // softmax as run.c
  float max_val = logits[0];
  for (int i = 1; i < vocab_size_; ++i) max_val = std::max(max_val, logits[i]);
  // a temperature so small that logit / T overflows (1e-38): inf - inf is NaN and no token passes
  // top-p's cutoff (it read probindex_[-1]); the limit T -> 0 is greedy decoding
  if (!std::isfinite(max_val)) return greedy;
  float sum = 0.0f;
  for (int i = 0; i < vocab_size_; ++i) {
    logits[i] = std::exp(logits[i] - max_val);
    sum += logits[i];
  }
  if (!(sum > 0.0f) || !std::isfinite(sum)) return greedy;
  for (int i = 0; i < vocab_size_; ++i) logits[i] /= sum;
  const float coin = random_f32();
  if (topp_ <= 0 || topp_ >= 1) return sample_mult(logits, vocab_size_, coin);
  return sample_topp(logits, coin);
}

}  // namespace hyplora::llm
