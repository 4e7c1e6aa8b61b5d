"""slope's PyTorch operators: ``torch.ops.slope.attention_forward`` and
``torch.ops.slope.attention_backward`` (torch.library.custom_op), their fake implementations and
their autograd, and ``Attention``, the same autograd as a torch.autograd.Function that torch.func
transforms accept. The front doors in slope.torch call ``Attention.apply``; see slope.torch for
the dtypes, layouts and conventions. CPU tensors run the C++ kernels (the functions below);
CUDA tensors run the Triton kernels of slope._triton (registered below for the "cuda" key).
"""

import math as _math
from typing import List, Optional, Tuple

import torch as _torch
from torch import Tensor

from slope import _slope as _C

# ---- the operators ----------------------------------------------------------------------------
#
# Layouts ("bhtd", "bthd", "thd") name how q/k/v/out are stored; the kernels take (B, H, T, D)
# views of them. Scalar options travel as one list each of ints and floats so that the schema
# stays short:
#   ints:   [causal, query_positions, window_left, window_right, max_seqlen_q, max_seqlen_k]
#   floats: [scale, softcap, dropout_p, skip_tolerance]
# dropout_rng is an int64 tensor [seed, offset] (drawn from torch's generator by the front door).
# A learned relative bias (slope.relative_bias, docs/relative-biases.md) travels as two trailing
# arguments, both None without one (every older call is unchanged):
#   rel_params: its flat float32 parameter block (relative_bias_param_count elements)
#   rel_ints:   [kind, num_buckets, max_distance, bidirectional, fire_hidden, fire_grid],
#               kind 1 kerple-log, 2 kerple-power, 3 t5, 4 fire
# It excludes ALiBi slopes, so the backward returns its gradient in the slope gradient's place
# (the fourth output, shaped like rel_params).


def _view4(t: Tensor, layout: str) -> Tensor:
    """The (B, H, T, D) view of a tensor stored in `layout`; (1, H, total, D) when packed."""
    if layout == "bhtd":
        return t
    if layout == "bthd":
        return t.transpose(1, 2)
    return t.unsqueeze(0).transpose(1, 2)


def _lse_shape(q: Tensor, layout: str) -> List[int]:
    if layout == "bhtd":
        return list(q.shape[:-1])
    if layout == "bthd":
        return [q.shape[0], q.shape[2], q.shape[1]]
    return [q.shape[1], q.shape[0]]  # (H, total_q), flash-attn's varlen layout


def _f32(t: Tensor) -> Tensor:
    t = t.float()
    return t.contiguous() if t.dim() > 0 and t.shape[-1] > 1 and t.stride(-1) != 1 else t


