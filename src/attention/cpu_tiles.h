// Internal: the tile-level pieces shared by the forward and backward CPU kernels — the one tile
// product, transposes, and the ALiBi bias + masking of a score tile. Included by cpu_kernels.cpp
// and cpu_backward.cpp only (one copy per instruction set).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "attention/cpu_rel_bias.h"
#include "attention/cpu_vec.h"
#include "slope/attention.h"

namespace slope::cpu::SLOPE_ISA {

// Tile sizes. 64×64 keeps a score tile (16 KiB) and the Q/K/V tiles of D = 64 in L2.
// Measured (AVX-512 EPYC, 2 threads, B=4 H=12 D=64, forward): kTileQ = 128, which halves the
// K/V traffic per query, ran at the same speed as 64 at T = 2048 and 8192 (within 3%), so the
// smaller tile stays (less per-thread memory, finer load balance). Other sizes: not measured.
constexpr int64_t kTileQ = 64;
constexpr int64_t kTileK = 64;
static_assert(kTileK % kW == 0 && kTileQ % kW == 0, "tiles must hold whole vectors");

// Register block of the tile product: kMR rows × kNV vectors of accumulators. AVX-512 has 32
// registers (4×4 = 16 accumulators), AVX2 and SSE 16 (4×2 = 8 accumulators).
constexpr int kMR = 4;
constexpr int kNV = kW == 16 ? 4 : 2;

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// C (MR × NV·kW) (+)= A (MR × K) · B (K × NV·kW), accumulators in registers. kTransA: A is
// stored transposed, element (m, k) at A[k·lda + m] (saves transposing score tiles).
// kSkipZero: terms whose A element is exactly 0 are left out rather than added as 0·B, so that a
// non-finite B row (NaN or ±inf in a key or value a row cannot see) never reaches a row whose
// weight for it is 0 (0·NaN = NaN). For finite B the result is the same: a skipped term would
// have added ±0.
template <int MR, int NV, bool kAccumulate, bool kTransA, bool kSkipZero>
inline void tile_product_block(float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                               int64_t ldb, int64_t K) {
  vf c[MR][NV];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[r][v] = kAccumulate ? load(C + r * ldc + v * kW) : vf{};
  for (int64_t k = 0; k < K; ++k) {
    vf b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = load(B + k * ldb + v * kW);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const float a_rk = kTransA ? A[k * lda + r] : A[r * lda + k];
      if constexpr (kSkipZero)
        if (a_rk == 0.0f) continue;
      const vf a = splat(a_rk);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[r][v] += a * b[v];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store(C + r * ldc + v * kW, c[r][v]);
}

template <int NV, bool kAccumulate, bool kTransA, bool kSkipZero>
inline void tile_product_rows(float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                              int64_t ldb, int64_t M, int64_t K) {
  const int64_t step_a = kTransA ? 1 : lda;  // distance between rows of A
  int64_t m = 0;
  for (; m + kMR <= M; m += kMR)
    tile_product_block<kMR, NV, kAccumulate, kTransA, kSkipZero>(C + m * ldc, ldc, A + m * step_a,
                                                                 lda, B, ldb, K);
  for (; m < M; ++m)
    tile_product_block<1, NV, kAccumulate, kTransA, kSkipZero>(C + m * ldc, ldc, A + m * step_a,
                                                               lda, B, ldb, K);
}

// C (M × N) (+)= A (M × K) · B (K × N), row-major with leading dimensions (A stored transposed
// when kTransA); N must be a multiple of kW (callers pad with zeros). Called through the three
// names below, which say what each step of the kernels computes.
template <bool kAccumulate, bool kTransA, bool kSkipZero = false>
inline void tile_product(float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                         int64_t ldb, int64_t M, int64_t N, int64_t K) {
  int64_t n = 0;
  for (; n + kNV * kW <= N; n += kNV * kW)
    tile_product_rows<kNV, kAccumulate, kTransA, kSkipZero>(C + n, ldc, A, lda, B + n, ldb, M, K);
  for (; n < N; n += kW)
    tile_product_rows<1, kAccumulate, kTransA, kSkipZero>(C + n, ldc, A, lda, B + n, ldb, M, K);
}

// C = A·B  (A: M × K, row-major, leading dim lda; B: K × N; C: M × N).
inline void mm_AB(float* C, int64_t ldc, const float* A, int64_t lda, const float* B, int64_t ldb,
                  int64_t M, int64_t N, int64_t K) {
  tile_product<false, false>(C, ldc, A, lda, B, ldb, M, N, K);
}

// C += A·B. skip_zero: leave out the terms of A's zeros (see tile_product_block); callers set it
// when some weight in A is a masked 0 and B is not all finite.
inline void mm_AB_acc(float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                      int64_t ldb, int64_t M, int64_t N, int64_t K, bool skip_zero = false) {
  if (skip_zero)
    tile_product<true, false, true>(C, ldc, A, lda, B, ldb, M, N, K);
  else
    tile_product<true, false>(C, ldc, A, lda, B, ldb, M, N, K);
}

// C += Aᵀ·B, A stored as K × M (leading dim lda): saves transposing score tiles. skip_zero: as
// for mm_AB_acc.
inline void mm_AtB_acc(float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                       int64_t ldb, int64_t M, int64_t N, int64_t K, bool skip_zero = false) {
  if (skip_zero)
    tile_product<true, true, true>(C, ldc, A, lda, B, ldb, M, N, K);
  else
    tile_product<true, true>(C, ldc, A, lda, B, ldb, M, N, K);
}

// Whether every element of rows × cols floats (row stride ld) is finite. Vector pass (x·0 is 0
// for finite x, NaN for NaN and ±inf), a scalar tail.
inline bool all_finite(const float* x, int64_t ld, int64_t rows, int64_t cols) {
  vf acc{};
  float tail = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ld;
    int64_t c = 0;
    for (; c + kW <= cols; c += kW) acc += load(row + c) * 0.0f;
    for (; c < cols; ++c) tail += row[c] * 0.0f;
  }
  return hsum(acc) + tail == 0.0f;
}

// dst (cols × rows, leading dim ldd) = scale · transpose of src (rows × cols, leading dim lds).
inline void transpose(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows,
                      int64_t cols, float scale = 1.0f) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ldd + r] = scale * src[r * lds + c];
}

