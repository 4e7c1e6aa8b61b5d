"""What bench/attention.py reports: the ratios its targets are about, the markdown sections
and the plot."""

import shlex
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

import slope

from attention_methods import (ACC_SLOPE, ACC_TORCH, MEMORY_METHODS, MEMORY_T, SKIP_OFF_VARIANTS,
                               SLOPE_VARIANTS, B, D, H)
from bench_common import (OPENBLAS_VARS, machine_info as _machine_info, md_table,
                          openblas_env_note, ratio)

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
