#!/usr/bin/env bash
# `slope prepare` as a user runs it: success, refusal without --force, bad flags, --help.
# Usage: test_cli_prepare.sh PATH/TO/slope
source "$(dirname "${BASH_SOURCE[0]}")/preamble.sh"

printf 'emma\nolivia\nava\nisabella\nsophia\nmia\nzoë\nliam\nnoah\n' >"$tmp/names.txt"

# 1. A small corpus prepares, and says what it wrote.
"$slope" prepare --input "$tmp/names.txt" --out "$tmp/out" >"$tmp/stdout"
grep -q 'char tokenizer' "$tmp/stdout" || fail "no summary: $(cat "$tmp/stdout")"
for f in meta.json train.bin val.bin tokenizer/tokenizer.json; do
  [[ -f "$tmp/out/$f" ]] || fail "missing $f"
done
[[ "$(head -c 8 "$tmp/out/train.bin")" == SLOPETOK ]] || fail "train.bin has no magic"

# 2. Again without --force: one line "slope: ...", exit 1, first result untouched.
before="$(cksum <"$tmp/out/train.bin")"
rc=0
"$slope" prepare --input "$tmp/names.txt" --out "$tmp/out" 2>"$tmp/stderr" || rc=$?
[[ $rc == 1 ]] || fail "second run: exit $rc, expected 1"
[[ "$(wc -l <"$tmp/stderr")" == 1 ]] || fail "expected one line, got: $(cat "$tmp/stderr")"
grep -q '^slope: .*--force' "$tmp/stderr" || fail "unexpected message: $(cat "$tmp/stderr")"
[[ "$(cksum <"$tmp/out/train.bin")" == "$before" ]] || fail "train.bin changed"
"$slope" prepare --input "$tmp/names.txt" --out "$tmp/out" --force --tokenizer char >/dev/null

# 3. An unknown flag, a missing required flag, a bad choice: non-zero, one line.
for args in "--input $tmp/names.txt --out $tmp/o2 --no-such-flag" "--out $tmp/o2" \
            "--input $tmp/names.txt --out $tmp/o2 --tokenizer wordpiece"; do
  rc=0
  # shellcheck disable=SC2086
  "$slope" prepare $args 2>"$tmp/stderr" >/dev/null || rc=$?
  [[ $rc != 0 ]] || fail "'$args' succeeded"
  grep -q '^slope: ' "$tmp/stderr" || fail "'$args': unexpected message: $(cat "$tmp/stderr")"
  [[ ! -e "$tmp/o2" ]] || fail "'$args' wrote $tmp/o2"
done

# 4. An empty input: error naming it, nothing written.
: >"$tmp/empty.txt"
rc=0
"$slope" prepare --input "$tmp/empty.txt" --out "$tmp/o3" 2>"$tmp/stderr" || rc=$?
[[ $rc == 1 ]] || fail "empty input: exit $rc"
grep -q 'no text in .*empty.txt' "$tmp/stderr" || fail "empty input: $(cat "$tmp/stderr")"
[[ ! -e "$tmp/o3" ]] || fail "empty input wrote $tmp/o3"

# 5. --help explains the flags.
"$slope" prepare --help >"$tmp/help"
for flag in --vocab-size --task --test-fraction --keep-stress; do
  grep -q -- "$flag" "$tmp/help" || fail "--help lacks $flag"
done

# 6. --task g2p: a small dictionary becomes pair shards; the other task's flags are refused.
{
  printf 'a AH0\na(2) EY1\nread R IY1 D # verb\nread(2) R EH1 D\n'
  for w in b d f g k l m n p s t v z; do printf '%s%s B AH1 %s\n' "$w" "$w" "${w^^}"; done
} >"$tmp/cmudict.txt"
"$slope" prepare --task g2p --input "$tmp/cmudict.txt" --out "$tmp/g2p" --keep-stress >"$tmp/stdout"
grep -q 'g2p pairs' "$tmp/stdout" || fail "g2p: no summary: $(cat "$tmp/stdout")"
for f in meta.json src_vocab.json tgt_vocab.json train.bin val.bin test.bin; do
  [[ -f "$tmp/g2p/$f" ]] || fail "g2p: missing $f"
done
[[ "$(head -c 8 "$tmp/g2p/train.bin")" == SLOPEPAR ]] || fail "g2p: train.bin has no magic"
grep -q '"AH0"' "$tmp/g2p/tgt_vocab.json" || fail "g2p: --keep-stress lost the stress digits"
for args in "--input $tmp/names.txt --out $tmp/o4 --keep-stress" \
            "--input $tmp/names.txt --out $tmp/o4 --test-fraction 0.1" \
            "--task g2p --input $tmp/cmudict.txt --out $tmp/o4 --tokenizer bpe" \
            "--task g2p --input $tmp/cmudict.txt $tmp/names.txt --out $tmp/o4" \
            "--task g2p --input $tmp/names.txt --out $tmp/o4"; do
  rc=0
  # shellcheck disable=SC2086
  "$slope" prepare $args 2>"$tmp/stderr" >/dev/null || rc=$?
  [[ $rc == 1 ]] || fail "'$args': exit $rc, expected 1"
  [[ "$(wc -l <"$tmp/stderr")" == 1 ]] || fail "'$args': expected one line: $(cat "$tmp/stderr")"
  grep -q '^slope: ' "$tmp/stderr" || fail "'$args': unexpected message: $(cat "$tmp/stderr")"
  [[ ! -e "$tmp/o4" ]] || fail "'$args' wrote $tmp/o4"
done
echo "cli prepare: all checks passed"
