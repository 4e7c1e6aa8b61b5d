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
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/cpu_kernels.h"
#include "attention/cpu_tiles.h"

namespace slope::cpu::SLOPE_ISA {

namespace {

// Max ‖k_j‖ over each key tile, per (b, kv head): the far-tile skip bound reads it.
std::vector<float> key_norm_maxima(const AttentionProblem& p, const float* k) {
  const int64_t ntk = (p.Tk + kTileK - 1) / kTileK;
  std::vector<float> out(static_cast<size_t>(p.B * p.Hkv * ntk));
#pragma omp parallel for schedule(static)
  for (int64_t item = 0; item < p.B * p.Hkv * ntk; ++item) {
    const int64_t t = item % ntk, bh = item / ntk, hk = bh % p.Hkv, b = bh / p.Hkv;
    float mx = 0.0f;
    for (int64_t j = t * kTileK; j < std::min(p.Tk, (t + 1) * kTileK); ++j) {
      const float* kj = k + b * p.k_strides.b + hk * p.k_strides.h + j * p.k_strides.t;
      float ss = 0.0f;
      for (int64_t d = 0; d < p.D; ++d) ss += kj[d] * kj[d];
      mx = std::max(mx, ss);
    }
    // A hair above the true norm so fp32 rounding in the dot products cannot beat the bound.
    out[static_cast<size_t>(item)] = std::sqrt(mx) * (1.0f + 1e-5f);
  }
  return out;
}

// Keys [kbeg, kend) some row at positions [pos0, posL] of batch row b may see.
void key_range(const AttentionProblem& p, const HeadBias& hb, int64_t b, int64_t pos0,
               int64_t posL, int64_t* kbeg, int64_t* kend) {
  *kend = p.key_lengths ? p.key_lengths[b] : p.Tk;
  if (hb.right_masked) *kend = std::min(*kend, posL + 1);
  *kbeg = hb.left_masked ? std::max<int64_t>(0, pos0) : 0;
}

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
void slope_terms(const float* pr, float* ds, float di, float jd0, int64_t ncols_pad,
                 TileSide side, SlopeRowSums* rows, int64_t row) {
  const vf lane = iota();
  vf sums[SlopeRowSums::kSums] = {};  // E, S, A_left, B_left, A_right, B_right of this tile
  for (int64_t c = 0; c < ncols_pad; c += kW) {
    const vf pv = load(pr + c), dpv = load(ds + c);
    const vf dsv = pv * (dpv - di);
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

float log_skip_threshold(const AttentionProblem& p) {
  return std::log(p.skip_tolerance) - std::log(static_cast<float>(p.Tk));
}

}  // namespace

void forward(const AttentionProblem& p, const AttentionInputs<float>& in, float* out, float* lse) {
  const float scale = p.effective_scale();
  const int64_t Dvpad = round_up(p.Dv, kW);
  const int64_t group = p.H / p.Hkv;
  const int64_t ntq = (p.Tq + kTileQ - 1) / kTileQ, ntk = (p.Tk + kTileK - 1) / kTileK;
  const bool skipping = p.alibi && p.skip_tolerance > 0.0f && p.mask_kind != MaskKind::kAdditive;
  const std::vector<float> knorm = skipping ? key_norm_maxima(p, in.k) : std::vector<float>();
  const float log_thresh = skipping ? log_skip_threshold(p) : 0.0f;
  const bool v_direct = p.Dv % kW == 0;  // V rows can be read in place as whole vectors

#pragma omp parallel
  {
    // Sᵀ layout: the score tile is (keys × queries), so K rows feed the product in place (no
    // transpose of K per tile), and max/exp/sum of the online softmax run along vectors of
    // queries. Per thread: Qᵀ (D × 64), Sᵀ (64 × 64), O (64 × Dv), a V tile if Dv is ragged.
    std::vector<float> Qt(p.D * kTileQ), St(kTileK * kTileQ), O(kTileQ * Dvpad), Vp(kTileK * Dvpad),
        m(kTileQ), l(kTileQ), qn(kTileQ), alpha(kTileQ);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < p.B * p.H * ntq; ++item) {
      const int64_t qt = item % ntq, h = (item / ntq) % p.H, b = item / (ntq * p.H);
      const int64_t hk = h / group;
      const HeadBias hb = head_bias(p, in, h);
      TileGeom g{};
      g.b = b;
      g.h = h;
      g.i0 = qt * kTileQ;
      g.nrows = std::min(kTileQ, p.Tq - g.i0);
      g.nrows_pad = round_up(g.nrows, kW);
      g.pos0 = g.i0 + p.query_offset();
      const int64_t posL = g.pos0 + g.nrows - 1;

      const float* q = in.q + b * p.q_strides.b + h * p.q_strides.h + g.i0 * p.q_strides.t;
      const float* k = in.k + b * p.k_strides.b + hk * p.k_strides.h;
      const float* v = in.v + b * p.v_strides.b + hk * p.v_strides.h;
      std::fill(Qt.begin(), Qt.end(), 0.0f);
      transpose(Qt.data(), kTileQ, q, p.q_strides.t, g.nrows, p.D, scale);
      for (int64_t r = 0; r < g.nrows; ++r) {
        float ss = 0.0f;
        for (int64_t d = 0; d < p.D; ++d) ss += Qt[d * kTileQ + r] * Qt[d * kTileQ + r];
        qn[r] = std::sqrt(ss) * (1.0f + 1e-5f);
      }
      std::fill(m.begin(), m.end(), -INFINITY);
      std::fill(l.begin(), l.end(), 0.0f);
      std::fill(O.begin(), O.end(), 0.0f);

      int64_t kbeg, kend;
      key_range(p, hb, b, g.pos0, posL, &kbeg, &kend);
      if (kbeg < kend) {
        const int64_t tb = kbeg / kTileK, te = (kend + kTileK - 1) / kTileK;
        const int64_t tdiag = std::clamp<int64_t>(posL >= 0 ? posL / kTileK : 0, tb, te - 1);
        // Diagonal tile, then leftwards, then rightwards.
        for (int64_t step = 0; step < te - tb; ++step) {
          const int64_t t = step <= tdiag - tb ? tdiag - step : tdiag + (step - (tdiag - tb));
          g.j0 = t * kTileK;
          g.ncols = std::min((t + 1) * kTileK, kend) - g.j0;
          g.ncols_pad = round_up(g.ncols, kW);
          g.side = tile_side(g.j0, g.ncols, g.pos0, posL);

          if (skipping && may_skip(p, hb, g)) {
            const float kmax = knorm[static_cast<size_t>((b * p.Hkv + hk) * ntk + t)];
            bool skip = true;
            for (int64_t r = 0; r < g.nrows && skip; ++r)
              skip = qn[r] * kmax + max_bias_in_tile(g, hb, r) - m[r] < log_thresh;
            if (skip) continue;
          }

          // Sᵀ = K · Qᵀ (keys straight from memory), then bias and mask.
          tile_product<false>(St.data(), kTileQ, k + g.j0 * p.k_strides.t, p.k_strides.t, Qt.data(),
                              kTileQ, g.ncols, g.nrows_pad, p.D);
          bias_and_mask_tile<true>(St.data(), kTileQ, g, hb, p);

          // Online softmax along query lanes: m_new = max(m, max_j s), P = exp(s − m_new),
          // l = l·exp(m − m_new) + Σ_j P. Lanes with nothing visible yet keep m = −inf and
          // use 0 as the reference, so they produce P = 0 and no NaN.
          for (int64_t r = 0; r < g.nrows_pad; r += kW) {
            vf mx = load(m.data() + r);
            for (int64_t c = 0; c < g.ncols; ++c) mx = vmax(mx, load(St.data() + c * kTileQ + r));
            const vf m_old = load(m.data() + r);
            const vf ref = mx == -INFINITY ? vf{} : mx;
            vf sum{};
            for (int64_t c = 0; c < g.ncols; ++c) {
              const vf e = vexp(load(St.data() + c * kTileQ + r) - ref);
              store(St.data() + c * kTileQ + r, e);
              sum += e;
            }
            const vf a = vexp(m_old - ref);  // 0 where m_old = −inf
            store(alpha.data() + r, a);
            store(l.data() + r, load(l.data() + r) * a + sum);
            store(m.data() + r, mx);
          }
          for (int64_t r = 0; r < g.nrows; ++r) {
            if (alpha[r] == 1.0f) continue;
            float* o = O.data() + r * Dvpad;
            const vf a = splat(alpha[r]);
            for (int64_t d = 0; d < Dvpad; d += kW) store(o + d, load(o + d) * a);
          }

          // O += P · V, P read transposed from Sᵀ.
          const float* vt = v + g.j0 * p.v_strides.t;
          int64_t ldv = p.v_strides.t;
          if (!v_direct) {
            copy_rows_padded(Vp.data(), Dvpad, vt, p.v_strides.t, g.ncols, p.Dv);
            vt = Vp.data();
            ldv = Dvpad;
          }
          tile_product<true, true>(O.data(), Dvpad, St.data(), kTileQ, vt, ldv, g.nrows, Dvpad,
                                   g.ncols);
        }
      }

      float* o = out + b * p.out_strides.b + h * p.out_strides.h + g.i0 * p.out_strides.t;
      float* ls = lse + (b * p.H + h) * p.Tq + g.i0;
      for (int64_t r = 0; r < g.nrows; ++r) {
        float* orow = o + r * p.out_strides.t;
        if (m[r] == -INFINITY || !(l[r] > 0.0f)) {  // no visible key: output 0, lse −inf
          std::fill(orow, orow + p.Dv, 0.0f);
          ls[r] = -INFINITY;
          continue;
        }
        const float inv = 1.0f / l[r];
        for (int64_t d = 0; d < p.Dv; ++d) orow[d] = O[r * Dvpad + d] * inv;
        ls[r] = m[r] + std::log(l[r]);
      }
    }
  }
}

void backward(const AttentionProblem& p, const AttentionInputs<float>& in, const float* out,
              const float* dout, const float* lse, const AttentionGrads<float>& grads) {
  const float scale = p.effective_scale();
  const int64_t Dpad = round_up(p.D, kW), Dvpad = round_up(p.Dv, kW);
  const int64_t group = p.H / p.Hkv;
  const int64_t ntk = (p.Tk + kTileK - 1) / kTileK;
  const bool skipping = p.alibi && p.skip_tolerance > 0.0f && p.mask_kind != MaskKind::kAdditive;
  const std::vector<float> knorm = skipping ? key_norm_maxima(p, in.k) : std::vector<float>();
  const float log_thresh = skipping ? log_skip_threshold(p) : 0.0f;
  const bool k_direct = p.D % kW == 0, do_direct = p.Dv % kW == 0;
  // Fixed slopes (no slope gradient asked for) skip the row sums: ALiBi then costs only its bias.
  const bool slope_grads = p.alibi && (grads.dslopes_left || grads.dslopes_right);
  // Slope gradient partial sums per (b, h, side), reduced over b in a fixed order at the end.
  std::vector<double> slope_part(static_cast<size_t>(p.B * p.H * 2), 0.0);

#pragma omp parallel
  {
    std::vector<float> Qs(kTileQ * Dpad), Kt(Dpad * kTileK), Kp(kTileK * Dpad),
        Vt(Dvpad * kTileK), dOp(kTileQ * Dvpad), S(kTileQ * kTileK), dP(kTileQ * kTileK),
        dK(kTileK * Dpad), dV(kTileK * Dvpad),
        dQ(static_cast<size_t>(group * p.Tq * Dpad)), Di(static_cast<size_t>(group * p.Tq)),
        qn(static_cast<size_t>(group * p.Tq));
    SlopeRowSums rows(slope_grads ? group * p.Tq : 0);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < p.B * p.Hkv; ++item) {
      const int64_t b = item / p.Hkv, hk = item % p.Hkv;
      const float* k = in.k + b * p.k_strides.b + hk * p.k_strides.h;
      const float* v = in.v + b * p.v_strides.b + hk * p.v_strides.h;
      float* dk = grads.dk + b * p.k_strides.b + hk * p.k_strides.h;
      float* dv = grads.dv + b * p.v_strides.b + hk * p.v_strides.h;
      for (int64_t j = 0; j < p.Tk; ++j) {  // keys no query sees keep a zero gradient
        std::fill(dk + j * p.k_strides.t, dk + j * p.k_strides.t + p.D, 0.0f);
        std::fill(dv + j * p.v_strides.t, dv + j * p.v_strides.t + p.Dv, 0.0f);
      }
      // Per query head of the group: Dᵢ = rowsum(dO∘O), ‖scale·qᵢ‖, dQ accumulator.
      std::fill(dQ.begin(), dQ.end(), 0.0f);
      for (int64_t gh = 0; gh < group; ++gh) {
        const int64_t h = hk * group + gh;
        for (int64_t i = 0; i < p.Tq; ++i) {
          const int64_t oo = b * p.out_strides.b + h * p.out_strides.h + i * p.out_strides.t;
          // In double: dS = P∘(dP − Dᵢ) cancels where P is nearly one-hot, so Dᵢ carries no
          // accumulation error of its own.
          double di = 0.0;
          for (int64_t d = 0; d < p.Dv; ++d) di += static_cast<double>(dout[oo + d]) * out[oo + d];
          Di[gh * p.Tq + i] = static_cast<float>(di);
          const float* qi = in.q + b * p.q_strides.b + h * p.q_strides.h + i * p.q_strides.t;
          float ss = 0.0f;
          for (int64_t d = 0; d < p.D; ++d) ss += qi[d] * qi[d];
          qn[gh * p.Tq + i] = std::sqrt(ss) * std::abs(scale) * (1.0f + 1e-5f);
        }
      }
      rows.clear();

      for (int64_t t = 0; t < ntk; ++t) {
        const int64_t j0 = t * kTileK;
        const int64_t klen = p.key_lengths ? p.key_lengths[b] : p.Tk;
        if (j0 >= klen) break;
        const int64_t ncols = std::min(kTileK, klen - j0), ncols_pad = round_up(ncols, kW);
        // Kᵀ and Vᵀ of the tile (for S and dP), K padded (for dQ) unless usable in place.
        for (int64_t d = 0; d < p.D; ++d)
          for (int64_t c = 0; c < ncols_pad; ++c)
            Kt[d * kTileK + c] = c < ncols ? k[(j0 + c) * p.k_strides.t + d] : 0.0f;
        for (int64_t d = 0; d < p.Dv; ++d)
          for (int64_t c = 0; c < ncols_pad; ++c)
            Vt[d * kTileK + c] = c < ncols ? v[(j0 + c) * p.v_strides.t + d] : 0.0f;
        const float* kp = k + j0 * p.k_strides.t;
        int64_t ldk = p.k_strides.t;
        if (!k_direct) {
          copy_rows_padded(Kp.data(), Dpad, kp, p.k_strides.t, ncols, p.D);
          kp = Kp.data();
          ldk = Dpad;
        }
        std::fill(dK.begin(), dK.end(), 0.0f);
        std::fill(dV.begin(), dV.end(), 0.0f);
        bool touched = false;

        for (int64_t gh = 0; gh < group; ++gh) {
          const int64_t h = hk * group + gh;
          const HeadBias hb = head_bias(p, in, h);
          // Query rows that can see some key of this tile.
          int64_t ib = 0, ie = p.Tq;
          if (hb.right_masked) ib = std::max<int64_t>(0, j0 - p.query_offset());
          if (hb.left_masked) ie = std::min<int64_t>(p.Tq, j0 + ncols - 1 - p.query_offset() + 1);
          const float* lse_h = lse + (b * p.H + h) * p.Tq;

          for (int64_t i0 = ib; i0 < ie; i0 += kTileQ) {
            const int64_t nrows = std::min(kTileQ, ie - i0);
            TileGeom g{b,  h,     i0,        nrows, round_up(nrows, kW), i0 + p.query_offset(),
                       j0, ncols, ncols_pad, TileSide::kCross};
            g.side = tile_side(j0, ncols, g.pos0, g.pos0 + g.nrows - 1);
            if (skipping && may_skip(p, hb, g)) {
              const float kmax = knorm[static_cast<size_t>((b * p.Hkv + hk) * ntk + t)];
              bool skip = true;
              for (int64_t r = 0; r < g.nrows && skip; ++r) {
                const float l_r = lse_h[i0 + r];
                skip = l_r == -INFINITY ||
                       qn[gh * p.Tq + i0 + r] * kmax + max_bias_in_tile(g, hb, r) - l_r < log_thresh;
              }
              if (skip) continue;
            }
            touched = true;
            const float* q = in.q + b * p.q_strides.b + h * p.q_strides.h + i0 * p.q_strides.t;
            copy_rows_padded(Qs.data(), Dpad, q, p.q_strides.t, g.nrows, p.D, scale);
            const float* dO = dout + b * p.out_strides.b + h * p.out_strides.h + i0 * p.out_strides.t;
            int64_t lddo = p.out_strides.t;
            if (!do_direct) {
              copy_rows_padded(dOp.data(), Dvpad, dO, p.out_strides.t, g.nrows, p.Dv);
              dO = dOp.data();
              lddo = Dvpad;
            }

            // P = exp(S − lse), recomputed.
            tile_product<false>(S.data(), kTileK, Qs.data(), Dpad, Kt.data(), kTileK, g.nrows,
                                ncols_pad, p.D);
            bias_and_mask_tile<false>(S.data(), kTileK, g, hb, p);
            for (int64_t r = 0; r < g.nrows; ++r) {
              float* s = S.data() + r * kTileK;
              const float l_r = lse_h[i0 + r];
              if (l_r == -INFINITY) {  // fully masked row: no probability, no gradient
                std::fill(s, s + ncols_pad, 0.0f);
                continue;
              }
              for (int64_t c = 0; c < ncols_pad; c += kW) store(s + c, vexp(load(s + c) - l_r));
            }
            // dV += Pᵀ · dO (P read transposed).
            tile_product<true, true>(dV.data(), Dvpad, S.data(), kTileK, dO, lddo, ncols, Dvpad,
                                     g.nrows);
            // dP = dO · Vᵀ, then dS = P ∘ (dP − Dᵢ) in place, and the slope gradients.
            tile_product<false>(dP.data(), kTileK, dO, lddo, Vt.data(), kTileK, g.nrows, ncols_pad,
                                p.Dv);
            for (int64_t r = 0; r < g.nrows; ++r) {
              float* ds = dP.data() + r * kTileK;
              const float* pr = S.data() + r * kTileK;
              const float di = Di[gh * p.Tq + i0 + r];
              if (!slope_grads) {
                for (int64_t c = 0; c < ncols_pad; c += kW)
                  store(ds + c, load(pr + c) * (load(ds + c) - di));
                continue;
              }
              slope_terms(pr, ds, di, static_cast<float>(j0 - (g.pos0 + r)), ncols_pad, g.side,
                          &rows, gh * p.Tq + i0 + r);
            }
            // dK += dSᵀ · Qs (scale already in Qs); dQ += dS · K (scale applied at the end).
            tile_product<true, true>(dK.data(), Dpad, dP.data(), kTileK, Qs.data(), Dpad, ncols,
                                     Dpad, g.nrows);
            tile_product<true>(dQ.data() + (gh * p.Tq + i0) * Dpad, Dpad, dP.data(), kTileK, kp,
                               ldk, g.nrows, Dpad, ncols);
          }
        }
        if (!touched) continue;
        for (int64_t c = 0; c < ncols; ++c) {
          std::copy(dK.data() + c * Dpad, dK.data() + c * Dpad + p.D, dk + (j0 + c) * p.k_strides.t);
          std::copy(dV.data() + c * Dvpad, dV.data() + c * Dvpad + p.Dv,
                    dv + (j0 + c) * p.v_strides.t);
        }
      }
      for (int64_t gh = 0; gh < group; ++gh) {
        const int64_t h = hk * group + gh;
        float* dq = grads.dq + b * p.q_strides.b + h * p.q_strides.h;
        for (int64_t i = 0; i < p.Tq; ++i)
          for (int64_t d = 0; d < p.D; ++d)
            dq[i * p.q_strides.t + d] = scale * dQ[static_cast<size_t>((gh * p.Tq + i) * Dpad + d)];
        if (slope_grads) rows.finish(gh * p.Tq, p.Tq, Di.data(), &slope_part[static_cast<size_t>((b * p.H + h) * 2)]);
      }
    }
  }

  if (!slope_grads) return;
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

}  // namespace slope::cpu::SLOPE_ISA
