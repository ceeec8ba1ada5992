#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang++ with -fsanitize=fuzzer,address,undefined) and runs each
# for a bounded time on a fresh corpus: the small seeds of fuzz/seeds/<reader>/, the regression inputs
# of tests/regression/<reader>/ and the real files of the shared folder (copied at run time).
#   scripts/fuzz.sh <build-dir> <seconds-per-target>
# Environment: HYPLORA_SHARED_DIR (default ../shared), FUZZ_TARGETS (default: all), JOBS,
#              FUZZ_KEEP_CORPUS=1 (keep <build-dir>/corpus/<target> instead of a temporary one),
#              FUZZ_MAX_LEN=N (libFuzzer's -max_len, the largest input it makes, with -len_control=0 so
#              that it makes long inputs from the start; by default the larger of 4096 bytes and the
#              largest seed, grown slowly, so the data and config readers see small inputs only).
# Exits non-zero on any crash, leak, timeout (-timeout=10 s per input) or out-of-memory
# (-rss_limit_mb=2048); the input is left in <build-dir>/artifacts/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:?usage: scripts/fuzz.sh <build-dir> <seconds-per-target>}"
SECONDS_PER_TARGET="${2:?usage: scripts/fuzz.sh <build-dir> <seconds-per-target>}"
SHARED="${HYPLORA_SHARED_DIR:-$(cd "$ROOT/.." && pwd)/shared}"
JOBS="${JOBS:-$(nproc)}"
CXX_FUZZ="${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14 || true)}"
[ -n "$CXX_FUZZ" ] || { echo "fuzz.sh: clang++ not found (apt-get install clang)"; exit 1; }

cmake -S "$ROOT/fuzz" -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$JOBS"

# target -> reader folder name (seeds and regression inputs) and the shared files used as seeds
declare -A READER=([fuzz_llama2c]=llama2c [fuzz_tokenizer]=tokenizer [fuzz_gguf]=gguf
                   [fuzz_safetensors]=safetensors [fuzz_data]=data [fuzz_config]=config)
declare -A SHARED_SEEDS=(
  [fuzz_llama2c]="models/stories260K/stories260K.bin"
  [fuzz_tokenizer]="models/stories260K/tok512.bin"  # the 32K Llama 2 file: same paths, 50x slower per input
  [fuzz_gguf]="reference/stories260K.gguf"
  [fuzz_safetensors]=""
  [fuzz_data]=""
  [fuzz_config]="")
# JSON Lines data files: their first lines make good seeds (whole files are too slow per input)
DATA_JSONL="data/gsm8k/test.jsonl data/eval-only/aqua/test.json"

TARGETS="${FUZZ_TARGETS:-fuzz_llama2c fuzz_tokenizer fuzz_gguf fuzz_safetensors fuzz_data fuzz_config}"
mkdir -p "$BUILD/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in $TARGETS; do
  reader="${READER[$t]:?unknown fuzz target $t}"
  if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then corpus="$BUILD/corpus/$t"; mkdir -p "$corpus"
  else corpus="$(mktemp -d)"; fi
  seeds="$(mktemp -d)"
  cp "$ROOT/fuzz/seeds/$reader/"* "$seeds/" 2>/dev/null || true
  cp "$ROOT/tests/regression/$reader/"* "$seeds/" 2>/dev/null || true
  for f in ${SHARED_SEEDS[$t]}; do
    if [ -f "$SHARED/$f" ]; then cp "$SHARED/$f" "$seeds/shared-$(echo "$f" | tr / _)"
    else echo "fuzz.sh: note: shared seed $SHARED/$f is missing; fuzzing $t without it"; fi
  done
  if [ "$t" = fuzz_data ]; then
    for f in $DATA_JSONL; do [ -f "$SHARED/$f" ] && head -n 3 "$SHARED/$f" > "$seeds/shared-$(echo "$f" | tr / _)"; done
  fi
  echo "=== $t: ${SECONDS_PER_TARGET}s, $(ls "$seeds" | wc -l) seeds"
  log="$BUILD/$t.log"
  max_len=()
  if [ -n "${FUZZ_MAX_LEN:-}" ]; then
    [[ "$FUZZ_MAX_LEN" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: FUZZ_MAX_LEN must be a positive byte count, not '$FUZZ_MAX_LEN'"; exit 2; }
    max_len=(-max_len="$FUZZ_MAX_LEN" -len_control=0)
  fi
  if "$BUILD/$t" "$corpus" "$seeds" "${max_len[@]}" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 \
       -artifact_prefix="$BUILD/artifacts/$t-" -print_final_stats=1 >"$log" 2>&1; then
    grep -E "^(stat::number_of_executed_units|Done)" "$log" | tr '\n' ' '; echo
  else
    echo "!!! $t FAILED (log: $log)"; tail -n 60 "$log"; failed+=("$t")
  fi
  rm -rf "$seeds"
  [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] || rm -rf "$corpus"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failures in: ${failed[*]} (inputs in $BUILD/artifacts/)"; exit 1
fi
echo "fuzz.sh: all targets ran ${SECONDS_PER_TARGET}s without a finding"
