#!/bin/bash
# Paired comparison of bench_adapter_cuda builds on one GPU (the counterpart of paired_adapter.sh):
# the builds run alternately RUNS times (BENCH_ARGS each, default "--reps 9"), and for every shape and
# method the median over runs of its ratio to LoRA of the same run is printed, eager and as a CUDA
# graph, with the quartiles and the median of its median times. Build both binaries where nvcc is
# (they need no GPU to build), carry them to the GPU machine, run this there. docs/adapters.md, run 14.
#
#   bench/paired_adapter_cuda.sh RUNS BENCH_A BENCH_B [...]
#   BENCH_ARGS="--reps 9 --shape 64,8" bench/paired_adapter_cuda.sh 6 base/bench_adapter_cuda new/bench_adapter_cuda
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 RUNS BENCH_ADAPTER_CUDA [BENCH_ADAPTER_CUDA ...]" >&2
  exit 2
fi
RUNS=$1; shift
case "$RUNS" in ''|*[!0-9]*|0) echo "$0: RUNS must be a positive integer, got '$RUNS'" >&2; exit 2 ;; esac
for b in "$@"; do
  [ -x "$b" ] || { echo "$0: $b is not an executable bench_adapter_cuda" >&2; exit 2; }
done
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
read -r -a args <<< "${BENCH_ARGS:---reps 9}"
for _ in $(seq "$RUNS"); do
  for b in "$@"; do
    out=$("$b" "${args[@]}") || { echo "$0: $b failed" >&2; exit 1; }
    # | d | r | method | median ms | min ms | max ms | / LoRA | / frozen | graph ms | graph / LoRA |
    awk -v b="$b" -F'|' '/^\| [0-9]+ \| [0-9]+ \|/{for (i = 2; i <= 11; ++i) gsub(/^ +| +$/, "", $i);
      print b "\t" $2 "\t" $3 "\t" $4 "\t" $5 "\t" $8 "\t" $10 "\t" $11}' <<< "$out" >> "$raw"
    [ -n "$(grep -m1 '^# device' <<< "$out")" ] && grep -m1 '^# device' <<< "$out" > "$raw.device"
  done
done
cat "$raw.device" 2>/dev/null; rm -f "$raw.device"
python3 - "$raw" <<'PY'
import collections, statistics, sys
data = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    bench, d, r, method, ms, ratio, gms, gratio = line.rstrip("\n").split("\t")
    key = (int(d), int(r), method, bench)
    for name, v in (("ms", ms), ("ratio", ratio), ("graph_ms", gms), ("graph_ratio", gratio)):
        try:
            data[key][name].append(float(v))
        except ValueError:  # "-", "notcapturable"
            pass
def summary(v, fmt):
    if not v:
        return "-"
    v = sorted(v)
    return f"{statistics.median(v):{fmt}} (q1 {v[len(v) // 4]:{fmt}} q3 {v[3 * len(v) // 4]:{fmt}})"
for key in sorted(data, key=lambda k: (-k[0], k[1], k[2], k[3])):
    e = data[key]
    print(f"d={key[0]:>4} r={key[1]:>2} {key[2]:18s} {key[3]:40s} eager {summary(e['ratio'], '.3f')} "
          f"{summary(e['ms'], '.4f')} ms  graph {summary(e['graph_ratio'], '.3f')} "
          f"{summary(e['graph_ms'], '.4f')} ms  runs {len(e['ms'])}")
PY
