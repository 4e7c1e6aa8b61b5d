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
    if str(r.get(case)).startswith("skip: "):
        pytest.skip(r[case][len("skip: "):])
    assert r.get(case) == "ok", r.get(case, "case did not run")


@pytest.mark.skipif(not os.environ.get("SLOPE_SLOW_TESTS"),
                    reason="~30 s of interpreted kernels on 2 cores: SLOPE_SLOW_TESTS=1")
def test_gpu_benchmark_dry_run():
    """bench/attention_gpu.py --dry-run: every method's code path at tiny shapes on the CPU
    (slope through the operators routed to the interpreted Triton kernels), so that the GPU
    benchmark is not first run on the GPU it was written for."""
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    script = HERE.parents[1] / "bench" / "attention_gpu.py"
    proc = subprocess.run([sys.executable, str(script), "--dry-run"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| 16 | 32 | fwd+bwd |" in proc.stdout


def test_gpu_benchmark_refuses_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    script = HERE.parents[1] / "bench" / "attention_gpu.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "needs a CUDA GPU" in proc.stderr


@pytest.mark.skipif(not os.environ.get("SLOPE_SLOW_TESTS"),
                    reason="~45 s of Triton compilation on 2 cores: SLOPE_SLOW_TESTS=1")
def test_kernels_compile_for_sm90_without_a_gpu():
    """What the interpreter cannot see: the three bf16 kernels, every switch on, compile to a
    cubin for sm_90 (triton_compile_check.py)."""
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run([sys.executable, str(HERE / "triton_compile_check.py"), "--dtypes",
                           "bf16"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
