"""The checks of slope's Triton kernels (slope._triton), run in a process of their own:

    python tests/python/triton_cases.py interpret   # CPU tensors under TRITON_INTERPRET=1
    python tests/python/triton_cases.py cuda        # a GPU: the same checks at larger shapes

prints one JSON object {case: "ok" | the failure}. test_triton.py runs it and reports each case.
A process of its own because the interpreter must be chosen before triton is imported, and
setting TRITON_INTERPRET in the pytest process would also turn torch.compile's own Triton
kernels into interpreted ones for every later test.

Every case compares the kernels' forward (out, lse) and backward (dq, dk, dv, slope gradients)
with slope's float64 reference (slope.testing), element by element within the fp32 rounding
bounds of include/slope/attention.h (slope.testing.attention_error_bounds), which hold for any
fp32 flash-style evaluation, far-tile skipping included. Cases the reference API cannot state
(packed documents, dropout, bf16/fp16 rounding of the tiles) derive their bounds beside them.
"""

import json
import math
import os
import sys
import time
import traceback

import numpy as np


class Setting:
    """Where the kernels run: device, tile sizes, and how big the shapes are."""

    def __init__(self, mode):
        self.mode = mode
        self.device = "cuda" if mode == "cuda" else "cpu"
        # Interpreter: 16 × 16 tiles (the smallest tl.dot takes) keep T <= 128 to a few blocks
        # and still put tile edges inside every case. GPU: the kernels' defaults.
        self.blocks = dict(block_m=16, block_n=16) if mode == "interpret" else {}
        self.big = mode == "cuda"


def _imports():
    global torch, slope, testing, tri
    import torch  # noqa: F401
    import slope  # noqa: F401
    import slope.testing as testing  # noqa: F401
    from slope import _triton as tri  # noqa: F401


QP = {"lower_right": 0, "upper_left": 1, "key_lengths": 2}


def randn(*shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def run_kernels(st, q, k, v, dout, *, layout="bhtd", slopes=None, slopes_right=None,
                key_lengths=None, mask=None, cu_q=None, cu_k=None, max_q=0, max_k=0,
                causal=False, positions="lower_right", window=(-1, -1), softcap=0.0,
                scale=None, dropout_p=0.0, rng=None, skip_tolerance=2.0**-24, blocks=None):
    """out, lse, dq, dk, dv, dslopes_left, dslopes_right from the Triton kernels, inputs moved
    to the setting's device and results moved back to the CPU."""
    dev = st.device
    D = q.shape[-1]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    ints = [int(causal), QP[positions], window[0], window[1], max_q, max_k]
    floats = [scale, softcap, dropout_p, skip_tolerance]
    to = (lambda t: None if t is None else t.to(dev))
    args = (to(q), to(k), to(v), to(slopes), to(slopes_right), to(key_lengths), to(mask),
            to(cu_q), to(cu_k), rng, layout, ints, floats)
    blocks = st.blocks if blocks is None or st.mode != "interpret" else blocks
    out, lse = tri.attention_forward(*args, **blocks)
    grads = tri.attention_backward(to(dout), *args[:3], out, lse, *args[3:], True, **blocks)
    return tuple(t.cpu() for t in (out, lse) + tuple(grads))


def np32(t):
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


def assert_within(name, got, ref, bound):
    got = got.detach().double().cpu().numpy() if hasattr(got, "detach") else np.asarray(got)
    ref, bound = np.asarray(ref, np.float64), np.asarray(bound, np.float64)
    assert got.shape == ref.shape, f"{name}: shape {got.shape}, reference {ref.shape}"
    finite = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got), finite), f"{name}: non-finite entries differ"
    excess = np.abs(got[finite] - ref[finite]) - bound[finite]
    if excess.size:
        worst = int(np.argmax(excess))
        assert excess[worst] <= 0, (f"{name}: |got - ref| exceeds its bound by "
                                    f"{excess[worst]:.3e} (bound {bound[finite][worst]:.3e})")


def check_reference(st, B=2, H=2, Hkv=0, Tq=37, Tk=37, D=16, Dv=0, *, alibi=False, right=None,
                    per_batch=False, slopes=None, key_lengths=None, mask=None, causal=False,
                    positions="lower_right", window=(-1, -1), softcap=0.0, scale=None,
                    skip_tolerance=2.0**-24, input_scale=1.0, layout="bhtd", blocks=None):
    """One problem on the Triton kernels against slope's float64 reference within the fp32
    bounds, every output and gradient. slopes: explicit (H,) or (B, H); alibi: Press's slopes;
    right: "half" (m_right = m/2) or "masked" (+inf: one-sided). blocks: tile sizes for the
    interpreter instead of the setting's."""
    Hkv = Hkv or H
    Dv = Dv or D
    q = randn(B, H, Tq, D, seed=1, scale=input_scale)
    k = randn(B, Hkv, Tk, D, seed=2, scale=input_scale)
    v = randn(B, Hkv, Tk, Dv, seed=3)
    dout = randn(B, H, Tq, Dv, seed=4)
    sl = sr = None
    if alibi or slopes is not None:
        sl = torch.tensor(slope.alibi_slopes(H)) if slopes is None else torch.as_tensor(slopes)
        if per_batch:
            sl = sl * torch.linspace(0.5, 1.5, B)[:, None]
        if right == "half":
            sr = sl * 0.5
        elif right == "masked":
            sr = torch.full_like(sl, math.inf)
    lens = None if key_lengths is None else torch.tensor(key_lengths, dtype=torch.int32)
    if layout == "bthd":  # the kernels read the transposed storage through strides
        tq, tk, tv, td = (x.transpose(1, 2).contiguous().transpose(1, 2) for x in (q, k, v, dout))
        q, k, v, dout = tq, tk, tv, td
    got = run_kernels(st, q, k, v, dout, slopes=sl, slopes_right=sr, key_lengths=lens, mask=mask,
                      causal=causal, positions=positions, window=window, softcap=softcap,
                      scale=scale, skip_tolerance=skip_tolerance, blocks=blocks)
    kw = dict(causal=causal, scale=scale, alibi_slopes=None if sl is None else sl.numpy(),
              alibi_slopes_right=None if sr is None else sr.numpy(),
              key_lengths=None if lens is None else lens.numpy(),
              attn_mask=None if mask is None else (mask.numpy() if mask.dtype == torch.bool
                                                   else np32(mask)),
              query_positions=positions, window_size=window, softcap=softcap)
    a = (np32(q), np32(k), np32(v), np32(dout))
    ref = testing.attention_reference(*a, **kw)
    bound = testing.attention_error_bounds(*a, skip_tolerance=skip_tolerance, **kw)
    names = ["out", "lse", "dq", "dk", "dv", "dslopes", "dslopes_right"]
    for name, g in zip(names, got):
        if ref[name] is None:
            assert g.numel() == 0, f"{name}: expected no gradient, got {tuple(g.shape)}"
            continue
        assert_within(name, g, ref[name], bound[name])
    return got


