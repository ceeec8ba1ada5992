#!/usr/bin/env bash
# ctest bench_suite_ci: bench/run.sh --ci over items 1-3, then checks its outputs.
#   bench_ci_check.sh SOURCE_DIR BUILD_DIR OUT_DIR
set -uo pipefail
SRC="$1" BUILD="$2" OUT="$3"
for exe in bench/bench_geometry bench/bench_adapter bench/bench_model; do
  if [ ! -x "$BUILD/$exe" ]; then echo "SKIPPED: $BUILD/$exe is not built (cmake --build $BUILD)"; exit 77; fi
done
rm -rf "$OUT"
fail() { echo "FAIL: $*"; exit 1; }
"$SRC/bench/run.sh" --ci --build "$BUILD" --out "$OUT" --only geometry,adapter,model || fail "bench/run.sh --ci exited $?"
[ -s "$OUT/results.md" ] || fail "no results.md"
# every step ran and exited 0
awk -F'\t' '$2 != 0 { print "step " $1 " exit " $2; bad = 1 } END { exit bad }' "$OUT/raw/steps.tsv" || fail "a step failed"
# the tables are there: 9 geometry ops x 2 shapes, 7 adapter methods x 2 shapes, 3 model lines
[ "$(grep -c '^| [LP]' "$OUT/raw/geometry.md")" -ge 18 ] || fail "geometry table incomplete"
[ "$(grep -c '^| [0-9]' "$OUT/raw/adapter.md")" -ge 14 ] || fail "adapter table incomplete"
for line in 'forward (loss, no grad)' 'train step (all weights)' 'train step (frozen weights)'; do
  grep -q "^$line .* tok/s" "$OUT/raw/model.txt" || fail "model.txt: no '$line' line"
done
grep -q '^## 1. Geometry' "$OUT/results.md" && grep -q '^## 3. Model' "$OUT/results.md" || fail "results.md sections missing"
# the report parsed the tables (a drift between a bench's printf and make_report's parser left them out)
[ "$(grep -c '^| [LP][^|]* | [0-9]* x [0-9]* | [0-9.]* | [0-9.]* (' "$OUT/results.md")" -ge 18 ] || fail "results.md: geometry rows not parsed"
[ "$(grep -c '^| [0-9]* | [0-9]* | [a-z_ ]* | [0-9.]* (' "$OUT/results.md")" -ge 14 ] || fail "results.md: adapter rows not parsed"
[ "$(grep -c '^| \(forward (loss, no grad)\|train step (all weights)\|train step (frozen weights)\) | [0-9]' "$OUT/results.md")" -eq 3 ] \
  || fail "results.md: model rows not parsed"
PEER_PYTHON="${HYPLORA_BENCH_PYTHON:-/usr/bin/python3}"  # as bench/run.sh
if "$PEER_PYTHON" -c 'import torch' 2>/dev/null; then
  python3 - "$OUT/raw" <<'PY' || fail "peer cross-check"
import json, sys, os
raw = sys.argv[1]
for f in ("geometry_peer.json", "adapter_peer.json", "model_peer_crosscheck.json"):
    j = json.load(open(os.path.join(raw, f)))
    cc = j.get("crosscheck") or sys.exit(f"{f}: no cross-check")
    bad = [c for c in cc if not c["pass"]]
    if bad: sys.exit(f"{f}: disagreement {bad[0]}")
    if f != "model_peer_crosscheck.json" and not j.get("timings"): sys.exit(f"{f}: no peer timings")
    print(f"{f}: {len(cc)} cross-checked outputs agree")
if "ratio hyplora / PyTorch" not in open(os.path.join(raw, "model.txt")).read():
    sys.exit("model.txt: no PyTorch ratio")
PY
  # the cross-check must be able to fail: plant a 1e-3 relative error in one output of each file
  python3 - "$OUT/raw" <<'PY' || fail "could not plant errors"
