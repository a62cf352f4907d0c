#!/usr/bin/env bash
# bench/dist.sh: data-parallel lqa-sft (bench/RESULTS.md, "Train: ranks and all-reduce").
#   1. CPU scaling: the demo model (lqa-sft init --preset demo) at ctx CTX on the jargon file's
#      text, one process of 1 thread with grad-accum 2A against `mpirun -np 2` of 1 thread each
#      with grad-accum A (the same global batch and examples): global tokens/s, each rank's
#      data-loading and all-reduce seconds per step (metrics.jsonl), medians over the steps
#      after the first;
#   2. the all-reduce's volume per optimizer step for LLaMA-2-7B LoRA+ (r 8 on q,k,v,o; embedding
#      and norms trained), from the trainable tensor sizes, for an 8-GPU node and a 64-GPU
#      cluster, and the bandwidth at which the reduce stays under 5 % of the step.
# Usage: bench/dist.sh (CTX=512 STEPS=8 A=2 BUILD=build). Prints a Markdown section on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
BUILD=${BUILD:-build}
CTX=${CTX:-512}
STEPS=${STEPS:-8}
A=${A:-2}
make --no-print-directory BUILD="$BUILD" -j1 "$BUILD/lqa-sft" "$BUILD/lqa-ingest" "$BUILD/lqa-build" >&2
command -v mpirun >/dev/null || { echo "bench/dist.sh: mpirun not found (make deps)" >&2; exit 1; }
SFT="$BUILD/lqa-sft"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# waiting ranks yield the core rather than spin (the cores here are shared with other work)
MPIRUN=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1 mpirun --oversubscribe --bind-to none)

# a tokenizer and lm shards from a fixed English text
zcat /usr/share/doc/jargon-text/jargon.txt.gz > "$W/jargon.txt"
spm_train --input="$W/jargon.txt" --model_prefix="$W/tok" --vocab_size=8000 --model_type=bpe \
    --byte_fallback=true --split_digits=true --hard_vocab_limit=false --num_threads=2 \
    --minloglevel=2 >/dev/null 2>&1
LQA_LOG=warn "$BUILD/lqa-ingest" add --db "$W/store.db" --split 1,0,0 "$W/jargon.txt" >/dev/null 2>&1
LQA_LOG=warn "$BUILD/lqa-build" shards --db "$W/store.db" --tokenizer "$W/tok.model" --kind lm --max-len "$CTX" \
    -o "$W/shards" >/dev/null
LQA_LOG=warn "$SFT" init --preset demo --tokenizer "$W/tok.model" --ctx "$CTX" -o "$W/demo"

# CPU seconds of the whole run, all processes (mpirun waits for its ranks, so their rusage adds
# up): the figure a loaded machine does not distort, unlike tokens/s
cpu_seconds() {
    python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[2:], check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.2f" % (r.ru_utime + r.ru_stime))' "$@"
}
train() { # RUN GRAD_ACCUM STEPS [launcher...]
    local run=$1 ga=$2 steps=$3
    shift 3
    LQA_LOG=warn cpu_seconds "$W/$run.cpu" "$@" "$SFT" train --model "$W/demo" --data "$W/shards" --out "$W/$run" \
        --ctx "$CTX" --threads 1 --micro-batch 1 --grad-accum "$ga" --steps "$steps" --save-every 1000 --seed 7 >&2
}
train one $((2 * A)) "$STEPS"
train two "$A" "$STEPS" "${MPIRUN[@]}" -np 2
# the same runs for one step: their CPU time is set-up (twice for two ranks) plus one step
train one1 $((2 * A)) 1
train two1 "$A" 1 "${MPIRUN[@]}" -np 2

# medians over steps 2.. of metrics.jsonl (the first step pays the page faults)
summary() {
    python3 - "$W/$1/metrics.jsonl" "$W/$1/config.json" <<'EOF'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])][1:]
cfg = json.load(open(sys.argv[2]))
tps = statistics.median(l["tokens_per_s"] for l in lines)
step = statistics.median(l["tokens"] / l["tokens_per_s"] for l in lines)
ranks = lines[0].get("ranks", 1)
data = [statistics.median(l["data_s"][k] for l in lines) for k in range(ranks)] if ranks > 1 else []
red = [statistics.median(l["reduce_s"][k] for l in lines) for k in range(ranks)] if ranks > 1 else []
cpu = lambda run: float(open(run + ".cpu").read())
base = sys.argv[1].replace("/metrics.jsonl", "")
print(json.dumps({"cpu_step": (cpu(base) - cpu(base + "1")) / (len(lines)),
                  "tps": tps, "step": step, "ranks": ranks, "data": data, "reduce": red,
                  "trainable": cfg["derived"]["trainable_params"], "loss": [l["loss"] for l in lines][-1]}))
EOF
}
S1=$(summary one)
S2=$(summary two)

