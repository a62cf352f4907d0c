/* test_ingest_gen_far.c: the long-range generators (order, xref, term, count, join, section:chapter) on
 * a long document built by hand from fresh random words: every pair's answer is checked by a
 * rule written here (not the generator's), its anchor is recorded and lies at least
 * lqa_gen_far() bytes from its evidence, and the same rule rejects a planted wrong answer.
 * (count: the last of the sections, or tables, mentioning a word.)
 * Also: no (question, answer) twice in one list, a header-less table asks nothing, and the
 * section questions of a verse text never quote a passage whose label names the section. */
#include "tests/testutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "ingest/gen.h"

/* ---- the document ---- */

#define N_PARTS 4
#define SECS_PER_PART 5
#define N_TERMS 6
#define N_ROWS 8
#define N_COUNT_WORDS 6

typedef struct far_doc {
    lqa_doc d;
    char terms[N_TERMS][32], keys[N_ROWS][32], count_words[N_COUNT_WORDS][32], table_word[32];
} far_doc;

/* 3-8 lowercase letters: never as long as the planted 9+ letter words */
static void word(lqa_rng *r, lqa_buf *b, int cap) {
    int n = 3 + (int)lqa_rng_below(r, 6);
    for (int i = 0; i < n; i++) {
        char c = (char)('a' + lqa_rng_below(r, 26));
        lqa_buf_putc(b, i == 0 && cap ? (char)(c - 32) : c);
    }
}

static void words(lqa_rng *r, lqa_buf *b, int n) {
    for (int i = 0; i < n; i++) {
        lqa_buf_putc(b, ' ');
        word(r, b, 0);
    }
}

static void sentence(lqa_rng *r, lqa_buf *b) {
    word(r, b, 1);
    words(r, b, 7 + (int)lqa_rng_below(r, 8));
    lqa_buf_putc(b, '.');
}

static int add_section(lqa_doc *d, int level, int parent, const char *title) {
    d->sections = lqa_realloc(d->sections, (size_t)(d->n_sections + 1) * sizeof *d->sections);
    lqa_section *s = &d->sections[d->n_sections];
    s->level = level, s->parent = parent, s->title = lqa_strdup(title);
    s->span.start = d->text.len;
    lqa_buf_printf(&d->text, "%s\n\n", title);
    return d->n_sections++;
}

static void close_sections(lqa_doc *d, int from) {
    for (int i = from; i < d->n_sections; i++) d->sections[i].span.end = d->text.len;
}

static void random_name(lqa_rng *r, char *out, size_t n, const char *prefix, int letters) {
    int k = snprintf(out, n, "%s", prefix);
    for (int i = 0; i < letters && k + 1 < (int)n; i++) out[k++] = (char)('a' + lqa_rng_below(r, 26));
    out[k] = '\0';
}

/* Glossary (terms + definitions), a table with a header row, then N_PARTS parts of sections
 * "p.s. Title" whose paragraphs mention the count words (each in about three sections); the
 * last part's paragraphs use the terms, name table rows and refer back to "Section 1.s". */
