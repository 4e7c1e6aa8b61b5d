#!/usr/bin/env python3
"""bench/attention.py: slope's fused ALiBi attention against its PyTorch peers, in one run.

    .venv/bin/python bench/attention.py [--quick] [--T 256,1024,...] [--out docs/BENCHMARKS.md]
                                        [--plot docs/attention_time.png]

Times forward and forward+backward (median of adaptive repeats after a warm-up, every method
timed in interleaved rounds so load from elsewhere hits all alike) at B=4, H=12,
D=64, float32, for every T, of:

  slope:<variant>  slope.torch.attention on CPU tensors with requires_grad (what a PyTorch user
                   gets, autograd wrapper included): no bias, causal, ALiBi causal with far-tile
                   skipping off and on, learned ALiBi slopes (an nn.Parameter), symmetric ALiBi.
  sdpa_causal      F.scaled_dot_product_attention(is_causal=True), no bias.
  sdpa_alibi_mask  the same with a materialised float ALiBi mask (1, H, T, T), built outside the
                   timing, as users do.
  flex_alibi       FlexAttention with an ALiBi score_mod and a causal block mask, compiled with
                   torch.compile (compile time excluded), where this torch runs it on CPU.
  naive_alibi      softmax(q·kᵀ·scale + mask)·v in eager PyTorch.

The same run starts build/bench/attention (OpenBLAS sgemm GFLOP/s, slope without Python and, on a
full run, slope's peak extra memory), measures the peers' peak memory in fresh child processes,
checks accuracy against float64, and reports the ratios the issue's targets are about, each
marked MET / NOT MET. --out writes the report into a markdown file, replacing the section this
script wrote there before and keeping the rest; --plot draws fwd+bwd time against T (gnuplot).

"fwd" is an inference forward (torch.no_grad); "fwd+bwd" is the forward with autograd plus
torch.autograd.grad for q, k, v (and the learned slopes) with a fixed random upstream gradient.
Progress goes to stderr, the report to stdout.

This file runs the measurements; bench/attention_methods.py defines the problem and every timed
method, bench/attention_report.py turns the results into ratios, the report and the plot.
"""

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

import slope.torch as slope_torch

ROOT = Path(__file__).resolve().parent.parent
CPP_BENCH = ROOT / "build" / "bench" / "attention"
from attention_methods import (ACC_SLOPE, ACC_TORCH, MEMORY_METHODS, MEMORY_T,  # noqa: E402
                               B, D, GiB, H, MiB, Case, alibi_mask, methods, naive_attention,
                               one_line, probe_flex, sdpa_mask_backend)
from attention_report import fmt_ms, machine_info, plot, report  # noqa: E402
from bench_common import OPENBLAS_VARS, openblas_env_note, progress, write_markdown  # noqa: E402
BEGIN, END = "<!-- bench/attention.py:begin -->", "<!-- bench/attention.py:end -->"

DEFAULT_T = [256, 1024, 2048, 4096, 8192]
QUICK_T = [256, 1024]
MEMORY_LIMIT_BYTES = 8 * 2**30   # a peer whose estimate exceeds this is skipped at that T
ACCURACY_T = 1024                # or the largest T <= 1024 in the list


# ---------------------------------------------------------------------------------------------
# Timing


def median_ms(fn, min_reps, min_seconds):
    """Median wall time of fn() in ms: a warm-up call, then >= min_reps calls, >= min_seconds."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


# ---------------------------------------------------------------------------------------------
# The C++ side


@dataclass
class CppResults:
    cmd: list
    sgemm: Optional[dict] = None                  # {"gflops", "isa", "threads"}
    rows: list = field(default_factory=list)      # {"variant", "T", "fwd_ms", "fwdbwd_ms", ...}
    memory: list = field(default_factory=list)    # {"variant", "T", "extra_mib"}
    error: str = ""

    def fwdbwd(self, variant, t):
        return next((r["fwdbwd_ms"] for r in self.rows
                     if r["variant"] == variant and r["T"] == t), None)


def run_cpp(ts, quick):
    """build/bench/attention --json over the same T, with OpenBLAS's overrides unset."""
    cmd = [str(CPP_BENCH), "--json", "--T", ",".join(map(str, ts))]
    cmd += ["--reps", "3"] if quick else ["--memory"]
    res = CppResults(cmd)
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    progress(f"C++ side: {' '.join(cmd)} (with {', '.join(OPENBLAS_VARS)} unset)")
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as p:
            for line in p.stdout:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                kind = rec.get("kind")
                if kind == "sgemm":
                    res.sgemm = rec
                    progress(f"  sgemm {rec['gflops']:.1f} GFLOP/s")
                elif kind == "slope":
                    res.rows.append(rec)
                    progress(f"  C++ {rec['variant']} T={rec['T']}: fwd {rec['fwd_ms']:.1f} ms, "
                             f"fwd+bwd {rec['fwdbwd_ms']:.1f} ms")
                elif kind == "memory":
                    res.memory.append(rec)
                    progress(f"  C++ memory {rec['variant']} T={rec['T']}: "
                             f"{rec['extra_mib']:.1f} MiB")
        if p.returncode != 0:
            res.error = f"{CPP_BENCH.name} exited with {p.returncode}"
    except OSError as e:
        res.error = one_line(e)
    if res.error:
        progress(f"  C++ side failed: {res.error}")
    return res


