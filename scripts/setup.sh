#!/usr/bin/env bash
# Installs the Debian packages hyplora needs. Idempotent: installs only what is missing.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config
      libxtensor-dev libxtensor-blas-dev xtl-dev libopenblas-dev
      catch2 libthrust-dev nlohmann-json3-dev libcli11-dev gnuplot-nox
      clang libclang-rt-14-dev libomp-dev
      python3 curl ca-certificates)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[setup] all packages present"
fi
