/* test_ingest_xml.c: the XML/HTML family parsers on fixtures (tests/fixtures/xml) and on
 * generated pages: sections, tables (text at each cell's span == the cell), definitions,
 * numbered passages, abstract, title, navigation chrome skipped, format sniffing. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "ingest/docbuild.h"
#include "ingest/xml.h"
#include "tests/test_ingest_util.h"

static lqa_rng rng;

static int setup(void **state) {
    lqa_rng_seed(&rng, lqa_test_seed());
    return 0;
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static void test_html_docbook_xsl(void **state) {
    xt_docs docs = {0};
    assert_int_equal(xt_parse_fixture("docbook_xsl.html", "html", &docs), 0);
    assert_int_equal(docs.n, 1);
    lqa_doc *d = &docs.docs[0];
    xt_check_invariants(d);
    assert_string_equal(d->format, "html");
    assert_string_equal(d->title, "9.4. String Functions and Operators");
    int s94 = xt_section(d, "9.4. String Functions and Operators");
    int s941 = xt_section(d, "9.4.1. format");
    assert_true(s94 >= 0 && s941 >= 0);
    assert_int_equal(d->sections[s941].parent, s94);
    assert_true(d->sections[s94].level < d->sections[s941].level);
    /* the table: caption from DocBook-XSL's p.title, header row, rowspan and colspan */
    assert_int_equal(d->n_tables, 1);
    lqa_table *t = &d->tables[0];
    assert_string_equal(t->caption, "Table 9.9. SQL String Functions and Operators");
    assert_int_equal(t->n_cols, 3);
    assert_int_equal(t->n_rows, 5);
    assert_string_equal(xt_cell(t, 0, 0), "Function");
    assert_string_equal(xt_cell(t, 1, 0), "bit_length");
    assert_string_equal(xt_cell(t, 2, 1), "Returns number of characters in the string.");
    assert_string_equal(xt_cell(t, 3, 1), "Returns number of characters in the string."); /* rowspan */
    assert_string_equal(xt_cell(t, 3, 2), "same");
    assert_string_equal(xt_cell(t, 4, 2), "All of these accept text."); /* colspan */
    assert_string_equal(xt_cell(t, 2, 2), "char_length('jos\xC3\xA9') \xE2\x86\x92 4");
    assert_int_equal(t->section, s94);
    /* definitions from the variablelist (dl), two dt's for one dd */
    int flags = xt_def(d, "flags (optional)"), width = xt_def(d, "width, precision");
    assert_true(flags >= 0 && width >= 0);
    assert_true(xt_span_is(d, d->defs[flags].def_span, "Additional options controlling how the format specifier's output is formatted."));
    /* numbered headings as passages: label and first paragraph */
    int p = xt_passage(d, "9.4");
    assert_true(p >= 0);
    assert_true(xt_span_starts(d, d->passages[p].span, "This section describes functions and operators"));
    assert_true(xt_passage(d, "9.4.1") >= 0);
    assert_true(xt_span_is(d, d->abstract, "Functions and operators for examining and manipulating string values."));
    /* chrome and scripts are not text; preformatted lines are kept */
    assert_null(strstr(d->text.data, "NOISE"));
    assert_non_null(strstr(d->text.data, "SELECT format('Hello %s', 'World');\nResult: Hello World"));
    xt_docs_free(&docs);
}

static void test_html_sphinx_and_texinfo(void **state) {
    xt_docs docs = {0};
    assert_int_equal(xt_parse_fixture("sphinx.html", NULL, &docs), 0);
    lqa_doc *d = &docs.docs[0];
    xt_check_invariants(d);
    assert_true(xt_section(d, "1. Getting started") >= 0);
    assert_true(xt_section(d, "1.1. Installation") >= 0);
    assert_null(strstr(d->text.data, "\xC2\xB6")); /* headerlink pilcrows */
    assert_null(strstr(d->text.data, "NOISE"));
    assert_int_equal(d->n_tables, 1);
    assert_string_equal(d->tables[0].caption, "Supported platforms");
    assert_string_equal(xt_cell(&d->tables[0], 2, 1), "beta");
    int f = xt_def(d, "frobnicator");
    assert_true(f >= 0 && xt_span_is(d, d->defs[f].def_span, "A component that turns knobs."));
    assert_true(xt_passage(d, "1.1") >= 0);
    assert_non_null(strstr(d->text.data, "small & useful"));
    xt_docs_free(&docs);

    assert_int_equal(xt_parse_fixture("texinfo.html", NULL, &docs), 0);
    d = &docs.docs[0];
    xt_check_invariants(d);
    int ch = xt_section(d, "3 Invoking frob"), sec = xt_section(d, "3.1 Exit status");
    assert_true(ch >= 0 && sec >= 0);
    assert_int_equal(d->sections[sec].parent, ch);
    assert_null(strstr(d->text.data, "NOISE"));
    int p = xt_passage(d, "3.1");
    assert_true(p >= 0 && xt_span_is(d, d->passages[p].span, "An exit status of zero indicates success."));
    assert_true(d->abstract.end == d->abstract.start); /* texinfo's description repeats the title */
    xt_docs_free(&docs);
}

