// The input layer of a GPT: token embedding plus an optional position table.
//
// The position scheme decides what wpe is: `learned` passes the trained (block_size, C) table
// (rows 0..T-1 are read) and its gradient; `sinusoidal` passes a fixed table from
// sinusoidal_positions() and no gradient; `none`, `alibi` and `alibi-learned` pass no table (the
// position enters in attention, or not at all).
#pragma once

#include <cstdint>

#include "nn/common.h"

namespace slope::nn {

// out[b, t] = wte[inp[b, t]] + wpe[t] (the second term only when wpe is given).
// Throws Error if a token id is outside [0, V).
template <class Real>
void encoder_forward(Real* out,                  // (B, T, C)
                     const int32_t* inp,         // (B, T) token ids in [0, V)
                     const Real* wte,            // (V, C) token embedding (V may be padded)
                     const NoDeduce<Real>* wpe,  // (T, C) position table, or null
                     int64_t B, int64_t T, int64_t C, int64_t V);

// ACCUMULATES: dwte[v] += Σ_{(b,t): inp[b,t] = v} dout[b, t];  dwpe[t] += Σ_b dout[b, t].
// Deterministic: every sum is taken in (b, t) order whatever the thread count.
template <class Real>
void encoder_backward(Real* dwte,            // (V, C)
                      NoDeduce<Real>* dwpe,  // (T, C), or null: no learned positions
                      const Real* dout,      // (B, T, C)
                      const int32_t* inp,    // (B, T)
                      int64_t B, int64_t T, int64_t C, int64_t V);

// The fixed positions of "Attention is all you need" (Vaswani et al. 2017, §3.5):
// table[t, 2i] = sin(t / 10000^(2i/C)), table[t, 2i+1] = cos(t / 10000^(2i/C)).
// Computed in double and rounded once. An odd C ends with a sine column.
template <class Real>
void sinusoidal_positions(Real* table,  // (T, C)
                          int64_t T, int64_t C);

}  // namespace slope::nn
