#!/usr/bin/env bash
# bench/gpu_vs_torch.sh: lqa-sft against Hugging Face transformers + PEFT on the same GPU in the
# same run (issue 14). LoRA+ training steps (LoRA r 8 on q,k,v,o; embedding and norms trainable;
# gradient checkpointing; random weights; bf16) at the tinyllama-1.1b and llama2-7b shapes, ctx
# 8k and 32k, S2 and full attention: tokens/s, peak device memory, MFU; then the longest context
# each side fits (one S2 step at growing ctx). Writes one Markdown table (no Python needed for it).
#   bench/gpu_vs_torch.sh [--dry-run] [--out FILE]
# Environment: BUILD (default build), SFT (default $BUILD/lqa-sft), BUDGET (seconds for the whole
# run, default 520: under 9 minutes with the start-up), STEPS (timed steps per configuration,
# default 2), MODELS, CTXS, ATTNS, PROBE_CTXS (comma lists), PYTHON (default python3), PEAK_TFLOPS (MFU's
# peak, else from the GPU's name: H100/H200 SXM 989.4, A100 312).
# Needs: an NVIDIA GPU (nvidia-smi); PyTorch + transformers + peft for the torch side (without
# them that side is skipped, with the reason in the table); `lqa-sft bench --preset` for the lqa
# side, which builds its random model in device memory and reports a context whose memory plan
# does not fit as "does not fit" without allocating. No network: models are built from their
# shapes. Exit: 0 measured (or dry run), 2 no GPU, 1 a failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
SFT=${SFT:-$BUILD/lqa-sft}
BUDGET=${BUDGET:-520}
STEPS=${STEPS:-2}
MODELS=${MODELS:-tinyllama-1.1b,llama2-7b}
CTXS=${CTXS:-8192,32768}
ATTNS=${ATTNS:-full,s2}
PROBE_CTXS=${PROBE_CTXS:-65536,100000,131072,200000}
PYTHON=${PYTHON:-python3}
OUT=""
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_vs_torch.sh: unknown argument '$1' (see --help)" >&2; exit 1 ;;
    esac
    shift
done
OUT=${OUT:-$BUILD/gpu_check/gpu_vs_torch.md}
IFS=, read -r -a models <<<"$MODELS"
IFS=, read -r -a ctxs <<<"$CTXS"
IFS=, read -r -a probes <<<"$PROBE_CTXS"
IFS=, read -r -a attns <<<"$ATTNS"

# What this machine can run.
have_gpu=0
gpu_name="none"
if command -v nvidia-smi >/dev/null 2>&1 && gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) && [ -n "$gpu_name" ]; then
    have_gpu=1
fi
peak=${PEAK_TFLOPS:-}
if [ -z "$peak" ]; then
    case "$gpu_name" in
        *H100*|*H200*) peak=989.4 ;;
        *A100*) peak=312 ;;
    esac
fi
export PEAK_TFLOPS=$peak # the torch side's MFU (bench/gpu_vs_torch.py)
torch_why=""
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    torch_why="$PYTHON not found"
elif ! "$PYTHON" -c 'import torch, transformers, peft' 2>/dev/null; then
    torch_why="$("$PYTHON" -c 'import torch, transformers, peft' 2>&1 | tail -1)"
fi
lqa_why=""
if [ ! -x "$SFT" ]; then
    lqa_why="$SFT not built (make)"
elif ! help=$("$SFT" bench --help 2>&1) || ! grep -q -- '--dtype' <<<"$help" || ! grep -q -- '--preset' <<<"$help" \
        || ! grep -q -- '--device' <<<"$help"; then
    lqa_why="$SFT bench has no --device, --dtype and --preset"
fi

lqa_cmd() { # model ctx attn steps
    echo "$SFT bench --device cuda --dtype bf16 --preset $1 --ctx $2 --attn $3 --train lora+ --lora-rank 8" \
         "--lora-targets q,k,v,o --checkpointing on --steps $4${peak:+ --peak-tflops $peak}"
}

