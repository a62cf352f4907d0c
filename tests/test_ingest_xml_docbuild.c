/* test_ingest_xml_docbuild.c: the document builder every parser uses (ingest/docbuild.h):
 * cleaning (whitespace, NFC, invalid UTF-8), separators, sections, tables with cell spans,
 * definitions, passages, numbered headings. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "ingest/docbuild.h"

static lqa_rng rng;

static int setup(void **state) {
    lqa_rng_seed(&rng, lqa_test_seed());
    return 0;
}

/* A random lower-case word of 3..10 letters into w. */
static void rand_word(char *w) {
    int n = 3 + (int)lqa_rng_below(&rng, 8);
    for (int i = 0; i < n; i++) w[i] = (char)('a' + lqa_rng_below(&rng, 26));
    w[n] = '\0';
}

static int span_equals(const lqa_doc *d, lqa_span s, const char *want) {
    size_t n = strlen(want);
    return s.end - s.start == n && memcmp(d->text.data + s.start, want, n) == 0;
}

static void test_whitespace_collapse_and_separators(void **state) {
    lqa_doc d;
    lqa_doc_init(&d, "x.html", "html");
    lqa_docbuild b;
    lqa_db_init(&b, &d);
    char w1[16], w2[16], w3[16];
    rand_word(w1), rand_word(w2), rand_word(w3);
    char in[128];
    snprintf(in, sizeof in, "  \t%s \n\n  %s\r\n", w1, w2);
    lqa_db_para(&b); /* a break before any text writes nothing */
    lqa_db_text(&b, in, strlen(in));
    lqa_db_text(&b, w3, strlen(w3)); /* trailing whitespace of the previous chunk keeps a space */
    lqa_db_para(&b);
    lqa_db_para(&b);
    lqa_db_text(&b, w1, strlen(w1));
    lqa_db_text(&b, w2, strlen(w2)); /* adjacent chunks without whitespace join */
    lqa_db_para(&b);
    lqa_db_finish(&b);
    char want[256];
    snprintf(want, sizeof want, "%s %s %s\n\n%s%s", w1, w2, w3, w1, w2);
    assert_string_equal(d.text.data, want);
    assert_int_equal(d.text.len, strlen(want));
    lqa_doc_free(&d);
}

static void test_invalid_utf8_and_nfc(void **state) {
    lqa_buf out = {0};
    /* e + combining acute -> U+00E9; a lone 0xFF and a truncated sequence -> U+FFFD;
       an overlong "/" (C0 AF) -> two U+FFFD; a control character dropped */
    const char in[] = "caf" "e\xCC\x81" " \xFF x\xE2\x82" " \xC0\xAF" "\x01y";
    lqa_db_clean(in, sizeof in - 1, &out);
    assert_string_equal(out.data, "caf\xC3\xA9 \xEF\xBF\xBD x\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBDy");
    /* random bytes always come out as valid UTF-8 with no control characters */
    for (int iter = 0; iter < 200; iter++) {
        unsigned char raw[64];
        for (size_t i = 0; i < sizeof raw; i++) raw[i] = (unsigned char)lqa_rng_below(&rng, 256);
        lqa_db_clean((const char *)raw, sizeof raw, &out);
        for (size_t i = 0; i < out.len; i++) {
            unsigned char c = (unsigned char)out.data[i];
            assert_true(c >= 0x20 || c == 0);
            assert_true(c != 0x7F);
        }
        assert_int_equal(strlen(out.data), out.len);
        assert_true(out.len == 0 || (out.data[0] != ' ' && out.data[out.len - 1] != ' '));
    }
    lqa_buf_free(&out);
}

