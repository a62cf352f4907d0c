/* test_ingest_text.c: the plain-text / Markdown / reST parser (ingest/text.c): headings and their
 * levels, pipe tables with cell spans, definitions, numbered headings as passages, KJV verse
 * lines as labelled passages. Fixture files check the forms one by one; generated documents
 * (fresh random content each run) check that every recorded span holds exactly its text. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "ingest/text.h"
#include "tests/test_ingest_util.h"

static char *fixture(const char *rel) { return lqa_path_join(lqa_test_fixtures(), rel); }

static void parse_fixture(const char *rel, xt_docs *l) {
    char *path = fixture(rel);
    lqa_err err;
    if (xt_parse_path(path, NULL, l, &err) != 0) fail_msg("%s: %s", rel, err.msg);
    assert_int_equal(l->n, 1);
    free(path);
}

static void assert_span_equals(const lqa_doc *d, lqa_span s, const char *want) {
    char *got = xt_span_text(d, s);
    if (strcmp(got, want) != 0) fail_msg("span [%zu,%zu) holds '%s', expected '%s'", s.start, s.end, got, want);
    free(got);
}

static void assert_section(const lqa_doc *d, const char *title, int level, const char *parent) {
    int i = xt_section(d, title);
    if (i < 0) fail_msg("no section '%s'", title);
    assert_int_equal(d->sections[i].level, level);
    if (parent) {
        assert_true(d->sections[i].parent >= 0);
        assert_string_equal(d->sections[d->sections[i].parent].title, parent);
    } else {
        assert_int_equal(d->sections[i].parent, -1);
    }
    /* the section's span starts with its heading */
    assert_true(strncmp(d->text.data + d->sections[i].span.start, title, strlen(title)) == 0);
}

static void test_markdown_fixture(void **state) {
    xt_docs l;
    parse_fixture("text/guide.md", &l);
    const lqa_doc *d = &l.docs[0];
    assert_string_equal(d->format, "markdown");
    assert_string_equal(d->title, "Harbour Operations Guide");
    assert_section(d, "Harbour Operations Guide", 1, NULL);
    assert_section(d, "Mooring", 2, "Harbour Operations Guide");
    assert_section(d, "Fees", 3, "Mooring");
    assert_section(d, "Departure Rules", 2, "Harbour Operations Guide"); /* setext '-' is level 2 */
    assert_section(d, "Contacts", 2, "Harbour Operations Guide");
    /* inline markup is gone, link text kept, URL dropped */
    assert_non_null(strstr(d->text.data, "how the harbour works"));
    assert_non_null(strstr(d->text.data, "at the inner quay"));
    assert_null(strstr(d->text.data, "example.org"));
    assert_non_null(strstr(d->text.data, "\n- Check the tide table first.\n- Call"));
    assert_int_equal(d->n_tables, 1);
    const lqa_table *t = &d->tables[0];
    assert_int_equal(t->n_rows, 4);
    assert_int_equal(t->n_cols, 3);
    assert_string_equal(t->cells[0], "Vessel class");
    assert_string_equal(t->cells[2 * 3 + 2], "35 EUR");
    for (int c = 0; c < t->n_rows * t->n_cols; c++) assert_span_equals(d, t->cell_spans[c], t->cells[c]);
    assert_int_equal(t->section, xt_section(d, "Fees"));
    xt_docs_free(&l);
}