import json, sys, os, glob
raw = sys.argv[1]
g = json.load(open(os.path.join(raw, "geometry_crosscheck.json")))
g["out Lorentz dist (d+1)"][100] *= 1.001
json.dump(g, open(os.path.join(raw, "planted_geometry.json"), "w"))
os.makedirs(os.path.join(raw, "planted_adapter"), exist_ok=True)
a = json.load(open(sorted(glob.glob(os.path.join(raw, "adapter_crosscheck", "adapter_hyplora_lorentz_d64_r8.json")))[0]))
i = max(range(len(a["out grads"])), key=lambda k: abs(a["out grads"][k]))
a["out grads"][i] *= 1.001
json.dump(a, open(os.path.join(raw, "planted_adapter", "adapter_hyplora_lorentz_d64_r8.json"), "w"))
m = json.load(open(os.path.join(raw, "model_crosscheck.json")))
m["loss"] *= 1.001
json.dump(m, open(os.path.join(raw, "planted_model.json"), "w"))
PY
  "$PEER_PYTHON" "$SRC/bench/peers/torch_geometry.py" --crosscheck "$OUT/raw/planted_geometry.json" > /dev/null
  [ $? -eq 3 ] || fail "torch_geometry.py did not flag a planted 1e-3 error"
  "$PEER_PYTHON" "$SRC/bench/peers/torch_hyplora.py" --crosscheck "$OUT/raw/planted_adapter" > /dev/null
  [ $? -eq 3 ] || fail "torch_hyplora.py did not flag a planted 1e-3 error"
  "$PEER_PYTHON" "$SRC/bench/peers/torch_llama.py" --crosscheck "$OUT/raw/planted_model.json" > /dev/null
  [ $? -eq 3 ] || fail "torch_llama.py did not flag a planted 1e-3 error"
  echo "peer cross-checks agree, and flag planted errors"
else
  echo "PyTorch not installed: peer cross-check not exercised (apt-get install python3-torch)"
  grep -q 'torch=missing' "$OUT/raw/machine.txt" || fail "machine.txt does not record the missing peer"
fi
# the dumps our drivers wrote for the peers are valid JSON (checked with or without PyTorch)
python3 - "$OUT/raw" <<'PY' || fail "a cross-check dump is not valid JSON"
import glob, json, os, sys
raw = sys.argv[1]
files = [os.path.join(raw, "geometry_crosscheck.json"), os.path.join(raw, "model_crosscheck.json")]
files += sorted(glob.glob(os.path.join(raw, "adapter_crosscheck", "*.json")))
if len(files) < 3:
    sys.exit("no adapter dumps")
for f in files:
    json.load(open(f))
print(f"{len(files)} cross-check dumps are valid JSON")
PY
# a typo in --only is an error before any work (it ran nothing and exited 0)
"$SRC/bench/run.sh" --ci --build "$BUILD" --out "$OUT/typo" --only geomtry 2> /dev/null
[ $? -eq 2 ] || fail "--only geomtry was accepted"
[ ! -e "$OUT/typo" ] || fail "a refused run made its --out folder"
# a second run into the same folder: nothing of the first run stays to be reported as new
touch "$OUT/raw/stale-from-the-first-run"
"$SRC/bench/run.sh" --ci --build "$BUILD" --out "$OUT" --only geometry > /dev/null 2>&1 || fail "second run into $OUT"
[ ! -e "$OUT/raw/stale-from-the-first-run" ] && [ ! -e "$OUT/raw/adapter.md" ] || fail "the first run's files were kept"
grep -q "^cd " "$OUT/raw/commands.sh" && grep -q "OMP_WAIT_POLICY=" "$OUT/raw/commands.sh" || fail "commands.sh lacks its cd / environment"
grep -q "make_report.py \.$" "$OUT/raw/commands.sh" || fail "commands.sh does not re-create the report"
echo "bench suite --ci: OK ($OUT/results.md)"