static void test_sections_levels_spans_parents(void **state) {
    lqa_doc d;
    lqa_doc_init(&d, "x", "html");
    lqa_docbuild b;
    lqa_db_init(&b, &d);
    char t[3][16], body[3][16];
    for (int i = 0; i < 3; i++) rand_word(t[i]), rand_word(body[i]);
    int s0 = lqa_db_section(&b, 1, t[0], strlen(t[0]));
    lqa_db_puts(&b, body[0]);
    int s1 = lqa_db_section(&b, 2, t[1], strlen(t[1]));
    lqa_db_puts(&b, body[1]);
    int s2 = lqa_db_section(&b, 1, t[2], strlen(t[2]));
    lqa_db_puts(&b, body[2]);
    assert_int_equal(lqa_db_section(&b, 2, "  \n ", 4), -1); /* empty heading: no section */
    lqa_db_finish(&b);
    assert_int_equal(d.n_sections, 3);
    assert_int_equal(d.sections[s0].parent, -1);
    assert_int_equal(d.sections[s1].parent, s0);
    assert_int_equal(d.sections[s2].parent, -1);
    assert_int_equal(d.sections[s1].level, 2);
    for (int i = 0; i < 3; i++) {
        lqa_span sp = d.sections[i].span;
        assert_true(strncmp(d.text.data + sp.start, t[i], strlen(t[i])) == 0);
        /* heading on its own line */
        assert_true(sp.start == 0 || d.text.data[sp.start - 1] == '\n');
        assert_int_equal(d.text.data[sp.start + strlen(t[i])], i == 2 ? '\n' : '\n');
    }
    /* chapter 0 spans its subsection; ends where chapter 2 begins (before the separator) */
    assert_true(d.sections[s0].span.end >= d.sections[s1].span.end);
    assert_true(d.sections[s0].span.end < d.sections[s2].span.start);
    assert_int_equal(d.sections[s2].span.end, d.text.len);
    assert_string_equal(d.title, t[0]);
    lqa_doc_free(&d);
}

static void test_table_cells_spans_and_spanning(void **state) {
    lqa_doc d;
    lqa_doc_init(&d, "x", "html");
    lqa_docbuild b;
    lqa_db_init(&b, &d);
    lqa_db_puts(&b, "before");
    char w[6][16];
    for (int i = 0; i < 6; i++) rand_word(w[i]);
    lqa_db_table_begin(&b, "The  caption", 12);
    lqa_db_table_row(&b);
    lqa_db_table_cell(&b, w[0], strlen(w[0]), 1, 1);
    lqa_db_table_cell(&b, w[1], strlen(w[1]), 2, 1); /* header spanning two columns */
    lqa_db_table_row(&b);
    lqa_db_table_cell(&b, w[2], strlen(w[2]), 1, 2); /* rowspan 2 */
    lqa_db_table_cell(&b, w[3], strlen(w[3]), 1, 1);
    lqa_db_table_cell(&b, " x\n y ", 6, 1, 1);
    lqa_db_table_row(&b);
    lqa_db_table_cell(&b, w[4], strlen(w[4]), 1, 1);
    lqa_db_table_row(&b); /* an empty row is dropped */
    int ti = lqa_db_table_end(&b);
    lqa_db_puts(&b, "after");
    lqa_db_finish(&b);
    assert_int_equal(ti, 0);
    lqa_table *t = &d.tables[0];
    assert_string_equal(t->caption, "The caption");
    assert_int_equal(t->n_rows, 3);
    assert_int_equal(t->n_cols, 3);
    const char *want[9] = {w[0], w[1], w[1], w[2], w[3], "x y", w[2], w[4], ""};
    for (int i = 0; i < 9; i++) {
        assert_string_equal(t->cells[i], want[i]);
        if (want[i][0]) assert_true(span_equals(&d, t->cell_spans[i], want[i]));
    }
    /* each row is one line "a | b | c" */
    char line[128];
    snprintf(line, sizeof line, "\n%s | %s | x y\n", w[2], w[3]);
    assert_non_null(strstr(d.text.data, line));
    snprintf(line, sizeof line, "\n%s | %s\n", w[0], w[1]);
    assert_non_null(strstr(d.text.data, line));
    assert_true(strncmp(d.text.data, "before\n\nThe caption\n", 20) == 0);
    assert_non_null(strstr(d.text.data, " | \n\nafter"));
    lqa_doc_free(&d);
}

