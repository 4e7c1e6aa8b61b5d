// Counter-based inverted dropout (see dropout.h).
#include "nn/dropout.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace slope::nn {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;  // SplitMix64's increment, 2^64/φ

// SplitMix64's output function (Steele, Lea, Flood 2014), a bijection of 64-bit words.
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Element i survives when the top 32 bits of its hash reach the threshold round(p · 2^32),
// which is 2^32 (nothing survives) at p = 1. Exact in integers, the same for float and double.
struct Mask {
  uint64_t seed = 0;
  uint64_t threshold = 0;
  bool keeps(int64_t i) const {
    return (mix64(seed + (static_cast<uint64_t>(i) + 1) * kGolden) >> 32) >= threshold;
  }
};

Mask make_mask(const char* layer, double p, uint64_t seed) {
  if (!(p >= 0.0 && p <= 1.0))
    throw Error(std::string(layer) + ": p = " + std::to_string(p) + " is outside [0, 1]");
  return {seed, static_cast<uint64_t>(std::llround(p * 0x1p32))};
}

}  // namespace

uint64_t dropout_seed(uint64_t run_seed, uint64_t step, uint64_t site) {
  return mix64(mix64(mix64(run_seed + kGolden) + step + kGolden) + site + kGolden);
}

template <class Real>
void dropout_forward(Real* out, const Real* inp, double p, uint64_t seed, int64_t N) {
  check_sizes("dropout", {{"N", N}});
  check_given("dropout", {{"out", out}, {"inp", inp}});
  const Mask mask = make_mask("dropout", p, seed);
  if (p == 0.0) {
    if (out != inp) std::copy(inp, inp + N, out);
    return;
  }
  const Real scale = p < 1.0 ? static_cast<Real>(1.0 / (1.0 - p)) : Real(0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) out[i] = mask.keeps(i) ? inp[i] * scale : Real(0);
}

template <class Real>
void dropout_backward(Real* dinp, const Real* dout, double p, uint64_t seed, int64_t N) {
  check_sizes("dropout backward", {{"N", N}});
  check_given("dropout backward", {{"dinp", dinp}, {"dout", dout}});
  if (dinp == dout) throw Error("dropout backward: dinp may not alias dout (it accumulates)");
  const Mask mask = make_mask("dropout backward", p, seed);
  if (p == 0.0) {  // everything kept, unscaled: no hashing
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < N; ++i) dinp[i] += dout[i];
    return;
  }
  const Real scale = p < 1.0 ? static_cast<Real>(1.0 / (1.0 - p)) : Real(0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i)
    if (mask.keeps(i)) dinp[i] += dout[i] * scale;
}

#define SLOPE_NN_INSTANTIATE(Real)                                                    \
  template void dropout_forward<Real>(Real*, const Real*, double, uint64_t, int64_t); \
  template void dropout_backward<Real>(Real*, const Real*, double, uint64_t, int64_t);
SLOPE_NN_INSTANTIATE(float)
SLOPE_NN_INSTANTIATE(double)
#undef SLOPE_NN_INSTANTIATE

}  // namespace slope::nn
