/* test_ingest_xml_stream.c: the multi-document and multi-file XML inputs: MediaWiki dumps
 * (streamed; pages of namespace 0 only, redirects skipped, wikitext reduced, compressed input,
 * a cut dump), EPUB (spine order, OPF title), --join (TOC reading order, one document with
 * every page's sections), and the real Debian manuals when installed. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "tests/test_ingest_util.h"

static lqa_rng rng;

static int setup(void **state) {
    lqa_rng_seed(&rng, lqa_test_seed());
    return 0;
}

static void rand_word(char *w, size_t cap) {
    int n = 4 + (int)lqa_rng_below(&rng, 6);
    for (int i = 0; i < n && (size_t)i + 1 < cap; i++) w[i] = (char)('a' + lqa_rng_below(&rng, 26));
    w[n] = '\0';
}

static int parse_file(const char *path, xt_docs *c, lqa_err *err) {
    lqa_parse_opts o = xt_opts(c);
    return lqa_parse_path(path, &o, xt_sink, c, err);
}

static lqa_doc *doc_titled(xt_docs *c, const char *title) {
    for (int i = 0; i < c->n; i++)
        if (c->docs[i].title && strcmp(c->docs[i].title, title) == 0) return &c->docs[i];
    return NULL;
}

/* ---- MediaWiki ------------------------------------------------------------------------------ */

static void test_mediawiki_fixture(void **state) {
    xt_docs c = {0};
    lqa_err err;
    char *dir = lqa_path_join(lqa_test_fixtures(), "xml"), *path = lqa_path_join(dir, "mediawiki.xml");
    assert_int_equal(parse_file(path, &c, &err), 0);
    assert_int_equal(c.n, 2); /* the redirect and the talk page are skipped */
    lqa_doc *d = doc_titled(&c, "Honey bee");
    assert_non_null(d);
    assert_string_equal(d->format, "mediawiki");
    xt_check_invariants(d);
    assert_non_null(strstr(d->text.data, "A honey bee (also spelled honeybee) is a eusocial flying insect within the genus Apis."));
    assert_non_null(strstr(d->text.data, "perennial colonial nests from wax."));
    assert_non_null(strstr(d->text.data, "Latin for \"bee\". See the source and."));
    assert_null(strstr(d->text.data, "NOISE"));  /* templates, refs, comments, files, tables, old revisions */
    assert_null(strstr(d->text.data, "'''"));
    assert_null(strstr(d->text.data, "[["));
    assert_null(strstr(d->text.data, "{{"));
    assert_null(strstr(d->text.data, "Category"));
    int ety = xt_section(d, "Etymology"), early = xt_section(d, "Early use");
    assert_true(ety >= 0 && early >= 0 && xt_section(d, "Glossary") >= 0);
    assert_int_equal(d->sections[early].parent, ety);
    int drone = xt_def(d, "Drone"), queen = xt_def(d, "Queen");
    assert_true(drone >= 0 && queen >= 0);
    assert_true(xt_span_is(d, d->defs[drone].def_span, "A male bee."));
    assert_true(xt_span_is(d, d->defs[queen].def_span, "The fertile female of the colony."));
    assert_non_null(strstr(d->text.data, "First item\nSecond item"));
    /* the simple wikitable is a table (caption, links, attributes, colspan, one cell per line);
       the nested one is gone */
    assert_int_equal(d->n_tables, 1);
    lqa_table *t = &d->tables[0];
    assert_string_equal(t->caption, "Early beekeeping");
    assert_int_equal(t->n_rows, 4);
    assert_int_equal(t->n_cols, 2);
    assert_string_equal(xt_cell(t, 0, 0), "Place");
    assert_string_equal(xt_cell(t, 1, 0), "Roman Empire");
    assert_string_equal(xt_cell(t, 1, 1), "100");
    assert_string_equal(xt_cell(t, 2, 1), "Everywhere else");
    assert_string_equal(xt_cell(t, 3, 1), "2400 BC");
    assert_int_equal(t->section, early);
    assert_non_null(doc_titled(&c, "Wax"));
    xt_docs_free(&c);
    free(dir), free(path);
}

/* A generated dump: n pages with random titles, kinds (article / redirect / talk) and bodies. */
typedef struct gen_dump {
    lqa_buf xml;
    char titles[64][32];
    char marker[64][32];
    int kept[64];
    int n;
} gen_dump;

