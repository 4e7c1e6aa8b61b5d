#!/usr/bin/env bash
# `slope train | sample | eval` as a user runs them, on a tiny corpus: a run and its files, the
# TOML config, exact resume, and bad input (unknown flag, empty data dir, corrupt shard,
# truncated checkpoint, mismatched flags, a diverging run), each of which must give one line
# "slope: ...", a non-zero exit, and leave every existing file as it was.
# Usage: test_cli_train.sh PATH/TO/slope
source "$(dirname "${BASH_SOURCE[0]}")/preamble.sh"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

# Made-up names from a fixed generator, one per line.
awk 'BEGIN { split("an na li sa mar el jo ra be th ka ri on ia em", s, " "); x = 7;
             for (i = 0; i < 1500; i++) { n = 2 + x % 3; w = "";
               for (k = 0; k < n; k++) { x = (x * 1103515245 + 12345) % 2147483648;
                                         w = w s[1 + int(x / 65536) % 15] }
               print w } }' >"$tmp/names.txt"
"$slope" prepare --input "$tmp/names.txt" --out "$tmp/data" >/dev/null

model=(--n-layer 2 --n-head 2 --n-embd 32 --block-size 16 --batch-size 4
      --eval-interval 3 --eval-iters 2 --warmup-iters 2 --threads 1)
tiny=(--data "$tmp/data" "${model[@]}")

# 1. A run writes the checkpoint, its best copy, the tokenizer and one log line per eval.
"$slope" train "${tiny[@]}" --out "$tmp/out" --max-iters 6 >"$tmp/stdout" 2>"$tmp/stderr"
grep -q 'trained to step 6' "$tmp/stdout" || fail "no summary: $(cat "$tmp/stdout")"
grep -q 'step 6: train loss' "$tmp/stderr" || fail "no eval line on stderr: $(cat "$tmp/stderr")"
for f in model.safetensors config.json optimizer.safetensors train_state.json log.jsonl \
         tokenizer/tokenizer.json best/model.safetensors best/config.json \
         best/tokenizer/tokenizer.json; do
  [[ -f "$tmp/out/$f" ]] || fail "missing $f"
done
[[ "$(wc -l <"$tmp/out/log.jsonl")" == 3 ]] || fail "expected evals at 0, 3, 6: $(cat "$tmp/out/log.jsonl")"
grep -q '"val_loss"' "$tmp/out/log.jsonl" || fail "log lacks val_loss"

# 2. Stopped at 3 and resumed to 6 (same schedule): the same losses as the run above.
"$slope" train "${tiny[@]}" --out "$tmp/stop" --max-iters 3 --lr-decay-iters 6 >/dev/null 2>&1
"$slope" train --out "$tmp/stop" --resume --max-iters 6 --threads 1 >/dev/null 2>&1  # --data from the checkpoint
losses() { tail -n 1 "$1" | grep -o '"train_loss":[^,]*,"val_loss":[^,]*'; }
[[ "$(losses "$tmp/out/log.jsonl")" == "$(losses "$tmp/stop/log.jsonl")" ]] ||
  fail "resumed run differs: $(losses "$tmp/out/log.jsonl") vs $(losses "$tmp/stop/log.jsonl")"
cmp -s "$tmp/out/model.safetensors" "$tmp/stop/model.safetensors" || fail "resumed weights differ"

# 3. The same flags from a TOML file (dashes or nanoGPT's underscores); flags win over it.
cat >"$tmp/run.toml" <<TOML
data = "$tmp/data"
out = "$tmp/toml"
n_layer = 2
n-head = 2
n-embd = 32
block-size = 16
batch-size = 4
max-iters = 100
eval-interval = 3
eval-iters = 2
warmup-iters = 2
pos = "alibi"
TOML
"$slope" train --config "$tmp/run.toml" --max-iters 3 --threads 1 >"$tmp/stdout" 2>/dev/null
grep -q 'trained to step 3' "$tmp/stdout" || fail "--config run: $(cat "$tmp/stdout")"
grep -q '"n-layer": 2' "$tmp/toml/train_state.json" || fail "--config n_layer not applied"
echo 'n-layers = 3' >"$tmp/bad.toml"
expect_error "unknown TOML key" "n-layers" "$slope" train --config "$tmp/bad.toml"

