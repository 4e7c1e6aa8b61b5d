"""The attention problem bench/attention.py times and the methods it times on it: slope's
variants and the PyTorch peers (SDPA, FlexAttention, naive), plus probes of what this torch can
run."""

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

import slope
import slope.torch as slope_torch

B, H, D = 4, 12, 64
GiB, MiB = 2.0**30, 2.0**20
MEMORY_T = [1024, 4096]          # peers' peak memory, at B=1
MEMORY_METHODS = ["slope:alibi_causal_skip", "sdpa_causal", "sdpa_alibi_mask", "naive_alibi"]

# The C++ bench's variant names; the Python-side slope methods are "slope:<variant>".
SLOPE_VARIANTS = {
    "none": dict(causal=False),
    "causal": dict(causal=True),
    "alibi_causal_noskip": dict(causal=True, alibi="fixed", skip_tolerance=0.0),
    "alibi_causal_skip": dict(causal=True, alibi="fixed"),
    "alibi_learned_causal_noskip": dict(causal=True, alibi="learned", skip_tolerance=0.0),
    "alibi_symmetric_skip": dict(causal=False, alibi="fixed"),
}
SKIP_OFF_VARIANTS = ("none", "causal", "alibi_causal_noskip", "alibi_learned_causal_noskip")


def one_line(exc):
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0][:300] if text else type(exc).__name__

ACC_SLOPE, ACC_TORCH = "slope ALiBi causal, skip on (default)", "torch float32 SDPA + float32 mask"


# ---------------------------------------------------------------------------------------------
# Inputs


