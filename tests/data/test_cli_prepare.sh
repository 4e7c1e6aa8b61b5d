#!/usr/bin/env bash
# `slope prepare` as a user runs it: success, refusal without --force, bad flags, --help.
# Usage: test_cli_prepare.sh PATH/TO/slope
set -euo pipefail
slope="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

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
"$slope" prepare --help | grep -q -- '--vocab-size' || fail "--help lacks --vocab-size"
echo "cli prepare: all checks passed"
