"""The Triton implementation of slope's operators: the CUDA kernels of
``torch.ops.slope.attention_forward`` / ``attention_backward`` (registered by slope._torch_ops),
and the same functions on CPU tensors under Triton's interpreter (TRITON_INTERPRET=1 set before
triton is imported), which is how CI tests them.

    out, lse = attention_forward(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask,
                                 cu_seqlens_q, cu_seqlens_k, dropout_rng, layout, ints, floats)
    dq, dk, dv, dsl, dsr = attention_backward(dout, q, k, v, out, lse, slopes_left, ...,
                                              slope_grads)

The arguments are the operators' (slope._torch_ops documents the layouts and the ints/floats
lists); `block_m`/`block_n` choose the tile (None: _default_blocks()).

dtypes: q, k, v float32, bfloat16 or float16; every sum accumulates in float32. fp32 inputs
multiply in full fp32 (tl.dot input_precision "ieee", no TF32). bf16/fp16 inputs multiply on
tensor cores in their own dtype, so the probabilities P and dS are rounded to that dtype before
P·V, Pᵀ·dO, dS·K and dSᵀ·Q, as flash-attention does: each such product errs by at most
u_dtype·Σ|terms| more than in fp32 (tests/python/triton_cases.py, low_precision, states the
bound).
Outputs: out in q's dtype, lse float32; dq, dk, dv contiguous in their inputs' dtypes; slope
gradients float32 in the slopes' shape, summed in float64 in a fixed order (deterministic).
Head dims up to 256 (padded to a power of two inside the kernels).

Non-finite inputs: rows past a key length, other documents' rows and blocks outside the causal
or window range are never read; inside a visited tile a NaN key or value invisible to one row
can still reach it through the tile product (docs/triton.md).

Errors: ValueError for values the kernels cannot take (key lengths outside [0, Tk],
cumulative lengths that are not, NaN or −inf slopes, a head dim above 256), as the CPU
operators raise them.
"""

import math
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import Tensor

import triton

from slope import _triton_kernels as kern
from slope._torch_ops import _lse_shape, _view4  # the layouts, as the CPU path reads them

MAX_HEAD_DIM = 256


def _default_blocks(device: torch.device, dtype: torch.dtype, head_dim: int):
    """(BLOCK_M, BLOCK_N). Under the interpreter every tile op is a numpy call on the whole tile:
    16 × 16 keeps the CI shapes (T <= 128) to a few blocks. On a GPU, 64 × 64 (flash-attention
    2's choice for head dims up to 128) for bf16/fp16; 32 × 32 for fp32 tiles wider than 64 and
    for head dims above 128, so that the backward's tiles fit in shared memory (compiled for
    sm_90 without a GPU: the dk/dv kernel takes 147 KB at fp32, 64 × 64, D = 128). Not tuned:
    no GPU has run these kernels yet."""
    if device.type == "cpu":
        return 16, 16
    if head_dim > 128 or (dtype == torch.float32 and head_dim > 64):
        return 32, 32
    return 64, 64


