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
"""

import argparse
import json
import logging
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

import slope
import slope.torch as slope_torch

ROOT = Path(__file__).resolve().parent.parent
CPP_BENCH = ROOT / "build" / "bench" / "attention"
from bench_common import (OPENBLAS_VARS, machine_info as _machine_info, md_table,  # noqa: E402
                          openblas_env_note, progress, ratio, write_markdown)
BEGIN, END = "<!-- bench/attention.py:begin -->", "<!-- bench/attention.py:end -->"

B, H, D = 4, 12, 64
DEFAULT_T = [256, 1024, 2048, 4096, 8192]
QUICK_T = [256, 1024]
MEMORY_LIMIT_BYTES = 8 * 2**30   # a peer whose estimate exceeds this is skipped at that T
MEMORY_T = [1024, 4096]          # peers' peak memory, at B=1
ACCURACY_T = 1024                # or the largest T <= 1024 in the list
GiB, MiB = 2.0**30, 2.0**20

# The C++ bench's variant names; the Python-side slope methods are "slope:<variant>".
SLOPE_VARIANTS = {
    "none": dict(causal=False),
    "causal": dict(causal=True),
    "alibi_causal_noskip": dict(causal=True, alibi="fixed", skip_tolerance=0.0),
    "alibi_causal_skip": dict(causal=True, alibi="fixed"),
    "alibi_learned_causal_noskip": dict(causal=True, alibi="learned", skip_tolerance=0.0),
    "alibi_symmetric_skip": dict(causal=False, alibi="fixed"),
}
SKIP_OFF_VARIANTS = ("none", "causal", "alibi_causal_noskip", "alibi_learned_causal_noskip")


def one_line(exc):
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


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
# Inputs


class Case:
    """The inputs at one T: q, k, v, dout (b, H, T, D) float32 and the ALiBi slopes (H,)."""

    def __init__(self, b, t, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.T = t
        self.q, self.k, self.v, self.dout = (torch.randn(b, H, t, D, generator=g) for _ in range(4))
        for x in (self.q, self.k, self.v):
            x.requires_grad_(True)
        self.slopes = torch.from_numpy(slope.alibi_slopes(H))    # fixed: no gradient
        self.learned = torch.nn.Parameter(self.slopes.clone())   # learned: gets gradients
        self._mask = None

    def alibi_mask(self):
        """(1, H, T, T) float32, built on first use and shared by the mask-based peers."""
        if self._mask is None:
            self._mask = alibi_mask(self.slopes, self.T, torch.float32)
        return self._mask

    def grad_inputs(self, learned=False):
        return [self.q, self.k, self.v] + ([self.learned] if learned else [])


def alibi_mask(slopes, t, dtype):
    """(1, H, t, t): -m_h·(i - j) for j <= i, -inf above the diagonal."""
    i = torch.arange(t).view(t, 1)
    j = torch.arange(t).view(1, t)
    mask = (j - i).to(dtype) * slopes.to(dtype).view(-1, 1, 1)
    mask.masked_fill_((j > i).unsqueeze(0), float("-inf"))
    return mask.unsqueeze(0)


def scores_bytes(b, t):
    """A peer that materialises the T×T scores: B·H·T² float32, about 4 copies alive."""
    return b * H * t * t * 4 * 4


def mask_bytes(t):
    return H * t * t * 4


def sdpa_mask_bytes(backend):
    """SDPA with a float mask: on its math path the T×T scores as well as the mask; on a flash
    path (what torch 2.15 takes on CPU) the mask only, plus as much again while building it."""
    if "Flash" in backend:
        return lambda b, t: 2 * mask_bytes(t)
    return lambda b, t: scores_bytes(b, t) + mask_bytes(t)


# ---------------------------------------------------------------------------------------------
# Methods: make(case) returns (fwd, fwdbwd), two callables; fwdbwd is None if it has no backward.


def no_grad(call):
    def fwd():
        with torch.no_grad():
            call()

    return fwd


def backward_of(call, inputs, dout):
    def fwdbwd():
        torch.autograd.grad(call(), inputs, dout)

    return fwdbwd


def make_slope(variant):
    cfg = dict(SLOPE_VARIANTS[variant])
    alibi = cfg.pop("alibi", None)

    def make(case):
        slopes = {None: None, "fixed": case.slopes, "learned": case.learned}[alibi]

        def call():
            return slope_torch.attention(case.q, case.k, case.v, alibi_slopes=slopes, **cfg)

        inputs = case.grad_inputs(learned=alibi == "learned")
        return no_grad(call), backward_of(call, inputs, case.dout)

    return make


def make_sdpa_causal(case):
    def call():
        return F.scaled_dot_product_attention(case.q, case.k, case.v, is_causal=True)

    return no_grad(call), backward_of(call, case.grad_inputs(), case.dout)


def make_sdpa_mask(case):
    mask = case.alibi_mask()

    def call():
        return F.scaled_dot_product_attention(case.q, case.k, case.v, attn_mask=mask)

    return no_grad(call), backward_of(call, case.grad_inputs(), case.dout)


def naive_attention(q, k, v, mask):
    scale = q.shape[-1] ** -0.5
    return torch.softmax(q @ k.transpose(-2, -1) * scale + mask, dim=-1) @ v


def make_naive(case):
    mask = case.alibi_mask()

    def call():
        return naive_attention(case.q, case.k, case.v, mask)

    return no_grad(call), backward_of(call, case.grad_inputs(), case.dout)


def flex_alibi_call(q, k, v, slopes, compiled=True):
    """FlexAttention with an ALiBi score_mod and a causal block mask, as a callable.

    Compiled with fullgraph=True, so that a graph break raises instead of running flex eagerly
    (eager flex materialises the T×T scores), after a reset of dynamo's caches, so that nothing
    an earlier call left behind (a failed backward, another grad mode) changes what runs here.
    The compile happens on the first call.
    """
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    def alibi(score, b, h, q_idx, kv_idx):
        return score - slopes[h] * (q_idx - kv_idx)

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    t = q.shape[-2]
    block_mask = create_block_mask(causal, None, None, t, t, device="cpu")
    fn = flex_attention
    if compiled:
        torch._dynamo.reset()
        fn = torch.compile(flex_attention, dynamic=False, fullgraph=True)
    return lambda: fn(q, k, v, score_mod=alibi, block_mask=block_mask)


class FlexPeer:
    """make(case) for FlexAttention: fwd+bwd only where probe_flex saw its backward run."""

    def __init__(self):
        self.backward = False
        self.compile_s = {}        # T -> seconds of the forward's compile (not timed)

    def __call__(self, case):
        q, k, v = (x.detach() for x in (case.q, case.k, case.v))
        fwd = no_grad(flex_alibi_call(q, k, v, case.slopes))
        t0 = time.perf_counter()
        fwd()
        self.compile_s[case.T] = time.perf_counter() - t0
        if not self.backward:
            return fwd, None
        # The backward graph compiles in the timing helper's warm-up call.
        call = flex_alibi_call(case.q, case.k, case.v, case.slopes)
        return fwd, backward_of(call, case.grad_inputs(), case.dout)


@dataclass
class Method:
    name: str
    label: str
    make: Callable
    bytes_needed: Callable[[int, int], int] = lambda b, t: 0   # memory estimate at (B, T)
    available: bool = True


def slope_label(variant):
    cfg = SLOPE_VARIANTS[variant]
    parts = ["causal" if cfg["causal"] else "non-causal"]
    if "alibi" in cfg:
        parts.append({"fixed": "fixed ALiBi slopes",
                      "learned": "learned ALiBi slopes (nn.Parameter)"}[cfg["alibi"]])
        parts.append("skip off" if cfg.get("skip_tolerance") == 0 else "skip on (default)")
    else:
        parts.append("no bias")
    return "slope.torch.attention, " + ", ".join(parts)


def methods(sdpa_backend="unknown"):
    ms = [Method(f"slope:{v}", slope_label(v), make_slope(v)) for v in SLOPE_VARIANTS]
    ms += [
        Method("sdpa_causal", "F.scaled_dot_product_attention(is_causal=True), no bias",
               make_sdpa_causal),
        Method("sdpa_alibi_mask", "F.scaled_dot_product_attention(attn_mask=float ALiBi mask "
               "(1, H, T, T), -inf above the diagonal)", make_sdpa_mask,
               bytes_needed=sdpa_mask_bytes(sdpa_backend)),
        Method("flex_alibi", "torch.compile(flex_attention), ALiBi score_mod + causal block mask",
               FlexPeer()),
        Method("naive_alibi", "eager softmax(q·kᵀ·scale + mask)·v, the same mask", make_naive,
               bytes_needed=lambda b, t: scores_bytes(b, t) + mask_bytes(t)),
    ]
    return ms


# ---------------------------------------------------------------------------------------------
# Probes: FlexAttention on CPU, SDPA's kernel for a float mask


def probe_flex():
    """(forward runs, backward runs, note): compile and run at T=128, compare with SDPA + mask,
    then try a backward."""
    case = Case(1, 128, seed=3)
    ref = F.scaled_dot_product_attention(case.q, case.k, case.v, attn_mask=case.alibi_mask())
    try:
        t0 = time.perf_counter()
        with torch.no_grad():
            out = flex_alibi_call(*(x.detach() for x in (case.q, case.k, case.v)), case.slopes)()
        compile_s = time.perf_counter() - t0
        torch._dynamo.reset()
        err = (out - ref).abs().max().item()
    except Exception as e:  # a compile or run failure is recorded, never fatal
        return False, False, f"unavailable on CPU: {one_line(e)}"
    if not err < 1e-4:
        return False, False, f"unavailable: differs from SDPA + mask by {err:.2e} at T=128"
    note = (f"forward runs on CPU (first compile {compile_s:.0f} s, max |diff| vs SDPA + mask "
            f"{err:.1e} at T=128)")
    try:  # eager: flex checks the device first, and dynamo's state stays clean
        flex_alibi_call(case.q, case.k, case.v, case.slopes, compiled=False)().sum().backward()
        return True, True, note + "; its backward runs too (eager check at T=128)"
    except Exception as e:
        return True, False, note + f"; no fwd+bwd: {one_line(e)}"


def sdpa_mask_backend():
    """The kernel SDPA takes on CPU for a float mask with grad (the autograd node's name)."""
    try:
        case = Case(1, 64)
        out = F.scaled_dot_product_attention(case.q, case.k, case.v, attn_mask=case.alibi_mask())
        return type(out.grad_fn).__name__
    except Exception as e:
        return f"unknown ({one_line(e)})"


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


MEMORY_METHODS = ["slope:alibi_causal_skip", "sdpa_causal", "sdpa_alibi_mask", "naive_alibi"]


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

ACC_SLOPE, ACC_TORCH = "slope ALiBi causal, skip on (default)", "torch float32 SDPA + float32 mask"


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
# Ratios and targets


def fwd_gflops(t, ms, causal):
    """Forward FLOPs 4·B·H·T²·D (halved when causal) per second, in GFLOP/s."""
    if ms is None:
        return None
    return 4.0 * B * H * t * t * D * (0.5 if causal else 1.0) / (ms * 1e-3) * 1e-9


def ratio_rows(res, sgemm_gflops):
    """Per T, the ratios the targets are about, from this run's Python-side timings."""
    def s(v, t, what="fwdbwd_ms"):
        return res.get(f"slope:{v}", t, what)

    rows = []
    for t in res.ts:
        eff = [ratio(fwd_gflops(t, s(v, t, "fwd_ms"), SLOPE_VARIANTS[v]["causal"]), sgemm_gflops)
               for v in SKIP_OFF_VARIANTS]
        eff = [e for e in eff if e is not None]
        rows.append({
            "T": t,
            "i": ratio(s("alibi_causal_noskip", t), s("causal", t)),
            "ii": ratio(s("causal", t), s("alibi_causal_skip", t)),
            "iii_mask": ratio(res.get("sdpa_alibi_mask", t), s("alibi_causal_skip", t)),
            "iii_mask_noskip": ratio(res.get("sdpa_alibi_mask", t), s("alibi_causal_noskip", t)),
            "iii_causal": ratio(res.get("sdpa_causal", t), s("alibi_causal_skip", t)),
            "iv": min(eff) if eff else None,
        })
    return rows


def target_checklist(rows, cpp, acc):
    """[(target, measured, MET / NOT MET / not measured)]."""
    by_t = {r["T"]: r for r in rows}
    big = [t for t in by_t if t >= 1024]

    def cpp_ratio(a, b):
        return lambda t: ratio(cpp.fwdbwd(a, t), cpp.fwdbwd(b, t))

    def check(text, key, ts, ok, cpp_value=None):
        vals = [(t, by_t[t][key]) for t in ts if t in by_t and by_t[t][key] is not None]
        if not vals:
            return text, "not measured (T not in this run, or the peer did not run)", "not measured"
        shown = ", ".join(f"T={t}: {v:.3f}" for t, v in vals)
        if cpp_value:
            extra = [f"T={t}: {cpp_value(t):.3f}" for t, _ in vals if cpp_value(t) is not None]
            shown += f" (C++ side: {', '.join(extra)})" if extra else ""
        return text, shown, "MET" if all(ok(v) for _, v in vals) else "NOT MET"

    out = [
        check("(i) ALiBi causal (skip off) fwd+bwd / causal fwd+bwd ≤ 1.05, T ≥ 1024", "i", big,
              lambda v: v <= 1.05, cpp_ratio("alibi_causal_noskip", "causal")),
        check("(ii) causal / ALiBi causal (skip on) fwd+bwd ≥ 1.3 at T=2048", "ii", [2048],
              lambda v: v >= 1.3, cpp_ratio("causal", "alibi_causal_skip")),
        check("(ii) causal / ALiBi causal (skip on) fwd+bwd ≥ 2 at T=8192", "ii", [8192],
              lambda v: v >= 2.0, cpp_ratio("causal", "alibi_causal_skip")),
        check("(iii) SDPA + ALiBi mask / slope ALiBi causal fwd+bwd ≥ 3 at T=2048", "iii_mask",
              [2048], lambda v: v >= 3.0),
        check("(iii) SDPA is_causal / slope ALiBi causal fwd+bwd > 1, T ≥ 1024", "iii_causal",
              big, lambda v: v > 1.0),
        check("(iv) slope forward GFLOP/s / sgemm ≥ 0.5, T ≥ 1024 (worst skip-off variant)",
              "iv", big, lambda v: v >= 0.5),
    ]
    s_err, t_err = acc[ACC_SLOPE], acc[ACC_TORCH]
    out.append(("(v) slope max error ≤ 2 × torch float32 SDPA + mask error (both vs float64)",
                f"{s_err:.2e} vs {t_err:.2e} (ratio {s_err / t_err:.2f})",
                "MET" if s_err <= 2 * t_err else "NOT MET"))
    return out


# ---------------------------------------------------------------------------------------------
# Reporting


def fmt_ms(x):
    return "—" if x is None else (f"{x:.1f}" if x >= 10 else f"{x:.2f}")


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}"