static void gen_mediawiki(gen_dump *g, int n) {
    g->n = n;
    lqa_buf_puts(&g->xml, "<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.11/\" version=\"0.11\">\n"
                          "<siteinfo><sitename>T</sitename></siteinfo>\n");
    for (int i = 0; i < n; i++) {
        int kind = (int)lqa_rng_below(&rng, 4); /* 0,1 article, 2 redirect, 3 talk */
        char w[16];
        rand_word(w, sizeof w);
        snprintf(g->titles[i], sizeof g->titles[i], "%s %d", w, i);
        rand_word(w, sizeof w);
        snprintf(g->marker[i], sizeof g->marker[i], "mk%s%d", w, i);
        g->kept[i] = kind < 2;
        lqa_buf_printf(&g->xml, "<page><title>%s%s</title><ns>%d</ns><id>%d</id>%s<revision><text xml:space=\"preserve\">",
                       kind == 3 ? "Talk:" : "", g->titles[i], kind == 3 ? 1 : 0, i + 1,
                       kind == 2 ? "<redirect title=\"X\" />" : "");
        lqa_buf_printf(&g->xml, "'''%s''' is a [[thing|%s]] {{tmpl|%s}}.\n\n== Part ==\nBody &lt;ref&gt;cite&lt;/ref&gt; here.",
                       g->marker[i], g->marker[i], "tmplnoise");
        lqa_buf_puts(&g->xml, "</text></revision></page>\n");
    }
    lqa_buf_puts(&g->xml, "</mediawiki>\n");
}

static void test_mediawiki_generated_plain_and_gzip(void **state) {
    gen_dump g = {0};
    gen_mediawiki(&g, 8 + (int)lqa_rng_below(&rng, 50));
    char *plain = lqa_path_join(lqa_test_tmpdir(), "dump.xml"), *gz = lqa_path_join(lqa_test_tmpdir(), "dump.xml.gz");
    lqa_test_write(plain, g.xml.data, g.xml.len);
    gzFile f = gzopen(gz, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, g.xml.data, (unsigned)g.xml.len), (int)g.xml.len);
    assert_int_equal(gzclose(f), Z_OK);
    for (int v = 0; v < 2; v++) {
        xt_docs c = {0};
        lqa_err err;
        assert_int_equal(parse_file(v ? gz : plain, &c, &err), 0);
        int want = 0;
        for (int i = 0; i < g.n; i++) {
            lqa_doc *d = doc_titled(&c, g.titles[i]);
            want += g.kept[i];
            if (!g.kept[i]) {
                assert_null(d);
                continue;
            }
            assert_non_null(d);
            xt_check_invariants(d);
            char expect[128];
            snprintf(expect, sizeof expect, "%s is a %s .", g.marker[i], g.marker[i]);
            assert_non_null(strstr(d->text.data, expect));
            assert_null(strstr(d->text.data, "tmplnoise"));
            assert_null(strstr(d->text.data, "cite"));
            assert_int_equal(d->n_sections, 1);
        }
        assert_int_equal(c.n, want);
        xt_docs_free(&c);
    }
    /* the sink can stop the stream */
    xt_docs c = {0};
    c.stop_after = 1;
    lqa_err err;
    assert_int_equal(parse_file(plain, &c, &err), 0);
    assert_true(c.n <= 1);
    xt_docs_free(&c);
    /* a dump cut in the middle: the pages before the cut stay, then an error names the file */
    size_t cut = g.xml.len / 2;
    char *cutp = lqa_path_join(lqa_test_tmpdir(), "cut.xml");
    lqa_test_write(cutp, g.xml.data, cut);
    memset(&c, 0, sizeof c);
    assert_int_equal(parse_file(cutp, &c, &err), -1);
    assert_non_null(strstr(err.msg, cutp));
    xt_docs_free(&c);
    lqa_buf_free(&g.xml);
    free(plain), free(gz), free(cutp);
}

/* ---- EPUB ----------------------------------------------------------------------------------- */

static void zip_add(struct archive *a, const char *name, const char *data) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)strlen(data));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, data, strlen(data)), (la_ssize_t)strlen(data));
    archive_entry_free(e);
}