static void test_rst_fixture(void **state) {
    xt_docs l;
    parse_fixture("text/manual.rst", &l);
    const lqa_doc *d = &l.docs[0];
    assert_string_equal(d->title, "Lighthouse Manual");
    /* reST: levels follow the order in which adornment styles first appear */
    assert_section(d, "Lighthouse Manual", 1, NULL);
    assert_section(d, "Overview", 2, "Lighthouse Manual");
    assert_section(d, "Maintenance", 3, "Overview");
    assert_section(d, "Spare parts", 4, "Maintenance");
    assert_section(d, "Logbook", 2, "Lighthouse Manual");
    assert_int_equal(d->n_defs, 2);
    int bulb = xt_def(d, "bulb"), wick = xt_def(d, "wick");
    assert_true(bulb >= 0 && wick >= 0);
    assert_span_equals(d, d->defs[bulb].term_span, "bulb");
    assert_span_equals(d, d->defs[bulb].def_span, "The replacement lamp, kept in the store room under the stairs.");
    assert_span_equals(d, d->defs[wick].def_span, "A cotton strip used only by the emergency oil lamp.");
    xt_docs_free(&l);
}

static void test_plain_numbered_fixture(void **state) {
    xt_docs l;
    parse_fixture("text/rules.txt", &l);
    const lqa_doc *d = &l.docs[0];
    assert_string_equal(d->format, "text");
    assert_string_equal(d->title, "Rules of the Village Chess Club");
    assert_section(d, "1 General Provisions", 1, NULL);
    assert_section(d, "1.1 Membership", 2, "1 General Provisions");
    assert_section(d, "2.1 Time Control", 2, "2 Tournament Play");
    int p = xt_passage(d, "1.1");
    assert_true(p >= 0);
    assert_span_equals(d, d->passages[p].span,
                       "Anyone who lives in the parish may join by paying the annual subscription.");
    int z = xt_def(d, "zugzwang");
    assert_true(z >= 0);
    assert_span_equals(d, d->defs[z].def_span, "A position in which any move worsens the player's position.");
    xt_docs_free(&l);
}

static void test_kjv_fixture(void **state) {
    xt_docs l;
    parse_fixture("text/kjv-sample.txt", &l);
    const lqa_doc *d = &l.docs[0];
    assert_int_equal(d->n_passages, 10);
    assert_span_equals(d, d->passages[xt_passage(d, "Genesis 1:1")].span,
                       "In the beginning God created the heaven and the earth.");
    assert_span_equals(d, d->passages[xt_passage(d, "Psalms 23:1")].span, "The LORD is my shepherd; I shall not want.");
    assert_true(xt_passage(d, "1 Corinthians 13:5") >= 0);
    assert_section(d, "Genesis", 1, NULL);
    assert_section(d, "Genesis 1", 2, "Genesis");
    assert_section(d, "1 Corinthians 13", 2, "1 Corinthians");
    xt_docs_free(&l);
}

/* ---- generated documents ------------------------------------------------------------------- */

static void random_word(lqa_rng *r, lqa_buf *b, int capital) {
    int n = 2 + (int)lqa_rng_below(r, 8);
    for (int i = 0; i < n; i++) lqa_buf_putc(b, (char)((i == 0 && capital ? 'A' : 'a') + lqa_rng_below(r, 26)));
}

static char *random_sentence(lqa_rng *r) {
    lqa_buf b = {0};
    int n = 4 + (int)lqa_rng_below(r, 15);
    for (int i = 0; i < n; i++) {
        if (i) lqa_buf_putc(&b, ' ');
        random_word(r, &b, i == 0);
    }
    lqa_buf_putc(&b, '.');
    return lqa_buf_steal(&b);
}

static char *write_tmp(const char *name, const lqa_buf *b) {
    char *path = lqa_path_join(lqa_test_tmpdir(), name);
    lqa_test_write(path, b->data, b->len);
    return path;
}

/* Verse lines in `bible -f` form for random books, chapters and verses: every verse is a
 * passage labelled with the full book name whose span is exactly the verse text. */
