"""slope's Triton kernels: the attention problem of include/slope/attention.h on a GPU (and on
the CPU under Triton's interpreter, TRITON_INTERPRET=1, which is how CI tests them).

Three kernels, one idea each, in flash-attention-2's split:
  attention_fwd_kernel   one program per (query block, batch row, head): online softmax over
                         the key blocks a row can see, out and lse (fp32, natural log).
  attention_bwd_dkdv_kernel  one program per (key block, batch row, kv head): loops over the
                         query heads of its group and the query blocks that see it; dk, dv are
                         owned by the program (no atomics).
  attention_bwd_dq_kernel    one program per (query block, batch row, head): dq, and the slope
                         gradients of its rows as one partial sum per program, written to a
                         buffer that torch reduces in a fixed order (no atomics: deterministic).

Tiles are (BLOCK_M queries) × (BLOCK_N keys) × (BLOCK_D head dims, D padded to a power of two,
masked loads). Every score goes through `score_tile`, so the forward and both backward kernels
see one definition: x = scale·q·k, capped by softcap·tanh(x/softcap), plus the ALiBi bias
−m_left·(p_i − j) left of the query's position p_i and −m_right·(j − p_i) right of it, or a
learned relative bias read from a per-head table by signed distance p_i − j
(docs/relative-biases.md), plus the explicit mask; then the visibility rules (key lengths,
causal, window, mask) give −inf.

Legend: `_m` varies over query rows of the tile, `_n` over keys, `_d` over head dims; `pos_m` are
the rows' positions among the keys; `Geo` rows are (q_start, q_len, k_start, k_len, offset) of
one batch row (padded row or packed document), built by slope._triton.
"""

import os

import triton
import triton.language as tl


INTERPRETER = tl.constexpr(os.environ.get("TRITON_INTERPRET", "0") == "1")


def device_function(fn):
    """@triton.jit for a function the kernels call. Under the interpreter, the plain Python
    function instead: the interpreter re-patches triton.language on every call of a jit
    function (~3 ms, measured: a third of the test time), while a plain call runs the same
    source inside the kernel's patched scope. The compiled kernels inline these either way."""
    if INTERPRETER:
        return fn
    return triton.jit(fn)


@device_function
def round_to(x, dtype: tl.constexpr):
    """fp32 x rounded to `dtype` to nearest, ties to even, as the GPU converts. The interpreter
    truncates fp32 to bf16 (triton 3.9's _convert_float, measured: errors up to 2 ulps), so
    there the rounding is done on the bits first, after which its conversion is exact."""
    if INTERPRETER and dtype == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        x = bits.to(tl.float32, bitcast=True)
    return x.to(dtype)


@device_function
def tile_dot(a, b, DOT_PRECISION: tl.constexpr):
    """a @ b with fp32 accumulation. Under the interpreter bf16 tiles are widened to fp32 first
    (its numpy matmul mistakes bf16 for integers, measured with triton 3.9): exact, since a
    product of two bf16 numbers is exact in fp32, so the sums are those of the tensor cores up to
    their order."""
    if INTERPRETER:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    return tl.dot(a, b, input_precision=DOT_PRECISION)


# ---- Philox4x32-10 and the dropout keep mask (the mapping of attention.h) -------------------

PHILOX_M0 = tl.constexpr(0xD2511F53)
PHILOX_M1 = tl.constexpr(0xCD9E8D57)
PHILOX_W0 = tl.constexpr(0x9E3779B9)
PHILOX_W1 = tl.constexpr(0xBB67AE85)


