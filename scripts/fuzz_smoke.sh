#!/usr/bin/env bash
# Fuzz smoke test: every libFuzzer target of a SLOPE_FUZZ build runs once over each file of its
# seed corpus (tests/fuzz_corpus/<target>/), then fuzzes for a few seconds from those seeds.
# Exits non-zero on the first crash, hang (> 10 s on one input), leak, out-of-memory (> 2 GiB)
# or sanitizer report; libFuzzer's output and the crashing input stay in the work directory.
#
#   scripts/fuzz_smoke.sh [BUILD_DIR] [SECONDS_PER_TARGET] [TARGET...]
#
# BUILD_DIR (default build-fuzz) is a clang build configured with -DSLOPE_FUZZ=ON; its targets
# are built here if missing. New inputs found while fuzzing go to a temporary folder, never into
# the committed seeds. docs/fuzzing.md has the whole story.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-fuzz}
seconds=${2:-10}
shift $(($# >= 2 ? 2 : $#))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$root"/tests/fuzz_corpus/fuzz_*/; do targets+=("$(basename "$d")"); done
fi
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -q '^SLOPE_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "fuzz_smoke: $build is not a SLOPE_FUZZ build; configure it with" >&2
  echo "  CC=clang CXX=clang++ cmake -S $root -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \\" >&2
  echo "    -DSLOPE_FUZZ=ON -DSLOPE_BUILD_TESTS=OFF -DSLOPE_BUILD_BENCH=OFF" >&2
  exit 2
fi
# Quiet when it builds; the compiler's messages when it does not (CI shows only the log).
if ! build_log=$(ninja -C "$build" "${targets[@]}" 2>&1); then
  printf '%s\n' "$build_log" | grep -v '^\[' | tail -n 40 >&2
  echo "fuzz_smoke: building the fuzz targets in $build failed (above)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/slope-fuzz-smoke-XXXXXX")
failed=()
for t in "${targets[@]}"; do
  bin=$build/fuzz/$t
  seeds=$root/tests/fuzz_corpus/$t
  mkdir -p "$work/$t/new"
  opts=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/$t/" -print_final_stats=1)
  [[ $t =~ ^fuzz_(model_config|prepared_meta|train_state|char_tokenizer|safetensors)$ ]] &&
    opts+=(-dict="$root/fuzz/json.dict")
  log=$work/$t/log
  # Seeds once each, then fuzzing from them.
  if "$bin" "${opts[@]}" -runs=0 "$seeds" >"$log" 2>&1 &&
    "$bin" "${opts[@]}" -max_total_time="$seconds" "$work/$t/new" "$seeds" >>"$log" 2>&1; then
    stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
    printf 'fuzz_smoke: %-22s ok   %8s execs  %s\n' "$t" "${execs:-?}" "$stats"
  else
    printf 'fuzz_smoke: %-22s FAILED (log and input: %s)\n' "$t" "$work/$t" >&2
    tail -n 30 "$log" >&2
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz_smoke: ${#failed[@]} target(s) failed: ${failed[*]} (kept: $work)" >&2
  exit 1
fi
rm -rf "$work"
