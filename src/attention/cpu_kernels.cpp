// Fused CPU attention, fp32: flash-attention forward and flash-attention-2 backward over the one
// problem description, with the ALiBi bias applied per tile and far tiles skipped.
// Compiled once per instruction set (SLOPE_ISA = generic | avx2 | avx512, see src/CMakeLists.txt).
//
// Forward, per (batch, head, 64-query tile), OpenMP dynamic over those items:
//   Qᵀ = (scale·Q tile)ᵀ once; for each key tile, the diagonal one first, then leftwards, then
//   rightwards (so each row's running max is large early and the skip test bites):
//   Sᵀ = K·Qᵀ (keys × queries: K rows are read in place, softmax runs along query vectors),
//   bias + mask, online softmax (running max m, sum l), O += P·V with P read from Sᵀ.
//   Memory: a few 64×D tiles per thread; nothing grows with Tq·Tk.
//   Measured: the first version (S = Q·Kᵀ with a K transpose per tile) spent ~15% in that
//   strided gather.
// Backward, per (batch, kv head) item (it owns dK and dV of that head, so no atomics):
//   for each key tile, for each query head of the group and each query tile that can see it:
//   S and P = exp(S − lse) recomputed, dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − Dᵢ),
//   dK += dSᵀ·Qs, dQ += dS·K (dQ kept per item, O(Tq·D) per thread), slope gradients
//   Σ dS·∂bias/∂m summed per item in double and reduced over the batch in a fixed order, so the
//   result does not depend on the thread count.
//   Parallelism is B·Hkv items; with fewer items than threads the rest idle (rare in training).
//
// Buffer legend: a `t` suffix is a transposed tile (Qt, St, Kt, Vt), `p` a copy padded to whole
// vectors (Kp, Vp, dOp), `s` scaled by `scale` (Qs); pad dims (Dpad, Dvpad) are rounded up to kW.
#include "attention/cpu_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/cpu_dropout.h"
#include "attention/cpu_skip.h"
#include "attention/cpu_slope_grads.h"
#include "attention/cpu_tiles.h"

namespace slope::cpu::SLOPE_ISA {

namespace {

// Keys [kbeg, kend) some row at positions [pos0, posL] of batch row b may see.
void key_range(const AttentionProblem& p, const HeadBias& hb, int64_t b, int64_t pos0, int64_t posL,
               int64_t* kbeg, int64_t* kend) {
  *kend = p.key_lengths ? p.key_lengths[b] : p.Tk;
  if (hb.right_masked) *kend = std::min(*kend, posL + 1);
  *kbeg = hb.left_masked ? std::max<int64_t>(0, pos0) : 0;
}

// ---- Forward ---------------------------------------------------------------------------------

// The order the forward visits the key tiles [tb, te) of a query tile: the diagonal tile first,
// then leftwards, then rightwards, so each row's running max is large early.
struct DiagonalFirstOrder {
  int64_t tb, te, tdiag;
  int64_t size() const { return te - tb; }
  int64_t operator[](int64_t step) const {
    return step <= tdiag - tb ? tdiag - step : tdiag + (step - (tdiag - tb));
  }
};

// Per-thread buffers of the forward.
struct ForwardTiles {
  std::vector<float> Qt;     // (D, kTileQ): (scale·Q tile)ᵀ
  std::vector<float> St;     // (kTileK, kTileQ): scores, then P, keys × queries
  std::vector<float> O;      // (kTileQ, Dvpad): unnormalised output
  std::vector<float> Vp;     // (kTileK, Dvpad): V tile, when Dv is not whole vectors
  std::vector<float> m, l;   // (kTileQ): running max and running sum of the online softmax
  std::vector<float> qnorm;  // (kTileQ): ‖scale·q_r‖·kNormSlack, for the skip bound
  std::vector<float> alpha;  // (kTileQ): exp(m_old − m_new), the rescale of O and l
  TileDropout drop;          // the key tile's dropout factors (cpu_dropout.h)

