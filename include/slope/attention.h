// slope — the attention problem, its float64 reference and the fused CPU kernels.
//
// One description (AttentionProblem) covers every variant: grouped queries, Tq != Tk, causal,
// ALiBi with per-head left/right slopes (symmetric, causal, one-sided, learned), key lengths and
// an optional explicit mask. Every backend reads it; validate() is the one place it is checked.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "slope/error.h"

namespace slope {

// Explicit mask / additive bias, broadcast over B and H (stride 0), never copied to T×T per head.
enum class MaskKind : int {
  kNone = 0,
  kBool = 1,      // const uint8_t*: nonzero = the key may be attended
  kAdditive = 2,  // const float*: added to the score (after scale, beside the ALiBi bias)
};

// Where the queries sit among the keys: query i of batch row b is at position p_i = i + offset_b,
// and causality, the ALiBi distance and the window are measured from p_i.
enum class QueryPositions : int {
  kLowerRight = 0,  // offset Tk_b − Tq_b: the last query is the last key (flash-attn >= 2.1,
                    // decoding against a full buffer). Tk_b, Tq_b: row b's own lengths, the
                    // document's when packed, else Tk and Tq (key_lengths do not move it).
  kUpperLeft = 1,   // offset 0 (torch SDPA's is_causal, torch.ones(Tq, Tk).tril())
  kKeyLengths = 2,  // offset key_lengths[b] − Tq: the new queries end where row b's keys end
                    // (flash_attn_with_kvcache's cache_seqlens). Needs key_lengths.
};

// Strides of a (B, H, T, D) tensor in elements; the last dimension is contiguous.
struct Strides {
  int64_t b = 0, h = 0, t = 0;
};

// Strides for the contiguous layout of a (B, H, T, D) tensor.
inline Strides contiguous_strides(int64_t H, int64_t T, int64_t D) { return {H * T * D, T * D, D}; }

// The attention problem of DESIGN.md.
//
//   score(i, j) = cap(scale · q_i·k_j) + bias_bh(i, j) + mask(i, j),  query i sits at position
//   p_i = i + offset_b (query_positions; by default Tk − Tq, bottom-right alignment, as in
//   decoding with a KV cache), cap(x) = softcap·tanh(x/softcap) (x itself when softcap is 0),
//   bias_bh(i, j) = −m_left[b, h]·(p_i − j) for j ≤ p_i,  −m_right[b, h]·(j − p_i) for j > p_i
//   (m[b, h] = m[h] unless slopes_stride_b gives per-batch slopes). A slope is any finite real
//   (a negative one makes far keys heavier) with |m|·(Tq + Tk) ≤ FLT_MAX (the bias stays a
//   float at every distance; validate() refuses a larger one), or +∞, which masks its side; 0
//   is no bias on that side; the diagonal j = p_i
//   is never masked and has bias 0. causal masks j > p_i; the window masks j < p_i −
//   window_left and j > p_i + window_right. Keys j ≥ key_lengths[b] are masked. A row with no
//   visible key gives output 0 and logsumexp −∞ (never NaN), and zero gradients.
// Non-finite inputs (NaN, ±inf in q, k, v or dout): a key or value that row i cannot see never
// changes row i's out, lse or dq, and a query or dout row that cannot see key j never changes
// dk_j or dv_j, in the kernels as in the reference (a masked probability is an exact 0 whose
// terms are left out, not added as 0·NaN). Results that do depend on a non-finite input are
// unspecified (NaN in practice).
struct AttentionProblem {
  int64_t B = 1;    // batch
  int64_t H = 1;    // query heads
  int64_t Hkv = 1;  // key/value heads; H % Hkv == 0 (grouped queries)
  int64_t Tq = 1;   // query length
  int64_t Tk = 1;   // key length
  int64_t D = 64;   // head dim of q and k
  int64_t Dv = 64;  // head dim of v and the output

