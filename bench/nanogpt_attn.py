"""examples/nanogpt_alibi.py's training step under torch.compile(fullgraph=True), one model per
--attn (sdpa-mask, sdpa-causal, slope): tokens/s, interleaved rounds, ratios per round.

Issue 12's targets at T=1024: slope ≥ 1.5× sdpa-mask and ≥ 1.0× sdpa-causal tokens/s.

  .venv/bin/python bench/nanogpt_attn.py                        # L4 H6 C384, B=2, T=1024, V=65
  .venv/bin/python bench/nanogpt_attn.py --out docs/BENCHMARKS.md

One step = the example's train_step: compiled forward + backward, AdamW (eager, nanoGPT's
groups), zero_grad; random tokens (the speed does not depend on them). All models are built and
compiled first (the first step of each compiles and is not timed), then each round times
--steps steps of every model, the order rotating between rounds, so load from elsewhere on a
shared machine lands on all of them alike; ratios are taken inside each round, then the median.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

# Before torch loads OpenMP: passive waits (see bench/torch_ops.py and scripts/main_job.sh).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_common import machine_info, md_table, progress, write_markdown  # noqa: E402

BEGIN, END = "<!-- bench/nanogpt_attn.py:begin -->", "<!-- bench/nanogpt_attn.py:end -->"


def load_example():
    spec = importlib.util.spec_from_file_location(
        "nanogpt_alibi", HERE.parent / "examples" / "nanogpt_alibi.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["nanogpt_alibi"] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--attn", default="sdpa-mask,sdpa-causal,slope,slope-sdpa",
                    help="comma-separated --attn variants of the example; slope-sdpa is --attn "
                    "slope --slope-door sdpa")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=6)
    ap.add_argument("--n-embd", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--learned-slopes", action="store_true",
                    help="ALiBi slopes as nn.Parameters (log m) in sdpa-mask and slope")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per model per round")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                    help="torch.compile(model, fullgraph=True) (inductor)")
    ap.add_argument("--out", default=None, help="write the section into this markdown file")
    args = ap.parse_args(argv)

    ng = load_example()
    import slope

    kinds = args.attn.split(",")
    B, T = args.batch_size, args.block_size
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(args.vocab, (B, T), generator=gen)
    y = torch.randint(args.vocab, (B, T), generator=gen)
    runs, first = {}, {}
    from torch._dynamo.utils import counters

    for kind in kinds:
        cfg = ng.GPTConfig(block_size=T, vocab_size=args.vocab, n_layer=args.n_layer,
                           n_head=args.n_head, n_embd=args.n_embd,
                           attn="slope" if kind == "slope-sdpa" else kind,
                           learned_slopes=args.learned_slopes,
                           slope_door="sdpa" if kind == "slope-sdpa" else "flash")
        model, run = ng.build(cfg, 1337, args.compile)
        opt = model.configure_optimizer(6e-4)
        counters.clear()
        t = time.perf_counter()
        loss = ng.train_step(run, opt, x, y)  # compiles
        first[kind] = (time.perf_counter() - t, loss, sum(counters["graph_break"].values()))
        ng.train_step(run, opt, x, y)  # one more warm-up step
        runs[kind] = (run, opt)
        progress(f"{kind}: first step (compile) {first[kind][0]:.1f} s, loss {loss:.4f}, "
                 f"graph breaks {first[kind][2]}")

    tps = {k: [] for k in kinds}
    for r in range(args.rounds):
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        for kind in order:
            run, opt = runs[kind]
            t = time.perf_counter()
            for _ in range(args.steps):
                ng.train_step(run, opt, x, y)
            tps[kind].append(B * T * args.steps / (time.perf_counter() - t))
        progress(f"round {r + 1}/{args.rounds}: " +
                 ", ".join(f"{k} {tps[k][-1]:.0f} tok/s" for k in kinds))

    def per_round_ratio(a, b):
        return statistics.median(x / y for x, y in zip(tps[a], tps[b]))

    info = machine_info(torch=torch.__version__, threads=torch.get_num_threads(),
                        isa=slope.cpu_isa())
    rows = [[f"`{k}`", f"{statistics.median(tps[k]):.0f}", f"{max(tps[k]):.0f}",
             f"{per_round_ratio('slope', k):.2f}" if "slope" in kinds else "",
             f"{first[k][0]:.0f}", f"{first[k][1]:.4f}", first[k][2]] for k in kinds]
    header = ["--attn", "median tok/s", "best tok/s", "slope / this (median of rounds)",
              "first step s (compile)", "first loss", "graph breaks"]
    slopes = "learned (nn.Parameter, log m)" if args.learned_slopes else "fixed (buffer)"
    section = (
        f"## nanoGPT example step by attention (bench/nanogpt_attn.py, {info['date']})\n\n"
        f"- Machine: {info['cpu']}, {info['cores']} cores, shared with other engineers' builds "
        f"and tests while this ran; torch threads {info['threads']}, OMP_NUM_THREADS "
        f"{info['OMP_NUM_THREADS']}, OMP_WAIT_POLICY {os.environ['OMP_WAIT_POLICY']}; slope "
        f"ISA `{info['isa']}`\n"
        f"- Versions: torch {info['torch']}, python {info['python']}\n"
        f"- Config: examples/nanogpt_alibi.py GPT, L{args.n_layer} H{args.n_head} "
        f"C{args.n_embd}, V={args.vocab}, B={B}, T={T}, float32, slopes {slopes}; "
        f"{'torch.compile(fullgraph=True), inductor' if args.compile else 'eager'}; one step "
        f"= forward + backward + AdamW + zero_grad on random tokens; {args.rounds} interleaved "
        f"rounds (order rotating) of {args.steps} steps per model after 2 warm-up steps\n"
        f"- `sdpa-mask`: SDPA with the materialised (1, H, T, T) ALiBi float mask; "
        f"`sdpa-causal`: SDPA is_causal=True, learned positions, no bias; `slope`: "
        f"slope.torch.flash_attn_func(causal=True, alibi_slopes=m) on (B, T, H, D); "
        f"`slope-sdpa`: slope.torch.scaled_dot_product_attention(is_causal=True, "
        f"alibi_slopes=m) on (B, H, T, D) (`--slope-door sdpa`)\n"
        f"- Command: `.venv/bin/python bench/nanogpt_attn.py --out docs/BENCHMARKS.md`\n\n"
        + md_table(header, rows) + "\n")
    if "slope" in kinds:
        lines = []
        for peer, target in (("sdpa-mask", 1.5), ("sdpa-causal", 1.0)):
            if peer in kinds:
                got = per_round_ratio("slope", peer)
                lines.append(f"| slope / {peer} tokens/s ≥ {target} | {got:.2f} | "
                             f"{'MET' if got >= target else 'NOT MET'} |")
        if lines:
            section += ("\n### Targets (issue 12)\n\n| target | measured | status |\n"
                        "|---|---|---|\n" + "\n".join(lines) + "\n")
    print(section)
    if args.out:
        write_markdown(args.out, section, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
