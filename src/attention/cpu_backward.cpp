// Fused CPU attention, fp32: the flash-attention-2 backward over the one problem description
// (the forward: cpu_kernels.cpp). Compiled once per instruction set, like the forward.
//
// Per (batch row or document, kv head) item (it owns dK and dV of that head, so no atomics;
// tiles never cross a document boundary):
//   for each key tile, for each query head of the group and each query tile that can see it:
//   S and P = exp(S − lse) recomputed, dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − Dᵢ),
//   dK += dSᵀ·Qs, dQ += dS·K (dQ kept per item, O(Tq·D) per thread), slope gradients
//   Σ dS·∂bias/∂m summed per item in double and reduced over the batch in a fixed order, so the
//   result does not depend on the thread count.
//   Parallelism is B·Hkv items; with fewer items than threads the rest idle (rare in training).
//   Key tiles outside every window are not loaded; with a softcap, dS·sech²(x/softcap) (kept
//   per score tile) goes to dQ and dK, dS itself to the slopes (the bias comes after the cap).
//
// Buffer legend: a `t` suffix is a transposed tile (Kt, Vt), `p` a copy padded to whole vectors
// (Kp, dOp), `s` scaled by `scale` (Qs); pad dims (Dpad, Dvpad) are rounded up to kW.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "attention/cpu_dropout.h"
#include "attention/cpu_fp_env.h"
#include "attention/cpu_kernels.h"
#include "attention/cpu_rel_grads.h"
#include "attention/cpu_skip.h"
#include "attention/cpu_slope_grads.h"
#include "attention/cpu_tiles.h"
#include "attention/geometry.h"

namespace slope::cpu::SLOPE_ISA {

namespace {

// ---- Backward --------------------------------------------------------------------------------

// Per-thread buffers of the backward, for one (batch, kv head) item.
struct BackwardTiles {
  std::vector<float> Qs;     // (kTileQ, Dpad): scale·Q tile
  std::vector<float> Kt;     // (Dpad, kTileK): Kᵀ of the key tile, for S = Qs·Kᵀ
  std::vector<float> Kp;     // (kTileK, Dpad): K tile, when D is not whole vectors (for dQ)
  std::vector<float> Vt;     // (Dvpad, kTileK): Vᵀ of the key tile, for dP = dO·Vᵀ
  std::vector<float> dOp;    // (kTileQ, Dvpad): dO tile, when Dv is not whole vectors
  std::vector<float> S;      // (kTileQ, kTileK): scores, then P
  std::vector<float> dP;     // (kTileQ, kTileK): dP, then dS, then dS·sech² (softcap)
  std::vector<float> sech2;  // (kTileQ, kTileK): d cap(x)/dx of the scores (softcap only)
  std::vector<float> dK;     // (kTileK, Dpad): dK of the key tile
  std::vector<float> dV;     // (kTileK, Dvpad): dV of the key tile
  std::vector<float> dQ;     // (group, Tq, Dpad): dQ/scale of every query head of the item
  std::vector<float> Di;     // (group, Tq): rowsum(dO∘O)
  std::vector<float> qnorm;  // (group, Tq): ‖scale·q_i‖·kNormSlack, for the skip bound
  SlopeRowSums rows;         // (group, Tq) rows of slope-gradient sums, when asked for
  RelGradSums rel;           // the relative bias's gradient sums, when asked for
  TileDropout drop;          // the block's dropout factors Zc (cpu_dropout.h)

