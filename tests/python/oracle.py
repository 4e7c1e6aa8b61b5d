"""What the PyTorch-oracle tests of slope's models share (test_gpt_reference.py,
test_encdec_reference.py): finding the C++ dump program, loading what it wrote, and comparing
slope's float64 and float32 results with the reference's.

Tolerances (STYLE.md): slope float64 must agree with the float64 reference to 1e-12; slope float32
within F32_RATIO times the error the reference's own float32 run makes against float64 on the
same input, floored at F32_FLOOR relative; logits also within 1e-4 of the largest logit.
"""

import os
import pathlib

import numpy as np
import pytest

from gpt_reference import load_safetensors

ROOT = pathlib.Path(__file__).resolve().parents[2]

F64_TOLERANCE = 1e-12
LOGITS_F32_TOLERANCE = 1e-4
F32_RATIO = 4.0  # slope float32 error / torch float32 error, both against torch float64
F32_FLOOR = 1e-6


def dump_binary(name, env_var):
    """build/NAME, or $ENV_VAR. Not built: a skip outside CI, a failure under CI (which builds
    it in scripts/setup.sh)."""
    for c in (os.environ.get(env_var, ""), ROOT / "build" / name):
        if c and pathlib.Path(c).is_file():
            return pathlib.Path(c)
    why = (f"{name} is not built: run `cmake -S . -B build -G Ninja && ninja -C build {name}` "
           f"(or set {env_var} to the binary)")
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def load_dump(directory):
    """The files a dump program writes: (model state, batch, float32 outputs, float64 outputs)."""
    d = pathlib.Path(directory)
    return tuple(load_safetensors(d / f) for f in ("model.safetensors", "batch.safetensors",
                                                   "out_f32.safetensors", "out_f64.safetensors"))


def rel_error(a, b):
    """max |a - b| / max |b| (absolute when b is all zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.max(np.abs(b)) if b.size else 0.0
    err = np.max(np.abs(a - b)) if b.size else 0.0
    return err / scale if scale > 0 else err


def check_outputs(out32, out64, V, ref64, ref32, require_live_grads=False):
    """slope's dumped float32 and float64 outputs ({logits, loss, grad.NAME}) against the
    reference's (logits, loss, {name: grad}) in float64 and float32. V: the real vocabulary (the
    padded logits beyond it must be zero). require_live_grads: every reference gradient must be
    nonzero somewhere (no dead path)."""
    logits64, loss64, grads64 = ref64
    logits32, loss32, grads32 = ref32
    # Every parameter is checked, and only parameters are dumped.
    assert {k[len("grad."):] for k in out64 if k.startswith("grad.")} == set(grads64)

    for out, is64 in ((out64, True), (out32, False)):
        name = "float64" if is64 else "float32"
        logits = out["logits"]
        assert np.all(logits[..., V:] == 0), f"{name}: padded logits are not zero"

        def bound_for(torch32_err):
            return F64_TOLERANCE if is64 else max(F32_RATIO * torch32_err, F32_FLOOR)

        err = rel_error(logits[..., :V], logits64)
        b = bound_for(rel_error(logits32, logits64))
        assert err <= b, f"{name} logits: {err:.3g} > {b:.3g}"
        assert err <= LOGITS_F32_TOLERANCE, f"{name} logits: {err:.3g} > 1e-4"

        err = abs(float(out["loss"]) - loss64) / abs(loss64)
        b = bound_for(abs(loss32 - loss64) / abs(loss64))
        assert err <= b, f"{name} loss {float(out['loss'])} vs {loss64}: {err:.3g} > {b:.3g}"
        for pname, g64 in grads64.items():
            if require_live_grads:
                assert np.any(g64 != 0), f"d{pname} is zero in the reference: a dead path"
            err = rel_error(out["grad." + pname], g64)
            b = bound_for(rel_error(grads32[pname], g64))
            assert err <= b, f"{name} d{pname}: {err:.3g} > {b:.3g}"
