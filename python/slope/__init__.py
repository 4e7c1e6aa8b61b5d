"""slope: fused ALiBi attention on CPU.

Attention with a position bias given as per-head slopes rather than a materialised T×T mask:

    score(i, j) = scale · q_i·k_j + bias_h(i, j) + attn_mask(i, j)
    bias_h(i, j) = −m_left[h]·(p_i − j)  for j ≤ p_i,   −m_right[h]·(j − p_i)  for j > p_i

with query i at position p_i = i + Tk − Tq (bottom-right alignment, as when decoding with a KV
cache). A slope of +inf masks its side (the diagonal is never masked); ``causal`` masks j > p_i.
A row with no visible key gives output 0 and logsumexp −inf.

Arrays are float32 numpy arrays laid out (B, H, T, D); ``k`` and ``v`` may have fewer heads
(Hkv, with H % Hkv == 0, grouped queries). Any strides are accepted as long as the last
dimension is contiguous; the forward pass reads them in place. Bad input raises ValueError
naming the argument.

``slope.torch`` (imported on first use) wraps the same kernels as PyTorch custom operators with
SDPA- and flash-attn-shaped front doors;
``slope.testing`` gives the float64 reference and per-element fp32 error bounds, for tests.
"""

import numpy as _np

from . import _slope as _C

__version__ = "0.1.0"

__all__ = [
    "attention",
    "attention_backward",
    "alibi_slopes",
    "alibi_slopes_geometric",
    "alibi_slopes_nonsymmetric",
    "cpu_isa",
    "cpu_isas",
    "set_cpu_isa",
    "testing",
    "torch",
]


# Only what nanobind cannot report as a ValueError is checked here (is it a numpy array of the
# right dtype); shapes, strides and values are checked in one place, the C++ binding.
def _float32(name, x):
    if not isinstance(x, _np.ndarray):
        raise ValueError(f"{name} must be a numpy array of float32, got {type(x).__name__}")
    if x.dtype != _np.float32:
        raise ValueError(
            f"{name} must be float32, got {x.dtype}; convert with {name}.astype(np.float32)"
        )
    return x


def _slopes(name, s):
    if s is None:
        return None
    a = _np.asarray(s)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be an array of real numbers, got dtype {a.dtype}")
    return _np.ascontiguousarray(a, dtype=_np.float32)


def _key_lengths(lengths):
    if lengths is None:
        return None
    a = _np.asarray(lengths)
    if a.dtype.kind not in "iu":
        raise ValueError(f"key_lengths must be an integer array (B,), got dtype {a.dtype}")
    if a.dtype == _np.uint64 and a.size and a.max() > _np.iinfo(_np.int64).max:
        raise ValueError("key_lengths holds a value too large for any key length")
    return _np.ascontiguousarray(a, dtype=_np.int64)


def _mask(mask):
    if mask is None:
        return None
    if not isinstance(mask, _np.ndarray):
        raise ValueError(
            f"attn_mask must be a numpy array (bool or float32), got {type(mask).__name__}"
        )
    if mask.dtype not in (_np.bool_, _np.float32):
        raise ValueError(
            f"attn_mask must be bool (True = may attend) or float32 (additive), got {mask.dtype}"
        )
    return mask


def _number(name, x):
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or None, got {x!r}") from None


def _options(causal, scale, alibi_slopes, alibi_slopes_right, key_lengths, attn_mask,
             skip_tolerance):
    return dict(
        causal=bool(causal),
        scale=_number("scale", scale),
        alibi_slopes=_slopes("alibi_slopes", alibi_slopes),
        alibi_slopes_right=_slopes("alibi_slopes_right", alibi_slopes_right),
        key_lengths=_key_lengths(key_lengths),
        attn_mask=_mask(attn_mask),
        skip_tolerance=_number("skip_tolerance", skip_tolerance),
    )


