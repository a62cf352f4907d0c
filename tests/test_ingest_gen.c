/* test_ingest_gen.c: the QA generators on documents built by hand (random words, fresh each run):
 * every answer lies at its evidence span, quoted passages occur exactly once, table keys are
 * unique, definitions/references/summary map to their spans, synthetic copies hold the
 * needles, output is deterministic from the seed, and --generators parses. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "ingest/gen.h"

/* ---- a hand-built document ---- */

static void word(lqa_rng *r, lqa_buf *b, int cap) {
    int n = 3 + (int)lqa_rng_below(r, 7);
    for (int i = 0; i < n; i++) {
        char c = (char)('a' + lqa_rng_below(r, 26));
        lqa_buf_putc(b, i == 0 && cap ? (char)(c - 32) : c);
    }
    if (lqa_rng_below(r, 15) == 0) lqa_buf_puts(b, "\xc3\xa9"); /* é: multi-byte text */
}

static lqa_span sentence(lqa_rng *r, lqa_buf *b) {
    size_t start = b->len;
    int n = 8 + (int)lqa_rng_below(r, 10);
    for (int i = 0; i < n; i++) {
        if (i) lqa_buf_putc(b, ' ');
        word(r, b, i == 0);
    }
    lqa_buf_putc(b, '.');
    return (lqa_span){start, b->len};
}

static void paragraph(lqa_rng *r, lqa_buf *b) {
    int n = 3 + (int)lqa_rng_below(r, 4);
    for (int i = 0; i < n; i++) {
        if (i) lqa_buf_putc(b, ' ');
        sentence(r, b);
    }
    lqa_buf_puts(b, "\n\n");
}

static int add_section(lqa_doc *d, int level, int parent, const char *title) {
    d->sections = lqa_realloc(d->sections, (size_t)(d->n_sections + 1) * sizeof *d->sections);
    lqa_section *s = &d->sections[d->n_sections];
    s->level = level;
    s->parent = parent;
    s->title = lqa_strdup(title);
    s->span.start = d->text.len;
    lqa_buf_printf(&d->text, "%s\n\n", title);
    return d->n_sections++;
}

static void close_sections(lqa_doc *d, int from) {
    for (int i = from; i < d->n_sections; i++) d->sections[i].span.end = d->text.len;
}

/* A document: chapters with subsections, paragraphs of random sentences, a table with unique
 * keys, definitions, labelled passages and an abstract. */
