"""`slope export` and `slope import` checked by the real clients (issue: models leave slope).

The model is slope_gpt_dump's (tests/model/gpt_dump.cpp): L=2, H=3 (Press's slopes for a
head count that is not a power of two), C=48, V=37, ALiBi, no biases, random spread weights,
with slope's own float32 and float64 logits on a (2, 24) batch that runs past block_size 16.
A char tokenizer of 36 code points (ASCII, space, newline, é, 日, an emoji) is added to it.

- Hugging Face: MptForCausalLM.from_pretrained(export) in float32 gives slope's float32 logits
  within 1e-4 of the largest logit (the bound the GPT oracle uses for float32 against float64,
  oracle.py); in float64 it gives slope's float64 logits within 1e-6 (both hold the ALiBi slopes
  in float32 and the 1/sqrt(D) scale rounded to float32 — slope's attention problem stores
  float, HF builds them with torch.float32 — so they agree with each other far better than
  either does with exact slopes; measured 1.6e-7, and 1.7e-6 in float32). AutoTokenizer gives
  slope's ids.
- gguf (llama.cpp's Python reader): every key llama.cpp needs, F32 tensors bit for bit, F16
  tensors equal to numpy's float16 rounding bit for bit.
- llama.cpp (llama-cpp-python): its logits on the same ids within 5e-3 of the largest logit,
  argmax equal wherever slope's top-2 gap exceeds 0.1; its tokenizer gives slope's ids; and a
  file written with the wrong max ALiBi bias fails that comparison (the check can fail).
- Round trips: import of the HF directory and of the F32 GGUF give back the checkpoint's
  tensors bit for bit, and the tokenizer.
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import oracle

torch = oracle.require("torch")
from gpt_reference import load_safetensors  # noqa: E402

V = 37
# ids 1..36: ascending code points; <unk> is 0. U+1F600 is outside the BMP (4 UTF-8 bytes).
CODE_POINTS = sorted(
    [ord(c) for c in "\n !,.abcdefghijklmnopqrstuvwxyzé"] + [ord("日"), 0x1F600, ord("Q"), ord("?")]
)
assert len(CODE_POINTS) == V - 1
TEXT = "hello, world!\n日 é\U0001F600  ab.\n\nQ"


def expected_ids(text):
    return [CODE_POINTS.index(ord(c)) + 1 if ord(c) in CODE_POINTS else 0 for c in text]


def slope_binary():
    return oracle.dump_binary("slope", "SLOPE_BINARY")


def slope(*args, ok=True):
    run = subprocess.run([str(slope_binary()), *map(str, args)], capture_output=True, text=True)
    if ok:
        assert run.returncode == 0, run.stderr
    return run


def make_checkpoint(directory, bias=False, pos="alibi"):
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [str(oracle.dump_binary("slope_gpt_dump", "SLOPE_GPT_DUMP")), str(directory), pos]
    run = subprocess.run(cmd + ([] if bias else ["--no-bias"]), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    tok = directory / "tokenizer"
    tok.mkdir()
    (tok / "tokenizer.json").write_text(json.dumps({
        "format": "slope-tokenizer", "version": 1, "kind": "char", "vocab_size": V,
        "code_points": CODE_POINTS}))
    return directory


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = make_checkpoint(tmp_path_factory.mktemp("mpt") / "ckpt")
    state, batch, out32, out64 = oracle.load_dump(d)
    return {"dir": d, "state": state, "idx": batch["idx"].astype(np.int64),
            "logits32": out32["logits"][..., :V], "logits64": out64["logits"][..., :V]}


@pytest.fixture(scope="module")
def hf_dir(ckpt):
    out = ckpt["dir"].parent / "hf"
    slope("export", "--format", "hf-mpt", "--max-seq-len", 64, ckpt["dir"], out)
    return out


def rel_to_max(a, b):
    """max |a − b| / max |b|."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


