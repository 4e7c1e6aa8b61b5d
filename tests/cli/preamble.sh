# What every CLI test sources first (tests/cli/test_cli_*.sh): strict mode, the binary under test
# in $slope (the test's first argument), a fresh directory $tmp removed on exit, and the checks
# the tests share.
# Usage, at the top of a test: source "$(dirname "${BASH_SOURCE[0]}")/preamble.sh"
set -euo pipefail
slope="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# sums DIR: a checksum line per file below DIR, to show that a refused command changed nothing.
sums() { (cd "$1" && find . -type f | sort | xargs cksum); }

# expect_error DESCRIPTION NEEDLE COMMAND...: exit 1, stderr's last line is the one "slope: "
# line and contains NEEDLE.
expect_error() {
  local what="$1" needle="$2" rc=0
  shift 2
  "$@" >/dev/null 2>"$tmp/stderr" || rc=$?
  [[ $rc == 1 ]] || fail "$what: exit $rc, expected 1 ($(cat "$tmp/stderr"))"
  [[ "$(grep -c '^slope: ' "$tmp/stderr")" == 1 ]] || fail "$what: not one error line: $(cat "$tmp/stderr")"
  tail -n 1 "$tmp/stderr" | grep -q '^slope: ' || fail "$what: the error is not the last line"
  grep -q -- "$needle" "$tmp/stderr" || fail "$what: no '$needle' in: $(cat "$tmp/stderr")"
}