static void build_doc(lqa_doc *d, uint64_t seed, int chapters) {
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    lqa_doc_init(d, "hand.txt", "text");
    d->title = lqa_strdup("Hand Built");
    lqa_buf *t = &d->text;
    size_t a0 = t->len;
    paragraph(&r, t);
    d->abstract = (lqa_span){a0, t->len - 2};
    for (int c = 0; c < chapters; c++) {
        char title[64];
        snprintf(title, sizeof title, "Chapter %d", c + 1);
        int ci = add_section(d, 1, -1, title);
        paragraph(&r, t);
        for (int s = 0; s < 3; s++) {
            snprintf(title, sizeof title, "Section %d.%d", c + 1, s + 1);
            int si = add_section(d, 2, ci, title);
            for (int p = 0; p < 3; p++) paragraph(&r, t);
            /* labelled passages, verse style */
            for (int v = 0; v < 2; v++) {
                d->passages = lqa_realloc(d->passages, (size_t)(d->n_passages + 1) * sizeof *d->passages);
                char label[64];
                snprintf(label, sizeof label, "Hand %d:%d", c * 3 + s + 1, v + 1);
                lqa_buf_printf(t, "%d:%d ", c * 3 + s + 1, v + 1);
                lqa_span sp = sentence(&r, t);
                lqa_buf_puts(t, "\n\n");
                d->passages[d->n_passages++] = (lqa_passage){lqa_strdup(label), sp};
            }
            close_sections(d, si);
        }
        close_sections(d, ci);
    }
    /* a glossary of definitions */
    int gi = add_section(d, 1, -1, "Glossary");
    for (int k = 0; k < 6; k++) {
        lqa_buf term = {0};
        word(&r, &term, 0);
        lqa_buf_printf(&term, "%d", k); /* unique */
        size_t ts = t->len;
        lqa_buf_printf(t, "%s\n", term.data);
        size_t ds = t->len;
        sentence(&r, t);
        d->defs = lqa_realloc(d->defs, (size_t)(d->n_defs + 1) * sizeof *d->defs);
        d->defs[d->n_defs++] = (lqa_definition){lqa_buf_steal(&term), {ts, ds - 1}, {ds, t->len}, gi};
        lqa_buf_puts(t, "\n\n");
    }
    /* a table: header row + rows with unique keys, rendered "a | b | c" one row a line */
    lqa_table *tb = lqa_calloc(1, sizeof *tb);
    tb->n_rows = 6;
    tb->n_cols = 3;
    tb->cells = lqa_calloc(18, sizeof(char *));
    tb->cell_spans = lqa_calloc(18, sizeof(lqa_span));
    tb->section = gi;
    tb->caption = lqa_strdup("Hand table");
    for (int row = 0; row < 6; row++) {
        for (int col = 0; col < 3; col++) {
            lqa_buf cellb = {0};
            if (row == 0) lqa_buf_printf(&cellb, "Head%d", col);
            else {
                word(&r, &cellb, 1);
                lqa_buf_printf(&cellb, "%d%d", row, col);
            }
            if (col) lqa_buf_puts(t, " | ");
            size_t cs = t->len;
            lqa_buf_puts(t, cellb.data);
            tb->cell_spans[row * 3 + col] = (lqa_span){cs, t->len};
            tb->cells[row * 3 + col] = lqa_buf_steal(&cellb);
        }
        lqa_buf_puts(t, "\n");
    }
    d->tables = tb;
    d->n_tables = 1;
    close_sections(d, gi);
}

/* ---- checks ---- */

static void assert_pairs_extractive(const lqa_gen_list *l, const char *text, size_t len) {
    for (int i = 0; i < l->n; i++) {
        const lqa_gen_qa *g = &l->items[i];
        assert_true(strlen(g->question) > 0 && strlen(g->answer) > 0);
        assert_true(g->evidence.start < g->evidence.end && g->evidence.end <= len);
        assert_non_null(memmem(text + g->evidence.start, g->evidence.end - g->evidence.start, g->answer, strlen(g->answer)));
    }
}

/* The text between the first and the last '"' of a question. */
static char *quoted(const char *q) {
    const char *a = strchr(q, '"'), *b = strrchr(q, '"');
    if (!a || b <= a) return NULL;
    return lqa_strndup(a + 1, (size_t)(b - a - 1));
}

static int count_kind(const lqa_gen_list *l, const char *kind) {
    int n = 0;
    for (int i = 0; i < l->n; i++) n += !strcmp(l->items[i].kind, kind);
    return n;
}

static void test_each_generator_extractive(void **state) {
    uint64_t seed = lqa_test_seed();
    lqa_doc d;
    build_doc(&d, seed, 6);
    static const unsigned bits[] = {LQA_GEN_SECTION, LQA_GEN_TABLE, LQA_GEN_DEFINITION, LQA_GEN_REFERENCE,
                                    LQA_GEN_CONTINUATION, LQA_GEN_MULTIHOP, LQA_GEN_SUMMARY};
    for (size_t k = 0; k < sizeof bits / sizeof bits[0]; k++) {
        lqa_gen_opts o = {.seed = seed, .mask = bits[k], .max_per_kind = 25};
        lqa_gen_list l = {0};
        lqa_gen_run(&d, &o, &l);
        const char *name = lqa_gen_kind_name(bits[k]);
        if (l.n == 0) fail_msg("generator %s made no pair on the hand-built document", name);
        assert_int_equal(count_kind(&l, name), l.n);
        assert_pairs_extractive(&l, d.text.data, d.text.len);
        lqa_gen_list_free(&l);
    }
    lqa_doc_free(&d);
}