  ForwardTiles(const AttentionProblem& p, int64_t Dvpad)
      : Qt(static_cast<size_t>(p.D * kTileQ)),
        St(kTileK * kTileQ),
        O(static_cast<size_t>(kTileQ * Dvpad)),
        Vp(static_cast<size_t>(kTileK * Dvpad)),
        m(kTileQ),
        l(kTileQ),
        qnorm(kTileQ),
        alpha(kTileQ),
        drop(p) {}
};

// Online softmax (Milakov & Gimelshein 2018; flash-attention's forward) over one Sᵀ tile, along
// query lanes: m_new = max(m, max_j s), P = exp(s − m_new) written over Sᵀ,
// l = l·exp(m − m_new) + Σ_j P, alpha = exp(m − m_new). Lanes with nothing visible yet keep
// m = −inf and use 0 as the reference, so they produce P = 0 and no NaN.
void online_softmax_tile(float* St, int64_t ncols, int64_t nrows_pad, float* m, float* l,
                         float* alpha) {
  for (int64_t r = 0; r < nrows_pad; r += kW) {
    vf mx = load(m + r);
    for (int64_t c = 0; c < ncols; ++c) mx = vmax(mx, load(St + c * kTileQ + r));
    const vf m_old = load(m + r);
    const vf ref = mx == -INFINITY ? vf{} : mx;
    vf sum{};
    for (int64_t c = 0; c < ncols; ++c) {
      const vf e = vexp(load(St + c * kTileQ + r) - ref);
      store(St + c * kTileQ + r, e);
      sum += e;
    }
    const vf a = vexp(m_old - ref);  // 0 where m_old = −inf
    store(alpha + r, a);
    store(l + r, load(l + r) * a + sum);
    store(m + r, mx);
  }
}

// O rows *= alpha (the online softmax's rescale; rows whose max did not move are left alone).
void rescale_rows(float* O, int64_t Dvpad, const float* alpha, int64_t nrows) {
  for (int64_t r = 0; r < nrows; ++r) {
    if (alpha[r] == 1.0f) continue;
    float* o = O + r * Dvpad;
    const vf a = splat(alpha[r]);
    for (int64_t d = 0; d < Dvpad; d += kW) store(o + d, load(o + d) * a);
  }
}

// Qᵀ of the query tile, its row norms, and a fresh online-softmax state.
void start_query_tile(const AttentionProblem& p, const float* q, const TileGeom& g, float scale,
                      ForwardTiles& w) {
  std::fill(w.Qt.begin(), w.Qt.end(), 0.0f);
  transpose(w.Qt.data(), kTileQ, q, p.q_strides.t, g.nrows, p.D, scale);
  for (int64_t r = 0; r < g.nrows; ++r) {
    float ss = 0.0f;
    for (int64_t d = 0; d < p.D; ++d) ss += w.Qt[d * kTileQ + r] * w.Qt[d * kTileQ + r];
    w.qnorm[r] = std::sqrt(ss) * kNormSlack;
  }
  std::fill(w.m.begin(), w.m.end(), -INFINITY);
  std::fill(w.l.begin(), w.l.end(), 0.0f);
  std::fill(w.O.begin(), w.O.end(), 0.0f);
}

// One key tile of the forward: Sᵀ = K·Qᵀ (keys straight from memory), bias and mask, online
// softmax, dropout (P∘Zc, after l has summed the undropped P), O += P·V (P read transposed from
// Sᵀ). k, v: this (b, kv head)'s rows.
void forward_key_tile(const AttentionProblem& p, const HeadBias& hb, const TileGeom& g,
                      const float* k, const float* v, int64_t Dvpad, ForwardTiles& w) {
  mm_AB(w.St.data(), kTileQ, k + g.j0 * p.k_strides.t, p.k_strides.t, w.Qt.data(), kTileQ, g.ncols,
        g.nrows_pad, p.D);
  bias_and_mask_tile<true>(w.St.data(), kTileQ, g, hb, p);
  online_softmax_tile(w.St.data(), g.ncols, g.nrows_pad, w.m.data(), w.l.data(), w.alpha.data());
  rescale_rows(w.O.data(), Dvpad, w.alpha.data(), g.nrows);
  if (w.drop.on()) w.drop.apply_transposed(p, g, w.St.data());
  const float* vt = v + g.j0 * p.v_strides.t;
  int64_t ldv = p.v_strides.t;
  if (p.Dv % kW != 0) {  // V rows are read in place only when they are whole vectors
    copy_rows_padded(w.Vp.data(), Dvpad, vt, p.v_strides.t, g.ncols, p.Dv);
    vt = w.Vp.data();
    ldv = Dvpad;
  }
  mm_AtB_acc(w.O.data(), Dvpad, w.St.data(), kTileQ, vt, ldv, g.nrows, Dvpad, g.ncols);
}

// out = O / l and lse = m + log l of the query tile; a row with no visible key gets 0 and −inf.
void finish_query_tile(const AttentionProblem& p, const TileGeom& g, const ForwardTiles& w,
                       int64_t Dvpad, float* out, float* lse) {
  float* o = out + g.b * p.out_strides.b + g.h * p.out_strides.h + g.i0 * p.out_strides.t;
  float* ls = lse + (g.b * p.H + g.h) * p.Tq + g.i0;
  for (int64_t r = 0; r < g.nrows; ++r) {
    float* orow = o + r * p.out_strides.t;
    if (w.m[r] == -INFINITY || !(w.l[r] > 0.0f)) {
      std::fill(orow, orow + p.Dv, 0.0f);
      ls[r] = -INFINITY;
      continue;
    }
    const float inv = 1.0f / w.l[r];
    for (int64_t d = 0; d < p.Dv; ++d) orow[d] = w.O[r * Dvpad + d] * inv;
    ls[r] = w.m[r] + std::log(w.l[r]);
  }
}

// The forward of query tile qt of head h in batch row b.
void forward_query_tile(const AttentionProblem& p, const AttentionInputs<float>& in,
                        const FarTileSkip& skip, int64_t b, int64_t h, int64_t qt, float* out,
                        float* lse, ForwardTiles& w) {
  const int64_t hk = h / (p.H / p.Hkv), Dvpad = round_up(p.Dv, kW);
  const HeadBias hb = head_bias(p, in, h);
  const int64_t i0 = qt * kTileQ, nrows = std::min(kTileQ, p.Tq - i0);
  TileGeom g{.b = b,
             .h = h,
             .i0 = i0,
             .nrows = nrows,
             .nrows_pad = round_up(nrows, kW),
             .pos0 = i0 + p.query_offset(),
             .j0 = 0,
             .ncols = 0,
             .ncols_pad = 0,
             .side = TileSide::kCross};  // the key-tile fields are set per key tile
  const int64_t posL = g.pos0 + g.nrows - 1;
  const float* k = in.k + b * p.k_strides.b + hk * p.k_strides.h;
  const float* v = in.v + b * p.v_strides.b + hk * p.v_strides.h;
  start_query_tile(p, in.q + b * p.q_strides.b + h * p.q_strides.h + g.i0 * p.q_strides.t, g,
                   p.effective_scale(), w);

  int64_t kbeg, kend;
  key_range(p, hb, b, g.pos0, posL, &kbeg, &kend);
  if (kbeg < kend) {
    const int64_t tb = kbeg / kTileK, te = (kend + kTileK - 1) / kTileK;
    const DiagonalFirstOrder order{
        .tb = tb,
        .te = te,
        .tdiag = std::clamp<int64_t>(posL >= 0 ? posL / kTileK : 0, tb, te - 1)};
    for (int64_t step = 0; step < order.size(); ++step) {
      const int64_t t = order[step];
      g.j0 = t * kTileK;
      g.ncols = std::min((t + 1) * kTileK, kend) - g.j0;
      g.ncols_pad = round_up(g.ncols, kW);
      g.side = tile_side(g.j0, g.ncols, g.pos0, posL);
      if (skip.skips(p, hb, g, b, hk, t, w.qnorm.data(), w.m.data(),
                     FarTileSkip::MinusInf::kNotYetSeen))
        continue;
      forward_key_tile(p, hb, g, k, v, Dvpad, w);
    }
  }
  finish_query_tile(p, g, w, Dvpad, out, lse);
}

// ---- Backward --------------------------------------------------------------------------------

// Per-thread buffers of the backward, for one (batch, kv head) item.
struct BackwardTiles {
  std::vector<float> Qs;     // (kTileQ, Dpad): scale·Q tile
  std::vector<float> Kt;     // (Dpad, kTileK): Kᵀ of the key tile, for S = Qs·Kᵀ
  std::vector<float> Kp;     // (kTileK, Dpad): K tile, when D is not whole vectors (for dQ)
  std::vector<float> Vt;     // (Dvpad, kTileK): Vᵀ of the key tile, for dP = dO·Vᵀ
  std::vector<float> dOp;    // (kTileQ, Dvpad): dO tile, when Dv is not whole vectors
  std::vector<float> S;      // (kTileQ, kTileK): scores, then P
  std::vector<float> dP;     // (kTileQ, kTileK): dP, then dS
  std::vector<float> dK;     // (kTileK, Dpad): dK of the key tile
  std::vector<float> dV;     // (kTileK, Dvpad): dV of the key tile
  std::vector<float> dQ;     // (group, Tq, Dpad): dQ/scale of every query head of the item
  std::vector<float> Di;     // (group, Tq): rowsum(dO∘O)
  std::vector<float> qnorm;  // (group, Tq): ‖scale·q_i‖·kNormSlack, for the skip bound
  SlopeRowSums rows;         // (group, Tq) rows of slope-gradient sums, when asked for
  TileDropout drop;          // the block's dropout factors Zc (cpu_dropout.h)

