"""slope against PyTorch, the outside oracle, and against its own error model.

Every variant is checked twice on the same float32 inputs:
- semantics: torch's scaled_dot_product_attention in float64, with the bias materialised as a
  (B, H, Tq, Tk) tensor (-inf where masked) and autograd for every gradient, agrees with slope's
  float64 reference (slope.testing.attention_reference) to F64_RTOL: both compute the same
  definition in float64, so only float64 rounding separates them, on every machine;
- accuracy: every element of slope's fp32 kernel output and gradients lies within its
  rounding-error bound from slope.testing.attention_error_bounds (the model is stated in
  include/slope/attention.h), computed in float64 from the input itself, so the bound does not
  move with the machine or with torch's own float32 kernels.
Rows with no visible key are checked separately (slope: output 0, lse -inf, zero gradients); the
oracle zeroes them instead of producing NaN.

The kernel tests run under every instruction set the machine has: conftest.py runs each test of
this file once per SLOPE_ISA it supports (fixture `isa`).
"""

import dataclasses
import math

import numpy as np
import pytest

import oracle
import slope
import slope.testing

torch = oracle.require("torch")
import slope.torch  # noqa: E402

F = torch.nn.functional

# float64 against float64: the same definition evaluated in two orders. Each side errs by a few
# float64 ulps times the sum of |terms| (~1e-13 relative here); 1e-9 leaves room for that and
# still catches any difference of definition (a bias off by one position moves results by ~1e-3).
F64_RTOL = 1e-9

pytestmark = pytest.mark.usefixtures("isa")


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    B: int = 2
    H: int = 4
    Hkv: int = 0  # 0: = H
    Tq: int = 37
    Tk: int = 0  # 0: = Tq
    D: int = 32
    Dv: int = 0  # 0: = D
    causal: bool = False
    slopes: str = "none"  # none | alibi (one shared vector) | nonsym | learned (left != right)
    key_lengths: tuple = ()
    mask: str = "none"  # none | bool | float
    scale: float = None

    @property
    def hkv(self):
        return self.Hkv or self.H

    @property
    def tk(self):
        return self.Tk or self.Tq

    @property
    def dv(self):
        return self.Dv or self.D


CASES = [
    Case("no_bias"),
    Case("causal", causal=True),
    Case("alibi_causal", H=12, Tq=77, causal=True, slopes="alibi"),
    Case("alibi_symmetric", H=8, Tq=65, slopes="alibi"),
    Case("nonsymmetric", H=8, Tq=64, slopes="nonsym"),
    Case("learned", H=4, Tq=50, D=24, Dv=40, slopes="learned", scale=0.3),
    Case("learned_causal", H=6, Tq=45, causal=True, slopes="learned"),
    Case("gqa", H=8, Hkv=2, Tq=47, D=16, causal=True, slopes="alibi"),
    Case("tq_lt_tk_causal", B=1, H=4, Tq=113, Tk=203, D=32, causal=True, slopes="alibi"),
    Case("tq_lt_tk_learned", B=1, H=4, Tq=113, Tk=203, D=32, slopes="learned"),
    Case("decode_1x239", B=2, H=4, Tq=1, Tk=239, D=64, causal=True, slopes="alibi"),
    Case("key_lengths", B=3, H=4, Tq=40, slopes="alibi", key_lengths=(0, 17, 40)),
    Case("key_lengths_causal", B=2, H=4, Tq=30, Tk=50, causal=True, slopes="learned",
         key_lengths=(5, 0)),
    Case("bool_mask", B=2, H=4, Tq=33, Tk=41, slopes="alibi", mask="bool"),
    Case("float_mask", B=2, H=4, Tq=33, causal=True, slopes="learned", mask="float"),
]


