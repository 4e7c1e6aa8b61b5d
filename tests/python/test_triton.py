"""slope's Triton kernels (slope._triton): every case of triton_cases.py, run under Triton's
interpreter on CPU tensors on every machine, and natively on a GPU when torch sees one.

The cases run in one child process per mode (triton_cases.py explains why a child: the
interpreter must be chosen before triton is imported, and only for these kernels); each case is
reported here as its own test.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import oracle

torch = oracle.require("torch")
pytest.importorskip("triton")
import triton_cases  # noqa: E402  (defines the case names; imports nothing heavy)

HERE = pathlib.Path(__file__).resolve().parent
MODES = ["interpret"] + (["cuda"] if torch.cuda.is_available() else [])
_results = {}


def results(mode):
    """{case: "ok" | failure} of one child run of every case in `mode`, run once per session."""
    if mode not in _results:
        env = dict(os.environ)
        env.pop("TRITON_INTERPRET", None)  # the child sets it for the interpreter mode only
        proc = subprocess.run([sys.executable, str(HERE / "triton_cases.py"), mode],
                              capture_output=True, text=True, env=env, cwd=HERE, timeout=900)
        lines = proc.stdout.strip().splitlines()
        try:
            _results[mode] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            _results[mode] = {"__crash__": f"rc {proc.returncode}\n{proc.stdout[-3000:]}\n"
                                           f"{proc.stderr[-6000:]}"}
    return _results[mode]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(triton_cases.CASES))
def test_triton_kernels(case, mode):
    r = results(mode)
    assert "__crash__" not in r, r.get("__crash__")
    assert r.get(case) == "ok", r.get(case, "case did not run")