// Copies rows × n floats (row stride lds, scaled by `scale`) into dst (leading dim ldd ≥ n),
// zero-filling columns n..ldd. Returns nothing; used to make padded, vector-aligned tiles.
inline void copy_rows_padded(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows,
                             int64_t n, float scale = 1.0f) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t d = 0; d < n; ++d) dst[r * ldd + d] = scale * src[r * lds + d];
    for (int64_t d = n; d < ldd; ++d) dst[r * ldd + d] = 0.0f;
  }
}

// Per-(batch row, head) view of the position bias and the window. causal folds into
// right_masked; the window bounds the signed distance jd = j − pos to [jd_lo, jd_hi].
struct HeadBias {
  bool alibi = false;
  float m_left = 0.0f, m_right = 0.0f;  // 0 where that side is masked (never multiply +inf);
                                        // either sign otherwise
  bool left_masked = false, right_masked = false;
  int64_t win_left = -1, win_right = -1;      // the window (−1: unbounded) ...
  float jd_lo = -INFINITY, jd_hi = INFINITY;  // ... as bounds on jd (exact: |jd| < 2^24)
  RelHead rel;                                // a learned relative bias (cpu_rel_bias.h), or none
};

// rt: the call's relative-bias tables (null or off: none).
inline HeadBias head_bias(const AttentionProblem& p, const AttentionInputs<float>& in, int64_t b,
                          int64_t h, const detail::RelTables* rt = nullptr) {
  HeadBias hb;
  hb.rel = rel_head(rt, h);
  hb.right_masked = p.causal;
  // A window at least Tq + Tk wide cuts nothing (|jd| < Tq + Tk): unbounded, so that the
  // float bounds stay exact.
  const int64_t span = p.Tq + p.Tk;
  hb.win_left = p.window_left < span ? p.window_left : -1;
  hb.win_right = p.window_right < span ? p.window_right : -1;
  if (hb.win_left >= 0) hb.jd_lo = -static_cast<float>(hb.win_left);
  if (hb.win_right >= 0) hb.jd_hi = static_cast<float>(hb.win_right);
  if (!in.slopes_left) return hb;
  hb.alibi = true;
  const int64_t at = b * p.slopes_stride_b + h;  // slopes (H) or (B, H)
  const float ml = in.slopes_left[at];
  const float mr = in.slopes_right ? in.slopes_right[at] : ml;
  hb.left_masked = std::isinf(ml);  // +inf only: validate() refuses −inf
  hb.right_masked = hb.right_masked || std::isinf(mr);
  hb.m_left = hb.left_masked ? 0.0f : ml;
  hb.m_right = hb.right_masked ? 0.0f : mr;
  return hb;
}

