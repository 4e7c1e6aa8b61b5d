#!/usr/bin/env python3
"""bench/composer_recipe.py: Composer's ALiBi recipe (MosaicML) reproduced small, end to end,
with slope's command line only.

    .venv/bin/python bench/composer_recipe.py [--slope build/slope] [--steps 300] [--block 128]
                                              [--work /tmp/slope-composer] [--out docs/BENCHMARKS.md]

Corpus: the King James Bible (Debian bible-kjv-text through scripts/fetch_corpora.sh: 4.1 MB,
31,102 verses; the largest real English text the Debian packages give), split 90/10 by its tail
(Revelation and the end of the New Testament are validation), tokenized with a byte-level BPE of
--vocab tokens trained on the training split (`slope prepare --tokenizer byte-bpe`).

Runs, in order, each a `slope` subprocess timed with its wall clock and peak RSS (os.wait4):
  1. learned   --pos learned at block L for --steps steps (batch B of L tokens per step)
  2. alibi     --pos alibi --block-size L --train-block-size L/4: the same tokens per step
               (4B windows of L/4) and the same steps; evaluated at L and beyond
  3. surgery   `slope surgery --pos alibi` on run 1's best checkpoint
  4. finetune  `slope train --init-from` the surgery's output at --train-block-size L/4 for 10%
               of run 1's steps (10% of its tokens), fresh optimizer and schedule
  5. timing   the speed ratio: --timing-reps short runs (--timing-steps steps) per scheme,
               interleaved learned, alibi, alibi, learned, ...; the ratio of median wall times
               (a single pair of long runs on a shared machine measures the load, not the code)
Every model is evaluated with `slope eval` at L, 2L and 4L on the validation split (learned
positions cannot run past L: those cells are empty). Composer's published ratios (GPT-2
52M-125M, OpenWebText, 8xA100): 1.16-1.19x faster, 1.16-1.28x less GPU memory, perplexity
better by 0.24-0.63. Targets here: alibi at L/4 >= 1.15x faster and >= 1.15x less peak memory
than learned at L at equal or better perplexity at L; after surgery and fine-tuning, perplexity
at 4L within 10% of perplexity at L.

The report goes to stdout; --out replaces this script's section of a markdown file and
docs/composer_recipe.png gets the plot (gnuplot). Wall times on a shared machine are noisy: the
load average is printed beside them.
"""

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Composer's ALiBi recipe (bench/composer_recipe.py)"


def log(msg):
    print(f"[recipe] {msg}", file=sys.stderr, flush=True)


def run(cmd, env=None):
    """Runs cmd (untimed work: prepare, eval, surgery); returns (stdout, wall seconds)."""
    log(" ".join(shlex.quote(str(c)) for c in cmd))
    t0 = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"[recipe] failed ({p.returncode}): {err.strip()}")
    return out, wall


def timed(cmd):
    """Runs cmd with os.wait4: (stdout, wall seconds, peak RSS MiB of that process alone)."""
    log(" ".join(shlex.quote(str(c)) for c in cmd))
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"recipe-{os.getpid()}.out"
    with open(out_path, "w") as out, open(str(out_path) + ".err", "w") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    text = out_path.read_text()
    if p.returncode != 0:
        sys.exit(f"[recipe] failed ({p.returncode}): {Path(str(out_path) + '.err').read_text()}")
    return text, wall, usage.ru_maxrss / 1024.0  # Linux: KiB


def evaluate(slope, ckpt, data, lengths, work, name, max_tokens):
    out, _ = run([slope, "eval", "--checkpoint", ckpt, "--data", data, "--lengths",
                  ",".join(map(str, lengths)), "--max-tokens", max_tokens, "--json",
                  "--csv", work / f"{name}.csv"])
    rows = json.loads(out)["rows"]
    return {r["length"]: (None if r["skipped"] else r["perplexity"]) for r in rows}