static void test_answers_match_structure(void **state) {
    uint64_t seed = lqa_test_seed();
    lqa_doc d;
    build_doc(&d, seed, 4);
    lqa_gen_opts o = {.seed = seed, .mask = LQA_GEN_ALL & ~LQA_GEN_SYNTHETIC, .max_per_kind = 25};
    lqa_gen_list l = {0};
    lqa_gen_run(&d, &o, &l);
    for (int i = 0; i < l.n; i++) {
        const lqa_gen_qa *g = &l.items[i];
        char *q = quoted(g->question);
        if (!strcmp(g->kind, "section") || !strcmp(g->kind, "continuation") ||
            !strcmp(g->generator, "multihop:next-section")) {
            /* the quoted passage names one place in the document */
            assert_non_null(q);
            assert_int_equal(lqa_gen_count(d.text.data, d.text.len, q, strlen(q), 5), 1);
        }
        if (!strcmp(g->kind, "section")) {
            /* the answer is the title of the section whose span holds the quote */
            size_t at = (size_t)((char *)memmem(d.text.data, d.text.len, q, strlen(q)) - d.text.data);
            int found = 0;
            for (int s = 0; s < d.n_sections; s++)
                found |= !strcmp(d.sections[s].title, g->answer) && d.sections[s].span.start <= at &&
                         at < d.sections[s].span.end;
            assert_true(found);
        }
        if (!strcmp(g->kind, "table")) {
            /* key and header in the question, cell of that row and column as the answer */
            const lqa_table *t = &d.tables[0];
            int found = 0;
            for (int row = 1; row < t->n_rows; row++)
                for (int col = 1; col < t->n_cols; col++)
                    found |= strstr(g->question, t->cells[row * 3]) && strstr(g->question, t->cells[col]) &&
                             !strcmp(g->answer, t->cells[row * 3 + col]);
            assert_true(found);
        }
        if (!strcmp(g->kind, "reference")) {
            int found = 0;
            for (int p = 0; p < d.n_passages; p++)
                found |= strstr(g->question, d.passages[p].label) && g->evidence.start == d.passages[p].span.start;
            assert_true(found);
        }
        free(q);
    }
    lqa_gen_list_free(&l);
    lqa_doc_free(&d);
}

/* Every sentence appears twice: nothing can be quoted unambiguously, so no quoting pair. */
static void test_repeated_text_never_quoted(void **state) {
    uint64_t seed = lqa_test_seed();
    lqa_doc d;
    build_doc(&d, seed, 3);
    size_t n = d.text.len;
    char *copy = lqa_strndup(d.text.data, n);
    lqa_buf_puts(&d.text, "\n\n");
    lqa_buf_append(&d.text, copy, n); /* the whole text again, outside every section */
    free(copy);
    lqa_gen_opts o = {.seed = seed, .mask = LQA_GEN_SECTION | LQA_GEN_CONTINUATION | LQA_GEN_MULTIHOP, .max_per_kind = 25};
    lqa_gen_list l = {0};
    lqa_gen_run(&d, &o, &l);
    for (int i = 0; i < l.n; i++) assert_string_equal(l.items[i].generator, "multihop:first-mention");
    lqa_gen_list_free(&l);
    lqa_doc_free(&d);
}

/* A key repeated in its column never becomes a question. */
static void test_table_duplicate_keys_skipped(void **state) {
    uint64_t seed = lqa_test_seed();
    lqa_doc d;
    build_doc(&d, seed, 2);
    lqa_table *t = &d.tables[0];
    free(t->cells[2 * 3]);
    t->cells[2 * 3] = lqa_strdup(t->cells[1 * 3]); /* rows 1 and 2 share a key */
    lqa_gen_opts o = {.seed = seed, .mask = LQA_GEN_TABLE, .max_per_kind = 50};
    lqa_gen_list l = {0};
    for (uint64_t s = 0; s < 20; s++) { /* many seeds: many draws */
        o.seed = seed + s;
        lqa_gen_run(&d, &o, &l);
    }
    assert_true(l.n > 0);
    for (int i = 0; i < l.n; i++) {
        char needle[256];
        snprintf(needle, sizeof needle, "row \"%s\"", t->cells[1 * 3]);
        assert_null(strstr(l.items[i].question, needle));
    }
    lqa_gen_list_free(&l);
    lqa_doc_free(&d);
}

