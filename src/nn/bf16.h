// bf16 GEMM inputs for `slope train --dtype bf16` (issue 18, item 4): the linear layers'
// operands rounded to bfloat16, multiplied by oneDNN's matmul with float32 accumulation and a
// float32 result. Everything else (master weights, gradients, AdamW, LayerNorm, softmax,
// attention) stays float32; nn::gemm routes here while gemm_dtype() is bf16 (gemm.h).
//
// Hardware: bf16 pays only on CPUs with AVX512_BF16 or AMX-BF16 (bf16_native()). oneDNN also
// emulates bf16 on plain AVX-512 (avx512_core): the same numbers, slower than float32. That
// emulation is for tests only and needs SLOPE_BF16_EMULATE=1 (require_bf16()).
#pragma once

#include <bit>
#include <cstdint>

namespace slope::nn {

// float32 → bfloat16 bits (the float's top 16), rounded to nearest, ties to even. ±inf and
// ±0 stay; finite values past the largest bf16 (0x7F7F: 3.39e38) round to ±inf; subnormals
// round like any other value (no flush to zero); NaN stays NaN (quiet, sign kept).
// Branch-free (both outcomes computed, the NaN test selects one), so loops over it vectorise.
inline uint16_t bf16_round(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (u >> 16) | 0x0040u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

// bfloat16 bits → float32: exact.
inline float bf16_to_float(uint16_t h) { return std::bit_cast<float>(uint32_t{h} << 16); }

// out (rows, cols), dense = bf16_round(in (rows, cols) with row stride ld). Threaded (OpenMP).
void bf16_round_rows(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld);

// Whether this CPU multiplies bf16 natively: AVX512_BF16 or AMX-BF16, as oneDNN sees it at run
// time (so ONEDNN_MAX_CPU_ISA=AVX512_CORE makes it false on any CPU). False without oneDNN.
bool bf16_native();

// Whether oneDNN can make a bf16 matmul here at all, natively or by emulation (avx512_core);
// false on AVX2-only CPUs and in builds without oneDNN. Tried once per process.
bool bf16_matmul_available();

// Throws slope::Error in one line unless bf16 GEMMs may run: bf16_native(), or
// SLOPE_BF16_EMULATE=1 and bf16_matmul_available() (for testing only: oneDNN's emulation).
void require_bf16();

// nn::gemm's contract (gemm.h) with op(A) and op(B) rounded to bf16 first (bf16_round), the
// products and their sums in float32, C float32: C (m, n) = α · op(A) · op(B) + β · C, row-major,
// either operand transposed; β = 0 does not read C. Error against the float64 product of the
// rounded operands: within γ_{k+1}·(|α|·|op(A)|·|op(B)| + |β|·|C|) (the bf16 products are exact
// in float32), plus subnormal flushes where native instructions treat subnormals as zero.
// Caller checks require_bf16(); throws slope::Error where oneDNN fails or is not built.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc);

}  // namespace slope::nn
