// Fused CPU attention, fp32: the flash-attention forward over the one problem description, with
// the ALiBi bias applied per tile and far tiles skipped (the backward: cpu_backward.cpp).
// Compiled once per instruction set (SLOPE_ISA = generic | avx2 | avx512, see src/CMakeLists.txt).
//
// Forward, per (batch row or document, head, 64-query tile), OpenMP dynamic over those items
// (a document shorter than the longest leaves its last items empty; tiles never cross a
// document boundary, so a packed document is computed exactly as it would be alone):
//   Qᵀ = (scale·Q tile)ᵀ once; for each key tile, the diagonal one first, then leftwards, then
//   rightwards (so each row's running max is large early and the skip test bites):
//   Sᵀ = K·Qᵀ (keys × queries: K rows are read in place, softmax runs along query vectors),
//   bias + mask, online softmax (running max m, sum l), O += P·V with P read from Sᵀ.
//   Memory: a few 64×D tiles per thread; nothing grows with Tq·Tk.
//   Measured: the first version (S = Q·Kᵀ with a K transpose per tile) spent ~15% in that
//   strided gather.
//
// Sliding window: key tiles outside every row's window are never visited (visible_keys here,
// visible_queries in cpu_backward.cpp); tiles it cuts are masked per score. Softcap: S is
// capped before the bias and the mask (the backward keeps sech² of each score tile for dS).
//
// Buffer legend: a `t` suffix is a transposed tile (Qt, St), `p` a copy padded to whole vectors
// (Vp); Dvpad is Dv rounded up to kW.
#include "attention/cpu_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "attention/cpu_dropout.h"
#include "attention/cpu_fp_env.h"
#include "attention/cpu_skip.h"
#include "attention/cpu_tiles.h"
#include "attention/geometry.h"
#include "attention/tile_counts.h"

