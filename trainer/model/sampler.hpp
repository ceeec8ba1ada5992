#pragma once
// Next-token sampling exactly as llama2.c run.c: greedy argmax (first maximum wins), temperature
// (logits / T, softmax, then a coin from run.c's xorshift RNG), and top-p (run.c's sample_topp:
// drop tokens with p < (1 - topp)/(n - 1), sort by p descending, keep the shortest prefix whose
// mass exceeds topp, sample within it). Same seed, same logits: same tokens as run.c.
#include <cstdint>
#include <vector>

namespace hyplora::llm {

class Sampler {
 public:
  /// temperature 0 = greedy; topp outside (0, 1) = plain multinomial; seed as run.c's -s (nonzero).
  Sampler(int vocab_size, float temperature, float topp, std::uint64_t seed);

  /// Picks the next token; modifies logits in place (scaled and softmaxed) as run.c does.
  int sample(float* logits);

  static int argmax(const float* probabilities, int n);
  /// run.c's sample_mult: index where the cumulative distribution first exceeds coin.
  static int sample_mult(const float* probabilities, int n, float coin);
  int sample_topp(const float* probabilities, float coin);

  /// run.c's random_u32 / random_f32 (xorshift*).
  std::uint32_t random_u32();
  float random_f32();

  float temperature() const { return temperature_; }
  float topp() const { return topp_; }

 private:
  struct ProbIndex {
    float prob;
    int index;
  };
  int vocab_size_;
  float temperature_, topp_;
  std::uint64_t rng_state_;
  std::vector<ProbIndex> probindex_;
};

}  // namespace hyplora::llm
