/* gen_struct.c: generators that read the document's structure: section retrieval, table
 * lookup, definition lookup, reference retrieval, summary, and imported QA pairs. */
#include "ingest/gen.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

static char *fmt(const char *f, ...) LQA_PRINTF(1, 2);
static char *fmt(const char *f, ...) {
    lqa_buf b = {0};
    va_list ap;
    va_start(ap, f);
    lqa_buf_vprintf(&b, f, ap);
    va_end(ap);
    return lqa_buf_steal(&b);
}

/* A random permutation of 0..n-1 from the generator's RNG. */
static uint32_t *order(lqa_rng *r, int n) {
    uint32_t *o = lqa_malloc(((size_t)n + 1) * sizeof *o);
    for (int i = 0; i < n; i++) o[i] = (uint32_t)i;
    lqa_rng_shuffle_u32(r, o, (uint64_t)n);
    return o;
}

static int title_unique(const lqa_doc *doc, int i) { return lqa_gen_title_unique(doc, i); }

/* A sentence from section i's own text that occurs once in the whole document. */
static int unique_sentence_in_section(const lqa_doc *doc, int i, lqa_rng *r, lqa_span head, lqa_span *out) {
    size_t from = head.end, to = lqa_gen_section_body_end(doc, i);
    if (to <= from + 40) return -1;
    for (int attempt = 0; attempt < 4; attempt++) {
        size_t at = from + lqa_rng_below(r, to - from);
        if (lqa_gen_sentence_at(doc->text.data, from, to, at, 40, 240, out) != 0 &&
            lqa_gen_sentence_at(doc->text.data, from, to, from, 40, 240, out) != 0)
            return -1;
        if (lqa_gen_count(doc->text.data, doc->text.len, doc->text.data + out->start, out->end - out->start, 2) == 1)
            return 0;
    }
    return -1;
}

/* The passage label printed beside pos gives the section away: a verse labelled "Genesis 44:18"
 * (printed "44:18") lies in the section "Genesis 44" and needs no reading to place. */
int lqa_gen_label_reveals(const lqa_doc *doc, size_t pos, const char *title) {
    size_t tn = strlen(title);
    for (int k = 0; k < doc->n_passages; k++) {
        const lqa_passage *p = &doc->passages[k];
        if (pos < p->span.start || pos >= p->span.end || !p->label) continue;
        if (!strncmp(p->label, title, tn) && !isalnum((unsigned char)p->label[tn])) return 1;
    }
    return 0;
}

/* The level of the document's chapters: the highest level that has two sections or more. */
static int chapter_level(const lqa_doc *doc) {
    int best = 0;
    for (int lv = 1; lv <= 8 && !best; lv++) {
        int n = 0;
        for (int i = 0; i < doc->n_sections && n < 2; i++) n += doc->sections[i].level == lv;
        if (n >= 2) best = lv;
    }
    return best;
}

/* "Which chapter contains the passage ..." where the chapter's heading lies at least `far`
 * bytes before the passage: the heading is thousands of tokens back. */
static int chapter_pair(const lqa_doc *doc, int ci, size_t far, lqa_rng *r, lqa_gen_list *out) {
    const lqa_section *c = &doc->sections[ci];
    lqa_span head, sent;
    if (lqa_gen_heading_span(doc, ci, &head) != 0 || !lqa_gen_title_unique(doc, ci)) return 0;
    size_t from = head.end + far, to = c->span.end;
    if (to <= from + 40) return 0;
    size_t at = from + lqa_rng_below(r, to - from);
    if (lqa_gen_sentence_at(doc->text.data, from, to, at, 40, 240, &sent) != 0 ||
        lqa_gen_count(doc->text.data, doc->text.len, doc->text.data + sent.start, sent.end - sent.start, 2) != 1 ||
        lqa_gen_label_reveals(doc, sent.start, c->title))
        return 0;
    char *quote = lqa_strndup(doc->text.data + sent.start, sent.end - sent.start);
    char *q = fmt("Which of the document's top-level sections contains the passage \"%s\"?", quote);
    free(quote);
    return lqa_gen_emit_at(out, doc, doc->text.data, doc->text.len, q, lqa_strdup(c->title), head, sent, "section",
                           "section:chapter");
}