@dataclass
class _Plan:
    """What every kernel of one call needs: (B, H, T, D) views, per-row geometry, the bias and
    mask arguments and the compile-time switches."""
    q4: Tensor
    k4: Tensor
    v4: Tensor
    geo: Tensor  # (nB, 5) int32: q_start, q_len, k_start, k_len, offset of each batch row
    nB: int  # batch rows (documents when packed)
    packed: bool
    H: int
    Hkv: int
    D: int
    Dv: int
    Tq_max: int  # longest query row: the grid's query blocks
    Tk_max: int
    lse_b: int  # lse (and Delta, q norms) of (b, h, i) at b·lse_b + h·lse_h + q_start + i
    lse_h: int
    slopes_l: Tensor
    slopes_r: Tensor
    slopes_sb: int
    mask: Tensor
    mask_strides: tuple
    mask_kind: int
    rng: Tensor  # int64 (4): Philox key words, lo(offset), keep threshold
    scale: float
    softcap: float
    window_left: int
    window_right: int
    dropout_p: float
    skip_tolerance: float
    causal: bool
    has_alibi: bool
    skip: bool
    block_m: int
    block_n: int
    rel: Optional["_RelTable"] = None  # a learned relative bias's table, or None
    kn_strides: tuple = (0, 0)  # key norms (b, h) strides, set by key_norms()

    def flags(self):
        return dict(CAUSAL=self.causal, HAS_ALIBI=self.has_alibi, SOFTCAP=self.softcap > 0.0,
                    MASK_KIND=self.mask_kind, SKIP=self.skip, DROPOUT=self.dropout_p > 0.0,
                    REL=0 if self.rel is None else self.rel.mode,
                    DOT_PRECISION="ieee" if self.q4.dtype == torch.float32 else "tf32",
                    BLOCK_M=self.block_m, BLOCK_N=self.block_n,
                    BLOCK_D=max(16, triton.next_power_of_2(self.D)),
                    BLOCK_DV=max(16, triton.next_power_of_2(self.Dv)))

    def strides(self, *views):
        """The (b, h, t) strides of each (B, H, T, D) view, flattened, as the kernels take
        them."""
        return tuple(x for t4 in views for x in _strides3(t4, self.packed))

    def common(self):
        """The scalar arguments every kernel takes after its strides, in order."""
        rel_w, rel_lo = (1, 0) if self.rel is None else (self.rel.width, self.rel.lo)
        return (self.lse_b, self.lse_h, *self.kn_strides, self.slopes_sb, *self.mask_strides,
                self.H, self.H // self.Hkv, self.D, self.Dv, self.scale, self.softcap,
                self.window_left, self.window_right, self.skip_tolerance, rel_w, rel_lo)

    def rel_tab(self):
        """The relative bias's fp32 table and its int32 layout (RelInfo), or placeholders."""
        if self.rel is None:
            return self.geo, self.geo
        return self.rel.table, self.rel.info

    def key_norms(self):
        """‖k_j‖·(1 + 1e-5) (B, Hkv, Tk) fp32 for the skip bound (the slack covers the rounding
        of this norm and of the scores' dot products), or a placeholder without skipping."""
        if not self.skip:
            self.kn_strides = (0, 0)
            return self.geo
        kn = torch.linalg.vector_norm(self.k4.float(), dim=-1) * (1.0 + 1e-5)
        self.kn_strides = (0 if self.packed else kn.stride(0), kn.stride(1))
        return kn


def _bad(msg):
    raise ValueError(msg)


def _geometry(q4, k4, key_lengths, cu_q, cu_k, positions, device):
    """(nB, 5) rows (q_start, q_len, k_start, k_len, offset), lse_b, Tq_max, Tk_max, as
    src/attention/geometry.h's row_geometry; checked like the CPU operators check them."""
    rows = []
    if cu_q is not None:
        cq, ck = (c.tolist() for c in (cu_q, cu_k))
        if len(cq) < 2 or len(cq) != len(ck):
            _bad(f"cu_seqlens_q and cu_seqlens_k must be (B + 1,) each with B >= 1, got "
                 f"{len(cq)} and {len(ck)} entries")
        for name, c, total in (("cu_seqlens_q", cq, q4.shape[2]),
                               ("cu_seqlens_k", ck, k4.shape[2])):
            if c[0] != 0 or any(b < a for a, b in zip(c, c[1:])) or c[-1] != total:
                _bad(f"{name} = {c} must start at 0, not decrease, and end at the packed length "
                     f"{total}")
        for b in range(len(cq) - 1):
            tq, tk = cq[b + 1] - cq[b], ck[b + 1] - ck[b]
            rows.append((cq[b], tq, ck[b], tk, tk - tq if positions == 0 else 0))
        lse_b = 0
    else:
        B, _, Tq, _ = q4.shape
        Tk = k4.shape[2]
        lens = [Tk] * B if key_lengths is None else key_lengths.tolist()
        if len(lens) != B:
            _bad(f"key_lengths must have shape ({B},), got {len(lens)} entries")
        for b, n in enumerate(lens):
            if not 0 <= n <= Tk:
                _bad(f"key_lengths[{b}] = {n} is outside [0, Tk={Tk}]")
            offset = {0: Tk - Tq, 1: 0, 2: n - Tq}[positions]
            rows.append((0, Tq, 0, n, offset))
        lse_b = q4.shape[1] * Tq
    geo = torch.tensor(rows, dtype=torch.int32, device=device).reshape(-1, 5)
    tq_max = max(max((r[1] for r in rows), default=1), 1)
    tk_max = max(max((r[3] for r in rows), default=1), 1)
    return geo, lse_b, tq_max, tk_max