def make_inputs(case, seed=0):
    """float32 numpy inputs of a case (q, k, v, dout, slopes, key lengths, mask)."""
    rng = np.random.default_rng(seed)
    B, H, Hkv, Tq, Tk, D, Dv = case.B, case.H, case.hkv, case.Tq, case.tk, case.D, case.dv
    f32 = np.float32
    x = dict(
        q=rng.standard_normal((B, H, Tq, D), dtype=f32),
        k=rng.standard_normal((B, Hkv, Tk, D), dtype=f32),
        v=rng.standard_normal((B, Hkv, Tk, Dv), dtype=f32),
        dout=rng.standard_normal((B, H, Tq, Dv), dtype=f32),
        left=None, right=None, key_lengths=None, mask=None,
    )
    if case.slopes == "alibi":
        x["left"] = slope.alibi_slopes(H)
    elif case.slopes == "nonsym":
        x["left"], x["right"] = slope.alibi_slopes_nonsymmetric(H)
    elif case.slopes == "learned":  # sigmoid(theta), theta ~ N(-2, 1), one vector per side
        sig = lambda t: 1.0 / (1.0 + np.exp(-t))  # noqa: E731
        x["left"] = sig(rng.normal(-2.0, 1.0, H)).astype(f32)
        x["right"] = sig(rng.normal(-2.0, 1.0, H)).astype(f32)
    if case.key_lengths:
        x["key_lengths"] = np.array(case.key_lengths, dtype=np.int64)
    if case.mask == "bool":  # (B, 1, Tq, Tk), about 70% True, one row fully False
        m = rng.random((B, 1, Tq, Tk)) < 0.7
        m[1, 0, 3, :] = False
        x["mask"] = m
    elif case.mask == "float":  # (1, H, Tq, Tk) additive, 10% -inf, one row fully -inf
        m = rng.standard_normal((1, H, Tq, Tk), dtype=f32)
        m[rng.random(m.shape) < 0.1] = -np.inf
        m[0, 2, 5, :] = -np.inf
        x["mask"] = m
    return x


def slope_kwargs(case, x):
    return dict(causal=case.causal, scale=case.scale, alibi_slopes=x["left"],
                alibi_slopes_right=x["right"], key_lengths=x["key_lengths"],
                attn_mask=x["mask"])


# ---- the oracle: torch with the bias materialised ------------------------------------------


def materialised_bias(case, m_left, m_right, key_lengths, mask, dtype):
    """(B or 1, H or 1, Tq, Tk) bias with -inf where masked; differentiable in the slopes.

    Query i sits at p_i = i + Tk - Tq; bias = -m_left*(p_i - j) left of it, -m_right*(j - p_i)
    right of it, 0 on the diagonal; a slope of +inf masks its side.
    """
    Tq, Tk, H = case.Tq, case.tk, case.H
    pos = torch.arange(Tq, dtype=dtype) + (Tk - Tq)
    j = torch.arange(Tk, dtype=dtype)
    d = (pos[:, None] - j[None, :])[None, None]  # (1, 1, Tq, Tk): p_i - j, > 0 left of i
    bias = torch.zeros(1, 1, Tq, Tk, dtype=dtype)
    masked = torch.zeros(1, 1, Tq, Tk, dtype=torch.bool)
    if case.causal:
        masked = masked | (d < 0)
    if m_left is not None:
        ml = m_left.view(1, H, 1, 1)
        mr = (m_right if m_right is not None else m_left).view(1, H, 1, 1)
        inf_l, inf_r = torch.isinf(ml), torch.isinf(mr)
        ml = torch.where(inf_l, torch.zeros_like(ml), ml)
        mr = torch.where(inf_r, torch.zeros_like(mr), mr)
        bias = bias + torch.where(d > 0, -ml * d, 0.0) + torch.where(d < 0, mr * d, 0.0)
        masked = masked | ((d > 0) & inf_l) | ((d < 0) & inf_r)
    if key_lengths is not None:
        kl = torch.as_tensor(key_lengths).view(-1, 1, 1, 1)
        masked = masked | (j.view(1, 1, 1, Tk) >= kl)
    if mask is not None:
        mt = torch.from_numpy(mask)
        if mt.dtype == torch.bool:
            masked = masked | ~mt  # torch SDPA semantics: True = takes part
        else:
            bias = bias + mt.to(dtype)
            masked = masked | torch.isneginf(mt)
    return torch.where(masked, torch.tensor(-math.inf, dtype=dtype), bias)


def f32_scale(case):
    """The scale slope computes with: the problem holds it as float32 (1/sqrt(D) by default)."""
    return float(np.float32(case.scale if case.scale is not None else 1.0 / math.sqrt(case.D)))


