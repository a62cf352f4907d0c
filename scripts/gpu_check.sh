#!/usr/bin/env bash
# scripts/gpu_check.sh: the ONE command for a machine with an NVIDIA GPU (a lent H100, say).
#   scripts/gpu_check.sh            (CUDA_ARCH=sm_90 by default; JOBS=16; BUILD=build)
# 1. builds everything with nvcc for that arch: make -j$JOBS CUDA_ARCH=$CUDA_ARCH (into $BUILD);
# 2. runs every tests/test_cuda_* binary (each compares a CUDA op with its CPU reference);
# 3. runs bench/gpu.sh (CUDA vs CPU timings, recorded in bench/RESULTS.md) and, with a GPU,
#    bench/gpu_vs_torch.sh on a short budget (lqa-sft vs transformers + PEFT, bf16);
# 4. prints a summary. Exit status 0 only when the build passed and, with a GPU visible, no CUDA
#    test failed or was skipped (a skip there means the GPU was not usable); 1 on a failure;
#    2 when no GPU is visible (the build was checked, the tests could only skip).
# Needs the project's Debian packages already installed (make deps) and the CUDA toolkit.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCH=${CUDA_ARCH:-sm_90}
JOBS=${JOBS:-16}
BUILD=${BUILD:-build}
LOGDIR=$BUILD/gpu_check
mkdir -p "$LOGDIR"

echo "== GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    have_gpu=1
else
    echo "nvidia-smi not found: no GPU visible (the CUDA tests will skip)"
    have_gpu=0
fi
command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || echo "warning: nvcc not found: the CUDA parts will not be built"

echo "== build: make -j$JOBS CUDA_ARCH=$ARCH (log: $LOGDIR/make.log)"
start=$(date +%s)
if make -j"$JOBS" CUDA_ARCH="$ARCH" BUILD="$BUILD" all >"$LOGDIR/make.log" 2>&1; then
    build=ok
else
    build=FAILED
    tail -40 "$LOGDIR/make.log"
fi
echo "build: $build ($(( $(date +%s) - start ))s)"

tests_line="not run"; tests_rc=1
if [ "$build" = ok ]; then
    echo "== CUDA tests"
    mapfile -t cuda_tests < <(find "$BUILD/tests" -maxdepth 1 -type f -name 'test_cuda_*' -perm -u+x | sort)
    BUILD="$BUILD" tests/run.sh "${cuda_tests[@]}" | tee "$LOGDIR/tests.log"
    tests_rc=${PIPESTATUS[0]}
    tests_line=$(tail -1 "$LOGDIR/tests.log")
fi

bench_line="not run"
if [ "$build" = ok ]; then
    echo "== bench/gpu.sh"
    if BUILD="$BUILD" bench/gpu.sh | tee "$LOGDIR/bench.log"; then bench_line=$(tail -1 "$LOGDIR/bench.log"); else bench_line="FAILED"; fi
fi

# lqa-sft vs transformers + PEFT (bf16): a short budget here so the whole check stays under its
# 8 minutes; bench/gpu_vs_torch.sh alone runs the full comparison (9 minutes).
vs_torch_line="not run"
if [ "$build" = ok ] && [ "$have_gpu" = 1 ]; then
    echo "== bench/gpu_vs_torch.sh (BUDGET=${VS_TORCH_BUDGET:-180})"
    BUDGET=${VS_TORCH_BUDGET:-180} BUILD="$BUILD" bench/gpu_vs_torch.sh --out "$LOGDIR/gpu_vs_torch.md" 2>&1 | tee "$LOGDIR/gpu_vs_torch.log"
    vs_torch_line=$(tail -1 "$LOGDIR/gpu_vs_torch.log")
fi

echo "== summary"
echo "build:  $build (CUDA_ARCH=$ARCH)"
echo "tests:  $tests_line"
echo "bench:  $bench_line"
echo "vs torch: $vs_torch_line"
# "N passed, N failed, N skipped" -> verdict
read -r n_passed _ n_failed _ n_skipped _ <<<"$tests_line"
if [ "$build" != ok ] || [ "$tests_rc" -ne 0 ] || [ "${n_failed:-1}" != 0 ]; then
    echo "gpu_check: FAIL"
    exit 1
fi
if [ "${n_skipped:-1}" != 0 ]; then
    if [ "$have_gpu" = 1 ]; then
        echo "gpu_check: FAIL (a GPU is visible but CUDA tests skipped: the device is not usable from this build)"
        exit 1
    fi
    echo "gpu_check: NO GPU (build checked; the CUDA tests could only skip)"
    exit 2
fi
echo "gpu_check: PASS ($n_passed CUDA tests passed)"
exit 0