# ---- the cases --------------------------------------------------------------------------------

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@case
def plain(st):
    check_reference(st)


@case
def causal_alibi(st):
    check_reference(st, causal=True, alibi=True, **(dict(Tq=300, Tk=300) if st.big else {}))


@case
def bidirectional_alibi_left_right(st):
    check_reference(st, alibi=True, right="half")


@case
def nonsymmetric_one_side_masked(st):
    """The ALiBi encoder's halves: slope +inf masks a side; the diagonal stays visible."""
    check_reference(st, alibi=True, right="masked", H=2)


@case
def negative_and_per_batch_slopes(st):
    """Slopes (B, H) of either sign (skipping stays off for the negative ones)."""
    check_reference(st, H=3, slopes=[0.5, -0.05, 0.0], per_batch=True, causal=True)


@case
def gqa_odd_dims(st):
    """Grouped queries (H=3 sharing Hkv=1: a non-power-of-two head count), D=24 and Dv=40
    padded to 32 and 64, T one more than two tiles."""
    check_reference(st, H=3, Hkv=1, D=24, Dv=40, Tq=33, Tk=33, causal=True, alibi=True)


@case
def head_dim_256(st):
    check_reference(st, B=1, H=2, D=256, Tq=20, Tk=20, causal=True, alibi=True)


@case
def tq_lt_tk_lower_right(st):
    check_reference(st, Tq=13, Tk=50, causal=True, alibi=True)


@case
def tq_gt_tk_masked_rows(st):
    """Lower-right with Tq > Tk: the first Tq − Tk rows see no key (out 0, lse −inf)."""
    check_reference(st, Tq=40, Tk=17, causal=True, alibi=True)


@case
def upper_left(st):
    check_reference(st, Tq=21, Tk=45, causal=True, alibi=True, positions="upper_left")


@case
def key_lengths_positions(st):
    """flash_attn_with_kvcache's alignment: queries at the end of each row's own keys; one row
    with no key at all."""
    check_reference(st, B=3, Tq=5, Tk=40, key_lengths=[23, 0, 40], causal=True, alibi=True,
                    positions="key_lengths")


@case
def key_lengths_bidirectional(st):
    check_reference(st, B=2, key_lengths=[37, 9], alibi=True)


@case
def sliding_window(st):
    check_reference(st, Tq=45, Tk=45, causal=True, alibi=True, window=(7, 0))


@case
def window_both_sides_softcap(st):
    check_reference(st, Tq=40, Tk=40, alibi=True, right="half", window=(5, 9), softcap=2.5)


@case
def softcap_large_inputs(st):
    """Large-magnitude scores: |scale·q·k| ~ 20 under a cap of 5, most of them saturated."""
    check_reference(st, causal=True, alibi=True, softcap=5.0, input_scale=4.0)


@case
def bool_mask_broadcast(st):
    B, H, T = 2, 2, 37
    m = torch.rand(B, 1, T, T, generator=torch.Generator().manual_seed(7)) < 0.6
    check_reference(st, B=B, H=H, Tq=T, Tk=T, mask=m, alibi=True)


@case
def additive_mask_broadcast(st):
    H, T = 2, 37
    m = randn(1, H, T, T, seed=8)
    m[0, 1, 3] = -math.inf  # one fully masked row
    check_reference(st, H=H, Tq=T, Tk=T, mask=m, alibi=True, causal=True)


@case
def bthd_strides(st):
    check_reference(st, layout="bthd", causal=True, alibi=True, scale=0.3)


@case
def single_query_single_key(st):
    check_reference(st, B=1, H=2, Tq=1, Tk=1, causal=True, alibi=True)


@case
def far_tile_skipping_steep(st):
    """Steep slopes over T = 128 (4 blocks of 32 each way): far blocks are skipped by the
    bound, and the results stay within the bounds that allow for it, at the default tolerance
    and at a loose one (1e-3), causal and two-sided with a softcap."""
    T = 600 if st.big else 128
    blocks = dict(block_m=32, block_n=32)
    check_reference(st, B=1, H=4, Tq=T, Tk=T, D=16, slopes=[2.0, 1.0, 0.5, 0.25], causal=True,
                    blocks=blocks)
    check_reference(st, B=1, H=2, Tq=T, Tk=T, D=16, slopes=[1.0, 0.5], right="half",
                    skip_tolerance=1e-3, softcap=4.0, blocks=blocks)


@case
def far_tile_skipping_skips(st):
    """Far blocks are not read at all: NaN in far values and far keys' gradients stay exact
    zeros with skipping on, while skipping off reads them (NaN). 16 queries at the end of
    128 keys, slope 1: keys 0..47 are ≥ 64 positions away, a bias ≤ −64 against scores of
    |scale·q·k| ≤ ~15, far beyond ln(2⁻²⁴/128) ≈ −21.5."""
    B, H, Tq, Tk, D = 1, 2, 16, 128, 16
    q, k = randn(B, H, Tq, D, seed=1), randn(B, H, Tk, D, seed=2)
    v, dout = randn(B, H, Tk, D, seed=3), randn(B, H, Tq, D, seed=4)
    v[:, :, :48] = math.nan
    sl = torch.tensor([1.0, 1.0])
    out, lse, dq, dk, dv, dsl, _ = run_kernels(st, q, k, v, dout, slopes=sl, causal=True)
    assert torch.isfinite(out).all() and torch.isfinite(dq).all() and torch.isfinite(dsl).all()
    assert (dk[:, :, :48] == 0).all() and (dv[:, :, :48] == 0).all()
    out_all = run_kernels(st, q, k, v, dout, slopes=sl, causal=True, skip_tolerance=0.0)[0]
    assert torch.isnan(out_all).all(), "skip_tolerance=0 must compute every block"


