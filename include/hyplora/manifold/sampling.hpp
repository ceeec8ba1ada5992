#pragma once
// Seedable random numbers for the manifolds' random() (wrapped normal) on host and device.
//
// Rng is SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter passed through a mixing
// function. It is tiny, has no tables, so one instance per thread / CUDA thread (seeded with
// seed + thread id via Rng::stream) works the same everywhere. Normals by Box-Muller.
// Anything with `template <class T> T normal()` can be passed to random() instead.

#include <cmath>
#include <cstdint>

#include "hyplora/core/config.hpp"

namespace hyplora {

class Rng {
 public:
  HYPLORA_HOST_DEVICE explicit Rng(std::uint64_t seed = 0x853c49e6748fea9bULL) : state_(seed) {}
  /// An independent stream: mixes the stream id into the seed.
  HYPLORA_INLINE static Rng stream(std::uint64_t seed, std::uint64_t id) {
    Rng r(seed ^ (id * 0xD1B54A32D192ED03ULL));
    r.next_u64();
    return r;
  }
  HYPLORA_INLINE std::uint64_t next_u64() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1), with the full mantissa of T.
  template <class T>
  HYPLORA_INLINE T uniform() {
    if (sizeof(T) == 4) return T(next_u64() >> 40) * T(5.9604644775390625e-08);  // 2^-24
    return T(next_u64() >> 11) * T(1.1102230246251565e-16);                      // 2^-53
  }
  /// Standard normal by Box-Muller (u1 in (0, 1], so the log is finite).
  template <class T>
  HYPLORA_INLINE T normal() {
    const T u1 = T(1) - uniform<T>(), u2 = uniform<T>();
    return std::sqrt(T(-2) * std::log(u1)) * std::cos(T(6.283185307179586) * u2);
  }
  HYPLORA_INLINE std::uint64_t state() const { return state_; }

 private:
  std::uint64_t state_;
};

}  // namespace hyplora
