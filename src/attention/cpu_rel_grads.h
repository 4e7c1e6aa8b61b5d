// Internal: the gradient sums of a learned relative bias in the CPU backward. Included by
// cpu_backward.cpp only (one copy per instruction set).
//
// Kerple: two parameters per head, so the slopes' per-row sums (cpu_slope_grads.h,
// SlopeRowSums) serve with the weights ∂bias/∂r1 and ∂bias/∂r2 (tables by distance) in place
// of the distance: A_i = Σ_j dS_ij·w_ij, B_i = Σ_j P_ij·w_ij, E_i, S_i, and per row
// (A_i + (D_i − E_i/S_i)·B_i)/S_i, which removes the flash formulation's systematic error
// (D_i = rowsum(dO∘O) and the recomputed P's row sum S_i ≠ 1, both multiplied by weights of up to
// d^r2). Cost per score: two table loads and six multiply-adds.
// T5 (and FIRE's rows whose normaliser is ψ(L), which is every row shorter than L: then the
// bias is a function of the distance alone) need Σ dS per (head, signed distance): each row of
// a block adds its dS vector, widened to double, into a block histogram at offset
// (nrows − 1 − r), contiguous, flushed per block into the (batch row, kv head) item's. The chain
// rule to the parameters runs once per call outside the kernel (relative_bias.cpp,
// O((Tq + Tk)·H)). (Measured: float block sums made T5's table gradient 2.03× the naive fp32
// error on t5_causal_packed_dropout; double, within 2×.)
// FIRE's other rows (p_i ≥ L) scatter dS·(1 − t) and dS·t into their grid cells and sum
// dS·∂bias/∂c per row, one score at a time (scalar; at training lengths below L there are
// none). Everything is summed in a fixed order per item and reduced over the batch in a fixed
// order: deterministic, independent of the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "attention/cpu_slope_grads.h"
#include "attention/cpu_tiles.h"
#include "attention/relative_bias.h"

namespace slope::cpu::SLOPE_ISA {

class RelGradSums {
 public:
  RelGradSums(const detail::RelTables& t, int64_t group, int64_t Tq, bool on)
      : t_(t),
        on_(on && t.on()),
        fire_(on_ && t.kind == RelativeBiasKind::kFire),
        kerple_(on_ && !t.w_r1.empty()),
        rows_(kerple_ ? group * Tq : 0),
        Tq_(Tq),
        hist_(on_ && !kerple_ ? static_cast<size_t>(group * t.W) : 0),
        block_(on_ && !kerple_ ? static_cast<size_t>((kTileQ + kTileK + 2 * kW) / kW) : 0),
        dF_(fire_ ? static_cast<size_t>(group * (t.N + 1)) : 0),
        dc_(fire_ ? static_cast<size_t>(group) : 0) {}

  bool on() const { return on_; }
  // Kerple computes dS itself (kerple_row) to keep E_i = Σ P·dP.
  bool kerple() const { return kerple_; }

  void clear() {
    rows_.clear();
    std::fill(hist_.begin(), hist_.end(), 0.0);
    std::fill(dF_.begin(), dF_.end(), 0.0);
    std::fill(dc_.begin(), dc_.end(), 0.0);
  }

  void start_block() { std::fill(block_.begin(), block_.end(), vd{}); }

  // Kerple, row r of block g (query head gh): dS = P∘(dP − Dᵢ) written over dP (ds), and the
  // row's sums (see the top of this file).
  void kerple_row(const float* pr, float* ds, float di, const TileGeom& g, int64_t r, int64_t gh) {
    const int64_t jd0 = g.j0 - (g.pos0 + r);
    const float* w1 = t_.w_r1.data() + g.h * t_.W + t_.O + jd0;
    const float* w2 = t_.w_r2.data() + g.h * t_.W + t_.O + jd0;
    vf sums[SlopeRowSums::kSums] = {};  // E, S, A_r1, B_r1, A_r2, B_r2
    for (int64_t c = 0; c < g.ncols_pad; c += kW) {
      const vf pv = load(pr + c);
      const vi seen = pv != 0.0f;  // a masked 0 of P meets no NaN of v, dO or Dᵢ
      const vf dpv = seen ? load(ds + c) : vf{};
      const vf dsv = seen ? pv * (dpv - di) : vf{};
      store(ds + c, dsv);
      const vf a = load(w1 + c), b = load(w2 + c);
      sums[0] += pv * dpv;
      sums[1] += pv;
      sums[2] += dsv * a;
      sums[3] += pv * a;
      sums[4] += dsv * b;
      sums[5] += pv * b;
    }
    rows_.add(gh * Tq_ + g.i0 + r, sums);
  }

