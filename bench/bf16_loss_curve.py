#!/usr/bin/env python3
"""bench/bf16_loss_curve.py: the main job's loss curve with `--dtype bf16` against fp32 (issue 18,
item 4), and the seed-to-seed difference of fp32 for the scale of noise.

    python3 bench/bf16_loss_curve.py [--slope build/slope] [--data data/names]
                                     [--work /tmp/slope-bf16] [--max-iters 3000]
                                     [--seeds 1337,1338] [--png docs/bf16_loss_curve.png]

Four runs of scripts/main_job.sh's `slope train` recipe (4 layers, 4 heads, 64 channels, ALiBi,
dropout 0.4, 32 x 64 tokens per step, lr 3e-3 to 1e-4, evals every 300 steps), each on one
thread under `nice -n 10`: fp32 and bf16 with each of two seeds. A run whose WORK/NAME/log.jsonl already reaches --max-iters is reused, not rerun.
Where the CPU has no AVX512_BF16 or AMX, the bf16 run uses oneDNN's emulation
(SLOPE_BF16_EMULATE=1, for testing only): the same rounding and float32 accumulation, but not
native speed, so only the losses are reported. The data: `bash scripts/fetch_corpora.sh --only
names` and `slope prepare --input data/raw/names.txt --out data/names`.

Prints a markdown table (val loss at every eval, both dtypes and seeds, bf16 - fp32 per seed and
fp32's seed - seed) and draws the val loss curves with gnuplot into --png.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ["--pos", "alibi", "--n-layer", "4", "--n-head", "4", "--n-embd", "64", "--block-size",
          "64", "--dropout", "0.4", "--batch-size", "32", "--lr", "3e-3", "--min-lr", "1e-4",
          "--warmup-iters", "50", "--weight-decay", "0.1", "--grad-clip", "1.0",
          "--eval-interval", "300", "--eval-iters", "20", "--threads", "1"]


def log(msg):
    print(f"[bf16] {msg}", file=sys.stderr, flush=True)


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train(args, name, dtype, seed):
    out = Path(args.work) / name
    logfile = out / "log.jsonl"
    if logfile.exists() and read_log(logfile)[-1]["step"] == args.max_iters:
        log(f"{name}: reusing {logfile}")
        return read_log(logfile)
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    if dtype == "bf16":
        env["SLOPE_BF16_EMULATE"] = "1"  # used only where the CPU has no native bf16
    cmd = ["nice", "-n", "10", args.slope, "train", "--data", args.data, "--out", str(out),
           "--max-iters", str(args.max_iters), "--seed", str(seed), "--dtype", dtype] + RECIPE
    log(" ".join(cmd))
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return read_log(logfile)


def plot(png, series, title):
    data = png.with_suffix(".dat")
    lines = []
    for name, rows in series:
        lines.append(f"# {name}")
        lines += [f"{r['step']} {r['val_loss']}" for r in rows if r["step"] > 0]
        lines += ["", ""]
    data.write_text("\n".join(lines))
    plots = ", ".join(f"'{data}' index {i} with linespoints lw 2 title '{n}'"
                      for i, (n, _) in enumerate(series))
    script = (f"set terminal pngcairo size 800,500; set output '{png}';"
              f"set xlabel 'step'; set ylabel 'validation loss (nats/char)'; set key top right;"
              f"set title '{title}'; plot {plots}")
    r = subprocess.run(["gnuplot", "-e", script], capture_output=True, text=True)
    data.unlink()
    if r.returncode != 0:
        log(f"no plot: {r.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slope", default=str(ROOT / "build" / "slope"))
    ap.add_argument("--data", default=str(ROOT / "data" / "names"))
    ap.add_argument("--work", default="/tmp/slope-bf16")
    ap.add_argument("--max-iters", type=int, default=3000)
    ap.add_argument("--seeds", default="1337,1338")
    ap.add_argument("--png", default=str(ROOT / "docs" / "bf16_loss_curve.png"))
    args = ap.parse_args()
    seed, other = (int(s) for s in args.seeds.split(","))

    fp32 = train(args, f"fp32-s{seed}", "fp32", seed)
    bf16 = train(args, f"bf16-s{seed}", "bf16", seed)
    fp32b = train(args, f"fp32-s{other}", "fp32", other)
    bf16b = train(args, f"bf16-s{other}", "bf16", other)

    print(f"| step | fp32 (seed {seed}) | bf16 (seed {seed}) | bf16 − fp32 | fp32 (seed {other}) | "
          f"bf16 (seed {other}) | bf16 − fp32 | fp32: seed {other} − seed {seed} |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst_dtype = worst_seed = 0.0
    for a, b, c, d in zip(fp32, bf16, fp32b, bf16b):
        assert a["step"] == b["step"] == c["step"] == d["step"]
        d1, d2 = b["val_loss"] - a["val_loss"], d["val_loss"] - c["val_loss"]
        d_seed = c["val_loss"] - a["val_loss"]
        if a["step"] > 0:
            worst_dtype = max(worst_dtype, abs(d1), abs(d2))
            worst_seed = max(worst_seed, abs(d_seed))
        print(f"| {a['step']} | {a['val_loss']:.4f} | {b['val_loss']:.4f} | {d1:+.4f} | "
              f"{c['val_loss']:.4f} | {d['val_loss']:.4f} | {d2:+.4f} | {d_seed:+.4f} |")
    print(f"\nlargest |bf16 − fp32| after step 0: {worst_dtype:.4f}; largest |seed − seed| "
          f"(fp32): {worst_seed:.4f}; final train loss: fp32 {fp32[-1]['train_loss']:.4f}, "
          f"bf16 {bf16[-1]['train_loss']:.4f} (seed {seed}); fp32 {fp32b[-1]['train_loss']:.4f}, "
          f"bf16 {bf16b[-1]['train_loss']:.4f} (seed {other})")
    plot(Path(args.png), [(f"fp32 seed {seed}", fp32), (f"bf16 seed {seed}", bf16),
                          (f"fp32 seed {other}", fp32b), (f"bf16 seed {other}", bf16b)],
         "main job: val loss, --dtype bf16 against fp32")


if __name__ == "__main__":
    main()