# 4. Bad input: one line, exit 1, nothing written or changed.
before="$(sums "$tmp/out")"
expect_error "unknown flag" "--no-such-flag" "$slope" train "${tiny[@]}" --out "$tmp/o2" --no-such-flag
expect_error "bad --pos" "--pos" "$slope" train "${tiny[@]}" --out "$tmp/o2" --pos rope
mkdir "$tmp/empty"
expect_error "empty data dir" "not a prepared corpus" "$slope" train --data "$tmp/empty" --out "$tmp/o2"
[[ ! -e "$tmp/o2" ]] || fail "a failed run wrote $tmp/o2"
cp -r "$tmp/data" "$tmp/bad"
printf '\x07' | dd of="$tmp/bad/train.bin" bs=1 seek=100 conv=notrunc status=none
expect_error "corrupt shard" "train.bin" "$slope" train "${model[@]}" --data "$tmp/bad" --out "$tmp/o2"
[[ ! -e "$tmp/o2" ]] || fail "a failed run wrote $tmp/o2"
expect_error "fresh run into a checkpoint" "--resume" "$slope" train "${tiny[@]}" --out "$tmp/out"
expect_error "mismatched flag" "--n-embd 32" \
  "$slope" train --data "$tmp/data" --out "$tmp/out" --resume --max-iters 9 --n-embd 64
expect_error "diverging run" "diverged" \
  "$slope" train --data "$tmp/data" --out "$tmp/out" --resume --max-iters 12 --lr 1e30 --min-lr 1e29
grep -q 'checkpoint of step 6, untouched' "$tmp/stderr" || fail "diverged: $(cat "$tmp/stderr")"
[[ "$(sums "$tmp/out")" == "$before" ]] || fail "a failed run changed $tmp/out"
cp -r "$tmp/out" "$tmp/trunc"
truncate -s 1000 "$tmp/trunc/model.safetensors"
before="$(sums "$tmp/trunc")"
expect_error "truncated checkpoint" "model.safetensors" \
  "$slope" train --data "$tmp/data" --out "$tmp/trunc" --resume --max-iters 9
expect_error "sample a truncated checkpoint" "truncated" "$slope" sample --checkpoint "$tmp/trunc"
[[ "$(sums "$tmp/trunc")" == "$before" ]] || fail "a refused resume changed $tmp/trunc"

# 5. Samples: one per line with --stop-at-newline; the same seed gives the same text.
"$slope" sample --checkpoint "$tmp/out/best" --num-samples 4 --stop-at-newline --seed 3 >"$tmp/s1"
"$slope" sample --checkpoint "$tmp/out/best" --num-samples 4 --stop-at-newline --seed 3 >"$tmp/s2"
[[ "$(wc -l <"$tmp/s1")" == 4 ]] || fail "expected 4 samples: $(cat "$tmp/s1")"
cmp -s "$tmp/s1" "$tmp/s2" || fail "same seed, other samples"
"$slope" sample --checkpoint "$tmp/out" --prompt mar --max-new-tokens 40 --top-k 3 \
  --temperature 0.7 | head -c 3 | grep -q '^mar' || fail "sample does not continue the prompt"
expect_error "unknown prompt character" "not in the model's vocabulary" \
  "$slope" sample --checkpoint "$tmp/out" --prompt 'MAR'

# 6. Eval: a CSV with one row per length; learned positions skip lengths past block_size.
"$slope" eval --checkpoint "$tmp/out" --data "$tmp/data" --lengths 8,16,32 >"$tmp/table"
[[ "$(cut -d, -f1 "$tmp/out/eval.csv" | tr '\n' ' ')" == "length 8 16 32 " ]] ||
  fail "eval.csv lengths: $(cat "$tmp/out/eval.csv")"
grep -q 'perplexity' "$tmp/table" || fail "no table: $(cat "$tmp/table")"
if command -v gnuplot >/dev/null; then
  [[ "$(head -c 4 "$tmp/out/eval.png" | tail -c 3)" == PNG ]] || fail "no PNG plot"
