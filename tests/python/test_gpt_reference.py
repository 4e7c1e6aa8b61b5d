"""slope's C++ GPT against the PyTorch reference (gpt_reference.py), for every position scheme.

slope_gpt_dump (built by CMake, tests/model/gpt_dump.cpp) writes a checkpoint, a batch, and the
logits, loss and every parameter gradient of slope's float32 and float64 models on it. Here the
checkpoint is loaded into the reference with load_state_dict(strict=True) (so the state-dict
names, shapes and the tied lm_head copy are checked too) and run in float64:

- slope float64 must agree to 1e-12 (measured ~1e-14): the same formulas, rounded differently.
- slope float32: logits, loss and every gradient within 64x the error of the fp32-storage model
  (the reference in float64 with every operation's output rounded to float32: the same on every
  machine), floored at 1e-6 relative; logits also within 1e-4 of the largest logit. The argument
  and the measured ratios are in oracle.py.

The binary is looked for in $SLOPE_GPT_DUMP, then build/ (oracle.py, shared with
test_encdec_reference.py, which also holds the tolerances): outside CI the tests skip when it is
not built; under CI that is a failure.
"""

import json
import subprocess

import numpy as np
import pytest


import oracle  # noqa: E402

torch = oracle.require("torch")
from gpt_reference import load_gpt, load_safetensors  # noqa: E402

POSITIONS = ["learned", "sinusoidal", "none", "alibi", "alibi-learned"]
CASES = [(p, True) for p in POSITIONS] + [("learned", False), ("alibi-learned", False)]



def dump_binary():
    return oracle.dump_binary("slope_gpt_dump", "SLOPE_GPT_DUMP")


def reference(config, state, batch, dtype):
    """logits (B, T, V), loss and {name: grad} of the PyTorch model in dtype."""
    model = load_gpt(config, state, dtype)
    idx = torch.from_numpy(batch["idx"].astype(np.int64))
    targets = torch.from_numpy(batch["targets"].astype(np.int64))
    logits, loss = model(idx, targets)
    loss.backward()
    grads = {name: p.grad.double().numpy() for name, p in model.named_parameters()}
    return logits.detach().double().numpy(), loss.item(), grads


@pytest.fixture(params=CASES, ids=[f"{p}{'' if b else '-nobias'}" for p, b in CASES])
def dumped(request, tmp_path):
    pos, bias = request.param
    cmd = [str(dump_binary()), str(tmp_path), pos] + ([] if bias else ["--no-bias"])
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["pos"] == pos and config["bias"] == bias
    return (config,) + oracle.load_dump(tmp_path)


def test_gpt_matches_pytorch(dumped):
    config, state, batch, out32, out64 = dumped
    V = config["vocab_size"]
    assert (batch["targets"] == -1).any(), "the batch exercises ignore_index"
    if config["pos"] != "learned":
        assert batch["idx"].shape[1] > config["block_size"], "lengths beyond block_size"
    ref64 = reference(config, state, batch, torch.float64)
    with oracle.Fp32Storage():
        ref32 = reference(config, state, batch, torch.float64)
    oracle.check_outputs(out32, out64, V, ref64, ref32)


def test_fixed_alibi_slopes_are_press(tmp_path):
    """H = 3 is not a power of two: Press's interleaving, as the reference computes it."""
    from gpt_reference import alibi_slopes

    assert alibi_slopes(3) == [2.0**-4, 2.0**-8, 2.0**-2]
    assert alibi_slopes(8) == [2.0 ** -(h + 1) for h in range(8)]
    cmd = [str(dump_binary()), str(tmp_path), "alibi-learned"]
    subprocess.run(cmd, check=True, capture_output=True)
    state = load_safetensors(tmp_path / "model.safetensors")
    assert set(k for k in state if "alibi_slopes" in k) == {
        "transformer.h.0.attn.alibi_slopes",
        "transformer.h.1.attn.alibi_slopes",
    }
