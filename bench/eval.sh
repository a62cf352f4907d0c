#!/usr/bin/env bash
# bench/eval.sh: inference speed of lqa-eval (KV-cache prefill and greedy decode, CPU) for the
# demo-sized model (lqa-sft init --preset demo, random weights: speed does not depend on them)
# at several context lengths. Prints one JSON line per length and a markdown table for
# bench/RESULTS.md ("Eval: inference speed"). Decode per-token time should grow about linearly
# with the context (attention reads the cached keys once), not quadratically.
#   bench/eval.sh [LENGTHS (default 1024,2048,4096,8192)] [THREADS (default 0 = all)]
set -euo pipefail
LENGTHS=${1:-1024,2048,4096,8192}
THREADS=${2:-0}
BUILD=${BUILD:-build/bench-eval}
make -s BUILD="$BUILD" -j1 "$BUILD/lqa-eval" "$BUILD/lqa-sft" "$BUILD/lqa-build" "$BUILD/lqa-ingest" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# a tokenizer from some text (the vocabulary size is what matters for speed: 8000 pieces)
python3 - "$work/corpus.md" <<'PY'
import random, sys
random.seed(5)
words = ("keeper harbour ship fog bell light tower night wave stone river bridge market village winter summer "
         "letter station engine garden window morning evening captain teacher doctor soldier farmer").split()
with open(sys.argv[1], "w") as f:
    f.write("# Corpus\n\n")
    for s in range(60):
        f.write(f"## Part {s}\n\n")
        for p in range(20):
            f.write(" ".join(" ".join(random.choice(words) for _ in range(12)) + f" {random.randint(1, 9999)}."
                             for _ in range(6)) + "\n\n")
PY
LQA_LOG=error "$BUILD/lqa-ingest" add --db "$work/db" "$work/corpus.md" >/dev/null
"$BUILD/lqa-build" tokenizer --db "$work/db" --vocab-size 8000 -o "$work/tok.model" >/dev/null 2>&1
max=$(tr , '\n' <<<"$LENGTHS" | sort -n | tail -1)
"$BUILD/lqa-sft" init --preset demo --tokenizer "$work/tok.model" --ctx $((max + 128)) -o "$work/model" >/dev/null
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads=$THREADS"
"$BUILD/lqa-eval" bench --model "$work/model" --lengths "$LENGTHS" --decode 64 --threads "$THREADS" | tee "$work/bench.jsonl"
python3 - "$work/bench.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print("| context | prefill tok/s (wall) | prefill tok/s (CPU) | decode ms/token (wall) | decode ms/token (CPU) |")
print("| ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    print(f"| {r['context']} | {r['prefill_tok_s']:.0f} | {r['prefill_tokens'] / r['prefill_cpu_s']:.0f} | "
          f"{r['decode_ms_per_token']:.2f} | {r['decode_cpu_ms_per_token']:.2f} |")
# decode cost = fixed part (projections, lm_head) + a part linear in the context (attention over
# the cache); a least-squares line through the CPU times shows which, and the worst residual how
# far from a line the points are
xs = [r["context"] for r in rows]; ys = [r["decode_cpu_ms_per_token"] for r in rows]
n = len(xs); mx = sum(xs) / n; my = sum(ys) / n
sxx = sum((x - mx) ** 2 for x in xs)
if n >= 2 and sxx > 0:
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx; a = my - b * mx
    worst = max(abs(y - (a + b * x)) / y for x, y in zip(xs, ys))
    print(f"\ndecode CPU ms/token ~= {a:.3f} + {b * 1000:.3f} per 1k tokens of context "
          f"(worst point {100 * worst:.0f}% off the line); {xs[-1] // xs[0]}x the context costs "
          f"{ys[-1] / ys[0]:.2f}x per token")
PY
