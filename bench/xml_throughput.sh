#!/usr/bin/env bash
# xml_throughput.sh: parser-only throughput of the XML/HTML family on the default corpus's HTML
# manuals (debian-reference, PostgreSQL docs), beside `xmllint --stream --noout` over the same
# files in the same run, and `xmllint --html --noout` (the HTML tree parser we build on).
# Reports MB/s of input by wall clock and by CPU time (user+sys; the fairer figure on a shared
# machine) and our/xmllint ratios.
#   bench/xml_throughput.sh [FILES...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make --no-print-directory BUILD="$BUILD" "$BUILD/bench/lqa-xml-bench" >/dev/null
if [ $# -eq 0 ]; then
    set -- /usr/share/debian-reference/*.en.html /usr/share/doc/postgresql-doc-15/html/*.html
fi
mb=$(du -cb "$@" | tail -1 | awk '{printf "%.1f", $1/1048576}')
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
echo "# input: $# files, $mb MB"
measure() { # label, command... -> "label wall cpu"
    local label=$1; shift
    local t; t=$(mktemp)
    /usr/bin/time -f "%e %U %S" -o "$t" "$@" >/dev/null 2>&1 || true
    read -r wall user sys <"$t"; rm -f "$t"
    echo "$label $wall $(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')"
}
read -r _ w_ours c_ours < <(measure ours "$BUILD/bench/lqa-xml-bench" "$@")
read -r _ w_lint c_lint < <(measure xmllint xmllint --stream --noout "$@")
# the recovering HTML parser that builds the tree we walk: the floor of our own cost
read -r _ w_html c_html < <(measure xmllint-html xmllint --html --noout "$@")
awk -v mb="$mb" -v wo="$w_ours" -v co="$c_ours" -v wl="$w_lint" -v cl="$c_lint" -v wh="$w_html" -v ch="$c_html" 'BEGIN {
    printf "lqa parsers:           %.2f s wall, %.2f s cpu: %.1f MB/s wall, %.1f MB/s cpu\n", wo, co, mb/wo, mb/co
    printf "xmllint --stream:      %.2f s wall, %.2f s cpu: %.1f MB/s wall, %.1f MB/s cpu\n", wl, cl, mb/wl, mb/cl
    printf "xmllint --html:        %.2f s wall, %.2f s cpu: %.1f MB/s wall, %.1f MB/s cpu\n", wh, ch, mb/wh, mb/ch
    printf "ratio ours/xmllint --stream: %.2f (wall), %.2f (cpu)\n", (mb/wo)/(mb/wl), (mb/co)/(mb/cl)
    printf "ratio ours/xmllint --html:   %.2f (wall), %.2f (cpu)\n", (mb/wo)/(mb/wh), (mb/co)/(mb/ch)
}'
