// What the GPT tests and the oracle dump share: tiny configs, parameters spread far enough
// from nanoGPT's init that every path carries signal, and batches.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "model/gpt.h"

namespace slope::model {
// GoogleTest prints parameters (and ctest names tests) with this: "alibi", not "4-byte object".
inline void PrintTo(Position pos, std::ostream* os) { *os << position_name(pos); }
}  // namespace slope::model

namespace slope::model::testing {

// A position scheme as a test-name suffix: "alibi_learned" (GoogleTest names take no '-').
inline std::string label(Position pos) {
  std::string s = position_name(pos);
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

// Uniform in [lo, hi), rounded to float so that float and double models read the same values.
inline double uniform_float(std::mt19937_64& rng, double lo, double hi) {
  return static_cast<float>(lo + (hi - lo) * std::uniform_real_distribution<double>(0, 1)(rng));
}

// nanoGPT's init (std 0.02) makes a tiny model almost linear and its gradients tiny; these
// values give scores of a few units, softmaxes that are neither flat nor one-hot, and slopes
// in (0.05, 1) (positive: the attention kernels require m >= 0). LayerNorm weights 1 ± 0.5.
template <class Real>
void randomize_params(Gpt<Real>& gpt, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const ParamSpec& s : gpt.table().specs()) {
    Real* p = gpt.params() + s.offset;
    // Learned ALiBi slopes and Kerple's r1, r2 in (0.05, 1), inside every family's domain.
    const bool slopes = s.name.ends_with("alibi_slopes") || s.name.ends_with("attn.kerple");
    const bool ln_weight = s.name.find(".ln_") != std::string::npos && s.name.ends_with(".weight");
    for (int64_t i = 0; i < s.numel(); ++i)
      p[i] = static_cast<Real>(slopes      ? uniform_float(rng, 0.05, 1.0)
                               : ln_weight ? uniform_float(rng, 0.5, 1.5)
                                           : uniform_float(rng, -0.5, 0.5));
    if (s.name.ends_with("attn.fire")) {  // FIRE's c in (0.5, 1.5), L = 3.5: rows on both sides
      p[s.numel() - 2] = static_cast<Real>(uniform_float(rng, 0.5, 1.5));
      p[s.numel() - 1] = static_cast<Real>(3.5);
    }
  }
}

struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> idx, targets;  // (B, T); targets has one kIgnoreIndex (-1)
};

inline Batch make_batch(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Batch b{B, T, {}, {}};
  for (int64_t i = 0; i < B * T; ++i) {
    b.idx.push_back(static_cast<int32_t>(rng() % static_cast<uint64_t>(V)));
    b.targets.push_back(static_cast<int32_t>(rng() % static_cast<uint64_t>(V)));
  }
  b.targets[static_cast<size_t>(B * T / 2)] = -1;
  return b;
}

}  // namespace slope::model::testing