python3 - "$S1" "$S2" "$CTX" "$STEPS" "$A" <<'EOF'
import json, sys, os, platform, subprocess, datetime
one, two = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ctx, steps, A = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
load = os.getloadavg()[0]
ver = subprocess.run(["mpirun", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
print("## Train: ranks and all-reduce\n")
print(f"{datetime.date.today()}, {cpu}, {os.cpu_count()} cores (load average {load:.1f} at the end), {ver}.")
print(f"`bench/dist.sh` (CTX={ctx} STEPS={steps} A={A}): demo model, ctx {ctx}, micro-batch 1, "
      f"{2*A} sequences per optimizer step, 1 thread per process, medians of steps 2..{steps}.\n")
print("| processes | grad-accum | global tokens/s | step s | data loading s per rank | all-reduce s per rank | CPU s per step, all processes |")
print("|---|---|---|---|---|---|---|")
print(f"| 1 | {2*A} | {one['tps']:.0f} | {one['step']:.2f} | - | - | {one['cpu_step']:.2f} |")
fmt = lambda xs: " / ".join(f"{x:.4f}" for x in xs)
print(f"| 2 (mpirun) | {A} | {two['tps']:.0f} | {two['step']:.2f} | {fmt(two['data'])} | {fmt(two['reduce'])} | {two['cpu_step']:.2f} |")
print(f"\nWall-clock speed-up {two['tps']/one['tps']:.2f}x on 2 ranks at that load. The CPU time, which the "
      f"load does not distort, says what 2 free cores would give: per step (a run of {steps} steps less a run of 1, "
      f"so set-up is out) the 2 ranks spent {two['cpu_step']/one['cpu_step']:.2f}x the CPU seconds of one process "
      f"for the same sequences, so with a free core each 2 ranks would give "
      f"{2*one['cpu_step']/two['cpu_step']:.2f}x the tokens/s (a ratio under 1 is noise of the shared cores). The demo's "
      f"{one['trainable']:,} trainable floats ({one['trainable']*4/2**20:.1f} MiB) are reduced once per step; the "
      "all-reduce column includes packing and MPI's progress polling, on a machine whose cores are shared.\n")

# ---- LLaMA-2-7B LoRA+: what the all-reduce moves ----
V, D, L, r = 32000, 4096, 32, 8
embed = V * D
norms = (2 * L + 1) * D
lora = L * 4 * r * (D + D)          # q,k,v,o: A [r, 4096] + B [4096, r] each (32 heads x 128 = 4096)
n = embed + norms + lora
S = 4 * n                           # fp32 gradients, one bucket
print("LLaMA-2-7B LoRA+ (r 8 on q,k,v,o; embedding and norms trained): "
      f"embedding {embed:,} + norms {norms:,} + LoRA {lora:,} = **{n:,} floats, {S/1e6:.0f} MB** of fp32 gradient "
      "per optimizer step, whatever the batch (the embedding is 94 % of it).\n")
# step time: 6 x params FLOPs per token (forward, recompute, backward through frozen weights) plus S2-Attn,
# at 40 % of an H100's 989 dense bf16 TFLOP/s
P7 = 6.74e9
flop_tok = 6 * P7 + 3 * 4 * L * D * 2048   # S2 groups of ctx/4 = 2048 at ctx 8192: QK^T and PV, fwd + recompute + bwd
rate = 0.40 * 989e12
def row(label, N, seqs):
    tokens = seqs * 8192
    t = tokens * flop_tok / rate
    per_rank = 2 * (N - 1) / N * S  # ring all-reduce: what each rank sends (and receives)
    bw = per_rank / (0.05 * t)
    print(f"| {label} | {N} | {seqs} | {t:.2f} | {per_rank/1e6:.0f} MB | {N*per_rank/1e9:.1f} GB | "
          f"{bw/1e9:.1f} GB/s ({bw*8/1e9:.0f} Gbit/s) |")
print("| setup | GPUs | sequences of 8192 per GPU per step | step s (assumed) | sent per GPU per step | "
      "sent by all GPUs | bandwidth for reduce < 5 % of step |")
print("|---|---|---|---|---|---|---|")
row("8-GPU node, paper's batch 64", 8, 8)
row("64 GPUs, batch 64 (1 per GPU)", 64, 1)
row("64 GPUs, batch 512 (8 per GPU)", 64, 8)
print(f"""
Assumptions: ctx 8192 (the paper's LLaMA-2-7B runs), {flop_tok/1e9:.1f} GFLOP per token (6 x 6.74e9 for
forward, checkpoint recompute and backward through the frozen weights, plus S2-Attn over groups of
2048), at 40 % of an H100's 989 dense bf16 TFLOP/s ({rate/1e12:.0f} TFLOP/s): a step is the GPU's
sequences x 8192 tokens at that rate. The reduce runs once after the last micro-batch, not
overlapped with the backward, so all of it counts. A ring all-reduce sends 2 (N-1)/N of the
bucket per GPU; the last column is the rate each GPU's path must sustain (NCCL's "bus
bandwidth"). Inside a node NVLink (hundreds of GB/s) makes it negligible;
across nodes each ring crosses every node's network once, so a node's links must carry about
that rate: 64 GPUs at 8 sequences per GPU need 24 Gbit/s per node (any 100 Gbit/s fabric), at
the paper's batch of 64 (1 sequence per GPU) 195 Gbit/s per node (several 200-400 Gbit/s
InfiniBand links, as DGX-class nodes have, or a larger batch). Halving the bucket (bf16
gradients) or reducing only the embedding rows a step touched would halve or shrink it further.""")
EOF
