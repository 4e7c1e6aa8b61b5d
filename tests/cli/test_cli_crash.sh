#!/usr/bin/env bash
# Crash safety of `slope train`: kill -9 at random moments of a run that checkpoints every step.
# After each kill, OUT/ and OUT/best/ must each hold a complete checkpoint (slope eval loads both,
# before any recovery has run), and `--resume` (or a fresh start, when the kill came before the
# first checkpoint) must end on exactly the weights of a run that was never interrupted.
# Trials: SLOPE_CRASH_TRIALS (default 5; the one-off run of issue 17 used 100). Each trial's
# delay comes from a fixed generator, so a failure repeats with the same trial number.
# Usage: test_cli_crash.sh PATH/TO/slope
source "$(dirname "${BASH_SOURCE[0]}")/preamble.sh"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
trials="${SLOPE_CRASH_TRIALS:-5}"

awk 'BEGIN { split("an na li sa mar el jo ra be th ka ri on ia em", s, " "); x = 7;
             for (i = 0; i < 1500; i++) { n = 2 + x % 3; w = "";
               for (k = 0; k < n; k++) { x = (x * 1103515245 + 12345) % 2147483648;
                                         w = w s[1 + int(x / 65536) % 15] }
               print w } }' >"$tmp/names.txt"
"$slope" prepare --input "$tmp/names.txt" --out "$tmp/data" >/dev/null

# A checkpoint (and usually a new best/) at every step: most of the run is spent saving.
iters=12
run=(--data "$tmp/data" --n-layer 2 --n-head 2 --n-embd 32 --block-size 16 --batch-size 4
     --eval-interval 1 --eval-iters 1 --warmup-iters 2 --threads 1 --max-iters "$iters")

start=$(date +%s%N)
"$slope" train "${run[@]}" --out "$tmp/ref" >/dev/null 2>&1
run_ms=$(( ($(date +%s%N) - start) / 1000000 ))

mid_save=0
x=12345
for ((t = 0; t < trials; t++)); do
  out="$tmp/trial$t"
  x=$(( (x * 1103515245 + 12345) % 2147483648 ))
  delay_ms=$(( 20 + x % (run_ms > 40 ? run_ms - 20 : 20) ))
  "$slope" train "${run[@]}" --out "$out" >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [[ -d "$out/.checkpoint-next" || -d "$out/.best-next" ]] && mid_save=$((mid_save + 1))

  # Before any recovery: whatever is in OUT and OUT/best loads as a whole model.
  for dir in "$out" "$out/best"; do
    [[ -f "$dir/model.safetensors" ]] || continue
    "$slope" eval --checkpoint "$dir" --data "$tmp/data" --lengths 16 --max-tokens 64 \
      --csv "$tmp/eval.csv" --png "$tmp/eval.png" --threads 1 >/dev/null 2>"$tmp/stderr" ||
      fail "trial $t (killed after ${delay_ms} ms): $dir does not load: $(cat "$tmp/stderr")"
  done

  # Resume (or start over) and finish: exactly the uninterrupted run's weights.
  if [[ -f "$out/train_state.json" ]]; then
    "$slope" train --out "$out" --resume --max-iters "$iters" --threads 1 >/dev/null 2>"$tmp/stderr" ||
      fail "trial $t (killed after ${delay_ms} ms): resume failed: $(cat "$tmp/stderr")"
  else
    "$slope" train "${run[@]}" --out "$out" >/dev/null 2>"$tmp/stderr" ||
      fail "trial $t (killed after ${delay_ms} ms): a fresh start failed: $(cat "$tmp/stderr")"
  fi
  cmp -s "$tmp/ref/model.safetensors" "$out/model.safetensors" ||
    fail "trial $t (killed after ${delay_ms} ms): the finished weights differ from the uninterrupted run"
  cmp -s "$tmp/ref/best/model.safetensors" "$out/best/model.safetensors" ||
    fail "trial $t (killed after ${delay_ms} ms): best/ differs from the uninterrupted run"
  [[ ! -e "$out/.checkpoint-next" && ! -e "$out/.best-next" ]] ||
    fail "trial $t: a staging directory was left behind"
  rm -rf "$out"
done
echo "crash: $trials kill -9 trials, $mid_save of them mid-save (a staging directory present); every checkpoint whole, every resume exact"