static void build_far_doc(far_doc *f, uint64_t seed) {
    memset(f, 0, sizeof *f);
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    lqa_doc *d = &f->d;
    lqa_doc_init(d, "far.txt", "text");
    d->title = lqa_strdup("Far Document");
    lqa_buf *t = &d->text;
    for (int k = 0; k < N_TERMS; k++) random_name(&r, f->terms[k], 32, "Zor", 5);
    for (int k = 0; k < N_ROWS; k++) random_name(&r, f->keys[k], 32, "Rowkey", 4);
    for (int k = 0; k < N_COUNT_WORDS; k++) random_name(&r, f->count_words[k], 32, "xylo", 7);
    random_name(&r, f->table_word, 32, "tabu", 7);
    int gi = add_section(d, 1, -1, "Glossary");
    for (int k = 0; k < N_TERMS; k++) {
        size_t ts = t->len;
        lqa_buf_printf(t, "%s\n", f->terms[k]);
        size_t ds = t->len;
        sentence(&r, t);
        d->defs = lqa_realloc(d->defs, (size_t)(d->n_defs + 1) * sizeof *d->defs);
        d->defs[d->n_defs++] = (lqa_definition){lqa_strdup(f->terms[k]), {ts, ds - 1}, {ds, t->len}, gi};
        lqa_buf_puts(t, "\n\n");
    }
    close_sections(d, gi);
    int ti = add_section(d, 1, -1, "Tables");
    lqa_table *tb = lqa_calloc(1, sizeof *tb);
    tb->n_rows = N_ROWS + 1, tb->n_cols = 3, tb->section = ti;
    tb->caption = lqa_strdup("Table of rows");
    tb->cells = lqa_calloc((size_t)tb->n_rows * 3, sizeof(char *));
    tb->cell_spans = lqa_calloc((size_t)tb->n_rows * 3, sizeof(lqa_span));
    for (int row = 0; row < tb->n_rows; row++) {
        for (int col = 0; col < 3; col++) {
            lqa_buf cb = {0};
            if (row == 0) lqa_buf_printf(&cb, "Head%d", col);
            else if (col == 0) lqa_buf_puts(&cb, f->keys[row - 1]);
            else if (row == 1 && col == 2) lqa_buf_puts(&cb, f->table_word); /* also in the last table */
            else {
                word(&r, &cb, 1);
                lqa_buf_printf(&cb, "%d%d", row, col);
            }
            if (col) lqa_buf_puts(t, " | ");
            size_t cs = t->len;
            lqa_buf_puts(t, cb.data);
            tb->cell_spans[row * 3 + col] = (lqa_span){cs, t->len};
            tb->cells[row * 3 + col] = lqa_buf_steal(&cb);
        }
        lqa_buf_puts(t, "\n");
    }
    lqa_buf_puts(t, "\n");
    d->tables = lqa_calloc(2, sizeof *d->tables);
    d->tables[0] = *tb;
    free(tb);
    d->n_tables = 1;
    close_sections(d, ti);
    int sec_no = 0;
    for (int p = 1; p <= N_PARTS; p++) {
        char title[64];
        snprintf(title, sizeof title, "Part %d", p);
        int pi = add_section(d, 1, -1, title);
        for (int s = 1; s <= SECS_PER_PART; s++, sec_no++) {
            lqa_buf tt = {0};
            lqa_buf_printf(&tt, "%d.%d. ", p, s);
            word(&r, &tt, 1);
            words(&r, &tt, 1);
            int si = add_section(d, 2, pi, tt.data);
            lqa_buf_free(&tt);
            for (int para = 0; para < 40; para++) {
                for (int k = 0; k < 4; k++) {
                    if (k) lqa_buf_putc(t, ' ');
                    sentence(&r, t);
                }
                /* each count word lives in the sections sec_no % N_COUNT_WORDS picks */
                lqa_buf_printf(t, " Then %s", f->count_words[sec_no % N_COUNT_WORDS]);
                words(&r, t, 6);
                lqa_buf_putc(t, '.');
                if (p == N_PARTS) { /* far from the glossary, the table and part 1 */
                    lqa_buf_printf(t, "\n\nThe %s", f->terms[lqa_rng_below(&r, N_TERMS)]);
                    words(&r, t, 6);
                    lqa_buf_printf(t, ". Here %s", f->keys[lqa_rng_below(&r, N_ROWS)]);
                    words(&r, t, 6);
                    lqa_buf_printf(t, ". As told in Section 1.%d", 1 + (int)lqa_rng_below(&r, SECS_PER_PART));
                    words(&r, t, 6);
                    lqa_buf_putc(t, '.');
                }
                lqa_buf_puts(t, "\n\n");
            }
            close_sections(d, si);
        }
        close_sections(d, pi);
    }
    /* a second table, at the very end: it mentions the first table's word again */
    int li = add_section(d, 1, -1, "Late tables");
    lqa_table *lt = &d->tables[d->n_tables++];
    lt->n_rows = 2, lt->n_cols = 2, lt->section = li;
    lt->caption = lqa_strdup("Late table");
    lt->cells = lqa_calloc(4, sizeof(char *));
    lt->cell_spans = lqa_calloc(4, sizeof(lqa_span));
    lqa_buf_puts(t, "Late table\n");
    const char *late[4] = {"Name", "Note", "Latekeyq", f->table_word};
    for (int i = 0; i < 4; i++) {
        if (i % 2) lqa_buf_puts(t, " | ");
        lt->cell_spans[i].start = t->len;
        lqa_buf_puts(t, late[i]);
        lt->cell_spans[i].end = t->len;
        lt->cells[i] = lqa_strdup(late[i]);
        if (i % 2) lqa_buf_puts(t, "\n");
    }
    close_sections(d, li);
}

/* ---- the checks, written apart from the generators ---- */

static size_t find_once(const lqa_doc *d, const char *s) {
    const char *a = strstr(d->text.data, s);
    assert_non_null(a);
    assert_null(strstr(a + 1, s)); /* quoted passages occur once */
    return (size_t)(a - d->text.data);
}

