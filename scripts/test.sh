#!/usr/bin/env bash
# Runs every test: setup for the tests (setup.sh --tests: GoogleTest, the venv with torch, the
# Release build with the tests, the Python module), then the C++ suite (ctest), the C++ suite
# again under ASan + UBSan (build-asan/), the fuzz smoke (build-fuzz/), then the Python suite
# (pytest). The last line printed is the summary of the last runner that ran; exits non-zero if
# any failed.
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

# The C++ suite again under AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer
# included), from its own build directory; ccache'd like the Release build (setup.sh). A
# sanitizer report fails the test that made it. SLOPE_SANITIZE_TESTS=0 skips it (a quick local
# run; CI always runs it).
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/slope/ccache}"
  export CCACHE_BASEDIR="$PWD"  # paths inside the clone hash alike in every clone
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
asan_rc=0
if [[ "${SLOPE_SANITIZE_TESTS:-1}" != 0 ]]; then
  echo "[test] ASan + UBSan build in build-asan/"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLOPE_SANITIZE=ON \
    -DSLOPE_BUILD_TESTS=ON -DSLOPE_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
  cmake --build build-asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j2 || asan_rc=$?
fi

# Fuzz smoke (clang + libFuzzer, build-fuzz/): each reader's fuzz target over its committed seeds
# (tests/fuzz_corpus/), then 10 s of fuzzing from them; any crash, hang, leak or sanitizer report
# fails. docs/fuzzing.md. SLOPE_FUZZ_SMOKE=0 skips it.
fuzz_rc=0
if [[ "${SLOPE_FUZZ_SMOKE:-1}" != 0 ]]; then
  echo "[test] fuzz smoke in build-fuzz/"
  # -O1 -g1: the smoke needs line numbers and sanitizers, not speed. At -O2 -g the attention
  # kernels, linked in but never fuzzed, were the slowest objects of this build.
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DSLOPE_FUZZ=ON -DSLOPE_BUILD_TESTS=OFF -DSLOPE_BUILD_BENCH=OFF -DSLOPE_BUILD_C_API=OFF \
    "${launcher[@]}" >/dev/null
  bash scripts/fuzz_smoke.sh build-fuzz 10 || fuzz_rc=$?
fi

pytest_rc=0
if ((${#py_tests[@]} > 0)); then
  # Exit 5 (no tests collected) with test files present is a failure, and stays non-zero.
  .venv/bin/python -m pytest -q tests/python || pytest_rc=$?
fi

if ((ctest_rc != 0)); then exit "$ctest_rc"; fi
if ((asan_rc != 0)); then exit "$asan_rc"; fi
if ((fuzz_rc != 0)); then exit "$fuzz_rc"; fi
exit "$pytest_rc"
