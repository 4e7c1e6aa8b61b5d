#!/usr/bin/env python3
"""bench/profile_step.py: where one training step of slope's GPT spends its time.

    python3 bench/profile_step.py [--steps N] [--threads N] [--configs 256x8,1024x2]
                                  [--vocab 65,50304] [--out docs/training-profile.md]

Runs `build/slope bench train --profile --json` (GPT L6 H6 C384, ALiBi, float32, random tokens;
env SLOPE_BINARY for another build) for every config TxB and vocabulary, and tabulates the wall
time per step of each kind of work (every GEMM, attention forward and backward, LayerNorm,
GELU, cross-entropy, AdamW, zeroing; nn/profile.h's scopes around each layer call) as its share
of the step. Shares are ratios within one run: on a shared machine the absolute milliseconds
are noise, the shares much less so. Progress goes to stderr, the report to stdout; --out writes
it into a markdown file between this script's markers, keeping the rest.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import bench_train_records, machine_info, md_table, progress, write_markdown  # noqa

SLOPE = Path(os.environ.get("SLOPE_BINARY") or ROOT / "build" / "slope")
BEGIN, END = "<!-- bench/profile_step.py:begin -->", "<!-- bench/profile_step.py:end -->"


def profile(t, b, vocab, steps, threads):
    return bench_train_records(SLOPE, ["--profile", "--vocab", vocab, "--T", t, "--B", b,
                                       "--steps", steps, "--threads", threads], "profile_step.py")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per config (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="threads (0: all cores)")
    ap.add_argument("--configs", default="256x8,1024x2", help="comma-separated TxB")
    ap.add_argument("--vocab", default="65,50304", help="comma-separated vocabulary sizes")
    ap.add_argument("--out", help="markdown file to write into (e.g. docs/training-profile.md)")
    args = ap.parse_args(argv)
    runs = []
    for c in args.configs.split(","):
        t, b = (int(x) for x in c.split("x"))
        for v in (int(x) for x in args.vocab.split(",")):
            runs.append((f"T={t} B={b} V={v}", profile(t, b, v, args.steps, args.threads)))
    machine = runs[0][1].get("machine", {})
    info = machine_info()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    p = [f"## Step profile ({info['date']})", ""]
    p.append(f"- Machine: {info['cpu']}, {info['cores']} cores, ISA `{machine.get('isa', '?')}`, "
             f"threads {machine.get('threads', '?')}, linear layers' GEMM `{machine.get('gemm', '?')}`, "
             f"{machine.get('openblas', '')}; load average "
             f"after the run {load}")
    p.append(f"- `{' '.join(['python3', 'bench/profile_step.py'] + argv)}`: GPT L6 H6 C384, "
             "ALiBi, float32, dropout 0; one step = forward + backward + AdamW + zero_grad; "
             f"{args.steps} timed steps after a warm-up; share = the work's wall time over the "
             "step's (the sum of the four top-level scopes)")
    p.append("")
    kinds = []
    for _, r in runs:
        for k in r["profile"]["kinds"]:
            if k["kind"] not in kinds:
                kinds.append(k["kind"])
    header = ["kind of work"] + [name for name, _ in runs]
    rows = []
    for k in kinds:
        row = [k]
        for _, r in runs:
            e = next((x for x in r["profile"]["kinds"] if x["kind"] == k), None)
            row.append("—" if e is None else f"{100 * e['share']:.1f}%")
        rows.append(row)
    rows.append(["step (ms, mean)"] + [f"{r['profile']['mean_step_ms']:.0f}" for _, r in runs])
    rows.append(["tokens/s"] + [f"{r['train']['tokens_per_s']:.0f}" for _, r in runs])
    p.append(md_table(header, rows))
    p += ["", "Every labelled call, ms per step (share):", ""]
    labels = []
    for _, r in runs:
        for e in r["profile"]["labels"]:
            if e["label"] not in labels and "(all)" not in e["label"]:
                labels.append(e["label"])
    rows = []
    for lab in labels:
        row = [lab]
        for _, r in runs:
            e = next((x for x in r["profile"]["labels"] if x["label"] == lab), None)
            step = r["profile"]["mean_step_ms"]
            row.append("—" if e is None else
                       f"{e['ms_per_step']:.1f} ({100 * e['ms_per_step'] / step:.1f}%)")
        rows.append(row)
    p.append(md_table(["call"] + [name for name, _ in runs], rows))
    section = "\n".join(p) + "\n"
    print(section, end="")
    if args.out:
        write_markdown(args.out, section, BEGIN, END)
        progress(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