/* The n-th (0-based) "..." of a question, copied. */
static char *nth_quote(const char *q, int n) {
    const char *a = q;
    for (int i = 0; i <= n; i++) {
        a = strchr(a, '"');
        if (!a) return NULL;
        const char *b = strchr(a + 1, '"');
        if (!b) return NULL;
        if (i == n) return lqa_strndup(a + 1, (size_t)(b - a - 1));
        a = b + 1;
    }
    return NULL;
}

static int top_section(const lqa_doc *d, size_t pos) {
    for (int i = 0; i < d->n_sections; i++)
        if (d->sections[i].level == 1 && d->sections[i].span.start <= pos && pos < d->sections[i].span.end) return i;
    return -1;
}

static int innermost(const lqa_doc *d, size_t pos) {
    int best = -1;
    for (int i = 0; i < d->n_sections; i++)
        if (d->sections[i].span.start <= pos && pos < d->sections[i].span.end &&
            (best < 0 || d->sections[i].level >= d->sections[best].level))
            best = i;
    return best;
}

/* Is `answer` the right answer to pair g? By kind, from the document alone. */
static int answer_right(const far_doc *f, const lqa_gen_qa *g, const char *answer) {
    const lqa_doc *d = &f->d;
    const char *t = d->text.data;
    int ok = 0;
    if (!strcmp(g->generator, "order:first")) {
        char *x = nth_quote(g->question, 0), *y = nth_quote(g->question, 1);
        size_t px = find_once(d, x), py = find_once(d, y);
        ok = !strcmp(answer, px < py ? x : y);
        free(x), free(y);
    } else if (!strcmp(g->generator, "xref:section")) {
        const char *ref = strstr(g->question, "Section ");
        assert_non_null(ref);
        int a = 0, b = 0;
        assert_int_equal(sscanf(ref, "Section %d.%d", &a, &b), 2);
        char title[128];
        snprintf(title, sizeof title, "%d.%d. %s", a, b, answer);
        for (int i = 0; i < d->n_sections; i++) ok |= !strcmp(d->sections[i].title, title);
    } else if (!strcmp(g->generator, "term:far-use")) {
        char *term = nth_quote(g->question, 1);
        for (int k = 0; k < d->n_defs; k++)
            if (!strcmp(d->defs[k].term, term))
                ok = !strncmp(t + d->defs[k].def_span.start, answer, strlen(answer)) && strlen(answer) > 10;
        free(term);
    } else if (!strcmp(g->generator, "count:last-section")) {
        char *w = nth_quote(g->question, 0);
        const char *last = NULL;
        for (const char *p = t; (p = strstr(p, w)); p++) last = p;
        ok = last && !strcmp(answer, d->sections[innermost(d, (size_t)(last - t))].title);
        free(w);
    } else if (!strcmp(g->generator, "count:last-table")) {
        char *w = nth_quote(g->question, 0);
        const char *last = NULL;
        for (const char *p = t; (p = strstr(p, w)); p++) last = p;
        size_t at = last ? (size_t)(last - t) : 0;
        for (int ti = 0; ti < d->n_tables && last; ti++) {
            const lqa_table *tb = &d->tables[ti];
            size_t lo = tb->cell_spans[0].start, hi = tb->cell_spans[tb->n_rows * tb->n_cols - 1].end;
            if (lo <= at && at < hi) ok = !strcmp(answer, tb->caption);
        }
        free(w);
    } else if (!strcmp(g->generator, "join:table-row")) {
        char *passage = nth_quote(g->question, 0), *header = nth_quote(g->question, 2);
        const lqa_table *tb = &d->tables[0];
        int col = -1, named = 0;
        for (int c = 1; c < tb->n_cols; c++)
            if (!strcmp(tb->cells[c], header)) col = c;
        for (int row = 1; row < tb->n_rows && col > 0; row++)
            if (strstr(passage, tb->cells[row * tb->n_cols])) {
                named++;
                ok = !strcmp(answer, tb->cells[row * tb->n_cols + col]);
            }
        ok = ok && named == 1;
        free(passage), free(header);
    } else if (!strcmp(g->generator, "section:chapter")) {
        char *passage = nth_quote(g->question, 0);
        int top = top_section(d, find_once(d, passage));
        ok = top >= 0 && !strcmp(answer, d->sections[top].title);
        free(passage);
    } else {
        fail_msg("unexpected generator %s", g->generator);
    }
    return ok;
}

