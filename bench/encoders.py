#!/usr/bin/env python3
"""Every encoder position scheme on both encoder tasks, as one table (docs/encoders.md).

  masked LM (--arch encoder) on the King James Bible (characters): train on windows of
      16..64 tokens padded to the longest of the batch, then `slope eval` the masked-token loss
      on the val split at 64, 128 and 256 tokens (extrapolation).
  G2P (--arch seq2seq) on CMUdict: train on words of at most --max-src-len characters, then
      `slope eval` word accuracy and phoneme error rate on the test split, per word length,
      longer words included.

Each run is a plain `slope train` / `slope eval` command; the commands are printed and written
into the report, so every number can be reproduced one by one. Training tokens/s is what
`slope train` reports (training steps only, evals excluded); runs are sequential, so compare
tokens/s between variants with the care a shared 2-core machine deserves (bench/encoders.py
--throughput measures the ALiBi/no-bias ratio in interleaved rounds instead).

  python bench/encoders.py --data-mlm data/bible --data-g2p data/g2p --out runs/encoders \
      --md docs/encoders.md
  python bench/encoders.py --task throughput --rounds 4 --out runs/throughput \
      --md docs/BENCHMARKS.md
"""

import argparse
import csv
import os
import pathlib
import re
import shlex
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_common import machine_info, md_table, progress, write_markdown  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
POSITIONS = ["learned", "sinusoidal", "none", "alibi-symmetric", "alibi-nonsymmetric",
             "alibi-learned"]
SUMMARY = re.compile(r"trained to step (\d+): train loss ([\d.]+), val loss ([\d.]+) "
                     r"\(best ([\d.]+) at step (-?\d+)\), (\d+) tokens/s, ([\d.]+) s")


def run(cmd, log):
    progress("$ " + " ".join(shlex.quote(c) for c in cmd))
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n" + r.stdout + r.stderr + "\n")
    log.flush()
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def train(slope, args, extra, out, log):
    cmd = [slope, "train", *extra, "--out", str(out), "--threads", str(args.threads)]
    t0 = time.time()
    m = SUMMARY.search(run(cmd, log))
    if not m:
        raise SystemExit(f"no summary line from {' '.join(cmd)}")
    return {"cmd": cmd, "best_val": float(m.group(4)), "tokens_per_s": float(m.group(6)),
            "train_s": time.time() - t0}


