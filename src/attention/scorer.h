// Internal: the definition of a score, shared by the float64 reference (reference.cpp) and the
// rounding-error model (error_bounds.cpp): which keys a query sees and the bias it adds. The
// fused kernels implement the same definition per tile (cpu_tiles.h) and are tested against it.
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <vector>

#include "attention/geometry.h"
#include "attention/relative_bias.h"
#include "slope/attention.h"

namespace slope::detail {

inline double re(double x) { return x; }
inline double re(const std::complex<double>& x) { return x.real(); }

// The bias and visibility of key j for query i of batch row b (its geometry g) in head h (the
// one definition). i and j count from the row's (document's) first query and key.
//   s_ij = cap(scale·q_i·k_j) + bias_bh(i, j) + mask(i, j),  cap(x) = softcap·tanh(x/softcap)
// (the identity when softcap is 0), visible when causality, the key length, the window
// pos − window_left <= j <= pos + window_right and the mask allow it.
template <class T>
struct Scorer {
  const AttentionProblem& p;
  const AttentionInputs<T>& in;

  // Where slope (b, h) and its gradient live: (H), or (B, H) with batch stride slopes_stride_b.
  int64_t slope_index(int64_t b, int64_t h) const { return b * p.slopes_stride_b + h; }

  // Softcap (Gemma 2, flash-attn's softcap): applied to the scaled dot product, before the bias
  // and the mask, in flash-attn 2's order. (flash-attn 2's kernels run apply_softcap on
  // acc_s = Q·Kᵀ, tanh(acc_s·scale/softcap), then mask.apply_mask adds the ALiBi bias divided
  // by scale_softmax = softcap, and the softmax multiplies by softcap: softcap·tanh(x/softcap)
  // + bias.) std::tanh works on complex<double> too, so the complex-step checks see through it.
  T cap(const T& x) const {
    if (p.softcap == 0.0f) return x;
    const double c = p.softcap;
    return c * std::tanh(x / c);
  }

  // Returns false when (i, j) is masked; otherwise adds the ALiBi bias and the explicit mask
  // to *s.
  bool visible(const RowGeometry& g, int64_t b, int64_t h, int64_t i, int64_t j, T* s) const {
    const int64_t pos = i + g.offset;
    if (j >= g.Tk) return false;
    if (p.causal && j > pos) return false;
    if (p.window_left >= 0 && j < pos - p.window_left) return false;
    if (p.window_right >= 0 && j > pos + p.window_right) return false;
    if (in.slopes_left && j != pos) {
      const bool left = j < pos;
      const T* slopes = (left || !in.slopes_right) ? in.slopes_left : in.slopes_right;
      const T m = slopes[slope_index(b, h)];
      if (std::isinf(re(m))) return false;
      const double dist = static_cast<double>(left ? pos - j : j - pos);
      *s -= m * dist;
    }
    if (in.rel.kind != RelativeBiasKind::kNone) *s += RelParams<T>{in.rel, p.H}.value(h, pos, j);
    if (p.mask_kind != MaskKind::kNone) {
      const int64_t off = b * p.mask_stride_b + h * p.mask_stride_h + i * p.mask_stride_t + j;
      if (p.mask_kind == MaskKind::kBool) {
        if (static_cast<const uint8_t*>(p.mask)[off] == 0) return false;
      } else {
        const float a = static_cast<const float*>(p.mask)[off];
        if (a == -std::numeric_limits<float>::infinity()) return false;
        *s += static_cast<double>(a);
      }
    }
    return true;
  }

  // |bias| + |mask| that visible(b, h, i, j) adds to the score: the magnitude the rounding of
  // that addition is relative to (error_bounds.cpp).
  double abs_bias(const RowGeometry& g, int64_t b, int64_t h, int64_t i, int64_t j) const {
    const int64_t pos = i + g.offset;
    double a = 0.0;
    if (in.slopes_left && j != pos) {
      const T* slopes = (j < pos || !in.slopes_right) ? in.slopes_left : in.slopes_right;
      a += std::abs(re(slopes[slope_index(b, h)])) *
           static_cast<double>(j < pos ? pos - j : j - pos);
    }
    if (in.rel.kind != RelativeBiasKind::kNone) a += rel_abs(h, pos, j);
    if (p.mask_kind == MaskKind::kAdditive) {
      const int64_t off = b * p.mask_stride_b + h * p.mask_stride_h + i * p.mask_stride_t + j;
      a += std::abs(static_cast<double>(static_cast<const float*>(p.mask)[off]));
    }
    return a;
  }

  // The relative bias's share of abs_bias: |bias|; for FIRE, whose kernel forms u = ψ(d)·(1/ψ(m))
  // from float tables (each entry and the product rounded: relative error ≤ 4u in u·N) and
  // interpolates F_n + t·dF_n (three roundings), |F_n| + |dF_n|·(1 + 3·u·N): 2u times it covers
  // 2u·|F_n| + 2u·|dF_n| + 6u·u·N·|dF_n| ≥ those errors.
  double rel_abs(int64_t h, int64_t pos, int64_t j) const {
    const RelParams<T> rp{in.rel, p.H};
    if (in.rel.kind != RelativeBiasKind::kFire) return std::abs(re(rp.value(h, pos, j)));
    T u = rp.fire_u_raw(pos, j);
    if (re(u) > 1.0) u = T(1.0);
    int64_t n;
    T t;
    rp.fire_cell(u, &n, &t);
    const double N = static_cast<double>(in.rel.fire_grid);
    const double f0 = re(rp.fire_f(h, T(n / N))), f1 = re(rp.fire_f(h, T((n + 1) / N)));
    return std::abs(f0) + std::abs(f1 - f0) * (1.0 + 3.0 * re(u) * N);
  }

  // Scores of row (b, h, i) into s (Tk), visibility into vis (keys j ≥ g.Tk: not visible, score
  // 0); with sech2, d cap(x)/dx there (1 − tanh²(x/softcap), 1 without softcap). Returns the
  // row max (-inf if none).
  double row(const RowGeometry& g, int64_t b, int64_t h, int64_t i, std::vector<T>& s,
             std::vector<char>& vis, std::vector<T>* sech2 = nullptr) const {
    const int64_t hk = h / (p.H / p.Hkv);
    const T* q = in.q + g.q + h * p.q_strides.h + i * p.q_strides.t;
    const double scale = p.effective_scale();
    double mx = -INFINITY;
    for (int64_t j = 0; j < p.Tk; ++j) {
      s[j] = 0;
      vis[j] = 0;
      if (j >= g.Tk) continue;
      const T* k = in.k + g.k + hk * p.k_strides.h + j * p.k_strides.t;
      T dot = 0;
      for (int64_t d = 0; d < p.D; ++d) dot += q[d] * k[d];
      T sj = cap(dot * scale);
      if (sech2)
        (*sech2)[j] =
            p.softcap == 0.0f ? T(1) : T(1) - (sj / double(p.softcap)) * (sj / double(p.softcap));
      vis[j] = visible(g, b, h, i, j, &sj);
      s[j] = sj;
      if (vis[j]) mx = std::max(mx, re(sj));
    }
    return mx;
  }
};

}  // namespace slope::detail
