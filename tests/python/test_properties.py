"""Property-based tests of the Python API (hypothesis): random shapes, strides, dtypes and
options, valid and invalid.

- Valid input: every result of slope.attention / attention_backward (numpy, float32) and of
  slope.torch.flash_attn_func (float32, bfloat16, float16) lies within the rounding-error bound
  of slope.testing.attention_error_bounds around the float64 reference (plus, for 16-bit
  dtypes, the rounding of the result to that dtype: u·(|ref| + bound), u = 2⁻⁸ for bfloat16 and
  2⁻¹¹ for float16 — the kernels compute in float32 from the exactly widened inputs).
- Invalid input: a ValueError or TypeError whose message names the offending argument; never a
  crash of the interpreter (which would end the whole pytest run).

The examples are derandomised (the same on every run and machine); SLOPE_HYPOTHESIS_EXAMPLES
raises their number for a one-off longer search.
"""

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slope
import slope.testing
import slope.torch

EXAMPLES = int(os.environ.get("SLOPE_HYPOTHESIS_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def problems(draw):
    """A valid problem: shapes, options and float32 inputs, some of them strided views."""
    H = draw(st.sampled_from([1, 2, 4]))
    p = dict(
        B=draw(st.integers(1, 3)), H=H, Hkv=draw(st.sampled_from([h for h in (1, 2, 4) if H % h == 0])),
        Tq=draw(st.integers(1, 70)), Tk=draw(st.integers(1, 70)),
        D=draw(st.integers(1, 40)), Dv=draw(st.integers(1, 40)))
    kw = dict(causal=draw(st.booleans()))
    bias = draw(st.sampled_from(["none", "alibi", "learned", "one_sided", "zero"]))
    if bias == "alibi":
        kw["alibi_slopes"] = slope.alibi_slopes(H)
    elif bias in ("learned", "one_sided", "zero"):
        left = draw(st.lists(st.floats(-0.5, 2.0, width=32), min_size=H, max_size=H))
        if bias == "zero":
            left = [0.0] * H
        kw["alibi_slopes"] = np.array(left, np.float32)
        if bias == "one_sided":
            kw["alibi_slopes_right"] = np.full(H, np.inf, np.float32)
    if draw(st.booleans()):
        kw["key_lengths"] = np.array(
            draw(st.lists(st.integers(0, p["Tk"]), min_size=p["B"], max_size=p["B"])), np.int32)
    mask = draw(st.sampled_from(["none", "bool", "float"]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if mask == "bool":
        kw["attn_mask"] = rng.random((1, H, p["Tq"], p["Tk"])) < 0.8
    elif mask == "float":
        m = rng.standard_normal((p["B"], 1, p["Tq"], p["Tk"])).astype(np.float32)
        m[rng.random(m.shape) < 0.1] = -np.inf
        kw["attn_mask"] = m
    scale_in = draw(st.sampled_from([1.0, 3.0, 1e-3]))

    def tensor(shape, stride_t):
        # (B, H, T, D) as a view with every stride but the last one non-trivial when stride_t > 1
        big = rng.standard_normal(shape[:2] + (shape[2] * stride_t,) + shape[3:]).astype(np.float32)
        return big[:, :, ::stride_t] * np.float32(scale_in)

    stride_t = draw(st.sampled_from([1, 2]))
    q = tensor((p["B"], H, p["Tq"], p["D"]), stride_t)
    k = tensor((p["B"], p["Hkv"], p["Tk"], p["D"]), 1)
    v = tensor((p["B"], p["Hkv"], p["Tk"], p["Dv"]), stride_t)
    dout = rng.standard_normal((p["B"], H, p["Tq"], p["Dv"])).astype(np.float32)
    return q, k, v, dout, kw


def _within(name, got, ref, bound):
    got = np.asarray(got, np.float64)
    assert got.shape == ref.shape, (name, got.shape, ref.shape)
    with np.errstate(invalid="ignore"):  # inf − inf where both are −inf (lse of empty rows)
        err = np.where(got == ref, 0.0, np.abs(got - ref))
    bad = ~(err <= bound)
    assert not bad.any(), (
        f"{name}: {bad.sum()} of {bad.size} elements outside the bound, worst |err| "
        f"{np.nanmax(np.where(bad, err, 0)):.3g} where the bound is "
        f"{bound[np.unravel_index(np.argmax(np.where(bad, err, 0)), bad.shape)]:.3g}")


@SETTINGS
@given(problems())
def test_numpy_api_matches_reference_within_bounds(problem):
    q, k, v, dout, kw = problem
    ref = slope.testing.attention_reference(q, k, v, dout, **kw)
    bound = slope.testing.attention_error_bounds(q, k, v, dout, **kw)
    out, lse = slope.attention(q, k, v, return_lse=True, **kw)
    _within("out", out, ref["out"], bound["out"])
    _within("lse", lse, ref["lse"], bound["lse"])
    dq, dk, dv, dsl, dsr = slope.attention_backward(dout, q, k, v, out, lse, **kw)
    for name, got in (("dq", dq), ("dk", dk), ("dv", dv)):
        _within(name, got, ref[name], bound[name])
    if dsl is not None:
        _within("dslopes", dsl, ref["dslopes"], bound["dslopes"])
    if dsr is not None:
        _within("dslopes_right", dsr, ref["dslopes_right"], bound["dslopes_right"])


UNIT_ROUNDOFF = {torch.float32: 0.0, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}


@SETTINGS
@given(problems(), st.sampled_from([torch.float32, torch.bfloat16, torch.float16]))
def test_flash_attn_func_matches_reference_within_bounds(problem, dtype):
    q, k, v, dout, kw = problem
    if "key_lengths" in kw or "attn_mask" in kw or "alibi_slopes_right" in kw:
        return  # not flash_attn_func's arguments (test_numpy_api covers them)
    # The inputs as the dtype holds them, and the reference on exactly those values.
    qt, kt, vt = (torch.from_numpy(np.ascontiguousarray(x)).to(dtype) for x in (q, k, v))
    q32, k32, v32 = (x.float().numpy() for x in (qt, kt, vt))
    ref = slope.testing.attention_reference(q32, k32, v32, **kw)
    bound = slope.testing.attention_error_bounds(q32, k32, v32, **kw)
    u = UNIT_ROUNDOFF[dtype]
    slopes = kw.get("alibi_slopes")
    out = slope.torch.flash_attn_func(
        qt.transpose(1, 2), kt.transpose(1, 2), vt.transpose(1, 2), causal=kw["causal"],
        alibi_slopes=None if slopes is None else torch.from_numpy(np.asarray(slopes)))
    assert out.dtype == dtype
    got = out.transpose(1, 2).float().numpy()
    _within(f"out ({dtype})", got, ref["out"],
            bound["out"] + u * (np.abs(ref["out"]) + bound["out"]))


# ---- invalid input: an error naming the argument --------------------------------------------

def _base(rng, B=2, H=4, Hkv=2, Tq=5, Tk=7, D=8, Dv=6):
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    return dict(q=f(B, H, Tq, D), k=f(B, Hkv, Tk, D), v=f(B, Hkv, Tk, Dv)), dict(
        alibi_slopes=slope.alibi_slopes(H))


# Each corruption: (what it does to the arguments, the name the error must contain).
CORRUPTIONS = {
    "q_ndim": (lambda a, kw: a.update(q=a["q"][0]), "q"),
    "q_dtype": (lambda a, kw: a.update(q=a["q"].astype(np.float64)), "q"),
    "k_not_array": (lambda a, kw: a.update(k=a["k"].tolist()), "k"),
    "head_dim": (lambda a, kw: a.update(k=a["k"][..., :-1]), "head dim"),
    "kv_heads": (lambda a, kw: a.update(k=np.concatenate([a["k"]] * 3, 1),
                                        v=np.concatenate([a["v"]] * 3, 1)), "heads"),
    "v_length": (lambda a, kw: a.update(v=a["v"][:, :, :-1]), "v"),
    "batch": (lambda a, kw: a.update(k=a["k"][:1], v=a["v"][:1]), "k"),
    "slopes_nan": (lambda a, kw: kw["alibi_slopes"].__setitem__(1, np.nan), "alibi_slopes"),
    "slopes_minus_inf": (lambda a, kw: kw["alibi_slopes"].__setitem__(0, -np.inf),
                         "alibi_slopes"),
    "slopes_overflow": (lambda a, kw: kw["alibi_slopes"].__setitem__(2, -1e38),
                        "alibi_slopes[2]"),
    "slopes_shape": (lambda a, kw: kw.update(alibi_slopes=np.ones(3, np.float32)),
                     "alibi_slopes"),
    "slopes_strings": (lambda a, kw: kw.update(alibi_slopes=np.array(["a"] * 4)),
                       "alibi_slopes"),
    "key_lengths_negative": (lambda a, kw: kw.update(key_lengths=np.array([3, -1])),
                             "key_lengths"),
    "key_lengths_too_long": (lambda a, kw: kw.update(key_lengths=np.array([3, 8])),
                             "key_lengths"),
    "key_lengths_shape": (lambda a, kw: kw.update(key_lengths=np.array([3, 3, 3])),
                          "key_lengths"),
    "key_lengths_float": (lambda a, kw: kw.update(key_lengths=np.array([3.0, 2.0])),
                          "key_lengths"),
    "mask_shape": (lambda a, kw: kw.update(attn_mask=np.ones((2, 4, 5, 6), bool)), "attn_mask"),
    "mask_dtype": (lambda a, kw: kw.update(attn_mask=np.ones((5, 7), np.int32)), "attn_mask"),
    "scale_nan": (lambda a, kw: kw.update(scale=float("nan")), "scale"),
    "scale_text": (lambda a, kw: kw.update(scale="big"), "scale"),
    "skip_negative": (lambda a, kw: kw.update(skip_tolerance=-1.0), "skip_tolerance"),
}


# Every corruption, each on a few drawn inputs.
FEW = settings(SETTINGS, max_examples=max(3, EXAMPLES // 8))


@pytest.mark.parametrize("which", sorted(CORRUPTIONS))
@FEW
@given(seed=st.integers(0, 2**31 - 1))
def test_invalid_numpy_input_names_the_argument(which, seed):
    args, kw = _base(np.random.default_rng(seed))
    corrupt, name = CORRUPTIONS[which]
    corrupt(args, kw)
    with pytest.raises((ValueError, TypeError)) as e:
        slope.attention(args["q"], args["k"], args["v"], **kw)
    assert name in str(e.value), f"{which}: the error does not name {name!r}: {e.value}"


TORCH_CORRUPTIONS = {
    "q_ndim": (lambda a, kw: a.update(q=a["q"][0]), "q"),
    "q_int": (lambda a, kw: a.update(q=a["q"].to(torch.int32)), "q"),
    "mixed_dtypes": (lambda a, kw: a.update(k=a["k"].double()), "k"),
    "head_dim": (lambda a, kw: a.update(k=a["k"][..., :-1]), "head dim"),
    "kv_heads": (lambda a, kw: a.update(k=torch.cat([a["k"]] * 3, 2),
                                        v=torch.cat([a["v"]] * 3, 2)), "heads"),
    "slopes_nan": (lambda a, kw: kw["alibi_slopes"].__setitem__(1, float("nan")),
                   "alibi_slopes"),
    "slopes_overflow": (lambda a, kw: kw["alibi_slopes"].__setitem__(2, -1e38),
                        "alibi_slopes[2]"),
    "slopes_shape": (lambda a, kw: kw.update(alibi_slopes=torch.ones(3)), "alibi_slopes"),
    "window": (lambda a, kw: kw.update(window_size=(-2, 0)), "window_size"),
    "softcap": (lambda a, kw: kw.update(softcap=-1.0), "softcap"),
    "dropout_one": (lambda a, kw: kw.update(dropout_p=1.0), "dropout_p"),
    "dropout_nan": (lambda a, kw: kw.update(dropout_p=float("nan")), "dropout_p"),
    "scale_nan": (lambda a, kw: kw.update(softmax_scale=float("nan")), "scale"),
}


@pytest.mark.parametrize("which", sorted(TORCH_CORRUPTIONS))
@FEW
@given(seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([torch.float32, torch.bfloat16]))
def test_invalid_torch_input_names_the_argument(which, seed, dtype):
    a, kw = _base(np.random.default_rng(seed))
    args = {n: torch.from_numpy(x).to(dtype).transpose(1, 2) for n, x in a.items()}
    kw = dict(alibi_slopes=torch.from_numpy(kw["alibi_slopes"].copy()))
    corrupt, name = TORCH_CORRUPTIONS[which]
    corrupt(args, kw)
    with pytest.raises((ValueError, TypeError)) as e:
        slope.torch.flash_attn_func(args["q"], args["k"], args["v"], **kw)
    assert name in str(e.value), f"{which}: the error does not name {name!r}: {e.value}"
