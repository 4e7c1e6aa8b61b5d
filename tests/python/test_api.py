"""The numpy API without an oracle: argument checking, layouts, mask broadcasting, slope presets.

Bad input must raise ValueError naming the argument, never crash the interpreter.
"""

import numpy as np
import pytest

import slope


def qkv(rng, B=2, H=4, Hkv=None, Tq=9, Tk=11, D=8, Dv=None):
    f = lambda *s: rng.standard_normal(s, dtype=np.float32)  # noqa: E731
    return f(B, H, Tq, D), f(B, Hkv or H, Tk, D), f(B, Hkv or H, Tk, Dv or D)


def test_public_names():
    for name in ("attention", "attention_backward", "alibi_slopes", "alibi_slopes_geometric",
                 "alibi_slopes_nonsymmetric", "cpu_isa"):
        assert callable(getattr(slope, name)), name
    assert slope.cpu_isa() in ("avx512", "avx2", "generic")


# ---- bad input -------------------------------------------------------------------------------


def bad_forward_cases(rng):
    q, k, v = qkv(rng)
    H = q.shape[1]
    m = slope.alibi_slopes(H)
    yield "q", dict(q=q.astype(np.float64))
    yield "q", dict(q=q.tolist())
    yield "q", dict(q=q[0])  # 3-D
    yield "q", dict(q=q[..., ::2])  # strided last dimension
    yield "q", dict(q=np.zeros((2, 4, 0, 8), np.float32))
    yield "k", dict(k=k[:1])  # batch differs
    yield "k", dict(k=k[..., :5])  # head dim differs
    yield "k", dict(k=np.concatenate([k, k[:, :1]], 1))  # H % Hkv != 0 (5 heads)
    yield "v", dict(v=v[:, :, :7])  # Tk differs
    yield "v", dict(v=v.astype(np.float16))
    yield "alibi_slopes", dict(alibi_slopes=m[:3])
    yield "alibi_slopes", dict(alibi_slopes=np.array([0.5, np.nan, 0.1, 0.2], np.float32))
    yield "alibi_slopes", dict(alibi_slopes=np.array([0.5, -np.inf, 0.1, 0.2], np.float32))
    yield "alibi_slopes", dict(alibi_slopes=m.reshape(2, 2))
    yield "alibi_slopes_right", dict(alibi_slopes=m, alibi_slopes_right=np.full_like(m, -np.inf))
    yield "alibi_slopes_right", dict(alibi_slopes=m, alibi_slopes_right=m[:2])
    yield "alibi_slopes_right", dict(alibi_slopes_right=m)  # without alibi_slopes
    yield "key_lengths", dict(key_lengths=np.array([3, -1]))
    yield "key_lengths", dict(key_lengths=np.array([3, 12]))  # > Tk = 11
    yield "key_lengths", dict(key_lengths=np.array([3]))
    yield "key_lengths", dict(key_lengths=np.array([3.0, 4.0]))
    yield "key_lengths", dict(key_lengths=np.array([2**33, 4]))
    yield "attn_mask", dict(attn_mask=np.ones((9, 10), bool))  # Tk differs
    yield "attn_mask", dict(attn_mask=np.ones((3, 4, 9, 11), bool))  # B = 3 does not broadcast
    yield "attn_mask", dict(attn_mask=np.ones((2, 3, 9, 11), bool))  # H = 3 does not broadcast
    yield "attn_mask", dict(attn_mask=np.ones((11,), bool))  # 1-D
    yield "attn_mask", dict(attn_mask=np.ones((9, 11), np.int32))
    yield "attn_mask", dict(attn_mask=np.ones((9, 11), np.float64))
    yield "attn_mask", dict(attn_mask=[[True] * 11] * 9)
    yield "scale", dict(scale=float("inf"))
    yield "scale", dict(scale="big")
    yield "skip_tolerance", dict(skip_tolerance=2.0)
    yield "skip_tolerance", dict(skip_tolerance=-1.0)


def test_bad_forward_input_raises_value_error_naming_the_argument(rng):
    q, k, v = qkv(rng)
    for name, change in bad_forward_cases(rng):
        args = dict(q=q, k=k, v=v)
        args.update(change)
        with pytest.raises(ValueError, match=name) as e:
            slope.attention(**args)
        assert name in str(e.value), (name, change.keys(), str(e.value))


