#!/usr/bin/env bash
# corpus.sh: lays out the default LongQA corpus under OUT (default build/corpus) from installed
# Debian packages (see docs/CORPUS.md for what, where from and licences):
#   bible/NN-Book.txt          the KJV (bible-kjv), one file per book, "Book C:V text" verse lines
#   debian-reference/*.html    the Debian Reference (debian-reference-en), one XHTML file per chapter
#   postgresql/NNN-chapter/    the PostgreSQL 15 manual (postgresql-doc-15): one directory per
#                              chapter (index.html = the chapter page + the pages its table of
#                              contents links), ingested with --join as one document per chapter
#   jargon/jargon.txt.gz       the Jargon File 4.4.7 (jargon-text), plain text, gzip
#   nodejs/*.md.gz             the Node.js API reference (nodejs-doc), Markdown, gzip, one file per module
# Builds into OUT.tmp and renames, so OUT is either complete or absent. Idempotent: does nothing
# when OUT/.complete holds the current layout version (bump LAYOUT when the layout changes;
# delete OUT to force a rebuild).
set -euo pipefail
OUT=${1:-build/corpus}
LAYOUT=2
[ "$(cat "$OUT/.complete" 2>/dev/null)" = "$LAYOUT" ] && exit 0
# The packages are installed by `make deps`; installing them here too (a no-op when present)
# keeps `scripts/corpus.sh` usable on its own, as tests/test_corpus.c calls it.
PKGS="debian-reference-en postgresql-doc-15 bible-kjv jargon-text nodejs-doc libxml2-utils"
"$(dirname "$0")/deps.sh" $PKGS || { echo "corpus.sh: could not install $PKGS" >&2; exit 1; }
PG=/usr/share/doc/postgresql-doc-15/html
DEBREF=/usr/share/doc/debian-reference-en/docs
JARGON=/usr/share/doc/jargon-text/jargon.txt.gz
NODE=/usr/share/doc/nodejs/api
for need in "$PG/index.html" "$DEBREF/ch01.en.html" "$JARGON" "$NODE/fs.md.gz" /usr/bin/bible /usr/bin/xmllint; do
    [ -e "$need" ] || { echo "corpus.sh: $need missing: install $PKGS" >&2; exit 1; }
done
TMP="$OUT.tmp"
rm -rf "$TMP"
mkdir -p "$TMP/bible" "$TMP/debian-reference" "$TMP/postgresql" "$TMP/jargon" "$TMP/nodejs"

# KJV: the bible tool prints "Book C" headers and "  V text" lines; one file per book.
bible -l0 "Gen1:1-Rev22:21" | awk -v dir="$TMP/bible" '
    /^[^ ].* [0-9]+$/ { chap = $NF; book = $0; sub(/ [0-9]+$/, "", book)
                        if (book != cur) { if (out) close(out); cur = book; n++
                                           name = book; gsub(/ /, "_", name)
                                           out = sprintf("%s/%02d-%s.txt", dir, n, name) }
                        next }
    /^  *[0-9]+ / { v = $1; sub(/^ *[0-9]+ /, ""); print cur " " chap ":" v " " $0 > out }'

# Debian Reference: the chapter pages (the index page would join them; we keep chapters apart).
for f in "$DEBREF"/pr01.en.html "$DEBREF"/ch[0-9]*.en.html "$DEBREF"/ap[a-z].en.html; do
    [ -e "$f" ] && cp "$f" "$TMP/debian-reference/"
done

# PostgreSQL: chapters are the second level of the manual's table of contents (below parts).
hrefs() { # unique page names linked from the table of contents of $1, in order, anchors dropped
    xmllint --html --xpath "$2" "$1" 2>/dev/null | grep -o 'href="[^"]*"' | sed 's/href="//; s/"$//; s/#.*//' |
        awk 'NF && !seen[$0]++'
}
n=0
for ch in $(hrefs "$PG/index.html" '//div[@class="toc"]/dl/dd/dl/dt/span/a/@href'); do
    n=$((n + 1))
    d=$(printf '%s/postgresql/%03d-%s' "$TMP" "$n" "${ch%.html}")
    mkdir -p "$d"
    cp "$PG/$ch" "$d/index.html"
    for page in $(hrefs "$PG/$ch" '//div[@class="toc"]//a/@href'); do
        [ "$page" != "$ch" ] && [ -f "$PG/$page" ] && cp "$PG/$page" "$d/"
    done
done

cp "$JARGON" "$TMP/jargon/"
# Node.js: the Markdown sources of the API reference, as shipped (gzip); index/all pages are
# tables of links, left out.
for f in "$NODE"/*.md.gz; do
    case "$(basename "$f")" in index.md.gz|all.md.gz|documentation.md.gz|synopsis.md.gz) ;; *) cp "$f" "$TMP/nodejs/" ;; esac
done
echo "$LAYOUT" > "$TMP/.complete"
rm -rf "$OUT"
mv "$TMP" "$OUT"
echo "corpus: $(find "$OUT" -type f ! -name .complete | wc -l) files, $(du -sh "$OUT" | cut -f1) in $OUT" >&2
