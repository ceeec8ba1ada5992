#!/usr/bin/env bash
# The bench suite in one command (docs/bench.md):
#
#   bench/run.sh [--quick|--full] [--ci] [--build DIR] [--out DIR] [--threads N] [--only LIST] [--seeds N]
#
#   1 geometry   batched expmap0/logmap0/dist, Lorentz and Poincare, GB/s beside memcpy (bench_geometry)
#   2 adapter    forward+backward per variant beside LoRA and the frozen layer (bench_adapter)
#   3 model      stories15M-shaped forward / training step beside the sgemm rate, and the training step
#                with each adapter kind attached against LoRA's (stories15M and stories260K shapes) (bench_model)
#   4 accuracy   base, LoRA, HypLoRA (Lorentz, Poincare), paper-compatible, naive: built-in task by
#                depth and the real test sets, several seeds (hyplora sweep); --quick: a tiny run;
#                --ci: skipped
# Peers (bench/peers/, PyTorch CPU with /usr/bin/python3): the same work with the same threads in the
# same run, and a cross-check of the outputs on identical inputs (files our drivers --dump).
# Nothing is installed: without torch the peers are skipped with a note on how to get it.
#
# --quick  a few minutes; --full (default) as long as it needs; --ci tiny sizes, no timing claims,
# exit status non-zero only when a step fails to run or a peer cross-check disagrees beyond its
# float32-epsilon tolerance. Results: OUT/results.md, OUT/*.png|svg, OUT/raw/ (every output, the
# commands in OUT/raw/commands.sh).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE=full CI=0 BUILD="$ROOT/build" OUT="" THREADS="" ONLY="geometry,adapter,model,accuracy" SEEDS=""
PYTHON="${HYPLORA_BENCH_PYTHON:-/usr/bin/python3}"
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    --ci) CI=1 ;;
    --build) BUILD="${2:?--build needs a folder}"; shift ;;
    --out) OUT="${2:?--out needs a folder}"; shift ;;
    --threads) THREADS="${2:?--threads needs a number}"; shift ;;
    --only) ONLY="${2:?--only needs a list}"; shift ;;
    --seeds) SEEDS="${2:?--seeds needs a number}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ "$CI" = 1 ] && MODE=quick
die() { echo "bench/run.sh: $*" >&2; exit 2; }
for step in ${ONLY//,/ }; do
  case "$step" in geometry|adapter|model|accuracy) ;; *) die "--only: unknown step '$step' (steps: geometry,adapter,model,accuracy)" ;; esac
