#!/usr/bin/env bash
# bench/train.sh: training speed and memory of lqa-sft (bench/RESULTS.md, "Train: speed and memory").
#   1. the demo-sized model (lqa-sft init --preset demo) at ctx 2048: tokens/s with S2-Attn and with
#      full attention, their ratio against the FLOP ratio, GFLOP/s against OpenBLAS sgemm's;
#   2. peak RSS of a training step at ctx 2k, 4k, 8k, 16k with S2-Attn (one process each);
#   3. if PyTorch is importable (Debian's python3-torch), the same model and step in PyTorch on the
#      same threads, in the same run.
# Usage: bench/train.sh [THREADS] (default: all cores). BUILD=dir selects the build directory.
# Prints a Markdown section on stdout; raw JSON lines go to $OUT (default bench/train-results.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
# lqa-sft sets this itself when unset; PyTorch gets the same policy so both run alike
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
THREADS=${1:-$(nproc)}
BUILD=${BUILD:-build}
OUT=${OUT:-bench/train-results.jsonl}
STEPS=${STEPS:-3}
CTXS=${CTXS:-"2048 4096 8192 16384"}
make --no-print-directory BUILD="$BUILD" -j1 "$BUILD/lqa-sft" >&2
SFT="$BUILD/lqa-sft"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# a sentencepiece tokenizer (8000 pieces, LLaMA settings) on a fixed English text
sed 's/<[^>]*>//g' /usr/share/doc/jargon-text/jargon.html > "$W/corpus.txt"
spm_train --input="$W/corpus.txt" --model_prefix="$W/tok" --vocab_size=8000 --model_type=bpe \
    --byte_fallback=true --split_digits=true --hard_vocab_limit=false --num_threads="$THREADS" \
    --minloglevel=2 >/dev/null 2>&1
LQA_LOG=warn "$SFT" init --preset demo --tokenizer "$W/tok.model" --ctx 2048 -o "$W/demo"

: > "$OUT"
run() { LQA_LOG=warn "$SFT" bench --model "$W/demo" --threads "$THREADS" "$@" | tee -a "$OUT" >&2; }
run --ctx 2048 --attn s2 --steps "$STEPS" --sgemm 2048
run --ctx 2048 --attn full --steps "$STEPS"
for ctx in $CTXS; do run --ctx "$ctx" --attn s2 --steps 1; done
# Debian's python3-torch lives in /usr/bin/python3's dist-packages (a pyenv python3 may not see it)
TORCH_PY=""
for py in /usr/bin/python3 python3; do
    if "$py" -c 'import torch' 2>/dev/null; then TORCH_PY=$py; break; fi
done
if [ -n "$TORCH_PY" ]; then
    for attn in full s2; do
        "$TORCH_PY" bench/torch_step.py --model "$W/demo" --ctx 2048 --attn "$attn" --threads "$THREADS" --steps "$STEPS" \
            | tee -a "$OUT" >&2
    done
fi

python3 bench/train_summary.py "$OUT" "$THREADS"