def torch_attention(q, k, v, bias, scale):
    """SDPA with a materialised bias; rows with no visible key give 0 instead of NaN."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    dead = torch.isneginf(bias).all(-1, keepdim=True)
    safe = torch.where(dead, torch.zeros((), dtype=bias.dtype), bias)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=scale)
    return torch.where(dead, torch.zeros((), dtype=out.dtype), out)


def torch_lse(q, k, bias, scale):
    g = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(g, 1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return torch.logsumexp(q @ k.transpose(-1, -2) * scale + bias, dim=-1)


def oracle_forward(case, x, dtype):
    t = lambda a: torch.from_numpy(a).to(dtype)  # noqa: E731
    sl = None if x["left"] is None else t(x["left"])
    sr = None if x["right"] is None else t(x["right"])
    bias = materialised_bias(case, sl, sr, x["key_lengths"], x["mask"], dtype)
    q, k, v = t(x["q"]), t(x["k"]), t(x["v"])
    out = torch_attention(q, k, v, bias, f32_scale(case))
    lse = torch_lse(q, k, bias, f32_scale(case))
    dead = torch.isneginf(bias).all(-1).expand(case.B, case.H, case.Tq)
    return out, lse, dead


def oracle_grads(case, x, dtype):
    """Gradients of sum(out * dout) by torch autograd, slopes included (as leaves)."""
    leaf = lambda a: torch.from_numpy(a).to(dtype).requires_grad_(True)  # noqa: E731
    q, k, v = leaf(x["q"]), leaf(x["k"]), leaf(x["v"])
    sl = None if x["left"] is None else leaf(x["left"])
    sr = None if x["right"] is None else leaf(x["right"])
    bias = materialised_bias(case, sl, sr, x["key_lengths"], x["mask"], dtype)
    out = torch_attention(q, k, v, bias, f32_scale(case))
    (out * torch.from_numpy(x["dout"]).to(dtype)).sum().backward()
    return {"dq": q.grad, "dk": k.grad, "dv": v.grad,
            "dslopes": None if sl is None else sl.grad,
            "dslopes_right": None if sr is None else sr.grad}


def as_np(a):
    return a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def assert_same_definition(what, ref64, oracle64):
    """slope's float64 reference against torch's float64 (non-finite values must match)."""
    a, b = as_np(ref64).astype(np.float64), as_np(oracle64).astype(np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    scale = np.max(np.abs(b[np.isfinite(b)]), initial=0.0)
    np.testing.assert_allclose(a, b, rtol=F64_RTOL, atol=F64_RTOL * scale, err_msg=what)


def assert_within_bounds(what, got, ref64, bound):
    """Every element of slope's fp32 result within its error bound of the float64 reference."""
    got, ref64 = as_np(got).astype(np.float64), as_np(ref64)
    assert got.shape == ref64.shape == bound.shape, what
    finite = np.isfinite(ref64)
    assert np.array_equal(got[~finite], ref64[~finite]), f"{what}: non-finite values differ"
    err = np.abs(got[finite] - ref64[finite])
    b = bound[finite]
    ratio = np.divide(err, b, out=np.where(err > 0, np.inf, 0.0), where=b > 0)
    worst = int(np.argmax(ratio)) if ratio.size else 0
    assert ratio.size == 0 or ratio[worst] <= 1.0, (
        f"{what}: error {err[worst]:.3e} > bound {b[worst]:.3e} (element {worst} of the finite "
        f"ones; slope {got[finite][worst]!r}, float64 {ref64[finite][worst]!r})")


# ---- forward ---------------------------------------------------------------------------------


