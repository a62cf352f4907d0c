/* gen.c: the generator driver (--generators names, running the enabled generators) and the
 * helpers they share: the extractive check at emit time, occurrence counting for the
 * uniqueness rule, sentence finding, text cleaning and the per-generator seeded RNG. */
#include "ingest/gen.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

static const struct {
    const char *name;
    unsigned bit;
} KINDS[] = {
    {"section", LQA_GEN_SECTION},   {"table", LQA_GEN_TABLE},
    {"definition", LQA_GEN_DEFINITION}, {"reference", LQA_GEN_REFERENCE},
    {"continuation", LQA_GEN_CONTINUATION}, {"multihop", LQA_GEN_MULTIHOP},
    {"summary", LQA_GEN_SUMMARY},   {"synthetic", LQA_GEN_SYNTHETIC},
    {"imported", LQA_GEN_IMPORTED}, {"order", LQA_GEN_ORDER},
    {"xref", LQA_GEN_XREF},         {"term", LQA_GEN_TERM},
    {"count", LQA_GEN_COUNT},       {"join", LQA_GEN_JOIN},
};
#define N_KINDS (sizeof KINDS / sizeof KINDS[0])

const char *lqa_gen_kind_name(unsigned bit) {
    for (size_t i = 0; i < N_KINDS; i++)
        if (KINDS[i].bit == bit) return KINDS[i].name;
    return "?";
}

int lqa_gen_parse_list(const char *list, unsigned *mask, lqa_err *err) {
    *mask = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        unsigned bit = 0;
        if (n == 3 && strncmp(p, "all", 3) == 0) bit = LQA_GEN_ALL;
        for (size_t i = 0; i < N_KINDS && !bit; i++)
            if (strlen(KINDS[i].name) == n && strncmp(p, KINDS[i].name, n) == 0) bit = KINDS[i].bit;
        if (!bit)
            return lqa_err_set(err, "--generators: unknown generator '%.*s', expected a comma list of all, section, "
                                    "table, definition, reference, continuation, multihop, summary, synthetic, imported, order, xref, "
                                    "term, count, join",
                               (int)n, p);
        *mask |= bit;
        if (!e) break;
        p = e + 1;
    }
    if (!*mask) return lqa_err_set(err, "--generators: empty list, expected at least one generator name");
    return 0;
}

void lqa_gen_run(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    if (o->mask & LQA_GEN_SECTION) lqa_gen_section(doc, o, out);
    if (o->mask & LQA_GEN_TABLE) lqa_gen_table(doc, o, out);
    if (o->mask & LQA_GEN_DEFINITION) lqa_gen_definition(doc, o, out);
    if (o->mask & LQA_GEN_REFERENCE) lqa_gen_reference(doc, o, out);
    if (o->mask & LQA_GEN_CONTINUATION) lqa_gen_continuation(doc, o, out);
    if (o->mask & LQA_GEN_MULTIHOP) lqa_gen_multihop(doc, o, out);
    if (o->mask & LQA_GEN_SUMMARY) lqa_gen_summary(doc, o, out);
    if (o->mask & LQA_GEN_IMPORTED) lqa_gen_imported(doc, o, out);
    if (o->mask & LQA_GEN_ORDER) lqa_gen_order(doc, o, out);
    if (o->mask & LQA_GEN_XREF) lqa_gen_xref(doc, o, out);
    if (o->mask & LQA_GEN_TERM) lqa_gen_term(doc, o, out);
    if (o->mask & LQA_GEN_COUNT) lqa_gen_mentions(doc, o, out);
    if (o->mask & LQA_GEN_JOIN) lqa_gen_join(doc, o, out);
}

void lqa_gen_list_free(lqa_gen_list *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->items[i].question);
        free(l->items[i].answer);
        free(l->items[i].answers_json);
        free(l->items[i].generator);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

void lqa_gen_synth_free(lqa_gen_synth *s) {
    free(s->text);
    lqa_gen_list_free(&s->qas);
    memset(s, 0, sizeof *s);
}

static int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
        if (n < 0) return 0;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xC0) != 0x80) return 0;
    }
    return 1;
}

static int blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

int lqa_gen_emit(lqa_gen_list *out, const lqa_doc *doc, const char *text, size_t text_len, char *question,
                 char *answer, lqa_span ev, const char *kind, const char *generator) {
    return lqa_gen_emit_at(out, doc, text, text_len, question, answer, ev, (lqa_span){0, 0}, kind, generator);
}

