#!/usr/bin/env bash
# bench/gpu_vs_torch.sh: lqa-sft against Hugging Face transformers + PEFT on the same GPU in the
# same run (issue 14). LoRA+ training steps (LoRA r 8 on q,k,v,o; embedding and norms trainable;
# gradient checkpointing; random weights; bf16) at the tinyllama-1.1b and llama2-7b shapes, ctx
# 8k and 32k, S2 and full attention: tokens/s, peak device memory, MFU; then the longest context
# each side fits (one S2 step at growing ctx). Writes one Markdown table.
#   bench/gpu_vs_torch.sh [--dry-run] [--out FILE]
# Environment: BUILD (default build), BUDGET (seconds for the whole run, default 520: under 9
# minutes with the start-up), STEPS (timed steps per configuration, default 2), MODELS, CTXS,
# PROBE_CTXS (comma lists), PYTHON (default python3), PEAK_TFLOPS (MFU's peak, else from the name).
# Needs: an NVIDIA GPU (nvidia-smi), PyTorch + transformers + peft for the torch side; for the
# lqa side, `lqa-sft bench` with --device cuda --dtype bf16 --preset (issues 13/14): while it has
# no such flags the script says so and records the torch side only. No network: models are built
# from their shapes. Exit: 0 measured (or dry run), 2 no GPU, 1 a failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BUDGET=${BUDGET:-520}
STEPS=${STEPS:-2}
MODELS=${MODELS:-tinyllama-1.1b,llama2-7b}
CTXS=${CTXS:-8192,32768}
PROBE_CTXS=${PROBE_CTXS:-65536,100000,131072,200000}
PYTHON=${PYTHON:-python3}
SFT="$BUILD/lqa-sft"
OUT=""
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_vs_torch.sh: unknown argument '$1' (see --help)" >&2; exit 1 ;;
    esac
    shift
done
OUT=${OUT:-$BUILD/gpu_check/gpu_vs_torch.md}
IFS=, read -r -a models <<<"$MODELS"
IFS=, read -r -a ctxs <<<"$CTXS"
IFS=, read -r -a probes <<<"$PROBE_CTXS"
ATTNS=(full s2)

# What this machine can run.
have_gpu=0
gpu_name="none"
if command -v nvidia-smi >/dev/null 2>&1 && gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) && [ -n "$gpu_name" ]; then
    have_gpu=1
fi
torch_why=""
if ! "$PYTHON" -c 'import torch, transformers, peft' 2>/dev/null; then
    torch_why="$("$PYTHON" -c 'import torch, transformers, peft' 2>&1 | tail -1)"
fi
lqa_why=""
if [ ! -x "$SFT" ]; then
    lqa_why="$SFT not built (make)"
elif ! help=$("$SFT" bench --help 2>&1) || ! grep -q -- '--dtype' <<<"$help" || ! grep -q -- '--preset' <<<"$help" \
        || ! grep -q -- '--device' <<<"$help"; then
    lqa_why="lqa-sft bench has no --device cuda --dtype bf16 --preset yet (issues 13/14): lqa side not measured"
fi

lqa_cmd() { # model ctx attn steps
    echo "$SFT bench --device cuda --dtype bf16 --preset $1 --ctx $2 --attn $3 --train lora+ --lora-rank 8" \
         "--lora-targets q,k,v,o --checkpointing on --steps $4"
}

echo "== gpu_vs_torch: GPU: $gpu_name; budget ${BUDGET}s; table: $OUT"
echo "plan:"
for m in "${models[@]}"; do
    for c in "${ctxs[@]}"; do
        for a in "${ATTNS[@]}"; do
            echo "  $m ctx $c $a: torch (transformers + PEFT, SDPA, bf16) and lqa-sft: $STEPS timed steps each"
        done
    done
    echo "  $m longest context, one S2 step at ${PROBE_CTXS} until out of memory, both sides"
