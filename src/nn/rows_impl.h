// Internal: the per-row and per-column loops of LayerNorm, the linear layer's bias gradient and
// AdamW, written once as templates on the scalar. The float64 layers call them directly (the
// reference); float_kernels.cpp instantiates them for float once per instruction set, where
// `omp simd` turns each row sum into vector-lane sums (fixed lanes: the result depends on the
// instruction set, never on the threads). No threading here: callers split rows or channels.
#pragma once

#include <cmath>
#include <cstdint>

namespace slope::nn::impl {

// One row of LayerNorm: o = (x − mean)·rstd·weight + bias; two-pass statistics.
template <class Real>
inline void layernorm_forward_row(Real* o, Real* mean, Real* rstd, const Real* x,
                                  const Real* weight, const Real* bias, int64_t C, Real eps) {
  Real m = 0;
#pragma omp simd reduction(+ : m)
  for (int64_t c = 0; c < C; ++c) m += x[c];
  m /= static_cast<Real>(C);
  Real v = 0;
#pragma omp simd reduction(+ : v)
  for (int64_t c = 0; c < C; ++c) v += (x[c] - m) * (x[c] - m);
  v /= static_cast<Real>(C);
  const Real s = Real(1) / std::sqrt(v + eps);
  if (bias) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c] + bias[c];
  } else {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c];
  }
  *mean = m;
  *rstd = s;
}

// One row of LayerNorm's input gradient, ACCUMULATED: with n = (x − m)·s and g = dout·weight,
// dx += s·(g − mean(g) − n·mean(g·n)).
template <class Real>
inline void layernorm_backward_row(Real* dx, const Real* dout, const Real* x, Real m, Real s,
                                   const Real* weight, int64_t C) {
  Real g_mean = 0, gn_mean = 0;
#pragma omp simd reduction(+ : g_mean, gn_mean)
  for (int64_t c = 0; c < C; ++c) {
    const Real gw = dout[c] * weight[c];
    g_mean += gw;
    gn_mean += gw * (x[c] - m) * s;
  }
  g_mean /= static_cast<Real>(C);
  gn_mean /= static_cast<Real>(C);
#pragma omp simd
  for (int64_t c = 0; c < C; ++c)
    dx[c] += s * (dout[c] * weight[c] - g_mean - (x[c] - m) * s * gn_mean);
}

// LayerNorm's weight and bias gradients over channels [c0, c0 + w), w ≤ kMaxChannels,
// ACCUMULATED; rows in order (the sum does not depend on the threads owning other channels).
inline constexpr int64_t kMaxChannels = 64;
template <class Real>
inline void layernorm_param_grads(Real* dweight, Real* dbias, const Real* dout, const Real* inp,
                                  const Real* mean, const Real* rstd, int64_t rows, int64_t C,
                                  int64_t c0, int64_t w) {
  Real dw[kMaxChannels] = {}, db[kMaxChannels] = {};
  for (int64_t r = 0; r < rows; ++r) {
    const Real* x = inp + r * C + c0;
    const Real* g = dout + r * C + c0;
    const Real m = mean[r], s = rstd[r];
#pragma omp simd
    for (int64_t c = 0; c < w; ++c) {
      dw[c] += g[c] * (x[c] - m) * s;
      db[c] += g[c];
    }
  }
  for (int64_t c = 0; c < w; ++c) {
    dweight[c0 + c] += dw[c];
    if (dbias) dbias[c0 + c] += db[c];
  }
}

// dst[c] += Σ_r src[r·ld + c] for c < w ≤ kMaxChannels, rows in order: a linear layer's dbias.
template <class Real>
inline void column_sums(Real* dst, const Real* src, int64_t rows, int64_t ld, int64_t w) {
  Real acc[kMaxChannels] = {};
  for (int64_t r = 0; r < rows; ++r) {
    const Real* row = src + r * ld;
#pragma omp simd
    for (int64_t c = 0; c < w; ++c) acc[c] += row[c];
  }
  for (int64_t c = 0; c < w; ++c) dst[c] += acc[c];
}

// The constants of one AdamW step (train/adamw.h has the formula).
template <class Real>
struct AdamWStep {
  Real beta1, beta2, one_minus_beta1, one_minus_beta2;
  Real step_size;  // lr / (1 − β1^t)
  Real rsqrt_bc2;  // 1 / √(1 − β2^t)
  Real eps;
};

// p ← p·keep − step_size·m / (√v·rsqrt_bc2 + eps) after the moment updates, n entries.
template <class Real>
inline void adamw_update(Real* p, const Real* g, Real* m, Real* v, int64_t n, Real keep,
                         const AdamWStep<Real>& k) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    m[i] = k.beta1 * m[i] + k.one_minus_beta1 * g[i];
    v[i] = k.beta2 * v[i] + k.one_minus_beta2 * g[i] * g[i];
    p[i] = p[i] * keep - k.step_size * m[i] / (std::sqrt(v[i]) * k.rsqrt_bc2 + k.eps);
  }
}

}  // namespace slope::nn::impl
