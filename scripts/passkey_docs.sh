#!/usr/bin/env bash
# passkey_docs.sh COUNT MIN_UNITS MAX_UNITS SEED OUTDIR
# passkey_docs.sh --sizes TOKENIZER
# Writes COUNT plain-text training documents in the LongLoRA passkey format (the same wording
# lqa-eval's passkey task uses, eval/tasks.h): the task description, the filler sentences
# repeated a random number of units in [MIN_UNITS, MAX_UNITS], the key line at a random depth,
# the question, and the answer. The demo ingests them as their own source so that the `lm`
# shards teach a small base model to retrieve and copy, as a pretrained LLaMA can.
# Deterministic from SEED.
# --sizes prints "FIXED UNIT": the tokens (by sentencepiece model TOKENIZER, with spm_encode)
# of a document with no filler (BOS and EOS included, the longest key), and of one filler unit,
# so that a caller can choose unit counts whose documents fit a context.
set -euo pipefail
intro="There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there."
unit="The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
max_key=50000
line_fmt="The pass key is %s. Remember it. %s is the pass key."
question_fmt="What is the pass key? The pass key is %s."

if [ "${1:-}" = --sizes ]; then
    [ $# -eq 2 ] || { echo "usage: $0 --sizes TOKENIZER" >&2; exit 2; }
    tokens() { printf '%s\n' "$1" | spm_encode --model="$2" | wc -w; }
    # shellcheck disable=SC2059 # the formats are ours
    fixed=$(( $(tokens "$intro $(printf "$line_fmt" $max_key $max_key) $(printf "$question_fmt" $max_key)" "$2") + 2 ))
    echo "$fixed $(tokens "$unit" "$2")"
    exit 0
fi
[ $# -eq 5 ] || { echo "usage: $0 COUNT MIN_UNITS MAX_UNITS SEED OUTDIR | --sizes TOKENIZER" >&2; exit 2; }
count=$1 min_units=$2 max_units=$3 seed=$4 out=$5
mkdir -p "$out"
awk -v count="$count" -v lo="$min_units" -v hi="$max_units" -v seed="$seed" -v out="$out" \
    -v intro="$intro" -v unit="$unit" -v max_key="$max_key" -v line_fmt="$line_fmt" -v question_fmt="$question_fmt" 'BEGIN {
    srand(seed)
    for (i = 0; i < count; i++) {
        n = lo + int(rand() * (hi - lo + 1))
        at = int(rand() * (n + 1))
        key = 1 + int(rand() * max_key)
        text = intro
        for (u = 0; u <= n; u++) {
            if (u == at) text = text " " sprintf(line_fmt, key, key)
            if (u < n) text = text " " unit
        }
        text = text " " sprintf(question_fmt, key)
        file = sprintf("%s/passkey-%06d.txt", out, i)
        print text > file
        close(file)
    }
}'
