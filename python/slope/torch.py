"""slope.torch: the fused ALiBi attention as a torch.autograd.Function (CPU, float32).

    out = slope.torch.attention(q, k, v, causal=True, alibi_slopes=m)

q (B, H, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv) are CPU float32 tensors. q, k, v and the
slopes (which may be nn.Parameters) get gradients; the mask and key lengths do not. The tensors
are handed to the kernels without a copy (torch.Tensor.numpy()) unless their last dimension is
strided. CUDA tensors are not supported yet.
"""

import numpy as _np
import torch as _torch
from torch.autograd.function import once_differentiable as _once_differentiable

import slope as _slope

__all__ = ["attention"]


def _check_tensor(name, t):
    if not isinstance(t, _torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(
            f"{name} is on {t.device}; slope.torch supports CPU tensors only for now "
            f"(CUDA is not implemented yet): pass {name}.cpu()"
        )


def _float_array(name, t):
    """A detached CPU float32 tensor as a numpy view (a copy only if the last dim is strided)."""
    _check_tensor(name, t)
    if t.dtype != _torch.float32:
        raise ValueError(f"{name} must be torch.float32, got {t.dtype}; pass {name}.float()")
    t = t.detach()
    if t.dim() > 0 and t.shape[-1] > 1 and t.stride(-1) != 1:
        t = t.contiguous()
    return t.numpy()


def _slopes_array(name, s):
    if s is None:
        return None
    if isinstance(s, _torch.Tensor):
        return _float_array(name, s)
    return _np.asarray(s, dtype=_np.float32)


def _plain_array(name, x):
    """key_lengths / attn_mask: a tensor (any dtype the numpy API accepts) or array-like."""
    if x is None:
        return None
    if isinstance(x, _torch.Tensor):
        _check_tensor(name, x)
        if x.requires_grad:
            raise ValueError(
                f"{name} requires grad, but slope gives no gradient for it: pass {name}.detach()"
            )
        x = x.detach()
        if x.dim() > 0 and x.shape[-1] > 1 and x.stride(-1) != 1:
            x = x.contiguous()
        return x.numpy()
    return _np.asarray(x)


class _Attention(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, slopes_left, slopes_right, options):
        kw = dict(options)
        kw["alibi_slopes"] = _slopes_array("alibi_slopes", slopes_left)
        kw["alibi_slopes_right"] = _slopes_array("alibi_slopes_right", slopes_right)
        out, lse = _slope.attention(_float_array("q", q), _float_array("k", k),
                                    _float_array("v", v), return_lse=True, **kw)
        out_t, lse_t = _torch.from_numpy(out), _torch.from_numpy(lse)
        ctx.options = options
        # Tensors (slopes included) go through save_for_backward, so that an in-place change
        # between forward and backward is caught by autograd; other slopes stay as arrays.
        ctx.slope_arrays = [None if isinstance(s, _torch.Tensor) else kw[n]
                            for n, s in (("alibi_slopes", slopes_left),
                                         ("alibi_slopes_right", slopes_right))]
        saved = [s if isinstance(s, _torch.Tensor) else None for s in (slopes_left, slopes_right)]
        ctx.save_for_backward(q, k, v, out_t, lse_t, *saved)
        return out_t

    @staticmethod
    @_once_differentiable
    def backward(ctx, dout):
        q, k, v, out, lse, sl, sr = ctx.saved_tensors
        kw = dict(ctx.options)
        kw["alibi_slopes"] = (_slopes_array("alibi_slopes", sl) if sl is not None
                              else ctx.slope_arrays[0])
        kw["alibi_slopes_right"] = (_slopes_array("alibi_slopes_right", sr) if sr is not None
                                    else ctx.slope_arrays[1])
        dout = dout.to(_torch.float32)
        if dout.shape[-1] > 1 and dout.stride(-1) != 1:
            dout = dout.contiguous()  # e.g. the expanded gradient of out.sum()
        need = ctx.needs_input_grad
        dq, dk, dv, dsl, dsr = _slope.attention_backward(
            dout.numpy(), _float_array("q", q), _float_array("k", k), _float_array("v", v),
            out.numpy(), lse.numpy(), slope_grads=bool(need[3] or need[4]), **kw)
        return (
            _torch.from_numpy(dq) if need[0] else None,
            _torch.from_numpy(dk) if need[1] else None,
            _torch.from_numpy(dv) if need[2] else None,
            _torch.from_numpy(dsl) if need[3] and dsl is not None else None,
            _torch.from_numpy(dsr) if need[4] and dsr is not None else None,
            None,
        )


def attention(q, k, v, *, causal=False, scale=None, alibi_slopes=None, alibi_slopes_right=None,
              key_lengths=None, attn_mask=None, skip_tolerance=None):
    """Fused attention with an optional ALiBi bias, differentiable in q, k, v and the slopes.

    Same arguments and semantics as slope.attention (see its docstring), over CPU float32
    tensors; alibi_slopes / alibi_slopes_right may be nn.Parameters (H,) and then get gradients
    (with alibi_slopes_right None, alibi_slopes is shared by both sides and gets the whole
    gradient). attn_mask (bool: True = may attend, or float32 additive) and key_lengths get no
    gradient. Returns out (B, H, Tq, Dv).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check_tensor(name, t)
        if t.dtype != _torch.float32:
            raise ValueError(f"{name} must be torch.float32, got {t.dtype}; pass {name}.float()")
    for name, s in (("alibi_slopes", alibi_slopes), ("alibi_slopes_right", alibi_slopes_right)):
        if isinstance(s, _torch.Tensor):
            _check_tensor(name, s)
            if s.dtype != _torch.float32:
                raise ValueError(f"{name} must be torch.float32, got {s.dtype}")
    options = dict(
        causal=causal,
        scale=scale,
        key_lengths=_plain_array("key_lengths", key_lengths),
        attn_mask=_plain_array("attn_mask", attn_mask),
        skip_tolerance=skip_tolerance,
    )
    return _Attention.apply(q, k, v, alibi_slopes, alibi_slopes_right, options)