def reference_and_bounds(case, x, with_grads):
    """slope's float64 reference and fp32 error bounds of a case (dicts, slope.testing)."""
    kw = slope_kwargs(case, x)
    dout = x["dout"] if with_grads else None
    ref = slope.testing.attention_reference(x["q"], x["k"], x["v"], dout, **kw)
    bound = slope.testing.attention_error_bounds(x["q"], x["k"], x["v"], dout, **kw)
    return ref, bound


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_forward_matches_torch(case):
    x = make_inputs(case)
    out, lse = slope.attention(x["q"], x["k"], x["v"], return_lse=True, **slope_kwargs(case, x))
    assert out.shape == (case.B, case.H, case.Tq, case.dv) and out.dtype == np.float32
    assert lse.shape == (case.B, case.H, case.Tq) and lse.dtype == np.float32
    ref, bound = reference_and_bounds(case, x, with_grads=False)
    oracle_out, oracle_lse, dead = oracle_forward(case, x, torch.float64)
    assert_same_definition("out", ref["out"], oracle_out)
    assert_same_definition("lse", ref["lse"], oracle_lse)
    assert_within_bounds("out", out, ref["out"], bound["out"])
    assert_within_bounds("lse", lse, ref["lse"], bound["lse"])
    # Rows with no visible key: output exactly 0 and lse -inf, never NaN.
    dead_np = dead.numpy()
    assert np.all(out[dead_np] == 0.0)
    assert np.all(np.isneginf(lse[dead_np]))
    assert np.all(np.isfinite(out)) and not np.any(np.isnan(lse))
    if case.key_lengths and 0 in case.key_lengths or case.mask != "none":
        assert dead_np.any(), "the case was meant to contain fully masked rows"


def test_bool_mask_is_torch_semantics():
    """A bool attn_mask means what it means in torch SDPA: True = the key takes part."""
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 3, 20, 16), dtype=np.float32)
    k = rng.standard_normal((2, 3, 28, 16), dtype=np.float32)
    v = rng.standard_normal((2, 3, 28, 16), dtype=np.float32)
    mask = rng.random((2, 3, 20, 28)) < 0.5
    mask[..., 0] = True  # no fully masked rows: torch gives NaN or 0 there, depending on version
    out = slope.attention(q, k, v, attn_mask=mask)
    d = lambda a: torch.from_numpy(a).double()  # noqa: E731
    oracle = F.scaled_dot_product_attention(d(q), d(k), d(v), attn_mask=torch.from_numpy(mask))
    ref = slope.testing.attention_reference(q, k, v, attn_mask=mask)["out"]
    bound = slope.testing.attention_error_bounds(q, k, v, attn_mask=mask)["out"]
    assert_same_definition("out", ref, oracle)
    assert_within_bounds("out", out, ref, bound)


# ---- gradients -------------------------------------------------------------------------------

GRADS = ("dq", "dk", "dv", "dslopes", "dslopes_right")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gradients_match_torch(case):
    x = make_inputs(case, seed=1)
    leaf = lambda a: torch.from_numpy(a.copy()).requires_grad_(True)  # noqa: E731
    q, k, v = leaf(x["q"]), leaf(x["k"]), leaf(x["v"])
    sl = None if x["left"] is None else torch.nn.Parameter(torch.from_numpy(x["left"].copy()))
    sr = None if x["right"] is None else torch.nn.Parameter(torch.from_numpy(x["right"].copy()))
    kw = slope_kwargs(case, x)
    kw["key_lengths"] = None if x["key_lengths"] is None else torch.from_numpy(x["key_lengths"])
    kw["attn_mask"] = None if x["mask"] is None else torch.from_numpy(x["mask"])
    kw["alibi_slopes"], kw["alibi_slopes_right"] = sl, sr
    out = slope.torch.attention(q, k, v, **kw)
    assert out.dtype == torch.float32 and out.shape == (case.B, case.H, case.Tq, case.dv)
    (out * torch.from_numpy(x["dout"])).sum().backward()
    got = {"dq": q.grad, "dk": k.grad, "dv": v.grad,
           "dslopes": None if sl is None else sl.grad,
           "dslopes_right": None if sr is None else sr.grad}
    oracle = oracle_grads(case, x, torch.float64)
    ref, bound = reference_and_bounds(case, x, with_grads=True)
    for name in GRADS:
        if oracle[name] is None:
            assert got[name] is None and ref[name] is None, name
            continue
        assert got[name] is not None, f"{name}: no gradient"
        assert got[name].shape == oracle[name].shape and got[name].dtype == torch.float32, name
        assert_same_definition(name, ref[name], oracle[name])
        assert_within_bounds(name, got[name], ref[name], bound[name])


