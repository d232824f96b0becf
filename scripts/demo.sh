#!/usr/bin/env bash
# The main job: sets up ./.venv on a fresh machine, then runs the demo (see README, "Demo").
# Folders default to ./demo_output; set nnUNet_raw / nnUNet_preprocessed / nnUNet_results to use others.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$root/scripts/setup_env.sh"
cd "$root"
out="${NNI_DEMO_OUT:-$root/demo_output}"
export nnUNet_raw="${nnUNet_raw:-$out/nnUNet_raw}"
export nnUNet_preprocessed="${nnUNet_preprocessed:-$out/nnUNet_preprocessed}"
export nnUNet_results="${nnUNet_results:-$out/nnUNet_results}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# The real images come from Debian packages; without them the demo says so and runs on generated data only.
bash "$root/scripts/install_demo_data.sh" || echo "demo: Debian packages unavailable; continuing with generated data"
python scripts/demo.py --out "$out" "$@"
