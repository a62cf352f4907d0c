/* gen_far.c: the long-range generators, whose evidence lies far from what the question quotes
 * (docs/INGEST.md, "Generators"): which of two distant passages comes first (order), what a
 * cross-reference such as "see Section 5.6" points at (xref), a term where it is used asked for
 * its definition (term), the last of the sections or tables that mention a word (count) and a table row
 * named in a passage far from its table (join). Each records the quoted place as its anchor;
 * in a document long enough, anchor and evidence are at least lqa_gen_far() bytes apart. */
#include "ingest/gen.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_word_byte(char c) { return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80; }

/* A name worth looking up: not a plain lowercase word ("file", "process") unless a long one. */
static int distinctive(const char *s, size_t n, size_t min_plain) {
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i])) return n >= 4;
    return n >= min_plain;
}

/* The next occurrence of s at or after from that is a whole word where s starts or ends with a
 * letter or digit; -1 when none. */
static long find_word(const char *t, size_t n, size_t from, const char *s, size_t sn) {
    while (from + sn <= n) {
        const char *hit = memmem(t + from, n - from, s, sn);
        if (!hit) return -1;
        size_t at = (size_t)(hit - t);
        int left = at == 0 || !is_word_byte(s[0]) || !is_word_byte(t[at - 1]);
        int right = at + sn == n || !is_word_byte(s[sn - 1]) || !is_word_byte(t[at + sn]);
        if (left && right) return (long)at;
        from = at + 1;
    }
    return -1;
}

/* Within the line holding pos: the line itself when it is 30-300 bytes, else the sentence around
 * [pos, pos+len) cut at ". " ends. The span must occur once in the document. */
static int quote_around(const lqa_doc *doc, size_t pos, size_t len, lqa_span *out) {
    const char *t = doc->text.data;
    size_t n = doc->text.len, a = pos, b = pos + len;
    while (a > 0 && t[a - 1] != '\n') a--;
    while (b < n && t[b] != '\n') b++;
    if (b - a > 300) {
        size_t sa = pos, sb = pos + len;
        while (sa > a && !(sa >= a + 2 && t[sa - 1] == ' ' && t[sa - 2] == '.' && isupper((unsigned char)t[sa])))
            sa--;
        while (sb < b && !(t[sb] == '.' && (sb + 1 == b || t[sb + 1] == ' '))) sb++;
        if (sb < b) sb++;
        a = sa, b = sb;
    }
    while (a < b && isspace((unsigned char)t[a])) a++;
    while (b > a && isspace((unsigned char)t[b - 1])) b--;
    if (b - a < 30 || b - a > 300) return -1;
    if (lqa_gen_count(t, n, t + a, b - a, 2) != 1) return -1;
    *out = (lqa_span){a, b};
    return 0;
}

static char *quoted(const char *pre, const lqa_doc *doc, lqa_span s, const char *post) {
    lqa_buf b = {0};
    lqa_buf_puts(&b, pre);
    lqa_buf_append(&b, doc->text.data + s.start, s.end - s.start);
    lqa_buf_puts(&b, post);
    return lqa_buf_steal(&b);
}

/* A unique sentence of 40-240 bytes starting in [lo, hi). */
static int sentence_in(const lqa_doc *doc, size_t lo, size_t hi, lqa_rng *r, lqa_span *out) {
    if (hi <= lo + 40) return -1;
    size_t at = lo + lqa_rng_below(r, hi - lo);
    if (lqa_gen_sentence_at(doc->text.data, lo, doc->text.len, at, 40, 240, out) != 0 || out->start >= hi) return -1;
    return lqa_gen_count(doc->text.data, doc->text.len, doc->text.data + out->start, out->end - out->start, 2) == 1 ? 0
                                                                                                                  : -1;
}

/* ---- order: which of two distant passages comes first ---- */

