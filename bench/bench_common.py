"""What the benchmark scripts share: progress lines, markdown tables and ratios, the note on
this environment's OpenBLAS variables, and writing a script's own section into
docs/BENCHMARKS.md (between its markers, keeping the rest of the file)."""

import datetime
import os
import platform
import sys
from pathlib import Path

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # unset for the C++ side


def progress(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(a, b):
    return a / b if a is not None and b is not None and b > 0 else None


def openblas_env_note():
    seen = [f"{k}={os.environ[k]}" for k in OPENBLAS_VARS if k in os.environ]
    return (f"this environment sets {', '.join(seen)}" if seen else "neither is set here") + \
        "; OPENBLAS_CORETYPE=Haswell halves OpenBLAS on an AVX-512 CPU"


def write_markdown(path, section, begin, end):
    """Puts section into path between the markers begin and end, replacing what was there before
    and keeping the rest of the file (a new file gets a title)."""
    block = f"{begin}\n{section}{end}\n"
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def bench_train_records(slope, args, who):
    """Runs `slope bench train --json ARGS` (OPENBLAS_CORETYPE/L2_SIZE unset, OpenMP waits
    passive unless set) and returns its JSON records by kind ("machine", "sgemm", "train",
    "profile"); exits naming `who` and the command if it fails."""
    import json
    import subprocess
    cmd = [str(slope), "bench", "train", "--json"] + [str(a) for a in args]
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    env.setdefault("OMP_WAIT_POLICY", "passive")
    progress(" ".join(cmd[1:]))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{who}: {' '.join(cmd)} failed: {p.stderr.strip()[-300:]}")
    return {rec["kind"]: rec for rec in map(json.loads, p.stdout.splitlines())}


def machine_info(**extra):
    """The machine and the date, plus what the caller adds (versions, threads, ISA)."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": model,
        "cores": os.cpu_count(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "python": platform.python_version(),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }
    info.update(extra)
    return info