fi
"$slope" train "${tiny[@]}" --out "$tmp/learned" --pos learned --max-iters 3 >/dev/null 2>&1
"$slope" eval --checkpoint "$tmp/learned" --data "$tmp/data" --lengths 8,16,32 --stride 4 \
  --csv "$tmp/l.csv" --json >"$tmp/json"
[[ "$(cut -d, -f1 "$tmp/l.csv" | tr '\n' ' ')" == "length 8 16 " ]] || fail "learned CSV: $(cat "$tmp/l.csv")"
grep -q '"length":32,"skipped":true' "$tmp/json" || fail "32 not skipped: $(cat "$tmp/json")"
tr a-z A-Z <"$tmp/names.txt" >"$tmp/upper.txt"
"$slope" prepare --input "$tmp/upper.txt" --out "$tmp/other" >/dev/null
expect_error "eval on another corpus" "another tokenizer" \
  "$slope" eval --checkpoint "$tmp/out" --data "$tmp/other" --lengths 8

# 7. Learned relative biases (issue 19): each trains, saves its per-layer tensor, evaluates past
# the training length and samples from the KV cache; an encoder refuses the causal FIRE.
for pos in kerple-log kerple-power t5 fire; do
  "$slope" train "${tiny[@]}" --out "$tmp/rel-$pos" --pos $pos --max-iters 3 >/dev/null 2>&1 ||
    fail "--pos $pos did not train"
  grep -q "\"pos\": *\"$pos\"" "$tmp/rel-$pos/config.json" || fail "$pos: config.json lacks pos"
  "$slope" eval --checkpoint "$tmp/rel-$pos" --data "$tmp/data" --lengths 16,64 \
    --csv "$tmp/rel.csv" >/dev/null 2>&1 || fail "$pos: eval failed"
  [[ "$(cut -d, -f1 "$tmp/rel.csv" | tr '\n' ' ')" == "length 16 64 " ]] ||
    fail "$pos eval CSV: $(cat "$tmp/rel.csv")"
  "$slope" sample --checkpoint "$tmp/rel-$pos" --max-new-tokens 40 --seed 1 >/dev/null 2>&1 ||
    fail "$pos: sample failed"
done
expect_error "encoder with fire" "causal scheme" \
  "$slope" train --arch encoder "${tiny[@]}" --out "$tmp/enc-fire" --pos fire --max-iters 3
[[ ! -e "$tmp/enc-fire" ]] || fail "a refused run left $tmp/enc-fire"

"$slope" train --help >"$tmp/help"  # to a file: grep -q would close the pipe early
grep -q -- '--train-block-size' "$tmp/help" || fail "--help lacks --train-block-size"
grep -q -- 'kerple-log' "$tmp/help" || fail "--help lacks the relative biases"
# `slope bench train --json`: a train record whose MFU is its model FLOP/s over the sgemm rate it
# timed between its steps (a positive median), for bench/train.py.
"$slope" bench train --json --profile --vocab 65 --B 1 --T 16 --n-layer 1 --n-head 1 \
  --n-embd 16 --steps 3 --threads 1 >"$tmp/bench.jsonl" 2>"$tmp/stderr" ||
  fail "bench train: $(cat "$tmp/stderr")"
python3 - "$tmp/bench.jsonl" <<'PY' || fail "bench train --json: $(cat "$tmp/bench.jsonl")"
import json, sys
recs = {r["kind"]: r for r in map(json.loads, open(sys.argv[1]))}
t = recs["train"]
assert recs["sgemm"]["gflops"] > 0 and t["sgemm_gflops"] > 0, t
assert abs(t["mfu"] - t["model_gflops"] / t["sgemm_gflops"]) <= 1e-3 * t["mfu"] + 1e-4, t
assert t["steps"] == 3 and t["step_min_ms"] <= t["step_ms"], t
# --profile: every layer call's time over the 3 steps, by label and by kind of work.
p = recs["profile"]
labels = {e["label"] for e in p["labels"]}
assert {"attention", "attention backward", "AdamW step"} <= labels, labels
assert 0.99 <= sum(k["share"] for k in p["kinds"]) <= 1.01, p["kinds"]
PY
echo "cli train/sample/eval: all checks passed"