void lqa_gen_order(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    size_t n = doc->text.len, far = lqa_gen_far(doc);
    if (n < 2000) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_ORDER);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_ORDER);
    for (int attempt = 0; attempt < 10 * cap && made < cap; attempt++) {
        lqa_span a, b;
        if (sentence_in(doc, 0, n - far, &r, &a) != 0 || a.end + far >= n) continue;
        if (sentence_in(doc, a.end + far, n, &r, &b) != 0) continue;
        /* the question lists them in a random order; the answer is the earlier one (a) */
        int swap = (int)lqa_rng_below(&r, 2);
        lqa_span x = swap ? b : a, y = swap ? a : b;
        lqa_buf q = {0};
        lqa_buf_puts(&q, "Which of these two passages comes first in the document: \"");
        lqa_buf_append(&q, doc->text.data + x.start, x.end - x.start);
        lqa_buf_puts(&q, "\" or \"");
        lqa_buf_append(&q, doc->text.data + y.start, y.end - y.start);
        lqa_buf_puts(&q, "\"?");
        made += lqa_gen_emit_at(out, doc, doc->text.data, n, lqa_buf_steal(&q),
                                lqa_strndup(doc->text.data + a.start, a.end - a.start), a, b, "order", "order:first");
    }
}

/* ---- xref: "see Section 5.6" -> the title of section 5.6 ---- */

typedef struct xref_cand {
    size_t pos, len;  /* the reference ("Section 5.6") */
    int target;       /* the section it names */
    size_t dist;
} xref_cand;

/* The section whose title is "<number>. <title>" (Section refs) or "<word> <number>. <title>"
 * (Chapter, Appendix), when exactly one is; -1 otherwise. */
static int xref_target(const lqa_doc *doc, const char *word, const char *num, size_t nn) {
    char prefix[96];
    int pn = !strcmp(word, "Section") ? snprintf(prefix, sizeof prefix, "%.*s. ", (int)nn, num)
                                      : snprintf(prefix, sizeof prefix, "%s %.*s. ", word, (int)nn, num);
    if (pn <= 0 || pn >= (int)sizeof prefix) return -1;
    int found = -1;
    for (int i = 0; i < doc->n_sections; i++)
        if (!strncmp(doc->sections[i].title, prefix, (size_t)pn)) {
            if (found >= 0) return -1;
            found = i;
        }
    return found;
}

/* How many cross-references "Section N", "Chapter N", "Appendix N" lie in [a, b). */
static int xrefs_in(const char *t, size_t a, size_t b) {
    static const char *const words[] = {"Section ", "Chapter ", "Appendix "};
    int n = 0;
    for (size_t w = 0; w < 3; w++) n += lqa_gen_count(t + a, b - a, words[w], strlen(words[w]), 8);
    return n;
}

static int xref_pair(const lqa_doc *doc, const xref_cand *c, lqa_gen_list *out) {
    const char *t = doc->text.data;
    lqa_span q, head;
    if (quote_around(doc, c->pos, c->len, &q) != 0 || xrefs_in(t, q.start, q.end) != 1) return 0;
    if (lqa_gen_heading_span(doc, c->target, &head) != 0 || (q.start < head.end && head.start < q.end)) return 0;
    /* the answer: the title after its number ("5.6. Modifying Tables" -> "Modifying Tables") */
    const char *title = doc->sections[c->target].title, *dot = strstr(title, ". ");
    if (!dot || strlen(dot + 2) < 3) return 0;
    const char *name = dot + 2;
    /* "see Section 9.1.2, “The screen program”" already says it */
    if (memmem(t + q.start, q.end - q.start, name, strlen(name))) return 0;
    char *question = quoted("The passage \"", doc, q,
                            "\" refers to another part of the document by its number. What is the title of that part?");
    return lqa_gen_emit_at(out, doc, t, doc->text.len, question, lqa_strdup(name), head, q, "xref", "xref:section");
}

