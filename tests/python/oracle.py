"""What the PyTorch-oracle tests of slope's models share (test_gpt_reference.py,
test_encdec_reference.py): finding the C++ dump program, loading what it wrote, and comparing
slope's float64 and float32 results with the reference's.

Tolerances (STYLE.md), each relative to the largest magnitude of the quantity:
- slope float64 agrees with the float64 reference to F64_TOLERANCE: the same formulas, rounded
  differently in float64; any difference of definition shows far above it.
- slope float32 errs against the float64 reference by at most F32_STORAGE_FACTOR times the error
  of the fp32-storage model, floored at F32_FLOOR: the reference run in float64 with the output
  of every operation, forward and backward, rounded to float32 (Fp32Storage). That run is
  float64 arithmetic on the same input, so it is the same on every machine; it carries the
  input's own conditioning (cancellation, softmax, depth) into the bound. An fp32 implementation
  adds to each rounding of an output the roundings inside the operation, ~λ·√n·u for an n-term
  reduction (probabilistically, Higham & Mary 2019); n ≤ 4C = 384 in these models (C ≤ 96), so
  the factor is 64 ≈ 3.3·√384. This is the suite's loosest argument (a reduction with
  cancellation can exceed √n times its output's rounding): measured on 2026-11-30 (Xeon,
  AVX-512), slope float32's worst ratio to the storage model's error over every case was 17 with
  SLOPE_ISA=generic and 32 with avx2 and avx512. Logits also within LOGITS_F32_TOLERANCE of the
  largest logit.
"""

import os
import pathlib

import numpy as np
import pytest

from gpt_reference import load_safetensors

ROOT = pathlib.Path(__file__).resolve().parents[2]

F64_TOLERANCE = 1e-12
LOGITS_F32_TOLERANCE = 1e-4
F32_STORAGE_FACTOR = 64.0  # slope float32 error / fp32-storage model error (see above)
F32_FLOOR = 1e-6  # relative: ~17 u, where the storage model happens to round exactly


def require(module):
    """Imports an oracle package (torch). Missing or broken: a failure under CI, which installs
    it (scripts/test.sh), and a skip of the calling test file elsewhere."""
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as e:  # ImportError, or a broken install raising anything at import
        why = f"the PyTorch oracle needs {module!r}, which does not import: {e!r}"
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why, allow_module_level=True)


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


class Fp32Storage:
    """Context: every float64 tensor an aten operation returns, forward or backward, is rounded
    to float32 in place (the arithmetic stays float64). Built on first use (it needs torch)."""

    def __new__(cls):
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor) and t.dtype == torch.float64:
                        # In place and unseen by autograd: the value was never anything else.
                        with torch.autograd._unsafe_preserve_version_counter(t):
                            t.copy_(t.float())
                return out

        return Mode()


def check_outputs(out32, out64, V, ref64, ref_storage, require_live_grads=False):
    """slope's dumped float32 and float64 outputs ({logits, loss, grad.NAME}) against the
    reference's (logits, loss, {name: grad}) in float64 and under Fp32Storage. V: the real
    vocabulary (the padded logits beyond it must be zero). require_live_grads: every reference
    gradient must be nonzero somewhere (no dead path)."""
    logits64, loss64, grads64 = ref64
    logits32, loss32, grads32 = ref_storage
    # Every parameter is checked, and only parameters are dumped.
    assert {k[len("grad."):] for k in out64 if k.startswith("grad.")} == set(grads64)

    for out, is64 in ((out64, True), (out32, False)):
        name = "float64" if is64 else "float32"
        logits = out["logits"]
        assert np.all(logits[..., V:] == 0), f"{name}: padded logits are not zero"

        def bound_for(storage_err):
            return F64_TOLERANCE if is64 else max(F32_STORAGE_FACTOR * storage_err, F32_FLOOR)

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
