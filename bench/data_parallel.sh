#!/usr/bin/env bash
# Data-parallel `slope train` against one process, side by side on this machine: tokens/s of
#   A: 1 process  x 2 threads, --batch-size 8
#   B: 2 ranks    x 1 thread,  --batch-size 4 each (mpirun -np 2): the same global batch of 8
# for the GPT of `slope bench train` (L6 H6 C384, T=256, ALiBi), interleaved A B A B ... so that
# a change in the machine's load hits both. Prints the machine, each pair and the ratio B/A
# (the issue's target: >= 0.9), and rank 0's share of time in the gradient allreduce.
# Usage: bench/data_parallel.sh [PATH/TO/slope] [pairs (default 3)] [steps per run (default 6)]
set -euo pipefail
slope="${1:-build/slope}"
pairs="${2:-3}"
steps="${3:-6}"
command -v mpirun >/dev/null || { echo "no mpirun: apt-get install openmpi-bin libopenmpi-dev"; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "date: $(date -u)"
echo "machine: $(lscpu | grep 'Model name' | sed 's/Model name: *//'), $(nproc) cores," \
  "$(grep -q avx512f /proc/cpuinfo && echo AVX-512 || echo AVX2)"
echo "load: $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min)"
echo "$(mpirun --version | head -n 1)"

# A corpus of made-up words, large enough for windows of 257 tokens.
awk 'BEGIN { split("an na li sa mar el jo ra be th ka ri on ia em", s, " "); x = 7;
             for (i = 0; i < 20000; i++) { n = 2 + x % 3; w = "";
               for (k = 0; k < n; k++) { x = (x * 1103515245 + 12345) % 2147483648;
                                         w = w s[1 + int(x / 65536) % 15] }
               print w } }' >"$tmp/words.txt"
"$slope" prepare --input "$tmp/words.txt" --out "$tmp/data" >/dev/null

# One eval at the end (tokens/s counts training steps only), no dropout.
model=(--data "$tmp/data" --n-layer 6 --n-head 6 --n-embd 384 --block-size 256 --dropout 0
       --max-iters "$steps" --eval-interval 100000 --eval-iters 1 --warmup-iters 2)
# --bind-to none: Open MPI pins 2 ranks to one core each by default; on a shared machine a rank
# pinned to a busy core cannot move to the idle one, and the other waits for it every step.
mpi=(mpirun --allow-run-as-root -np 2 --bind-to none -x OMP_NUM_THREADS -x OMP_WAIT_POLICY)
rate() { grep -o '[0-9]* tokens/s' "$1" | grep -o '^[0-9]*'; }

echo "config: GPT L6 H6 C384, T=256, global batch 8, $steps steps per run, $pairs pairs"
ratios=()
for ((p = 1; p <= pairs; p++)); do
  rm -rf "$tmp/a" "$tmp/b"
  OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive "$slope" train "${model[@]}" --batch-size 8 \
    --threads 2 --out "$tmp/a" >"$tmp/a.txt" 2>/dev/null
  OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive "${mpi[@]}" "$slope" train "${model[@]}" \
    --batch-size 4 --threads 1 --out "$tmp/b" >"$tmp/b.txt" 2>/dev/null
  a=$(rate "$tmp/a.txt") b=$(rate "$tmp/b.txt")
  share=$(grep -o '[0-9.]*% of rank 0' "$tmp/b.txt" | grep -o '^[0-9.]*')
  r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
  ratios+=("$r")
  echo "pair $p: 1x2 threads $a tokens/s | 2 ranks x 1 thread $b tokens/s | ratio $r |" \
    "allreduce ${share}% of rank 0's step time"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "ratio (2 ranks x 1 thread) / (1 process x 2 threads): median $median of ${ratios[*]}"
echo "load after: $(cut -d ' ' -f 1-3 /proc/loadavg)"