def _slopes(sl, sr, nB, H, max_distance, device):
    """float32 slopes on `device` and their batch stride (H for (B, H) slopes, 0 for (H,));
    refused as validate() refuses them: NaN, −inf, or a finite |m| whose bias −m·distance
    overflows float32 at distances up to max_distance = Tq + Tk."""
    if sl is None:
        dummy = torch.zeros(1, dtype=torch.float32, device=device)
        return dummy, dummy, 0
    out = []
    for name, s in (("alibi_slopes", sl), ("alibi_slopes_right", sr if sr is not None else sl)):
        s = s.detach().to(device=device, dtype=torch.float32).contiguous()
        if tuple(s.shape) not in ((H,), (nB, H)):
            _bad(f"{name} must have shape ({H},) or ({nB}, {H}), got {tuple(s.shape)}")
        if bool(torch.isnan(s).any()) or bool((s == -math.inf).any()):
            _bad(f"{name} holds NaN or -inf; slopes must be finite (either sign), or +inf to "
                 "mask that side")
        finite = s.double()[torch.isfinite(s)]
        if bool((finite.abs() * max_distance > torch.finfo(torch.float32).max).any()):
            _bad(f"{name} holds a slope whose bias -slope*distance overflows float32 at "
                 f"distances up to {max_distance} (Tq + Tk): pass smaller slopes, or +inf to "
                 "mask that side")
        out.append(s)
    return out[0], out[1], (H if out[0].dim() == 2 else 0)


def _mask(attn_mask, nB, H, Tq, Tk, device):
    """(mask, strides (b, h, i, j), kind): bool as int8 (nonzero = may attend), additive as
    float32, broadcast by strides (never copied to (B, H, Tq, Tk))."""
    if attn_mask is None:
        return torch.zeros(1, dtype=torch.int8, device=device), (0, 0, 0, 0), 0
    m = attn_mask.to(device)
    m = m.view(torch.int8) if m.dtype == torch.bool else m.float()
    while m.dim() < 4:
        m = m.unsqueeze(0)
    try:
        m = m.expand(nB, H, Tq, Tk)
    except RuntimeError:
        _bad(f"attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to "
             f"({nB}, {H}, {Tq}, {Tk})")
    return m, tuple(m.stride()), 1 if attn_mask.dtype == torch.bool else 2


def _dropout_words(rng, p, device):
    """Rng (4,) int64 for dropout_keep: lo(seed), hi(seed) ^ hi(offset), lo(offset),
    ⌊p·2³²⌋ with p the float32 dropout_p (attention.h's mapping)."""
    if not p > 0.0:
        return torch.zeros(4, dtype=torch.int64, device=device)
    seed, offset = (int(x) & (2**64 - 1) for x in rng.tolist())
    p32 = float(torch.tensor(p, dtype=torch.float32))
    words = [seed & 0xFFFFFFFF, (seed >> 32) ^ (offset >> 32), offset & 0xFFFFFFFF,
             math.floor(p32 * 2.0**32)]
    return torch.tensor(words, dtype=torch.int64, device=device)


# ---- learned relative biases (slope.relative_bias; docs/relative-biases.md) -------------------
#
# Kerple, T5 buckets and FIRE (while every query position is below L) are functions of the
# signed distance d = p_i − j alone. The kernels read one table per head over the distances the
# call can produce, d ∈ [lo, lo + width): each entry is the family's definition
# (src/attention/relative_bias.h, RelParams::value) evaluated in float64 by torch from the
# parameters and rounded once to fp32, as the CPU kernels' tables are. The backward kernel
# returns Σ dS per (head, distance); the chain rule to the parameters is torch's autograd of
# the same float64 table (dense ops only: T5's bucket lookup is a one-hot product and FIRE's
# MLP is evaluated at each distance's two grid nodes, so no scatter-add, deterministic).
# FIRE rows at or past L divide by ψ(p_i) instead of ψ(L): the bias then depends on the row,
# not only on d. The kernels then evaluate the CPU kernels' interpolant in the tile (mode 2:
# ψ by |d|, 1/ψ(max(L, p)) by position, the grid F and its differences dF, each rounded once
# from float64), and the dq kernel forms the parameters' gradient from each score
# (attention_bwd_dq_kernel's doc), per-program partial sums reduced here in float64.


