// common/rng.h: a small, portable, seedable PRNG (SplitMix64) for data synthesis.
// std::uniform_int_distribution is implementation-defined, so synthesis never uses it: the same seed must
// give the same problems on every compiler. Not for sampling tokens (that lives with the model, on device).
#pragma once

#include <cstdint>

namespace distill {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform integer in [lo, hi] (inclusive), by rejection so there is no modulo bias.
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    const std::uint64_t span = std::uint64_t(hi - lo) + 1;
    if (span == 0) return std::int64_t(next());
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    std::uint64_t x;
    do { x = next(); } while (x >= limit);
    return lo + std::int64_t(x % span);
  }
  bool coin() { return next() & 1; }
  // Uniform double in [0, 1): the top 53 bits.
  double unit() { return double(next() >> 11) * 0x1.0p-53; }
  template <class C>
  const auto& pick(const C& c) { return c[std::size_t(uniform(0, std::int64_t(std::size(c)) - 1))]; }

 private:
  std::uint64_t s_;
};

// Mixes several integers into one seed (for per-item streams: seed x index).
inline std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b) {
  Rng r(a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL));
  return r.next();
}

}  // namespace distill