echo "== gpu_vs_torch: GPU: $gpu_name; budget ${BUDGET}s; table: $OUT"
echo "plan:"
for m in "${models[@]}"; do
    for c in "${ctxs[@]}"; do
        for a in "${attns[@]}"; do
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
        echo "  $PYTHON bench/gpu_vs_torch.py --model $m --ctx $CTXS --attn $ATTNS --steps $STEPS --probe-ctx $PROBE_CTXS --budget N"
        for c in "${ctxs[@]}"; do
            for a in "${attns[@]}"; do echo "  $(lqa_cmd "$m" "$c" "$a" "$STEPS")"; done
        done
        for c in "${probes[@]}"; do echo "  $(lqa_cmd "$m" "$c" s2 1)"; done
    done
    command -v "$PYTHON" >/dev/null 2>&1 || { echo "(no $PYTHON: the torch side's FLOP counts not shown)"; exit 0; }
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
rows="$W/rows.tsv" # side model ctx attn probe ok tokens/s step-s peak-GiB MFU error, one result a line
: >"$rows"
t0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - t0) )); }

# The value of KEY in a flat one-line JSON object (strings without their quotes), or nothing.
field() { sed -n 's/.*"'"$2"'": *\("\([^"]*\)"\|\([^,}]*\)\).*/\2\3/p' <<<"$1" | head -1; }
# One row from a side's JSON line: side model ctx attn probe line; fails when it has no tokens/s.
add_row() {
    local side=$1 m=$2 c=$3 a=$4 probe=$5 j=$6 tps step peak_gib mfu err
    tps=$(field "$j" tokens_per_s) err=$(field "$j" error) mfu=$(field "$j" mfu)
    if [ "$side" = lqa ]; then
        step=$(field "$j" step_s_mean)
        peak_gib=$(awk -v x="$(field "$j" peak_device_mib)" 'BEGIN { if (x != "") printf "%.2f", x / 1024 }')
    else
        step=$(field "$j" step_s) peak_gib=$(field "$j" peak_gib)
    fi
    [ "$mfu" = null ] && mfu=""
    if [ -z "$tps" ] || [ "$tps" = null ]; then tps="" err=${err:-failed}; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$side" "$m" "$c" "$a" "$probe" "$([ -n "$tps" ] && echo 1 || echo 0)" \
        "$tps" "$step" "$peak_gib" "$mfu" "$err" | tee -a "$rows"
    [ -n "$tps" ]
}

