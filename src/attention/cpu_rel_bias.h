// Internal: the learned relative biases (attention.h, relative_bias.h) in the CPU tiles — a
// head's view of the per-call tables and the per-score addition. Included by cpu_tiles.h (one
// copy per instruction set).
//
// Cost per score (the kind is fixed per call; one branch per tile picks the loop):
//   Kerple, T5: one contiguous vector load from the head's distance table and one add (the
//   table is built once per call, O((Tq + Tk)·H) evaluations of log/pow/bucket).
//   FIRE: two contiguous loads (ψ(|jd|) by distance, 1/ψ(max(L, pos)) by position), a multiply,
//   a min, a float→int conversion and two gathers from the head's grid (F_n, dF_n), and a
//   multiply-add.
#pragma once

#include <cstdint>

#include "attention/cpu_vec.h"
#include "attention/relative_bias.h"

namespace slope::cpu::SLOPE_ISA {

// Spare table entries on each side: vector lanes past a tile's last real row or column (a
// padded tile reaches at most kW − 1 past the problem's extents; 64 + kW leaves room to spare).
constexpr int64_t kRelPad = 64 + 2 * kW;

// One head's view of the tables (null pointers: no relative bias).
struct RelHead {
  const float* dist_fwd = nullptr;          // Kerple, T5: bias at dist_fwd[jd] (the table's jd = 0)
  const float* dist_rev = nullptr;          // ... and at dist_rev[−jd]
  const float* max_left = nullptr;          // largest bias at distance ≥ d left of the query, [d]
  const float* max_right = nullptr;         // ... right of it
  const detail::RelTables* fire = nullptr;  // FIRE's tables, with this head's grid:
  const float* F = nullptr;                 // F_n (N + 1)
  const float* dF = nullptr;                // F_{n+1} − F_n (N)
  bool on() const { return dist_fwd || fire; }
};

inline RelHead rel_head(const detail::RelTables* t, int64_t h) {
  RelHead r;
  if (!t || !t->on()) return r;
  if (t->distance_table()) {
    r.dist_fwd = t->fwd.data() + h * t->W + t->O;
    r.dist_rev = t->rev.data() + h * t->W + t->O;
    r.max_left = t->max_left.data() + h * (t->O + 1);
    r.max_right = t->max_right.data() + h * (t->O + 1);
  } else {
    r.fire = t;
    r.F = t->F.data() + h * (t->N + 1);
    r.dF = t->dF.data() + h * (t->N + 1);
  }
  return r;
}

// FIRE's bias of kW scores from ψ(|jd|) and 1/ψ(max(L, pos)) per lane: u = min(1, ψ·(1/ψ_m)),
// x = u·N, n = min(⌊x⌋, N − 1), F_n + (x − n)·dF_n. The scalar form (fire_cell_scalar) makes the
// same roundings.
inline vf fire_bias(vf psi, vf rinv, const float* F, const float* dF, int32_t N) {
  const vf x = vmin(psi * rinv, splat(1.0f)) * static_cast<float>(N);
  vi n = __builtin_convertvector(x, vi);  // x ≥ 0: truncation is the floor
  const vi last = vi{} + (N - 1);
  n = n > last ? last : n;
  const vf t = x - __builtin_convertvector(n, vf);
  return vgather(F, n) + t * vgather(dF, n);
}

// The cell and fraction of one score, as fire_bias forms them; returns whether u was clamped.
inline bool fire_cell_scalar(float psi, float rinv, int32_t N, int32_t* n, float* t) {
  const float raw = psi * rinv;
  const float x = (raw < 1.0f ? raw : 1.0f) * static_cast<float>(N);
  int32_t c = static_cast<int32_t>(x);
  if (c > N - 1) c = N - 1;
  *n = c;
  *t = x - static_cast<float>(c);
  return raw > 1.0f;
}

// Adds the relative bias to a score tile. kQueryLanes = false: S is (query rows × key columns),
// o a row (position pos0 + o), lane c the key j0 + c; true: Sᵀ, o the key j0 + o, lane c the
// query row at pos0 + c. Every lane gets a value (padding lanes too; masking comes after).
template <bool kQueryLanes>
inline void add_relative_bias(float* S, int64_t lds, int64_t n_outer, int64_t n_lanes, int64_t j0,
                              int64_t pos0, const RelHead& rh) {
  if (rh.dist_fwd) {
    for (int64_t o = 0; o < n_outer; ++o) {
      float* s = S + o * lds;
      // S: jd = j0 + c − (pos0 + o), at dist_fwd; Sᵀ: −jd = pos0 + c − (j0 + o), at dist_rev.
      const float* tab =
          kQueryLanes ? rh.dist_rev + (pos0 - j0 - o) : rh.dist_fwd + (j0 - pos0 - o);
      for (int64_t c = 0; c < n_lanes; c += kW) store(s + c, load(s + c) + load(tab + c));
    }
    return;
  }
  const detail::RelTables& t = *rh.fire;
  const int32_t N = static_cast<int32_t>(t.N);
  const float* rinv = t.rinv.data() + t.P0 + pos0;  // by row: rinv[r]
  for (int64_t o = 0; o < n_outer; ++o) {
    float* s = S + o * lds;
    const float* psi = kQueryLanes ? t.psi_rev.data() + t.O + (pos0 - j0 - o)
                                   : t.psi_fwd.data() + t.O + (j0 - pos0 - o);
    const vf rinv_row = splat(rinv[kQueryLanes ? 0 : o]);
    for (int64_t c = 0; c < n_lanes; c += kW) {
      const vf r = kQueryLanes ? load(rinv + c) : rinv_row;
      store(s + c, load(s + c) + fire_bias(load(psi + c), r, rh.F, rh.dF, N));
    }
  }
}

}  // namespace slope::cpu::SLOPE_ISA
