// The float element-wise kernels of float_kernels.h, for one instruction set (SLOPE_ISA), on the
// vectors of attention/cpu_vec.h: the exact GELU's Φ by Abramowitz & Stegun, GPT-2's tanh GELU
// by vtanh, and the exps of the softmax cross-entropy by vexp. Tails shorter than a vector go
// through a padded copy, so every element takes the same arithmetic whatever its position.
#include "nn/float_kernels.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numbers>

#include "attention/cpu_vec.h"
#include "nn/bf16.h"
#include "nn/rows_impl.h"

namespace slope::nn::isa::SLOPE_ISA {

using namespace slope::cpu::SLOPE_ISA;  // vf, kW, load, store, splat, vexp, vtanh, vmax, hmax

namespace {

constexpr float kInvSqrt2 = static_cast<float>(1.0 / std::numbers::sqrt2);
constexpr float kInvSqrt2Pi = static_cast<float>(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
constexpr float kSqrt2OverPi = static_cast<float>(std::numbers::sqrt2 * std::numbers::inv_sqrtpi);
constexpr float kGeluCubic = 0.044715f;

// Φ(x) = ½(1 + erf(x/√2)) and *w = exp(−x²/2) (the normal density's exponential, which the
// backward reuses). Abramowitz & Stegun 7.1.26 (Hastings): for a ≥ 0,
//   erfc(a) ≈ E(a) = t·(a₁ + t·(a₂ + t·(a₃ + t·(a₄ + t·a₅))))·exp(−a²),  t = 1/(1 + p·a),
// |erf(a) − (1 − E)| ≤ 1.5·10⁻⁷ for all a ≥ 0. With a = |x|/√2: Φ(x) = 1 − E/2 for x ≥ 0 and
// E/2 for x < 0 (no 1 + erf cancellation on the negative side). Float evaluation of E ≤ 1:
// t ≤ 2u relative, Horner's sums ≤ 1.5 in magnitude and 5 roundings ≈ 8u, vexp's 4u, the
// rounding of a² carried by exp (E·2.5u·a² ≤ 0.4u) and the two products: ≤ 16u in all, the
// budget of kGeluPhiError. Special values: ±∞ give Φ = 1 / 0 (so gelu(−∞) = −∞·0 = NaN, as
// libm's form), NaN gives NaN.
inline vf normal_cdf(vf x, vf* w) {
  const vf a = vmax(x, -x) * kInvSqrt2;
  *w = vexp(-(a * a));
  const vf t = 1.0f / (1.0f + 0.3275911f * a);
  vf p = splat(1.061405429f);
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const vf e = p * t * *w;  // ≈ erfc(|x|/√2)
  return x >= 0.0f ? 1.0f - 0.5f * e : 0.5f * e;
}

// out = f(inputs, acc) over whole vectors, acc the old out when read_out (an accumulating
// backward), else zero (out is then never read: a forward, or a gradient that overwrites); then
// once over the tail through copies, the inputs padded with `pad`, nothing stored beyond n.
template <int kIn, class F>
inline void for_vectors(int64_t n, float* const (&outs)[1], const float* const (&ins)[kIn],
                        bool read_out, float pad, F&& f) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    vf in[kIn];
    for (int k = 0; k < kIn; ++k) in[k] = load(ins[k] + i);
    store(outs[0] + i, f(in, read_out ? load(outs[0] + i) : vf{}));
  }
  if (i == n) return;
  const int64_t r = n - i;
  float buf[kIn][kW], ob[kW] = {};
  vf in[kIn];
  for (int k = 0; k < kIn; ++k) {
    for (int l = 0; l < kW; ++l) buf[k][l] = l < r ? ins[k][i + l] : pad;
    in[k] = load(buf[k]);
  }
  if (read_out) std::memcpy(ob, outs[0] + i, static_cast<size_t>(r) * sizeof(float));
  store(ob, f(in, load(ob)));
  std::memcpy(outs[0] + i, ob, static_cast<size_t>(r) * sizeof(float));
}

}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
  for_vectors<1>(n, {out}, {inp}, false, 0.0f, [](const vf* in, vf) {
    vf w;
    return in[0] * normal_cdf(in[0], &w);
  });
}

