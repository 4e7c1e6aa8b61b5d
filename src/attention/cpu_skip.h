// Internal: far-tile skipping (docs/far-tile-skipping.md), one object built once per kernel call
// and asked per (key tile, block of query rows). Included by cpu_kernels.cpp and cpu_backward.cpp
// only (one copy per instruction set).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "attention/cpu_tiles.h"
#include "attention/geometry.h"
#include "slope/attention.h"

namespace slope::cpu::SLOPE_ISA {

// Norms enter the bound a hair above their computed value, so that fp32 rounding in the dot
// products of the scores cannot beat it.
constexpr float kNormSlack = 1.0f + 1e-5f;

// The bound (★) of docs/far-tile-skipping.md: a key tile J may be skipped for a block of query
// rows when every row r of the block has
//   ‖scale·q_r‖·max_{j∈J}‖k_j‖ + max_{j∈J} bias(r, j) − M_r < ln(skip_tolerance) − ln(Tk_b),
// M_r a score of the row already known (forward: the running max; backward: the logsumexp),
// Tk_b the keys batch row b holds (geometry.h: its key length or document, not the buffer, so
// that neither a longer KV buffer nor packing changes which tiles are skipped). Every
// probability of the tile is then at most skip_tolerance/Tk_b of the row's largest, and a row
// loses at most skip_tolerance of its softmax mass. With a softcap the score term is
// min(‖scale·q_r‖·max‖k_j‖, softcap): softcap·tanh(x/softcap) is at most min(x, softcap) for
// x ≥ 0 (and negative otherwise), so skipping stays on with a bound that only gets tighter.
class FarTileSkip {
 public:
  FarTileSkip(const AttentionProblem& p, const AttentionInputs<float>& in)
      : enabled_((in.slopes_left || in.rel.kind == RelativeBiasKind::kKerpleLog ||
                  in.rel.kind == RelativeBiasKind::kKerplePower ||
                  in.rel.kind == RelativeBiasKind::kT5) &&
                 p.skip_tolerance > 0.0f && p.mask_kind != MaskKind::kAdditive),
        n_key_tiles_((p.Tk + kTileK - 1) / kTileK),
        hkv_(p.Hkv),
        cap_bound_(p.softcap > 0.0f ? p.softcap * kNormSlack : INFINITY) {
    if (!enabled_) return;
    log_threshold_.resize(static_cast<size_t>(p.B));
    for (int64_t b = 0; b < p.B; ++b) {
      const int64_t Tk_b = std::max<int64_t>(1, detail::row_geometry(p, b).Tk);
      log_threshold_[static_cast<size_t>(b)] =
          std::log(p.skip_tolerance) - std::log(static_cast<float>(Tk_b));
    }
    key_norm_max_ = key_norm_maxima(p, in.k);
  }

  // Whether key tile t of kv head (b, hk) is skipped for the rows of g. q_norm (g.nrows):
  // ‖scale·q_r‖·kNormSlack; row_ref (g.nrows): M_r. A row whose M_r is −∞ has seen no score
  // yet (forward: it cannot be skipped) or has no visible key at all (backward, lse = −∞:
  // nothing to compute); dead_rows says which.
  enum class MinusInf { kNotYetSeen, kDeadRow };
  bool skips(const AttentionProblem& p, const HeadBias& hb, const TileGeom& g, int64_t b,
             int64_t hk, int64_t t, const float* q_norm, const float* row_ref,
             MinusInf dead_rows) const {
    if (!enabled_ || !may_skip(p, hb, g)) return false;
    const float kmax = key_norm_max_[static_cast<size_t>((b * hkv_ + hk) * n_key_tiles_ + t)];
    const float log_threshold = log_threshold_[static_cast<size_t>(b)];
    for (int64_t r = 0; r < g.nrows; ++r) {
      if (dead_rows == MinusInf::kDeadRow && row_ref[r] == -INFINITY) continue;
      if (!(std::min(q_norm[r] * kmax, cap_bound_) + max_bias_in_tile(g, hb, r) - row_ref[r] <
            log_threshold))
        return false;
    }
    return true;
  }

 private:
  // Max ‖k_j‖·kNormSlack over the visible keys (j < Tk_b) of each key tile, per (b, kv head).
  static std::vector<float> key_norm_maxima(const AttentionProblem& p, const float* k) {
    const int64_t ntk = (p.Tk + kTileK - 1) / kTileK;
    std::vector<float> out(static_cast<size_t>(p.B * p.Hkv * ntk));
#pragma omp parallel for schedule(static)
    for (int64_t item = 0; item < p.B * p.Hkv * ntk; ++item) {
      const int64_t t = item % ntk, bh = item / ntk, hk = bh % p.Hkv, b = bh / p.Hkv;
      const detail::RowGeometry rg = detail::row_geometry(p, b);
      float mx = 0.0f;
      for (int64_t j = t * kTileK; j < std::min(rg.Tk, (t + 1) * kTileK); ++j) {
        const float* kj = k + rg.k + hk * p.k_strides.h + j * p.k_strides.t;
        mx = std::max(mx, dot(kj, kj, p.D));
      }
      out[static_cast<size_t>(item)] = std::sqrt(mx) * kNormSlack;
    }
    return out;
  }

  bool enabled_;
  int64_t n_key_tiles_, hkv_;
  float cap_bound_;  // softcap (a hair above: fp32 rounding of softcap·tanh), or +inf
  std::vector<float> log_threshold_;  // (B): ln(skip_tolerance) − ln(Tk_b)
  std::vector<float> key_norm_max_;   // (B, Hkv, n_key_tiles)
};

}  // namespace slope::cpu::SLOPE_ISA