static void test_random_verses(void **state) {
    static const char *const abbr[][2] = {{"Ge", "Genesis"},   {"Psa", "Psalms"}, {"1Ki", "1 Kings"},
                                          {"SSol", "Song of Solomon"}, {"Rev", "Revelation"}, {"Jude", "Jude"}};
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    lqa_buf b = {0};
    int n = 0, cap = 400;
    char **labels = lqa_calloc((size_t)cap, sizeof *labels), **texts = lqa_calloc((size_t)cap, sizeof *texts);
    for (int book = 0; book < 6 && n < cap - 40; book++) {
        if (lqa_rng_below(&r, 3) == 0) continue;
        int chapters = 1 + (int)lqa_rng_below(&r, 4);
        for (int c = 1; c <= chapters; c++) {
            int verses = 1 + (int)lqa_rng_below(&r, 8);
            for (int v = 1; v <= verses && n < cap; v++, n++) {
                texts[n] = random_sentence(&r);
                int full = lqa_rng_below(&r, 4) == 0; /* full names are accepted too */
                lqa_buf_printf(&b, "%s%s%d:%d %s\n", abbr[book][full], full ? " " : "", c, v, texts[n]);
                labels[n] = lqa_malloc(64);
                snprintf(labels[n], 64, "%s %d:%d", abbr[book][1], c, v);
            }
        }
    }
    if (n < 3) { /* at least a few verses for verse mode */
        for (; n < 3; n++) {
            texts[n] = random_sentence(&r);
            lqa_buf_printf(&b, "Rev22:%d %s\n", n + 1, texts[n]);
            labels[n] = lqa_malloc(64);
            snprintf(labels[n], 64, "Revelation 22:%d", n + 1);
        }
    }
    char *path = write_tmp("verses.txt", &b);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(path, NULL, &l, &err), 0);
    const lqa_doc *d = &l.docs[0];
    assert_int_equal(d->n_passages, n);
    for (int i = 0; i < n; i++) {
        int p = xt_passage(d, labels[i]);
        if (p < 0) fail_msg("no passage '%s'", labels[i]);
        assert_span_equals(d, d->passages[p].span, texts[i]);
        free(labels[i]), free(texts[i]);
    }
    free(labels), free(texts), free(path);
    xt_docs_free(&l);
    lqa_buf_free(&b);
}

/* A Jargon-File-like lexicon: indented body, outdented headings, ":term: pos" entries whose
 * definitions run over several paragraphs. */
static void test_random_lexicon(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 1);
    lqa_buf b = {0}, term = {0};
    lqa_buf_puts(&b, "                        A Random Lexicon\n\n   This file collects words.\n\n");
    lqa_buf_puts(&b, "Chapter 1. Words\n\n   The entries follow.\n\n");
    int n = 3 + (int)lqa_rng_below(&r, 20);
    char **terms = lqa_calloc((size_t)n, sizeof *terms), **firsts = lqa_calloc((size_t)n, sizeof *firsts),
         **lasts = lqa_calloc((size_t)n, sizeof *lasts);
    for (int i = 0; i < n; i++) {
        lqa_buf_clear(&term);
        lqa_buf_printf(&term, "w%d", i); /* unique */
        random_word(&r, &term, 0);
        terms[i] = lqa_strdup(term.data);
        lqa_buf_printf(&b, "   :%s: n.\n\n", terms[i]);
        int paras = 1 + (int)lqa_rng_below(&r, 3);
        for (int k = 0; k < paras; k++) {
            char *s1 = random_sentence(&r), *s2 = random_sentence(&r);
            lqa_buf_printf(&b, "   %s\n   %s\n\n", s1, s2); /* wrapped over two lines */
            if (k == 0) firsts[i] = lqa_strdup(s1);
            free(lasts[i]);
            lasts[i] = lqa_strdup(s2);
            free(s1), free(s2);
        }
    }
    lqa_buf_puts(&b, "Appendix A. Afterword\n\n   Nothing more.\n");
    char *path = write_tmp("lexicon.txt", &b);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(path, NULL, &l, &err), 0);
    const lqa_doc *d = &l.docs[0];
    assert_string_equal(d->title, "A Random Lexicon");
    assert_int_equal(d->n_defs, n);
    for (int i = 0; i < n; i++) {
        int k = xt_def(d, terms[i]);
        if (k < 0) fail_msg("no definition of '%s'", terms[i]);
        assert_span_equals(d, d->defs[k].term_span, terms[i]);
        char *def = xt_span_text(d, d->defs[k].def_span);
        /* from the part of speech through the last sentence, nothing of the next entry */
        assert_true(strncmp(def, "n.", 2) == 0);
        assert_non_null(strstr(def, firsts[i]));
        size_t dl = strlen(def), ll = strlen(lasts[i]);
        assert_true(dl >= ll && strcmp(def + dl - ll, lasts[i]) == 0);
        if (i + 1 < n) assert_null(strstr(def, terms[i + 1]));
        free(def), free(terms[i]), free(firsts[i]), free(lasts[i]);
    }
    assert_section(d, "Chapter 1. Words", 1, NULL);
    assert_section(d, "Appendix A. Afterword", 1, NULL);
    assert_int_equal(d->n_sections, 2); /* the indented entries are not headings */
    free(terms), free(firsts), free(lasts), free(path);
    xt_docs_free(&l);
    lqa_buf_free(&b);
    lqa_buf_free(&term);
}

