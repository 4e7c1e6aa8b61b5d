// Internal: the float kernels of the layers' element-wise and row-wise work (GELU, softmax
// cross-entropy's exps, LayerNorm, a linear layer's dbias, AdamW's update),
// compiled once per instruction set like the attention kernels (float_kernels.cpp with
// SLOPE_ISA = generic, avx2, avx512) on attention/cpu_vec.h's vectors, and chosen at run time
// by cpu::best_isa() (env SLOPE_ISA overrides). Each works on one contiguous range, single
// threaded: the callers in pointwise.cpp and crossentropy.cpp split the work over threads. The
// float64 versions of the layers stay on libm: they are the reference these are tested against.
//
// Error bounds (absolute, u = 2⁻²⁴; derived in float_kernels.cpp, tested in
// tests/nn/test_float_kernels.cpp over dense grids against the float64 layers):
//   gelu:       |Δ| ≤ |x|·kGeluPhiError + u·|gelu(x)|,  Φ(x) by Abramowitz & Stegun 7.1.26
//   gelu grad:  |Δ| ≤ kGeluPhiError + |x|·φ(x)·8u + u·|grad|   (per unit of dout)
//   exp sums:   relative ≤ 4u per exp (cpu_vec.h's vexp, 2 ulp) before the summation's rounding
#pragma once

#include <cstdint>

#include "attention/cpu_kernels.h"  // cpu::Isa, cpu::best_isa
#include "nn/rows_impl.h"           // impl::AdamWStep

namespace slope::nn::isa {

// |Φ_fast(x) − Φ(x)| ≤ kGeluPhiError for every float x: A&S 7.1.26's 1.5·10⁻⁷ on erf, halved
// (Φ = ½(1 + erf)), plus the float evaluation of erfc ≤ 16u (see float_kernels.cpp), halved.
inline constexpr double kGeluPhiError = 0.5 * 1.5e-7 + 0.5 * 16.0 / (1 << 24);

#define SLOPE_DECLARE_POINTWISE(ns)                                                               \
  namespace ns {                                                                                  \
  void gelu_forward(float* out, const float* inp, int64_t n);                                     \
  void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool acc);      \
  void gelu_tanh_forward(float* out, const float* inp, int64_t n);                                \
  void gelu_tanh_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool acc); \
  float max_of(const float* z, int64_t n);                                                        \
  float exp_sum(const float* z, int64_t n, float shift);                                          \
  void add_scaled_exp(float* dz, const float* z, int64_t n, float shift, float scale);            \
  void layernorm_forward_rows(float* out, float* mean, float* rstd, const float* inp,             \
                              const float* weight, const float* bias, int64_t rows, int64_t C,    \
                              float eps);                                                         \
  void layernorm_backward_rows(float* dinp, const float* dout, const float* inp,                  \
                               const float* mean, const float* rstd, const float* weight,         \
                               int64_t rows, int64_t C);                                          \
  void layernorm_param_grads(float* dweight, float* dbias, const float* dout, const float* inp,   \
                             const float* mean, const float* rstd, int64_t rows, int64_t C,       \
                             int64_t c0, int64_t w);                                              \
  void column_sums(float* dst, const float* src, int64_t rows, int64_t ld, int64_t w);            \
  void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float keep,          \
                    const impl::AdamWStep<float>& k);                                             \
  void bf16_round_range(uint16_t* out, const float* in, int64_t n);                               \
  }
SLOPE_DECLARE_POINTWISE(generic)
SLOPE_DECLARE_POINTWISE(avx2)
SLOPE_DECLARE_POINTWISE(avx512)
#undef SLOPE_DECLARE_POINTWISE

// The kernel set for an instruction set: one table, so callers pick once per call.
struct Kernels {
  void (*gelu_forward)(float*, const float*, int64_t);
  void (*gelu_backward)(float*, const float*, const float*, int64_t, bool);  // acc: += or =
  void (*gelu_tanh_forward)(float*, const float*, int64_t);
  void (*gelu_tanh_backward)(float*, const float*, const float*, int64_t, bool);
  float (*max_of)(const float*, int64_t);                               // max z[i], n ≥ 1
  float (*exp_sum)(const float*, int64_t, float);                       // Σ exp(z[i] − shift)
  void (*add_scaled_exp)(float*, const float*, int64_t, float, float);  // dz += s·exp(z − shift)
  // rows_impl.h's loops (LayerNorm rows and parameter gradients, a linear layer's dbias, AdamW).
  void (*layernorm_forward_rows)(float*, float*, float*, const float*, const float*, const float*,
                                 int64_t, int64_t, float);
  void (*layernorm_backward_rows)(float*, const float*, const float*, const float*, const float*,
                                  const float*, int64_t, int64_t);
  void (*layernorm_param_grads)(float*, float*, const float*, const float*, const float*,
                                const float*, int64_t, int64_t, int64_t, int64_t);
  void (*column_sums)(float*, const float*, int64_t, int64_t, int64_t);
  void (*adamw_update)(float*, const float*, float*, float*, int64_t, float,
                       const impl::AdamWStep<float>&);
  // out[i] = bf16_round(in[i]) (nn/bf16.h: nearest-even, subnormals kept, NaN quiet), bit for
  // bit the scalar function's on every instruction set.
  void (*bf16_round_range)(uint16_t*, const float*, int64_t);
};

inline Kernels kernels(cpu::Isa which = cpu::best_isa()) {
#define SLOPE_KERNELS(ns)                                                                          \
  Kernels {                                                                                        \
    ns::gelu_forward, ns::gelu_backward, ns::gelu_tanh_forward, ns::gelu_tanh_backward,            \
        ns::max_of, ns::exp_sum, ns::add_scaled_exp, ns::layernorm_forward_rows,                   \
        ns::layernorm_backward_rows, ns::layernorm_param_grads, ns::column_sums, ns::adamw_update, \
        ns::bf16_round_range                                                                       \
  }
  switch (which) {
    case cpu::Isa::kAvx512:
      return SLOPE_KERNELS(avx512);
    case cpu::Isa::kAvx2:
      return SLOPE_KERNELS(avx2);
    default:
      return SLOPE_KERNELS(generic);
  }
#undef SLOPE_KERNELS
}

}  // namespace slope::nn::isa
