#!/usr/bin/env bash
# demo.sh [full|quick|ablation]: the whole LongLoRA story on the embedded default corpus.
# Stages (each resumable: a finished stage leaves demo/.done/NAME and is skipped on a re-run):
#   1 build     tools built (make deps and make ran before this script)
#   2 ingest    default corpus -> demo/lqa.db (3k+ QA pairs) + passkey-format training documents
#   3 shards    tokenizer, `lm` and `sft` shards at the base and the extended context
#   4 base      a small LLaMA trained from scratch with full attention at the base context
#   5 longlora  the base extended 8x with LongLoRA (position interpolation, S2-Attn, LoRA+)
#   6 eval      base (interpolated, untrained) vs LongLoRA: passkey 1x..8x, perplexity, store QA
#   7 report    demo/report.html, headline figures printed
# docs/DEMO.md explains every stage and the flags that change on a real LLaMA-2-7B.
set -euo pipefail
mode=${1:-full}
cd "$(dirname "$0")/.."
B=${LQA_BIN:-build}
D=${DEMO_DIR:-demo}
THREADS=${THREADS:-$(nproc)}
export OMP_NUM_THREADS=$THREADS

case "$mode" in
full)
    BASE_CTX=256; LONG_CTX=2048; VOCAB=2000; PRESET=demo
    PK_SHORT=6000; PK_LONG=1500
    BASE_LM_STEPS=500; BASE_SFT_STEPS=100; LONG_STEPS=120
    BASE_BATCH=8; LONG_BATCH=1; LONG_ACCUM=4
    EVAL_LENGTHS=256,512,1024,2048; TRIALS=4; QA_LIMIT=60; PPL_LIMIT=4 ;;
quick|ablation)
    BASE_CTX=128; LONG_CTX=512; VOCAB=1000; PRESET=small
    PK_SHORT=3000; PK_LONG=600
    BASE_LM_STEPS=300; BASE_SFT_STEPS=40; LONG_STEPS=60
    BASE_BATCH=8; LONG_BATCH=2; LONG_ACCUM=2
    EVAL_LENGTHS=128,256,512; TRIALS=3; QA_LIMIT=20; PPL_LIMIT=2 ;;
*) echo "usage: $0 [full|quick|ablation]" >&2; exit 2 ;;
esac
FACTOR=$((LONG_CTX / BASE_CTX))
mkdir -p "$D/.done"
T0=$(date +%s)

stage_no=0
stage() {   # stage NAME DESCRIPTION FUNCTION
    local name=$1 desc=$2 fn=$3
    stage_no=$((stage_no + 1))
    if [ -e "$D/.done/$name" ]; then
        echo "== stage $stage_no/7: $desc: done earlier ($(cat "$D/.done/$name")s), skipped"
        return
    fi
    echo "== stage $stage_no/7: $desc"
    local started=$(date +%s)
    "$fn"
    local secs=$(( $(date +%s) - started ))
    echo "$secs" >"$D/.done/$name"
    echo "   stage $name took ${secs}s"
}

do_build() {
    local tool
    for tool in lqa-ingest lqa-build lqa-sft lqa-eval; do
        [ -x "$B/$tool" ] || { echo "missing $B/$tool: run make" >&2; exit 1; }
    done
}

do_ingest() {
    rm -f "$D"/lqa.db*
    "$B/lqa-ingest" add --db "$D/lqa.db" --seed 1 --join build/corpus
    # The base model must learn to retrieve before LongLoRA can extend it: passkey-format
    # documents, all in the train split, no QA generated from them (only imported pairs, and text has none).
    rm -rf "$D/passkey"
    local unit_tokens=24 fixed=70
    scripts/passkey_docs.sh "$PK_SHORT" 1 $(( (BASE_CTX - fixed) / unit_tokens )) 11 "$D/passkey/short"
    scripts/passkey_docs.sh "$PK_LONG" $(( BASE_CTX / unit_tokens )) $(( (LONG_CTX - fixed) / unit_tokens )) 12 "$D/passkey/long"
    "$B/lqa-ingest" add --db "$D/lqa.db" --source passkey --split 1,0,0 --generators imported "$D/passkey"
    "$B/lqa-ingest" stats --db "$D/lqa.db"
}

do_shards() {
    "$B/lqa-build" tokenizer --db "$D/lqa.db" --vocab-size "$VOCAB" -o "$D/tokenizer.model"
    for ctx in "$BASE_CTX" "$LONG_CTX"; do
        "$B/lqa-build" shards --db "$D/lqa.db" --tokenizer "$D/tokenizer.model" --kind lm --max-len "$ctx" \
            --split train -o "$D/shards/lm-$ctx"
        "$B/lqa-build" shards --db "$D/lqa.db" --tokenizer "$D/tokenizer.model" --kind sft --max-len "$ctx" \
            --split train --pack -o "$D/shards/sft-$ctx"
    done
    "$B/lqa-build" stats "$D/shards/lm-$BASE_CTX"
}

