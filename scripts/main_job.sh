#!/usr/bin/env bash
# The main job: installs everything, builds in Release, then runs the attention benchmark in
# quick mode. (Until the trainer exists; it will take over this script.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

if [[ -f bench/attention.py ]]; then
  echo "[main] attention benchmark (quick): .venv/bin/python bench/attention.py --quick"
  .venv/bin/python bench/attention.py --quick
else
  echo "[main] bench/attention.py does not exist yet: nothing to run after the build"
fi