/* The list already holds this (question, answer): a generator that draws the same cell or
 * passage twice must not store the pair twice. */
static int listed(const lqa_gen_list *l, const char *question, const char *answer) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].question, question) && !strcmp(l->items[i].answer, answer)) return 1;
    return 0;
}

int lqa_gen_emit_at(lqa_gen_list *out, const lqa_doc *doc, const char *text, size_t text_len, char *question,
                    char *answer, lqa_span ev, lqa_span anchor, const char *kind, const char *generator) {
    int ok = question && answer && !blank(question) && !blank(answer) && utf8_valid(question) && utf8_valid(answer);
    if (ok && ev.end != 0) /* extractive: the evidence holds the answer */
        ok = ev.start < ev.end && ev.end <= text_len &&
             memmem(text + ev.start, ev.end - ev.start, answer, strlen(answer)) != NULL;
    if (ok && anchor.end != 0) ok = anchor.start < anchor.end && anchor.end <= text_len;
    if (ok) ok = !listed(out, question, answer);
    if (!ok) {
        free(question);
        free(answer);
        return 0;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? 2 * out->cap : 16;
        out->items = lqa_realloc(out->items, (size_t)out->cap * sizeof *out->items);
    }
    out->items[out->n++] = (lqa_gen_qa){.question = question, .answer = answer, .evidence = ev, .anchor = anchor,
                                        .kind = kind, .generator = lqa_strdup(generator)};
    (void)doc;
    return 1;
}

size_t lqa_gen_distance(lqa_span a, lqa_span e) {
    if (a.end <= e.start) return e.start - a.end;
    if (e.end <= a.start) return a.start - e.end;
    return 0;
}

size_t lqa_gen_far(const lqa_doc *doc) {
    size_t third = doc->text.len / 3;
    return third < 36000 ? third : 36000;
}

int lqa_gen_kind_is_local(unsigned bit) {
    return bit == LQA_GEN_TABLE || bit == LQA_GEN_DEFINITION || bit == LQA_GEN_REFERENCE || bit == LQA_GEN_CONTINUATION;
}

int lqa_gen_section_at(const lqa_doc *doc, size_t pos) {
    int best = -1;
    for (int i = 0; i < doc->n_sections; i++) {
        const lqa_section *s = &doc->sections[i];
        if (s->span.start <= pos && pos < s->span.end && (best < 0 || s->level >= doc->sections[best].level)) best = i;
    }
    return best;
}

int lqa_gen_title_unique(const lqa_doc *doc, int i) {
    for (int j = 0; j < doc->n_sections; j++)
        if (j != i && strcmp(doc->sections[j].title, doc->sections[i].title) == 0) return 0;
    return 1;
}

int lqa_gen_count(const char *text, size_t text_len, const char *needle, size_t n, int limit) {
    int c = 0;
    if (n == 0) return 0;
    const char *p = text, *end = text + text_len;
    while (c < limit && p < end) {
        const char *hit = memmem(p, (size_t)(end - p), needle, n);
        if (!hit) break;
        c++;
        p = hit + 1;
    }
    return c;
}

/* A sentence ends at . ! or ? followed by a space and starts after such an end or a newline. */
static int sentence_end_at(const char *t, size_t i, size_t to) {
    return (t[i] == '.' || t[i] == '!' || t[i] == '?') && i + 1 < to && t[i + 1] == ' ' && i + 2 < to &&
           (isupper((unsigned char)t[i + 2]) || t[i + 2] == '"');
}

/* Span of the sentence starting at start (which must be a sentence start), or -1. */
static int sentence_from(const char *t, size_t start, size_t to, size_t min, size_t max, lqa_span *out) {
    for (size_t i = start; i < to && i - start <= max; i++) {
        if (t[i] == '\n') return -1; /* a sentence stays on one line of its paragraph */
        if (sentence_end_at(t, i, to) || (i + 1 == to && (t[i] == '.' || t[i] == '!' || t[i] == '?')) ||
            ((t[i] == '.' || t[i] == '!' || t[i] == '?') && i + 1 < to && t[i + 1] == '\n')) {
            size_t len = i + 1 - start;
            if (len < min || len > max) return -1;
            *out = (lqa_span){start, i + 1};
            return 0;
        }
    }
    return -1;
}