void lqa_gen_xref(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    static const char *const words[] = {"Section", "Chapter", "Appendix"};
    const char *t = doc->text.data;
    size_t n = doc->text.len, far = lqa_gen_far(doc);
    if (doc->n_sections < 2) return;
    xref_cand *c = NULL;
    size_t nc = 0, cc = 0;
    for (size_t w = 0; w < 3; w++) {
        size_t wn = strlen(words[w]);
        for (long at = 0; (at = find_word(t, n, (size_t)at, words[w], wn)) >= 0; at++) {
            size_t p = (size_t)at + wn;
            if (p >= n || t[p] != ' ') continue;
            size_t ns = p + 1, ne = ns;
            if (ne < n && isupper((unsigned char)t[ne]) && w == 2) ne++; /* Appendix F */
            while (ne < n && (isdigit((unsigned char)t[ne]) || (t[ne] == '.' && ne + 1 < n && isdigit((unsigned char)t[ne + 1]))))
                ne++;
            if (ne == ns || (ne < n && is_word_byte(t[ne]))) continue;
            int target = xref_target(doc, words[w], t + ns, ne - ns);
            if (target < 0) continue;
            lqa_span head;
            if (lqa_gen_heading_span(doc, target, &head) != 0 || ((size_t)at >= head.start && (size_t)at < head.end)) continue;
            if (nc == cc) c = lqa_realloc(c, (cc = cc ? 2 * cc : 64) * sizeof *c);
            c[nc++] = (xref_cand){(size_t)at, ne - (size_t)at, target, lqa_gen_distance((lqa_span){(size_t)at, ne}, head)};
        }
    }
    if (nc == 0) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_XREF);
    for (size_t i = nc; i > 1; i--) { /* seeded shuffle */
        size_t j = lqa_rng_below(&r, i);
        xref_cand tmp = c[i - 1];
        c[i - 1] = c[j], c[j] = tmp;
    }
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_XREF);
    /* the far references first, then the others */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < nc && made < cap; i++)
            if ((c[i].dist >= far) == (pass == 0)) made += xref_pair(doc, &c[i], out);
    free(c);
}

/* ---- term: a term where it is used, far from its definition ---- */

static int term_pair(const lqa_doc *doc, int d, size_t far, lqa_rng *r, lqa_gen_list *out) {
    const lqa_definition *def = &doc->defs[d];
    const char *t = doc->text.data;
    size_t n = doc->text.len, tn = strlen(def->term);
    if (tn > 80 || !distinctive(def->term, tn, 8) || def->def_span.end <= def->def_span.start) return 0;
    for (int j = 0; j < doc->n_defs; j++)
        if (j != d && !strcmp(doc->defs[j].term, def->term)) return 0;
    /* the uses far enough from the definition; one of them at random */
    size_t uses[64];
    int nu = 0, seen = 0;
    for (long at = 0; (at = find_word(t, n, (size_t)at, def->term, tn)) >= 0 && seen < 4096; at++, seen++) {
        lqa_span u = {(size_t)at, (size_t)at + tn};
        if (lqa_gen_distance(u, def->def_span) < far || lqa_gen_distance(u, def->term_span) < far) continue;
        if (nu < 64) uses[nu++] = (size_t)at;
        else uses[lqa_rng_below(r, 64)] = (size_t)at;
    }
    for (int tries = 0; tries < 4 && nu > 0; tries++) {
        size_t at = uses[lqa_rng_below(r, (uint64_t)nu)];
        lqa_span q;
        if (quote_around(doc, at, tn, &q) != 0) continue;
        int sec = lqa_gen_section_at(doc, at);
        lqa_span head;
        if (sec >= 0 && lqa_gen_heading_span(doc, sec, &head) == 0 && q.start < head.end && head.start < q.end) continue;
        lqa_buf question = {0};
        lqa_buf_puts(&question, "The passage \"");
        lqa_buf_append(&question, t + q.start, q.end - q.start);
        lqa_buf_printf(&question, "\" uses the term \"%s\". How does the document define it?", def->term);
        return lqa_gen_emit_at(out, doc, t, n, lqa_buf_steal(&question), lqa_gen_prefix(t, def->def_span, 400),
                               def->def_span, q, "term", "term:far-use");
    }
    return 0;
}

