"""The semantics slope.torch's front doors claim, materialised in float64 from the PyTorch and
flash-attn documentation, and the checks the operator tests share (test_torch_ops.py,
test_torch_front_doors.py)."""

import math

import numpy as np

import oracle
import slope
import slope.testing

torch = oracle.require("torch")

# float64 against float64, the same definition in two orders (see test_attention_torch.py).
F64_RTOL = 1e-9

# Unit roundoffs (half an ulp at 1) of the storage dtypes and half their smallest subnormal:
# rounding a float32 result x to them errs by at most u·|x| + eta/2 (round to nearest; below the
# normal range the spacing is the subnormal step, an absolute error). bf16/fp16 inputs are exact
# in float32.
UNIT_ROUNDOFF = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11, torch.float32: 2.0**-24}
HALF_SUBNORMAL = {torch.bfloat16: 2.0**-134, torch.float16: 2.0**-25, torch.float32: 2.0**-150}


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