/* A Markdown table of random size and cells: every cell recorded with its exact span. */
static void test_random_markdown_table(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 2);
    int rows = 2 + (int)lqa_rng_below(&r, 10), cols = 2 + (int)lqa_rng_below(&r, 5);
    lqa_buf b = {0};
    lqa_buf_puts(&b, "# Table test\n\nSome text before.\n\n");
    char **cells = lqa_calloc((size_t)(rows * cols), sizeof *cells);
    for (int i = 0; i < rows; i++) {
        for (int c = 0; c < cols; c++) {
            lqa_buf w = {0};
            random_word(&r, &w, i == 0);
            if (lqa_rng_below(&r, 3) == 0) lqa_buf_printf(&w, " %llu", (unsigned long long)lqa_rng_below(&r, 1000));
            cells[i * cols + c] = lqa_buf_steal(&w);
            lqa_buf_printf(&b, "| %s ", cells[i * cols + c]);
        }
        lqa_buf_puts(&b, "|\n");
        if (i == 0) {
            for (int c = 0; c < cols; c++) lqa_buf_puts(&b, c % 2 ? "|:---:" : "|------");
            lqa_buf_puts(&b, "|\n");
        }
    }
    lqa_buf_puts(&b, "\nText after.\n");
    char *path = write_tmp("table.md", &b);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(path, NULL, &l, &err), 0);
    const lqa_doc *d = &l.docs[0];
    assert_string_equal(d->format, "markdown");
    assert_int_equal(d->n_tables, 1);
    assert_int_equal(d->tables[0].n_rows, rows);
    assert_int_equal(d->tables[0].n_cols, cols);
    for (int k = 0; k < rows * cols; k++) {
        assert_string_equal(d->tables[0].cells[k], cells[k]);
        assert_span_equals(d, d->tables[0].cell_spans[k], cells[k]);
        free(cells[k]);
    }
    free(cells), free(path);
    xt_docs_free(&l);
    lqa_buf_free(&b);
}

/* Random prose without structure is plain text; the same with a '#' heading is Markdown. */
static void test_sniff_text_vs_markdown(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 3);
    lqa_buf b = {0};
    for (int i = 0; i < 20; i++) {
        char *s = random_sentence(&r);
        lqa_buf_puts(&b, s);
        lqa_buf_puts(&b, lqa_rng_below(&r, 3) ? "\n" : "\n\n");
        free(s);
    }
    assert_string_equal(lqa_text_sniff(b.data, b.len), "text");
    lqa_buf md = {0};
    lqa_buf_puts(&md, "## ");
    random_word(&r, &md, 1);
    lqa_buf_puts(&md, "\n\n");
    lqa_buf_append(&md, b.data, b.len);
    assert_string_equal(lqa_text_sniff(md.data, md.len), "markdown");
    lqa_buf_free(&b);
    lqa_buf_free(&md);
}

