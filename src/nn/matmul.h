// The linear layer, torch.nn.Linear: weight stored (OC, C) as nanoGPT and PyTorch store it.
// The products are OpenBLAS GEMMs (sgemm for float, dgemm for double), threaded by OpenBLAS.
#pragma once

#include <cstdint>

#include "nn/common.h"

namespace slope::nn {

// out = inp · weightᵀ + bias. Each of B·T, C and OC must fit in a BLAS int (2^31 − 1).
template <class Real>
void matmul_forward(Real* out,                   // (B, T, OC)
                    const Real* inp,             // (B, T, C)
                    const Real* weight,          // (OC, C)
                    const NoDeduce<Real>* bias,  // (OC), or null
                    int64_t B, int64_t T, int64_t C, int64_t OC);

// ACCUMULATES: dinp += dout · weight,  dweight += doutᵀ · inp,  dbias += Σ_rows dout;
// with dinp_write = GradWrite::overwrite, dinp = dout · weight instead (dinp is not read).
// Deterministic for a given thread count (OpenBLAS's GEMM); dbias does not depend on it.
template <class Real>
void matmul_backward(Real* dinp,             // (B, T, C)
                     Real* dweight,          // (OC, C)
                     NoDeduce<Real>* dbias,  // (OC), or null: no bias
                     const Real* dout,       // (B, T, OC)
                     const Real* inp,        // (B, T, C)
                     const Real* weight,     // (OC, C)
                     int64_t B, int64_t T, int64_t C, int64_t OC,
                     GradWrite dinp_write = GradWrite::accumulate);

}  // namespace slope::nn
