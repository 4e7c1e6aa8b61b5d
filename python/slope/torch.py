"""slope.torch: the fused ALiBi attention as PyTorch operators (CPU and CUDA).

Front doors, each a drop-in for the call it is named after:

    out = slope.torch.scaled_dot_product_attention(q, k, v, is_causal=True, alibi_slopes=m)
    out = slope.torch.flash_attn_func(q, k, v, causal=True, alibi_slopes=m)        # (B, T, H, D)
    out = slope.torch.flash_attn_varlen_func(q, k, v, cu_q, cu_k, max_q, max_k, ...)  # packed
    out = slope.torch.flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=lens, ...)
    out = slope.torch.attention(q, k, v, causal=True, alibi_slopes=m)              # (B, H, T, D)

All of them call two operators, ``torch.ops.slope.attention_forward`` and
``torch.ops.slope.attention_backward`` (``torch.library.custom_op``, with fake implementations
and autograd registered), so ``torch.compile(fullgraph=True)``, ``torch.export`` and
``torch.func.grad`` see one opaque node each. The operators run the C++ kernels on the tensors'
own memory (DLPack; outputs allocated by torch), any strides with a contiguous last dimension.

dtypes: q, k and v are float32, bfloat16 or float16 (all three the same). The kernels compute in
float32: a bf16/fp16 input is converted to float32 at the start of each operator, and the output
(and dq, dk, dv) back to the input dtype at the end — two extra passes over O(B·H·T·D) elements
per tensor, against O(B·H·Tq·Tk·D) of attention. logsumexp is float32. Slopes are float32
(converted if given in another dtype; nn.Parameters get their gradient through the conversion).
Under ``torch.autocast("cpu", ...)``, q, k and v are cast to the autocast dtype first, as SDPA's
are. Slopes may be of either sign; +inf masks a side.

Position conventions: every front door keeps the original's. SDPA's ``is_causal`` is upper-left
aligned (query i sees keys j <= i, torch.tril), and its ALiBi distance i − j is measured from the
same place; flash-attn's causal mask, window and ALiBi are lower-right aligned (query i at
position i + Tk − Tq); flash_attn_with_kvcache puts the new queries at the end of each row's own
keys (cache_seqlens), not at the end of the buffer.

The logsumexp outputs are not differentiable (as in flash-attn): gradients flow through the
attention output only.

Devices: CPU tensors run the C++ kernels; CUDA tensors run the Triton kernels (slope._triton,
needs the `triton` package), with the same features, dropout mask and conventions. On CUDA the
tile products of bf16/fp16 inputs run in that dtype (P and dS are rounded to it, as in
flash-attention); fp32 inputs multiply in full fp32 (no TF32). The GPU kernels' speed has not
been measured yet (no GPU was at hand): see docs/triton.md. On CUDA the guarantee that an
invisible NaN/inf key or value never reaches a row holds for keys past the key lengths, other
documents and blocks outside the causal/window range, not yet inside a tile (docs/triton.md). Every input of one call lives on
q's device; integer arguments (key lengths, cu_seqlens) and slopes may also be CPU tensors.
"""

import math as _math

import numpy as _np
import torch as _torch
from torch import Tensor

from slope._torch_ops import Attention as _Attention

__all__ = [
    "attention",
    "scaled_dot_product_attention",
    "flash_attn_func",
    "flash_attn_varlen_func",
    "flash_attn_with_kvcache",
]

_FLOAT_DTYPES = (_torch.float32, _torch.bfloat16, _torch.float16)
_QUERY_POSITIONS = {"lower_right": 0, "upper_left": 1, "key_lengths": 2}
_DEFAULT_SKIP_TOLERANCE = 2.0**-24  # AttentionProblem::skip_tolerance's default


# ---- argument checks shared by the front doors ------------------------------------------------


