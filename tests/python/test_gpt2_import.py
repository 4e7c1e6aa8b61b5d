"""GPT-2 and nanoGPT checkpoints into slope, checked by their logits.

- `slope import --from hf-gpt2 DIR --out CKPT` on a small random GPT2LMHeadModel built here with
  transformers (no hub) and saved with save_pretrained; slope's float32 logits (build/
  slope_gpt_logits) must equal transformers' float32 logits within 1e-5 of the largest logit.
  Why 1e-5 holds: both are float32 evaluations of the same function, whose roundings add up to
  ~√n·u per reduction of n ≤ 4C = 192 terms (~1e-6 relative to its output) over 2 layers and
  the head; the float64 run shows the ground truth, and each float32 run must be within 1e-5 of
  it too. Every parameter is perturbed away from GPT-2's init (layer-norm weights ≠ 1, biases
  ≠ 0), so a missing transpose, bias or the wrong GELU (~5e-4 apart) shows far above 1e-5.
- `python -m slope.convert nanogpt ckpt.pt OUT` on a nanoGPT-shaped model (gpt_reference.py,
  nanoGPT's names and nn.GELU), saved as nanoGPT's train.py saves it (model_args, a
  torch.compile prefix, the causal-mask buffer).
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import oracle

torch = oracle.require("torch")
transformers = oracle.require("transformers")
from gpt_reference import GPT, load_safetensors  # noqa: E402

TOLERANCE = 1e-5  # relative to the largest |logit| (see above)


def run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    return r


def slope_logits(ckpt, idx, tmp_path):
    from safetensors.numpy import save_file

    save_file({"idx": idx.astype(np.int32)}, str(tmp_path / "idx.safetensors"))
    r = run([oracle.dump_binary("slope_gpt_logits", "SLOPE_GPT_LOGITS"), ckpt,
             tmp_path / "idx.safetensors", tmp_path / "logits.safetensors"])
    assert r.returncode == 0, r.stderr
    return load_safetensors(tmp_path / "logits.safetensors")["logits"]


def perturbed(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def hf_gpt2(tmp_path, activation="gelu_new", **overrides):
    config = transformers.GPT2Config(vocab_size=101, n_positions=32, n_embd=48, n_layer=2,
                                     n_head=3, activation_function=activation,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     **overrides)
    torch.manual_seed(0)
    model = perturbed(transformers.GPT2LMHeadModel(config), 1)
    model.save_pretrained(str(tmp_path / "hf"))
    return model


@pytest.mark.parametrize("activation,slope_name", [("gelu_new", "gelu-tanh"), ("gelu", None)])
def test_hf_gpt2_logits(tmp_path, activation, slope_name):
    model = hf_gpt2(tmp_path, activation)
    r = run([oracle.dump_binary("slope", "SLOPE_BINARY"), "import", "--from", "hf-gpt2",
             tmp_path / "hf", "--out", tmp_path / "ckpt"])
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["pos"] == "learned" and config["block_size"] == 32
    assert config.get("activation") == slope_name
    origin = json.loads((tmp_path / "ckpt" / "origin.json").read_text())
    assert origin["from"] == "hf-gpt2"

    idx = np.random.default_rng(2).integers(0, 101, size=(2, 32))
    got = slope_logits(tmp_path / "ckpt", idx, tmp_path)
    with torch.no_grad():
        want32 = model(torch.from_numpy(idx)).logits.numpy()
        want64 = model.double()(torch.from_numpy(idx)).logits.numpy()
    assert got.shape == want32.shape == (2, 32, 101)
    assert oracle.rel_error(want32, want64) < TOLERANCE  # the bound is not tight for torch
    assert oracle.rel_error(got, want64) < TOLERANCE
    assert oracle.rel_error(got, want32) < TOLERANCE


def test_hf_gpt2_wrong_gelu_would_show(tmp_path):
    """The bound separates GPT-2's two GELUs: the tolerance is a test, not a formality."""
    model = hf_gpt2(tmp_path, "gelu_new")
    r = run([oracle.dump_binary("slope", "SLOPE_BINARY"), "import", "--from", "hf-gpt2",
             tmp_path / "hf", "--out", tmp_path / "ckpt"])
    assert r.returncode == 0, r.stderr
    cfg_path = tmp_path / "ckpt" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["activation"]  # back to the exact GELU
    cfg_path.write_text(json.dumps(cfg))
    idx = np.random.default_rng(2).integers(0, 101, size=(2, 32))
    got = slope_logits(tmp_path / "ckpt", idx, tmp_path)
    with torch.no_grad():
        want = model(torch.from_numpy(idx)).logits.numpy()
    assert oracle.rel_error(got, want) > 10 * TOLERANCE


@pytest.mark.parametrize("override,needle", [
    ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon"),
    ({"n_inner": 100}, "n_inner"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
])
def test_hf_gpt2_refuses_what_slope_lacks(tmp_path, override, needle):
    hf_gpt2(tmp_path, **override)
    r = run([oracle.dump_binary("slope", "SLOPE_BINARY"), "import", "--from", "hf-gpt2",
             tmp_path / "hf", "--out", tmp_path / "ckpt"])
    assert r.returncode == 1 and needle in r.stderr, r.stderr
    assert not (tmp_path / "ckpt" / "config.json").exists()


def _slope_importable():
    r = run([sys.executable, "-c", "import slope.convert"], env=_python_env())
    return r.returncode == 0, r.stderr


def _python_env():
    env = dict(os.environ)
    if os.environ.get("SLOPE_PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["SLOPE_PYTHONPATH"]
    return env


def test_nanogpt_convert_logits(tmp_path):
    ok, why = _slope_importable()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"the slope module does not import: {why}")
        pytest.skip(f"the slope module does not import (install it, or set SLOPE_PYTHONPATH): "
                    f"{why.strip().splitlines()[-1] if why.strip() else ''}")
    model_args = dict(n_layer=2, n_head=3, n_embd=48, block_size=32, bias=True, vocab_size=97,
                      dropout=0.0)
    torch.manual_seed(3)
    model = perturbed(GPT({k: model_args[k] for k in model_args}).float(), 4)
    state = {"_orig_mod." + k: v for k, v in model.state_dict().items()}
    state["_orig_mod.transformer.h.0.attn.bias"] = torch.tril(torch.ones(32, 32)).view(1, 1, 32, 32)
    torch.save({"model": state, "model_args": model_args, "iter_num": 5,
                "best_val_loss": torch.tensor(2.5), "config": {"dataset": "shakespeare"}},
               tmp_path / "ckpt.pt")
    r = run([sys.executable, "-m", "slope.convert", "nanogpt", tmp_path / "ckpt.pt",
             tmp_path / "out"], env=_python_env())
    assert r.returncode == 0, r.stderr
    idx = np.random.default_rng(5).integers(0, 97, size=(2, 32))
    got = slope_logits(tmp_path / "out", idx, tmp_path)
    with torch.no_grad():
        want = model.double()(torch.from_numpy(idx))[0].numpy()
    assert oracle.rel_error(got, want) < TOLERANCE

    # Not a nanoGPT checkpoint: one clear line, nothing written.
    torch.save({"weights": {}}, tmp_path / "bad.pt")
    r = run([sys.executable, "-m", "slope.convert", "nanogpt", tmp_path / "bad.pt",
             tmp_path / "bad"], env=_python_env())
    assert r.returncode == 1 and "model_args" in r.stderr
    assert not (tmp_path / "bad" / "config.json").exists()
