"""slope's C++ encoder and encoder-decoder against the PyTorch reference (encdec_reference.py).

slope_encdec_dump (built by CMake, tests/model/encdec_dump.cpp) writes a checkpoint, a padded
batch (ragged lengths, random ids in the padding, -1 targets there) and the logits, loss and
every parameter gradient of slope's float32 and float64 models on it. The checkpoint is loaded
into the reference with load_state_dict(strict=True) and run in float64; the tolerances are
test_gpt_reference.py's:

- slope float64 within 1e-12 (the same formulas, rounded differently);
- slope float32: logits, loss and every gradient within 64x the error of the fp32-storage model
  (the reference in float64 with every operation's output rounded to float32: the same on every
  machine), floored at 1e-6 relative; logits also within 1e-4 of the largest logit. The argument
  and the measured ratios are in oracle.py.

Logits are compared at every position, padding included: a padded query gets its output over
the real keys (0 when it sees none), as both define it. Every encoder position scheme is run as
a masked LM and as a seq2seq.

The binary is looked for in $SLOPE_ENCDEC_DUMP, then build/; the tests skip when it is not built
(and fail under CI, which builds it).
"""

import json
import subprocess

import numpy as np
import pytest


import oracle

torch = oracle.require("torch")
from encdec_reference import load_encdec  # noqa: E402
from gpt_reference import alibi_slopes, load_safetensors  # noqa: E402

POSITIONS = [
    "learned",
    "sinusoidal",
    "none",
    "alibi-symmetric",
    "alibi-nonsymmetric",
    "alibi-learned",
]
CASES = (
    [("encoder", p, True) for p in POSITIONS]
    + [("seq2seq", p, True) for p in POSITIONS]
    + [("encoder", "alibi-learned", False), ("seq2seq", "learned", False)]
)


def dump_binary():
    return oracle.dump_binary("slope_encdec_dump", "SLOPE_ENCDEC_DUMP")


def as_long(a):
    return torch.from_numpy(a.astype(np.int64))


def reference(config, state, batch, dtype):
    """logits, loss and {name: grad} of the PyTorch model in dtype."""
    model = load_encdec(config, state, dtype)
    if config["arch"] == "encoder":
        logits, loss = model.forward_mlm(
            as_long(batch["idx"]), as_long(batch["lengths"]), as_long(batch["targets"])
        )
    else:
        logits, loss = model.forward_seq2seq(
            as_long(batch["src"]),
            as_long(batch["src_lengths"]),
            as_long(batch["tgt"]),
            as_long(batch["targets"]),
        )
    loss.backward()
    grads = {name: p.grad.double().numpy() for name, p in model.named_parameters()}
    return logits.detach().double().numpy(), loss.item(), grads


def run_dump(tmp_path, arch, pos, bias=True):
    cmd = [str(dump_binary()), str(tmp_path), arch, pos] + ([] if bias else ["--no-bias"])
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.fixture(params=CASES, ids=[f"{a}-{p}{'' if b else '-nobias'}" for a, p, b in CASES])
def dumped(request, tmp_path):
    arch, pos, bias = request.param
    run_dump(tmp_path, arch, pos, bias)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["arch"], config["pos"], config["bias"]) == (arch, pos, bias)
    return (config,) + oracle.load_dump(tmp_path)


def test_encdec_matches_pytorch(dumped):
    config, state, batch, out32, out64 = dumped
    encoder = config["arch"] == "encoder"
    V = config["vocab_size"] if encoder else config["tgt_vocab_size"]
    lengths = batch["lengths"] if encoder else batch["src_lengths"]
    S = (batch["idx"] if encoder else batch["src"]).shape[1]
    assert lengths.min() < S, "the batch has padded sources"
    assert (batch["targets"] == -1).any(), "the batch exercises ignore_index"
    if config["pos"] != "learned":
        assert S > config["block_size"], "lengths beyond block_size"
    ref64 = reference(config, state, batch, torch.float64)
    with oracle.Fp32Storage():
        ref32 = reference(config, state, batch, torch.float64)
    assert np.isfinite(ref64[0]).all() and np.isfinite(ref64[1])
    oracle.check_outputs(out32, out64, V, ref64, ref32, require_live_grads=True)


def test_state_dict_names(tmp_path):
    """The learned slopes' names, and the cross-attention's, as encdec_params.h lists them."""
    run_dump(tmp_path, "seq2seq", "alibi-learned")
    state = load_safetensors(tmp_path / "model.safetensors")
    assert {k for k in state if "alibi_theta" in k} == {
        "encoder.h.0.attn.alibi_theta_left",
        "encoder.h.0.attn.alibi_theta_right",
        "encoder.h.1.attn.alibi_theta_left",
        "encoder.h.1.attn.alibi_theta_right",
        "decoder.h.0.attn.alibi_theta",
        "decoder.h.1.attn.alibi_theta",
    }
    C = state["encoder.ln_f.weight"].shape[0]
    assert state["decoder.h.1.cross.c_kv.weight"].shape == (2 * C, C)
    assert not any(k.startswith("lm_head") for k in state), "heads are tied, not stored"


def test_nonsymmetric_slopes():
    """H = 6: each side's 3 heads take Press's slopes for 3 heads (not a power of two)."""
    from encdec_reference import SelfAttention

    cfg = {"n_embd": 96, "n_head": 6, "bias": True, "pos": "alibi-nonsymmetric", "max_bias": 8.0}
    left, right = SelfAttention(cfg, decoder=False).slopes()
    press3 = alibi_slopes(3)
    assert left.tolist() == press3 + [float("inf")] * 3
    assert right.tolist() == [float("inf")] * 3 + press3
    left, right = SelfAttention(cfg, decoder=True).slopes()
    assert left.tolist() == right.tolist() == alibi_slopes(6)