def machine_info():
    return _machine_info(**{"torch threads": torch.get_num_threads(), "slope isa": slope.cpu_isa(),
                            "torch": torch.__version__, "numpy": np.__version__})


def time_table(res, ms, what):
    def cell(c):
        x = getattr(c, what)
        return fmt_ms(x) if x is not None else (c.note.split(":")[0] if c.note else "n/a")

    return md_table(["method"] + [f"T={t}" for t in res.ts],
                    [[f"`{m.name}`"] + [cell(res.cells[m.name, t]) for t in res.ts] for m in ms])


def header_section(args, info, ms, res, cpp):
    sg = cpp.sgemm
    sgemm = (f"OpenBLAS sgemm {sg['gflops']:.1f} GFLOP/s (1024³, {sg.get('threads')} threads)"
             if sg else f"OpenBLAS sgemm not measured ({cpp.error or 'no sgemm line'})")
    cmdline = ".venv/bin/python bench/attention.py" + "".join(
        " " + shlex.quote(a) for a in args.argv)
    kind = "quick run" if args.quick else "full run"
    p = [f"## Attention: slope vs PyTorch peers ({info['date']}, {kind})", ""]
    p.append(f"- Machine: {info['cpu']}, {info['cores']} cores; torch threads "
             f"{info['torch threads']} (OMP_NUM_THREADS {info['OMP_NUM_THREADS']}); slope ISA "
             f"`{info['slope isa']}`; {sgemm}")
    p.append(f"- Versions: torch {info['torch']}, numpy {info['numpy']}, python {info['python']}")
    p.append(f"- Config: B={B}, H={H}, D={D}, float32, T = {', '.join(map(str, res.ts))}; "
             f"median of ≥ {args.min_reps} runs and ≥ {args.min_seconds} s after a warm-up; fwd = "
             "no_grad forward; fwd+bwd = forward with autograd + gradients of q, k, v (and of "
             "the learned slopes)")
    p.append(f"- Command: `{cmdline}`; in the same run, the C++ side: "
             f"`{' '.join(['build/bench/attention'] + cpp.cmd[1:])}` with "
             f"{' and '.join(OPENBLAS_VARS)} unset ({openblas_env_note()})")
    p += ["", "Methods:", ""]
    p += [f"- `{m.name}`: {m.label}" for m in ms]
    return p