static void test_docbook4_and_5(void **state) {
    xt_docs docs = {0};
    assert_int_equal(xt_parse_fixture("docbook4.xml", NULL, &docs), 0);
    lqa_doc *d = &docs.docs[0];
    xt_check_invariants(d);
    assert_string_equal(d->format, "docbook");
    assert_string_equal(d->title, "The Frobnitz Handbook"); /* internal entity text kept */
    int inst = xt_section(d, "Installation"), req = xt_section(d, "Requirements"), mem = xt_section(d, "Memory");
    assert_true(inst >= 0 && req >= 0 && mem >= 0);
    assert_int_equal(d->sections[req].parent, inst);
    assert_int_equal(d->sections[mem].parent, req);
    assert_int_equal(d->sections[inst].level, 1);
    assert_true(xt_section(d, "Glossary") >= 0);
    assert_true(xt_span_is(d, d->abstract, "This handbook explains how to install and tune Frobnitz servers."));
    lqa_table *t = &d->tables[0];
    assert_string_equal(t->caption, "Supported systems");
    assert_int_equal(t->n_rows, 4);
    assert_int_equal(t->n_cols, 3);
    assert_string_equal(xt_cell(t, 2, 2), "Fully supported"); /* morerows */
    assert_string_equal(xt_cell(t, 3, 1), "Others");          /* namest..nameend */
    assert_string_equal(xt_cell(t, 3, 2), "Untested");
    assert_int_equal(t->section, req);
    assert_true(xt_def(d, "spool") >= 0);
    int q = xt_def(d, "quota, limit");
    assert_true(q >= 0 && xt_span_is(d, d->defs[q].def_span, "The most a user may store."));
    int k = xt_def(d, "knob");
    assert_true(k >= 0 && xt_span_is(d, d->defs[k].def_span, "A setting that changes behaviour."));
    assert_null(strstr(d->text.data, "NOISE"));
    assert_non_null(strstr(d->text.data, "frob --tune\nfrob --check"));
    xt_docs_free(&docs);

    assert_int_equal(xt_parse_fixture("docbook5.xml", NULL, &docs), 0);
    d = &docs.docs[0];
    xt_check_invariants(d);
    assert_string_equal(d->title, "Caching in Depth");
    int pol = xt_section(d, "Policies"), ev = xt_section(d, "Eviction");
    assert_true(pol >= 0 && ev >= 0);
    assert_int_equal(d->sections[ev].parent, pol);
    assert_true(xt_span_is(d, d->abstract, "A study of cache policies for web servers."));
    assert_string_equal(xt_cell(&d->tables[0], 2, 1), "0.77");
    xt_docs_free(&docs);
}

static void test_jats(void **state) {
    xt_docs docs = {0};
    assert_int_equal(xt_parse_fixture("jats.xml", NULL, &docs), 0);
    lqa_doc *d = &docs.docs[0];
    xt_check_invariants(d);
    assert_string_equal(d->format, "jats");
    assert_string_equal(d->title, "Sleep and Memory in Honeybees");
    assert_true(xt_span_is(d, d->abstract, "Honeybees deprived of sleep forget the location of food sources more often."));
    int intro = xt_section(d, "1 Introduction"), prior = xt_section(d, "1.1 Prior work");
    assert_true(intro >= 0 && prior >= 0 && xt_section(d, "2 Methods") >= 0);
    assert_int_equal(d->sections[prior].parent, intro);
    assert_string_equal(d->tables[0].caption, "Table 1. Colony sizes");
    assert_string_equal(xt_cell(&d->tables[0], 2, 1), "950");
    int f = xt_def(d, "forager");
    assert_true(f >= 0 && xt_span_is(d, d->defs[f].def_span, "A worker bee that collects nectar."));
    assert_true(xt_passage(d, "1.1") >= 0);
    assert_null(strstr(d->text.data, "NOISE")); /* journal meta, authors, math, references */
    xt_docs_free(&docs);
}