@case
def packed_documents(st):
    """cu_seqlens: each document (lengths 0 to 45, more keys than queries in some) against the
    float64 reference of that document alone, within its bounds; slope gradients summed over
    the documents; (B, H) slopes index the documents."""
    H, D = 3, 16
    lens_q = [1, 17, 0, 45, 16, 9]
    lens_k = [1, 17, 5, 45, 30, 9]
    nB = len(lens_q)
    cu_q = torch.tensor([0] + list(np.cumsum(lens_q)), dtype=torch.int32)
    cu_k = torch.tensor([0] + list(np.cumsum(lens_k)), dtype=torch.int32)
    q, k = randn(int(cu_q[-1]), H, D, seed=1), randn(int(cu_k[-1]), H, D, seed=2)
    v, dout = randn(int(cu_k[-1]), H, D, seed=3), randn(int(cu_q[-1]), H, D, seed=4)
    sl = torch.tensor(slope.alibi_slopes(H))[None, :] * torch.linspace(0.5, 2.0, nB)[:, None]
    out, lse, dq, dk, dv, dsl, _ = run_kernels(
        st, q, k, v, dout, layout="thd", slopes=sl, cu_q=cu_q, cu_k=cu_k, max_q=max(lens_q),
        max_k=max(lens_k), causal=True, window=(20, 0))
    assert lse.shape == (H, q.shape[0])
    for b in range(nB):
        qs, ks = slice(int(cu_q[b]), int(cu_q[b + 1])), slice(int(cu_k[b]), int(cu_k[b + 1]))
        if lens_q[b] == 0:
            continue
        doc = lambda t: np.ascontiguousarray(t.numpy().transpose(1, 0, 2)[None])  # noqa: E731
        a = (doc(q[qs]), doc(k[ks]), doc(v[ks]), doc(dout[qs]))
        kw = dict(causal=True, alibi_slopes=sl[b].numpy(), window_size=(20, 0))
        ref = testing.attention_reference(*a, **kw)
        bound = testing.attention_error_bounds(*a, **kw)
        back = lambda t: t.transpose(0, 1)[None]  # noqa: E731
        for name, g in (("out", back(out[qs])), ("lse", lse[:, qs][None]),
                        ("dq", back(dq[qs])), ("dk", back(dk[ks])), ("dv", back(dv[ks])),
                        ("dslopes", dsl[b])):
            if lens_k[b] == 0 and name in ("dk", "dv"):
                continue
            assert_within(f"doc {b} {name}", g, ref[name], bound[name])


@case
def dropout_mask_is_the_documented_one(st):
    """The keep mask is attention.h's Philox mapping (slope.testing.attention_dropout_mask):
    with v = identity, out_ij = Z_ij·P_ij/(1 − p), so the kept entries are the nonzero ones;
    and kept values are P/(1 − p) within the fp32 forward's bound (scaled by 1/(1 − p), plus
    the 3u of forming and applying that factor)."""
    H, T, D, p = 2, 40, 16, 0.4
    seed, offset = 0x9234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321  # seed >= 2**63: all 64 bits
    q, k = randn(1, H, T, D, seed=1), randn(1, H, T, D, seed=2)
    v = torch.eye(T).expand(1, H, T, T).contiguous()
    sl = torch.tensor(slope.alibi_slopes(H))
    rng = torch.tensor([seed - 2**64, offset], dtype=torch.int64)  # the same 64 bits, signed
    out = run_kernels(st, q, k, v, torch.zeros(1, H, T, T), slopes=sl, causal=True,
                      dropout_p=p, rng=rng)[0].double()
    Z = testing.attention_dropout_mask(1, H, T, T, p, seed, offset)
    kw = dict(causal=True, alibi_slopes=sl.numpy())
    ref = testing.attention_reference(np32(q), np32(k), np32(v), **kw)
    bound = testing.attention_error_bounds(np32(q), np32(k), np32(v), **kw)
    P = ref["out"]  # out of the identity problem is P itself
    visible = P > 0
    assert np.array_equal((out.numpy() != 0)[visible], Z[visible]), "keep mask differs"
    assert not (out.numpy() != 0)[~visible].any()
    u = 2.0**-24
    kept = visible & Z
    scaled = P / (1 - np.float32(p))
    assert_within("kept P/(1-p)", out.numpy()[kept], scaled[kept],
                  (bound["out"][kept] / (1 - p) + 3 * u * scaled[kept]))


@case
def dropout_gradients(st):
    """Forward and every gradient with dropout against float64 autograd of the materialised
    definition with the same mask Z (slope.testing.attention_dropout_mask). Bound, first order
    in u with the deterministic γ(n) = n·u of every sum: each probability errs relatively by
    ρ ≤ (D + 2)·u·(1 + scale·Σ_d|q_d·k_d|) + (Tk + 8)·u (score dot product, bias, the row's
    normaliser, exp, lse); an output Σ_j c_j·w_j then errs by (ρ + (Tk + 4)·u)·Σ_j |c_j·w_j| — each
    bound below is that absolute-value sum, formed in float64, times 2(D + Tk + 16)·u·(1 + the
    largest scale·Σ_d|q_d·k_d| in the problem) to cover ρ for every term."""
    B, H, T, D, p = 1, 2, 40, 16, 0.3
    seed, offset = 99, 7
    q, k, v = randn(B, H, T, D, seed=1), randn(B, H, T, D, seed=2), randn(B, H, T, D, seed=3)
    dout = randn(B, H, T, D, seed=4)
    sl = torch.tensor(slope.alibi_slopes(H))
    rng = torch.tensor([seed, offset], dtype=torch.int64)
    got = run_kernels(st, q, k, v, dout, slopes=sl, causal=True, dropout_p=p, rng=rng)
    Z = torch.from_numpy(testing.attention_dropout_mask(B, H, T, T, p, seed, offset)).double()
    Zc = Z / (1 - float(np.float32(p)))
    q64, k64, v64, sl64 = (x.double().requires_grad_() for x in (q, k, v, sl))
    scale = float(np.float32(1 / math.sqrt(D)))
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    s = q64 @ k64.transpose(-1, -2) * scale - sl64[:, None, None] * (i - j).abs()
    P = torch.softmax(s.masked_fill(j > i, -math.inf), -1)
    o64 = (P * Zc) @ v64
    (o64 * dout.double()).sum().backward()
    with torch.no_grad():
        qk_abs = (q.double().abs() @ k.double().abs().transpose(-1, -2)) * scale
        u = 2.0**-24
        c = 2 * (D + T + 16) * u * (1 + qk_abs.max().item())
        Pd = P.detach()
        dP = (dout.double() @ v.double().transpose(-1, -2)) * Zc
        Di = (Pd * dP).sum(-1, keepdim=True)
        dS_abs = Pd * (dP.abs() + Di.abs())
        dist = (i - j).abs().double()
        bounds = {
            "out": c * ((Pd * Zc) @ v.double().abs()),
            "dv": c * ((Pd * Zc).transpose(-1, -2) @ dout.double().abs()),
            "dq": c * scale * (dS_abs @ k.double().abs()),
            "dk": c * scale * (dS_abs.transpose(-1, -2) @ q.double().abs()),
            "dslopes": c * (dS_abs * dist).sum((0, 2, 3)),
        }
    want = {"out": o64, "dq": q64.grad, "dk": k64.grad, "dv": v64.grad, "dslopes": sl64.grad}
    for name, g in zip(("out", "lse", "dq", "dk", "dv", "dslopes"), got):
        if name in want:
            assert_within(name, g, want[name].detach().numpy(), bounds[name].numpy())