def mlm_commands(args, pos):
    return ["--arch", "encoder", "--pos", pos, "--data", args.data_mlm, "--n-layer", "4",
            "--n-head", "4", "--n-embd", "128", "--block-size", "64", "--min-len", "16",
            "--batch-size", "32", "--max-iters", str(args.mlm_steps), "--warmup-iters", "100",
            "--lr", "1e-3", "--eval-interval", str(args.mlm_steps // 4), "--eval-iters", "10"]


def g2p_commands(args, pos, steps):
    return ["--arch", "seq2seq", "--pos", pos, "--data", args.data_g2p, "--n-layer", "3",
            "--n-head", "4", "--n-embd", "128", "--batch-size", "64", "--max-iters", str(steps),
            "--warmup-iters", "200", "--lr", "2e-3", "--dropout", "0",
            "--max-src-len", str(args.max_src_len), "--eval-interval", str(max(steps // 6, 1)),
            "--eval-iters", "10"]


def mlm_variant(slope, args, pos, log):
    out = pathlib.Path(args.out) / f"mlm-{pos}"
    r = train(slope, args, mlm_commands(args, pos), out, log)
    csv_path = out / "eval.csv"
    ev = [slope, "eval", "--checkpoint", str(out / "best"), "--data", args.data_mlm,
          "--lengths", "64,128,256", "--eval-batches", "20", "--batch-size", "16",
          "--csv", str(csv_path), "--threads", str(args.threads)]
    run(ev, log)
    r["eval_cmd"] = ev
    with open(csv_path) as f:
        r["loss"] = {int(row["length"]): float(row["mlm_loss"]) for row in csv.DictReader(f)}
    return r


def g2p_variant(slope, args, pos, steps, tag, log):
    out = pathlib.Path(args.out) / f"g2p-{tag}{pos}"
    r = train(slope, args, g2p_commands(args, pos, steps), out, log)
    csv_path = out / "eval.csv"
    ev = [slope, "eval", "--checkpoint", str(out / "best"), "--data", args.data_g2p,
          "--split", "test", "--beam", str(args.beam), "--batch-size", "256",
          "--csv", str(csv_path), "--threads", str(args.threads)]
    run(ev, log)
    r["eval_cmd"] = ev
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    r["all"] = next(x for x in rows if x["min_chars"] == "0")
    r["buckets"] = [x for x in rows if x["min_chars"] != "0"]
    return r


THROUGHPUT_POSITIONS = ["none", "alibi-symmetric", "alibi-nonsymmetric", "alibi-learned"]


def throughput(args, log):
    """Encoder training tokens/s of each position scheme against no bias, in interleaved rounds:
    every round trains each variant for the same steps on the same batches (fixed-length
    windows, so every variant sees the same tokens); the ratio of each round is taken against
    that round's no-bias run, and the median over rounds is reported."""
    rows = []
    for T in [int(x) for x in args.lengths.split(",")]:
        B = max(1, 2048 // T)
        steps = args.throughput_steps
        tps = {pos: [] for pos in THROUGHPUT_POSITIONS}
        for k in range(args.rounds):
            for pos in THROUGHPUT_POSITIONS:
                out = pathlib.Path(args.out) / f"tp-{T}-{pos}-{k}"
                if out.exists():
                    import shutil
                    shutil.rmtree(out)
                extra = ["--arch", "encoder", "--pos", pos, "--data", args.data_mlm,
                         "--n-layer", "4", "--n-head", "4", "--n-embd", "128", "--block-size",
                         str(T), "--min-len", str(T), "--batch-size", str(B), "--max-iters",
                         str(steps), "--warmup-iters", "10", "--eval-interval", str(steps),
                         "--eval-iters", "1"]
                tps[pos].append(train(args.slope, args, extra, out, log)["tokens_per_s"])
        base = tps["none"]
        for pos in THROUGHPUT_POSITIONS:
            ratios = [a / b for a, b in zip(tps[pos], base)]
            rows.append([T, B, pos, f"{statistics.median(tps[pos]):.0f}",
                         f"{statistics.median(ratios):.3f}",
                         f"{min(ratios):.3f}..{max(ratios):.3f}"])
    return ("### Encoder training throughput by position scheme\n\n"
            f"L4 H4 C128 MLM encoder, {args.rounds} interleaved rounds of {args.throughput_steps} "
            "steps per variant "
            "and length, batch B = 2048/T windows of exactly T tokens; tokens/s as `slope train` "
            "reports it (evals excluded); ratio = the variant's tokens/s over no bias's in the "
            "same round (median, and the range over rounds).\n\n" +
            md_table(["T", "B", "--pos", "tokens/s (median)", "ratio vs none", "range"], rows) +
            "\n")


def fmt_cmd(cmd):
    return " ".join(shlex.quote(str(c)) for c in ["slope", *cmd[1:]])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--slope", default=str(ROOT / "build" / "slope"))
    p.add_argument("--data-mlm", default="data/bible")
    p.add_argument("--data-g2p", default="data/g2p")
    p.add_argument("--out", default="runs/encoders")
    p.add_argument("--task", choices=["mlm", "g2p", "all", "throughput"], default="all")
    p.add_argument("--rounds", type=int, default=5, help="throughput: interleaved rounds")
    p.add_argument("--lengths", default="64,256", help="throughput: sequence lengths")
    p.add_argument("--throughput-steps", type=int, default=150, help="throughput: steps per run")
    p.add_argument("--positions", default=",".join(POSITIONS))
    p.add_argument("--mlm-steps", type=int, default=800)
    p.add_argument("--g2p-steps", type=int, default=2500)
    p.add_argument("--max-src-len", type=int, default=12)
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--md", help="write the tables into this markdown file")
    args = p.parse_args()
    positions = args.positions.split(",")
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    log = open(pathlib.Path(args.out) / "commands.log", "a")
    sections = []

    if args.task == "throughput":
        sections.append(throughput(args, log))
    if args.task in ("mlm", "all"):
        res = {pos: mlm_variant(args.slope, args, pos, log) for pos in positions}
        rows = []
        for pos, r in res.items():
            loss = r["loss"]
            rows.append([pos, f"{loss.get(64, float('nan')):.4f}",
                         f"{loss.get(128, float('nan')):.4f}" if 128 in loss else "n/a",
                         f"{loss.get(256, float('nan')):.4f}" if 256 in loss else "n/a",
                         f"{r['tokens_per_s']:.0f}"])
        sections.append(
            "### Masked LM (KJV Bible, characters)\n\n"
            f"Trained {args.mlm_steps} steps on windows of 16..64 tokens; masked-token loss "
            "(nats) on the val split at each length (`n/a`: learned positions have no rows "
            "beyond 64).\n\n" +
            md_table(["--pos", "loss @64", "@128", "@256", "train tokens/s"], rows) +
            "\n\nCommands (one variant; the others change `--pos`):\n\n```\n" +
            fmt_cmd(res[positions[0]]["cmd"]) + "\n" + fmt_cmd(res[positions[0]]["eval_cmd"]) +
            "\n```\n")

    if args.task in ("g2p", "all"):
        res = {pos: g2p_variant(args.slope, args, pos, args.g2p_steps, "", log)
               for pos in positions}
        widths = sorted({(int(b["min_chars"]), int(b["max_chars"]))
                         for r in res.values() for b in r["buckets"]})
        header = ["--pos", "word acc", "PER", "train tokens/s"] + [
            f"acc {lo}-{hi}" for lo, hi in widths]
        rows = []
        for pos, r in res.items():
            by = {(int(b["min_chars"]), int(b["max_chars"])): b for b in r["buckets"]}
            rows.append([pos, f"{100 * float(r['all']['word_accuracy']):.2f}%",
                         f"{100 * float(r['all']['per']):.2f}%", f"{r['tokens_per_s']:.0f}"] + [
                f"{100 * float(by[w]['word_accuracy']):.1f}%" if w in by else "" for w in widths])
        words = {w: next(int(b["words"]) for r in res.values() for b in r["buckets"]
                         if (int(b["min_chars"]), int(b["max_chars"])) == w) for w in widths}
        sections.append(
            "### G2P (CMUdict, stress stripped)\n\n"
            f"Trained {args.g2p_steps} steps on words of at most {args.max_src_len} characters; "
            f"test split ({int(next(iter(res.values()))['all']['words'])} words), "
            f"{'greedy' if args.beam == 1 else f'beam {args.beam}'} decoding. Buckets beyond "
            f"{args.max_src_len} characters hold only lengths never seen in training. Words per "
            "bucket: " + ", ".join(f"{lo}-{hi}: {n}" for (lo, hi), n in words.items()) + ".\n\n" +
            md_table(header, rows) +
            "\n\nCommands (one variant; the others change `--pos`):\n\n```\n" +
            fmt_cmd(res[positions[0]]["cmd"]) + "\n" + fmt_cmd(res[positions[0]]["eval_cmd"]) +
            "\n```\n")

    info = machine_info(threads=args.threads)
    text = ("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".\n\n" +
            "\n".join(sections))
    print(text)
    if args.md:
        write_markdown(args.md, text, "<!-- encoders:begin -->", "<!-- encoders:end -->")


if __name__ == "__main__":
    main()