def ratios_section(rows):
    p = ["### Ratios (same run, Python-side timings)", ""]
    p.append("(i) ALiBi causal skip off / causal; (ii) causal / ALiBi causal skip on; (iii) SDPA "
             "+ mask / slope ALiBi causal skip on [skip off], and SDPA is_causal / slope ALiBi "
             "causal skip on, all fwd+bwd; (iv) slope forward GFLOP/s / sgemm, the worst of the "
             f"skip-off variants ({', '.join(SKIP_OFF_VARIANTS)}).")
    p.append("")
    p.append(md_table(["T", "(i) ≤ 1.05", "(ii) ≥ 1.3 @2048, ≥ 2 @8192", "(iii) mask ≥ 3 @2048",
                       "(iii) is_causal > 1", "(iv) fwd / sgemm ≥ 0.5"],
                      [[r["T"], fmt_ratio(r["i"]), fmt_ratio(r["ii"]),
                        f"{fmt_ratio(r['iii_mask'])} [{fmt_ratio(r['iii_mask_noskip'])}]",
                        fmt_ratio(r["iii_causal"]), fmt_ratio(r["iv"])] for r in rows]))
    return p


def cpp_section(cpp, res):
    p = ["### slope from C++ (build/bench/attention: no Python, no autograd wrapper)", ""]
    if not cpp.rows:
        return p + [f"Not measured: {cpp.error or 'no output'}."]
    sg = cpp.sgemm["gflops"] if cpp.sgemm else None
    p.append(md_table(
        ["variant", "T", "fwd ms", "fwd+bwd ms", "fwd GFLOP/s", "fwd / sgemm",
         "Python fwd+bwd / C++"],
        [[f"`{r['variant']}`", r["T"], fmt_ms(r["fwd_ms"]), fmt_ms(r["fwdbwd_ms"]),
          f"{r['fwd_gflops']:.1f}", fmt_ratio(ratio(r["fwd_gflops"], sg)),
          fmt_ratio(ratio(res.get(f"slope:{r['variant']}", r["T"]), r["fwdbwd_ms"]))]
         for r in cpp.rows]))
    return p


