#pragma once
// A portable seeded PRNG (xoshiro256** seeded by splitmix64) with its own integer/real draws, so
// generated data and resampling are identical on every machine and standard library
// (std::uniform_int_distribution's output is implementation-defined).
#include <cstdint>
#include <string_view>

namespace hyplora::data {

/// splitmix64 step: advances state and returns the next output.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// 64-bit FNV-1a of bytes, finalised with splitmix64's mixer (a stable content hash).
inline std::uint64_t content_hash(std::string_view bytes) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001B3ULL;
  return splitmix64(h);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    std::uint64_t sm = seed;
    for (auto& w : s_) w = splitmix64(sm);
  }
  /// xoshiro256** next 64 bits.
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform integer in [lo, hi] (unbiased: rejection of the incomplete last block).
  std::int64_t uniform_int(std::int64_t lo, std::int64_t hi) {
    const std::uint64_t range = static_cast<std::uint64_t>(hi - lo) + 1;
    if (range == 0) return static_cast<std::int64_t>(next());  // full 64-bit range
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    std::uint64_t x;
    do x = next(); while (x >= limit);
    return lo + static_cast<std::int64_t>(x % range);
  }
  /// Uniform index in [0, n).
  std::size_t index(std::size_t n) { return static_cast<std::size_t>(uniform_int(0, static_cast<std::int64_t>(n) - 1)); }
  /// Uniform double in [0, 1) with 53 random bits.
  double uniform01() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace hyplora::data
