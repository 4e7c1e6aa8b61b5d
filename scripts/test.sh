#!/usr/bin/env bash
# Runs every test: setup for the tests (setup.sh --tests: GoogleTest, the venv with torch, the
# Release build with the tests, the Python module), then the C++ suite (ctest), then the Python
# suite (pytest). The last line printed is the summary of the last runner that ran;
# exits non-zero if either failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh --tests

# Decide before ctest whether pytest runs, so that nothing follows the last runner's summary.
py_tests=()
if [[ -d tests/python ]]; then
  mapfile -t py_tests < <(find tests/python -name 'test_*.py' -o -name '*_test.py')
fi
if ((${#py_tests[@]} == 0)); then
  echo "[test] no Python tests in tests/python: running ctest only"
fi

ctest_rc=0
ctest --test-dir build --output-on-failure -j2 || ctest_rc=$?

pytest_rc=0
if ((${#py_tests[@]} > 0)); then
  # Exit 5 (no tests collected) with test files present is a failure, and stays non-zero.
  .venv/bin/python -m pytest -q tests/python || pytest_rc=$?
fi

if ((ctest_rc != 0)); then exit "$ctest_rc"; fi
exit "$pytest_rc"
