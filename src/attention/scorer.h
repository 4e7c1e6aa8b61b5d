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
#include "slope/attention.h"

namespace slope::detail {

inline double re(double x) { return x; }
inline double re(const std::complex<double>& x) { return x.real(); }

// The bias and visibility of key j for query i of batch row b (its geometry g) in head h (the
// one definition). i and j count from the row's (document's) first query and key.
template <class T>
struct Scorer {
  const AttentionProblem& p;
  const AttentionInputs<T>& in;

  // Returns false when (i, j) is masked; otherwise adds the ALiBi bias and the explicit mask
  // to *s.
  bool visible(const RowGeometry& g, int64_t b, int64_t h, int64_t i, int64_t j, T* s) const {
    const int64_t pos = i + g.offset;
    if (j >= g.Tk) return false;
    if (p.causal && j > pos) return false;
    if (in.slopes_left && j != pos) {
      const bool left = j < pos;
      const T* slopes = (left || !in.slopes_right) ? in.slopes_left : in.slopes_right;
      const T m = slopes[h];
      if (std::isinf(re(m))) return false;
      const double dist = static_cast<double>(left ? pos - j : j - pos);
      *s -= m * dist;
    }
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
      a += std::abs(re(slopes[h])) * static_cast<double>(j < pos ? pos - j : j - pos);
    }
    if (p.mask_kind == MaskKind::kAdditive) {
      const int64_t off = b * p.mask_stride_b + h * p.mask_stride_h + i * p.mask_stride_t + j;
      a += std::abs(static_cast<double>(static_cast<const float*>(p.mask)[off]));
    }
    return a;
  }

  // Scores of row (b, h, i) into s (Tk), visibility into vis (keys j ≥ g.Tk: not visible, score
  // 0). Returns the row max (-inf if none).
  double row(const RowGeometry& g, int64_t b, int64_t h, int64_t i, std::vector<T>& s,
             std::vector<char>& vis) const {
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
      T sj = dot * scale;
      vis[j] = visible(g, b, h, i, j, &sj);
      s[j] = sj;
      if (vis[j]) mx = std::max(mx, re(sj));
    }
    return mx;
  }
};

}  // namespace slope::detail
