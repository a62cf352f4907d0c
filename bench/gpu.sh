#!/usr/bin/env bash
# bench/gpu.sh: times every CUDA op against its CPU reference in the same run (bench/cuda_bench.c)
# and, when a GPU is present, records the table in bench/RESULTS.md under the section
# "## CUDA ops vs CPU (cuda)" (only that section is replaced), with machine and date.
# Without a GPU it prints the skip reason and records nothing.
#   bench/gpu.sh                    (BUILD=build by default; CUDA_BENCH_ARGS="--T 4096 --reps 10")
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN="$BUILD/bench/lqa-cuda-bench"
SECTION="## CUDA ops vs CPU (cuda)"
RESULTS=bench/RESULTS.md

make --no-print-directory BUILD="$BUILD" "$BIN" >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
"$BIN" ${CUDA_BENCH_ARGS:-} | tee "$out"
if grep -q '^# skip:' "$out"; then
    echo "bench/gpu.sh: nothing recorded (no GPU)"
    exit 0
fi

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
gpu=$(sed -n 's/^# GPU: //p' "$out")
section=$(mktemp)
{
    echo "$SECTION"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by bench/gpu.sh on $(hostname): GPU $gpu;"
    echo "CPU ${cpu:-unknown} ($(nproc) cores). Each row runs the CPU reference and the CUDA op on the same"
    echo "inputs in the same process (best of several runs, GPU synchronised around each call);"
    echo "\"max rel. diff\" is the largest |CUDA - CPU| of the op's output over its largest |value|."
    echo "Shapes are the demo model's (hidden 2048, 16 heads x 128, MLP 5504, vocab 32000)."
    echo "Arguments: ${CUDA_BENCH_ARGS:-(defaults: --T 2048 --reps 5)}."
    echo
    grep '^|' "$out"
    echo
} >"$section"

# Replace our section (from its heading to the next "## " heading) or append it.
touch "$RESULTS"
tmp=$(mktemp)
awk -v head="$SECTION" -v file="$section" '
    function emit() { while ((getline line < file) > 0) print line; close(file); done = 1 }
    $0 == head { emit(); skipping = 1; next }
    skipping && /^## / { skipping = 0 }
    !skipping { print }
    END { if (!done) { print ""; emit() } }
' "$RESULTS" >"$tmp"
mv "$tmp" "$RESULTS"
rm -f "$section"
echo "bench/gpu.sh: recorded in $RESULTS ($SECTION)"