static void test_tei_grobid(void **state) {
    xt_docs docs = {0};
    assert_int_equal(xt_parse_fixture("tei.xml", NULL, &docs), 0);
    lqa_doc *d = &docs.docs[0];
    xt_check_invariants(d);
    assert_string_equal(d->format, "tei");
    assert_string_equal(d->title, "Sparse Attention for Long Documents");
    assert_true(xt_span_is(d, d->abstract, "We show that shifted sparse attention extends context windows cheaply."));
    int s1 = xt_section(d, "1 Introduction"), s21 = xt_section(d, "2.1 Shifted groups");
    assert_true(s1 >= 0 && s21 >= 0);
    assert_int_equal(d->sections[s21].level, 2); /* from head@n */
    assert_string_equal(d->tables[0].caption, "Table 1: Perplexity by context length");
    assert_string_equal(xt_cell(&d->tables[0], 1, 1), "7.2");
    assert_string_equal(xt_cell(&d->tables[0], 2, 1), "no more rows"); /* cols="2" */
    assert_null(strstr(d->text.data, "NOISE"));
    xt_docs_free(&docs);
}

static void test_mallard(void **state) {
    xt_docs docs = {0};
    assert_int_equal(xt_parse_fixture("mallard.page", NULL, &docs), 0);
    lqa_doc *d = &docs.docs[0];
    xt_check_invariants(d);
    assert_string_equal(d->format, "mallard");
    assert_string_equal(d->title, "Printing");
    assert_true(xt_span_is(d, d->abstract, "Print documents and photos from any application."));
    int top = xt_section(d, "Printing"), two = xt_section(d, "Two-sided printing");
    assert_true(top >= 0 && two >= 0);
    assert_int_equal(d->sections[two].parent, top);
    int dup = xt_def(d, "Duplex");
    assert_true(dup >= 0 && xt_span_is(d, d->defs[dup].def_span, "Printing on both sides of the paper."));
    assert_true(xt_def(d, "Collate") >= 0);
    assert_string_equal(xt_cell(&d->tables[0], 1, 1), "80 g");
    assert_non_null(strstr(d->text.data, "print with Ctrl+P."));
    assert_null(strstr(d->text.data, "NOISE"));
    xt_docs_free(&docs);
}

/* ---- generated pages ----------------------------------------------------------------------- */

/* A random word; sometimes with a non-ASCII letter written decomposed (e + U+0301), which NFC
 * composes, or an &amp; entity. plain gets the expected cleaned form. */
static void rand_word(lqa_buf *html, lqa_buf *plain) {
    int n = 2 + (int)lqa_rng_below(&rng, 8);
    for (int i = 0; i < n; i++) {
        char c = (char)('a' + lqa_rng_below(&rng, 26));
        lqa_buf_putc(html, c);
        lqa_buf_putc(plain, c);
    }
    switch (lqa_rng_below(&rng, 6)) {
    case 0:
        lqa_buf_puts(html, "e\xCC\x81");
        lqa_buf_puts(plain, "\xC3\xA9");
        break;
    case 1:
        lqa_buf_puts(html, "&amp;x");
        lqa_buf_puts(plain, "&x");
        break;
    default:
        break;
    }
}

/* A phrase of 1-4 words separated by random whitespace runs. */
static void rand_phrase(lqa_buf *html, lqa_buf *plain) {
    static const char *const ws[] = {" ", "  ", "\n", " \t ", "\n   "};
    int n = 1 + (int)lqa_rng_below(&rng, 4);
    for (int i = 0; i < n; i++) {
        if (i) {
            lqa_buf_puts(html, ws[lqa_rng_below(&rng, 5)]);
            lqa_buf_putc(plain, ' ');
        }
        rand_word(html, plain);
    }
}