def test_hf_mpt_logits_match_slope(ckpt, hf_dir):
    transformers = oracle.require("transformers")
    config = json.loads((hf_dir / "config.json").read_text())
    assert config["model_type"] == "mpt" and config["attn_config"]["alibi_bias_max"] == 8.0
    model = transformers.MptForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    idx = torch.from_numpy(ckpt["idx"])
    with torch.no_grad():
        got32 = model(idx).logits.numpy()
        got64 = model.double()(idx).logits.numpy()
    assert got32.shape == ckpt["logits32"].shape
    assert rel_to_max(got32, ckpt["logits32"]) <= 1e-4
    assert rel_to_max(got64, ckpt["logits64"]) <= 1e-6


def test_hf_tokenizer_gives_slope_ids(hf_dir):
    transformers = oracle.require("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    assert ids == expected_ids(TEXT)
    assert tok.decode(ids) == TEXT
    assert tok("X ~", add_special_tokens=False)["input_ids"] == [0, CODE_POINTS.index(32) + 1, 0]


def gguf_reader(path):
    gguf = oracle.require("gguf")
    return gguf.GGUFReader(str(path))


def field(reader, key):
    return reader.fields[key].contents()


HF_TO_GGUF = {"transformer.wte.weight": "token_embd.weight",
              "transformer.ln_f.weight": "output_norm.weight"}
for _l in range(2):
    for _s, _g in [("ln_1", "attn_norm"), ("attn.c_attn", "attn_qkv"),
                   ("attn.c_proj", "attn_output"), ("ln_2", "ffn_norm"), ("mlp.c_fc", "ffn_up"),
                   ("mlp.c_proj", "ffn_down")]:
        HF_TO_GGUF[f"transformer.h.{_l}.{_s}.weight"] = f"blk.{_l}.{_g}.weight"


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_gguf_keys_and_tensors(ckpt, dtype):
    path = ckpt["dir"].parent / f"model-{dtype}.gguf"
    slope("export", "--format", "gguf", "--dtype", dtype, ckpt["dir"], path)
    r = gguf_reader(path)
    assert field(r, "general.architecture") == "mpt"
    assert field(r, "mpt.block_count") == 2 and field(r, "mpt.embedding_length") == 48
    assert field(r, "mpt.attention.head_count") == 3
    assert field(r, "mpt.feed_forward_length") == 4 * 48
    assert field(r, "mpt.context_length") == 16
    assert field(r, "mpt.attention.max_alibi_bias") == 8.0
    assert abs(field(r, "mpt.attention.layer_norm_epsilon") - 1e-5) < 1e-12
    assert field(r, "tokenizer.ggml.model") == "llama"
    tokens = field(r, "tokenizer.ggml.tokens")
    assert tokens[0] == "<unk>" and len(tokens) == V
    assert tokens[CODE_POINTS.index(32) + 1] == "\u2581"  # ' ' as llama.cpp spells it
    tensors = {t.name: t for t in r.tensors}
    assert set(tensors) == set(HF_TO_GGUF.values())
    for name, gname in HF_TO_GGUF.items():
        w = ckpt["state"][name]
        t = tensors[gname]
        data = np.asarray(t.data).reshape(w.shape)
        if dtype == "f32" or w.ndim == 1:
            assert data.dtype == np.float32 and np.array_equal(data.view(np.uint32),
                                                               w.astype(np.float32).view(np.uint32))
        else:
            want = w.astype(np.float16)
            assert data.dtype == np.float16 and np.array_equal(data.view(np.uint16),
                                                               want.view(np.uint16)), gname


def test_import_round_trips(ckpt, hf_dir, tmp_path):
    gguf_path = tmp_path / "m.gguf"
    slope("export", "--format", "gguf", ckpt["dir"], gguf_path)
    original_tok = json.loads((ckpt["dir"] / "tokenizer" / "tokenizer.json").read_text())
    for kind, source in [("hf-mpt", hf_dir), ("gguf", gguf_path)]:
        out = tmp_path / f"back-{kind}"
        slope("import", "--from", kind, source, "--out", out)
        back = load_safetensors(out / "model.safetensors")
        for name, w in ckpt["state"].items():
            assert np.array_equal(back[name].view(np.uint32), w.view(np.uint32)), (kind, name)
        tok = json.loads((out / "tokenizer" / "tokenizer.json").read_text())
        assert tok["code_points"] == original_tok["code_points"]
        # The imported checkpoint samples (a whole slope checkpoint, not only its tensors).
        run = slope("sample", "--checkpoint", out, "--max-new-tokens", 5, "--num-samples", 1,
                    "--seed", 1)
        assert run.stdout


def test_f16_import_widens_exactly(ckpt, tmp_path):
    path = tmp_path / "m16.gguf"
    slope("export", "--format", "gguf", "--dtype", "f16", ckpt["dir"], path)
    slope("import", "--from", "gguf", path, "--out", tmp_path / "back")
    back = load_safetensors(tmp_path / "back" / "model.safetensors")
    w = ckpt["state"]["transformer.h.0.mlp.c_fc.weight"]
    assert np.array_equal(back["transformer.h.0.mlp.c_fc.weight"],
                          w.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("what", ["bias", "learned"])
def test_export_refuses_what_mpt_cannot_hold(tmp_path, what):
    d = make_checkpoint(tmp_path / "ckpt", bias=(what == "bias"),
                        pos="learned" if what == "learned" else "alibi")
    for fmt, out in [("hf-mpt", tmp_path / "out"), ("gguf", tmp_path / "out.gguf")]:
        run = slope("export", "--format", fmt, d, out, ok=False)
        assert run.returncode != 0
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("slope: ")
        assert ("bias" if what == "bias" else "learned") in lines[0]
        assert not out.exists()


def test_import_refuses_a_corrupt_gguf(ckpt, tmp_path):
    path = tmp_path / "m.gguf"
    slope("export", "--format", "gguf", ckpt["dir"], path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = tmp_path / "back"
    run = slope("import", "--from", "gguf", path, "--out", out, ok=False)
    assert run.returncode != 0 and "truncated" in run.stderr
    assert not out.exists()


# --- llama.cpp ----------------------------------------------------------------------------


def llama_cpp():
    try:
        import llama_cpp
    except Exception as e:
        why = f"llama-cpp-python does not import ({e!r}): scripts/setup.sh --tests builds it"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return llama_cpp


def llama_logits(path, idx):
    lc = llama_cpp()
    # F32 KV cache (ggml type 0), logits of every position, two threads.
    llm = lc.Llama(model_path=str(path), n_ctx=64, n_batch=64, logits_all=True, n_threads=2,
                   type_k=0, type_v=0, verbose=False)
    out = []
    for row in idx:
        llm.reset()
        llm.eval(row.tolist())
        out.append(np.array(llm.scores[: len(row)], copy=True))
    return llm, np.stack(out)


def within_llama_bound(got, want):
    """llama.cpp's GELU is the tanh approximation looked up at fp16 inputs (io/mpt.h)."""
    if rel_to_max(got, want) > 5e-3:
        return False
    top2 = np.sort(want, axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 0.1
    return bool(np.all(np.argmax(got, -1)[clear] == np.argmax(want, -1)[clear]))


def test_llama_cpp_runs_the_gguf(ckpt, tmp_path):
    path = tmp_path / "m.gguf"
    slope("export", "--format", "gguf", "--max-seq-len", 64, ckpt["dir"], path)
    llm, got = llama_logits(path, ckpt["idx"])
    assert within_llama_bound(got, ckpt["logits32"]), rel_to_max(got, ckpt["logits32"])
    ids = llm.tokenize(TEXT.encode(), add_bos=False, special=False)
    assert ids == expected_ids(TEXT)
    assert llm.detokenize(ids).decode() == TEXT


def test_llama_cpp_check_fails_with_the_wrong_max_bias(ckpt, tmp_path):
    """The negative control: the same weights declared with max_alibi_bias 4."""
    wrong = tmp_path / "wrong"
    shutil.copytree(ckpt["dir"], wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["max_bias"] = 4.0
    (wrong / "config.json").write_text(json.dumps(config))
    path = tmp_path / "wrong.gguf"
    slope("export", "--format", "gguf", "--max-seq-len", 64, wrong, path)
    _, got = llama_logits(path, ckpt["idx"])
    assert not within_llama_bound(got, ckpt["logits32"])
