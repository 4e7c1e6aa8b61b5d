#!/usr/bin/env python3
"""bench/positions.py: training tokens/s of each position bias over ALiBi's, in one interleaved run.

    python3 bench/positions.py [--rounds R] [--steps N] [--T 1024] [--B 2] [--threads N]
                               [--pos alibi,fire,kerple-log,kerple-power,t5] [--out FILE]

Runs `build/slope bench train --json --profile --pos P` (GPT L6 H6 C384, float32, random tokens;
env SLOPE_BINARY for another build) for every scheme P in turn, R rounds, the first scheme of each
round rotating, and reports per round each scheme's tokens/s over ALiBi's of the same round, the
median over rounds, the attention's share of the step, and how many (query tile, key tile)
pairs the attention forward computed and far-tile skipping left out. The tile counts are exact
counts (they can differ between machines only where rounding moves a tile at the skip
threshold); the timings are ratios within one run. Progress goes
to stderr, the report to stdout; --out writes it into a markdown file between this script's
markers, keeping the rest (issue 19's targets: FIRE >= 0.8, Kerple and T5 >= 0.95 of ALiBi).
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import bench_train_records, machine_info, md_table, progress, write_markdown  # noqa

SLOPE = Path(os.environ.get("SLOPE_BINARY") or ROOT / "build" / "slope")
BEGIN, END = "<!-- bench/positions.py:begin -->", "<!-- bench/positions.py:end -->"


def run(pos, t, b, steps, threads):
    return bench_train_records(SLOPE, ["--profile", "--vocab", 65, "--pos", pos, "--T", t, "--B", b,
                                       "--steps", steps, "--threads", threads], "positions.py")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per run (default 3)")
    ap.add_argument("--T", type=int, default=1024, help="sequence length (default 1024)")
    ap.add_argument("--B", type=int, default=2, help="batch (default 2)")
    ap.add_argument("--threads", type=int, default=0, help="threads (0: all cores)")
    ap.add_argument("--pos", default="alibi,fire,kerple-log,kerple-power,t5",
                    help="comma-separated schemes; the first is the reference")
    ap.add_argument("--out", help="markdown file to write into (e.g. docs/BENCHMARKS.md)")
    args = ap.parse_args(argv)
    schemes = list(dict.fromkeys(args.pos.split(",")))  # each once, in the order given
    ref = schemes[0]
    rounds = []
    for r in range(args.rounds):
        order = schemes[r % len(schemes):] + schemes[:r % len(schemes)]
        rounds.append({p: run(p, args.T, args.B, args.steps, args.threads) for p in order})
    machine = rounds[0][ref].get("machine", {})
    info = machine_info()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out = [f"## Position biases against ALiBi in training ({info['date']})", ""]
    out.append(f"- Machine: {info['cpu']}, {info['cores']} cores, ISA `{machine.get('isa', '?')}`, "
               f"threads {machine.get('threads', '?')}, linear layers' GEMM "
               f"`{machine.get('gemm', '?')}` ({machine.get('gemm_library', '?')}); load average "
               f"after the run {load}")
    out.append(f"- `{' '.join(['python3', 'bench/positions.py'] + argv)}`: GPT L6 H6 C384, "
               f"T={args.T} B={args.B}, vocab 65, float32, each scheme at its initialisation; "
               f"{args.rounds} rounds of one run per scheme ({args.steps} timed steps after a "
               "warm-up, median step), the first scheme rotating")
    out.append("")
    header = ["scheme"] + [f"round {i + 1}" for i in range(args.rounds)] + [
        f"median tokens/s over {ref}", "attention share", "tile pairs computed / step",
        "skipped / step"]
    rows = []
    for p in schemes:
        ratios = [rd[p]["train"]["tokens_per_s"] / rd[ref]["train"]["tokens_per_s"]
                  for rd in rounds]
        shares = [next(k["share"] for k in rd[p]["profile"]["kinds"] if k["kind"] == "attention")
                  for rd in rounds]
        prof = rounds[0][p]["profile"]
        rows.append([p] + [f"{x:.2f}" for x in ratios] +
                    [f"**{statistics.median(ratios):.2f}**",
                     f"{100 * statistics.median(shares):.1f}%",
                     f"{prof['attention_tiles_computed_per_step']:.0f}",
                     f"{prof['attention_tiles_skipped_per_step']:.0f}"])
    out.append(md_table(header, rows))
    out.append("")
    out.append(f"{ref} tokens/s per round: " + ", ".join(
        f"{rd[ref]['train']['tokens_per_s']:.0f}" for rd in rounds))
    section = "\n".join(out) + "\n"
    print(section, end="")
    if args.out:
        write_markdown(args.out, section, BEGIN, END)
        progress(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