done
echo "torch side: ${torch_why:-ready}"
echo "lqa side:   ${lqa_why:-ready}"
if [ "$DRY" = 1 ]; then
    echo "commands:"
    for m in "${models[@]}"; do
        echo "  $PYTHON bench/gpu_vs_torch.py --model $m --ctx $CTXS --attn full,s2 --steps $STEPS --probe-ctx $PROBE_CTXS --budget N"
        for c in "${ctxs[@]}"; do
            for a in "${ATTNS[@]}"; do echo "  $(lqa_cmd "$m" "$c" "$a" "$STEPS")"; done
        done
        for c in "${probes[@]}"; do echo "  $(lqa_cmd "$m" "$c" s2 1)"; done
    done
    for m in "${models[@]}"; do "$PYTHON" bench/gpu_vs_torch.py --dry-run --model "$m" --ctx "$CTXS" --steps "$STEPS" --probe-ctx "$PROBE_CTXS" || exit 1; done
    exit 0
fi
if [ "$have_gpu" = 0 ]; then
    echo "gpu_vs_torch: NO GPU (nvidia-smi sees none): nothing measured"
    exit 2
fi

mkdir -p "$(dirname "$OUT")"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
results="$W/results.jsonl"
: >"$results"
t0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - t0) )); }

# The torch side: one process per model, half the time left for each side.
if [ -z "$torch_why" ]; then
    n=${#models[@]}
    for m in "${models[@]}"; do
        share=$(( $(left) / 2 / n )); n=$((n - 1))
        [ "$share" -lt 20 ] && { echo "torch $m: skipped (time budget)"; continue; }
        echo "== torch $m (${share}s)"
        PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True timeout $((share + 30)) "$PYTHON" bench/gpu_vs_torch.py \
            --model "$m" --ctx "$CTXS" --attn full,s2 --steps "$STEPS" --probe-ctx "$PROBE_CTXS" --budget "$share" \
            | tee -a "$results" || echo "torch $m: stopped (exit ${PIPESTATUS[0]})"
    done
fi

# The lqa side: one process per configuration (its bench prints one JSON line).
if [ -z "$lqa_why" ]; then
    for m in "${models[@]}"; do
        for c in "${ctxs[@]}"; do
            for a in "${ATTNS[@]}"; do
                [ "$(left)" -lt 30 ] && { echo "lqa $m $c $a: skipped (time budget)"; continue; }
                echo "== lqa $m ctx $c $a"
                # shellcheck disable=SC2046
                line=$(timeout "$(left)" $(lqa_cmd "$m" "$c" "$a" "$STEPS") 2>"$W/lqa.err" | tail -1)
                [[ $line == \{* ]] || line=null
                echo "{\"side\": \"lqa\", \"model\": \"$m\", \"ctx\": $c, \"attn\": \"$a\", \"raw\": ${line:-null}}" | tee -a "$results"
            done
        done
        for c in "${probes[@]}"; do
            [ "$(left)" -lt 30 ] && break
            # shellcheck disable=SC2046
            line=$(timeout "$(left)" $(lqa_cmd "$m" "$c" s2 1) 2>"$W/lqa.err" | tail -1)
            [[ $line == \{* ]] || line=null
            echo "{\"side\": \"lqa\", \"model\": \"$m\", \"ctx\": $c, \"attn\": \"s2\", \"probe\": true, \"raw\": ${line:-null}}" | tee -a "$results"
            [ "$line" = null ] && break
        done
    done
fi

# One Markdown table (and the longest contexts) from the JSON lines.
"$PYTHON" bench/gpu_vs_torch.py --table "$results" --gpu "$gpu_name" --note "${torch_why:+torch side not measured: $torch_why}" \
    --note "${lqa_why:+lqa side not measured: $lqa_why}" >"$OUT" || exit 1
cat "$OUT"
echo "gpu_vs_torch: table in $OUT ($(( $(date +%s) - t0 ))s)"