void lqa_gen_term(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    if (doc->n_defs == 0 || doc->text.len < 2000) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_TERM);
    uint32_t *ord = lqa_malloc((size_t)doc->n_defs * sizeof *ord);
    for (int d = 0; d < doc->n_defs; d++) ord[d] = (uint32_t)d;
    lqa_rng_shuffle_u32(&r, ord, (uint64_t)doc->n_defs);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_TERM);
    size_t far = lqa_gen_far(doc);
    for (int k = 0; k < doc->n_defs && k < 40 * cap && made < cap; k++) made += term_pair(doc, (int)ord[k], far, &r, out);
    free(ord);
}

/* ---- count: the last of the sections that mention a phrase ---- */

/* A word of 9-24 letters at or after pos; its span, or -1. */
static int word_at(const char *t, size_t n, size_t pos, lqa_span *w) {
    while (pos < n && is_word_byte(t[pos]) && pos > 0 && is_word_byte(t[pos - 1])) pos++;
    for (size_t i = pos; i < n && i < pos + 200; i++) {
        if (!isalpha((unsigned char)t[i]) || (i > 0 && is_word_byte(t[i - 1]))) continue;
        size_t e = i;
        while (e < n && isalpha((unsigned char)t[e])) e++;
        if (e < n && is_word_byte(t[e])) continue;
        if (e - i >= 9 && e - i <= 24) {
            *w = (lqa_span){i, e};
            return 0;
        }
    }
    return -1;
}

static int in_any_title(const lqa_doc *doc, const char *s, size_t sn) {
    for (int i = 0; i < doc->n_sections; i++)
        if (memmem(doc->sections[i].title, strlen(doc->sections[i].title), s, sn)) return 1;
    return 0;
}

static int mentions_pair(const lqa_doc *doc, lqa_span w, size_t far, lqa_gen_list *out) {
    const char *t = doc->text.data;
    size_t n = doc->text.len, wn = w.end - w.start;
    char *word = lqa_strndup(t + w.start, wn);
    int made = 0;
    long first = find_word(t, n, 0, word, wn), last = first;
    int sections = 0, prev_sec = -2, hits = 0;
    for (long at = first; at >= 0 && hits < 400; at = find_word(t, n, (size_t)at + 1, word, wn), hits++) {
        int sec = lqa_gen_section_at(doc, (size_t)at);
        if (sec != prev_sec) sections++;
        prev_sec = sec;
        last = at;
    }
    int sec = last >= 0 ? lqa_gen_section_at(doc, (size_t)last) : -1;
    lqa_span head;
    if (hits < 400 && sections >= 2 && sections <= 12 && sec >= 0 && !in_any_title(doc, word, wn) &&
        lqa_gen_title_unique(doc, sec) && lqa_gen_heading_span(doc, sec, &head) == 0 && (size_t)first + wn + far <= head.start) {
        lqa_buf q = {0};
        lqa_buf_printf(&q, "Several sections of the document mention \"%s\". What is the heading of the last of them?", word);
        made = lqa_gen_emit_at(out, doc, t, n, lqa_buf_steal(&q), lqa_strdup(doc->sections[sec].title),
                               (lqa_span){head.start, (size_t)last + wn}, (lqa_span){(size_t)first, (size_t)first + wn},
                               "count", "count:last-section");
    }
    free(word);
    return made;
}

/* Where table t lies in the text: from its first to its last cell; {0,0} when unknown. */
static lqa_span table_extent(const lqa_table *t) {
    lqa_span e = {0, 0};
    for (int i = 0; i < t->n_rows * t->n_cols; i++)
        if (t->cell_spans[i].end) {
            if (!e.end || t->cell_spans[i].start < e.start) e.start = t->cell_spans[i].start;
            if (t->cell_spans[i].end > e.end) e.end = t->cell_spans[i].end;
        }
    return e;
}

/* The caption line written just before the table's first row; {0,0} when not there. */
static lqa_span caption_span(const lqa_doc *doc, const lqa_table *t) {
    lqa_span e = table_extent(t);
    if (!t->caption || !*t->caption || !e.end) return (lqa_span){0, 0};
    size_t cn = strlen(t->caption), from = e.start > cn + 8 ? e.start - cn - 8 : 0;
    const char *hit = memmem(doc->text.data + from, e.start - from, t->caption, cn);
    if (!hit) return (lqa_span){0, 0};
    size_t at = (size_t)(hit - doc->text.data);
    return (lqa_span){at, at + cn};
}