  BackwardTiles(const AttentionProblem& p, int64_t Dpad, int64_t Dvpad, bool slope_grads)
      : Qs(static_cast<size_t>(kTileQ * Dpad)),
        Kt(static_cast<size_t>(Dpad * kTileK)),
        Kp(static_cast<size_t>(kTileK * Dpad)),
        Vt(static_cast<size_t>(Dvpad * kTileK)),
        dOp(static_cast<size_t>(kTileQ * Dvpad)),
        S(kTileQ * kTileK),
        dP(kTileQ * kTileK),
        dK(static_cast<size_t>(kTileK * Dpad)),
        dV(static_cast<size_t>(kTileK * Dvpad)),
        dQ(static_cast<size_t>(p.H / p.Hkv * p.Tq * Dpad)),
        Di(static_cast<size_t>(p.H / p.Hkv * p.Tq)),
        qnorm(Di.size()),
        rows(slope_grads ? p.H / p.Hkv * p.Tq : 0),
        drop(p) {}
};

// What every tile of one (batch, kv head) item reads.
struct BackwardItem {
  int64_t b, hk, group, Dpad, Dvpad;
  const float* k;  // this item's key rows, k_strides.t apart
  const float* v;  // this item's value rows
  bool slope_grads;
};

// Zeroes the item's dK and dV rows (keys no query sees keep a zero gradient) and dQ; forms
// Dᵢ = rowsum(dO∘O) and ‖scale·qᵢ‖ per query head of the group.
void start_backward_item(const AttentionProblem& p, const AttentionInputs<float>& in,
                         const float* out, const float* dout, const AttentionGrads<float>& grads,
                         const BackwardItem& it, BackwardTiles& w) {
  float* dk = grads.dk + it.b * p.k_strides.b + it.hk * p.k_strides.h;
  float* dv = grads.dv + it.b * p.v_strides.b + it.hk * p.v_strides.h;
  for (int64_t j = 0; j < p.Tk; ++j) {
    std::fill(dk + j * p.k_strides.t, dk + j * p.k_strides.t + p.D, 0.0f);
    std::fill(dv + j * p.v_strides.t, dv + j * p.v_strides.t + p.Dv, 0.0f);
  }
  std::fill(w.dQ.begin(), w.dQ.end(), 0.0f);
  const float scale = p.effective_scale();
  for (int64_t gh = 0; gh < it.group; ++gh) {
    const int64_t h = it.hk * it.group + gh;
    for (int64_t i = 0; i < p.Tq; ++i) {
      const int64_t oo = it.b * p.out_strides.b + h * p.out_strides.h + i * p.out_strides.t;
      // In double: dS = P∘(dP − Dᵢ) cancels where P is nearly one-hot, so Dᵢ carries no
      // accumulation error of its own.
      double di = 0.0;
      for (int64_t d = 0; d < p.Dv; ++d) di += static_cast<double>(dout[oo + d]) * out[oo + d];
      w.Di[gh * p.Tq + i] = static_cast<float>(di);
      const float* qi = in.q + it.b * p.q_strides.b + h * p.q_strides.h + i * p.q_strides.t;
      float ss = 0.0f;
      for (int64_t d = 0; d < p.D; ++d) ss += qi[d] * qi[d];
      w.qnorm[gh * p.Tq + i] = std::sqrt(ss) * std::abs(scale) * kNormSlack;
    }
  }
  w.rows.clear();
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
  const float* q = in.q + g.b * p.q_strides.b + g.h * p.q_strides.h + g.i0 * p.q_strides.t;
  copy_rows_padded(w.Qs.data(), it.Dpad, q, p.q_strides.t, g.nrows, p.D, p.effective_scale());
  const float* dO = dout + g.b * p.out_strides.b + g.h * p.out_strides.h + g.i0 * p.out_strides.t;
  int64_t lddo = p.out_strides.t;
  if (p.Dv % kW != 0) {
    copy_rows_padded(w.dOp.data(), it.Dvpad, dO, p.out_strides.t, g.nrows, p.Dv);
    dO = w.dOp.data();
    lddo = it.Dvpad;
  }
  mm_AB(w.S.data(), kTileK, w.Qs.data(), it.Dpad, w.Kt.data(), kTileK, g.nrows, g.ncols_pad, p.D);
  bias_and_mask_tile<false>(w.S.data(), kTileK, g, hb, p);
  for (int64_t r = 0; r < g.nrows; ++r) {
    float* s = w.S.data() + r * kTileK;
    const float l_r = lse_h[g.i0 + r];
    if (l_r == -INFINITY) {  // fully masked row: no probability, no gradient
      std::fill(s, s + g.ncols_pad, 0.0f);
      continue;
    }
    for (int64_t c = 0; c < g.ncols_pad; c += kW) store(s + c, vexp(load(s + c) - l_r));
  }
  const float* Pv = w.S.data();  // P as it meets dO: with dropout P∘Zc, in dP's buffer for now
  if (w.drop.on()) {
    w.drop.load_tile(p, g);
    w.drop.multiply(w.dP.data(), w.S.data(), g);
    Pv = w.dP.data();
  }
  mm_AtB_acc(w.dV.data(), it.Dvpad, Pv, kTileK, dO, lddo, g.ncols, it.Dvpad, g.nrows);
  mm_AB(w.dP.data(), kTileK, dO, lddo, w.Vt.data(), kTileK, g.nrows, g.ncols_pad, p.Dv);
  if (w.drop.on()) w.drop.multiply(w.dP.data(), w.dP.data(), g);
  for (int64_t r = 0; r < g.nrows; ++r) {
    float* ds = w.dP.data() + r * kTileK;
    const float* pr = w.S.data() + r * kTileK;
    const float di = w.Di[gh * p.Tq + g.i0 + r];
    if (!it.slope_grads) {
      for (int64_t c = 0; c < g.ncols_pad; c += kW)
        store(ds + c, load(pr + c) * (load(ds + c) - di));
      continue;
    }
    slope_terms(pr, ds, di, static_cast<float>(g.j0 - (g.pos0 + r)), g.ncols_pad, g.side, &w.rows,
                gh * p.Tq + g.i0 + r);
  }
  mm_AtB_acc(w.dK.data(), it.Dpad, w.dP.data(), kTileK, w.Qs.data(), it.Dpad, g.ncols, it.Dpad,
             g.nrows);
  mm_AB_acc(w.dQ.data() + (gh * p.Tq + g.i0) * it.Dpad, it.Dpad, w.dP.data(), kTileK, kp, ldk,
            g.nrows, it.Dpad, g.ncols);
}

// Key tile t of the item, against every query head of the group and every query tile that can
// see it; writes the tile's dK and dV rows. Returns nothing; rows no query sees stay zero.
void backward_key_tile(const AttentionProblem& p, const AttentionInputs<float>& in,
                       const float* dout, const float* lse, const AttentionGrads<float>& grads,
                       const FarTileSkip& skip, const BackwardItem& it, int64_t t,
                       BackwardTiles& w) {
  const int64_t j0 = t * kTileK;
  const int64_t klen = p.key_lengths ? p.key_lengths[it.b] : p.Tk;
  const int64_t ncols = std::min(kTileK, klen - j0), ncols_pad = round_up(ncols, kW);
  int64_t ldk;
  const float* kp = load_key_tile(p, it, j0, ncols, ncols_pad, w, &ldk);
  std::fill(w.dK.begin(), w.dK.end(), 0.0f);
  std::fill(w.dV.begin(), w.dV.end(), 0.0f);
  bool touched = false;
  for (int64_t gh = 0; gh < it.group; ++gh) {
    const int64_t h = it.hk * it.group + gh;
    const HeadBias hb = head_bias(p, in, h);
    // Query rows that can see some key of this tile.
    int64_t ib = 0, ie = p.Tq;
    if (hb.right_masked) ib = std::max<int64_t>(0, j0 - p.query_offset());
    if (hb.left_masked) ie = std::min<int64_t>(p.Tq, j0 + ncols - 1 - p.query_offset() + 1);
    const float* lse_h = lse + (it.b * p.H + h) * p.Tq;
    for (int64_t i0 = ib; i0 < ie; i0 += kTileQ) {
      const int64_t nrows = std::min(kTileQ, ie - i0);
      TileGeom g{.b = it.b,
                 .h = h,
                 .i0 = i0,
                 .nrows = nrows,
                 .nrows_pad = round_up(nrows, kW),
                 .pos0 = i0 + p.query_offset(),
                 .j0 = j0,
                 .ncols = ncols,
                 .ncols_pad = ncols_pad,
                 .side = TileSide::kCross};
      g.side = tile_side(j0, ncols, g.pos0, g.pos0 + g.nrows - 1);
      if (skip.skips(p, hb, g, it.b, it.hk, t, w.qnorm.data() + gh * p.Tq + i0, lse_h + i0,
                     FarTileSkip::MinusInf::kDeadRow))
        continue;
      touched = true;
      backward_block(p, in, dout, lse_h, hb, g, gh, it, kp, ldk, w);
    }
  }
  if (!touched) return;
  float* dk = grads.dk + it.b * p.k_strides.b + it.hk * p.k_strides.h;
  float* dv = grads.dv + it.b * p.v_strides.b + it.hk * p.v_strides.h;
  for (int64_t c = 0; c < ncols; ++c) {
    std::copy(w.dK.data() + c * it.Dpad, w.dK.data() + c * it.Dpad + p.D,
              dk + (j0 + c) * p.k_strides.t);
    std::copy(w.dV.data() + c * it.Dvpad, w.dV.data() + c * it.Dvpad + p.Dv,
              dv + (j0 + c) * p.v_strides.t);
  }
}

// dslopes[h] from the per-(b, h, side) partial sums, reduced over b in a fixed order.
void reduce_slope_gradients(const AttentionProblem& p, const AttentionInputs<float>& in,
                            const std::vector<double>& slope_part,
                            const AttentionGrads<float>& grads) {
  const bool shared = in.slopes_right == nullptr;
  for (int64_t h = 0; h < p.H; ++h) {
    double left = 0.0, right = 0.0;
    for (int64_t b = 0; b < p.B; ++b) {
      left += slope_part[static_cast<size_t>((b * p.H + h) * 2)];
      right += slope_part[static_cast<size_t>((b * p.H + h) * 2 + 1)];
    }
    if (shared) {
      if (grads.dslopes_left) grads.dslopes_left[h] = static_cast<float>(left + right);
    } else {
      if (grads.dslopes_left) grads.dslopes_left[h] = static_cast<float>(left);
      if (grads.dslopes_right) grads.dslopes_right[h] = static_cast<float>(right);
    }
  }
}

}  // namespace

void forward(const AttentionProblem& p, const AttentionInputs<float>& in, float* out, float* lse) {
  const int64_t ntq = (p.Tq + kTileQ - 1) / kTileQ;
  const FarTileSkip skip(p, in);
#pragma omp parallel
  {
    ForwardTiles w(p, round_up(p.Dv, kW));
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < p.B * p.H * ntq; ++item)
      forward_query_tile(p, in, skip, item / (ntq * p.H), (item / ntq) % p.H, item % ntq, out, lse,
                         w);
  }
}

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
#pragma omp parallel
  {
    BackwardTiles w(p, Dpad, Dvpad, slope_grads);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < p.B * p.Hkv; ++item) {
      const int64_t b = item / p.Hkv, hk = item % p.Hkv;
      const BackwardItem it{.b = b,
                            .hk = hk,
                            .group = p.H / p.Hkv,
                            .Dpad = Dpad,
                            .Dvpad = Dvpad,
                            .k = in.k + b * p.k_strides.b + hk * p.k_strides.h,
                            .v = in.v + b * p.v_strides.b + hk * p.v_strides.h,
                            .slope_grads = slope_grads};
      start_backward_item(p, in, out, dout, grads, it, w);
      const int64_t klen = p.key_lengths ? p.key_lengths[b] : p.Tk;
      for (int64_t t = 0; t < ntk && t * kTileK < klen; ++t)
        backward_key_tile(p, in, dout, lse, grads, skip, it, t, w);
      for (int64_t gh = 0; gh < it.group; ++gh) {
        const int64_t h = hk * it.group + gh;
        float* dq = grads.dq + b * p.q_strides.b + h * p.q_strides.h;
        for (int64_t i = 0; i < p.Tq; ++i)
          for (int64_t d = 0; d < p.D; ++d)
            dq[i * p.q_strides.t + d] =
                scale * w.dQ[static_cast<size_t>((gh * p.Tq + i) * Dpad + d)];
        if (slope_grads)
          w.rows.finish(gh * p.Tq, p.Tq, w.Di.data(),
                        &slope_part[static_cast<size_t>((b * p.H + h) * 2)]);
      }
    }
  }
  if (slope_grads) reduce_slope_gradients(p, in, slope_part, grads);
}

}  // namespace slope::cpu::SLOPE_ISA