@device_function
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Random123's philox4x32 with 10 rounds on uint32 tensors: the round
    (c0, c1, c2, c3) -> (hi(M1·c2) ^ c1 ^ k0, lo(M1·c2), hi(M0·c0) ^ c3 ^ k1, lo(M0·c0)),
    the key bumped by the Weyl constants between rounds."""
    for _ in tl.static_range(10):
        hi0 = tl.math.umulhi(c0, PHILOX_M0)
        lo0 = c0 * PHILOX_M0
        hi1 = tl.math.umulhi(c2, PHILOX_M1)
        lo1 = c2 * PHILOX_M1
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = k0 + PHILOX_W0
        k1 = k1 + PHILOX_W1
    return c0, c1, c2, c3


@device_function
def dropout_keep(i_m, j_n, bh, Rng):
    """Z_ij of attention.h's attention_dropout_mask for the tile rows i_m, keys j_n of
    bh = b·H + h: counter (⌊j/4⌋, i, b·H + h, lo(offset)), key (lo(seed), hi(seed) ^ hi(offset)),
    word j mod 4, kept when it is >= threshold = ⌊p·2³²⌋. Rng (int64, 4): key0, key1, lo(offset),
    threshold. Bool (BLOCK_M, BLOCK_N). One Philox call per element (4× the minimum: the
    interleaving of 4 words into 4 keys would need a reshape the interpreter and the compiler
    treat differently; measure before changing)."""
    zero = tl.zeros([i_m.shape[0], j_n.shape[0]], dtype=tl.uint32)
    c0 = zero + (j_n // 4).to(tl.uint32)[None, :]
    c1 = zero + i_m.to(tl.uint32)[:, None]
    c2 = zero + bh.to(tl.uint32)
    c3 = zero + tl.load(Rng + 2).to(tl.uint32)
    k0 = zero + tl.load(Rng + 0).to(tl.uint32)
    k1 = zero + tl.load(Rng + 1).to(tl.uint32)
    r0, r1, r2, r3 = philox4x32_10(c0, c1, c2, c3, k0, k1)
    word = (j_n % 4)[None, :]
    x = tl.where(word == 0, r0, tl.where(word == 1, r1, tl.where(word == 2, r2, r3)))
    return x >= tl.load(Rng + 3).to(tl.uint32)


# ---- scores ----------------------------------------------------------------------------------


@device_function
def tanh_sech2(y):
    """tanh(y) and sech²(y) = 1 − tanh²(y) in fp32, as the CPU kernels' vtanh forms them
    (src/attention/cpu_vec.h): from w = exp(−2|y|), tanh|y| = (1 − w)/(1 + w) and
    sech² = 4w/(1 + w)², straight from w so that it keeps its relative accuracy where 1 − tanh²
    would cancel; for |y| < 0.625, where 1 − w cancels, Cephes' tanhf polynomial y + y³·P(y²).
    The error model allows 6u for tanh and 8u for sech² (attention.h). (Triton's libdevice tanh
    does not run under the interpreter.)"""
    a = tl.abs(y)
    w = tl.exp(-2.0 * a)
    one_w = 1.0 + w
    sech2 = 4.0 * w / (one_w * one_w)
    z = y * y
    poly = -5.70498872745e-3 * z + 2.06390887954e-2
    poly = poly * z - 5.37397155531e-2
    poly = poly * z + 1.33314422036e-1
    poly = poly * z - 3.33332819422e-1
    t = tl.where(a < 0.625, poly * z * a + a, (1.0 - w) / one_w)
    return tl.where(y < 0, -t, t), sech2


@device_function
def score_tile(qk, pos_m, row_ok_m, j_n, k_len, b, h, ml, mr, scale, softcap, window_left,
               window_right, Mask, mask_sb, mask_sh, mask_st, mask_sk, i_m, RelTab, RelInfo,
               rel_w, rel_lo, CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr, SOFTCAP: tl.constexpr,
               MASK_KIND: tl.constexpr, REL: tl.constexpr):
    """Scores s (BLOCK_M, BLOCK_N) fp32 from the raw products qk = q·k, −inf where key j is not
    visible from row i; and the cap's derivative sech²(x/softcap) (x itself, unused, without a
    softcap), which the backward multiplies into dS. MASK_KIND: 0 none, 1 bool (nonzero = may
    attend), 2 additive. REL: a learned relative bias. REL = 1 (Kerple, T5, FIRE below L): read
    from head h's row of RelTab (H, rel_w) fp32 at signed distance p_i − j − rel_lo (one gather
    per score; lanes outside the table, which are masked, read its edge). REL = 2 (FIRE with
    rows at or past L): the CPU kernels' interpolant (cpu_rel_bias.h's
    fire_bias), from RelTab = [ψ(|d|) (rel_w), 1/ψ(max(L, p)) by p − rel_lo, F (H, N + 1),
    dF (H, N + 1)] and RelInfo = [offset of 1/ψ_m, its length, offset of F, of dF, N]:
    x = min(ψ·(1/ψ_m), 1)·N, n = min(⌊x⌋, N − 1), F_n + (x − n)·dF_n, two gathers."""
    x = qk * scale
    dcap = x
    if SOFTCAP:
        t, dcap = tanh_sech2(x / softcap)
        x = softcap * t
    dist = pos_m[:, None] - j_n[None, :]  # > 0: the key is left of the query
    s = x
    if HAS_ALIBI:
        dist_f = dist.to(tl.float32)
        # The diagonal has bias 0 (also for a slope of +inf, which masks its side only).
        bias = tl.where(dist > 0, -ml * dist_f, tl.where(dist < 0, mr * dist_f, 0.0))
        s = s + bias
    if REL == 1:
        ridx = tl.minimum(tl.maximum(dist - rel_lo, 0), rel_w - 1)
        s = s + tl.load(RelTab + h.to(tl.int64) * rel_w + ridx)
    if REL == 2:
        n_grid = tl.load(RelInfo + 4)
        psi = tl.load(RelTab + tl.minimum(tl.abs(dist), rel_w - 1))
        prow = tl.minimum(tl.maximum(pos_m - rel_lo, 0), tl.load(RelInfo + 1) - 1)
        rinv = tl.load(RelTab + tl.load(RelInfo + 0) + prow)
        x = tl.minimum(psi * rinv[:, None], 1.0) * n_grid.to(tl.float32)
        cell = tl.minimum(x.to(tl.int32), n_grid - 1)  # x >= 0: truncation is the floor
        frac = x - cell.to(tl.float32)
        head = h.to(tl.int64) * (n_grid + 1) + cell
        s = s + (tl.load(RelTab + tl.load(RelInfo + 2) + head)
                 + frac * tl.load(RelTab + tl.load(RelInfo + 3) + head))
    visible = row_ok_m[:, None] & (j_n < k_len)[None, :]
    if CAUSAL:
        visible = visible & (dist >= 0)
    # An unbounded side (−1) as a bound no distance reaches (positions are int32).
    visible = visible & (dist <= tl.where(window_left < 0, 2147483647, window_left))
    visible = visible & (-dist <= tl.where(window_right < 0, 2147483647, window_right))
    if MASK_KIND != 0:
        mptr = (Mask + b.to(tl.int64) * mask_sb + h.to(tl.int64) * mask_sh
                + i_m.to(tl.int64)[:, None] * mask_st + j_n.to(tl.int64)[None, :] * mask_sk)
        mval = tl.load(mptr, mask=visible, other=0)
        if MASK_KIND == 1:
            visible = visible & (mval != 0)
        else:
            s = s + mval.to(tl.float32)
    s = tl.where(visible, s, float("-inf"))
    return s, dcap


@device_function
def far_block_needed(row_norm_m, row_ref_m, live_m, pos_m, j_first, j_last, key_norm_max, ml,
                        mr, cap_bound, log_threshold):
    """docs/far-tile-skipping.md's bound (★) for one (query block, key block): false (the block
    may be skipped) when every
    live row r has min(‖scale·q_r‖·max‖k_j‖, cap) + max_j bias(r, j) − M_r < ln(ε) − ln(Tk_b)
    and the key block lies wholly on one side of r's position with a positive slope on that
    side. row_norm_m: ‖scale·q_r‖ (inflated); row_ref_m: M_r (running max or lse)."""
    left = pos_m >= j_last  # every key at or left of the query
    right = pos_m <= j_first
    max_bias = tl.where(left, -ml * (pos_m - j_last).to(tl.float32),
                        -mr * (j_first - pos_m).to(tl.float32))
    zero_m = tl.zeros_like(row_norm_m)
    side_ok = (left & (zero_m + ml > 0)) | (right & (zero_m + mr > 0))
    bound = tl.minimum(row_norm_m * key_norm_max, cap_bound) + max_bias - row_ref_m
    ok = side_ok & (bound < log_threshold)
    return tl.sum(tl.where(live_m & ~ok, 1, 0), axis=0) > 0


@device_function
def visible_keys(pos_first, pos_last, k_len, window_left, window_right, CAUSAL: tl.constexpr):
    """[lo, hi): the keys that rows at positions pos_first..pos_last may see (key length,
    causal, window); hi >= lo."""
    lo = tl.where(window_left >= 0, tl.maximum(pos_first - window_left, 0), 0)
    hi = tl.where(window_right >= 0, tl.minimum(k_len, pos_last + window_right + 1), k_len)
    if CAUSAL:
        hi = tl.minimum(hi, pos_last + 1)
    return lo, tl.maximum(hi, lo)


@device_function
def visible_queries(j_first, j_last, q_len, offset, window_left, window_right,
                    CAUSAL: tl.constexpr):
    """[lo, hi): the query rows that may see some key j_first..j_last (position i + offset)."""
    lo = tl.where(window_right >= 0, tl.maximum(j_first - window_right - offset, 0), 0)
    if CAUSAL:
        lo = tl.maximum(lo, j_first - offset)
    hi = tl.where(window_left >= 0, tl.minimum(q_len, j_last + window_left - offset + 1), q_len)
    return lo, tl.maximum(hi, lo)


# Triton turns an int argument equal to 1 into a compile-time constant; the window sizes stay
# runtime values (a window of 1 is legal and must not compile a kernel of its own).
KERNEL_RUNTIME_INTS = ["window_left", "window_right"]


# ---- forward -------------------------------------------------------------------------------


@triton.jit(do_not_specialize=KERNEL_RUNTIME_INTS)
def attention_fwd_kernel(
        Q, K, V, Out, Lse, SlopesL, SlopesR, KeyNorms, Geo, Mask, Rng, RelTab, RelInfo,
        sq_b, sq_h, sq_t, sk_b, sk_h, sk_t, sv_b, sv_h, sv_t, so_b, so_h, so_t,
        lse_b, lse_h, kn_b, kn_h, slopes_sb, mask_sb, mask_sh, mask_st, mask_sk,
        H, group, D, Dv, scale, softcap, window_left, window_right, skip_tolerance,
        rel_w, rel_lo, drop_scale,
        CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr, SOFTCAP: tl.constexpr,
        MASK_KIND: tl.constexpr, SKIP: tl.constexpr, DROPOUT: tl.constexpr, REL: tl.constexpr,
        DOT_PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
        BLOCK_DV: tl.constexpr):
    """out (rows of q, Dv) in Out's dtype and lse (fp32) of one query block of (b, h).

    Key blocks are visited from the block of the last row's position outwards (first leftwards,
    then rightwards), so that with far-tile skipping the running max holds the diagonal's
    unbiased score before any far block is tested, as in the CPU kernel."""
    pid_m = tl.program_id(0)
    b = tl.program_id(1) // H
    h = tl.program_id(1) % H
    hk = h // group
    q_start = tl.load(Geo + b * 5 + 0)
    q_len = tl.load(Geo + b * 5 + 1)
    k_start = tl.load(Geo + b * 5 + 2)
    k_len = tl.load(Geo + b * 5 + 3)
    offset = tl.load(Geo + b * 5 + 4)
    if pid_m * BLOCK_M >= q_len:
        return
    i_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok_m = i_m < q_len
    pos_m = i_m + offset
    d = tl.arange(0, BLOCK_D)
    dv = tl.arange(0, BLOCK_DV)
    b64 = b.to(tl.int64)
    q_rows = (q_start + i_m).to(tl.int64)
    q = tl.load(Q + b64 * sq_b + h.to(tl.int64) * sq_h + q_rows[:, None] * sq_t + d[None, :],
                mask=row_ok_m[:, None] & (d < D)[None, :], other=0.0)
    k_base = K + b64 * sk_b + hk.to(tl.int64) * sk_h
    v_base = V + b64 * sv_b + hk.to(tl.int64) * sv_h
    ml = 0.0
    mr = 0.0
    if HAS_ALIBI:
        ml = tl.load(SlopesL + b * slopes_sb + h)
        mr = tl.load(SlopesR + b * slopes_sb + h)

    # Keys any row of the block may see: [lo, hi).
    pos_first = pid_m * BLOCK_M + offset
    pos_last = tl.minimum(pid_m * BLOCK_M + BLOCK_M, q_len) - 1 + offset
    lo, hi = visible_keys(pos_first, pos_last, k_len, window_left, window_right, CAUSAL)
    n_lo = lo // BLOCK_N
    n_hi = tl.cdiv(hi, BLOCK_N)
    n_diag = tl.minimum(tl.maximum(pos_last // BLOCK_N, n_lo), tl.maximum(n_hi - 1, n_lo))

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_DV], dtype=tl.float32)
    row_norm_m = tl.zeros([BLOCK_M], dtype=tl.float32)
    log_threshold = 0.0
    cap_bound = float("inf")
    if SKIP:
        qf = q.to(tl.float32)
        row_norm_m = tl.sqrt(tl.sum(qf * qf, axis=1)) * tl.abs(scale) * (1.0 + 1e-5)
        log_threshold = tl.log(skip_tolerance) - tl.log(tl.maximum(k_len, 1).to(tl.float32))
        if SOFTCAP:
            cap_bound = softcap * (1.0 + 1e-5)
    bh = b * H + h
    n_total = n_hi - n_lo
    for step in range(0, n_total):
        # diagonal block, then leftwards down to n_lo, then rightwards up to n_hi − 1
        n = tl.where(step <= n_diag - n_lo, n_diag - step, n_lo + step)
        j_n = n * BLOCK_N + tl.arange(0, BLOCK_N)
        key_ok_n = j_n < hi
        needed = True
        if SKIP:
            kn = tl.load(KeyNorms + b64 * kn_b + hk.to(tl.int64) * kn_h + k_start + j_n,
                         mask=j_n < k_len, other=0.0)
            needed = far_block_needed(row_norm_m, m_i, row_ok_m, pos_m, n * BLOCK_N,
                                      n * BLOCK_N + BLOCK_N - 1, tl.max(kn, axis=0), ml, mr,
                                      cap_bound, log_threshold)
        if needed:
            k_rows = (k_start + j_n).to(tl.int64)
            k = tl.load(k_base + k_rows[:, None] * sk_t + d[None, :],
                        mask=key_ok_n[:, None] & (d < D)[None, :], other=0.0)
            qk = tile_dot(q, tl.trans(k), DOT_PRECISION)
            s, _ = score_tile(qk, pos_m, row_ok_m, j_n, k_len, b, h, ml, mr, scale, softcap,
                               window_left, window_right, Mask, mask_sb, mask_sh, mask_st,
                               mask_sk, i_m, RelTab, RelInfo, rel_w, rel_lo, CAUSAL, HAS_ALIBI,
                               SOFTCAP, MASK_KIND, REL)
            m_new = tl.maximum(m_i, tl.max(s, axis=1))
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
            p = tl.exp(s - m_use[:, None])
            alpha = tl.exp(m_i - m_use)
            l_i = l_i * alpha + tl.sum(p, axis=1)
            if DROPOUT:
                keep = dropout_keep(i_m, j_n, bh, Rng)
                p = tl.where(keep, p * drop_scale, 0.0)
            v = tl.load(v_base + k_rows[:, None] * sv_t + dv[None, :],
                        mask=key_ok_n[:, None] & (dv < Dv)[None, :], other=0.0)
            acc = acc * alpha[:, None] + tile_dot(round_to(p, v.dtype), v, DOT_PRECISION)
            m_i = m_new

    alive = l_i > 0.0
    out = acc / tl.where(alive, l_i, 1.0)[:, None]
    lse = tl.where(alive, m_i + tl.log(tl.where(alive, l_i, 1.0)), float("-inf"))
    tl.store(Out + b64 * so_b + h.to(tl.int64) * so_h + q_rows[:, None] * so_t + dv[None, :],
             round_to(out, Out.dtype.element_ty), mask=row_ok_m[:, None] & (dv < Dv)[None, :])
    tl.store(Lse + b64 * lse_b + h.to(tl.int64) * lse_h + q_start + i_m, lse, mask=row_ok_m)


# ---- backward ------------------------------------------------------------------------------
#
# Both kernels recompute P = exp(s − lse) from the forward's lse (rows with lse = −inf see no
# key: P = 0) and use D_i = rowsum(dO∘O) (Delta, computed by torch). With dropout,
# dP_ij = Zc_ij·(dO_i·v_j) and dv_j = Σ_i Zc_ij·P_ij·dO_i, Zc = Z/(1 − p). dS = P∘(dP − D);
# with a softcap the scores' gradient is dS∘sech²(x/softcap). Far blocks are
# skipped by the bound (★) with M_r = lse_r and ‖scale·q_r‖ from QNorms, so both kernels drop
# the same (query block, key block) pairs.


@triton.jit(do_not_specialize=KERNEL_RUNTIME_INTS)
def attention_bwd_dkdv_kernel(
        Q, K, V, DO, Lse, Delta, DK, DV, SlopesL, SlopesR, QNorms, KeyNorms, Geo, Mask, Rng,
        RelTab, RelInfo,
        sq_b, sq_h, sq_t, sk_b, sk_h, sk_t, sv_b, sv_h, sv_t, sdo_b, sdo_h, sdo_t,
        sdk_b, sdk_h, sdk_t, sdv_b, sdv_h, sdv_t,
        lse_b, lse_h, kn_b, kn_h, slopes_sb, mask_sb, mask_sh, mask_st, mask_sk,
        H, group, D, Dv, scale, softcap, window_left, window_right, skip_tolerance, rel_w,
        rel_lo, drop_scale,
        CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr, SOFTCAP: tl.constexpr,
        MASK_KIND: tl.constexpr, SKIP: tl.constexpr, DROPOUT: tl.constexpr, REL: tl.constexpr,
        DOT_PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
        BLOCK_DV: tl.constexpr):
    """dk (BLOCK_N, D) and dv (BLOCK_N, Dv) of one key block of kv head hk in batch row b,
    summed over the `group` query heads that share it and the query blocks that see it."""
    pid_n = tl.program_id(0)
    Hkv = H // group
    b = tl.program_id(1) // Hkv
    hk = tl.program_id(1) % Hkv
    q_start = tl.load(Geo + b * 5 + 0)
    q_len = tl.load(Geo + b * 5 + 1)
    k_start = tl.load(Geo + b * 5 + 2)
    k_len = tl.load(Geo + b * 5 + 3)
    offset = tl.load(Geo + b * 5 + 4)
    if pid_n * BLOCK_N >= k_len:
        return
    j_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    key_ok_n = j_n < k_len
    d = tl.arange(0, BLOCK_D)
    dv = tl.arange(0, BLOCK_DV)
    b64 = b.to(tl.int64)
    k_rows = (k_start + j_n).to(tl.int64)
    k = tl.load(K + b64 * sk_b + hk.to(tl.int64) * sk_h + k_rows[:, None] * sk_t + d[None, :],
                mask=key_ok_n[:, None] & (d < D)[None, :], other=0.0)
    v = tl.load(V + b64 * sv_b + hk.to(tl.int64) * sv_h + k_rows[:, None] * sv_t + dv[None, :],
                mask=key_ok_n[:, None] & (dv < Dv)[None, :], other=0.0)
    j_first = pid_n * BLOCK_N
    j_last = tl.minimum(j_first + BLOCK_N, k_len) - 1
    i_lo, i_hi = visible_queries(j_first, j_last, q_len, offset, window_left, window_right,
                                 CAUSAL)
    key_norm_max = 0.0
    log_threshold = 0.0
    cap_bound = float("inf")
    if SKIP:
        kn = tl.load(KeyNorms + b64 * kn_b + hk.to(tl.int64) * kn_h + k_start + j_n,
                     mask=key_ok_n, other=0.0)
        key_norm_max = tl.max(kn, axis=0)
        log_threshold = tl.log(skip_tolerance) - tl.log(tl.maximum(k_len, 1).to(tl.float32))
        if SOFTCAP:
            cap_bound = softcap * (1.0 + 1e-5)

    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv_acc = tl.zeros([BLOCK_N, BLOCK_DV], dtype=tl.float32)
    for g in range(0, group):
        h = hk * group + g
        ml = 0.0
        mr = 0.0
        if HAS_ALIBI:
            ml = tl.load(SlopesL + b * slopes_sb + h)
            mr = tl.load(SlopesR + b * slopes_sb + h)
        row_base = b64 * lse_b + h.to(tl.int64) * lse_h + q_start
        for m in range(i_lo // BLOCK_M, tl.cdiv(i_hi, BLOCK_M)):
            i_m = m * BLOCK_M + tl.arange(0, BLOCK_M)
            row_ok_m = i_m < q_len
            pos_m = i_m + offset
            lse = tl.load(Lse + row_base + i_m, mask=row_ok_m, other=float("-inf"))
            needed = True
            if SKIP:
                qn = tl.load(QNorms + row_base + i_m, mask=row_ok_m, other=0.0)
                needed = far_block_needed(qn, lse, row_ok_m & (lse > float("-inf")), pos_m,
                                          j_first, j_first + BLOCK_N - 1, key_norm_max, ml, mr,
                                          cap_bound, log_threshold)
            if needed:
                q_rows = (q_start + i_m).to(tl.int64)
                q = tl.load(Q + b64 * sq_b + h.to(tl.int64) * sq_h + q_rows[:, None] * sq_t
                            + d[None, :], mask=row_ok_m[:, None] & (d < D)[None, :], other=0.0)
                do = tl.load(DO + b64 * sdo_b + h.to(tl.int64) * sdo_h + q_rows[:, None] * sdo_t
                             + dv[None, :], mask=row_ok_m[:, None] & (dv < Dv)[None, :],
                             other=0.0)
                delta = tl.load(Delta + row_base + i_m, mask=row_ok_m, other=0.0)
                qk = tile_dot(q, tl.trans(k), DOT_PRECISION)
                s, dcap = score_tile(qk, pos_m, row_ok_m, j_n, k_len, b, h, ml, mr, scale, softcap,
                                  window_left, window_right, Mask, mask_sb, mask_sh, mask_st,
                                  mask_sk, i_m, RelTab, RelInfo, rel_w, rel_lo, CAUSAL, HAS_ALIBI,
                               SOFTCAP, MASK_KIND, REL)
                lse_safe = tl.where(lse == float("-inf"), float("inf"), lse)
                p = tl.exp(s - lse_safe[:, None])
                dp = tile_dot(do, tl.trans(v), DOT_PRECISION)
                p_drop = p
                if DROPOUT:
                    keep = dropout_keep(i_m, j_n, b * H + h, Rng)
                    p_drop = tl.where(keep, p * drop_scale, 0.0)
                    dp = tl.where(keep, dp * drop_scale, 0.0)
                dv_acc += tile_dot(tl.trans(round_to(p_drop, do.dtype)), do, DOT_PRECISION)
                ds = p * (dp - delta[:, None])
                if SOFTCAP:
                    ds = ds * dcap
                dk += tile_dot(tl.trans(round_to(ds, q.dtype)), q, DOT_PRECISION)

    dk = dk * scale
    tl.store(DK + b64 * sdk_b + hk.to(tl.int64) * sdk_h + k_rows[:, None] * sdk_t + d[None, :],
             round_to(dk, DK.dtype.element_ty), mask=key_ok_n[:, None] & (d < D)[None, :])
    tl.store(DV + b64 * sdv_b + hk.to(tl.int64) * sdv_h + k_rows[:, None] * sdv_t + dv[None, :],
             round_to(dv_acc, DV.dtype.element_ty), mask=key_ok_n[:, None] & (dv < Dv)[None, :])


@triton.jit(do_not_specialize=KERNEL_RUNTIME_INTS)
def attention_bwd_dq_kernel(
        Q, K, V, DO, Lse, Delta, DQ, SlopesL, SlopesR, QNorms, KeyNorms, Geo, Mask, Rng, RelTab,
        RelInfo, SlopeGradL, SlopeGradR, RelGrad,
        sq_b, sq_h, sq_t, sk_b, sk_h, sk_t, sv_b, sv_h, sv_t, sdo_b, sdo_h, sdo_t,
        sdq_b, sdq_h, sdq_t,
        lse_b, lse_h, kn_b, kn_h, slopes_sb, mask_sb, mask_sh, mask_st, mask_sk,
        H, group, D, Dv, scale, softcap, window_left, window_right, skip_tolerance, rel_w,
        rel_lo, drop_scale,
        n_m_blocks, rel_classes,
        CAUSAL: tl.constexpr, HAS_ALIBI: tl.constexpr, SOFTCAP: tl.constexpr,
        MASK_KIND: tl.constexpr, SKIP: tl.constexpr, DROPOUT: tl.constexpr, REL: tl.constexpr,
        SLOPE_GRADS: tl.constexpr, REL_GRADS: tl.constexpr, DOT_PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
        BLOCK_DV: tl.constexpr, BLOCK_E: tl.constexpr, FIRE_BLOCK_K: tl.constexpr):
    """dq of one query block of (b, h), and with SLOPE_GRADS its rows' slope gradients, one
    float64 partial sum per program at SlopeGrad*[(b·H + h)·n_m_blocks + pid_m].

    The slope gradients follow the CPU kernel (src/attention/cpu_slope_grads.h): per row,
    A = Σ_{j<p} dS·(j − p), B = Σ_{j<p} P·(j − p), E = Σ P·dP, S = Σ P (and the mirror on the
    right), each tile's fp32 sum added to float64 row sums; then the row's gradient is
    (A + (D − E/S)·B)/S, which removes the flash formulation's D_i and Σ P ≠ 1 errors that the
    distances would otherwise multiply.

    With REL_GRADS, the relative bias's gradient by signed distance: each tile's dS (before the
    softcap's factor: the bias is added after the cap) summed along its BLOCK_M + BLOCK_N − 1
    diagonals (one gather of the tile into (row, diagonal), then a column sum; fp32) and
    stored, not added, at RelGrad[b, h, pid_m, n mod rel_classes, distance − rel_lo]: tiles
    n and n + rel_classes of one program cover disjoint distances, so no entry is written twice
    and nothing is read back. slope._triton sums the buffer in float64 in a fixed order.

    With REL_GRADS and REL = 2 (FIRE with rows at or past L: the bias depends on the row), the
    gradient of FIRE's parameters straight from each score (relative_bias.h's add_grad, with
    the forward's cell n and fraction t): the grid's weights (1 − t, t) through the MLP at the
    nodes n/N, (n + 1)/N for w2_h, w1, b1 (a loop over the K hidden units, tile sums), Σ dS for
    b2_h, and ∂bias/∂u = N·dF_n times ∂u/∂c, ∂u/∂L where u is not clamped. Tile sums in fp32,
    added to float64 accumulators, stored once per program at RelGrad[b, h, pid_m] as
    [w2_h (K), w1 (K), b1 (K), b2_h, c, L]."""
    pid_m = tl.program_id(0)
    b = tl.program_id(1) // H
    h = tl.program_id(1) % H
    hk = h // group
    q_start = tl.load(Geo + b * 5 + 0)
    q_len = tl.load(Geo + b * 5 + 1)
    k_start = tl.load(Geo + b * 5 + 2)
    k_len = tl.load(Geo + b * 5 + 3)
    offset = tl.load(Geo + b * 5 + 4)
    if pid_m * BLOCK_M >= q_len:
        return
    i_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok_m = i_m < q_len
    pos_m = i_m + offset
    d = tl.arange(0, BLOCK_D)
    dv = tl.arange(0, BLOCK_DV)
    b64 = b.to(tl.int64)
    q_rows = (q_start + i_m).to(tl.int64)
    q = tl.load(Q + b64 * sq_b + h.to(tl.int64) * sq_h + q_rows[:, None] * sq_t + d[None, :],
                mask=row_ok_m[:, None] & (d < D)[None, :], other=0.0)
    do = tl.load(DO + b64 * sdo_b + h.to(tl.int64) * sdo_h + q_rows[:, None] * sdo_t
                 + dv[None, :], mask=row_ok_m[:, None] & (dv < Dv)[None, :], other=0.0)
    row_base = b64 * lse_b + h.to(tl.int64) * lse_h + q_start
    lse = tl.load(Lse + row_base + i_m, mask=row_ok_m, other=float("-inf"))
    lse_safe = tl.where(lse == float("-inf"), float("inf"), lse)
    delta = tl.load(Delta + row_base + i_m, mask=row_ok_m, other=0.0)
    k_base = K + b64 * sk_b + hk.to(tl.int64) * sk_h
    v_base = V + b64 * sv_b + hk.to(tl.int64) * sv_h
    ml = 0.0
    mr = 0.0
    if HAS_ALIBI:
        ml = tl.load(SlopesL + b * slopes_sb + h)
        mr = tl.load(SlopesR + b * slopes_sb + h)
    pos_first = pid_m * BLOCK_M + offset
    pos_last = tl.minimum(pid_m * BLOCK_M + BLOCK_M, q_len) - 1 + offset
    lo, hi = visible_keys(pos_first, pos_last, k_len, window_left, window_right, CAUSAL)
    qn = tl.zeros([BLOCK_M], dtype=tl.float32)
    log_threshold = 0.0
    cap_bound = float("inf")
    if SKIP:
        qn = tl.load(QNorms + row_base + i_m, mask=row_ok_m, other=0.0)
        log_threshold = tl.log(skip_tolerance) - tl.log(tl.maximum(k_len, 1).to(tl.float32))
        if SOFTCAP:
            cap_bound = softcap * (1.0 + 1e-5)

    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    kk_k = tl.arange(0, FIRE_BLOCK_K)
    acc_w2 = tl.zeros([FIRE_BLOCK_K], dtype=tl.float64)
    acc_w1 = tl.zeros([FIRE_BLOCK_K], dtype=tl.float64)
    acc_b1 = tl.zeros([FIRE_BLOCK_K], dtype=tl.float64)
    acc_b2 = tl.zeros([FIRE_BLOCK_K], dtype=tl.float64)  # b2, c, L at entries 0, 1, 2
    row_e = tl.zeros([BLOCK_M], dtype=tl.float64)  # Σ P·dP
    row_s = tl.zeros([BLOCK_M], dtype=tl.float64)  # Σ P
    row_al = tl.zeros([BLOCK_M], dtype=tl.float64)  # Σ_{j<p} dS·(j − p)
    row_bl = tl.zeros([BLOCK_M], dtype=tl.float64)  # Σ_{j<p} P·(j − p)
    row_ar = tl.zeros([BLOCK_M], dtype=tl.float64)  # Σ_{j>p} dS·(p − j)
    row_br = tl.zeros([BLOCK_M], dtype=tl.float64)  # Σ_{j>p} P·(p − j)
    for n in range(lo // BLOCK_N, tl.cdiv(hi, BLOCK_N)):
        j_n = n * BLOCK_N + tl.arange(0, BLOCK_N)
        key_ok_n = j_n < hi
        needed = True
        if SKIP:
            kn = tl.load(KeyNorms + b64 * kn_b + hk.to(tl.int64) * kn_h + k_start + j_n,
                         mask=j_n < k_len, other=0.0)
            needed = far_block_needed(qn, lse, row_ok_m & (lse > float("-inf")), pos_m,
                                      n * BLOCK_N, n * BLOCK_N + BLOCK_N - 1, tl.max(kn, axis=0),
                                      ml, mr, cap_bound, log_threshold)
        if needed:
            k_rows = (k_start + j_n).to(tl.int64)
            k = tl.load(k_base + k_rows[:, None] * sk_t + d[None, :],
                        mask=key_ok_n[:, None] & (d < D)[None, :], other=0.0)
            v = tl.load(v_base + k_rows[:, None] * sv_t + dv[None, :],
                        mask=key_ok_n[:, None] & (dv < Dv)[None, :], other=0.0)
            qk = tile_dot(q, tl.trans(k), DOT_PRECISION)
            s, dcap = score_tile(qk, pos_m, row_ok_m, j_n, k_len, b, h, ml, mr, scale, softcap,
                              window_left, window_right, Mask, mask_sb, mask_sh, mask_st, mask_sk,
                              i_m, RelTab, RelInfo, rel_w, rel_lo, CAUSAL, HAS_ALIBI, SOFTCAP,
                              MASK_KIND, REL)
            p = tl.exp(s - lse_safe[:, None])
            dp = tile_dot(do, tl.trans(v), DOT_PRECISION)
            if DROPOUT:
                keep = dropout_keep(i_m, j_n, b * H + h, Rng)
                dp = tl.where(keep, dp * drop_scale, 0.0)
            ds = p * (dp - delta[:, None])
            if REL_GRADS and REL == 2:
                n_grid = tl.load(RelInfo + 4)
                n_f = n_grid.to(tl.float32)
                adc = tl.minimum(tl.abs(pos_m[:, None] - j_n[None, :]), rel_w - 1)
                psi = tl.load(RelTab + adc)
                prow = tl.minimum(tl.maximum(pos_m - rel_lo, 0), tl.load(RelInfo + 1) - 1)
                rinv = tl.load(RelTab + tl.load(RelInfo + 0) + prow)
                raw = psi * rinv[:, None]
                x = tl.minimum(raw, 1.0) * n_f
                cell = tl.minimum(x.to(tl.int32), n_grid - 1)
                frac = x - cell.to(tl.float32)
                dfn = tl.load(RelTab + tl.load(RelInfo + 3) + h.to(tl.int64) * (n_grid + 1)
                              + cell)
                psic_d = tl.load(RelTab + tl.load(RelInfo + 5) + adc)
                psic_m = tl.load(RelTab + tl.load(RelInfo + 6) + prow)
                m_is_l = tl.load(RelTab + tl.load(RelInfo + 7) + prow)
                c_l = tl.load(RelTab + tl.load(RelInfo + 11))  # c/(c·L + 1)
                g_u = tl.where(raw <= 1.0, ds * (n_f * dfn), 0.0)  # ∂/∂u where not clamped
                du_dc = psic_d * rinv[:, None] - psi * (psic_m * rinv * rinv)[:, None]
                du_dl = -psi * (m_is_l * c_l * rinv * rinv)[:, None]
                acc_b2 += tl.where(kk_k == 0, tl.sum(ds), 0.0).to(tl.float64)
                acc_b2 += tl.where(kk_k == 1, tl.sum(g_u * du_dc), 0.0).to(tl.float64)
                acc_b2 += tl.where(kk_k == 2, tl.sum(g_u * du_dl), 0.0).to(tl.float64)
                node0 = cell.to(tl.float32) / n_f
                node1 = (cell + 1).to(tl.float32) / n_f
                wt0 = (1.0 - frac) * ds
                wt1 = frac * ds
                n_hidden = tl.load(RelInfo + 12)
                for kk in range(0, n_hidden):
                    a = tl.load(RelTab + tl.load(RelInfo + 8) + kk)
                    bb = tl.load(RelTab + tl.load(RelInfo + 9) + kk)
                    w2hk = tl.load(RelTab + tl.load(RelInfo + 10) + h * n_hidden + kk)
                    pre0 = a * node0 + bb
                    pre1 = a * node1 + bb
                    on0 = pre0 > 0.0
                    on1 = pre1 > 0.0
                    g_w2 = tl.sum(tl.where(on0, wt0 * pre0, 0.0) + tl.where(on1, wt1 * pre1, 0.0))
                    s_b1 = tl.sum(tl.where(on0, wt0, 0.0) + tl.where(on1, wt1, 0.0))
                    s_w1 = tl.sum(tl.where(on0, wt0 * node0, 0.0)
                                  + tl.where(on1, wt1 * node1, 0.0))
                    acc_w2 += tl.where(kk_k == kk, g_w2, 0.0).to(tl.float64)
                    acc_b1 += tl.where(kk_k == kk, w2hk * s_b1, 0.0).to(tl.float64)
                    acc_w1 += tl.where(kk_k == kk, w2hk * s_w1, 0.0).to(tl.float64)
            if REL_GRADS and REL == 1:
                e = tl.arange(0, BLOCK_E)  # diagonal e: i_local − j_local = e − (BLOCK_N − 1)
                col = tl.arange(0, BLOCK_M)[:, None] - e[None, :] + (BLOCK_N - 1)  # its j_local
                on_tile = (col >= 0) & (col < BLOCK_N)
                diag = tl.gather(ds, tl.minimum(tl.maximum(col, 0), BLOCK_N - 1), axis=1)
                part = tl.sum(tl.where(on_tile, diag, 0.0), axis=0)  # (BLOCK_E,)
                t_e = pid_m * BLOCK_M + offset - n * BLOCK_N - (BLOCK_N - 1) + e - rel_lo
                slot = ((b * H + h).to(tl.int64) * n_m_blocks + pid_m) * rel_classes + (
                    n % rel_classes)
                tl.store(RelGrad + slot * rel_w + t_e, part,
                         mask=(e < BLOCK_M + BLOCK_N - 1) & (t_e >= 0) & (t_e < rel_w))
            if SLOPE_GRADS:
                jd = (j_n[None, :] - pos_m[:, None]).to(tl.float32)  # j − p: < 0 on the left
                row_e += tl.sum(p * dp, axis=1).to(tl.float64)
                row_s += tl.sum(p, axis=1).to(tl.float64)
                row_al += tl.sum(tl.where(jd < 0, ds * jd, 0.0), axis=1).to(tl.float64)
                row_bl += tl.sum(tl.where(jd < 0, p * jd, 0.0), axis=1).to(tl.float64)
                row_ar -= tl.sum(tl.where(jd > 0, ds * jd, 0.0), axis=1).to(tl.float64)
                row_br -= tl.sum(tl.where(jd > 0, p * jd, 0.0), axis=1).to(tl.float64)
            if SOFTCAP:
                ds = ds * dcap
            dq += tile_dot(round_to(ds, k.dtype), k, DOT_PRECISION)

    dq = dq * scale
    tl.store(DQ + b64 * sdq_b + h.to(tl.int64) * sdq_h + q_rows[:, None] * sdq_t + d[None, :],
             round_to(dq, DQ.dtype.element_ty), mask=row_ok_m[:, None] & (d < D)[None, :])
    if REL_GRADS and REL == 2:
        n_hidden = tl.load(RelInfo + 12)
        base = RelGrad + ((b * H + h).to(tl.int64) * n_m_blocks + pid_m) * (3 * n_hidden + 3)
        live_k = kk_k < n_hidden
        tl.store(base + kk_k, acc_w2, mask=live_k)
        tl.store(base + n_hidden + kk_k, acc_w1, mask=live_k)
        tl.store(base + 2 * n_hidden + kk_k, acc_b1, mask=live_k)
        tl.store(base + 3 * n_hidden + kk_k, acc_b2, mask=kk_k < 3)
    if SLOPE_GRADS:
        alive = row_s > 0.0  # rows with no probability (masked, or all skipped) add nothing
        s_safe = tl.where(alive, row_s, 1.0)
        d_corr = delta.to(tl.float64) - row_e / s_safe
        gl = tl.where(alive, (row_al + d_corr * row_bl) / s_safe, 0.0)
        gr = tl.where(alive, (row_ar + d_corr * row_br) / s_safe, 0.0)
        slot = (b * H + h).to(tl.int64) * n_m_blocks + pid_m
        tl.store(SlopeGradL + slot, tl.sum(gl, axis=0))
        tl.store(SlopeGradR + slot, tl.sum(gr, axis=0))