def _check_qkv(q, k, v, names=("q", "k", "v"), ndim=None):
    """q, k, v: CPU or CUDA tensors of one float dtype on one device; with ndim = (n, "(dims)"),
    n-D each."""
    for name, t in zip(names, (q, k, v)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.device.type not in ("cpu", "cuda"):
            raise ValueError(
                f"{name} is on {t.device}; slope.torch runs on CPU (C++ kernels) and CUDA "
                f"(Triton kernels): pass {name}.cpu()")
        if t.device != q.device:
            raise ValueError(f"{name} is on {t.device} but {names[0]} is on {q.device}: q, k and v "
                             "must be on one device")
        if t.dtype not in _FLOAT_DTYPES:
            raise ValueError(
                f"{name} must be float32, bfloat16 or float16, got {t.dtype}; pass {name}.float()")
        if ndim is not None and t.dim() != ndim[0]:
            raise ValueError(f"{name} must be {ndim[0]}-D {ndim[1]}, got shape {tuple(t.shape)}")
    for name, t in zip(names[1:], (k, v)):
        if t.dtype != q.dtype:
            raise ValueError(
                f"{name} is {t.dtype} but {names[0]} is {q.dtype}: q, k and v must share a dtype")


def _autocast(q, k, v):
    """Under torch.autocast on q's device type, q, k and v go to the autocast dtype, as SDPA's
    do."""
    dev = q.device.type
    if _torch.is_autocast_enabled(dev):
        dt = _torch.get_autocast_dtype(dev)
        return q.to(dt), k.to(dt), v.to(dt)
    return q, k, v


def _on_device(name, t, device):
    """A tensor argument may live on the CPU or on q's device."""
    if t.device.type != "cpu" and t.device != device:
        raise ValueError(f"{name} is on {t.device} but q is on {device}: pass {name}.to(q.device)")


def _slopes_arg(name, s, device):
    """Slopes as a float32 tensor (H,) or (B, H) on `device` (q's); differentiable when s is a
    tensor."""
    if s is None:
        return None
    if isinstance(s, Tensor):
        _on_device(name, s, device)
        if s.dtype.is_complex or s.dtype == _torch.bool:
            raise ValueError(f"{name} must be real numbers, got {s.dtype}")
        return s.to(device=device, dtype=_torch.float32)
    a = _np.asarray(s)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be real numbers, got dtype {a.dtype}")
    return _torch.from_numpy(_np.ascontiguousarray(a, dtype=_np.float32)).to(device)


def _plain_arg(name, x, kind, device):
    """key_lengths / cache_seqlens / cu_seqlens (integers) or attn_mask: no gradient; on the
    CPU or on `device` (q's)."""
    if x is None:
        return None
    if not isinstance(x, Tensor):
        x = _torch.as_tensor(_np.asarray(x))
    _on_device(name, x, device)
    if x.requires_grad:
        raise ValueError(
            f"{name} requires grad, but slope gives no gradient for it: pass {name}.detach()")
    if kind == "int" and (x.dtype.is_floating_point or x.dtype.is_complex
                          or x.dtype == _torch.bool):
        raise ValueError(f"{name} must be an integer tensor, got {x.dtype}")
    if kind == "mask" and x.dtype not in (_torch.bool,) + _FLOAT_DTYPES:
        raise ValueError(
            f"{name} must be bool (True = may attend) or a float additive bias, got {x.dtype}")
    return x


def _window(window_size):
    try:
        left, right = (int(w) for w in window_size)
    except (TypeError, ValueError):
        raise ValueError(f"window_size must be a pair (left, right) of ints, got {window_size!r}")
    for name, w in (("window_size[0]", left), ("window_size[1]", right)):
        if w < -1:
            raise ValueError(f"{name} must be -1 (unbounded) or >= 0, got {w}")
    return left, right


def _dropout_rng(dropout_p):
    """[seed, offset] for the kernels' counter-based generator, drawn from torch's generator (so
    torch.manual_seed reproduces the dropout mask), or None without dropout."""
    p = float(dropout_p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    if p == 0.0:
        return None
    return _torch.randint(0, 2**62, (2,), dtype=_torch.int64)


def _rel_args(rel, q, sl):
    """(rel_params, rel_ints) of a slope.relative_bias.RelativeBias, or () without one: the
    operators' two trailing arguments (slope._torch_ops)."""
    if rel is None:
        return ()
    if not (callable(getattr(rel, "flat", None)) and callable(getattr(rel, "rel_ints", None))):
        raise ValueError("relative_bias must be a slope.relative_bias.RelativeBias, got "
                         f"{type(rel).__name__}")
    if sl is not None:
        raise ValueError("relative_bias and alibi_slopes exclude each other: pass one of them")
    if q.shape[1] != rel.n_heads:
        raise ValueError(f"q has {q.shape[1]} heads but relative_bias was made for {rel.n_heads}")
    params = rel.flat()
    if params.device != q.device:
        raise ValueError(f"relative_bias's parameters are on {params.device} but q is on "
                         f"{q.device}: move the module with .to(q.device)")
    return (params, rel.rel_ints())


def _run(q, k, v, layout, *, sl=None, sr=None, key_lengths=None, mask=None, cu_q=None, cu_k=None,
         max_q=0, max_k=0, causal=False, scale=None, query_positions="lower_right",
         window=(-1, -1), softcap=0.0, dropout_p=0.0, skip_tolerance=None, rel=None):
    q, k, v = _autocast(q, k, v)
    d = q.shape[-1]
    if d < 1:
        raise ValueError(f"q has head dim {d}; it must be >= 1")
    scale = 1.0 / _math.sqrt(d) if scale is None else float(scale)
    if not _math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    softcap = float(softcap)
    if not (softcap >= 0.0 and _math.isfinite(softcap)):
        raise ValueError(f"softcap must be finite and >= 0, got {softcap}")
    tol = _DEFAULT_SKIP_TOLERANCE if skip_tolerance is None else float(skip_tolerance)
    left, right = _window(window)
    ints = [int(bool(causal)), _QUERY_POSITIONS[query_positions], left, right, int(max_q),
            int(max_k)]
    floats = [scale, softcap, float(dropout_p), tol]
    dev = q.device
    return _Attention.apply(
        q, k, v, _slopes_arg("alibi_slopes", sl, dev), _slopes_arg("alibi_slopes_right", sr, dev),
        _plain_arg("key_lengths", key_lengths, "int", dev),
        _plain_arg("attn_mask", mask, "mask", dev), _plain_arg("cu_seqlens_q", cu_q, "int", dev),
        _plain_arg("cu_seqlens_k", cu_k, "int", dev),
        _dropout_rng(dropout_p), layout, ints, floats, *_rel_args(rel, q, sl))


# ---- front doors ------------------------------------------------------------------------------


def attention(q, k, v, *, causal=False, scale=None, alibi_slopes=None, alibi_slopes_right=None,
              key_lengths=None, attn_mask=None, skip_tolerance=None, window_size=(-1, -1),
              softcap=0.0, dropout_p=0.0, query_positions="lower_right", return_lse=False,
              relative_bias=None):
    """Fused attention with an optional ALiBi bias, differentiable in q, k, v and the slopes.

    slope's own call shape, the numpy API's (slope.attention) over tensors:
    q (B, H, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv), H % Hkv == 0.
    causal: mask keys after the query's position; positions follow ``query_positions``:
        "lower_right" (query i at i + Tk − Tq, the default), "upper_left" (at i) or
        "key_lengths" (at i + key_lengths[b] − Tq: decoding into a preallocated buffer).
    alibi_slopes: (H,) or (B, H) slopes m_left (and m_right when alibi_slopes_right is None), any
        real number, +inf masks that side; bias −m·|p_i − j|. Tensors (nn.Parameters) get
        gradients. alibi_slopes_right: the slopes of keys right of the query, or None.
    key_lengths: (B,) ints; keys j >= key_lengths[b] are masked.
    attn_mask: bool (True = may attend) or float additive, broadcastable to (B, H, Tq, Tk).
    window_size: (left, right), keys outside [p_i − left, p_i + right] masked; −1 unbounded.
    softcap: scores x become softcap·tanh(x/softcap) before the bias (0: off).
    dropout_p: attention dropout, drawn from torch's generator (apply it only in training).
    skip_tolerance: far-tile skipping bound (None: 2**-24; 0 disables).
    relative_bias: a learned relative bias, slope.relative_bias.RelativeBias (Kerple log/power,
        T5 buckets, FIRE; docs/relative-biases.md) made for H heads, instead of alibi_slopes;
        its nn.Parameters get gradients. Positions as for ALiBi (``query_positions``).
    Returns out (B, H, Tq, Dv) in q's dtype, or (out, lse) with lse (B, H, Tq) float32.
    Hostile numbers (every front door): a key or value a row cannot see (causal, a mask, key
    lengths, a window, another document) never changes that row, forward or backward, even if
    it is NaN or ±inf; a row with no visible key gives zeros, lse −inf and zero gradients; a
    finite slope must keep |slope|·(Tq + Tk) within float32, else ValueError.
    """
    _check_qkv(q, k, v, ndim=(4, "(B, H, T, D)"))
    if query_positions not in _QUERY_POSITIONS:
        raise ValueError(
            f"query_positions must be one of {sorted(_QUERY_POSITIONS)}, got {query_positions!r}")
    out, lse = _run(q, k, v, "bhtd", sl=alibi_slopes, sr=alibi_slopes_right,
                    key_lengths=key_lengths, mask=attn_mask, causal=causal, scale=scale,
                    query_positions=query_positions, window=window_size, softcap=softcap,
                    dropout_p=dropout_p, skip_tolerance=skip_tolerance, rel=relative_bias)
    return (out, lse) if return_lse else out


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False, *,
                                 alibi_slopes=None):
    """torch.nn.functional.scaled_dot_product_attention plus ALiBi slopes: a call site changes by
    one import.

    query (B, H, L, E) or (H, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev); SDPA's semantics:
    attn_mask bool (True = takes part) or float (added), broadcastable to (B, H, L, S), not
    together with is_causal; is_causal is upper-left aligned (query i sees keys j <= i);
    dropout_p is applied whenever it is > 0 (pass 0.0 in eval, as with SDPA); scale defaults
    to 1/sqrt(E); enable_gqa allows Hkv < H. alibi_slopes (H,) or (B, H) adds −m·|i − j|
    (distances from the same upper-left positions). A row that can see no key gives zeros.
    Returns (B, H, L, Ev) in query's dtype.
    """
    _check_qkv(query, key, value, ("query", "key", "value"))
    if query.dim() == 3 and key.dim() == 3 and value.dim() == 3:
        q, k, v = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        if attn_mask is not None and attn_mask.dim() == 3:
            attn_mask = attn_mask.unsqueeze(0)
    elif query.dim() == 4 and key.dim() == 4 and value.dim() == 4:
        q, k, v = query, key, value
    else:
        raise ValueError(
            "query, key and value must all be 4-D (B, H, L, E) or all 3-D (H, L, E), got shapes "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    if is_causal and attn_mask is not None:
        raise ValueError("attn_mask must be None when is_causal=True (as in SDPA)")
    if k.shape[1] != q.shape[1] and not enable_gqa:
        raise ValueError(
            f"key has {k.shape[1]} heads but query has {q.shape[1]}: pass enable_gqa=True for "
            "grouped-query attention")
    out, _ = _run(q, k, v, "bhtd", sl=alibi_slopes, mask=attn_mask, causal=is_causal,
                  scale=scale, query_positions="upper_left", dropout_p=dropout_p)
    return out.squeeze(0) if query.dim() == 3 else out


def _flash_returns(out, lse, return_attn_probs):
    # flash-attn returns (out, softmax_lse, S_dmask); S_dmask is for its own tests and is None
    # here (slope never materialises the probabilities).
    return (out, lse, None) if return_attn_probs else out


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False,
                    window_size=(-1, -1), softcap=0.0, alibi_slopes=None, deterministic=False,
                    return_attn_probs=False):
    """flash_attn.flash_attn_func's call shape and semantics, on the CPU.

    q (B, Tq, H, D), k (B, Tk, Hkv, D), v (B, Tk, Hkv, Dv). causal and window_size are aligned
    to the bottom-right corner (query i at position i + Tk − Tq); alibi_slopes (H,) or (B, H)
    add −slope·|i + Tk − Tq − j|; softcap caps the scaled scores before the bias.
    ``deterministic`` is accepted and always true here (the backward has no atomics).
    Returns out (B, Tq, H, Dv), or (out, softmax_lse (B, H, Tq) float32, None) with
    return_attn_probs.
    """
    del deterministic
    _check_qkv(q, k, v, ndim=(4, "(B, T, H, D)"))
    out, lse = _run(q, k, v, "bthd", sl=alibi_slopes, causal=causal, scale=softmax_scale,
                    window=window_size, softcap=softcap, dropout_p=dropout_p)
    return _flash_returns(out, lse, return_attn_probs)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                           dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                           softcap=0.0, alibi_slopes=None, deterministic=False,
                           return_attn_probs=False):
    """flash_attn.flash_attn_varlen_func: packed sequences, (total, H, D) each.

    Document b's queries are rows cu_seqlens_q[b]:cu_seqlens_q[b+1] of q, its keys rows
    cu_seqlens_k[b]:cu_seqlens_k[b+1] of k and v (int32 (B + 1,), from 0). Positions, causality,
    window and ALiBi restart in each document (bottom-right aligned per document); nothing
    attends across documents. alibi_slopes (H,) or (B, H) (one row per document). Returns out
    (total_q, H, Dv), or (out, softmax_lse (H, total_q) float32, None).
    """
    del deterministic
    _check_qkv(q, k, v, ndim=(3, "(total, H, D)"))
    out, lse = _run(q, k, v, "thd", sl=alibi_slopes, cu_q=cu_seqlens_q, cu_k=cu_seqlens_k,
                    max_q=max_seqlen_q, max_k=max_seqlen_k, causal=causal, scale=softmax_scale,
                    window=window_size, softcap=softcap, dropout_p=dropout_p)
    return _flash_returns(out, lse, return_attn_probs)