def _opt_f32(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else _f32(t).contiguous()


_LAYOUT_NDIM = {"bhtd": 4, "bthd": 4, "thd": 3}
_INT32_MAX = 2**31 - 1


def _check_op_inputs(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q,
                     cu_seqlens_k, dropout_rng, layout, ints, floats):
    """What the operators take, checked before anything runs (the front doors check the same
    and more; this catches direct callers of torch.ops.slope.*). ValueError naming the
    argument."""
    if layout not in _LAYOUT_NDIM:
        raise ValueError(f"layout must be one of {sorted(_LAYOUT_NDIM)}, got {layout!r}")
    if len(ints) != 6 or len(floats) != 4:
        raise ValueError(
            "ints must be [causal, query_positions, window_left, window_right, max_seqlen_q, "
            "max_seqlen_k] and floats [scale, softcap, dropout_p, skip_tolerance], got "
            f"{len(ints)} ints and {len(floats)} floats")
    floating = (_torch.float32, _torch.bfloat16, _torch.float16)
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dtype not in floating:
            raise ValueError(f"{name} must be float32, bfloat16 or float16, got {t.dtype}")
        if t.dtype != q.dtype:
            raise ValueError(f"{name} is {t.dtype} but q is {q.dtype}: q, k and v must share a dtype")
        if t.dim() != _LAYOUT_NDIM[layout]:
            raise ValueError(f"{name} must be {_LAYOUT_NDIM[layout]}-D for layout {layout!r}, "
                             f"got shape {tuple(t.shape)}")
        if t.shape[-1] < 1:
            raise ValueError(f"{name} has head dim 0; it must be >= 1")
    for name, t in (("alibi_slopes", slopes_left), ("alibi_slopes_right", slopes_right)):
        if t is not None and not t.dtype.is_floating_point:
            raise ValueError(f"{name} must be a float tensor, got {t.dtype}")
    for name, t in (("key_lengths", key_lengths), ("cu_seqlens_q", cu_seqlens_q),
                    ("cu_seqlens_k", cu_seqlens_k)):
        if t is None:
            continue
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == _torch.bool:
            raise ValueError(f"{name} must be an integer tensor, got {t.dtype}")
        if t.numel() and (int(t.min()) < -_INT32_MAX - 1 or int(t.max()) > _INT32_MAX):
            raise ValueError(f"{name} holds values outside int32: {t.tolist()}")
    if attn_mask is not None and attn_mask.dtype not in (_torch.bool,) + floating:
        raise ValueError(f"attn_mask must be bool or float, got {attn_mask.dtype}")
    if (layout == "thd") != (cu_seqlens_q is not None):
        raise ValueError("layout 'thd' (packed) needs cu_seqlens_q and cu_seqlens_k, and only it")
    if floats[2] > 0.0 and (dropout_rng is None or dropout_rng.shape != (2,)
                            or dropout_rng.dtype != _torch.int64):
        raise ValueError("dropout_p > 0 needs dropout_rng, an int64 tensor [seed, offset]")


REL_KINDS = {"kerple-log": 1, "kerple-power": 2, "t5": 3, "fire": 4}


def rel_param_count(kind: int, H: int, num_buckets: int, fire_hidden: int) -> int:
    """relative_bias_param_count of include/slope/attention.h."""
    if kind in (1, 2):
        return 2 * H
    if kind == 3:
        return num_buckets * H
    return (2 + H) * fire_hidden + H + 2


def _check_rel(q, slopes_left, rel_params, rel_ints, layout):
    """The relative bias arguments (see the comment at the top): both or neither, the sizes
    the kind needs, no ALiBi slopes beside them."""
    if (rel_params is None) != (rel_ints is None):
        raise ValueError("rel_params and rel_ints go together (both None without a relative bias)")
    if rel_params is None:
        return
    if len(rel_ints) != 6:
        raise ValueError("rel_ints must be [kind, num_buckets, max_distance, bidirectional, "
                         f"fire_hidden, fire_grid], got {len(rel_ints)} ints")
    kind, nb, max_distance, _, hidden, grid = rel_ints
    if kind not in (1, 2, 3, 4):
        raise ValueError(f"relative bias kind must be 1..4 ({REL_KINDS}), got {kind}")
    if slopes_left is not None:
        raise ValueError("a relative bias and ALiBi slopes exclude each other: pass one of them")
    if not rel_params.dtype.is_floating_point or rel_params.dim() != 1:
        raise ValueError(f"rel_params must be a 1-D float tensor, got {rel_params.dtype} of "
                         f"shape {tuple(rel_params.shape)}")
    if kind == 3 and (nb < 2 or max_distance < 1):
        raise ValueError(f"T5 buckets need num_buckets >= 2 and max_distance >= 1, got {nb} and "
                         f"{max_distance}")
    if kind == 4 and (hidden < 1 or grid < 1):
        raise ValueError(f"FIRE needs fire_hidden >= 1 and fire_grid >= 1, got {hidden} and {grid}")
    H = _view4(q, layout).shape[1]
    n = rel_param_count(kind, H, nb, hidden)
    if rel_params.numel() != n:
        raise ValueError(f"rel_params must have {n} elements for {H} heads, got "
                         f"{rel_params.numel()}")


def _check_empty_shapes(q, k, v, layout):
    """The shape rules the kernels' binding checks, for inputs it never sees (an empty
    dimension): q (B, H, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv) in the (B, H, T, D) view."""
    q4, k4, v4 = (_view4(t, layout) for t in (q, k, v))
    B, H, _, D = q4.shape
    if k4.shape[0] != B or k4.shape[3] != D:
        raise ValueError(f"k {tuple(k.shape)} does not match q {tuple(q.shape)} (batch, head dim)")
    if v4.shape[:3] != k4.shape[:3]:
        raise ValueError(f"v {tuple(v.shape)} does not match k {tuple(k.shape)}")
    if k4.shape[1] == 0 or H % k4.shape[1] != 0:
        raise ValueError(f"k has {k4.shape[1]} heads, which does not divide q's {H}")


def _options(ints: List[int], floats: List[float], cu_q, cu_k, rng, rel_ints=None):
    seed, offset = (0, 0) if rng is None else (int(x) for x in rng.tolist())
    o = _C.torch_options(
        causal=bool(ints[0]), scale=floats[0], query_positions=ints[1], window_left=ints[2],
        window_right=ints[3], softcap=floats[1], dropout_p=floats[2],
        dropout_seed=seed & (2**64 - 1), dropout_offset=offset & (2**64 - 1),
        skip_tolerance=floats[3], cu_seqlens_q=None if cu_q is None else cu_q.int(),
        cu_seqlens_k=None if cu_k is None else cu_k.int(), max_seqlen_q=ints[4],
        max_seqlen_k=ints[5])
    if rel_ints is None:
        return o
    kind, nb, max_distance, bidirectional, hidden, grid = rel_ints
    return _C.torch_options_with_rel(o, kind=kind, num_buckets=nb, max_distance=max_distance,
                                     bidirectional=bool(bidirectional), fire_hidden=hidden,
                                     fire_grid=grid)


def _mask_arg(mask: Optional[Tensor]) -> Optional[Tensor]:
    if mask is None or mask.dtype == _torch.bool:
        return mask
    return _f32(mask)


def _empty_inputs(q: Tensor, k: Tensor, v: Tensor) -> bool:
    return q.numel() == 0 or k.numel() == 0 or v.numel() == 0


@_torch.library.custom_op("slope::attention_forward", mutates_args=())
def _attention_forward(
    q: Tensor, k: Tensor, v: Tensor, slopes_left: Optional[Tensor],
    slopes_right: Optional[Tensor], key_lengths: Optional[Tensor], attn_mask: Optional[Tensor],
    cu_seqlens_q: Optional[Tensor], cu_seqlens_k: Optional[Tensor],
    dropout_rng: Optional[Tensor], layout: str, ints: List[int], floats: List[float],
    rel_params: Optional[Tensor] = None, rel_ints: Optional[List[int]] = None,
) -> Tuple[Tensor, Tensor]:
    _check_op_inputs(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q,
                     cu_seqlens_k, dropout_rng, layout, ints, floats)
    _check_rel(q, slopes_left, rel_params, rel_ints, layout)
    out = _torch.empty(q.shape[:-1] + (v.shape[-1],), dtype=_torch.float32)
    lse = _torch.empty(_lse_shape(q, layout), dtype=_torch.float32)
    if _empty_inputs(q, k, v):  # nothing to attend: the kernels' rule for empty rows
        _check_empty_shapes(q, k, v, layout)
        out.zero_()
        lse.fill_(-_math.inf)
        return out.to(q.dtype), lse
    q32, k32, v32 = _f32(q), _f32(k), _f32(v)
    _C.torch_forward(
        _view4(q32, layout), _view4(k32, layout), _view4(v32, layout), _view4(out, layout), lse,
        _opt_f32(slopes_left), _opt_f32(slopes_right),
        None if key_lengths is None else key_lengths.long(), _mask_arg(attn_mask),
        _options(ints, floats, cu_seqlens_q, cu_seqlens_k, dropout_rng, rel_ints),
        rel_params=_opt_f32(rel_params))
    return out.to(q.dtype), lse


@_attention_forward.register_fake
def _(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q, cu_seqlens_k,
      dropout_rng, layout, ints, floats, rel_params=None, rel_ints=None):
    out = q.new_empty(q.shape[:-1] + (v.shape[-1],))
    return out, q.new_empty(_lse_shape(q, layout), dtype=_torch.float32)


@_torch.library.custom_op("slope::attention_backward", mutates_args=())
def _attention_backward(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
    slopes_left: Optional[Tensor], slopes_right: Optional[Tensor],
    key_lengths: Optional[Tensor], attn_mask: Optional[Tensor],
    cu_seqlens_q: Optional[Tensor], cu_seqlens_k: Optional[Tensor],
    dropout_rng: Optional[Tensor], layout: str, ints: List[int], floats: List[float],
    slope_grads: bool, rel_params: Optional[Tensor] = None, rel_ints: Optional[List[int]] = None,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """dq, dk, dv (dtypes of q, k, v) and the slope gradients (float32, shaped like the slopes;
    empty when slope_grads is false or those slopes are not given). With a relative bias the
    fourth output is its parameters' gradient instead (float32, shaped like rel_params)."""
    _check_op_inputs(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q,
                     cu_seqlens_k, dropout_rng, layout, ints, floats)
    _check_rel(q, slopes_left, rel_params, rel_ints, layout)
    want_left = slope_grads and (slopes_left is not None or rel_params is not None)
    want_right = slope_grads and slopes_right is not None
    grad_of_left = slopes_left if rel_params is None else rel_params
    dsl = _torch.zeros_like(grad_of_left, dtype=_torch.float32) if want_left else q.new_empty(
        0, dtype=_torch.float32)
    dsr = _torch.zeros_like(slopes_right, dtype=_torch.float32) if want_right else q.new_empty(
        0, dtype=_torch.float32)
    if _empty_inputs(q, k, v):
        contiguous = _torch.contiguous_format
        return (_torch.zeros_like(q, memory_format=contiguous),
                _torch.zeros_like(k, memory_format=contiguous),
                _torch.zeros_like(v, memory_format=contiguous), dsl, dsr)
    # dq, dk, dv are written with the strides of q, k, v: give each input a dense layout.
    xs, gs = [], []
    for t in (q, k, v):
        t32 = _f32(t)
        g = _torch.empty_like(t32)
        if g.stride() != t32.stride():  # overlapping or broadcast strides
            t32 = t32.contiguous()
            g = _torch.empty_like(t32)
        xs.append(t32)
        gs.append(g)
    out32 = _f32(out).contiguous()
    dout32 = _f32(dout)
    if dout32.stride() != out32.stride():
        dout32 = dout32.contiguous()
    rel = rel_params is not None
    _C.torch_backward(
        _view4(dout32, layout), *(_view4(t, layout) for t in xs), _view4(out32, layout),
        lse.contiguous(), *(_view4(g, layout) for g in gs),
        dsl if want_left and not rel else None, dsr if want_right else None,
        _opt_f32(slopes_left), _opt_f32(slopes_right),
        None if key_lengths is None else key_lengths.long(), _mask_arg(attn_mask),
        _options(ints, floats, cu_seqlens_q, cu_seqlens_k, dropout_rng, rel_ints),
        rel_params=_opt_f32(rel_params), drel=dsl if want_left and rel else None)
    # Contiguous gradients whatever the inputs' layout, so that the fake implementation can say
    # which strides they have (a copy only when an input was laid out otherwise).
    return (gs[0].to(q.dtype).contiguous(), gs[1].to(k.dtype).contiguous(),
            gs[2].to(v.dtype).contiguous(), dsl, dsr)


@_attention_backward.register_fake
def _(dout, q, k, v, out, lse, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q,
      cu_seqlens_k, dropout_rng, layout, ints, floats, slope_grads, rel_params=None,
      rel_ints=None):
    def slope_grad(s):
        if slope_grads and s is not None:
            return _torch.empty_like(s, dtype=_torch.float32)
        return q.new_empty(0, dtype=_torch.float32)

    contiguous = _torch.contiguous_format
    return (_torch.empty_like(q, memory_format=contiguous),
            _torch.empty_like(k, memory_format=contiguous),
            _torch.empty_like(v, memory_format=contiguous),
            slope_grad(slopes_left if rel_params is None else rel_params),
            slope_grad(slopes_right))


# ---- CUDA: the Triton kernels ------------------------------------------------------------------
#
# The same operators on CUDA tensors run slope._triton's kernels (imported at the first CUDA
# call, so that CPU users need no triton). The fake implementations and the autograd above are
# shared, so torch.compile and torch.export see the same two opaque nodes on either device.


@_attention_forward.register_kernel("cuda")
def _(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q, cu_seqlens_k,
      dropout_rng, layout, ints, floats, rel_params=None, rel_ints=None):
    from slope import _triton

    _check_op_inputs(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q,
                     cu_seqlens_k, dropout_rng, layout, ints, floats)
    _check_rel(q, slopes_left, rel_params, rel_ints, layout)
    if _empty_inputs(q, k, v):
        _check_empty_shapes(q, k, v, layout)
    return _triton.attention_forward(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask,
                                     cu_seqlens_q, cu_seqlens_k, dropout_rng, layout, ints, floats,
                                     rel_params, rel_ints)


@_attention_backward.register_kernel("cuda")
def _(dout, q, k, v, out, lse, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q,
      cu_seqlens_k, dropout_rng, layout, ints, floats, slope_grads, rel_params=None,
      rel_ints=None):
    from slope import _triton

    _check_op_inputs(q, k, v, slopes_left, slopes_right, key_lengths, attn_mask, cu_seqlens_q,
                     cu_seqlens_k, dropout_rng, layout, ints, floats)
    _check_rel(q, slopes_left, rel_params, rel_ints, layout)
    return _triton.attention_backward(dout, q, k, v, out, lse, slopes_left, slopes_right,
                                      key_lengths, attn_mask, cu_seqlens_q, cu_seqlens_k,
                                      dropout_rng, layout, ints, floats, slope_grads,
                                      rel_params, rel_ints)


def _setup_context(ctx, inputs, output):
    (q, k, v, sl, sr, key_lengths, mask, cu_q, cu_k, rng, layout, ints, floats) = inputs[:13]
    rel_params, rel_ints = (tuple(inputs[13:]) + (None, None))[:2]
    out, lse = output
    ctx.mark_non_differentiable(lse)
    ctx.save_for_backward(q, k, v, out, lse, sl, sr, key_lengths, mask, cu_q, cu_k, rng,
                          rel_params)
    ctx.layout, ctx.ints, ctx.floats, ctx.rel_ints = layout, ints, floats, rel_ints
    ctx.n_inputs = len(inputs)


def _backward(ctx, dout, _dlse):
    q, k, v, out, lse, sl, sr, key_lengths, mask, cu_q, cu_k, rng, rel = ctx.saved_tensors
    need = tuple(ctx.needs_input_grad) + (False,)
    # First derivatives only (the backward operator has no derivative): detached inputs.
    args = (dout, q, k, v, out, lse, sl, sr, key_lengths, mask, cu_q, cu_k, rng)
    want_rel = rel is not None and bool(need[13])
    dq, dk, dv, dsl, dsr = _attention_backward(
        *(None if a is None else a.detach() for a in args), ctx.layout, ctx.ints, ctx.floats,
        bool(need[3] or need[4] or want_rel), None if rel is None else rel.detach(),
        ctx.rel_ints)
    grads = (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None,
             dsl if need[3] else None, dsr if need[4] else None,
             None, None, None, None, None, None, None, None)
    if ctx.n_inputs > 13:  # the relative bias's parameters, then rel_ints
        grads += (dsl.to(rel.dtype) if want_rel else None, None)
    return grads


# The operator's own autograd (for callers of torch.ops.slope.attention_forward)...
_attention_forward.register_autograd(_backward, setup_context=_setup_context)


class Attention(_torch.autograd.Function):
    """...and the same formula as an autograd.Function with setup_context, which torch.func
    transforms accept (custom_op's generated Function has none): the front doors call this."""

    @staticmethod
    def forward(*inputs):
        # The Function records the graph, not the operator's own autograd: detached inputs.
        return _attention_forward(*(a.detach() if isinstance(a, Tensor) else a for a in inputs))

    setup_context = staticmethod(_setup_context)
    backward = staticmethod(_backward)
