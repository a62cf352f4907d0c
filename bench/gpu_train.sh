#!/usr/bin/env bash
# bench/gpu_train.sh: the tools on a GPU (issue 13's part of scripts/gpu_check.sh), at the demo
# model's shape (lqa-sft init --preset demo):
#   1. CPU vs GPU end to end: the same few optimizer steps of lqa-sft train on the same shards with
#      --device cpu and --device cuda --dtype fp32; per-step losses must agree within 1e-4 relative;
#   2. a 200-step LongLoRA run (S2-Attn, lora+) on the demo's data with --device cuda;
#   (2-4 run the device's default dtype: bf16 on cuda; the bench lines record it)
#   3. train speed and device memory: lqa-sft bench at ctx 2k, 8k, 32k, S2 and full attention;
#   4. decode speed: lqa-eval bench (prefill and KV-cache decode) at the same lengths.
# Prints a Markdown section on stdout (also $OUT_DIR/gpu_train.md); logs in $OUT_DIR.
#   bench/gpu_train.sh                      (on a GPU machine, after make)
#   SFT=build/cuda-emu/lqa-sft EVAL=build/cuda-emu/lqa-eval PRESET=tiny CTXS=256 STEPS=3 \
#       TRAIN_CTX=256 bench/gpu_train.sh    (the same script on the CPU emulator: a dry run)
# Exit status: 0 when every step ran and the CPU-vs-GPU losses agree, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SFT=${SFT:-$BUILD/lqa-sft}
EVAL=${EVAL:-$BUILD/lqa-eval}
INGEST=${INGEST:-$BUILD/lqa-ingest}
LQB=${LQB:-$BUILD/lqa-build}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-demo}
CTXS=${CTXS:-"2048 8192 32768"}
TRAIN_CTX=${TRAIN_CTX:-2048}
STEPS=${STEPS:-200}
CMP_STEPS=${CMP_STEPS:-4}
CORPUS=${CORPUS:-/usr/share/doc/jargon-text}
OUT_DIR=${OUT_DIR:-$BUILD/gpu_check/train}
mkdir -p "$OUT_DIR"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export LQA_LOG=${LQA_LOG:-warn}
fail=0
step() { echo "== $*" >&2; }

# the demo's pipeline on one of its corpus folders: store, tokenizer, sft shards, model
step "data: $CORPUS -> store, tokenizer, shards (ctx $TRAIN_CTX), $PRESET model"
"$INGEST" add -q --join --db "$W/lqa.db" "$CORPUS" >"$OUT_DIR/ingest.log" 2>&1 &&
    "$LQB" tokenizer --db "$W/lqa.db" --vocab-size 1000 -o "$W/tok.model" >"$OUT_DIR/build.log" 2>&1 &&
    "$LQB" shards --db "$W/lqa.db" --tokenizer "$W/tok.model" --kind sft --max-len "$TRAIN_CTX" \
        -o "$W/shards" >>"$OUT_DIR/build.log" 2>&1 &&
    "$SFT" init --preset "$PRESET" --tokenizer "$W/tok.model" --ctx "$TRAIN_CTX" -o "$W/model" \
        >"$OUT_DIR/init.log" 2>&1 || { echo "gpu_train: data preparation failed (logs in $OUT_DIR)" >&2; exit 1; }

train() { # train RUN DEVICE STEPS [FLAGS...]
    "$SFT" train --model "$W/model" --data "$W/shards" --out "$W/$1" --ctx "$TRAIN_CTX" --steps "$3" --warmup 2 \
        --lr 1e-3 --micro-batch 1 --grad-accum 1 --save-every "$3" --log-every 1 --device "$2" --seed 7 "${@:4}" \
        >"$OUT_DIR/$1.log" 2>&1
}
losses() { grep -o '"loss": *[-0-9.e+]*' "$W/$1/metrics.jsonl" | sed 's/.*: *//'; }

