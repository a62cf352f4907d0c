#!/usr/bin/env bash
# bench/longqa.sh: how far LongQA's questions reach on the default corpus (issue 15). Ingests
# build/corpus with --join (seed 1, the defaults), then reports:
#   - per kind, the anchor-to-evidence distance of the non-synthetic pairs in tokens, estimated
#     as characters / 4 from `export --format jsonl` (buckets 0, <512, 512-2k, 2-8k, >8k, median);
#   - the share of non-synthetic pairs in documents over 16k tokens whose evidence lies more than
#     8k tokens from the anchor (goal >= 40 %), the pair count (goal > 3,000) and exact
#     duplicates (goal 0, counted here from the export, not from the store's own figure);
#   - the test split by document length (goal: >= 25 % of its pairs from documents over 16k);
#   - sft shards at each MAX_LEN (default "1024 32768", all splits, a 1000-piece tokenizer as the
#     demo's): records with an anchor, those whose window holds anchor and evidence (checked by
#     lqa-build on the window's byte range), and the pairs dropped as too far apart for MAX_LEN.
# Prints a Markdown block for bench/RESULTS.md ("Ingest: long-range questions").
# Usage: [MAX_LENS="1024 32768"] bench/longqa.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build}
MAX_LENS=${MAX_LENS:-"1024 32768"}
for t in lqa-ingest lqa-build; do
    [ -x "$BUILD/$t" ] || { echo "bench/longqa.sh: $BUILD/$t not built (make)" >&2; exit 1; }
done
scripts/corpus.sh build/corpus
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export LQA_PROGRESS=0

"$BUILD/lqa-ingest" add -q --join --seed 1 --db "$TMP/lqa.db" build/corpus
"$BUILD/lqa-ingest" stats --json --db "$TMP/lqa.db" >"$TMP/stats.json"
"$BUILD/lqa-ingest" export --db "$TMP/lqa.db" --format jsonl -o "$TMP/qa.jsonl" 2>/dev/null
"$BUILD/lqa-build" tokenizer --db "$TMP/lqa.db" --vocab-size 1000 --seed 1 -o "$TMP/tok.model" >/dev/null 2>&1
for len in $MAX_LENS; do
    "$BUILD/lqa-build" shards --db "$TMP/lqa.db" --tokenizer "$TMP/tok.model" --kind sft --max-len "$len" \
        --split all -o "$TMP/sft-$len" >/dev/null 2>&1
done

python3 - "$TMP" "$MAX_LENS" <<'EOF'
import json, sys, statistics, collections
tmp, lens = sys.argv[1], sys.argv[2].split()
rows, doc_chars = [], {}
for line in open(f"{tmp}/qa.jsonl"):  # ~1 GB: every line carries its whole document; keep the rest
    r = json.loads(line)
    doc_chars[r["doc_id"]] = len(r.pop("context"))
    rows.append(r)
stats = json.load(open(f"{tmp}/stats.json"))
buckets = [("0", 0, 1), ("<512", 1, 512), ("512-2k", 512, 2048), ("2-8k", 2048, 8192), (">8k", 8192, 1e18)]
per = collections.defaultdict(list)
dups = collections.Counter()
long_n = long_far = 0
for r in rows:
    dups[(r["doc_id"], r["question"], r["answer"])] += 1
    if r["synthetic"]:
        continue
    d = None
    if r["anchor_end"] is not None and r["evidence_end"] is not None:
        a0, a1, e0, e1 = r["anchor_start"], r["anchor_end"], r["evidence_start"], r["evidence_end"]
        d = max(0, max(a0, e0) - min(a1, e1)) / 4.0
    per[r["kind"]].append(d)
    if doc_chars[r["doc_id"]] / 4.0 > 16384:
        long_n += 1
        long_far += d is not None and d > 8192
print("| kind | pairs | with anchor | " + " | ".join(b[0] for b in buckets) + " | median |")
print("|---|---:|---:|" + "---:|" * len(buckets) + "---:|")
for kind in sorted(per):
    ds = [d for d in per[kind] if d is not None]
    cells = [sum(lo <= d < hi for d in ds) for _, lo, hi in buckets]
    med = statistics.median(ds) if ds else 0
    print(f"| {kind} | {len(per[kind])} | {len(ds)} | " + " | ".join(map(str, cells)) + f" | {med:,.0f} |")
n_syn = sum(1 for r in rows if r["synthetic"])
print()
print(f"- pairs: {len(rows):,} ({len(rows) - n_syn:,} non-synthetic, {n_syn} synthetic)")
print(f"- non-synthetic pairs in documents over 16k tokens with evidence over 8k tokens from the anchor:"
      f" {long_far:,} of {long_n:,} ({100.0 * long_far / max(long_n, 1):.1f} %; goal >= 40 %)")
print(f"- exact duplicate (document, question, answer) pairs: {sum(c - 1 for c in dups.values())}"
      f" (the store's own count: {stats['duplicates']})")
test = [r for r in rows if r["split"] == "test"]
test_long = sum(1 for r in test if doc_chars[r["doc_id"]] / 4.0 > 16384)
test_docs = len({r["doc_id"] for r in test if not r["synthetic"]})
print(f"- test split: {len(test)} pairs over {test_docs} documents, {test_long} of them"
      f" ({100.0 * test_long / max(len(test), 1):.0f} %) from documents over 16k tokens (goal >= 25 %)")
for L in lens:
    m = json.load(open(f"{tmp}/sft-{L}/manifest.json"))
    a = m.get("anchors", {})
    w, k = a.get("records_with_anchor", 0), a.get("records_keeping_anchor_and_evidence", 0)
    far = m["dropped_reasons"].get("anchor_and_evidence_too_far", 0)
    print(f"- sft --max-len {L}: {m['records']:,} records of {m['source']['qa_pairs']:,} pairs; {w:,} with an anchor,"
          f" {k:,} keeping anchor and evidence in the window ({100.0 * k / max(w, 1):.1f} %);"
          f" dropped as too far apart for {L} tokens: {far:,}; other drops: {m['dropped'] - far}")
EOF