// Keys [kbeg, kend) that some query at positions [pos0, posL] may see, of klen keys: the
// masked sides and the window cut it; tiles outside it are never computed.
inline void visible_keys(const HeadBias& hb, int64_t klen, int64_t pos0, int64_t posL,
                         int64_t* kbeg, int64_t* kend) {
  *kend = klen;
  if (hb.right_masked) *kend = std::min(*kend, posL + 1);
  if (hb.win_right >= 0) *kend = std::min(*kend, posL + hb.win_right + 1);
  *kbeg = hb.left_masked ? std::max<int64_t>(0, pos0) : 0;
  if (hb.win_left >= 0) *kbeg = std::max(*kbeg, pos0 - hb.win_left);
}

// Query rows [ib, ie) of Tq, query 0 at position offset, that may see some key of [j0, jL]:
// the mirror of visible_keys.
inline void visible_queries(const HeadBias& hb, int64_t Tq, int64_t offset, int64_t j0, int64_t jL,
                            int64_t* ib, int64_t* ie) {
  *ib = 0, *ie = Tq;
  if (hb.right_masked) *ib = std::max<int64_t>(*ib, j0 - offset);
  if (hb.win_right >= 0) *ib = std::max<int64_t>(*ib, j0 - hb.win_right - offset);
  if (hb.left_masked) *ie = std::min<int64_t>(*ie, jL - offset + 1);
  if (hb.win_left >= 0) *ie = std::min<int64_t>(*ie, jL + hb.win_left - offset + 1);
}

// Softcap of a score tile, before the bias and the mask (flash-attn 2's order; see Scorer::cap
// in scorer.h): x ← softcap·tanh(x·(1/softcap)) over n_outer rows of n_lanes (whole vectors),
// and with sech2 (same layout), d cap/dx = sech²(x/softcap) for the backward. Error (relative,
// u = 2⁻²⁴): the argument 2u, vtanh 6u (sech² 8u), the product u; error_bounds.cpp models it.
inline void softcap_tile(float* S, int64_t lds, int64_t n_outer, int64_t n_lanes, float softcap,
                         float* sech2) {
  const float inv = 1.0f / softcap;
  for (int64_t o = 0; o < n_outer; ++o)
    for (int64_t c = 0; c < n_lanes; c += kW) {
      vf d;
      const vf t = vtanh(load(S + o * lds + c) * inv, &d);
      store(S + o * lds + c, softcap * t);
      if (sech2) store(sech2 + o * lds + c, d);
    }
}

// Where a key tile [j0, j0 + ncols) lies relative to the query rows at positions [pos0, posL]:
// wholly at or left of every row's diagonal, wholly right of it, or crossing it.
enum class TileSide { kLeft, kRight, kCross };
inline TileSide tile_side(int64_t j0, int64_t ncols, int64_t pos0, int64_t posL) {
  if (j0 + ncols - 1 <= pos0) return TileSide::kLeft;
  if (j0 > posL) return TileSide::kRight;
  return TileSide::kCross;
}

// Geometry of one (query rows, key columns) tile.
struct TileGeom {
  int64_t b, h;       // batch row and query head
  int64_t i0, nrows;  // first query row and count
  int64_t nrows_pad;  // nrows rounded up to whole vectors
  int64_t pos0;       // position of query row i0 (i0 + the row's offset, geometry.h)
  int64_t j0, ncols;  // first key and count of real keys (columns ≥ ncols are padding)
  int64_t ncols_pad;  // ncols rounded up to whole vectors
  TileSide side;
};

