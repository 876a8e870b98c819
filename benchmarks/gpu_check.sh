#!/usr/bin/env bash
# One command for the few minutes a GPU is at hand (issue 18): the CUDA tests, then the GPU
# benchmarks (HyDRA train step vs LoRA at 4096x4096 in bfloat16 and float32; the Toeplitz-like
# product vs bare cuFFT), all results under benchmarks/results/gpu/.
#
#   benchmarks/gpu_check.sh             # on the GPU machine: python3, PYTHONPATH=., no network
#   benchmarks/gpu_check.sh --dry-run   # anywhere: the same steps on the CPU at tiny sizes
#
# Environment: PYTHON (default python3), GPU_CHECK_OUT (default benchmarks/results/gpu; the dry
# run defaults to a temporary folder so that it never overwrites real results).
# Exit status: that of the tests, or of the benchmark if the tests passed.
set -u -o pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.
PY=${PYTHON:-python3}
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; elif [ $# -gt 0 ]; then
    echo "usage: $0 [--dry-run]" >&2; exit 2
fi
if [ "$DRY" = 1 ]; then
    OUT=${GPU_CHECK_OUT:-$(mktemp -d)}
    DEVICE=(--device cpu --dry-run)
    TESTS=(tests/test_hydra_autograd.py tests/test_nn_toeplitz_backward.py -k "device or cuda")
else
    OUT=${GPU_CHECK_OUT:-benchmarks/results/gpu}
    DEVICE=(--device cuda)
    TESTS=(-m cuda tests)
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --dry-run')" || exit 1
fi
mkdir -p "$OUT"
echo "gpu_check: results under $OUT"
{ command -v nvidia-smi >/dev/null && nvidia-smi; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } > "$OUT/device.txt" 2>&1
"$PY" -m pytest -q -p no:cacheprovider -rs "${TESTS[@]}" 2>&1 | tee "$OUT/cuda_tests.txt"
status=$?
"$PY" benchmarks/bench_gpu.py "${DEVICE[@]}" --out "$OUT" 2>&1 | tee "$OUT/bench_gpu.log"
bench=$?
echo "gpu_check: tests exit $status, benchmark exit $bench; wrote $OUT"
[ "$status" -ne 0 ] && exit "$status"
exit "$bench"