# The torch side: one process per model, half the time left for each side.
if [ -z "$torch_why" ]; then
    n=${#models[@]}
    for m in "${models[@]}"; do
        share=$(( $(left) / 2 / n )); n=$((n - 1))
        [ "$share" -lt 20 ] && { echo "torch $m: skipped (time budget)"; continue; }
        echo "== torch $m (${share}s)"
        PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True timeout $((share + 30)) "$PYTHON" bench/gpu_vs_torch.py \
            --model "$m" --ctx "$CTXS" --attn "$ATTNS" --steps "$STEPS" --probe-ctx "$PROBE_CTXS" --budget "$share" \
            >"$W/torch.jsonl" || echo "torch $m: stopped (exit $?)"
        while IFS= read -r j; do
            [[ $j == \{* ]] || continue
            add_row torch "$m" "$(field "$j" ctx)" "$(field "$j" attn)" "$(field "$j" probe)" "$j" || true
        done <"$W/torch.jsonl"
    done
fi

# The lqa side: one process per configuration; its bench prints one JSON line, also when the
# context does not fit ("error": "does not fit: ..."); anything else is its last error line.
lqa_run() { # model ctx attn steps -> the JSON line
    local line
    # shellcheck disable=SC2046
    line=$(timeout "$(left)" $(lqa_cmd "$@") 2>"$W/lqa.err" | tail -1)
    [[ $line == \{* ]] || line="{\"error\": \"$(tail -1 "$W/lqa.err" | tr -d '"\t' | cut -c1-160)\"}"
    echo "$line"
}
if [ -z "$lqa_why" ]; then
    for m in "${models[@]}"; do
        for c in "${ctxs[@]}"; do
            for a in "${attns[@]}"; do
                [ "$(left)" -lt 30 ] && { echo "lqa $m $c $a: skipped (time budget)"; continue; }
                echo "== lqa $m ctx $c $a"
                add_row lqa "$m" "$c" "$a" "" "$(lqa_run "$m" "$c" "$a" "$STEPS")" || true
            done
        done
        for c in "${probes[@]}"; do
            [ "$(left)" -lt 30 ] && break
            echo "== lqa $m ctx $c s2 (longest context)"
            add_row lqa "$m" "$c" s2 true "$(lqa_run "$m" "$c" s2 1)" || break
        done
    done
fi

# One Markdown table (and the longest contexts) from the rows.
{
    echo "## LoRA+ training: lqa-sft vs transformers + PEFT (bf16, one GPU)"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by bench/gpu_vs_torch.sh on $gpu_name. LoRA r 8 on q,k,v,o,"
    echo "embedding and norms trainable, gradient checkpointing, random weights, batch 1. MFU = model"
    echo "FLOPs (6N + causal attention over ctx, or ctx/4 for S2; the same count for both sides) / dense"
    echo "bf16 peak (${peak:-unknown} TFLOP/s). Peak memory: torch's max_memory_allocated; lqa's device memory"
    echo "the run took (cudaMemGetInfo, without the CUDA context)."
    [ -n "$torch_why" ] && printf '\ntorch side not measured: %s\n' "$torch_why"
    [ -n "$lqa_why" ] && printf '\nlqa side not measured: %s\n' "$lqa_why"
    echo
    echo "| model | ctx | attn | side | tokens/s | step s | peak GiB | MFU | lqa / torch |"
    echo "|---|---|---|---|---|---|---|---|---|"
    awk -F'\t' '
        function num(x, f) { return x == "" ? "-" : sprintf(f, x) }
        $5 == "" { n++; side[n] = $1; key[n] = $2 SUBSEP $3 SUBSEP $4; row[n] = $0
                   if ($1 == "torch" && $6 == 1) torch[key[n]] = $7 }
        END {
            for (i = 1; i <= n; i++) {
                split(row[i], f, "\t")
                if (f[6] != 1) { printf "| %s | %s | %s | %s | %s | | | | |\n", f[2], f[3], f[4], f[1], f[11]; continue }
                ratio = (f[1] == "lqa" && (key[i] in torch)) ? sprintf("%.2fx", f[7] / torch[key[i]]) : ""
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f[2], f[3], f[4], f[1], num(f[7], "%.0f"),
                       num(f[8], "%.2f"), num(f[9], "%.1f"), f[10] == "" ? "-" : sprintf("%.3g%%", 100 * f[10]), ratio
            }
        }' "$rows"
    echo
    echo "Longest context that fits (one S2 step, tried in ascending order until the first failure):"
    echo
    awk -F'\t' '
        $5 == "true" { k = $1 " " $2; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
                       if ($6 == 1 && $3 + 0 > best[k] + 0) best[k] = $3
                       if ($6 != 1 && !(k in fail)) fail[k] = $3 " (" $11 ")" }
        END {
            for (i = 1; i <= n; i++) {
                k = order[i]
                printf "- %s: %s%s\n", k, (k in best) ? best[k] " fits" : "nothing tried fits",
                       (k in fail) ? "; " fail[k] " does not" : "; every size tried fits"
            }
        }' "$rows"
} >"$OUT"
cat "$OUT"
echo "gpu_vs_torch: table in $OUT ($(( $(date +%s) - t0 ))s)"
