#!/usr/bin/env python3
"""bench/train.py: training throughput of slope's GPT against the same model in PyTorch eager.

    .venv/bin/python bench/train.py [--steps N] [--vocab 65,50304] [--pos alibi]
                                    [--out docs/BENCHMARKS.md]

A GPT in nanoGPT's shape, n_layer 6, n_head 6, n_embd 384, B=8, T=256, dropout 0, float32, on
random tokens; one step = forward + backward + AdamW step + zero_grad. For each vocabulary
(65: character level; 50304: GPT-2's, padded) the same run times, one after the other:

  slope    `build/slope bench train --json` as a subprocess (OPENBLAS_CORETYPE and
           OPENBLAS_L2_SIZE unset in its environment), which also measures OpenBLAS sgemm.
  pytorch  a compact nanoGPT model in eager PyTorch on CPU, the same threads: ALiBi as a
           materialised causal bias mask (1, H, T, T) passed to F.scaled_dot_product_attention
           as attn_mask (built once, outside the timing); learned / none positions use
           is_causal=True; wte tied to lm_head; torch.optim.AdamW(fused=False) with nanoGPT's
           parameter groups.

Each side takes one warm-up step, then --steps timed steps; the median step time gives tokens/s.
Model FLOPs per step follow nanoGPT's estimate_mfu: (6·N + 12·L·H·Q·T)·B·T, N the parameters
less the position table; "MFU" here is model FLOP/s over the sgemm GFLOP/s of the same run.
Targets: slope / PyTorch tokens/s ≥ 1.5, slope's MFU vs sgemm ≥ 0.5.
Progress goes to stderr, the report to stdout; --out writes it into a markdown file, replacing
the section this script wrote there before and keeping the rest.
"""

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
SLOPE = ROOT / "build" / "slope"
from bench_common import (OPENBLAS_VARS, machine_info as _machine_info, md_table,  # noqa: E402
                          openblas_env_note, progress, ratio, write_markdown)
BEGIN, END = "<!-- bench/train.py:begin -->", "<!-- bench/train.py:end -->"

N_LAYER, N_HEAD, N_EMBD, B, T = 6, 6, 384, 8, 256
DEFAULT_VOCAB = [65, 50304]
TARGET_RATIO, TARGET_MFU = 1.5, 0.5
LR = 6e-4


# ---------------------------------------------------------------------------------------------
# The PyTorch peer: nanoGPT's model.py, compacted, with ALiBi through an SDPA mask


def alibi_slopes(h, max_bias=8.0):
    """Press et al.'s slopes (their reference code for a head count that is not a power of 2)."""
    def power_of_2(n):
        start = 2.0 ** (-max_bias / n)
        return [start ** (i + 1) for i in range(n)]

    n = 2 ** math.floor(math.log2(h))
    return power_of_2(n) + (power_of_2(2 * n)[0::2][: h - n] if n < h else [])


def alibi_mask(h, t):
    """(1, H, T, T) float32: -m_h·(i - j) for j <= i, -inf above the diagonal."""
    i = torch.arange(t).view(t, 1)
    j = torch.arange(t).view(1, t)
    mask = (j - i).float() * torch.tensor(alibi_slopes(h)).view(-1, 1, 1)
    mask.masked_fill_((j > i).unsqueeze(0), float("-inf"))
    return mask.unsqueeze(0)


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.c_attn, self.attn_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.gelu = nn.GELU()

    def forward(self, x, mask):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.h, c // self.h).transpose(1, 2) for z in (q, k, v))
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, c))
        return x + self.mlp_proj(self.gelu(self.c_fc(self.ln_2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab, pos):
        super().__init__()
        self.wte = nn.Embedding(vocab, N_EMBD)
        self.wpe = nn.Embedding(T, N_EMBD) if pos == "learned" else None
        self.blocks = nn.ModuleList(Block(N_EMBD, N_HEAD) for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.lm_head = nn.Linear(N_EMBD, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as nanoGPT
        self.register_buffer("mask", alibi_mask(N_HEAD, T) if pos == "alibi" else None)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * N_LAYER) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias") and "ln_" not in name:
                nn.init.zeros_(p)  # nanoGPT zeroes the linear layers' biases

    def forward(self, idx, targets):
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x, self.mask)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    def nanogpt_params(self):
        """nanoGPT's get_num_params(): all parameters (wte once), less the position table."""
        n = sum(p.numel() for p in self.parameters())
        return n - (self.wpe.weight.numel() if self.wpe is not None else 0)


def adamw(model):
    """nanoGPT's configure_optimizers: weight decay on tensors of dim >= 2, fused=False."""
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.95), eps=1e-8, fused=False)


def flops_per_step(n_params):
    """nanoGPT's estimate_mfu: per token 6·N + 12·L·H·Q·T, times B·T tokens."""
    return (6 * n_params + 12 * N_LAYER * N_EMBD * T) * B * T


