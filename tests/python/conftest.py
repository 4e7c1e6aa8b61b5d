import numpy as np
import pytest


def pytest_report_header(config):
    try:
        import slope

        return f"slope {slope.__version__}, CPU kernels: {slope.cpu_isa()}"
    except Exception as e:  # the import error is reported by the tests themselves
        return f"slope not importable: {e}"


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)
