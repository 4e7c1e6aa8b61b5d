// Random numbers that are the same on every platform and standard library: std::mt19937_64's
// raw outputs are specified by the standard, its distributions are not, so bounded draws are
// done here.
#pragma once

#include <cstdint>
#include <random>

namespace slope::data {

// A strong 64-bit mix (Steele et al.'s SplitMix64 finaliser): turns (seed, index) into seeds.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, n), n > 0: rejects the low raw values that would bias the modulo.
// The generator of batch k of a batcher seeded with `seed`: each batch is a pure function of
// (seed, k), so a batcher's whole state is (seed, batches drawn).
inline std::mt19937_64 batch_rng(uint64_t seed, uint64_t k) {
  return std::mt19937_64(splitmix64(seed ^ splitmix64(k)));
}

inline uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  while (true) {
    const uint64_t r = rng();
    if (r >= threshold) return r % n;
  }
}

}  // namespace slope::data
