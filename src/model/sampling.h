// Drawing the next token from a model's logits: temperature, top-k, and a random source that
// gives the same tokens on every platform (std::mt19937_64's raw outputs are specified by the
// standard, its distributions are not).
#pragma once

#include <cstdint>
#include <random>

namespace slope::model {

struct SamplingConfig {
  double temperature = 1.0;  // > 0; 0 picks the most likely token (greedy)
  int64_t top_k = 0;         // keep the k most likely tokens; 0 keeps all
};

// Throws slope::Error naming the option ("--temperature must be >= 0 ...").
void validate(const SamplingConfig& config);

// Uniform in [0, 1) from the top 53 bits of one raw output.
inline double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1p-53; }

// One token id in [0, V) from logits (V) of one position: softmax(logits / temperature) over
// the top_k largest (ties broken towards the lower id), computed in double. Throws slope::Error
// when a logit is NaN.
template <class Real>
int32_t sample_token(const Real* logits, int64_t V, const SamplingConfig& config,
                     std::mt19937_64& rng);

}  // namespace slope::model