def plot(png, lengths, series, block):
    data = png.with_suffix(".dat")
    lines = []
    for title, ppl in series:
        lines.append(f"# {title}")
        lines += [f"{n} {ppl[n]}" for n in lengths if ppl.get(n) is not None]
        lines += ["", ""]
    data.write_text("\n".join(lines))
    plots = ", ".join(f"'{data}' index {i} with linespoints lw 2 title '{t}'"
                      for i, (t, _) in enumerate(series))
    script = (f"set terminal pngcairo size 800,500; set output '{png}';"
              f"set logscale x 2; set xlabel 'evaluation length (tokens)';"
              f"set ylabel 'validation perplexity'; set key top left;"
              f"set title 'Composer ALiBi recipe on the KJV Bible (train at L/4 = {block // 4})';"
              f"set arrow from {block},graph 0 to {block},graph 1 nohead dt 2;"
              f"plot {plots}")
    r = subprocess.run(["gnuplot", "-e", script], capture_output=True, text=True)
    data.unlink()
    if r.returncode != 0:
        log(f"no plot: {r.stderr.strip()}")
        return False
    return True


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slope", default=str(ROOT / "build" / "slope"))
    ap.add_argument("--work", default="/tmp/slope-composer")
    ap.add_argument("--corpus", default=str(ROOT / "data" / "raw" / "bible.txt"))
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--block", type=int, default=128, help="L, the evaluation length")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8, help="sequences of L per step")
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-tokens", type=int, default=32768, help="per length")
    ap.add_argument("--timing-reps", type=int, default=3,
                    help="interleaved short runs per scheme for the speed ratio")
    ap.add_argument("--timing-steps", type=int, default=30)
    ap.add_argument("--out", help="markdown file whose recipe section is replaced")
    ap.add_argument("--png", default=str(ROOT / "docs" / "composer_recipe.png"))
    a = ap.parse_args()

    slope, work = Path(a.slope), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    corpus = Path(a.corpus)
    if not corpus.is_file():
        subprocess.run(["bash", str(ROOT / "scripts" / "fetch_corpora.sh"), "--out",
                        str(corpus.parent), "--only", "bible"], check=True)
    L, q = a.block, a.block // 4
    lengths = [L, 2 * L, 4 * L]
    data = work / "data"
    run([slope, "prepare", "--input", corpus, "--out", data, "--tokenizer", "byte-bpe",
         "--vocab-size", a.vocab, "--force"])
    meta = json.loads((data / "meta.json").read_text())

    model = ["--n-layer", a.n_layer, "--n-head", a.n_head, "--n-embd", a.n_embd]
    common = ["--data", data, "--batch-size", a.batch, "--eval-iters", 4, "--threads", a.threads,
              "--seed", 1, "--lr", a.lr]
    steps, warmup = a.steps, max(1, a.steps // 10)
    load_before = os.getloadavg()
    runs = {}
    for name, extra in (("learned", ["--pos", "learned"]),
                        ("alibi", ["--pos", "alibi", "--train-block-size", q])):
        out_dir = work / name
        subprocess.run(["rm", "-rf", str(out_dir)], check=True)
        _, wall, rss = timed([slope, "train", "--out", out_dir, "--block-size", L,
                              "--max-iters", steps, "--eval-interval", steps, "--warmup-iters",
                              warmup, *model, *common, *extra])
        runs[name] = {"wall_s": wall, "rss_mib": rss}
    # The speed ratio from short runs interleaved learned, alibi, alibi, learned, ... so that a
    # change of the machine's load hits both schemes alike; the median wall time of each.
    reps = {"learned": [], "alibi": []}
    order = [("learned", "alibi") if i % 2 == 0 else ("alibi", "learned")
             for i in range(a.timing_reps)]
    for pair in order:
        for name in pair:
            extra = ["--pos", "learned"] if name == "learned" else ["--pos", "alibi",
                                                                    "--train-block-size", q]
            out_dir = work / f"timing-{name}"
            subprocess.run(["rm", "-rf", str(out_dir)], check=True)
            _, wall, _ = timed([slope, "train", "--out", out_dir, "--block-size", L,
                                "--max-iters", a.timing_steps, "--eval-interval", a.timing_steps,
                                "--warmup-iters", 1, *model, "--data", data, "--batch-size", a.batch,
                                "--eval-iters", 1, "--threads", a.threads, "--seed", 1, "--lr",
                                a.lr, *extra])
            reps[name].append(wall)
    load_after = os.getloadavg()
    for name in runs:
        runs[name]["ppl"] = evaluate(slope, work / name / "best", data, lengths, work, name,
                                     a.eval_tokens)

    surgery = work / "surgery"
    run([slope, "surgery", "--pos", "alibi", work / "learned" / "best", surgery, "--force"])
    before = evaluate(slope, surgery, data, lengths, work, "surgery", a.eval_tokens)
    ft_steps = max(1, steps // 10)
    ft_dir = work / "finetune"
    subprocess.run(["rm", "-rf", str(ft_dir)], check=True)
    _, ft_wall, _ = timed([slope, "train", "--out", ft_dir, "--init-from", surgery,
                           "--train-block-size", q, "--max-iters", ft_steps, "--eval-interval",
                           ft_steps, "--warmup-iters", ft_steps // 10, *common])
    after = evaluate(slope, ft_dir / "best", data, lengths, work, "finetune", a.eval_tokens)

    tokens = steps * a.batch * L
    speed_long = runs["learned"]["wall_s"] / runs["alibi"]["wall_s"]
    median = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    speed = median(reps["learned"]) / median(reps["alibi"])
    memory = runs["learned"]["rss_mib"] / runs["alibi"]["rss_mib"]
    ppl_l = runs["learned"]["ppl"][L], runs["alibi"]["ppl"][L]
    ratio_before = before[4 * L] / before[L]
    ratio_after = after[4 * L] / after[L]

    def cell(v):
        return "—" if v is None else f"{v:.2f}"

    def verdict(ok):
        return "met" if ok else "**unmet**"

    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    isa = "AVX-512" if "avx512f" in Path("/proc/cpuinfo").read_text() else "AVX2"
    md = [SECTION, "",
          f"{date}; {cpu_model()} ({isa}), {os.cpu_count()} cores shared with other work, "
          f"load average {load_before[0]:.1f} before the training runs and "
          f"{load_after[0]:.1f} after the timing runs (wall times are noisy at this load); "
          f"--threads {a.threads}.",
          f"Corpus: KJV Bible, byte-level BPE of {meta['tokenizer']['vocab_size']} tokens "
          f"(`slope prepare --tokenizer byte-bpe`): {meta['train']['tokens']} train / "
          f"{meta['val']['tokens']} val tokens. GPT L{a.n_layer} H{a.n_head} C{a.n_embd}, "
          f"L = {L}, {steps} steps of {a.batch}x{L} tokens ({tokens} tokens, "
          f"{tokens / meta['train']['tokens']:.2f} epochs), AdamW lr {a.lr}, warmup {warmup}, "
          f"cosine. Perplexity on up to {a.eval_tokens} val tokens per length "
          "(non-overlapping windows).", "",
          f"| model | trained at | wall s | peak RSS MiB | ppl @ {L} | ppl @ {2 * L} | "
          f"ppl @ {4 * L} |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for name, at in (("learned", L), ("alibi", q)):
        r = runs[name]
        md.append(f"| {name} | {at} | {r['wall_s']:.1f} | {r['rss_mib']:.0f} | "
                  + " | ".join(cell(r["ppl"][n]) for n in lengths) + " |")
    md.append(f"| learned → surgery (alibi), before fine-tuning | {L} | — | — | "
              + " | ".join(cell(before[n]) for n in lengths) + " |")
    md.append(f"| … after fine-tuning {ft_steps} steps (10% of the tokens) | {q} | "
              f"{ft_wall:.1f} | — | " + " | ".join(cell(after[n]) for n in lengths) + " |")
    md += ["",
           f"- Speed: {a.timing_reps} interleaved runs of {a.timing_steps} steps per scheme took "
           f"{', '.join(f'{w:.1f}' for w in reps['learned'])} s (learned) and "
           f"{', '.join(f'{w:.1f}' for w in reps['alibi'])} s (alibi at L/4): median ratio "
           f"{speed:.2f}x. The long runs above, one after the other, gave {speed_long:.2f}x: "
           "at this load a single pair of runs is not a measurement.",
           f"- alibi at L/4 vs learned at L: {speed:.2f}x the speed (interleaved median), "
           f"{memory:.2f}x less "
           f"peak RSS, perplexity at L {ppl_l[1]:.2f} vs {ppl_l[0]:.2f}. Target ≥ 1.15x faster: "
           f"{verdict(speed >= 1.15)}; ≥ 1.15x less memory: {verdict(memory >= 1.15)}; equal or "
           f"better perplexity at L: {verdict(ppl_l[1] <= ppl_l[0])}.",
           f"- surgery: perplexity at 4L / at L = {ratio_before:.3f} before fine-tuning, "
           f"{ratio_after:.3f} after. Target after fine-tuning within 10%: "
           f"{verdict(ratio_after <= 1.10)}.",
           "- Why memory cannot shrink here as in Composer: slope's attention is fused (flash "
           "style, O(T·D) memory), so no (B, H, T, T) score tensor exists to shrink; a step at "
           "L/4 holds 4x the windows, the same B·T activations. Composer's GPU savings come "
           "from the attention matrices its baseline materialises.",
           "", f"![perplexity against length](composer_recipe.png)", "",
           f"Reproduce: `{' '.join(shlex.quote(x) for x in sys.argv)}` (docs/composer-recipe.md "
           "lists each command it runs).", ""]
    report = "\n".join(md)
    print(report)
    png = Path(a.png)
    plot(png, lengths, [("learned (trained at L)", runs["learned"]["ppl"]),
                        (f"alibi (trained at L/4)", runs["alibi"]["ppl"]),
                        ("surgery, before fine-tuning", before),
                        ("surgery + fine-tune at L/4", after)], L)
    (work / "results.json").write_text(json.dumps(
        {"runs": runs, "surgery_before": before, "finetune_after": after, "speed": speed,
         "speed_long_runs": speed_long, "timing_runs": reps,
         "memory": memory, "load": [load_before, load_after]}, indent=2, default=str))
    if a.out:
        path = Path(a.out)
        text = path.read_text() if path.exists() else ""
        pattern = re.compile(re.escape(SECTION) + r".*?(?=\n## |\Z)", re.S)
        text = pattern.sub(report.rstrip("\n") + "\n", text) if SECTION in text else (
            text.rstrip("\n") + "\n\n" + report)
        path.write_text(text)


if __name__ == "__main__":
    main()