def time_torch(vocab, pos, steps):
    torch.manual_seed(1337)
    model = Gpt(vocab, pos)
    model.train()
    opt = adamw(model)
    g = torch.Generator().manual_seed(1)
    seq = torch.randint(0, vocab, (B, T + 1), generator=g)
    idx, targets = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()
    losses = []

    def step():
        loss = model(idx, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())

    step()  # warm up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    n = model.nanogpt_params()
    return {"step_ms": med * 1e3, "step_min_ms": min(times) * 1e3, "tokens_per_s": B * T / med,
            "nanogpt_params": n, "model_gflops": flops_per_step(n) / med * 1e-9,
            "loss_first": losses[0], "loss_last": losses[-1]}


# ---------------------------------------------------------------------------------------------
# The slope side


def run_slope(vocab, pos, steps):
    """build/slope bench train --json for one vocabulary: {"machine", "sgemm", "train"} records
    (the keys present), or {"error": ...}."""
    cmd = [str(SLOPE), "bench", "train", "--json", "--vocab", str(vocab), "--pos", pos,
           "--steps", str(steps), "--B", str(B), "--T", str(T), "--n-layer", str(N_LAYER),
           "--n-head", str(N_HEAD), "--n-embd", str(N_EMBD)]
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    progress(f"slope: {' '.join(cmd[1:])} (with {', '.join(OPENBLAS_VARS)} unset)")
    out = {"cmd": cmd}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except OSError as e:
        return {**out, "error": str(e)}
    for line in p.stdout.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        out[rec.get("kind")] = rec
    if p.returncode != 0 or "train" not in out:
        why = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
        out["error"] = why[:300]
    return out


# ---------------------------------------------------------------------------------------------
# Report


def machine_info():
    return _machine_info(torch=torch.__version__)


def fmt(x, spec=".2f"):
    return "n/a" if x is None else format(x, spec)