int lqa_gen_sentence_at(const char *t, size_t from, size_t to, size_t at, size_t min, size_t max, lqa_span *out) {
    size_t limit = at + 4 * max < to ? at + 4 * max : to;
    for (size_t i = at < from ? from : at; i < limit; i++) {
        int starts = i == from || t[i - 1] == '\n' || (i >= 2 && t[i - 1] == ' ' && sentence_end_at(t, i - 2, to));
        if (!starts || !isupper((unsigned char)t[i])) continue;
        if (sentence_from(t, i, to, min, max, out) == 0) return 0;
    }
    return -1;
}

int lqa_gen_next_sentence(const char *t, size_t to, lqa_span s, size_t min, size_t max, lqa_span *out) {
    if (s.end + 1 >= to || t[s.end] != ' ') return -1; /* same paragraph, same line */
    return sentence_from(t, s.end + 1, to, min, max, out);
}

char *lqa_gen_clean(const char *text, lqa_span span) {
    lqa_buf b = {0};
    int space = 0;
    for (size_t i = span.start; i < span.end; i++) {
        if (isspace((unsigned char)text[i])) {
            space = b.len > 0;
            continue;
        }
        if (space) lqa_buf_putc(&b, ' ');
        space = 0;
        lqa_buf_putc(&b, text[i]);
    }
    if (!b.data) lqa_buf_puts(&b, "");
    return lqa_buf_steal(&b);
}

char *lqa_gen_prefix(const char *text, lqa_span span, size_t max) {
    size_t n = span.end - span.start;
    if (n > max) {
        n = max;
        /* prefer a sentence end, then a word end, always a UTF-8 boundary */
        size_t cut = 0;
        for (size_t i = n; i > max / 2 && !cut; i--)
            if (text[span.start + i - 1] == '.' && (text[span.start + i] == ' ' || text[span.start + i] == '\n')) cut = i;
        for (size_t i = n; i > max / 2 && !cut; i--)
            if (text[span.start + i] == ' ') cut = i;
        n = cut ? cut : n;
        while (n > 0 && ((unsigned char)text[span.start + n] & 0xC0) == 0x80) n--;
    }
    while (n > 0 && isspace((unsigned char)text[span.start + n - 1])) n--;
    return lqa_strndup(text + span.start, n);
}

void lqa_gen_rng(lqa_rng *r, const lqa_doc *doc, const lqa_gen_opts *o, unsigned kind_bit) {
    uint64_t h = lqa_xxh64(doc->text.data, doc->text.len, o->seed);
    lqa_rng_seed(r, h ^ ((uint64_t)kind_bit * 0x9E3779B97F4A7C15ull));
}

int lqa_gen_cap(const lqa_doc *doc, const lqa_gen_opts *o) {
    /* one pair per 16 kB of text, at least 1: longer documents hold more distinct questions */
    int cap = 1 + (int)(doc->text.len / 16000);
    int max = o->max_per_kind > 0 ? o->max_per_kind : 25;
    return cap < max ? cap : max;
}

int lqa_gen_cap_kind(const lqa_doc *doc, const lqa_gen_opts *o, unsigned kind_bit) {
    int cap = lqa_gen_cap(doc, o);
    /* a long document's questions should need its length: the kinds whose evidence sits next
     * to the anchor get half their share there */
    if (doc->text.len >= LQA_GEN_LONG_DOC && lqa_gen_kind_is_local(kind_bit)) cap = (cap + 1) / 2;
    return cap;
}

int lqa_gen_heading_span(const lqa_doc *doc, int i, lqa_span *out) {
    const lqa_section *s = &doc->sections[i];
    size_t n = strlen(s->title);
    if (n == 0 || s->span.end > doc->text.len || s->span.start >= s->span.end) return -1;
    size_t look = s->span.end - s->span.start;
    if (look > n + 256) look = n + 256;
    const char *hit = memmem(doc->text.data + s->span.start, look, s->title, n);
    if (!hit) return -1;
    out->start = (size_t)(hit - doc->text.data);
    out->end = out->start + n;
    return 0;
}

size_t lqa_gen_section_body_end(const lqa_doc *doc, int i) {
    const lqa_section *s = &doc->sections[i];
    size_t end = s->span.end;
    for (int j = i + 1; j < doc->n_sections; j++)
        if (doc->sections[j].span.start > s->span.start) {
            if (doc->sections[j].span.start < end) end = doc->sections[j].span.start;
            break;
        }
    return end;
}