def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, cache_seqlens=None,
                            softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                            alibi_slopes=None, return_softmax_lse=False):
    """flash_attn.flash_attn_with_kvcache: decoding against a preallocated KV buffer.

    q (B, Tq, H, D); k_cache, v_cache (B, S, Hkv, D/Dv). With k, v (B, Tnew, Hkv, ·) given, they
    are first written into the caches in place at rows cache_seqlens[b]:cache_seqlens[b] + Tnew
    (as flash-attn does), and the keys seen are cache_seqlens + Tnew. Row b's queries sit at the
    end of its own keys, not at the end of the buffer, so the buffer's length never changes the
    result. cache_seqlens: int (B,) or an int; None: the whole buffer. Not differentiable through
    the in-place append (inference).
    """
    _check_qkv(q, k_cache, v_cache, ("q", "k_cache", "v_cache"), ndim=(4, "(B, T, H, D)"))
    B, S, Hkv = k_cache.shape[0], k_cache.shape[1], k_cache.shape[2]
    if cache_seqlens is None:
        lens = _torch.full((B,), S, dtype=_torch.int64)
    elif isinstance(cache_seqlens, bool) or not isinstance(cache_seqlens, (int, Tensor)):
        raise ValueError(f"cache_seqlens must be an int or an integer tensor (B,), got "
                         f"{type(cache_seqlens).__name__}")
    elif isinstance(cache_seqlens, int):
        lens = _torch.full((B,), cache_seqlens, dtype=_torch.int64)
    else:
        lens = _plain_arg("cache_seqlens", cache_seqlens, "int", q.device).long()
        if lens.shape != (B,):
            raise ValueError(f"cache_seqlens must have shape (B,) = ({B},), got {tuple(lens.shape)}")
    if B and (int(lens.min()) < 0 or int(lens.max()) > S):
        raise ValueError(f"cache_seqlens must lie in [0, {S}] (the cache length), got {lens.tolist()}")
    if (k is None) != (v is None):
        raise ValueError("k and v must be given together")
    if k is not None:
        # Everything is checked before the caches are written: a refused call changes nothing.
        _check_qkv(q, k, v, ("q", "k", "v"), ndim=(4, "(B, T_new, Hkv, D)"))
        t_new = k.shape[1]
        for name, t, cache in (("k", k, k_cache), ("v", v, v_cache)):
            want = (B, t_new, Hkv, cache.shape[3])
            if tuple(t.shape) != want:
                raise ValueError(f"{name} must have shape {want} to go into {name}_cache "
                                 f"{tuple(cache.shape)}, got {tuple(t.shape)}")
        if B and int(lens.max()) + t_new > S:
            raise ValueError(f"cache_seqlens + {t_new} new keys exceed the cache length {S}")
        m = _slopes_arg("alibi_slopes", alibi_slopes, q.device)
        H = q.shape[2]
        if m is not None and tuple(m.shape) not in ((H,), (B, H)):
            raise ValueError(f"alibi_slopes must have shape ({H},) or ({B}, {H}), got "
                             f"{tuple(m.shape)}")
        _window(window_size)
        with _torch.no_grad():
            for b in range(B):
                n = int(lens[b])
                k_cache[b, n:n + t_new] = k[b]
                v_cache[b, n:n + t_new] = v[b]
        lens = lens + t_new
    out, lse = _run(q, k_cache, v_cache, "bthd", sl=alibi_slopes, key_lengths=lens,
                    causal=causal, scale=softmax_scale, query_positions="key_lengths",
                    window=window_size, softcap=softcap)
    return (out, lse) if return_softmax_lse else out
