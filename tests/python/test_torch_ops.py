"""slope.torch as a PyTorch operator: the custom ops under opcheck, torch.compile, torch.export
and torch.func; the SDPA and flash-attn front doors against float64 materialised versions of
exactly their documented semantics; bf16/fp16; packed sequences; the KV-cache alignment;
window, softcap and dropout; bad input.

Accuracy is checked as in test_attention_torch.py: slope's float64 reference
(slope.testing.attention_reference) must agree with an independent float64 materialisation of the
front door's semantics (written below from the PyTorch and flash-attn documentation) to
F64_RTOL, and every element of the fp32 kernel's result must lie within its rounding-error bound
(slope.testing.attention_error_bounds).
"""

import io
import math

import numpy as np
import pytest

import oracle
import slope
import slope.testing

torch = oracle.require("torch")
import slope.torch as st  # noqa: E402

# float64 against float64, the same definition in two orders (see test_attention_torch.py).
F64_RTOL = 1e-9

# Unit roundoffs (half an ulp at 1) of the storage dtypes and half their smallest subnormal:
# rounding a float32 result x to them errs by at most u·|x| + eta/2 (round to nearest; below the
# normal range the spacing is the subnormal step, an absolute error). bf16/fp16 inputs are exact
# in float32.
UNIT_ROUNDOFF = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11, torch.float32: 2.0**-24}
HALF_SUBNORMAL = {torch.bfloat16: 2.0**-134, torch.float16: 2.0**-25, torch.float32: 2.0**-150}


# ---- the semantics, materialised in float64 ---------------------------------------------------


def materialised(q, k, v, *, causal=False, positions="lower_right", slopes=None,
                 slopes_right=None, mask=None, window=(-1, -1), softcap=0.0, scale=None,
                 key_lengths=None):
    """out (B, H, Tq, Dv) and lse (B, H, Tq) in float64 from (B, H, T, D) tensors.

    score = softcap·tanh(scale·q·k / softcap) (or scale·q·k) − m·|p_i − j| + mask, with query i
    at p_i = i + offset_b: lower_right Tk − Tq, upper_left 0, key_lengths key_lengths[b] − Tq.
    Masked: j > p_i when causal; j outside [p_i − left, p_i + right] of the window; j >=
    key_lengths[b]; mask False or −inf. Fully masked rows give 0 and −inf.
    """
    q, k, v = (t.double() for t in (q, k, v))
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    group = H // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    # The problem's scale is a float32 (AttentionProblem::scale): the same rounding here.
    scale = float(np.float32(1.0 / math.sqrt(D) if scale is None else scale))
    s = q @ k.transpose(-1, -2) * scale
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    if positions == "lower_right":
        offset = torch.full((B,), Tk - Tq)
    elif positions == "upper_left":
        offset = torch.zeros(B, dtype=torch.long)
    else:
        offset = torch.as_tensor(key_lengths).long() - Tq
    pos = torch.arange(Tq)[None, :, None] + offset[:, None, None]  # (B, Tq, 1)
    j = torch.arange(Tk)[None, None, :]
    vis = torch.ones(B, 1, Tq, Tk, dtype=torch.bool)
    if causal:
        vis &= (j <= pos)[:, None]
    if window[0] >= 0:
        vis &= (j >= pos - window[0])[:, None]
    if window[1] >= 0:
        vis &= (j <= pos + window[1])[:, None]
    if key_lengths is not None:
        vis &= (j < torch.as_tensor(key_lengths)[:, None, None])[:, None]
    if slopes is not None:
        sl = torch.as_tensor(slopes).double()
        sr = sl if slopes_right is None else torch.as_tensor(slopes_right).double()
        sl = sl.expand(B, H)[:, :, None, None]
        sr = sr.expand(B, H)[:, :, None, None]
        dist = (pos - j)[:, None].double()  # (B, 1, Tq, Tk), > 0 left of the query
        s = s - torch.where(dist >= 0, sl * dist, -sr * dist)
    if mask is not None:
        if mask.dtype == torch.bool:
            vis = vis & mask
        else:
            s = s + mask.double()
            vis = vis & (mask != -math.inf)
    s = s.masked_fill(~vis, -math.inf)
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    return p @ v, lse