/* Markdown as Node.js's API docs write it: HTML comments (YAML history) skipped, HTML tables
 * recorded as tables (tags dropped, entities decoded), code spans in headings unwrapped,
 * brackets that are not links kept. */
static void test_markdown_html_blocks(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 6);
    int rows = 2 + (int)lqa_rng_below(&r, 6);
    lqa_buf b = {0};
    lqa_buf_puts(&b, "# Module\n\n<!-- YAML\nadded: v1.0.0\nchanges:\n  - secret-history-line\n-->\n\n");
    lqa_buf_puts(&b, "## Class: `FileHandle`\n\n### `fh.read([options])`\n\nReads __data__ via [the API](http://x.y/z).\n\n");
    lqa_buf_puts(&b, "<table>\n  <tr>\n    <th>Constant</th>\n    <th>Description</th>\n  </tr>\n");
    char **names = lqa_calloc((size_t)rows, sizeof *names), **descs = lqa_calloc((size_t)rows, sizeof *descs);
    for (int i = 0; i < rows; i++) {
        lqa_buf w = {0};
        lqa_buf_printf(&w, "K_%d", i);
        random_word(&r, &w, 1);
        names[i] = lqa_buf_steal(&w);
        descs[i] = random_sentence(&r);
        lqa_buf_printf(&b, "  <tr>\n    <td><code>%s</code></td>\n    <td>%s\n     &lt;x&gt; &amp; more</td>\n  </tr>\n",
                       names[i], descs[i]);
    }
    lqa_buf_puts(&b, "</table>\n\nAfter the table.\n");
    char *path = write_tmp("node.md", &b);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(path, NULL, &l, &err), 0);
    const lqa_doc *d = &l.docs[0];
    assert_string_equal(d->format, "markdown");
    assert_null(strstr(d->text.data, "secret-history-line"));
    assert_null(strstr(d->text.data, "<!--"));
    assert_true(xt_section(d, "Class: FileHandle") >= 0);
    assert_true(xt_section(d, "fh.read([options])") >= 0);
    assert_non_null(strstr(d->text.data, "Reads data via the API."));
    assert_int_equal(d->n_tables, 1);
    const lqa_table *t = &d->tables[0];
    assert_int_equal(t->n_rows, rows + 1);
    assert_int_equal(t->n_cols, 2);
    assert_string_equal(t->cells[0], "Constant");
    for (int i = 0; i < rows; i++) {
        assert_string_equal(t->cells[(i + 1) * 2], names[i]);
        char want[512];
        snprintf(want, sizeof want, "%s <x> & more", descs[i]);
        assert_string_equal(t->cells[(i + 1) * 2 + 1], want);
        assert_span_equals(d, t->cell_spans[(i + 1) * 2 + 1], want);
        free(names[i]), free(descs[i]);
    }
    free(names), free(descs), free(path);
    xt_docs_free(&l);
    lqa_buf_free(&b);
}

/* The corpus packages themselves (DEB_PKGS installs them; skipped with a reason when absent):
 * the whole KJV as `bible -f` prints it, and the Jargon File as Debian ships it (gzip). */
