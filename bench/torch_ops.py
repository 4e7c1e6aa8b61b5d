"""slope.torch's attention operators by dtype: forward + backward in bfloat16 and float16 against
float32, causal ALiBi, interleaved repeats, medians and per-round ratios.

The kernels compute in float32; a bf16/fp16 call converts q, k, v (and dout) to float32 and
the results back (slope/torch.py's docstring). This measures what that costs: issue 12's target
is bf16 fwd+bwd ≤ 1.3× fp32 at B=1, T=1024, H=12, D=64.

  .venv/bin/python bench/torch_ops.py                       # print the table
  .venv/bin/python bench/torch_ops.py --out docs/BENCHMARKS.md

Each round times every dtype once (the order rotates between rounds), so load from elsewhere on
a shared machine lands on all of them alike; the ratio is taken inside each round, then the
median over rounds.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# Before torch loads OpenMP: passive waits, the setting this repository measures with (see
# scripts/main_job.sh). With active (spinning) waits on a shared 2-core machine every torch
# parallel region, the bf16/fp16 conversions included, waits for a time slice: measured
# 2026-11-30, one 3 MiB copy took ~18 ms instead of ~0.6 ms, and bf16 came out at 2.0x fp32.
# An explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine_info, md_table, progress, write_markdown  # noqa: E402

import slope  # noqa: E402
import slope.torch as st  # noqa: E402

BEGIN, END = "<!-- bench/torch_ops.py:begin -->", "<!-- bench/torch_ops.py:end -->"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def make_case(B, T, H, D, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v, dout = (torch.randn(B, H, T, D, generator=g).to(dtype) for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(True)
    slopes = torch.from_numpy(slope.alibi_slopes(H).copy())
    return q, k, v, dout, slopes


def fwd_bwd(case):
    q, k, v, dout, slopes = case
    out = st.attention(q, k, v, causal=True, alibi_slopes=slopes)
    out.backward(dout)
    q.grad = k.grad = v.grad = None


def time_calls(case, reps):
    t = time.perf_counter()
    for _ in range(reps):
        fwd_bwd(case)
    return (time.perf_counter() - t) / reps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--T", type=int, default=1024)
    ap.add_argument("--H", type=int, default=12)
    ap.add_argument("--D", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds")
    ap.add_argument("--reps", type=int, default=5, help="fwd+bwd calls per dtype per round")
    ap.add_argument("--dtypes", default="float32,bfloat16,float16",
                    help="comma-separated; the first is the baseline of the ratios")
    ap.add_argument("--out", default=None, help="write the section into this markdown file")
    args = ap.parse_args(argv)

    names = args.dtypes.split(",")
    cases = {n: make_case(args.B, args.T, args.H, args.D, DTYPES[n]) for n in names}
    for n in names:  # warm-up: first-call allocation, OpenMP pool
        fwd_bwd(cases[n])
    times = {n: [] for n in names}
    ratios = {n: [] for n in names[1:]}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        this = {n: time_calls(cases[n], args.reps) for n in order}
        for n in names:
            times[n].append(this[n])
        for n in names[1:]:
            ratios[n].append(this[n] / this[names[0]])
        progress(f"round {r + 1}/{args.rounds}: " +
                 ", ".join(f"{n} {this[n] * 1e3:.1f} ms" for n in names))

    info = machine_info(torch=torch.__version__, threads=torch.get_num_threads(),
                        isa=slope.cpu_isa())
    rows = [[n, f"{statistics.median(times[n]) * 1e3:.1f}", f"{min(times[n]) * 1e3:.1f}",
             "1.00" if n == names[0] else f"{statistics.median(ratios[n]):.2f}",
             "" if n == names[0] else
             f"{min(ratios[n]):.2f} – {max(ratios[n]):.2f}"] for n in names]
    header = ["dtype", "median ms", "min ms", f"median ratio to {names[0]} (per round)",
              "ratio range"]
    section = (
        f"## slope.torch attention by dtype ({info['date']})\n\n"
        f"- Machine: {info['cpu']}, {info['cores']} cores, shared with other builds while this "
        f"ran; torch threads {info['threads']}, OMP_NUM_THREADS {info['OMP_NUM_THREADS']}, "
        f"OMP_WAIT_POLICY {os.environ['OMP_WAIT_POLICY']}; "
        f"slope ISA `{info['isa']}`\n"
        f"- Versions: torch {info['torch']}, python {info['python']}\n"
        f"- Config: `slope.torch.attention(q, k, v, causal=True, alibi_slopes=m)` forward + "
        f"backward (dout given; gradients of q, k, v), B={args.B}, T={args.T}, H={args.H}, "
        f"D={args.D}, fixed slopes; {args.rounds} interleaved rounds (order rotating) of "
        f"{args.reps} calls per dtype; ratios per round, then the median\n"
        f"- Command: `.venv/bin/python bench/torch_ops.py --out docs/BENCHMARKS.md`\n\n"
        + md_table(header, rows) + "\n")
    if "bfloat16" in ratios:
        bf = statistics.median(ratios["bfloat16"])
        section += (f"\nTarget (issue 12): bf16 fwd+bwd ≤ 1.3× fp32 — measured "
                    f"{bf:.2f}×: {'MET' if bf <= 1.3 else 'NOT MET'}.\n")
    print(section)
    if args.out:
        write_markdown(args.out, section, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