// Whether bias_and_mask_tile<kQueryLanes> must mask element by element: key padding inside the
// vectors (S layout), or a window that cuts some row of the tile.
template <bool kQueryLanes>
inline bool masks_per_element(const TileGeom& g, const HeadBias& hb) {
  return (!kQueryLanes && g.ncols != g.ncols_pad) ||
         static_cast<float>(g.j0 - (g.pos0 + g.nrows - 1)) < hb.jd_lo ||
         static_cast<float>(g.j0 + g.ncols - 1 - g.pos0) > hb.jd_hi;
}

// Whether every real (query row, key) pair of the tile is visible: no side, window, padding
// column or explicit mask hides any. Where this is false, some probability of the tile is a
// masked 0, and the products that meet it with k, v, q or dO rows leave those terms out when
// the rows are not all finite (mm_AB_acc's skip_zero), so that a key a row cannot see never
// changes that row, nor a row a key cannot see that key's gradients.
template <bool kQueryLanes>
inline bool tile_fully_visible(const TileGeom& g, const HeadBias& hb, const AttentionProblem& p) {
  if (p.mask_kind != MaskKind::kNone || masks_per_element<kQueryLanes>(g, hb)) return false;
  return (g.side == TileSide::kLeft && !hb.left_masked) ||
         (g.side == TileSide::kRight && !hb.right_masked);
}

// Adds the ALiBi bias to a score tile and sets masked scores (padding, masked sides, causal,
// explicit mask) to −inf.
//   bias = m_left·(j − pos) for j ≤ pos, −m_right·(j − pos) for j > pos.
// Two layouts, one definition: kQueryLanes = false: S is (query rows × key columns), vectors run
// along keys, keys ≥ ncols are padding; kQueryLanes = true: S is Sᵀ (key rows × query columns),
// vectors run along queries, only real keys are stored and query lanes ≥ nrows are ignored.
// The distance j − pos is formed exactly in fp32 (|j − pos| < 2^24), never as m·j − m·pos: the
// row term would cancel in softmax, but at T = 8k it makes scores ~10^3 and costs 3 digits.
template <bool kQueryLanes>
inline void bias_and_mask_tile(float* S, int64_t lds, const TileGeom& g, const HeadBias& hb,
                               const AttentionProblem& p) {
  // Outer index o runs over query rows (S) or keys (Sᵀ); lanes over the other.
  const int64_t n_outer = kQueryLanes ? g.ncols : g.nrows;
  const int64_t n_lanes = kQueryLanes ? g.nrows_pad : g.ncols_pad;
  const float sign = kQueryLanes ? -1.0f : 1.0f;  // jd = jd0(o) + sign·(lane index)
  auto jd0_of = [&](int64_t o) {
    return static_cast<float>(kQueryLanes ? g.j0 + o - g.pos0 : g.j0 - (g.pos0 + o));
  };
  if (hb.rel.on()) add_relative_bias<kQueryLanes>(S, lds, n_outer, n_lanes, g.j0, g.pos0, hb.rel);
  const bool general = masks_per_element<kQueryLanes>(g, hb);
  const vf lane = iota() * sign;
  if (!general && g.side == TileSide::kLeft && !hb.left_masked) {
    if (hb.alibi)
      for (int64_t o = 0; o < n_outer; ++o) {
        float* s = S + o * lds;
        const float jd0 = jd0_of(o);
        for (int64_t c = 0; c < n_lanes; c += kW)
          store(s + c, load(s + c) + hb.m_left * (lane + (jd0 + sign * static_cast<float>(c))));
      }
  } else if (!general && g.side == TileSide::kRight && !hb.right_masked) {
    if (hb.alibi)
      for (int64_t o = 0; o < n_outer; ++o) {
        float* s = S + o * lds;
        const float jd0 = jd0_of(o);
        for (int64_t c = 0; c < n_lanes; c += kW)
          store(s + c, load(s + c) - hb.m_right * (lane + (jd0 + sign * static_cast<float>(c))));
      }
  } else {
    const vf neg_inf = splat(-INFINITY);
    const vf ncols = splat(static_cast<float>(g.ncols));
    for (int64_t o = 0; o < n_outer; ++o) {
      float* s = S + o * lds;
      const float jd0 = jd0_of(o);
      for (int64_t c = 0; c < n_lanes; c += kW) {
        const vf jd = lane + (jd0 + sign * static_cast<float>(c));
        vi visible = jd == jd;  // all true
        if (!kQueryLanes) visible &= (iota() + static_cast<float>(c)) < ncols;
        if (hb.right_masked) visible &= jd <= 0.0f;
        if (hb.left_masked) visible &= jd >= 0.0f;
        visible &= jd >= hb.jd_lo;
        visible &= jd <= hb.jd_hi;
        vf x = load(s + c);
        // One multiply-add, like the fast paths above: the forward (whose tiles mostly take a
        // fast path) and the backward (ragged tiles take this one) must round a score alike,
        // or exp(s − lse) is off by an ulp of |s| (measured: 2.7× the fp32 dv error).
        if (hb.alibi) x += (jd <= 0.0f ? splat(hb.m_left) : splat(-hb.m_right)) * jd;
        store(s + c, visible ? x : neg_inf);
      }
    }
  }
  if (p.mask_kind == MaskKind::kNone) return;
  const int64_t rs = kQueryLanes ? 1 : lds, cs = kQueryLanes ? lds : 1;  // (r, c) → S[r·rs + c·cs]
  for (int64_t r = 0; r < g.nrows; ++r) {
    const int64_t off =
        g.b * p.mask_stride_b + g.h * p.mask_stride_h + (g.i0 + r) * p.mask_stride_t + g.j0;
    if (p.mask_kind == MaskKind::kBool) {
      const uint8_t* m = static_cast<const uint8_t*>(p.mask) + off;
      for (int64_t c = 0; c < g.ncols; ++c)
        if (m[c] == 0) S[r * rs + c * cs] = -INFINITY;
    } else {
      const float* m = static_cast<const float*>(p.mask) + off;
      // −inf stays −inf whatever the score (a NaN score of a masked key must not unmask it).
      for (int64_t c = 0; c < g.ncols; ++c)
        S[r * rs + c * cs] = m[c] == -INFINITY ? -INFINITY : S[r * rs + c * cs] + m[c];
    }
  }
}

