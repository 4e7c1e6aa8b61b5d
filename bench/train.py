#!/usr/bin/env python3
"""bench/train.py: training throughput of slope's GPT against the same model in PyTorch, eager
and torch.compile'd, with ALiBi through a mask and causal attention without any bias.

    .venv/bin/python bench/train.py [--steps N] [--rounds R] [--vocab 65,50304]
                                    [--configs 256x8,1024x2] [--peers slope,eager-mask,...]
                                    [--out docs/BENCHMARKS.md]

A GPT in nanoGPT's shape, n_layer 6, n_head 6, n_embd 384, dropout 0, float32, on random tokens;
one step = forward + backward + AdamW step + zero_grad. Configs are TxB (T=256 B=8 and T=1024
B=2: the same 2048 tokens per step), each with every vocabulary (65: character level; 50304:
GPT-2's, padded). The peers, all in one run and interleaved (per config and vocabulary, R
rounds of: each peer in turn, 1 warm-up + N timed steps):

  slope          `build/slope bench train --json` (ALiBi, fused) as a subprocess, with
                 OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset; it also times a 1024³ sgemm on
                 its linear layers' GEMM library (oneDNN, MKL or OpenBLAS) between its steps,
                 the MFU yardstick of every peer of that config.
  slope-bf16     the same with `--dtype bf16` (the linear layers' GEMM inputs in bfloat16,
                 float32 accumulation): only where the CPU has AVX512_BF16 or AMX; elsewhere
                 slope refuses and the peer is reported as not run, which is not a failure.
                 Its MFU is against the same fp32 sgemm as every peer's (it times that sgemm
                 between its steps too, and those rates join the yardstick's median).
  eager-mask     a compact nanoGPT model in eager PyTorch: ALiBi as a materialised causal bias
                 (1, H, T, T) to F.scaled_dot_product_attention(attn_mask=...), built once.
  eager-causal   the same without any position bias: is_causal=True (PyTorch's flash path on
                 CPU; a model without positions: the speed ceiling, not the same model).
  compile-mask   torch.compile(model) (inductor, CPU) of eager-mask; the first round's warm-up
                 step compiles and is not timed.
  compile-causal torch.compile of eager-causal.
PyTorch runs in this process with torch.set_num_threads(the cores, or OMP_NUM_THREADS);
torch.optim.AdamW(fused=False) with nanoGPT's parameter groups; wte tied to lm_head.

The median of a peer's timed steps over all rounds gives its tokens/s (slope reports only its
median per round; it counts once per timed step). Model FLOPs per step follow nanoGPT's
estimate_mfu: (6·N + 12·L·H·Q·T)·B·T, N the parameters less the position table; "MFU" is model
FLOP/s over the median of the sgemm GFLOP/s slope timed between its steps in the config's rounds
(each slope run's median of one sgemm before its first timed step and one after each).
Targets (issue 18): slope's MFU ≥ 0.9 at T=256 vocab 65; slope ≥ 1.15× eager-mask and ≥ 1.0×
compile-mask tokens/s at T=256; ≥ 1.5× eager-mask at T=1024.
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

# OpenMP's wait policy for both sides: passive, as the slope binary chooses for itself, unless set
# (libgomp reads it when torch loads it). With libgomp's spinning default, a loaded 2-core
# machine slows OpenMP code 2-10x (docs/training-profile.md).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SLOPE = Path(os.environ.get("SLOPE_BINARY") or ROOT / "build" / "slope")  # env: another build
from bench_common import (OPENBLAS_VARS, machine_info as _machine_info, md_table,  # noqa: E402
                          openblas_env_note, progress, ratio, write_markdown)
BEGIN, END = "<!-- bench/train.py:begin -->", "<!-- bench/train.py:end -->"

N_LAYER, N_HEAD, N_EMBD = 6, 6, 384
DEFAULT_VOCAB = [65, 50304]
DEFAULT_CONFIGS = [(256, 8), (1024, 2)]  # (T, B)
PEERS = ["slope", "slope-bf16", "eager-mask", "eager-causal", "compile-mask", "compile-causal"]
LR = 6e-4


# ---------------------------------------------------------------------------------------------
# The PyTorch peers: nanoGPT's model.py, compacted, with ALiBi through an SDPA mask


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
    def __init__(self, vocab, pos, t):
        super().__init__()
        self.wte = nn.Embedding(vocab, N_EMBD)
        self.wpe = nn.Embedding(t, N_EMBD) if pos == "learned" else None
        self.blocks = nn.ModuleList(Block(N_EMBD, N_HEAD) for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.lm_head = nn.Linear(N_EMBD, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as nanoGPT
        self.register_buffer("mask", alibi_mask(N_HEAD, t) if pos == "alibi" else None)
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


def flops_per_step(n_params, t, b):
    """nanoGPT's estimate_mfu: per token 6·N + 12·L·H·Q·T, times B·T tokens."""
    return (6 * n_params + 12 * N_LAYER * N_EMBD * t) * b * t


