#!/usr/bin/env bash
# Item 4 of bench/run.sh: accuracy of base, LoRA, HypLoRA (Lorentz, Poincare), paper-compatible and
# naive on the built-in task by depth (several seeds, `hyplora sweep`: same budget per cell, one
# learning rate (the sweep's default), mean / std / 95% CI) and on the real test sets (`hyplora eval` of the
# base model and of each arm's first-seed adapter trained on the built-in task: a transfer figure).
#
#   bench/report/accuracy.sh HYPLORA_EXE quick|full RAW_DIR [SEEDS]
#
# Writes RAW_DIR/accuracy/accuracy.md (read by make_report.py), the sweep folder, eval reports, and
# appends its commands to RAW_DIR/commands.sh and its steps to RAW_DIR/steps.tsv.
set -uo pipefail
HYP="$1" MODE="$2" RAW="$3" NSEEDS="${4:-}"
A="$RAW/accuracy"
mkdir -p "$A"
T="${OMP_NUM_THREADS:-$(nproc)}"
VARIANTS=lora,naive,hyplora_lorentz,hyplora_poincare,paper
if [ "$MODE" = quick ]; then
  NSEEDS="${NSEEDS:-1}"; SW=(--steps 20 --train-problems 200 --val-problems 16 --test-problems 30); LIMIT=10
else
  NSEEDS="${NSEEDS:-3}"; SW=(--steps 300); LIMIT=200
fi
SEEDS=$(seq -s, 0 $((NSEEDS - 1)))
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }
step() {  # NAME OUTFILE CMD...
  local name="$1" outfile="$2"; shift 2
  # commands.sh runs from the results folder (RAW's parent): outputs relative to it
  printf '%q ' "$@" >> "$RAW/commands.sh"; printf ' > %q\n' "$(basename "$RAW")/${outfile#"$RAW"/}" >> "$RAW/commands.sh"
  log "$name: $*"
  local t0=$SECONDS rc
  "$@" > "$outfile.tmp" 2> "$outfile.err"; rc=$?
  mv "$outfile.tmp" "$outfile"  # whole: the step table says whether it failed
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" "raw/accuracy/$(basename "$outfile")" >> "$RAW/steps.tsv"
  [ $rc -ne 0 ] && { log "$name: exit $rc"; tail -5 "$outfile.err" >&2; }
  return $rc
}

status=0
if "$HYP" sweep --help >/dev/null 2>&1; then
  step accuracy-sweep "$A/sweep.txt" "$HYP" sweep --out "$A/sweep" --variants "$VARIANTS" --curvatures 1 \
      --seeds "$SEEDS" "${SW[@]}" --threads "$T" --quiet || status=1
else
  log "this hyplora has no sweep command: built-in task by depth not measured"
  echo "accuracy-sweep	skipped (no sweep command)	0	-" >> "$RAW/steps.tsv"
fi

# real test sets: base model and the first seed's adapter of each arm (trained on the built-in task)
REAL=(--data mawps-test --data gsm8k-test --limit "$LIMIT")
step accuracy-real-base "$A/real_base.txt" "$HYP" eval "${REAL[@]}" --threads "$T" --quiet --out "$A/real_base.json" || status=1
if [ -d "$A/sweep/runs" ]; then
  for d in "$A"/sweep/runs/*-s0; do
    [ -f "$d/adapter_best.safetensors" ] || continue
    arm="$(basename "$d")"
    # a diverged cell keeps its run folder and the adapter of its last good validation: not a result
    if grep -q '"diverged": true' "$A/sweep/cells/$arm.json" 2>/dev/null; then
      log "accuracy-real-$arm: the cell diverged (sweep/cells/$arm.json): not evaluated"
      printf 'accuracy-real-%s\tskipped (cell diverged)\t0\t-\n' "$arm" >> "$RAW/steps.tsv"
      continue
    fi
    step "accuracy-real-$arm" "$A/real_$arm.txt" "$HYP" eval "${REAL[@]}" --adapter "$d/adapter_best.safetensors" \
        --threads "$T" --quiet --out "$A/real_$arm.json" || status=1
  done
fi

# accuracy.md: the sweep's summary, then the real-set table
python3 - "$A" "$MODE" "$SEEDS" "$LIMIT" <<'PY' || status=1
import glob, json, os, shutil, sys
a, mode, seeds, limit = sys.argv[1:5]
md = []
summ = os.path.join(a, "sweep", "summary.md")
if os.path.exists(summ):
    md += [f"Built-in task by depth (`hyplora sweep`, seeds {seeds}, mode {mode}); the sweep's own summary:", ""]
    text = open(summ).read()
    # demote the sweep's headings below this section's level
    md += [("###" + l[1:]) if l.startswith("#") else l for l in text.splitlines()]
    for p in ("accuracy_by_depth.png", "val_loss.png"):
        if os.path.exists(os.path.join(a, "sweep", p)):
            shutil.copy(os.path.join(a, "sweep", p), os.path.join(a, "sweep_" + p))
            md.append(f"\n![{p}](sweep_{p})")
else:
    md.append("_built-in task: the sweep did not run (see the step table)_")
rows = []
for f in sorted(glob.glob(os.path.join(a, "real_*.json"))):
    arm = os.path.basename(f)[5:-5]
    j = json.load(open(f))
    cells = {d["name"]: d for d in j["datasets"]}
    rows.append((arm, cells))
if rows:
    names = sorted({n for _, c in rows for n in c})
    md += ["", f"Real test sets (first {limit} problems of each; greedy, last number; adapters are the first seed's, "
           "trained on the built-in task, so these figures measure transfer):", "",
           "| arm | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for arm, c in rows:
        cell = lambda n: (f"{100 * c[n]['correct'] / max(c[n]['total'], 1):.1f}% ({c[n]['correct']}/{c[n]['total']})"
                          if n in c and "total" in c[n] else "—")
        md.append(f"| {arm} | " + " | ".join(cell(n) for n in names) + " |")
tmp = os.path.join(a, "accuracy.md.tmp")
open(tmp, "w").write("\n".join(md) + "\n")
os.replace(tmp, os.path.join(a, "accuracy.md"))
PY
exit $status