static void section_chapters(const lqa_doc *doc, lqa_rng *r, int cap, lqa_gen_list *out) {
    int lv = chapter_level(doc), n = 0;
    size_t far = lqa_gen_far(doc);
    int *chap = lqa_malloc(((size_t)doc->n_sections + 1) * sizeof *chap);
    for (int i = 0; i < doc->n_sections; i++)
        if (doc->sections[i].level == lv && doc->sections[i].span.end - doc->sections[i].span.start > far + 200)
            chap[n++] = i;
    for (int attempt = 0, made = 0; n > 0 && attempt < 8 * cap && made < cap; attempt++)
        made += chapter_pair(doc, chap[lqa_rng_below(r, (uint64_t)n)], far, r, out);
    free(chap);
}

void lqa_gen_section(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    if (doc->n_sections < 2) return; /* one section: the question has only one possible answer */
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_SECTION);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_SECTION);
    /* a long document: half of them ask for a chapter whose heading is far above the passage */
    if (doc->text.len >= LQA_GEN_LONG_DOC) {
        int before = out->n;
        section_chapters(doc, &r, (cap + 1) / 2, out);
        made = out->n - before;
    }
    uint32_t *ord = order(&r, doc->n_sections);
    for (int k = 0; k < doc->n_sections && made < cap; k++) {
        int i = (int)ord[k];
        lqa_span head, sent;
        if (lqa_gen_heading_span(doc, i, &head) != 0 || !title_unique(doc, i)) continue;
        if (unique_sentence_in_section(doc, i, &r, head, &sent) != 0) continue;
        if (lqa_gen_label_reveals(doc, sent.start, doc->sections[i].title)) continue;
        char *quote = lqa_strndup(doc->text.data + sent.start, sent.end - sent.start);
        char *q = fmt("Which section of the document contains the passage \"%s\"?", quote);
        free(quote);
        made += lqa_gen_emit_at(out, doc, doc->text.data, doc->text.len, q, lqa_strdup(doc->sections[i].title), head,
                                sent, "section", "section:heading");
    }
    free(ord);
}

static const char *cell(const lqa_table *t, int r, int c) { return t->cells[(size_t)r * t->n_cols + c]; }

/* The (key, header) pair names exactly one cell across all tables of the document. */
static int key_unique(const lqa_doc *doc, const char *key, const char *header) {
    int hits = 0;
    for (int ti = 0; ti < doc->n_tables; ti++) {
        const lqa_table *t = &doc->tables[ti];
        for (int c = 1; c < t->n_cols; c++) {
            if (strcmp(cell(t, 0, c), header) != 0) continue;
            for (int rr = 1; rr < t->n_rows; rr++) hits += strcmp(cell(t, rr, 0), key) == 0;
        }
    }
    return hits == 1;
}

static int table_pair(const lqa_doc *doc, const lqa_table *t, int row, int col, const lqa_gen_opts *o,
                      lqa_gen_list *out) {
    const char *key = cell(t, row, 0), *header = cell(t, 0, col), *value = cell(t, row, col);
    lqa_span sp = t->cell_spans[(size_t)row * t->n_cols + col];
    size_t kn = strlen(key), hn = strlen(header), vn = strlen(value);
    if (!kn || !hn || !vn || kn > 120 || hn > 120 || vn > 300 || sp.end == 0 || strcmp(key, value) == 0) return 0;
    if (!key_unique(doc, key, header)) return 0;
    char where[400] = "";
    if (t->caption && *t->caption) snprintf(where, sizeof where, " \"%.300s\"", t->caption);
    else if (t->section >= 0 && t->section < doc->n_sections)
        snprintf(where, sizeof where, " in the section \"%.300s\"", doc->sections[t->section].title);
    char *q = fmt("In the table%s, what is the \"%s\" of the row \"%s\"?", where, header, key);
    lqa_span key_sp = t->cell_spans[(size_t)row * t->n_cols];
    return lqa_gen_emit_at(out, doc, doc->text.data, doc->text.len, q, lqa_strdup(value), sp, key_sp.end ? key_sp : sp,
                           "table", "table:cell");
}

void lqa_gen_table(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    if (doc->n_tables == 0) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_TABLE);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_TABLE);
    /* random (table, row, column) draws: large documents have thousands of cells */
    for (int attempt = 0; attempt < 20 * cap && made < cap; attempt++) {
        const lqa_table *t = &doc->tables[lqa_rng_below(&r, (uint64_t)doc->n_tables)];
        if (t->n_rows < 3 || t->n_cols < 2 || t->no_header) continue; /* no header: no column names */
        int row = 1 + (int)lqa_rng_below(&r, (uint64_t)t->n_rows - 1);
        int col = 1 + (int)lqa_rng_below(&r, (uint64_t)t->n_cols - 1);
        /* a key that repeats within its column cannot name one row */
        int dup = 0;
        for (int rr = 1; rr < t->n_rows && !dup; rr++) dup = rr != row && strcmp(cell(t, rr, 0), cell(t, row, 0)) == 0;
        if (dup) continue;
        made += table_pair(doc, t, row, col, o, out);
    }
}

