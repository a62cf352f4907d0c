#!/usr/bin/env bash
# scripts/gpu_check.sh: the ONE command for a machine with an NVIDIA GPU (a lent H100, say).
#   scripts/gpu_check.sh            (CUDA_ARCH=sm_90 by default; JOBS=16; BUILD=build)
# 1. builds everything with nvcc for that arch: make -j$JOBS CUDA_ARCH=$CUDA_ARCH (into $BUILD);
# 2. runs every tests/test_cuda_* binary (each compares a CUDA op with its CPU reference), and
#    with a GPU the tools end to end (tests/test_train_emu, tests/test_eval_cli against the GPU's
#    lqa-sft / lqa-eval --device cuda), and bench/gpu_train.sh (CPU vs GPU losses at the demo
#    model's shape, a 200-step run on the demo's data, train/decode speed at ctx 2k-32k);
# 3. runs bench/gpu.sh (CUDA vs CPU timings, recorded in bench/RESULTS.md) and, with a GPU,
#    bench/gpu_vs_torch.sh on a short budget (lqa-sft vs transformers + PEFT, bf16);
# 4. NCCL over MPI: mpirun with one rank per GPU runs tests/test_dist's worker, whose device
#    all-reduce (ncclAllReduce, communicator bootstrapped over MPI) must match the host sums;
# 5. prints a summary. Exit status 0 only when the build passed and, with a GPU visible, no CUDA
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
    if [ "$have_gpu" = 1 ]; then
        # the tools end to end: train --device cuda vs cpu, lqa-eval --device cuda vs cpu (on a GPU)
        echo "== CPU vs GPU end to end (log: $LOGDIR/e2e.log)"
        LQA_CUDA_SFT="$BUILD/lqa-sft" LQA_CUDA_EVAL="$BUILD/lqa-eval" BUILD="$BUILD" \
            tests/run.sh "$BUILD/tests/test_train_emu" "$BUILD/tests/test_eval_cli" | tee "$LOGDIR/e2e.log"
        e2e_rc=${PIPESTATUS[0]}
        [ "$e2e_rc" -eq 0 ] || tests_rc=$e2e_rc
    fi
fi

# the tools on the GPU at the demo model's shape: CPU vs GPU losses, a 200-step LongLoRA run on
# the demo's data, train and decode speed and device memory at ctx 2k, 8k, 32k (S2 and full);
# the table goes to bench/RESULTS.md
train_line="not run"
if [ "$build" = ok ] && [ "$have_gpu" = 1 ]; then
    echo "== bench/gpu_train.sh (log: $LOGDIR/train)"
    if BUILD="$BUILD" OUT_DIR="$LOGDIR/train" bench/gpu_train.sh | tee "$LOGDIR/gpu_train.md"; then
        train_line="ok ($LOGDIR/gpu_train.md)"
        { echo; cat "$LOGDIR/gpu_train.md"; } >>bench/RESULTS.md
    else
        train_line="FAILED (log: $LOGDIR/train)"
    fi
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

nccl_line="not run"
if [ "$build" = ok ] && [ "$have_gpu" = 1 ]; then
    echo "== NCCL over MPI (tests/test_dist --worker, one rank per GPU)"
    ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
    if ! command -v mpirun >/dev/null 2>&1; then
        nccl_line="skipped: mpirun not found (make deps)"
    elif OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun --oversubscribe --bind-to none \
            -np "${ngpu:-1}" "$BUILD/tests/test_dist" --worker "$(date +%s)" --device 2>&1 | tee "$LOGDIR/nccl.log" \
            && grep -q "NCCL device reduce checked" "$LOGDIR/nccl.log"; then
        nccl_line="ok (${ngpu} ranks)"
    else
        nccl_line="FAILED (log: $LOGDIR/nccl.log)"
    fi
fi

echo "== summary"
echo "build:  $build (CUDA_ARCH=$ARCH)"
echo "tests:  $tests_line"
echo "train:  $train_line"
echo "bench:  $bench_line"
echo "vs torch: $vs_torch_line"
echo "nccl:   $nccl_line"
# "N passed, N failed, N skipped" -> verdict
read -r n_passed _ n_failed _ n_skipped _ <<<"$tests_line"
if [ "$build" != ok ] || [ "$tests_rc" -ne 0 ] || [ "${n_failed:-1}" != 0 ] || [[ "$nccl_line" == FAILED* ]] || [[ "$train_line" == FAILED* ]]; then
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
