#!/usr/bin/env bash
# Prepares a Debian 12 machine for openna and builds it: installs whichever of the packages below
# are missing (apt-get, through sudo when not root; nothing when all are there), then configures
# and builds this checkout in ./build (Release, all cores). Usage: bash tools/bootstrap.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${OPENNA_BUILD_DIR:-$root/build}

packages=(pocl-opencl-icd ocl-icd-opencl-dev opencl-headers opencl-clhpp-headers clinfo
  libboost-program-options-dev libgtest-dev nlohmann-json3-dev cmake make g++ pkg-config)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} > 0)); then
  echo "bootstrap: installing ${missing[*]}"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
  "${as_root[@]}" apt-get update
  # env inside sudo: sudo resets the environment, and apt must not stop to ask questions.
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)"