static void test_epub_spine_order(void **state) {
    int n = 2 + (int)lqa_rng_below(&rng, 5);
    char words[8][16], title[16];
    rand_word(title, sizeof title);
    for (int i = 0; i < n; i++) rand_word(words[i], sizeof words[i]);
    char *path = lqa_path_join(lqa_test_tmpdir(), "book.epub");
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    /* the OCF rule: "mimetype" first and stored, so its content sits at a fixed place */
    assert_int_equal(archive_write_zip_set_compression_store(a), ARCHIVE_OK);
    zip_add(a, "mimetype", "application/epub+zip");
    assert_int_equal(archive_write_zip_set_compression_deflate(a), ARCHIVE_OK);
    zip_add(a, "META-INF/container.xml",
            "<?xml version=\"1.0\"?><container version=\"1.0\" xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\">"
            "<rootfiles><rootfile full-path=\"OEBPS/content.opf\" media-type=\"application/oebps-package+xml\"/>"
            "</rootfiles></container>");
    /* the manifest lists the pages in reverse; the spine gives the reading order */
    lqa_buf opf = {0};
    lqa_buf_printf(&opf, "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\">"
                         "<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>%s</dc:title></metadata><manifest>",
                   title);
    for (int i = n - 1; i >= 0; i--)
        lqa_buf_printf(&opf, "<item id=\"p%d\" href=\"text/page%%20%d.xhtml\" media-type=\"application/xhtml+xml\"/>", i, i);
    lqa_buf_puts(&opf, "</manifest><spine>");
    for (int i = 0; i < n; i++) lqa_buf_printf(&opf, "<itemref idref=\"p%d\"/>", i);
    lqa_buf_puts(&opf, "</spine></package>");
    zip_add(a, "OEBPS/content.opf", opf.data);
    for (int i = 0; i < n; i++) {
        char name[64], page[512];
        snprintf(name, sizeof name, "OEBPS/text/page %d.xhtml", i);
        snprintf(page, sizeof page,
                 "<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>p</title></head>"
                 "<body><h1>Chapter %d</h1><p>Word %s here.</p></body></html>", i + 1, words[i]);
        zip_add(a, name, page);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);

    xt_docs c = {0};
    lqa_err err;
    lqa_parse_opts o = xt_opts(&c);
    /* through the dispatcher: libarchive writes an extra field after "mimetype", which the
       EPUB sniffing must step over */
    int rc = lqa_parse_path(path, &o, xt_sink, &c, &err);
    if (rc) print_message("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n, 1);
    lqa_doc *d = &c.docs[0];
    xt_check_invariants(d);
    assert_string_equal(d->format, "epub");
    assert_string_equal(d->title, title);
    assert_int_equal(d->n_sections, n);
    const char *prev = d->text.data;
    for (int i = 0; i < n; i++) {
        char h[32], w[64];
        snprintf(h, sizeof h, "Chapter %d", i + 1);
        assert_string_equal(d->sections[i].title, h);
        snprintf(w, sizeof w, "Word %s here.", words[i]);
        const char *at = strstr(d->text.data, w);
        assert_non_null(at);
        assert_true(at >= prev); /* spine order */
        prev = at;
    }
    /* a zip without container.xml is not an EPUB */
    char *bad = lqa_path_join(lqa_test_tmpdir(), "notepub.epub");
    a = archive_write_new();
    archive_write_set_format_zip(a);
    assert_int_equal(archive_write_open_filename(a, bad), ARCHIVE_OK);
    zip_add(a, "mimetype", "application/epub+zip");
    zip_add(a, "x.txt", "hello");
    archive_write_close(a);
    archive_write_free(a);
    assert_int_equal(lqa_xml_parse_epub(bad, NULL, xt_sink, &c, &err), -1);
    assert_non_null(strstr(err.msg, "container.xml"));
    assert_non_null(strstr(err.msg, bad));
    xt_docs_free(&c);
    lqa_buf_free(&opf);
    free(path), free(bad);
}

/* ---- --join --------------------------------------------------------------------------------- */

static void test_join_generated_manual(void **state) {
    char *dir = lqa_path_join(lqa_test_tmpdir(), "manual");
    int n = 3 + (int)lqa_rng_below(&rng, 5);
    /* the TOC lists pages in a shuffled order (names do not give the order); page k links to
       its sub-page k.sub through its own TOC; one page is not linked at all */
    uint32_t perm[8];
    for (int i = 0; i < n; i++) perm[i] = (uint32_t)i;
    lqa_rng_shuffle_u32(&rng, perm, (uint64_t)n);
    lqa_buf idx = {0};
    lqa_buf_puts(&idx, "<html><head><title>The Manual</title></head><body><div class=\"navheader\">"
                       "<a href=\"zz-nav.html\">nav</a></div><h1>The Manual</h1><div class=\"toc\"><ul>");
    for (int i = 0; i < n; i++) lqa_buf_printf(&idx, "<li><a href=\"p%u.html#top\">Page %u</a></li>", perm[i], perm[i]);
    lqa_buf_puts(&idx, "<li><a href=\"http://example.org/x.html\">ext</a></li></ul></div></body></html>");
    char *ip = lqa_path_join(dir, "index.html");
    lqa_test_write(ip, idx.data, idx.len);
    for (int i = 0; i < n; i++) {
        char name[64], page[512];
        snprintf(name, sizeof name, "%s/p%d.html", dir, i);
        snprintf(page, sizeof page,
                 "<html><head><title>p</title></head><body><div class=\"navheader\"><a href=\"index.html\">Home</a></div>"
                 "<h2>Page %d</h2><p>Text of page %d.</p><div class=\"toc\"><a href=\"p%d-sub.html\">sub</a></div>"
                 "</body></html>", i, i, i);
        lqa_test_write(name, page, strlen(page));
        snprintf(name, sizeof name, "%s/p%d-sub.html", dir, i);
        snprintf(page, sizeof page, "<html><body><h3>Sub %d</h3><p>Sub text %d.</p></body></html>", i, i);
        lqa_test_write(name, page, strlen(page));
    }
    char *nav = lqa_path_join(dir, "zz-nav.html"), *orphan = lqa_path_join(dir, "aa-orphan.html");
    lqa_test_write(nav, "<html><body><p>Nav page.</p></body></html>", 43);
    lqa_test_write(orphan, "<html><body><h2>Orphan</h2><p>Unlinked.</p></body></html>", 58);

    char **paths;
    int np;
    lqa_err err;
    assert_int_equal(lqa_manual_reading_order(ip, &paths, &np, &err), 0);
    assert_int_equal(np, 1 + 2 * n + 2);
    assert_non_null(strstr(paths[0], "/index.html"));
    for (int i = 0; i < n; i++) {
        char want[64], sub[64];
        snprintf(want, sizeof want, "/p%u.html", perm[i]);
        snprintf(sub, sizeof sub, "/p%u-sub.html", perm[i]);
        assert_non_null(strstr(paths[1 + 2 * i], want));
        assert_non_null(strstr(paths[2 + 2 * i], sub)); /* depth-first: a page's own TOC next */
    }
    assert_non_null(strstr(paths[np - 2], "/aa-orphan.html")); /* unlinked pages by name */
    assert_non_null(strstr(paths[np - 1], "/zz-nav.html"));   /* navigation links are not TOC */

    xt_docs c = {0};
    lqa_parse_opts o = xt_opts(&c);
    assert_int_equal(lqa_parse_joined((const char *const *)paths, np, &o, xt_sink, &c, &err), 0);
    assert_int_equal(c.n, 1);
    lqa_doc *d = &c.docs[0];
    xt_check_invariants(d);
    assert_string_equal(d->title, "The Manual");
    const char *prev = d->text.data;
    for (int i = 0; i < n; i++) {
        char h[32];
        snprintf(h, sizeof h, "Page %u", perm[i]);
        int s = xt_section(d, h);
        assert_true(s >= 0);
        snprintf(h, sizeof h, "Sub %u", perm[i]);
        int sub = xt_section(d, h);
        assert_true(sub >= 0);
        assert_int_equal(d->sections[sub].parent, s);
        assert_true(d->text.data + d->sections[s].span.start >= prev);
        prev = d->text.data + d->sections[s].span.start;
    }
    assert_true(xt_section(d, "Orphan") >= 0);
    /* lqa_parse_manual (one parse per page) makes the same document */
    xt_docs cm = {0};
    lqa_parse_opts om = xt_opts(&cm);
    assert_int_equal(lqa_parse_manual(ip, &om, xt_sink, &cm, &err), 0);
    assert_int_equal(cm.n, 1);
    assert_int_equal(cm.docs[0].text.len, d->text.len);
    assert_memory_equal(cm.docs[0].text.data, d->text.data, d->text.len);
    assert_int_equal(cm.docs[0].n_sections, d->n_sections);
    assert_string_equal(cm.docs[0].title, d->title);
    assert_string_equal(cm.warnings.data ? cm.warnings.data : "", c.warnings.data ? c.warnings.data : "");
    xt_docs_free(&cm);
    /* a page that cannot be read is skipped with a warning, the rest still joins */
    free(paths[1]);
    paths[1] = lqa_path_join(dir, "missing.html");
    xt_docs c2 = {0};
    lqa_parse_opts o2 = xt_opts(&c2);
    assert_int_equal(lqa_parse_joined((const char *const *)paths, np, &o2, xt_sink, &c2, &err), 0);
    assert_non_null(strstr(c2.warnings.data, "missing.html"));
    assert_int_equal(c2.docs[0].n_sections, d->n_sections - 1);
    /* the same for lqa_parse_manual: a linked page that does not parse is skipped with a warning */
    char *gone = lqa_path_join(dir, "p0-sub.html");
    lqa_test_write(gone, "", 0);
    xt_docs c3 = {0};
    lqa_parse_opts o3 = xt_opts(&c3);
    assert_int_equal(lqa_parse_manual(ip, &o3, xt_sink, &c3, &err), 0);
    assert_int_equal(c3.docs[0].n_sections, d->n_sections - 1);
    assert_int_equal(xt_section(&c3.docs[0], "Sub 0"), -1);
    assert_non_null(strstr(c3.warnings.data, "p0-sub.html"));
    assert_non_null(strstr(c3.warnings.data, "of the joined manual, skipped"));
    xt_docs_free(&c3);
    free(gone);
    /* an index that cannot be read fails the manual */
    char *nope = lqa_path_join(dir, "no-index.html");
    assert_int_equal(lqa_parse_manual(nope, &o3, xt_sink, &c3, &err), -1);
    assert_non_null(strstr(err.msg, "no-index.html"));
    free(nope);
    for (int i = 0; i < np; i++) free(paths[i]);
    free(paths);
    xt_docs_free(&c), xt_docs_free(&c2);
    lqa_buf_free(&idx);
    free(dir), free(ip), free(nav), free(orphan);
}

/* TOC links through symlinks: one to a page of the manual is that page (visited once), one to a
 * page outside the manual's directory is not followed; one parse per page gives the same. */
static void test_join_symlinked_pages(void **state) {
    char *dir = lqa_path_join(lqa_test_tmpdir(), "linked"), *out = lqa_path_join(lqa_test_tmpdir(), "outside.html");
    char *ip = lqa_path_join(dir, "index.html"), *a = lqa_path_join(dir, "a.html"), *b = lqa_path_join(dir, "b.html");
    char *alias = lqa_path_join(dir, "alias.html"), *away = lqa_path_join(dir, "sub/away.html");
    const char *index = "<html><head><title>Linked</title></head><body><div class=\"toc\"><a href=\"alias.html\">A</a>"
                        "<a href=\"sub/away.html\">out</a><a href=\"b.html\">B</a><a href=\"a.html#x\">A again</a>"
                        "</div></body></html>";
    lqa_test_write(ip, index, strlen(index));
    lqa_test_write(a, "<html><body><h2>Page A</h2><p>Text A.</p></body></html>", 55);
    lqa_test_write(b, "<html><body><h2>Page B</h2><p>Text B.</p></body></html>", 55);
    lqa_test_write(out, "<html><body><h2>Outside</h2><p>Not here.</p></body></html>", 58);
    lqa_test_write(away, "", 0); /* makes sub/, then the file becomes a symlink */
    assert_int_equal(unlink(away), 0);
    assert_int_equal(symlink("a.html", alias), 0);
    assert_int_equal(symlink(out, away), 0);
    char **paths;
    int np;
    lqa_err err;
    assert_int_equal(lqa_manual_reading_order(ip, &paths, &np, &err), 0);
    assert_int_equal(np, 3); /* index, a (through alias), b; the symlinks' own names are not pages */
    assert_non_null(strstr(paths[1], "/a.html"));
    assert_non_null(strstr(paths[2], "/b.html"));
    xt_docs c = {0};
    lqa_parse_opts o = xt_opts(&c);
    assert_int_equal(lqa_parse_joined((const char *const *)paths, np, &o, xt_sink, &c, &err), 0);
    xt_docs cm = {0};
    lqa_parse_opts om = xt_opts(&cm);
    assert_int_equal(lqa_parse_manual(ip, &om, xt_sink, &cm, &err), 0);
    assert_int_equal(cm.docs[0].text.len, c.docs[0].text.len);
    assert_memory_equal(cm.docs[0].text.data, c.docs[0].text.data, c.docs[0].text.len);
    assert_true(xt_section(&cm.docs[0], "Page A") >= 0 && xt_section(&cm.docs[0], "Page B") >= 0);
    assert_int_equal(xt_section(&cm.docs[0], "Outside"), -1);
    assert_null(strstr(cm.docs[0].text.data + strlen("Page A"), "Page A")); /* A once */
    for (int i = 0; i < np; i++) free(paths[i]);
    free(paths);
    xt_docs_free(&c), xt_docs_free(&cm);
    free(dir), free(out), free(ip), free(a), free(b), free(alias), free(away);
}

/* ---- the real Debian manuals ------------------------------------------------------------------ */

static void test_debian_reference_chapter(void **state) {
    const char *ch = "/usr/share/debian-reference/ch02.en.html";
    if (!lqa_path_exists(ch)) {
        print_message("debian-reference-en is not installed (no %s): skipping\n", ch);
        skip();
    }
    xt_docs c = {0};
    lqa_err err;
    assert_int_equal(parse_file(ch, &c, &err), 0);
    lqa_doc *d = &c.docs[0];
    xt_check_invariants(d);
    assert_true(d->n_sections >= 20);
    assert_true(d->n_tables >= 5);
    assert_true(d->n_passages >= 20); /* "2.1.3. ..." numbered headings */
    xt_docs_free(&c);

    char **paths;
    int np;
    assert_int_equal(lqa_manual_reading_order("/usr/share/debian-reference/index.en.html", &paths, &np, &err), 0);
    assert_true(np >= 14);
    assert_non_null(strstr(paths[1], "pr01.en.html"));
    assert_non_null(strstr(paths[2], "ch01.en.html"));
    assert_non_null(strstr(paths[3], "ch02.en.html"));
    for (int i = 0; i < np; i++) free(paths[i]);
    free(paths);
}

static int index_of(char **paths, int n, const char *name) {
    for (int i = 0; i < n; i++) {
        const char *base = strrchr(paths[i], '/');
        if (base && strcmp(base + 1, name) == 0) return i;
    }
    return -1;
}

static void test_postgresql_reading_order(void **state) {
    const char *idx = "/usr/share/doc/postgresql-doc-15/html/index.html";
    if (!lqa_path_exists(idx)) {
        print_message("postgresql-doc-15 is not installed (no %s): skipping\n", idx);
        skip();
    }
    char **paths;
    int np;
    lqa_err err;
    assert_int_equal(lqa_manual_reading_order(idx, &paths, &np, &err), 0);
    assert_true(np > 1000);
    assert_int_equal(index_of(paths, np, "preface.html"), 1);
    int fn = index_of(paths, np, "functions.html"), str = index_of(paths, np, "functions-string.html"),
        bin = index_of(paths, np, "functions-binarystring.html"), tut = index_of(paths, np, "tutorial.html");
    assert_true(tut >= 0 && fn > tut && str == fn + 4 && bin == str + 1); /* 9.1-9.3 come between */
    for (int i = 0; i < np; i++) free(paths[i]);
    free(paths);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mediawiki_fixture),
        cmocka_unit_test(test_mediawiki_generated_plain_and_gzip),
        cmocka_unit_test(test_epub_spine_order),
        cmocka_unit_test(test_join_generated_manual),
        cmocka_unit_test(test_join_symlinked_pages),
        cmocka_unit_test(test_debian_reference_chapter),
        cmocka_unit_test(test_postgresql_reading_order),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