@case
def low_precision(st):
    """bf16 and fp16 inputs (exact in fp32) against the float64 reference on those values. On
    top of the fp32 bound: the kernels round P and dS to the input dtype for the tile products
    (u_dt relative per term: u_dt·Σ|P_ij·v_jd| for out, u_dt·Σ|P_ij·dO_id| for dv,
    u_dt·scale·Σ|dS_ij·k_jd| for dq, the mirror for dk); out, dq, dk, dv are rounded to the dtype
    (u_dt·|x| + η/2); the backward reads O in the dtype, which moves D_i by
    δD_i = Σ_d|dO_id|·(u_dt·|O_id| + η/2) and dq_i by scale·δD_i·Σ_j P_ij·|k_j|, dk_j by
    scale·Σ_i P_ij·δD_i·|q_i| (the slope gradients remove D_i exactly: (A + (D − E/S)·B)/S)."""
    B, H, T, D = 1, 2, 45, 16
    for dtype, u_dt, eta2 in ((torch.bfloat16, 2.0**-8, 2.0**-134),
                              (torch.float16, 2.0**-11, 2.0**-25)):
        q, k, v, dout = (randn(B, H, T, D, seed=s).to(dtype) for s in (1, 2, 3, 4))
        sl = torch.tensor(slope.alibi_slopes(H))
        got = run_kernels(st, q, k, v, dout, slopes=sl, causal=True)
        assert got[0].dtype == dtype and got[2].dtype == dtype and got[1].dtype == torch.float32
        a = tuple(np32(x) for x in (q, k, v, dout))
        kw = dict(causal=True, alibi_slopes=sl.numpy())
        ref = testing.attention_reference(*a, **kw)
        bound = testing.attention_error_bounds(*a, **kw)
        qd, kd, vd, dod = (torch.from_numpy(x).double() for x in a)
        scale = float(np.float32(1 / math.sqrt(D)))
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        s = qd @ kd.transpose(-1, -2) * scale - sl.double()[:, None, None] * (i - j).abs()
        P = torch.softmax(s.masked_fill(j > i, -math.inf), -1)
        dP = dod @ vd.transpose(-1, -2)
        dS = P * (dP - (dod * torch.from_numpy(ref["out"])).sum(-1, keepdim=True))
        dD = (dod.abs() * (u_dt * torch.from_numpy(ref["out"]).abs() + eta2)).sum(-1)
        extra = {
            "out": u_dt * (P @ vd.abs()),
            "lse": 0.0,
            "dq": u_dt * scale * (dS.abs() @ kd.abs()) + scale * dD[..., None] * (P @ kd.abs()),
            "dk": (u_dt * scale * (dS.abs().transpose(-1, -2) @ qd.abs())
                   + scale * (P * dD[..., None]).transpose(-1, -2) @ qd.abs()),
            "dv": u_dt * (P.transpose(-1, -2) @ dod.abs()),
            "dslopes": 0.0,
        }
        for name, g in zip(("out", "lse", "dq", "dk", "dv", "dslopes"), got):
            r = ref[name]
            e = extra[name]
            e = e.numpy() if hasattr(e, "numpy") else e
            rounding = 0.0 if name in ("lse", "dslopes") else u_dt * np.abs(r) + eta2
            assert_within(f"{dtype} {name}", g, r, bound[name] + e + rounding)


@case
def slope_gradients_bitwise_deterministic(st):
    """Two runs give bitwise the same slope gradients (and dq, dk, dv): no atomics anywhere."""
    B, H, T, D = 1, 2, 40, 16
    q, k, v, dout = (randn(B, H, T, D, seed=s) for s in (1, 2, 3, 4))
    sl, sr = torch.tensor(slope.alibi_slopes(H)), torch.tensor(slope.alibi_slopes(H)) * 0.5
    first = run_kernels(st, q, k, v, dout, slopes=sl, slopes_right=sr)
    second = run_kernels(st, q, k, v, dout, slopes=sl, slopes_right=sr)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv", "dsl", "dsr"), first, second):
        assert torch.equal(a, b), f"{name} differs between two runs"


@case
def bad_input_is_refused(st):
    q = randn(1, 2, 5, 8, seed=1)
    args = lambda **kw: dict(dict(slopes=None, key_lengths=None), **kw)  # noqa: E731
    for msg, kw in (("key_lengths", args(key_lengths=torch.tensor([6], dtype=torch.int32))),
                    ("alibi_slopes", args(slopes=torch.tensor([0.5, math.nan]))),
                    ("alibi_slopes", args(slopes=torch.ones(3))),
                    ("overflows", args(slopes=torch.tensor([0.5, -1e38])))):
        try:
            run_kernels(st, q, q, q, q, **kw)
        except ValueError as e:
            assert msg in str(e), f"{msg}: {e}"
        else:
            raise AssertionError(f"{msg}: not refused")
    try:
        big = randn(1, 1, 4, 300, seed=1)
        run_kernels(st, big, big, big, big)
    except ValueError as e:
        assert "256" in str(e)
    else:
        raise AssertionError("head dim 300: not refused")


class Skip(Exception):
    """A case that does not apply to this mode (reported as a skipped test)."""


@case
def cuda_kernels_are_registered(st):
    """The operators' CUDA kernels are these Triton functions: registered for the CUDA
    dispatch key, and (called here on this setting's tensors) giving bitwise what
    slope._triton gives."""
    import slope._torch_ops as ops
    for name in ("slope::attention_forward", "slope::attention_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CUDA"), name
    q, k, v, dout = (randn(1, 2, 20, 16, seed=s).to(st.device) for s in (1, 2, 3, 4))
    sl = torch.tensor(slope.alibi_slopes(2)).to(st.device)
    args = (q, k, v, sl, None, None, None, None, None, None, "bhtd", [1, 0, -1, -1, 0, 0],
            [0.25, 0.0, 0.0, 2.0**-24])
    fwd, bwd = (f._backend_fns["cuda"] for f in (ops._attention_forward, ops._attention_backward))
    out, lse = fwd(*args)
    want = tri.attention_forward(*args)
    assert torch.equal(out, want[0]) and torch.equal(lse, want[1])
    got = bwd(dout, q, k, v, out, lse, *args[3:], True)
    want = tri.attention_backward(dout, q, k, v, out, lse, *args[3:], True)
    for a, b in zip(got, want):
        assert torch.equal(a, b)


