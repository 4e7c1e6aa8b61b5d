"""Decoding speed: `slope sample` (its KV cache) against llama.cpp (llama-cpp-python) on the same
F32 model and prompt, threads 1 and 2, in one interleaved run.

The model has GPT-2 small's shape (L12 H12 C768, V 50257, 124M parameters) with random weights
(speed does not depend on them): ALiBi, no biases, so that `slope export --format gguf` writes
it for llama.cpp as architecture mpt. Its char tokenizer holds 50256 code points, so a prompt
of 128 characters is 128 tokens for both. Both decode greedily: 128 prompt tokens in one
forward, then 256 tokens one at a time. Counting as llama.cpp does: prompt tokens/s is 128 over
the prompt's forward; generated tokens/s is 255 over the forwards of the later tokens (the first
generated token comes from the prompt's logits). llama.cpp runs with an F32 KV cache.

    .venv/bin/python bench/decode.py [--quick] [--repeats 3] [--markdown docs/BENCHMARKS.md]

Needs build/slope (scripts/setup.sh) and llama-cpp-python (scripts/setup.sh --tests).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine_info, md_table, progress, write_markdown  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SLOPE = os.environ.get("SLOPE_BINARY", str(ROOT / "build" / "slope"))
BEGIN, END = "<!-- decode.py begin -->", "<!-- decode.py end -->"


def code_points(n):
    """n code points, ascending, none of them a space, newline or U+2581 except those two
    first (a readable prompt), all Unicode scalar values."""
    cps = [ord("\n"), ord(" ")]
    c = 0x21
    while len(cps) < n:
        if not (0xD800 <= c <= 0xDFFF or c == 0x2581 or c in (0x7F, 0x85, 0xA0) or
                0x2000 <= c <= 0x206F or c == 0x3000):  # spaces llama.cpp or HF may normalise
            cps.append(c)
        c += 1
    return sorted(cps)


def make_checkpoint(d, L, H, C, V, block_size, seed=0):
    """A slope GPT checkpoint with random weights (N(0, 0.02), LayerNorm weights 1)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    w = {}

    def normal(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    w["transformer.wte.weight"] = normal(V, C)
    for l in range(L):
        p = f"transformer.h.{l}."
        w[p + "ln_1.weight"] = np.ones(C, np.float32)
        w[p + "attn.c_attn.weight"] = normal(3 * C, C)
        w[p + "attn.c_proj.weight"] = normal(C, C)
        w[p + "ln_2.weight"] = np.ones(C, np.float32)
        w[p + "mlp.c_fc.weight"] = normal(4 * C, C)
        w[p + "mlp.c_proj.weight"] = normal(C, 4 * C)
    w["transformer.ln_f.weight"] = np.ones(C, np.float32)
    w["lm_head.weight"] = w["transformer.wte.weight"]
    d.mkdir(parents=True)
    save_file({k: np.ascontiguousarray(v) for k, v in w.items()}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({
        "block_size": block_size, "vocab_size": V, "n_layer": L, "n_head": H, "n_embd": C,
        "dropout": 0.0, "bias": False, "pos": "alibi", "max_bias": 8.0}))
    cps = code_points(V - 1)
    (d / "tokenizer").mkdir()
    (d / "tokenizer" / "tokenizer.json").write_text(json.dumps({
        "format": "slope-tokenizer", "version": 1, "kind": "char", "vocab_size": V,
        "code_points": cps}))
    return cps


TIMING = re.compile(r"prompt (\d+) tokens x 1 samples in ([\d.]+) s .*generation (\d+) steps "
                    r"x 1 samples in ([\d.]+) s")


def run_slope(ckpt, prompt, n_new, threads):
    cmd = [SLOPE, "sample", "--checkpoint", str(ckpt), "--prompt", prompt,
           "--max-new-tokens", str(n_new), "--temperature", "0", "--threads", str(threads),
           "--timing"]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = TIMING.search(run.stderr)
    n_prompt, t_prompt, n_gen, t_gen = int(m[1]), float(m[2]), int(m[3]), float(m[4])
    return n_prompt / t_prompt, n_gen / t_gen, run.stdout[len(prompt):-1]


class Llama:
    def __init__(self, path, threads, n_ctx):
        import llama_cpp

        self.lc = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx,
                                   n_ubatch=n_ctx, n_threads=threads, n_threads_batch=threads,
                                   type_k=0, type_v=0, logits_all=False, verbose=False)
        self.n_vocab = self.llm.n_vocab()

    def last_logits(self):
        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.n_vocab,))

    def run(self, prompt_ids, n_new):
        llm = self.llm
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt_ids)
        t1 = time.perf_counter()
        out = [int(np.argmax(self.last_logits()))]
        for _ in range(n_new - 1):
            llm.eval([out[-1]])
            out.append(int(np.argmax(self.last_logits())))
        t2 = time.perf_counter()
        return len(prompt_ids) / (t1 - t0), (n_new - 1) / (t2 - t1), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small model (L4 H4 C256, V 4096)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved runs per configuration")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--markdown", help="write the table into this file between markers")
    args = ap.parse_args(argv)
    L, H, C, V = (4, 4, 256, 4096) if args.quick else (12, 12, 768, 50257)
    n_ctx = args.prompt_tokens + args.new_tokens
    with tempfile.TemporaryDirectory(prefix="slope-decode-") as tmp:
        tmp = Path(tmp)
        progress(f"random GPT L{L} H{H} C{C} V{V} (ALiBi, no biases)")
        cps = make_checkpoint(tmp / "ckpt", L, H, C, V, block_size=1024)
        gguf = tmp / "model.gguf"
        subprocess.run([SLOPE, "export", "--format", "gguf",
                        "--max-seq-len", str(max(n_ctx, 1024)), str(tmp / "ckpt"), str(gguf)],
                       check=True, capture_output=True)
        rng = np.random.default_rng(1)
        prompt_ids = [int(i) for i in rng.integers(1, V, args.prompt_tokens)]
        prompt = "".join(chr(cps[i - 1]) for i in prompt_ids)
        rows, agree = [], []
        for threads in (1, 2):
            llama = Llama(gguf, threads, n_ctx)
            res = {"slope": [], "llama.cpp": []}
            for r in range(args.repeats):
                progress(f"threads {threads}, run {r + 1}/{args.repeats}")
                sp, sg, stext = run_slope(tmp / "ckpt", prompt, args.new_tokens, threads)
                lp, lg, lids = llama.run(prompt_ids, args.new_tokens)
                res["slope"].append((sp, sg))
                res["llama.cpp"].append((lp, lg))
                sids = [cps.index(ord(ch)) + 1 for ch in stext]
                # Greedy paths agree until the first near-tie (llama.cpp's tanh GELU): a sanity
                # figure, not a test.
                same = next((i for i, (a, b) in enumerate(zip(sids, lids)) if a != b), len(lids))
                agree.append(same)
            med = {k: (statistics.median(p for p, _ in v), statistics.median(g for _, g in v))
                   for k, v in res.items()}
            rows.append([threads, f"{med['slope'][0]:.0f}", f"{med['llama.cpp'][0]:.0f}",
                         f"{med['slope'][0] / med['llama.cpp'][0]:.2f}",
                         f"{med['slope'][1]:.1f}", f"{med['llama.cpp'][1]:.1f}",
                         f"{med['slope'][1] / med['llama.cpp'][1]:.2f}"])
            del llama
    flags = Path("/proc/cpuinfo").read_text()
    info = machine_info(isa="AVX-512" if " avx512f " in flags else "AVX2 (no AVX-512)",
                        model=f"GPT L{L} H{H} C{C} V{V} F32, ALiBi, random weights",
                        prompt=f"{args.prompt_tokens} tokens", generated=f"{args.new_tokens} greedy",
                        repeats=args.repeats)
    table = md_table(["threads", "slope prompt tok/s", "llama.cpp prompt tok/s", "ratio",
                      "slope generated tok/s", "llama.cpp generated tok/s", "ratio"], rows)
    text = "\n".join(f"- {k}: {v}" for k, v in info.items()) + "\n\n" + table + "\n" + \
        f"\nGreedy tokens identical before the first divergence: {min(agree)}–{max(agree)} of " \
        f"{args.new_tokens} (llama.cpp's GELU is the tanh approximation).\n"
    print(text)
    if args.markdown:
        write_markdown(args.markdown, "## Decoding: slope sample vs llama.cpp\n\n" + text, BEGIN, END)


if __name__ == "__main__":
    main()