void lqa_gen_definition(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    if (doc->n_defs == 0) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_DEFINITION);
    uint32_t *ord = order(&r, doc->n_defs);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_DEFINITION);
    for (int k = 0; k < doc->n_defs && made < cap; k++) {
        const lqa_definition *d = &doc->defs[ord[k]];
        size_t tn = strlen(d->term);
        if (tn == 0 || tn > 120 || d->def_span.end <= d->def_span.start) continue;
        int dup = 0;
        for (int j = 0; j < doc->n_defs && !dup; j++) dup = j != (int)ord[k] && strcmp(doc->defs[j].term, d->term) == 0;
        if (dup) continue;
        char *q = fmt("How does the document define \"%s\"?", d->term);
        lqa_span anchor = d->term_span.end > d->term_span.start ? d->term_span : d->def_span;
        made += lqa_gen_emit_at(out, doc, doc->text.data, doc->text.len, q,
                                lqa_gen_prefix(doc->text.data, d->def_span, 400), d->def_span, anchor, "definition",
                                "definition:term");
    }
    free(ord);
}

void lqa_gen_reference(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    if (doc->n_passages == 0) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_REFERENCE);
    uint32_t *ord = order(&r, doc->n_passages);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_REFERENCE);
    for (int k = 0; k < doc->n_passages && made < cap; k++) {
        const lqa_passage *p = &doc->passages[ord[k]];
        if (!p->label || !*p->label || strlen(p->label) > 120 || p->span.end <= p->span.start) continue;
        int dup = 0;
        for (int j = 0; j < doc->n_passages && !dup; j++)
            dup = j != (int)ord[k] && strcmp(doc->passages[j].label, p->label) == 0;
        if (dup) continue;
        char *q = fmt("What is the text of the passage labelled \"%s\"?", p->label);
        /* the question points at the labelled passage itself: anchor and evidence coincide */
        made += lqa_gen_emit_at(out, doc, doc->text.data, doc->text.len, q,
                                lqa_gen_prefix(doc->text.data, p->span, 600), p->span, p->span, "reference",
                                "reference:label");
    }
    free(ord);
}

void lqa_gen_summary(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    if (doc->abstract.end <= doc->abstract.start) return;
    char *q = doc->title && *doc->title ? fmt("What is the summary given in the abstract of \"%s\"?", doc->title)
                                        : fmt("What is the summary given in the document's abstract?");
    lqa_gen_emit_at(out, doc, doc->text.data, doc->text.len, q, lqa_gen_prefix(doc->text.data, doc->abstract, 1200),
                    doc->abstract, doc->abstract, "summary", "summary:abstract");
}

void lqa_gen_imported(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    for (int i = 0; i < doc->n_qas; i++) {
        const lqa_qa_in *qa = &doc->qas[i];
        if (!qa->question || qa->n_answers < 1 || !qa->answers[0]) continue;
        lqa_span ev = qa->evidence;
        /* a stated span that does not hold the answer is dropped, the pair kept as abstractive */
        if (ev.end != 0 && (ev.end > doc->text.len || ev.start >= ev.end ||
                            !memmem(doc->text.data + ev.start, ev.end - ev.start, qa->answers[0], strlen(qa->answers[0]))))
            ev = (lqa_span){0, 0};
        int before = out->n;
        /* the kind the QA set gave ("squad", "longbench:narrativeqa"); it lives as long as doc */
        const char *kind = qa->kind && *qa->kind ? qa->kind : "imported";
        if (!lqa_gen_emit(out, doc, doc->text.data, doc->text.len, lqa_strdup(qa->question), lqa_strdup(qa->answers[0]),
                          ev, kind, "import"))
            continue;
        lqa_gen_qa *g = &out->items[before];
        json_t *a = json_array();
        for (int k = 0; k < qa->n_answers; k++)
            if (qa->answers[k]) json_array_append_new(a, json_string(qa->answers[k]));
        g->answers_json = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        mallocCheck(g->answers_json);
    }
}