/* "Several tables mention W: the caption of the last of them?" The tables come in text order. */
static int tables_pair(const lqa_doc *doc, const char *word, size_t wn, size_t far, lqa_gen_list *out) {
    const char *t = doc->text.data;
    long first = -1, last = -1;
    int n_tables = 0, last_table = -1;
    for (int ti = 0; ti < doc->n_tables; ti++) {
        lqa_span e = table_extent(&doc->tables[ti]);
        if (!e.end) continue;
        long at = find_word(t, e.end, e.start, word, wn), l = at;
        if (at < 0) continue;
        n_tables++;
        if (first < 0) first = at;
        while ((at = find_word(t, e.end, (size_t)at + 1, word, wn)) >= 0) l = at;
        last = l, last_table = ti;
    }
    if (n_tables < 2 || n_tables > 12) return 0;
    const lqa_table *lt = &doc->tables[last_table];
    lqa_span cap = caption_span(doc, lt);
    if (!cap.end || (size_t)first + wn + far > cap.start || memmem(lt->caption, strlen(lt->caption), word, wn)) return 0;
    for (int ti = 0; ti < doc->n_tables; ti++) /* the caption names one table */
        if (ti != last_table && doc->tables[ti].caption && !strcmp(doc->tables[ti].caption, lt->caption)) return 0;
    lqa_buf q = {0};
    lqa_buf_printf(&q, "Several tables of the document mention \"%s\". What is the caption of the last of them?", word);
    return lqa_gen_emit_at(out, doc, t, doc->text.len, lqa_buf_steal(&q), lqa_strdup(lt->caption),
                           (lqa_span){cap.start, (size_t)last + wn}, (lqa_span){(size_t)first, (size_t)first + wn},
                           "count", "count:last-table");
}

void lqa_gen_mentions(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    size_t n = doc->text.len;
    if (n < 2000) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_COUNT);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_COUNT);
    size_t far = lqa_gen_far(doc);
    /* tables first (up to a third of the share): a word of a random cell */
    for (int attempt = 0; doc->n_tables >= 2 && attempt < 8 * cap && made < (cap + 2) / 3; attempt++) {
        const lqa_table *tb = &doc->tables[lqa_rng_below(&r, (uint64_t)doc->n_tables)];
        lqa_span cs = tb->cell_spans[lqa_rng_below(&r, (uint64_t)tb->n_rows * (uint64_t)tb->n_cols)], w;
        if (!cs.end || word_at(doc->text.data, cs.end, cs.start, &w) != 0) continue;
        char *word = lqa_strndup(doc->text.data + w.start, w.end - w.start);
        made += tables_pair(doc, word, w.end - w.start, far, out);
        free(word);
    }
    for (int attempt = 0; doc->n_sections >= 3 && attempt < 8 * cap && made < cap; attempt++) {
        lqa_span w;
        if (word_at(doc->text.data, n, lqa_rng_below(&r, n), &w) == 0) made += mentions_pair(doc, w, far, out);
    }
}

/* ---- join: a passage names a table row far from the table; a cell of that row ---- */

static const char *tcell(const lqa_table *t, int r, int c) { return t->cells[(size_t)r * t->n_cols + c]; }

/* Keys of t (column 0) named in [a, b) of the text. */
static int keys_in(const lqa_doc *doc, const lqa_table *t, size_t a, size_t b) {
    int k = 0;
    for (int r = 1; r < t->n_rows; r++) {
        const char *key = tcell(t, r, 0);
        size_t kn = strlen(key);
        long at = kn ? find_word(doc->text.data, b, a, key, kn) : -1;
        k += at >= 0;
    }
    return k;
}