@case
def front_doors_on_cuda(st):
    """slope.torch on CUDA tensors: flash_attn_func with learned slopes, eager and under
    torch.compile(fullgraph=True), equal to each other and to the CPU kernels within both
    kernels' fp32 bounds (their difference is at most the sum of the two bounds)."""
    if st.device != "cuda":
        raise Skip("needs a GPU (the interpreter runs the kernels, not the CUDA dispatch)")
    import slope.torch as sto
    B, T, H, D = 2, 200, 4, 64
    q, k, v, dout = (randn(B, T, H, D, seed=s) for s in (1, 2, 3, 4))
    m = torch.tensor(slope.alibi_slopes(H))

    def run(device, compile_):
        qs, ks, vs = (x.to(device).requires_grad_() for x in (q, k, v))
        ms = m.to(device).requires_grad_()
        f = lambda a, b, c, s: sto.flash_attn_func(a, b, c, causal=True, alibi_slopes=s)  # noqa
        if compile_:
            torch._dynamo.reset()
            f = torch.compile(f, fullgraph=True)
        out = f(qs, ks, vs, ms)
        (out * dout.to(device)).sum().backward()
        return [x.detach().cpu() for x in (out, qs.grad, ks.grad, vs.grad, ms.grad)]

    eager, compiled, cpu = run("cuda", False), run("cuda", True), run("cpu", False)
    for a, b in zip(eager, compiled):
        assert torch.equal(a, b), "compiled and eager differ on CUDA"
    t = lambda x: np32(x.transpose(1, 2))  # noqa: E731
    a = (t(q), t(k), t(v), t(dout))
    bound = testing.attention_error_bounds(*a, causal=True, alibi_slopes=m.numpy())
    for name, g, c in zip(("out", "dq", "dk", "dv", "dslopes"), eager, cpu):
        tr = (lambda x: x) if name == "dslopes" else (lambda x: x.transpose(1, 2))
        assert_within(name, tr(g), tr(c).double().numpy(), 2 * bound[name])


# ---- learned relative biases (issue 19: Kerple, T5 buckets, FIRE) ----------------------------


def rel_bias_module(kind, H, *, bidirectional=True, fire_L=40.5):
    """A slope.relative_bias.RelativeBias with float64 parameters away from their start, inside
    the domain: test_relative_bias.drawn_bias, seed 7."""
    from test_relative_bias import drawn_bias

    return drawn_bias(kind, H, bidirectional=bidirectional, fire_L=fire_L, seed=7,
                      dtype=torch.float64)


def rel_materialised(bias, flat, Tq, Tk):
    """The (H, Tq, Tk) float64 bias of test_relative_bias.materialised (an implementation of
    the definition independent of slope's kernels and of slope._triton's tables), as a function
    of the flat parameter block (for autograd and its Jacobian)."""
    import types

    from test_relative_bias import materialised

    fields, at = {}, 0
    for name, prm in bias.named_parameters():
        fields[name] = flat[at:at + prm.numel()].view(prm.shape)
        at += prm.numel()
    shim = types.SimpleNamespace(kind=bias.kind, n_heads=bias.n_heads,
                                 num_buckets=bias.num_buckets, max_distance=bias.max_distance,
                                 bidirectional=bias.bidirectional, fire_grid=bias.fire_grid,
                                 **fields)
    return materialised(shim, Tq, Tk, torch.float64)


def check_relative(st, kind, *, B=2, H=3, Hkv=0, Tq=37, Tk=37, D=16, causal=True,
                   bidirectional=True, fire_L=40.5, softcap=0.0, window=(-1, -1), run=None,
                   bias_err=0.0, bias=None):
    """One relative-bias problem on the Triton kernels (queries at the end of the keys) against
    float64 autograd of the materialised bias: out, lse, dq, dk, dv and the bias parameters'
    gradient. Bound, first order in u with γ(n) = n·u, as dropout_gradients derives it: a score
    errs by at most (D + 2)·u·scale·Σ_d|q_d·k_d| (product, scale) + 2u·|bias| (the table's one
    rounding, the addition), so each probability errs relatively by ρ ≤ (D + Tk + 8)·u·
    (1 + max scale·Σ_d|q_d·k_d| + max |bias|) (scores, the row's normaliser, exp, lse); an
    output Σ_j c_j·w_j then errs by (ρ + (Tk + 4)·u)·Σ_j |c_j·w_j|, and each bound below is that
    absolute-value sum (float64) times c = 2(D + Tk + 16)·u·(1 + max scale·Σ|q·k| + max|bias|).
    dS_ij = P_ij·(dP_ij − D_i) takes P's error and those of dP = dO·v and D = dO·O, so its
    absolute-value sum is P·(|dO|·|v| + |dO|·|O|). The parameters' gradient is
    Σ_ij dS_ij·∂bias_ij/∂θ: its bound is c·Σ_ij |dS|_ij·|∂bias_ij/∂θ| (the kernel's per-tile
    diagonal sums have at most BLOCK_M <= Tk terms, the float64 reduction and chain rule add
    nothing at this order), with the Jacobian of the materialised bias. A softcap (scores
    softcap·tanh(x/softcap) before the bias) adds the error model's 6u to a score.
    run(q, k, v, dout, bias, params): the implementation under test (default: slope._triton's
    functions), returning out, lse, dq, dk, dv, dparams (or out, lse alone: then only those are
    checked). bias_err: a bound on the kernel's bias error beyond its one rounding (FIRE's
    in-tile interpolant past L), added to every score's error."""
    Hkv = Hkv or H
    if bias is None:  # else a given RelativeBias (float64) for H heads
        bias = rel_bias_module(kind, H, bidirectional=bidirectional, fire_L=fire_L)
    flat64 = torch.cat([prm.detach().reshape(-1) for prm in bias.parameters()])
    q, k, v = randn(B, H, Tq, D, seed=11), randn(B, Hkv, Tk, D, seed=12), randn(B, Hkv, Tk, D,
                                                                                seed=13)
    dout = randn(B, H, Tq, D, seed=14)
    if run is None:
        got = run_rel_kernels(st, q, k, v, dout, flat64.float(), bias.rel_ints(), causal,
                              softcap=softcap, window=window)
    else:
        got = run(q, k, v, dout, bias)
    want, bounds = rel_reference(bias, flat64, q, k, v, dout, causal=causal, softcap=softcap,
                                 window=window, bias_err=bias_err)
    for name, g in zip(("out", "lse", "dq", "dk", "dv", "dparams"), got):
        assert_within(f"{kind} {name}", g, want[name], bounds[name])
    if len(got) > 2:
        assert np.abs(want["dparams"]).max() > 0 and got[5].abs().max() > 0  # not empty
    return got