train() { "$B/lqa-sft" train --threads "$THREADS" --log-every 10 "$@"; }

do_base() {
    rm -rf "$D/base-init" "$D/runs/base-lm" "$D/runs/base-sft"
    "$B/lqa-sft" init --preset "$PRESET" --tokenizer "$D/tokenizer.model" --ctx "$BASE_CTX" --seed 1 -o "$D/base-init"
    train --model "$D/base-init" --data "$D/shards/lm-$BASE_CTX" --out "$D/runs/base-lm" --ctx "$BASE_CTX" \
        --train full --attn full --lr 2e-3 --warmup 30 --schedule cosine --steps "$BASE_LM_STEPS" \
        --micro-batch "$BASE_BATCH" --grad-accum 1 --save-every 100
    train --model "$D/runs/base-lm/final" --data "$D/shards/sft-$BASE_CTX" --out "$D/runs/base-sft" \
        --ctx "$BASE_CTX" --train full --attn full --lr 5e-4 --warmup 10 --steps "$BASE_SFT_STEPS" \
        --micro-batch "$BASE_BATCH" --grad-accum 1 --save-every 100
    rm -rf "$D/base"; cp -r "$D/runs/base-sft/final" "$D/base"
}

do_longlora() {
    rm -rf "$D/runs/longlora" "$D/longlora"
    train --model "$D/base" --data "$D/shards/lm-$LONG_CTX" --out "$D/runs/longlora" --ctx "$LONG_CTX" \
        --train lora+ --attn s2 --group-ratio 0.25 --lr 1e-3 --warmup 10 --steps "$LONG_STEPS" \
        --micro-batch "$LONG_BATCH" --grad-accum "$LONG_ACCUM" --save-every 50
    "$B/lqa-sft" merge --model "$D/base" --adapter "$D/runs/longlora/final" -o "$D/longlora"
}

evaluate() {  # evaluate NAME MODEL_DIR
    "$B/lqa-eval" run --model "$2" --name "$1" --db "$D/lqa.db" --split test --tasks passkey,ppl,qa \
        --lengths "$EVAL_LENGTHS" --depths 0,0.25,0.5,0.75,1 --trials "$TRIALS" --limit "$QA_LIMIT" \
        --threads "$THREADS" -o "$D/results/$1.json"
}

do_eval() {
    mkdir -p "$D/results"
    # the base model with the same position interpolation and no training (LongLoRA's baseline)
    rm -rf "$D/base-pi"
    "$B/lqa-sft" merge --model "$D/base" --ctx "$LONG_CTX" -o "$D/base-pi"
    evaluate "base-${BASE_CTX}+PI-x$FACTOR" "$D/base-pi"
    evaluate "longlora-$LONG_CTX" "$D/longlora"
}

do_report() {
    local notes="$D/stage-times.tsv"
    {
        printf 'stage\tseconds\n'
        for s in build ingest shards base longlora eval; do
            printf '%s\t%s\n' "$s" "$(cat "$D/.done/$s" 2>/dev/null || echo -)"
        done
        echo "# Mode $mode: base context $BASE_CTX extended to $LONG_CTX (x$FACTOR); preset $PRESET; vocabulary $VOCAB; $THREADS threads."
        echo "# Base: $BASE_LM_STEPS lm steps then $BASE_SFT_STEPS sft steps, full training, full attention, micro-batch $BASE_BATCH."
        echo "# LongLoRA: $LONG_STEPS steps, lora+ (r 8, alpha 16, embedding and norms trainable), S2-Attn ratio 0.25, micro-batch $LONG_BATCH x $LONG_ACCUM accumulation; merged for evaluation."
        echo "# Baseline: the same base model position-interpolated to $LONG_CTX (lqa-sft merge --ctx), no training."
    } >"$notes"
    "$B/lqa-eval" report "$D"/results/*.json --notes "$notes" -o "$D"
}

stage build "tools" do_build
stage ingest "ingest the default corpus" do_ingest
stage shards "tokenizer and shards" do_shards
stage base "base model at ctx $BASE_CTX (full attention, from scratch)" do_base
stage longlora "LongLoRA to ctx $LONG_CTX (x$FACTOR)" do_longlora
stage eval "evaluate base+PI and LongLoRA" do_eval
do_report
echo "demo finished in $(( $(date +%s) - T0 ))s (this run); report: $D/report.html"