static void test_generated_html_tables_and_definitions(void **state) {
    for (int iter = 0; iter < 20; iter++) {
        int rows = 2 + (int)lqa_rng_below(&rng, 8), cols = 1 + (int)lqa_rng_below(&rng, 6);
        int n_defs = 1 + (int)lqa_rng_below(&rng, 5);
        lqa_buf html = {0}, scratch = {0};
        char **cells = lqa_calloc((size_t)rows * cols, sizeof *cells);
        char **terms = lqa_calloc((size_t)n_defs, sizeof *terms), **defs = lqa_calloc((size_t)n_defs, sizeof *defs);
        lqa_buf heading = {0};
        lqa_buf_puts(&html, "<html><head><title>t</title></head><body><h2>");
        rand_phrase(&html, &heading);
        lqa_buf_puts(&html, "</h2><p>Intro text.</p><table>");
        for (int r = 0; r < rows; r++) {
            lqa_buf_puts(&html, "<tr>");
            for (int c = 0; c < cols; c++) {
                lqa_buf_puts(&html, r == 0 ? "<th> " : "<td>");
                lqa_buf_clear(&scratch);
                rand_phrase(&html, &scratch);
                cells[r * cols + c] = lqa_strdup(scratch.data);
                lqa_buf_puts(&html, r == 0 ? " </th>" : "</td>");
            }
            lqa_buf_puts(&html, "</tr>\n");
        }
        lqa_buf_puts(&html, "</table><dl>");
        for (int i = 0; i < n_defs; i++) {
            lqa_buf_puts(&html, "<dt>");
            lqa_buf_clear(&scratch);
            rand_phrase(&html, &scratch);
            terms[i] = lqa_strdup(scratch.data);
            lqa_buf_puts(&html, "</dt>\n<dd><p>");
            lqa_buf_clear(&scratch);
            rand_phrase(&html, &scratch);
            defs[i] = lqa_strdup(scratch.data);
            lqa_buf_puts(&html, "</p></dd>");
        }
        lqa_buf_puts(&html, "</dl></body></html>");

        xt_docs docs = {0};
        assert_int_equal(xt_parse_buffer("gen.html", html.data, html.len, "html", &docs), 0);
        lqa_doc *d = &docs.docs[0];
        xt_check_invariants(d);
        assert_true(xt_section(d, heading.data) >= 0);
        assert_int_equal(d->n_tables, 1);
        lqa_table *t = &d->tables[0];
        assert_int_equal(t->n_rows, rows);
        assert_int_equal(t->n_cols, cols);
        for (int i = 0; i < rows * cols; i++) {
            assert_string_equal(t->cells[i], cells[i]);
            assert_true(xt_span_is(d, t->cell_spans[i], cells[i]));
        }
        assert_int_equal(d->n_defs, n_defs);
        for (int i = 0; i < n_defs; i++) {
            assert_string_equal(d->defs[i].term, terms[i]);
            assert_true(xt_span_is(d, d->defs[i].def_span, defs[i]));
        }
        for (int i = 0; i < rows * cols; i++) free(cells[i]);
        for (int i = 0; i < n_defs; i++) free(terms[i]), free(defs[i]);
        free(cells), free(terms), free(defs);
        lqa_buf_free(&html), lqa_buf_free(&scratch), lqa_buf_free(&heading);
        xt_docs_free(&docs);
    }
}

/* ---- sniffing ------------------------------------------------------------------------------ */

static void test_sniff(void **state) {
    struct { const char *file, *fmt; } cases[] = {
        {"docbook_xsl.html", "html"}, {"sphinx.html", "html"}, {"texinfo.html", "html"}, {"docbook4.xml", "docbook"},
        {"docbook5.xml", "docbook"}, {"jats.xml", "jats"}, {"tei.xml", "tei"}, {"mallard.page", "mallard"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = lqa_path_join(lqa_test_fixtures(), "xml"), *full = lqa_path_join(path, cases[i].file);
        char *data;
        size_t len;
        assert_int_equal(lqa_read_file(full, &data, &len, NULL), 0);
        const char *got = lqa_xml_sniff(data, len);
        assert_non_null(got);
        assert_string_equal(got, cases[i].fmt);
        free(data), free(path), free(full);
    }
    const char *mw = "<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\" version=\"0.10\"><siteinfo>";
    assert_string_equal(lqa_xml_sniff(mw, strlen(mw)), "mediawiki");
    const char *j4 = "<?xml version=\"1.0\"?>\n<!-- c -->\n<article><front><article-meta>";
    assert_string_equal(lqa_xml_sniff(j4, strlen(j4)), "jats");
    const char *db = "<?xml version=\"1.0\"?><article><title>x</title><para>y</para></article>";
    assert_string_equal(lqa_xml_sniff(db, strlen(db)), "docbook");
    const char *unknown = "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    assert_null(lqa_xml_sniff(unknown, strlen(unknown)));
    /* random bytes never crash the sniffer and are not taken for a format unless they start like markup */
    for (int i = 0; i < 200; i++) {
        char junk[256];
        for (size_t k = 0; k < sizeof junk; k++) junk[k] = (char)lqa_rng_below(&rng, 256);
        junk[0] = 'x';
        assert_null(lqa_xml_sniff(junk, sizeof junk));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_docbook_xsl),
        cmocka_unit_test(test_html_sphinx_and_texinfo),
        cmocka_unit_test(test_docbook4_and_5),
        cmocka_unit_test(test_jats),
        cmocka_unit_test(test_tei_grobid),
        cmocka_unit_test(test_mallard),
        cmocka_unit_test(test_generated_html_tables_and_definitions),
        cmocka_unit_test(test_sniff),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
