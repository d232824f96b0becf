#!/usr/bin/env bash
# The test command: sets up ./.venv on a fresh machine (and, as root with apt-get, Debian's slurm-wlm and munge for
# the SLURM tests), then runs the whole suite on the CPU. Where SLURM cannot be installed its tests are skipped
# with that reason, unless NNI_REQUIRE_SLURM=1 (CI) makes that an error.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$root/scripts/setup_env.sh"
cd "$root"
if ! bash "$root/scripts/install_slurm.sh"; then
  if [ "${NNI_REQUIRE_SLURM:-0}" = 1 ]; then
    echo "test: NNI_REQUIRE_SLURM=1 but SLURM is not available" >&2
    exit 1
  fi
  echo "test: the SLURM tests will be skipped" >&2
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
python -m pytest "$@"