  BackwardTiles(const AttentionProblem& p, int64_t Dpad, int64_t Dvpad, bool slope_grads,
                const detail::RelTables& rt, bool rel_grads)
      : Qs(static_cast<size_t>(kTileQ * Dpad)),
        Kt(static_cast<size_t>(Dpad * kTileK)),
        Kp(static_cast<size_t>(kTileK * Dpad)),
        Vt(static_cast<size_t>(Dvpad * kTileK)),
        dOp(static_cast<size_t>(kTileQ * Dvpad)),
        S(kTileQ * kTileK),
        dP(kTileQ * kTileK),
        sech2(p.softcap > 0.0f ? kTileQ * kTileK : 0),
        dK(static_cast<size_t>(kTileK * Dpad)),
        dV(static_cast<size_t>(kTileK * Dvpad)),
        dQ(static_cast<size_t>(p.H / p.Hkv * p.Tq * Dpad)),
        Di(static_cast<size_t>(p.H / p.Hkv * p.Tq)),
        qnorm(Di.size()),
        rows(slope_grads ? p.H / p.Hkv * p.Tq : 0),
        rel(rt, p.H / p.Hkv, p.Tq, rel_grads),
        drop(p) {}
};

// What every tile of one (batch row or document, kv head) item reads.
struct BackwardItem {
  detail::RowGeometry rg;  // where batch row b lives
  int64_t b, hk, group, Dpad, Dvpad;
  const float* k;  // this item's key rows, k_strides.t apart
  const float* v;  // this item's value rows
  bool slope_grads;
  const detail::RelTables* rt;  // the call's relative-bias tables
};

// Zeroes the item's dK and dV rows (keys no query sees keep a zero gradient) and dQ; forms
// Dᵢ = rowsum(dO∘O) and ‖scale·qᵢ‖ per query head of the group.
void start_backward_item(const AttentionProblem& p, const AttentionInputs<float>& in,
                         const float* out, const float* dout, const AttentionGrads<float>& grads,
                         const BackwardItem& it, BackwardTiles& w) {
  float* dk = grads.dk + it.rg.k + it.hk * p.k_strides.h;
  float* dv = grads.dv + it.rg.v + it.hk * p.v_strides.h;
  for (int64_t j = 0; j < it.rg.Tk_rows; ++j) {
    std::fill(dk + j * p.k_strides.t, dk + j * p.k_strides.t + p.D, 0.0f);
    std::fill(dv + j * p.v_strides.t, dv + j * p.v_strides.t + p.Dv, 0.0f);
  }
  std::fill(w.dQ.begin(), w.dQ.end(), 0.0f);
  const float scale = p.effective_scale();
  for (int64_t gh = 0; gh < it.group; ++gh) {
    const int64_t h = it.hk * it.group + gh;
    for (int64_t i = 0; i < it.rg.Tq; ++i) {
      const int64_t oo = it.rg.out + h * p.out_strides.h + i * p.out_strides.t;
      // In double: dS = P∘(dP − Dᵢ) cancels where P is nearly one-hot, so Dᵢ carries no
      // accumulation error of its own.
      w.Di[gh * p.Tq + i] = static_cast<float>(dot_double(dout + oo, out + oo, p.Dv));
      const float* qi = in.q + it.rg.q + h * p.q_strides.h + i * p.q_strides.t;
      w.qnorm[gh * p.Tq + i] = std::sqrt(dot(qi, qi, p.D)) * std::abs(scale) * kNormSlack;
    }
  }
  w.rows.clear();
  w.rel.clear();
}

// Kᵀ and Vᵀ of the key tile (for S and dP), K padded (for dQ) unless usable in place; returns
// the K rows dQ reads and their leading dimension.
const float* load_key_tile(const AttentionProblem& p, const BackwardItem& it, int64_t j0,
                           int64_t ncols, int64_t ncols_pad, BackwardTiles& w, int64_t* ldk) {
  for (int64_t d = 0; d < p.D; ++d)
    for (int64_t c = 0; c < ncols_pad; ++c)
      w.Kt[d * kTileK + c] = c < ncols ? it.k[(j0 + c) * p.k_strides.t + d] : 0.0f;
  for (int64_t d = 0; d < p.Dv; ++d)
    for (int64_t c = 0; c < ncols_pad; ++c)
      w.Vt[d * kTileK + c] = c < ncols ? it.v[(j0 + c) * p.v_strides.t + d] : 0.0f;
  const float* kp = it.k + j0 * p.k_strides.t;
  *ldk = p.k_strides.t;
  if (p.D % kW != 0) {
    copy_rows_padded(w.Kp.data(), it.Dpad, kp, p.k_strides.t, ncols, p.D);
    kp = w.Kp.data();
    *ldk = it.Dpad;
  }
  return kp;
}

// One (query tile of head gh, key tile) block of the backward: P = exp(S − lse) recomputed,
// dV += (P∘Zc)ᵀ·dO, dP = Zc∘(dO·Vᵀ) (Zc: dropout's factors, cpu_dropout.h; none without
// dropout), dS = P∘(dP − Dᵢ) (with the slope-gradient row sums), dK += dSᵀ·Qs
// (scale already in Qs), dQ += dS·K (scale applied at the end). kp/ldk: from load_key_tile.
void backward_block(const AttentionProblem& p, const AttentionInputs<float>& in, const float* dout,
                    const float* lse_h, const HeadBias& hb, const TileGeom& g, int64_t gh,
                    const BackwardItem& it, const float* kp, int64_t ldk, BackwardTiles& w) {
  const float* q = in.q + it.rg.q + g.h * p.q_strides.h + g.i0 * p.q_strides.t;
  copy_rows_padded(w.Qs.data(), it.Dpad, q, p.q_strides.t, g.nrows, p.D, p.effective_scale());
  const float* dO = dout + it.rg.out + g.h * p.out_strides.h + g.i0 * p.out_strides.t;
  int64_t lddo = p.out_strides.t;
  if (p.Dv % kW != 0) {
    copy_rows_padded(w.dOp.data(), it.Dvpad, dO, p.out_strides.t, g.nrows, p.Dv);
    dO = w.dOp.data();
    lddo = it.Dvpad;
  }
  mm_AB(w.S.data(), kTileK, w.Qs.data(), it.Dpad, w.Kt.data(), kTileK, g.nrows, g.ncols_pad, p.D);
  if (p.softcap > 0.0f)
    softcap_tile(w.S.data(), kTileK, g.nrows, g.ncols_pad, p.softcap, w.sech2.data());
  bias_and_mask_tile<false>(w.S.data(), kTileK, g, hb, p);
  for (int64_t r = 0; r < g.nrows; ++r) {
    float* s = w.S.data() + r * kTileK;
    const float l_r = lse_h[g.i0 + r];
    if (l_r == -INFINITY) {  // fully masked row: no probability, no gradient
      std::fill(s, s + g.ncols_pad, 0.0f);
      continue;
    }
    // A masked score gives exactly 0, even when l_r is not finite (a NaN row).
    for (int64_t c = 0; c < g.ncols_pad; c += kW) {
      const vf x = load(s + c);
      store(s + c, x == -INFINITY ? vf{} : vexp(x - l_r));
    }
  }
  // Where some probability is a masked 0, the products below leave its terms out when the rows
  // it would meet are not all finite (cpu_tiles.h, tile_fully_visible).
  const bool masked_zeros = !tile_fully_visible<false>(g, hb, p);
  const float* Pv = w.S.data();  // P as it meets dO: with dropout P∘Zc, in dP's buffer for now
  if (w.drop.on()) {
    w.drop.load_tile(g);
    w.drop.multiply(w.dP.data(), w.S.data(), g);
    Pv = w.dP.data();
  }
  mm_AtB_acc(w.dV.data(), it.Dvpad, Pv, kTileK, dO, lddo, g.ncols, it.Dvpad, g.nrows,
             masked_zeros && !all_finite(dO, lddo, g.nrows, p.Dv));
  mm_AB(w.dP.data(), kTileK, dO, lddo, w.Vt.data(), kTileK, g.nrows, g.ncols_pad, p.Dv);
  if (w.drop.on()) w.drop.multiply(w.dP.data(), w.dP.data(), g);
  if (w.rel.on() && !w.rel.kerple()) w.rel.start_block();
  for (int64_t r = 0; r < g.nrows; ++r) {
    float* ds = w.dP.data() + r * kTileK;
    const float* pr = w.S.data() + r * kTileK;
    const float di = w.Di[gh * p.Tq + g.i0 + r];
    if (w.rel.kerple()) {
      w.rel.kerple_row(pr, ds, di, g, r, gh);
      continue;
    }
    if (!it.slope_grads) {
      for (int64_t c = 0; c < g.ncols_pad; c += kW) {
        const vf pv = load(pr + c);  // dS = 0 where P = 0, whatever dP (a NaN v or dO)
        store(ds + c, pv != 0.0f ? pv * (load(ds + c) - di) : vf{});
      }
      if (w.rel.on()) w.rel.add_row(hb, g, r, ds, gh);  // the bias takes dS, as the slopes do
      continue;
    }
    slope_terms(pr, ds, di, static_cast<float>(g.j0 - (g.pos0 + r)), g.ncols_pad, g.side, &w.rows,
                gh * p.Tq + g.i0 + r);
  }
  if (w.rel.on() && !w.rel.kerple()) w.rel.flush_block(g, gh);
  // The bias sits after the cap, so the slopes took dS; q and k get dS·sech²(x/softcap).
  for (int64_t r = 0; p.softcap > 0.0f && r < g.nrows; ++r)
    for (int64_t c = 0; c < g.ncols_pad; c += kW) {
      const vf ds = load(&w.dP[r * kTileK + c]);  // a masked 0 stays 0 (sech² may be NaN there)
      store(&w.dP[r * kTileK + c], ds != 0.0f ? ds * load(&w.sech2[r * kTileK + c]) : vf{});
    }
  mm_AtB_acc(w.dK.data(), it.Dpad, w.dP.data(), kTileK, w.Qs.data(), it.Dpad, g.ncols, it.Dpad,
             g.nrows, masked_zeros && !all_finite(w.Qs.data(), it.Dpad, g.nrows, p.D));
  mm_AB_acc(w.dQ.data() + (gh * p.Tq + g.i0) * it.Dpad, it.Dpad, w.dP.data(), kTileK, kp, ldk,
            g.nrows, it.Dpad, g.ncols, masked_zeros && !all_finite(kp, ldk, g.ncols, p.D));
}

// Key tile t of the item, against every query head of the group and every query tile that can
// see it; writes the tile's dK and dV rows. Returns nothing; rows no query sees stay zero, and a
// tile no query tile computes (outside every window, or skipped) is not even loaded.
void backward_key_tile(const AttentionProblem& p, const AttentionInputs<float>& in,
                       const float* dout, const float* lse, const AttentionGrads<float>& grads,
                       const FarTileSkip& skip, const BackwardItem& it, int64_t t,
                       BackwardTiles& w) {
  const int64_t j0 = t * kTileK;
  const detail::RowGeometry& rg = it.rg;
  const int64_t ncols = std::min(kTileK, rg.Tk - j0), ncols_pad = round_up(ncols, kW);
  int64_t ldk = 0;
  const float* kp = nullptr;  // loaded with the first block that needs it
  bool touched = false;
  for (int64_t gh = 0; gh < it.group; ++gh) {
    const int64_t h = it.hk * it.group + gh;
    const HeadBias hb = head_bias(p, in, it.b, h, it.rt);
    int64_t ib, ie;  // query rows that can see some key of this tile
    visible_queries(hb, rg.Tq, rg.offset, j0, j0 + ncols - 1, &ib, &ie);
    const float* lse_h = lse + rg.lse + h * rg.lse_h;
    for (int64_t i0 = ib; i0 < ie; i0 += kTileQ) {
      const int64_t nrows = std::min(kTileQ, ie - i0);
      TileGeom g{.b = it.b,
                 .h = h,
                 .i0 = i0,
                 .nrows = nrows,
                 .nrows_pad = round_up(nrows, kW),
                 .pos0 = i0 + rg.offset,
                 .j0 = j0,
                 .ncols = ncols,
                 .ncols_pad = ncols_pad,
                 .side = TileSide::kCross};
      g.side = tile_side(j0, ncols, g.pos0, g.pos0 + g.nrows - 1);
      if (skip.skips(p, hb, g, it.b, it.hk, t, w.qnorm.data() + gh * p.Tq + i0, lse_h + i0,
                     FarTileSkip::MinusInf::kDeadRow))
        continue;
      if (!touched) {
        kp = load_key_tile(p, it, j0, ncols, ncols_pad, w, &ldk);
        std::fill(w.dK.begin(), w.dK.end(), 0.0f);
        std::fill(w.dV.begin(), w.dV.end(), 0.0f);
        touched = true;
      }
      backward_block(p, in, dout, lse_h, hb, g, gh, it, kp, ldk, w);
    }
  }
  if (!touched) return;
  float* dk = grads.dk + rg.k + it.hk * p.k_strides.h;
  float* dv = grads.dv + rg.v + it.hk * p.v_strides.h;
  for (int64_t c = 0; c < ncols; ++c) {
    std::copy(w.dK.data() + c * it.Dpad, w.dK.data() + c * it.Dpad + p.D,
              dk + (j0 + c) * p.k_strides.t);
    std::copy(w.dV.data() + c * it.Dvpad, w.dV.data() + c * it.Dvpad + p.Dv,
              dv + (j0 + c) * p.v_strides.t);
  }
}

// dslopes from the per-(b, h, side) partial sums: shared slopes (H) reduce them over b in a
// fixed order; per-batch slopes (B, H) take each b's own at b·slopes_stride_b + h.
void reduce_slope_gradients(const AttentionProblem& p, const AttentionInputs<float>& in,
                            const std::vector<double>& slope_part,
                            const AttentionGrads<float>& grads) {
  const bool shared = in.slopes_right == nullptr;
  const int64_t n_out = p.slopes_stride_b == 0 ? 1 : p.B;  // slope rows written
  for (int64_t bo = 0; bo < n_out; ++bo)
    for (int64_t h = 0; h < p.H; ++h) {
      double left = 0.0, right = 0.0;
      for (int64_t b = (n_out == 1 ? 0 : bo); b < (n_out == 1 ? p.B : bo + 1); ++b) {
        left += slope_part[static_cast<size_t>((b * p.H + h) * 2)];
        right += slope_part[static_cast<size_t>((b * p.H + h) * 2 + 1)];
      }
      const int64_t at = bo * p.slopes_stride_b + h;
      if (shared) {
        if (grads.dslopes_left) grads.dslopes_left[at] = static_cast<float>(left + right);
      } else {
        if (grads.dslopes_left) grads.dslopes_left[at] = static_cast<float>(left);
        if (grads.dslopes_right) grads.dslopes_right[at] = static_cast<float>(right);
      }
    }
}

// The relative bias's gradient: the per-(b, h) sums reduced over b in a fixed order, then the
// chain rule to the parameters (relative_bias.cpp).
void reduce_rel_gradients(const AttentionProblem& p, const AttentionInputs<float>& in,
                          const detail::RelTables& rt, const std::vector<double>& hist_part,
                          const std::vector<double>& dF_part, const std::vector<double>& dc_part,
                          float* drel) {
  std::vector<double> hist(static_cast<size_t>(p.H * rt.W), 0.0);
  std::vector<double> dF(dF_part.empty() ? 0 : static_cast<size_t>(p.H * (rt.N + 1)), 0.0);
  double dc = 0.0;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      const int64_t bh = b * p.H + h;
      for (int64_t k = 0; k < rt.W; ++k)
        hist[static_cast<size_t>(h * rt.W + k)] += hist_part[static_cast<size_t>(bh * rt.W + k)];
      if (dF.empty()) continue;
      for (int64_t n = 0; n <= rt.N; ++n)
        dF[static_cast<size_t>(h * (rt.N + 1) + n)] +=
            dF_part[static_cast<size_t>(bh * (rt.N + 1) + n)];
      dc += dc_part[static_cast<size_t>(bh)];
    }
  detail::rel_param_grads(rt, in.rel, hist, dF, dc, 0.0, drel);
}

}  // namespace

