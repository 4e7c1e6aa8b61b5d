// The causal self-attention of a GPT block, over c_attn's packed output.
//
// qkv (B, T, 3C) holds q, k and v side by side along the last dimension, each split into H heads
// of D = C/H channels (nanoGPT's layout: q[b, t, h, d] = qkv[b, t, h·D + d], k at offset C, v at
// 2C). The attention kernels read it through strides, so nothing is permuted or copied, and the
// output (B, T, C) has the heads side by side, ready for c_proj. Scale 1/√D.
//
// ALiBi (the `alibi` and `alibi-learned` position schemes) passes per-head slopes; the bias of
// query i and key j ≤ i is −slopes[h]·(i − j). Other schemes pass none.
// Float runs the fused CPU kernels (slope::attention_forward/backward); double runs slope's
// float64 reference on the same strides, which is what the gradient checks compare against.
#pragma once

#include <cstdint>

#include "nn/common.h"

namespace slope::nn {

// Throws Error when C is not a multiple of H or a slope is negative or NaN.
template <class Real>
void attention_forward(Real* out,                     // (B, T, C)
                       Real* lse,                     // (B, H, T) saved for the backward
                       const Real* qkv,               // (B, T, 3C)
                       const NoDeduce<Real>* slopes,  // (H) ALiBi slopes ≥ 0, or null: no bias
                       int64_t B, int64_t T, int64_t C, int64_t H);

// ACCUMULATES into dqkv and, when given, dslopes. The kernels overwrite what they write, so they
// write into `scratch` and the layer adds it: dqkv may hold the gradient of another use of qkv.
// Deterministic for a given input, whatever the thread count.
template <class Real>
void attention_backward(Real* dqkv,                    // (B, T, 3C)
                        NoDeduce<Real>* dslopes,       // (H), or null: fixed slopes
                        Real* scratch,                 // (B, T, 3C) workspace, overwritten
                        const Real* dout,              // (B, T, C)
                        const Real* qkv,               // (B, T, 3C)
                        const Real* out,               // (B, T, C) from the forward
                        const Real* lse,               // (B, H, T) from the forward
                        const NoDeduce<Real>* slopes,  // (H), or null: as in the forward
                        int64_t B, int64_t T, int64_t C, int64_t H);

}  // namespace slope::nn
