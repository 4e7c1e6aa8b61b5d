#!/usr/bin/env bash
# `slope prepare --task g2p`, `slope train --arch encoder | seq2seq`, `slope sample --word` and
# `slope eval` on encoder and seq2seq checkpoints, as a user runs them on tiny corpora: the files
# a run writes, greedy and beam decoding, the eval tables and CSVs, exact resume, and bad input
# (an encoder scheme on a GPT, a decoder scheme on an encoder, a resume on another corpus, a
# corrupt pair shard, an occupied --out, the wrong corpus), each of which must give one line
# "slope: ...", exit 1 and leave existing files as they were.
# Usage: test_cli_encdec.sh PATH/TO/slope
source "$(dirname "${BASH_SOURCE[0]}")/preamble.sh"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

# A made-up pronouncing dictionary: words of syllables, each syllable a fixed phoneme pair.
awk 'BEGIN { split("ba:B AA|ki:K IY|to:T OW|ne:N EH|ru:R UW|sa:S AA|mi:M IY|lo:L OW", s, "|");
             x = 11; print ";;; a comment line";
             for (i = 0; i < 400; i++) { n = 1 + x % 4; w = ""; p = "";
               for (k = 0; k < n; k++) { x = (x * 75 + 74) % 65537;
                 split(s[1 + int(x / 8) % 8], q, ":"); w = w q[1]; p = p " " q[2] "1" }
               if (!(w in seen)) { seen[w] = 1; print w p } } }' >"$tmp/dict.txt"
"$slope" prepare --task g2p --input "$tmp/dict.txt" --out "$tmp/g2p" >/dev/null
for f in meta.json src_vocab.json tgt_vocab.json train.bin val.bin test.bin; do
  [[ -f "$tmp/g2p/$f" ]] || fail "prepare --task g2p: missing $f"
done

small=(--n-layer 1 --n-head 2 --n-embd 16 --batch-size 8 --eval-interval 5 --eval-iters 2
       --warmup-iters 2 --threads 1)

# 1. seq2seq: a run writes both checkpoints with their vocabularies; sample and eval read them.
"$slope" train --arch seq2seq --pos alibi-learned --data "$tmp/g2p" --out "$tmp/s2s" "${small[@]}" \
  --max-iters 10 >"$tmp/stdout" 2>"$tmp/stderr"
grep -q 'trained to step 10' "$tmp/stdout" || fail "seq2seq: no summary: $(cat "$tmp/stdout" "$tmp/stderr")"
for f in model.safetensors config.json src_vocab.json tgt_vocab.json log.jsonl \
         best/model.safetensors best/config.json best/tgt_vocab.json; do
  [[ -f "$tmp/s2s/$f" ]] || fail "seq2seq: missing $f"
done
grep -q '"arch": "seq2seq"' "$tmp/s2s/config.json" || fail "config.json lacks the arch"
"$slope" sample --checkpoint "$tmp/s2s" --word bakito --word ne >"$tmp/greedy"
"$slope" sample --checkpoint "$tmp/s2s" --word bakito --word ne --beam 4 >"$tmp/beam"
[[ "$(wc -l <"$tmp/greedy")" == 2 && "$(wc -l <"$tmp/beam")" == 2 ]] || fail "sample: one line per word"
grep -q $'^bakito\t' "$tmp/beam" || fail "sample output: $(cat "$tmp/beam")"
"$slope" eval --checkpoint "$tmp/s2s/best" --data "$tmp/g2p" --beam 2 --predictions "$tmp/p.tsv" \
  --csv "$tmp/g2p.csv" >"$tmp/eval" 2>/dev/null
grep -q '^ *all ' "$tmp/eval" || fail "eval: no total row: $(cat "$tmp/eval")"
head -n 1 "$tmp/g2p.csv" | grep -q '^min_chars,max_chars,words,correct,word_accuracy' || fail "eval CSV header"
[[ "$(wc -l <"$tmp/p.tsv")" -gt 1 ]] || fail "no predictions written"

# 2. encoder (MLM) on a text corpus: eval reports the masked-token loss per length.
grep -v '^;' "$tmp/dict.txt" | awk '{ printf "%s%s", $1, (NR % 8 ? " " : "\n") }' >"$tmp/words.txt"
"$slope" prepare --input "$tmp/words.txt" --out "$tmp/text" >/dev/null
"$slope" train --arch encoder --pos alibi-nonsymmetric --data "$tmp/text" --out "$tmp/mlm" \
  "${small[@]}" --block-size 16 --min-len 4 --max-iters 10 >"$tmp/stdout" 2>"$tmp/stderr" || fail "encoder: $(cat "$tmp/stderr")"
