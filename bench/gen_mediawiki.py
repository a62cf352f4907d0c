#!/usr/bin/env python3
"""gen_mediawiki.py: writes a synthetic MediaWiki export dump of a given size for the streaming
benchmark (bench/mediawiki.sh) and tests: article pages with headings, links, templates,
<ref>s, bold/italic, wikitables and definition lists, plus redirects and talk pages.
Deterministic from --seed. Python 3 stdlib only.

    bench/gen_mediawiki.py --size-mb 1024 --seed 1 -o /tmp/dump.xml
"""
import argparse
import random
import sys
from xml.sax.saxutils import escape

WORDS = ("bee hive honey wax colony queen drone worker nectar pollen flower field summer winter "
         "swarm comb cell larva brood forage dance sun wind river stone city king law court "
         "market trade ship harbour road bridge tower wall gate church school book letter").split()


def sentence(rng, n=None):
    n = n or rng.randint(6, 18)
    out = []
    for _ in range(n):
        w = rng.choice(WORDS)
        r = rng.random()
        if r < 0.08:
            w = "[[%s|%s]]" % (w.capitalize(), w)
        elif r < 0.12:
            w = "[[%s]]" % w
        elif r < 0.15:
            w = "'''%s'''" % w
        elif r < 0.17:
            w = "''%s''" % w
        out.append(w)
    s = " ".join(out).capitalize() + "."
    if rng.random() < 0.2:
        s += '<ref name="r%d">{{cite web|title=%s|url=https://example.org/%d}}</ref>' % (
            rng.randint(0, 999), rng.choice(WORDS), rng.randint(0, 99999))
    return s


def paragraph(rng):
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 7)))


def article(rng):
    parts = ["{{Infobox thing|name=%s|image={{nested|x}}}}" % rng.choice(WORDS), paragraph(rng)]
    for s in range(rng.randint(2, 6)):
        parts.append("\n== %s %d ==" % (rng.choice(WORDS).capitalize(), s))
        parts.append(paragraph(rng))
        if rng.random() < 0.5:
            parts.append("\n=== %s ===" % rng.choice(WORDS).capitalize())
            parts.append(paragraph(rng))
        if rng.random() < 0.3:
            rows = "\n|-\n".join("| %s || %d" % (rng.choice(WORDS), rng.randint(1, 999)) for _ in range(4))
            parts.append('{| class="wikitable"\n! Name !! Value\n|-\n%s\n|}' % rows)
        if rng.random() < 0.3:
            parts.append("; %s : %s" % (rng.choice(WORDS), sentence(rng)))
        if rng.random() < 0.3:
            parts.append("\n".join("* " + sentence(rng, 5) for _ in range(3)))
    parts.append("[[Category:%s]]" % rng.choice(WORDS))
    return "\n\n".join(parts)


POOL = 2000


def page(rng, pid, pool, talk):
    r = rng.random()
    if r < 0.1:
        title, ns, redirect, text = "Redirect %d" % pid, 0, True, "#REDIRECT [[Page %d]]" % (pid - 1)
    elif r < 0.15:
        title, ns, redirect, text = "Talk:Page %d" % pid, 1, False, rng.choice(talk)
    else:
        title, ns, redirect, text = "Page %d" % pid, 0, False, "Page %d: %s" % (pid, rng.choice(pool))
    red = '    <redirect title="Page %d" />\n' % (pid - 1) if redirect else ""
    return ("  <page>\n    <title>%s</title>\n    <ns>%d</ns>\n    <id>%d</id>\n%s"
            "    <revision>\n      <id>%d</id>\n      <text bytes=\"%d\" xml:space=\"preserve\">%s</text>\n"
            "    </revision>\n  </page>\n") % (escape(title), ns, pid, red, pid * 10, len(text), escape(text))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=float, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    target = int(a.size_mb * 1024 * 1024)
    written = 0
    # Page bodies come from a pool generated once (a 1 GB dump is then fast to write); titles,
    # ids, kinds and the pick from the pool still vary page by page.
    pool = [article(rng) for _ in range(POOL)]
    talk = [paragraph(rng) for _ in range(64)]
    with open(a.out, "w", encoding="utf-8") as f:
        head = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">\n'
                '  <siteinfo><sitename>Synthetic</sitename></siteinfo>\n')
        f.write(head)
        written += len(head)
        pid = 1
        chunk = []
        while written < target:
            p = page(rng, pid, pool, talk)
            pid += 1
            chunk.append(p)
            written += len(p.encode("utf-8"))
            if len(chunk) >= 256:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
        f.write("</mediawiki>\n")
    print("%s: %d pages, %.1f MB" % (a.out, pid - 1, written / 1048576), file=sys.stderr)


if __name__ == "__main__":
    main()
