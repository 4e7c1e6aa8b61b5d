// Token embedding + position table (see encoder.h).
#include "nn/encoder.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace slope::nn {

namespace {

// Channels per task in the backward's scatter-add: threads own disjoint channel slices, so the
// rows of dwte a repeated token hits are summed without races and in a fixed order.
constexpr int64_t kChannelBlock = 64;

// The base of the sinusoid wavelengths (Vaswani et al.).
constexpr double kSinusoidBase = 10000.0;

void check_tokens(const int32_t* inp, int64_t n, int64_t V) {
  for (int64_t i = 0; i < n; ++i)
    if (inp[i] < 0 || inp[i] >= V)
      throw Error("encoder: token id " + std::to_string(inp[i]) + " at position " +
                  std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(V) +
                  "): the data was tokenised with a larger vocabulary than the model's");
}

}  // namespace

template <class Real>
void encoder_forward(Real* out, const int32_t* inp, const Real* wte, const NoDeduce<Real>* wpe,
                     int64_t B, int64_t T, int64_t C, int64_t V) {
  check_sizes("encoder", {{"B", B}, {"T", T}, {"C", C}, {"V", V}});
  check_given("encoder", {{"out", out}, {"inp", inp}, {"wte", wte}});
  check_tokens(inp, B * T, V);
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    Real* o = out + bt * C;
    const Real* e = wte + static_cast<int64_t>(inp[bt]) * C;
    if (wpe) {
      const Real* p = wpe + (bt % T) * C;
      for (int64_t c = 0; c < C; ++c) o[c] = e[c] + p[c];
    } else {
      std::copy(e, e + C, o);
    }
  }
}

template <class Real>
void encoder_backward(Real* dwte, NoDeduce<Real>* dwpe, const Real* dout, const int32_t* inp,
                      int64_t B, int64_t T, int64_t C, int64_t V) {
  check_sizes("encoder backward", {{"B", B}, {"T", T}, {"C", C}, {"V", V}});
  check_given("encoder backward", {{"dwte", dwte}, {"dout", dout}, {"inp", inp}});
  check_tokens(inp, B * T, V);
  const int64_t nblocks = (C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * kChannelBlock, c1 = std::min(C, c0 + kChannelBlock);
    for (int64_t bt = 0; bt < B * T; ++bt) {
      Real* d = dwte + static_cast<int64_t>(inp[bt]) * C;
      const Real* g = dout + bt * C;
      for (int64_t c = c0; c < c1; ++c) d[c] += g[c];
    }
  }
  if (!dwpe) return;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    Real* d = dwpe + t * C;
    for (int64_t b = 0; b < B; ++b) {
      const Real* g = dout + (b * T + t) * C;
      for (int64_t c = 0; c < C; ++c) d[c] += g[c];
    }
  }
}

template <class Real>
void sinusoidal_positions(Real* table, int64_t T, int64_t C) {
  check_sizes("sinusoidal_positions", {{"T", T}, {"C", C}});
  check_given("sinusoidal_positions", {{"table", table}});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t pair = c / 2;  // columns 2i and 2i+1 share a wavelength
      const double angle =
          static_cast<double>(t) / std::pow(kSinusoidBase, static_cast<double>(2 * pair) / C);
      table[t * C + c] = static_cast<Real>(c % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
}

#define SLOPE_NN_INSTANTIATE(Real)                                                              \
  template void encoder_forward<Real>(Real*, const int32_t*, const Real*, const Real*, int64_t, \
                                      int64_t, int64_t, int64_t);                               \
  template void encoder_backward<Real>(Real*, Real*, const Real*, const int32_t*, int64_t,      \
                                       int64_t, int64_t, int64_t);                              \
  template void sinusoidal_positions<Real>(Real*, int64_t, int64_t);
SLOPE_NN_INSTANTIATE(float)
SLOPE_NN_INSTANTIATE(double)
#undef SLOPE_NN_INSTANTIATE

}  // namespace slope::nn
