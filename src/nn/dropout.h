// Inverted dropout (PyTorch's nn.Dropout): each element is kept with probability 1 − p and
// scaled by 1/(1 − p), so evaluation (p = 0) needs no rescaling.
//
// The mask is a pure function of (seed, element index): bit i comes from a counter-based hash
// (SplitMix64's output i from state `seed`), nothing is stored. So the backward recomputes the
// forward's mask, a run resumed from a checkpoint draws the same masks, and the result does not
// depend on the thread count. Every call site of every step needs its own seed: dropout_seed().
#pragma once

#include <cstdint>

#include "nn/common.h"

namespace slope::nn {

// The seed of one dropout call: mixes the run's seed, the optimizer step (or micro-step) and
// the call site (e.g. 3·layer + which), so no two calls of a run share a mask.
uint64_t dropout_seed(uint64_t run_seed, uint64_t step, uint64_t site);

// out = keep ? inp/(1 − p) : 0, p ∈ [0, 1]. out may be inp (in place); then p = 0 does nothing.
template <class Real>
void dropout_forward(Real* out,        // (N), any shape
                     const Real* inp,  // (N)
                     double p, uint64_t seed, int64_t N);

// ACCUMULATES: dinp += keep ? dout/(1 − p) : 0, with the forward's p and seed. dinp may not be
// dout.
template <class Real>
void dropout_backward(Real* dinp,        // (N)
                      const Real* dout,  // (N)
                      double p, uint64_t seed, int64_t N);

}  // namespace slope::nn