  // Row r of block g (query head gh of the item): ds holds dS over the padded keys (0 where
  // masked or padding).
  void add_row(const HeadBias& hb, const TileGeom& g, int64_t r, const float* ds, int64_t gh) {
    const int64_t pos = g.pos0 + r;
    if (fire_ && !t_.m_is_L[static_cast<size_t>(pos + t_.P0)]) {
      fire_row(hb.rel, g, pos, ds, gh);
      return;
    }
    // Entry k: jd = j0 − (pos0 + nrows − 1) + k, at offset k of the block (not vector-aligned:
    // the doubles are kept as scalars, kW at a time).
    double* bh = reinterpret_cast<double*>(block_.data()) + (g.nrows - 1 - r);
    for (int64_t c = 0; c < g.ncols_pad; c += kW) {
      const vd x = __builtin_convertvector(load(ds + c), vd);
      vd y;
      std::memcpy(&y, bh + c, sizeof y);
      y += x;
      std::memcpy(bh + c, &y, sizeof y);
    }
  }

  void flush_block(const TileGeom& g, int64_t gh) {
    const int64_t jd_min = g.j0 - (g.pos0 + g.nrows - 1);
    double* h = hist_.data() + gh * t_.W + t_.O + jd_min;
    const double* bh = reinterpret_cast<const double*>(block_.data());
    for (int64_t k = 0; k < g.nrows - 1 + g.ncols_pad; ++k) h[k] += bh[k];
  }

  // The item's sums into the per-(b, h) partials: Kerple's two gradients into kerple
  // (B, H, 2); the others' hist (B, H, W), and FIRE's
  // dF (B, H, N + 1) and dc (B, H). rg_Tq: the item's rows; Di: its (group, Tq) Dᵢ.
  void finish_item(int64_t b, int64_t hk, int64_t group, int64_t H, int64_t rg_Tq, const float* Di,
                   std::vector<double>& kerple, std::vector<double>& hist, std::vector<double>& dF,
                   std::vector<double>& dc) const {
    for (int64_t gh = 0; gh < group; ++gh) {
      const int64_t bh = b * H + hk * group + gh;
      if (kerple_) {
        rows_.finish(gh * Tq_, rg_Tq, Di, &kerple[static_cast<size_t>(bh * 2)]);
        continue;
      }
      std::copy(hist_.begin() + gh * t_.W, hist_.begin() + (gh + 1) * t_.W,
                hist.begin() + bh * t_.W);
      if (!fire_) continue;
      std::copy(dF_.begin() + gh * (t_.N + 1), dF_.begin() + (gh + 1) * (t_.N + 1),
                dF.begin() + bh * (t_.N + 1));
      dc[static_cast<size_t>(bh)] = dc_[static_cast<size_t>(gh)];
    }
  }

 private:
  // A FIRE row whose normaliser is ψ(pos) (pos ≥ L): ∂bias/∂F_n = 1 − t, ∂bias/∂F_{n+1} = t,
  // and ∂bias/∂c = N·dF_n·(ψ_c(d)/ψ(m) − ψ(d)·ψ_c(m)/ψ(m)²) where u is not clamped (m = pos:
  // nothing for L).
  void fire_row(const RelHead& rh, const TileGeom& g, int64_t pos, const float* ds, int64_t gh) {
    const int32_t N = static_cast<int32_t>(t_.N);
    const float rinv = t_.rinv[static_cast<size_t>(pos + t_.P0)];
    double* dF = dF_.data() + gh * (t_.N + 1);
    double a = 0.0, b = 0.0;  // Σ dS·slope·ψ_c(d), Σ dS·slope·ψ(d)
    for (int64_t c = 0; c < g.ncols; ++c) {
      const float d = ds[c];
      if (d == 0.0f) continue;
      const int64_t jd = g.j0 + c - pos;
      const float psi = t_.psi_fwd[static_cast<size_t>(t_.O + jd)];
      int32_t n;
      float t;
      const bool clamped = fire_cell_scalar(psi, rinv, N, &n, &t);
      dF[n] += static_cast<double>(d) * (1.0 - static_cast<double>(t));
      dF[n + 1] += static_cast<double>(d) * t;
      if (clamped) continue;
      const double slope = static_cast<double>(N) * rh.dF[n];
      a += d * slope * t_.psic[static_cast<size_t>(jd < 0 ? -jd : jd)];
      b += d * slope * psi;
    }
    const double pm = t_.psi_m[static_cast<size_t>(pos + t_.P0)];
    const double pcm = t_.psic_m[static_cast<size_t>(pos + t_.P0)];
    dc_[static_cast<size_t>(gh)] += a / pm - b * pcm / (pm * pm);
  }

  typedef double vd __attribute__((vector_size(kW * sizeof(double))));
  const detail::RelTables& t_;
  bool on_, fire_, kerple_;
  SlopeRowSums rows_;  // Kerple: (group, Tq) rows of sums
  int64_t Tq_;
  std::vector<double> hist_;  // (group, W)
  std::vector<vd> block_;     // ≥ kTileQ + kTileK + kW doubles: the block's Σ dS by distance
  std::vector<double> dF_;    // (group, N + 1)
  std::vector<double> dc_;    // (group)
};

}  // namespace slope::cpu::SLOPE_ISA
