"""slope.torch's front doors against float64 materialised versions of exactly their documented
semantics (torch_semantics.py): SDPA (upper-left), flash_attn_func (bottom-right, window, softcap,
ALiBi (H) and (B, H), slopes of either sign), packed sequences, the KV cache, and dropout.

Accuracy is checked as in test_attention_torch.py: slope's float64 reference
(slope.testing.attention_reference) must agree with the materialisation to F64_RTOL, and every
element of the fp32 kernel's result must lie within its rounding-error bound
(slope.testing.attention_error_bounds).
"""

import math

import numpy as np
import pytest

import oracle
import slope
import slope.testing

torch = oracle.require("torch")
import slope.torch as st  # noqa: E402
from torch_semantics import (  # noqa: E402
    assert_same_definition, assert_within, check_against_reference, materialised, np32, randn)


# ---- front doors against their semantics ------------------------------------------------------

SDPA_CASES = {
    "plain": dict(),
    "causal": dict(is_causal=True),
    "causal_alibi": dict(is_causal=True, alibi=True),
    "causal_tq_lt_tk": dict(is_causal=True, alibi=True, Tq=13, Tk=40),  # upper-left
    "causal_tq_gt_tk": dict(is_causal=True, Tq=40, Tk=13),
    "bool_mask_alibi": dict(mask="bool", alibi=True),
    "float_mask": dict(mask="float"),
    "gqa": dict(is_causal=True, alibi=True, Hkv=2, enable_gqa=True),
    "three_d": dict(three_d=True, is_causal=True, alibi=True),
    "scale": dict(scale=0.11, alibi=True),
}


@pytest.mark.parametrize("name", sorted(SDPA_CASES))
def test_sdpa_front_door(name, isa):
    c = dict(B=2, H=4, Hkv=0, Tq=37, Tk=37, D=16, is_causal=False, alibi=False, mask=None,
             enable_gqa=False, three_d=False, scale=None)
    c.update(SDPA_CASES[name])
    B, H, Tq, Tk, D = c["B"], c["H"], c["Tq"], c["Tk"], c["D"]
    Hkv = c["Hkv"] or H
    q, k, v = randn(B, H, Tq, D, seed=1), randn(B, Hkv, Tk, D, seed=2), randn(B, Hkv, Tk, D, seed=3)
    m = torch.tensor(slope.alibi_slopes(H)) if c["alibi"] else None
    mask = None
    if c["mask"] == "bool":
        mask = torch.rand(B, 1, Tq, Tk, generator=torch.Generator().manual_seed(4)) < 0.7
    elif c["mask"] == "float":
        mask = randn(1, H, Tq, Tk, seed=5)
    kw = dict(attn_mask=mask, is_causal=c["is_causal"], scale=c["scale"],
              enable_gqa=c["enable_gqa"], alibi_slopes=m)
    if c["three_d"]:
        out = st.scaled_dot_product_attention(q[0], k[0], v[0], **kw)
        assert out.shape == (H, Tq, D)
        out, q, k, v = out[None], q[:1], k[:1], v[:1]
    else:
        out = st.scaled_dot_product_attention(q, k, v, **kw)
    assert out.dtype == torch.float32 and out.shape == q.shape
    if m is None and mask is None and Hkv == H:  # SDPA itself computes the same function
        ref = torch.nn.functional.scaled_dot_product_attention(
            q.double(), k.double(), v.double(), is_causal=c["is_causal"], scale=c["scale"])
        if not (c["is_causal"] and Tq > Tk):  # SDPA gives NaN rows where slope gives zeros
            torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    semantics = dict(causal=c["is_causal"], positions="upper_left", slopes=m, scale=c["scale"],
                     mask=None if mask is None else mask)
    testing_kw = dict(causal=c["is_causal"], query_positions="upper_left", scale=c["scale"],
                      alibi_slopes=None if m is None else m.numpy(),
                      attn_mask=None if mask is None else np.asarray(mask.numpy()))
    check_against_reference(out, q, k, v, semantics, testing_kw)


FLASH_CASES = {
    "causal_alibi": dict(causal=True, alibi=True),
    "symmetric_alibi": dict(alibi=True),
    "per_batch_slopes": dict(causal=True, alibi="per_batch"),
    "tq_lt_tk": dict(causal=True, alibi=True, Tq=11, Tk=70),  # bottom-right
    "window": dict(causal=True, alibi=True, window=(9, 0)),
    "window_two_sided": dict(alibi=True, window=(7, 3), Tq=50, Tk=80),
    "softcap": dict(causal=True, alibi=True, softcap=2.5, big=True),
    "gqa_softcap_window": dict(Hkv=2, causal=True, alibi=True, softcap=5.0, window=(20, 0)),
    "negative_slopes": dict(causal=True, alibi="negative", Tq=150, Tk=150),
}