def test_numpy_backward_matches_torch_function():
    """slope.attention_backward (numpy) gives what slope.torch's backward gives."""
    case = Case("learned", H=4, Tq=31, Tk=45, causal=True, slopes="learned")
    x = make_inputs(case, seed=2)
    kw = slope_kwargs(case, x)
    out, lse = slope.attention(x["q"], x["k"], x["v"], return_lse=True, **kw)
    dq, dk, dv, dsl, dsr = slope.attention_backward(x["dout"], x["q"], x["k"], x["v"], out, lse,
                                                    **kw)
    oracle = oracle_grads(case, x, torch.float64)
    ref, bound = reference_and_bounds(case, x, with_grads=True)
    for name, g in zip(GRADS, (dq, dk, dv, dsl, dsr)):
        assert isinstance(g, np.ndarray) and g.dtype == np.float32, name
        assert_same_definition(name, ref[name], oracle[name])
        assert_within_bounds(name, g, ref[name], bound[name])


def test_shared_slopes_gradient_goes_to_one_vector():
    """alibi_slopes_right=None: dslopes is the whole gradient of the shared vector."""
    case = Case("shared", H=4, Tq=29, slopes="alibi")
    x = make_inputs(case, seed=3)
    kw = slope_kwargs(case, x)
    out, lse = slope.attention(x["q"], x["k"], x["v"], return_lse=True, **kw)
    _, _, _, dsl, dsr = slope.attention_backward(x["dout"], x["q"], x["k"], x["v"], out, lse,
                                                 **kw)
    assert dsr is None
    ref, bound = reference_and_bounds(case, x, with_grads=True)
    assert ref["dslopes_right"] is None and bound["dslopes_right"] is None
    assert_same_definition("dslopes", ref["dslopes"], oracle_grads(case, x, torch.float64)["dslopes"])
    assert_within_bounds("dslopes", dsl, ref["dslopes"], bound["dslopes"])
    # The same vector passed on both sides gives the two halves of that gradient.
    kw["alibi_slopes_right"] = x["left"]
    _, _, _, dl, dr = slope.attention_backward(x["dout"], x["q"], x["k"], x["v"], out, lse, **kw)
    np.testing.assert_allclose(dl + dr, dsl, rtol=1e-5, atol=1e-5)


