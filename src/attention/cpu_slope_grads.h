// Internal: the slope gradients of the CPU backward, ∂L/∂m = Σ dS·∂bias/∂m, summed per row with
// the flash formulation's systematic errors removed. Included by cpu_backward.cpp only (one copy
// per instruction set).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "attention/cpu_tiles.h"

namespace slope::cpu::SLOPE_ISA {

// Slope gradients without the systematic errors of the flash formulation. Exactly,
//   ∂L/∂m_left = Σ_i Σ_{j<pos} P_ij·(dP_ij − D_i)·(j − pos),
// but the kernel's D_i = rowsum(dO∘O) is off by ~eps·|D_i|, and its recomputed P (fp32 scores,
// fp32 lse) sums to S_i = 1 ± ~6e-7 instead of 1; both errors are multiplied by distances of
// 10²–10³ in every row. So per row, from the very P and dP the kernel computed,
//   A_i = Σ_{j<pos} dS_ij·(j − pos),  B_i = Σ_{j<pos} P_ij·(j − pos),
//   E_i = Σ_j P_ij·dP_ij,  S_i = Σ_j P_ij,
// and with P̂ = P/S_i (rows summing to 1) and D̂_i = E_i/S_i (consistent with P̂, dP):
//   Σ_{j<pos} P̂_ij·(dP_ij − D̂_i)·(j − pos) = (A_i + (D_i − E_i/S_i)·B_i) / S_i,
// (and the mirror for m_right). The sums are flushed to double per tile. Measured against
// PyTorch float64 autograd on a ragged causal case: 2.6e-4 before (3.5× torch float32's error),
// within 2× torch float32's error after, as every case of tests/python is.
class SlopeRowSums {
 public:
  typedef double vd __attribute__((vector_size(kW * sizeof(double))));
  static constexpr int kSums = 6;  // E, S, A_left, B_left, A_right, B_right

  explicit SlopeRowSums(int64_t n_rows) : sums_(static_cast<size_t>(n_rows * kSums)) {}
  void clear() { std::fill(sums_.begin(), sums_.end(), vd{}); }
  void add(int64_t row, const vf (&v)[kSums]) {
    vd* s = &sums_[static_cast<size_t>(row * kSums)];
    for (int q = 0; q < kSums; ++q) s[q] += __builtin_convertvector(v[q], vd);
  }
  // Adds row terms over rows [row0, row0 + n) to out[0] (left) and out[1] (right).
  void finish(int64_t row0, int64_t n, const float* D, double* out) const {
    for (int64_t i = row0; i < row0 + n; ++i) {
      const vd* s = &sums_[static_cast<size_t>(i * kSums)];
      double v[kSums];
      for (int q = 0; q < kSums; ++q) {
        v[q] = 0.0;
        for (int lane = 0; lane < kW; ++lane) v[q] += s[q][lane];
      }
      if (!(v[1] > 0.0)) continue;  // no probability in this row (fully masked or all skipped)
      const double d_corr = static_cast<double>(D[i]) - v[0] / v[1];
      out[0] += (v[2] + d_corr * v[3]) / v[1];
      out[1] += (v[4] + d_corr * v[5]) / v[1];
    }
  }

 private:
  std::vector<vd> sums_;
};

// dS = P∘(dP − Dᵢ) of one row, written over dP, and the row's slope-gradient sums (see
// SlopeRowSums). jd0 = j0 − pos, the signed distance of the tile's first key.
inline void slope_terms(const float* pr, float* ds, float di, float jd0, int64_t ncols_pad,
                        TileSide side, SlopeRowSums* rows, int64_t row) {
  const vf lane = iota();
  vf sums[SlopeRowSums::kSums] = {};  // E, S, A_left, B_left, A_right, B_right of this tile
  for (int64_t c = 0; c < ncols_pad; c += kW) {
    // A masked 0 of P meets no NaN of v, dO or Dᵢ: dS and the sums' terms are 0 there.
    const vf pv = load(pr + c);
    const vi seen = pv != 0.0f;
    const vf dpv = seen ? load(ds + c) : vf{};
    const vf dsv = seen ? pv * (dpv - di) : vf{};
    store(ds + c, dsv);
    // ∂bias/∂m_left = j − pos for j < pos, ∂bias/∂m_right = pos − j for j > pos.
    const vf jd = lane + (jd0 + static_cast<float>(c));
    const vf dsjd = dsv * jd, pjd = pv * jd;
    sums[0] += pv * dpv;
    sums[1] += pv;
    if (side == TileSide::kLeft) {  // jd ≤ 0 throughout (jd = 0 adds 0)
      sums[2] += dsjd;
      sums[3] += pjd;
    } else if (side == TileSide::kRight) {
      sums[4] -= dsjd;
      sums[5] -= pjd;
    } else {
      sums[2] += jd < 0.0f ? dsjd : vf{};
      sums[3] += jd < 0.0f ? pjd : vf{};
      sums[4] -= jd > 0.0f ? dsjd : vf{};
      sums[5] -= jd > 0.0f ? pjd : vf{};
    }
  }
  rows->add(row, sums);
}

}  // namespace slope::cpu::SLOPE_ISA
