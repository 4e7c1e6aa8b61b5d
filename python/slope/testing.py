"""What a test of an attention implementation needs from slope: the float64 reference and the
rounding-error bounds of an fp32 evaluation, on the same arguments as ``slope.attention``.

    ref = slope.testing.attention_reference(q, k, v, dout, causal=True, alibi_slopes=m)
    bound = slope.testing.attention_error_bounds(q, k, v, dout, causal=True, alibi_slopes=m)
    assert np.all(np.abs(out - ref["out"]) <= bound["out"])

Both take float32 numpy arrays (B, H, T, D) and return dicts of float64 arrays in the contiguous
layouts: ``out`` (B, H, Tq, Dv) and ``lse`` (B, H, Tq); with ``dout`` (B, H, Tq, Dv) also the
gradients of sum(out * dout): ``dq``, ``dk``, ``dv`` and ``dslopes``/``dslopes_right`` (H,) (None
when those slopes are not given; with one shared slope vector ``dslopes`` is its whole
gradient).

The bounds are per element, computed in float64 from the input itself, so they are the same on
every machine: the model (first order in u = 2^-24, after Higham 2002 and Higham & Mary 2019) is
stated in include/slope/attention.h beside ``attention_error_bounds``. They hold for any fp32
flash-style implementation: slope's kernels on every instruction set, or a naive one.
"""

from . import _C, _float32, _options

__all__ = ["attention_reference", "attention_error_bounds", "attention_dropout_mask"]

_NAMES = ("out", "lse", "dq", "dk", "dv", "dslopes", "dslopes_right")


def _dout(dout):
    return None if dout is None else _float32("dout", dout)


_QUERY_POSITIONS = {"lower_right": 0, "upper_left": 1, "key_lengths": 2}


def _extras(query_positions, window_size, softcap):
    if query_positions not in _QUERY_POSITIONS:
        raise ValueError(
            f"query_positions must be one of {sorted(_QUERY_POSITIONS)}, got {query_positions!r}")
    left, right = (int(w) for w in window_size)
    return dict(query_positions=_QUERY_POSITIONS[query_positions], window_left=left,
                window_right=right, softcap=float(softcap))


def attention_reference(q, k, v, dout=None, *, causal=False, scale=None, alibi_slopes=None,
                        alibi_slopes_right=None, key_lengths=None, attn_mask=None,
                        query_positions="lower_right", window_size=(-1, -1), softcap=0.0):
    """float64 results of the naive reference on the float32 inputs (see the module doc).
    query_positions, window_size and softcap as in slope.torch.attention; slopes (H,) or (B, H)
    (then the slope gradients are (B, H) too)."""
    opts = _options(causal, scale, alibi_slopes, alibi_slopes_right, key_lengths, attn_mask, None)
    del opts["skip_tolerance"]
    r = _C.attention_reference(_float32("q", q), _float32("k", k), _float32("v", v), _dout(dout),
                               **opts, **_extras(query_positions, window_size, softcap))
    return dict(zip(_NAMES, r))


def attention_error_bounds(q, k, v, dout=None, *, causal=False, scale=None, alibi_slopes=None,
                           alibi_slopes_right=None, key_lengths=None, attn_mask=None,
                           skip_tolerance=None, query_positions="lower_right",
                           window_size=(-1, -1), softcap=0.0):
    """Per-element bounds on |fp32 result - exact| (see the module doc); ``skip_tolerance`` as
    in ``slope.attention`` (keys it may drop count as lost whole); the other keywords as in
    attention_reference."""
    r = _C.attention_error_bounds(
        _float32("q", q), _float32("k", k), _float32("v", v), _dout(dout),
        **_options(causal, scale, alibi_slopes, alibi_slopes_right, key_lengths, attn_mask,
                   skip_tolerance), **_extras(query_positions, window_size, softcap))
    return dict(zip(_NAMES, r))


def attention_dropout_mask(B, H, Tq, Tk, dropout_p, seed, offset):
    """The keep mask Z (B, H, Tq, Tk) (bool) of attention dropout with these parameters: the
    kernels keep P_ij (scaled by 1/(1 - dropout_p)) where Z is True. The mapping (Philox4x32-10
    over (seed, offset, b, h, i, j)) is stated in include/slope/attention.h. slope.torch's front
    doors draw (seed, offset) as ``torch.randint(0, 2**62, (2,)).tolist()`` from torch's
    generator, so ``torch.manual_seed`` reproduces their mask."""
    return _C.attention_dropout_mask(int(B), int(H), int(Tq), int(Tk), float(dropout_p),
                                     int(seed), int(offset)).astype(bool)
