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

python3 - "$OUT" "$THREADS" <<'PY'
import json, sys, platform, subprocess, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
threads = sys.argv[2]
ours = [r for r in rows if "impl" not in r]
s2 = ours[0]; full = ours[1]; mem = ours[2:]
torch = {r["attn"]: r for r in rows if "impl" in r}
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
import os
print(f"Machine: {cpu}, {threads} threads, {datetime.date.today()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}.")
print("The machine was shared with other")
print("engineers' builds and tests while this ran: absolute numbers are noisy, ratios less so.\n")
print(f"Model: `lqa-sft init --preset demo` ({s2['params_m']:.1f} M parameters, vocab 8000), LoRA+ (r 8, q,k,v,o),")
print("gradient checkpointing, micro-batch 1, one step = forward + backward + AdamW, random tokens.\n")
print("| attention | ctx | tokens/s | step s | GFLOP/step | attention GFLOP/step | GFLOP/s |")
print("|---|---|---|---|---|---|---|")
for r in (s2, full):
    print(f"| {r['attn']} | {r['ctx']} | {r['tokens_per_s']:.0f} | {r['step_s_mean']:.3f} | {r['gflop_per_step']:.1f} | "
          f"{r['attn_gflop_per_step']:.1f} | {r['gflops']:.1f} |")
speed = s2["tokens_per_s"] / full["tokens_per_s"]
flop = full["gflop_per_step"] / s2["gflop_per_step"]
attn = full["attn_gflop_per_step"] / s2["attn_gflop_per_step"]
print(f"\nS2-Attn / full speed-up: **{speed:.2f}x**; whole-step FLOP ratio {flop:.2f}x (attention alone {attn:.2f}x).")
best = max(s2["gflops"], full["gflops"])
print(f"OpenBLAS sgemm on the same threads: {s2['sgemm_square_gflops']:.1f} GFLOP/s at 2048^3, "
      f"{s2['sgemm_layer_gflops']:.1f} GFLOP/s at the model's MLP shape ({s2['ctx']}x{688}x{256}).")
print(f"End to end: {s2['gflops']:.1f} (S2) / {full['gflops']:.1f} (full) GFLOP/s = "
      f"{100*s2['gflops']/s2['sgemm_square_gflops']:.0f}% / {100*full['gflops']/s2['sgemm_square_gflops']:.0f}% of square sgemm, "
      f"{100*s2['gflops']/s2['sgemm_layer_gflops']:.0f}% / {100*full['gflops']/s2['sgemm_layer_gflops']:.0f}% of the layer-shaped sgemm.\n")
print("Peak RSS of one process doing one S2-Attn training step (model, LoRA, gradients, optimizer, activations):\n")
print("| ctx | peak RSS MiB | MiB per 1k tokens over the 2k run |")
print("|---|---|---|")
base = mem[0]
for r in mem:
    slope = "" if r is base else f"{(r['peak_rss_mib'] - base['peak_rss_mib']) / ((r['ctx'] - base['ctx']) / 1024):.1f}"
    print(f"| {r['ctx']} | {r['peak_rss_mib']:.0f} | {slope} |")
if torch:
    print("\nPyTorch (Debian python3-torch, same model, LoRA+, checkpointing, same threads, same run):\n")
    print("| attention | PyTorch tokens/s | lqa-sft tokens/s | lqa-sft / PyTorch |")
    print("|---|---|---|---|")
    for attn, r in (("full", full), ("s2", s2)):
        if attn in torch:
            t = torch[attn]
            print(f"| {attn} | {t['tokens_per_s']:.0f} | {r['tokens_per_s']:.0f} | **{r['tokens_per_s']/t['tokens_per_s']:.2f}x** |")
    print(f"\n({torch['full']['impl']}; its attention builds the masked score matrix, LongLoRA's roll form for S2.)")
else:
    print("\nPyTorch: not importable on this machine, no comparison.")
PY