static void test_corpus_kjv_and_jargon(void **state) {
    const char *jargon = "/usr/share/doc/jargon-text/jargon.txt.gz";
    lqa_buf out = {0};
    if (lqa_test_run(NULL, "command -v bible >/dev/null") != 0 || lqa_test_run(NULL, "test -r %s", jargon) != 0) {
        fprintf(stderr, "# bible-kjv or jargon-text not installed (make deps installs them)\n");
        skip();
    }
    char *kjv = lqa_path_join(lqa_test_tmpdir(), "kjv.txt");
    assert_int_equal(lqa_test_run(&out, "bible -f Gen1:1-Rev22:21 > '%s'", kjv), 0);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(kjv, NULL, &l, &err), 0);
    const lqa_doc *d = &l.docs[0];
    assert_int_equal(d->n_passages, 31102); /* every verse of the KJV */
    assert_int_equal(d->n_sections, 66 + 1189); /* books and chapters */
    assert_span_equals(d, d->passages[xt_passage(d, "John 11:35")].span, "Jesus wept.");
    assert_span_equals(d, d->passages[d->n_passages - 1].span, "The grace of our Lord Jesus Christ be with you all. Amen.");
    xt_docs_free(&l);
    assert_int_equal(xt_parse_path(jargon, NULL, &l, &err), 0);
    d = &l.docs[0];
    assert_string_equal(d->title, "The Jargon File");
    assert_true(d->n_defs > 2000);
    int k = xt_def(d, "kluge");
    assert_true(k >= 0);
    char *def = xt_span_text(d, d->defs[k].def_span);
    assert_non_null(strstr(def, "clever programming trick"));
    free(def);
    assert_true(xt_section(d, "Chapter 1. Hacker Slang and Hacker Culture") >= 0);
    xt_docs_free(&l);
    lqa_buf_free(&out);
    free(kjv);
}

/* Prose that opens with a bracket is text, not broken JSON. */
static void test_bracket_prose_is_text(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 4);
    lqa_buf b = {0};
    lqa_buf_puts(&b, lqa_rng_below(&r, 2) ? "[Usenet] " : "{braces} ");
    char *s = random_sentence(&r);
    lqa_buf_puts(&b, s);
    free(s);
    char *path = write_tmp("bracket.txt", &b);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(path, NULL, &l, &err), 0);
    assert_string_equal(l.docs[0].format, "text");
    xt_docs_free(&l);
    free(path);
    lqa_buf_free(&b);
}

/* One line over opts->max_text_node is refused with its line number. */
static void test_line_limit(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 5);
    lqa_buf b = {0};
    int before = 1 + (int)lqa_rng_below(&r, 20);
    for (int i = 0; i < before; i++) lqa_buf_puts(&b, "a short line\n");
    size_t n = 2000 + lqa_rng_below(&r, 5000);
    for (size_t i = 0; i < n; i++) lqa_buf_putc(&b, (char)('a' + lqa_rng_below(&r, 26)));
    lqa_buf_puts(&b, "\nlast line\n");
    char *path = write_tmp("longline.txt", &b);
    lqa_parse_opts opts = {.max_text_node = 1000};
    xt_docs l = {0};
    lqa_err err;
    assert_int_equal(lqa_parse_path(path, &opts, xt_sink, &l, &err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s:%d: a line of %zu bytes", path, before + 1, n);
    if (!strstr(err.msg, want)) fail_msg("expected '%s' in: %s", want, err.msg);
    assert_int_equal(l.n, 0);
    opts.max_text_node = 0; /* the default (16 MiB) lets it through */
    assert_int_equal(lqa_parse_path(path, &opts, xt_sink, &l, &err), 0);
    assert_int_equal(l.n, 1);
    xt_docs_free(&l);
    free(path);
    lqa_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markdown_fixture),
        cmocka_unit_test(test_rst_fixture),
        cmocka_unit_test(test_plain_numbered_fixture),
        cmocka_unit_test(test_kjv_fixture),
        cmocka_unit_test(test_random_verses),
        cmocka_unit_test(test_random_lexicon),
        cmocka_unit_test(test_random_markdown_table),
        cmocka_unit_test(test_sniff_text_vs_markdown),
        cmocka_unit_test(test_markdown_html_blocks),
        cmocka_unit_test(test_corpus_kjv_and_jargon),
        cmocka_unit_test(test_bracket_prose_is_text),
        cmocka_unit_test(test_line_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