@dataclass
class _RelTable:
    kind: int
    ints: List[int]
    params: Tensor  # the flat parameters (on the device)
    lo: int  # mode 1: distance of column 0; mode 2: position of 1/ψ_m's entry 0
    width: int  # mode 1: columns per head; mode 2: entries of ψ(|d|)
    table: Tensor  # mode 1: (H, width) fp32; mode 2: the packed FIRE tables (the kernel's doc)
    mode: int = 1  # score_tile's REL
    info: Optional[Tensor] = None  # mode 2: int32 [offset of 1/ψ_m, its length, F, dF, N]


def _t5_bucket(rp: Tensor, nb: int, max_distance: int, bidirectional: bool) -> Tensor:
    """t5_bucket of relative_bias.h (Hugging Face's _relative_position_bucket, the log in
    float64) for rp = j − p_i (int64)."""
    ret = torch.zeros_like(rp)
    if bidirectional:
        nb //= 2
        ret = ret + (rp > 0).long() * nb
        n = rp.abs()
    else:
        n = torch.clamp(-rp, min=0)
    max_exact = nb // 2
    if max_exact < 1:  # every distance is "exact": the log branch is never taken
        return ret + torch.clamp(n, max=max(nb - 1, 0))
    scaled = (torch.log(torch.clamp(n, min=1).double() / max_exact)
              / math.log(max_distance / max_exact) * (nb - max_exact))
    large = torch.clamp(max_exact + scaled.long(), max=nb - 1)
    return ret + torch.where(n < max_exact, n, large)


def _rel_values(kind: int, ints: List[int], params: Tensor, H: int, d: Tensor) -> Tensor:
    """bias_h(d) (H, len(d)) in float64 for signed distances d = p_i − j (int64), from the flat
    float64 parameters (differentiable; for FIRE, m = max(L, p_i) = L)."""
    _, nb, max_distance, bidirectional, K, N = ints
    ad = d.abs().double()
    if kind in (1, 2):
        r1, r2 = params[:H, None], params[H:2 * H, None]
        if kind == 1:
            return -r1 * torch.log(1.0 + r2 * ad)
        safe = torch.where(ad > 0, ad, torch.ones_like(ad))  # d^r2 = 0 at d = 0, no log(0)
        return torch.where(ad > 0, -r1 * torch.exp(r2 * torch.log(safe)), torch.zeros_like(r1))
    if kind == 3:
        bucket = _t5_bucket(-d, nb, max_distance, bool(bidirectional))
        onehot = (bucket[:, None] == torch.arange(nb, device=d.device)[None, :]).double()
        return (onehot @ params.view(nb, H)).T
    w1, b1 = params[:K], params[K:2 * K]
    w2 = params[2 * K:(2 + H) * K].view(H, K)
    b2 = params[(2 + H) * K:(2 + H) * K + H]
    c, L = params[-2], params[-1]
    u = torch.log(c * ad + 1.0) / torch.log(c * L + 1.0)
    u = torch.where(u > 1.0, torch.ones_like(u), u)  # keys past the normaliser
    x = u * N
    n = torch.clamp(torch.floor(x.detach()), 0, N - 1)
    t = x - n

    def f(node):  # the MLP at grid node n/N: (len(d),) -> (H, len(d))
        return (torch.relu(node[:, None] / N * w1 + b1) @ w2.T + b2).T

    f0, f1 = f(n), f(n + 1)
    return f0 + t * (f1 - f0)