done
[ -z "${ONLY//,/}" ] && die "--only: no step given"
positive() {  # OPTION VALUE: empty (unset), or digits whose value is not 0 ("00" passed the old pattern)
  [ -z "$2" ] && return 0
  case "$2" in *[!0-9]*) die "$1 must be a positive integer, got '$2'" ;; esac
  [ "${#2}" -le 9 ] || die "$1 must be a positive integer of at most 9 digits, got '$2'"
  [ "$((10#$2))" -gt 0 ] || die "$1 must be a positive integer, got '$2'"
}
positive --threads "$THREADS"
positive --seeds "$SEEDS"
BUILD="$(cd "$BUILD" 2>/dev/null && pwd)" || die "build folder not found (--build)"
OUT="${OUT:-$ROOT/bench-results/$(date -u +%Y%m%d-%H%M%S)-$MODE}"
# A folder of an earlier run is emptied of what that run wrote (its raw outputs, report and plots
# would otherwise stand in the new report as if measured now); any other non-empty folder is refused.
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
  if [ -f "$OUT/raw/machine.txt" ]; then
    rm -rf "$OUT/raw" "$OUT/results.md" && rm -f "$OUT"/*.png "$OUT"/*.svg || die "cannot clear $OUT"
  else
    die "--out $OUT is not empty and holds no earlier bench run; give a new or empty folder"
  fi
fi
mkdir -p "$OUT/raw" || exit 2
OUT="$(cd "$OUT" && pwd)"
RAW="$OUT/raw"
THREADS="${THREADS:-$(getconf _NPROCESSORS_ONLN)}"  # all cores (nproc honours OMP_NUM_THREADS)
export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
# OpenMP threads sleep instead of spinning between parallel loops: our row kernels run between
# OpenBLAS calls, and a spinning OpenMP team takes the cores OpenBLAS's threads need (measured:
# HypLoRA / LoRA 1.08-1.13 at d = 4096 with the default policy, 1.00-1.01 with passive; docs/adapters.md).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
export HYPLORA_SHARED_DIR="${HYPLORA_SHARED_DIR:-$(cd "$ROOT/.." && pwd)/shared}"
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

FAILED=()          # steps that failed to run
DISAGREE=()        # peer cross-checks beyond tolerance
{  # commands.sh re-runs each step from anywhere, with this run's environment
  echo "#!/usr/bin/env bash"
  echo "# the commands of this bench run ($(date -u '+%Y-%m-%d %H:%M UTC')); outputs relative to the results folder"
  printf 'cd %q\n' "$OUT"
  printf 'export OMP_NUM_THREADS=%q OPENBLAS_NUM_THREADS=%q MKL_NUM_THREADS=%q OMP_WAIT_POLICY=%q HYPLORA_SHARED_DIR=%q\n' \
    "$OMP_NUM_THREADS" "$OPENBLAS_NUM_THREADS" "$MKL_NUM_THREADS" "$OMP_WAIT_POLICY" "$HYPLORA_SHARED_DIR"
} > "$RAW/commands.sh"
: > "$RAW/steps.tsv"   # step <tab> status <tab> seconds <tab> output file
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

# run STEP OUTFILE CMD...: runs CMD, stdout -> OUTFILE, stderr -> OUTFILE.err; records the command.
run() {
  local step="$1" outfile="$2"; shift 2
  printf '%q ' "$@" >> "$RAW/commands.sh"; printf ' > %q\n' "${outfile#$OUT/}" >> "$RAW/commands.sh"
  log "$step: $*"
  local t0=$SECONDS rc
  "$@" > "$outfile.tmp" 2> "$outfile.err"
  rc=$?
  # exit status 4: the step's own figures are complete and only its in-run peer failed (bench_model
  # --peer): the figures enter the report, the peer is listed as failed by the caller
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ]; then
    mv "$outfile.tmp" "$outfile"
  else  # a failed step's partial output is kept for reading but never enters the report
    mv "$outfile.tmp" "$outfile.failed"
  fi
  printf '%s\t%s\t%s\t%s\n' "$step" "$rc" "$((SECONDS - t0))" "${outfile#$OUT/}" >> "$RAW/steps.tsv"
  if [ "$rc" -ne 0 ]; then log "$step: exit status $rc (see ${outfile#$OUT/}.err and .failed)"; tail -5 "$outfile.err" >&2; fi
  return $rc
}
need_exe() {
  if [ ! -x "$BUILD/$1" ]; then
    log "missing $BUILD/$1: build it (cmake --build $BUILD --target $(basename "$1"))"
    FAILED+=("$(basename "$1") not built"); return 1
  fi
}

# ---- machine, commit, peers ------------------------------------------------------------------------
{
  echo "date_utc=$(date -u '+%Y-%m-%d %H:%M:%S')"
  echo "mode=$MODE"; echo "ci=$CI"; echo "threads=$THREADS"; echo "omp_wait_policy=$OMP_WAIT_POLICY"
  echo "cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  echo "cores=$(getconf _NPROCESSORS_ONLN)"  # not nproc: it honours OMP_NUM_THREADS
  echo "memory=$(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- include trainer bench 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "build=$BUILD"
  echo "compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null) $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)"
} > "$RAW/machine.txt"
TORCH=0
if [ -x "$PYTHON" ] && "$PYTHON" -c 'import torch' 2>/dev/null; then
  TORCH=1
  echo "torch=$("$PYTHON" -c 'import torch; print(torch.__version__)')" >> "$RAW/machine.txt"
else
  echo "torch=missing" >> "$RAW/machine.txt"
  log "PyTorch not found for $PYTHON: peers skipped. To add them: sudo apt-get install python3-torch"
fi
log "results in $OUT (mode $MODE, $THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg))"

peer_check() {  # STEP RC: a peer run that exits 3 = cross-check disagreement, other non-zero = failure
  case "$2" in
    0) ;;
    3) DISAGREE+=("$1") ;;
    *) FAILED+=("$1") ;;
  esac
}

# ---- 1 geometry --------------------------------------------------------------------------------------
if want geometry && need_exe bench/bench_geometry; then
  G=(); R=7; GSHAPES="1048576x64,4096x4096"
  if [ "$MODE" = quick ]; then G=(--quick); R=5; GSHAPES="4096x64,64x1024"; fi
  run geometry "$RAW/geometry.md" "$BUILD/bench/bench_geometry" "${G[@]}" --threads "$THREADS" --reps "$R" \
      --dump "$RAW/geometry_crosscheck.json" || FAILED+=(geometry)
  if [ "$TORCH" = 1 ] && [ -s "$RAW/geometry_crosscheck.json" ]; then
    run geometry-peer "$RAW/geometry_peer.json" "$PYTHON" "$ROOT/bench/peers/torch_geometry.py" --threads "$THREADS" \
        --crosscheck "$RAW/geometry_crosscheck.json" --time --shapes "$GSHAPES" --reps "$R"
    peer_check geometry-peer $?
  fi
fi

# ---- 2 adapter ---------------------------------------------------------------------------------------
if want adapter && need_exe bench/bench_adapter; then
  A=(); R=7; ASHAPES="4096x8,4096x32,288x8,64x8"; TOK=512
  if [ "$MODE" = quick ]; then A=(--quick); R=3; ASHAPES="288x8,64x8"; fi
  if [ "$CI" = 1 ]; then TOK=64; fi
  mkdir -p "$RAW/adapter_crosscheck"
  run adapter "$RAW/adapter.md" "$BUILD/bench/bench_adapter" "${A[@]}" --reps "$R" --tokens "$TOK" \
      --dump "$RAW/adapter_crosscheck" || FAILED+=(adapter)
  if [ "$TORCH" = 1 ] && ls "$RAW"/adapter_crosscheck/adapter_*.json >/dev/null 2>&1; then
    run adapter-peer "$RAW/adapter_peer.json" "$PYTHON" "$ROOT/bench/peers/torch_hyplora.py" --threads "$THREADS" \
        --crosscheck "$RAW/adapter_crosscheck" --time --shapes "$ASHAPES" --tokens "$TOK" --reps "$R"
    peer_check adapter-peer $?
  fi
fi

# ---- 3 model -----------------------------------------------------------------------------------------
if want model && need_exe bench/bench_model; then
  # --adapters: the frozen-weight step with each adapter kind attached, against LoRA's (the whole-model cost)
  KINDS=lora,hyplora_lorentz,hyplora_poincare,naive,paper
  M=(--shape stories15M --batch 8 --seq 256 --reps 5)
  [ "$MODE" = quick ] && M=(--shape stories15M --batch 2 --seq 256 --reps 3)
  [ "$CI" = 1 ] && M=(--shape stories260K --batch 2 --seq 32 --reps 3)
  P=()
  [ "$TORCH" = 1 ] && P=(--peer "$PYTHON $ROOT/bench/peers/torch_llama.py")
  if [ "$CI" = 1 ]; then  # tiny: the path runs, no figures
    run model "$RAW/model.txt" "$BUILD/bench/bench_model" "${M[@]}" "${P[@]}" --dump "$RAW/model_crosscheck.json" \
        --adapters "$KINDS"
  else
    run model "$RAW/model.txt" "$BUILD/bench/bench_model" "${M[@]}" "${P[@]}" --dump "$RAW/model_crosscheck.json"
  fi
  case $? in
    0) ;;
    4) FAILED+=(model-peer) ;;  # our figures are in model.txt
    *) FAILED+=(model) ;;
  esac
  if [ "$CI" = 0 ]; then
    # 512 tokens a step as bench_adapter, many rounds (the machine's state drifts between rounds):
    # stories15M (d = 288) and the trainer's own model, stories260K (d = 64)
    R15=15; R260=41
    [ "$MODE" = quick ] && { R15=5; R260=15; }
    run model-adapters-15m "$RAW/model_adapters_15m.txt" "$BUILD/bench/bench_model" --shape stories15M \
        --batch 2 --seq 256 --reps "$R15" --adapters "$KINDS" || FAILED+=(model-adapters-15m)
    run model-adapters-260k "$RAW/model_adapters_260k.txt" "$BUILD/bench/bench_model" --shape stories260K \
        --batch 16 --seq 32 --reps "$R260" --adapters "$KINDS" || FAILED+=(model-adapters-260k)
  fi
  if [ "$TORCH" = 1 ] && [ -s "$RAW/model_crosscheck.json" ]; then
    run model-peer-crosscheck "$RAW/model_peer_crosscheck.json" "$PYTHON" "$ROOT/bench/peers/torch_llama.py" \
        --threads "$THREADS" --crosscheck "$RAW/model_crosscheck.json"
    peer_check model-peer-crosscheck $?
  fi
fi

# ---- 4 accuracy --------------------------------------------------------------------------------------
if want accuracy && [ "$CI" = 0 ]; then
  if [ -x "$BUILD/bin/hyplora" ]; then
    "$ROOT/bench/report/accuracy.sh" "$BUILD/bin/hyplora" "$MODE" "$RAW" "${SEEDS:-}" || FAILED+=(accuracy)
  else
    log "accuracy skipped: $BUILD/bin/hyplora not built"
    echo "accuracy	skipped (no $BUILD/bin/hyplora)	0	-" >> "$RAW/steps.tsv"
  fi
fi

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW/machine.txt"
printf '%s\n' "${FAILED[@]:-}" | sed '/^$/d' > "$RAW/failed.txt"
printf '%s\n' "${DISAGREE[@]:-}" | sed '/^$/d' > "$RAW/disagree.txt"

# ---- report ------------------------------------------------------------------------------------------
printf '# the report from the outputs above\npython3 %q .\n' "$ROOT/bench/report/make_report.py" >> "$RAW/commands.sh"
if python3 "$ROOT/bench/report/make_report.py" "$OUT"; then
  log "report: $OUT/results.md"
else
  log "report generation failed: no results.md"; FAILED+=(report)
fi
if [ ${#FAILED[@]} -gt 0 ]; then log "FAILED to run: ${FAILED[*]}"; fi
if [ ${#DISAGREE[@]} -gt 0 ]; then log "peer cross-check DISAGREES beyond tolerance: ${DISAGREE[*]} (see results.md)"; fi
[ ${#FAILED[@]} -eq 0 ] && [ ${#DISAGREE[@]} -eq 0 ]
