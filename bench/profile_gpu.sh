#!/usr/bin/env bash
# GPU time of every kernel of one adapter step (Nsight Compute), to see where a step's time goes:
#
#   bench/profile_gpu.sh BUILD_DIR OUTDIR D R [TOKENS]
#
# Runs `bench_adapter_cuda --profile --shape D,R` (after a warm-up, two eager steps of each method:
# frozen linear, lora, hyplora_lorentz, hyplora_poincare, paper) under `ncu` and writes
# OUTDIR/kernels_dD_rR.csv: one line per kernel launch in order, with its duration.
set -euo pipefail
build=${1:?usage: profile_gpu.sh BUILD_DIR OUTDIR D R [TOKENS]}
out=${2:?}; d=${3:?}; r=${4:?}; tokens=${5:-512}
ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
[ -x "$ncu" ] || { echo "ncu not found"; exit 77; }
mkdir -p "$out"
"$ncu" --metrics gpu__time_duration.sum --csv --print-units base \
  "$build/bench/bench_adapter_cuda" --profile --tokens "$tokens" --shape "$d,$r" > "$out/kernels_d${d}_r${r}.csv"