def assert_same_definition(name, ref, direct):
    ref, direct = np.asarray(ref, np.float64), direct.detach().double().numpy()
    finite = np.isfinite(direct)
    assert np.array_equal(finite, np.isfinite(ref)), f"{name}: masked rows differ"
    err = np.abs(ref[finite] - direct[finite]).max(initial=0.0)
    scale = np.abs(direct[finite]).max(initial=1.0)
    assert err <= F64_RTOL * scale, f"{name}: slope's reference and the semantics differ by {err}"


def assert_within(name, got, ref, bound):
    got = got.detach().double().numpy() if isinstance(got, torch.Tensor) else got
    ref, bound = np.asarray(ref), np.asarray(bound)
    finite = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got), finite), f"{name}: non-finite entries differ"
    excess = np.abs(got[finite] - ref[finite]) - bound[finite]
    worst = int(np.argmax(excess)) if excess.size else 0
    assert excess.size == 0 or excess[worst] <= 0, (
        f"{name}: |got - ref| exceeds its bound by {excess[worst]:.3e} "
        f"(bound {bound[finite][worst]:.3e})")


def np32(t):
    return np.ascontiguousarray(t.detach().float().numpy())


def check_against_reference(out, q, k, v, semantics, testing_kw):
    """out (B, H, Tq, Dv) from slope against slope's float64 reference (within the fp32 bounds)
    and the reference against the float64 materialised semantics."""
    args = (np32(q), np32(k), np32(v))
    ref = slope.testing.attention_reference(*args, **testing_kw)
    bound = slope.testing.attention_error_bounds(*args, **testing_kw)
    direct, _ = materialised(q, k, v, **semantics)
    assert_same_definition("out", ref["out"], direct)
    assert_within("out", out, ref["out"], bound["out"])