step "1. CPU vs $DEVICE: $CMP_STEPS steps each"
cmp_line="FAILED"
if train cmp-cpu cpu "$CMP_STEPS" && train cmp-gpu "$DEVICE" "$CMP_STEPS" --dtype fp32; then
    if paste <(losses cmp-cpu) <(losses cmp-gpu) | awk '{ d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1);
            if (r > m) m = r; n++ } END { printf "%d steps, largest relative loss difference %.2g\n", n, m; exit !(n > 0 && m <= 1e-4) }' \
            >"$W/cmp.txt"; then
        cmp_line="ok: $(cat "$W/cmp.txt")"
    else
        cmp_line="FAILED: $(cat "$W/cmp.txt")"
    fi
fi
[[ "$cmp_line" == ok* ]] || fail=1

step "2. $STEPS steps of LongLoRA (S2-Attn, lora+) on $DEVICE"
run_line="FAILED"
t0=$(date +%s.%N)
if train long "$DEVICE" "$STEPS"; then
    secs=$(echo "$(date +%s.%N) - $t0" | bc)
    first=$(losses long | head -1) last=$(losses long | tail -1)
    run_line="ok: loss $first -> $last in ${secs%.*} s"
else
    fail=1
fi

# the bench model holds every length plus the decoded tokens (lqa-eval bench refuses more)
max_ctx=0
for ctx in $CTXS; do [ "$ctx" -gt "$max_ctx" ] && max_ctx=$ctx; done
"$SFT" init --preset "$PRESET" --tokenizer "$W/tok.model" --ctx $((max_ctx + 64)) -o "$W/bench-model" \
    >>"$OUT_DIR/init.log" 2>&1 || { echo "gpu_train: init of the bench model failed" >&2; exit 1; }
# shellcheck disable=SC2317 # called through bench_row
field() { grep -o "\"$2\": *[-0-9.e+]*" <<<"$1" | head -1 | sed 's/.*: *//'; }
step "3-4. lqa-sft bench and lqa-eval bench at ctx $CTXS"
rows=""
# bench_row WHAT CTX ATTN CELLS COMMAND...: runs one bench command, keeps its JSON line and adds
# its table row (CELLS JSON prints the speed and memory cells), or a failed row.
bench_row() {
    local what=$1 ctx=$2 attn=$3 cells=$4 j
    shift 4
    if j=$("$@" 2>>"$OUT_DIR/bench.log"); then
        echo "$j" >>"$OUT_DIR/bench.jsonl"
        rows+="| $what | $ctx | $attn | $("$cells" "$j") |"$'\n'
    else
        rows+="| $what | $ctx | $attn | failed (bench.log) | |"$'\n'
        fail=1
    fi
}
# shellcheck disable=SC2317 # called through bench_row
train_cells() { echo "$(field "$1" tokens_per_s) tok/s | $(field "$1" device_mem_used_mib) MiB"; }
# shellcheck disable=SC2317
eval_cells() { echo "$(field "$1" prefill_tok_s) / $(field "$1" decode_tok_s) tok/s | "; }
for ctx in $CTXS; do
    for attn in s2 full; do
        bench_row train "$ctx" "$attn" train_cells \
            "$SFT" bench --model "$W/bench-model" --ctx "$ctx" --attn "$attn" --steps 2 --device "$DEVICE"
    done
    bench_row "prefill / decode" "$ctx" full eval_cells \
        "$EVAL" bench --model "$W/bench-model" --lengths "$ctx" --decode 32 --device "$DEVICE"
done

{
    echo "### lqa-sft and lqa-eval on $DEVICE ($(date -u +%F), $PRESET model, commit $(git rev-parse --short HEAD 2>/dev/null))"
    echo
    echo "- CPU vs $DEVICE, $CMP_STEPS steps at ctx $TRAIN_CTX: $cmp_line"
    echo "- $STEPS-step LongLoRA run at ctx $TRAIN_CTX: $run_line"
    echo
    echo "| what | ctx | attention | speed | device memory |"
    echo "|---|---|---|---|---|"
    printf '%s' "$rows"
} | tee "$OUT_DIR/gpu_train.md"
exit "$fail"
