#!/usr/bin/env bash
# Streamed QA-set import: generates a LongAlpaca-shaped array of SIZE_MB (default 500, the size
# of LongAlpaca-12k), parses it with bench/ingest_parse_bench.c (parsers only, no store) plain and
# zstd-compressed, and prints documents, MB/s and peak RSS, beside jansson loading the whole
# array at once (json_load_file) in the same run. Usage:
#   make bench-ingest-qaset [QASET_MB=500]     or     bench/ingest_qaset_stream.sh BUILD SIZE_MB
set -euo pipefail
build=${1:-build}
mb=${2:-500}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lqa-bench-qaset-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 bench/gen_longalpaca.py "$tmp/longalpaca.json" "$mb"
zstd -q -3 -T2 "$tmp/longalpaca.json" -o "$tmp/longalpaca.json.zst"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u '+%F %H:%M UTC')"
"$build/bench/lqa-parse-bench" "$tmp/longalpaca.json"
"$build/bench/lqa-parse-bench" "$tmp/longalpaca.json.zst"
# reference: the whole array loaded at once by jansson (time and memory of a non-streaming import)
"$build/bench/lqa-parse-bench" --jansson-whole "$tmp/longalpaca.json"
