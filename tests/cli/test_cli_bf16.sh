#!/usr/bin/env bash
# `slope train --dtype bf16` and `slope bench train --dtype bf16` on a CPU without AVX512_BF16 or
# AMX: one "slope: ..." line naming what bf16 needs, exit 1, and no file made or changed, a new
# OUT and a resumed one alike. ONEDNN_MAX_CPU_ISA=AVX512_CORE hides native bf16 from oneDNN, so
# the refusal is tested on every CPU. Then, where oneDNN can emulate bf16 (AVX-512),
# SLOPE_BF16_EMULATE=1 lets the run through and its train state says bf16.
# Usage: test_cli_bf16.sh PATH/TO/slope
source "$(dirname "${BASH_SOURCE[0]}")/preamble.sh"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive ONEDNN_MAX_CPU_ISA=AVX512_CORE
unset SLOPE_BF16_EMULATE

awk 'BEGIN { split("an na li sa mar el jo ra be th ka ri on ia em", s, " "); x = 7;
             for (i = 0; i < 600; i++) { n = 2 + x % 3; w = "";
               for (k = 0; k < n; k++) { x = (x * 1103515245 + 12345) % 2147483648;
                                         w = w s[1 + int(x / 65536) % 15] }
               print w } }' >"$tmp/names.txt"
"$slope" prepare --input "$tmp/names.txt" --out "$tmp/data" >/dev/null
tiny=(--data "$tmp/data" --n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch-size 2
      --eval-interval 2 --eval-iters 1 --warmup-iters 1 --threads 1)

"$slope" train --help | grep -q -- '--dtype' || fail "--help does not list --dtype"

# 1. A new run: refused before OUT exists.
expect_error "bf16 without AVX512_BF16" "needs AVX512_BF16 or AMX" \
  "$slope" train "${tiny[@]}" --out "$tmp/new" --max-iters 2 --dtype bf16
[[ ! -e "$tmp/new" ]] || fail "the refused run made $tmp/new"

# 2. A resumed run (fp32 so far): refused, every file as it was.
"$slope" train "${tiny[@]}" --out "$tmp/out" --max-iters 2 --lr-decay-iters 4 >/dev/null 2>&1
before="$(sums "$tmp/out")"
expect_error "bf16 resume without AVX512_BF16" "needs AVX512_BF16 or AMX" \
  "$slope" train --out "$tmp/out" --resume --max-iters 4 --dtype bf16 --threads 1
[[ "$(sums "$tmp/out")" == "$before" ]] || fail "the refused resume changed $tmp/out"

# 3. The benchmark says the same, before it times anything.
expect_error "bench train bf16" "needs AVX512_BF16 or AMX" \
  "$slope" bench train --dtype bf16 --vocab 65 --B 1 --T 8 --n-layer 1 --n-head 1 --n-embd 8 \
  --steps 1 --threads 1

# 4. The emulation, for tests: runs where oneDNN has it (AVX-512), refused below.
rc=0
SLOPE_BF16_EMULATE=1 "$slope" train "${tiny[@]}" --out "$tmp/emu" --max-iters 2 --dtype bf16 \
  >/dev/null 2>"$tmp/stderr" || rc=$?
if [[ $rc == 0 ]]; then
  grep -q '"dtype": "bf16"' "$tmp/emu/train_state.json" ||
    fail "train_state.json does not record bf16: $(cat "$tmp/emu/train_state.json")"
  # Resumed without --dtype: the checkpoint's bf16, refused again once the emulation is off.
  expect_error "bf16 checkpoint resumed without the emulation" "needs AVX512_BF16 or AMX" \
    "$slope" train --out "$tmp/emu" --resume --max-iters 4 --threads 1
  "$slope" train --out "$tmp/emu" --resume --max-iters 4 --dtype fp32 --threads 1 >/dev/null 2>&1 ||
    fail "a bf16 checkpoint did not resume with --dtype fp32"
  grep -q '"dtype": "fp32"' "$tmp/emu/train_state.json" || fail "the fp32 resume kept bf16"
else
  grep -q "cannot emulate bf16 below AVX512_CORE" "$tmp/stderr" ||
    fail "SLOPE_BF16_EMULATE=1: exit $rc: $(cat "$tmp/stderr")"
fi
echo "ok"