grep -q 'trained to step 10' "$tmp/stdout" || fail "encoder: no summary"
[[ -f "$tmp/mlm/tokenizer/tokenizer.json" ]] || fail "encoder checkpoint lacks its tokenizer"
"$slope" eval --checkpoint "$tmp/mlm/best" --data "$tmp/text" --lengths 16,32 --eval-batches 2 \
  --csv "$tmp/mlm.csv" >"$tmp/eval" 2>/dev/null
[[ "$(wc -l <"$tmp/mlm.csv")" == 3 ]] || fail "MLM eval CSV: $(cat "$tmp/mlm.csv")"
"$slope" train --arch encoder --data "$tmp/text" --out "$tmp/mlm-default" "${small[@]}" \
  --block-size 16 --max-iters 3 >/dev/null 2>&1
grep -q '"pos": "alibi-symmetric"' "$tmp/mlm-default/config.json" || fail "encoder default --pos"

# 3. Exact resume: stopped at 5 and resumed to 10 (same schedule, dropout on) gives the run that
#    never stopped, for both architectures; --data comes from the checkpoint.
for arch in seq2seq encoder; do
  if [[ $arch == seq2seq ]]; then data="$tmp/g2p"; extra=(--pos alibi-learned); else
    data="$tmp/text"; extra=(--pos alibi-nonsymmetric --block-size 16 --min-len 4); fi
  "$slope" train --arch $arch "${extra[@]}" --data "$data" --out "$tmp/r-full-$arch" "${small[@]}" \
    --dropout 0.1 --max-iters 10 >/dev/null 2>&1
  "$slope" train --arch $arch "${extra[@]}" --data "$data" --out "$tmp/r-stop-$arch" "${small[@]}" \
    --dropout 0.1 --max-iters 5 --lr-decay-iters 10 >/dev/null 2>&1
  "$slope" train --out "$tmp/r-stop-$arch" --resume --max-iters 10 --threads 1 >/dev/null 2>&1 ||
    fail "$arch: resume failed"
  [[ "$(tail -n 1 "$tmp/r-full-$arch/log.jsonl" | grep -o '"train_loss":[^,]*,"val_loss":[^,]*')" == \
     "$(tail -n 1 "$tmp/r-stop-$arch/log.jsonl" | grep -o '"train_loss":[^,]*,"val_loss":[^,]*')" ]] ||
    fail "$arch: resumed losses differ"
  cmp -s "$tmp/r-full-$arch/model.safetensors" "$tmp/r-stop-$arch/model.safetensors" ||
    fail "$arch: resumed weights differ"
done

# 4. Bad input: one line, exit 1, nothing touched.
before="$(sums "$tmp/s2s")"
printf 'zq\nqz\n%.0s' {1..200} >"$tmp/other.txt"
"$slope" prepare --input "$tmp/other.txt" --out "$tmp/bad-vocab" >/dev/null
expect_error "encoder scheme on a GPT" "encoder scheme" \
  "$slope" train --pos alibi-symmetric --data "$tmp/text" --out "$tmp/x1" "${small[@]}" --max-iters 3
expect_error "causal alibi on an encoder" "alibi-symmetric" \
  "$slope" train --arch encoder --pos alibi --data "$tmp/text" --out "$tmp/x2" "${small[@]}" --max-iters 3
expect_error "odd heads, nonsymmetric" "even" \
  "$slope" train --arch encoder --pos alibi-nonsymmetric --n-head 3 --n-embd 18 --data "$tmp/text" \
  --out "$tmp/x3" --max-iters 3 --warmup-iters 1
expect_error "resume on another corpus" "another vocabulary" \
  "$slope" train --data "$tmp/bad-vocab" --out "$tmp/r-stop-encoder" --resume --max-iters 20
expect_error "occupied --out" "already holds" \
  "$slope" train --arch seq2seq --data "$tmp/g2p" --out "$tmp/s2s" "${small[@]}" --max-iters 3
expect_error "seq2seq on a text corpus" "prepare --task g2p" \
  "$slope" train --arch seq2seq --data "$tmp/text" --out "$tmp/x4" "${small[@]}" --max-iters 3
expect_error "encoder checkpoint sampled" "masked-LM encoder" \
  "$slope" sample --checkpoint "$tmp/mlm" --word ba
expect_error "--beam on a GPT-less call" "--word" \
  "$slope" sample --checkpoint "$tmp/s2s"
cp -r "$tmp/g2p" "$tmp/bad"
printf 'garbage' | dd of="$tmp/bad/test.bin" bs=1 seek=80 conv=notrunc 2>/dev/null
expect_error "corrupt pair shard" "test.bin" \
  "$slope" eval --checkpoint "$tmp/s2s" --data "$tmp/bad"
expect_error "wrong corpus for a G2P checkpoint" "prepare --task g2p" \
  "$slope" eval --checkpoint "$tmp/s2s" --data "$tmp/text"
[[ "$(sums "$tmp/s2s")" == "$before" ]] || fail "a failed command changed the checkpoint"
echo "cli encdec: all checks passed"