// Largest bias a row can see in a tile wholly on one side of its diagonal (the skip bound).
// A distance table's bound is its largest value at the tile's distances or beyond (max_left,
// max_right: suffix maxima), valid whatever the values.
inline float max_bias_in_tile(const TileGeom& g, const HeadBias& hb, int64_t r) {
  const int64_t pos = g.pos0 + r;
  if (hb.rel.dist_fwd)
    return g.side == TileSide::kLeft ? hb.rel.max_left[pos - (g.j0 + g.ncols - 1)]
                                     : hb.rel.max_right[g.j0 - pos];
  if (g.side == TileSide::kLeft) return -hb.m_left * static_cast<float>(pos - (g.j0 + g.ncols - 1));
  return -hb.m_right * static_cast<float>(g.j0 - pos);
}

// Whether far-tile skipping may be used at all for this head (see docs/far-tile-skipping.md):
// ALiBi on, a tolerance set, no additive mask (it could raise a score without bound), and a
// tile wholly on an unmasked side of the diagonal whose slope is > 0 (a slope of 0 bounds
// nothing; a negative one makes far keys heavier, so that side is never skipped).
// Kerple and T5 skip with the suffix-maximum bound of max_bias_in_tile; FIRE never does (its
// bias depends on the row's normaliser, and no bound is implemented for it).
inline bool may_skip(const AttentionProblem& p, const HeadBias& hb, const TileGeom& g) {
  if (p.skip_tolerance <= 0.0f || p.mask_kind == MaskKind::kAdditive) return false;
  if (hb.rel.dist_fwd) {
    if (g.side == TileSide::kLeft) return !hb.left_masked;
    if (g.side == TileSide::kRight) return !hb.right_masked;
    return false;
  }
  if (!hb.alibi) return false;
  if (g.side == TileSide::kLeft) return !hb.left_masked && hb.m_left > 0.0f;
  if (g.side == TileSide::kRight) return !hb.right_masked && hb.m_right > 0.0f;
  return false;
}

}  // namespace slope::cpu::SLOPE_ISA
