#!/bin/bash
# Paired comparison of bench_adapter builds on the small shapes (d = 288 and 64), for a machine whose
# speed drifts: the builds run alternately RUNS times (`--quick --reps REPS` each, OMP_WAIT_POLICY=
# passive), and for every method the median over runs of its ratio to LoRA of the same run is printed
# (with the quartiles), next to the median of its median times. docs/adapters.md, run 6.
#
#   bench/paired_adapter.sh RUNS REPS BENCH_A BENCH_B [...]
#
# SHAPES="64,16 288,16" in the environment runs those shapes (bench_adapter --shape) instead of --quick's.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 RUNS REPS BENCH_ADAPTER [BENCH_ADAPTER ...]" >&2
  exit 2
fi
RUNS=$1; REPS=$2; shift 2
for v in "$RUNS" "$REPS"; do  # seq and bench_adapter took "abc" and 0 quietly (nothing printed, exit 0)
  case "$v" in ''|*[!0-9]*|0) echo "$0: RUNS and REPS must be positive integers, got '$v'" >&2; exit 2 ;; esac
done
for b in "$@"; do
  [ -x "$b" ] || { echo "$0: $b is not an executable bench_adapter" >&2; exit 2; }
done
shape_args=(--quick)
if [ -n "${SHAPES:-}" ]; then
  shape_args=()
  for s in $SHAPES; do shape_args+=(--shape "$s"); done
fi
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for _ in $(seq "$RUNS"); do
  for b in "$@"; do
    OMP_WAIT_POLICY=passive "$b" "${shape_args[@]}" --reps "$REPS" |
      awk -v b="$b" '/^\| [0-9]+ \| [0-9]+ \| /{print b "\t" $2 "\t" $4 "\t" $6 "\t" $8 "\t" $14}' >> "$raw"
  done
done
python3 - "$raw" <<'PY'
import collections, statistics, sys
ratios, times = collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    bench, d, r, method, median_ms, ratio = line.rstrip("\n").split("\t")
    if method == "frozen":  # "frozen linear": two words, no ratio column at this position
        continue
    ratios[(int(d), int(r), method, bench)].append(float(ratio))
    times[(int(d), int(r), method, bench)].append(float(median_ms))
for key in sorted(ratios, key=lambda k: (-k[0], k[1], k[2], k[3])):
    v = sorted(ratios[key])
    q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else (v[0], v[0], v[0])  # type 7, as bench_stats.hpp
    print(f"d={key[0]:>4} r={key[1]:<3} {key[2]:18s} {key[3]:40s} median ratio {statistics.median(v):.3f} "
          f"(q1 {q1:.3f} q3 {q3:.3f})  median ms "
          f"{statistics.median(times[key]):.4f}  runs {len(v)}")
PY
