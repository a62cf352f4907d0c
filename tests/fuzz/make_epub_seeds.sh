#!/bin/sh
# make_epub_seeds.sh DIR: seeds for the EPUB fuzz target's corpus, from the XHTML fixtures: two
# small EPUBs, one with "mimetype" first and stored (as the spec asks), one with it last and
# compressed (as careless tools write them), and the same members as a member list
# (members.txt: "@@ NAME" lines, each followed by the member's bytes; fuzz_ingest_epub.c).
set -eu
out=$1
mkdir -p "$out"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/META-INF" "$t/OEBPS"
printf 'application/epub+zip' > "$t/mimetype"
cat > "$t/META-INF/container.xml" <<'X'
<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>
X
cat > "$t/OEBPS/content.opf" <<'X'
<?xml version="1.0"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:title>Seed</dc:title></metadata>
<manifest><item id="a" href="a.xhtml" media-type="application/xhtml+xml"/>
<item id="b" href="b.xhtml" media-type="application/xhtml+xml"/></manifest>
<spine><itemref idref="b"/><itemref idref="a"/></spine></package>
X
fix=$(dirname "$0")/../fixtures/xml
cp "$fix/docbook_xsl.html" "$t/OEBPS/a.xhtml"
cp "$fix/sphinx.html" "$t/OEBPS/b.xhtml"
here=$(pwd)
case "$out" in /*) dest=$out ;; *) dest=$here/$out ;; esac
(cd "$t" && rm -f "$dest/first.epub" "$dest/last.epub" &&
    zip -q -X -0 "$dest/first.epub" mimetype && zip -q -X -r "$dest/first.epub" META-INF OEBPS &&
    zip -q -X -r "$dest/last.epub" META-INF OEBPS mimetype)
for f in mimetype META-INF/container.xml OEBPS/content.opf OEBPS/a.xhtml OEBPS/b.xhtml; do
    printf '@@ %s\n' "$f"
    cat "$t/$f"
    printf '\n'
done > "$dest/members.txt"