def memory_section(cpp, peer_memory):
    p = [f"### Peak extra memory (MiB; B=1, H={H}, D={D}; fwd+bwd beyond inputs and outputs)", ""]
    if not cpp.memory and not peer_memory:
        return p + ["Not measured (only on a full run)."]
    if cpp.memory:
        p += ["slope from C++ (build/bench/attention --memory, forked children):", ""]
        for v in dict.fromkeys(r["variant"] for r in cpp.memory):
            p.append(f"- `{v}`: " + ", ".join(f"T={r['T']}: {r['extra_mib']:.1f}"
                                              for r in cpp.memory if r["variant"] == v))
        p.append("")
    if peer_memory:
        p.append("From Python, a fresh child process per cell (growth of the peak RSS over one "
                 "fwd+bwd, less out and the q, k, v gradients; the mask-based peers build their "
                 "mask inside the measured region):")
        p.append("")
        fmt = lambda x: f"{x:.1f}" if isinstance(x, float) else x  # noqa: E731
        p.append(md_table(["method"] + [f"T={t}" for t in MEMORY_T],
                          [[f"`{n}`"] + [fmt(peer_memory[n, t]) for t in MEMORY_T]
                           for n in MEMORY_METHODS]))
    return p


def report(args, info, ms, res, cpp, peer_memory, acc, acc_t, notes, plot_rel):
    rows = ratio_rows(res, cpp.sgemm["gflops"] if cpp.sgemm else None)
    p = header_section(args, info, ms, res, cpp)
    p += ["", "### Forward + backward (ms)", "", time_table(res, ms, "fwdbwd_ms")]
    p += ["", "### Forward (ms)", "", time_table(res, ms, "fwd_ms")]
    if plot_rel:
        p += ["", f"![fwd+bwd time against T, log-log]({plot_rel})"]
    p += [""] + ratios_section(rows)
    p += [""] + cpp_section(cpp, res)
    p += [""] + memory_section(cpp, peer_memory)
    p += ["", f"### Accuracy (B=1, H={H}, T={acc_t}, causal ALiBi; max |error| against SDPA in "
              "float64 with a float64 mask)", ""]
    p.append(md_table(["output", "max abs error"], [[n, f"{e:.2e}"] for n, e in acc.items()]))
    p += ["", "### Targets", ""]
    p.append(md_table(["target", "measured", "status"], target_checklist(rows, cpp, acc)))
    p += ["", "### Notes", ""]
    p += [f"- {n}" for n in notes]
    return "\n".join(p) + "\n"


