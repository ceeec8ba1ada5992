#!/usr/bin/env bash
# The README's first command, the project's main job:
#   install what is missing, configure, build the `hyplora` CLI only, then run
#   `hyplora demo`: fine-tune stories260K with LoRA and with HypLoRA (Lorentz) on the built-in story
#   arithmetic task, evaluate base / LoRA / HypLoRA on held-out problems by depth, print the table,
#   write runs/demo/{demo.png, report.json}.
#
#   scripts/run_main.sh [extra `hyplora demo` flags, e.g. --steps 400 --threads 2]
# Environment: BUILD (build folder, default build/), JOBS (parallel build jobs, default: all cores),
#              OUT (demo output folder, default runs/demo), HYPLORA_SHARED_DIR / HYPLORA_MODEL (model).
# Budget: under 15 minutes on a fresh 2-core machine, build included (docs/results.md has the timing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"
OUT="${OUT:-$ROOT/runs/demo}"
start=$(date +%s)

"$ROOT/scripts/setup.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHYPLORA_CUDA=OFF
cmake --build "$BUILD" --target hyplora_cli -j "$JOBS"
built=$(date +%s)
echo "[run_main] setup + configure + build: $((built - start)) s"

"$BUILD/bin/hyplora" demo --out "$OUT" "$@"
end=$(date +%s)
echo "[run_main] demo: $((end - built)) s; total (setup + build + demo): $((end - start)) s"
