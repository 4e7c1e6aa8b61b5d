"""slope.torch as a PyTorch operator: the custom ops under opcheck, torch.compile, torch.export
and torch.func; bf16/fp16 within bounds derived from their epsilon; autocast; bad input. The
front doors' semantics are tested in test_torch_front_doors.py; the float64 materialisation
both check against is in torch_semantics.py.
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
from torch_semantics import (  # noqa: E402
    HALF_SUBNORMAL, UNIT_ROUNDOFF, assert_within, np32, randn)


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
    "upper_left": dict(causal=True, alibi=True, positions=1),
    "kv_cache_positions": dict(layout="bthd", causal=True, alibi=True, key_lengths=True,
                               positions=2),
}


def op_args(B=2, H=4, Hkv=0, T=19, D=8, layout="bhtd", causal=False, alibi=False, right=False,
            per_batch=False, mask=None, key_lengths=False, window=(-1, -1), softcap=0.0,
            dropout=0.0, positions=0, dtype=torch.float32):
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
    ints = [int(causal), positions, window[0], window[1], T if cu is not None else 0,
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


def test_compile_fullgraph_varlen():
    """Packed sequences compile with fullgraph too: no check in the front door reads a tensor's
    values (that would be a data-dependent graph break); the operator checks them when it runs."""
    q = randn(7, 2, 8, seed=1)
    cu = torch.tensor([0, 3, 7], dtype=torch.int32)
    torch._dynamo.reset()
    f = torch.compile(lambda q: st.flash_attn_varlen_func(q, q, q, cu, cu, 4, 4, causal=True),
                      fullgraph=True)
    torch.testing.assert_close(f(q), st.flash_attn_varlen_func(q, q, q, cu, cu, 4, 4,
                                                               causal=True), rtol=0, atol=0)


def test_refused_kvcache_append_leaves_the_cache_alone():
    q = randn(2, 1, 2, 8, seed=1)
    kc, vc = randn(2, 6, 1, 8, seed=2), randn(2, 6, 1, 8, seed=3)
    before = (kc.clone(), vc.clone())
    for kw, name in ((dict(k=randn(1, 1, 1, 8), v=randn(1, 1, 1, 8),
                           cache_seqlens=torch.tensor([3, 2])), "k"),
                     (dict(k=randn(2, 1, 1, 8), v=randn(2, 1, 1, 8),
                           cache_seqlens=torch.tensor([3, 2]), alibi_slopes=torch.ones(5)),
                      "alibi_slopes"),
                     (dict(k=randn(2, 1, 1, 8), v=randn(2, 1, 1, 8),
                           cache_seqlens=torch.tensor([3, 2**33])), "cache_seqlens")):
        with pytest.raises(ValueError, match=name):
            st.flash_attn_with_kvcache(q, kc, vc, **kw)
        assert torch.equal(kc, before[0]) and torch.equal(vc, before[1])


def test_packed_lengths_outside_int32_are_refused():
    q = randn(7, 2, 8)
    with pytest.raises(ValueError, match="cu_seqlens_q"):
        st.flash_attn_varlen_func(q, q, q, torch.tensor([0, 3 + 2**32, 7]),
                                  torch.tensor([0, 3, 7]), 4, 4)
    with pytest.raises(ValueError, match="max_seqlen"):
        st.flash_attn_varlen_func(q, q, q, torch.tensor([0, 3, 7]), torch.tensor([0, 3, 7]), 0, 4)
