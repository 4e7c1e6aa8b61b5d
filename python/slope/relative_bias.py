"""Learned relative position biases (Kerple, T5 buckets, FIRE) through slope's fused CPU kernels,
with their parameters as ``nn.Parameter``s (docs/relative-biases.md for the formulas).

    bias = RelativeBias("kerple-log", n_heads=8)        # an nn.Module
    out = relative_attention(q, k, v, bias, causal=True)  # q, k, v (B, H, T, D), CPU

The kernels evaluate the bias per tile (never a T×T tensor) and return the gradients of q, k, v
and of the bias's parameters (deterministic). CPU only: the Triton GPU path does not take these
biases, and CUDA tensors are refused with a ValueError.
"""

import math as _math
from typing import Optional

import torch as _torch
from torch import Tensor, nn

from . import _slope as _C
from . import alibi_slopes as _alibi_slopes

_KINDS = {"kerple-log": 1, "kerple-power": 2, "t5": 3, "fire": 4}


class RelativeBias(nn.Module):
    """One attention layer's learned relative bias. Parameters (the kernels' flat layout is their
    concatenation in this order):
      kerple-log, kerple-power: r1 (H), r2 (H)     (Chi et al. 2022)
      t5: table (num_buckets, H)                   (Raffel et al. 2020; HF's bucket function)
      fire: w1 (K), b1 (K), w2 (H, K), b2 (H), c (), L ()   (Li et al. 2023; interpolated on
            fire_grid cells)
    Starting values as slope's trainer: Kerple-log r1 = 1, r2 = ALiBi's slopes; Kerple-power
    r1 = ALiBi's slopes, r2 = 1; T5 zeros; FIRE nn.Linear's uniform init, c = 1, L = fire_L.
    The domain (Kerple r2 >= 0 or in (0, 2], FIRE c, L > 0) is the caller's to keep, for
    instance with ``clamp_()`` after each optimiser step."""

    def __init__(self, kind: str, n_heads: int, *, num_buckets: int = 32, max_distance: int = 128,
                 bidirectional: bool = True, fire_hidden: int = 32, fire_grid: int = 1024,
                 fire_L: float = 512.0):
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"relative bias {kind!r} is unknown; use one of {sorted(_KINDS)}")
        self.kind, self.n_heads = kind, n_heads
        self.num_buckets, self.max_distance, self.bidirectional = num_buckets, max_distance, bidirectional
        self.fire_hidden, self.fire_grid = fire_hidden, fire_grid
        H, K = n_heads, fire_hidden
        m = _torch.tensor(_alibi_slopes(H), dtype=_torch.float32)
        if kind == "kerple-log":
            self.r1 = nn.Parameter(_torch.ones(H))
            self.r2 = nn.Parameter(m.clone())
        elif kind == "kerple-power":
            self.r1 = nn.Parameter(m.clone())
            self.r2 = nn.Parameter(_torch.ones(H))
        elif kind == "t5":
            self.table = nn.Parameter(_torch.zeros(num_buckets, H))
        else:
            self.w1 = nn.Parameter(_torch.empty(K).uniform_(-1.0, 1.0))
            self.b1 = nn.Parameter(_torch.empty(K).uniform_(-1.0, 1.0))
            bound = 1.0 / _math.sqrt(K)
            self.w2 = nn.Parameter(_torch.empty(H, K).uniform_(-bound, bound))
            self.b2 = nn.Parameter(_torch.empty(H).uniform_(-bound, bound))
            self.c = nn.Parameter(_torch.tensor(1.0))
            self.L = nn.Parameter(_torch.tensor(float(fire_L)))

    def flat(self) -> Tensor:
        """The parameters as the kernels' one float32 vector (differentiable)."""
        if self.kind.startswith("kerple"):
            parts = [self.r1, self.r2]
        elif self.kind == "t5":
            parts = [self.table]
        else:
            parts = [self.w1, self.b1, self.w2, self.b2, self.c, self.L]
        return _torch.cat([p.reshape(-1).float() for p in parts])

    @_torch.no_grad()
    def clamp_(self) -> "RelativeBias":
        """Projects the parameters into their family's domain (slope's relative_bias_clamp)."""
        if self.kind == "kerple-log":
            self.r2.clamp_(min=0.0)
        elif self.kind == "kerple-power":
            self.r2.clamp_(1e-2, 2.0)
        elif self.kind == "fire":
            self.c.clamp_(min=1e-3)
            self.L.clamp_(min=1.0)
        return self

    def _options(self, causal: bool, scale: float):
        o = _C.torch_options(
            causal=causal, scale=scale, query_positions=0, window_left=-1, window_right=-1,
            softcap=0.0, dropout_p=0.0, dropout_seed=0, dropout_offset=0,
            skip_tolerance=2.0**-24, cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=0,
            max_seqlen_k=0)
        return _C.torch_options_with_rel(
            o, kind=_KINDS[self.kind], num_buckets=self.num_buckets,
            max_distance=self.max_distance, bidirectional=self.bidirectional,
            fire_hidden=self.fire_hidden, fire_grid=self.fire_grid)


class _RelativeAttention(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, params, options):
        q32, k32, v32 = (t.float().contiguous() for t in (q, k, v))
        p32 = params.detach().float().contiguous()
        out = _torch.empty(q32.shape[:-1] + (v32.shape[-1],), dtype=_torch.float32)
        lse = _torch.empty(q32.shape[:-1], dtype=_torch.float32)
        _C.torch_forward(q32, k32, v32, out, lse, None, None, None, None, options,
                         rel_params=p32)
        ctx.save_for_backward(q32, k32, v32, p32, out, lse)
        ctx.options = options
        ctx.dtypes = (q.dtype, k.dtype, v.dtype, params.dtype)
        return out.to(q.dtype)

    @staticmethod
    def backward(ctx, dout):
        q32, k32, v32, p32, out, lse = ctx.saved_tensors
        dq, dk, dv = (_torch.empty_like(t) for t in (q32, k32, v32))
        drel = _torch.empty_like(p32)
        _C.torch_backward(dout.float().contiguous(), q32, k32, v32, out, lse, dq, dk, dv, None,
                          None, None, None, None, None, ctx.options, rel_params=p32, drel=drel)
        tq, tk, tv, tp = ctx.dtypes
        return dq.to(tq), dk.to(tk), dv.to(tv), drel.to(tp), None


def relative_attention(q: Tensor, k: Tensor, v: Tensor, bias: RelativeBias, *,
                       causal: bool = False, scale: Optional[float] = None) -> Tensor:
    """softmax(scale·q·kᵀ + bias(i, j) [+ causal mask])·v for q (B, H, Tq, D), k (B, Hkv, Tk, D),
    v (B, Hkv, Tk, Dv) on the CPU, queries aligned to the end of the keys (flash-attn's
    convention). Gradients flow to q, k, v and the bias's nn.Parameters."""
    if any(t.device.type != "cpu" for t in (q, k, v)):
        raise ValueError("slope.relative_bias: learned relative biases run on the CPU kernels "
                         "only; the Triton GPU path does not take them (move q, k, v to the CPU)")
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError("relative_attention takes (B, H, T, D) tensors")
    if q.shape[1] != bias.n_heads:
        raise ValueError(f"q has {q.shape[1]} heads but the bias was made for {bias.n_heads}")
    s = 1.0 / _math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return _RelativeAttention.apply(q, k, v, bias.flat(), bias._options(causal, s))