class TorchPeer:
    """One PyTorch peer (eager or compiled; ALiBi mask or is_causal), kept alive across the
    rounds so that torch.compile compiles once."""

    def __init__(self, name, vocab, t, b):
        torch.manual_seed(1337)
        model = Gpt(vocab, "alibi" if name.endswith("mask") else "none", t)
        model.train()
        self.n_params = model.nanogpt_params()
        self.opt = adamw(model)
        self.model = torch.compile(model) if name.startswith("compile") else model
        g = torch.Generator().manual_seed(1)
        seq = torch.randint(0, vocab, (b, t + 1), generator=g)
        self.idx, self.targets = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()
        self.losses = []

    def step(self):
        loss = self.model(self.idx, self.targets)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.losses.append(loss.item())

    def time(self, steps):
        """One warm-up step (the first round's compiles), then `steps` timed: their seconds."""
        self.step()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            self.step()
            times.append(time.perf_counter() - t0)
        return times


# ---------------------------------------------------------------------------------------------
# The slope side


def run_slope(vocab, steps, t, b, dtype="fp32"):
    """build/slope bench train --json for one vocabulary: {"machine", "sgemm", "train"} records
    (the keys present), or {"error": ...}; {"unsupported": ...} where slope says this CPU cannot
    run `dtype`."""
    cmd = [str(SLOPE), "bench", "train", "--json", "--vocab", str(vocab), "--pos", "alibi",
           "--steps", str(steps), "--B", str(b), "--T", str(t), "--n-layer", str(N_LAYER),
           "--n-head", str(N_HEAD), "--n-embd", str(N_EMBD), "--dtype", dtype]
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
        out["unsupported" if "not supported on this CPU" in why else "error"] = why[:300]
    return out


# ---------------------------------------------------------------------------------------------
# Report


def machine_info():
    return _machine_info(torch=torch.__version__)


def fmt(x, spec=".2f"):
    return "n/a" if x is None else format(x, spec)


def status(x, target):
    return "n/a" if x is None else ("MET" if x >= target else "NOT MET")


