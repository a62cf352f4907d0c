#!/usr/bin/env bash
# passkey_docs.sh COUNT MIN_UNITS MAX_UNITS SEED OUTDIR
# Writes COUNT plain-text training documents in the LongLoRA passkey format (the same wording
# lqa-eval's passkey task uses): the task description, the filler sentences repeated a random
# number of units in [MIN_UNITS, MAX_UNITS], the key line at a random depth, the question, and the
# answer. The demo ingests them as their own source so that the `lm` shards teach a small base
# model to retrieve and copy, as a pretrained LLaMA can. Deterministic from SEED.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 COUNT MIN_UNITS MAX_UNITS SEED OUTDIR" >&2; exit 2; }
count=$1 min_units=$2 max_units=$3 seed=$4 out=$5
mkdir -p "$out"
awk -v count="$count" -v lo="$min_units" -v hi="$max_units" -v seed="$seed" -v out="$out" 'BEGIN {
    srand(seed)
    intro = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there."
    unit = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
    for (i = 0; i < count; i++) {
        n = lo + int(rand() * (hi - lo + 1))
        at = int(rand() * (n + 1))
        key = 1 + int(rand() * 50000)
        text = intro
        for (u = 0; u <= n; u++) {
            if (u == at) text = text " The pass key is " key ". Remember it. " key " is the pass key."
            if (u < n) text = text " " unit
        }
        text = text " What is the pass key? The pass key is " key "."
        file = sprintf("%s/passkey-%06d.txt", out, i)
        print text > file
        close(file)
    }
}'
