// Internal: attention dropout in the CPU kernels. The keep factors Zc = Z/(1 − p) of a tile come
// from the vector Philox of cpu_philox.h (bitwise dropout.cpp's Random123 mask) and are multiplied
// into P where it meets V (forward, and dV in the backward) and into dP = Zc∘(dO·Vᵀ). The softmax
// itself (running max, normaliser, lse) never sees the mask. Included by cpu_kernels.cpp and
// cpu_backward.cpp (one copy per instruction set).
//
// D_i = rowsum(dO∘O) stays the softmax backward's D_i with dropout: out_i = Σ_j P_ij·Zc_ij·v_j,
// so dO_i·out_i = Σ_j P_ij·(Zc_ij·dO_i·v_j) = Σ_j P_ij·dP_ij, where dP_ij = ∂L/∂P_ij is the
// dropped, scaled dP formed here; hence dS = P∘(dP − D_i) with the undropped P.
// Far-tile skipping stays valid: a dropped key only removes mass from a row's output, never
// adds to a score or to the normaliser, so a skipped tile's bound is unchanged.
// Cost: one Philox4x32-10 per 4 (query, key) pairs, kW of them at once (cpu_philox.h).
// Measured, 1 thread, B=1 H=8 T=1024 D=64 causal ALiBi, time at p = 0.1 over p = 0, forward /
// backward: Random123's scalar calls from a baseline-flags file, AVX-512 2.8 / 1.8, AVX2 2.2 /
// 1.5 (wall clock; callgrind, AVX2: 1.93 / 1.38 instructions); the vector Philox, AVX-512 1.2 /
// 1.25, AVX2 1.27 / 1.21 (callgrind, AVX2: 1.19 / 1.13).
#pragma once

#include <cstdint>
#include <vector>

#include "attention/cpu_philox.h"
#include "attention/cpu_tiles.h"
#include "attention/dropout.h"
#include "slope/attention.h"

namespace slope::cpu::SLOPE_ISA {

// Per-thread: one tile of keep factors. Off (dropout_p = 0): holds nothing, and the kernels skip
// every step below.
class TileDropout {
 public:
  explicit TileDropout(const AttentionProblem& p)
      : on_(p.dropout_p != 0.0f),
        keys_(detail::dropout_keys(p)),
        factor_(static_cast<float>(detail::dropout_scale(p))),
        Zc_(on_ ? static_cast<size_t>(kTileQ * kTileK) : 0, 0.0f) {}

  bool on() const { return on_; }

  // Forward: St (keys × query lanes, leading dim kTileQ) *= Zcᵀ over the tile's real keys. Query
  // lanes ≥ nrows multiply the factors of rows past the tile (finite), and P·V never reads them.
  void apply_transposed(const TileGeom& g, float* St) {
    keep_tile_transposed(keys_, g.b, g.h, g.i0, g.nrows, g.j0, g.ncols, factor_, Zc_.data(),
                         kTileQ);
    for (int64_t c = 0; c < g.ncols; ++c)
      for (int64_t r = 0; r < g.nrows_pad; r += kW)
        store(St + c * kTileQ + r, load(St + c * kTileQ + r) * load(Zc_.data() + c * kTileQ + r));
  }

  // Backward: the factors of a (queries × keys) tile, leading dim kTileK. Key columns ≥ ncols
  // keep stale factors (finite), where P and dP are 0.
  void load_tile(const TileGeom& g) {
    keep_tile_rows(keys_, g.b, g.h, g.i0, g.nrows, g.j0, g.ncols, factor_, Zc_.data(), kTileK);
  }

  // dst = src∘Zc over the tile's rows and padded key columns (leading dim kTileK; dst may be
  // src).
  void multiply(float* dst, const float* src, const TileGeom& g) const {
    for (int64_t r = 0; r < g.nrows; ++r)
      for (int64_t c = 0; c < g.ncols_pad; c += kW)
        store(dst + r * kTileK + c, load(src + r * kTileK + c) * load(Zc_.data() + r * kTileK + c));
  }

 private:
  bool on_;
  detail::DropoutKeys keys_;
  float factor_;           // 1/(1 − p) rounded to fp32
  std::vector<float> Zc_;  // (kTileQ, kTileK) or its transpose: 0 (dropped) or factor_
};

}  // namespace slope::cpu::SLOPE_ISA