def test_torch_strided_inputs_and_slope_parameters():
    """q, k, v as views of one packed qkv tensor (strided, last dim contiguous), learned slopes
    as nn.Parameters, loss = out.sum() (an expanded, stride-0 gradient)."""
    B, T, H, D = 2, 37, 4, 16
    torch.manual_seed(0)
    qkv = torch.randn(B, T, 3, H, D, requires_grad=True)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (B, H, T, D), strided
    assert not q.is_contiguous() and q.stride(-1) == 1
    sl = torch.nn.Parameter(torch.sigmoid(torch.randn(H) - 2))
    sr = torch.nn.Parameter(torch.sigmoid(torch.randn(H) - 2))
    slope.torch.attention(q, k, v, alibi_slopes=sl, alibi_slopes_right=sr).sum().backward()
    got = (qkv.grad.clone(), sl.grad.clone(), sr.grad.clone())
    # The same with contiguous copies.
    qkv2 = qkv.detach().clone().requires_grad_(True)
    sl2 = torch.nn.Parameter(sl.detach().clone())
    sr2 = torch.nn.Parameter(sr.detach().clone())
    q2, k2, v2 = (qkv2[:, :, i].transpose(1, 2).contiguous() for i in range(3))
    slope.torch.attention(q2, k2, v2, alibi_slopes=sl2, alibi_slopes_right=sr2).sum().backward()
    for a, b in zip(got, (qkv2.grad, sl2.grad, sr2.grad)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


# ---- lse, slopes, skipping ------------------------------------------------------------------


def get_slopes(n):
    """Press et al., "Train Short, Test Long" (ALiBi), the paper's reference code."""

    def get_slopes_power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio**i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    closest_power_of_2 = 2 ** math.floor(math.log2(n))
    return (get_slopes_power_of_2(closest_power_of_2)
            + get_slopes(2 * closest_power_of_2)[0::2][: n - closest_power_of_2])


@pytest.mark.parametrize("n", list(range(1, 17)) + [12, 24, 40])
def test_alibi_slopes_are_press_get_slopes(n):
    got = slope.alibi_slopes(n)
    assert got.dtype == np.float32 and got.shape == (n,)
    np.testing.assert_allclose(got, np.array(get_slopes(n), dtype=np.float32), rtol=2**-23,
                               atol=0)


def test_lse_matches_logsumexp():
    case = Case("lse", B=2, H=6, Tq=70, Tk=90, causal=True, slopes="learned",
                key_lengths=(90, 12))
    x = make_inputs(case, seed=4)
    _, lse = slope.attention(x["q"], x["k"], x["v"], return_lse=True, **slope_kwargs(case, x))
    ref, bound = reference_and_bounds(case, x, with_grads=False)
    # Independent of SDPA: logsumexp of the float64 scores.
    d = lambda a: torch.from_numpy(a).double()  # noqa: E731
    bias = materialised_bias(case, d(x["left"]), d(x["right"]), x["key_lengths"], None,
                             torch.float64)
    direct = torch.logsumexp(d(x["q"]) @ d(x["k"]).transpose(-1, -2) * f32_scale(case) + bias,
                             -1)
    assert_same_definition("lse", ref["lse"], direct)
    assert_within_bounds("lse", lse, ref["lse"], bound["lse"])


def test_far_tile_skipping_is_within_tolerance():
    """Long causal ALiBi: skipping far tiles (default) agrees with skipping off to 1e-6."""
    rng = np.random.default_rng(5)
    B, H, T, D = 1, 12, 1024, 64
    q, k, v = (rng.standard_normal((B, H, T, D), dtype=np.float32) for _ in range(3))
    m = slope.alibi_slopes(H)
    on, lse_on = slope.attention(q, k, v, causal=True, alibi_slopes=m, return_lse=True)
    off, lse_off = slope.attention(q, k, v, causal=True, alibi_slopes=m, return_lse=True,
                                   skip_tolerance=0)
    rel = np.abs(on - off).max() / np.abs(off).max()
    assert rel <= 1e-6, f"skip on vs off: relative difference {rel:.3e}"
    rel_lse = np.abs(lse_on - lse_off).max() / np.abs(lse_off).max()
    assert rel_lse <= 1e-6, f"lse skip on vs off: relative difference {rel_lse:.3e}"


# ---- slope.torch argument checking ----------------------------------------------------------


def test_torch_bad_input_raises_value_error():
    q = torch.randn(1, 2, 5, 8)
    good = dict(q=q, k=q.clone(), v=q.clone())
    bad = [
        ("q", dict(q=q.double())),
        ("k", dict(k=q.half())),
        ("v", dict(v=q.numpy())),
        ("q", dict(q=torch.empty(1, 2, 5, 8, device="meta"))),  # any non-CPU device, CUDA too
        ("alibi_slopes", dict(alibi_slopes=torch.ones(2, dtype=torch.complex64))),
        ("alibi_slopes", dict(alibi_slopes=torch.ones(3))),
        ("attn_mask", dict(attn_mask=torch.zeros(5, 5, requires_grad=True))),
        ("key_lengths", dict(key_lengths=torch.tensor([9]))),
        ("k", dict(k=torch.randn(1, 3, 5, 8))),
    ]
    for name, change in bad:
        args = dict(good)
        args.update(change)
        with pytest.raises(ValueError, match=name):
            slope.torch.attention(**args)
    with pytest.raises(ValueError, match="CPU"):
        slope.torch.attention(torch.empty(1, 2, 5, 8, device="meta"), q, q)


def test_torch_without_autograd_and_with_plain_slopes():
    """No tensor needs a gradient; slopes as a list and as a plain tensor; strided last dim."""
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 4, 9, 16) for _ in range(3))
    m = slope.alibi_slopes(4)
    ref = torch.from_numpy(slope.attention(q.numpy(), k.numpy(), v.numpy(), causal=True,
                                           alibi_slopes=m))
    for s in (m.tolist(), torch.from_numpy(m)):
        out = slope.torch.attention(q, k, v, causal=True, alibi_slopes=s)
        assert not out.requires_grad
        torch.testing.assert_close(out, ref, rtol=0, atol=0)
    # A strided last dimension is copied by slope.torch (the numpy API refuses it).
    q2 = torch.randn(2, 4, 9, 32)[..., ::2]
    out = slope.torch.attention(q2, k, v, causal=True, alibi_slopes=m)
    ref2 = slope.attention(q2.contiguous().numpy(), k.numpy(), v.numpy(), causal=True,
                           alibi_slopes=m)
    np.testing.assert_array_equal(out.numpy(), ref2)