def _rel_table(rel_params, rel_ints, geo_rows, H, device) -> _RelTable:
    """The table of one call (see above) over the distances of its rows (q_start, q_len,
    k_start, k_len, offset): d from min(offset − k_len + 1) to max(offset + q_len − 1)."""
    kind = int(rel_ints[0])
    live = [r for r in geo_rows if r[1] > 0 and r[3] > 0] or geo_rows
    lo = min(r[4] - max(r[3], 1) + 1 for r in live)
    hi = max(r[4] + max(r[1], 1) - 1 for r in live)
    params = rel_params.detach().to(device=device, dtype=torch.float32)
    if not bool(torch.isfinite(params).all()):
        _bad("rel_params holds NaN or inf: the relative bias's parameters must be finite")
    if kind == 4:
        if not float(params[-2]) > 0.0 or not float(params[-1]) > 0.0:
            _bad(f"FIRE's c and L must be > 0, got {float(params[-2]):g} and "
                 f"{float(params[-1]):g}")
        max_pos = max(r[4] + r[1] - 1 for r in live)
        if not float(params[-1]) > max_pos:
            return _fire_past_L_tables(rel_params, rel_ints, params, live, H, lo, hi, device)
    d = torch.arange(lo, hi + 1, dtype=torch.int64, device=device)
    with torch.no_grad():
        table = _rel_values(kind, rel_ints, params.double(), H, d)
    if not bool(torch.isfinite(table).all()) or bool((table.abs() > 3.0e38).any()):
        _bad("the relative bias overflows float32 at the call's distances: check its parameters")
    return _RelTable(kind=kind, ints=list(rel_ints), params=params, lo=lo, width=hi - lo + 1,
                     table=table.float().contiguous(), info=torch.zeros(1, dtype=torch.int32,
                                                                        device=device))


def _fire_past_L_tables(rel_params, rel_ints, params, live, H, lo, hi, device) -> _RelTable:
    """Mode 2 (FIRE with rows at or past L): relative_bias.cpp's tables, each entry in float64
    rounded once: ψ(|d|) for |d| up to max(|lo|, |hi|), 1/ψ(max(L, p)) for the call's positions,
    F_n = f_h(n/N) (H, N + 1) and dF_n = F_{n+1} − F_n (H, N + 1, the last one 0)."""
    _, _, _, _, K, N = rel_ints
    p64 = params.double()
    w1, b1 = p64[:K], p64[K:2 * K]
    w2 = p64[2 * K:(2 + H) * K].view(H, K)
    b2 = p64[(2 + H) * K:(2 + H) * K + H]
    c, L = p64[-2], p64[-1]
    d = torch.arange(0, max(abs(lo), abs(hi)) + 1, dtype=torch.float64, device=device)
    psi = torch.log(c * d + 1.0)
    pos_lo = min(r[4] for r in live)
    pos = torch.arange(pos_lo, max(r[4] + r[1] - 1 for r in live) + 1, dtype=torch.float64,
                       device=device)
    rinv = 1.0 / torch.log(c * torch.maximum(L, pos) + 1.0)
    nodes = torch.arange(N + 1, dtype=torch.float64, device=device) / N
    F = (torch.relu(nodes[:, None] * w1 + b1) @ w2.T + b2).T  # (H, N + 1)
    dF = torch.cat([F[:, 1:] - F[:, :-1], torch.zeros_like(F[:, :1])], 1)
    # The backward's factors (relative_bias.h's add_grad): ∂ψ/∂c = d/(c·d + 1) by distance;
    # ψ_c(m) = m/(c·m + 1) and whether m = L by position; the MLP's w1, b1, w2; c/(c·L + 1).
    m = torch.maximum(L, pos)
    parts = [psi, rinv, F.reshape(-1), dF.reshape(-1), d / (c * d + 1.0), m / (c * m + 1.0),
             (L > pos).double(), w1, b1, w2.reshape(-1), (c / (c * L + 1.0)).reshape(1)]
    table = torch.cat(parts).float().contiguous()
    if not bool(torch.isfinite(table).all()):
        _bad("the relative bias overflows float32 at the call's distances: check its parameters")
    at = [0]
    for t in parts:
        at.append(at[-1] + t.numel())
    # RelInfo: offsets of 1/ψ_m, its length, F, dF, N, ψ_c(d), ψ_c(m), [m = L], w1, b1, w2,
    # c/(c·L + 1), K.
    info = torch.tensor([at[1], len(rinv), at[2], at[3], N, at[4], at[5], at[6], at[7], at[8],
                         at[9], at[10], K], dtype=torch.int32, device=device)
    return _RelTable(kind=4, ints=list(rel_ints), params=params, lo=pos_lo, width=len(psi),
                     table=table, mode=2, info=info)


def _rel_param_grads(rel: _RelTable, hist: Tensor, H: int) -> Tensor:
    """The flat parameters' gradient (float32) from Σ dS by (head, distance) (float64): the
    vector-Jacobian product of the float64 table, in float64."""
    d = torch.arange(rel.lo, rel.lo + rel.width, dtype=torch.int64, device=hist.device)
    # torch.func.vjp, not torch.autograd.grad: this runs inside the backward operator's kernel,
    # below the autograd dispatch key, where enable_grad() records nothing (found by
    # bench/attention_gpu.py --dry-run, which calls it through the operator).
    _, vjp = torch.func.vjp(lambda p: _rel_values(rel.kind, rel.ints, p, H, d),
                            rel.params.double())
    (g,) = vjp(hist)
    return g.float()