@pytest.mark.parametrize("name", sorted(FLASH_CASES))
def test_flash_attn_func_front_door(name, isa):
    c = dict(B=2, H=4, Hkv=0, Tq=45, Tk=45, D=16, causal=False, alibi=False, window=(-1, -1),
             softcap=0.0, big=False)
    c.update(FLASH_CASES[name])
    B, H, Tq, Tk, D = c["B"], c["H"], c["Tq"], c["Tk"], c["D"]
    Hkv = c["Hkv"] or H
    s = 4.0 if c["big"] else 1.0  # large scores so that softcap bites
    q, k, v = (randn(B, Tq, H, D, seed=1) * s, randn(B, Tk, Hkv, D, seed=2) * s,
               randn(B, Tk, Hkv, D, seed=3))
    m = None
    if c["alibi"] is True:
        m = torch.tensor(slope.alibi_slopes(H))
    elif c["alibi"] == "per_batch":
        m = torch.stack([torch.tensor(slope.alibi_slopes(H)), torch.tensor(slope.alibi_slopes(H, 4.0))])
    elif c["alibi"] == "negative":  # a learned slope pushed below zero by the optimiser
        m = torch.tensor([0.5, -0.01, 0.02, -0.003])
    out = st.flash_attn_func(q, k, v, causal=c["causal"], window_size=c["window"],
                             softcap=c["softcap"], alibi_slopes=m)
    assert out.shape == (B, Tq, H, D)
    t = lambda x: x.transpose(1, 2)  # noqa: E731
    semantics = dict(causal=c["causal"], slopes=m, window=c["window"], softcap=c["softcap"])
    testing_kw = dict(causal=c["causal"], alibi_slopes=None if m is None else m.numpy(),
                      window_size=c["window"], softcap=c["softcap"])
    check_against_reference(t(out), t(q), t(k), t(v), semantics, testing_kw)


def test_flash_attn_func_gradients_match_reference(isa):
    B, T, H, D = 2, 53, 4, 16
    q, k, v = (randn(B, T, H, D, seed=i).requires_grad_() for i in range(3))
    m = torch.nn.Parameter(torch.tensor(slope.alibi_slopes(H)))
    kw = dict(causal=True, window_size=(17, 0), softcap=3.0)
    out = st.flash_attn_func(q, k, v, alibi_slopes=m, **kw)
    dout = randn(*out.shape, seed=7)
    (out * dout).sum().backward()
    t = lambda x: np32(x.transpose(1, 2))  # noqa: E731
    testing_kw = dict(causal=True, alibi_slopes=m.detach().numpy(), window_size=(17, 0),
                      softcap=3.0)
    args = (t(q), t(k), t(v), t(dout))
    ref = slope.testing.attention_reference(*args, **testing_kw)
    bound = slope.testing.attention_error_bounds(*args, **testing_kw)
    # The semantics' own gradients, by autograd through the float64 materialisation.
    q64, k64, v64, m64 = (x.detach().double().requires_grad_() for x in (q, k, v, m))
    o64, _ = materialised(q64.transpose(1, 2), k64.transpose(1, 2), v64.transpose(1, 2),
                          causal=True, slopes=m64, window=(17, 0), softcap=3.0)
    (o64 * dout.double().transpose(1, 2)).sum().backward()
    for name, got, direct in (("dq", q.grad, q64.grad), ("dk", k.grad, k64.grad),
                              ("dv", v.grad, v64.grad)):
        assert_same_definition(name, ref[name], direct.transpose(1, 2))
        assert_within(name, got.transpose(1, 2), ref[name], bound[name])
    assert_same_definition("dslopes", ref["dslopes"], m64.grad)
    assert_within("dslopes", m.grad, ref["dslopes"], bound["dslopes"])


# ---- packed sequences and the KV cache --------------------------------------------------------


