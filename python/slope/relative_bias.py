"""Learned relative position biases (Kerple, T5 buckets, FIRE) through slope's fused CPU kernels,
with their parameters as ``nn.Parameter``s (docs/relative-biases.md for the formulas).

    bias = RelativeBias("kerple-log", n_heads=8)        # an nn.Module
    out = relative_attention(q, k, v, bias, causal=True)  # q, k, v (B, H, T, D), CPU

The kernels evaluate the bias per tile (never a T×T tensor) and return the gradients of q, k, v
and of the bias's parameters (deterministic). Both run through slope.torch's operators
(``torch.ops.slope.attention_forward`` / ``attention_backward``): the C++ kernels on CPU tensors,
the Triton kernels on CUDA tensors (see docs/triton.md), under torch.compile(fullgraph=True) and torch.export alike.
"""

import math as _math
from typing import Optional

import torch as _torch
from torch import Tensor, nn

from . import alibi_slopes as _alibi_slopes
from . import torch as _st
from ._torch_ops import REL_KINDS as _KINDS


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

    def rel_ints(self):
        """The operators' rel_ints (slope._torch_ops): [kind, num_buckets, max_distance,
        bidirectional, fire_hidden, fire_grid]."""
        return [_KINDS[self.kind], self.num_buckets, self.max_distance, int(self.bidirectional),
                self.fire_hidden, self.fire_grid]


def relative_attention(q: Tensor, k: Tensor, v: Tensor, bias: RelativeBias, *,
                       causal: bool = False, scale: Optional[float] = None) -> Tensor:
    """softmax(scale·q·kᵀ + bias(i, j) [+ causal mask])·v for q (B, H, Tq, D), k (B, Hkv, Tk, D),
    v (B, Hkv, Tk, Dv), queries aligned to the end of the keys (flash-attn's convention).
    Gradients flow to q, k, v and the bias's nn.Parameters. The same operator as
    ``slope.torch.attention(q, k, v, causal=causal, scale=scale, relative_bias=bias)``: CPU
    tensors run the C++ kernels, CUDA tensors the Triton ones; torch.compile and torch.export
    see one opaque node."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError("relative_attention takes (B, H, T, D) tensors")
    return _st.attention(q, k, v, causal=causal, scale=scale, relative_bias=bias)
