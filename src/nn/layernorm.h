// LayerNorm over the channels of every (b, t) row, as torch.nn.LayerNorm(C, bias=...):
// biased variance, eps inside the square root.
#pragma once

#include <cstdint>

#include "nn/common.h"

namespace slope::nn {

constexpr double kLayerNormEps = 1e-5;  // PyTorch's default, which nanoGPT keeps

// out = (inp − mean) · rstd · weight + bias, rstd = 1/√(var + eps). Saves mean and rstd for
// the backward. Statistics are two-pass (mean, then Σ(x − mean)²) in Real.
template <class Real>
void layernorm_forward(Real* out,                   // (B, T, C)
                       Real* mean,                  // (B, T) saved for the backward
                       Real* rstd,                  // (B, T) saved for the backward
                       const Real* inp,             // (B, T, C)
                       const Real* weight,          // (C)
                       const NoDeduce<Real>* bias,  // (C), or null
                       int64_t B, int64_t T, int64_t C);

// ACCUMULATES into dinp, dweight and dbias (when given). Deterministic: dweight and dbias are
// summed over rows in order, threads owning disjoint channel slices.
template <class Real>
void layernorm_backward(Real* dinp,             // (B, T, C)
                        Real* dweight,          // (C)
                        NoDeduce<Real>* dbias,  // (C), or null: no bias
                        const Real* dout,       // (B, T, C)
                        const Real* inp,        // (B, T, C)
                        const Real* mean,       // (B, T) from the forward
                        const Real* rstd,       // (B, T) from the forward
                        const Real* weight,     // (C)
                        int64_t B, int64_t T, int64_t C);

}  // namespace slope::nn
