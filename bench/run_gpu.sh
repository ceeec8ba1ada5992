#!/usr/bin/env bash
# GPU checks and figures (issues 2 and 3): the CUDA tests, the Thrust/CUDA adapter under
# compute-sanitizer, and the two CUDA benchmarks, from an already built CUDA build folder.
#
#   cmake -S . -B build-cuda -DHYPLORA_CUDA=ON -DHYPLORA_BUILD_TRAINER=OFF -DHYPLORA_BUILD_EXAMPLES=OFF
#   cmake --build build-cuda --target test_manifold_cuda test_backend_cuda bench_adapter_cuda bench_geometry_cuda
#   bench/run_gpu.sh build-cuda OUTDIR
#
# Writes OUTDIR/gpu.log (everything) and OUTDIR/bench_adapter_cuda.md, OUTDIR/bench_geometry_cuda.md.
set -uo pipefail
build=${1:?usage: run_gpu.sh BUILD_DIR OUTDIR}
out=${2:?usage: run_gpu.sh BUILD_DIR OUTDIR}
mkdir -p "$out"
log="$out/gpu.log"
: > "$log"
# cuBLAS: the toolkit's, else the one pip's nvidia-cublas package brings
if ! ldd "$build/tests/test_backend_cuda" | grep -q 'libcublas.so.*=> /'; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib $(python3 -c 'import nvidia.cublas, os; print(os.path.join(nvidia.cublas.__path__[0], "lib"))' 2>/dev/null); do
    [ -e "$d/libcublas.so.13" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && break
  done
fi
status=0
step() {  # step NAME COMMAND...: run, log, remember a failure
  echo "== $1" | tee -a "$log"
  shift
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "== rc $rc" | tee -a "$log"
  [ "$rc" -eq 0 ] || status=1
}
step "device" nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
step "test_manifold_cuda" "$build/tests/test_manifold_cuda"
step "test_backend_cuda" "$build/tests/test_backend_cuda" --durations yes
if command -v compute-sanitizer > /dev/null; then
  step "compute-sanitizer memcheck test_backend_cuda" compute-sanitizer --tool memcheck --error-exitcode 3 "$build/tests/test_backend_cuda"
  step "compute-sanitizer memcheck test_manifold_cuda" compute-sanitizer --tool memcheck --error-exitcode 3 "$build/tests/test_manifold_cuda"
  # shared-memory hazards of the block-per-row sums (core/gpu_rows.hpp BlockRow::sum)
  step "compute-sanitizer racecheck test_manifold_cuda" compute-sanitizer --tool racecheck --error-exitcode 3 "$build/tests/test_manifold_cuda"
  # the block-per-row kernels of the adapters' backends (backend/thrust.hpp)
  step "compute-sanitizer racecheck test_backend_cuda" compute-sanitizer --tool racecheck --error-exitcode 3 "$build/tests/test_backend_cuda"
fi
step "bench_adapter_cuda 512 tokens" "$build/bench/bench_adapter_cuda" --reps 9 --tokens 512
step "bench_adapter_cuda 4096 tokens" "$build/bench/bench_adapter_cuda" --reps 9 --tokens 4096
step "bench_geometry_cuda" "$build/bench/bench_geometry_cuda" --reps 9
sed -n '/^== bench_adapter_cuda 512/,/^== bench_geometry_cuda/p' "$log" | grep '^|\|^#' > "$out/bench_adapter_cuda.md"
sed -n '/^== bench_geometry_cuda/,$p' "$log" | grep '^|\|^#' > "$out/bench_geometry_cuda.md"
exit $status
