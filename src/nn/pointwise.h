// Element-wise layers over N elements of any shape: the MLP's GELU and the residual add.
#pragma once

#include <cstdint>

#include "nn/common.h"

namespace slope::nn {

// The exact GELU, x·Φ(x) = ½·x·(1 + erf(x/√2)): nanoGPT's nn.GELU() (approximate='none'),
// not the tanh approximation of GPT-2 and llm.c (they differ by up to ~5e-4, enough to notice
// when loading a nanoGPT checkpoint). out may be inp (in place).
template <class Real>
void gelu_forward(Real* out,        // (N), e.g. (B, T, 4C)
                  const Real* inp,  // (N)
                  int64_t N);

// ACCUMULATES: dinp += dout · (Φ(x) + x·φ(x)), φ the standard normal density (with
// GradWrite::overwrite, dinp = ..., not read).
template <class Real>
void gelu_backward(Real* dinp,        // (N)
                   const Real* dout,  // (N)
                   const Real* inp,   // (N) the forward's input
                   int64_t N, GradWrite write = GradWrite::accumulate);

// GPT-2's GELU, the tanh approximation ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): Hugging Face's
// "gelu_new" (= "gelu_pytorch_tanh", torch's approximate='tanh'), llm.c's. out may be inp.
template <class Real>
void gelu_tanh_forward(Real* out,        // (N)
                       const Real* inp,  // (N)
                       int64_t N);

// ACCUMULATES: dinp += dout · (½·(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)), t the tanh.
template <class Real>
void gelu_tanh_backward(Real* dinp,        // (N)
                        const Real* dout,  // (N)
                        const Real* inp,   // (N) the forward's input
                        int64_t N, GradWrite write = GradWrite::accumulate);

// Which GELU an MLP uses (GptConfig::activation): the exact one or GPT-2's tanh approximation.
enum class Activation { gelu, gelu_tanh };

template <class Real>
void activation_forward(Activation act, Real* out, const Real* inp, int64_t N) {
  act == Activation::gelu_tanh ? gelu_tanh_forward(out, inp, N) : gelu_forward(out, inp, N);
}
template <class Real>
void activation_backward(Activation act, Real* dinp, const Real* dout, const Real* inp, int64_t N,
                         GradWrite write = GradWrite::accumulate) {
  act == Activation::gelu_tanh ? gelu_tanh_backward(dinp, dout, inp, N, write)
                               : gelu_backward(dinp, dout, inp, N, write);
}

// out = inp1 + inp2; out may be either input (in place on the residual stream).
template <class Real>
void residual_forward(Real* out,         // (N), e.g. (B, T, C)
                      const Real* inp1,  // (N)
                      const Real* inp2,  // (N)
                      int64_t N);

// ACCUMULATES: dinp1 += dout, dinp2 += dout. Neither gradient may be dout itself.
template <class Real>
void residual_backward(Real* dinp1,       // (N)
                       Real* dinp2,       // (N)
                       const Real* dout,  // (N)
                       int64_t N);

}  // namespace slope::nn
