// The language-model loss: softmax over the vocabulary fused with the negative log-likelihood of
// the target, as F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1).
//
// Logits may be padded (Vp ≥ V, like llm.c's 50304 for GPT-2's 50257 tokens, so the head's GEMM
// gets round sizes): columns V..Vp−1 are ignored, and their gradient is left untouched.
// Targets equal to kIgnoreIndex (padding, prompt tokens) count neither in the loss nor in the
// mean; other targets outside [0, V) throw Error.
#pragma once

#include <cstdint>

#include "nn/common.h"

namespace slope::nn {

constexpr int32_t kIgnoreIndex = -1;  // nanoGPT's ignore_index

// losses[b, t] = lse[b, t] − logits[b, t, target] (0 where ignored), lse the row's natural-log
// logsumexp (max-subtracted: no overflow for any finite logits), saved for the backward.
// Returns the mean of the counted losses, summed in double; 0 when no target counts.
template <class Real>
Real crossentropy_forward(Real* losses,            // (B, T)
                          Real* lse,               // (B, T) saved for the backward
                          const Real* logits,      // (B, T, Vp)
                          const int32_t* targets,  // (B, T) in [0, V) or kIgnoreIndex
                          int64_t B, int64_t T, int64_t V, int64_t Vp);

// ACCUMULATES the gradient of dloss · (mean loss): for every counted row,
// dlogits[b, t, v] += dloss/count · (softmax(logits[b, t])[v] − [v = target]), v < V.
template <class Real>
void crossentropy_backward(Real* dlogits,           // (B, T, Vp)
                           const Real* logits,      // (B, T, Vp)
                           const Real* lse,         // (B, T) from the forward
                           const int32_t* targets,  // (B, T)
                           NoDeduce<Real> dloss,    // d(objective)/d(mean loss), 1 for the loss
                           int64_t B, int64_t T, int64_t V, int64_t Vp);

}  // namespace slope::nn
