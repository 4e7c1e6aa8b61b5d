#!/usr/bin/env bash
# Installs everything slope needs and builds it in Release. Idempotent: a second run only
# checks and rebuilds what changed.
#
#   bash scripts/setup.sh             Debian packages, Python venv, CMake build, `slope` module
#   bash scripts/setup.sh --no-build  Debian packages and the Python venv only
#
# The venv lives outside the clone, at $HOME/.cache/slope/venv-<hash of requirements.txt>,
# so fresh clones (CI) reuse it; .venv in the repo root is a symlink to it.
set -euo pipefail

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
say() { printf '[setup] %s\n' "$*"; }

# ---- (a) Debian packages ---------------------------------------------------------------------
apt_packages=(
  g++ cmake ninja-build
  libopenblas-openmp-dev libhwy-dev libcli11-dev libfmt-dev nlohmann-json3-dev
  libsentencepiece-dev sentencepiece
  libgtest-dev libbenchmark-dev
  gnuplot-nox
  python3-venv python3-dev
  bible-kjv bible-kjv-text fortunes
)

missing=()
for pkg in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  say "Debian packages: all ${#apt_packages[@]} present"
else
  say "Debian packages: installing ${missing[*]}"
  sudo=()
  if [[ "$(id -u)" != 0 ]]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# ---- (b) Python virtual environment, cached outside the clone --------------------------------
home="${HOME:-$(getent passwd "$(id -un)" | cut -d: -f6)}"
cache="$home/.cache/slope"
req_hash="$(sha256sum requirements.txt | cut -c1-16)"
venv="$cache/venv-$req_hash"
marker="$venv/.slope-install-complete"  # written last: without it the install is redone
mkdir -p "$cache"

# One setup at a time per machine: two concurrent installs into one venv break it.
exec 9>"$cache/setup.lock"
flock 9

if [[ -f "$marker" ]] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  say "Python venv: $venv (cached)"
else
  say "Python venv: creating $venv (first time: downloads torch, a few minutes)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r requirements.txt
  "$venv/bin/python" -c 'import numpy, pytest, nanobind, scikit_build_core, torch'
  date -u +%FT%TZ >"$marker"
  say "Python venv: done"
  # Venvs for older requirements.txt files are ~5 GB each (torch): keep only the current one.
  for old in "$cache"/venv-*; do
    if [[ -d "$old" && "$old" != "$venv" ]]; then
      say "Python venv: removing the outdated $old"
      rm -rf "$old"
    fi
  done
fi
ln -sfn "$venv" "$root/.venv"

if ((build == 0)); then
  say "--no-build: skipping the build"
  exit 0
fi

# ---- (c) Release build and the `slope` Python module -----------------------------------------
say "CMake: configure and build (Release) in build/"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$venv/bin/python" \
  --no-warn-unused-cli
cmake --build build

if [[ -f pyproject.toml ]]; then
  say "Python module: pip install --no-build-isolation ."
  "$venv/bin/python" -m pip install -q --no-build-isolation .
else
  say "Python module: no pyproject.toml yet, skipping 'pip install .'"
fi
say "done"
