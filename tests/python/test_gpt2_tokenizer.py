"""slope's byte-level BPE (GPT-2's tokenizer) against Hugging Face `tokenizers` and
`transformers`, on tests/data/utf8_torture.txt (accents, CJK, emoji, runs of spaces and newlines,
<|endoftext|>, text that looks like escapes or broken encodings).

No hub access: the reference tokenizer is trained here with `tokenizers`' ByteLevelBPETokenizer
and saved both ways (tokenizer.json; vocab.json + merges.txt). slope's ids come from
`slope prepare --tokenizer gpt2 --tokenizer-files DIR` (the whole file in train.bin, with
--val-fraction 0); they must equal the reference's exactly, and the reference must decode them
back to the file byte for byte. `slope prepare --tokenizer byte-bpe` trains a tokenizer whose
tokenizer.json `tokenizers` must load and encode to slope's ids.

The `slope` binary is looked for in $SLOPE_BINARY, then build/slope (oracle.dump_binary).
"""

import json
import pathlib
import subprocess

import numpy as np
import pytest

import oracle

tokenizers = oracle.require("tokenizers")
transformers = oracle.require("transformers")

TORTURE = oracle.ROOT / "tests" / "data" / "utf8_torture.txt"
# English and the torture text, repeated so that merges of every script get counts above 1.
TRAINING = ("In the beginning God created the heaven and the earth. And the earth was without "
            "form, and void; and darkness was upon the face of the deep.\n") * 20


def slope_bin():
    return oracle.dump_binary("slope", "SLOPE_BINARY")


def torture_text():
    return TORTURE.read_bytes().decode("utf-8")


def read_shard(path):
    """The ids of a token shard (src/data/token_shard.h: 64-byte header, then the tokens)."""
    raw = pathlib.Path(path).read_bytes()
    assert raw[:8] == b"SLOPETOK"
    width = int.from_bytes(raw[12:16], "little")
    count = int.from_bytes(raw[24:32], "little")
    dtype = {2: np.uint16, 4: np.uint32}[width]
    ids = np.frombuffer(raw[64:], dtype=dtype)
    assert ids.size == count
    return ids.astype(np.int64).tolist()


def slope_prepare(out, text_file, *tokenizer_args):
    cmd = [str(slope_bin()), "prepare", "--input", str(text_file), "--out", str(out),
           "--val-fraction", "0", "--split", "tail", *tokenizer_args]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return read_shard(pathlib.Path(out) / "train.bin")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A byte-level BPE trained by `tokenizers`, saved as tokenizer.json and as vocab/merges."""
    d = tmp_path_factory.mktemp("hf-bpe")
    tok = tokenizers.ByteLevelBPETokenizer()
    tok.train_from_iterator([TRAINING, torture_text()] * 3, vocab_size=600, min_frequency=1,
                            special_tokens=["<|endoftext|>"])
    (d / "json").mkdir()
    tok.save(str(d / "json" / "tokenizer.json"))
    (d / "files").mkdir()
    tok.save_model(str(d / "files"))
    assert (d / "files" / "vocab.json").is_file() and (d / "files" / "merges.txt").is_file()
    return d


def test_tokenizer_json_same_ids(reference, tmp_path):
    text = torture_text()
    hf = tokenizers.Tokenizer.from_file(str(reference / "json" / "tokenizer.json"))
    expected = hf.encode(text).ids
    ids = slope_prepare(tmp_path / "p", TORTURE, "--tokenizer", "gpt2", "--tokenizer-files",
                        str(reference / "json"))
    assert ids == expected
    # <|endoftext|> is one id wherever it stands whole, and its near-misses are not.
    eot = hf.token_to_id("<|endoftext|>")
    assert ids.count(eot) == text.count("<|endoftext|>") == 4
    assert hf.decode(ids, skip_special_tokens=False) == text


def test_vocab_merges_same_ids_as_transformers(reference, tmp_path):
    """GPT-2's own file pair (vocab.json + merges.txt), as transformers' GPT2TokenizerFast reads
    it from a directory (from_pretrained: the call that works across transformers 4 and 5)."""
    text = torture_text()
    files = reference / "files"
    fast = transformers.GPT2TokenizerFast.from_pretrained(str(files))
    vocab = json.loads((files / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) > 300 and fast.vocab_size == len(vocab)  # read, not an empty default
    ids = slope_prepare(tmp_path / "p", TORTURE, "--tokenizer", "gpt2", "--tokenizer-files",
                        str(files))
    assert ids == fast.encode(text)
    assert fast.decode(ids) == text


def test_trained_byte_bpe_loads_in_tokenizers(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text(TRAINING + torture_text(), encoding="utf-8")
    slope_prepare(tmp_path / "trained", train, "--tokenizer", "byte-bpe", "--vocab-size", "400")
    tok_dir = tmp_path / "trained" / "tokenizer"
    meta = json.loads((tmp_path / "trained" / "meta.json").read_text())
    assert meta["tokenizer"]["kind"] == "byte-bpe" and meta["tokenizer"]["vocab_size"] == 400

    hf = tokenizers.Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    assert hf.get_vocab_size() == 400
    text = torture_text()
    ids = slope_prepare(tmp_path / "p", TORTURE, "--tokenizer", "gpt2", "--tokenizer-files",
                        str(tok_dir))
    assert ids == hf.encode(text).ids
    assert hf.decode(ids, skip_special_tokens=False) == text
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"))
    assert fast.encode(text) == ids
    # It learned something: the training text's commonest word is one token.
    assert len(hf.encode(" the").ids) == 1


def test_bad_tokenizer_files_are_one_clear_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tokenizer.json").write_text('{"model": {"type": "WordPiece"}}')
    cmd = [str(slope_bin()), "prepare", "--input", str(TORTURE), "--out", str(tmp_path / "p"),
           "--tokenizer", "gpt2", "--tokenizer-files", str(tmp_path / "bad")]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 1
    assert "WordPiece" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p" / "meta.json").exists()