  Strides q_strides;    // q (B, H, Tq, D); dq uses the same strides
  Strides k_strides;    // k (B, Hkv, Tk, D); dk the same
  Strides v_strides;    // v (B, Hkv, Tk, Dv); dv the same
  Strides out_strides;  // out (B, H, Tq, Dv); dout the same. lse is contiguous (B, H, Tq)
                        // ((H, total_q) when packed)

  float scale = std::numeric_limits<float>::quiet_NaN();  // NaN: 1/sqrt(D)
  bool causal = false;

  const int32_t* key_lengths = nullptr;  // (B) or null: every key visible
  QueryPositions query_positions = QueryPositions::kLowerRight;

  // Packed sequences (flash-attn's varlen interface), or null: B rows of Tq queries and Tk keys.
  // Given, batch row b is document b: its queries are rows [cu_seqlens_q[b], cu_seqlens_q[b+1])
  // of q/out/dout/dq (row r at r·q_strides.t + h·q_strides.h; q_strides.b and out_strides.b must
  // be 0), its keys rows [cu_seqlens_k[b], cu_seqlens_k[b+1]) of k/v. Tq and Tk are the longest
  // document (max_seqlen_q/_k). Positions, causality and ALiBi distances restart in each
  // document, and no query sees another document's keys. lse is then (H, total_q) contiguous.
  // Both or neither; key_lengths must be null; k_strides.b and v_strides.b must be 0 too. A
  // document may have 0 queries; one with 0 keys gives zero rows (lse −inf). The explicit mask,
  // if any, is indexed by each document's own (i, j).
  const int32_t* cu_seqlens_q = nullptr;  // (B + 1), non-decreasing, from 0
  const int32_t* cu_seqlens_k = nullptr;  // (B + 1), non-decreasing, from 0

  // Sliding window (flash-attn's window_size): key j is visible from position p only if
  // p − window_left <= j <= p + window_right; −1 leaves that side unbounded.
  int64_t window_left = -1;
  int64_t window_right = -1;

  // Softcap (Gemma 2; flash-attn's softcap): the scaled score x = scale·q·k becomes
  // softcap·tanh(x / softcap) before the ALiBi bias and the mask are added. 0: off.
  float softcap = 0.0f;

  // Per-batch slopes: slopes_left/right are (B, H) with this batch stride; 0: (H), shared.
  int64_t slopes_stride_b = 0;

  // Attention dropout (flash-attn's and torch SDPA's): out_i = Σ_j (Z_ij/(1 − dropout_p))·P_ij·v_j,
  // P the softmax of the scores (its normaliser sums every visible key, kept or not, and lse is
  // that of P, unchanged by dropout), Z_ij ∈ {0, 1} the keep mask of attention_dropout_mask():
  // a pure function of (dropout_seed, dropout_offset, b, h, i, j), so the backward regenerates
  // it and a call is reproducible. dropout_p in [0, 1); 0: off.
  float dropout_p = 0.0f;
  uint64_t dropout_seed = 0;
  uint64_t dropout_offset = 0;

  MaskKind mask_kind = MaskKind::kNone;
  const void* mask = nullptr;  // (Bm, Hm, Tq, Tk), Bm ∈ {1, B}, Hm ∈ {1, H}
  int64_t mask_stride_b = 0;   // 0 broadcasts over B
  int64_t mask_stride_h = 0;   // 0 broadcasts over H
  int64_t mask_stride_t = 0;   // row stride; columns are contiguous

  // Far-tile skipping (ALiBi only): a key tile whose every probability is provably at most
  // skip_tolerance / Tk_b of its row's largest is not computed (Tk_b: the keys row b holds,
  // key_lengths[b], its document's or Tk), so each row loses at most skip_tolerance of its
  // softmax mass. See docs/far-tile-skipping.md. 0 switches it off.
  float skip_tolerance = 0x1p-24f;