def report(args, info, threads, rows):
    cmdline = ".venv/bin/python bench/train.py" + "".join(" " + shlex.quote(a) for a in args.argv)
    machine = next((r["machine"] for r in rows if r.get("machine")), {})
    p = [f"## Training throughput: slope vs PyTorch eager and torch.compile ({info['date']})", ""]
    p.append(f"- Machine: {info['cpu']}, {info['cores']} cores, load average before the run "
             f"{info['load']}; threads {threads} (slope: OpenMP and OpenBLAS; "
             f"torch.set_num_threads), OMP_WAIT_POLICY {os.environ['OMP_WAIT_POLICY']}; slope ISA `{machine.get('isa', '?')}`; "
             f"{machine.get('openblas', 'OpenBLAS ?')}")
    p.append(f"- Versions: torch {info['torch']}, python {info['python']}")
    p.append(f"- Config: GPT n_layer {N_LAYER}, n_head {N_HEAD}, n_embd {N_EMBD}, dropout 0, "
             "bias, tied lm_head, float32, random tokens; one step = forward + backward + AdamW "
             f"(lr {LR}, betas (0.9, 0.95), wd 0.1 on dim ≥ 2) + zero_grad; per config and "
             f"vocabulary {args.rounds} interleaved rounds of every peer, each 1 warm-up + "
             f"{args.steps} timed steps; the median over the rounds")
    p.append(f"- Command: `{cmdline}`; slope = `build/slope bench train --json` (ALiBi) with "
             f"{' and '.join(OPENBLAS_VARS)} unset ({openblas_env_note()})")
    p.append("- Peers: eager / torch.compile (inductor) of a compact nanoGPT model; `mask` = "
             "ALiBi as a materialised causal float mask (1, H, T, T) to "
             "`F.scaled_dot_product_attention(attn_mask=...)`; `causal` = `is_causal=True` with "
             "no position bias at all (a model without positions: the speed ceiling of "
             "PyTorch's flash path, not the same model)")
    p.append("- MFU = model FLOP/s (nanoGPT's `estimate_mfu`, full T×T attention term) / "
             f"sgemm GFLOP/s (1024³) on slope's linear-layer GEMM library (`{machine.get('gemm', 'openblas')}`) "
             "timed by slope's subprocesses between their steps in the same rounds (the median)")
    p.append("")
    header = ["T×B", "vocab", "sgemm GFLOP/s"]
    for peer in args.peers:
        header += [f"{peer} tok/s", f"{peer} MFU"]
    table = []
    for r in rows:
        row = [f"{r['T']}×{r['B']}", r["vocab"], fmt(r["sgemm"], ".1f")]
        for peer in args.peers:
            row += [fmt(r["tokens_per_s"].get(peer), ".0f"), fmt(r["mfu"].get(peer))]
        table.append(row)
    p.append(md_table(header, table))
    others = [peer for peer in args.peers if peer not in ("slope", "slope-bf16")]
    mine = [peer for peer in ("slope", "slope-bf16") if peer in args.peers]
    if mine and others:
        p += ["", "slope's tokens/s over each peer's (same run):", ""]
        rt = []
        for r in rows:
            tps = r["tokens_per_s"]
            rt.append([f"{r['T']}×{r['B']}", r["vocab"]] +
                      [fmt(ratio(tps.get(m), tps.get(peer))) for m in mine for peer in others])
        p.append(md_table(["T×B", "vocab"] + [f"{m} / {peer}" for m in mine for peer in others],
                          rt))
    p += ["", "### Targets (issue 18)", ""]
    checks = []
    for r in rows:
        s = r["tokens_per_s"].get("slope")
        tag = f"T={r['T']} vocab {r['vocab']}"
        if r["T"] == 256 and r["vocab"] == 65:
            checks.append([f"{tag}: slope MFU ≥ 0.9 of sgemm", fmt(r["mfu"].get("slope")),
                           status(r["mfu"].get("slope"), 0.9)])
        if r["T"] == 256:
            for peer, target in (("eager-mask", 1.15), ("compile-mask", 1.0)):
                x = ratio(s, r["tokens_per_s"].get(peer))
                checks.append([f"{tag}: slope / {peer} ≥ {target}", fmt(x), status(x, target)])
        if r["T"] == 1024:
            x = ratio(s, r["tokens_per_s"].get("eager-mask"))
            checks.append([f"{tag}: slope / eager-mask ≥ 1.5", fmt(x), status(x, 1.5)])
    p.append(md_table(["target", "measured", "status"], checks))
    notes = []
    for r in rows:
        for peer, err in r["errors"].items():
            notes.append(f"T={r['T']} vocab {r['vocab']}: {peer} failed: {err}")
        for peer, why in r.get("unsupported", {}).items():
            notes.append(f"T={r['T']} vocab {r['vocab']}: {peer} not run on this CPU: {why}")
        losses = ", ".join(f"{peer} {lf:.3f} → {ll:.3f}" for peer, (lf, ll) in r["losses"].items())
        notes.append(f"T={r['T']} vocab {r['vocab']}: losses, first → last step: {losses} "
                     f"(ln V = {math.log(r['vocab']):.3f}); spread of the timed steps "
                     "(max/min): " + ", ".join(f"{peer} {sp:.2f}" for peer, sp in
                                               r["spread"].items()))
    notes.append("Losses: a PyTorch peer keeps training across the rounds (its last loss is after "
                 "rounds·(1 + steps) steps); slope's subprocess starts afresh each round (1 + "
                 "steps steps), so its last loss is from an earlier step, not a worse model")
    notes.append("Absolute times on a shared 2-core machine are noise; read the ratios, which "
                 "come from interleaved rounds of the same run")
    p += ["", "### Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(p) + "\n"


# ---------------------------------------------------------------------------------------------
# The run


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per peer and round (3)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    ap.add_argument("--vocab", default=",".join(map(str, DEFAULT_VOCAB)),
                    help="comma-separated vocabulary sizes (default 65,50304)")
    ap.add_argument("--configs", default=",".join(f"{t}x{b}" for t, b in DEFAULT_CONFIGS),
                    help="comma-separated TxB (default 256x8,1024x2)")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help=f"comma-separated, from {','.join(PEERS)} (default all)")
    ap.add_argument("--out", help="markdown file to write the results into "
                                  "(e.g. docs/BENCHMARKS.md); default: print only")
    args = ap.parse_args(argv)
    args.argv = argv
    try:
        args.vocabs = [int(v) for v in args.vocab.split(",")]
        args.tb = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]
    except ValueError:
        ap.error("--vocab / --configs: expected comma-separated integers / TxB pairs")
    if not args.vocabs or min(args.vocabs) < 2:
        ap.error("--vocab: sizes must be at least 2")
    if any(len(c) != 2 or min(c) < 1 for c in args.tb):
        ap.error("--configs: each entry is TxB with positive T and B, e.g. 256x8")
    args.peers = args.peers.split(",")
    if not args.peers or any(p not in PEERS for p in args.peers):
        ap.error(f"--peers: choose from {','.join(PEERS)}")
    if args.steps < 1 or args.rounds < 1:
        ap.error("--steps, --rounds: at least 1")
    return args