def _plan(q, k, v, sl, sr, key_lengths, attn_mask, cu_q, cu_k, rng, layout, ints, floats,
          block_m, block_n, rel_params=None, rel_ints=None) -> _Plan:
    q4, k4, v4 = (_view4(t, layout) for t in (q, k, v))
    B, H, _, D = q4.shape
    Hkv, Dv = k4.shape[1], v4.shape[3]
    if k4.shape[0] != B or k4.shape[3] != D or v4.shape[:3] != k4.shape[:3] or H % Hkv:
        _bad(f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do not fit together "
             "(batch, head dim, key heads dividing query heads)")
    if max(D, Dv) > MAX_HEAD_DIM:
        _bad(f"head dims {D} and {Dv}: the Triton kernels take head dims up to {MAX_HEAD_DIM}")
    causal, positions, wl, wr, max_q, max_k = ints
    scale, softcap, dropout_p, tol = floats
    if cu_q is not None and (max_q < 1 or max_k < 1):
        _bad(f"max_seqlen_q and max_seqlen_k must be >= 1, got {max_q} and {max_k}")
    if positions == 2 and key_lengths is None:
        _bad("query_positions 'key_lengths' needs key_lengths")
    if cu_q is not None and key_lengths is not None:
        _bad("key_lengths must be None with packed sequences (cu_seqlens_k gives the keys)")
    geo, lse_b, tq_max, tk_max = _geometry(q4, k4, key_lengths, cu_q, cu_k, positions, q.device)
    nB = geo.shape[0]
    if cu_q is not None:  # the mask, if any, is indexed by each document's own (i, j)
        mask_tq, mask_tk = min(max_q, max(1, q4.shape[2])), min(max_k, max(1, k4.shape[2]))
    else:
        mask_tq, mask_tk = q4.shape[2], k4.shape[2]
    slopes_l, slopes_r, slopes_sb = _slopes(sl, sr, nB, H, q4.shape[2] + k4.shape[2],
                                            q.device)
    mask, mask_strides, mask_kind = _mask(attn_mask, nB, H, mask_tq, mask_tk, q.device)
    default_m, default_n = _default_blocks(q.device, q.dtype, triton.next_power_of_2(max(D, Dv)))
    has_alibi = sl is not None
    rel = None
    if rel_params is not None:
        rel = _rel_table(rel_params, rel_ints, geo.tolist(), H, q.device)
    return _Plan(
        q4=q4, k4=k4, v4=v4, geo=geo, nB=nB, packed=cu_q is not None, H=H, Hkv=Hkv, D=D, Dv=Dv,
        Tq_max=tq_max, Tk_max=tk_max, lse_b=lse_b, lse_h=q4.shape[2],  # packed: lse (H, total_q)
        slopes_l=slopes_l, slopes_r=slopes_r, slopes_sb=slopes_sb, mask=mask,
        mask_strides=mask_strides, mask_kind=mask_kind,
        rng=_dropout_words(rng, dropout_p, q.device), scale=float(scale),
        softcap=float(softcap), window_left=int(wl), window_right=int(wr),
        dropout_p=float(dropout_p), skip_tolerance=float(tol), causal=bool(causal),
        has_alibi=has_alibi,
        skip=has_alibi and tol > 0.0 and mask_kind != 2,
        block_m=block_m or default_m, block_n=block_n or default_n, rel=rel)


def _strides3(t4: Tensor, packed: bool):
    """(b, h, t) strides of a (B, H, T, D) view; packed views are (1, H, total, D) and rows are
    addressed by time alone (batch stride 0, the documents' rows from Geo)."""
    return 0 if packed else t4.stride(0), t4.stride(1), t4.stride(2)


def _drop_scale(p: _Plan) -> float:
    # 1/(1 − p) formed in float32, as the CPU kernels form it
    p32 = torch.tensor(p.dropout_p, dtype=torch.float32)
    return float(1.0 / (1.0 - p32)) if p.dropout_p > 0.0 else 1.0


