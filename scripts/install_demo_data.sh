#!/usr/bin/env bash
# Installs the Debian packages with the real 3D images of the demo (see nninteractive_train/demo/locate.py):
#   mricron-data              Colin27 T1 + AAL atlas, INIA19 macaque T1 + NeuroMaps atlas   (~16 MB download)
#   invesalius-examples       Cranium.inv3: head CT                                         (~19 MB download)
#   insighttoolkit5-examples  KmeansTest_T1*: T1 head + k-means classes                     (~2 MB download)
#
# Usage: scripts/install_demo_data.sh [--extract | --check]
#   (default)  as root with apt-get: `apt-get install`; otherwise, or where a slim image's dpkg excludes
#              /usr/share/doc, `apt-get download` + `dpkg -x` into $NNI_DEMO_DATA/<package>/
#              ($NNI_DEMO_DATA defaults to ~/.cache/nninteractive_train/debian).
#   --extract  never install system-wide: always download + extract into $NNI_DEMO_DATA.
#   --check    install nothing; report what is found, exit 1 if a package is missing.
# Idempotent: a package whose files are already found (system-wide or extracted) is left alone.
set -euo pipefail

pkgs=(mricron-data invesalius-examples insighttoolkit5-examples)
# One file per package that proves it is there (the same paths as KEY_FILES in nninteractive_train/demo/locate.py).
declare -A key=(
  [mricron-data]=usr/share/mricron/templates/ch2.nii.gz
  [invesalius-examples]=usr/share/doc/invesalius-examples/examples/Cranium.inv3
  [insighttoolkit5-examples]=usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz
)
dest="${NNI_DEMO_DATA:-$HOME/.cache/nninteractive_train/debian}"
mode="${1:-auto}"
case "$mode" in auto|--extract|--check) ;; *) echo "usage: $0 [--extract | --check]" >&2; exit 2 ;; esac

where() {  # prints the root holding package $1's files, or nothing
  if [ -f "/${key[$1]}" ]; then echo "/"; elif [ -f "$dest/$1/${key[$1]}" ]; then echo "$dest/$1"; fi
}
missing() { for p in "${pkgs[@]}"; do [ -n "$(where "$p")" ] || echo "$p"; done; }

report() {
  local rc=0 p root dir
  for p in "${pkgs[@]}"; do
    root="$(where "$p")"
    if [ -z "$root" ]; then echo "MISSING  $p"; rc=1; continue; fi
    dir="${root%/}/$(dirname "${key[$p]}")"
    echo "found    $p: $dir ($(du -sh "$dir" | cut -f1))"
  done
  [ "$rc" = 0 ] || echo "install with: $0   (or as root: apt-get install ${pkgs[*]})"
  return $rc
}

if [ "$mode" = "--check" ]; then report; exit $?; fi
start=$SECONDS
mapfile -t todo < <(missing)
if [ ${#todo[@]} -eq 0 ]; then report; exit 0; fi
echo "demo data: need ${todo[*]}"

is_root() { [ "$(id -u)" = 0 ]; }
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "error: apt-get/dpkg not found; the demo's real images come from Debian packages (${todo[*]})." >&2
  echo "On a Debian/Ubuntu machine run: $0   -- the demo still runs on generated data without them." >&2
  exit 1
fi

if [ "$mode" = auto ] && is_root; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${todo[@]}" \
    || { apt-get update -q && apt-get install -y -q --no-install-recommends "${todo[@]}"; } \
    || echo "apt-get install failed; trying apt-get download + dpkg -x" >&2
  # Slim images exclude /usr/share/doc from dpkg: the package is installed but its example files are not.
  mapfile -t todo < <(missing)
fi

if [ ${#todo[@]} -gt 0 ]; then
  mkdir -p "$dest"
  tmp="$(mktemp -d "$dest/.download.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  if is_root && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi  # apt downloads as user _apt
  if ! (cd "$tmp" && apt-get download -q "${todo[@]}"); then
    if is_root; then
      apt-get update -q && (cd "$tmp" && apt-get download -q "${todo[@]}")
    else
      echo "error: apt-get download failed; the package lists may be missing: run 'sudo apt-get update'" >&2
      exit 1
    fi
  fi
  for p in "${todo[@]}"; do
    deb="$(ls "$tmp"/"${p}"_*.deb)"
    rm -rf "$dest/.$p.partial"
    dpkg -x "$deb" "$dest/.$p.partial"
    rm -rf "${dest:?}/$p"
    mv "$dest/.$p.partial" "$dest/$p"  # a rename: an interrupted run leaves no half-extracted package folder
  done
fi

report
echo "took $((SECONDS - start)) s"
