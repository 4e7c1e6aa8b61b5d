#!/usr/bin/env bash
# One GPU session for slope's Triton kernels (issue 13), in the order that spends the least GPU
# time before a failure shows: the correctness cases natively, compute-sanitizer's memcheck on a
# few small ones, then the benchmark. Needs the slope module importable by $PYTHON (default
# python3) and a CUDA GPU; prints everything, stops at nothing (each step's status is printed).
#
#   PYTHON=.venv/bin/python bash scripts/gpu_check.sh [--out docs/BENCHMARKS.md]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
unset TRITON_INTERPRET

nvidia-smi -L || echo "[gpu_check] nvidia-smi failed"
echo "[gpu_check] correctness: tests/python/triton_cases.py cuda"
"$PY" tests/python/triton_cases.py cuda; echo "[gpu_check] cases rc $?"

if command -v compute-sanitizer >/dev/null; then
  echo "[gpu_check] compute-sanitizer memcheck on small cases"
  compute-sanitizer --tool memcheck --error-exitcode 9 "$PY" tests/python/triton_cases.py cuda \
    plain packed_documents key_lengths_positions gqa_odd_dims dropout_gradients
  echo "[gpu_check] memcheck rc $?"
else
  echo "[gpu_check] compute-sanitizer not found: memcheck skipped"
fi

echo "[gpu_check] benchmark: bench/attention_gpu.py $*"
"$PY" bench/attention_gpu.py "$@"; echo "[gpu_check] bench rc $?"
