#!/usr/bin/env bash
# Debian's slurm-wlm and munge for the SLURM tests (tests/slurm/ start a one-node cluster of their own as root).
# A no-op when they are present; quiet (log in /tmp/nni_apt_slurm.log). Exits 1 when they are missing and cannot
# be installed (not root, no apt-get, no mirror): the caller decides whether that is fatal.
set -uo pipefail
have() { PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null; }
if have sbatch && have slurmctld && have slurmd && have munged; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "slurm: slurm-wlm and munge are missing and cannot be installed here (needs root and apt-get)" >&2
  exit 1
fi
echo "slurm: installing slurm-wlm and munge for the SLURM tests (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge; } \
     >/tmp/nni_apt_slurm.log 2>&1; then
  tail -n 20 /tmp/nni_apt_slurm.log >&2
  echo "slurm: apt-get install slurm-wlm munge failed (log above)" >&2
  exit 1
fi
