/* test_ingest_real.c: parser behaviour for real documentation trees (issue 15): code and
 * preformatted blocks keep their line breaks and indentation (HTML pre, DocBook programlisting,
 * Markdown fences); an EPUB is found by META-INF/container.xml whatever its entry order; a
 * header-less table is marked so; Mallard if:choose keeps one branch and key sequences keep
 * their separators; --join-by chapter cuts an HTML manual at its table of contents' entries and
 * a Mallard help directory at its guides. Inputs are built from fresh random words. */
#include "tests/test_ingest_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/rng.h"

static lqa_rng rng;

static int setup(void **state) {
    lqa_rng_seed(&rng, lqa_test_seed());
    return 0;
}

static void rand_word(char *out, size_t n) {
    size_t len = 4 + lqa_rng_below(&rng, 6);
    if (len >= n) len = n - 1;
    for (size_t i = 0; i < len; i++) out[i] = (char)('a' + lqa_rng_below(&rng, 26));
    out[len] = '\0';
}

static char *tmp_file(const char *name, const char *data) {
    char *path = lqa_path_join(lqa_test_tmpdir(), name);
    lqa_test_write(path, data, strlen(data));
    return path;
}

static lqa_doc *parse_one(const char *path, xt_docs *c) {
    lqa_err err;
    lqa_parse_opts o = xt_opts(c);
    int rc = lqa_parse_path(path, &o, xt_sink, c, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(c->n, 1);
    xt_check_invariants(&c->docs[0]);
    return &c->docs[0];
}

/* A code block of random identifiers: lines indented 0, 4 or 8 spaces (and a tab). */
static void code_block(lqa_buf *raw, lqa_buf *want) {
    int lines = 3 + (int)lqa_rng_below(&rng, 5);
    for (int i = 0; i < lines; i++) {
        char a[16], b[16];
        rand_word(a, sizeof a), rand_word(b, sizeof b);
        int indent = 4 * (int)lqa_rng_below(&rng, 3);
        if (i == lines - 1) { /* a tab: to the next 8-column stop */
            lqa_buf_printf(raw, "\t%s(%s);\n", a, b);
            lqa_buf_printf(want, "%s        %s(%s);", i ? "\n" : "", a, b);
            continue;
        }
        lqa_buf_printf(raw, "%*s%s =  %s;\n", indent, "", a, b);
        lqa_buf_printf(want, "%s%*s%s =  %s;", i ? "\n" : "", indent, "", a, b);
    }
}

static void test_code_keeps_indentation(void **state) {
    static const char *const kinds[] = {"html", "docbook", "markdown"};
    for (int k = 0; k < 3; k++) {
        lqa_buf raw = {0}, want = {0}, doc = {0};
        code_block(&raw, &want);
        char name[32];
        if (k == 0) {
            lqa_buf_printf(&doc, "<html><head><title>T</title></head><body><h1>Code page</h1><p>Before it.</p>"
                                 "<pre class=\"programlisting\">\n%s</pre><p>After it.</p></body></html>", raw.data);
            snprintf(name, sizeof name, "code.html");
        } else if (k == 1) {
            lqa_buf_printf(&doc, "<?xml version=\"1.0\"?><article xmlns=\"http://docbook.org/ns/docbook\" version=\"5.0\">"
                                 "<title>Code</title><section><title>S</title><para>Before it.</para>"
                                 "<programlisting>%s</programlisting><para>After it.</para></section></article>", raw.data);
            snprintf(name, sizeof name, "code.xml");
        } else {
            lqa_buf_printf(&doc, "# Code page\n\nBefore it.\n\n```c\n%s```\n\nAfter it.\n", raw.data);
            snprintf(name, sizeof name, "code.md");
        }
        char *path = tmp_file(name, doc.data);
        xt_docs c = {0};
        lqa_doc *d = parse_one(path, &c);
        if (!strstr(d->text.data, want.data))
            fail_msg("%s: code lost its layout:\n%s\n--- expected inside ---\n%s", kinds[k], d->text.data, want.data);
        assert_non_null(strstr(d->text.data, "After it."));
        xt_docs_free(&c);
        free(path);
        lqa_buf_free(&raw), lqa_buf_free(&want), lqa_buf_free(&doc);
    }
}

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

/* An EPUB whose first entry is not "mimetype" (zip tools often write it so), or that has no
 * mimetype at all: found by its container all the same. */
static void test_epub_found_by_container(void **state) {
    for (int variant = 0; variant < 2; variant++) {
        char word[16], name[32];
        rand_word(word, sizeof word);
        snprintf(name, sizeof name, "shuffled%d.epub", variant);
        char *path = lqa_path_join(lqa_test_tmpdir(), name);
        struct archive *a = archive_write_new();
        archive_write_set_format_zip(a);
        assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
        char page[512];
        snprintf(page, sizeof page,
                 "<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>p</title></head>"
                 "<body><h1>Chapter one</h1><p>The word %s is here.</p></body></html>", word);
        zip_add(a, "OEBPS/page.xhtml", page);
        zip_add(a, "OEBPS/content.opf",
                "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\"><metadata/>"
                "<manifest><item id=\"p\" href=\"page.xhtml\" media-type=\"application/xhtml+xml\"/></manifest>"
                "<spine><itemref idref=\"p\"/></spine></package>");
        zip_add(a, "META-INF/container.xml",
                "<?xml version=\"1.0\"?><container version=\"1.0\" xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\">"
                "<rootfiles><rootfile full-path=\"OEBPS/content.opf\" media-type=\"application/oebps-package+xml\"/>"
                "</rootfiles></container>");
        if (variant == 0) zip_add(a, "mimetype", "application/epub+zip"); /* last, not first */
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        xt_docs c = {0};
        lqa_doc *d = parse_one(path, &c);
        assert_string_equal(d->format, "epub");
        char want[64];
        snprintf(want, sizeof want, "The word %s is here.", word);
        assert_non_null(strstr(d->text.data, want));
        xt_docs_free(&c);
        free(path);
    }
    /* a zip that is no EPUB is still refused */
    char *path = lqa_path_join(lqa_test_tmpdir(), "plain.zip");
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    zip_add(a, "notes.txt", "nothing here");
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    xt_docs c = {0};
    lqa_err err;
    lqa_parse_opts o = xt_opts(&c);
    assert_int_equal(lqa_parse_path(path, &o, xt_sink, &c, &err), -1);
    assert_non_null(strstr(err.msg, "binary"));
    xt_docs_free(&c);
    free(path);
}

static void test_headerless_tables_marked(void **state) {
    char k1[16], v1[16], k2[16], v2[16];
    rand_word(k1, sizeof k1), rand_word(v1, sizeof v1), rand_word(k2, sizeof k2), rand_word(v2, sizeof v2);
    lqa_buf doc = {0};
    lqa_buf_printf(&doc, "<html><body><h1>Tables</h1>"
                         "<table><tr><td>%s</td><td>%s</td></tr><tr><td>%s</td><td>%s</td></tr></table>"
                         "<table><tr><th>Key</th><th>Value</th></tr><tr><td>%s</td><td>%s</td></tr></table>"
                         "<table><thead><tr><td>Key</td><td>Value</td></tr></thead><tr><td>%s</td><td>%s</td></tr></table>"
                         "</body></html>", k1, v1, k2, v2, k1, v1, k2, v2);
    char *path = tmp_file("tables.html", doc.data);
    xt_docs c = {0};
    lqa_doc *d = parse_one(path, &c);
    assert_int_equal(d->n_tables, 3);
    assert_int_equal(d->tables[0].no_header, 1);
    assert_int_equal(d->tables[1].no_header, 0);
    assert_int_equal(d->tables[2].no_header, 0);
    xt_docs_free(&c);
    lqa_buf_free(&doc);
    free(path);
}

static void test_mallard_branch_and_keys(void **state) {
    char yes[16], no[16], key[16];
    rand_word(yes, sizeof yes), rand_word(no, sizeof no), rand_word(key, sizeof key);
    lqa_buf doc = {0};
    lqa_buf_printf(&doc,
                   "<?xml version=\"1.0\"?><page xmlns=\"http://projectmallard.org/1.0/\""
                   " xmlns:if=\"http://projectmallard.org/if/1.0/\" type=\"topic\" id=\"t\">"
                   "<title>Press <keyseq><key>Ctrl</key><key>%s</key></keyseq></title>"
                   "<p>Before.</p><if:choose><if:when test=\"platform:unity\"><p>Branch %s one.</p></if:when>"
                   "<if:else><p>Branch %s two.</p></if:else></if:choose>"
                   "<p>Keys <keyseq><key>Shift</key><key>Alt</key><key>%s</key></keyseq> and"
                   " <keyseq type=\"sequence\"><key>Esc</key><key>x</key></keyseq>,"
                   " menu <guiseq><gui>File</gui><gui>Open</gui></guiseq>.</p></page>",
                   key, no, yes, key);
    char *path = tmp_file("keys.page", doc.data);
    xt_docs c = {0};
    lqa_doc *d = parse_one(path, &c);
    char want[128];
    snprintf(want, sizeof want, "Branch %s two.", yes);
    assert_non_null(strstr(d->text.data, want));
    snprintf(want, sizeof want, "Branch %s one.", no);
    assert_null(strstr(d->text.data, want)); /* one branch only */
    snprintf(want, sizeof want, "Shift+Alt+%s", key);
    assert_non_null(strstr(d->text.data, want));
    assert_non_null(strstr(d->text.data, "Esc x"));
    assert_non_null(strstr(d->text.data, "File \xe2\x96\xb8 Open"));
    snprintf(want, sizeof want, "Press Ctrl+%s", key);
    assert_string_equal(d->sections[0].title, want); /* titles too */
    xt_docs_free(&c);
    lqa_buf_free(&doc);
    free(path);
}

/* ~n bytes of random words as paragraphs of HTML, with `mark` in the first one. */
static void html_text(lqa_buf *b, size_t n, const char *mark) {
    size_t start = b->len;
    lqa_buf_printf(b, "<p>Mark %s here.</p>", mark);
    while (b->len - start < n) {
        lqa_buf_puts(b, "<p>Some");
        for (int i = 0; i < 30; i++) {
            char w[16];
            rand_word(w, sizeof w);
            lqa_buf_printf(b, " %s", w);
        }
        lqa_buf_puts(b, ".</p>");
    }
}

static char *make_dir(const char *name) {
    char *dir = lqa_path_join(lqa_test_tmpdir(), name);
    mkdir(dir, 0755);
    return dir;
}

static void write_in(const char *dir, const char *name, const char *data) {
    char *p = lqa_path_join(dir, name);
    lqa_test_write(p, data, strlen(data));
    free(p);
}

/* index -> ch1 (-> ch1a), ch2: --join-by chapter gives ch1 with ch1a, then ch2; --join one. */
static void test_join_by_chapter_html(void **state) {
    char *dir = make_dir("manual");
    char m[4][16];
    for (int i = 0; i < 4; i++) rand_word(m[i], sizeof m[i]);
    static const char *const pages[] = {"ch1.html", "ch1a.html", "ch2.html"};
    const char *toc[] = {"<div class=\"toc\"><a href=\"ch1a.html\">1.1</a></div>", "", ""};
    for (int i = 0; i < 3; i++) {
        lqa_buf b = {0};
        lqa_buf_printf(&b, "<html><head><title>%s</title></head><body><h1>Page %d</h1>%s", pages[i], i, toc[i]);
        html_text(&b, 20000, m[i + 1]);
        lqa_buf_puts(&b, "</body></html>");
        write_in(dir, pages[i], b.data);
        lqa_buf_free(&b);
    }
    lqa_buf idx = {0};
    lqa_buf_printf(&idx, "<html><head><title>Manual</title></head><body><h1>Manual</h1><p>Mark %s here.</p>"
                         "<div class=\"toc\"><a href=\"ch1.html\">1</a> <a href=\"ch2.html\">2</a></div></body></html>",
                   m[0]);
    write_in(dir, "index.html", idx.data);
    lqa_buf_free(&idx);
    char *index = lqa_path_join(dir, "index.html");
    for (int by = 0; by < 2; by++) {
        xt_docs c = {0};
        lqa_err err;
        lqa_parse_opts o = xt_opts(&c);
        o.join_by_chapter = by;
        if (lqa_parse_manual(index, &o, xt_sink, &c, &err)) fail_msg("%s", err.msg);
        assert_int_equal(c.n, by ? 2 : 1);
        for (int i = 0; i < c.n; i++) xt_check_invariants(&c.docs[i]);
        /* which document holds which page's mark */
        int where[4];
        for (int k = 0; k < 4; k++) {
            char want[96];
            snprintf(want, sizeof want, "Mark %s here.", m[k]);
            where[k] = -1;
            for (int i = 0; i < c.n; i++)
                if (strstr(c.docs[i].text.data, want)) where[k] = i;
            assert_true(where[k] >= 0);
        }
        /* the short index page stays with the first chapter; ch1a with ch1 */
        assert_int_equal(where[0], 0);
        assert_int_equal(where[1], 0);
        assert_int_equal(where[2], 0);
        assert_int_equal(where[3], by ? 1 : 0);
        xt_docs_free(&c);
    }
    free(index), free(dir);
}

static void mallard_page(const char *dir, const char *id, const char *type, const char *guide, const char *mark) {
    lqa_buf b = {0};
    lqa_buf_printf(&b, "<?xml version=\"1.0\"?><page xmlns=\"http://projectmallard.org/1.0/\" type=\"%s\" id=\"%s\">", type, id);
    if (guide) lqa_buf_printf(&b, "<info><link type=\"guide\" xref=\"%s#more\"/></info>", guide);
    lqa_buf_printf(&b, "<title>Title of %s</title><p>Mark %s here.</p>", id, mark);
    for (int p = 0; p < 100; p++) {
        lqa_buf_puts(&b, "<p>Words");
        for (int i = 0; i < 30; i++) {
            char w[16];
            rand_word(w, sizeof w);
            lqa_buf_printf(&b, " %s", w);
        }
        lqa_buf_puts(&b, ".</p>");
    }
    lqa_buf_puts(&b, "</page>");
    char name[96];
    snprintf(name, sizeof name, "%s.page", id);
    write_in(dir, name, b.data);
    lqa_buf_free(&b);
}

/* A help directory: index, guides net and print, topics under each: one document, or one per
 * guide (the index's own topic first), the guide's title before its topics. */
static void test_join_mallard_guides(void **state) {
    char *dir = make_dir("help");
    char m[6][16];
    for (int i = 0; i < 6; i++) rand_word(m[i], sizeof m[i]);
    mallard_page(dir, "index", "guide", NULL, m[0]);
    mallard_page(dir, "net", "guide", "index", m[1]);
    mallard_page(dir, "net-wifi", "topic", "net", m[2]);
    mallard_page(dir, "aa-wired", "topic", "net", m[3]); /* sorts before the guide, read after it */
    mallard_page(dir, "print", "guide", "index", m[4]);
    mallard_page(dir, "print-setup", "topic", "print", m[5]);
    char *index = lqa_path_join(dir, "index.page");
    for (int by = 0; by < 2; by++) {
        xt_docs c = {0};
        lqa_err err;
        lqa_parse_opts o = xt_opts(&c);
        o.join_by_chapter = by;
        if (lqa_parse_manual(index, &o, xt_sink, &c, &err)) fail_msg("%s", err.msg);
        assert_int_equal(c.n, by ? 3 : 1);
        const char *text[3];
        for (int i = 0; i < c.n; i++) {
            xt_check_invariants(&c.docs[i]);
            assert_string_equal(c.docs[i].format, "mallard");
            text[i] = c.docs[i].text.data;
        }
        int doc_of[6] = {0, 1, 1, 1, 2, 2};
        const char *prev = NULL;
        int prev_doc = -1;
        static const int order[6] = {0, 1, 3, 2, 4, 5}; /* index, net, aa-wired, net-wifi, print, print-setup */
        for (int k = 0; k < 6; k++) {
            int mk = order[k], di = by ? doc_of[mk] : 0;
            char want[64];
            snprintf(want, sizeof want, "Mark %s here.", m[mk]);
            const char *at = strstr(text[di], want);
            if (!at) fail_msg("mark of page %d not in document %d", mk, di);
            if (di == prev_doc) assert_true(at > prev); /* reading order */
            prev = at, prev_doc = di;
        }
        xt_docs_free(&c);
    }
    free(index), free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_keeps_indentation),   cmocka_unit_test(test_epub_found_by_container),
        cmocka_unit_test(test_headerless_tables_marked), cmocka_unit_test(test_mallard_branch_and_keys),
        cmocka_unit_test(test_join_by_chapter_html),     cmocka_unit_test(test_join_mallard_guides),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