def plot(path, res, ms, info):
    """fwd+bwd time against T, log-log, one line per method (slope solid, peers dashed)."""
    drawn = [m for m in ms if any(res.get(m.name, t) is not None for t in res.ts)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "times.dat"
        with open(data, "w") as f:
            for t in res.ts:
                vals = [res.get(m.name, t) for m in drawn]
                f.write(f"{t} " + " ".join("NaN" if v is None else f"{v:.4f}" for v in vals) + "\n")

        colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                  "#1f78b4", "#e31a1c", "#666666"]

        def style(i, m):
            dash = "lw 2" if m.name.startswith("slope:") else "lw 1.5 dt 2"
            return f"{dash} pt {i % 8 + 1} lc rgb '{colors[i % len(colors)]}'"

        lines = ", ".join(f"'{data}' using 1:{i + 2} with linespoints {style(i, m)} "
                          f"title '{m.name}'" for i, m in enumerate(drawn))
        title = (f"fwd+bwd, B={B} H={H} D={D}, {info['torch threads']} threads, {info['cpu']} "
                 f"({info['date']})")
        script = f"""
set terminal pngcairo size 1000,700 font ',10'
set output '{Path(path).resolve()}'
set title "{title}" noenhanced
set logscale xy
set xlabel 'T'
set ylabel 'ms'
set key top left noenhanced
set grid
set datafile missing 'NaN'
set xrange [{min(res.ts) / 1.3}:{max(res.ts) * 1.3}]
set xtics ({', '.join(str(t) for t in res.ts)})
plot {lines}
"""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)


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