/* The (key, header) pair names exactly one cell across the document's tables with a header. */
static int join_key_unique(const lqa_doc *doc, const char *key, const char *header) {
    int hits = 0;
    for (int ti = 0; ti < doc->n_tables; ti++) {
        const lqa_table *t = &doc->tables[ti];
        if (t->no_header) continue;
        for (int c = 1; c < t->n_cols; c++) {
            if (strcmp(tcell(t, 0, c), header) != 0) continue;
            for (int rr = 1; rr < t->n_rows; rr++) hits += strcmp(tcell(t, rr, 0), key) == 0;
        }
    }
    return hits == 1;
}

static int join_pair(const lqa_doc *doc, const lqa_table *t, int row, size_t far, lqa_rng *r, lqa_gen_list *out) {
    const char *txt = doc->text.data, *key = tcell(t, row, 0);
    size_t n = doc->text.len, kn = strlen(key);
    if (kn > 60 || !distinctive(key, kn, 10)) return 0;
    for (int rr = 1; rr < t->n_rows; rr++)
        if (rr != row && !strcmp(tcell(t, rr, 0), key)) return 0;
    /* where the table lies: its cells' spans */
    size_t ta = n, tb = 0;
    for (int i = 0; i < t->n_rows * t->n_cols; i++)
        if (t->cell_spans[i].end) {
            if (t->cell_spans[i].start < ta) ta = t->cell_spans[i].start;
            if (t->cell_spans[i].end > tb) tb = t->cell_spans[i].end;
        }
    if (ta >= tb) return 0;
    size_t uses[32];
    int nu = 0, seen = 0;
    for (long at = 0; (at = find_word(txt, n, (size_t)at, key, kn)) >= 0 && seen < 1024; at++, seen++) {
        lqa_span u = {(size_t)at, (size_t)at + kn};
        if (lqa_gen_distance(u, (lqa_span){ta, tb}) >= far && nu < 32) uses[nu++] = (size_t)at;
    }
    if (nu == 0) return 0;
    size_t at = uses[lqa_rng_below(r, (uint64_t)nu)];
    lqa_span q;
    if (quote_around(doc, at, kn, &q) != 0 || memchr(txt + q.start, '|', q.end - q.start) || keys_in(doc, t, q.start, q.end) != 1)
        return 0;
    int col = 1 + (int)lqa_rng_below(r, (uint64_t)t->n_cols - 1);
    const char *header = tcell(t, 0, col), *value = tcell(t, row, col);
    lqa_span sp = t->cell_spans[(size_t)row * t->n_cols + col];
    size_t hn = strlen(header), vn = strlen(value);
    if (!hn || !vn || hn > 120 || vn > 300 || sp.end == 0 || !strcmp(value, key) || !join_key_unique(doc, key, header))
        return 0;
    char where[400] = "";
    if (t->caption && *t->caption) snprintf(where, sizeof where, "the table \"%.300s\"", t->caption);
    else if (t->section >= 0 && t->section < doc->n_sections)
        snprintf(where, sizeof where, "the table in the section \"%.300s\"", doc->sections[t->section].title);
    else return 0;
    lqa_buf question = {0};
    lqa_buf_puts(&question, "The passage \"");
    lqa_buf_append(&question, txt + q.start, q.end - q.start);
    lqa_buf_printf(&question, "\" names a row of %s. What is that row's \"%s\" in the table?", where, header);
    return lqa_gen_emit_at(out, doc, txt, n, lqa_buf_steal(&question), lqa_strdup(value), sp, q, "join",
                           "join:table-row");
}

void lqa_gen_join(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    if (doc->n_tables == 0 || doc->text.len < 2000) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_JOIN);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_JOIN);
    size_t far = lqa_gen_far(doc);
    for (int attempt = 0; attempt < 20 * cap && made < cap; attempt++) {
        const lqa_table *t = &doc->tables[lqa_rng_below(&r, (uint64_t)doc->n_tables)];
        if (t->no_header || t->n_rows < 3 || t->n_cols < 2) continue;
        made += join_pair(doc, t, 1 + (int)lqa_rng_below(&r, (uint64_t)t->n_rows - 1), far, &r, out);
    }
}
