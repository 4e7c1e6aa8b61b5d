"""examples/nanogpt_alibi.py as a module, loaded once, for the tests that train it
(test_example_nanogpt.py, test_ddp_slopes.py)."""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_example():
    if "nanogpt_alibi" in sys.modules:
        return sys.modules["nanogpt_alibi"]
    spec = importlib.util.spec_from_file_location("nanogpt_alibi",
                                                  REPO / "examples" / "nanogpt_alibi.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["nanogpt_alibi"] = module
    spec.loader.exec_module(module)
    return module