  float effective_scale() const;
};

// ---- Learned relative position biases (issue 19; docs/relative-biases.md) ------------------
//
// A per-head bias that depends on a score's (query, key) positions only through the signed
// distance jd = j − p_i (and, for FIRE, on p_i through its normaliser), from a small
// parametrised family. The kernels never form it as a T×T tensor: they tabulate it once per
// call (O((Tq + Tk)·H) floats) and add it per score. d = |p_i − j| below.
//   kKerpleLog   (Chi et al. 2022, KERPLE): bias_h = −r1_h·log(1 + r2_h·d),  r1 finite, r2 ≥ 0
//   kKerplePower (Chi et al. 2022):         bias_h = −r1_h·d^r2_h,           r1 finite,
//                                           0 < r2 ≤ 2 (d^r2 = 0 at d = 0)
//   kT5          (Raffel et al. 2020, T5):  bias_h = table[bucket(j − p_i), h], bucket() as
//                Hugging Face's T5Attention._relative_position_bucket (num_buckets,
//                max_distance, bidirectional; the log evaluated in float64, the integer part
//                taken). Causal buckets: keys right of p_i share bucket 0 with the diagonal.
//   kFire        (Li et al. 2023, FIRE):    bias_h = I_h(u), u = min(1, ψ(d)/ψ(max(L, p_i))),
//                ψ(x) = log(c·x + 1), f_h(u) = b2_h + Σ_k w2_hk·relu(w1_k·u + b1_k) the
//                paper's 1 → hidden → H ReLU MLP, and I_h the linear interpolation of f_h
//                between the grid points u_n = n/N, n = 0..N (N = fire_grid):
//                  I_h(u) = F_n + t·(F_{n+1} − F_n), F_n = f_h(u_n), n = min(⌊u·N⌋, N − 1),
//                  t = u·N − n.
//                f_h is piecewise linear with a kink where w1_k·u + b1_k = 0, so
//                  |I_h(u) − f_h(u)| ≤ Σ_k |w2_hk·w1_k| / (4N)
//                (a kink changes the slope by |w2_hk·w1_k|; linear interpolation across it
//                errs by at most that times h/4, h = 1/N). The interpolant *is* the problem's
//                definition (the reference computes it in float64, gradients are its own);
//                the bound relates it to the paper's f. u ≤ 1 always holds for causal
//                attention (d ≤ p_i); keys further right than max(L, p_i) are clamped to u = 1.
//                c > 0 and L > 0 (learned in the paper; here parameters like the others).
enum class RelativeBiasKind : int {
  kNone = 0,
  kKerpleLog = 1,
  kKerplePower = 2,
  kT5 = 3,
  kFire = 4,
};

// The family and its parameters, all in one flat block `params` whose layout is
//   Kerple (log, power): r1 (H), r2 (H)
//   T5:                  table (num_buckets, H)   (Hugging Face's relative_attention_bias.weight)
//   FIRE:                w1 (hidden), b1 (hidden), w2 (H, hidden), b2 (H), c, L
// (relative_bias_param_count() gives its length). The gradient (AttentionGrads::drel) has the
// same layout. The bias is shared by the batch.
template <class T>
struct RelativeBias {
  RelativeBiasKind kind = RelativeBiasKind::kNone;
  const T* params = nullptr;
  int64_t num_buckets = 32;    // T5
  int64_t max_distance = 128;  // T5
  bool bidirectional = true;   // T5: false gives the causal (decoder) buckets
  int64_t fire_hidden = 32;    // FIRE: the MLP's width
  int64_t fire_grid = 1024;    // FIRE: N, the interpolation grid's cells over u ∈ [0, 1]
};

// Length of the flat parameter block of `kind` for H heads.
int64_t relative_bias_param_count(RelativeBiasKind kind, int64_t H, int64_t num_buckets = 32,
                                  int64_t fire_hidden = 32);

// "kerple-log", "kerple-power", "t5", "fire" (the CLI's --pos names), or "none".
const char* relative_bias_name(RelativeBiasKind kind);
// The kind of a name above; throws Error naming the choices for anything else.
RelativeBiasKind relative_bias_kind(const std::string& name);

// Starting parameters for training (layout above): Kerple-log r1 = 1, r2 = ALiBi's slopes
// (−log(1 + m·d) ≈ −m·d near the diagonal); Kerple-power r1 = ALiBi's slopes, r2 = 1 (ALiBi
// itself); T5 a zero table; FIRE w1, b1, w2, b2 uniform in ±1/√fan_in (torch's nn.Linear)
// from `seed`, c = 1, L = fire_L (the paper's threshold; the trained length is a natural one).
std::vector<float> relative_bias_init(const RelativeBias<float>& shape, int64_t H, double fire_L,
                                      uint64_t seed);

// Projects learned parameters back into the family's domain after an optimiser step (KERPLE
// clamps the same way): Kerple-log r2 ≥ 0, Kerple-power r2 ∈ [1e-2, 2], FIRE c ≥ 1e-3,
// L ≥ 1. Returns how many values it moved.
// T: float or double.
template <class T>
int64_t relative_bias_clamp(const RelativeBias<float>& shape, int64_t H, T* params);

// Tensors a problem reads. T is float for kernels, double (or complex) for the reference.
template <class T>
struct AttentionInputs {
  const T* q = nullptr;             // (B, H, Tq, D)
  const T* k = nullptr;             // (B, Hkv, Tk, D)
  const T* v = nullptr;             // (B, Hkv, Tk, Dv)
  const T* slopes_left = nullptr;   // (H), or (B, H) at b·slopes_stride_b + h; or null: no
                                    // position bias (the one switch for ALiBi)
  const T* slopes_right = nullptr;  // like slopes_left, or null: the same as slopes_left
  // A learned relative bias in place of ALiBi (kind kNone: none). Not with slopes_left.
  RelativeBias<T> rel{};
};

// Gradients the backward pass writes (overwrites, does not accumulate).
template <class T>
struct AttentionGrads {
  T* dq = nullptr;  // (B, H, Tq, D), q_strides
  T* dk = nullptr;  // (B, Hkv, Tk, D), k_strides
  T* dv = nullptr;  // (B, Hkv, Tk, Dv), v_strides
  // The slope gradients have the slopes' layout: (H), or (B, H) at b·slopes_stride_b + h (each
  // batch row's own gradient; elements between rows are left untouched). Shared slopes (H)
  // get the sum over the batch, reduced in a fixed order (deterministic).
  T* dslopes_left = nullptr;   // or null: not wanted (fixed slopes; both null skips the
                               // slope-gradient work entirely)
  T* dslopes_right = nullptr;  // or null. When the inputs' slopes_right is null (one shared
                               // vector), dslopes_left gets its whole gradient and
                               // dslopes_right is left untouched
  // Gradient of the relative bias's parameters (RelativeBias's layout, overwritten), or null.
  // Summed over the batch in a fixed order (deterministic).
  T* drel = nullptr;
};

// Checks shapes, strides, slopes, key lengths and the mask; throws Error naming what is wrong.
// Every backend (the kernels, the reference, the nn layers, the Python binding) calls it first.
// The slopes are read, when given, to reject NaN and −inf (any finite slope, of either sign, and
// +inf are valid).
// T: float (kernels), double or complex<double> (the reference, the nn layers in double). `who`
// starts every message ("attention", or the nn layer that built the problem).
template <class T>
void validate(const AttentionProblem& p, const AttentionInputs<T>& in,
              const char* who = "attention");

// validate(), plus what the backward needs: q, k and v laid out without overlap (no broadcast
// strides), since dq, dk and dv are written with their strides.
void validate_backward(const AttentionProblem& p, const AttentionInputs<float>& in);

// ---- Default slopes ----------------------------------------------------------------------

// Press et al.'s closed form generalised by max_bias (MPT, BLOOM, llama.cpp): for H a power of
// two, m_h = 2^(−max_bias·h/H), h = 1..H; otherwise the 2^⌊log2 H⌋ slopes of that power plus
// every other slope of the next power of two. max_bias 8 gives Press's get_slopes.
std::vector<float> alibi_slopes(int64_t n_heads, double max_bias = 8.0);

// The plain geometric 2^(−max_bias·h/H), h = 1..H, used by many hand-written ports; equal to
// alibi_slopes() when H is a power of two.
std::vector<float> alibi_slopes_geometric(int64_t n_heads, double max_bias = 8.0);

// The ALiBi authors' "nonsymmetric" encoder: both halves of the heads get the slopes of H/2
// heads; the first half looks left (right side masked), the second half right.
struct SlopePair {
  std::vector<float> left, right;  // (H) each; +∞ masks a side
};
SlopePair alibi_slopes_nonsymmetric(int64_t n_heads, double max_bias = 8.0);

// ---- Float64 reference (naive, obviously right; stays in the code forever) ----------------

// out (B, H, Tq, Dv) with out_strides, lse (B, H, Tq) contiguous ((H, total_q) packed). T: double
// (golden outputs), complex<double> (complex-step gradients) or float (the naive fp32 baseline that
// slope's slope gradients are compared with; the other tolerances come from
// attention_error_bounds).
template <class T>
void attention_forward_reference(const AttentionProblem& p, const AttentionInputs<T>& in, T* out,
                                 T* lse);

// Plain backward from the definition: recomputes P, returns every gradient, with
// D_i = Σ_j P_ij·dP_ij. Given `out` (the forward output), it forms D_i = rowsum(dout∘out)
// instead, as every flash backward does (ours, FA2, PyTorch's CPU flash path): in float that is
// the error baseline of the formulation, which loses ~eps·|dP| where P is nearly one-hot. The
// slope-gradient terms are summed in double (complex<double> for complex T), as slope's kernel
// sums them. Nothing is accumulated: every gradient is overwritten.
template <class T>
void attention_backward_reference(const AttentionProblem& p, const AttentionInputs<T>& in,
                                  const T* dout, const AttentionGrads<T>& grads,
                                  const T* out = nullptr);

// ---- Attention dropout: the keep mask -------------------------------------------------------

// Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC'11), Random123's philox4x32 with 10 rounds: 4 words out per (counter, key).
std::array<uint32_t, 4> philox4x32_10(const std::array<uint32_t, 4>& counter,
                                      const std::array<uint32_t, 2>& key);

// Whether key j of query row i of head h in batch row b is kept (Z_ij = 1). The exact mapping,
// for anyone who reproduces the mask (e.g. in Python), with p = dropout_p, seed = dropout_seed,
// offset = dropout_offset, H the query heads, lo/hi the low and high 32 bits of a 64-bit value:
//   key     = (lo(seed), hi(seed) XOR hi(offset))
//   counter = (⌊j/4⌋, i, b·H + h, lo(offset))      (each word mod 2³²)
//   x       = word (j mod 4) of philox4x32_10(counter, key)
//   kept    ⟺ x ≥ ⌊p·2³²⌋   (p the float widened exactly: p·2³² is exact in double)
// One Philox call serves 4 consecutive keys of a row. i and j count the batch row's queries and
// keys from 0 (packed: document b's own; never positions), h is the query head (grouped
// queries share k and v, not masks). For a
// fixed seed, distinct (offset, b, h, i, ⌊j/4⌋) give distinct (key, counter) pairs, so callers
// draw a fresh mask by advancing the offset (by 1 per call is enough). The keep probability is
// 1 − ⌊p·2³²⌋/2³², which is 1 − p exactly for every float p ≥ 2⁻⁹ and within 2⁻³² of it below.
bool attention_dropout_mask(const AttentionProblem& p, int64_t b, int64_t h, int64_t i, int64_t j);

// keep (Tk): attention_dropout_mask(p, b, h, i, j) for j = 0 .. Tk−1, as 0 or 1.
void attention_dropout_mask_row(const AttentionProblem& p, int64_t b, int64_t h, int64_t i,
                                uint8_t* keep);

// ---- Rounding-error bounds of an fp32 evaluation ---------------------------------------------

// Per-element bounds on |fp32 result − exact result| for any fp32 implementation of the
// problem that forms scores as dot products, a softmax with a rowwise normaliser (online or
// not), P·V, and the flash backward (D_i = rowsum(dO∘O), dS = P∘(dP − D_i)), possibly dropping
// keys of probability ≤ 2·skip_tolerance/Tk of the row's largest (far-tile skipping), with
// dropout's mask (attention_dropout_mask) where dropout_p > 0. Computed in float64 from the float32
// inputs, so it is the same on every machine.
//
// The model (first order in u = 2⁻²⁴, the unit roundoff of fp32), after Higham, "Accuracy and
// Stability of Numerical Algorithms" (2002), §3, with the probabilistic sum bound of Higham &
// Mary, "A new approach to probabilistic rounding error analysis", SISC 41 (2019):
//   an n-term sum or dot product of terms tᵢ errs by at most γ(n)·Σ|tᵢ|,
//   γ(n) = u·min(n, λ√n), λ = kErrorModelLambda (the deterministic bound n·u for short sums,
//   and for long ones a bound that fails with probability ≤ 2n·exp(−λ²/2) per sum);
//   a score s_ij errs by δs_ij = γ(D+2)·scale·Σ_d|q_id·k_jd| + 2u·|bias_ij|; with a softcap c
//   (x = scale·q·k, y = x/c, t = tanh y, vtanh's relative error 6u) it errs instead by
//   δs_ij = σ·(γ(D+1)·scale·Σ_d|q_id·k_jd| + 2u·|x|) + 8u·|c·t| + 2u·|bias_ij|, σ the largest
//   1 − tanh² on y ± δy (the mean value theorem: the cap damps x's error by 1 − t², and its
//   own rounding, argument 2u, tanh 6u, product u, bias addition u, rides on |c·t|); and
//   the backward's dx = dS·(1 − t²) carries the error of dS times 1 − t², plus |dS| times
//   that of the kernel's 1 − t² (8u relative, plus 2|t|(1 − t²)·δy from its argument); a
//   droppable key
//   (one skipping may drop, or P_ij < 2⁻¹²⁰, where an fp32 exp may flush to 0) adds 1 to it
//   (its probability may be lost whole);
//   P_ij = exp(s_ij − lse_i) errs relatively by ρ_ij = (1 − P_ij)·δs_ij + Σ_{k≠j} P_ik·δs_ik
//   (the exact derivative of s_ij − lse_i) + γ(Tk) (the row sum) + u·(|lse_i| + |s_ij − lse_i|)
//   (lse stored in fp32, the subtraction) + 3u (exp, the product);
//   out_id = Σ_j P_ij·v_jd errs by Σ_j P_ij·ρ_ij·|v_jd − out_id| + γ(Tk)·(Σ_j P_ij·|v_jd| +
//   |out_id|); and the backward's dP, D_i, dS, dq, dk and dv likewise, each a sum whose terms
//   carry their factors' bounds (error_bounds.cpp spells out each line);
//   dropout: a kept term carries Zc_ij = 1/(1 − p) (0 when dropped) where P meets v or dO, so
//   out_id = Σ_j P_ij·w_jd with w_jd = Zc_ij·v_jd errs by Σ_j P_ij·(ρ_ij·|w_jd − out_id| +
//   3u·|w_jd|) + γ(Tk)·(Σ_j P_ij·|w_jd| + |out_id|): P's errors act on w as they act on v without
//   dropout (the normaliser sums every P_ij), and the factor — 1/(1 − p) formed in fp32 (≤ 2u)
//   and one more rounding where it multiplies (u) — adds 3u to each kept term; likewise
//   dP_ij = Zc_ij·(dO_i·v_j) gains 3u·|dP_ij| and dv's terms P_ij·Zc_ij·dO_id gain 3u. lse, D_i
//   and dS = P∘(dP − D_i) keep their form (D_i = rowsum(dO∘O) is still Σ_j P_ij·dP_ij);
//   a slope gradient, for a softmax backward whose D_i is consistent with its P (autograd's,
//   and slope's kernel, which corrects the flash D_i) and whose terms are summed in fp32 over
//   at most 64 keys, then in double: errors common to a row cancel, each key's own error
//   counts with its distance from the row's P-weighted mean distance, and the B·Tq·Tk
//   independent term errors add in quadrature, λ·√(Σ bound²) (Hoeffding's inequality).
// Each result's own rounding to fp32 adds u·|result|. Underflow: every operation may also
// flush a result below 2⁻¹²⁶ to 0 (the CPU kernels run with flush-to-zero), an absolute error
// of up to 2⁻¹²⁶ per operation that forms a result (Higham §2.1's model with underflow); it
// matters only for results near 10⁻³⁸. Fully masked rows have bound 0 (their results are
// exact zeros).
struct AttentionErrorBounds {
  // Indexed like the tensors they bound (their strides), each as long as the offset of that
  // tensor's last element + 1; elements no tensor element maps to are 0.
  std::vector<double> out;            // like out, out_strides
  std::vector<double> lse;            // like lse: (B, H, Tq), or (H, total_q) packed
  std::vector<double> dq, dk, dv;     // like q, k, v
  std::vector<double> dslopes_left;   // the slopes' layout, (H) or (B, H) with
                                      // slopes_stride_b; the whole gradient when
                                      // slopes_right is null
  std::vector<double> dslopes_right;  // the same; zeros when slopes_right is null
};
inline constexpr double kErrorModelLambda = 8.0;

// dout (B, H, Tq, Dv) with out_strides, or null: forward bounds only (the gradients' vectors
// are left empty). Throws Error on an invalid problem (validate()).
AttentionErrorBounds attention_error_bounds(const AttentionProblem& p,
                                            const AttentionInputs<float>& in, const float* dout);

// ---- Fused CPU kernels (fp32) ----------------------------------------------------------------

// Tiled online-softmax forward. Writes out (out_strides) and lse (B, H, Tq), natural log
// ((H, total_q) when packed).
// OpenMP over (batch, head, query tile); memory beyond inputs and outputs: O(tile) per thread.
void attention_forward(const AttentionProblem& p, const AttentionInputs<float>& in, float* out,
                       float* lse);

// Flash-attention-2 backward: recomputes P from lse, D_i = rowsum(dO∘O). Deterministic for a
// given input (slope gradients reduced in a fixed order, independent of the thread count).
void attention_backward(const AttentionProblem& p, const AttentionInputs<float>& in,
                        const float* out, const float* dout, const float* lse,
                        const AttentionGrads<float>& grads);

// Which vector instruction set the kernels dispatched to ("avx512", "avx2", "generic"): the best
// this processor has, or the one the environment variable SLOPE_ISA names (read once, at the
// first call), or the last set_attention_cpu_isa().
const char* attention_cpu_isa();

// The instruction sets this processor runs, from "generic" up.
std::vector<std::string> attention_cpu_isas();

// Makes every later kernel call use `name` ("generic", "avx2" or "avx512"), for tests and
// benchmarks. Throws Error if the name is unknown or this processor lacks it. Not meant to be
// called while another thread runs a kernel (that call may use either instruction set).
void set_attention_cpu_isa(const std::string& name);

}  // namespace slope