static int lists_equal(const lqa_gen_list *a, const lqa_gen_list *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->items[i].question, b->items[i].question) || strcmp(a->items[i].answer, b->items[i].answer) ||
            a->items[i].evidence.start != b->items[i].evidence.start)
            return 0;
    return 1;
}

static void test_deterministic_from_seed(void **state) {
    uint64_t seed = lqa_test_seed();
    lqa_doc d;
    build_doc(&d, seed, 8);
    lqa_gen_opts o = {.seed = seed, .mask = LQA_GEN_ALL & ~LQA_GEN_SYNTHETIC, .max_per_kind = 4};
    lqa_gen_list a = {0}, b = {0}, c = {0};
    lqa_gen_run(&d, &o, &a);
    lqa_gen_run(&d, &o, &b);
    assert_true(a.n > 0);
    assert_true(lists_equal(&a, &b));
    o.seed = seed + 1;
    lqa_gen_run(&d, &o, &c);
    assert_false(lists_equal(&a, &c)); /* another seed picks other passages */
    lqa_gen_synth s1, s2;
    o.seed = seed;
    assert_int_equal(lqa_gen_synthetic(&d, &o, &s1), 0);
    assert_int_equal(lqa_gen_synthetic(&d, &o, &s2), 0);
    assert_int_equal(s1.len, s2.len);
    assert_memory_equal(s1.text, s2.text, s1.len);
    lqa_gen_synth_free(&s1);
    lqa_gen_synth_free(&s2);
    lqa_gen_list_free(&a);
    lqa_gen_list_free(&b);
    lqa_gen_list_free(&c);
    lqa_doc_free(&d);
}

static void test_synthetic_copy(void **state) {
    uint64_t seed = lqa_test_seed();
    lqa_doc d;
    build_doc(&d, seed, 5);
    lqa_gen_opts o = {.seed = seed, .mask = LQA_GEN_SYNTHETIC};
    lqa_gen_synth s;
    assert_int_equal(lqa_gen_synthetic(&d, &o, &s), 0);
    assert_int_equal(s.qas.n, 2);
    assert_pairs_extractive(&s.qas, s.text, s.len);
    size_t inserted = 0;
    for (int i = 0; i < 2; i++) {
        const lqa_gen_qa *g = &s.qas.items[i];
        assert_string_equal(g->kind, "synthetic");
        /* the number occurs only in the inserted paragraph, never in the original */
        size_t an = strlen(g->answer);
        assert_int_equal(lqa_gen_count(s.text, s.len, g->answer, an, 5),
                         lqa_gen_count(s.text + g->evidence.start, g->evidence.end - g->evidence.start, g->answer, an, 5));
        assert_int_equal(lqa_gen_count(d.text.data, d.text.len, g->answer, strlen(g->answer), 5), 0);
        inserted += g->evidence.end - g->evidence.start + 2;
    }
    /* the copy is the original plus the two inserted paragraphs */
    assert_true(s.len >= d.text.len + inserted && s.len <= d.text.len + inserted + 4);
    lqa_gen_synth_free(&s);
    /* too short to carry a needle */
    lqa_doc tiny;
    lqa_doc_init(&tiny, "t", "text");
    lqa_buf_puts(&tiny.text, "Short text.");
    assert_int_equal(lqa_gen_synthetic(&tiny, &o, &s), -1);
    lqa_doc_free(&tiny);
    lqa_doc_free(&d);
}

