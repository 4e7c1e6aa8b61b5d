// Internal: the floating-point environment of a thread while it runs the CPU kernels' tiles.
// Included by cpu_kernels.cpp and cpu_backward.cpp only.
//
// Why: far keys of a steep bias (ALiBi, a trained Kerple or T5 table) give probabilities near
// exp(−87), the smallest normal float, and the products with them (P·V, dS = P∘(dP − Dᵢ),
// dS·K, dSᵀ·Q) fall into the subnormal range. On Intel cores every instruction that produces a
// subnormal takes a microcode assist (~100 cycles). The backward meets them most: a training
// step's dO is ~10⁻⁵, so dS underflows wherever P < ~10⁻³³. Measured (Intel Xeon AVX-512,
// `slope bench train --T 1024 --B 2 --pos alibi` at init, with a temporary patch that turned
// far-tile skipping off, two rounds, before and after this guard): attention forward +
// backward 554 → 318 ms and 563 → 305 ms per step. With skipping on, the far tiles are
// skipped and the difference was within this machine's noise (docs/far-tile-skipping.md).
//
// What it changes: with MXCSR.FTZ a result below 2⁻¹²⁶ ≈ 1.18·10⁻³⁸ in magnitude becomes ±0, an
// absolute error < 2⁻¹²⁶ per operation instead of < 2⁻¹⁵⁰. Against a row whose largest
// probability is 1 (the kernels subtract the running max) that is far below the skip tolerance
// (2⁻²⁴ of a row's mass); the error model (error_bounds.cpp, kFlush) counts it per operation,
// so the bounds hold for results near 10⁻³⁸ too. DAZ (subnormal inputs read as 0) is left off: a caller's subnormal
// q, k, v or dO are read as they are, though a product that underflows (scale·q, say) is
// flushed like any other. Restored when the scope ends (OpenMP's pool threads run other code
// afterwards). In the per-ISA namespace like every header the kernels' translation units share.
#pragma once

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace slope::cpu::SLOPE_ISA {

class FlushSubnormalResults {
 public:
#if defined(__SSE__)
  FlushSubnormalResults() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | _MM_FLUSH_ZERO_ON); }
  ~FlushSubnormalResults() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#endif
 public:
  FlushSubnormalResults(const FlushSubnormalResults&) = delete;
  FlushSubnormalResults& operator=(const FlushSubnormalResults&) = delete;
};

}  // namespace slope::cpu::SLOPE_ISA
