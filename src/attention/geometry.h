// Internal: where batch row b of an attention problem lives and where its queries sit — the one
// place that knows about key lengths, query positions and packed sequences (cu_seqlens). The
// reference, the error model, the kernels and the tests read every row base and position from
// row_geometry(); nothing else indexes a tensor by b.
#pragma once

#include <algorithm>
#include <cstdint>

#include "slope/attention.h"

namespace slope::detail {

// Batch row b of a problem: a padded row of (Tq, Tk), or document b when packed.
struct RowGeometry {
  int64_t Tq;       // its queries: Tq, or the document's
  int64_t Tk_rows;  // key rows it owns in k/v/dk/dv: Tk, or the document's
  int64_t Tk;       // keys any query may see, j < Tk: Tk_rows, or key_lengths[b] (≤ Tk_rows)
  int64_t offset;   // position of query 0 among the keys (QueryPositions): query i sits at
                    // i + offset
  // Element offsets of its first row (head 0): q and dq, k and dk, v and dv, out and dout.
  int64_t q, k, v, out;
  int64_t lse, lse_h;  // lse of (head h, query i) at lse + h·lse_h + i
};

inline bool is_packed(const AttentionProblem& p) { return p.cu_seqlens_q != nullptr; }

// Rows of q (and out) per head over the whole batch: B·Tq padded, total_q packed; the same for k.
inline int64_t total_q(const AttentionProblem& p) {
  return is_packed(p) ? p.cu_seqlens_q[p.B] : p.B * p.Tq;
}
inline int64_t total_k(const AttentionProblem& p) {
  return is_packed(p) ? p.cu_seqlens_k[p.B] : p.B * p.Tk;
}

// Elements of lse: (B, H, Tq) padded, (H, total_q) packed (flash-attn's varlen layout).
inline int64_t lse_elements(const AttentionProblem& p) { return p.H * total_q(p); }

// A packed problem's Tq and Tk are bounds (flash-attn's max_seqlen_q/_k); the kernels size
// their work and workspaces by them, so they run with the longest document's lengths instead
// (at least 1): the same results, and a generous bound costs nothing. Other problems: as given.
inline AttentionProblem with_packed_extents(const AttentionProblem& p) {
  if (!is_packed(p)) return p;
  AttentionProblem t = p;
  t.Tq = t.Tk = 1;
  for (int64_t b = 0; b < p.B; ++b) {
    t.Tq = std::max<int64_t>(t.Tq, p.cu_seqlens_q[b + 1] - p.cu_seqlens_q[b]);
    t.Tk = std::max<int64_t>(t.Tk, p.cu_seqlens_k[b + 1] - p.cu_seqlens_k[b]);
  }
  t.Tq = std::min(t.Tq, p.Tq), t.Tk = std::min(t.Tk, p.Tk);  // validate() checked they fit
  return t;
}

inline RowGeometry row_geometry(const AttentionProblem& p, int64_t b) {
  RowGeometry g{};
  int64_t row_q = 0, row_k = 0;  // first q and k row (packed), else 0
  if (is_packed(p)) {
    row_q = p.cu_seqlens_q[b], row_k = p.cu_seqlens_k[b];
    g.Tq = p.cu_seqlens_q[b + 1] - row_q;
    g.Tk_rows = p.cu_seqlens_k[b + 1] - row_k;
    g.lse = row_q, g.lse_h = total_q(p);
  } else {
    g.Tq = p.Tq, g.Tk_rows = p.Tk;
    g.lse = b * p.H * p.Tq, g.lse_h = p.Tq;
  }
  g.Tk = p.key_lengths ? p.key_lengths[b] : g.Tk_rows;
  switch (p.query_positions) {
    case QueryPositions::kUpperLeft:
      g.offset = 0;
      break;
    case QueryPositions::kKeyLengths:
      g.offset = g.Tk - g.Tq;
      break;
    default:
      g.offset = g.Tk_rows - g.Tq;
      break;  // kLowerRight: the buffer's (document's) end
  }
  g.q = b * p.q_strides.b + row_q * p.q_strides.t;
  g.out = b * p.out_strides.b + row_q * p.out_strides.t;
  g.k = b * p.k_strides.b + row_k * p.k_strides.t;
  g.v = b * p.v_strides.b + row_k * p.v_strides.t;
  return g;
}

}  // namespace slope::detail
