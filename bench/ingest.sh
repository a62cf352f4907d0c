#!/usr/bin/env bash
# bench/ingest.sh: lqa-ingest throughput (MB of input per second) on the default corpus, beside
# `xmllint --stream --noout` (libxml2's streaming parser, doing nothing with the content) over
# the same XHTML files in the same run: lqa-ingest with its default thread count (the online
# CPUs, or THREADS) and with --threads 1, so the wall ratio (threads) and the CPU ratio (cost)
# come from one invocation. Checks that both give the same pair count and a byte-identical
# `export --format jsonl`. Prints a Markdown block for bench/RESULTS.md ("Ingest: throughput").
# Usage: [THREADS=N] bench/ingest.sh [BUILD_DIR] [RUNS]
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-3}
TOOL="$BUILD/lqa-ingest"
[ -x "$TOOL" ] || { echo "bench/ingest.sh: $TOOL not built (make)" >&2; exit 1; }
scripts/corpus.sh build/corpus
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export LQA_PROGRESS=0

mb() { du -cbL "$@" | tail -1 | awk '{printf "%.2f", $1 / 1e6}'; }
# "wall cpu" seconds of one command (bash's time: user + system CPU of the command)
secs() { local TIMEFORMAT='%R %U %S'; { time "$@" >/dev/null 2>&1; } 2>&1 | awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }'; }
# best of RUNS, wall and CPU each: the least disturbed by other load
best() { sort -n -k1,1 | head -1 | cut -d' ' -f1; }
bestcpu() { sort -n -k2,2 | head -1 | cut -d' ' -f2; }

mapfile -t html < <(find build/corpus/postgresql build/corpus/debian-reference -name '*.html' | sort)
all_mb=$(mb build/corpus)
html_mb=$(mb "${html[@]}")

N=${THREADS:-$(nproc)}
add() { local db=$1 t=$2; shift 2; rm -f "$db"*; secs "$TOOL" add -q --join --threads "$t" --db "$db" "$@"; }
m_all=$(for i in $(seq "$RUNS"); do add "$TMP/a.db" "$N" build/corpus; done)
m_all1=$(for i in $(seq "$RUNS"); do add "$TMP/a1.db" 1 build/corpus; done)
m_html=$(for i in $(seq "$RUNS"); do add "$TMP/h.db" "$N" build/corpus/postgresql build/corpus/debian-reference; done)
m_html1=$(for i in $(seq "$RUNS"); do add "$TMP/h1.db" 1 build/corpus/postgresql build/corpus/debian-reference; done)
m_xml=$(for i in $(seq "$RUNS"); do secs xmllint --stream --noout "${html[@]}"; done)
t_all=$(best <<<"$m_all"); t_all1=$(best <<<"$m_all1"); t_html=$(best <<<"$m_html"); t_html1=$(best <<<"$m_html1")
t_xml=$(best <<<"$m_xml")
c_all=$(bestcpu <<<"$m_all"); c_all1=$(bestcpu <<<"$m_all1"); c_html=$(bestcpu <<<"$m_html")
c_html1=$(bestcpu <<<"$m_html1"); c_xml=$(bestcpu <<<"$m_xml")
pairs=$(sqlite3 "$TMP/a.db" "SELECT count(*) FROM qa")
pairs1=$(sqlite3 "$TMP/a1.db" "SELECT count(*) FROM qa")
"$TOOL" export --db "$TMP/a.db" --format jsonl -o "$TMP/a.jsonl" >/dev/null 2>&1
"$TOOL" export --db "$TMP/a1.db" --format jsonl -o "$TMP/a1.jsonl" >/dev/null 2>&1
if cmp -s "$TMP/a.jsonl" "$TMP/a1.jsonl" && [ "$pairs" = "$pairs1" ]; then same="byte-identical"
else same="**DIFFERENT** (a bug: the store must not depend on the thread count)"; fi

rate() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
r_all=$(rate "$all_mb" "$t_all"); r_all1=$(rate "$all_mb" "$t_all1"); r_html=$(rate "$html_mb" "$t_html")
r_html1=$(rate "$html_mb" "$t_html1"); r_xml=$(rate "$html_mb" "$t_xml")
q_all=$(rate "$all_mb" "$c_all"); q_all1=$(rate "$all_mb" "$c_all1"); q_html=$(rate "$html_mb" "$c_html")
q_html1=$(rate "$html_mb" "$c_html1"); q_xml=$(rate "$html_mb" "$c_xml")
ratio=$(rate "$r_html" "$r_xml"); ratio_cpu=$(rate "$q_html" "$q_xml")
ratio1=$(rate "$r_html1" "$r_xml"); ratio1_cpu=$(rate "$q_html1" "$q_xml")
cat <<EOR
## Ingest: throughput

$(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),
$(xmllint --version 2>&1 | head -1), best of $RUNS runs (machine shared with other work: absolute
figures are noisy; the ratios are measured in the same run).

| what | input | wall | MB/s (wall) | CPU | MB/s (CPU) |
|---|---|---|---|---|---|
| lqa-ingest add --join --threads $N, whole default corpus ($pairs QA pairs) | ${all_mb} MB | ${t_all} s | ${r_all} | ${c_all} s | ${q_all} |
| lqa-ingest add --join --threads 1, whole default corpus ($pairs1 QA pairs) | ${all_mb} MB | ${t_all1} s | ${r_all1} | ${c_all1} s | ${q_all1} |
| lqa-ingest add --join --threads $N, the XHTML files only | ${html_mb} MB | ${t_html} s | ${r_html} | ${c_html} s | ${q_html} |
| lqa-ingest add --join --threads 1, the XHTML files only | ${html_mb} MB | ${t_html1} s | ${r_html1} | ${c_html1} s | ${q_html1} |
| xmllint --stream --noout, the same XHTML files | ${html_mb} MB | ${t_xml} s | ${r_xml} | ${c_xml} s | ${q_xml} |

Ratio lqa-ingest / xmllint --stream on the same files (goal: >= 0.5): --threads $N **${ratio}** by
wall time, **${ratio_cpu}** by CPU time; --threads 1 **${ratio1}** by wall, **${ratio1_cpu}** by CPU.
Whole corpus, --threads $N vs --threads 1: $pairs vs $pairs1 QA pairs, \`export --format jsonl\` $same.
EOR