void backward(const AttentionProblem& p, const AttentionInputs<float>& in, const float* out,
              const float* dout, const float* lse, const AttentionGrads<float>& grads) {
  const float scale = p.effective_scale();
  const int64_t Dpad = round_up(p.D, kW), Dvpad = round_up(p.Dv, kW);
  const int64_t ntk = (p.Tk + kTileK - 1) / kTileK;
  const FarTileSkip skip(p, in);
  // Fixed slopes (no slope gradient asked for) skip the row sums: ALiBi then costs only its bias.
  const bool slope_grads = in.slopes_left && (grads.dslopes_left || grads.dslopes_right);
  // Slope gradient partial sums per (b, h, side), reduced over b in a fixed order at the end.
  std::vector<double> slope_part(static_cast<size_t>(p.B * p.H * 2), 0.0);
  // The relative bias: its tables, and its gradient's per-(b, h) partial sums when asked for
  // (cpu_rel_grads.h), reduced over b in a fixed order at the end.
  const detail::RelTables rt = detail::build_rel_tables(p, in.rel, kRelPad);
  const bool rel_grads = rt.on() && grads.drel;
  const bool fire = rel_grads && rt.kind == RelativeBiasKind::kFire;
  const bool kerple = rel_grads && !rt.w_r1.empty();
  std::vector<double> rel_kerple(kerple ? static_cast<size_t>(p.B * p.H * 2) : 0),
      rel_hist(rel_grads && !kerple ? static_cast<size_t>(p.B * p.H * rt.W) : 0),
      rel_dF(fire ? static_cast<size_t>(p.B * p.H * (rt.N + 1)) : 0),
      rel_dc(fire ? static_cast<size_t>(p.B * p.H) : 0);
  // One workspace per thread, made here: an allocation that fails inside the parallel region
  // could not throw out of it (std::terminate).
  const int threads = omp_get_max_threads();
  std::vector<std::unique_ptr<BackwardTiles>> workspaces;
  for (int t = 0; t < threads; ++t)
    workspaces.push_back(
        std::make_unique<BackwardTiles>(p, Dpad, Dvpad, slope_grads, rt, rel_grads));
#pragma omp parallel num_threads(threads)
  {
    const FlushSubnormalResults ftz;
    BackwardTiles& w = *workspaces[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < p.B * p.Hkv; ++item) {
      const int64_t b = item / p.Hkv, hk = item % p.Hkv;
      const detail::RowGeometry rg = detail::row_geometry(p, b);
      const BackwardItem it{.rg = rg,
                            .b = b,
                            .hk = hk,
                            .group = p.H / p.Hkv,
                            .Dpad = Dpad,
                            .Dvpad = Dvpad,
                            .k = in.k + rg.k + hk * p.k_strides.h,
                            .v = in.v + rg.v + hk * p.v_strides.h,
                            .slope_grads = slope_grads,
                            .rt = &rt};
      start_backward_item(p, in, out, dout, grads, it, w);
      for (int64_t t = 0; t < ntk && t * kTileK < rg.Tk; ++t)
        backward_key_tile(p, in, dout, lse, grads, skip, it, t, w);
      for (int64_t gh = 0; gh < it.group; ++gh) {
        const int64_t h = hk * it.group + gh;
        float* dq = grads.dq + rg.q + h * p.q_strides.h;
        for (int64_t i = 0; i < rg.Tq; ++i)
          for (int64_t d = 0; d < p.D; ++d)
            dq[i * p.q_strides.t + d] =
                scale * w.dQ[static_cast<size_t>((gh * p.Tq + i) * Dpad + d)];
        if (slope_grads)
          w.rows.finish(gh * p.Tq, rg.Tq, w.Di.data(),
                        &slope_part[static_cast<size_t>((b * p.H + h) * 2)]);
      }
      if (rel_grads)
        w.rel.finish_item(b, hk, it.group, p.H, rg.Tq, w.Di.data(), rel_kerple, rel_hist, rel_dF,
                          rel_dc);
    }
  }
  if (slope_grads) reduce_slope_gradients(p, in, slope_part, grads);
  if (kerple) {  // drel = (r1 (H), r2 (H)), each summed over b in a fixed order
    for (int64_t h = 0; h < p.H; ++h) {
      double g1 = 0.0, g2 = 0.0;
      for (int64_t b = 0; b < p.B; ++b) {
        g1 += rel_kerple[static_cast<size_t>((b * p.H + h) * 2)];
        g2 += rel_kerple[static_cast<size_t>((b * p.H + h) * 2 + 1)];
      }
      grads.drel[h] = static_cast<float>(g1);
      grads.drel[p.H + h] = static_cast<float>(g2);
    }
  } else if (rel_grads) {
    reduce_rel_gradients(p, in, rt, rel_hist, rel_dF, rel_dc, grads.drel);
  }
}

}  // namespace slope::cpu::SLOPE_ISA
