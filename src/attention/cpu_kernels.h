// Internal: the fused CPU kernels, one set per instruction set. cpu_kernels.cpp (forward) and
// cpu_backward.cpp are compiled once for each (SLOPE_ISA = generic, avx2, avx512) and
// cpu_dispatch.cpp picks one at run time.
// Callers validate the problem first; nothing below re-checks it.
#pragma once

#include "slope/attention.h"

namespace slope::cpu {

enum class Isa : int { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

const char* isa_name(Isa isa);
bool isa_supported(Isa isa);  // by this processor
Isa best_isa();               // the one attention_forward/backward use (env SLOPE_ISA overrides)

void forward(Isa isa, const AttentionProblem& p, const AttentionInputs<float>& in, float* out,
             float* lse);
void backward(Isa isa, const AttentionProblem& p, const AttentionInputs<float>& in,
              const float* out, const float* dout, const float* lse,
              const AttentionGrads<float>& grads);

// The kernels' dropout keep factors of a tile (cpu_philox.h), for tests against the scalar
// reference detail::dropout_keep_tile: transposed: tile[r + c·ld] for r < nrows rounded up to
// whole vectors of this instruction set (ld must hold them), c < ncols; else tile[r·ld + c].
void dropout_keep_tile(Isa isa, const AttentionProblem& p, int64_t b, int64_t h, int64_t i0,
                       int64_t nrows, int64_t j0, int64_t ncols, float value, float* tile,
                       int64_t ld, bool transposed);

#define SLOPE_DECLARE_ISA(ns)                                                                  \
  namespace ns {                                                                               \
  void forward(const AttentionProblem& p, const AttentionInputs<float>& in, float* out,        \
               float* lse);                                                                    \
  void backward(const AttentionProblem& p, const AttentionInputs<float>& in, const float* out, \
                const float* dout, const float* lse, const AttentionGrads<float>& grads);      \
  void dropout_keep_tile(const AttentionProblem& p, int64_t b, int64_t h, int64_t i0,          \
                         int64_t nrows, int64_t j0, int64_t ncols, float value, float* tile,   \
                         int64_t ld, bool transposed);                                         \
  }
SLOPE_DECLARE_ISA(generic)
SLOPE_DECLARE_ISA(avx2)
SLOPE_DECLARE_ISA(avx512)
#undef SLOPE_DECLARE_ISA

}  // namespace slope::cpu