/* A plausible wrong answer for g: another passage, title, definition or cell. */
static char *wrong_answer(const far_doc *f, const lqa_gen_qa *g) {
    const lqa_doc *d = &f->d;
    if (!strcmp(g->generator, "order:first")) {
        char *x = nth_quote(g->question, 0), *y = nth_quote(g->question, 1);
        char *w = lqa_strdup(strcmp(g->answer, x) ? x : y);
        free(x), free(y);
        return w;
    }
    if (!strcmp(g->generator, "term:far-use")) {
        for (int k = 0; k < d->n_defs; k++)
            if (strncmp(d->text.data + d->defs[k].def_span.start, g->answer, strlen(g->answer)))
                return lqa_gen_prefix(d->text.data, d->defs[k].def_span, 400);
    }
    if (!strcmp(g->generator, "count:last-table")) return lqa_strdup(d->tables[0].caption);
    if (!strcmp(g->generator, "join:table-row")) {
        const lqa_table *tb = &d->tables[0];
        for (int i = tb->n_cols; i < tb->n_rows * tb->n_cols; i++)
            if (i % tb->n_cols && strcmp(tb->cells[i], g->answer)) return lqa_strdup(tb->cells[i]);
    }
    /* another section's title (its name after the number, for xref) */
    for (int i = 0; i < d->n_sections; i++) {
        const char *title = d->sections[i].title, *dot = strstr(title, ". ");
        const char *name = !strcmp(g->generator, "xref:section") ? (dot ? dot + 2 : NULL) : title;
        if (name && strcmp(name, g->answer) && (strcmp(g->generator, "section:chapter") || d->sections[i].level == 1))
            return lqa_strdup(name);
    }
    fail_msg("no wrong answer for %s", g->generator);
    return NULL;
}

static void test_far_generators(void **state) {
    uint64_t seed = lqa_test_seed();
    far_doc f;
    build_far_doc(&f, seed);
    lqa_doc *d = &f.d;
    assert_true(d->text.len >= LQA_GEN_LONG_DOC);
    size_t far = lqa_gen_far(d);
    assert_true(far >= 30000); /* over 7k tokens at 4 bytes a token */
    lqa_gen_opts o = {.seed = seed, .mask = LQA_GEN_ORDER | LQA_GEN_XREF | LQA_GEN_TERM | LQA_GEN_COUNT |
                                            LQA_GEN_JOIN | LQA_GEN_SECTION, .max_per_kind = 25};
    lqa_gen_list l = {0};
    lqa_gen_run(d, &o, &l);
    static const char *const gens[] = {"order:first", "xref:section", "term:far-use", "count:last-section",
                                       "join:table-row", "section:chapter", "count:last-table"};
    int per[7] = {0};
    for (int i = 0; i < l.n; i++) {
        const lqa_gen_qa *g = &l.items[i];
        if (!strcmp(g->generator, "section:heading")) continue; /* the short-range kind (test_ingest_gen.c) */
        int k = -1;
        for (int j = 0; j < 7; j++)
            if (!strcmp(g->generator, gens[j])) k = j;
        assert_true(k >= 0);
        per[k]++;
        /* extractive, anchored, far */
        assert_true(g->evidence.end > g->evidence.start && g->evidence.end <= d->text.len);
        assert_non_null(memmem(d->text.data + g->evidence.start, g->evidence.end - g->evidence.start, g->answer,
                               strlen(g->answer)));
        assert_true(g->anchor.end > g->anchor.start && g->anchor.end <= d->text.len);
        assert_true(lqa_gen_distance(g->anchor, g->evidence) >= far);
        if (strncmp(g->generator, "count:", 6)) { /* the quoted passage is the anchor */
            char *a = lqa_strndup(d->text.data + g->anchor.start, g->anchor.end - g->anchor.start);
            assert_non_null(strstr(g->question, a));
            free(a);
        }
        /* the answer is right by the rule above, and the rule rejects a planted wrong one */
        if (!answer_right(&f, g, g->answer)) fail_msg("%s: wrong answer \"%s\" to: %s", g->generator, g->answer, g->question);
        char *wrong = wrong_answer(&f, g);
        assert_false(answer_right(&f, g, wrong));
        /* and so does the emit check when the wrong answer is not in the evidence */
        lqa_gen_list tmp = {0};
        int kept = lqa_gen_emit_at(&tmp, d, d->text.data, d->text.len, lqa_strdup(g->question), lqa_strdup(wrong),
                                   g->evidence, g->anchor, g->kind, g->generator);
        assert_true(!kept || memmem(d->text.data + g->evidence.start, g->evidence.end - g->evidence.start, wrong,
                                    strlen(wrong)));
        lqa_gen_list_free(&tmp);
        free(wrong);
    }
    for (int j = 0; j < 7; j++)
        if (per[j] == 0) fail_msg("no %s pair from the far document", gens[j]);
    /* no (question, answer) twice */
    for (int i = 0; i < l.n; i++)
        for (int j = i + 1; j < l.n; j++)
            assert_false(!strcmp(l.items[i].question, l.items[j].question) && !strcmp(l.items[i].answer, l.items[j].answer));
    lqa_gen_list_free(&l);
    lqa_doc_free(d);
}

