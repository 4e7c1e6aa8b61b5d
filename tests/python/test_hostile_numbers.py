"""Hostile numbers through the PyTorch operator: what slope guarantees (stated in the docstrings
of slope.attention and slope.torch.attention, and in include/slope/attention.h):

- a key or value a row cannot see (causal, a mask, key lengths, a window, another document)
  never changes that row, in the forward or the backward, even when it is NaN or ±inf;
- large but finite inputs (±1e4) give finite results within the rounding-error bounds;
- a slope of 0 is no bias on that side; a huge finite slope leaves each row its diagonal key;
- key lengths of 0 give rows of zeros, logsumexp −inf and zero gradients, never NaN.
"""

import numpy as np
import pytest
import torch

import slope
import slope.testing
import slope.torch


def _grads(q, k, v, loss_rows=None, **kw):
    q, k, v = (x.detach().clone().requires_grad_(True) for x in (q, k, v))
    out = slope.torch.attention(q, k, v, **kw)
    w = torch.ones_like(out) if loss_rows is None else loss_rows
    (out * w).sum().backward()
    return out.detach(), q.grad, k.grad, v.grad


def test_nan_value_after_the_diagonal_leaves_earlier_rows_alone():
    # The case: B = H = 1, T = 8, D = 16, causal, v[0, 0, 7] = NaN: rows 0–6 cannot see
    # key 7 (before the fix all 8 output rows were NaN).
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, 8, 16, generator=g) for _ in range(3))
    v[0, 0, 7] = float("nan")
    k2 = k.clone()
    k2[0, 0, 7] = float("inf")
    for kk, vv in ((k, v), (k2, v), (k2, torch.nan_to_num(v))):
        out, dq, dk, dv = _grads(q, kk, vv, causal=True)
        assert torch.isfinite(out[0, 0, :7]).all()
        assert torch.isfinite(dq[0, 0, :7]).all()
        clean = _grads(q, k.nan_to_num(), v.nan_to_num(), causal=True)
        assert torch.equal(out[0, 0, :7], clean[0][0, 0, :7])
        assert torch.equal(dq[0, 0, :7], clean[1][0, 0, :7])


def test_nan_values_behind_a_bool_mask_never_reach_a_row():
    # The second case: B = 2, H = 4, Hkv = 2, T = 130, keys 40–59 hidden from every
    # query by a bool mask and NaN there (before the fix 1,032 of 1,040 rows were NaN, and dq/dk
    # were NaN for a loss on rows that cannot see them).
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 4, 130, 32, generator=g)
    k, v = (torch.randn(2, 2, 130, 32, generator=g) for _ in range(2))
    mask = torch.ones(130, 130, dtype=torch.bool)
    mask[:, 40:60] = False
    k_bad, v_bad = k.clone(), v.clone()
    k_bad[:, :, 40:60] = float("nan")
    v_bad[:, :, 40:60] = float("nan")
    kw = dict(attn_mask=mask, alibi_slopes=torch.from_numpy(slope.alibi_slopes(4)))
    out, dq, dk, dv = _grads(q, k_bad, v_bad, **kw)
    ref = _grads(q, k, v, **kw)
    assert torch.isfinite(out).all() and torch.isfinite(dq).all()
    assert torch.equal(out, ref[0]) and torch.equal(dq, ref[1])
    visible = torch.ones(130, dtype=torch.bool)
    visible[40:60] = False
    assert torch.equal(dk[:, :, visible], ref[2][:, :, visible])
    assert torch.equal(dv[:, :, visible], ref[3][:, :, visible])
    # Nothing can see the hidden keys: their gradients are exact zeros.
    assert (dk[:, :, 40:60] == 0).all() and (dv[:, :, 40:60] == 0).all()


@pytest.mark.parametrize("magnitude", [1e2, 1e4])
def test_large_finite_inputs_stay_finite_and_within_bounds(magnitude):
    rng = np.random.default_rng(2)
    q, k, v = (rng.uniform(-magnitude, magnitude, (1, 2, 70, 16)).astype(np.float32)
               for _ in range(3))
    dout = rng.standard_normal((1, 2, 70, 16)).astype(np.float32)
    kw = dict(causal=True, alibi_slopes=slope.alibi_slopes(2))
    out, lse = slope.attention(q, k, v, return_lse=True, **kw)
    dq, dk, dv, dsl, _ = slope.attention_backward(dout, q, k, v, out, lse, **kw)
    ref = slope.testing.attention_reference(q, k, v, dout, **kw)
    bound = slope.testing.attention_error_bounds(q, k, v, dout, **kw)
    for name, got in (("out", out), ("lse", lse), ("dq", dq), ("dk", dk), ("dv", dv),
                      ("dslopes", dsl)):
        assert np.isfinite(got).all(), name
        assert (np.abs(got - ref[name]) <= bound[name]).all(), name


def test_zero_slopes_are_no_bias():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 50, 16, generator=g) for _ in range(3))
    for causal in (False, True):
        plain = _grads(q, k, v, causal=causal)
        zero = _grads(q, k, v, causal=causal, alibi_slopes=torch.zeros(4))
        for a, b in zip(plain, zero):
            assert torch.equal(a, b)


def test_a_huge_slope_leaves_each_row_its_diagonal_key():
    # exp(−1e6·d) is 0 in float32 for every d >= 1: row i attends to key i alone (Tq = Tk), so
    # out = v exactly, and every gradient is finite.
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 2, 40, 8, generator=g) for _ in range(3))
    out, dq, dk, dv = _grads(q, k, v, alibi_slopes=torch.full((2,), 1e6))
    assert torch.equal(out, v)
    assert all(torch.isfinite(t).all() for t in (dq, dk, dv))
    with pytest.raises(ValueError, match="overflow"):  # |m|·(Tq + Tk) beyond float32
        slope.torch.attention(q, k, v, alibi_slopes=torch.full((2,), 1e37))


def test_zero_key_lengths_give_zero_rows_and_gradients():
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(2, 2, 20, 8, generator=g) for _ in range(3))
    lengths = torch.tensor([0, 20], dtype=torch.int32)
    kw = dict(key_lengths=lengths, alibi_slopes=torch.from_numpy(slope.alibi_slopes(2)),
              causal=True)
    out, lse = slope.torch.attention(q, k, v, return_lse=True, **kw)
    assert (out[0] == 0).all() and torch.isneginf(lse[0]).all()
    assert torch.isfinite(out[1]).all() and torch.isfinite(lse[1]).all()
    _, dq, dk, dv = _grads(q, k, v, **kw)
    assert (dq[0] == 0).all() and (dk[0] == 0).all() and (dv[0] == 0).all()