static void test_definitions_passages_abstract(void **state) {
    lqa_doc d;
    lqa_doc_init(&d, "x", "docbook");
    lqa_docbuild b;
    lqa_db_init(&b, &d);
    char term[16], def[16], abs[16];
    rand_word(term), rand_word(def), rand_word(abs);
    lqa_db_para(&b);
    size_t a0 = lqa_db_start(&b);
    lqa_db_puts(&b, abs);
    lqa_db_abstract(&b, (lqa_span){a0, lqa_db_end(&b)});
    lqa_db_para(&b);
    size_t t0 = lqa_db_start(&b);
    lqa_db_puts(&b, term);
    lqa_span ts = {t0, lqa_db_end(&b)};
    lqa_db_line(&b);
    size_t d0 = lqa_db_start(&b);
    lqa_db_puts(&b, def);
    lqa_db_para(&b);
    lqa_db_start(&b); /* a stray start writes a separator; the span end ignores it */
    lqa_span ds = {d0, lqa_db_end(&b)};
    assert_int_equal(lqa_db_definition(&b, term, strlen(term), ts, ds), 0);
    assert_int_equal(lqa_db_definition(&b, "t", 1, ts, (lqa_span){5, 5}), -1);
    lqa_db_finish(&b);
    assert_true(span_equals(&d, d.abstract, abs));
    assert_true(span_equals(&d, d.defs[0].term_span, term));
    assert_true(span_equals(&d, d.defs[0].def_span, def));
    assert_string_equal(d.defs[0].term, term);
    assert_int_equal(d.defs[0].section, -1);
    lqa_doc_free(&d);
}

static void test_heading_labels_and_numbered_passages(void **state) {
    char label[64];
    struct { const char *title, *label; } cases[] = {
        {"9.4. String Functions", "9.4"}, {"Chapter 3. Server Setup", "Chapter 3"}, {"A.2 Limits", "A.2"},
        {"1 Introduction", "1"}, {"Appendix F. Extensions", "Appendix F"}, {"2020 Plans", NULL},
        {"Introduction", NULL}, {"3.14", NULL}, {"I think", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int ok = lqa_db_heading_label(cases[i].title, label, sizeof label);
        if (cases[i].label) {
            assert_true(ok);
            assert_string_equal(label, cases[i].label);
        } else {
            assert_false(ok);
        }
    }
    lqa_doc d;
    lqa_doc_init(&d, "x", "html");
    lqa_docbuild b;
    lqa_db_init(&b, &d);
    char p1[16], p2[16];
    rand_word(p1), rand_word(p2);
    int major = 1 + (int)lqa_rng_below(&rng, 20), minor = 1 + (int)lqa_rng_below(&rng, 9);
    char h1[64], h2[64], l2[32];
    snprintf(h1, sizeof h1, "Chapter %d. Things", major);
    snprintf(h2, sizeof h2, "%d.%d. Sub things", major, minor);
    snprintf(l2, sizeof l2, "%d.%d", major, minor);
    lqa_db_section(&b, 1, h1, strlen(h1)); /* starts straight with a subsection: no passage */
    lqa_db_section(&b, 2, h2, strlen(h2));
    lqa_db_puts(&b, p1);
    lqa_db_para(&b);
    lqa_db_puts(&b, p2);
    lqa_db_finish(&b);
    lqa_db_number_passages(&b);
    assert_int_equal(d.n_passages, 1);
    assert_string_equal(d.passages[0].label, l2);
    assert_true(span_equals(&d, d.passages[0].span, p1));
    lqa_doc_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whitespace_collapse_and_separators),
        cmocka_unit_test(test_invalid_utf8_and_nfc),
        cmocka_unit_test(test_sections_levels_spans_parents),
        cmocka_unit_test(test_table_cells_spans_and_spanning),
        cmocka_unit_test(test_definitions_passages_abstract),
        cmocka_unit_test(test_heading_labels_and_numbered_passages),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