def test_varlen_equals_each_document_alone(isa):
    """8 packed documents of awkward lengths give what each document gives alone (fp32, 1e-6
    relative: the issue's target), forward and backward."""
    H, D = 4, 16
    lens_q = [1, 63, 64, 65, 200, 7, 0, 31]
    lens_k = [1, 63, 64, 65, 200, 7, 5, 40]  # the last two: more keys than queries
    cu_q = torch.tensor([0] + list(np.cumsum(lens_q)), dtype=torch.int32)
    cu_k = torch.tensor([0] + list(np.cumsum(lens_k)), dtype=torch.int32)
    q = randn(int(cu_q[-1]), H, D, seed=1).requires_grad_()
    k = randn(int(cu_k[-1]), H, D, seed=2).requires_grad_()
    v = randn(int(cu_k[-1]), H, D, seed=3).requires_grad_()
    m = torch.nn.Parameter(torch.tensor(slope.alibi_slopes(H)))
    out, lse, _ = st.flash_attn_varlen_func(q, k, v, cu_q, cu_k, max(lens_q), max(lens_k),
                                            causal=True, alibi_slopes=m, return_attn_probs=True)
    assert out.shape == q.shape and lse.shape == (H, q.shape[0])
    dout = randn(*out.shape, seed=4)
    (out * dout).sum().backward()
    dm_total = torch.zeros(H)
    for b in range(len(lens_q)):
        qs, ks = slice(int(cu_q[b]), int(cu_q[b + 1])), slice(int(cu_k[b]), int(cu_k[b + 1]))
        if lens_q[b] == 0:
            continue
        qb, kb, vb = (x.detach()[s][None].requires_grad_() for x, s in ((q, qs), (k, ks), (v, ks)))
        mb = m.detach().clone().requires_grad_()
        ob, lb, _ = st.flash_attn_func(qb, kb, vb, causal=True, alibi_slopes=mb,
                                       return_attn_probs=True)
        (ob * dout[qs][None]).sum().backward()
        dm_total += mb.grad
        for name, packed, alone in (("out", out[qs], ob[0]), ("lse", lse[:, qs], lb[0]),
                                    ("dq", q.grad[qs], qb.grad[0]), ("dk", k.grad[ks], kb.grad[0]),
                                    ("dv", v.grad[ks], vb.grad[0])):
            a, p = alone.detach().double(), packed.detach().double()
            err = (a - p).abs().max().item()
            assert err <= 1e-6 * max(a.abs().max().item(), 1e-30), f"doc {b} {name}: {err:.3e}"
    err = (m.grad - dm_total).abs().max().item()
    assert err <= 1e-6 * dm_total.abs().max().item(), f"dslopes: {err:.3e}"


def test_kvcache_buffer_length_never_changes_the_result(isa):
    """New queries sit at the end of each row's own keys (cache_seqlens), not of the buffer: the
    same keys in buffers of 64 and 32,768 slots give the same result, and that result is the
    one on the sliced buffer."""
    H, D = 12, 16
    m = torch.tensor(slope.alibi_slopes(H))
    lens = torch.tensor([13, 300], dtype=torch.int32)
    n_new = 3
    keys = randn(2, 300, H, D, seed=1)
    vals = randn(2, 300, H, D, seed=2)
    q = randn(2, n_new, H, D, seed=3)
    outs = []
    for S in (320, 32768):
        kc = torch.zeros(2, S, H, D)
        vc = torch.zeros(2, S, H, D)
        kc[:, :300], vc[:, :300] = keys, vals
        outs.append(st.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=lens, causal=True,
                                               alibi_slopes=m))
    for b in range(2):
        n = int(lens[b])
        alone = st.flash_attn_func(q[b:b + 1], keys[b:b + 1, :n], vals[b:b + 1, :n], causal=True,
                                   alibi_slopes=m)
        for o in outs:
            torch.testing.assert_close(o[b:b + 1], alone, rtol=0, atol=0)
        # and the sliced buffer is the documented semantics
        t = lambda x: x.transpose(1, 2)  # noqa: E731
        check_against_reference(t(alone), t(q[b:b + 1]), t(keys[b:b + 1, :n]),
                                t(vals[b:b + 1, :n]), dict(causal=True, slopes=m),
                                dict(causal=True, alibi_slopes=m.numpy()))


def test_kvcache_appends_new_keys_in_place():
    H, D, S = 2, 8, 32
    kc, vc = torch.zeros(2, S, H, D), torch.zeros(2, S, H, D)
    k_new, v_new = randn(2, 2, H, D, seed=1), randn(2, 2, H, D, seed=2)
    q = randn(2, 2, H, D, seed=3)
    lens = torch.tensor([4, 9], dtype=torch.int32)
    out = st.flash_attn_with_kvcache(q, kc, vc, k=k_new, v=v_new, cache_seqlens=lens, causal=True)
    assert torch.equal(kc[0, 4:6], k_new[0]) and torch.equal(vc[1, 9:11], v_new[1])
    alone = st.flash_attn_func(q[1:], kc[1:, :11], vc[1:, :11], causal=True)
    torch.testing.assert_close(out[1:], alone, rtol=0, atol=0)


# ---- dropout ----------------------------------------------------------------------------------