def test_bad_backward_input_raises_value_error_naming_the_argument(rng):
    q, k, v = qkv(rng)
    out, lse = slope.attention(q, k, v, return_lse=True)
    dout = np.ones_like(out)
    good = dict(dout=dout, q=q, k=k, v=v, out=out, lse=lse)
    slope.attention_backward(**good)
    bad = [
        ("dout", dict(dout=dout[:, :, :3])),
        ("dout", dict(dout=dout.astype(np.float64))),
        ("dout", dict(dout=np.ones((2, 4, 9, 16), np.float32)[..., ::2])),
        ("out", dict(out=out[:1])),
        ("lse", dict(lse=lse[..., :4])),
        ("lse", dict(lse=lse[..., None])),
        ("q", dict(q=q[:, :2])),  # H now disagrees with out
    ]
    for name, change in bad:
        args = dict(good)
        args.update(change)
        with pytest.raises(ValueError, match=name):
            slope.attention_backward(**args)


def test_bad_slope_presets():
    with pytest.raises(ValueError, match="n_heads"):
        slope.alibi_slopes(0)
    with pytest.raises(ValueError, match="max_bias"):
        slope.alibi_slopes(8, max_bias=-1.0)
    with pytest.raises(ValueError, match="n_heads"):
        slope.alibi_slopes_nonsymmetric(5)


# ---- layouts ---------------------------------------------------------------------------------