def attention_forward(q: Tensor, k: Tensor, v: Tensor, slopes_left: Optional[Tensor],
                      slopes_right: Optional[Tensor], key_lengths: Optional[Tensor],
                      attn_mask: Optional[Tensor], cu_seqlens_q: Optional[Tensor],
                      cu_seqlens_k: Optional[Tensor], dropout_rng: Optional[Tensor], layout: str,
                      ints: List[int], floats: List[float], rel_params: Optional[Tensor] = None,
                      rel_ints: Optional[List[int]] = None, *, block_m: Optional[int] = None,
                      block_n: Optional[int] = None):
    """torch.ops.slope.attention_forward on the Triton kernels: (out, lse). out has q's shape
    with v's head dim, in q's dtype; lse float32, (B, H, Tq) or (H, total_q) packed."""
    out = torch.zeros(q.shape[:-1] + (v.shape[-1],), dtype=q.dtype, device=q.device)
    lse = torch.full(_lse_shape(q, layout), -math.inf, dtype=torch.float32, device=q.device)
    if q.numel() == 0 or k.numel() == 0 or v.numel() == 0:
        return out, lse
    p = _plan(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q,
              cu_seqlens_k, dropout_rng, layout, ints, floats, block_m, block_n, rel_params,
              rel_ints)
    kn = p.key_norms()
    out4 = _view4(out, layout)
    grid = (triton.cdiv(p.Tq_max, p.block_m), p.nB * p.H)
    kern.attention_fwd_kernel[grid](
        p.q4, p.k4, p.v4, out4, lse, p.slopes_l, p.slopes_r, kn, p.geo, p.mask, p.rng,
        *p.rel_tab(), *p.strides(p.q4, p.k4, p.v4, out4),
        *p.common(), _drop_scale(p), **p.flags())
    return out, lse