namespace slope::cpu::SLOPE_ISA {

namespace {

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
  // Σ_d over the rows of Qᵀ, a row per lane (each row's sum in order of d, as one scalar loop).
  for (int64_t r = 0; r < g.nrows_pad; r += kW) {
    vf ss{};
    for (int64_t d = 0; d < p.D; ++d) {
      const vf x = load(w.Qt.data() + d * kTileQ + r);
      ss += x * x;
    }
    store(w.qnorm.data() + r, ss);
  }
  for (int64_t r = 0; r < g.nrows; ++r) w.qnorm[r] = std::sqrt(w.qnorm[r]) * kNormSlack;
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
  if (p.softcap > 0.0f) softcap_tile(w.St.data(), kTileQ, g.ncols, g.nrows_pad, p.softcap, nullptr);
  bias_and_mask_tile<true>(w.St.data(), kTileQ, g, hb, p);
  online_softmax_tile(w.St.data(), g.ncols, g.nrows_pad, w.m.data(), w.l.data(), w.alpha.data());
  rescale_rows(w.O.data(), Dvpad, w.alpha.data(), g.nrows);
  if (w.drop.on()) w.drop.apply_transposed(g, w.St.data());
  const float* vt = v + g.j0 * p.v_strides.t;
  int64_t ldv = p.v_strides.t;
  if (p.Dv % kW != 0) {  // V rows are read in place only when they are whole vectors
    copy_rows_padded(w.Vp.data(), Dvpad, vt, p.v_strides.t, g.ncols, p.Dv);
    vt = w.Vp.data();
    ldv = Dvpad;
  }
  // A masked probability is an exact 0; with a non-finite value row it must not be added as
  // 0·NaN (cpu_tiles.h, tile_fully_visible).
  const bool skip_zero = !tile_fully_visible<true>(g, hb, p) && !all_finite(vt, ldv, g.ncols, p.Dv);
  mm_AtB_acc(w.O.data(), Dvpad, w.St.data(), kTileQ, vt, ldv, g.nrows, Dvpad, g.ncols, skip_zero);
}

// out = O / l and lse = m + log l of the query tile; a row with no visible key gets 0 and −inf.
void finish_query_tile(const AttentionProblem& p, const detail::RowGeometry& rg, const TileGeom& g,
                       const ForwardTiles& w, int64_t Dvpad, float* out, float* lse) {
  float* o = out + rg.out + g.h * p.out_strides.h + g.i0 * p.out_strides.t;
  float* ls = lse + rg.lse + g.h * rg.lse_h + g.i0;
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

// The forward of query tile qt of head h in batch row (document) b; nothing when the row has
// fewer queries.
void forward_query_tile(const AttentionProblem& p, const AttentionInputs<float>& in,
                        const FarTileSkip& skip, const detail::RelTables& rt, int64_t b, int64_t h,
                        int64_t qt, float* out, float* lse, ForwardTiles& w) {
  const detail::RowGeometry rg = detail::row_geometry(p, b);
  const int64_t hk = h / (p.H / p.Hkv), Dvpad = round_up(p.Dv, kW);
  const HeadBias hb = head_bias(p, in, b, h, &rt);
  const int64_t i0 = qt * kTileQ, nrows = std::min(kTileQ, rg.Tq - i0);
  if (nrows <= 0) return;
  TileGeom g{.b = b,
             .h = h,
             .i0 = i0,
             .nrows = nrows,
             .nrows_pad = round_up(nrows, kW),
             .pos0 = i0 + rg.offset,
             .j0 = 0,
             .ncols = 0,
             .ncols_pad = 0,
             .side = TileSide::kCross};  // the key-tile fields are set per key tile
  const int64_t posL = g.pos0 + g.nrows - 1;
  const float* k = in.k + rg.k + hk * p.k_strides.h;
  const float* v = in.v + rg.v + hk * p.v_strides.h;
  start_query_tile(p, in.q + rg.q + h * p.q_strides.h + g.i0 * p.q_strides.t, g,
                   p.effective_scale(), w);

  int64_t kbeg, kend;
  visible_keys(hb, rg.Tk, g.pos0, posL, &kbeg, &kend);
  if (kbeg < kend) {
    const int64_t tb = kbeg / kTileK, te = (kend + kTileK - 1) / kTileK;
    const DiagonalFirstOrder order{
        .tb = tb,
        .te = te,
        .tdiag = std::clamp<int64_t>(posL >= 0 ? posL / kTileK : 0, tb, te - 1)};
    int64_t skipped = 0;
    for (int64_t step = 0; step < order.size(); ++step) {
      const int64_t t = order[step];
      g.j0 = t * kTileK;
      g.ncols = std::min((t + 1) * kTileK, kend) - g.j0;
      g.ncols_pad = round_up(g.ncols, kW);
      g.side = tile_side(g.j0, g.ncols, g.pos0, posL);
      if (skip.skips(p, hb, g, b, hk, t, w.qnorm.data(), w.m.data(),
                     FarTileSkip::MinusInf::kNotYetSeen)) {
        ++skipped;
        continue;
      }
      forward_key_tile(p, hb, g, k, v, Dvpad, w);
    }
    detail::add_forward_tile_counts(order.size() - skipped, skipped);
  }
  finish_query_tile(p, rg, g, w, Dvpad, out, lse);
}

}  // namespace

void forward(const AttentionProblem& p, const AttentionInputs<float>& in, float* out, float* lse) {
  const int64_t ntq = (p.Tq + kTileQ - 1) / kTileQ;
  const FarTileSkip skip(p, in);
  const detail::RelTables rt = detail::build_rel_tables(p, in.rel, kRelPad);
  // One workspace per thread, made here: an allocation that fails inside the parallel region
  // could not throw out of it (std::terminate).
  const int threads = omp_get_max_threads();
  std::vector<std::unique_ptr<ForwardTiles>> workspaces;
  for (int t = 0; t < threads; ++t)
    workspaces.push_back(std::make_unique<ForwardTiles>(p, round_up(p.Dv, kW)));
#pragma omp parallel num_threads(threads)
  {
    const FlushSubnormalResults ftz;
    ForwardTiles& w = *workspaces[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < p.B * p.H * ntq; ++item)
      forward_query_tile(p, in, skip, rt, item / (ntq * p.H), (item / ntq) % p.H, item % ntq, out,
                         lse, w);
  }
}

void dropout_keep_tile(const AttentionProblem& p, int64_t b, int64_t h, int64_t i0, int64_t nrows,
                       int64_t j0, int64_t ncols, float value, float* tile, int64_t ld,
                       bool transposed) {
  const detail::DropoutKeys m = detail::dropout_keys(p);
  if (transposed)
    keep_tile_transposed(m, b, h, i0, nrows, j0, ncols, value, tile, ld);
  else
    keep_tile_rows(m, b, h, i0, nrows, j0, ncols, value, tile, ld);
}

}  // namespace slope::cpu::SLOPE_ISA
