import os
import tempfile

import numpy as np
import pytest

# torch.compile's on-disk caches outlive a run, and their keys do not cover a custom operator's
# fake implementation: a fresh cache per test session, so a changed slope.torch is compiled anew.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="slope-inductor-"))


def pytest_report_header(config):
    try:
        import slope

        return f"slope {slope.__version__}, CPU kernels: {slope.cpu_isa()}"
    except Exception as e:  # the import error is reported by the tests themselves
        return f"slope not importable: {e}"


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)


def _isas():
    try:
        import slope

        return slope.cpu_isas()
    except Exception:  # reported by the tests themselves
        return ["default"]


@pytest.fixture(params=_isas())
def isa(request):
    """Runs a test once per instruction set this processor has (slope.set_cpu_isa), as the C++
    kernel tests do, and restores the previous choice after it."""
    import slope

    if request.param == "default":
        yield slope.cpu_isa()
        return
    before = slope.cpu_isa()
    slope.set_cpu_isa(request.param)
    try:
        yield request.param
    finally:
        slope.set_cpu_isa(before)