// d gelu/dx = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π).
void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool acc) {
  for_vectors<2>(n, {dinp}, {inp, dout}, acc, 0.0f, [](const vf* in, vf old) {
    vf w;
    const vf cdf = normal_cdf(in[0], &w);
    return old + in[1] * (cdf + in[0] * (w * kInvSqrt2Pi));
  });
}

void gelu_tanh_forward(float* out, const float* inp, int64_t n) {
  for_vectors<1>(n, {out}, {inp}, false, 0.0f, [](const vf* in, vf) {
    const vf x = in[0];
    vf sech2;
    const vf t = vtanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x), &sech2);
    return 0.5f * x * (1.0f + t);
  });
}

void gelu_tanh_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool acc) {
  for_vectors<2>(n, {dinp}, {inp, dout}, acc, 0.0f, [](const vf* in, vf old) {
    const vf x = in[0];
    vf sech2;
    const vf t = vtanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x), &sech2);
    const vf dy = kSqrt2OverPi * (1.0f + (3.0f * kGeluCubic) * x * x);
    return old + in[1] * (0.5f * (1.0f + t) + 0.5f * x * sech2 * dy);
  });
}

// The largest z[i]; a NaN anywhere gives NaN (so a diverged row's logsumexp is NaN, never the
// max of its other entries: vexp turns NaN into a tiny value, and the NaN must not vanish).
float max_of(const float* z, int64_t n) {
  const float inf = std::numeric_limits<float>::infinity();
  vf m = splat(-inf);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    const vf v = load(z + i);
    m = ((v > m) | (v != v)) ? v : m;
  }
  float mx = -inf;
  for (int l = 0; l < kW; ++l) mx = m[l] > mx || m[l] != m[l] ? m[l] : mx;
  for (; i < n; ++i) mx = (z[i] > mx || z[i] != z[i]) && mx == mx ? z[i] : mx;
  return mx;
}

// Σ exp(z[i] − shift) in kW lane sums (added in a fixed order: the result does not depend on
// threads), each exp by vexp (≤ 2 ulp); padding is −∞, whose exp is exactly 0.
float exp_sum(const float* z, int64_t n, float shift) {
  vf acc{};
  int64_t i = 0;
  for (; i + kW <= n; i += kW) acc += vexp(load(z + i) - shift);
  if (i < n) {
    float buf[kW];
    for (int l = 0; l < kW; ++l)
      buf[l] = i + l < n ? z[i + l] : -std::numeric_limits<float>::infinity();
    acc += vexp(load(buf) - shift);
  }
  return hsum(acc);
}

void add_scaled_exp(float* dz, const float* z, int64_t n, float shift, float scale) {
  for_vectors<1>(n, {dz}, {z}, true, 0.0f,
                 [=](const vf* in, vf acc) { return acc + scale * vexp(in[0] - shift); });
}

void layernorm_forward_rows(float* out, float* mean, float* rstd, const float* inp,
                            const float* weight, const float* bias, int64_t rows, int64_t C,
                            float eps) {
  for (int64_t r = 0; r < rows; ++r)
    impl::layernorm_forward_row(out + r * C, mean + r, rstd + r, inp + r * C, weight, bias, C, eps);
}

void layernorm_backward_rows(float* dinp, const float* dout, const float* inp, const float* mean,
                             const float* rstd, const float* weight, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; ++r)
    impl::layernorm_backward_row(dinp + r * C, dout + r * C, inp + r * C, mean[r], rstd[r], weight,
                                 C);
}

void layernorm_param_grads(float* dweight, float* dbias, const float* dout, const float* inp,
                           const float* mean, const float* rstd, int64_t rows, int64_t C,
                           int64_t c0, int64_t w) {
  impl::layernorm_param_grads(dweight, dbias, dout, inp, mean, rstd, rows, C, c0, w);
}

void column_sums(float* dst, const float* src, int64_t rows, int64_t ld, int64_t w) {
  impl::column_sums(dst, src, rows, ld, w);
}

void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float keep,
                  const impl::AdamWStep<float>& k) {
  impl::adamw_update(p, g, m, v, n, keep, k);
}

void bf16_round_range(uint16_t* out, const float* in, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_round(in[i]);  // nn/bf16.h, branch-free
}

}  // namespace slope::nn::isa::SLOPE_ISA