def randn(*shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(dtype)


# ---- the operators: opcheck, compile, export, func --------------------------------------------

OPCHECK_VARIANTS = {
    "plain": dict(),
    "causal_alibi": dict(causal=True, alibi=True),
    "learned_two_sided": dict(alibi=True, right=True),
    "gqa_bhtd": dict(causal=True, alibi=True, Hkv=2),
    "bthd": dict(layout="bthd", causal=True, alibi=True),
    "bf16": dict(causal=True, alibi=True, dtype=torch.bfloat16),
    "fp16": dict(alibi=True, dtype=torch.float16),
    "bool_mask": dict(mask="bool"),
    "float_mask_key_lengths": dict(mask="float", key_lengths=True),
    "per_batch_slopes": dict(alibi=True, per_batch=True),
    "window_softcap": dict(layout="bthd", causal=True, alibi=True, window=(5, 0), softcap=3.0),
    "packed": dict(layout="thd", causal=True, alibi=True),
    "dropout": dict(alibi=True, dropout=0.3),
}


def op_args(B=2, H=4, Hkv=0, T=19, D=8, layout="bhtd", causal=False, alibi=False, right=False,
            per_batch=False, mask=None, key_lengths=False, window=(-1, -1), softcap=0.0,
            dropout=0.0, dtype=torch.float32):
    Hkv = Hkv or H
    shape = {"bhtd": lambda h: (B, h, T, D), "bthd": lambda h: (B, T, h, D),
             "thd": lambda h: (B * T, h, D)}[layout]
    q, k, v = (randn(*shape(h), seed=i, dtype=dtype).requires_grad_()
               for i, h in enumerate((H, Hkv, Hkv)))
    sl = sr = None
    if alibi:
        base = torch.tensor(slope.alibi_slopes(H))
        sl = (base.expand(B, H).clone() if per_batch else base.clone()).requires_grad_()
        if right:
            sr = (sl.detach() * 0.5).requires_grad_()
    lens = torch.tensor([T, T // 2])[:B] if key_lengths else None
    m = None
    if mask == "bool":
        m = torch.rand(B, 1, T, T, generator=torch.Generator().manual_seed(3)) < 0.7
    elif mask == "float":
        m = randn(1, H, T, T, seed=4)
    cu = torch.arange(0, B * T + 1, T, dtype=torch.int32) if layout == "thd" else None
    rng = torch.tensor([1234, 5], dtype=torch.int64) if dropout else None
    ints = [int(causal), 0, window[0], window[1], T if cu is not None else 0,
            T if cu is not None else 0]
    floats = [1.0 / math.sqrt(D), softcap, dropout, 2.0**-24]
    return (q, k, v, sl, sr, lens, m, cu, cu, rng, layout, ints, floats)


@pytest.mark.parametrize("variant", sorted(OPCHECK_VARIANTS))
def test_opcheck(variant):
    args = op_args(**OPCHECK_VARIANTS[variant])
    torch.library.opcheck(torch.ops.slope.attention_forward.default, args)
    out, lse = torch.ops.slope.attention_forward(*args)
    dout = randn(*out.shape, seed=9, dtype=out.dtype)
    # The backward operator has no derivative of its own (first derivatives only): its inputs
    # are plain tensors.
    plain = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
    bwd = (dout,) + plain[:3] + (out.detach(), lse.detach()) + plain[3:] + (True,)
    torch.library.opcheck(torch.ops.slope.attention_backward.default, bwd)


class TinyAttention(torch.nn.Module):
    """One causal ALiBi self-attention with learned slopes, as a model would call it."""

    def __init__(self, H=4, D=16, front_door="flash"):
        super().__init__()
        self.front_door = front_door
        self.slopes = torch.nn.Parameter(torch.tensor(slope.alibi_slopes(H)))
        self.proj = torch.nn.Linear(H * D, 3 * H * D)
        self.H, self.D = H, D

    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = self.proj(x).view(B, T, 3, self.H, self.D).unbind(2)
        if self.front_door == "flash":
            y = st.flash_attn_func(q, k, v, causal=True, alibi_slopes=self.slopes)
        else:
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            y = st.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                alibi_slopes=self.slopes).transpose(1, 2)
        return y.reshape(B, T, -1)


def grads_of(model, x):
    model.zero_grad()
    x = x.detach().requires_grad_()
    out = model(x)
    out.square().sum().backward()
    return out.detach(), [x.grad] + [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("front_door", ["flash", "sdpa"])
def test_compile_fullgraph_equals_eager(front_door):
    torch.manual_seed(0)
    model = TinyAttention(front_door=front_door)
    x = randn(2, 37, 64, seed=1)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = torch.compile(model, fullgraph=True)
    out_c, grads_c = grads_of(compiled, x)
    assert not torch._dynamo.utils.counters["graph_break"], "graph breaks under fullgraph"
    out_e, grads_e = grads_of(model, x)
    # The same kernels on the same inputs; inductor may fuse the projections differently, so
    # compare within the fp32 rounding of those few ops rather than bitwise.
    torch.testing.assert_close(out_c, out_e, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads_c, grads_e):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_export_round_trip():
    torch.manual_seed(0)
    model = TinyAttention()
    x = randn(2, 23, 64, seed=2)
    ep = torch.export.export(model, (x,))
    assert any(n.target is torch.ops.slope.attention_forward.default for n in ep.graph.nodes)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    loaded = torch.export.load(buf)
    torch.testing.assert_close(loaded.module()(x), model(x), rtol=0, atol=0)


def test_func_grad_equals_autograd():
    q, k, v = (randn(2, 29, 4, 16, seed=i) for i in range(3))
    m = torch.tensor(slope.alibi_slopes(4))

    def loss(q, k, m):
        return st.flash_attn_func(q, k, v, causal=True, alibi_slopes=m).square().sum()

    gq, gk, gm = torch.func.grad(loss, argnums=(0, 1, 2))(q, k, m)
    q2, k2, m2 = (t.clone().requires_grad_() for t in (q, k, m))
    loss(q2, k2, m2).backward()
    for a, b in zip((gq, gk, gm), (q2.grad, k2.grad, m2.grad)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---- front doors against their semantics ------------------------------------------------------

SDPA_CASES = {
    "plain": dict(),
    "causal": dict(is_causal=True),
    "causal_alibi": dict(is_causal=True, alibi=True),
    "causal_tq_lt_tk": dict(is_causal=True, alibi=True, Tq=13, Tk=40),  # upper-left
    "causal_tq_gt_tk": dict(is_causal=True, Tq=40, Tk=13),
    "bool_mask_alibi": dict(mask="bool", alibi=True),
    "float_mask": dict(mask="float"),
    "gqa": dict(is_causal=True, alibi=True, Hkv=2, enable_gqa=True),
    "three_d": dict(three_d=True, is_causal=True, alibi=True),
    "scale": dict(scale=0.11, alibi=True),
}


@pytest.mark.parametrize("name", sorted(SDPA_CASES))
def test_sdpa_front_door(name, isa):
    c = dict(B=2, H=4, Hkv=0, Tq=37, Tk=37, D=16, is_causal=False, alibi=False, mask=None,
             enable_gqa=False, three_d=False, scale=None)
    c.update(SDPA_CASES[name])
    B, H, Tq, Tk, D = c["B"], c["H"], c["Tq"], c["Tk"], c["D"]
    Hkv = c["Hkv"] or H
    q, k, v = randn(B, H, Tq, D, seed=1), randn(B, Hkv, Tk, D, seed=2), randn(B, Hkv, Tk, D, seed=3)
    m = torch.tensor(slope.alibi_slopes(H)) if c["alibi"] else None
    mask = None
    if c["mask"] == "bool":
        mask = torch.rand(B, 1, Tq, Tk, generator=torch.Generator().manual_seed(4)) < 0.7
    elif c["mask"] == "float":
        mask = randn(1, H, Tq, Tk, seed=5)
    kw = dict(attn_mask=mask, is_causal=c["is_causal"], scale=c["scale"],
              enable_gqa=c["enable_gqa"], alibi_slopes=m)
    if c["three_d"]:
        out = st.scaled_dot_product_attention(q[0], k[0], v[0], **kw)
        assert out.shape == (H, Tq, D)
        out, q, k, v = out[None], q[:1], k[:1], v[:1]
    else:
        out = st.scaled_dot_product_attention(q, k, v, **kw)
    assert out.dtype == torch.float32 and out.shape == q.shape
    if m is None and mask is None and Hkv == H:  # SDPA itself computes the same function
        ref = torch.nn.functional.scaled_dot_product_attention(
            q.double(), k.double(), v.double(), is_causal=c["is_causal"], scale=c["scale"])
        if not (c["is_causal"] and Tq > Tk):  # SDPA gives NaN rows where slope gives zeros
            torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    semantics = dict(causal=c["is_causal"], positions="upper_left", slopes=m, scale=c["scale"],
                     mask=None if mask is None else mask)
    testing_kw = dict(causal=c["is_causal"], query_positions="upper_left", scale=c["scale"],
                      alibi_slopes=None if m is None else m.numpy(),
                      attn_mask=None if mask is None else np.asarray(mask.numpy()))
    check_against_reference(out, q, k, v, semantics, testing_kw)


FLASH_CASES = {
    "causal_alibi": dict(causal=True, alibi=True),
    "symmetric_alibi": dict(alibi=True),
    "per_batch_slopes": dict(causal=True, alibi="per_batch"),
    "tq_lt_tk": dict(causal=True, alibi=True, Tq=11, Tk=70),  # bottom-right
    "window": dict(causal=True, alibi=True, window=(9, 0)),
    "window_two_sided": dict(alibi=True, window=(7, 3), Tq=50, Tk=80),
    "softcap": dict(causal=True, alibi=True, softcap=2.5, big=True),
    "gqa_softcap_window": dict(Hkv=2, causal=True, alibi=True, softcap=5.0, window=(20, 0)),
    "negative_slopes": dict(causal=True, alibi="negative", Tq=150, Tk=150),
}


@pytest.mark.parametrize("name", sorted(FLASH_CASES))
def test_flash_attn_func_front_door(name, isa):
    c = dict(B=2, H=4, Hkv=0, Tq=45, Tk=45, D=16, causal=False, alibi=False, window=(-1, -1),
             softcap=0.0, big=False)
    c.update(FLASH_CASES[name])
    B, H, Tq, Tk, D = c["B"], c["H"], c["Tq"], c["Tk"], c["D"]
    Hkv = c["Hkv"] or H
    s = 4.0 if c["big"] else 1.0  # large scores so that softcap bites
    q, k, v = (randn(B, Tq, H, D, seed=1) * s, randn(B, Tk, Hkv, D, seed=2) * s,
               randn(B, Tk, Hkv, D, seed=3))
    m = None
    if c["alibi"] is True:
        m = torch.tensor(slope.alibi_slopes(H))
    elif c["alibi"] == "per_batch":
        m = torch.stack([torch.tensor(slope.alibi_slopes(H)), torch.tensor(slope.alibi_slopes(H, 4.0))])
    elif c["alibi"] == "negative":  # a learned slope pushed below zero by the optimiser
        m = torch.tensor([0.5, -0.01, 0.02, -0.003])
    out = st.flash_attn_func(q, k, v, causal=c["causal"], window_size=c["window"],
                             softcap=c["softcap"], alibi_slopes=m)
    assert out.shape == (B, Tq, H, D)
    t = lambda x: x.transpose(1, 2)  # noqa: E731
    semantics = dict(causal=c["causal"], slopes=m, window=c["window"], softcap=c["softcap"])
    testing_kw = dict(causal=c["causal"], alibi_slopes=None if m is None else m.numpy(),
                      window_size=c["window"], softcap=c["softcap"])
    check_against_reference(t(out), t(q), t(k), t(v), semantics, testing_kw)


def test_flash_attn_func_gradients_match_reference(isa):
    B, T, H, D = 2, 53, 4, 16
    q, k, v = (randn(B, T, H, D, seed=i).requires_grad_() for i in range(3))
    m = torch.nn.Parameter(torch.tensor(slope.alibi_slopes(H)))
    kw = dict(causal=True, window_size=(17, 0), softcap=3.0)
    out = st.flash_attn_func(q, k, v, alibi_slopes=m, **kw)
    dout = randn(*out.shape, seed=7)
    (out * dout).sum().backward()
    t = lambda x: np32(x.transpose(1, 2))  # noqa: E731
    testing_kw = dict(causal=True, alibi_slopes=m.detach().numpy(), window_size=(17, 0),
                      softcap=3.0)
    args = (t(q), t(k), t(v), t(dout))
    ref = slope.testing.attention_reference(*args, **testing_kw)
    bound = slope.testing.attention_error_bounds(*args, **testing_kw)
    # The semantics' own gradients, by autograd through the float64 materialisation.
    q64, k64, v64, m64 = (x.detach().double().requires_grad_() for x in (q, k, v, m))
    o64, _ = materialised(q64.transpose(1, 2), k64.transpose(1, 2), v64.transpose(1, 2),
                          causal=True, slopes=m64, window=(17, 0), softcap=3.0)
    (o64 * dout.double().transpose(1, 2)).sum().backward()
    for name, got, direct in (("dq", q.grad, q64.grad), ("dk", k.grad, k64.grad),
                              ("dv", v.grad, v64.grad)):
        assert_same_definition(name, ref[name], direct.transpose(1, 2))
        assert_within(name, got.transpose(1, 2), ref[name], bound[name])
    assert_same_definition("dslopes", ref["dslopes"], m64.grad)
    assert_within("dslopes", m.grad, ref["dslopes"], bound["dslopes"])


# ---- packed sequences and the KV cache --------------------------------------------------------


def test_varlen_equals_each_document_alone(isa):
    """8 packed documents of awkward lengths give what each document gives alone (fp32, 1e-6
    relative: the issue's target), forward and backward."""
    H, D = 4, 16
    lens_q = [1, 63, 64, 65, 200, 7, 0, 31]
    lens_k = [1, 63, 64, 65, 200, 7, 5, 40]  # the last two: more keys than queries
    cu_q = torch.tensor([0] + list(np.cumsum(lens_q)), dtype=torch.int32)
    cu_k = torch.tensor([0] + list(np.cumsum(lens_k)), dtype=torch.int32)
    q = randn(int(cu_q[-1]), H, D, seed=1).requires_grad_()
    k = randn(int(cu_k[-1]), H, D, seed=2).requires_grad_()
    v = randn(int(cu_k[-1]), H, D, seed=3).requires_grad_()
    m = torch.nn.Parameter(torch.tensor(slope.alibi_slopes(H)))
    out, lse, _ = st.flash_attn_varlen_func(q, k, v, cu_q, cu_k, max(lens_q), max(lens_k),
                                            causal=True, alibi_slopes=m, return_attn_probs=True)
    assert out.shape == q.shape and lse.shape == (H, q.shape[0])
    dout = randn(*out.shape, seed=4)
    (out * dout).sum().backward()
    dm_total = torch.zeros(H)
    for b in range(len(lens_q)):
        qs, ks = slice(int(cu_q[b]), int(cu_q[b + 1])), slice(int(cu_k[b]), int(cu_k[b + 1]))
        if lens_q[b] == 0:
            continue
        qb, kb, vb = (x.detach()[s][None].requires_grad_() for x, s in ((q, qs), (k, ks), (v, ks)))
        mb = m.detach().clone().requires_grad_()
        ob, lb, _ = st.flash_attn_func(qb, kb, vb, causal=True, alibi_slopes=mb,
                                       return_attn_probs=True)
        (ob * dout[qs][None]).sum().backward()
        dm_total += mb.grad
        for name, packed, alone in (("out", out[qs], ob[0]), ("lse", lse[:, qs], lb[0]),
                                    ("dq", q.grad[qs], qb.grad[0]), ("dk", k.grad[ks], kb.grad[0]),
                                    ("dv", v.grad[ks], vb.grad[0])):
            a, p = alone.detach().double(), packed.detach().double()
            err = (a - p).abs().max().item()
            assert err <= 1e-6 * max(a.abs().max().item(), 1e-30), f"doc {b} {name}: {err:.3e}"
    err = (m.grad - dm_total).abs().max().item()
    assert err <= 1e-6 * dm_total.abs().max().item(), f"dslopes: {err:.3e}"


def test_kvcache_buffer_length_never_changes_the_result(isa):
    """New queries sit at the end of each row's own keys (cache_seqlens), not of the buffer: the
    same keys in buffers of 64 and 32,768 slots give the same result, and that result is the
    one on the sliced buffer."""
    H, D = 12, 16
    m = torch.tensor(slope.alibi_slopes(H))
    lens = torch.tensor([13, 300], dtype=torch.int32)
    n_new = 3
    keys = randn(2, 300, H, D, seed=1)
    vals = randn(2, 300, H, D, seed=2)
    q = randn(2, n_new, H, D, seed=3)
    outs = []
    for S in (320, 32768):
        kc = torch.zeros(2, S, H, D)
        vc = torch.zeros(2, S, H, D)
        kc[:, :300], vc[:, :300] = keys, vals
        outs.append(st.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=lens, causal=True,
                                               alibi_slopes=m))
    for b in range(2):
        n = int(lens[b])
        alone = st.flash_attn_func(q[b:b + 1], keys[b:b + 1, :n], vals[b:b + 1, :n], causal=True,
                                   alibi_slopes=m)
        for o in outs:
            torch.testing.assert_close(o[b:b + 1], alone, rtol=0, atol=0)
        # and the sliced buffer is the documented semantics
        t = lambda x: x.transpose(1, 2)  # noqa: E731
        check_against_reference(t(alone), t(q[b:b + 1]), t(keys[b:b + 1, :n]),
                                t(vals[b:b + 1, :n]), dict(causal=True, slopes=m),
                                dict(causal=True, alibi_slopes=m.numpy()))


def test_kvcache_appends_new_keys_in_place():
    H, D, S = 2, 8, 32
    kc, vc = torch.zeros(2, S, H, D), torch.zeros(2, S, H, D)
    k_new, v_new = randn(2, 2, H, D, seed=1), randn(2, 2, H, D, seed=2)
    q = randn(2, 2, H, D, seed=3)
    lens = torch.tensor([4, 9], dtype=torch.int32)
    out = st.flash_attn_with_kvcache(q, kc, vc, k=k_new, v=v_new, cache_seqlens=lens, causal=True)
    assert torch.equal(kc[0, 4:6], k_new[0]) and torch.equal(vc[1, 9:11], v_new[1])
    alone = st.flash_attn_func(q[1:], kc[1:, :11], vc[1:, :11], causal=True)
    torch.testing.assert_close(out[1:], alone, rtol=0, atol=0)


# ---- dtypes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_within_derived_bounds(dtype, isa):
    """bf16/fp16 inputs are exact in float32, so the kernel's float32 result errs by the fp32
    bound; rounding it to `dtype` adds u·|x| + eta/2. The backward reads the forward's output in
    `dtype` (as flash-attn saves it), which moves D_i = Σ_d dO_id·O_id by at most
    δD_i = Σ_d |dO_id|·(u·|O_id| + eta/2), and that enters dq_i as scale·δD_i·Σ_j P_ij·|k_j| and
    dk_j as scale·Σ_i P_ij·δD_i·|q_i| (dS_ij = P_ij·(dP_ij − D_i)); dv does not read D."""
    u, eta2 = UNIT_ROUNDOFF[dtype], HALF_SUBNORMAL[dtype]
    B, T, H, D = 2, 45, 4, 16
    q, k, v = (randn(B, T, H, D, seed=i, dtype=dtype).requires_grad_() for i in range(3))
    m = torch.tensor(slope.alibi_slopes(H))
    out = st.flash_attn_func(q, k, v, causal=True, alibi_slopes=m)
    assert out.dtype == dtype
    dout = randn(B, T, H, D, seed=5, dtype=dtype)
    (out.float() * dout.float()).sum().backward()
    assert q.grad.dtype == dtype
    t = lambda x: np32(x.transpose(1, 2))  # noqa: E731
    kw = dict(causal=True, alibi_slopes=m.numpy())
    args = (t(q), t(k), t(v), t(dout))
    ref = slope.testing.attention_reference(*args, **kw)
    bound = slope.testing.attention_error_bounds(*args, **kw)
    assert_within("out", t(out), ref["out"], bound["out"] + u * np.abs(ref["out"]) + eta2)
    # δD and its way into dq and dk, from the float64 probabilities
    qd, kd = (torch.from_numpy(a).double() for a in args[:2])
    scale = 1.0 / math.sqrt(D)
    s = qd @ kd.transpose(-1, -2) * scale
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    s = s - torch.from_numpy(m.numpy()).double()[:, None, None] * (i - j).abs()
    p = torch.softmax(s.masked_fill(j > i, -math.inf), -1)
    dD = (torch.from_numpy(args[3]).double().abs()
          * (u * torch.from_numpy(ref["out"]).abs() + eta2)).sum(-1)
    extra_dq = scale * dD[..., None] * (p @ kd.abs())
    extra_dk = scale * (p * dD[..., None]).transpose(-1, -2) @ qd.abs()
    for name, g, extra in (("dq", q.grad, extra_dq.numpy()), ("dk", k.grad, extra_dk.numpy()),
                           ("dv", v.grad, 0.0)):
        r = ref[name]
        assert_within(name, t(g), r, bound[name] + extra + u * np.abs(r) + eta2)


def test_autocast_bf16():
    torch.manual_seed(0)
    model = TinyAttention()
    x = randn(2, 21, 64, seed=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert model.slopes.grad is not None and model.slopes.grad.dtype == torch.float32


# ---- dropout ----------------------------------------------------------------------------------


def dropout_probe(p, seed, causal=True, H=2, T=40):
    """With v = identity (Dv = Tk), out = (Z ∘ P)/(1 − p): the kept mask and the probabilities
    are visible in the output."""
    q, k = randn(1, T, H, 8, seed=1), randn(1, T, H, 8, seed=2)
    v = torch.eye(T).expand(1, H, T, T).transpose(1, 2).contiguous()  # (1, T, H, T)
    m = torch.tensor(slope.alibi_slopes(H))
    torch.manual_seed(seed)
    out = st.flash_attn_func(q, k, v, dropout_p=p, causal=causal, alibi_slopes=m)
    ref, _ = materialised(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=causal,
                          slopes=m)
    return out.transpose(1, 2).double(), ref  # (1, H, T, T): out_ij and P_ij


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keeps_scaled_probabilities(p, isa):
    out, P = dropout_probe(p, seed=11)
    kept = out != 0
    # Kept entries are P/(1 − p) within the fp32 forward's error (P ≤ 1, a 40-key row).
    err = (out[kept] - P[kept] / (1 - p)).abs().max().item()
    assert err <= 1e-5 / (1 - p), err
    visible = P > 0
    assert not kept[~visible].any()
    # The kept fraction among visible entries: Binomial(n, 1 − p); Hoeffding: the fraction
    # deviates by more than t with probability <= 2·exp(−2·n·t²); t = sqrt(ln(2e9)/(2n)) makes
    # that 1e-9.
    n = int(visible.sum())
    t = math.sqrt(math.log(2e9) / (2 * n))
    frac = kept[visible].double().mean().item()
    assert abs(frac - (1 - p)) <= t, (frac, 1 - p, t)


def test_dropout_is_reproducible_and_seeded():
    a, _ = dropout_probe(0.5, seed=3)
    b, _ = dropout_probe(0.5, seed=3)
    c, _ = dropout_probe(0.5, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a != 0, c != 0)


def test_dropout_backward_uses_the_same_mask(isa):
    """The gradient with dropout equals the float64 gradient of the materialised semantics with
    the mask the forward used (read back from an identity probe with the same seed)."""
    p, T, H, D = 0.3, 40, 2, 8
    q, k = randn(1, T, H, D, seed=1), randn(1, T, H, D, seed=2)
    m = torch.tensor(slope.alibi_slopes(H))
    eye = torch.eye(T).expand(1, H, T, T).transpose(1, 2).contiguous()
    torch.manual_seed(21)
    probe = st.flash_attn_func(q, k, eye, dropout_p=p, causal=True, alibi_slopes=m)
    Z = (probe.transpose(1, 2) != 0).double()  # (1, H, T, T)
    v = randn(1, T, H, T, seed=3).requires_grad_()
    qg, kg = q.clone().requires_grad_(), k.clone().requires_grad_()
    torch.manual_seed(21)  # the same seed: the same mask (it does not depend on v)
    out = st.flash_attn_func(qg, kg, v, dropout_p=p, causal=True, alibi_slopes=m)
    dout = randn(*out.shape, seed=4)
    (out * dout).sum().backward()
    q64, k64, v64 = (x.detach().double().transpose(1, 2).requires_grad_() for x in (q, k, v))
    s = q64 @ k64.transpose(-1, -2) / math.sqrt(D)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    s = s - m.double()[:, None, None] * (i - j).abs()
    P = torch.softmax(s.masked_fill(j > i, -math.inf), -1)
    o64 = (P * Z / (1 - p)) @ v64
    (o64 * dout.double().transpose(1, 2)).sum().backward()
    for name, got, want in (("dq", qg.grad, q64.grad), ("dk", kg.grad, k64.grad),
                            ("dv", v.grad, v64.grad)):
        got = got.transpose(1, 2).double()
        err = (got - want).abs().max().item()
        # fp32 over 40-key rows of O(1) terms: a few hundred ulps of the largest gradient
        assert err <= 1e-4 * want.abs().max().item(), f"{name}: {err:.3e}"


# ---- bad input --------------------------------------------------------------------------------


def test_bad_input_names_the_argument():
    q = randn(1, 5, 2, 8)
    cases = [
        ("q", lambda: st.flash_attn_func(q.double(), q, q)),
        ("k", lambda: st.flash_attn_func(q, q.half(), q)),
        ("q", lambda: st.flash_attn_func(q[0], q, q)),
        ("window_size", lambda: st.flash_attn_func(q, q, q, window_size=(-2, 0))),
        ("window_size", lambda: st.flash_attn_func(q, q, q, window_size=3)),
        ("softcap", lambda: st.flash_attn_func(q, q, q, softcap=-1.0)),
        ("dropout_p", lambda: st.flash_attn_func(q, q, q, dropout_p=1.0)),
        ("alibi_slopes", lambda: st.flash_attn_func(q, q, q, alibi_slopes=torch.ones(3))),
        ("alibi_slopes", lambda: st.flash_attn_func(q, q, q, alibi_slopes=torch.tensor(
            [0.5, float("nan")]))),
        ("attn_mask", lambda: st.scaled_dot_product_attention(
            q, q, q, attn_mask=torch.ones(5, 5, dtype=torch.bool), is_causal=True)),
        ("enable_gqa", lambda: st.scaled_dot_product_attention(
            randn(1, 4, 5, 8), randn(1, 2, 5, 8), randn(1, 2, 5, 8))),
        ("cu_seqlens_q", lambda: st.flash_attn_varlen_func(
            q[0], q[0], q[0], torch.tensor([0, 3], dtype=torch.int32),
            torch.tensor([0, 5], dtype=torch.int32), 3, 5)),
        ("cu_seqlens", lambda: st.flash_attn_varlen_func(
            q[0], q[0], q[0], torch.tensor([0, 5], dtype=torch.int32), None, 5, 5)),
        ("cache_seqlens", lambda: st.flash_attn_with_kvcache(
            q, q, q, cache_seqlens=torch.tensor([9]))),
    ]
    for name, call in cases:
        with pytest.raises(ValueError, match=name):
            call()