static void test_emit_rejects_non_extractive(void **state) {
    const char *text = "Alpha beta gamma delta.";
    lqa_gen_list l = {0};
    lqa_doc d;
    lqa_doc_init(&d, "x", "text");
    assert_int_equal(lqa_gen_emit(&l, &d, text, strlen(text), lqa_strdup("q?"), lqa_strdup("gamma"),
                                  (lqa_span){0, 10}, "section", "g"), 0); /* span "Alpha beta" */
    assert_int_equal(lqa_gen_emit(&l, &d, text, strlen(text), lqa_strdup("q?"), lqa_strdup("gamma"),
                                  (lqa_span){6, 40}, "section", "g"), 0); /* span past the end */
    assert_int_equal(lqa_gen_emit(&l, &d, text, strlen(text), lqa_strdup("q?"), lqa_strdup("bad \xff"),
                                  (lqa_span){0, 0}, "imported", "g"), 0); /* invalid UTF-8 */
    assert_int_equal(lqa_gen_emit(&l, &d, text, strlen(text), lqa_strdup("q?"), lqa_strdup("gamma"),
                                  (lqa_span){6, 16}, "section", "g"), 1);
    assert_int_equal(l.n, 1);
    lqa_gen_list_free(&l);
    lqa_doc_free(&d);
}

static void test_imported_pairs(void **state) {
    lqa_doc d;
    lqa_doc_init(&d, "set.json", "squad");
    lqa_buf_puts(&d.text, "The river Zed flows north into the cold sea.");
    d.qas = lqa_calloc(3, sizeof *d.qas);
    const char *ans[][2] = {{"north", "northwards"}, {"the cold sea", NULL}, {"a summary", NULL}};
    lqa_span ev[] = {{16, 27}, {0, 5} /* wrong span: dropped */, {0, 0}};
    for (int i = 0; i < 3; i++) {
        d.qas[i].question = lqa_strdup("Where?");
        d.qas[i].n_answers = ans[i][1] ? 2 : 1;
        d.qas[i].answers = lqa_calloc(2, sizeof(char *));
        for (int k = 0; k < d.qas[i].n_answers; k++) d.qas[i].answers[k] = lqa_strdup(ans[i][k]);
        d.qas[i].evidence = ev[i];
        d.qas[i].kind = lqa_strdup("squad");
    }
    d.n_qas = 3;
    lqa_gen_opts o = {.seed = 1, .mask = LQA_GEN_IMPORTED};
    lqa_gen_list l = {0};
    lqa_gen_run(&d, &o, &l);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0].kind, "squad");
    assert_string_equal(l.items[0].answers_json, "[\"north\",\"northwards\"]");
    assert_int_equal(l.items[0].evidence.end, 27);
    assert_int_equal(l.items[1].evidence.end, 0);
    assert_int_equal(l.items[2].evidence.end, 0);
    lqa_gen_list_free(&l);
    lqa_doc_free(&d);
}

static void test_parse_list(void **state) {
    unsigned m;
    lqa_err err;
    assert_int_equal(lqa_gen_parse_list("section,table", &m, &err), 0);
    assert_int_equal(m, LQA_GEN_SECTION | LQA_GEN_TABLE);
    assert_int_equal(lqa_gen_parse_list("all", &m, &err), 0);
    assert_int_equal(m, LQA_GEN_ALL);
    assert_int_equal(lqa_gen_parse_list("section,bogus", &m, &err), -1);
    assert_non_null(strstr(err.msg, "bogus"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_generator_extractive), cmocka_unit_test(test_answers_match_structure),
        cmocka_unit_test(test_repeated_text_never_quoted), cmocka_unit_test(test_table_duplicate_keys_skipped),
        cmocka_unit_test(test_deterministic_from_seed),   cmocka_unit_test(test_synthetic_copy),
        cmocka_unit_test(test_emit_rejects_non_extractive), cmocka_unit_test(test_imported_pairs),
        cmocka_unit_test(test_parse_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