def test_strided_inputs_give_the_same_result(rng):
    """q, k, v as views of one packed (B, T, 3, H, D) array: read in place, same numbers."""
    B, T, H, D = 2, 21, 4, 8
    packed = rng.standard_normal((B, T, 3, H, D), dtype=np.float32)
    q, k, v = (packed[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    assert not q.flags.c_contiguous
    m = slope.alibi_slopes(H)
    out, lse = slope.attention(q, k, v, causal=True, alibi_slopes=m, return_lse=True)
    qc, kc, vc = (np.ascontiguousarray(a) for a in (q, k, v))
    out_c, lse_c = slope.attention(qc, kc, vc, causal=True, alibi_slopes=m, return_lse=True)
    np.testing.assert_allclose(out, out_c, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lse, lse_c, rtol=1e-6, atol=1e-6)
    # Backward: strided q/k/v/dout and a strided out give contiguous gradients, same numbers.
    dout_big = rng.standard_normal((B, H, T, 2 * D), dtype=np.float32)
    dout = dout_big[..., :D]
    g = slope.attention_backward(dout, q, k, v, out, lse, causal=True, alibi_slopes=m)
    gc = slope.attention_backward(np.ascontiguousarray(dout), qc, kc, vc, out_c, lse_c,
                                  causal=True, alibi_slopes=m)
    for a, b in zip(g[:4], gc[:4]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert g[4] is None


def test_broadcast_inputs_over_batch(rng):
    """A stride-0 batch dimension (np.broadcast_to) is a valid input layout."""
    q, k, v = qkv(rng, B=1)
    qb = np.broadcast_to(q, (3,) + q.shape[1:])
    kb = np.broadcast_to(k, (3,) + k.shape[1:])
    vb = np.broadcast_to(v, (3,) + v.shape[1:])
    out = slope.attention(qb, kb, vb, causal=True)
    ref = slope.attention(q, k, v, causal=True)
    for b in range(3):
        np.testing.assert_array_equal(out[b], ref[0])


def test_read_only_inputs(rng):
    q, k, v = qkv(rng)
    for a in (q, k, v):
        a.flags.writeable = False
    slope.attention(q, k, v, alibi_slopes=slope.alibi_slopes(4))


# ---- masks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_mask_broadcast_shapes_agree(rng, kind):
    B, H, Tq, Tk = 2, 4, 9, 11
    q, k, v = qkv(rng, B=B, H=H, Tq=Tq, Tk=Tk)
    if kind == "bool":
        base = rng.random((Tq, Tk)) < 0.6
        base[:, 0] = True
    else:
        base = rng.standard_normal((Tq, Tk), dtype=np.float32)
    full = np.ascontiguousarray(np.broadcast_to(base, (B, H, Tq, Tk)))
    ref = slope.attention(q, k, v, attn_mask=full)
    for m in (base, base[None], base[None, None], np.ascontiguousarray(full[:1, :1]),
              np.ascontiguousarray(full[:, :1]), np.ascontiguousarray(full[:1]),
              np.asfortranarray(base)):  # strided columns: copied
        np.testing.assert_array_equal(slope.attention(q, k, v, attn_mask=m), ref)


def test_mask_broadcast_over_queries(rng):
    """A mask whose query dimension is 1, or a stride-0 view (np.broadcast_to), is accepted."""
    B, H, Tq, Tk = 2, 3, 6, 10
    q, k, v = qkv(rng, B=B, H=H, Tq=Tq, Tk=Tk)
    row = rng.random((1, Tk)) < 0.5
    row[0, 0] = True
    full = np.ascontiguousarray(np.broadcast_to(row, (Tq, Tk)))
    ref = slope.attention(q, k, v, attn_mask=full)
    for m in (row, np.broadcast_to(row, (Tq, Tk)), np.broadcast_to(row, (B, H, Tq, Tk))):
        np.testing.assert_array_equal(slope.attention(q, k, v, attn_mask=m), ref)


def test_padding_mask_equals_key_lengths(rng):
    """A (B, 1, 1, Tk) padding mask (broadcast over queries) is key_lengths by another name."""
    B, H, Tq, Tk = 3, 2, 7, 13
    q, k, v = qkv(rng, B=B, H=H, Tq=Tq, Tk=Tk)
    lengths = np.array([13, 4, 0])
    pad = np.arange(Tk)[None, None, None, :] < lengths[:, None, None, None]
    m = slope.alibi_slopes(H)
    a, lse_a = slope.attention(q, k, v, alibi_slopes=m, attn_mask=pad, return_lse=True)
    b, lse_b = slope.attention(q, k, v, alibi_slopes=m, key_lengths=lengths, return_lse=True)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(lse_a, lse_b, rtol=1e-6)
    assert np.all(a[2] == 0) and np.all(np.isneginf(lse_a[2]))


def test_fully_masked_rows_have_zero_gradients(rng):
    q, k, v = qkv(rng, B=2)
    lengths = np.array([0, 11])
    out, lse = slope.attention(q, k, v, key_lengths=lengths, return_lse=True)
    dq, dk, dv, _, _ = slope.attention_backward(np.ones_like(out), q, k, v, out, lse,
                                                key_lengths=lengths)
    for g in (dq, dk, dv):
        assert np.all(g[0] == 0) and np.all(np.isfinite(g))
    assert np.any(dq[1] != 0)


# ---- slope presets ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 8, 12])
def test_geometric_and_nonsymmetric_presets(n):
    h = np.arange(1, n + 1)
    np.testing.assert_allclose(slope.alibi_slopes_geometric(n),
                               (2.0 ** (-8.0 * h / n)).astype(np.float32), rtol=2**-23)
    np.testing.assert_allclose(slope.alibi_slopes_geometric(n, max_bias=4.0),
                               (2.0 ** (-4.0 * h / n)).astype(np.float32), rtol=2**-23)
    if n % 2 == 0:
        left, right = slope.alibi_slopes_nonsymmetric(n)
        half = slope.alibi_slopes(n // 2)
        np.testing.assert_array_equal(left[: n // 2], half)
        np.testing.assert_array_equal(right[n // 2:], half)
        assert np.all(np.isposinf(left[n // 2:])) and np.all(np.isposinf(right[: n // 2]))


def test_max_bias_generalises_press():
    # max_bias 8 is Press's; for a power of two, 2^(-max_bias*h/H).
    np.testing.assert_allclose(slope.alibi_slopes(16, max_bias=4.0),
                               2.0 ** (-4.0 * np.arange(1, 17) / 16), rtol=2**-23)


def test_one_sided_slopes_mask_the_other_side(rng):
    """+inf on the right side with no causal flag is causal attention with that left slope."""
    q, k, v = qkv(rng, Tq=15, Tk=15)
    m = slope.alibi_slopes(4)
    a = slope.attention(q, k, v, alibi_slopes=m, alibi_slopes_right=np.full(4, np.inf, np.float32))
    b = slope.attention(q, k, v, alibi_slopes=m, causal=True)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, slope; assert 'torch' not in sys.modules, 'slope imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fixed_slopes_skip_slope_gradients_and_change_nothing_else(rng):
    q, k, v = (rng.standard_normal((2, 4, 70, 16), dtype=np.float32) for _ in range(3))
    dout = rng.standard_normal((2, 4, 70, 16), dtype=np.float32)
    slopes = slope.alibi_slopes(4)
    out, lse = slope.attention(q, k, v, causal=True, alibi_slopes=slopes, return_lse=True)
    full = slope.attention_backward(dout, q, k, v, out, lse, causal=True, alibi_slopes=slopes)
    fixed = slope.attention_backward(dout, q, k, v, out, lse, causal=True, alibi_slopes=slopes,
                                     slope_grads=False)
    assert full[3] is not None and fixed[3] is None and fixed[4] is None
    for a, b in zip(full[:3], fixed[:3]):
        np.testing.assert_array_equal(a, b)