def rel_reference(bias, flat64, q, k, v, dout, *, causal, softcap=0.0, window=(-1, -1),
                  bias_err=0.0):
    """check_relative's float64 results and bounds (numpy dicts) of one (B, H, Tq, D) problem,
    queries at the end of the keys."""
    B, H, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    scale = float(np.float32(1 / math.sqrt(D)))
    x64 = [t.double().requires_grad_() for t in (q, k, v)]
    p64 = flat64.clone().requires_grad_()
    kk, vv = (t.repeat_interleave(H // Hkv, dim=1) for t in x64[1:])
    b64 = rel_materialised(bias, p64, Tq, Tk)
    s = x64[0] @ kk.transpose(-1, -2) * scale
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    s = s + b64
    i, j = torch.arange(Tq)[:, None] + (Tk - Tq), torch.arange(Tk)[None, :]
    if causal:
        s = s.masked_fill(j > i, -math.inf)
    if window[0] >= 0:
        s = s.masked_fill(i - j > window[0], -math.inf)
    if window[1] >= 0:
        s = s.masked_fill(j - i > window[1], -math.inf)
    # A row that sees no key (causal, Tq > Tk) gives out 0, lse −inf and no gradient: its
    # scores are replaced before the softmax so that autograd carries no NaN.
    row_live = (i >= 0) if causal else torch.ones_like(i, dtype=torch.bool)
    s = torch.where(row_live, s, 0.0)
    lse64 = torch.where(row_live[:, 0], torch.logsumexp(s, -1), -math.inf)
    P = torch.softmax(s, -1) * row_live
    o64 = P @ vv
    (o64 * dout.double()).sum().backward()
    with torch.no_grad():
        kr = k.double().repeat_interleave(H // Hkv, dim=1)
        vr = v.double().repeat_interleave(H // Hkv, dim=1)
        qk_abs = (q.double().abs() @ kr.abs().transpose(-1, -2)) * scale
        u = 2.0**-24
        c = 2 * (D + Tk + 16) * u * (1 + qk_abs.max().item() + b64.abs().max().item())
        c += 2 * bias_err
        Pd = P.detach()
        dO = dout.double().abs()
        dS_abs = Pd * (dO @ vr.abs().transpose(-1, -2) + (dO * o64.abs()).sum(-1, keepdim=True))
        J = torch.autograd.functional.jacobian(
            lambda f: rel_materialised(bias, f, Tq, Tk), flat64, vectorize=True)  # (H,Tq,Tk,P)

        def group(x):  # (B, H, T, ·) -> (B, Hkv, T, ·): the sum over a key head's group
            return x.view(B, Hkv, H // Hkv, *x.shape[2:]).sum(2)

        bounds = {
            "out": c * (Pd @ vr.abs()),
            "lse": c * (1 + lse64.abs()),
            "dv": c * group(Pd.transpose(-1, -2) @ dO),
            "dq": c * scale * (dS_abs @ kr.abs()),
            "dk": c * scale * group(dS_abs.transpose(-1, -2) @ q.double().abs()),
            "dparams": c * torch.einsum("bhij,hijp->p", dS_abs, J.abs()),
        }
    want = {"out": o64, "lse": lse64, "dq": x64[0].grad, "dk": x64[1].grad,
            "dv": x64[2].grad, "dparams": p64.grad}
    return ({n: t.detach().numpy() for n, t in want.items()},
            {n: t.numpy() for n, t in bounds.items()})


def run_rel_kernels(st, q, k, v, dout, params, rel_ints, causal, softcap=0.0, window=(-1, -1)):
    """out, lse, dq, dk, dv, dparams of the Triton kernels with a relative bias (bhtd,
    lower-right positions), moved back to the CPU."""
    dev = st.device
    ints = [int(causal), 0, window[0], window[1], 0, 0]
    floats = [float(np.float32(1 / math.sqrt(q.shape[-1]))), softcap, 0.0, 2.0**-24]
    args = tuple(t.to(dev) for t in (q, k, v)) + (None,) * 7 + ("bhtd", ints, floats)
    rel = (params.to(dev), rel_ints)
    out, lse = tri.attention_forward(*args, *rel, **st.blocks)
    dq, dk, dv, dp, _ = tri.attention_backward(dout.to(dev), *args[:3], out, lse, *args[3:], True,
                                               *rel, **st.blocks)
    return tuple(t.cpu() for t in (out, lse, dq, dk, dv, dp))


@case
def relative_kerple_log_causal(st):
    """T one tile and five rows over two 16-tiles: the last tile's rows and keys are ragged."""
    check_relative(st, "kerple-log", Tq=37, Tk=37)


@case
def relative_kerple_power_tq_lt_tk_bidirectional(st):
    check_relative(st, "kerple-power", Tq=13, Tk=40, causal=False)


@case
def relative_t5_bidirectional_gqa(st):
    """H=3 query heads sharing Hkv=1 (the dk/dv kernel loops over the group's tables)."""
    check_relative(st, "t5", Hkv=1, Tq=33, Tk=33, causal=False, bidirectional=True)


@case
def relative_t5_causal_tq_gt_tk(st):
    """T5's causal buckets; lower-right with Tq > Tk: the first rows see no key."""
    check_relative(st, "t5", Tq=40, Tk=21, causal=True, bidirectional=False)


@case
def relative_packed_documents(st):
    """Packed documents (layout thd, cu_seqlens): two documents of 19 and 30 tokens, each
    starting mid-tile, causal T5 buckets. Each document's rows against its own float64
    reference (the same bounds); the parameters' gradient against the sum of the documents'
    (and of their bounds)."""
    H, D, lens = 3, 16, [19, 30]
    bias = rel_bias_module("t5", H, bidirectional=False)
    flat64 = torch.cat([prm.detach().reshape(-1) for prm in bias.parameters()])
    total = sum(lens)
    q, k, v, dout = (randn(total, H, D, seed=s) for s in (21, 22, 23, 24))
    cu = torch.tensor([0, lens[0], total], dtype=torch.int32).to(st.device)
    ints = [1, 0, -1, -1, max(lens), max(lens)]
    floats = [float(np.float32(1 / math.sqrt(D))), 0.0, 0.0, 2.0**-24]
    dev = st.device
    args = (q.to(dev), k.to(dev), v.to(dev), None, None, None, None, cu, cu, None, "thd", ints,
            floats)
    rel = (flat64.float().to(dev), bias.rel_ints())
    out, lse = tri.attention_forward(*args, *rel, **st.blocks)
    dq, dk, dv, dp, _ = tri.attention_backward(dout.to(dev), *args[:3], out, lse, *args[3:],
                                               True, *rel, **st.blocks)
    got = {"out": out.cpu(), "lse": lse.cpu().T, "dq": dq.cpu(), "dk": dk.cpu(), "dv": dv.cpu()}
    dp_want, dp_bound, start = 0.0, 0.0, 0
    for n in lens:
        doc = [t[start:start + n].transpose(0, 1)[None] for t in (q, k, v, dout)]  # (1, H, n, D)
        want, bounds = rel_reference(bias, flat64, *doc, causal=True)
        for name in ("out", "lse", "dq", "dk", "dv"):
            g = got[name][start:start + n]
            g = g.T[None] if name == "lse" else g.transpose(0, 1)[None]
            assert_within(f"doc at {start} {name}", g, want[name], bounds[name])
        dp_want, dp_bound = dp_want + want["dparams"], dp_bound + bounds["dparams"]
        start += n
    assert_within("dparams", dp.cpu(), dp_want, dp_bound)
    assert np.abs(dp_want).max() > 0


@case
def relative_key_lengths_positions(st):
    """Decoding into a buffer (query_positions "key_lengths"): 5 queries at the end of each
    row's own 23 and 40 keys of a 40-key buffer, Kerple-power causal. Row b is the lower-right
    problem on its first key_lengths[b] keys: each row against its own float64 reference (the
    same bounds), keys past its length with zero gradients, the parameters' gradient against
    the sum of the rows' (and of their bounds)."""
    B, H, Tq, Tk, D, lens = 2, 3, 5, 40, 16, [23, 40]
    bias = rel_bias_module("kerple-power", H)
    flat64 = torch.cat([prm.detach().reshape(-1) for prm in bias.parameters()])
    q, dout = randn(B, H, Tq, D, seed=31), randn(B, H, Tq, D, seed=34)
    k, v = randn(B, H, Tk, D, seed=32), randn(B, H, Tk, D, seed=33)
    dev = st.device
    ints = [1, QP["key_lengths"], -1, -1, 0, 0]
    floats = [float(np.float32(1 / math.sqrt(D))), 0.0, 0.0, 2.0**-24]
    kl = torch.tensor(lens, dtype=torch.int32).to(dev)
    args = (q.to(dev), k.to(dev), v.to(dev), None, None, kl, None, None, None, None, "bhtd",
            ints, floats)
    rel = (flat64.float().to(dev), bias.rel_ints())
    out, lse = tri.attention_forward(*args, *rel, **st.blocks)
    dq, dk, dv, dp, _ = tri.attention_backward(dout.to(dev), *args[:3], out, lse, *args[3:],
                                               True, *rel, **st.blocks)
    got = {"out": out.cpu(), "lse": lse.cpu(), "dq": dq.cpu(), "dk": dk.cpu(), "dv": dv.cpu()}
    dp_want, dp_bound = 0.0, 0.0
    for b, n in enumerate(lens):
        row = [q[b:b + 1], k[b:b + 1, :, :n], v[b:b + 1, :, :n], dout[b:b + 1]]
        want, bounds = rel_reference(bias, flat64, *row, causal=True)
        for name in ("out", "lse", "dq", "dk", "dv"):
            g = got[name][b:b + 1]
            if name in ("dk", "dv"):
                assert torch.equal(g[:, :, n:], torch.zeros_like(g[:, :, n:])), name
                g = g[:, :, :n]
            assert_within(f"row {b} {name}", g, want[name], bounds[name])
        dp_want, dp_bound = dp_want + want["dparams"], dp_bound + bounds["dparams"]
    assert_within("dparams", dp.cpu(), dp_want, dp_bound)
    assert np.abs(dp_want).max() > 0


@case
def relative_kerple_log_softcap_window(st):
    """The bias is added after the cap, so its gradient is dS before the cap's sech² factor;
    a window of 9 keys left and 4 right cuts every tile's diagonals."""
    check_relative(st, "kerple-log", Tq=37, Tk=37, causal=False, softcap=1.5, window=(9, 4))


@case
def relative_fire_causal(st):
    """FIRE with every position (< 37) below L = 40.5: a function of the distance."""
    check_relative(st, "fire", Tq=37, Tk=37, fire_L=40.5)


def fire_interp_err(bias):
    """relative_fire_past_L's bound on the in-tile interpolant's error beyond rounding."""
    with torch.no_grad():
        N = bias.fire_grid
        nodes = torch.arange(N + 1, dtype=torch.float64) / N
        F = torch.relu(nodes[:, None] * bias.w1 + bias.b1) @ bias.w2.T + bias.b2
        dF = (F[1:] - F[:-1]).abs().max().item()
        return 2.0**-24 * (3 * N * dF + 4 * (F.abs().max().item() + dF))


@case
def relative_fire_past_L(st):
    """FIRE with rows at or past L (L = 20.5, positions up to 36): the bias depends on the row,
    and the kernels evaluate the interpolant in the tile from fp32 tables, forward and backward.
    The bias's error beyond rounding: x = min(ψ·(1/ψ_m), 1)·N takes three roundings of ψ,
    1/ψ_m and their product (N = 64 is exact), |δx| <= 3u·N, and the interpolant is continuous
    with slope N·dF_n in x/N, so |δb| <= 3u·N·max|dF| + the roundings of F_n, dF_n, t·dF_n
    and the sum, <= 4u·(max|F| + max|dF|). The gradients of c and L use ∂bias/∂u = N·dF_n,
    which jumps at cell edges: the bound holds while no score's x lies within δx of an edge
    (x is then in the same cell in the kernel as in float64), which the case checks for its
    data (nearest edge >= 10·3u·N away)."""
    bias = rel_bias_module("fire", 3, fire_L=20.5)
    T, N, u = 37, bias.fire_grid, 2.0**-24
    with torch.no_grad():
        # c = 0.8 puts ψ(5)/ψ(30) = log 5/log 25 = 1/2 on an edge exactly: another c.
        bias.c.fill_(0.77)
        err = fire_interp_err(bias)
        pos = torch.arange(T, dtype=torch.float64)[:, None]
        d = pos - torch.arange(T, dtype=torch.float64)[None, :]
        m = torch.maximum(bias.L, pos)
        x = torch.log(bias.c * d.clamp(min=0) + 1) / torch.log(bias.c * m + 1) * N
        # Scores that may sit on an edge without harm: d = 0 (x = 0 exactly in both) and
        # d = m (u = ψ(m)/ψ(m) = 1 for every c and L: ∂u/∂c = ∂u/∂L = 0 on either side).
        free = (d < 0) | (d == 0) | (d == m)
        edge = (x - x.round()).abs()[~free].min().item()
        assert edge > 10 * 3 * u * N, f"a score's x lies {edge:.2e} from a cell edge"
    check_relative(st, "fire", Tq=T, Tk=T, bias=bias, bias_err=err)


@case
def relative_cuda_kernels_are_registered(st):
    """The operators' CUDA kernels pass the relative bias to these Triton functions: bitwise
    what slope._triton gives (called on this setting's tensors)."""
    import slope._torch_ops as ops
    bias = rel_bias_module("kerple-power", 2)
    q, k, v, dout = (randn(1, 2, 20, 16, seed=s).to(st.device) for s in (1, 2, 3, 4))
    params = bias.flat().detach().to(st.device)
    args = (q, k, v, None, None, None, None, None, None, None, "bhtd", [1, 0, -1, -1, 0, 0],
            [0.25, 0.0, 0.0, 2.0**-24])
    rel = (params, bias.rel_ints())
    fwd, bwd = (f._backend_fns["cuda"] for f in (ops._attention_forward, ops._attention_backward))
    out, lse = fwd(*args, *rel)
    want = tri.attention_forward(*args, *rel)
    assert torch.equal(out, want[0]) and torch.equal(lse, want[1])
    got = bwd(dout, q, k, v, out, lse, *args[3:], True, *rel)
    want = tri.attention_backward(dout, q, k, v, out, lse, *args[3:], True, *rel)
    assert got[3].shape == params.shape and got[3].abs().max() > 0
    for a, b in zip(got, want):
        assert torch.equal(a, b)


@case
def relative_front_door_on_cuda(st):
    """slope.torch.attention(relative_bias=...) on CUDA tensors (nn.Parameters on the GPU),
    eager and under torch.compile(fullgraph=True): bitwise equal to each other, and within
    check_relative's bounds of the float64 reference."""
    if st.device != "cuda":
        raise Skip("needs a GPU (the interpreter runs the kernels, not the CUDA dispatch)")
    import copy

    import slope.torch as sto

    for kind in ("t5", "fire"):
        def run(q, k, v, dout, bias64):
            results = []
            for compile_ in (False, True):
                bias = copy.deepcopy(bias64).float().cuda()  # .float() and .cuda() act in place
                xs = [x.cuda().requires_grad_() for x in (q, k, v)]
                def f(a, b, c):
                    return sto.attention(a, b, c, causal=True, relative_bias=bias,
                                         return_lse=True)

                if compile_:
                    torch._dynamo.reset()
                    f = torch.compile(f, fullgraph=True)
                out, lse = f(*xs)
                (out * dout.cuda()).sum().backward()
                dp = torch.cat([p.grad.reshape(-1) for p in bias.parameters()])
                results.append([out.detach().cpu(), lse.cpu()] + [x.grad.cpu() for x in xs]
                               + [dp.cpu()])
            for a, b in zip(*results):
                assert torch.equal(a, b), "compiled and eager differ on CUDA"
            return results[0]

        check_relative(st, kind, run=run)


@case
def relative_through_the_operator(st):
    """slope.torch.attention(relative_bias=...) → torch.ops.slope.* → these kernels, with the
    bias's nn.Parameters: the route a GPU call takes, which runs the backward's chain rule
    inside the operator's kernel, below autograd (torch.autograd.grad records nothing there:
    found by bench/attention_gpu.py --dry-run). On the CPU the operators' "cpu" kernels are
    pointed at slope._triton for this case only (as the benchmark's dry run does), then put
    back. T5 (the distance table) and FIRE past L (in the tile), within check_relative's
    bounds."""
    import copy

    import slope._torch_ops as ops
    import slope.torch as sto

    fwd_op, bwd_op = ops._attention_forward, ops._attention_backward
    if st.device == "cpu":  # the dispatcher's CPU kernel reads _backend_fns["cpu"] per call
        fwd_op.register_kernel("cpu")(tri.attention_forward)
        bwd_op.register_kernel("cpu")(tri.attention_backward)

    def run(q, k, v, dout, bias64):
        bias = copy.deepcopy(bias64).float().to(st.device)
        xs = [x.detach().clone().to(st.device).requires_grad_() for x in (q, k, v)]
        out, lse = sto.attention(*xs, causal=True, relative_bias=bias, return_lse=True)
        (out * dout.to(st.device)).sum().backward()
        dp = torch.cat([prm.grad.reshape(-1) for prm in bias.parameters()])
        return tuple(t.detach().cpu() for t in [out, lse] + [x.grad for x in xs] + [dp])

    try:
        check_relative(st, "t5", bidirectional=False, run=run)
        fire = rel_bias_module("fire", 3, fire_L=20.5)
        with torch.no_grad():
            fire.c.fill_(0.77)  # no score on a cell edge (relative_fire_past_L)
        check_relative(st, "fire", bias=fire, run=run, bias_err=fire_interp_err(fire))
    finally:
        if st.device == "cpu":  # back to the operators' own (C++) implementation
            for op in (fwd_op, bwd_op):
                op._backend_fns["cpu"] = op._backend_fns[None]


@case
def relative_gradients_bitwise_deterministic(st):
    """The parameters' gradient is the same bits on every run (no float atomics)."""
    bias = rel_bias_module("t5", 3)
    q, k, v, dout = (randn(1, 3, 35, 16, seed=s) for s in (1, 2, 3, 4))
    a = run_rel_kernels(st, q, k, v, dout, bias.flat().detach(), bias.rel_ints(), False)
    b = run_rel_kernels(st, q, k, v, dout, bias.flat().detach(), bias.rel_ints(), False)
    assert torch.equal(a[5], b[5]) and a[5].abs().max() > 0


def main(mode):
    if mode == "interpret":
        os.environ["TRITON_INTERPRET"] = "1"
    _imports()
    st = Setting(mode)
    names = sys.argv[2:] or list(CASES)
    results = {}
    start = time.perf_counter()
    for name in names:
        print(f"[triton_cases] {name} (after {time.perf_counter() - start:.1f} s)",
              file=sys.stderr, flush=True)  # names a crash's case, and what each costs
        try:
            CASES[name](st)
            results[name] = "ok"
        except Skip as e:
            results[name] = f"skip: {e}"
        except Exception:  # reported per case by test_triton.py
            results[name] = traceback.format_exc(limit=6)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