/* The same pair emitted twice is kept once. */
static void test_emit_keeps_no_duplicate(void **state) {
    far_doc f;
    build_far_doc(&f, lqa_test_seed() + 1);
    lqa_doc *d = &f.d;
    lqa_gen_list l = {0};
    lqa_span ev = d->tables[0].cell_spans[4];
    char *ans = lqa_strdup(d->tables[0].cells[4]);
    assert_int_equal(lqa_gen_emit(&l, d, d->text.data, d->text.len, lqa_strdup("q?"), lqa_strdup(ans), ev, "table", "t"), 1);
    assert_int_equal(lqa_gen_emit(&l, d, d->text.data, d->text.len, lqa_strdup("q?"), lqa_strdup(ans), ev, "table", "t"), 0);
    assert_int_equal(l.n, 1);
    free(ans);
    lqa_gen_list_free(&l);
    lqa_doc_free(d);
}

/* A table without a header row: no table or join questions (its first row is data). */
static void test_headerless_table_asks_nothing(void **state) {
    far_doc f;
    build_far_doc(&f, lqa_test_seed() + 2);
    lqa_doc *d = &f.d;
    lqa_gen_opts o = {.seed = lqa_test_seed(), .mask = LQA_GEN_TABLE | LQA_GEN_JOIN, .max_per_kind = 25};
    lqa_gen_list l = {0};
    lqa_gen_run(d, &o, &l);
    assert_true(l.n > 0); /* with its header row, the table makes questions */
    lqa_gen_list_free(&l);
    for (int ti = 0; ti < d->n_tables; ti++) d->tables[ti].no_header = 1;
    lqa_gen_run(d, &o, &l);
    assert_int_equal(l.n, 0);
    lqa_doc_free(d);
}

/* Verse text "Book 12:3 ..." in sections "Book 12": a section question never quotes a verse,
 * since its label beside it ("12:3") names the section. */
static void test_section_not_answered_by_verse_label(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 3);
    lqa_doc d;
    lqa_doc_init(&d, "book.txt", "text");
    int top = add_section(&d, 1, -1, "Book");
    for (int c = 1; c <= 12; c++) {
        char title[32];
        snprintf(title, sizeof title, "Book %d", c);
        int ci = add_section(&d, 2, top, title);
        for (int v = 1; v <= 30; v++) {
            lqa_buf_printf(&d.text, "%d:%d ", c, v);
            size_t s0 = d.text.len;
            sentence(&r, &d.text); /* two sentences: the second starts a quotable one */
            lqa_buf_putc(&d.text, ' ');
            sentence(&r, &d.text);
            d.passages = lqa_realloc(d.passages, (size_t)(d.n_passages + 1) * sizeof *d.passages);
            char label[32];
            snprintf(label, sizeof label, "Book %d:%d", c, v);
            d.passages[d.n_passages++] = (lqa_passage){lqa_strdup(label), {s0, d.text.len}};
            lqa_buf_puts(&d.text, "\n\n");
        }
        close_sections(&d, ci);
    }
    close_sections(&d, top);
    lqa_gen_opts o = {.seed = lqa_test_seed(), .mask = LQA_GEN_SECTION | LQA_GEN_MULTIHOP, .max_per_kind = 25};
    lqa_gen_list l = {0};
    lqa_gen_run(&d, &o, &l);
    for (int i = 0; i < l.n; i++)
        assert_true(strcmp(l.items[i].generator, "section:heading") && strcmp(l.items[i].generator, "multihop:next-section"));
    /* the rule itself: a verse's position is revealed for its own section only */
    assert_true(lqa_gen_label_reveals(&d, d.passages[40].span.start, "Book 2"));
    assert_false(lqa_gen_label_reveals(&d, d.passages[40].span.start, "Book 1"));
    lqa_gen_list_free(&l);
    lqa_doc_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_far_generators),
        cmocka_unit_test(test_emit_keeps_no_duplicate),
        cmocka_unit_test(test_headerless_table_asks_nothing),
        cmocka_unit_test(test_section_not_answered_by_verse_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