def dropout_probe(p, seed, causal=True, H=2, T=40):
    """With v = identity (Dv = Tk), out = (Z ∘ P)/(1 − p): the kept mask and the probabilities
    are visible in the output."""
    q, k = randn(1, T, H, 8, seed=1), randn(1, T, H, 8, seed=2)
    v = torch.eye(T).expand(1, H, T, T).transpose(1, 2).contiguous()  # (1, T, H, T)
    m = torch.tensor(slope.alibi_slopes(H))
    torch.manual_seed(seed)
    out = st.flash_attn_func(q, k, v, dropout_p=p, causal=causal, alibi_slopes=m)
    ref, _ = materialised(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=causal,
                          slopes=m)
    return out.transpose(1, 2).double(), ref  # (1, H, T, T): out_ij and P_ij


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keeps_scaled_probabilities(p, isa):
    out, P = dropout_probe(p, seed=11)
    kept = out != 0
    # Kept entries are P/(1 − p) within the fp32 forward's error (P ≤ 1, a 40-key row).
    err = (out[kept] - P[kept] / (1 - p)).abs().max().item()
    assert err <= 1e-5 / (1 - p), err
    visible = P > 0
    assert not kept[~visible].any()
    # The kept fraction among visible entries: Binomial(n, 1 − p); Hoeffding: the fraction
    # deviates by more than t with probability <= 2·exp(−2·n·t²); t = sqrt(ln(2e9)/(2n)) makes
    # that 1e-9.
    n = int(visible.sum())
    t = math.sqrt(math.log(2e9) / (2 * n))
    frac = kept[visible].double().mean().item()
    assert abs(frac - (1 - p)) <= t, (frac, 1 - p, t)


def test_dropout_is_reproducible_and_seeded():
    a, _ = dropout_probe(0.5, seed=3)
    b, _ = dropout_probe(0.5, seed=3)
    c, _ = dropout_probe(0.5, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a != 0, c != 0)


def test_dropout_backward_uses_the_same_mask(isa):
    """The gradient with dropout equals the float64 gradient of the materialised semantics with
    the mask the forward used (read back from an identity probe with the same seed)."""
    p, T, H, D = 0.3, 40, 2, 8
    q, k = randn(1, T, H, D, seed=1), randn(1, T, H, D, seed=2)
    m = torch.tensor(slope.alibi_slopes(H))
    eye = torch.eye(T).expand(1, H, T, T).transpose(1, 2).contiguous()
    torch.manual_seed(21)
    probe = st.flash_attn_func(q, k, eye, dropout_p=p, causal=True, alibi_slopes=m)
    Z = (probe.transpose(1, 2) != 0).double()  # (1, H, T, T)
    v = randn(1, T, H, T, seed=3).requires_grad_()
    qg, kg = q.clone().requires_grad_(), k.clone().requires_grad_()
    torch.manual_seed(21)  # the same seed: the same mask (it does not depend on v)
    out = st.flash_attn_func(qg, kg, v, dropout_p=p, causal=True, alibi_slopes=m)
    dout = randn(*out.shape, seed=4)
    (out * dout).sum().backward()
    q64, k64, v64 = (x.detach().double().transpose(1, 2).requires_grad_() for x in (q, k, v))
    s = q64 @ k64.transpose(-1, -2) / math.sqrt(D)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    s = s - m.double()[:, None, None] * (i - j).abs()
    P = torch.softmax(s.masked_fill(j > i, -math.inf), -1)
    o64 = (P * Z / (1 - p)) @ v64
    (o64 * dout.double().transpose(1, 2)).sum().backward()
    for name, got, want in (("dq", qg.grad, q64.grad), ("dk", kg.grad, k64.grad),
                            ("dv", v.grad, v64.grad)):
        got = got.transpose(1, 2).double()
        err = (got - want).abs().max().item()
        # fp32 over 40-key rows of O(1) terms: a few hundred ulps of the largest gradient
        assert err <= 1e-4 * want.abs().max().item(), f"{name}: {err:.3e}"


def test_dropout_mask_is_the_documented_one():
    """The mask the front door used is slope.testing.attention_dropout_mask's (the Philox
    mapping of attention.h) at the (seed, offset) drawn from torch's generator."""
    p, H, T = 0.4, 2, 40
    out, P = dropout_probe(p, seed=5, H=H, T=T)
    torch.manual_seed(5)
    seed, offset = torch.randint(0, 2**62, (2,), dtype=torch.int64).tolist()
    Z = slope.testing.attention_dropout_mask(1, H, T, T, p, seed, offset)
    visible = (P > 0).numpy()
    kept = (out != 0).numpy()
    assert np.array_equal(kept[visible], Z[visible])