class Case:
    """The inputs at one T: q, k, v, dout (b, H, T, D) float32 and the ALiBi slopes (H,)."""

    def __init__(self, b, t, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.T = t
        self.q, self.k, self.v, self.dout = (torch.randn(b, H, t, D, generator=g) for _ in range(4))
        for x in (self.q, self.k, self.v):
            x.requires_grad_(True)
        self.slopes = torch.from_numpy(slope.alibi_slopes(H))    # fixed: no gradient
        self.learned = torch.nn.Parameter(self.slopes.clone())   # learned: gets gradients
        self._mask = None

    def alibi_mask(self):
        """(1, H, T, T) float32, built on first use and shared by the mask-based peers."""
        if self._mask is None:
            self._mask = alibi_mask(self.slopes, self.T, torch.float32)
        return self._mask

    def grad_inputs(self, learned=False):
        return [self.q, self.k, self.v] + ([self.learned] if learned else [])


def alibi_mask(slopes, t, dtype):
    """(1, H, t, t): -m_h·(i - j) for j <= i, -inf above the diagonal."""
    i = torch.arange(t).view(t, 1)
    j = torch.arange(t).view(1, t)
    mask = (j - i).to(dtype) * slopes.to(dtype).view(-1, 1, 1)
    mask.masked_fill_((j > i).unsqueeze(0), float("-inf"))
    return mask.unsqueeze(0)


def scores_bytes(b, t):
    """A peer that materialises the T×T scores: B·H·T² float32, about 4 copies alive."""
    return b * H * t * t * 4 * 4


def mask_bytes(t):
    return H * t * t * 4


def sdpa_mask_bytes(backend):
    """SDPA with a float mask: on its math path the T×T scores as well as the mask; on a flash
    path (what torch 2.15 takes on CPU) the mask only, plus as much again while building it."""
    if "Flash" in backend:
        return lambda b, t: 2 * mask_bytes(t)
    return lambda b, t: scores_bytes(b, t) + mask_bytes(t)


# ---------------------------------------------------------------------------------------------
# Methods: make(case) returns (fwd, fwdbwd), two callables; fwdbwd is None if it has no backward.


def no_grad(call):
    def fwd():
        with torch.no_grad():
            call()

    return fwd


def backward_of(call, inputs, dout):
    def fwdbwd():
        torch.autograd.grad(call(), inputs, dout)

    return fwdbwd


def make_slope(variant):
    cfg = dict(SLOPE_VARIANTS[variant])
    alibi = cfg.pop("alibi", None)

    def make(case):
        slopes = {None: None, "fixed": case.slopes, "learned": case.learned}[alibi]

        def call():
            return slope_torch.attention(case.q, case.k, case.v, alibi_slopes=slopes, **cfg)

        inputs = case.grad_inputs(learned=alibi == "learned")
        return no_grad(call), backward_of(call, inputs, case.dout)

    return make


def make_sdpa_causal(case):
    def call():
        return F.scaled_dot_product_attention(case.q, case.k, case.v, is_causal=True)

    return no_grad(call), backward_of(call, case.grad_inputs(), case.dout)


def make_sdpa_mask(case):
    mask = case.alibi_mask()

    def call():
        return F.scaled_dot_product_attention(case.q, case.k, case.v, attn_mask=mask)

    return no_grad(call), backward_of(call, case.grad_inputs(), case.dout)


def naive_attention(q, k, v, mask):
    scale = q.shape[-1] ** -0.5
    return torch.softmax(q @ k.transpose(-2, -1) * scale + mask, dim=-1) @ v


def make_naive(case):
    mask = case.alibi_mask()

    def call():
        return naive_attention(case.q, case.k, case.v, mask)

    return no_grad(call), backward_of(call, case.grad_inputs(), case.dout)


def flex_alibi_call(q, k, v, slopes, compiled=True):
    """FlexAttention with an ALiBi score_mod and a causal block mask, as a callable.

    Compiled with fullgraph=True, so that a graph break raises instead of running flex eagerly
    (eager flex materialises the T×T scores), after a reset of dynamo's caches, so that nothing
    an earlier call left behind (a failed backward, another grad mode) changes what runs here.
    The compile happens on the first call.
    """
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    def alibi(score, b, h, q_idx, kv_idx):
        return score - slopes[h] * (q_idx - kv_idx)

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    t = q.shape[-2]
    block_mask = create_block_mask(causal, None, None, t, t, device="cpu")
    fn = flex_attention
    if compiled:
        torch._dynamo.reset()
        fn = torch.compile(flex_attention, dynamic=False, fullgraph=True)
    return lambda: fn(q, k, v, score_mod=alibi, block_mask=block_mask)


class FlexPeer:
    """make(case) for FlexAttention: fwd+bwd only where probe_flex saw its backward run."""

    def __init__(self):
        self.backward = False
        self.compile_s = {}        # T -> seconds of the forward's compile (not timed)

    def __call__(self, case):
        q, k, v = (x.detach() for x in (case.q, case.k, case.v))
        fwd = no_grad(flex_alibi_call(q, k, v, case.slopes))
        t0 = time.perf_counter()
        fwd()
        self.compile_s[case.T] = time.perf_counter() - t0
        if not self.backward:
            return fwd, None
        # The backward graph compiles in the timing helper's warm-up call.
        call = flex_alibi_call(case.q, case.k, case.v, case.slopes)
        return fwd, backward_of(call, case.grad_inputs(), case.dout)


@dataclass
class Method:
    name: str
    label: str
    make: Callable
    bytes_needed: Callable[[int, int], int] = lambda b, t: 0   # memory estimate at (B, T)
    available: bool = True


def slope_label(variant):
    cfg = SLOPE_VARIANTS[variant]
    parts = ["causal" if cfg["causal"] else "non-causal"]
    if "alibi" in cfg:
        parts.append({"fixed": "fixed ALiBi slopes",
                      "learned": "learned ALiBi slopes (nn.Parameter)"}[cfg["alibi"]])
        parts.append("skip off" if cfg.get("skip_tolerance") == 0 else "skip on (default)")
    else:
        parts.append("no bias")
    return "slope.torch.attention, " + ", ".join(parts)


def methods(sdpa_backend="unknown"):
    ms = [Method(f"slope:{v}", slope_label(v), make_slope(v)) for v in SLOPE_VARIANTS]
    ms += [
        Method("sdpa_causal", "F.scaled_dot_product_attention(is_causal=True), no bias",
               make_sdpa_causal),
        Method("sdpa_alibi_mask", "F.scaled_dot_product_attention(attn_mask=float ALiBi mask "
               "(1, H, T, T), -inf above the diagonal)", make_sdpa_mask,
               bytes_needed=sdpa_mask_bytes(sdpa_backend)),
        Method("flex_alibi", "torch.compile(flex_attention), ALiBi score_mod + causal block mask",
               FlexPeer()),
        Method("naive_alibi", "eager softmax(q·kᵀ·scale + mask)·v, the same mask", make_naive,
               bytes_needed=lambda b, t: scores_bytes(b, t) + mask_bytes(t)),
    ]
    return ms


# ---------------------------------------------------------------------------------------------
# Probes: FlexAttention on CPU, SDPA's kernel for a float mask


def probe_flex():
    """(forward runs, backward runs, note): compile and run at T=128, compare with SDPA + mask,
    then try a backward."""
    case = Case(1, 128, seed=3)
    ref = F.scaled_dot_product_attention(case.q, case.k, case.v, attn_mask=case.alibi_mask())
    try:
        t0 = time.perf_counter()
        with torch.no_grad():
            out = flex_alibi_call(*(x.detach() for x in (case.q, case.k, case.v)), case.slopes)()
        compile_s = time.perf_counter() - t0
        torch._dynamo.reset()
        err = (out - ref).abs().max().item()
    except Exception as e:  # a compile or run failure is recorded, never fatal
        return False, False, f"unavailable on CPU: {one_line(e)}"
    if not err < 1e-4:
        return False, False, f"unavailable: differs from SDPA + mask by {err:.2e} at T=128"
    note = (f"forward runs on CPU (first compile {compile_s:.0f} s, max |diff| vs SDPA + mask "
            f"{err:.1e} at T=128)")
    try:  # eager: flex checks the device first, and dynamo's state stays clean
        flex_alibi_call(case.q, case.k, case.v, case.slopes, compiled=False)().sum().backward()
        return True, True, note + "; its backward runs too (eager check at T=128)"
    except Exception as e:
        return True, False, note + f"; no fwd+bwd: {one_line(e)}"


def sdpa_mask_backend():
    """The kernel SDPA takes on CPU for a float mask with grad (the autograd node's name)."""
    try:
        case = Case(1, 64)
        out = F.scaled_dot_product_attention(case.q, case.k, case.v, attn_mask=case.alibi_mask())
        return type(out.grad_fn).__name__
    except Exception as e:
        return f"unknown ({one_line(e)})"