def attention_backward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                       slopes_left: Optional[Tensor], slopes_right: Optional[Tensor],
                       key_lengths: Optional[Tensor], attn_mask: Optional[Tensor],
                       cu_seqlens_q: Optional[Tensor], cu_seqlens_k: Optional[Tensor],
                       dropout_rng: Optional[Tensor], layout: str, ints: List[int],
                       floats: List[float], slope_grads: bool,
                       rel_params: Optional[Tensor] = None, rel_ints: Optional[List[int]] = None,
                       *, block_m: Optional[int] = None, block_n: Optional[int] = None):
    """torch.ops.slope.attention_backward on the Triton kernels: (dq, dk, dv, dslopes_left,
    dslopes_right). dq, dk, dv contiguous in q's, k's, v's dtypes; the slope gradients float32
    shaped like the slopes (empty when not wanted; with one shared slope vector dslopes_left is
    its whole gradient), reduced over query blocks (and the batch, for (H,) slopes) in float64
    in a fixed order: bitwise the same on every run. With a relative bias (rel_params), the
    fourth output is its parameters' gradient (float32, shaped like rel_params): Σ dS by
    (head, distance) from the dq kernel, summed in float64 in a fixed order, then the chain
    rule in float64 (_rel_param_grads): also bitwise the same on every run."""
    want_rel = slope_grads and rel_params is not None
    want_l = slope_grads and slopes_left is not None
    want_r = slope_grads and slopes_right is not None
    def empty():  # a fresh one each time: an operator's outputs must not alias each other
        return q.new_empty(0, dtype=torch.float32)

    dq, dk, dv = (torch.zeros(t.shape, dtype=t.dtype, device=t.device) for t in (q, k, v))
    if q.numel() == 0 or k.numel() == 0 or v.numel() == 0:
        zeros = lambda s: torch.zeros_like(s, dtype=torch.float32)  # noqa: E731
        return (dq, dk, dv, zeros(slopes_left) if want_l else
                zeros(rel_params) if want_rel else empty(),
                zeros(slopes_right) if want_r else empty())
    p = _plan(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q,
              cu_seqlens_k, dropout_rng, layout, ints, floats, block_m, block_n, rel_params,
              rel_ints)
    kn = p.key_norms()
    lse = lse.contiguous()
    do4 = _view4(dout, layout)
    out4 = _view4(out, layout)
    # D_i = rowsum(dO∘O) and ‖scale·q_i‖ (inflated like the key norms), indexed like lse.
    delta = (do4.float() * out4.float()).sum(-1).contiguous()
    qn = (torch.linalg.vector_norm(p.q4.float(), dim=-1) * (abs(p.scale) * (1.0 + 1e-5)))
    qn = qn.contiguous()
    dq4, dk4, dv4 = (_view4(t, layout) for t in (dq, dk, dv))
    flags = p.flags()
    tail = (*p.common(), _drop_scale(p))
    grid_kv = (triton.cdiv(p.Tk_max, p.block_n), p.nB * p.Hkv)
    kern.attention_bwd_dkdv_kernel[grid_kv](
        p.q4, p.k4, p.v4, do4, lse, delta, dk4, dv4, p.slopes_l, p.slopes_r, qn, kn, p.geo,
        p.mask, p.rng, *p.rel_tab(), *p.strides(p.q4, p.k4, p.v4, do4, dk4, dv4), *tail,
        **flags)
    n_m = triton.cdiv(p.Tq_max, p.block_m)
    want_any = want_l or want_r
    parts = torch.zeros((2, p.nB, p.H, n_m) if want_any else (2, 1), dtype=torch.float64,
                        device=q.device)
    # The relative bias's Σ dS by distance: one fp32 row per (b, h, query block, tile class),
    # each entry written by one tile (the kernel's doc); classes: tiles of one program whose
    # BLOCK_M + BLOCK_N − 1 diagonals cannot overlap.
    n_diag = p.block_m + p.block_n - 1
    classes = triton.cdiv(n_diag, p.block_n)
    fire_k = p.rel.ints[4] if p.rel is not None and p.rel.mode == 2 else 0
    if want_rel and fire_k:  # FIRE past L: per program [w2_h (K), w1 (K), b1 (K), b2, c, L]
        rel_parts = torch.zeros((p.nB, p.H, n_m, 3 * fire_k + 3), dtype=torch.float64,
                                device=q.device)
    else:
        rel_parts = torch.zeros((p.nB, p.H, n_m, classes, p.rel.width) if want_rel else (1,),
                                dtype=torch.float32, device=q.device)
    kern.attention_bwd_dq_kernel[(n_m, p.nB * p.H)](
        p.q4, p.k4, p.v4, do4, lse, delta, dq4, p.slopes_l, p.slopes_r, qn, kn, p.geo, p.mask,
        p.rng, *p.rel_tab(), parts[0], parts[1], rel_parts,
        *p.strides(p.q4, p.k4, p.v4, do4, dq4), *tail, n_m, classes,
        SLOPE_GRADS=want_any and p.has_alibi, REL_GRADS=want_rel,
        FIRE_BLOCK_K=triton.next_power_of_2(max(fire_k, 4)),  # b2, c, L share a 4-vector
        BLOCK_E=triton.next_power_of_2(n_diag), **flags)
    if want_rel and fire_k:
        g = rel_parts.sum(dim=(0, 2))  # (H, 3K + 3), over the batch and query blocks, in order
        K = fire_k
        flat = torch.cat([g[:, K:2 * K].sum(0), g[:, 2 * K:3 * K].sum(0), g[:, :K].reshape(-1),
                          g[:, 3 * K], g[:, 3 * K + 1].sum().reshape(1),
                          g[:, 3 * K + 2].sum().reshape(1)])
        return dq, dk, dv, flat.float().reshape(rel_params.shape), empty()
    if want_rel:
        hist = rel_parts.double().sum(dim=(0, 2, 3))  # (H, width), in a fixed order
        return dq, dk, dv, _rel_param_grads(p.rel, hist, p.H).reshape(rel_params.shape), empty()
    if not want_any:
        return dq, dk, dv, empty(), empty()
    g = parts.sum(-1)  # (2, nB, H): over query blocks, in order
    if slopes_right is None:
        g = g[0] + g[1]  # one shared vector: its whole gradient
        dsl = g if slopes_left.dim() == 2 else g.sum(0)
        return dq, dk, dv, dsl.float().reshape(slopes_left.shape), empty()
    gl, gr = (g[s] if slopes_left.dim() == 2 else g[s].sum(0) for s in (0, 1))
    return (dq, dk, dv, gl.float().reshape(slopes_left.shape) if want_l else empty(),
            gr.float().reshape(slopes_right.shape) if want_r else empty())
