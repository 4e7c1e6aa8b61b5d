#!/usr/bin/env bash
# A full disk and a read-only one, on a small tmpfs this test mounts (root only; exit 77, which
# ctest reports as skipped, where mounting is not allowed):
#   - `slope train` whose next checkpoint does not fit: one "slope: " line, exit 1, the previous
#     checkpoint byte for byte as it was, OUT/best/ whole, and once there is room, `--resume`
#     ends on exactly the weights of an uninterrupted run;
#   - `slope prepare` that runs out of room: one error line, and nothing a later step would read
#     (no meta.json, no staging directory); with --force over an existing corpus, the old corpus
#     byte for byte as it was;
#   - a read-only file system, and an --out below a regular file: one error line each.
# Usage: test_cli_disk_full.sh PATH/TO/slope
source "$(dirname "${BASH_SOURCE[0]}")/preamble.sh"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

disk="$tmp/disk"
mkdir -p "$disk"
if [[ "$(id -u)" != 0 ]] || ! mount -t tmpfs -o size=4m tmpfs "$disk" 2>/dev/null; then
  echo "SKIP: mounting a tmpfs needs root (and a container that allows mount)"
  exit 77
fi
trap 'umount "$disk" 2>/dev/null || true; rm -rf "$tmp"' EXIT
resize() { mount -o "remount,size=$1" "$disk"; }

awk 'BEGIN { split("an na li sa mar el jo ra be th ka ri on ia em", s, " "); x = 7;
             for (i = 0; i < 1500; i++) { n = 2 + x % 3; w = "";
               for (k = 0; k < n; k++) { x = (x * 1103515245 + 12345) % 2147483648;
                                         w = w s[1 + int(x / 65536) % 15] }
               print w } }' >"$tmp/names.txt"
"$slope" prepare --input "$tmp/names.txt" --out "$tmp/data" >/dev/null

run=(--data "$tmp/data" --n-layer 2 --n-head 2 --n-embd 32 --block-size 16 --batch-size 4
     --eval-interval 3 --eval-iters 1 --warmup-iters 2 --threads 1 --lr-decay-iters 6)
"$slope" train "${run[@]}" --out "$tmp/ref" --max-iters 6 >/dev/null 2>&1

# 1. Training: the checkpoint of step 3 fits, the staging of step 6 does not.
out="$disk/out"
"$slope" train "${run[@]}" --out "$out" --max-iters 3 >/dev/null 2>&1 || fail "the first run failed"
used_kb=$(du -sk "$disk" | cut -f1)
ckpt_kb=$(du -ck "$out"/model.safetensors "$out"/optimizer.safetensors | tail -n 1 | cut -f1)
resize "$((used_kb + ckpt_kb / 2))k"
checkpoint() { (cd "$out" && cksum config.json model.safetensors optimizer.safetensors train_state.json); }
before="$(checkpoint)"
expect_error "checkpoint on a full disk" "No space left" \
  "$slope" train --out "$out" --resume --max-iters 6 --threads 1
[[ "$(checkpoint)" == "$before" ]] || fail "a failed checkpoint changed the previous one"
[[ ! -e "$out/.checkpoint-next" ]] || fail "a failed checkpoint left its staging directory"
"$slope" eval --checkpoint "$out/best" --data "$tmp/data" --lengths 16 --max-tokens 64 \
  --csv "$tmp/eval.csv" --png "$tmp/eval.png" --threads 1 >/dev/null 2>"$tmp/stderr" ||
  fail "best/ does not load after the failed save: $(cat "$tmp/stderr")"
resize 64m
"$slope" train --out "$out" --resume --max-iters 6 --threads 1 >/dev/null 2>"$tmp/stderr" ||
  fail "resume after the disk was enlarged failed: $(cat "$tmp/stderr")"
cmp -s "$tmp/ref/model.safetensors" "$out/model.safetensors" ||
  fail "resumed after a full disk, the weights differ from the uninterrupted run"
rm -rf "$out"

# 2. Preparing: out of room in the middle of the shards.
awk 'BEGIN { for (i = 0; i < 40000; i++) print "the quick brown fox jumps over the lazy dog " i }' >"$tmp/big.txt"
resize 256k
expect_error "prepare on a full disk" "No space left" \
  "$slope" prepare --input "$tmp/big.txt" --out "$disk/corpus"
[[ ! -e "$disk/corpus/meta.json" ]] || fail "a failed prepare left meta.json"
[[ -z "$(find "$disk/corpus" -name '.tmp-prepare-*' 2>/dev/null)" ]] ||
  fail "a failed prepare left its staging directory"
rm -rf "$disk/corpus"
"$slope" prepare --input "$tmp/names.txt" --out "$disk/corpus" >/dev/null ||
  fail "a small prepare did not fit in 256k"
before="$(sums "$disk/corpus")"
expect_error "prepare --force on a full disk" "No space left" \
  "$slope" prepare --input "$tmp/big.txt" --out "$disk/corpus" --force
[[ "$(sums "$disk/corpus")" == "$before" ]] || fail "a failed prepare --force changed the old corpus"

# 3. A read-only file system, and an --out below a regular file.
resize 64m
"$slope" train "${run[@]}" --out "$disk/ro" --max-iters 3 >/dev/null 2>&1
mount -o remount,ro "$disk"
before="$(sums "$disk/ro")"
expect_error "train on a read-only file system" "Read-only file system" \
  "$slope" train --out "$disk/ro" --resume --max-iters 6 --threads 1
expect_error "prepare on a read-only file system" "Read-only file system" \
  "$slope" prepare --input "$tmp/names.txt" --out "$disk/corpus2"
[[ "$(sums "$disk/ro")" == "$before" ]] || fail "a refused run changed a read-only checkpoint"
mount -o remount,rw "$disk"
touch "$tmp/file"
expect_error "--out below a regular file" "$tmp/file" \
  "$slope" train "${run[@]}" --out "$tmp/file/out" --max-iters 3
echo "disk full: training and prepare fail cleanly and keep what was there; read-only and bad --out refused"