def attention(q, k, v, *, causal=False, scale=None, alibi_slopes=None, alibi_slopes_right=None,
              key_lengths=None, attn_mask=None, return_lse=False, skip_tolerance=None):
    """Fused attention with an optional ALiBi bias.

    q: (B, H, Tq, D), k: (B, Hkv, Tk, D), v: (B, Hkv, Tk, Dv), float32, last dim contiguous.
    causal: mask keys after the query's position (bottom-right aligned when Tq < Tk).
    scale: multiplies q·k (default 1/sqrt(D)); the ALiBi bias is added after it, unscaled.
    alibi_slopes: (H,) slopes m_left (and m_right when alibi_slopes_right is None); any finite
        value (a negative one makes far keys heavier, as in flash-attn), or +inf to mask that
        side; NaN and -inf are refused.
    alibi_slopes_right: (H,) slopes for keys right of the query, or None (same as the left).
    key_lengths: (B,) integers in [0, Tk]; keys j >= key_lengths[b] are masked.
    attn_mask: bool (True = may attend, as in torch SDPA) or float32 additive, shape
        (Bm, Hm, Tq, Tk) with Bm in {1, B}, Hm in {1, H}, or its trailing 2 or 3 dims; query
        and key dims of size 1 broadcast too (by a copy).
    skip_tolerance: far-tile skipping bound (None: the library default 2**-24; 0 disables).

    Returns out (B, H, Tq, Dv) float32, or (out, lse) with lse (B, H, Tq) the natural-log
    logsumexp of each row's scores when return_lse is true.

    Hostile numbers: a key or value that a row cannot see (causal, attn_mask, key_lengths, a
    masked side) never changes that row's out, lse or gradients, even if it is NaN or ±inf;
    results that depend on a non-finite input are unspecified (NaN in practice). A row with no
    visible key (key_lengths[b] = 0, a fully masked row) gives zeros and lse -inf, never NaN.
    A slope of 0 is no bias on that side; a finite slope must keep |slope|·(Tq + Tk) within
    float32 (3.4e38), else ValueError.
    """
    out, lse = _C.attention_forward(
        _float32("q", q), _float32("k", k), _float32("v", v),
        **_options(causal, scale, alibi_slopes, alibi_slopes_right, key_lengths, attn_mask,
                   skip_tolerance))
    return (out, lse) if return_lse else out


def attention_backward(dout, q, k, v, out, lse, *, causal=False, scale=None, alibi_slopes=None,
                       alibi_slopes_right=None, key_lengths=None, attn_mask=None,
                       skip_tolerance=None, slope_grads=True):
    """Gradients of attention(): takes dout (B, H, Tq, Dv) and the forward's out and lse.

    Pass the same keywords as to the forward call. Returns (dq, dk, dv, dslopes,
    dslopes_right); a slope gradient is None when that slope vector was not given, or when
    slope_grads=False (fixed slopes: the kernel then skips the slope-gradient work). With
    alibi_slopes_right None (one shared vector), dslopes is the whole gradient of that vector.
    The attention mask and key lengths get no gradient.
    """
    return _C.attention_backward(
        _float32("dout", dout), _float32("q", q), _float32("k", k), _float32("v", v),
        _float32("out", out), _float32("lse", lse),
        **_options(causal, scale, alibi_slopes, alibi_slopes_right, key_lengths, attn_mask,
                   skip_tolerance), slope_grads=bool(slope_grads))


def alibi_slopes(n_heads, max_bias=8.0):
    """Press et al.'s slopes (get_slopes) for any head count, generalised by max_bias (float32)."""
    return _C.alibi_slopes(int(n_heads), float(max_bias))


def alibi_slopes_geometric(n_heads, max_bias=8.0):
    """The plain geometric 2**(-max_bias·h/H), h = 1..H (float32), used by many ports."""
    return _C.alibi_slopes_geometric(int(n_heads), float(max_bias))


def alibi_slopes_nonsymmetric(n_heads, max_bias=8.0):
    """(left, right) slopes of the ALiBi authors' encoder: half the heads look left, half right.

    Both halves get the slopes of n_heads/2 heads; +inf masks a side. n_heads must be even.
    """
    return _C.alibi_slopes_nonsymmetric(int(n_heads), float(max_bias))


def cpu_isa():
    """The vector instruction set the CPU kernels dispatch to: "avx512", "avx2" or "generic" (the
    best this processor has, or what the SLOPE_ISA environment variable or set_cpu_isa chose)."""
    return _C.cpu_isa()


def cpu_isas():
    """The instruction sets this processor runs, from "generic" up (a list of str)."""
    return list(_C.cpu_isas())


def set_cpu_isa(name):
    """Makes every later kernel call use instruction set `name` (one of cpu_isas()), for tests
    and benchmarks; ValueError if this processor lacks it. Not thread-safe against running calls."""
    _C.set_cpu_isa(str(name))


def __getattr__(name):
    # slope.torch imports torch: load it on first use, so `import slope` needs only numpy.
    if name in ("torch", "testing"):
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