def run_config(args, t, b, vocab):
    """Every peer, args.rounds interleaved rounds: one report row."""
    times = {peer: [] for peer in args.peers}
    sgemm, errors, losses, machine, n_params, peers = [], {}, {}, {}, None, {}
    unsupported = {}
    for rnd in range(args.rounds):
        for peer in args.peers:
            if peer in errors or peer in unsupported:
                continue
            progress(f"T={t} B={b} vocab {vocab}, round {rnd + 1}/{args.rounds}: {peer}")
            if peer in ("slope", "slope-bf16"):
                s = run_slope(vocab, args.steps, t, b, "bf16" if peer == "slope-bf16" else "fp32")
                if "unsupported" in s:
                    unsupported[peer] = s["unsupported"]
                    continue
                if "train" not in s:
                    errors[peer] = s.get("error")
                    continue
                tr = s["train"]
                if peer == "slope":
                    machine = s.get("machine", machine)
                # The yardstick: the fp32 sgemm of slope's GEMM library, timed between the steps
                # (the run's median); a binary without that has only the one before its steps.
                sgemm.append(tr.get("sgemm_gflops", s["sgemm"]["gflops"]))
                times[peer] += [tr["step_ms"] / 1e3] * args.steps
                n_params = tr["nanogpt_params"]
                losses[peer] = (tr["loss_first"], tr["loss_last"])
                continue
            try:
                if peer not in peers:
                    peers[peer] = TorchPeer(peer, vocab, t, b)
                times[peer] += peers[peer].time(args.steps)
                n_params = n_params or peers[peer].n_params
                losses[peer] = (peers[peer].losses[0], peers[peer].losses[-1])
            except Exception as e:  # a peer that cannot run is reported, not fatal
                errors[peer] = f"{type(e).__name__}: {e}"[:300]
    sg = statistics.median(sgemm) if sgemm else None
    row = {"T": t, "B": b, "vocab": vocab, "sgemm": sg, "machine": machine,
           "tokens_per_s": {}, "mfu": {}, "errors": errors, "losses": losses, "spread": {},
           "unsupported": unsupported}
    for peer, ts in times.items():
        if not ts:
            continue
        med = statistics.median(ts)
        row["tokens_per_s"][peer] = b * t / med
        row["mfu"][peer] = ratio(flops_per_step(n_params, t, b) / med * 1e-9, sg)
        row["spread"][peer] = max(ts) / min(ts)
        progress(f"  {peer}: {b * t / med:.0f} tokens/s")
    return row


def main(argv):
    args = parse_args(argv)
    info = machine_info()
    info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count()
    torch.set_num_threads(threads)
    rows = [run_config(args, t, b, vocab) for t, b in args.tb for vocab in args.vocabs]
    print("# bench/train.py")
    for k, v in info.items():
        print(f"#   {k}: {v}")
    print()
    section = report(args, info, threads, rows)
    print(section, end="")
    if args.out:
        write_markdown(args.out, section, BEGIN, END)
        progress(f"wrote {args.out}")
    return 0 if all(not r["errors"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
