#!/usr/bin/env bash
# ctest bench_peer_failure: bench/run.sh --ci --only model with a PyTorch peer that fails (a fake
# python whose `import torch` works and whose peer runs print no JSON). Our own model figures must stay
# in raw/model.txt and in the report, and the failure must be listed as the peer's, not as the model's
# (a failed peer used to move model.txt to model.txt.failed: the report said "not run").
#   bench_peer_failure_check.sh SOURCE_DIR BUILD_DIR OUT_DIR
set -uo pipefail
SRC="$1" BUILD="$2" OUT="$3"
[ -x "$BUILD/bench/bench_model" ] || { echo "SKIPPED: $BUILD/bench/bench_model is not built"; exit 77; }
rm -rf "$OUT"
mkdir -p "$OUT"
fail() { echo "FAIL: $*"; exit 1; }
FAKE="$OUT/fake_python"
cat > "$FAKE" <<'SH'
#!/bin/sh
# `-c 'import torch'` succeeds; every peer run fails without JSON
[ "$1" = "-c" ] && exit 0
echo "Traceback (most recent call last): a peer that crashed" >&2
echo "not json"
exit 1
SH
chmod +x "$FAKE"
HYPLORA_BENCH_PYTHON="$FAKE" "$SRC/bench/run.sh" --ci --build "$BUILD" --out "$OUT/run" --only model
rc=$?
[ "$rc" -ne 0 ] || fail "bench/run.sh exited 0 although the peer failed"
R="$OUT/run"
[ -s "$R/raw/model.txt" ] || fail "raw/model.txt missing: our figures were thrown away with the peer's failure"
[ ! -e "$R/raw/model.txt.failed" ] || fail "model.txt was moved to model.txt.failed"
awk -F'\t' '$1 == "model" && $2 != 4 { bad = 1 } END { exit bad }' "$R/raw/steps.tsv" || fail "the model step's status is not 4 (peer failed)"
grep -qx 'model-peer' "$R/raw/failed.txt" || fail "failed.txt does not name model-peer"
! grep -qx 'model' "$R/raw/failed.txt" || fail "failed.txt names the model step itself"
[ "$(grep -c '^| \(forward (loss, no grad)\|train step (all weights)\|train step (frozen weights)\) | [0-9]' "$R/results.md")" -eq 3 ] \
  || fail "results.md: our model rows are missing"
echo "bench peer failure: OK (our figures kept, model-peer listed as failed)"