def report(args, info, threads, rows):
    cmdline = ".venv/bin/python bench/train.py" + "".join(" " + shlex.quote(a) for a in args.argv)
    machine = next((r["slope"]["machine"] for r in rows if "machine" in r["slope"]), {})
    p = [f"## Training throughput: slope vs PyTorch eager ({info['date']})", ""]
    p.append(f"- Machine: {info['cpu']}, {info['cores']} cores; threads {threads} (slope: "
             f"OpenMP and OpenBLAS; torch.set_num_threads), OMP_NUM_THREADS "
             f"{info['OMP_NUM_THREADS']}; slope ISA `{machine.get('isa', '?')}`; "
             f"{machine.get('openblas', 'OpenBLAS ?')}")
    p.append(f"- Versions: torch {info['torch']}, python {info['python']}")
    p.append(f"- Config: GPT n_layer {N_LAYER}, n_head {N_HEAD}, n_embd {N_EMBD}, pos "
             f"`{args.pos}`, dropout 0, bias, tied lm_head, B={B}, T={T}, float32, random tokens; "
             f"one step = forward + backward + AdamW (lr {LR}, betas (0.9, 0.95), wd 0.1 on "
             f"dim ≥ 2) + zero_grad; 1 warm-up step, median of {args.steps} timed steps")
    p.append(f"- Command: `{cmdline}`; per vocabulary, slope first "
             f"(`build/slope bench train --json --vocab V ...` with {' and '.join(OPENBLAS_VARS)} "
             f"unset: {openblas_env_note()}), then PyTorch in this process")
    p.append("- PyTorch peer: a compact nanoGPT model, eager; ALiBi as a materialised causal "
             "float mask (1, H, T, T) to `F.scaled_dot_product_attention(attn_mask=...)` "
             "(learned / none: `is_causal=True`); `torch.optim.AdamW(fused=False)`, nanoGPT's "
             "groups")
    p.append("- Model FLOPs per step: nanoGPT's `estimate_mfu`, (6·N + 12·L·H·Q·T)·B·T with N "
             "the parameters less the position table (its attention term counts the full T×T; "
             "halving it for causal would lower the MFU by 2–5% at these sizes). MFU = model FLOP/s / "
             "OpenBLAS sgemm GFLOP/s (1024³), sgemm measured by the slope subprocess just "
             "before its steps")
    p.append("")
    table = []
    for r in rows:
        s = r["slope"].get("train")
        sg = r["slope"].get("sgemm", {}).get("gflops")
        t = r["torch"]
        table.append([
            r["vocab"], s["nanogpt_params"] if s else t["nanogpt_params"],
            fmt(s and s["step_ms"], ".1f"), fmt(s and s["tokens_per_s"], ".0f"),
            fmt(t["step_ms"], ".1f"), fmt(t["tokens_per_s"], ".0f"),
            fmt(ratio(s and s["tokens_per_s"], t["tokens_per_s"])), fmt(sg, ".1f"),
            fmt(s and s["model_gflops"], ".1f"), fmt(ratio(s and s["model_gflops"], sg)),
            fmt(ratio(t["model_gflops"], sg))])
    p.append(md_table(["vocab", "N (nanoGPT)", "slope step ms", "slope tok/s", "torch step ms",
                       "torch tok/s", "slope / torch", "sgemm GFLOP/s", "slope GFLOP/s",
                       "slope MFU", "torch MFU"], table))
    p += ["", "### Targets", ""]
    checks = []
    for r in rows:
        s = r["slope"].get("train")
        sg = r["slope"].get("sgemm", {}).get("gflops")
        rt = ratio(s and s["tokens_per_s"], r["torch"]["tokens_per_s"])
        mfu = ratio(s and s["model_gflops"], sg)
        checks.append([f"vocab {r['vocab']}: slope / PyTorch tokens/s ≥ {TARGET_RATIO}",
                       fmt(rt), status(rt, TARGET_RATIO)])
        checks.append([f"vocab {r['vocab']}: slope MFU vs sgemm ≥ {TARGET_MFU}", fmt(mfu),
                       status(mfu, TARGET_MFU)])
    p.append(md_table(["target", "measured", "status"], checks))
    notes = []
    for r in rows:
        s, t = r["slope"].get("train"), r["torch"]
        if r["slope"].get("error"):
            notes.append(f"vocab {r['vocab']}: slope failed: {r['slope']['error']}")
        if s:
            notes.append(f"vocab {r['vocab']}: losses first → last step, slope "
                         f"{s['loss_first']:.3f} → {s['loss_last']:.3f}, PyTorch "
                         f"{t['loss_first']:.3f} → {t['loss_last']:.3f} (ln V = "
                         f"{math.log(r['vocab']):.3f}); fastest step, slope "
                         f"{s['step_min_ms']:.1f} ms, PyTorch {t['step_min_ms']:.1f} ms")
            if s["nanogpt_params"] != t["nanogpt_params"]:
                notes.append(f"vocab {r['vocab']}: N differs, slope {s['nanogpt_params']}, "
                             f"PyTorch {t['nanogpt_params']}")
    notes.append("The two sides run one after the other, not interleaved: on a shared machine, "
                 "load from elsewhere can land on one side only; absolute times on a shared "
                 "2-core machine are noise, read the ratios")
    p += ["", "### Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(p) + "\n"


def status(x, target):
    return "n/a" if x is None else ("MET" if x >= target else "NOT MET")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per side (default 5)")
    ap.add_argument("--vocab", default=",".join(map(str, DEFAULT_VOCAB)),
                    help="comma-separated vocabulary sizes (default 65,50304)")
    ap.add_argument("--pos", default="alibi", choices=["alibi", "learned", "none"],
                    help="position scheme (default alibi)")
    ap.add_argument("--out", help="markdown file to write the results into "
                                  "(e.g. docs/BENCHMARKS.md); default: print only")
    args = ap.parse_args(argv)
    args.argv = argv
    try:
        args.vocabs = [int(v) for v in args.vocab.split(",")]
    except ValueError:
        ap.error(f"--vocab {args.vocab}: expected comma-separated integers")
    if not args.vocabs or min(args.vocabs) < 2:
        ap.error("--vocab: sizes must be at least 2")
    if args.steps < 1:
        ap.error("--steps: at least 1")
    return args


def main(argv):
    args = parse_args(argv)
    info = machine_info()
    rows = []
    threads = None
    for vocab in args.vocabs:
        s = run_slope(vocab, args.pos, args.steps)
        if "train" in s:
            tr = s["train"]
            progress(f"  slope V={vocab}: {tr['step_ms']:.1f} ms/step, "
                     f"{tr['tokens_per_s']:.0f} tokens/s, sgemm {s['sgemm']['gflops']:.1f} GFLOP/s")
        else:
            progress(f"  slope V={vocab} failed: {s.get('error')}")
        if threads is None:
            threads = s.get("machine", {}).get("threads") or torch.get_num_threads()
            torch.set_num_threads(threads)
        progress(f"pytorch V={vocab}: {threads} threads, 1 warm-up + {args.steps} steps ...")
        t = time_torch(vocab, args.pos, args.steps)
        progress(f"  pytorch V={vocab}: {t['step_ms']:.1f} ms/step, "
                 f"{t['tokens_per_s']:.0f} tokens/s")
        rows.append({"vocab": vocab, "slope": s, "torch": t})
    print("# bench/train.py")
    for k, v in info.items():
        print(f"#   {k}: {v}")
    print()
    section = report(args, info, threads, rows)
    print(section, end="")
    if args.out:
        write_markdown(args.out, section, BEGIN, END)
        progress(f"wrote {args.out}")
    ok = all("train" in r["slope"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
