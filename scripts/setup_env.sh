#!/usr/bin/env bash
# Creates ./.venv (if missing) and installs the package with its test extras, CPU-only torch pinned by
# constraints.txt. Sourced by scripts/test.sh and scripts/demo.sh; safe to run again (pip skips what is there).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NNI_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
stamp="$venv/.nninteractive_train_installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ] || [ "$root/constraints.txt" -nt "$stamp" ]; then
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -c "$root/constraints.txt" -e "$root[test,bench]"
  touch "$stamp"
fi
