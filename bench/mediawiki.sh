#!/usr/bin/env bash
# mediawiki.sh: peak memory of streaming a MediaWiki dump. Generates a synthetic dump of
# SIZE_MB (default 1024) with bench/gen_mediawiki.py (kept in $DUMP for reruns), parses it with
# the parser-only driver under /usr/bin/time -v, and, when build/lqa-ingest exists and
# INGEST=1, ingests it into a scratch store the same way. Prints the figures for
# bench/RESULTS.md ("Ingest: MediaWiki streaming").
#   SIZE_MB=1024 DUMP=/tmp/lqa-mw-1g.xml bench/mediawiki.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SIZE_MB=${SIZE_MB:-1024}
DUMP=${DUMP:-/tmp/lqa-mediawiki-${SIZE_MB}mb.xml}
make --no-print-directory BUILD="$BUILD" "$BUILD/bench/lqa-xml-bench" >/dev/null
if [ ! -s "$DUMP" ]; then
    python3 bench/gen_mediawiki.py --size-mb "$SIZE_MB" --seed 1 -o "$DUMP"
fi
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
echo "# dump: $DUMP ($(du -m "$DUMP" | cut -f1) MB)"
run() { # label, command...
    local label=$1; shift
    local log; log=$(mktemp)
    /usr/bin/time -v "$@" >"$log.out" 2>"$log"
    echo "$label: $(tail -1 "$log.out")"
    echo "$label: peak_rss_mb=$(awk '/Maximum resident set size/ {printf "%.1f", $6/1024}' "$log")" \
         "wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")" \
         "cpu_s=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$log")"
    rm -f "$log" "$log.out"
}
run parse "$BUILD/bench/lqa-xml-bench" "$DUMP"
run xmllint-stream xmllint --stream --noout "$DUMP"
if [ "${INGEST:-0}" = 1 ] && [ -x "$BUILD/lqa-ingest" ]; then
    db=$(mktemp -d)/mw.db
    run ingest "$BUILD/lqa-ingest" add --db "$db" "$DUMP"
    rm -rf "$(dirname "$db")"
fi
