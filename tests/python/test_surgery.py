"""The Composer recipe's plumbing through the command line: a GPT-2 made here with transformers
→ `slope import --from hf-gpt2` → `slope surgery --pos alibi | alibi-learned` → `slope eval`
past block_size → `slope train --init-from`, with origin.json recording the chain.

Surgery must drop wpe and keep every other tensor bit for bit (compared as raw bytes), and
alibi-learned's slopes must be Press et al.'s closed form. A fine-tune at a learning rate of 1e-46
must write exactly the weights it started from (they were loaded, not initialised afresh).
"""

import json
import subprocess

import numpy as np
import pytest

import oracle

torch = oracle.require("torch")
transformers = oracle.require("transformers")
from gpt_reference import alibi_slopes, load_safetensors  # noqa: E402

TEXT = ("In the beginning God created the heaven and the earth. And the earth was without form, "
        "and void; and darkness was upon the face of the deep. And the Spirit of God moved upon "
        "the face of the waters.\n") * 40


def slope(*args):
    r = subprocess.run([str(oracle.dump_binary("slope", "SLOPE_BINARY"))] + [str(a) for a in args],
                       capture_output=True, text=True)
    return r


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("surgery")
    (d / "text.txt").write_text(TEXT)
    r = slope("prepare", "--input", d / "text.txt", "--out", d / "data", "--tokenizer",
              "byte-bpe", "--vocab-size", "300", "--val-fraction", "0.2")
    assert r.returncode == 0, r.stderr
    config = transformers.GPT2Config(vocab_size=300, n_positions=16, n_embd=32, n_layer=2,
                                     n_head=4, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(str(d / "hf"))
    # The corpus's tokenizer beside it, as a hub directory has GPT-2's: import carries it along.
    (d / "hf" / "tokenizer.json").write_bytes((d / "data" / "tokenizer" / "tokenizer.json").read_bytes())
    r = slope("import", "--from", "hf-gpt2", d / "hf", "--out", d / "base")
    assert r.returncode == 0, r.stderr
    for pos in ("alibi", "alibi-learned"):
        r = slope("surgery", "--pos", pos, d / "base", d / pos)
        assert r.returncode == 0, r.stderr
    return d


def test_surgery_keeps_every_weight_bit_for_bit(chain):
    base = load_safetensors(chain / "base" / "model.safetensors")
    assert "transformer.wpe.weight" in base
    for pos in ("alibi", "alibi-learned"):
        out = load_safetensors(chain / pos / "model.safetensors")
        assert "transformer.wpe.weight" not in out
        for name, value in base.items():
            if name == "transformer.wpe.weight":
                continue
            assert out[name].dtype == value.dtype and out[name].tobytes() == value.tobytes(), name
        config = json.loads((chain / pos / "config.json").read_text())
        assert config["pos"] == pos and config["block_size"] == 16
        assert config["activation"] == "gelu-tanh"
        origin = json.loads((chain / pos / "origin.json").read_text())
        assert origin["made_by"] == "slope surgery"
        assert origin["dropped"] == ["transformer.wpe.weight"]
        assert origin["source_origin"]["made_by"] == "slope import"
    learned = load_safetensors(chain / "alibi-learned" / "model.safetensors")
    press = np.asarray(alibi_slopes(4), np.float32)
    for layer in range(2):
        np.testing.assert_array_equal(learned[f"transformer.h.{layer}.attn.alibi_slopes"], press)
    extra = set(learned) - set(base)
    assert extra == {"transformer.h.0.attn.alibi_slopes", "transformer.h.1.attn.alibi_slopes"}


def test_block_size_is_no_longer_a_limit(chain):
    lengths = "16,64"
    r = slope("eval", "--checkpoint", chain / "base", "--data", chain / "data", "--lengths",
              lengths, "--json", "--csv", chain / "base.csv")
    assert r.returncode == 0, r.stderr
    r = slope("eval", "--checkpoint", chain / "alibi", "--data", chain / "data", "--lengths",
              lengths, "--json", "--csv", chain / "alibi.csv")
    assert r.returncode == 0, r.stderr
    learned_rows = (chain / "base.csv").read_text()
    alibi_rows = (chain / "alibi.csv").read_text()
    assert "\n64," in alibi_rows  # evaluated at 4 x block_size
    assert "\n64," not in learned_rows  # learned positions: wpe has 16 rows, 64 is skipped


def test_init_from_fine_tunes_with_a_fresh_run(chain, tmp_path):
    # One step at a learning rate below float32's smallest subnormal changes no weight's value
    # (a 0 may become -0): the model written is the one loaded, not a fresh initialisation.
    r = slope("train", "--data", chain / "data", "--out", tmp_path / "ft0", "--init-from",
              chain / "alibi", "--max-iters", "1", "--warmup-iters", "0", "--lr", "1e-46",
              "--batch-size", "2", "--eval-iters", "1", "--train-block-size", "4")
    assert r.returncode == 0, r.stderr
    start = load_safetensors(chain / "alibi" / "model.safetensors")
    written = load_safetensors(tmp_path / "ft0" / "model.safetensors")
    assert set(start) == set(written)
    for name in start:
        np.testing.assert_array_equal(written[name], start[name], err_msg=name)

    r = slope("train", "--data", chain / "data", "--out", tmp_path / "ft", "--init-from",
              chain / "alibi", "--max-iters", "4", "--warmup-iters", "1", "--eval-interval", "2",
              "--batch-size", "2", "--eval-iters", "1", "--train-block-size", "4", "--lr", "1e-3")
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["pos"] == "alibi" and config["n_embd"] == 32
    state = json.loads((tmp_path / "ft" / "train_state.json").read_text())
    assert state["step"] == 4  # a fresh schedule: counted from 0, not from the source's steps
    for where in (tmp_path / "ft", tmp_path / "ft" / "best"):
        origin = json.loads((where / "origin.json").read_text())
        assert origin["made_by"] == "slope train --init-from"
        assert origin["train_block_size"] == 4 and origin["block_size"] == 16
        assert origin["init_from_origin"]["made_by"] == "slope surgery"
        assert origin["init_from_origin"]["source_origin"]["made_by"] == "slope import"
    changed = load_safetensors(tmp_path / "ft" / "model.safetensors")
    assert any(changed[n].tobytes() != start[n].tobytes() for n in start)


def test_init_from_refuses_another_architecture(chain, tmp_path):
    r = slope("train", "--data", chain / "data", "--out", tmp_path / "x", "--init-from",
              chain / "alibi", "--n-layer", "3")
    assert r.returncode == 1 and "--n-layer" in r.stderr
    r = slope("train", "--data", chain / "data", "--out", tmp_path / "x", "--init-from",
              chain / "alibi", "--pos", "learned")
    assert r.returncode == 1 and "surgery" in r.stderr
    r = slope("surgery", "--pos", "alibi", chain / "alibi", tmp_path / "y")
    assert r.returncode == 1 and "already" in r.stderr
    assert not (tmp_path / "y" / "config.json").exists()
