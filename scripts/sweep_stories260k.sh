#!/usr/bin/env bash
# The stories260K sweeps of docs/science.md: two processes (one thread each) share one results folder
# through --shard; each finished cell is recorded in OUT/cells/<cell-id>.json, so running this script
# again resumes where it stopped. Then one aggregation pass writes OUT/summary.md and the plots.
#   usage: scripts/sweep_stories260k.sh [BIN] [OUT] [GRID]
#   GRID: scripts/sweep_stories260k.json (built-in task, the default) or scripts/sweep_mawps.json
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BIN="${1:-$here/../build/bin/hyplora}"
OUT="${2:-$here/../runs/science-sweep}"
GRID="${3:-$here/sweep_stories260k.json}"
mkdir -p "$OUT"
"$BIN" sweep --grid "$GRID" --out "$OUT" --threads 1 --shard 0/2 > "$OUT/shard0.log" 2>&1 &
p0=$!
"$BIN" sweep --grid "$GRID" --out "$OUT" --threads 1 --shard 1/2 > "$OUT/shard1.log" 2>&1 &
p1=$!
status=0
wait $p0 || status=$?
wait $p1 || status=$?
if [ "$status" -ne 0 ]; then
  echo "a shard failed (exit $status): see $OUT/shard0.log and $OUT/shard1.log; run again to resume" >&2
fi
"$BIN" sweep --grid "$GRID" --out "$OUT" --aggregate-only
exit "$status"
