#!/usr/bin/env bash
# The README's test command: install what is missing, configure, build, run every test with ctest.
#   scripts/test.sh [build-dir] [extra cmake args...]
# Environment: HYPLORA_SHARED_DIR (models, data, reference outputs; default ../shared),
#              JOBS (parallel build jobs; default: number of cores).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"; shift || true
JOBS="${JOBS:-$(nproc)}"
"$ROOT/scripts/setup.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHYPLORA_CUDA=OFF "$@"
cmake --build "$BUILD" -j "$JOBS"
ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" --timeout 600