# ---------------------------------------------------------------------------------------------
# Peak memory, one fresh child process per method and T




def peak_rss_kib(reset=False):
    """The peak resident set in KiB. reset first lowers it to the current RSS (Linux clear_refs
    "5"), so that the peak of importing torch hides nothing; where that is refused, ru_maxrss."""
    try:
        if reset:
            Path("/proc/self/clear_refs").write_text("5")
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(name, t):
    """In a child: peak RSS growth over one fwd+bwd at B=1, less the outputs (out, dq, dk, dv);
    the mask-based peers build their mask inside the measured region."""
    method = next(m for m in methods() if m.name == name)
    _, fwdbwd = method.make(Case(1, 64))
    fwdbwd()                                     # start thread pools and libraries first
    case = Case(1, t)
    before = peak_rss_kib(reset=True)
    _, fwdbwd = method.make(case)
    fwdbwd()
    grown_mib = (peak_rss_kib() - before) / 1024
    outputs_mib = 4 * case.q.numel() * 4 / MiB
    print(json.dumps({"method": name, "T": t, "extra_mib": grown_mib - outputs_mib}))


def measure_memory():
    """{(method, T): MiB or "failed: ..."} at B=1, H=12."""
    out = {}
    for name in MEMORY_METHODS:
        for t in MEMORY_T:
            progress(f"memory {name} T={t} (B=1, child process)")
            r = subprocess.run([sys.executable, __file__, "--memory-child", name, str(t)],
                               capture_output=True, text=True)
            if r.returncode == 0:
                out[name, t] = json.loads(r.stdout.strip().splitlines()[-1])["extra_mib"]
            else:
                out[name, t] = f"failed: {(r.stderr.strip().splitlines() or ['?'])[-1][:200]}"
    return out


# ---------------------------------------------------------------------------------------------
# Accuracy against float64


def accuracy(t):
    """Max |error| vs SDPA in float64 with a float64 mask; B=1, H=12, causal ALiBi."""
    case = Case(1, t, seed=1)
    q, k, v = (x.detach() for x in (case.q, case.k, case.v))
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(),
                                         attn_mask=alibi_mask(case.slopes, t, torch.float64))
    m = case.slopes
    with torch.no_grad():
        outs = {
            ACC_SLOPE: slope_torch.attention(q, k, v, causal=True, alibi_slopes=m),
            "slope ALiBi causal, skip off":
                slope_torch.attention(q, k, v, causal=True, alibi_slopes=m, skip_tolerance=0.0),
            ACC_TORCH: F.scaled_dot_product_attention(q, k, v, attn_mask=case.alibi_mask()),
            "torch float32 naive + float32 mask": naive_attention(q, k, v, case.alibi_mask()),
        }
    return {name: (out.double() - ref).abs().max().item() for name, out in outs.items()}


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Cell:
    fwd_ms: Optional[float] = None
    fwdbwd_ms: Optional[float] = None
    note: str = ""          # "skipped: ...", "failed: ...", "unavailable"


@dataclass
class Results:
    ts: list
    cells: dict = field(default_factory=dict)       # (method name, T) -> Cell

    def get(self, name, t, what="fwdbwd_ms"):
        c = self.cells.get((name, t))
        return getattr(c, what) if c else None


def interleaved_median_ms(calls, min_reps, min_seconds):
    """Median wall time in ms of each callable in `calls` (name -> fn), timed in rounds: one
    call of each per round, until each has >= min_reps calls and >= min_seconds in all. A burst
    of load from elsewhere on a shared machine then lands on every method alike, so the ratios
    between them stay honest. Each gets a warm-up call first."""
    times = {name: [] for name in calls}
    for fn in calls.values():
        fn()
    pending = dict(calls)
    while pending:
        for name, fn in list(pending.items()):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            if len(times[name]) >= min_reps and sum(times[name]) >= min_seconds:
                del pending[name]
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def measure(ms, ts, min_reps, min_seconds):
    res = Results(ts)
    for t in ts:
        case = Case(B, t)
        calls = {}  # (method name, "fwd_ms" | "fwdbwd_ms") -> fn
        for m in ms:
            cell = res.cells[m.name, t] = Cell()
            need = m.bytes_needed(B, t)
            if not m.available:
                cell.note = "unavailable"
                continue
            if need > MEMORY_LIMIT_BYTES:
                cell.note = f"skipped: would need {need / GiB:.1f} GiB"
                progress(f"{m.name} T={t}: {cell.note}")
                continue
            try:
                fwd, fwdbwd = m.make(case)
                fwd()  # fail here, not in the middle of the rounds
                calls[m.name, "fwd_ms"] = fwd
                if fwdbwd is not None:
                    fwdbwd()
                    calls[m.name, "fwdbwd_ms"] = fwdbwd
            except Exception as e:
                cell.note = f"failed: {one_line(e)}"
                progress(f"{m.name} T={t}: {cell.note}")
        progress(f"T={t}: timing {len(calls)} calls in interleaved rounds ...")
        for (name, what), ms_ in interleaved_median_ms(calls, min_reps, min_seconds).items():
            setattr(res.cells[name, t], what, ms_)
        for m in ms:
            cell = res.cells[m.name, t]
            if cell.fwd_ms is not None:
                progress(f"{m.name} T={t}: fwd {fmt_ms(cell.fwd_ms)} ms, "
                         f"fwd+bwd {fmt_ms(cell.fwdbwd_ms)} ms {cell.note}")
        del case, calls
    return res


# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="T=256,1024, fewer repeats, no memory measurements")
    ap.add_argument("--T", help="comma-separated sequence lengths "
                                "(default 256,1024,2048,4096,8192)")
    ap.add_argument("--out", help="markdown file to write the results into "
                                  "(e.g. docs/BENCHMARKS.md); default: print only")
    ap.add_argument("--plot", help="PNG for the fwd+bwd plot "
                                   "(default with --out: attention_time.png beside it)")
    ap.add_argument("--memory-child", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.argv = argv
    try:
        args.ts = [int(t) for t in args.T.split(",")] if args.T else \
            (QUICK_T if args.quick else DEFAULT_T)
    except ValueError:
        ap.error(f"--T {args.T}: expected comma-separated integers")
    if not args.ts or min(args.ts) < 1:
        ap.error("--T: sequence lengths must be positive")
    args.min_reps, args.min_seconds = (3, 0.1) if args.quick else (3, 0.5)
    if args.plot is None and args.out:
        args.plot = str(Path(args.out).parent / "attention_time.png")
    return args


def main(argv):
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime"
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return

    info = machine_info()
    print("# bench/attention.py")
    for k, v in info.items():
        print(f"#   {k}: {v}")
    print(f"#   config: B={B} H={H} D={D} float32, T={','.join(map(str, args.ts))}, reps >= "
          f"{args.min_reps} and >= {args.min_seconds} s{' (quick)' if args.quick else ''}")
    print(f"#   C++ side runs with {' and '.join(OPENBLAS_VARS)} unset ({openblas_env_note()})",
          flush=True)

    backend = sdpa_mask_backend()
    ms = methods(backend)
    notes = [f"`sdpa_alibi_mask`: with a float mask and grad, SDPA on CPU runs `{backend}` (its "
             "autograd node): a flash kernel that reads the mask tile by tile and skips no tile "
             "as causal"]
    progress("FlexAttention on CPU: compiling at T=128 ...")
    flex_fwd, flex_bwd, flex_note = probe_flex()
    flex = next(m for m in ms if m.name == "flex_alibi")
    flex.available, flex.make.backward = flex_fwd, flex_bwd
    notes.append(f"`flex_alibi` (torch {torch.__version__}): {flex_note}")
    progress(f"  {flex_note}")

    cpp = run_cpp(args.ts, args.quick)
    if cpp.error:
        notes.append(f"C++ side: {cpp.error}")
    res = measure(ms, args.ts, args.min_reps, args.min_seconds)
    if flex.make.compile_s:
        notes.append("`flex_alibi` compile time, not timed (inductor's on-disk cache may hold "
                     "kernels from an earlier run): " + ", ".join(
                         f"T={t}: {s:.1f} s" for t, s in flex.make.compile_s.items()))
    notes += [f"`{name}` T={t}: {c.note}" for (name, t), c in res.cells.items()
              if c.note and c.note != "unavailable"]
    notes.append(f"Peers are skipped at a T where their memory estimate exceeds "
                 f"{MEMORY_LIMIT_BYTES / GiB:.0f} GiB: naive, B·H·T²·4 bytes × 4 plus the "
                 "(1, H, T, T) mask; SDPA + mask, twice the mask on a flash kernel (as naive on "
                 "the math path). slope runs at every T.")

    acc_t = max([t for t in args.ts if t <= ACCURACY_T], default=min(args.ts))
    progress(f"accuracy at T={acc_t} (B=1) ...")
    acc = accuracy(acc_t)
    peer_memory = {} if args.quick else measure_memory()

    plot_rel = None
    if args.plot:
        try:
            plot(args.plot, res, ms, info)
            base = Path(args.out).resolve().parent if args.out else Path.cwd()
            plot_rel = os.path.relpath(Path(args.plot).resolve(), base)
            progress(f"wrote {args.plot}")
        except (OSError, subprocess.CalledProcessError) as e:
            why = (getattr(e, "stderr", "") or "").strip().splitlines()
            notes.append(f"plot failed: {why[-1] if why else one_line(e)}")
    section = report(args, info, ms, res, cpp, peer_memory, acc, acc_t, notes, plot_rel)
    print()
    print(section, end="")
    if args.out:
        write_markdown(args.out, section, BEGIN, END)
        progress(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
