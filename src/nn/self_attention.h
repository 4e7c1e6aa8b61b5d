// Self-attention over c_attn's packed output: causal (a GPT block) or bidirectional (an
// encoder), its decoding form over a KV cache, and an encoder–decoder's cross-attention.
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
#include "slope/attention.h"  // RelativeBias

namespace slope::nn {

// How a self-attention layer sees position and padding.
//   causal        query i sees keys j ≤ i (decoders); false: every key (encoders)
//   slopes_left   (H) ALiBi slopes for keys left of the query (j < i), or null: no bias
//   slopes_right  (H) for keys right of it (j > i); null = slopes_left (symmetric ALiBi, or the
//                 causal decoder's one vector). +∞ masks that side (the "nonsymmetric" encoder);
//                 the diagonal is never masked. Only read when slopes_left is given.
//   key_lengths   (B) or null: keys t ≥ key_lengths[b] are padding and never attended. Queries
//                 at padded positions still get an output (over the real keys); exclude them
//                 from the loss. A padded batch gives the real positions exactly the outputs of
//                 each sequence run alone.
//   rel           a learned relative bias (slope/attention.h) instead of slopes: its kind and
//                 sizes, params (its flat layout) or kind kNone
//   drel          backward only: ACCUMULATES d(loss)/d(rel.params) here (same layout), or null
template <class Real>
struct AttentionBias {
  bool causal = false;
  const Real* slopes_left = nullptr;
  const Real* slopes_right = nullptr;
  const int32_t* key_lengths = nullptr;
  RelativeBias<Real> rel{};
  Real* drel = nullptr;
};

// Self-attention over packed qkv (B, T, 3C) as above, with any bias. Throws Error on a bad shape
// (C not a multiple of H), a NaN or −inf slope, a key length outside [0, T]. A sequence of key
// length 0 gets outputs 0 and lse −∞.
template <class Real>
void self_attention_forward(Real* out,        // (B, T, C)
                            Real* lse,        // (B, H, T)
                            const Real* qkv,  // (B, T, 3C)
                            const AttentionBias<NoDeduce<Real>>& bias, int64_t B, int64_t T,
                            int64_t C, int64_t H);

// ACCUMULATES into dqkv and, when given, dslopes_left / dslopes_right (H each). With
// bias.slopes_right null the one shared vector's whole gradient goes to dslopes_left and
// dslopes_right must be null (Error otherwise). A side whose slopes are +∞ gets a zero gradient.
// `bias` is the forward's. The kernels overwrite what they write, so they write into `scratch`
// (which must not overlap dqkv) and the layer adds it: dqkv may hold the gradient of another
// use of qkv. Deterministic for a given input, whatever the thread count.
template <class Real>
void self_attention_backward(Real* dqkv,                     // (B, T, 3C)
                             NoDeduce<Real>* dslopes_left,   // (H) or null
                             NoDeduce<Real>* dslopes_right,  // (H) or null
                             Real* scratch,                  // (B, T, 3C) workspace
                             const Real* dout,               // (B, T, C)
                             const Real* qkv,                // (B, T, 3C)
                             const Real* out,                // (B, T, C) from the forward
                             const Real* lse,                // (B, H, T) from the forward
                             const AttentionBias<NoDeduce<Real>>& bias, int64_t B, int64_t T,
                             int64_t C, int64_t H);

// Causal self-attention of Tn new positions against a KV cache (decoding, forward only): writes
// the keys and values of qkv (B, Tn, 3C) into the cache at rows P .. P+Tn−1, then attends each
// new query over all P + Tn cached keys, causal and bottom-right aligned (query t sits at
// position P + t, DESIGN.md), with the ALiBi bias by distance as in training. The same outputs
// as self_attention_forward over the whole sequence, up to the kernel's tiling (rounding).
// Throws Error on a bad shape, a NaN or −inf slope, or P + Tn > capacity.
template <class Real>
void kv_cache_attention_forward(Real* out,        // (B, Tn, C)
                                Real* lse,        // (B, H, Tn)
                                Real* k_cache,    // (B, capacity, C): rows P .. P+Tn−1 written
                                Real* v_cache,    // (B, capacity, C)
                                const Real* qkv,  // (B, Tn, 3C)
                                const NoDeduce<Real>* slopes,  // (H) causal ALiBi, or null
                                int64_t B, int64_t Tn, int64_t P, int64_t capacity, int64_t C,
                                int64_t H,
                                // a learned relative bias instead (kind kNone: none)
                                const RelativeBias<NoDeduce<Real>>& rel = {});

// ---- Cross-attention (encoder–decoders) ---------------------------------------------------

// Cross-attention of a decoder to an encoder's output: queries (B, Tq, C) from the decoder,
// keys and values packed as kv (B, Tk, 2C) (k at offset 0, v at C, nanoGPT-style heads of
// D = C/H), no position bias, no causal mask; source keys t ≥ key_lengths[b] are padding.
// Scale 1/√D.
template <class Real>
void cross_attention_forward(Real* out,                   // (B, Tq, C)
                             Real* lse,                   // (B, H, Tq)
                             const Real* q,               // (B, Tq, C)
                             const Real* kv,              // (B, Tk, 2C)
                             const int32_t* key_lengths,  // (B) in [0, Tk], or null
                             int64_t B, int64_t Tq, int64_t Tk, int64_t C, int64_t H);

// ACCUMULATES into dq and dkv; scratch, overwritten, must not overlap them.
template <class Real>
void cross_attention_backward(Real* dq,                    // (B, Tq, C)
                              Real* dkv,                   // (B, Tk, 2C)
                              Real* scratch,               // (B·Tq·C + B·Tk·2C) workspace
                              const Real* dout,            // (B, Tq, C)
                              const Real* q,               // (B, Tq, C)
                              const Real* kv,              // (B, Tk, 2C)
                              const Real* out,             // (B, Tq, C) from the forward
                              const Real* lse,             // (B, H, Tq) from the forward
                              const int32_t* key_lengths,  // (B) or null
                              int64_t B, int64_t Tq, int64_t Tk, int64_t C, int64_t H);

}  // namespace slope::nn
